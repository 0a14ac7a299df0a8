//! Changes reach the snapshot: through the change feed, through the TTL when there is
//! no feed, and in the process that made them at once.

use std::time::Duration;

use vexil::Source;
use vexil_core::EnvSnapshot;
use vexil_store::Backend;
use vexil_testkit::{TestDb, both};

use crate::{builder, next_applied, runbook_update, started};

async fn direct_sql_reaches_every_handle_through_the_feed(backend: Backend) {
    let test_db = TestDb::new(backend).await;
    // An hour's TTL: only the feed can deliver within the deadline.
    let first = started(builder(&test_db).ttl(Duration::from_secs(3600))).await;
    let second = started(builder(&test_db).ttl(Duration::from_secs(3600))).await;
    assert!(!first.is_on("dark_mode"));
    let mut first_changes = first.subscribe();
    let mut second_changes = second.subscribe();

    test_db
        .execute(&runbook_update("dark_mode", 1))
        .await
        .unwrap();
    for changes in [&mut first_changes, &mut second_changes] {
        let applied = next_applied(changes, "dark_mode").await;
        assert!(applied.on);
        assert_eq!(applied.source, Source::Db);
    }
    assert!(first.is_on("dark_mode") && second.is_on("dark_mode"));
    let typed = first.flag("dark_mode");
    assert!(typed.is_on());

    // The runbook's UPDATE, verbatim in shape, and then a DELETE: back to the default.
    test_db
        .execute(
            "UPDATE console_feature_flags SET value=0 WHERE flag_key='dark_mode' AND env='prod'",
        )
        .await
        .unwrap();
    assert!(!next_applied(&mut first_changes, "dark_mode").await.on);
    assert!(!typed.is_on());
    test_db
        .execute(&runbook_update("dark_mode", 1))
        .await
        .unwrap();
    assert!(next_applied(&mut first_changes, "dark_mode").await.on);
    test_db
        .execute("DELETE FROM console_feature_flags WHERE flag_key='dark_mode' AND env='prod'")
        .await
        .unwrap();
    let applied = next_applied(&mut first_changes, "dark_mode").await;
    assert_eq!((applied.on, applied.source), (false, Source::Yaml));

    // Other envs and undeclared flags change nothing here, and break nothing.
    test_db
        .execute(
            "INSERT INTO console_feature_flags (flag_key, env, value) VALUES \
             ('dark_mode', 'staging', 1), ('not_declared_anywhere', 'prod', 1)",
        )
        .await
        .unwrap();
    test_db
        .execute(&runbook_update("search_index_v3", 1))
        .await
        .unwrap();
    assert!(next_applied(&mut first_changes, "search_index_v3").await.on);
    assert!(!first.is_on("dark_mode"));
    assert!(!first.is_on("not_declared_anywhere"));
}
both!(direct_sql_reaches_every_handle_through_the_feed);

async fn without_a_feed_the_ttl_delivers(backend: Backend) {
    let test_db = TestDb::new(backend).await;
    let flags = started(
        builder(&test_db)
            .change_feed(false)
            .ttl(Duration::from_millis(300)),
    )
    .await;
    let mut changes = flags.subscribe();
    test_db
        .execute(&runbook_update("dark_mode", 1))
        .await
        .unwrap();
    assert!(next_applied(&mut changes, "dark_mode").await.on);
    assert!(flags.is_on("dark_mode"));
}
both!(without_a_feed_the_ttl_delivers);

async fn a_row_that_is_not_0_or_1_is_refused_by_the_database(backend: Backend) {
    let test_db = TestDb::new(backend).await;
    let error = test_db
        .execute(&runbook_update("dark_mode", 2))
        .await
        .unwrap_err();
    assert!(error.to_lowercase().contains("check"), "{error}");
    let error = test_db
        .execute("INSERT INTO console_feature_flags (flag_key, env, value) VALUES ('dark_mode', 'prod', 'yes')")
        .await
        .unwrap_err();
    assert!(
        error.to_lowercase().contains("check") || error.contains("invalid input"),
        "{error}"
    );
}
both!(a_row_that_is_not_0_or_1_is_refused_by_the_database);

async fn invalidate_reads_the_row_at_once(backend: Backend) {
    let test_db = TestDb::new(backend).await;
    let flags = started(
        builder(&test_db)
            .change_feed(false)
            .ttl(Duration::from_secs(3600)),
    )
    .await;
    test_db
        .execute(&runbook_update("dark_mode", 1))
        .await
        .unwrap();
    assert!(!flags.is_on("dark_mode"), "no feed, no TTL yet");
    flags.invalidate("dark_mode").await.unwrap();
    assert!(flags.is_on("dark_mode"));
}
both!(invalidate_reads_the_row_at_once);

/// What a hand-edited row or a newer vexil's migration must not break: a timestamp
/// that is not one (SQLite keeps text), and a migration this library does not know
/// (a rolling upgrade migrated the database before this process was replaced).
async fn hand_edits_and_newer_schemas_do_not_stop_the_reads(backend: Backend) {
    let test_db = TestDb::new(backend).await;
    let checksum = match backend {
        Backend::Sqlite => "x'00'",
        Backend::Postgres => "decode('00', 'hex')",
    };
    test_db
        .execute(&format!(
            "INSERT INTO _sqlx_migrations (version, description, success, checksum, execution_time) \
             VALUES (9999, 'from a newer vexil', TRUE, {checksum}, 1)"
        ))
        .await
        .unwrap();
    test_db
        .execute(&runbook_update("dark_mode", 1))
        .await
        .unwrap();
    if backend == Backend::Sqlite {
        test_db
            .execute("UPDATE console_feature_flags SET updated_at = 'last tuesday'")
            .await
            .unwrap();
    }
    let flags = started(builder(&test_db)).await;
    assert!(flags.is_on("dark_mode"));
    assert_eq!(flags.value("dark_mode").unwrap().source, Source::Db);
}
both!(hand_edits_and_newer_schemas_do_not_stop_the_reads);

#[tokio::test]
async fn timing_settings_out_of_range_are_refused_and_passwords_never_shown() {
    let builder = vexil::Flags::builder()
        .env("prod")
        .flag_set(crate::example_flags())
        .database_url("postgres://vexil:hunter2@127.0.0.1:1/vexil");
    assert!(!format!("{builder:?}").contains("hunter2"), "{builder:?}");
    let error = builder
        .clone()
        .ttl(Duration::ZERO)
        .start()
        .await
        .unwrap_err();
    assert_eq!(
        error.to_string(),
        "the TTL must be between 100ms and 3600s, not 0ns"
    );
    let error = builder
        .poll_interval(Duration::ZERO)
        .start()
        .await
        .unwrap_err();
    assert!(
        error
            .to_string()
            .starts_with("the poll interval must be between"),
        "{error}"
    );
}

/// A reloaded flags file re-resolves everything; an invalid one changes nothing and
/// says what is wrong with it, where.
async fn an_invalid_flags_file_on_reload_keeps_the_last_valid_set(backend: Backend) {
    let test_db = TestDb::new(backend).await;
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("feature_flags.yaml");
    std::fs::write(
        &path,
        "dark_mode:\n  default: false\n  description: Dark theme.\n  risk: low\n",
    )
    .unwrap();
    let flags = started(
        builder(&test_db)
            .flags_file(&path)
            .ttl(Duration::from_secs(3600)),
    )
    .await;
    assert!(!flags.is_on("dark_mode") && !flags.is_on("new_checkout"));

    std::fs::write(&path, "dark_mode:\n  default: maybe\n  risk: low\n").unwrap();
    let error = flags.reload_file().await.unwrap_err().to_string();
    assert!(error.contains("feature_flags.yaml:2:12"), "{error}");
    assert!(
        error.contains("feature_flags.yaml:1:1"),
        "every error: {error}"
    );
    assert!(
        flags.value("dark_mode").is_some(),
        "the last valid set stays"
    );

    std::fs::write(
        &path,
        "new_checkout:\n  default: true\n  description: The new checkout.\n  risk: high\n",
    )
    .unwrap();
    flags.reload_file().await.unwrap();
    assert!(flags.is_on("new_checkout"));
    assert_eq!(flags.value("dark_mode"), None, "no longer declared");
    let code_only = started(builder(&test_db)).await;
    assert!(matches!(
        code_only.reload_file().await,
        Err(vexil::Error::NoFlagsFile)
    ));
}
both!(an_invalid_flags_file_on_reload_keeps_the_last_valid_set);

/// No window where a dormant variable decides: a row that turns off what the
/// process's variable turns on is in force when `start` returns, not after a first
/// read some milliseconds later.
async fn start_returns_with_the_rows_in_force(backend: Backend) {
    let test_db = TestDb::new(backend).await;
    test_db
        .execute(&runbook_update("dark_mode", 0))
        .await
        .unwrap();
    let flags = builder(&test_db)
        .env_vars(EnvSnapshot::capture([
            ("FLAG_CONSOLE_FEATURE_FLAGS_DB", "1"),
            ("FLAG_DARK_MODE", "1"),
        ]))
        .start()
        .await
        .unwrap();
    assert!(!flags.is_on("dark_mode"), "the row, not FLAG_DARK_MODE");
    assert_eq!(flags.value("dark_mode").unwrap().source, Source::Db);
    assert!(matches!(
        flags.health().origin,
        vexil::Origin::Database { .. }
    ));
    assert!(flags.health().source_up);
}
both!(start_returns_with_the_rows_in_force);
