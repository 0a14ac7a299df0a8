//! Instance reports and propagation receipts: a process holding a `vexil::Flags`
//! handle reports itself, and `receipts` tells which live processes apply a flip.

use std::collections::BTreeMap;
use std::time::{Duration, SystemTime};

use vexil_app::{AppError, ReceiptState, StepUp};
use vexil_core::audit::Via;
use vexil_core::{EnvSnapshot, Role};
use vexil_store::{AuditFilter, Backend, InstanceReport};
use vexil_testkit::{TestDb, example_flags, reported_after};

use crate::{TestApp, both};

async fn a_live_process_reports_itself_and_which_flip_it_applies(backend: Backend) {
    let test_db = TestDb::new(backend).await;
    let view = vexil::Flags::builder()
        .env("staging")
        .flag_set(example_flags())
        .env_vars(EnvSnapshot::capture([
            ("FLAG_CONSOLE_FEATURE_FLAGS_DB", "1"),
            ("FLAG_DARK_MODE", "on"),
            ("FLAG_SEARCH_INDEX_V3", "maybe"),
            ("FLAG_NOT_DECLARED", "1"),
        ]))
        .database_url(test_db.url_string())
        .application("checkout")
        .heartbeat(Duration::from_millis(100))
        .start()
        .await
        .unwrap();
    let t = TestApp::on(test_db, &[]);
    let ops = t.account("olive", Role::Ops).await;

    reported_after(&view, SystemTime::UNIX_EPOCH).await;
    let instance: InstanceReport = t
        .app
        .live_instances(Some("staging"))
        .await
        .unwrap()
        .pop()
        .expect("the process reported itself");
    assert_eq!(instance.application, "checkout");
    assert_eq!(instance.pid, i64::from(std::process::id()));
    let expected: BTreeMap<String, String> = [
        ("console_feature_flags_db", "on"),
        ("dark_mode", "on"),
        ("search_index_v3", "invalid"),
        // A variable no flag declares, by its name (`vexil doctor --gone`).
        ("FLAG_NOT_DECLARED", "on"),
    ]
    .into_iter()
    .map(|(k, v)| (k.to_owned(), v.to_owned()))
    .collect();
    assert_eq!(
        instance.env_layer, expected,
        "parsed values only, never a raw one"
    );
    assert!(t.app.live_instances(Some("prod")).await.unwrap().is_empty());

    let flip = |from: bool| vexil_app::Flip {
        flag: crate::key("onboarding_checklist_v2"),
        env: crate::env("staging"),
        expected_from: Some(from),
        to: !from,
        reason: None,
        via: Via::Cli,
    };
    // Each flip: applied by the process (its event), then reported (its next one).
    let mut changes = view.subscribe();
    let mut flip_and_wait = async |from: bool| {
        let audit_id = t
            .app
            .flip(&ops, &flip(from), StepUp::None)
            .await
            .unwrap()
            .audit_id;
        while changes.recv().await.unwrap().flag_key != "onboarding_checklist_v2" {}
        reported_after(&view, SystemTime::now()).await;
        audit_id
    };
    let first = flip_and_wait(false).await;
    let receipts = t.app.receipts(first).await.unwrap();
    let [(_, ReceiptState::Applied { at: applied })] = receipts.instances.as_slice() else {
        panic!("{:?}", receipts.instances);
    };
    assert!(view.is_on("onboarding_checklist_v2"));
    let second = flip_and_wait(true).await;
    let receipts = t.app.receipts(first).await.unwrap();
    assert!(
        matches!(
            receipts.instances.as_slice(),
            [(_, ReceiptState::Superseded { by, at })] if *by == second && at >= applied
        ),
        "{:?}",
        receipts.instances
    );

    // A process that stopped reporting an hour ago (cut off, or stopped) is listed
    // for a receipt, but not as live; one whose DB layer is off ignores rows.
    let an_hour_ago = match backend {
        Backend::Sqlite => "strftime('%Y-%m-%d %H:%M:%f', 'now', '-3600 seconds')",
        Backend::Postgres => "now() - interval '1 hour'",
    };
    for (id, last_seen, layer) in [
        (
            "cut-off",
            an_hour_ago,
            r#"{"console_feature_flags_db":"on"}"#,
        ),
        (
            "db-layer-off",
            "CURRENT_TIMESTAMP",
            r#"{"console_feature_flags_db":"unset"}"#,
        ),
    ] {
        let last_seen = if backend == Backend::Sqlite && last_seen == "CURRENT_TIMESTAMP" {
            "strftime('%Y-%m-%d %H:%M:%f', 'now')"
        } else {
            last_seen
        };
        t.execute(&format!(
            "INSERT INTO vexil_instances (id, env, host, pid, application, version, started_at, last_seen, env_layer, applied) \
             VALUES ('{id}', 'staging', 'h', 1, 'a', 'v', {last_seen}, {last_seen}, '{layer}', '{{}}')"
        ))
        .await;
    }
    let live: Vec<String> = t
        .app
        .live_instances(Some("staging"))
        .await
        .unwrap()
        .into_iter()
        .map(|i| i.id)
        .collect();
    assert_eq!(live.len(), 2, "{live:?}");
    assert!(!live.contains(&"cut-off".to_owned()), "{live:?}");
    let receipts = t.app.receipts(second).await.unwrap();
    let state_of = |id: &str| {
        receipts
            .instances
            .iter()
            .find(|(i, _)| i.id == id)
            .map(|(_, state)| *state)
            .unwrap()
    };
    assert!(matches!(
        state_of("cut-off"),
        ReceiptState::NotReporting { .. }
    ));
    assert_eq!(state_of("db-layer-off"), ReceiptState::Ignored);
    // A page of the log: the same receipts, summarised, for its flips only.
    let page = t
        .app
        .db()
        .audit_page(&AuditFilter {
            limit: 10,
            ..AuditFilter::default()
        })
        .await
        .unwrap();
    let summaries = t.app.receipts_for(&page).await.unwrap();
    assert_eq!(summaries.len(), 2, "two flips and an account row");
    assert_eq!(summaries[&second], receipts.summary());
    let summary = &summaries[&first];
    assert_eq!(
        (summary.seen, summary.of, summary.slowest_ms),
        (1, 2, None),
        "superseded counts as seen, untimed"
    );
    assert_eq!(summary.missing, ["h pid 1 (not reporting)"]);
    assert_eq!(summary.ignoring, ["h pid 1"]);

    // Only flips have receipts.
    assert!(matches!(
        t.app.receipts(second + 1000).await,
        Err(AppError::UnknownAuditRow { .. })
    ));
    // Rows 1, 2, 3 of a fresh log: the account, the first flip, the second.
    let account_row = second - 2;
    assert!(matches!(
        t.app.receipts(account_row).await,
        Err(AppError::NotAFlagChange { .. })
    ));
    assert!(matches!(
        t.app.live_instances(Some("qa")).await,
        Err(AppError::UnknownEnv(_))
    ));
    drop(view);
}
both!(a_live_process_reports_itself_and_which_flip_it_applies);

/// Another env's variables, learnt from its live processes: where they agree, they
/// resolve (and are the "before" of a flip); where they disagree, that is drift.
async fn another_envs_variables_come_from_its_live_processes(backend: Backend) {
    let test_db = TestDb::new(backend).await;
    let process = |vars: &'static [(&'static str, &'static str)]| {
        vexil::Flags::builder()
            .env("prod")
            .flag_set(example_flags())
            .env_vars(EnvSnapshot::capture(vars.iter().copied()))
            .database_url(test_db.url_string())
            .heartbeat(Duration::from_millis(100))
            .start()
    };
    let one = process(&[
        ("FLAG_CONSOLE_FEATURE_FLAGS_DB", "1"),
        ("FLAG_SEARCH_INDEX_V3", "on"),
        ("FLAG_DARK_MODE", "on"),
    ])
    .await
    .unwrap();
    let two = process(&[
        ("FLAG_CONSOLE_FEATURE_FLAGS_DB", "1"),
        ("FLAG_SEARCH_INDEX_V3", "yes"),
    ])
    .await
    .unwrap();
    // This app belongs to staging: prod's variables are not its own.
    let t = TestApp::on(test_db, &[("FLAG_CONSOLE_FEATURE_FLAGS_DB", "1")]);
    // search_index_v3 is medium risk: a superadmin's flip.
    let root = t.account("sam", Role::Superadmin).await;
    reported_after(&one, SystemTime::UNIX_EPOCH).await;
    reported_after(&two, SystemTime::UNIX_EPOCH).await;
    assert_eq!(t.app.live_instances(Some("prod")).await.unwrap().len(), 2);

    let prod = vexil_core::Env::PROD;
    let states = t.app.flag_states(Some(&prod)).await.unwrap().states;
    let state = |key: &str| states.iter().find(|s| s.key == key).unwrap().clone();
    let search = state("search_index_v3");
    assert_eq!(
        (search.value, search.source),
        (true, vexil_core::Source::Env)
    );
    assert_eq!(search.drift, None);
    let dark = state("dark_mode");
    assert_eq!((dark.value, dark.source), (false, vexil_core::Source::Yaml));
    let drift = dark
        .drift
        .expect("one process sets FLAG_DARK_MODE, one does not");
    assert_eq!(
        drift.states.into_iter().collect::<Vec<_>>(),
        [
            (vexil_core::VarState::Unset, 1),
            (vexil_core::VarState::On, 1)
        ]
    );

    // The "before" of a flip in prod is the env layer its processes agree on.
    let flipped = t
        .app
        .flip(
            &root,
            &vexil_app::Flip {
                flag: crate::key("search_index_v3"),
                env: crate::env("prod"),
                expected_from: Some(true),
                to: false,
                reason: None,
                via: Via::Cli,
            },
            StepUp::None,
        )
        .await
        .unwrap();
    assert_eq!((flipped.from, flipped.to), (true, false));

    // Where they disagree and no row decides, "off" is only a guess (the YAML
    // default): flipping to off is not refused as already so, and the audit row
    // carries the disagreement.
    let settled = t
        .app
        .flip(
            &root,
            &vexil_app::Flip {
                flag: crate::key("dark_mode"),
                env: crate::env("prod"),
                expected_from: Some(true),
                to: false,
                reason: None,
                via: Via::Cli,
            },
            StepUp::None,
        )
        .await
        .unwrap();
    let row = t
        .app
        .db()
        .audit_page(&AuditFilter {
            before: Some(settled.audit_id + 1),
            limit: 1,
            ..AuditFilter::default()
        })
        .await
        .unwrap()
        .remove(0);
    assert_eq!(
        row.payload,
        serde_json::json!({"flag": "dark_mode", "env": "prod", "from": false, "to": false,
                           "via": "cli", "drift": {"unset": 1, "on": 1}})
    );
    drop((one, two));
}
both!(another_envs_variables_come_from_its_live_processes);
