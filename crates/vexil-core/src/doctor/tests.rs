//! The checklist item by item, on evidence built by hand.

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
        app: "raxx-console-prod".to_owned(),
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
        gone: vec![],
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
        checks
            .iter()
            .all(|c| c.outcome == Outcome::Pass || c.id == "variables_gone"),
        "{checks:#?}"
    );
    assert!(passes(&checks));
    assert_eq!(checks.len(), 9);
}

/// The feature's own gate must be gone from every app, not merely dormant.
#[test]
fn a_variable_named_gone_fails_while_a_process_has_it() {
    let mut e = healthy();
    assert_eq!(item(&e, "variables_gone").0, Outcome::Skipped);
    e.gone = vec![
        "FLAG_CONSOLE_FLAG_MGMT".to_owned(),
        "FLAG_DARK_MODE".to_owned(),
    ];
    assert_eq!(
        item(&e, "variables_gone"),
        (
            Outcome::Pass,
            vec![
                "FLAG_CONSOLE_FLAG_MGMT, FLAG_DARK_MODE set on none of 2 live process(es)"
                    .to_owned()
            ]
        )
    );
    let db = e.db.as_mut().unwrap();
    db.envs[1].processes[0]
        .layer
        .insert("FLAG_CONSOLE_FLAG_MGMT".to_owned(), VarState::Off);
    db.envs[0].processes[0]
        .layer
        .insert("dark_mode".to_owned(), VarState::On);
    assert_eq!(
        item(&e, "variables_gone"),
        (
            Outcome::Fail,
            vec![
                "FLAG_DARK_MODE in staging: still set on web pid 1 of raxx-console-prod".to_owned(),
                "FLAG_CONSOLE_FLAG_MGMT in prod: still set on web pid 1 of raxx-console-prod"
                    .to_owned(),
            ]
        )
    );
    // No live process in an env: nothing confirms it is gone there.
    e.db.as_mut().unwrap().envs[0].processes.clear();
    assert!(item(&e, "variables_gone").1[0].starts_with("staging: no live process reports"));
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
