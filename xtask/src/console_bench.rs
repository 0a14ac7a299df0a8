//! `cargo xtask console-bench [SECONDS]`: the console's figures for BENCHMARKS.md, on
//! the release binary, over loopback, with a same-run baseline for each:
//!
//! 1. resident memory of `vexil serve` with 1,000 flags, idle after start, and after
//!    the load below (VmRSS from /proc);
//! 2. `/console/flags` with 1,000 flags: the median time of 200 sequential requests
//!    (what one operator waits), against `/healthz` (the HTTP floor); then req/s with
//!    wrk at 8 connections, against `/healthz` again;
//! 3. console flips end to end (POST → 303) from 8 signed-in sessions at once, each
//!    flipping its own flag, against `App::flip` from 8 tasks on a database of its
//!    own in the same run (what the HTTP, session and CSRF layers cost).

use std::io::{BufRead, BufReader};
use std::process::{Child, Command, Stdio};
use std::sync::Arc;
use std::time::{Duration, Instant};

use anyhow::{Context, bail};
use secrecy::SecretString;
use vexil_app::{Admin, App, Flip, StepUp};
use vexil_core::audit::Via;
use vexil_core::{Env, EnvSnapshot, Envs, FlagKey, Role};

const FLAGS: usize = 1_000;
pub(crate) const SESSIONS: usize = 8;
pub(crate) const PASSWORD: &str = "benchmark password";

pub(crate) struct Server(pub(crate) Child);

impl Drop for Server {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

/// Builds the `vexil` binary in release mode and returns its path.
pub(crate) fn release_binary() -> anyhow::Result<std::path::PathBuf> {
    let root = crate::tidy::workspace_root();
    let status = Command::new(env!("CARGO"))
        .args(["build", "--release", "-p", "vexil-cli"])
        .current_dir(&root)
        .status()?;
    if !status.success() {
        bail!("cargo build --release failed");
    }
    Ok(root.join("target/release/vexil"))
}

/// Starts `serve` (a `vexil serve` command), waits until it listens, and keeps
/// draining its log so it never blocks on a full pipe.
pub(crate) fn start(mut serve: Command) -> anyhow::Result<Server> {
    serve.stdout(Stdio::null()).stderr(Stdio::piped());
    let mut child = serve.spawn()?;
    let stderr = child.stderr.take().context("stderr")?;
    let server = Server(child);
    let mut lines = BufReader::new(stderr).lines();
    loop {
        let line = lines.next().context("vexil serve stopped")??;
        if line.contains("listening on") {
            break;
        }
    }
    std::thread::spawn(move || for _ in lines {});
    Ok(server)
}

pub(crate) fn run(seconds: u64) -> anyhow::Result<()> {
    let vexil = release_binary()?;
    let dir = tempfile_dir()?;
    let flags_file = dir.join("feature_flags.yaml");
    std::fs::write(&flags_file, flags_yaml())?;
    let database = format!("sqlite://{}", dir.join("vexil.db").display());
    let envs = [
        ("VEXIL_FLAGS", flags_file.display().to_string()),
        ("DATABASE_URL", database),
        ("VEXIL_ENV", "prod".to_owned()),
        ("FLAG_CONSOLE_FEATURE_FLAGS_DB", "1".to_owned()),
        ("RUST_LOG", "warn".to_owned()),
    ];
    let vexil_cmd = |args: &[&str]| {
        let mut command = Command::new(&vexil);
        command.args(args).envs(envs.iter().cloned());
        command
    };
    run_ok(vexil_cmd(&["migrate"]))?;
    for i in 0..SESSIONS {
        add_user(vexil_cmd(&[
            "user",
            "add",
            &format!("bench{i}"),
            "--role",
            "ops",
        ]))?;
    }

    let port = free_port()?;
    let started = Instant::now();
    let server = start(vexil_cmd(&[
        "serve",
        "--bind",
        &format!("127.0.0.1:{port}"),
    ]))?;
    println!(
        "start-up: {:.0} ms to listening",
        started.elapsed().as_secs_f64() * 1e3
    );
    let pid = server.0.id();
    let base = format!("http://127.0.0.1:{port}");

    let runtime = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()?;
    runtime.block_on(async {
        tokio::time::sleep(Duration::from_secs(1)).await;
        println!("RSS idle with {FLAGS} flags: {:.1} MB", rss_mb(pid)?);

        let sessions = sign_in_all(&base).await?;
        let page = format!("{base}/console/flags?env=prod");
        let health = format!("{base}/healthz");
        let staging = format!("{base}/console/flags?env=staging");
        let flag = format!("{base}/console/flags/flag_0000");
        let page_ms = median_ms(&sessions[0].client, &page, 200).await?;
        let staging_ms = median_ms(&sessions[0].client, &staging, 200).await?;
        let flag_ms = median_ms(&sessions[0].client, &flag, 200).await?;
        let health_ms = median_ms(&sessions[0].client, &health, 200).await?;
        println!(
            "/console/flags?env=prod ({FLAGS} flags), median of 200 sequential: {page_ms:.2} ms; ?env=staging (with prod's values) {staging_ms:.2} ms; /console/flags/flag_0000 {flag_ms:.2} ms; /healthz {health_ms:.3} ms"
        );
        let cookie = sessions[0].cookie.clone();
        let wrk_page = wrk(&page, Some(&cookie), seconds)?;
        let wrk_health = wrk(&health, None, seconds)?;
        println!(
            "wrk -c8 {seconds}s: /console/flags {wrk_page:.0} req/s; /healthz {wrk_health:.0} req/s ({:.1}%)",
            100.0 * wrk_page / wrk_health
        );

        let http = http_flips(&base, &sessions, seconds).await?;
        let direct = direct_flips(seconds).await?;
        println!(
            "console flips, {SESSIONS} sessions, SQLite: {http:.0}/s; App::flip from {SESSIONS} tasks: {direct:.0}/s ({:.0}%)",
            100.0 * http / direct
        );
        tokio::time::sleep(Duration::from_secs(1)).await;
        println!("RSS after the load: {:.1} MB", rss_mb(pid)?);
        anyhow::Ok(())
    })?;
    drop(server);
    let _ = std::fs::remove_dir_all(&dir);
    Ok(())
}

pub(crate) fn flags_yaml() -> String {
    let mut yaml = String::new();
    for i in 0..FLAGS {
        let risk = ["low", "low", "medium", "high"][i % 4];
        yaml.push_str(&format!(
            "flag_{i:04}:\n  default: {}\n  description: Benchmark flag number {i}, with a description of ordinary length.\n  risk: {risk}\n",
            i % 2 == 0
        ));
    }
    yaml
}

pub(crate) fn tempfile_dir() -> anyhow::Result<std::path::PathBuf> {
    let dir = std::env::temp_dir().join(format!("vexil-console-bench-{}", std::process::id()));
    std::fs::create_dir_all(&dir)?;
    Ok(dir)
}

/// Runs a `vexil user add …` command with the benchmark password on stdin.
pub(crate) fn add_user(mut add: Command) -> anyhow::Result<()> {
    add.stdin(Stdio::piped()).stdout(Stdio::null());
    let mut child = add.spawn()?;
    use std::io::Write;
    writeln!(child.stdin.take().context("stdin")?, "{PASSWORD}")?;
    if !child.wait()?.success() {
        bail!("vexil user add failed");
    }
    Ok(())
}

pub(crate) fn run_ok(mut command: Command) -> anyhow::Result<()> {
    let output = command.output()?;
    if !output.status.success() {
        bail!("{command:?}: {}", String::from_utf8_lossy(&output.stderr));
    }
    Ok(())
}

pub(crate) fn free_port() -> anyhow::Result<u16> {
    Ok(std::net::TcpListener::bind("127.0.0.1:0")?
        .local_addr()?
        .port())
}

pub(crate) fn rss_mb(pid: u32) -> anyhow::Result<f64> {
    status_mb(pid, "VmRSS")
}

/// A memory figure of `/proc/PID/status` (`VmRSS`, `VmHWM`), in MB.
pub(crate) fn status_mb(pid: u32, field: &str) -> anyhow::Result<f64> {
    let status = std::fs::read_to_string(format!("/proc/{pid}/status"))?;
    let kb: f64 = status
        .lines()
        .find_map(|line| line.strip_prefix(field)?.strip_prefix(':'))
        .with_context(|| format!("no {field}"))?
        .trim()
        .trim_end_matches("kB")
        .trim()
        .parse()?;
    Ok(kb / 1024.0)
}

struct Session {
    client: reqwest::Client,
    cookie: String,
    csrf: String,
}

pub(crate) fn csrf_of(body: &str) -> anyhow::Result<String> {
    let marker = "name=\"csrf\" value=\"";
    let start = body.find(marker).context("no CSRF token")? + marker.len();
    let end = body[start..]
        .find('"')
        .context("no end to the CSRF token")?
        + start;
    Ok(body[start..end].to_owned())
}

async fn sign_in_all(base: &str) -> anyhow::Result<Vec<Session>> {
    let mut sessions = Vec::new();
    for i in 0..SESSIONS {
        let client = reqwest::Client::builder()
            .cookie_store(true)
            .redirect(reqwest::redirect::Policy::none())
            .build()?;
        let form = client
            .get(format!("{base}/console/sign-in"))
            .send()
            .await?
            .text()
            .await?;
        let csrf = csrf_of(&form)?;
        let name = format!("bench{i}");
        let response = client
            .post(format!("{base}/console/sign-in"))
            .form(&[
                ("csrf", csrf.as_str()),
                ("name", &name),
                ("password", PASSWORD),
            ])
            .send()
            .await?;
        if response.status() != 303 {
            bail!("sign-in of {name}: {}", response.status());
        }
        let cookie = response
            .headers()
            .get_all("set-cookie")
            .iter()
            .filter_map(|v| v.to_str().ok())
            .find(|v| v.starts_with("vexil_session="))
            .and_then(|v| v.split(';').next())
            .context("no session cookie")?
            .to_owned();
        let page = client
            .get(format!("{base}/console/account"))
            .send()
            .await?
            .text()
            .await?;
        let csrf = csrf_of(&page)?;
        sessions.push(Session {
            client,
            cookie,
            csrf,
        });
    }
    Ok(sessions)
}

async fn median_ms(client: &reqwest::Client, url: &str, n: usize) -> anyhow::Result<f64> {
    let mut times = Vec::with_capacity(n);
    for _ in 0..n {
        let start = Instant::now();
        let response = client.get(url).send().await?;
        if !response.status().is_success() {
            bail!("{url}: {}", response.status());
        }
        response.bytes().await?;
        times.push(start.elapsed().as_secs_f64() * 1e3);
    }
    times.sort_by(f64::total_cmp);
    Ok(times[n / 2])
}

fn wrk(url: &str, cookie: Option<&str>, seconds: u64) -> anyhow::Result<f64> {
    let mut command = Command::new("wrk");
    command.args(["-t2", "-c8", &format!("-d{seconds}s")]);
    if let Some(cookie) = cookie {
        command.args(["-H", &format!("Cookie: {cookie}")]);
    }
    let output = command
        .arg(url)
        .output()
        .context("wrk (apt-get install wrk)")?;
    let text = String::from_utf8_lossy(&output.stdout);
    if text.contains("Non-2xx") {
        bail!("wrk saw errors:\n{text}");
    }
    text.lines()
        .find_map(|line| line.strip_prefix("Requests/sec:"))
        .context("no Requests/sec in wrk's output")?
        .trim()
        .parse()
        .context("Requests/sec")
}

/// Flips per second through the console: each session flips its own low-risk flag
/// back and forth, sending the value it last set as the value it saw.
async fn http_flips(base: &str, sessions: &[Session], seconds: u64) -> anyhow::Result<f64> {
    let deadline = Instant::now() + Duration::from_secs(seconds);
    let started = Instant::now();
    let mut tasks = Vec::new();
    for (i, session) in sessions.iter().enumerate() {
        let client = session.client.clone();
        let csrf = session.csrf.clone();
        // flag_0000, flag_0004, …: low risk (i % 4 == 0), default on when even.
        let flag = format!("flag_{:04}", i * 4);
        let url = format!("{base}/console/flags/{flag}/flip");
        tasks.push(tokio::spawn(async move {
            let mut value = true;
            let mut flips = 0u64;
            while Instant::now() < deadline {
                let from = value.to_string();
                let response = client
                    .post(&url)
                    // Confirmed, with the reason prod asks for: the confirmation
                    // page's form.
                    .form(&[
                        ("csrf", csrf.as_str()),
                        ("env", "prod"),
                        ("from", &from),
                        ("confirm", "yes"),
                        ("reason", "bench"),
                    ])
                    .send()
                    .await?;
                if response.status() != 303 {
                    bail!("{url}: {}", response.status());
                }
                value = !value;
                flips += 1;
            }
            anyhow::Ok(flips)
        }));
    }
    per_second(tasks, started).await
}

/// The same flips straight through `App::flip`, on a SQLite file of its own.
pub(crate) async fn direct_flips(seconds: u64) -> anyhow::Result<f64> {
    let test_db = vexil_testkit::TestDb::new(vexil_store::Backend::Sqlite).await;
    let flags = vexil_core::FlagSet::parse("bench.yaml", flags_yaml().as_bytes())
        .map_err(|e| anyhow::anyhow!("{e}"))?;
    let app = Arc::new(App::new(
        test_db.db.clone(),
        flags,
        Envs::runbook(),
        None,
        EnvSnapshot::default(),
        Arc::new(vexil_testkit::TestClock::fixed()),
    ));
    for i in 0..SESSIONS {
        app.add_user(
            Admin::Cli,
            &format!("bench{i}"),
            Role::Ops,
            &SecretString::from(PASSWORD),
        )
        .await?;
    }
    let deadline = Instant::now() + Duration::from_secs(seconds);
    let started = Instant::now();
    let mut tasks = Vec::new();
    for i in 0..SESSIONS {
        let app = app.clone();
        tasks.push(tokio::spawn(async move {
            let actor = app.actor(&format!("bench{i}")).await?;
            let flag = format!("flag_{:04}", i * 4);
            let mut value = true;
            let mut flips = 0u64;
            while Instant::now() < deadline {
                let flip = Flip {
                    flag: &FlagKey::parse(&flag)?,
                    env: &Env::PROD,
                    expected_from: Some(value),
                    to: !value,
                    reason: None,
                    via: Via::Console,
                };
                app.flip(&actor, &flip, StepUp::None).await?;
                value = !value;
                flips += 1;
            }
            anyhow::Ok(flips)
        }));
    }
    per_second(tasks, started).await
}

/// The flips of all `tasks` per second since `started`.
pub(crate) async fn per_second(
    tasks: Vec<tokio::task::JoinHandle<anyhow::Result<u64>>>,
    started: Instant,
) -> anyhow::Result<f64> {
    let mut total = 0;
    for task in tasks {
        total += task.await??;
    }
    Ok(total as f64 / started.elapsed().as_secs_f64())
}
