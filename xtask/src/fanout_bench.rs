//! `cargo run --release -p xtask -- fanout-bench [SUBSCRIBERS] [FLIPS]`: the hub's
//! fan-out for BENCHMARKS.md. One `vexil serve` (release) on a fresh PostgreSQL
//! database; SUBSCRIBERS (10,000) streams of `/sdk/v1/stream` opened from this process,
//! as a fleet's processes would; then FLIPS (10) flips through the API, one at a time,
//! and for each the time from sending the flip until each subscriber has read its
//! `change` event: p50, p99, max, the share within 250 ms and whether all arrived
//! within 1 s. The server's resident memory before the subscribers connect and once
//! they idle gives the memory per idle subscriber.
//!
//! The open-file limit is raised here (both ends of every stream are on this
//! machine), never in the product. The clock starts before the flip request is sent,
//! so each figure includes the flip itself (its transaction, the notification) and
//! this process waking 10,000 readers on the same two cores as the server.

use std::process::Command;
use std::sync::Arc;
use std::time::{Duration, Instant};

use anyhow::{Context, bail};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;
use tokio::sync::mpsc;
use vexil_store::Backend;

use crate::console_bench::{add_user, free_port, rss_mb};

/// Subscribers connecting at once: the server's accept queue, not the test, sets it.
const CONNECT_BATCH: usize = 500;

pub(crate) fn run(subscribers: usize, flips: usize) -> anyhow::Result<()> {
    let root = crate::tidy::workspace_root();
    let status = Command::new(env!("CARGO"))
        .args(["build", "--release", "-p", "vexil-cli"])
        .current_dir(&root)
        .status()?;
    if !status.success() {
        bail!("cargo build --release failed");
    }
    // Each end of the streams is its own process: this one and the server (which
    // inherits the limit) each hold one socket per subscriber.
    raise_open_files(subscribers as u64 + 1024)?;
    let vexil = root.join("target/release/vexil");
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()?;
    runtime.block_on(async {
        let test_db = vexil_testkit::TestDb::new(Backend::Postgres).await;
        let dir = crate::console_bench::tempfile_dir()?.join("fanout");
        std::fs::create_dir_all(&dir)?;
        let flags_file = dir.join("feature_flags.yaml");
        std::fs::write(&flags_file, crate::api_bench::flags_yaml())?;
        let envs = [
            ("VEXIL_FLAGS", flags_file.display().to_string()),
            ("DATABASE_URL", test_db.url_string()),
            ("VEXIL_ENV", "prod".to_owned()),
            ("FLAG_CONSOLE_FEATURE_FLAGS_DB", "1".to_owned()),
            ("VEXIL_API_RATE_LIMIT", "0".to_owned()),
            ("RUST_LOG", "warn".to_owned()),
        ];
        let vexil_cmd = |args: &[&str]| {
            let mut command = Command::new(&vexil);
            command.args(args).envs(envs.iter().cloned());
            command
        };
        add_user(vexil_cmd(&["user", "add", "admin", "--role", "superadmin"]))?;
        let token = printed(vexil_cmd(&["token", "create", "admin"]), "vxl_")?;
        let key = printed(
            vexil_cmd(&["client-key", "create", "--env", "prod", "--app", "fleet"]),
            "vxc_",
        )?;
        let port = free_port()?;
        let server = crate::api_bench::start(vexil_cmd(&[
            "serve",
            "--bind",
            &format!("127.0.0.1:{port}"),
        ]))?;
        let address = format!("127.0.0.1:{port}");
        tokio::time::sleep(Duration::from_secs(1)).await;
        let idle = rss_mb(server.0.id())?;

        let (arrivals, mut received) = mpsc::unbounded_channel::<(usize, Instant)>();
        let request = Arc::new(format!(
            "GET /sdk/v1/stream HTTP/1.1\r\nHost: vexil\r\nAuthorization: Bearer {key}\r\n\r\n"
        ));
        let (ready, mut all_ready) = mpsc::unbounded_channel::<()>();
        let started = Instant::now();
        for batch in 0..subscribers.div_ceil(CONNECT_BATCH) {
            let count = CONNECT_BATCH.min(subscribers - batch * CONNECT_BATCH);
            for _ in 0..count {
                let stream = TcpStream::connect(&address).await.context("connect")?;
                tokio::spawn(subscribe(stream, request.clone(), ready.clone(), arrivals.clone()));
            }
            for _ in 0..count {
                all_ready.recv().await.context("a subscriber failed")?;
            }
        }
        let connect_time = started.elapsed();
        tokio::time::sleep(Duration::from_secs(3)).await;
        let loaded = rss_mb(server.0.id())?;
        let per_subscriber_kb = (loaded - idle) * 1024.0 / subscribers as f64;

        let client = reqwest::Client::new();
        let mut latencies: Vec<Duration> = Vec::with_capacity(subscribers * flips);
        let mut late = 0usize;
        for flip in 0..flips {
            let from = flip % 2 == 1;
            let sent = Instant::now();
            let response = client
                .post(format!("http://{address}/api/v1/flags/flag_0001/flip"))
                .bearer_auth(&token)
                .header("content-type", "application/json")
                .body(format!(r#"{{"env":"prod","from":{from},"to":{}}}"#, !from))
                .send()
                .await?;
            if response.status() != 200 {
                bail!("flip: {} {}", response.status(), response.text().await?);
            }
            let mut seen = 0;
            let deadline = tokio::time::Instant::now() + Duration::from_secs(10);
            while seen < subscribers {
                match tokio::time::timeout_at(deadline, received.recv()).await {
                    Ok(Some((index, at))) if index == flip => {
                        latencies.push(at - sent);
                        seen += 1;
                    }
                    Ok(Some(_)) => {}
                    Ok(None) => bail!("every subscriber is gone"),
                    Err(_) => {
                        late += subscribers - seen;
                        break;
                    }
                }
            }
            tokio::time::sleep(Duration::from_millis(500)).await;
        }
        latencies.sort();
        let at = |q: f64| latencies[((latencies.len() as f64 * q) as usize).min(latencies.len() - 1)];
        let within = |limit: Duration| latencies.iter().filter(|l| **l <= limit).count();
        let total = subscribers * flips;
        println!(
            "{subscribers} subscribers connected in {connect_time:.1?}; server RSS {idle:.1} MiB idle, {loaded:.1} MiB with them: {per_subscriber_kb:.2} KiB per idle subscriber"
        );
        println!(
            "{flips} flips × {subscribers} subscribers: p50 {:.1?}, p99 {:.1?}, max {:.1?}; {:.2}% within 250 ms, {} of {total} within 1 s, {late} never arrived within 10 s",
            at(0.50),
            at(0.99),
            latencies.last().copied().unwrap_or_default(),
            100.0 * within(Duration::from_millis(250)) as f64 / total as f64,
            within(Duration::from_secs(1)),
        );
        drop(server);
        let _ = std::fs::remove_dir_all(&dir);
        anyhow::Ok(())
    })
}

/// One subscriber: its request, the snapshot read, then one arrival per `change`.
async fn subscribe(
    mut stream: TcpStream,
    request: Arc<String>,
    ready: mpsc::UnboundedSender<()>,
    arrivals: mpsc::UnboundedSender<(usize, Instant)>,
) -> anyhow::Result<()> {
    stream.write_all(request.as_bytes()).await?;
    let mut buffer = vec![0u8; 4096];
    let mut pending = Vec::new();
    let mut snapshot = false;
    let mut changes = 0usize;
    loop {
        let n = stream.read(&mut buffer).await?;
        if n == 0 {
            bail!("the stream ended");
        }
        let now = Instant::now();
        pending.extend_from_slice(&buffer[..n]);
        // Whole events only: each ends with a blank line.
        while let Some(end) = find(&pending, b"\n\n") {
            let event: Vec<u8> = pending.drain(..end + 2).collect();
            if find(&event, b"event: snapshot").is_some() && !snapshot {
                snapshot = true;
                let _ = ready.send(());
            } else if find(&event, b"event: change").is_some() {
                let _ = arrivals.send((changes, now));
                changes += 1;
            }
        }
    }
}

fn find(haystack: &[u8], needle: &[u8]) -> Option<usize> {
    haystack.windows(needle.len()).position(|w| w == needle)
}

/// The word starting with `prefix` that `command` prints (a token, a key).
fn printed(mut command: Command, prefix: &str) -> anyhow::Result<String> {
    let output = command.output()?;
    if !output.status.success() {
        bail!("{command:?}: {}", String::from_utf8_lossy(&output.stderr));
    }
    String::from_utf8_lossy(&output.stdout)
        .split_whitespace()
        .find(|word| word.starts_with(prefix))
        .map(str::to_owned)
        .with_context(|| format!("{command:?} printed no {prefix}…"))
}

/// The soft limit of open files up to `wanted`, within the hard limit.
fn raise_open_files(wanted: u64) -> anyhow::Result<()> {
    use rustix::process::{Resource, getrlimit, setrlimit};
    let mut limit = getrlimit(Resource::Nofile);
    let hard = limit.maximum.unwrap_or(u64::MAX);
    if hard < wanted {
        bail!("the open-file hard limit is {hard}; this benchmark needs {wanted} (ulimit -Hn)");
    }
    if limit.current.is_some_and(|current| current < wanted) {
        limit.current = Some(wanted);
        setrlimit(Resource::Nofile, limit)?;
    }
    Ok(())
}
