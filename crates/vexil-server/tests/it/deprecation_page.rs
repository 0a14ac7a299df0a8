//! `/console/deprecation`: the runbook's deprecation table in the console, from a live
//! process reporting its variables and a flip made through the console.

use std::time::{Duration, SystemTime};

use vexil_core::EnvSnapshot;
use vexil_store::Backend;

use crate::harness::TestConsole;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_table_in_the_console() {
    let console = TestConsole::start(Backend::Sqlite).await;
    let flags = vexil::read_flag_set(&console.state.flags_file).unwrap();
    let process = vexil::Flags::builder()
        .env("staging")
        .flag_set(flags)
        .env_vars(EnvSnapshot::capture([("FLAG_DARK_MODE", "1")]))
        .database_url(console.test_db().url_string())
        .application("web")
        .heartbeat(Duration::from_millis(100))
        .start()
        .await
        .unwrap();
    let mut health = process.watch_health();
    tokio::time::timeout(
        Duration::from_secs(20),
        health.wait_for(|h| h.reported_at.is_some_and(|at| at > SystemTime::UNIX_EPOCH)),
    )
    .await
    .expect("the process reported")
    .unwrap();

    let ops = console.signed_in("ops1").await;
    let before = ops.get("/console/deprecation").await;
    assert_eq!(before.status, 200);
    before.assert_says("in use");
    // The staging row: the variable turns dormant there (prod has no row yet).
    assert_eq!(
        ops.flip("dark_mode", "staging", true, &[]).await.status,
        303
    );
    let page = ops.get("/console/deprecation").await;
    page.assert_contains(r#"<tr id="deprecation-dark_mode-staging">"#);
    let row = page
        .body
        .split(r#"<tr id="deprecation-dark_mode-staging">"#)
        .nth(1)
        .and_then(|rest| rest.split("</tr>").next())
        .unwrap()
        .to_owned();
    assert!(row.contains("status-dormant"), "{row}");
    assert!(row.contains("no DB row in prod"), "{row}");
    assert!(row.contains("pid"), "the process that carries it: {row}");

    let reader = console.signed_in("reader").await;
    assert_eq!(reader.get("/console/deprecation").await.status, 403);
    drop(process);
    console.stop().await;
}
