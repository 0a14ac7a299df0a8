//! `cargo xtask abuse-bench [VEXIL_BINARY]`: the server under abuse, for
//! BENCHMARKS.md, on the release binary (or another build's, to measure "before"):
//!
//! 1. resident memory while 200 sign-in attempts arrive at once, each from an
//!    address of its own (127.0.0.2 to 127.0.0.201, so no per-address limit
//!    refuses them) and for a name of its own: the peak of VmRSS sampled every
//!    5 ms, and VmHWM; with how the attempts were answered;
//! 2. console flip latency (p50, p99, max of sequential flips, one session),
//!    alone and then during a flood of 2,000 cookie-less `GET /console/sign-in`
//!    from 50 connections at once, with the session rows the flood left.

use std::collections::BTreeMap;
use std::net::IpAddr;
use std::path::PathBuf;
use std::process::Command;
use std::time::{Duration, Instant};

use anyhow::{Context, bail};

use crate::console_bench::{
    PASSWORD, add_user, csrf_of, flags_yaml, free_port, release_binary, rss_mb, run_ok, start,
    status_mb, tempfile_dir,
};

const ATTEMPTS: usize = 200;
const FLOOD: usize = 2_000;
const FLOOD_CONNECTIONS: usize = 50;

pub(crate) fn run(binary: Option<&str>) -> anyhow::Result<()> {
    let vexil = match binary {
        Some(path) => PathBuf::from(path),
        None => release_binary()?,
    };
    let dir = tempfile_dir()?;
    let flags_file = dir.join("feature_flags.yaml");
    std::fs::write(&flags_file, flags_yaml())?;
    let database = dir.join("vexil.db");
    let envs = [
        ("VEXIL_FLAGS", flags_file.display().to_string()),
        ("DATABASE_URL", format!("sqlite://{}", database.display())),
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
    add_user(vexil_cmd(&["user", "add", "bench0", "--role", "ops"]))?;
    let port = free_port()?;
    let server = start(vexil_cmd(&[
        "serve",
        "--bind",
        &format!("127.0.0.1:{port}"),
    ]))?;
    let pid = server.0.id();
    let base = format!("http://127.0.0.1:{port}");
    println!("binary: {}", vexil.display());

    let runtime = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()?;
    runtime.block_on(async {
        tokio::time::sleep(Duration::from_secs(1)).await;
        println!("RSS idle: {:.1} MB", rss_mb(pid)?);
        sign_in_burst(port, pid).await?;
        tokio::time::sleep(Duration::from_secs(2)).await;
        println!("RSS 2 s after the burst: {:.1} MB", rss_mb(pid)?);
        flips_under_flood(&base, &database).await
    })?;
    drop(server);
    let _ = std::fs::remove_dir_all(&dir);
    Ok(())
}

fn client(from: Option<IpAddr>) -> anyhow::Result<reqwest::Client> {
    Ok(reqwest::Client::builder()
        .cookie_store(true)
        .redirect(reqwest::redirect::Policy::none())
        .local_address(from)
        .build()?)
}

/// 200 sign-in forms fetched, then all posted at once; RSS sampled meanwhile.
async fn sign_in_burst(port: u16, pid: u32) -> anyhow::Result<()> {
    let mut forms = Vec::new();
    for i in 0..ATTEMPTS {
        let from: IpAddr = format!("127.0.0.{}", i + 2).parse()?;
        let client = client(Some(from))?;
        let url = format!("http://127.0.0.1:{port}/console/sign-in");
        let page = client.get(&url).send().await?.text().await?;
        forms.push((client, url, csrf_of(&page)?, format!("nobody{i}")));
    }
    let done = std::sync::Arc::new(std::sync::atomic::AtomicBool::new(false));
    let sampling = tokio::spawn({
        let done = done.clone();
        async move {
            let mut peak = 0.0f64;
            while !done.load(std::sync::atomic::Ordering::Relaxed) {
                peak = peak.max(rss_mb(pid).unwrap_or(0.0));
                tokio::time::sleep(Duration::from_millis(5)).await;
            }
            peak
        }
    });
    let started = Instant::now();
    let mut attempts = Vec::new();
    for (client, url, csrf, name) in forms {
        attempts.push(tokio::spawn(async move {
            let form = [
                ("csrf", csrf.as_str()),
                ("name", name.as_str()),
                ("password", "a wrong password"),
            ];
            client
                .post(&url)
                .form(&form)
                .send()
                .await
                .map(|r| r.status().as_u16())
        }));
    }
    let mut statuses = BTreeMap::new();
    for attempt in attempts {
        *statuses.entry(attempt.await??).or_insert(0) += 1;
    }
    let took = started.elapsed();
    done.store(true, std::sync::atomic::Ordering::Relaxed);
    let peak = sampling.await?;
    let hwm = status_mb(pid, "VmHWM")?;
    println!(
        "{ATTEMPTS} sign-ins at once: answered in {:.2} s, statuses {statuses:?}; peak RSS sampled {peak:.1} MB, VmHWM {hwm:.1} MB",
        took.as_secs_f64()
    );
    Ok(())
}

/// One session's sequential flips: their times, in ms.
async fn flips(
    client: &reqwest::Client,
    base: &str,
    csrf: &str,
    n: usize,
    value: &mut bool,
) -> anyhow::Result<Vec<f64>> {
    let url = format!("{base}/console/flags/flag_0000/flip");
    let mut times = Vec::with_capacity(n);
    for _ in 0..n {
        let from = value.to_string();
        let started = Instant::now();
        let response = client
            .post(&url)
            .form(&[
                ("csrf", csrf),
                ("env", "prod"),
                ("from", &from),
                ("confirm", "yes"),
                ("reason", "bench"),
            ])
            .send()
            .await?;
        if response.status() != 303 {
            bail!("flip: {}", response.status());
        }
        times.push(started.elapsed().as_secs_f64() * 1e3);
        *value = !*value;
    }
    times.sort_by(f64::total_cmp);
    Ok(times)
}

fn summary(times: &[f64]) -> String {
    let at = |q: f64| times[((times.len() as f64 * q) as usize).min(times.len() - 1)];
    format!(
        "p50 {:.2} ms, p99 {:.2} ms, max {:.2} ms ({} flips)",
        at(0.5),
        at(0.99),
        times[times.len() - 1],
        times.len()
    )
}

async fn flips_under_flood(base: &str, database: &std::path::Path) -> anyhow::Result<()> {
    let client = client(None)?;
    let page = client
        .get(format!("{base}/console/sign-in"))
        .send()
        .await?
        .text()
        .await?;
    let csrf = csrf_of(&page)?;
    let signed_in = client
        .post(format!("{base}/console/sign-in"))
        .form(&[
            ("csrf", csrf.as_str()),
            ("name", "bench0"),
            ("password", PASSWORD),
        ])
        .send()
        .await?;
    if signed_in.status() != 303 {
        bail!("sign-in: {}", signed_in.status());
    }
    let page = client
        .get(format!("{base}/console/account"))
        .send()
        .await?
        .text()
        .await?;
    let csrf = csrf_of(&page)?;
    let mut value = true;
    let alone = flips(&client, base, &csrf, 300, &mut value).await?;
    println!("console flips alone: {}", summary(&alone));

    let sessions_before = session_rows(database)?;
    let flood_url = format!("{base}/console/sign-in");
    let started = Instant::now();
    let mut flooders = Vec::new();
    for _ in 0..FLOOD_CONNECTIONS {
        let anonymous = reqwest::Client::new();
        let url = flood_url.clone();
        flooders.push(tokio::spawn(async move {
            for _ in 0..FLOOD / FLOOD_CONNECTIONS {
                anonymous.get(&url).send().await?.bytes().await?;
            }
            anyhow::Ok(())
        }));
    }
    let mut during = Vec::new();
    while flooders.iter().any(|f| !f.is_finished()) {
        during.extend(flips(&client, base, &csrf, 10, &mut value).await?);
    }
    let flood_took = started.elapsed();
    for flooder in flooders {
        flooder.await??;
    }
    during.sort_by(f64::total_cmp);
    println!(
        "console flips during {FLOOD} anonymous GET /console/sign-in ({FLOOD_CONNECTIONS} at once, {:.2} s): {}; session rows written by the flood: {}",
        flood_took.as_secs_f64(),
        summary(&during),
        session_rows(database)? - sessions_before
    );
    Ok(())
}

fn session_rows(database: &std::path::Path) -> anyhow::Result<i64> {
    let output = Command::new("sqlite3")
        .arg(database)
        .arg("SELECT count(*) FROM console_sessions")
        .output()
        .context("sqlite3")?;
    Ok(String::from_utf8_lossy(&output.stdout).trim().parse()?)
}
