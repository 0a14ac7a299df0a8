//! The deprecation table's verdicts: each status with the evidence for it and
//! against it.

use vexil_core::Env;
use vexil_core::VarState::{Invalid, Off, On, Unset};
use vexil_core::deprecation::{
    Evidence, Reported, Status, heroku_set, heroku_unset, verdicts, verdicts_by_app,
};

/// Processes of one app on the DB layer; the flag's default is off.
fn evidence(row: Option<bool>, flips: u64, reported: &[(&str, vexil_core::VarState)]) -> Evidence {
    Evidence {
        row,
        flips,
        default: false,
        reported: reported
            .iter()
            .map(|(name, state)| Reported {
                process: (*name).to_owned(),
                app: "raxx-console-prod".to_owned(),
                db_layer: true,
                var: *state,
            })
            .collect(),
    }
}

fn statuses(staging: Evidence, prod: Evidence) -> (Status, Status) {
    let v = verdicts(&[(Env::STAGING, staging), (Env::PROD, prod)]);
    (v[0].status, v[1].status)
}

#[test]
fn each_status_and_the_evidence_that_tips_it() {
    // No row, variable set: in use (removing it would change the value).
    let in_use = evidence(None, 0, &[("web.1", On), ("web.2", On)]);
    // A row and a flip, variable set: dormant until the other env has both too.
    let flipped = evidence(Some(true), 1, &[("web.1", On)]);
    assert_eq!(
        statuses(in_use.clone(), flipped.clone()),
        (Status::InUse, Status::Dormant)
    );
    // Rows and flips in both envs: safe to remove wherever it is still set.
    assert_eq!(
        statuses(flipped.clone(), flipped.clone()),
        (Status::SafeToRemove, Status::SafeToRemove)
    );
    // A row written by SQL without an audited flip is not enough (the runbook asks
    // for the audit log's word).
    let sql_row = evidence(Some(true), 0, &[("web.1", On)]);
    assert_eq!(
        statuses(flipped.clone(), sql_row),
        (Status::Dormant, Status::Dormant)
    );
    // Nobody has it set: removed, whatever the rows.
    let gone = evidence(Some(true), 3, &[("web.1", Unset), ("web.2", Unset)]);
    assert_eq!(
        statuses(gone.clone(), in_use.clone()),
        (Status::Removed, Status::InUse)
    );
    // An invalid or off value is still set: a carrier.
    let invalid = evidence(Some(true), 1, &[("web.1", Invalid), ("web.2", Off)]);
    let v = verdicts(&[(Env::STAGING, invalid), (Env::PROD, flipped.clone())]);
    assert_eq!(v[0].status, Status::SafeToRemove);
    assert_eq!(
        v[0].because,
        "rows and audited flips in every env; still set on web.1, web.2"
    );
    // No live process reporting: unknown, never "removed".
    let silent = evidence(Some(true), 1, &[]);
    let v = verdicts(&[(Env::STAGING, silent), (Env::PROD, flipped)]);
    assert_eq!(v[0].status, Status::Unknown);
    assert_eq!(
        v[0].because,
        "no live process of staging reports its variables"
    );
    assert_eq!(
        v[1].status,
        Status::SafeToRemove,
        "its own criteria still hold"
    );
}

#[test]
fn a_dormant_verdict_names_what_is_missing_and_where_it_is_set() {
    let staging = evidence(Some(true), 2, &[("worker.1", On), ("web.1", Unset)]);
    let prod = evidence(None, 0, &[("web.1", Unset)]);
    let v = verdicts(&[(Env::STAGING, staging), (Env::PROD, prod)]);
    assert_eq!(v[0].status, Status::Dormant);
    assert_eq!(
        v[0].because,
        "the DB row decides in staging, but no DB row in prod; still set on worker.1"
    );
    assert_eq!(v[1].status, Status::Removed);
    assert_eq!(
        v[1].because,
        "no live process of prod has it set (1 reporting)"
    );
}

/// The runbook's Option B on one process (master switch off, the variable on): the
/// variable decides there, so removing it would change the value, whatever the rows
/// and flips say.
#[test]
fn a_process_off_the_db_layer_keeps_its_variable_in_use() {
    let flipped = evidence(Some(true), 1, &[("web.1", On)]);
    let mut option_b = flipped.clone();
    option_b.reported.push(Reported {
        process: "web.2 pid 7".to_owned(),
        app: "raxx-console-prod".to_owned(),
        db_layer: false,
        var: On,
    });
    let v = verdicts(&[
        (Env::STAGING, flipped.clone()),
        (Env::PROD, option_b.clone()),
    ]);
    assert_eq!(v[1].status, Status::InUse);
    assert_eq!(
        v[1].because,
        "the variable decides on web.2 pid 7 (master switch off): removing it would turn the flag OFF"
    );
    // The same process with the variable at the default changes nothing by losing it.
    option_b.reported[1].var = Off;
    let v = verdicts(&[(Env::STAGING, flipped), (Env::PROD, option_b)]);
    assert_eq!(v[1].status, Status::SafeToRemove);
}

/// Heroku config is per app: the console's app may drop a variable that another app
/// (Raptor, still reading it) keeps in use.
#[test]
fn each_app_has_its_own_verdict_and_command() {
    let mut prod = evidence(Some(true), 1, &[("console.1", On)]);
    prod.reported.push(Reported {
        process: "api.1".to_owned(),
        app: "raxx-api-prod".to_owned(),
        db_layer: false,
        var: On,
    });
    let staging = evidence(Some(true), 1, &[("console.1", Unset)]);
    let envs = [(Env::STAGING, staging), (Env::PROD, prod)];
    assert_eq!(verdicts(&envs)[1].status, Status::InUse);
    let by_app: Vec<(String, Option<String>, Status)> = verdicts_by_app(&envs)
        .into_iter()
        .map(|(v, _)| (v.env.to_string(), v.app, v.status))
        .collect();
    assert_eq!(
        by_app,
        [
            (
                "staging".to_owned(),
                Some("raxx-console-prod".to_owned()),
                Status::Removed
            ),
            (
                "prod".to_owned(),
                Some("raxx-api-prod".to_owned()),
                Status::InUse
            ),
            (
                "prod".to_owned(),
                Some("raxx-console-prod".to_owned()),
                Status::SafeToRemove
            ),
        ]
    );
    assert_eq!(
        heroku_unset("FLAG_DARK_MODE", "raxx-console-prod").as_deref(),
        Some("heroku config:unset FLAG_DARK_MODE --app raxx-console-prod >/dev/null 2>&1")
    );
    assert_eq!(
        heroku_set("FLAG_CONSOLE_FEATURE_FLAGS_DB", "1", "raxx-console-prod").as_deref(),
        Some(
            "heroku config:set FLAG_CONSOLE_FEATURE_FLAGS_DB=1 --app raxx-console-prod >/dev/null 2>&1"
        )
    );
    // A reported name that is no Heroku app name never reaches a shell line.
    for bad in ["web; rm -rf /", "Web", "a", "x$(id)", "raxx app"] {
        assert_eq!(heroku_unset("FLAG_DARK_MODE", bad), None, "{bad}");
    }
}
