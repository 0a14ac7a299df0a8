//! The architecture invariants a program can check, run by `cargo xtask tidy` and by
//! `cargo test` (the test at the bottom), so a change that breaks one fails CI.
//!
//! Each check returns problems as `path: what is wrong` lines (`path:line: …` for the
//! layering rules of `tidy/layers.rs`) rather than stopping at the first, like the
//! flags-file checker.

use std::collections::{BTreeSet, HashMap};
use std::path::{Path, PathBuf};
use std::process::Command;

use anyhow::{Context, bail};
use serde_json::Value;

mod layers;

/// Crates that `vexil-core` must not depend on, directly or through another crate:
/// the core does no I/O and no async (invariant 1).
const CORE_FORBIDDEN_DEPS: [&str; 6] = ["tokio", "sqlx", "axum", "hyper", "reqwest", "mio"];

/// `std` modules through which the core would reach the process, the file system, the
/// network or other threads (invariant 1). Caught in any spelling of the path:
/// `std::fs::read`, `use std::fs;`, `use std::{env, fs};`.
const CORE_FORBIDDEN_STD: [&str; 6] = ["env", "fs", "net", "process", "thread", "io"];

/// Text that means the core reads the clock or runs async code (invariant 1).
const CORE_FORBIDDEN_TEXT: [&str; 5] = [
    "SystemTime::now",
    "Instant::now",
    "Utc::now",
    "Local::now",
    "async fn",
];

/// The files allowed to read the process environment by hand (invariant 4): the
/// CLI's config, the library's (`Flags::from_env`), the test kit that clears vexil's
/// variables for a child process, and the library's multi-process test, whose child
/// knows it is one by a variable.
const ENV_READERS: [&str; 5] = [
    "crates/vexil-cli/src/config.rs",
    "crates/vexil/src/config.rs",
    "crates/vexil/tests/it/processes.rs",
    // `VEXIL_SCREENSHOTS`: where the browser test saves the README's screenshots.
    "crates/vexil-server/tests/it/browser/mod.rs",
    "crates/vexil-testkit/src/workdir.rs",
];

/// A file past this many lines is split by domain noun (ARCHITECTURE.md, invariant 13).
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
            for module in std_modules(&text) {
                if CORE_FORBIDDEN_STD.contains(&module.as_str()) {
                    problems.push(format!(
                        "{rel}: uses `std::{module}`; vexil-core does no I/O (invariant 1)"
                    ));
                }
            }
            for needle in CORE_FORBIDDEN_TEXT {
                if text.contains(needle) {
                    problems.push(format!("{rel}: uses `{needle}`; vexil-core does no I/O and reads no clock (invariant 1)"));
                }
            }
        }
        problems.extend(layers::file_problems(&rel, &text));
        if let Some((section, name)) = source_name(&rel)
            && !architecture_section(&architecture, &section).contains(&format!("`{name}`"))
        {
            problems.push(format!(
                "{rel}: not named in ARCHITECTURE.md (as `{name}` under the heading `{section}`)"
            ));
        }
    }
    for krate in crate_dirs(root)? {
        if !architecture.contains(&krate) {
            problems.push(format!(
                "crates/{krate}: crate not named in ARCHITECTURE.md"
            ));
        }
    }
    problems.extend(layers::manifest_problems(root)?);
    for dep in dependencies_of(root, "vexil-core")? {
        if CORE_FORBIDDEN_DEPS.contains(&dep.as_str()) {
            problems.push(format!("crates/vexil-core: depends on {dep}; the core does no I/O and no async (invariant 1)"));
        }
    }
    Ok(problems)
}

/// Where and how ARCHITECTURE.md must name a source file: in its crate's section
/// (`### \`crates/vexil-core\``), as its path below `src/` in backticks
/// (`` `decl/node.rs` ``). Tests and benches are described by folder, not by file.
fn source_name(rel: &str) -> Option<(String, String)> {
    let (krate, below_src) = rel.split_once("/src/")?;
    Some((format!("### `{krate}`"), below_src.to_owned()))
}

/// The text under `heading`, up to the next heading of the same or a higher level.
fn architecture_section<'a>(architecture: &'a str, heading: &str) -> &'a str {
    let Some(start) = architecture.find(&format!("\n{heading}\n")) else {
        return "";
    };
    let body = &architecture[start + heading.len() + 2..];
    let end = [body.find("\n### "), body.find("\n## ")]
        .into_iter()
        .flatten()
        .min();
    &body[..end.unwrap_or(body.len())]
}

/// The first segment of every `std::` path in `text`, grouped imports included:
/// `std::fs::read` and `use std::{env, fmt};` give `fs`, `env`, `fmt`.
fn std_modules(text: &str) -> Vec<String> {
    let mut modules = Vec::new();
    for (at, _) in text.match_indices("std::") {
        // `mystd::x` is not `std`.
        if text[..at].ends_with(|c: char| c.is_alphanumeric() || c == '_') {
            continue;
        }
        let rest = &text[at + 5..];
        let ident = |s: &str| {
            s.trim_start()
                .chars()
                .take_while(|c| c.is_alphanumeric() || *c == '_')
                .collect::<String>()
        };
        if let Some(group) = rest.strip_prefix('{') {
            let group = &group[..group.find('}').unwrap_or(group.len())];
            modules.extend(group.split(',').map(ident).filter(|m| !m.is_empty()));
        } else {
            modules.push(ident(rest));
        }
    }
    modules
}

fn rust_files(dir: &Path, out: &mut Vec<PathBuf>) -> anyhow::Result<()> {
    for entry in std::fs::read_dir(dir).with_context(|| format!("cannot list {}", dir.display()))? {
        let path = entry?.path();
        if path.is_dir() {
            // `fixtures/` holds test inputs written as other projects' code (the code
            // scan's corpus reads the environment on purpose), never compiled.
            if path
                .file_name()
                .is_some_and(|name| name == "target" || name == "fixtures")
            {
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

/// `cargo metadata --format-version 1 <extra>` of the workspace at `root`.
pub(crate) fn cargo_metadata(root: &Path, extra: &str) -> anyhow::Result<Value> {
    let cargo = option_env!("CARGO").unwrap_or("cargo");
    let output = Command::new(cargo)
        .args(["metadata", "--format-version", "1", extra])
        .current_dir(root)
        .output()
        .context("cannot run cargo metadata")?;
    if !output.status.success() {
        bail!(
            "cargo metadata failed: {}",
            String::from_utf8_lossy(&output.stderr).trim()
        );
    }
    serde_json::from_slice(&output.stdout).context("cargo metadata printed invalid JSON")
}

/// The names of every package `package` depends on at run time (normal
/// dependencies, followed transitively; dev- and build-dependencies left out), from
/// `cargo metadata`, so a forbidden crate cannot slip in through another one.
fn dependencies_of(root: &Path, package: &str) -> anyhow::Result<BTreeSet<String>> {
    let metadata = cargo_metadata(root, "--locked")?;
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
    fn std_paths_are_found_in_every_spelling() {
        let text = "use std::fmt;\nuse std::{env, fs::File};\nlet x = std::net::TcpStream::connect(a);\nmystd::io";
        assert_eq!(std_modules(text), ["fmt", "env", "fs", "net"]);
    }

    #[test]
    fn files_are_looked_for_in_their_crate_s_section() {
        let doc = "# A\n## Code map\n### `crates/a`\n- `error.rs`: x\n### `crates/b`\n- `key.rs`\n## Other\n`lib.rs`";
        let (section, name) = source_name("crates/b/src/error.rs").unwrap();
        assert_eq!(
            (section.as_str(), name.as_str()),
            ("### `crates/b`", "error.rs")
        );
        assert_eq!(architecture_section(doc, &section), "- `key.rs`");
        assert_eq!(
            architecture_section(doc, "### `crates/a`"),
            "- `error.rs`: x"
        );
        assert_eq!(architecture_section(doc, "### `crates/c`"), "");
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
