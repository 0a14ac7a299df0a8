//! `cargo run --release -p xtask -- api-bench [SECONDS]`: the API's figures for
//! BENCHMARKS.md, on release binaries over loopback, each against a ceiling measured
//! in the same run (xtask itself in release too, so that its `App::flip` baseline is
//! optimised like the server):
//!
//! 1. `GET /api/v1/flags?env=prod` with 100 flags, wrk with 2 threads and 50
//!    connections: req/s and p99, against a bare axum "hello" server
//!    (`crates/vexil-server/examples/hello.rs`) and vexil's own `/healthz`;
//! 2. flips through the API on SQLite, 8 clients each flipping its own flag back and
//!    forth, against `App::flip` from 8 tasks on a database of its own.
//!
//! The per-address limit is off for the run (`VEXIL_API_RATE_LIMIT=0`): wrk is one
//! address, and what is measured is the server, not its limiter.

use std::io::{BufRead, BufReader};
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use anyhow::{Context, bail};

use crate::console_bench::{
    SESSIONS, Server, add_user, direct_flips, free_port, per_second, run_ok, tempfile_dir,
};

const FLAGS: usize = 100;

pub(crate) fn run(seconds: u64) -> anyhow::Result<()> {
    let root = crate::tidy::workspace_root();
    let status = Command::new(env!("CARGO"))
        .args([
            "build",
            "--release",
            "-p",
            "vexil-cli",
            "-p",
            "vexil-server",
            "--examples",
            "--bins",
        ])
        .current_dir(&root)
        .status()?;
    if !status.success() {
        bail!("cargo build --release failed");
    }
    let vexil = root.join("target/release/vexil");
    let hello = root.join("target/release/examples/hello");
    let dir = tempfile_dir()?.join("api");
    std::fs::create_dir_all(&dir)?;
    let flags_file = dir.join("feature_flags.yaml");
    std::fs::write(&flags_file, flags_yaml())?;
    let envs = [
        ("VEXIL_FLAGS", flags_file.display().to_string()),
        (
            "DATABASE_URL",
            format!("sqlite://{}", dir.join("vexil.db").display()),
        ),
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
    run_ok(vexil_cmd(&["migrate"]))?;
    let mut tokens = Vec::new();
    for i in 0..SESSIONS {
        let name = format!("bench{i}");
        add_user(vexil_cmd(&["user", "add", &name, "--role", "ops"]))?;
        let output = vexil_cmd(&["token", "create", &name]).output()?;
        let text = String::from_utf8_lossy(&output.stdout);
        let token = text
            .split_whitespace()
            .find(|word| word.starts_with("vxl_"))
            .context("no token printed")?;
        tokens.push(token.to_owned());
    }

    let port = free_port()?;
    let server = start(vexil_cmd(&[
        "serve",
        "--bind",
        &format!("127.0.0.1:{port}"),
    ]))?;
    let hello_port = free_port()?;
    let mut hello_cmd = Command::new(&hello);
    hello_cmd.arg(format!("127.0.0.1:{hello_port}"));
    let ceiling = start(hello_cmd)?;
    let base = format!("http://127.0.0.1:{port}");

    let auth = format!("Authorization: Bearer {}", tokens[0]);
    let hello_run = wrk(&format!("http://127.0.0.1:{hello_port}/"), None, seconds)?;
    let health_run = wrk(&format!("{base}/healthz"), None, seconds)?;
    let list_run = wrk(
        &format!("{base}/api/v1/flags?env=prod"),
        Some(&auth),
        seconds,
    )?;
    println!(
        "wrk -t2 -c50 {seconds}s: axum hello {:.0} req/s (p99 {:.2} ms); /healthz {:.0} req/s (p99 {:.2} ms); \
         GET /api/v1/flags?env=prod ({FLAGS} flags) {:.0} req/s (p99 {:.2} ms) = {:.0}% of hello",
        hello_run.0,
        hello_run.1,
        health_run.0,
        health_run.1,
        list_run.0,
        list_run.1,
        100.0 * list_run.0 / hello_run.0
    );
    drop(ceiling);

    let runtime = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()?;
    runtime.block_on(async {
        let api = api_flips(&base, &tokens, seconds).await?;
        let direct = direct_flips(seconds).await?;
        println!(
            "API flips, {SESSIONS} clients on distinct flags, SQLite: {api:.0}/s; App::flip from {SESSIONS} tasks: {direct:.0}/s ({:.0}%)",
            100.0 * api / direct
        );
        anyhow::Ok(())
    })?;
    drop(server);
    let _ = std::fs::remove_dir_all(&dir);
    Ok(())
}

pub(crate) fn flags_yaml() -> String {
    (0..FLAGS)
        .map(|i| {
            format!(
                "flag_{i:04}:\n  default: {}\n  description: Benchmark flag number {i}, with a description of ordinary length.\n  risk: low\n",
                i % 2 == 0
            )
        })
        .collect()
}

/// Starts `command` and waits for its "listening on" line (stdout or stderr).
pub(crate) fn start(mut command: Command) -> anyhow::Result<Server> {
    command.stdout(Stdio::piped()).stderr(Stdio::piped());
    let mut child = command.spawn()?;
    let stdout = child.stdout.take().context("stdout")?;
    let stderr = child.stderr.take().context("stderr")?;
    let server = Server(child);
    let (send, lines) = std::sync::mpsc::channel();
    for stream in [
        Box::new(stdout) as Box<dyn std::io::Read + Send>,
        Box::new(stderr),
    ] {
        let send = send.clone();
        std::thread::spawn(move || {
            for line in BufReader::new(stream).lines().map_while(Result::ok) {
                let _ = send.send(line);
            }
        });
    }
    loop {
        let line = lines
            .recv_timeout(Duration::from_secs(30))
            .context("the server did not start")?;
        if line.contains("listening on") {
            return Ok(server);
        }
    }
}

/// wrk with 2 threads and 50 connections: (req/s, p99 in ms). Any non-2xx answer
/// fails the run.
pub(crate) fn wrk(url: &str, header: Option<&str>, seconds: u64) -> anyhow::Result<(f64, f64)> {
    let mut command = Command::new("wrk");
    command.args(["-t2", "-c50", "--latency", &format!("-d{seconds}s")]);
    if let Some(header) = header {
        command.args(["-H", header]);
    }
    measure(command, url)
}

/// [`wrk`] with a Lua script (a POST with a body and headers).
pub(crate) fn wrk_script(
    url: &str,
    script: &std::path::Path,
    seconds: u64,
) -> anyhow::Result<(f64, f64)> {
    let mut command = Command::new("wrk");
    command.args(["-t2", "-c50", "--latency", &format!("-d{seconds}s"), "-s"]);
    command.arg(script);
    measure(command, url)
}

fn measure(mut command: Command, url: &str) -> anyhow::Result<(f64, f64)> {
    let output = command
        .arg(url)
        .output()
        .context("wrk (apt-get install wrk)")?;
    let text = String::from_utf8_lossy(&output.stdout);
    if text.contains("Non-2xx") || text.contains("Socket errors") {
        bail!("wrk saw errors:\n{text}");
    }
    let rps = text
        .lines()
        .find_map(|line| line.strip_prefix("Requests/sec:"))
        .context("no Requests/sec in wrk's output")?
        .trim()
        .parse()?;
    let p99 = text
        .lines()
        .find_map(|line| line.trim().strip_prefix("99%"))
        .context("no 99% line in wrk's output")?
        .trim();
    Ok((rps, millis(p99)?))
}

/// wrk's `812.00us`, `3.31ms`, `1.02s` in milliseconds.
fn millis(text: &str) -> anyhow::Result<f64> {
    let (number, factor) = if let Some(n) = text.strip_suffix("us") {
        (n, 1e-3)
    } else if let Some(n) = text.strip_suffix("ms") {
        (n, 1.0)
    } else if let Some(n) = text.strip_suffix('s') {
        (n, 1e3)
    } else {
        bail!("latency {text:?}")
    };
    Ok(number.parse::<f64>()? * factor)
}

/// Flips per second through the API: each client flips its own flag back and forth,
/// sending the value it last set as the value it saw.
async fn api_flips(base: &str, tokens: &[String], seconds: u64) -> anyhow::Result<f64> {
    let deadline = Instant::now() + Duration::from_secs(seconds);
    let started = Instant::now();
    let mut tasks = Vec::new();
    for (i, token) in tokens.iter().enumerate() {
        let client = reqwest::Client::new();
        let token = token.clone();
        let url = format!("{base}/api/v1/flags/flag_{:04}/flip", i * 4);
        // Even flags default to on.
        let mut value = (i * 4) % 2 == 0;
        tasks.push(tokio::spawn(async move {
            let mut flips = 0u64;
            while Instant::now() < deadline {
                let body = format!(r#"{{"env":"prod","from":{value},"to":{}}}"#, !value);
                let response = client
                    .post(&url)
                    .bearer_auth(&token)
                    .header("content-type", "application/json")
                    .body(body)
                    .send()
                    .await?;
                if response.status() != 200 {
                    bail!("{url}: {} {}", response.status(), response.text().await?);
                }
                value = !value;
                flips += 1;
            }
            anyhow::Ok(flips)
        }));
    }
    per_second(tasks, started).await
}
