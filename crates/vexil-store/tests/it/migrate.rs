//! Migrations: applied once, reported, refused when the database is newer than vexil,
//! and the two trees create the same tables and columns.

use vexil_store::{Backend, StoreError};
use vexil_testkit::TestDb;

use crate::both;

async fn migrate_applies_once_and_says_what_it_did(backend: Backend) {
    let test_db = TestDb::unmigrated(backend).await;
    let report = test_db.db.migrate().await.unwrap();
    assert_eq!(
        report.applied,
        [
            (1, "init".to_owned()),
            (2, "change feed".to_owned()),
            (3, "instances".to_owned()),
            (4, "sessions".to_owned()),
            (5, "promotions".to_owned()),
            (6, "client keys".to_owned()),
            (7, "audit integrity".to_owned()),
            (8, "write evidence".to_owned()),
            (9, "adoption".to_owned())
        ]
    );
    assert_eq!(report.version, 9);
    let again = test_db.db.migrate().await.unwrap();
    assert_eq!((again.applied.len(), again.version), (0, 9));
    test_db.db.check_migrated().await.unwrap();
}
both!(migrate_applies_once_and_says_what_it_did);

async fn an_unmigrated_database_says_run_vexil_migrate(backend: Backend) {
    let test_db = TestDb::unmigrated(backend).await;
    let error = test_db.db.check_migrated().await.unwrap_err();
    assert!(
        matches!(error, StoreError::NotMigrated { at: 0, need: 9, .. }),
        "{error:?}"
    );
    assert!(
        error
            .to_string()
            .ends_with("is not migrated (at migration 0, this vexil needs 9): run `vexil migrate`")
    );
}
both!(an_unmigrated_database_says_run_vexil_migrate);

async fn a_database_newer_than_vexil_is_refused(backend: Backend) {
    let test_db = TestDb::new(backend).await;
    // A migration this vexil does not have, as a newer vexil would have recorded it.
    let checksum = match backend {
        Backend::Sqlite => "x'00'",
        Backend::Postgres => "decode('00', 'hex')",
    };
    test_db.execute(&format!(
            "INSERT INTO _sqlx_migrations (version, description, success, checksum, execution_time) \
             VALUES (9999, 'from the future', TRUE, {checksum}, 1)"
        ),
    )
    .await
    .unwrap();
    for error in [
        test_db.db.check_migrated().await.unwrap_err(),
        test_db.db.migrate().await.unwrap_err(),
    ] {
        assert!(
            matches!(error, StoreError::TooNew { version: 9999, .. }),
            "{error:?}"
        );
        assert!(
            error
                .to_string()
                .contains("was migrated by a newer vexil (it has migration 9999"),
            "{error}"
        );
    }
}
both!(a_database_newer_than_vexil_is_refused);

/// Both trees create the same tables with the same columns (names, in order).
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn both_trees_create_the_same_tables_and_columns() {
    let sqlite = TestDb::new(Backend::Sqlite).await;
    let postgres = TestDb::new(Backend::Postgres).await;
    let sqlite_columns = sqlite.client(
        "SELECT m.name || '.' || p.name FROM sqlite_master m, pragma_table_info(m.name) p \
         WHERE m.type = 'table' AND m.name NOT LIKE 'sqlite_%' AND m.name <> '_sqlx_migrations' \
         ORDER BY m.name, p.cid",
    );
    let postgres_columns = postgres.client(
        "SELECT table_name || '.' || column_name FROM information_schema.columns \
         WHERE table_schema = 'public' AND table_name <> '_sqlx_migrations' \
         ORDER BY table_name, ordinal_position",
    );
    assert_eq!(sqlite_columns, postgres_columns);
    assert!(sqlite_columns.contains("console_feature_flags.flag_key\nconsole_feature_flags.env\nconsole_feature_flags.value\nconsole_feature_flags.updated_at\nconsole_feature_flags.updated_by\n"), "{sqlite_columns}");
    assert!(sqlite_columns.contains("console_audit_log.id\nconsole_audit_log.created_at\nconsole_audit_log.admin_id\nconsole_audit_log.action\nconsole_audit_log.target_type\nconsole_audit_log.target_id\nconsole_audit_log.payload\n"), "{sqlite_columns}");
}
