//! `cargo xtask propagation [sqlite|postgres] [FLIPS] [remote]`: how long a flip takes
//! to reach other processes. Three processes follow a fresh database: in database
//! mode, three running the library's `watch` example linked to it; with `remote`, a
//! release `vexil serve` on it, followed by two `watch` processes and one Python
//! process (`xtask/python/watch.py`, the package built in release) in remote mode.
//! FLIPS flips are made through `vexil-app` and FLIPS more through the runbook's
//! direct SQL UPDATE, one at a time, spread over the poll interval. The latency of
//! each is from the moment its commit returned to the moment each process applied it
//! (the processes print their wall-clock time; all run on this machine).

use std::io::{BufRead, BufReader};
use std::process::{Child, ChildStdout, Command, Stdio};
use std::sync::Arc;
use std::sync::mpsc::{Receiver, channel};
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use anyhow::{Context, bail};
use secrecy::SecretString;
use vexil_app::{Admin, App, Flip, StepUp};
use vexil_core::audit::Via;
use vexil_core::{Env, EnvSnapshot, Envs, FlagKey, FlagSet, Role};
use vexil_store::Backend;
use vexil_testkit::TestDb;

const PROCESSES: usize = 3;
const FLAG: &str = "dark_mode";
const DEADLINE: Duration = Duration::from_secs(30);

/// One `watch` process, its lines arriving on a channel.
struct Watcher {
    child: Child,
    lines: Receiver<serde_json::Value>,
}

impl Drop for Watcher {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

pub(crate) fn run(backend: &str, flips: usize, remote: bool) -> anyhow::Result<()> {
    let backend = match backend {
        "sqlite" => Backend::Sqlite,
        "postgres" => Backend::Postgres,
        other => bail!("unknown backend {other:?}: sqlite or postgres"),
    };
    let root = crate::tidy::workspace_root();
    crate::fleet_bench::build_release(&root)?;
    let python = match remote {
        true => Some(crate::python_env::bench_python(&root)?),
        false => None,
    };
    let watch = root.join("target/release/examples/watch");
    let flags_file = root.join("examples/feature_flags.yaml");
    let runtime = tokio::runtime::Runtime::new()?;
    runtime.block_on(async {
        let test_db = TestDb::new(backend).await;
        let app = app(&test_db).await?;
        let mut _server = None;
        let mut commands = Vec::new();
        for i in 0..PROCESSES {
            let mut command = match (&python, i) {
                (Some(python), 0) => {
                    let mut command = Command::new(python);
                    command.arg(root.join("xtask/python/watch.py"));
                    command
                }
                _ => Command::new(&watch),
            };
            command
                .env_clear()
                .env("VEXIL_ENV", "prod")
                .env("VEXIL_FLAGS", &flags_file)
                .stdout(Stdio::piped());
            commands.push(command);
        }
        if remote {
            let server = crate::fleet_bench::Server::start(&root, &test_db.url_string(), &flags_file)?;
            let key = server.client_key(&app).await?;
            for command in &mut commands {
                command.env("VEXIL_URL", server.url()).env("VEXIL_CLIENT_KEY", &key);
            }
            _server = Some(server);
        } else {
            for command in &mut commands {
                command
                    .env("DATABASE_URL", test_db.url_string())
                    .env("FLAG_CONSOLE_FEATURE_FLAGS_DB", "1");
            }
        }
        let mut watchers = Vec::new();
        for command in &mut commands {
            let mut child = command.spawn().context("starting a watching process")?;
            let lines = read_lines(child.stdout.take().expect("piped"));
            watchers.push(Watcher { child, lines });
        }
        for watcher in &watchers {
            let ready = watcher.lines.recv_timeout(DEADLINE)?;
            if ready["ready"] != true {
                bail!("expected a ready line, got {ready}");
            }
        }
        let actor = app.actor("bench").await?;
        let mut on = false;
        let mut through_app = Vec::new();
        for i in 0..flips {
            arrive(i).await;
            on = !on;
            let flip = Flip {
                flag: &FlagKey::parse(FLAG)?,
                env: &Env::PROD,
                expected_from: Some(!on),
                to: on,
                reason: None,
                via: Via::Cli,
            };
            app.flip(&actor, &flip, StepUp::None).await?;
            through_app.extend(latencies(&watchers, on, now_nanos())?);
        }
        let mut through_sql = Vec::new();
        for i in 0..flips {
            arrive(i).await;
            on = !on;
            test_db
                .execute(&format!(
                    "UPDATE console_feature_flags SET value={} WHERE flag_key='{FLAG}' AND env='prod'",
                    u8::from(on)
                ))
                .await
                .map_err(anyhow::Error::msg)?;
            through_sql.extend(latencies(&watchers, on, now_nanos())?);
        }
        let mode = match remote {
            true => "following a vexil serve (2 Rust, 1 Python)",
            false => "linked to the database",
        };
        println!("propagation on {backend:?}, {PROCESSES} processes {mode}, {flips} flips per path");
        report("vexil-app flip", &mut through_app);
        report("direct SQL UPDATE", &mut through_sql);
        Ok(())
    })
}

/// A `vexil-app` on `test_db` with an ops account `bench`.
pub(crate) async fn app(test_db: &TestDb) -> anyhow::Result<App> {
    let flags = FlagSet::parse(
        "feature_flags.yaml",
        include_bytes!("../../examples/feature_flags.yaml"),
    )
    .map_err(|errors| anyhow::anyhow!("{errors}"))?;
    let app = App::new(
        test_db.db.clone(),
        flags,
        Envs::runbook(),
        Some(Env::PROD),
        EnvSnapshot::default(),
        Arc::new(vexil_testkit::TestClock::fixed()),
    );
    let password = SecretString::from("a long enough password");
    app.add_user(Admin::Cli, "bench", Role::Ops, &password)
        .await?;
    Ok(app)
}

/// Spreads flip `i` over the 100 ms of SQLite's poll (in 37 ms steps, modulo 100):
/// flips made right after the previous one was applied would all land just after a
/// poll and wait nearly a whole interval, which no operator's timing does.
async fn arrive(i: usize) {
    tokio::time::sleep(Duration::from_millis((i as u64 * 37) % 100)).await;
}

fn read_lines(stdout: ChildStdout) -> Receiver<serde_json::Value> {
    let (send, lines) = channel();
    std::thread::spawn(move || {
        for line in BufReader::new(stdout).lines() {
            let Ok(line) = line else { break };
            let Ok(value) = serde_json::from_str(&line) else {
                continue;
            };
            if send.send(value).is_err() {
                break;
            }
        }
    });
    lines
}

/// Waits until every watcher applied `FLAG` = `on`; the latency of each, in µs.
fn latencies(watchers: &[Watcher], on: bool, committed: u128) -> anyhow::Result<Vec<u128>> {
    let mut out = Vec::new();
    for watcher in watchers {
        loop {
            let line = watcher
                .lines
                .recv_timeout(DEADLINE)
                .context("a process did not apply a flip within 30 s")?;
            if line["flag"] == FLAG && line["on"] == on {
                let at = line["at"].as_u64().context("an `at` time")? as u128;
                out.push(at.saturating_sub(committed) / 1000);
                break;
            }
        }
    }
    Ok(out)
}

fn report(path: &str, micros: &mut [u128]) {
    micros.sort_unstable();
    let at = |q: f64| {
        let index = ((micros.len() as f64 - 1.0) * q).round() as usize;
        micros[index] as f64 / 1000.0
    };
    println!(
        "{path}: p50 {:.1} ms, p95 {:.1} ms, p99 {:.1} ms, max {:.1} ms ({} samples)",
        at(0.50),
        at(0.95),
        at(0.99),
        at(1.0),
        micros.len()
    );
}

fn now_nanos() -> u128 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .unwrap_or_default()
        .as_nanos()
}
