//! The shape check of an adoption: a table whose columns differ, values vexil cannot
//! take, a table of vexil's name, a view built on the audit log: each refused with
//! the table, the column and the rows named, and the database left as it was.

use vexil_core::Clock;
use vexil_store::{Backend, StoreError};
use vexil_testkit::{TestClock, TestDb, old_console_ddl, old_console_history};

use crate::adopt::schema_and_rows;
use crate::both;

/// Adopts `test_db`, expecting a refusal that changes nothing; returns its problems.
async fn refused(test_db: &TestDb, backend: Backend) -> Vec<String> {
    let before = schema_and_rows(test_db, backend);
    let error = test_db
        .db
        .adopt(TestClock::fixed().now(), false)
        .await
        .unwrap_err();
    assert!(
        error.to_string().contains("(nothing was changed): "),
        "{error}"
    );
    let StoreError::NotAdoptable { problems, .. } = error else {
        panic!("not a shape refusal: {error:?}");
    };
    assert_eq!(schema_and_rows(test_db, backend), before);
    problems
}

async fn seeded(backend: Backend, ddl: &str, rows: &str) -> TestDb {
    let test_db = TestDb::unmigrated(backend).await;
    test_db.execute(ddl).await.unwrap();
    test_db.execute(rows).await.unwrap();
    test_db
}

async fn a_table_of_another_shape_is_refused_naming_the_column(backend: Backend) {
    let (ddl, value_type) = match backend {
        Backend::Postgres => (
            "CREATE TABLE console_feature_flags (flag_key text, env text, value boolean NOT NULL, \
                 updated_at timestamptz, updated_by text, PRIMARY KEY (flag_key, env));
             CREATE TABLE console_audit_log (id serial PRIMARY KEY, created_at timestamptz DEFAULT now(), \
                 admin_id integer, action text NOT NULL, target_id text, payload jsonb, ip inet NOT NULL);",
            "boolean",
        ),
        Backend::Sqlite => (
            "CREATE TABLE console_feature_flags (flag_key TEXT, env TEXT, value TEXT NOT NULL, \
                 updated_at TEXT, updated_by TEXT, PRIMARY KEY (flag_key, env));
             CREATE TABLE console_audit_log (id INTEGER PRIMARY KEY, created_at TEXT DEFAULT CURRENT_TIMESTAMP, \
                 admin_id INTEGER, action TEXT NOT NULL, target_id TEXT, payload TEXT, ip TEXT NOT NULL);",
            "TEXT",
        ),
    };
    let rows = "INSERT INTO console_feature_flags VALUES ('dark_mode', 'prod', '1', '2026-03-01 09:00:00', 'alice');
                INSERT INTO console_audit_log (id, action, target_id, payload, ip) \
                VALUES (1, 'console.flag.flip', 'dark_mode', '{}', '10.0.0.1');";
    let test_db = seeded(backend, ddl, rows).await;
    let problems = refused(&test_db, backend).await;
    let expected_value = match backend {
        Backend::Postgres => "an integer 0 or 1 (smallint, integer or bigint)",
        Backend::Sqlite => "an integer 0 or 1 (an INTEGER column)",
    };
    assert_eq!(
        problems[0],
        format!(
            "console_feature_flags.value is {value_type}, vexil needs {expected_value}, so that the runbook's SET value=1 works"
        )
    );
    assert!(
        problems[1].starts_with("console_audit_log.target_type is missing: vexil needs it (text"),
        "{problems:?}"
    );
    assert_eq!(
        problems[2],
        "console_audit_log.ip is not one of vexil's columns: adopting would drop it; keep what it holds elsewhere and drop it first (ALTER TABLE console_audit_log DROP COLUMN ip)"
    );
    assert_eq!(problems.len(), 3, "{problems:?}");
}
both!(a_table_of_another_shape_is_refused_naming_the_column);

async fn values_vexil_cannot_take_are_refused_naming_the_rows(backend: Backend) {
    let bad = "INSERT INTO console_feature_flags (flag_key, env, value, updated_at) VALUES \
                   ('dark_mode', 'dev', 1, CURRENT_TIMESTAMP), ('Bad-Key', 'prod', 0, CURRENT_TIMESTAMP), \
                   ('search_typo_tolerance', 'prod', 2, CURRENT_TIMESTAMP);
               INSERT INTO console_audit_log (id, admin_id, action, target_type, target_id, payload) \
                   VALUES (20, -1, 'console.flag.flip', 'feature_flag', 'x', '{}');";
    let test_db = seeded(
        backend,
        old_console_ddl(backend),
        &format!("{}\n{bad}", old_console_history(backend)),
    )
    .await;
    assert_eq!(
        refused(&test_db, backend).await,
        [
            "console_feature_flags.flag_key is not a flag key vexil can declare (^[a-z][a-z0-9_]{0,63}$) in 1 row: flag_key 'Bad-Key', env 'prod'",
            "console_feature_flags.env is not one of vexil's envs (staging, prod) in 1 row: flag_key 'dark_mode', env 'dev'",
            "console_feature_flags.value is not 0 or 1 in 1 row: flag_key 'search_typo_tolerance', env 'prod' (value 2)",
            "console_audit_log.admin_id is neither NULL nor a positive integer in 1 row: id 20 (admin_id -1)",
        ]
    );
}
both!(values_vexil_cannot_take_are_refused_naming_the_rows);

/// What only SQLite's columns can hold: a time written another way, a payload that
/// is not JSON.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sqlite_times_and_payloads_vexil_cannot_read_are_refused() {
    let backend = Backend::Sqlite;
    let bad = "INSERT INTO console_audit_log (id, created_at, admin_id, action, target_type, target_id, payload) VALUES \
                   (20, '2026-03-06T09:00:00Z', 7, 'console.flag.flip', 'feature_flag', 'x', '{}'), \
                   (21, '2026-03-06 09:00:00', 7, 'console.flag.flip', 'feature_flag', 'x', 'flipped x'), \
                   (22, '2026-02-30 09:00:00', 7, 'console.flag.flip', 'feature_flag', 'x', '{}');";
    let test_db = seeded(
        backend,
        old_console_ddl(backend),
        &format!("{}\n{bad}", old_console_history(backend)),
    )
    .await;
    assert_eq!(
        refused(&test_db, backend).await,
        [
            "console_audit_log.created_at is not a UTC time as vexil writes it (YYYY-MM-DD HH:MM:SS, a fraction optional) in 2 rows: id 20 (created_at '2026-03-06T09:00:00Z'); id 22 (created_at '2026-02-30 09:00:00')",
            "console_audit_log.payload is NULL or not JSON text in 1 row: id 21",
        ]
    );
}

/// A payload kept as text on PostgreSQL must hold JSON, row by row.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn postgres_text_payloads_that_are_not_json_are_refused() {
    let backend = Backend::Postgres;
    let ddl =
        old_console_ddl(backend).replace("payload     jsonb NOT NULL DEFAULT '{}'", "payload text");
    let bad = "INSERT INTO console_audit_log (id, admin_id, action, target_type, target_id, payload) \
               VALUES (20, 7, 'console.flag.flip', 'feature_flag', 'x', 'flipped x');";
    let test_db = seeded(
        backend,
        &ddl,
        &format!("{}\n{bad}", old_console_history(backend)),
    )
    .await;
    assert_eq!(
        refused(&test_db, backend).await,
        ["console_audit_log.payload is not JSON in 1 row: id 20"]
    );
}

async fn a_table_of_vexils_name_and_a_view_on_the_log_are_refused(backend: Backend) {
    let ours = "CREATE TABLE users (id INTEGER PRIMARY KEY, email TEXT);
                CREATE VIEW recent_flips AS SELECT * FROM console_audit_log WHERE action = 'console.flag.flip';";
    let test_db = seeded(
        backend,
        &format!("{}\n{ours}", old_console_ddl(backend)),
        &old_console_history(backend),
    )
    .await;
    assert_eq!(
        refused(&test_db, backend).await,
        [
            "view recent_flips uses console_audit_log: drop it before adopting, and create it again after",
            "table users is already there and is not one of the runbook's two tables: vexil creates its own users; rename or drop yours first",
        ]
    );
}
both!(a_table_of_vexils_name_and_a_view_on_the_log_are_refused);

async fn two_rows_of_one_key_are_refused(backend: Backend) {
    // The old console's flag table without its primary key, and a pair written twice.
    let ddl =
        old_console_ddl(backend).replace(",\n                PRIMARY KEY (flag_key, env)", "");
    assert_ne!(ddl, old_console_ddl(backend));
    let twice = "INSERT INTO console_feature_flags (flag_key, env, value, updated_at) VALUES \
                 ('dark_mode', 'prod', 0, CURRENT_TIMESTAMP);";
    let test_db = seeded(
        backend,
        &ddl,
        &format!("{}\n{twice}", old_console_history(backend)),
    )
    .await;
    assert_eq!(
        refused(&test_db, backend).await,
        [
            "console_feature_flags (flag_key, env) is held by more than one row in 2 rows: flag_key 'dark_mode', env 'prod'; flag_key 'dark_mode', env 'prod'"
        ]
    );
}
both!(two_rows_of_one_key_are_refused);
