//! The `vexil` Python package, tested in Python: this test builds it from
//! `crates/vexil-python` into the venv `.ci/services` made (`target/python/venv`, with
//! pytest and maturin pinned by hash), then runs its pytest suite
//! (`crates/vexil-python/tests`) against this build's `vexil` binary. A missing venv
//! fails with what to run; nothing is skipped.

use std::path::{Path, PathBuf};
use std::process::Command;

fn repo() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../..")
}

#[test]
fn the_python_package_passes_its_pytest_suite() {
    let venv = repo().join("target/python/venv/bin");
    assert!(
        venv.join("python").exists() && venv.join("maturin").exists(),
        "{} is missing: run `bash .ci/services`, which installs pytest and maturin there",
        venv.display()
    );
    // The venv's tools (maturin), the cargo that built this test, the system's
    // (psql, sqlite3): named, not read from this process's environment.
    let cargo_bin = Path::new(env!("CARGO")).parent().unwrap();
    let path = format!(
        "{}:{}:/usr/local/bin:/usr/bin:/bin",
        venv.display(),
        cargo_bin.display()
    );
    // The dev profile: the workspace's test build has compiled most of it already,
    // so the package builds in seconds (the release build is for benchmarks and
    // `pip install ./crates/vexil-python`).
    let installed = Command::new(venv.join("pip"))
        .args([
            "install",
            "--quiet",
            "--no-build-isolation",
            "--no-deps",
            "--force-reinstall",
            "--disable-pip-version-check",
            "./crates/vexil-python",
        ])
        .current_dir(repo())
        .env("PATH", &path)
        .env("MATURIN_PEP517_ARGS", "--profile dev")
        .output()
        .unwrap();
    assert!(
        installed.status.success(),
        "pip install ./crates/vexil-python failed:\n{}\n{}",
        String::from_utf8_lossy(&installed.stdout),
        String::from_utf8_lossy(&installed.stderr)
    );
    let tested = Command::new(venv.join("python"))
        .args([
            "-m",
            "pytest",
            "-q",
            "-p",
            "no:cacheprovider",
            "crates/vexil-python/tests",
        ])
        .current_dir(repo())
        .env("PATH", &path)
        .env("VEXIL_BIN", env!("CARGO_BIN_EXE_vexil"))
        .output()
        .unwrap();
    let stdout = String::from_utf8_lossy(&tested.stdout);
    assert!(
        tested.status.success(),
        "pytest failed:\n{stdout}\n{}",
        String::from_utf8_lossy(&tested.stderr)
    );
    // Every test ran: pytest says "N passed" and nothing skipped.
    let summary = stdout.lines().last().unwrap_or_default();
    assert!(
        summary.contains(" passed") && !summary.contains("skipped"),
        "{stdout}"
    );
}
