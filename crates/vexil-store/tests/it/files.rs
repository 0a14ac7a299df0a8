//! A SQLite database holds password hashes, sessions and the audit log: the file
//! vexil creates, and the journal files SQLite creates beside it, are its owner's
//! only (replayed: they were 0644, readable by every local user).

use std::os::unix::fs::PermissionsExt;

use vexil_store::Backend;
use vexil_testkit::TestDb;

#[tokio::test]
async fn a_new_sqlite_database_and_its_journal_files_are_private() {
    let test_db = TestDb::new(Backend::Sqlite).await;
    // A write, so that the WAL and its index exist.
    test_db
        .execute("INSERT INTO console_feature_flags (flag_key, env, value) VALUES ('x', 'prod', 1)")
        .await
        .unwrap();
    let database = test_db.url().sqlite_file().unwrap();
    for suffix in ["", "-wal", "-shm"] {
        let mut path = database.clone().into_os_string();
        path.push(suffix);
        let mode = std::fs::metadata(&path)
            .unwrap_or_else(|e| panic!("{}: {e}", path.to_string_lossy()))
            .permissions()
            .mode();
        assert_eq!(mode & 0o777, 0o600, "{}", path.to_string_lossy());
    }
}
