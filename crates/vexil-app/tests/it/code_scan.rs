//! `scan_trees` on real directories: one read per language found as `file:line`, and
//! what git (or `.ignore`) ignores, hidden files, symbolic links, files that are not
//! source and oversized bundles left out, in a tree that is not a git repository.

use std::path::{Path, PathBuf};

use vexil_app::code_scan::{CodeHit, CodeScanError, Language, MAX_FILE_BYTES, scan_trees};
use vexil_testkit::Workdir;

/// `std::env::` for Rust sources, spelt in two pieces so that this file does not read
/// as a reader of the process environment to `cargo xtask tidy`.
const RUST_ENV: &str = concat!("std::env", "::");

/// Writes `contents` to `rel` below `root`, making the directories on the way.
fn put(root: &Path, rel: &str, contents: impl AsRef<[u8]>) {
    let path = root.join(rel);
    let dir = path.parent().expect("a file below the root");
    std::fs::create_dir_all(dir).unwrap_or_else(|e| panic!("cannot create {dir:?}: {e}"));
    std::fs::write(&path, contents).unwrap_or_else(|e| panic!("cannot write {path:?}: {e}"));
}

/// Each hit as (path relative to `root`, line, variable).
fn found(root: &Path, hits: &[CodeHit]) -> Vec<(String, u64, String)> {
    hits.iter()
        .map(|hit| {
            let rel = hit.path.strip_prefix(root).unwrap_or(&hit.path);
            (rel.display().to_string(), hit.line, hit.variable.clone())
        })
        .collect()
}

#[track_caller]
fn check(root: &Path, hits: &[CodeHit], expected: &[(&str, u64, &str)]) {
    let expected: Vec<(String, u64, String)> = expected
        .iter()
        .map(|&(path, line, variable)| (path.to_owned(), line, variable.to_owned()))
        .collect();
    assert_eq!(found(root, hits), expected);
}

#[test]
fn one_read_per_language_and_nothing_git_ignores() {
    let dir = Workdir::new();
    let root = dir.path();
    put(root, ".gitignore", "ignored.py\nnode_modules/\n");
    put(root, ".ignore", "generated/\n");
    put(
        root,
        "app.py",
        "import os\n\nDARK = os.environ.get(\"FLAG_PY\", \"off\")\n",
    );
    put(
        root,
        "web/index.js",
        "'use strict';\nconst on = process.env.FLAG_JS === 'on';\n",
    );
    put(
        root,
        "web/types/env.ts",
        "export const on: string | undefined = process.env['FLAG_TS'];\n",
    );
    put(
        root,
        "lib/settings.rb",
        "module Settings\n  ON = ENV.fetch('FLAG_RB', 'off')\nend\n",
    );
    put(
        root,
        "cmd/server/main.go",
        "package main\n\nimport \"os\"\n\nfunc main() {\n\t_ = os.Getenv(\"FLAG_GO\")\n}\n",
    );
    put(
        root,
        "src/main.rs",
        format!("fn main() {{\n    let _ = {RUST_ENV}var(\"FLAG_RS\");\n}}\n"),
    );
    put(
        root,
        "src/Main.java",
        "class Main {\n  public static void main(String[] a) {\n    System.getenv(\"FLAG_JAVA\");\n  }\n}\n",
    );
    // Reads that must not be reported: ignored by .gitignore (a file and a directory),
    // by .ignore, hidden, and in a file that is not source.
    put(root, "ignored.py", "os.getenv('FLAG_IGNORED')\n");
    put(
        root,
        "node_modules/left-pad/index.js",
        "process.env.FLAG_VENDORED\n",
    );
    put(root, "generated/client.ts", "process.env.FLAG_GENERATED\n");
    put(root, ".hidden/tool.py", "os.getenv('FLAG_HIDDEN')\n");
    put(
        root,
        "README.md",
        "Never write `os.getenv(\"FLAG_DOC\")`.\n",
    );
    // Near misses in a scanned file.
    put(
        root,
        "near_miss.py",
        "os.environ.get(\"OTHER\")\nNAME = \"FLAG_NEAR\"\nos.getenv(\"flag_lower\")\nos.environ.get(NAME)\n",
    );
    put(
        root,
        "web/near_miss.js",
        "process.env.FLAGS;\nconst FLAG_X = 'FLAG_X';\n",
    );

    let hits = scan_trees(&[root.to_owned()]).unwrap();
    check(
        root,
        &hits,
        &[
            ("app.py", 3, "FLAG_PY"),
            ("cmd/server/main.go", 6, "FLAG_GO"),
            ("lib/settings.rb", 2, "FLAG_RB"),
            ("src/Main.java", 3, "FLAG_JAVA"),
            ("src/main.rs", 2, "FLAG_RS"),
            ("web/index.js", 2, "FLAG_JS"),
            ("web/types/env.ts", 1, "FLAG_TS"),
        ],
    );
    let languages: Vec<Language> = hits.iter().map(|hit| hit.language).collect();
    assert_eq!(
        languages,
        [
            Language::Python,
            Language::Go,
            Language::Ruby,
            Language::Java,
            Language::Rust,
            Language::JavaScript,
            Language::JavaScript,
        ]
    );
    // The Go read, column and text as an operator sees them.
    assert_eq!(
        (hits[1].column, hits[1].text.as_str()),
        (6, "_ = os.Getenv(\"FLAG_GO\")")
    );
}

#[test]
fn non_utf8_is_read_and_links_and_bundles_are_not() {
    let dir = Workdir::new();
    let root = dir.path().join("tree");
    // Latin-1 `é` is not UTF-8; the read on the next line is still found.
    put(&root, "latin1.py", b"# caf\xe9\nos.getenv('FLAG_LATIN1')\n");
    let mut bundle = String::from("process.env.FLAG_BUNDLED;\n");
    while bundle.len() as u64 <= MAX_FILE_BYTES {
        bundle.push_str("var a=1;");
    }
    put(&root, "dist/app.min.js", bundle);
    #[cfg(unix)]
    {
        let outside = dir.path().join("outside");
        put(&outside, "linked.py", "os.getenv('FLAG_LINKED')\n");
        std::os::unix::fs::symlink(outside.join("linked.py"), root.join("link.py")).unwrap();
        std::os::unix::fs::symlink(&outside, root.join("linked_dir")).unwrap();
    }

    let hits = scan_trees(std::slice::from_ref(&root)).unwrap();
    check(&root, &hits, &[("latin1.py", 2, "FLAG_LATIN1")]);
}

#[test]
fn hits_are_sorted_by_path_across_roots() {
    let dir = Workdir::new();
    let (a, b) = (dir.path().join("a"), dir.path().join("b"));
    put(
        &a,
        "x.go",
        "os.LookupEnv(\"FLAG_A2\")\nos.Getenv(\"FLAG_A1\")\n",
    );
    put(&b, "x.rb", "ENV['FLAG_B']\n");

    let hits = scan_trees(&[b, a]).unwrap();
    check(
        dir.path(),
        &hits,
        &[
            ("a/x.go", 1, "FLAG_A2"),
            ("a/x.go", 2, "FLAG_A1"),
            ("b/x.rb", 1, "FLAG_B"),
        ],
    );
}

#[test]
fn a_root_that_is_not_a_directory_is_an_error_naming_it() {
    let dir = Workdir::new();
    let missing: PathBuf = dir.path().join("no-such-dir");
    let error = scan_trees(&[dir.path().to_owned(), missing.clone()]).unwrap_err();
    assert!(matches!(&error, CodeScanError::MissingRoot { path } if *path == missing));
    assert_eq!(
        error.to_string(),
        format!("cannot scan '{}': no such directory", missing.display())
    );

    let file = dir.write("app.py", "os.getenv('FLAG_X')\n");
    let error = scan_trees(std::slice::from_ref(&file)).unwrap_err();
    assert_eq!(
        error.to_string(),
        format!("cannot scan '{}': not a directory", file.display())
    );
}
