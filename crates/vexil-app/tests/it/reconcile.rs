//! Reconciliation end to end, both databases: a real process running with its master
//! switch off and `FLAG_DARK_MODE=1` (the runbook's Option B) while the row says off;
//! `App::reconciliation` finds it and offers on (not proposed: another process
//! follows the row); every refusal writes nothing; the
//! reconciling flip writes the row and its audit row (reason, `"reconcile": true`),
//! after which nothing is left to reconcile.

use vexil_app::{Actor, AppError, Flip, Reconcile, StepUp};
use vexil_core::audit::Via;
use vexil_core::reconcile::Cause;
use vexil_core::{Denied, Env, Role};
use vexil_store::{AuditFilter, Backend};
use vexil_testkit::{TestDb, audit_log, live_instance};

use crate::{TestApp, both};

/// Staging's rows and the live processes of staging: one that follows the rows, and
/// (with `option_b`) one started with the DB layer off and the variables on.
struct Staging {
    t: TestApp,
    /// superadmin.
    root: Actor,
    /// support, who may not reconcile.
    support: Actor,
    /// Kept running until the test ends.
    _processes: Vec<vexil::Flags>,
}

/// A process of staging on the DB layer; rows that say dark_mode off (written on, then
/// off) and console_billing (high risk) on; and with `option_b`, the runbook's
/// break-glass: a process started with the DB layer off, `FLAG_DARK_MODE=1` and
/// `FLAG_CONSOLE_BILLING=0`.
async fn staging(backend: Backend, option_b: bool) -> Staging {
    let test_db = TestDb::new(backend).await;
    let on_db = live_instance(
        test_db.url_string(),
        "staging",
        &[("FLAG_CONSOLE_FEATURE_FLAGS_DB", "1")],
    )
    .await;
    let t = TestApp::on(test_db, &[]);
    let root = t.account("root", Role::Superadmin).await;
    let support = t.account("sue", Role::Support).await;
    for (key, to) in [("dark_mode", false), ("console_billing", true)] {
        let flip = Flip {
            flag: crate::key(key),
            env: crate::env("staging"),
            expected_from: None,
            to,
            reason: None,
            via: Via::Console,
        };
        // dark_mode is off by default: write the row with an on-then-off pair.
        if !to {
            crate::flip_as(
                &t.app,
                &root,
                &Flip {
                    to: true,
                    ..flip.clone()
                },
            )
            .await
            .unwrap();
        }
        crate::flip_as(&t.app, &root, &flip).await.unwrap();
    }
    let mut processes = vec![on_db];
    if option_b {
        processes.push(
            live_instance(
                t.url(),
                "staging",
                &[
                    ("FLAG_CONSOLE_FEATURE_FLAGS_DB", "0"),
                    ("FLAG_DARK_MODE", "1"),
                    ("FLAG_CONSOLE_BILLING", "0"),
                ],
            )
            .await,
        );
    }
    Staging {
        t,
        root,
        support,
        _processes: processes,
    }
}

/// A reconciling flip of `flag_key` in staging, through the console.
fn ask<'a>(flag_key: &'a str, to: Option<bool>, reason: Option<&'a str>) -> Reconcile<'a> {
    Reconcile {
        flag: crate::key(flag_key),
        env: crate::env("staging"),
        to,
        reason,
        via: Via::Console,
    }
}

/// `request` as `actor`, refused: asserts that it wrote nothing, and returns the error.
async fn refused(s: &Staging, actor: &Actor, request: &Reconcile<'_>) -> AppError {
    let rows = audit_rows(&s.t).await;
    let error = match s.t.app.reconcile(actor, request, StepUp::None).await {
        Err(error) => error,
        Ok(flipped) => panic!("expected a refusal, got {flipped:?}"),
    };
    assert_eq!(audit_rows(&s.t).await, rows, "a refusal wrote an audit row");
    error
}

/// Why `error` refused a reconciliation.
#[track_caller]
fn why(error: AppError) -> String {
    match error {
        AppError::ReconcileRefused { why, .. } => why,
        other => panic!("expected a refusal, got {other:?}"),
    }
}

async fn audit_rows(t: &TestApp) -> usize {
    audit_log(t.app.db()).await.len()
}

async fn nothing_to_reconcile_while_every_process_follows_the_rows(backend: Backend) {
    let s = staging(backend, false).await;
    let before = s.t.app.reconciliation(None).await.unwrap();
    assert!(before.findings.is_empty(), "{before:#?}");
    assert!(before.master_off.is_empty());
}
both!(nothing_to_reconcile_while_every_process_follows_the_rows);

async fn option_b_is_found_and_offered_but_not_proposed(backend: Backend) {
    let s = staging(backend, true).await;
    let found = s.t.app.reconciliation(None).await.unwrap();
    assert_eq!(found.master_off.len(), 1);
    assert_eq!(found.master_off[0].0, Env::STAGING);
    let flags: Vec<&str> = found.findings.iter().map(|p| p.flag.as_str()).collect();
    assert_eq!(flags, ["dark_mode", "console_billing"]);
    let dark = &found.findings[0].finding;
    assert!(!dark.db_value);
    assert_eq!(dark.live, 2);
    // The staging process on the DB layer runs the row's off: a flip to on would
    // change it too, so it is offered but not proposed.
    assert_eq!(dark.flip_to, Some(true));
    assert_eq!((dark.following, dark.proposed), (1, false));
    assert_eq!(dark.divergent.len(), 1);
    assert_eq!(dark.divergent[0].cause, Cause::MasterOff);
    assert_eq!(dark.divergent[0].runs, Some(true));
    assert_eq!(
        dark.divergent[0].detail,
        "master switch off, its variable on gives on"
    );
}
both!(option_b_is_found_and_offered_but_not_proposed);

/// prod has no process at all: nothing said about it.
async fn an_env_with_no_process_has_nothing_to_reconcile(backend: Backend) {
    let s = staging(backend, true).await;
    let prod = s.t.app.reconciliation(Some(&Env::PROD)).await.unwrap();
    assert!(prod.findings.is_empty() && prod.master_off.is_empty());
}
both!(an_env_with_no_process_has_nothing_to_reconcile);

async fn a_reconcile_without_a_reason_is_refused(backend: Backend) {
    let s = staging(backend, true).await;
    let why = why(refused(&s, &s.root, &ask("dark_mode", None, None)).await);
    assert!(why.contains("a reason is required"), "{why}");
}
both!(a_reconcile_without_a_reason_is_refused);

async fn a_reconcile_to_the_value_of_the_row_is_refused(backend: Backend) {
    let s = staging(backend, true).await;
    let request = ask("dark_mode", Some(false), Some("INC-1"));
    let why = why(refused(&s, &s.root, &request).await);
    assert!(why.contains("the DB row already says off"), "{why}");
}
both!(a_reconcile_to_the_value_of_the_row_is_refused);

async fn a_flag_every_process_agrees_on_has_nothing_to_reconcile(backend: Backend) {
    let s = staging(backend, true).await;
    let request = ask("search_typo_tolerance", None, Some("INC-1"));
    let why = why(refused(&s, &s.root, &request).await);
    assert!(why.contains("nothing to reconcile"), "{why}");
}
both!(a_flag_every_process_agrees_on_has_nothing_to_reconcile);

/// Offered but not proposed: the value must be said.
async fn a_reconcile_that_changes_following_processes_needs_its_value_said(backend: Backend) {
    let s = staging(backend, true).await;
    let request = ask("dark_mode", None, Some("INC-1"));
    let why = why(refused(&s, &s.root, &request).await);
    assert!(
        why.contains("1 live process(es) run the row's value off: a flip to on changes them too"),
        "{why}"
    );
}
both!(a_reconcile_that_changes_following_processes_needs_its_value_said);

async fn support_may_not_reconcile(backend: Backend) {
    let s = staging(backend, true).await;
    let request = ask("dark_mode", None, Some("INC-1"));
    assert!(matches!(
        refused(&s, &s.support, &request).await,
        AppError::Denied(Denied::Forbidden { .. })
    ));
}
both!(support_may_not_reconcile);

async fn a_high_risk_reconcile_needs_elevation(backend: Backend) {
    let s = staging(backend, true).await;
    let request = ask("console_billing", Some(false), Some("INC-1"));
    assert!(matches!(
        refused(&s, &s.root, &request).await,
        AppError::Denied(Denied::ElevationRequired { .. })
    ));
}
both!(a_high_risk_reconcile_needs_elevation);

async fn an_undeclared_flag_is_not_reconciled(backend: Backend) {
    let s = staging(backend, true).await;
    let request = ask("no_such_flag", None, Some("INC-1"));
    assert!(matches!(
        refused(&s, &s.root, &request).await,
        AppError::UnknownFlag { .. }
    ));
}
both!(an_undeclared_flag_is_not_reconciled);

/// The reconciling flip, its value said, through the flip use case.
async fn a_reconciling_flip_is_audited_with_its_reason(backend: Backend) {
    let s = staging(backend, true).await;
    let (t, root) = (&s.t, &s.root);
    let flipped = t
        .app
        .reconcile(
            root,
            &ask("dark_mode", Some(true), Some("INC-7: break-glass on web-2")),
            StepUp::None,
        )
        .await
        .unwrap();
    assert!(!flipped.from && flipped.to);
    let filter = AuditFilter {
        before: Some(flipped.audit_id + 1),
        limit: 1,
        ..AuditFilter::default()
    };
    let row = t.app.db().audit_page(&filter).await.unwrap().remove(0);
    assert_eq!(row.action, "console.flag.flip");
    assert_eq!(row.admin_name.as_deref(), Some("root"));
    assert_eq!(row.payload["reconcile"], true);
    assert_eq!(row.payload["reason"], "INC-7: break-glass on web-2");
    assert_eq!(row.payload["via"], "console");
    assert_eq!(
        (&row.payload["from"], &row.payload["to"]),
        (&false.into(), &true.into())
    );
}
both!(a_reconciling_flip_is_audited_with_its_reason);

/// dark_mode reconciled to on, its value said, with a reason.
async fn reconcile_dark_mode(s: &Staging) {
    let request = ask("dark_mode", Some(true), Some("INC-7: break-glass on web-2"));
    s.t.app
        .reconcile(&s.root, &request, StepUp::None)
        .await
        .unwrap();
}

/// console_billing (high risk) reconciled to off, elevated.
async fn reconcile_console_billing(s: &Staging) {
    let request = ask("console_billing", Some(false), Some("INC-7"));
    let elevation = crate::elevate(&s.t.app, &s.root).await;
    s.t.app
        .reconcile(&s.root, &request, StepUp::Held(&elevation))
        .await
        .unwrap();
}

async fn a_reconciled_flag_is_found_no_more(backend: Backend) {
    let s = staging(backend, true).await;
    reconcile_dark_mode(&s).await;
    let found = s.t.app.reconciliation(None).await.unwrap();
    let flags: Vec<&str> = found.findings.iter().map(|p| p.flag.as_str()).collect();
    assert_eq!(flags, ["console_billing"]);
}
both!(a_reconciled_flag_is_found_no_more);

/// The process is still off the DB layer: said until its switch is back on.
async fn once_every_flag_is_reconciled_only_the_master_switch_is_said(backend: Backend) {
    let s = staging(backend, true).await;
    reconcile_dark_mode(&s).await;
    reconcile_console_billing(&s).await;
    let found = s.t.app.reconciliation(None).await.unwrap();
    assert!(found.findings.is_empty(), "{found:#?}");
    assert_eq!(found.master_off.len(), 1);
}
both!(once_every_flag_is_reconciled_only_the_master_switch_is_said);

/// Once reconciled, a second try has nothing to do and writes nothing.
async fn a_second_reconcile_has_nothing_to_do(backend: Backend) {
    let s = staging(backend, true).await;
    reconcile_dark_mode(&s).await;
    reconcile_console_billing(&s).await;
    let request = ask("dark_mode", None, Some("INC-7"));
    let why = why(refused(&s, &s.root, &request).await);
    assert!(why.contains("nothing to reconcile"), "{why}");
}
both!(a_second_reconcile_has_nothing_to_do);
