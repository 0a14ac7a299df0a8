//! Several OS processes on one database: concurrent break-glass flips change a flag
//! once, and a flip killed with SIGKILL at any moment leaves no row change without
//! its audit row and no audit row without its change.

use std::process::{Command, Stdio};

use serde_json::Value;
use vexil_store::{AuditFilter, Backend, Db};
use vexil_testkit::TestDb;

use crate::site::Site;

/// A site on a migrated database with an ops account.
async fn site(backend: Backend) -> (Site, TestDb) {
    let test_db = TestDb::new(backend).await;
    let site = Site::new(test_db.url_string());
    let added = site.run_with_stdin(
        &["user", "add", "olive", "--role", "ops"],
        "a long enough password",
    );
    assert_eq!(added.code, Some(0), "{added:?}");
    (site, test_db)
}

fn flip(site: &Site, on: bool) -> Command {
    let value = if on { "--on" } else { "--off" };
    let mut command = site.command(&["flip", "dark_mode", "--env", "prod", value, "--as", "olive"]);
    command.stdout(Stdio::null()).stderr(Stdio::null());
    command
}

async fn flip_rows(db: &Db) -> Vec<Value> {
    let filter = AuditFilter {
        action: Some("console.flag.flip".into()),
        limit: 10_000,
        ..AuditFilter::default()
    };
    db.audit_page(&filter)
        .await
        .unwrap()
        .into_iter()
        .rev()
        .map(|row| row.payload)
        .collect()
}

async fn concurrent_processes_flip_once(backend: Backend) {
    let (site, test_db) = site(backend).await;
    let children: Vec<_> = (0..8).map(|_| flip(&site, true).spawn().unwrap()).collect();
    let codes: Vec<i32> = children
        .into_iter()
        .map(|mut c| c.wait().unwrap().code().unwrap())
        .collect();
    assert_eq!(
        codes.iter().filter(|&&c| c == 0).count(),
        1,
        "exactly one process flips: {codes:?}"
    );
    assert!(
        codes.iter().all(|&c| c == 0 || c == 1),
        "the others are refused (already on): {codes:?}"
    );
    assert_eq!(flip_rows(&test_db.db).await.len(), 1);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn concurrent_processes_flip_once_on_sqlite() {
    concurrent_processes_flip_once(Backend::Sqlite).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn concurrent_processes_flip_once_on_postgres() {
    concurrent_processes_flip_once(Backend::Postgres).await;
}

/// 50 flips, each killed with SIGKILL at a moment spread over the time one flip takes
/// (by coreutils' `timeout`, so the test itself never sleeps): whatever was committed
/// is whole.
async fn killed_flips_leave_the_log_whole(backend: Backend) {
    let (site, test_db) = site(backend).await;
    // How long one whole flip takes here (a round trip on and off), to aim the kills.
    let started = std::time::Instant::now();
    assert!(flip(&site, true).status().unwrap().success());
    assert!(flip(&site, false).status().unwrap().success());
    let whole_ms = u32::try_from(started.elapsed().as_millis() / 2)
        .unwrap()
        .max(2);
    for i in 0..50u32 {
        let on = i % 2 == 0;
        // Spread over 1 ms to 1.5 times a whole flip, in a fixed, scrambled order.
        let ms = (i * 37) % 50 * (whole_ms * 3 / 2) / 50 + 1;
        let inner = flip(&site, on);
        let mut killer = Command::new("timeout");
        killer
            .args(["-s", "KILL", &format!("0.{ms:03}")])
            .arg(inner.get_program())
            .args(inner.get_args());
        for (key, value) in inner.get_envs() {
            match value {
                Some(value) => killer.env(key, value),
                None => killer.env_remove(key),
            };
        }
        killer
            .current_dir(site.dir.path())
            .stdout(Stdio::null())
            .stderr(Stdio::null());
        killer.status().expect("coreutils' timeout runs");
    }

    // Every committed flip is a row change and its audit row: the chain of audit rows
    // goes from value to value without a gap, and ends at the value the row holds.
    let payloads = flip_rows(&test_db.db).await;
    // The kills must have landed both before and after commits, or this proved nothing.
    assert!(
        payloads.len() > 2 && payloads.len() < 52,
        "{} of 52 flips committed (one flip takes {whole_ms} ms)",
        payloads.len()
    );
    let mut value = false;
    for payload in &payloads {
        assert_eq!(
            payload["from"],
            Value::Bool(value),
            "a change without its audit row before {payload}"
        );
        value = payload["to"].as_bool().unwrap();
    }
    let rows = test_db.db.flag_rows().await.unwrap();
    match rows.as_slice() {
        [] => assert!(
            payloads.is_empty(),
            "audit rows without their change: {payloads:?}"
        ),
        [row] => assert_eq!(row.value, value, "the row and the last audit row disagree"),
        more => panic!("one pair, one row: {more:?}"),
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn killed_flips_leave_the_log_whole_on_sqlite() {
    killed_flips_leave_the_log_whole(Backend::Sqlite).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn killed_flips_leave_the_log_whole_on_postgres() {
    killed_flips_leave_the_log_whole(Backend::Postgres).await;
}
