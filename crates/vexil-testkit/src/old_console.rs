//! The runbook's team's console database before vexil (docs/adopt.md): the two
//! tables as that team plausibly created them (PostgreSQL: `bigserial`,
//! `timestamptz default now()`, `admin_id integer`, `jsonb`; SQLite: `INTEGER PRIMARY
//! KEY`, `DATETIME DEFAULT CURRENT_TIMESTAMP`), an index of theirs, and a history
//! written by their admins #3 and #7, with a gap in the ids (rows 5 to 8 were never
//! written) and a row no admin wrote.

use vexil_store::Backend;

use crate::TestDb;

/// The runbook's query of the audit log, verbatim.
pub const RUNBOOK_SELECT: &str = "SELECT created_at, admin_id, payload
FROM console_audit_log
WHERE action = 'console.flag.flip'
ORDER BY created_at DESC
LIMIT 50;";

/// The runbook's Option A, verbatim, for `dark_mode` in prod: writes 1.
pub const RUNBOOK_OPTION_A: &str =
    "UPDATE console_feature_flags SET value=1, updated_at=CURRENT_TIMESTAMP
WHERE flag_key='dark_mode' AND env='prod';";

/// The old console's tables, empty, as its team created them.
pub fn old_console_ddl(backend: Backend) -> &'static str {
    match backend {
        Backend::Postgres => {
            "CREATE TABLE console_feature_flags (
                flag_key    varchar(64) NOT NULL,
                env         varchar(16) NOT NULL,
                value       integer NOT NULL DEFAULT 0,
                updated_at  timestamptz NOT NULL DEFAULT now(),
                updated_by  text,
                PRIMARY KEY (flag_key, env)
            );
            CREATE TABLE console_audit_log (
                id          bigserial PRIMARY KEY,
                created_at  timestamptz NOT NULL DEFAULT now(),
                admin_id    integer,
                action      text NOT NULL,
                target_type text NOT NULL,
                target_id   text NOT NULL,
                payload     jsonb NOT NULL DEFAULT '{}'
            );
            CREATE INDEX ix_console_audit_log_action ON console_audit_log (action, created_at DESC);"
        }
        Backend::Sqlite => {
            "CREATE TABLE console_feature_flags (
                flag_key    TEXT NOT NULL,
                env         TEXT NOT NULL,
                value       INTEGER NOT NULL DEFAULT 0,
                updated_at  DATETIME NOT NULL DEFAULT CURRENT_TIMESTAMP,
                updated_by  TEXT,
                PRIMARY KEY (flag_key, env)
            );
            CREATE TABLE console_audit_log (
                id          INTEGER PRIMARY KEY,
                created_at  DATETIME NOT NULL DEFAULT CURRENT_TIMESTAMP,
                admin_id    INTEGER,
                action      TEXT NOT NULL,
                target_type TEXT NOT NULL,
                target_id   TEXT NOT NULL,
                payload     TEXT NOT NULL
            );
            CREATE INDEX ix_console_audit_log_action ON console_audit_log (action, created_at);"
        }
    }
}

/// A time literal in UTC as the backend's column takes it.
fn at(backend: Backend, time: &str) -> String {
    match backend {
        Backend::Postgres => format!("'{time}+00'"),
        Backend::Sqlite => format!("'{time}'"),
    }
}

/// The old console's history: five audit rows (ids 1 to 4 and 9) and four flag rows.
pub fn old_console_history(backend: Backend) -> String {
    let flip = |id: u32, time: &str, admin: &str, flag: &str, env: &str| {
        format!(
            "INSERT INTO console_audit_log (id, created_at, admin_id, action, target_type, target_id, payload) \
             VALUES ({id}, {}, {admin}, 'console.flag.flip', 'feature_flag', '{flag}', \
             '{{\"flag\": \"{flag}\", \"env\": \"{env}\", \"from\": false, \"to\": true}}');",
            at(backend, time)
        )
    };
    let row = |flag: &str, env: &str, time: &str, by: &str| {
        format!(
            "INSERT INTO console_feature_flags (flag_key, env, value, updated_at, updated_by) \
             VALUES ('{flag}', '{env}', 1, {}, {by});",
            at(backend, time)
        )
    };
    [
        flip(1, "2025-03-01 09:00:00", "7", "dark_mode", "staging"),
        flip(2, "2025-03-02 10:00:00", "7", "dark_mode", "prod"),
        flip(3, "2025-03-03 11:00:00", "3", "support_chat_widget", "staging"),
        format!(
            "INSERT INTO console_audit_log (id, created_at, admin_id, action, target_type, target_id, payload) \
             VALUES (4, {}, 3, 'console.admin.login', 'admin', '3', '{{\"ip\": \"10.0.0.1\"}}');",
            at(backend, "2025-03-04 12:00:00")
        ),
        flip(9, "2025-03-05 13:00:00", "NULL", "support_chat_widget", "prod"),
        row("dark_mode", "staging", "2025-03-01 09:00:00", "'alice@raxx.app'"),
        row("dark_mode", "prod", "2025-03-02 10:00:00", "'alice@raxx.app'"),
        row("support_chat_widget", "staging", "2025-03-03 11:00:00", "'bob@raxx.app'"),
        row("support_chat_widget", "prod", "2025-03-05 13:00:00", "NULL"),
    ]
    .join("\n")
}

/// A fresh database holding the old console's tables and history, and no vexil
/// schema.
pub async fn old_console(backend: Backend) -> TestDb {
    let test_db = TestDb::unmigrated(backend).await;
    test_db
        .execute(old_console_ddl(backend))
        .await
        .expect("creating the old console's tables");
    test_db
        .execute(&old_console_history(backend))
        .await
        .expect("writing the old console's history");
    test_db
}
