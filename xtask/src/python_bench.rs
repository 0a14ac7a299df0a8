//! `cargo xtask python-bench [ROUNDS]`: the Python package's `flags.is_on(key)` with
//! 1,000 flags, against a plain `dict.get` on the same keys (the target: at most 3×)
//! and Unleash's Python SDK offline from a bootstrap, in one Python process, rounds
//! interleaved (`xtask/python/is_on_bench.py`). Prints medians across rounds.

use std::fmt::Write as _;
use std::process::Command;

use anyhow::{Context, bail};
use vexil_store::Backend;
use vexil_testkit::TestDb;

pub(crate) fn run(rounds: u64) -> anyhow::Result<()> {
    let root = crate::tidy::workspace_root();
    let python = crate::python_env::bench_python(&root)?;
    let dir = tempfile::tempdir()?;
    let flags_file = dir.path().join("feature_flags.yaml");
    let mut yaml = String::new();
    for i in 0..1000 {
        let _ = writeln!(
            yaml,
            "flag_{i:04}:\n  default: {}\n  description: \"Flag number {i}\"\n  risk: low",
            i % 2 == 0
        );
    }
    std::fs::write(&flags_file, yaml)?;
    let runtime = tokio::runtime::Runtime::new()?;
    let test_db = runtime.block_on(TestDb::new(Backend::Sqlite));
    let output = Command::new(&python)
        .arg(root.join("xtask/python/is_on_bench.py"))
        .arg(rounds.to_string())
        .env_clear()
        .env("VEXIL_ENV", "prod")
        .env("VEXIL_FLAGS", &flags_file)
        .env("DATABASE_URL", test_db.url_string())
        .output()
        .context("running is_on_bench.py")?;
    if !output.status.success() {
        bail!(
            "is_on_bench.py failed:\n{}",
            String::from_utf8_lossy(&output.stderr)
        );
    }
    let results: serde_json::Value = serde_json::from_slice(&output.stdout)?;
    let median = |name: &str| -> Option<f64> {
        let mut values: Vec<f64> = results[name]
            .as_array()?
            .iter()
            .filter_map(serde_json::Value::as_f64)
            .collect();
        if values.is_empty() {
            return None;
        }
        values.sort_by(f64::total_cmp);
        Some(values[values.len() / 2])
    };
    let dict = median("dict_get").context("no dict.get figures")?;
    println!(
        "Python {}, 1,000 flags, medians of {rounds} rounds (ns per call, timeit loop included; an empty statement costs {:.1} ns)",
        results["python"].as_str().unwrap_or("?"),
        median("loop").unwrap_or(f64::NAN)
    );
    for (name, label) in [
        ("dict_get", "dict.get(key)"),
        ("is_on", "vexil flags.is_on(key)"),
        ("flag_is_on", "vexil flag.is_on() (handle)"),
        ("unleash_is_enabled", "UnleashClient.is_enabled(key)"),
    ] {
        match median(name) {
            Some(ns) => println!("  {label}: {ns:.1} ns ({:.2}x dict.get)", ns / dict),
            None => println!("  {label}: not measured"),
        }
    }
    Ok(())
}
