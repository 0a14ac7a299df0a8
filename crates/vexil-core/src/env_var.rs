//! The `FLAG_*` process variables (docs/flags-file.md#resolution): their on/off spellings, and the
//! `EnvSnapshot` that holds them for the life of a process.
//!
//! The snapshot is captured once from an iterator of `(name, value)` pairs. The
//! callers that pass the real process variables live in the CLI's and the library's
//! config, so this
//! crate never reads the process environment itself (ARCHITECTURE.md, invariant 4).

use std::fmt;

use foldhash::HashMap;
use foldhash::HashMapExt;

use serde::Serialize;

use crate::key::FlagKey;
use crate::message::{one_line, quoted};

/// Every flag variable starts with this.
pub const PREFIX: &str = "FLAG_";

/// The master switch of the DB layer: rows count only when it is on (docs/flags-file.md#resolution).
pub const MASTER_SWITCH: &str = "FLAG_CONSOLE_FEATURE_FLAGS_DB";

/// The runbook's spellings: `1, true, on, yes` → on; `0, false, off, no` → off,
/// case-insensitive and ignoring surrounding whitespace. Anything else is `None`:
/// invalid, to be reported, and never taken as on.
pub fn parse_switch(raw: &str) -> Option<bool> {
    const ON: [&str; 4] = ["1", "true", "on", "yes"];
    const OFF: [&str; 4] = ["0", "false", "off", "no"];
    let text = raw.trim();
    if ON.iter().any(|on| on.eq_ignore_ascii_case(text)) {
        Some(true)
    } else if OFF.iter().any(|off| off.eq_ignore_ascii_case(text)) {
        Some(false)
    } else {
        None
    }
}

/// One `FLAG_*` variable as the process saw it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct EnvVar {
    name: String,
    raw: String,
    /// `None` when the value is none of the runbook's spellings.
    value: Option<bool>,
}

impl EnvVar {
    fn new(name: String, raw: String) -> EnvVar {
        let value = parse_switch(&raw);
        EnvVar { name, raw, value }
    }

    pub fn name(&self) -> &str {
        &self.name
    }

    /// The value exactly as set, for reports (flag variables hold no secrets).
    pub fn raw(&self) -> &str {
        &self.raw
    }

    pub fn value(&self) -> Option<bool> {
        self.value
    }

    pub fn is_valid(&self) -> bool {
        self.value.is_some()
    }
}

impl fmt::Display for EnvVar {
    /// `FLAG_X=1`, or `FLAG_X='maybe' (invalid: expected one of 1, true, on, yes, 0, false, off, no)`.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        // The name comes from the process environment too: escaped, it stays one line.
        let name = one_line(&self.name);
        if self.is_valid() {
            write!(f, "{name}={}", self.raw.trim())
        } else {
            write!(
                f,
                "{name}={} (invalid: expected one of 1, true, on, yes, 0, false, off, no)",
                quoted(&self.raw)
            )
        }
    }
}

/// The master switch, `FLAG_CONSOLE_FEATURE_FLAGS_DB`, read once at process start.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum MasterSwitch {
    On,
    Off,
    Unset,
    /// Set to none of the runbook's spellings: the DB layer stays off, and this is
    /// reported rather than guessed.
    Invalid,
}

impl MasterSwitch {
    /// Whether DB rows take part in resolution. Only an explicit on turns them on.
    pub fn db_layer_on(self) -> bool {
        self == MasterSwitch::On
    }
}

/// The `FLAG_*` variables of one process, captured once.
#[derive(Debug, Clone, Default)]
pub struct EnvSnapshot {
    /// Every `FLAG_*` variable, sorted by name, for reports.
    vars: Vec<EnvVar>,
    /// Index into `vars` by the lower-case flag key a variable overrides, so that
    /// resolution looks a flag up by its key without building `FLAG_<KEY>` on every call.
    /// foldhash rather than SipHash: this lookup is most of `resolve`'s cost, and the
    /// keys come from the process's own environment, not from an attacker.
    by_key: HashMap<Box<str>, usize>,
    master: Option<usize>,
}

impl EnvSnapshot {
    /// Keeps the pairs whose name starts with `FLAG_` and ignores the rest.
    pub fn capture<I, K, V>(vars: I) -> EnvSnapshot
    where
        I: IntoIterator<Item = (K, V)>,
        K: Into<String>,
        V: Into<String>,
    {
        let mut flag_vars: Vec<EnvVar> = vars
            .into_iter()
            .map(|(name, raw)| (name.into(), raw))
            .filter(|(name, _)| name.starts_with(PREFIX))
            .map(|(name, raw)| EnvVar::new(name, raw.into()))
            .collect();
        flag_vars.sort_by(|a, b| a.name.cmp(&b.name));
        flag_vars.dedup_by(|later, earlier| later.name == earlier.name);

        let mut by_key = HashMap::with_capacity(flag_vars.len());
        let mut master = None;
        for (index, var) in flag_vars.iter().enumerate() {
            if var.name == MASTER_SWITCH {
                master = Some(index);
            } else if let Some(key) = key_of(&var.name) {
                by_key.insert(key.into_boxed_str(), index);
            }
        }
        EnvSnapshot {
            vars: flag_vars,
            by_key,
            master,
        }
    }

    /// The variable that overrides the flag `key` (`FLAG_<KEY>`), if set.
    pub fn get(&self, key: &FlagKey) -> Option<&EnvVar> {
        self.by_key
            .get(key.as_str())
            .map(|&index| &self.vars[index])
    }

    /// The master switch, parsed with the same spellings as every flag variable.
    pub fn master_switch(&self) -> MasterSwitch {
        match self.master_var().map(EnvVar::value) {
            None => MasterSwitch::Unset,
            Some(Some(true)) => MasterSwitch::On,
            Some(Some(false)) => MasterSwitch::Off,
            Some(None) => MasterSwitch::Invalid,
        }
    }

    /// The master switch variable itself, for reports.
    pub fn master_var(&self) -> Option<&EnvVar> {
        self.master.map(|index| &self.vars[index])
    }

    /// Every `FLAG_*` variable, sorted by name, the master switch included.
    pub fn vars(&self) -> impl Iterator<Item = &EnvVar> {
        self.vars.iter()
    }

    /// The flag variables (master switch excluded) that cannot override any flag in
    /// `is_declared`'s view: not `FLAG_` + an upper-cased key, or a key not declared.
    pub fn unmatched<'a>(
        &'a self,
        is_declared: impl Fn(&str) -> bool + 'a,
    ) -> impl Iterator<Item = &'a EnvVar> {
        self.vars.iter().filter(move |var| {
            var.name != MASTER_SWITCH && key_of(&var.name).is_none_or(|key| !is_declared(&key))
        })
    }
}

/// Whether `name` is a well-formed flag variable, `FLAG_` and upper-case letters,
/// digits and underscores: what a process reports of variables no flag declares
/// (`vexil doctor --gone`), since their names are safe to show and store.
pub fn is_flag_variable(name: &str) -> bool {
    name.len() <= MAX_VARIABLE_CHARS && key_of(name).is_some()
}

/// The longest undeclared variable name a process reports.
pub const MAX_VARIABLE_CHARS: usize = 128;

/// The most undeclared `FLAG_*` variables a process reports (the first, by name).
pub const MAX_UNDECLARED_REPORTED: usize = 64;

/// The flag key a variable name overrides: `FLAG_MY_FEATURE` → `my_feature`. `None`
/// unless the part after `FLAG_` is upper-case letters, digits and underscores, since
/// process variables are case-sensitive and a flag's variable is its key upper-cased.
fn key_of(name: &str) -> Option<String> {
    let rest = name.strip_prefix(PREFIX)?;
    let well_formed = !rest.is_empty()
        && rest
            .bytes()
            .all(|b| b.is_ascii_uppercase() || b.is_ascii_digit() || b == b'_');
    well_formed.then(|| rest.to_ascii_lowercase())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn switch_spellings() {
        for on in [
            "1", "true", "on", "yes", "TRUE", "On", "YES", " 1 ", "\ttrue\n",
        ] {
            assert_eq!(parse_switch(on), Some(true), "{on:?}");
        }
        for off in ["0", "false", "off", "no", "FALSE", "Off", "NO", " 0", "no "] {
            assert_eq!(parse_switch(off), Some(false), "{off:?}");
        }
        for invalid in [
            "", " ", "2", "-1", "y", "n", "enabled", "disabled", "tru", "01", "1 0", "null",
        ] {
            assert_eq!(parse_switch(invalid), None, "{invalid:?}");
        }
    }

    fn key(text: &str) -> FlagKey {
        FlagKey::parse(text).unwrap()
    }

    fn snapshot(pairs: &[(&str, &str)]) -> EnvSnapshot {
        EnvSnapshot::capture(pairs.iter().map(|&(k, v)| (k, v)))
    }

    #[test]
    fn capture_keeps_flag_variables_only() {
        let env = snapshot(&[
            ("PATH", "/usr/bin"),
            ("FLAG_MY_FEATURE", "on"),
            ("FLAG_BROKEN", "maybe"),
            ("FLAG_lower_case", "1"),
            ("DATABASE_URL", "postgres://u:secret@h/db"),
        ]);
        let names: Vec<&str> = env.vars().map(EnvVar::name).collect();
        assert_eq!(names, ["FLAG_BROKEN", "FLAG_MY_FEATURE", "FLAG_lower_case"]);
        assert_eq!(
            env.get(&key("my_feature")).map(EnvVar::value),
            Some(Some(true))
        );
        assert_eq!(env.get(&key("broken")).map(EnvVar::value), Some(None));
        assert_eq!(
            env.get(&key("lower_case")),
            None,
            "variables are case-sensitive"
        );
        assert_eq!(env.get(&key("path")), None);
    }

    #[test]
    fn master_switch_is_parsed_like_any_flag_variable() {
        #[track_caller]
        fn check(value: Option<&str>, expected: MasterSwitch) {
            let env = match value {
                Some(v) => snapshot(&[(MASTER_SWITCH, v)]),
                None => snapshot(&[]),
            };
            assert_eq!(env.master_switch(), expected);
            assert_eq!(
                env.master_switch().db_layer_on(),
                expected == MasterSwitch::On
            );
        }
        check(Some("1"), MasterSwitch::On);
        check(Some(" Yes "), MasterSwitch::On);
        check(Some("0"), MasterSwitch::Off);
        check(Some("off"), MasterSwitch::Off);
        check(None, MasterSwitch::Unset);
        check(Some("enabled"), MasterSwitch::Invalid);
        check(Some(""), MasterSwitch::Invalid);
    }

    #[test]
    fn master_switch_is_not_a_flag_variable() {
        let env = snapshot(&[(MASTER_SWITCH, "1")]);
        assert_eq!(env.get(&key("console_feature_flags_db")), None);
        assert_eq!(env.unmatched(|_| false).count(), 0);
    }

    #[test]
    fn unmatched_names_variables_that_override_nothing() {
        let env = snapshot(&[
            ("FLAG_KNOWN", "1"),
            ("FLAG_TYPO", "1"),
            ("FLAG_lower", "1"),
            ("FLAG_", "1"),
        ]);
        let unmatched: Vec<&str> = env
            .unmatched(|key| key == "known")
            .map(EnvVar::name)
            .collect();
        assert_eq!(unmatched, ["FLAG_", "FLAG_TYPO", "FLAG_lower"]);
    }

    #[test]
    fn display_shows_invalid_values_escaped() {
        let env = snapshot(&[("FLAG_A", " on "), ("FLAG_B", "ma\nybe")]);
        assert_eq!(env.get(&key("a")).unwrap().to_string(), "FLAG_A=on");
        assert_eq!(
            env.get(&key("b")).unwrap().to_string(),
            "FLAG_B='ma\\nybe' (invalid: expected one of 1, true, on, yes, 0, false, off, no)"
        );
    }
}
