//! `scan_trees` on real directories: one read per language found as `file:line`, and
//! what git (or `.ignore`) ignores, hidden files, symbolic links, files that are not
//! source and oversized bundles left out, in a tree that is not a git repository; a
//! script known by its `#!` line; and the committed corpus of real-world reads, every
//! hit and every line kept out named.

use std::path::{Path, PathBuf};

use vexil_app::code_scan::{CodeHit, CodeScanError, Language, MAX_FILE_BYTES, scan_trees};
use vexil_testkit::{Workdir, code_corpus};

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
    // and in a file that is not source. What git does not ignore is scanned: ripgrep's
    // own `.ignore` means nothing to git, and a hidden file is deployed too.
    put(
        root,
        "ignored.py",
        "os.getenv('FLAG_IGNORED')\nos.environ.get('FLAG_IGNORED_TOO')\n",
    );
    put(
        root,
        "templates/page.html",
        "<p>{{ os.environ.get('FLAG_TEMPLATE') }}</p>\n",
    );
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
        "os.environ.get(\"OTHER\")\nNAME = \"FLAG_NEAR\"\nos.getenv(\"flag_lower\")\nos.environ.get(key)\n",
    );
    put(
        root,
        "web/near_miss.js",
        "process.env.FLAGS;\nconst FLAG_X = 'FLAG_X';\n",
    );

    let scan = scan_trees(&[root.to_owned()]).unwrap();
    let hits = scan.hits;
    check(
        root,
        &hits,
        &[
            (".hidden/tool.py", 1, "FLAG_HIDDEN"),
            ("app.py", 3, "FLAG_PY"),
            ("cmd/server/main.go", 6, "FLAG_GO"),
            ("generated/client.ts", 1, "FLAG_GENERATED"),
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
            Language::Python,
            Language::Go,
            Language::JavaScript,
            Language::Ruby,
            Language::Java,
            Language::Rust,
            Language::JavaScript,
            Language::JavaScript,
        ]
    );
    // The Go read, column and text as an operator sees them.
    assert_eq!(
        (hits[2].column, hits[2].text.as_str()),
        (6, "_ = os.Getenv(\"FLAG_GO\")")
    );
    // The runbook's grep lines in the files not scanned are said, with why.
    let grep_only: Vec<(String, u64, &str)> = scan
        .grep_only
        .iter()
        .map(|g| {
            let rel = g.path.strip_prefix(root).unwrap().display().to_string();
            (rel, g.line, g.why.as_str())
        })
        .collect();
    assert_eq!(
        grep_only,
        [
            (
                "ignored.py".to_owned(),
                2,
                "not scanned: ignored by a .gitignore (not deployed from git)"
            ),
            (
                "templates/page.html".to_owned(),
                1,
                "not scanned: in no language the scan reads"
            ),
        ]
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

    let hits = scan_trees(std::slice::from_ref(&root)).unwrap().hits;
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

    let hits = scan_trees(&[b, a]).unwrap().hits;
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

#[test]
fn a_script_is_known_by_its_first_line() {
    let dir = Workdir::new();
    let root = dir.path();
    put(
        root,
        "bin/deploy",
        "#!/usr/bin/env python3\nimport os\nos.getenv('FLAG_PY')\n",
    );
    put(
        root,
        "bin/tool",
        "#!/usr/bin/env node\nprocess.env.FLAG_JS;\n",
    );
    put(
        root,
        "bin/run",
        "#!/bin/sh\necho \"$FLAG_SH\"\nos.getenv('FLAG_NOT_PYTHON')\n",
    );
    put(root, "bin/blob", b"\x7fELF\x02\x01os.getenv('FLAG_BINARY')");
    let hits = scan_trees(&[root.to_owned()]).unwrap().hits;
    check(
        root,
        &hits,
        &[("bin/deploy", 3, "FLAG_PY"), ("bin/tool", 2, "FLAG_JS")],
    );
}

/// Every read in the corpus, as (file, line, variable, dynamic), and every line the
/// runbook's grep lists there that is no read, with why.
#[test]
fn the_corpus_of_real_world_reads() {
    let root = code_corpus();
    let scan = scan_trees(std::slice::from_ref(&root)).unwrap();
    let rel = |path: &Path| path.strip_prefix(&root).unwrap().display().to_string();
    let hits: Vec<(String, u64, &str, bool)> = scan
        .hits
        .iter()
        .map(|hit| (rel(&hit.path), hit.line, hit.variable.as_str(), hit.dynamic))
        .collect();
    let expected: Vec<(String, u64, &str, bool)> = [
        (
            "console/app/jobs/digest.py",
            6,
            "FLAG_EMAIL_DIGEST_BATCHING",
            false,
        ),
        (
            "console/app/jobs/digest.py",
            7,
            "FLAG_EMAIL_DIGEST_PREVIEW",
            false,
        ),
        (
            "console/app/jobs/digest.py",
            8,
            "FLAG_EMAIL_DIGEST_LIMIT",
            false,
        ),
        // The generic helpers: f-string, concatenation with a default, `%`, `.format`,
        // a name held in a variable, the whole environment filtered on FLAG_.
        ("console/app/services/flags.py", 13, "FLAG_{…}", true),
        ("console/app/services/flags.py", 17, "FLAG_{…}", true),
        ("console/app/services/flags.py", 20, "FLAG_{…}", true),
        ("console/app/services/flags.py", 23, "FLAG_{…}", true),
        ("console/app/services/flags.py", 27, "FLAG_{…}", true),
        ("console/app/services/flags.py", 30, "{…}", true),
        // A call in a docstring counts, as the runbook's grep counts it.
        ("console/app/settings.py", 6, "FLAG_CONSOLE_SSO", false),
        // `from os import environ as env, getenv`, `getenv as read_var`.
        (
            "console/app/settings.py",
            17,
            "FLAG_CONSOLE_AUDIT_EXPORT",
            false,
        ),
        ("console/app/settings.py", 18, "FLAG_CONSOLE_SSO", false),
        (
            "console/app/settings.py",
            19,
            "FLAG_CONSOLE_ONBOARDING",
            false,
        ),
        ("console/app/settings.py", 20, "FLAG_DARK_MODE", false),
        // Commented out, one keystroke from running again.
        (
            "console/app/settings.py",
            21,
            "FLAG_EMAIL_DIGEST_BATCHING",
            false,
        ),
        // A name the scan cannot see into, on a line that names FLAG_.
        ("console/app/settings.py", 33, "{…}", true),
        (
            "console/app/views/billing.py",
            10,
            "FLAG_CONSOLE_NEW_INVOICES",
            false,
        ),
        (
            "console/app/views/billing.py",
            11,
            "FLAG_CONSOLE_BILLING",
            false,
        ),
        (
            "console/app/views/billing.py",
            12,
            "FLAG_CONSOLE_CSV_EXPORT",
            false,
        ),
        // The master switch read directly is a direct read.
        (
            "console/app/views/billing.py",
            13,
            "FLAG_CONSOLE_FEATURE_FLAGS_DB",
            false,
        ),
        // A call over three lines, reported where it starts.
        (
            "console/app/views/billing.py",
            19,
            "FLAG_CONSOLE_BILLING_BANNER",
            false,
        ),
        (
            "console/app/views/billing.py",
            23,
            "FLAG_CONSOLE_DUNNING",
            false,
        ),
        ("console/manage", 7, "FLAG_CONSOLE_MAINTENANCE", false),
        ("raptor/bin/flags", 3, "FLAG_RAPTOR_DEBUG", false),
        ("raptor/lib/flags.rb", 6, "FLAG_{…}", true),
        ("raptor/lib/flags.rb", 10, "FLAG_RAPTOR_BILLING", false),
        ("raptor/lib/flags.rb", 14, "FLAG_RAPTOR_SEARCH", false),
        ("raptor/lib/flags.rb", 18, "FLAG_RAPTOR_BETA", false),
        ("raptor/lib/flags.rb", 22, "FLAG_{…}", true),
        ("services/ledger/flags.rs", 6, "FLAG_LEDGER_BATCH", false),
        ("services/ledger/flags.rs", 10, "FLAG_{…}", true),
        ("services/ledger/flags.rs", 14, "FLAG_LEDGER_RAW", false),
        ("services/ledger/flags.rs", 17, "FLAG_LEDGER_BUILD", false),
        ("services/notifier/main.go", 10, "FLAG_{…}", true),
        (
            "services/notifier/main.go",
            15,
            "FLAG_NOTIFIER_BATCH",
            false,
        ),
        ("services/notifier/main.go", 18, "FLAG_{…}", true),
        ("services/notifier/main.go", 21, "FLAG_NOTIFIER_RAW", false),
        (
            "services/reports/Flags.java",
            8,
            "FLAG_REPORTS_EXPORT",
            false,
        ),
        ("services/reports/Flags.java", 12, "FLAG_{…}", true),
        ("services/reports/Flags.java", 17, "FLAG_REPORTS_PDF", false),
        ("web/src/config.js", 5, "FLAG_WEB_CHAT", false),
        ("web/src/config.js", 6, "FLAG_WEB_LEGACY", false),
        ("web/src/config.js", 7, "{…}", true),
        ("web/src/flags.ts", 4, "FLAG_WEB_NEW_NAV", false),
        ("web/src/flags.ts", 5, "FLAG_WEB_SEARCH", false),
        ("web/src/flags.ts", 6, "FLAG_WEB_CHAT", false),
        ("web/src/flags.ts", 6, "FLAG_WEB_HELP", false),
        ("web/src/flags.ts", 7, "FLAG_WEB_VITE", false),
        ("web/src/flags.ts", 10, "FLAG_{…}", true),
        ("web/src/flags.ts", 14, "FLAG_{…}", true),
        ("web/src/flags.ts", 17, "FLAG_WEB_BETA", false),
    ]
    .into_iter()
    .map(|(path, line, variable, dynamic)| (path.to_owned(), line, variable, dynamic))
    .collect();
    assert_eq!(hits, expected);

    let grep_only: Vec<(String, u64, &str)> = scan
        .grep_only
        .iter()
        .map(|line| (rel(&line.path), line.line, line.why.as_str()))
        .collect();
    assert_eq!(
        grep_only,
        [
            (
                "console/app/README.md".to_owned(),
                3,
                "not scanned: in no language the scan reads"
            ),
            (
                "console/app/settings.py".to_owned(),
                3,
                "names os.environ.get but calls it with no variable's name"
            ),
            (
                "console/app/settings.py".to_owned(),
                13,
                "reads DATABASE_URL, not a FLAG_* variable"
            ),
            (
                "console/app/settings.py".to_owned(),
                15,
                "reads MY_FLAG_LEGACY, not a FLAG_* variable"
            ),
        ]
    );
}
