//! The env layer of an env as its live processes report it (`vexil_instances`):
//! each process sends its variables parsed, never raw. When they agree, that is the
//! env's layer; when they disagree about a variable, that is drift, and the variable
//! is left out of the layer rather than guessed.
//!
//! The console, `vexil flags list` and a flip's value before use this layer for every
//! env but the process's own, which its own variables describe.

use std::collections::BTreeMap;

use serde::Serialize;

use crate::decl::FlagSet;
use crate::env_var::{EnvSnapshot, MASTER_SWITCH};

/// The key under which a report carries the master switch (the flag key its
/// variable would have; reserved, so no flag can take it).
pub const MASTER_KEY: &str = "console_feature_flags_db";

/// A variable as a process parsed it.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum VarState {
    Unset,
    On,
    Off,
    Invalid,
}

impl VarState {
    pub fn of(value: Option<Option<bool>>) -> VarState {
        match value {
            None => VarState::Unset,
            Some(Some(true)) => VarState::On,
            Some(Some(false)) => VarState::Off,
            Some(None) => VarState::Invalid,
        }
    }

    pub fn as_str(self) -> &'static str {
        match self {
            VarState::Unset => "unset",
            VarState::On => "on",
            VarState::Off => "off",
            VarState::Invalid => "invalid",
        }
    }

    /// A reported state; anything else (a newer vexil's word) counts as invalid.
    pub fn parse(text: &str) -> VarState {
        match text {
            "unset" => VarState::Unset,
            "on" => VarState::On,
            "off" => VarState::Off,
            _ => VarState::Invalid,
        }
    }
}

/// Processes of one env that disagree about one variable.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Drift {
    /// A flag key, or [`MASTER_KEY`].
    pub key: String,
    /// How many processes report each state.
    pub states: BTreeMap<VarState, usize>,
}

impl std::fmt::Display for Drift {
    /// The states and how many processes report each: `on ×2, unset ×1`.
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        for (i, (state, count)) in self.states.iter().enumerate() {
            if i > 0 {
                f.write_str(", ")?;
            }
            write!(f, "{} ×{count}", state.as_str())?;
        }
        Ok(())
    }
}

/// The layer the reports agree on, as an `EnvSnapshot` that resolution can use
/// (an invalid variable is given the raw value `(invalid)`: the raw text stays on its
/// host), and every variable they disagree about. A flag a report leaves out is unset
/// there. No reports: an empty layer and no drift.
pub fn reported_layer(
    flags: &FlagSet,
    reports: &[&BTreeMap<String, String>],
) -> (EnvSnapshot, Vec<Drift>) {
    let mut vars = Vec::new();
    let mut drift = Vec::new();
    if reports.is_empty() {
        return (EnvSnapshot::default(), drift);
    }
    let keys = std::iter::once((MASTER_KEY.to_owned(), MASTER_SWITCH.to_owned())).chain(
        flags
            .iter()
            .map(|decl| (decl.key().to_string(), decl.key().env_var_name())),
    );
    for (key, var_name) in keys {
        let mut states: BTreeMap<VarState, usize> = BTreeMap::new();
        for report in reports {
            let state = report
                .get(&key)
                .map_or(VarState::Unset, |s| VarState::parse(s));
            *states.entry(state).or_default() += 1;
        }
        if states.len() > 1 {
            drift.push(Drift { key, states });
            continue;
        }
        let raw = match states.keys().next() {
            Some(VarState::On) => "1",
            Some(VarState::Off) => "0",
            Some(VarState::Invalid) => "(invalid)",
            Some(VarState::Unset) | None => continue,
        };
        vars.push((var_name, raw.to_owned()));
    }
    (EnvSnapshot::capture(vars), drift)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::MasterSwitch;

    fn report(pairs: &[(&str, &str)]) -> BTreeMap<String, String> {
        pairs
            .iter()
            .map(|(k, v)| ((*k).to_owned(), (*v).to_owned()))
            .collect()
    }

    #[test]
    fn agreement_is_the_layer_and_disagreement_is_drift() {
        let flags = FlagSet::parse(
            "f.yaml",
            b"a:\n  default: false\n  description: A.\n  risk: low\nb:\n  default: false\n  description: B.\n  risk: low\nc:\n  default: false\n  description: C.\n  risk: low\n",
        )
        .unwrap();
        let one = report(&[(MASTER_KEY, "on"), ("a", "on"), ("b", "off")]);
        let two = report(&[(MASTER_KEY, "on"), ("a", "on"), ("c", "maybe")]);
        let (layer, drift) = reported_layer(&flags, &[&one, &two]);
        assert_eq!(layer.master_switch(), MasterSwitch::On);
        let a = crate::FlagKey::parse("a").unwrap();
        assert_eq!(layer.get(&a).and_then(crate::EnvVar::value), Some(true));
        let b = crate::FlagKey::parse("b").unwrap();
        assert_eq!(layer.get(&b), None, "disagreement is left out");
        assert_eq!(
            drift,
            [
                Drift {
                    key: "b".to_owned(),
                    states: [(VarState::Unset, 1), (VarState::Off, 1)].into()
                },
                Drift {
                    key: "c".to_owned(),
                    states: [(VarState::Unset, 1), (VarState::Invalid, 1)].into()
                },
            ]
        );
        let (empty, none) = reported_layer(&flags, &[]);
        assert_eq!(
            (empty.master_switch(), none.len()),
            (MasterSwitch::Unset, 0)
        );
    }
}
