//! `App::stale_flags` on both databases and the test clock: a flag on in both envs
//! is listed once its newest write is 30 days old (not a day before), a flag off in
//! one env never is, flags never flipped are listed, and a row no declaration claims
//! is reported.

use chrono::TimeDelta;
use vexil_app::Flip;
use vexil_core::Role;
use vexil_core::audit::Via;
use vexil_core::stale::Stale;
use vexil_store::Backend;

use crate::{TestApp, both};

async fn stale_flags_by_age_and_flips(backend: Backend) {
    let t = TestApp::new(backend, &[]).await;
    let root = t.account("root", Role::Superadmin).await;
    // dark_mode: on in both envs; csv_export_streaming: on in staging, off in prod.
    for (key, env, to) in [
        ("dark_mode", "staging", true),
        ("dark_mode", "prod", true),
        ("csv_export_streaming", "staging", true),
        ("csv_export_streaming", "prod", true),
        ("csv_export_streaming", "prod", false),
    ] {
        let flip = Flip {
            flag: crate::key(key),
            env: crate::env(env),
            expected_from: None,
            to,
            reason: None,
            via: Via::Cli,
        };
        crate::flip_as(&t.app, &root, &flip).await.unwrap();
    }
    t.execute(
        "INSERT INTO console_feature_flags (flag_key, env, value, updated_at) \
         VALUES ('retired_flag', 'prod', 1, CURRENT_TIMESTAMP)",
    )
    .await;
    let listed = |stale: &vexil_app::StaleFlags, key: &str| {
        stale
            .flags
            .iter()
            .find(|(k, _)| k == key)
            .map(|(_, why)| why.clone())
    };

    t.clock.advance(TimeDelta::days(29));
    let stale = t.app.stale_flags(30).await.unwrap();
    assert_eq!(listed(&stale, "dark_mode"), None);
    assert_eq!(listed(&stale, "csv_export_streaming"), None);
    // Declared and never flipped: listed from the start.
    assert_eq!(
        listed(&stale, "search_typo_tolerance"),
        Some(vec![Stale::NeverFlipped])
    );
    let undeclared: Vec<(&str, &str)> = stale
        .undeclared_rows
        .iter()
        .map(|r| (r.flag_key.as_str(), r.env.as_str()))
        .collect();
    assert_eq!(undeclared, [("retired_flag", "prod")]);

    t.clock.advance(TimeDelta::days(1));
    let stale = t.app.stale_flags(30).await.unwrap();
    let why = listed(&stale, "dark_mode").expect("dark_mode is stale at 30 days");
    assert!(
        matches!(why.as_slice(), [Stale::OnEverywhere { days: 30, .. }]),
        "{why:?}"
    );
    assert_eq!(listed(&stale, "csv_export_streaming"), None);
    // A longer threshold: not yet.
    assert_eq!(
        listed(&t.app.stale_flags(31).await.unwrap(), "dark_mode"),
        None
    );
}
both!(stale_flags_by_age_and_flips);
