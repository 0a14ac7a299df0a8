//! Resolution (docs/flags-file.md#resolution): for one flag in one env, the first of DB row, `FLAG_*`
//! variable and YAML default that applies, with the source and the markers an
//! operator needs to see.
//!
//! A pure function of its inputs, allocation-free, so that the library's snapshot,
//! the console and the CLI all compute the same answer the same way.

use serde::Serialize;

use crate::decl::{FlagDecl, FlagSet};
use crate::env_var::{EnvSnapshot, EnvVar, MasterSwitch};
use crate::message::quoted;

/// Where an effective value came from, reported everywhere as `db`, `env` or `yaml`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum Source {
    Db,
    Env,
    Yaml,
}

impl Source {
    pub fn as_str(self) -> &'static str {
        match self {
            Source::Db => "db",
            Source::Env => "env",
            Source::Yaml => "yaml",
        }
    }
}

/// A declared flag's effective value and why.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Resolved<'a> {
    pub value: bool,
    pub source: Source,
    /// The flag's variable when a DB row wins over it: set, but with no effect.
    pub dormant_env_var: Option<&'a EnvVar>,
    /// The flag's variable when its value is none of the runbook's spellings. It never
    /// decides the value; it is reported (even when dormant) so that it gets fixed.
    pub invalid_env_var: Option<&'a EnvVar>,
}

/// The answer for any key an application asks about, declared or not.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Resolution<'a> {
    Declared(Resolved<'a>),
    /// The key is not in the flags file. Its value is off, and the caller reports it.
    Undeclared(Undeclared),
}

/// A key asked for that the flags file does not declare.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error(
    "flag {} is not declared in the flags file; it resolves to off",
    quoted(key)
)]
pub struct Undeclared {
    key: Box<str>,
}

impl Undeclared {
    pub fn key(&self) -> &str {
        &self.key
    }
}

impl Resolution<'_> {
    /// The effective value: an undeclared flag is off, never a panic or a guess.
    pub fn is_on(&self) -> bool {
        match self {
            Resolution::Declared(resolved) => resolved.value,
            Resolution::Undeclared(_) => false,
        }
    }
}

/// The effective value of `decl` in one env.
///
/// `db_value` is the `console_feature_flags` row for (flag, env), if there is one; it
/// counts only when the master switch is on. Then the flag's variable, if set to a
/// valid spelling; then the YAML default.
pub fn resolve<'a>(
    decl: &FlagDecl,
    db_value: Option<bool>,
    env_snapshot: &'a EnvSnapshot,
    master: MasterSwitch,
) -> Resolved<'a> {
    let env_var = env_snapshot.get(decl.key());
    let invalid_env_var = env_var.filter(|var| !var.is_valid());
    if let (true, Some(value)) = (master.db_layer_on(), db_value) {
        return Resolved {
            value,
            source: Source::Db,
            dormant_env_var: env_var,
            invalid_env_var,
        };
    }
    let (value, source) = match env_var.and_then(EnvVar::value) {
        Some(value) => (value, Source::Env),
        None => (decl.default(), Source::Yaml),
    };
    Resolved {
        value,
        source,
        dormant_env_var: None,
        invalid_env_var,
    }
}

/// [`resolve`] for a key an application asked for by name, declared or not.
pub fn resolve_key<'a>(
    flags: &FlagSet,
    key: &str,
    db_value: Option<bool>,
    env_snapshot: &'a EnvSnapshot,
    master: MasterSwitch,
) -> Resolution<'a> {
    match flags.get(key) {
        Some(decl) => Resolution::Declared(resolve(decl, db_value, env_snapshot, master)),
        None => Resolution::Undeclared(Undeclared { key: key.into() }),
    }
}
