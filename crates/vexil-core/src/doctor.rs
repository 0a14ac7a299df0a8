//! The runbook's GA checklist and vexil's own health as a pure judgement:
//! from the evidence vexil gathers (live processes' reports, rows, audited flips,
//! the schema, the audit log's guards, accounts, a code scan's hits), each item
//! passes or fails with the evidence behind it. `vexil doctor` prints it; exit 0
//! only when nothing fails.
//!
//! What cannot be confirmed fails, and says why: an env with no live process
//! reporting cannot show its master switch on, so the GA gate stays shut. The one
//! item that can be skipped is the code scan, which needs source trees to read.
//!
//! The items, in order: the master switch on in every env (by the live processes'
//! reports), every `FLAG_*` variable still set dormant behind a row, a
//! `console.flag.flip` entry for each migrated row, no direct `FLAG_*` reads in the
//! code scanned, the migrations current, the audit log's triggers and functions as
//! installed and its chain intact, no rows of undeclared flags, and TOTP for every
//! enabled superadmin. The items that need the schema fail, saying so, when it is not
//! current.

mod gone;

use std::collections::{BTreeMap, BTreeSet};

use serde::Serialize;

use crate::key::Env;
use crate::reported::{MASTER_KEY, VarState};

/// One live process as it reported itself.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Process {
    /// How it is named to an operator (`host pid 123`).
    pub name: String,
    /// The application it reports as (`VEXIL_APP`).
    pub app: String,
    /// Its master switch (under [`MASTER_KEY`]) and the variables of the flags it
    /// declares that are set; a flag it does not list is unset there.
    pub layer: BTreeMap<String, VarState>,
}

impl Process {
    fn state(&self, key: &str) -> VarState {
        self.layer.get(key).copied().unwrap_or(VarState::Unset)
    }
}

/// What one env holds.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct EnvEvidence {
    pub env: Env,
    /// Its live processes.
    pub processes: Vec<Process>,
    /// The flags with a DB row in this env.
    pub rows: BTreeSet<String>,
    /// Audited `console.flag.flip` rows per flag in this env.
    pub flips: BTreeMap<String, u64>,
}

/// What the database says about itself and its accounts.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct DbEvidence {
    pub envs: Vec<EnvEvidence>,
    /// The audit log's guards (triggers) that are missing or disabled, in words.
    pub broken_guards: Vec<String>,
    /// `(flag, env)` of rows no declaration claims.
    pub undeclared_rows: Vec<(String, String)>,
    /// Every enabled superadmin and whether it has TOTP enrolled.
    pub superadmins: Vec<(String, bool)>,
}

/// Everything the checklist is judged on.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Evidence {
    /// The declared flags: `(key, FLAG_<KEY>)`, in file order.
    pub declared: Vec<(String, String)>,
    /// `Ok` when the schema is current; else why not. Without it, nothing below can
    /// be read.
    pub schema: Result<(), String>,
    /// `None` when the schema is not current.
    pub db: Option<DbEvidence>,
    /// What the code scan found; `None` when no source tree was given.
    pub code: Option<CodeEvidence>,
    /// Variables that must be set on no live process (`--gone`), by name.
    pub gone: Vec<String>,
}

/// What a scan of source trees found, each line ready for an operator.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct CodeEvidence {
    /// Each read of a `FLAG_*` variable (`path:line:col: …`); a literal name and one
    /// built at run time alike, since either reads a flag's variable around vexil.
    pub reads: Vec<String>,
    /// Each line the runbook's grep lists that reads no `FLAG_*` variable, and why
    /// (`path:line: …`): not a failure, shown so that the grep's answer and this
    /// item's can be told apart.
    pub grep_only: Vec<String>,
}

/// An item's outcome.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum Outcome {
    Pass,
    Fail,
    /// Not asked for (the code scan without a source tree); not a failure.
    Skipped,
}

impl Outcome {
    pub fn as_str(self) -> &'static str {
        match self {
            Outcome::Pass => "pass",
            Outcome::Fail => "FAIL",
            Outcome::Skipped => "skipped",
        }
    }
}

/// One checklist item and the evidence for its outcome: what failed, or on a pass
/// what was confirmed.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Check {
    /// Stable, for scripts: `master_switch`, `variables_dormant`, …
    pub id: &'static str,
    pub title: &'static str,
    pub outcome: Outcome,
    pub evidence: Vec<String>,
}

impl Check {
    fn judged(id: &'static str, title: &'static str, failures: Vec<String>, ok: String) -> Check {
        if failures.is_empty() {
            Check {
                id,
                title,
                outcome: Outcome::Pass,
                evidence: vec![ok],
            }
        } else {
            Check {
                id,
                title,
                outcome: Outcome::Fail,
                evidence: failures,
            }
        }
    }
}

/// The checklist, GA items first (the runbook's order), then vexil's own health.
pub fn checklist(evidence: &Evidence) -> Vec<Check> {
    let mut checks = Vec::new();
    match &evidence.db {
        Some(db) => {
            checks.push(master_switch(db));
            checks.push(variables_dormant(&evidence.declared, db));
            checks.push(migrated_flips(db));
        }
        None => {
            let why = SCHEMA_NOT_CURRENT.to_owned();
            for (id, title) in [MASTER_SWITCH, VARIABLES_DORMANT, MIGRATED_FLIPS] {
                checks.push(Check::judged(id, title, vec![why.clone()], String::new()));
            }
        }
    }
    checks.push(gone::variables_gone(
        &evidence.gone,
        &evidence.declared,
        evidence.db.as_ref(),
    ));
    checks.push(code_reads(evidence.code.as_ref()));
    checks.push(Check::judged(
        "migrations",
        "the database's migrations are current",
        evidence.schema.clone().err().into_iter().collect(),
        "every migration this vexil knows is applied".to_owned(),
    ));
    match &evidence.db {
        Some(db) => {
            checks.push(audit_guards(db));
            checks.push(undeclared_rows(db));
            checks.push(superadmin_totp(db));
        }
        None => {
            let why = SCHEMA_NOT_CURRENT.to_owned();
            for (id, title) in [AUDIT_GUARDS, UNDECLARED_ROWS, SUPERADMIN_TOTP] {
                checks.push(Check::judged(id, title, vec![why.clone()], String::new()));
            }
        }
    }
    checks
}

/// Whether the checklist passes: no item failed (a skipped one is not a failure).
pub fn passes(checks: &[Check]) -> bool {
    checks.iter().all(|c| c.outcome != Outcome::Fail)
}

/// Why an item that needs the database's tables was not judged.
const SCHEMA_NOT_CURRENT: &str = "not checked: the database's schema is not current";

/// Why an env's variables cannot be judged: no live process of it reports them.
fn variables_unreported(env: &EnvEvidence) -> String {
    format!(
        "{}: no live process reports, so its variables cannot be checked",
        env.env
    )
}

const MASTER_SWITCH: (&str, &str) = (
    "master_switch",
    "FLAG_CONSOLE_FEATURE_FLAGS_DB on in every env (live processes' reports)",
);
const VARIABLES_DORMANT: (&str, &str) = (
    "variables_dormant",
    "every FLAG_* variable still set is dormant (a DB row decides)",
);
const MIGRATED_FLIPS: (&str, &str) = (
    "migrated_flips",
    "a console.flag.flip entry for each migrated flag, in each env it has a row",
);
const AUDIT_GUARDS: (&str, &str) = (
    "audit_guards",
    "the audit log's triggers and their functions are as installed, and its hash chain is intact",
);
const UNDECLARED_ROWS: (&str, &str) = (
    "undeclared_rows",
    "no DB rows for flags the flags file does not declare",
);
const SUPERADMIN_TOTP: (&str, &str) = (
    "superadmin_totp",
    "every enabled superadmin has TOTP enrolled",
);

fn master_switch(db: &DbEvidence) -> Check {
    let (id, title) = MASTER_SWITCH;
    let mut failures = Vec::new();
    let mut confirmed = Vec::new();
    for env in &db.envs {
        if env.processes.is_empty() {
            failures.push(format!(
                "{}: no live process reports, so the switch cannot be confirmed",
                env.env
            ));
            continue;
        }
        let not_on: Vec<String> = env
            .processes
            .iter()
            .filter(|p| p.state(MASTER_KEY) != VarState::On)
            .map(|p| format!("{} ({})", p.name, p.state(MASTER_KEY).as_str()))
            .collect();
        if not_on.is_empty() {
            confirmed.push(format!("{}: {} live", env.env, env.processes.len()));
        } else {
            failures.push(format!(
                "{}: not on for {} of {} live processes: {}",
                env.env,
                not_on.len(),
                env.processes.len(),
                not_on.join(", ")
            ));
        }
    }
    Check::judged(
        id,
        title,
        failures,
        format!("on for every live process ({})", confirmed.join("; ")),
    )
}

/// A variable set to anything decides where no row does: `FLAG_X=0` on a flag whose
/// default is on matters as much as `FLAG_X=1`. Stricter than the runbook's "flags
/// previously set to 1", on purpose. A variable also decides on a process whose
/// master switch is off, row or not. An env with no live process cannot be checked.
fn variables_dormant(declared: &[(String, String)], db: &DbEvidence) -> Check {
    let (id, title) = VARIABLES_DORMANT;
    let mut failures = Vec::new();
    let mut dormant = 0;
    for env in &db.envs {
        if env.processes.is_empty() {
            failures.push(variables_unreported(env));
            continue;
        }
        for (key, variable) in declared {
            let set = |p: &&Process| p.state(key) != VarState::Unset;
            let named = |p: &Process| format!("{} ({})", p.name, p.state(key).as_str());
            let set_on: Vec<&Process> = env.processes.iter().filter(set).collect();
            if set_on.is_empty() {
                continue;
            }
            let deciding: Vec<String> = set_on
                .iter()
                .filter(|p| !env.rows.contains(key) || p.state(MASTER_KEY) != VarState::On)
                .map(|p| named(p))
                .collect();
            if deciding.is_empty() {
                dormant += 1;
            } else if env.rows.contains(key) {
                failures.push(format!(
                    "{variable} in {}: a DB row, but the master switch is off where it is \
                     set, so it still decides on {}",
                    env.env,
                    deciding.join(", ")
                ));
            } else {
                failures.push(format!(
                    "{variable} in {}: no DB row, so the variable still decides on {}",
                    env.env,
                    deciding.join(", ")
                ));
            }
        }
    }
    Check::judged(
        id,
        title,
        failures,
        format!("{dormant} variable(s) still set, each behind a DB row"),
    )
}

fn migrated_flips(db: &DbEvidence) -> Check {
    let (id, title) = MIGRATED_FLIPS;
    let mut failures = Vec::new();
    let mut migrated = 0;
    for env in &db.envs {
        for flag in &env.rows {
            migrated += 1;
            if env.flips.get(flag).copied().unwrap_or(0) == 0 {
                failures.push(format!(
                    "{flag} in {}: a DB row but no console.flag.flip entry",
                    env.env
                ));
            }
        }
    }
    Check::judged(
        id,
        title,
        failures,
        format!("{migrated} row(s), each with an audited flip"),
    )
}

fn code_reads(code: Option<&CodeEvidence>) -> Check {
    let id = "code_reads";
    let title = "no direct reads of FLAG_* variables in the source trees given";
    let Some(code) = code else {
        return Check {
            id,
            title,
            outcome: Outcome::Skipped,
            evidence: vec!["no source tree given (--code DIR)".to_owned()],
        };
    };
    let mut check = Check::judged(
        id,
        title,
        code.reads.clone(),
        "none found (files ignored by .gitignore are not read)".to_owned(),
    );
    check.evidence.extend(
        code.grep_only
            .iter()
            .map(|line| format!("not a read, though the runbook's grep lists it: {line}")),
    );
    check
}

fn audit_guards(db: &DbEvidence) -> Check {
    let (id, title) = AUDIT_GUARDS;
    Check::judged(
        id,
        title,
        db.broken_guards.clone(),
        "every guard in place".to_owned(),
    )
}

fn undeclared_rows(db: &DbEvidence) -> Check {
    let (id, title) = UNDECLARED_ROWS;
    let failures = db
        .undeclared_rows
        .iter()
        .map(|(flag, env)| {
            format!("{flag} in {env}: a row, but the flags file does not declare it")
        })
        .collect();
    Check::judged(id, title, failures, "every row is declared".to_owned())
}

fn superadmin_totp(db: &DbEvidence) -> Check {
    let (id, title) = SUPERADMIN_TOTP;
    let failures = db
        .superadmins
        .iter()
        .filter(|(_, enrolled)| !enrolled)
        .map(|(name, _)| format!("{name}: no TOTP enrolled (vexil user totp {name})"))
        .collect();
    Check::judged(
        id,
        title,
        failures,
        format!("{} superadmin(s), each enrolled", db.superadmins.len()),
    )
}

#[cfg(test)]
mod tests;
