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

use std::collections::{BTreeMap, BTreeSet};

use serde::Serialize;

use crate::key::Env;
use crate::reported::{MASTER_KEY, VarState};

/// One live process as it reported itself.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Process {
    /// How it is named to an operator (`host pid 123`).
    pub name: String,
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
            let why = "not checked: the database's schema is not current".to_owned();
            for (id, title) in [MASTER_SWITCH, VARIABLES_DORMANT, MIGRATED_FLIPS] {
                checks.push(Check::judged(id, title, vec![why.clone()], String::new()));
            }
        }
    }
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
            let why = "not checked: the database's schema is not current".to_owned();
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
            failures.push(format!(
                "{}: no live process reports, so its variables cannot be checked",
                env.env
            ));
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
mod tests {
    use super::*;
    use crate::key::Envs;

    fn env(name: &str, processes: Vec<Process>, rows: &[(&str, u64)]) -> EnvEvidence {
        EnvEvidence {
            env: Envs::runbook().parse(name).unwrap(),
            processes,
            rows: rows.iter().map(|(f, _)| (*f).to_owned()).collect(),
            flips: rows.iter().map(|(f, n)| ((*f).to_owned(), *n)).collect(),
        }
    }

    fn process(name: &str, vars: &[(&str, VarState)]) -> Process {
        Process {
            name: name.to_owned(),
            layer: vars.iter().map(|(k, s)| ((*k).to_owned(), *s)).collect(),
        }
    }

    fn declared() -> Vec<(String, String)> {
        vec![("dark_mode".to_owned(), "FLAG_DARK_MODE".to_owned())]
    }

    fn healthy() -> Evidence {
        let on = || process("web pid 1", &[(MASTER_KEY, VarState::On)]);
        Evidence {
            declared: declared(),
            schema: Ok(()),
            db: Some(DbEvidence {
                envs: vec![
                    env("staging", vec![on()], &[("dark_mode", 1)]),
                    env("prod", vec![on()], &[("dark_mode", 2)]),
                ],
                broken_guards: vec![],
                undeclared_rows: vec![],
                superadmins: vec![("root".to_owned(), true)],
            }),
            code: Some(CodeEvidence::default()),
        }
    }

    fn item(evidence: &Evidence, id: &str) -> (Outcome, Vec<String>) {
        let check = checklist(evidence)
            .into_iter()
            .find(|c| c.id == id)
            .unwrap();
        (check.outcome, check.evidence)
    }

    #[test]
    fn a_healthy_world_passes_every_item() {
        let checks = checklist(&healthy());
        assert!(
            checks.iter().all(|c| c.outcome == Outcome::Pass),
            "{checks:#?}"
        );
        assert!(passes(&checks));
        assert_eq!(checks.len(), 8);
    }

    #[test]
    fn the_master_switch_must_be_seen_on_in_every_env() {
        let mut e = healthy();
        let db = e.db.as_mut().unwrap();
        db.envs[1].processes = vec![];
        db.envs[0]
            .processes
            .push(process("web pid 2", &[(MASTER_KEY, VarState::Off)]));
        let (outcome, evidence) = item(&e, "master_switch");
        assert_eq!(outcome, Outcome::Fail);
        assert_eq!(
            evidence,
            [
                "staging: not on for 1 of 2 live processes: web pid 2 (off)",
                "prod: no live process reports, so the switch cannot be confirmed",
            ]
        );
    }

    #[test]
    fn a_set_variable_without_a_row_is_not_dormant() {
        let mut e = healthy();
        let db = e.db.as_mut().unwrap();
        db.envs[1].rows.clear();
        db.envs[1].processes[0]
            .layer
            .insert("dark_mode".to_owned(), VarState::Off);
        let (outcome, evidence) = item(&e, "variables_dormant");
        assert_eq!(outcome, Outcome::Fail);
        assert_eq!(
            evidence,
            ["FLAG_DARK_MODE in prod: no DB row, so the variable still decides on web pid 1 (off)"]
        );
        // Behind a row, the same variable is dormant.
        let mut e = healthy();
        e.db.as_mut().unwrap().envs[1].processes[0]
            .layer
            .insert("dark_mode".to_owned(), VarState::On);
        assert_eq!(item(&e, "variables_dormant").0, Outcome::Pass);
        // ... but not on a process off the DB layer.
        let db = e.db.as_mut().unwrap();
        db.envs[1].processes[0]
            .layer
            .insert(MASTER_KEY.to_owned(), VarState::Off);
        assert_eq!(
            item(&e, "variables_dormant").1,
            [
                "FLAG_DARK_MODE in prod: a DB row, but the master switch is off where it is \
              set, so it still decides on web pid 1 (on)"
            ]
        );
        // An env nobody reports from cannot be confirmed.
        let mut e = healthy();
        e.db.as_mut().unwrap().envs[0].processes.clear();
        assert_eq!(
            item(&e, "variables_dormant").1,
            ["staging: no live process reports, so its variables cannot be checked"]
        );
    }

    #[test]
    fn a_row_without_an_audited_flip_fails() {
        let mut e = healthy();
        e.db.as_mut().unwrap().envs[0].flips.clear();
        let (outcome, evidence) = item(&e, "migrated_flips");
        assert_eq!(outcome, Outcome::Fail);
        assert_eq!(
            evidence,
            ["dark_mode in staging: a DB row but no console.flag.flip entry"]
        );
    }

    #[test]
    fn the_code_scan_is_skipped_without_a_tree_and_fails_on_a_hit() {
        let mut e = healthy();
        e.code = None;
        let checks = checklist(&e);
        assert!(passes(&checks), "a skipped scan is not a failure");
        assert_eq!(item(&e, "code_reads").0, Outcome::Skipped);
        // A line only the runbook's grep lists is shown, and is no failure.
        let mut code = CodeEvidence::default();
        code.grep_only
            .push("a.py:4: reads HOME, not a FLAG_* variable".to_owned());
        e.code = Some(code.clone());
        let (outcome, evidence) = item(&e, "code_reads");
        assert_eq!(outcome, Outcome::Pass);
        assert_eq!(
            evidence[1],
            "not a read, though the runbook's grep lists it: a.py:4: reads HOME, not a FLAG_* variable"
        );
        code.reads
            .push("a.py:3:5: FLAG_{…} (python, dynamic name)".to_owned());
        e.code = Some(code);
        assert_eq!(item(&e, "code_reads").0, Outcome::Fail);
        assert!(!passes(&checklist(&e)));
    }

    #[test]
    fn vexil_health_items_fail_with_their_evidence() {
        let mut e = healthy();
        let db = e.db.as_mut().unwrap();
        db.broken_guards = vec!["console_audit_log_no_update: missing".to_owned()];
        db.undeclared_rows = vec![("old_flag".to_owned(), "prod".to_owned())];
        db.superadmins.push(("alice".to_owned(), false));
        assert_eq!(
            item(&e, "audit_guards"),
            (
                Outcome::Fail,
                vec!["console_audit_log_no_update: missing".to_owned()]
            )
        );
        assert_eq!(
            item(&e, "undeclared_rows").1,
            ["old_flag in prod: a row, but the flags file does not declare it"]
        );
        assert_eq!(
            item(&e, "superadmin_totp").1,
            ["alice: no TOTP enrolled (vexil user totp alice)"]
        );
    }

    #[test]
    fn an_old_schema_fails_every_database_item_and_says_why() {
        let mut e = healthy();
        e.schema = Err("at version 3 of 5: run `vexil migrate`".to_owned());
        e.db = None;
        let checks = checklist(&e);
        let failed: Vec<&str> = checks
            .iter()
            .filter(|c| c.outcome == Outcome::Fail)
            .map(|c| c.id)
            .collect();
        assert_eq!(
            failed,
            [
                "master_switch",
                "variables_dormant",
                "migrated_flips",
                "migrations",
                "audit_guards",
                "undeclared_rows",
                "superadmin_totp"
            ]
        );
    }
}
