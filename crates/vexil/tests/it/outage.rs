//! The database going away: at start, mid-run (a proxy cut between the process and
//! PostgreSQL), and the server killing the LISTEN connection.

use std::time::Duration;

use vexil::{Flags, Origin, Source};
use vexil_core::EnvSnapshot;
use vexil_store::Backend;
use vexil_testkit::{POSTGRES_ADMIN_URL, Proxy, TestDb, both};

use crate::{DEADLINE, builder, example_flags, next_applied, runbook_update, started, wait_health};

async fn a_process_that_starts_while_the_database_is_down_resolves_from_env_and_yaml(
    backend: Backend,
) {
    let dir = tempfile::tempdir().unwrap();
    let url = match backend {
        // A file in a directory that does not exist: it cannot be created.
        Backend::Sqlite => format!("sqlite://{}/missing/vexil.db", dir.path().display()),
        // Nothing listens on port 1.
        Backend::Postgres => "postgres://postgres@127.0.0.1:1/vexil".to_owned(),
    };
    let begun = std::time::Instant::now();
    let flags = Flags::builder()
        .env("prod")
        .flag_set(example_flags())
        .env_vars(EnvSnapshot::capture([
            ("FLAG_CONSOLE_FEATURE_FLAGS_DB", "1"),
            ("FLAG_DARK_MODE", "on"),
        ]))
        .database_url(url)
        .start_timeout(Duration::from_millis(300))
        .start()
        .await
        .unwrap();
    // `start` waited its timeout for a read, then gave up loudly and returned.
    assert!(begun.elapsed() >= Duration::from_millis(300));
    let health = flags.health();
    assert!(!health.source_up);
    assert_eq!(health.origin, Origin::Fallback);
    assert_eq!(health.snapshot_age(), None);
    assert!(flags.is_on("dark_mode"), "from FLAG_DARK_MODE");
    assert_eq!(flags.value("dark_mode").unwrap().source, Source::Env);
    assert!(flags.is_on("search_typo_tolerance"), "the YAML default");
    assert_eq!(
        flags.value("search_typo_tolerance").unwrap().source,
        Source::Yaml
    );
}
both!(a_process_that_starts_while_the_database_is_down_resolves_from_env_and_yaml);

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_cut_database_leaves_the_last_snapshot_serving_until_it_is_back() {
    let test_db = TestDb::new(Backend::Postgres).await;
    let proxy = Proxy::start("127.0.0.1:5432".parse().unwrap()).await;
    let flags = started(
        builder(&test_db)
            .database_url(test_db.postgres_url_via(proxy.addr()))
            .ttl(Duration::from_millis(300)),
    )
    .await;
    let mut changes = flags.subscribe();
    test_db
        .execute(&runbook_update("dark_mode", 1))
        .await
        .unwrap();
    assert!(next_applied(&mut changes, "dark_mode").await.on);

    proxy.cut();
    wait_health(&flags, |h| !h.source_up).await;
    // Changed while this process cannot see it: it keeps serving what it last read,
    // not the YAML default (off) that the row overrides.
    test_db
        .execute(&runbook_update("dark_mode", 0))
        .await
        .unwrap();
    assert!(flags.is_on("dark_mode"));
    assert!(matches!(flags.health().origin, Origin::Database { .. }));

    proxy.restore();
    let applied = next_applied(&mut changes, "dark_mode").await;
    assert_eq!((applied.on, applied.source), (false, Source::Db));
    wait_health(&flags, |h| h.source_up).await;
    assert!(flags.health().snapshot_age().unwrap() < DEADLINE);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_feed_recovers_when_the_server_kills_its_connection() {
    let test_db = TestDb::new(Backend::Postgres).await;
    let flags = started(builder(&test_db).ttl(Duration::from_secs(3600))).await;
    let mut changes = flags.subscribe();
    test_db
        .execute(&runbook_update("dark_mode", 1))
        .await
        .unwrap();
    assert!(next_applied(&mut changes, "dark_mode").await.on);

    assert_eq!(listeners(&test_db).await, 1);
    let killed = sqlx::query_scalar::<_, i64>(
        "SELECT count(pg_terminate_backend(pid)) FROM pg_stat_activity \
         WHERE datname = $1 AND query ILIKE 'LISTEN%'",
    )
    .bind(test_db.postgres_name())
    .fetch_one(&admin().await)
    .await
    .unwrap();
    assert_eq!(killed, 1);
    test_db
        .execute(&runbook_update("dark_mode", 0))
        .await
        .unwrap();
    assert!(!next_applied(&mut changes, "dark_mode").await.on);
    test_db
        .execute(&runbook_update("dark_mode", 1))
        .await
        .unwrap();
    assert!(next_applied(&mut changes, "dark_mode").await.on);

    // The background task, and its LISTEN connection, end with the last clone.
    let clone = flags.clone();
    drop(flags);
    assert_eq!(listeners(&test_db).await, 1, "a clone still holds it");
    drop(clone);
    tokio::time::timeout(DEADLINE, async {
        while listeners(&test_db).await > 0 {
            tokio::task::yield_now().await;
        }
    })
    .await
    .expect("the LISTEN connection outlived the last handle");
}

async fn admin() -> sqlx::PgPool {
    sqlx::PgPool::connect(POSTGRES_ADMIN_URL).await.unwrap()
}

/// Connections to the test database that LISTEN.
async fn listeners(test_db: &TestDb) -> i64 {
    sqlx::query_scalar(
        "SELECT count(*) FROM pg_stat_activity WHERE datname = $1 AND query ILIKE 'LISTEN%'",
    )
    .bind(test_db.postgres_name())
    .fetch_one(&admin().await)
    .await
    .unwrap()
}

#[tokio::test]
async fn a_database_url_naming_no_file_creates_none() {
    let dir = tempfile::tempdir().unwrap();
    let file = dir.path().join("typo.db");
    let flags = Flags::builder()
        .env("prod")
        .flag_set(example_flags())
        .database_url(format!("sqlite://{}", file.display()))
        .start_timeout(Duration::ZERO)
        .start()
        .await
        .unwrap();
    assert!(!flags.health().source_up);
    assert!(flags.is_on("search_typo_tolerance"), "the YAML default");
    drop(flags);
    assert!(!file.exists(), "the library created {}", file.display());
}
