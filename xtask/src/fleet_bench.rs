//! `cargo run --release -p xtask -- fleet-bench [PROCESSES]`: what a fleet costs
//! PostgreSQL in each mode. PROCESSES (200) processes running the library's `watch`
//! example follow one release `vexil serve` in remote mode; then 20 link the database
//! directly (database mode: 200 would pass PostgreSQL's default `max_connections` of
//! 100). Each count is of `pg_stat_activity` on the fresh database, read by `psql`
//! once every process said it is ready, less the connections open before they
//! started (this program's own pool).
//!
//! Also `Server`, a release `vexil serve` on a database, which `propagation.rs` uses.

use std::io::{BufRead, BufReader};
use std::path::Path;
use std::process::{Child, Command, Stdio};
use std::sync::mpsc::channel;
use std::time::{Duration, Instant};

use anyhow::{Context, bail};
use vexil_app::{Admin, App};
use vexil_core::audit::Via;
use vexil_core::{AppName, Env};
use vexil_store::Backend;
use vexil_testkit::TestDb;

/// Processes linked to the database: enough for a per-process figure, few enough to
/// stay under PostgreSQL's default limit of 100 connections.
const DATABASE_MODE_PROCESSES: usize = 20;
const READY_WITHIN: Duration = Duration::from_secs(180);

/// A release `vexil serve` on one database, on a free loopback port; killed on drop.
pub(crate) struct Server {
    process: crate::console_bench::Server,
    url: String,
}

impl Server {
    pub(crate) fn start(
        root: &Path,
        database_url: &str,
        flags_file: &Path,
    ) -> anyhow::Result<Server> {
        let port = crate::console_bench::free_port()?;
        let mut command = Command::new(root.join("target/release/vexil"));
        command
            .args(["serve", "--bind", &format!("127.0.0.1:{port}")])
            .env_clear()
            .env("DATABASE_URL", database_url)
            .env("VEXIL_FLAGS", flags_file)
            .env("VEXIL_ENV", "prod")
            .env("RUST_LOG", "warn");
        let process = crate::api_bench::start(command)?;
        Ok(Server {
            process,
            url: format!("http://127.0.0.1:{port}"),
        })
    }

    pub(crate) fn url(&self) -> &str {
        &self.url
    }

    pub(crate) fn pid(&self) -> u32 {
        self.process.0.id()
    }

    /// A new prod client key, made through `app` (the same database).
    pub(crate) async fn client_key(&self, app: &App) -> anyhow::Result<String> {
        use secrecy::ExposeSecret;
        let app_name = AppName::parse("fleet")?;
        let (_, key) = app
            .create_client_key(Admin::Cli, Via::Cli, &Env::PROD, &app_name)
            .await?;
        Ok(key.expose_secret().to_owned())
    }
}

/// Watching processes, killed on drop.
struct Fleet(Vec<Child>);

impl Drop for Fleet {
    fn drop(&mut self) {
        for child in &mut self.0 {
            let _ = child.kill();
        }
        for child in &mut self.0 {
            let _ = child.wait();
        }
    }
}

/// Starts `count` processes from `command` and waits for each one's ready line.
fn fleet(count: usize, mut command: impl FnMut() -> Command) -> anyhow::Result<Fleet> {
    let (ready, readies) = channel();
    let mut fleet = Fleet(Vec::with_capacity(count));
    for _ in 0..count {
        let mut child = command()
            .stdout(Stdio::piped())
            .stderr(Stdio::null())
            .spawn()
            .context("starting a watching process")?;
        let stdout = child.stdout.take().context("stdout")?;
        let ready = ready.clone();
        std::thread::spawn(move || {
            let mut lines = BufReader::new(stdout).lines();
            if let Some(Ok(line)) = lines.next()
                && line.contains(r#""ready":true"#)
            {
                let _ = ready.send(());
            }
            // Keep reading, so that the process never blocks on a full pipe.
            for _ in lines {}
        });
        fleet.0.push(child);
    }
    let deadline = Instant::now() + READY_WITHIN;
    for _ in 0..count {
        readies
            .recv_timeout(deadline.saturating_duration_since(Instant::now()))
            .context("a process did not get ready")?;
    }
    Ok(fleet)
}

/// Connections to `database` open now, as PostgreSQL counts them (`psql`'s own left
/// out).
fn connections(admin_url: &str, database: &str) -> anyhow::Result<usize> {
    let output = Command::new("psql")
        .args(["-X", "-q", "-t", "-A", admin_url, "-c"])
        .arg(format!(
            "SELECT count(*) FROM pg_stat_activity WHERE datname = '{database}' AND pid <> pg_backend_pid()"
        ))
        .output()
        .context("running psql")?;
    if !output.status.success() {
        bail!("psql: {}", String::from_utf8_lossy(&output.stderr));
    }
    Ok(String::from_utf8_lossy(&output.stdout).trim().parse()?)
}

/// The release `vexil` and the library's `watch` example, which both benchmarks run.
pub(crate) fn build_release(root: &Path) -> anyhow::Result<()> {
    let status = Command::new(env!("CARGO"))
        .args(["build", "--release", "-p", "vexil", "--example", "watch"])
        .args(["-p", "vexil-cli", "--bin", "vexil"])
        .current_dir(root)
        .status()?;
    if !status.success() {
        bail!("building the watch example and vexil failed");
    }
    Ok(())
}

pub(crate) fn run(processes: usize) -> anyhow::Result<()> {
    let root = crate::tidy::workspace_root();
    build_release(&root)?;
    let watch = root.join("target/release/examples/watch");
    let flags_file = root.join("examples/feature_flags.yaml");
    let runtime = tokio::runtime::Runtime::new()?;
    runtime.block_on(async {
        let test_db = TestDb::new(Backend::Postgres).await;
        let url = test_db.url_string();
        let database = url.rsplit('/').next().context("a database name")?.to_owned();
        let admin_url = vexil_testkit::POSTGRES_ADMIN_URL;
        let app = crate::propagation::app(&test_db).await?;
        let before = connections(admin_url, &database)?;

        let server = Server::start(&root, &url, &flags_file)?;
        let key = server.client_key(&app).await?;
        tokio::time::sleep(Duration::from_secs(2)).await;
        let server_alone = connections(admin_url, &database)? - before;
        let started = Instant::now();
        let remote = fleet(processes, || {
            let mut command = Command::new(&watch);
            command
                .env_clear()
                .env("VEXIL_ENV", "prod")
                .env("VEXIL_FLAGS", &flags_file)
                .env("VEXIL_URL", server.url())
                .env("VEXIL_CLIENT_KEY", &key);
            command
        })?;
        let ready_in = started.elapsed();
        tokio::time::sleep(Duration::from_secs(2)).await;
        let remote_connections = connections(admin_url, &database)? - before;
        let server_mb = crate::console_bench::rss_mb(server.pid())?;
        let mut process_mb: Vec<f64> = remote
            .0
            .iter()
            .filter_map(|child| crate::console_bench::rss_mb(child.id()).ok())
            .collect();
        process_mb.sort_by(f64::total_cmp);
        drop(remote);
        drop(server);
        tokio::time::sleep(Duration::from_secs(2)).await;

        let before = connections(admin_url, &database)?;
        let linked = fleet(DATABASE_MODE_PROCESSES, || {
            let mut command = Command::new(&watch);
            command
                .env_clear()
                .env("VEXIL_ENV", "prod")
                .env("VEXIL_FLAGS", &flags_file)
                .env("DATABASE_URL", &url);
            command
        })?;
        tokio::time::sleep(Duration::from_secs(2)).await;
        let linked_connections = connections(admin_url, &database)? - before;
        drop(linked);

        let per_process = linked_connections as f64 / DATABASE_MODE_PROCESSES as f64;
        println!("database connections held by a fleet, PostgreSQL");
        println!(
            "  remote mode: {processes} processes and their vexil serve hold {remote_connections} connections, the server alone {server_alone} (all {processes} ready in {:.1} s; server RSS {server_mb:.1} MiB, median process RSS {:.1} MiB)",
            ready_in.as_secs_f64(),
            process_mb.get(process_mb.len() / 2).copied().unwrap_or(f64::NAN)
        );
        println!(
            "  database mode: {DATABASE_MODE_PROCESSES} processes hold {linked_connections} connections ({per_process:.2} each; {processes} would need {:.0})",
            per_process * processes as f64
        );
        Ok(())
    })
}
