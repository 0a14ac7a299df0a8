//! The architecture invariants a program can check, run by `cargo xtask tidy` and by
//! `cargo test` (the test at the bottom), so a change that breaks one fails CI.
//!
//! Each check returns problems as `path: what is wrong` lines rather than stopping at
//! the first, like the flags-file checker.

use std::collections::{BTreeSet, HashMap};
use std::path::{Path, PathBuf};
use std::process::Command;

use anyhow::{Context, bail};
use serde_json::Value;

/// Crates that `vexil-core` must not depend on, directly or through another crate:
/// the core does no I/O and no async (invariant 1).
const CORE_FORBIDDEN_DEPS: [&str; 6] = ["tokio", "sqlx", "axum", "hyper", "reqwest", "mio"];

/// Text that means the core reads the clock, the process, the file system or the
/// network itself (invariant 1). Searched in `crates/vexil-core/src`.
const CORE_FORBIDDEN_TEXT: [&str; 10] = [
    "std::env",
    "std::fs",
    "std::net",
    "std::process",
    "std::thread",
    "SystemTime::now",
    "Instant::now",
    "Utc::now",
    "Local::now",
    "async fn",
];

/// The files allowed to read the process environment by hand (invariant 4): the
/// CLI's config, and the test kit that clears vexil's variables for a child process.
const ENV_READERS: [&str; 2] = [
    "crates/vexil-cli/src/config.rs",
    "crates/vexil-testkit/src/workdir.rs",
];

/// A file past this many lines is split by domain noun (STYLE.md rule 10).
const MAX_LINES: usize = 600;

pub(crate) fn workspace_root() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .parent()
        .expect("xtask lives one level below the workspace root")
        .to_owned()
}

/// Every problem found, as `path: message` lines; empty when the tree is tidy.
pub(crate) fn problems(root: &Path) -> anyhow::Result<Vec<String>> {
    let mut problems = Vec::new();
    let mut files = Vec::new();
    for dir in ["crates", "xtask"] {
        rust_files(&root.join(dir), &mut files)?;
    }
    files.sort();
    let architecture = std::fs::read_to_string(root.join("ARCHITECTURE.md"))
        .context("cannot read ARCHITECTURE.md")?;

    // Assembled so that this file does not match its own search.
    let env_read = ["env", "::var"].concat();
    let ignore_attr = ["#[", "ignore"].concat();
    for path in &files {
        let rel = path
            .strip_prefix(root)
            .unwrap_or(path)
            .to_string_lossy()
            .replace('\\', "/");
        let text = std::fs::read_to_string(path).with_context(|| format!("cannot read {rel}"))?;
        if !text.starts_with("//!") {
            problems.push(format!(
                "{rel}: does not open with a `//!` doc saying what it holds and why"
            ));
        }
        if text.contains(&env_read) && !ENV_READERS.contains(&rel.as_str()) {
            problems.push(format!(
                "{rel}: reads the process environment; only {} may (invariant 4)",
                ENV_READERS.join(" and ")
            ));
        }
        if text.contains(&ignore_attr) {
            problems.push(format!(
                "{rel}: has an ignored test; a test runs or is deleted"
            ));
        }
        let lines = text.lines().count();
        if lines > MAX_LINES {
            problems.push(format!(
                "{rel}: {lines} lines; split it by domain noun (limit {MAX_LINES})"
            ));
        }
        if rel.starts_with("crates/vexil-core/src/") {
            for needle in CORE_FORBIDDEN_TEXT {
                if text.contains(needle) {
                    problems.push(format!("{rel}: uses `{needle}`; vexil-core does no I/O and reads no clock (invariant 1)"));
                }
            }
        }
        if let Some(name) = source_name(&rel)
            && !architecture.contains(&name)
        {
            problems.push(format!("{rel}: not named in ARCHITECTURE.md (as `{name}`)"));
        }
    }
    for krate in crate_dirs(root)? {
        if !architecture.contains(&krate) {
            problems.push(format!(
                "crates/{krate}: crate not named in ARCHITECTURE.md"
            ));
        }
    }
    for dep in dependencies_of(root, "vexil-core")? {
        if CORE_FORBIDDEN_DEPS.contains(&dep.as_str()) {
            problems.push(format!("crates/vexil-core: depends on {dep}; the core does no I/O and no async (invariant 1)"));
        }
    }
    Ok(problems)
}

/// How ARCHITECTURE.md must name a source file: its path below the crate's `src/`
/// (`decl/node.rs`). Tests and benches are described by folder, not by file.
fn source_name(rel: &str) -> Option<String> {
    let (_, below_src) = rel.split_once("/src/")?;
    Some(below_src.to_owned())
}

fn rust_files(dir: &Path, out: &mut Vec<PathBuf>) -> anyhow::Result<()> {
    for entry in std::fs::read_dir(dir).with_context(|| format!("cannot list {}", dir.display()))? {
        let path = entry?.path();
        if path.is_dir() {
            if path.file_name().is_some_and(|name| name == "target") {
                continue;
            }
            rust_files(&path, out)?;
        } else if path.extension().is_some_and(|ext| ext == "rs") {
            out.push(path);
        }
    }
    Ok(())
}

fn crate_dirs(root: &Path) -> anyhow::Result<Vec<String>> {
    let mut names = Vec::new();
    for entry in std::fs::read_dir(root.join("crates")).context("cannot list crates/")? {
        let entry = entry?;
        if entry.path().join("Cargo.toml").is_file() {
            names.push(entry.file_name().to_string_lossy().into_owned());
        }
    }
    names.sort();
    Ok(names)
}

/// The names of every package `package` depends on at run time (normal
/// dependencies, followed transitively; dev- and build-dependencies left out), from
/// `cargo metadata`, so a forbidden crate cannot slip in through another one.
fn dependencies_of(root: &Path, package: &str) -> anyhow::Result<BTreeSet<String>> {
    let cargo = option_env!("CARGO").unwrap_or("cargo");
    let output = Command::new(cargo)
        .args(["metadata", "--format-version", "1", "--locked"])
        .current_dir(root)
        .output()
        .context("cannot run cargo metadata")?;
    if !output.status.success() {
        bail!(
            "cargo metadata failed: {}",
            String::from_utf8_lossy(&output.stderr).trim()
        );
    }
    let metadata: Value =
        serde_json::from_slice(&output.stdout).context("cargo metadata printed invalid JSON")?;
    let names: HashMap<&str, &str> = metadata["packages"]
        .as_array()
        .context("cargo metadata has no packages")?
        .iter()
        .filter_map(|p| Some((p["id"].as_str()?, p["name"].as_str()?)))
        .collect();
    let nodes: HashMap<&str, &Value> = metadata["resolve"]["nodes"]
        .as_array()
        .context("cargo metadata has no resolve graph")?
        .iter()
        .filter_map(|node| Some((node["id"].as_str()?, node)))
        .collect();
    let start = names
        .iter()
        .find(|(_, name)| **name == package)
        .map(|(id, _)| *id)
        .with_context(|| format!("no package {package} in the workspace"))?;

    let mut seen = BTreeSet::new();
    let mut stack = vec![start];
    while let Some(id) = stack.pop() {
        let Some(deps) = nodes.get(id).and_then(|node| node["deps"].as_array()) else {
            continue;
        };
        for dep in deps {
            let normal = dep["dep_kinds"]
                .as_array()
                .is_some_and(|kinds| kinds.iter().any(|k| k["kind"].is_null()));
            let Some(dep_id) = dep["pkg"].as_str() else {
                continue;
            };
            if normal && seen.insert(names.get(dep_id).copied().unwrap_or(dep_id).to_owned()) {
                stack.push(dep_id);
            }
        }
    }
    Ok(seen)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_tree_is_tidy() {
        let problems = problems(&workspace_root()).expect("tidy could not run");
        assert!(
            problems.is_empty(),
            "cargo xtask tidy found:\n{}",
            problems.join("\n")
        );
    }

    #[test]
    fn the_dependency_walk_sees_transitive_crates() {
        // If the walk were broken, the forbidden-crate check would pass vacuously.
        // vexil-cli reaches serde only through its dependencies' dependencies too.
        let deps = dependencies_of(&workspace_root(), "vexil-cli").unwrap();
        for expected in ["vexil-core", "serde-saphyr", "clap", "clap_builder"] {
            assert!(deps.contains(expected), "{expected} missing from {deps:?}");
        }
        let core = dependencies_of(&workspace_root(), "vexil-core").unwrap();
        assert!(
            !core.contains("proptest"),
            "dev-dependencies are not run-time dependencies"
        );
    }
}
