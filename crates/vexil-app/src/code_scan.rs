//! The source-code scan behind `vexil doctor --code DIR`: the GA checklist asks that
//! no application reads a `FLAG_*` variable itself (every read goes through vexil's
//! library, so the console, the audit log and the processes agree on what is in force),
//! and an operator needs each offending read as `file:line` to fix it. The runbook
//! confirms that item with `grep -r 'os.environ.get.*FLAG_' console/app/`; this scan
//! reports every line that grep lists in the files it reads, and the reads the grep
//! misses.
//!
//! What counts as a read (`source.rs` says why each choice):
//! - every language's own ways (`forms.rs`): Python's `os.environ.get`, `os.getenv`,
//!   `os.environ[…]`, `setdefault`, `pop` and `"FLAG_X" in os.environ`, through any
//!   name the file binds (`from os import getenv`, `from os import environ as env`,
//!   `import os as o`, `env = os.environ`); JavaScript's `process.env.X`,
//!   `process.env[…]`, destructuring and aliases, `import.meta.env`, `Bun.env`,
//!   `Deno.env.get`; Ruby's `ENV[…]`, `ENV.fetch`, `ENV.key?`; Go's `os.Getenv` and
//!   `os.LookupEnv`; Rust's `std::env` `var` and `var_os`, `env!`, `option_env!`; Java's
//!   `System.getenv`, with or without the name, and its static import;
//! - a call spread over several lines, with a default (`.get("FLAG_X", "0")`), is one
//!   read, on the line it starts;
//! - a name built at run time (`f"FLAG_{key.upper()}"`, `"FLAG_" + key`,
//!   `"FLAG_%s" % key`, `"FLAG_{}".format(key)`, `` `FLAG_${k}` ``, `"FLAG_#{k}"`,
//!   `fmt.Sprintf`, `format!`) is a read, marked dynamic and shown as `FLAG_{…}`: it
//!   can read any flag's variable, so it fails the GA item like a literal one. So is a
//!   name held in a variable assigned such a value in the same file;
//! - the master switch `FLAG_CONSOLE_FEATURE_FLAGS_DB` read directly is a direct read
//!   like any other: vexil's library reads it for the application;
//! - the scan is textual: a read in a comment or a string counts (commented-out code
//!   runs again with one keystroke, and the runbook's grep counts it), while a string
//!   that merely names a variable (`"set FLAG_X to 1"`) reads nothing.
//!
//! The runbook's grep lines this scan keeps out are few and certain: a read of a
//! variable that is no flag's (`os.environ.get("HOME")  # FLAG_X`) and prose that
//! names `os.environ.get` without calling it. Each comes back in
//! [`CodeScan::grep_only`] with the reason.
//!
//! `scan_trees` walks the roots by git's rules (`ignore`): it honours `.gitignore` even
//! outside a git repository, reads hidden files (they are deployed too), skips `.git`,
//! follows no symbolic link and skips files over 4 MiB (bundles); the user's global
//! gitignore is not read, so the answer depends on the tree alone. Files are chosen by
//! extension, and a file with none by its `#!` line (`language.rs`): what git ignores
//! is not deployed (Heroku builds from git), and a file in no language the scan knows
//! (`README.md`, a template) holds no read that runs. So that nothing the runbook's
//! grep lists goes unsaid, the files not scanned are read with the grep's own pattern
//! (`unscanned.rs`), and each line it lists there comes back in `grep_only` with why
//! the file was not scanned. It reads files and touches no database.

mod forms;
mod language;
mod name;
mod source;
mod unscanned;

use std::collections::HashSet;
use std::io::Read as _;
use std::path::{Path, PathBuf};

use ignore::WalkBuilder;
use serde::{Serialize, Serializer};
use vexil_core::message::one_line;

pub use language::Language;
pub use source::{RUNBOOK_GREP, SourceGrepOnly, SourceHit, SourceScan, scan_source};

/// Files larger than this are skipped unread: past 4 MiB a "source" file is a
/// minified bundle or generated code, which nobody fixes by hand and whose one
/// enormous line would make a useless report.
pub const MAX_FILE_BYTES: u64 = 4 * 1024 * 1024;

/// What a scan of source trees found.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize)]
pub struct CodeScan {
    /// Every read of a `FLAG_*` variable, by path, then line and column.
    pub hits: Vec<CodeHit>,
    /// The lines the runbook's grep lists that read no `FLAG_*` variable, and why.
    pub grep_only: Vec<GrepOnly>,
}

/// One read of a `FLAG_*` variable in a source tree.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct CodeHit {
    /// The file, as the walk reached it (the root joined with the path below it).
    #[serde(serialize_with = "path_text")]
    pub path: PathBuf,
    /// 1-based.
    pub line: u64,
    /// 1-based, in bytes: where the read starts (`os.getenv`, not the variable).
    pub column: u64,
    pub language: Language,
    /// The variable read, `FLAG_…`; a name built at run time shows `{…}` for the part
    /// known only then (`FLAG_{…}`).
    pub variable: String,
    /// Whether the name is built at run time: such a read can read any flag's
    /// variable.
    pub dynamic: bool,
    /// The source line, trimmed and cut to 200 characters (`…` marks a cut).
    pub text: String,
}

/// A line the runbook's grep lists that reads no `FLAG_*` variable.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct GrepOnly {
    #[serde(serialize_with = "path_text")]
    pub path: PathBuf,
    /// 1-based.
    pub line: u64,
    /// The line, trimmed and cut to 200 characters.
    pub text: String,
    /// Why it is no read of a flag's variable.
    pub why: String,
}

/// Why a scan could not finish.
#[derive(Debug, thiserror::Error)]
pub enum CodeScanError {
    #[error("cannot scan '{}': no such directory", one_line(&.path.display().to_string()))]
    MissingRoot { path: PathBuf },
    #[error("cannot scan '{}': not a directory", one_line(&.path.display().to_string()))]
    NotADirectory { path: PathBuf },
    /// A directory that cannot be listed, or a root whose metadata cannot be read.
    #[error("cannot walk '{}'", one_line(&.path.display().to_string()))]
    Walk {
        path: PathBuf,
        #[source]
        source: ignore::Error,
    },
    #[error("cannot read '{}'", one_line(&.path.display().to_string()))]
    Read {
        path: PathBuf,
        #[source]
        source: std::io::Error,
    },
}

/// Every read of a `FLAG_*` variable under `roots`, sorted by path, then line and
/// column, and the lines the runbook's grep lists there that read none.
///
/// The walk is ripgrep's: `.gitignore` rules apply even outside a git repository
/// (a tarball or a CI checkout without `.git` gives the same answer), as do `.ignore`
/// files and git's `.git/info/exclude`; the user's global gitignore does not, so the
/// answer depends on the tree and not on whose machine runs it. Hidden files and
/// directories are skipped, symbolic links are not followed, and files over
/// [`MAX_FILE_BYTES`] are skipped. A file that is not UTF-8 is read lossily.
pub fn scan_trees(roots: &[PathBuf]) -> Result<CodeScan, CodeScanError> {
    let mut scan = CodeScan::default();
    for root in roots {
        check_root(root)?;
        // git's rules only: a hidden file is deployed like any other, and ripgrep's
        // own `.ignore` files mean nothing to git.
        let walk = WalkBuilder::new(root)
            .require_git(false)
            .git_global(false)
            .hidden(false)
            .ignore(false)
            .filter_entry(|entry| entry.file_name() != ".git")
            .follow_links(false)
            .max_filesize(Some(MAX_FILE_BYTES))
            .build();
        let mut scanned = HashSet::new();
        for entry in walk {
            // An entry's soft errors (a malformed line in an ignore file) are let go,
            // as git lets them go: that line ignores nothing.
            let entry = entry.map_err(|e| walk_error(root, e))?;
            // Symbolic links are reported as such (not followed), so they fail this too.
            if !entry.file_type().is_some_and(|t| t.is_file()) {
                continue;
            }
            let path = entry.path();
            let read_error = |source| CodeScanError::Read {
                path: path.to_owned(),
                source,
            };
            let language = match Language::from_path(path) {
                Some(language) => language,
                None if path.extension().is_none() => {
                    match script_language(path).map_err(read_error)? {
                        Some(language) => language,
                        None => continue,
                    }
                }
                None => continue,
            };
            let bytes = std::fs::read(path).map_err(read_error)?;
            scanned.insert(path.to_owned());
            let found = scan_source(language, &String::from_utf8_lossy(&bytes));
            scan.hits.extend(found.hits.into_iter().map(|hit| CodeHit {
                path: path.to_owned(),
                line: hit.line,
                column: hit.column,
                language,
                variable: hit.variable,
                dynamic: hit.dynamic,
                text: hit.text,
            }));
            scan.grep_only
                .extend(found.grep_only.into_iter().map(|line| GrepOnly {
                    path: path.to_owned(),
                    line: line.line,
                    text: line.text,
                    why: line.why,
                }));
        }
        scan.grep_only
            .extend(unscanned::grep_unscanned(root, &scanned)?);
    }
    scan.hits
        .sort_by(|a, b| (&a.path, a.line, a.column).cmp(&(&b.path, b.line, b.column)));
    scan.grep_only
        .sort_by(|a, b| (&a.path, a.line).cmp(&(&b.path, b.line)));
    // A root given twice (or inside another) would otherwise report its reads twice.
    scan.hits.dedup();
    scan.grep_only.dedup();
    Ok(scan)
}

/// The language of a file without an extension, by its `#!` line; only the first
/// bytes are read, since most such files are not scripts.
fn script_language(path: &Path) -> std::io::Result<Option<Language>> {
    let mut head = Vec::with_capacity(256);
    std::fs::File::open(path)?
        .take(256)
        .read_to_end(&mut head)?;
    let head = String::from_utf8_lossy(&head);
    Ok(Language::from_shebang(head.lines().next().unwrap_or("")))
}

/// A path as JSON text (lossy where it is not UTF-8, rather than failing the report).
fn path_text<S: Serializer>(path: &Path, serializer: S) -> Result<S::Ok, S::Error> {
    serializer.serialize_str(&path.to_string_lossy())
}

/// The root must be a directory: a mistyped path must not pass as "no reads found".
fn check_root(root: &Path) -> Result<(), CodeScanError> {
    match std::fs::metadata(root) {
        Ok(meta) if meta.is_dir() => Ok(()),
        Ok(_) => Err(CodeScanError::NotADirectory {
            path: root.to_owned(),
        }),
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => Err(CodeScanError::MissingRoot {
            path: root.to_owned(),
        }),
        Err(e) => Err(CodeScanError::Walk {
            path: root.to_owned(),
            source: e.into(),
        }),
    }
}

/// The walk's error under the path it names (a subdirectory that cannot be listed),
/// else under the root.
fn walk_error(root: &Path, mut error: ignore::Error) -> CodeScanError {
    let mut path = root.to_owned();
    loop {
        error = match error {
            ignore::Error::WithDepth { err, .. } => *err,
            ignore::Error::WithPath { path: at, err } => {
                path = at;
                *err
            }
            other => {
                return CodeScanError::Walk {
                    path,
                    source: other,
                };
            }
        };
    }
}
