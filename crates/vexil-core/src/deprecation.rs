//! The runbook's deprecation table as a pure decision: for one flag, from
//! the evidence vexil holds in each env (the DB row, the audited flips, what each
//! live process reports about the flag's `FLAG_*` variable), whether the variable is
//! still in use, dormant, safe to remove, or removed. vexil reports and proposes;
//! the removal itself stays with the operator, as the runbook insists.
//!
//! The runbook's criterion for removal: a DB row in both envs and at least one
//! `console.flag.flip` audit entry per env ("the audit log shows at least one
//! console.flag.flip entry per env"), the variable dormant everywhere it is still
//! set. Without live processes reporting, nothing can be said about a variable:
//! that is `Unknown`, never `Removed`.

use std::fmt;

use serde::Serialize;

use crate::key::Env;
use crate::reported::VarState;

/// What vexil knows about one flag in one env.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct Evidence {
    /// The DB row's value, if there is a row.
    pub row: Option<bool>,
    /// Audited `console.flag.flip` rows of the flag in this env.
    pub flips: u64,
    /// Each live process of this env (its name) and how it parsed the variable.
    pub reported: Vec<(String, VarState)>,
}

impl Evidence {
    /// The live processes that still carry the variable (set, to anything).
    pub fn carriers(&self) -> Vec<&str> {
        self.reported
            .iter()
            .filter(|(_, state)| *state != VarState::Unset)
            .map(|(name, _)| name.as_str())
            .collect()
    }
}

/// Where the variable of a flag stands in one env.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum Status {
    /// No DB row: the variable decides the value; removing it changes behaviour.
    InUse,
    /// A DB row decides, and the variable is still set; not yet safe to remove (the
    /// other env lacks its row or an audited flip).
    Dormant,
    /// The runbook's criteria hold: rows and an audited flip in every env, and the
    /// variable is dormant wherever it is still set.
    SafeToRemove,
    /// No live process of this env reports the variable set.
    Removed,
    /// No live process of this env reports at all: nothing to judge by.
    Unknown,
}

impl Status {
    pub fn as_str(self) -> &'static str {
        match self {
            Status::InUse => "in use",
            Status::Dormant => "dormant",
            Status::SafeToRemove => "safe to remove",
            Status::Removed => "removed",
            Status::Unknown => "unknown",
        }
    }
}

impl fmt::Display for Status {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// One env's verdict and the reason for it, in words.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Verdict {
    pub env: Env,
    pub status: Status,
    pub because: String,
}

/// The verdict in each env, from the evidence of every env (the removal criterion
/// spans them all).
pub fn verdicts(evidence: &[(Env, Evidence)]) -> Vec<Verdict> {
    let missing: Vec<String> = evidence
        .iter()
        .filter_map(|(env, e)| match (e.row, e.flips) {
            (None, _) => Some(format!("no DB row in {env}")),
            (Some(_), 0) => Some(format!("no audited flip in {env}")),
            _ => None,
        })
        .collect();
    evidence
        .iter()
        .map(|(env, e)| {
            let carriers = e.carriers();
            let (status, because) = if e.reported.is_empty() {
                (
                    Status::Unknown,
                    format!("no live process of {env} reports its variables"),
                )
            } else if carriers.is_empty() {
                (
                    Status::Removed,
                    format!(
                        "no live process of {env} has it set ({} reporting)",
                        e.reported.len()
                    ),
                )
            } else if e.row.is_none() {
                (
                    Status::InUse,
                    format!(
                        "no DB row in {env}: the variable decides on {}",
                        carriers.join(", ")
                    ),
                )
            } else if missing.is_empty() {
                (
                    Status::SafeToRemove,
                    format!(
                        "rows and audited flips in every env; still set on {}",
                        carriers.join(", ")
                    ),
                )
            } else {
                (
                    Status::Dormant,
                    format!(
                        "the DB row decides in {env}, but {}; still set on {}",
                        missing.join(" and "),
                        carriers.join(", ")
                    ),
                )
            };
            Verdict {
                env: env.clone(),
                status,
                because,
            }
        })
        .collect()
}
