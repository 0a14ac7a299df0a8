//! The Python the benchmarks run: a venv under `target/python/bench-venv` with maturin
//! (hash-pinned, the tests' requirements), Unleash's Python SDK (the comparison), and
//! the `vexil` package built from this checkout in release mode, as
//! `pip install ./crates/vexil-python` builds it for an application.

use std::path::{Path, PathBuf};
use std::process::Command;

use anyhow::{Context, bail};

/// The Unleash Python SDK measured next to vexil (the newest on PyPI when the figures
/// were taken); it pulls its own dependencies.
const UNLEASH_CLIENT: &str = "UnleashClient==6.9.1";

/// The venv's `python`, with the package freshly built and installed.
pub(crate) fn bench_python(root: &Path) -> anyhow::Result<PathBuf> {
    let venv = root.join("target/python/bench-venv");
    let bin = venv.join("bin");
    let path = format!(
        "{}:{}:/usr/local/bin:/usr/bin:/bin",
        bin.display(),
        Path::new(env!("CARGO"))
            .parent()
            .context("cargo's directory")?
            .display()
    );
    let run = |command: &mut Command, what: &str| -> anyhow::Result<()> {
        let status = command
            .current_dir(root)
            .env("PATH", &path)
            .status()
            .with_context(|| what.to_owned())?;
        if !status.success() {
            bail!("{what} failed");
        }
        Ok(())
    };
    if !bin.join("maturin").exists() {
        run(
            Command::new("python3").args(["-m", "venv"]).arg(&venv),
            "python3 -m venv",
        )?;
        run(
            Command::new(bin.join("pip")).args([
                "install",
                "--quiet",
                "--disable-pip-version-check",
                "--require-hashes",
                "-r",
                "crates/vexil-python/tests/requirements.txt",
            ]),
            "installing maturin",
        )?;
        run(
            Command::new(bin.join("pip")).args([
                "install",
                "--quiet",
                "--disable-pip-version-check",
                UNLEASH_CLIENT,
            ]),
            "installing Unleash's Python SDK",
        )?;
    }
    eprintln!(
        "building the vexil package (release) into {}",
        venv.display()
    );
    run(
        Command::new(bin.join("pip")).args([
            "install",
            "--quiet",
            "--disable-pip-version-check",
            "--no-build-isolation",
            "--no-deps",
            "--force-reinstall",
            "./crates/vexil-python",
        ]),
        "pip install ./crates/vexil-python",
    )?;
    Ok(bin.join("python"))
}
