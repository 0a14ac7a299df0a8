//! This process as the other side sees it: its identity and its env layer, which
//! each mode reports with the changes it holds (to `vexil_instances` in database
//! mode, `database.rs`; to the server in remote mode, `remote/mod.rs`). The report
//! answers "has every process seen my flip?" (`vexil audit show ID`) and tells the
//! console each env's `FLAG_*` variables.

use std::collections::BTreeMap;

use chrono::{DateTime, Utc};
use vexil_core::env_var::{MAX_UNDECLARED_REPORTED, is_flag_variable};
use vexil_core::reported::MASTER_KEY;
use vexil_core::{EnvSnapshot, EnvVar, FlagSet, VarState};

/// Who this process is, fixed when its handle starts.
#[derive(Debug, Clone)]
pub(crate) struct Identity {
    pub(crate) id: String,
    pub(crate) host: String,
    pub(crate) pid: i64,
    /// In remote mode the client key names the application instead.
    #[cfg_attr(not(feature = "database"), allow(dead_code))]
    pub(crate) application: String,
    pub(crate) started_at: DateTime<Utc>,
    /// `rust`, or the language of a binding over this library (`python`).
    pub(crate) language: String,
    /// The version of the library or the binding.
    pub(crate) version: String,
}

/// The master switch and each declared flag's variable, parsed: `on`, `off` or
/// `invalid`; a flag whose variable is unset is left out, the master switch never.
/// Variables set that no flag declares (a feature's own gate such as
/// `FLAG_CONSOLE_FLAG_MGMT`) are listed under their upper-case name, which no flag
/// key can be, so that `vexil doctor --gone` can tell where they are still set.
pub(crate) fn env_layer(flags: &FlagSet, env_vars: &EnvSnapshot) -> BTreeMap<String, String> {
    let mut layer = BTreeMap::new();
    let master = VarState::of(env_vars.master_var().map(EnvVar::value));
    layer.insert(MASTER_KEY.to_owned(), master.as_str().to_owned());
    for decl in flags.iter() {
        if let Some(var) = env_vars.get(decl.key()) {
            let state = VarState::of(Some(var.value()));
            layer.insert(decl.key().to_string(), state.as_str().to_owned());
        }
    }
    let undeclared = env_vars
        .unmatched(|key| flags.get(key).is_some())
        .filter(|var| is_flag_variable(var.name()))
        .take(MAX_UNDECLARED_REPORTED);
    for var in undeclared {
        let state = VarState::of(Some(var.value()));
        layer.insert(var.name().to_owned(), state.as_str().to_owned());
    }
    layer
}
