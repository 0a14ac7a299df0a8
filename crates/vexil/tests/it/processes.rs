//! Several real processes on one database: this test binary starts copies of itself,
//! each running only `child_process_prints_what_it_applies`, which links the library
//! like any application and prints one JSON line per change it applies. The parent
//! changes a flag with direct SQL and waits until every child has printed it.

use std::io::{BufRead, BufReader};
use std::process::{Child, Command, Stdio};
use std::sync::mpsc::{Receiver, channel};

use vexil_store::Backend;
use vexil_testkit::{TestDb, both};

use crate::{DEADLINE, runbook_update};

/// Set in a child's environment: run as a child, not as a test.
const CHILD: &str = "VEXIL_TEST_CHILD";

/// The child: only does something when started by the parent below.
#[tokio::test(flavor = "current_thread")]
async fn child_process_prints_what_it_applies() {
    if std::env::var_os(CHILD).is_none() {
        return;
    }
    let flags = vexil::Flags::from_env().await.unwrap();
    let mut changes = flags.subscribe();
    let mut health = flags.watch_health();
    health.wait_for(|h| h.source_up).await.unwrap();
    println!("{{\"ready\":true}}");
    while let Ok(applied) = changes.recv().await {
        println!(
            "{{\"flag\":\"{}\",\"on\":{}}}",
            applied.flag_key, applied.on
        );
    }
}

struct ChildProcess {
    child: Child,
    lines: Receiver<String>,
}

impl Drop for ChildProcess {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

impl ChildProcess {
    fn start(test_db: &TestDb, flags_file: &std::path::Path) -> ChildProcess {
        let mut child = Command::new(std::env::current_exe().unwrap())
            .args([
                "--exact",
                "processes::child_process_prints_what_it_applies",
                "--nocapture",
                "--test-threads=1",
            ])
            .env(CHILD, "1")
            .env("VEXIL_ENV", "prod")
            .env("VEXIL_FLAGS", flags_file)
            .env("DATABASE_URL", test_db.url_string())
            .env("FLAG_CONSOLE_FEATURE_FLAGS_DB", "1")
            .stdout(Stdio::piped())
            .spawn()
            .unwrap();
        let stdout = child.stdout.take().unwrap();
        let (send, lines) = channel();
        std::thread::spawn(move || {
            for line in BufReader::new(stdout).lines().map_while(Result::ok) {
                // The test harness prints its own text around the child's, on the same
                // line for the first one ("test … ... {").
                let Some(start) = line.find('{') else {
                    continue;
                };
                if send.send(line[start..].to_owned()).is_err() {
                    break;
                }
            }
        });
        ChildProcess { child, lines }
    }

    fn expect(&self, line: &str) {
        loop {
            let got = self
                .lines
                .recv_timeout(DEADLINE)
                .unwrap_or_else(|_| panic!("a child never printed {line}"));
            if got == line {
                return;
            }
        }
    }
}

async fn a_change_reaches_every_process(backend: Backend) {
    let test_db = TestDb::new(backend).await;
    let dir = tempfile::tempdir().unwrap();
    let flags_file = dir.path().join("feature_flags.yaml");
    std::fs::write(
        &flags_file,
        include_str!("../../../../examples/feature_flags.yaml"),
    )
    .unwrap();
    let children: Vec<ChildProcess> = (0..3)
        .map(|_| ChildProcess::start(&test_db, &flags_file))
        .collect();
    for child in &children {
        child.expect(r#"{"ready":true}"#);
    }
    test_db
        .execute(&runbook_update("dark_mode", 1))
        .await
        .unwrap();
    for child in &children {
        child.expect(r#"{"flag":"dark_mode","on":true}"#);
    }
    test_db
        .execute(
            "UPDATE console_feature_flags SET value=0 WHERE flag_key='dark_mode' AND env='prod'",
        )
        .await
        .unwrap();
    for child in &children {
        child.expect(r#"{"flag":"dark_mode","on":false}"#);
    }
}
both!(a_change_reaches_every_process);
