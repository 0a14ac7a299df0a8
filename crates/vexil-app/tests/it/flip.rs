//! `App::flip`: what it writes, and every way it refuses while writing nothing.

use serde_json::json;
use vexil_app::{AppError, Flip, Flipped, StepUp};
use vexil_core::EnvSnapshot;
use vexil_core::audit::Via;
use vexil_core::{Denied, Role, Source};
use vexil_store::{AuditFilter, Backend};
use vexil_testkit::{TestDb, audit_log};

use crate::{TestApp, both};

fn flip<'a>(flag_key: &'a str, env: &'a str, expected_from: Option<bool>, to: bool) -> Flip<'a> {
    Flip {
        flag: crate::key(flag_key),
        env: crate::env(env),
        expected_from,
        to,
        reason: None,
        via: Via::Cli,
    }
}

async fn audit_count(t: &TestApp) -> usize {
    audit_log(t.app.db()).await.len()
}

async fn a_flip_writes_the_row_and_its_audit_row(backend: Backend) {
    let t = TestApp::new(backend, &[]).await;
    let ops = t.account("olive", Role::Ops).await;
    let request = Flip {
        reason: Some("INC-42: enable for the launch"),
        ..flip("dark_mode", "staging", Some(false), true)
    };
    let flipped = t.app.flip(&ops, &request, StepUp::None).await.unwrap();
    assert_eq!((flipped.from, flipped.to), (false, true));

    let row = &t.app.db().flag_rows().await.unwrap()[0];
    assert_eq!(
        (
            row.flag_key.as_str(),
            row.env.as_str(),
            row.value,
            row.updated_by.as_deref()
        ),
        ("dark_mode", "staging", true, Some("olive"))
    );
    let newest = &t
        .app
        .db()
        .audit_page(&AuditFilter {
            limit: 1,
            ..AuditFilter::default()
        })
        .await
        .unwrap()[0];
    assert_eq!(
        (
            newest.id,
            newest.admin_name.as_deref(),
            newest.action.as_str()
        ),
        (flipped.audit_id, Some("olive"), "console.flag.flip")
    );
    assert_eq!(
        newest.payload,
        json!({"flag": "dark_mode", "env": "staging", "from": false, "to": true, "via": "cli", "reason": "INC-42: enable for the launch"})
    );
}
both!(a_flip_writes_the_row_and_its_audit_row);

/// "from" is the effective value before, whatever its source: here this process's
/// own variable, since the process belongs to staging.
async fn from_is_the_value_in_force_whatever_its_source(backend: Backend) {
    let t = TestApp::new(backend, &[("FLAG_DARK_MODE", "on")]).await;
    let ops = t.account("olive", Role::Ops).await;
    let flipped = t
        .app
        .flip(
            &ops,
            &flip("dark_mode", "staging", Some(true), false),
            StepUp::None,
        )
        .await
        .unwrap();
    assert_eq!((flipped.from, flipped.to), (true, false));
    // prod's variables live on prod's hosts: here the YAML default (off) decides.
    let error = t
        .app
        .flip(
            &ops,
            &flip("dark_mode", "prod", Some(true), false),
            StepUp::None,
        )
        .await
        .unwrap_err();
    assert!(
        matches!(
            error,
            AppError::Conflict {
                current: false,
                current_source: Source::Yaml,
                ..
            }
        ),
        "{error:?}"
    );
}
both!(from_is_the_value_in_force_whatever_its_source);

async fn a_stale_from_is_a_conflict_that_names_who_and_when(backend: Backend) {
    let t = TestApp::new(backend, &[]).await;
    let ops = t.account("olive", Role::Ops).await;
    t.app
        .flip(
            &ops,
            &flip("dark_mode", "prod", Some(false), true),
            StepUp::None,
        )
        .await
        .unwrap();
    let before = audit_count(&t).await;
    let error = t
        .app
        .flip(
            &ops,
            &flip("dark_mode", "prod", Some(false), true),
            StepUp::None,
        )
        .await
        .unwrap_err();
    assert_eq!(
        error.to_string(),
        "conflict: dark_mode in prod is on now (db, set by olive at 2026-01-15 09:30:00 UTC), not off; nothing was changed"
    );
    assert_eq!(
        audit_count(&t).await,
        before,
        "a refused flip writes nothing"
    );
}
both!(a_stale_from_is_a_conflict_that_names_who_and_when);

async fn flipping_to_the_value_in_force_changes_nothing(backend: Backend) {
    let t = TestApp::new(backend, &[]).await;
    let ops = t.account("olive", Role::Ops).await;
    let error = t
        .app
        .flip(&ops, &flip("dark_mode", "prod", None, false), StepUp::None)
        .await
        .unwrap_err();
    assert_eq!(
        error.to_string(),
        "dark_mode in prod is already off; nothing was changed"
    );
    assert_eq!(
        audit_count(&t).await,
        1,
        "only the account's creation is in the log"
    );
    assert_eq!(t.app.db().flag_rows().await.unwrap(), []);
}
both!(flipping_to_the_value_in_force_changes_nothing);

async fn bad_requests_are_refused_before_anything_is_written(backend: Backend) {
    let t = TestApp::new(backend, &[]).await;
    let ops = t.account("olive", Role::Ops).await;
    let root = t.account("sam", Role::Superadmin).await;
    let check = |result: Result<Flipped, AppError>, expected: &str| {
        assert_eq!(result.unwrap_err().to_string(), expected);
    };
    check(
        t.app
            .flip(
                &ops,
                &flip("no_such_flag", "prod", None, true),
                StepUp::None,
            )
            .await,
        "unknown flag 'no_such_flag': it is not declared in the flags file",
    );
    // An env is parsed by the door into the use case's input: the app's envs
    // refuse one that is not configured, naming those that are.
    assert_eq!(
        AppError::from(t.app.envs().parse("qa").unwrap_err()).to_string(),
        "unknown env 'qa' (expected one of: staging, prod)",
    );
    // A text that is not a key's shape is an unknown flag too.
    assert_eq!(
        vexil_app::parse_flag_key("Dark-Mode")
            .unwrap_err()
            .to_string(),
        "unknown flag 'Dark-Mode': it is not declared in the flags file",
    );
    check(
        t.app
            .flip(
                &ops,
                &flip("search_index_v3", "prod", None, true),
                StepUp::None,
            )
            .await,
        "role ops may not flip a medium-risk flag: it needs superadmin",
    );
    check(
        t.app
            .flip(
                &root,
                &flip("console_billing", "prod", None, true),
                StepUp::None,
            )
            .await,
        "to flip a high-risk flag, elevate with a fresh TOTP code first",
    );
    let error = t
        .app
        .flip(
            &ops,
            &flip("console_billing", "prod", None, true),
            StepUp::None,
        )
        .await
        .unwrap_err();
    assert!(
        matches!(error, AppError::Denied(Denied::Forbidden { .. })),
        "{error:?}"
    );
    assert_eq!(audit_count(&t).await, 2, "only the two accounts' creation");
    assert_eq!(t.app.db().flag_rows().await.unwrap(), []);

    // Elevated, the superadmin may.
    let elevation = crate::elevate(&t.app, &root).await;
    t.app
        .flip(
            &root,
            &flip("console_billing", "prod", None, true),
            StepUp::Held(&elevation),
        )
        .await
        .unwrap();
}
both!(bad_requests_are_refused_before_anything_is_written);

/// 32 flips of one flag at once, all from the same "from": exactly one wins.
async fn concurrent_flips_of_one_flag_change_it_once(backend: Backend) {
    let t = std::sync::Arc::new(TestApp::new(backend, &[]).await);
    let ops = t.account("olive", Role::Ops).await;
    let before = audit_count(&t).await;
    let mut tasks = Vec::new();
    for _ in 0..32 {
        let t = t.clone();
        let ops = ops.clone();
        tasks.push(tokio::spawn(async move {
            t.app
                .flip(
                    &ops,
                    &flip("dark_mode", "prod", Some(false), true),
                    StepUp::None,
                )
                .await
        }));
    }
    let mut won = 0;
    for task in tasks {
        match task.await.unwrap() {
            Ok(_) => won += 1,
            Err(AppError::Conflict { current: true, .. }) => {}
            Err(other) => panic!("expected a win or a conflict, got {other}"),
        }
    }
    assert_eq!(won, 1);
    assert_eq!(audit_count(&t).await, before + 1);
}
both!(concurrent_flips_of_one_flag_change_it_once);

/// 32 break-glass flips (no "from") to the same value at once: one changes it, the
/// others lose the race, read again and are told it is already so. Run on a pair with
/// no row yet (racing inserts) and then on one with a row (racing updates).
async fn concurrent_break_glass_flips_change_it_once(backend: Backend) {
    let t = std::sync::Arc::new(TestApp::new(backend, &[]).await);
    let ops = t.account("olive", Role::Ops).await;
    for to in [true, false] {
        let before = audit_count(&t).await;
        let mut tasks = Vec::new();
        for _ in 0..32 {
            let t = t.clone();
            let ops = ops.clone();
            tasks.push(tokio::spawn(async move {
                t.app
                    .flip(&ops, &flip("dark_mode", "prod", None, to), StepUp::None)
                    .await
            }));
        }
        let mut won = 0;
        for task in tasks {
            match task.await.unwrap() {
                Ok(flipped) => {
                    assert_eq!((flipped.from, flipped.to), (!to, to));
                    won += 1;
                }
                Err(AppError::NoChange { value, .. }) => assert_eq!(value, to),
                Err(other) => panic!("expected a win or no change, got {other}"),
            }
        }
        assert_eq!(won, 1, "flipping to {to}");
        assert_eq!(audit_count(&t).await, before + 1, "flipping to {to}");
    }
}
both!(concurrent_break_glass_flips_change_it_once);

/// The process that flips sees its own flip when `flip` returns, with no feed and no
/// TTL to deliver it.
async fn a_flip_refreshes_the_view_of_the_process_that_made_it(backend: Backend) {
    let test_db = TestDb::new(backend).await;
    let view = vexil::Flags::builder()
        .env("staging")
        .flag_set(vexil_testkit::example_flags())
        .env_vars(EnvSnapshot::capture([(
            "FLAG_CONSOLE_FEATURE_FLAGS_DB",
            "1",
        )]))
        .database_url(test_db.url_string())
        .change_feed(false)
        .ttl(std::time::Duration::from_secs(3600))
        .start()
        .await
        .unwrap();
    let mut health = view.watch_health();
    health.wait_for(|h| h.source_up).await.unwrap();
    let t = TestApp::on(test_db, &[]).with_view(view.clone());
    let ops = t.account("olive", Role::Ops).await;
    assert!(!view.is_on("dark_mode"));
    t.app
        .flip(
            &ops,
            &flip("dark_mode", "staging", Some(false), true),
            StepUp::None,
        )
        .await
        .unwrap();
    assert!(view.is_on("dark_mode"));
    assert_eq!(view.value("dark_mode").unwrap().source, Source::Db);
}
both!(a_flip_refreshes_the_view_of_the_process_that_made_it);
