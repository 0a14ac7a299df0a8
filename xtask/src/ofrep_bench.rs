//! `cargo run --release -p xtask -- ofrep-bench [SECONDS]`: OFREP evaluation for
//! BENCHMARKS.md, against Unleash Edge serving the same 100 flags in the same run.
//!
//! - vexil (release) on SQLite with 100 flags and a client key; Unleash Edge 20.1.0
//!   (the newest on crates.io; installed here with `cargo install --locked` the first
//!   time, about 13 minutes) in offline mode with the same 100 flags as a bootstrap
//!   file (each enabled as its YAML default says, the default strategy);
//! - wrk, 2 threads and 50 connections, POST with a context body: vexil's
//!   `/ofrep/v1/evaluate/flags/{key}` against Edge's closest equivalent,
//!   `/api/frontend/features/{name}`; vexil's bulk `/ofrep/v1/evaluate/flags` with and
//!   without `If-None-Match` (Edge's `/api/frontend/all` as a reference);
//! - the ceiling: a bare axum "hello" server (`crates/vexil-server/examples/hello.rs`).
//!
//! Both servers get two worker threads (Edge's `TOKIO_WORKER_THREADS`, vexil's
//! runtime default on two cores) and share the machine's two cores with wrk. vexil's
//! per-key limit is off (`VEXIL_SDK_RATE_LIMIT=0`): what is measured is the server.

use std::path::Path;
use std::process::Command;

use anyhow::{Context, bail};

use crate::api_bench::{flags_yaml, start, wrk_script};
use crate::console_bench::{free_port, run_ok, tempfile_dir};

/// Rounds of every measurement; each figure is the median.
const ROUNDS: usize = 3;

/// The Edge version measured: the newest published on crates.io.
const EDGE_VERSION: &str = "20.1.0";

/// Edge's tokens (offline mode checks their shape, `project:env.secret`).
const EDGE_CLIENT_TOKEN: &str = "*:development.vexilbenchclient";
const EDGE_FRONTEND_TOKEN: &str = "*:development.vexilbenchfrontend";

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
    let edge = unleash_edge(&root)?;
    let vexil = root.join("target/release/vexil");
    let hello = root.join("target/release/examples/hello");
    let dir = tempfile_dir()?.join("ofrep");
    std::fs::create_dir_all(&dir)?;
    let flags_file = dir.join("feature_flags.yaml");
    std::fs::write(&flags_file, flags_yaml())?;
    let bootstrap = dir.join("bootstrap.json");
    std::fs::write(&bootstrap, edge_bootstrap())?;
    let envs = [
        ("VEXIL_FLAGS", flags_file.display().to_string()),
        (
            "DATABASE_URL",
            format!("sqlite://{}", dir.join("vexil.db").display()),
        ),
        ("VEXIL_ENV", "prod".to_owned()),
        ("VEXIL_SDK_RATE_LIMIT", "0".to_owned()),
        ("RUST_LOG", "warn".to_owned()),
    ];
    let vexil_cmd = |args: &[&str]| {
        let mut command = Command::new(&vexil);
        command.args(args).envs(envs.iter().cloned());
        command
    };
    run_ok(vexil_cmd(&["migrate"]))?;
    let output =
        vexil_cmd(&["client-key", "create", "--env", "prod", "--app", "bench"]).output()?;
    let key = String::from_utf8_lossy(&output.stdout).trim().to_owned();
    if !key.starts_with("vxc_") {
        bail!(
            "no client key printed: {}",
            String::from_utf8_lossy(&output.stderr)
        );
    }

    let port = free_port()?;
    let _server = start(vexil_cmd(&[
        "serve",
        "--bind",
        &format!("127.0.0.1:{port}"),
    ]))?;
    let edge_port = free_port()?;
    let mut edge_cmd = Command::new(&edge);
    edge_cmd
        .args([
            "-i",
            "127.0.0.1",
            "-p",
            &edge_port.to_string(),
            "offline",
            "-b",
        ])
        .arg(&bootstrap)
        .args(["-c", EDGE_CLIENT_TOKEN, "-f", EDGE_FRONTEND_TOKEN])
        .env_clear()
        .env("TOKIO_WORKER_THREADS", "2")
        .env("RUST_LOG", "warn");
    let _edge = start_edge(edge_cmd, edge_port)?;
    let hello_port = free_port()?;
    let mut hello_cmd = Command::new(&hello);
    hello_cmd.arg(format!("127.0.0.1:{hello_port}"));
    let _hello = start(hello_cmd)?;

    let vexil_base = format!("http://127.0.0.1:{port}");
    let edge_base = format!("http://127.0.0.1:{edge_port}");
    let context = r#"{"context":{"targetingKey":"user-1","plan":"gold"}}"#;
    let edge_context = r#"{"context":{"userId":"user-1","properties":{"plan":"gold"}}}"#;
    let bearer = format!("Bearer {key}");
    let post = |name: &str, body: &str, headers: &[(&str, &str)]| {
        script(&dir.join(format!("{name}.lua")), body, headers)
    };
    let vexil_single = post("vexil-single", context, &[("Authorization", &bearer)])?;
    let edge_single = post(
        "edge-single",
        edge_context,
        &[("Authorization", EDGE_FRONTEND_TOKEN)],
    )?;
    let vexil_bulk = post("vexil-bulk", context, &[("Authorization", &bearer)])?;
    let etag = bulk_etag(&vexil_base, &key)?;
    let vexil_bulk_304 = post(
        "vexil-bulk-304",
        context,
        &[("Authorization", &bearer), ("If-None-Match", &etag)],
    )?;
    let edge_bulk = post(
        "edge-bulk",
        edge_context,
        &[("Authorization", EDGE_FRONTEND_TOKEN)],
    )?;

    // Rounds, each running every measurement once in turn, so that the machine's
    // noise falls on all of them alike; each figure is the median of its rounds.
    let none = Path::new("");
    let measurements: [(&str, String, &Path); 6] = [
        (
            "axum hello (the ceiling)",
            format!("http://127.0.0.1:{hello_port}/"),
            none,
        ),
        (
            "Unleash Edge /api/frontend/features/{name}",
            format!("{edge_base}/api/frontend/features/flag_0001"),
            &edge_single,
        ),
        (
            "vexil /ofrep/v1/evaluate/flags/{key}",
            format!("{vexil_base}/ofrep/v1/evaluate/flags/flag_0001"),
            &vexil_single,
        ),
        (
            "vexil /ofrep/v1/evaluate/flags (100 flags)",
            format!("{vexil_base}/ofrep/v1/evaluate/flags"),
            &vexil_bulk,
        ),
        (
            "vexil /ofrep/v1/evaluate/flags, If-None-Match (304)",
            format!("{vexil_base}/ofrep/v1/evaluate/flags"),
            &vexil_bulk_304,
        ),
        (
            "Unleash Edge /api/frontend/all (100 flags)",
            format!("{edge_base}/api/frontend/all"),
            &edge_bulk,
        ),
    ];
    let mut results: Vec<Vec<(f64, f64)>> = vec![Vec::new(); measurements.len()];
    for _ in 0..ROUNDS {
        for (i, (_, url, script)) in measurements.iter().enumerate() {
            let run = if script.as_os_str().is_empty() {
                crate::api_bench::wrk(url, None, seconds)?
            } else {
                wrk_script(url, script, seconds)?
            };
            results[i].push(run);
        }
    }
    let median = |runs: &[(f64, f64)], pick: fn(&(f64, f64)) -> f64| {
        let mut values: Vec<f64> = runs.iter().map(pick).collect();
        values.sort_by(f64::total_cmp);
        values[values.len() / 2]
    };
    let rps: Vec<f64> = results
        .iter()
        .map(|runs| median(runs, |run| run.0))
        .collect();
    let p99: Vec<f64> = results
        .iter()
        .map(|runs| median(runs, |run| run.1))
        .collect();
    println!("wrk -t2 -c50, {ROUNDS} rounds of {seconds} s, POST with a context body; medians:");
    for (i, (name, _, _)) in measurements.iter().enumerate() {
        let each: Vec<String> = results[i]
            .iter()
            .map(|run| format!("{:.0}", run.0))
            .collect();
        println!(
            "  {name}: {:.0} req/s, p99 {:.2} ms ({:.2}x Edge's single, {:.0}% of hello; rounds: {})",
            rps[i],
            p99[i],
            rps[i] / rps[1],
            100.0 * rps[i] / rps[0],
            each.join(", ")
        );
    }
    let _ = std::fs::remove_dir_all(&dir);
    Ok(())
}

/// Edge's binary, installed under `target/bench-tools` the first time.
fn unleash_edge(root: &Path) -> anyhow::Result<std::path::PathBuf> {
    let tools = root.join("target/bench-tools/unleash-edge");
    let binary = tools.join("bin/unleash-edge");
    if !binary.exists() {
        eprintln!(
            "installing Unleash Edge {EDGE_VERSION} from crates.io into {} (about 13 minutes, once)",
            tools.display()
        );
        let status = Command::new(env!("CARGO"))
            .args([
                "install",
                "unleash-edge",
                "--version",
                EDGE_VERSION,
                "--locked",
                "--root",
            ])
            .arg(&tools)
            .status()?;
        if !status.success() {
            bail!("cargo install unleash-edge {EDGE_VERSION} failed");
        }
    }
    Ok(binary)
}

/// The same 100 flags for Edge: enabled as their YAML default, the default strategy.
fn edge_bootstrap() -> String {
    let features: Vec<serde_json::Value> = (0..100)
        .map(|i| {
            serde_json::json!({
                "name": format!("flag_{i:04}"),
                "type": "release",
                "enabled": i % 2 == 0,
                "project": "default",
                "stale": false,
                "impressionData": false,
                "strategies": [{"name": "default", "parameters": {}, "constraints": []}],
                "variants": [],
            })
        })
        .collect();
    serde_json::json!({"version": 2, "features": features}).to_string()
}

/// A wrk script that POSTs `body` as JSON with `headers`.
fn script(path: &Path, body: &str, headers: &[(&str, &str)]) -> anyhow::Result<std::path::PathBuf> {
    let mut lua = String::from(
        "wrk.method = \"POST\"\nwrk.headers[\"Content-Type\"] = \"application/json\"\n",
    );
    lua.push_str(&format!("wrk.body = [[{body}]]\n"));
    for (name, value) in headers {
        lua.push_str(&format!("wrk.headers[\"{name}\"] = [[{value}]]\n"));
    }
    std::fs::write(path, lua)?;
    Ok(path.to_path_buf())
}

/// The bulk answer's ETag, for the `If-None-Match` run.
fn bulk_etag(base: &str, key: &str) -> anyhow::Result<String> {
    let output = Command::new("curl")
        .args(["-s", "-D", "-", "-o", "/dev/null", "-X", "POST"])
        .args([
            "-H",
            &format!("Authorization: Bearer {key}"),
            "-H",
            "Content-Type: application/json",
        ])
        .args(["-d", "{}", &format!("{base}/ofrep/v1/evaluate/flags")])
        .output()
        .context("curl")?;
    String::from_utf8_lossy(&output.stdout)
        .lines()
        .find_map(|line| {
            line.strip_prefix("etag: ")
                .map(|etag| etag.trim().to_owned())
        })
        .context("no ETag on the bulk answer")
}

/// Starts Edge and waits until it answers (it prints no "listening" line we rely on).
fn start_edge(mut command: Command, port: u16) -> anyhow::Result<crate::console_bench::Server> {
    command
        .stdout(std::process::Stdio::null())
        .stderr(std::process::Stdio::null());
    let server = crate::console_bench::Server(command.spawn().context("unleash-edge")?);
    for _ in 0..100 {
        if std::net::TcpStream::connect(("127.0.0.1", port)).is_ok() {
            return Ok(server);
        }
        std::thread::sleep(std::time::Duration::from_millis(100));
    }
    bail!("Unleash Edge did not start")
}
