//! The layering rules of `cargo xtask tidy`, enforced rather than described: which of
//! our crates may depend on which (`LAYERS`, checked against `cargo metadata`), SQL
//! only in vexil-store, the server's `Db` only in its session store, and `Admin::Cli`
//! only in the binary.
//!
//! Each problem is one `path:line: rule; why` line.

use std::collections::{BTreeMap, BTreeSet};
use std::path::Path;

use anyhow::Context;
use serde_json::Value;

/// Where the table lives, for the messages that ask to change it.
const TABLE: &str = "`LAYERS` (xtask/src/tidy/layers.rs)";

const TESTKIT: &str = "vexil-testkit";

/// One row of the layering table: which of our crates `krate` may depend on, by kind
/// of dependency. A build- or dev-dependency may also name anything a normal one may
/// (a test uses what the code uses).
#[derive(Debug)]
struct Layer {
    krate: &'static str,
    normal: &'static [&'static str],
    build: &'static [&'static str],
    dev: &'static [&'static str],
}

/// The layering of ARCHITECTURE.md ("Layers"): dependencies point one way, from the
/// binary down to the pure core, and the test kit is for tests. An edge between our
/// crates that is not here fails tidy: a new one is a design decision, made here.
#[rustfmt::skip]
const LAYERS: &[Layer] = &[
    // Values and pure functions only (invariant 1).
    Layer { krate: "vexil-core", normal: &[], build: &[], dev: &[] },
    // The only crate with SQL.
    Layer { krate: "vexil-store", normal: &["vexil-core"], build: &[], dev: &[TESTKIT] },
    // The library; the store only in database mode (an optional dependency).
    Layer { krate: "vexil", normal: &["vexil-core", "vexil-store"], build: &[], dev: &[TESTKIT] },
    // The use cases, which link the library for `vexil serve`'s own view of its env.
    Layer {
        krate: "vexil-app",
        normal: &["vexil-core", "vexil-store", "vexil"], build: &[], dev: &[TESTKIT],
    },
    // HTTP over the use cases. The store for its row and error types, and for the
    // session store's `Db` (nothing else in the server may touch it: `db_uses`).
    Layer {
        krate: "vexil-server",
        normal: &["vexil-app", "vexil-core", "vexil-store", "vexil"], build: &[], dev: &[TESTKIT],
    },
    // The binary: everything below it.
    Layer {
        krate: "vexil-cli",
        normal: &["vexil-server", "vexil-app", "vexil-store", "vexil-core", "vexil"],
        build: &[], dev: &[TESTKIT],
    },
    // The Python package: the library, nothing else.
    Layer { krate: "vexil-python", normal: &["vexil"], build: &[], dev: &[] },
    // Test support (scratch databases need the store; a reported instance, behind the
    // `instance` feature, the library); everyone else's dev-dependency.
    Layer { krate: TESTKIT, normal: &["vexil-core", "vexil-store", "vexil"], build: &[], dev: &[] },
    // Automation, never shipped: its benchmarks seed through the app and the test kit.
    Layer {
        krate: "xtask",
        normal: &["vexil-app", "vexil-core", "vexil-store", TESTKIT], build: &[], dev: &[],
    },
];

/// The crates whose code and manifests may name sqlx.
const SQL_CRATES: [&str; 2] = ["vexil-store", TESTKIT];

/// The one server file that may hold vexil_store's `Db`.
const SESSION_STORE: &str = "crates/vexil-server/src/session_store.rs";

/// The kind of a dependency, as Cargo lists it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Kind {
    Normal,
    Build,
    Dev,
}

impl Kind {
    fn from_metadata(kind: &Value) -> Option<Kind> {
        match kind.as_str() {
            _ if kind.is_null() => Some(Kind::Normal),
            Some("build") => Some(Kind::Build),
            Some("dev") => Some(Kind::Dev),
            _ => None,
        }
    }

    /// The manifest table that lists this kind.
    fn table(self) -> &'static str {
        match self {
            Kind::Normal => "dependencies",
            Kind::Build => "build-dependencies",
            Kind::Dev => "dev-dependencies",
        }
    }
}

impl Layer {
    fn allows(&self, to: &str, kind: Kind) -> bool {
        let extra = match kind {
            Kind::Normal => &[][..],
            Kind::Build => self.build,
            Kind::Dev => self.dev,
        };
        self.normal.contains(&to) || extra.contains(&to)
    }
}

/// The manifests' problems: edges between our crates that `LAYERS` does not allow,
/// and sqlx outside the crates that may have SQL.
pub(super) fn manifest_problems(root: &Path) -> anyhow::Result<Vec<String>> {
    let metadata = super::cargo_metadata(root, "--no-deps")?;
    check_manifests(&metadata, LAYERS, root, &|path: &Path| {
        std::fs::read_to_string(path).ok()
    })
}

/// `manifest_problems` on parsed `cargo metadata --no-deps` output, reading each
/// manifest through `read` only to say on which line a dependency is.
fn check_manifests(
    metadata: &Value,
    layers: &[Layer],
    root: &Path,
    read: &dyn Fn(&Path) -> Option<String>,
) -> anyhow::Result<Vec<String>> {
    let mut packages: Vec<&Value> = metadata["packages"]
        .as_array()
        .context("cargo metadata lists no packages")?
        .iter()
        .collect();
    packages.sort_by(|a, b| a["name"].as_str().cmp(&b["name"].as_str()));
    // With --no-deps, the packages are the workspace's: ours.
    let ours: BTreeSet<&str> = packages.iter().filter_map(|p| p["name"].as_str()).collect();

    let mut problems = Vec::new();
    for package in packages {
        let name = package["name"].as_str().context("a package has no name")?;
        let manifest = package["manifest_path"]
            .as_str()
            .context("a package has no manifest_path")?;
        let rel = Path::new(manifest)
            .strip_prefix(root)
            .unwrap_or(Path::new(manifest))
            .to_string_lossy()
            .replace('\\', "/");
        let text = read(Path::new(manifest)).unwrap_or_default();
        let layer = layers.iter().find(|layer| layer.krate == name);
        if layer.is_none() {
            problems.push(format!(
                "{rel}:1: package `{name}` has no row in the layering table; each of our crates says which of ours it may depend on (add one to {TABLE})"
            ));
        }
        for dep in package["dependencies"].as_array().into_iter().flatten() {
            let (Some(to), Some(kind)) = (dep["name"].as_str(), Kind::from_metadata(&dep["kind"]))
            else {
                continue;
            };
            let key = dep["rename"].as_str().unwrap_or(to);
            let line = || dependency_line(&text, kind, key);
            // A path dependency is ours; a registry crate of the same name is not.
            let local = dep["source"].is_null();
            if let Some(layer) = layer
                && local
                && ours.contains(to)
                && !layer.allows(to, kind)
            {
                problems.push(format!(
                    "{rel}:{}: `{name}` -> `{to}` ({}) is not in the layering table; our crates depend on each other one way (ARCHITECTURE.md, Layers): drop the dependency, or change the layering in {TABLE}",
                    line(),
                    kind.table()
                ));
            }
            if to == "sqlx"
                && kind != Kind::Dev
                && rel.starts_with("crates/")
                && !SQL_CRATES.contains(&name)
            {
                problems.push(format!(
                    "{rel}:{}: `{name}` depends on sqlx ({}); vexil-store is the only crate with SQL (one set of queries for both databases), so go through its API",
                    line(),
                    kind.table()
                ));
            }
        }
    }
    Ok(problems)
}

/// The 1-based line of the manifest that declares dependency `key` of `kind`
/// (`key = …`, `key.workspace = true`, or a `[dependencies.key]` table, target
/// tables included); 1 when it cannot be found.
fn dependency_line(manifest: &str, kind: Kind, key: &str) -> usize {
    let table = kind.table();
    let mut in_table = false;
    for (index, line) in manifest.lines().enumerate() {
        let line = line.trim();
        if let Some(header) = line.strip_prefix('[') {
            let header = header.trim_end_matches(']').trim();
            let own = format!("{table}.{key}");
            if header == own || header.ends_with(&format!(".{own}")) {
                return index + 1;
            }
            in_table = header == table || header.ends_with(&format!(".{table}"));
            continue;
        }
        let unquoted = line.trim_start_matches('"');
        if in_table
            && let Some(rest) = unquoted.strip_prefix(key)
            && rest
                .trim_start_matches('"')
                .trim_start()
                .starts_with(['=', '.'])
        {
            return index + 1;
        }
    }
    1
}

/// The layering problems of one source file (`rel`, from the workspace root).
pub(super) fn file_problems(rel: &str, text: &str) -> Vec<String> {
    let mut problems = Vec::new();
    if let Some((krate, _)) = rel
        .strip_prefix("crates/")
        .and_then(|r| r.split_once("/src/"))
        && !SQL_CRATES.contains(&krate)
    {
        for line in sqlx_uses(text) {
            problems.push(format!(
                "{rel}:{line}: uses sqlx outside vexil-store; the store is the only crate with SQL (one set of queries for both databases), so go through its API"
            ));
        }
    }
    if rel.starts_with("crates/vexil-server/src/") && rel != SESSION_STORE {
        for (line, what) in db_uses(text) {
            problems.push(format!(
                "{rel}:{line}: {what} outside session_store.rs; the server goes through vexil-app's use cases (which check roles and write the audit log), and only its session store holds the database"
            ));
        }
    }
    for line in admin_cli_uses(rel, text) {
        problems.push(format!(
            "{rel}:{line}: names `Admin::Cli` outside crates/vexil-cli/src; it skips the role check (the operator with database access at the shell), so only the binary's commands may claim it"
        ));
    }
    problems
}

fn is_ident(c: char) -> bool {
    c.is_alphanumeric() || c == '_'
}

/// Byte offsets of `word` in `text` where it is not part of a longer identifier.
fn word_at(text: &str, word: &str) -> Vec<usize> {
    text.match_indices(word)
        .map(|(at, _)| at)
        .filter(|&at| {
            !text[..at].ends_with(is_ident) && !text[at + word.len()..].starts_with(is_ident)
        })
        .collect()
}

/// The 1-based line of byte `at`, or `None` when `at` is in a `//` comment (one
/// after an even number of quotes on its line: not inside a string).
fn code_line(text: &str, at: usize) -> Option<usize> {
    let start = text[..at].rfind('\n').map_or(0, |i| i + 1);
    let before = &text[start..at];
    if before
        .match_indices("//")
        .any(|(comment, _)| before[..comment].matches('"').count().is_multiple_of(2))
    {
        return None;
    }
    Some(text[..at].matches('\n').count() + 1)
}

/// The lines where code names the sqlx crate: `sqlx::…`, `use sqlx`, `extern crate
/// sqlx`, `#[sqlx(…)]`; not a table called `_sqlx_migrations` or a comment.
fn sqlx_uses(text: &str) -> BTreeSet<usize> {
    let ends_with_word = |s: &str, word: &str| {
        s.strip_suffix(word)
            .is_some_and(|before| !before.ends_with(is_ident))
    };
    word_at(text, "sqlx")
        .into_iter()
        .filter(|&at| {
            let before = text[..at].trim_end();
            text[at + 4..].trim_start().starts_with("::")
                || before.ends_with("#[")
                || ends_with_word(before, "use")
                || ends_with_word(before, "crate")
        })
        .filter_map(|at| code_line(text, at))
        .collect()
}

/// Where a server file reaches vexil_store's `Db`, one entry a line: the path
/// `vexil_store::Db` (or `vexil_store::db::Db`), `Db` in a `use vexil_store::{…}`
/// group (across lines too), or a `.db()` / `App::db(` call.
fn db_uses(text: &str) -> BTreeMap<usize, &'static str> {
    let mut found = Vec::new();
    for at in word_at(text, "vexil_store") {
        let Some(rest) = text[at + "vexil_store".len()..].strip_prefix("::") else {
            continue;
        };
        let rest_at = text.len() - rest.len();
        let path_len = rest
            .find(|c: char| !is_ident(c) && c != ':')
            .unwrap_or(rest.len());
        if rest[..path_len].split("::").any(|segment| segment == "Db") {
            found.push((at, "names `vexil_store::Db`"));
        } else if rest[path_len..].starts_with('{') {
            let group = &rest[path_len..];
            let mut depth = 0;
            let end = group
                .char_indices()
                .find(|&(_, c)| {
                    depth += match c {
                        '{' => 1,
                        '}' => -1,
                        _ => 0,
                    };
                    depth == 0
                })
                .map_or(group.len(), |(i, _)| i);
            for db in word_at(&group[..end], "Db") {
                found.push((
                    rest_at + path_len + db,
                    "imports `Db` from a `use vexil_store::{…}` group",
                ));
            }
        }
    }
    for (at, _) in text.match_indices(".db()") {
        found.push((at, "calls `.db()` (the App's `Db`)"));
    }
    for (at, _) in text.match_indices("App::db(") {
        found.push((at, "calls `App::db`"));
    }
    let mut lines = BTreeMap::new();
    found.sort_unstable();
    for (at, what) in found {
        if let Some(line) = code_line(text, at) {
            lines.entry(line).or_insert(what);
        }
    }
    lines
}

/// The lines that name `Admin::Cli` where they may not. Allowed: the binary's code,
/// tests (`tests/` folders, `#[cfg(test)]` modules and the test kit), benchmarks and
/// xtask's tooling; and in vexil-app, the enum's home, patterns (`Admin::Cli =>`,
/// `Admin::Cli |`, `let Admin::Cli =`) but not a construction, which would let a
/// caller of the app skip the role check.
fn admin_cli_uses(rel: &str, text: &str) -> BTreeSet<usize> {
    if rel.starts_with("crates/vexil-cli/src/")
        || rel.starts_with("crates/vexil-testkit/")
        || rel.starts_with("xtask/")
        || rel
            .split('/')
            .any(|part| part == "tests" || part == "benches")
    {
        return BTreeSet::new();
    }
    let tests_from = text.find("#[cfg(test)]").unwrap_or(text.len());
    let home = rel.starts_with("crates/vexil-app/src/");
    word_at(text, "Admin::Cli")
        .into_iter()
        .filter(|&at| at < tests_from)
        .filter(|&at| {
            let after = text[at + "Admin::Cli".len()..].trim_start();
            let pattern = (after.starts_with('=') && !after.starts_with("=="))
                || (after.starts_with('|') && !after.starts_with("||"));
            !(home && pattern)
        })
        .filter_map(|at| code_line(text, at))
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn db_is_found_in_paths_groups_and_calls() {
        let text = "\
use vexil_store::Db;
use vexil_store::{AuditFilter, Db as Store};
use vexil_store::{
    AuditRow,
    Db,
};
use vexil_store::{DbError, StoreError};
let rows = state.app.db().audit_page(&f).await?;
let url = state.app.db_url();
// state.app.db() in a comment
let db: vexil_store::db::Db = x;
let now = state
    .app
    .db()
    .clock();
let d = App::db(&app);";
        let lines: Vec<usize> = db_uses(text).into_keys().collect();
        assert_eq!(lines, [1, 2, 5, 8, 11, 14, 16]);
        assert_eq!(db_uses(text)[&2], db_uses(text)[&5]);
        assert!(db_uses("use vexil_store::{DbError, Dbx, a::ADb};").is_empty());
    }

    #[test]
    fn sqlx_is_the_crate_not_the_word() {
        let text = "\
//! the published sqlx store
    (\"_sqlx_migrations\", \"SELECT\"),
use sqlx::Row;
let n = ::sqlx::query(\"x\");
#[derive(sqlx::FromRow)]
#[sqlx(rename = \"x\")]
extern crate sqlx;
let sqlx_pool = 1; // sqlx::nothing
let url = \"http://x\"; // sqlx::nothing";
        assert_eq!(
            sqlx_uses(text).into_iter().collect::<Vec<_>>(),
            [3, 4, 5, 6, 7]
        );
    }

    #[test]
    fn admin_cli_is_allowed_where_the_rule_says() {
        let call = "fn f() {\n    app.add_user(Admin::Cli, name);\n}\n";
        assert!(admin_cli_uses("crates/vexil-cli/src/cmd/user.rs", call).is_empty());
        assert!(admin_cli_uses("crates/vexil-server/tests/it/harness.rs", call).is_empty());
        assert!(admin_cli_uses("crates/vexil-app/benches/flip.rs", call).is_empty());
        assert_eq!(
            admin_cli_uses("crates/vexil-server/src/api/users.rs", call),
            BTreeSet::from([2])
        );
        assert_eq!(
            admin_cli_uses("crates/vexil-app/src/account.rs", call),
            BTreeSet::from([2])
        );
        let unit_test = format!("//! x\n#[cfg(test)]\nmod tests {{\n{call}}}");
        assert!(admin_cli_uses("crates/vexil-server/src/a.rs", &unit_test).is_empty());
        let arms = "match admin {\n    Admin::Cli => Ok(()),\n    Admin::Cli | _ => x,\n}\nif let Admin::Cli = a {}\nlet x = Admin::Client;";
        assert!(admin_cli_uses("crates/vexil-app/src/account.rs", arms).is_empty());
        assert_eq!(
            admin_cli_uses("crates/vexil-server/src/a.rs", arms),
            BTreeSet::from([2, 3, 5])
        );
    }

    #[test]
    fn dependency_lines_are_found_in_every_table() {
        let manifest = "\
[package]
name = \"a\"

[dependencies]
vexil-core.workspace = true
vexil = { path = \"../vexil\" }

[dev-dependencies]
vexil-core = { workspace = true }

[target.'cfg(unix)'.build-dependencies]
\"vexil-store\" = \"1\"

[dependencies.vexil-app]
path = \"../vexil-app\"
";
        assert_eq!(dependency_line(manifest, Kind::Normal, "vexil-core"), 5);
        assert_eq!(dependency_line(manifest, Kind::Normal, "vexil"), 6);
        assert_eq!(dependency_line(manifest, Kind::Dev, "vexil-core"), 9);
        assert_eq!(dependency_line(manifest, Kind::Build, "vexil-store"), 12);
        assert_eq!(dependency_line(manifest, Kind::Normal, "vexil-app"), 14);
        assert_eq!(dependency_line(manifest, Kind::Dev, "vexil"), 1);
    }

    #[test]
    fn the_table_is_checked_against_the_metadata() {
        const TEST_LAYERS: &[Layer] = &[
            Layer {
                krate: "low",
                normal: &[],
                build: &[],
                dev: &[TESTKIT],
            },
            Layer {
                krate: "high",
                normal: &["low"],
                build: &[],
                dev: &[],
            },
            Layer {
                krate: TESTKIT,
                normal: &["low"],
                build: &[],
                dev: &[],
            },
        ];
        let dep = |name: &str, kind: Value, source: Value| serde_json::json!({ "name": name, "kind": kind, "source": source, "rename": null });
        let registry = Value::from("registry+https://github.com/rust-lang/crates.io-index");
        let package = |name: &str, deps: Vec<Value>| {
            serde_json::json!({
                "name": name,
                "manifest_path": format!("/ws/crates/{name}/Cargo.toml"),
                "dependencies": deps,
            })
        };
        let metadata = serde_json::json!({ "packages": [
            package("low", vec![
                // Allowed: the kit as a dev-dependency, a registry crate named like ours.
                dep(TESTKIT, "dev".into(), Value::Null),
                dep("high", Value::Null, registry.clone()),
                // A lower layer on a higher one.
                dep("high", Value::Null, Value::Null),
                // SQL outside the store, but only in tests: allowed.
                dep("sqlx", "dev".into(), registry.clone()),
            ]),
            package("high", vec![
                // Allowed in tests because allowed in code.
                dep("low", "dev".into(), Value::Null),
                // The kit in the code.
                dep(TESTKIT, Value::Null, Value::Null),
                dep("sqlx", Value::Null, registry.clone()),
            ]),
            package(TESTKIT, vec![dep("sqlx", Value::Null, registry)]),
            package("stray", vec![]),
        ]});
        let manifests = |path: &Path| -> Option<String> {
            let text = match path.to_str()? {
                "/ws/crates/low/Cargo.toml" => {
                    "[dependencies]\nhigh = \"1\"\n\n[dev-dependencies]\nvexil-testkit.workspace = true"
                }
                "/ws/crates/high/Cargo.toml" => {
                    "[dependencies]\nsqlx = \"0.9\"\nvexil-testkit = { path = \"../vexil-testkit\" }"
                }
                _ => return None,
            };
            Some(text.to_owned())
        };
        let problems =
            check_manifests(&metadata, TEST_LAYERS, Path::new("/ws"), &manifests).unwrap();
        let starts: Vec<&str> = problems
            .iter()
            .map(|p| &p[..p.find(" (").unwrap_or(p.len())])
            .collect();
        assert_eq!(
            starts,
            [
                "crates/high/Cargo.toml:3: `high` -> `vexil-testkit`",
                "crates/high/Cargo.toml:2: `high` depends on sqlx",
                "crates/low/Cargo.toml:2: `low` -> `high`",
                "crates/stray/Cargo.toml:1: package `stray` has no row in the layering table; each of our crates says which of ours it may depend on",
            ],
            "{problems:#?}"
        );
        assert!(problems[0].contains(TABLE), "{}", problems[0]);
    }

    #[test]
    fn today_s_manifests_fit_the_table() {
        let problems = manifest_problems(&super::super::workspace_root()).unwrap();
        assert!(problems.is_empty(), "{}", problems.join("\n"));
    }
}
