//! Reconciliation end to end, both databases: a real process running with its master
//! switch off and `FLAG_DARK_MODE=1` (the runbook's Option B) while the row says off;
//! `App::reconciliation` finds it and offers on (not proposed: another process
//! follows the row); every refusal writes nothing; the
//! reconciling flip writes the row and its audit row (reason, `"reconcile": true`),
//! after which nothing is left to reconcile.

use vexil_app::{AppError, Flip, Reconcile};
use vexil_core::audit::Via;
use vexil_core::reconcile::Cause;
use vexil_core::{Denied, Env, Role};
use vexil_store::{AuditFilter, Backend};
use vexil_testkit::{TestDb, audit_log, live_instance};

use crate::{TestApp, both};

async fn audit_rows(t: &TestApp) -> usize {
    audit_log(t.app.db()).await.len()
}

async fn option_b_is_found_and_reconciled(backend: Backend) {
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
    // The row says off in staging, and on for console_billing (high risk).
    for (key, to) in [("dark_mode", false), ("console_billing", true)] {
        let flip = Flip {
            flag_key: key,
            env: "staging",
            expected_from: None,
            to,
            elevated: true,
            reason: None,
            via: Via::Console,
        };
        // dark_mode is off by default: write the row with an on-then-off pair.
        if !to {
            t.app
                .flip(
                    &root,
                    &Flip {
                        to: true,
                        ..flip.clone()
                    },
                )
                .await
                .unwrap();
        }
        t.app.flip(&root, &flip).await.unwrap();
    }
    let before = t.app.reconciliation(None).await.unwrap();
    assert!(before.findings.is_empty(), "{before:#?}");
    assert!(before.master_off.is_empty());

    // Break-glass: a process started with the DB layer off and the variable on.
    let option_b = live_instance(
        t.url(),
        "staging",
        &[
            ("FLAG_CONSOLE_FEATURE_FLAGS_DB", "0"),
            ("FLAG_DARK_MODE", "1"),
            ("FLAG_CONSOLE_BILLING", "0"),
        ],
    )
    .await;
    let found = t.app.reconciliation(None).await.unwrap();
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
    // prod has no process at all: nothing said about it.
    let prod = t.app.reconciliation(Some(&Env::PROD)).await.unwrap();
    assert!(prod.findings.is_empty() && prod.master_off.is_empty());

    // Refusals, each writing nothing.
    let rows = audit_rows(&t).await;
    let ask = |flag_key, to, reason, elevated| Reconcile {
        flag_key,
        env: "staging",
        to,
        reason,
        elevated,
        via: Via::Console,
    };
    let refused = |r: Result<vexil_app::Flipped, AppError>| match r {
        Err(AppError::ReconcileRefused { why, .. }) => why,
        other => panic!("expected a refusal, got {other:?}"),
    };
    let why = refused(
        t.app
            .reconcile(&root, &ask("dark_mode", None, None, false))
            .await,
    );
    assert!(why.contains("a reason is required"), "{why}");
    let why = refused(
        t.app
            .reconcile(&root, &ask("dark_mode", Some(false), Some("INC-1"), false))
            .await,
    );
    assert!(why.contains("the DB row already says off"), "{why}");
    let why = refused(
        t.app
            .reconcile(
                &root,
                &ask("search_typo_tolerance", None, Some("INC-1"), false),
            )
            .await,
    );
    assert!(why.contains("nothing to reconcile"), "{why}");
    let why = refused(
        t.app
            .reconcile(&root, &ask("dark_mode", None, Some("INC-1"), false))
            .await,
    );
    assert!(
        why.contains("1 live process(es) run the row's value off: a flip to on changes them too"),
        "{why}"
    );
    assert!(matches!(
        t.app
            .reconcile(&support, &ask("dark_mode", None, Some("INC-1"), false))
            .await,
        Err(AppError::Denied(Denied::Forbidden { .. }))
    ));
    assert!(matches!(
        t.app
            .reconcile(
                &root,
                &ask("console_billing", Some(false), Some("INC-1"), false)
            )
            .await,
        Err(AppError::Denied(Denied::ElevationRequired { .. }))
    ));
    assert!(matches!(
        t.app
            .reconcile(&root, &ask("no_such_flag", None, Some("INC-1"), false))
            .await,
        Err(AppError::UnknownFlag { .. })
    ));
    assert_eq!(audit_rows(&t).await, rows, "a refusal wrote an audit row");

    // The reconciling flip, its value said, through the flip use case.
    let flipped = t
        .app
        .reconcile(
            &root,
            &ask(
                "dark_mode",
                Some(true),
                Some("INC-7: break-glass on web-2"),
                false,
            ),
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
    // dark_mode is reconciled; console_billing (high risk, elevated) goes too.
    let found = t.app.reconciliation(None).await.unwrap();
    let flags: Vec<&str> = found.findings.iter().map(|p| p.flag.as_str()).collect();
    assert_eq!(flags, ["console_billing"]);
    t.app
        .reconcile(
            &root,
            &ask("console_billing", Some(false), Some("INC-7"), true),
        )
        .await
        .unwrap();
    let found = t.app.reconciliation(None).await.unwrap();
    assert!(found.findings.is_empty(), "{found:#?}");
    // The process is still off the DB layer: said until its switch is back on.
    assert_eq!(found.master_off.len(), 1);
    // Once reconciled, a second try has nothing to do and writes nothing.
    let rows = audit_rows(&t).await;
    let why = refused(
        t.app
            .reconcile(&root, &ask("dark_mode", None, Some("INC-7"), false))
            .await,
    );
    assert!(why.contains("nothing to reconcile"), "{why}");
    assert_eq!(audit_rows(&t).await, rows);
    drop((on_db, option_b));
}
both!(option_b_is_found_and_reconciled);
