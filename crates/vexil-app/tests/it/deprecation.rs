//! The deprecation table from real evidence: live `vexil::Flags` handles reporting
//! their variables (one per env), rows and audited flips written through the flip use
//! case and by direct SQL, on both databases.

use vexil_app::Flip;
use vexil_core::audit::Via;
use vexil_core::deprecation::Status;
use vexil_core::{Env, Role};
use vexil_store::Backend;
use vexil_testkit::{TestDb, live_instance};

use crate::{TestApp, both};

async fn each_status_from_real_evidence(backend: Backend) {
    let test_db = TestDb::new(backend).await;
    let statuses = |table: &[vexil_app::FlagDeprecation], key: &str| {
        let flag = table.iter().find(|f| f.key == key).unwrap();
        flag.envs
            .iter()
            .map(|(verdict, _)| verdict.status)
            .collect::<Vec<_>>()
    };
    // Before any process reports: nothing to judge by.
    let t = TestApp::on(TestDb::new(backend).await, &[]);
    let table = t.app.deprecation(None).await.unwrap();
    assert_eq!(
        statuses(&table, "dark_mode"),
        [Status::Unknown, Status::Unknown]
    );

    let vars = [
        ("FLAG_CONSOLE_FEATURE_FLAGS_DB", "1"),
        ("FLAG_DARK_MODE", "1"),
        ("FLAG_SEARCH_INDEX_V3", "on"),
        ("FLAG_EMAIL_DIGEST_BATCHING", "1"),
    ];
    let staging = live_instance(test_db.url_string(), "staging", &vars).await;
    let prod = live_instance(test_db.url_string(), "prod", &vars[..3]).await;
    let t = TestApp::on(test_db, &[]);
    let root = t.account("root", Role::Superadmin).await;
    // dark_mode: flipped in both envs through vexil; search_index_v3: in staging
    // only; email_digest_batching: never (and not set in prod).
    for (key, env) in [
        ("dark_mode", "staging"),
        ("dark_mode", "prod"),
        ("search_index_v3", "staging"),
    ] {
        let flip = Flip {
            flag: crate::key(key),
            env: crate::env(env),
            expected_from: None,
            // The value the row takes differs from the one in force: staging's is
            // this app's own (empty) variables, prod's the reported `on`.
            to: env == "staging",
            reason: None,
            via: Via::Cli,
        };
        crate::flip_as(&t.app, &root, &flip).await.unwrap();
    }
    let table = t.app.deprecation(None).await.unwrap();
    assert_eq!(
        statuses(&table, "dark_mode"),
        [Status::SafeToRemove, Status::SafeToRemove]
    );
    assert_eq!(
        statuses(&table, "search_index_v3"),
        [Status::Dormant, Status::InUse]
    );
    assert_eq!(
        statuses(&table, "email_digest_batching"),
        [Status::InUse, Status::Removed]
    );
    // A flag nobody sets anywhere: removed in both.
    assert_eq!(
        statuses(&table, "csv_export_streaming"),
        [Status::Removed, Status::Removed]
    );
    let dark = table.iter().find(|f| f.key == "dark_mode").unwrap();
    assert_eq!(dark.variable, "FLAG_DARK_MODE");
    let (verdict, evidence) = &dark.envs[1];
    assert_eq!((evidence.row, evidence.flips), (Some(false), 1));
    assert!(
        verdict
            .because
            .starts_with("rows and audited flips in every env; still set on ")
    );

    // The runbook's direct SQL is audited by the database: its flip counts too.
    t.execute(
        "INSERT INTO console_feature_flags (flag_key, env, value, updated_at) \
         VALUES ('search_index_v3', 'prod', 1, CURRENT_TIMESTAMP)",
    )
    .await;
    let table = t.app.deprecation(Some(&Env::PROD)).await.unwrap();
    assert_eq!(statuses(&table, "search_index_v3"), [Status::SafeToRemove]);
    drop((staging, prod));
}
both!(each_status_from_real_evidence);
