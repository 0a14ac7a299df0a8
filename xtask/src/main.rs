//! `cargo xtask`: the project's automation, in Rust rather than shell.
//!
//! - `cargo xtask tidy`: checks the architecture invariants of ARCHITECTURE.md that a
//!   program can check (also run by `cargo test --workspace`, see `tidy.rs`).
//! - `cargo xtask cli-docs`: writes `docs/cli.md` from the binary's clap definitions
//!   (`cli_docs.rs`; a test fails when it is out of date).
//! - `cargo xtask audit-rows URL N`: appends N generated audit rows to the migrated
//!   database at URL, for benchmarks and load tests (`vexil_testkit::seed`).
//! - `cargo xtask propagation [sqlite|postgres] [FLIPS] [remote]`: how long a flip
//!   takes to reach three processes that link the library, or follow a server
//!   (`propagation.rs`).
//! - `cargo run --release -p xtask -- fleet-bench [PROCESSES]`: the database
//!   connections a fleet holds in each mode (`fleet_bench.rs`).
//! - `cargo xtask abuse-bench [VEXIL_BINARY]`: memory under 200 sign-ins at once,
//!   and flip latency during an anonymous flood (`abuse_bench.rs`).
//! - `cargo xtask console-bench [SECONDS]`: the console's page time, req/s, flip
//!   throughput and memory on the release binary (`console_bench.rs`).
//! - `cargo run --release -p xtask -- api-bench [SECONDS]`: the API's req/s and p99
//!   against a bare axum server, and flips through the API against `App::flip` built
//!   the same way (`api_bench.rs`).
//! - `cargo run --release -p xtask -- fanout-bench [SUBSCRIBERS] [FLIPS]`: how fast a
//!   flip reaches 10,000 stream subscribers of one server, and their memory
//!   (`fanout_bench.rs`).
//! - `cargo run --release -p xtask -- ofrep-bench [SECONDS]`: OFREP evaluation against
//!   Unleash Edge serving the same flags, and a bare axum server (`ofrep_bench.rs`).
//! - `cargo xtask python-bench [ROUNDS]`: the Python package's `is_on` against
//!   `dict.get` and Unleash's Python SDK (`python_bench.rs`, `python_env.rs`).

mod abuse_bench;
mod api_bench;
mod cli_docs;
mod console_bench;
mod fanout_bench;
mod fleet_bench;
mod ofrep_bench;
mod propagation;
mod python_bench;
mod python_env;
mod tidy;

use std::process::ExitCode;

fn main() -> ExitCode {
    let args: Vec<String> = std::env::args().skip(1).collect();
    match args
        .iter()
        .map(String::as_str)
        .collect::<Vec<_>>()
        .as_slice()
    {
        ["tidy"] => match tidy::problems(&tidy::workspace_root()) {
            Ok(problems) if problems.is_empty() => {
                println!("tidy: ok");
                ExitCode::SUCCESS
            }
            Ok(problems) => {
                for problem in &problems {
                    eprintln!("tidy: {problem}");
                }
                ExitCode::from(1)
            }
            Err(error) => {
                eprintln!("error: {error:#}");
                ExitCode::from(2)
            }
        },
        ["cli-docs"] => match cli_docs::write(&tidy::workspace_root()) {
            Ok(()) => {
                println!("wrote {}", cli_docs::PATH);
                ExitCode::SUCCESS
            }
            Err(error) => {
                eprintln!("error: {error:#}");
                ExitCode::from(2)
            }
        },
        ["audit-rows", url, rows] => match audit_rows(url, rows) {
            Ok(total) => {
                println!("the audit log now holds {total} rows");
                ExitCode::SUCCESS
            }
            Err(error) => {
                eprintln!("error: {error:#}");
                ExitCode::from(2)
            }
        },
        ["propagation", backend, rest @ ..] => {
            let remote = rest.last() == Some(&"remote");
            let rest = &rest[..rest.len() - usize::from(remote)];
            let flips = match rest {
                [] => Ok(200),
                [n] => n.parse::<usize>(),
                _ => "".parse::<usize>(),
            };
            let result = match flips {
                Ok(flips) if flips > 0 => propagation::run(backend, flips, remote),
                _ => Err(anyhow::anyhow!("FLIPS must be a positive whole number")),
            };
            match result {
                Ok(()) => ExitCode::SUCCESS,
                Err(error) => {
                    eprintln!("error: {error:#}");
                    ExitCode::from(2)
                }
            }
        }
        ["api-bench", rest @ ..] => finish(seconds(rest).and_then(api_bench::run)),
        ["abuse-bench"] => finish(abuse_bench::run(None)),
        ["abuse-bench", binary] => finish(abuse_bench::run(Some(binary))),
        ["console-bench", rest @ ..] => finish(seconds(rest).and_then(console_bench::run)),
        ["ofrep-bench", rest @ ..] => finish(seconds(rest).and_then(ofrep_bench::run)),
        ["fleet-bench", rest @ ..] => finish(match rest {
            [] => fleet_bench::run(200),
            [n] => match n.parse::<usize>() {
                Ok(processes) if processes > 0 => fleet_bench::run(processes),
                _ => Err(anyhow::anyhow!("PROCESSES must be a positive whole number")),
            },
            _ => Err(anyhow::anyhow!("one PROCESSES argument at most")),
        }),
        ["python-bench", rest @ ..] => finish(seconds(rest).and_then(python_bench::run)),
        ["fanout-bench", rest @ ..] => {
            let numbers: Result<Vec<usize>, _> = rest.iter().map(|n| n.parse::<usize>()).collect();
            finish(match numbers.as_deref() {
                Ok([]) => fanout_bench::run(10_000, 10),
                Ok([subscribers]) if *subscribers > 0 => fanout_bench::run(*subscribers, 10),
                Ok([subscribers, flips]) if *subscribers > 0 && *flips > 0 => {
                    fanout_bench::run(*subscribers, *flips)
                }
                _ => Err(anyhow::anyhow!(
                    "SUBSCRIBERS and FLIPS are positive whole numbers"
                )),
            })
        }
        _ => {
            eprintln!(
                "usage: cargo xtask tidy | cargo xtask cli-docs | cargo xtask audit-rows DATABASE_URL ROWS | cargo xtask propagation sqlite|postgres [FLIPS] [remote] | cargo xtask console-bench [SECONDS] | cargo xtask api-bench [SECONDS] | cargo xtask fanout-bench [SUBSCRIBERS] [FLIPS] | cargo xtask ofrep-bench [SECONDS] | cargo xtask python-bench [ROUNDS] | cargo xtask fleet-bench [PROCESSES]"
            );
            ExitCode::from(2)
        }
    }
}

/// Seeds a benchmark database; never point it at one that matters (the rows have no
/// changes behind them).
fn audit_rows(url: &str, rows: &str) -> anyhow::Result<i64> {
    use anyhow::Context;
    let url = vexil_store::DatabaseUrl::parse(url)?;
    let rows: u64 = rows.parse().context("ROWS must be a whole number")?;
    let runtime = tokio::runtime::Runtime::new()?;
    runtime.block_on(async {
        let db = vexil_store::Db::connect(&url).await?;
        db.migrate().await?;
        db.close().await;
        Ok(vexil_testkit::seed::audit_rows(&url, rows).await?)
    })
}

/// A benchmark's optional SECONDS argument (default 10).
fn seconds(rest: &[&str]) -> anyhow::Result<u64> {
    match rest {
        [] => Ok(10),
        [n] => match n.parse::<u64>() {
            Ok(seconds) if seconds > 0 => Ok(seconds),
            _ => Err(anyhow::anyhow!("SECONDS must be a positive whole number")),
        },
        _ => Err(anyhow::anyhow!("one SECONDS argument at most")),
    }
}

/// Exit 0, or print the error and exit 2.
fn finish(result: anyhow::Result<()>) -> ExitCode {
    match result {
        Ok(()) => ExitCode::SUCCESS,
        Err(error) => {
            eprintln!("error: {error:#}");
            ExitCode::from(2)
        }
    }
}
