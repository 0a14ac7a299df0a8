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
//! that is `Unknown`, never `Removed`. And never "safe to remove" while removing it
//! would change the value on a live process: one off the DB layer (the runbook's
//! Option B, master switch off) whose variable differs from the YAML default.
//!
//! Heroku keeps config per app, so the verdict is also given per application (the
//! `VEXIL_APP` its processes report): the console's apps may drop a variable that
//! another app still reads. [`heroku_unset`] is the exact, silenced command.

use std::collections::BTreeSet;
use std::fmt;

use serde::Serialize;

use crate::key::Env;
use crate::reported::VarState;

/// One live process's report, as far as one flag's variable goes.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Reported {
    /// How it is named to an operator (`web.1 pid 42`).
    pub process: String,
    /// The application it reports as.
    pub app: String,
    /// Whether DB rows take part in its resolution (its master switch is on).
    pub db_layer: bool,
    /// How it parsed the variable.
    pub var: VarState,
}

/// What vexil knows about one flag in one env.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct Evidence {
    /// The DB row's value, if there is a row.
    pub row: Option<bool>,
    /// Audited `console.flag.flip` rows of the flag in this env.
    pub flips: u64,
    /// The flag's YAML default: the value a process falls back to without the variable.
    pub default: bool,
    /// Each live process of this env.
    pub reported: Vec<Reported>,
}

impl Evidence {
    /// The live processes that still carry the variable (set, to anything).
    pub fn carriers(&self) -> Vec<&str> {
        self.reported
            .iter()
            .filter(|r| r.var != VarState::Unset)
            .map(|r| r.process.as_str())
            .collect()
    }

    /// The applications of the live processes that carry the variable.
    pub fn carrier_apps(&self) -> BTreeSet<&str> {
        self.reported
            .iter()
            .filter(|r| r.var != VarState::Unset)
            .map(|r| r.app.as_str())
            .collect()
    }

    /// Every application reporting in this env, in name order.
    pub fn apps(&self) -> BTreeSet<&str> {
        self.reported.iter().map(|r| r.app.as_str()).collect()
    }

    /// The same evidence with only `app`'s processes.
    pub fn of_app(&self, app: &str) -> Evidence {
        Evidence {
            reported: self
                .reported
                .iter()
                .filter(|r| r.app == app)
                .cloned()
                .collect(),
            ..self.clone()
        }
    }

    /// The processes whose value would change if the variable went away: it decides
    /// there (no row, or the DB layer off) and differs from the default.
    fn would_change(&self) -> Vec<&Reported> {
        self.reported
            .iter()
            .filter(|r| {
                let decides = self.row.is_none() || !r.db_layer;
                let value = match r.var {
                    VarState::On => Some(true),
                    VarState::Off => Some(false),
                    VarState::Unset | VarState::Invalid => None,
                };
                decides && value.is_some_and(|v| v != self.default)
            })
            .collect()
    }
}

/// Where the variable of a flag stands in one env.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum Status {
    /// The variable decides the value somewhere (no DB row, or a process off the DB
    /// layer); removing it changes behaviour.
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

/// One env's verdict (or one application's in it) and the reason for it, in words.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Verdict {
    pub env: Env,
    /// `None` for the env as a whole.
    pub app: Option<String>,
    pub status: Status,
    pub because: String,
}

/// The verdict in each env, from the evidence of every env (the removal criterion
/// spans them all).
pub fn verdicts(evidence: &[(Env, Evidence)]) -> Vec<Verdict> {
    let missing = missing(evidence);
    evidence
        .iter()
        .map(|(env, e)| judge(env, None, e, &missing))
        .collect()
}

/// The verdict for each application reporting in each env, in env then name order:
/// what `heroku config:unset` may do to that app.
pub fn verdicts_by_app(evidence: &[(Env, Evidence)]) -> Vec<(Verdict, Evidence)> {
    let missing = missing(evidence);
    evidence
        .iter()
        .flat_map(|(env, e)| {
            let missing = &missing;
            e.apps().into_iter().map(move |app| {
                let of_app = e.of_app(app);
                (judge(env, Some(app), &of_app, missing), of_app)
            })
        })
        .collect()
}

/// The runbook's silenced command removing `variable` from Heroku app `app`
/// (`config:unset` echoes the app's whole config, secrets included). `None` when the
/// app's name is not one Heroku allows (lower-case letters, digits and dashes, a letter
/// first): a reported name is never put in a shell line unchecked.
pub fn heroku_unset(variable: &str, app: &str) -> Option<String> {
    heroku_app(app).then(|| format!("heroku config:unset {variable} --app {app} >/dev/null 2>&1"))
}

/// The runbook's silenced `config:set` of `variable` to `value` on `app`, with the
/// same check as [`heroku_unset`].
pub fn heroku_set(variable: &str, value: &str, app: &str) -> Option<String> {
    let value_ok = !value.is_empty() && value.bytes().all(|b| b.is_ascii_alphanumeric());
    (heroku_app(app) && value_ok)
        .then(|| format!("heroku config:set {variable}={value} --app {app} >/dev/null 2>&1"))
}

fn heroku_app(app: &str) -> bool {
    (3..=30).contains(&app.len())
        && app.starts_with(|c: char| c.is_ascii_lowercase())
        && app
            .bytes()
            .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'-')
}

/// What keeps every env from the runbook's criterion, in words.
fn missing(evidence: &[(Env, Evidence)]) -> Vec<String> {
    evidence
        .iter()
        .filter_map(|(env, e)| match (e.row, e.flips) {
            (None, _) => Some(format!("no DB row in {env}")),
            (Some(_), 0) => Some(format!("no audited flip in {env}")),
            _ => None,
        })
        .collect()
}

fn judge(env: &Env, app: Option<&str>, e: &Evidence, missing: &[String]) -> Verdict {
    let carriers = e.carriers();
    let changing = e.would_change();
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
    } else if !changing.is_empty() {
        let on: Vec<String> = changing
            .iter()
            .map(|r| {
                let why = if e.row.is_none() {
                    "no DB row"
                } else {
                    "master switch off"
                };
                format!("{} ({why})", r.process)
            })
            .collect();
        (
            Status::InUse,
            format!(
                "the variable decides on {}: removing it would turn the flag {}",
                on.join(", "),
                if e.default { "ON" } else { "OFF" }
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
        app: app.map(str::to_owned),
        status,
        because,
    }
}
