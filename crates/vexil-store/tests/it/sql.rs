//! Direct SQL, as an operator with database access would type it: through a
//! connection of its own, and through the `sqlite3` and `psql` clients.

use vexil_store::Backend;
use vexil_testkit::TestDb;

/// Runs `sql` on its own connection, outside vexil; `Err` carries the database's message.
pub(crate) async fn execute(db: &TestDb, sql: &str) -> Result<u64, String> {
    db.execute(sql).await
}

/// Runs `sql` with the database's own command-line client (`sqlite3` or `psql`), as
/// the runbook's operator does, and returns its stdout; panics with its stderr.
pub(crate) fn client(db: &TestDb, sql: &str) -> String {
    let output = match db.url().backend() {
        Backend::Sqlite => {
            let file = db.url().sqlite_file().expect("a SQLite URL names a file");
            std::process::Command::new("sqlite3")
                .arg(file)
                .arg(sql)
                .output()
        }
        Backend::Postgres => std::process::Command::new("psql")
            .args([
                &db.url_string(),
                "-X",
                "-q",
                "-v",
                "ON_ERROR_STOP=1",
                "-A",
                "-t",
                "-c",
                sql,
            ])
            .output(),
    }
    .unwrap_or_else(|e| {
        panic!("the database client is required by this test and could not run: {e}")
    });
    assert!(
        output.status.success(),
        "client failed: {}",
        String::from_utf8_lossy(&output.stderr)
    );
    String::from_utf8(output.stdout).expect("UTF-8 output")
}
