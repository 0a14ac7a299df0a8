//! The triggers cannot be redirected: a temporary table named like the audit log (or
//! the change feed) does not take their rows.

use vexil_core::Clock;
use vexil_store::Backend;
use vexil_testkit::{TestClock, TestDb};

use crate::flags::write;

/// Counts the real audit log's rows written by direct SQL for `flag`.
fn sql_rows(test_db: &TestDb, flag: &str) -> String {
    let via = match test_db.url().backend() {
        Backend::Sqlite => "json_extract(payload, '$.via')",
        Backend::Postgres => "payload->>'via'",
    };
    test_db
        .client(&format!(
            "SELECT COUNT(*) FROM console_audit_log WHERE target_id = '{flag}' \
             AND {via} = 'sql'"
        ))
        .trim()
        .to_owned()
}

/// As a role with ordinary read and write rights (not the owner, not a superuser,
/// TEMPORARY granted explicitly as a careless operator might), the attack that used to
/// empty the log: temporary tables named like the audit log and the change feed,
/// then the runbook's UPDATE, in one session.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_temporary_table_does_not_take_the_audit_row_on_postgres() {
    let test_db = TestDb::new(Backend::Postgres).await;
    write(
        &test_db.db,
        "dark_mode",
        "prod",
        false,
        "alice",
        TestClock::fixed().now(),
    )
    .await;
    assert_eq!(sql_rows(&test_db, "dark_mode"), "0");
    let role = test_db.role("writer").await;
    test_db
        .execute(&format!(
            "GRANT TEMPORARY ON DATABASE {db} TO {role}; \
             GRANT USAGE ON SCHEMA public TO {role}; \
             GRANT SELECT, INSERT, UPDATE, DELETE ON ALL TABLES IN SCHEMA public TO {role}",
            db = test_db.postgres_name()
        ))
        .await
        .unwrap();
    test_db
        .execute_as(
            &role,
            "CREATE TEMP TABLE console_audit_log (id BIGINT GENERATED ALWAYS AS IDENTITY, \
               created_at TIMESTAMPTZ DEFAULT now(), admin_id BIGINT, action TEXT, \
               target_type TEXT, target_id TEXT, payload JSONB, mac BYTEA); \
             CREATE TEMP TABLE console_flag_changes (seq BIGINT GENERATED ALWAYS AS IDENTITY, \
               flag_key TEXT, env TEXT, changed_at TIMESTAMPTZ DEFAULT now()); \
             UPDATE console_feature_flags SET value=1, updated_at=CURRENT_TIMESTAMP \
             WHERE flag_key='dark_mode' AND env='prod';",
        )
        .await
        .unwrap();
    assert_eq!(
        sql_rows(&test_db, "dark_mode"),
        "1",
        "the runbook's UPDATE is audited in the real log"
    );
    assert_eq!(
        test_db
            .client(
                "SELECT payload->>'from', payload->>'to' FROM console_audit_log \
             WHERE payload->>'via' = 'sql' AND target_id = 'dark_mode'"
            )
            .trim(),
        "false|true"
    );
    assert_eq!(
        test_db
            .client("SELECT COUNT(*) FROM console_flag_changes WHERE flag_key = 'dark_mode'")
            .trim(),
        "2",
        "the change feed got the change too (vexil's write, then the UPDATE)"
    );
}

/// The migration took TEMPORARY away from PUBLIC: a role granted only ordinary
/// rights cannot create a temporary table at all.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn ordinary_roles_cannot_create_temporary_tables_on_postgres() {
    let test_db = TestDb::new(Backend::Postgres).await;
    let role = test_db.role("plain").await;
    let error = test_db
        .execute_as(&role, "CREATE TEMP TABLE console_audit_log (id BIGINT)")
        .await
        .unwrap_err();
    assert!(
        error.contains("permission denied to create temporary tables"),
        "{error}"
    );
}

/// SQLite: a trigger of the main schema resolves its tables in the main schema, so a
/// `temp` table named like the audit log is simply not used.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_temporary_table_does_not_take_the_audit_row_on_sqlite() {
    let test_db = TestDb::new(Backend::Sqlite).await;
    write(
        &test_db.db,
        "dark_mode",
        "prod",
        false,
        "alice",
        TestClock::fixed().now(),
    )
    .await;
    test_db.client("CREATE TEMP TABLE console_audit_log (id INTEGER PRIMARY KEY, created_at TEXT, \
           admin_id INTEGER, action TEXT, target_type TEXT, target_id TEXT, payload TEXT, mac BLOB); \
         CREATE TEMP TABLE console_flag_changes (seq INTEGER PRIMARY KEY, flag_key TEXT, \
           env TEXT, changed_at TEXT); \
         UPDATE console_feature_flags SET value=1, updated_at=CURRENT_TIMESTAMP \
         WHERE flag_key='dark_mode' AND env='prod';",
    );
    assert_eq!(sql_rows(&test_db, "dark_mode"), "1");
}
