//! The `vexil` binary, run for real in a scratch directory (one test binary, one
//! module per command).

mod audit_chain;
mod break_glass;
mod callers;
mod cells;
mod check;
mod client_key;
mod console_door;
mod deprecation;
mod doctor;
mod openfeature;
mod permissions;
mod prepared;
mod processes;
mod promotion;
mod python;
mod reconcile;
mod roles;
mod serve;
mod shape;
mod site;
mod stale;
mod terminal;

/// The binary under test, built by cargo for this test run.
const VEXIL: &str = env!("CARGO_BIN_EXE_vexil");

/// `sql` through `psql` as the test database's owner (unaligned, tuples only), as an
/// operator types it; its stdout, trimmed. Panics with stderr if psql fails.
pub(crate) fn psql(test_db: &vexil_testkit::TestDb, sql: &str) -> String {
    let output = std::process::Command::new("psql")
        .args([
            &test_db.url_string(),
            "-X",
            "-q",
            "-v",
            "ON_ERROR_STOP=1",
            "-A",
            "-t",
            "-c",
            sql,
        ])
        .output()
        .unwrap_or_else(|e| panic!("psql is required by this test and could not run: {e}"));
    assert!(
        output.status.success(),
        "psql failed: {}",
        String::from_utf8_lossy(&output.stderr)
    );
    String::from_utf8(output.stdout).unwrap().trim().to_owned()
}
