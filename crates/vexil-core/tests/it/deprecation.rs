//! The deprecation table's verdicts: each status with the evidence for it and
//! against it.

use vexil_core::Env;
use vexil_core::VarState::{Invalid, Off, On, Unset};
use vexil_core::deprecation::{Evidence, Status, verdicts};

fn evidence(row: Option<bool>, flips: u64, reported: &[(&str, vexil_core::VarState)]) -> Evidence {
    Evidence {
        row,
        flips,
        reported: reported
            .iter()
            .map(|(name, state)| ((*name).to_owned(), *state))
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
