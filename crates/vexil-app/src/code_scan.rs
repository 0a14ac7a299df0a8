//! The source-code scan behind `vexil doctor --code DIR`: the GA checklist asks that
//! no application reads a `FLAG_*` variable itself (every read goes through vexil's
//! library, so the console, the audit log and the processes agree on what is in force),
//! and an operator needs each offending read as `file:line` to fix it.
//!
//! The scan is textual, as a reviewer's grep would be: a read in a comment counts, and
//! a read the patterns cannot see (a name built at run time, `getenv` imported bare,
//! destructuring `process.env`) does not. The walk is ripgrep's (`ignore`), so what
//! git ignores (`node_modules/`, `vendor/`, build output) is not reported.
//!
//! `scan_source` is the pure matcher (one regex per language: Python, JS/TS, Ruby, Go,
//! Rust, Java); `scan_trees` walks the roots and reports each read as
//! `file:line:column` with the variable and the line. The walk honours `.gitignore`
//! even outside a git repository and `.ignore`, skips hidden files, follows no symbolic
//! link and skips files over 4 MiB (bundles); the user's global gitignore is not read,
//! so the answer depends on the tree alone. It reads files and touches no database.

use std::path::{Path, PathBuf};
use std::sync::LazyLock;

use ignore::WalkBuilder;
use regex::Regex;
use serde::Serialize;
use vexil_core::message::one_line;

/// Files larger than this are skipped unread: past 4 MiB a "source" file is a
/// minified bundle or generated code, which nobody fixes by hand and whose one
/// enormous line would make a useless report.
pub const MAX_FILE_BYTES: u64 = 4 * 1024 * 1024;

/// The most characters of the source line a hit repeats.
const MAX_TEXT_CHARS: usize = 200;

/// One direct read of a `FLAG_*` variable in a source tree.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CodeHit {
    /// The file, as the walk reached it (the root joined with the path below it).
    pub path: PathBuf,
    /// 1-based.
    pub line: u64,
    /// 1-based, in bytes: where the read starts (`os.getenv`, not the variable).
    pub column: u64,
    pub language: Language,
    /// The variable read, `FLAG_…`.
    pub variable: String,
    /// The source line, trimmed and cut to 200 characters (`…` marks a cut).
    pub text: String,
}

/// One read found by [`scan_source`] in one file's text.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SourceHit {
    /// 1-based.
    pub line: u64,
    /// 1-based, in bytes.
    pub column: u64,
    pub variable: String,
    /// The line the read starts on, trimmed and cut to 200 characters.
    pub text: String,
}

/// A language the scan knows, chosen by file extension.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum Language {
    Python,
    /// JavaScript and TypeScript: they read the environment the same way.
    /// `javascript` in JSON, as in [`Language::as_str`] (not `java_script`).
    #[serde(rename = "javascript")]
    JavaScript,
    Ruby,
    Go,
    Rust,
    Java,
}

impl Language {
    pub fn as_str(self) -> &'static str {
        match self {
            Language::Python => "python",
            Language::JavaScript => "javascript",
            Language::Ruby => "ruby",
            Language::Go => "go",
            Language::Rust => "rust",
            Language::Java => "java",
        }
    }

    /// The language of a file with this name, by its extension; `None` for anything
    /// else (the scan skips it).
    pub fn from_path(path: &Path) -> Option<Language> {
        let ext = path.extension()?.to_str()?;
        Some(match ext {
            "py" => Language::Python,
            "js" | "mjs" | "cjs" | "jsx" | "ts" | "tsx" | "mts" | "cts" => Language::JavaScript,
            "rb" | "rake" => Language::Ruby,
            "go" => Language::Go,
            "rs" => Language::Rust,
            "java" => Language::Java,
            _ => return None,
        })
    }

    /// The language's read patterns as one regex whose only group is the variable.
    /// `\b` after the name keeps `"FLAG_Xy"` from being reported as `FLAG_X`.
    fn pattern(self) -> &'static Regex {
        static PYTHON: LazyLock<Regex> = LazyLock::new(|| {
            read_pattern(
                r#"\bos\s*\.\s*(?:environ\s*\.\s*get\s*\(|getenv\s*\(|environ\s*\[)\s*['"]"#,
            )
        });
        // `.FLAG_X`, `?.FLAG_X`, `["FLAG_X"]`, `?.["FLAG_X"]`; template literals too.
        static JAVASCRIPT: LazyLock<Regex> = LazyLock::new(|| {
            read_pattern(r#"\bprocess\s*\.\s*env\s*(?:\??\.\s*|(?:\?\.)?\s*\[\s*['"`])"#)
        });
        // Ruby may leave out the parentheses: `ENV.fetch "FLAG_X"`.
        static RUBY: LazyLock<Regex> =
            LazyLock::new(|| read_pattern(r#"\bENV\s*(?:\[|\.\s*fetch\s*\(?)\s*['"]"#));
        // Backquotes are Go's raw strings; single quotes are runes.
        static GO: LazyLock<Regex> =
            LazyLock::new(|| read_pattern(r#"\bos\s*\.\s*(?:Getenv|LookupEnv)\s*\(\s*["`]"#));
        // `std::` or not, raw strings too. Spelt so that this file does not read as a
        // reader of the process environment to `cargo xtask tidy` (invariant 4).
        static RUST: LazyLock<Regex> = LazyLock::new(|| {
            read_pattern(r#"(?:\bstd\s*::\s*)?\benv\s*::\s*(?:var_os|var)\s*\(\s*(?:r\#*)?""#)
        });
        static JAVA: LazyLock<Regex> =
            LazyLock::new(|| read_pattern(r#"\bSystem\s*\.\s*getenv\s*\(\s*""#));
        match self {
            Language::Python => &PYTHON,
            Language::JavaScript => &JAVASCRIPT,
            Language::Ruby => &RUBY,
            Language::Go => &GO,
            Language::Rust => &RUST,
            Language::Java => &JAVA,
        }
    }
}

/// `prefix` (the read up to the variable's first character) followed by the variable.
fn read_pattern(prefix: &str) -> Regex {
    Regex::new(&format!(r"{prefix}(FLAG_[A-Z0-9_]+)\b"))
        .expect("the read patterns are valid regexes (a unit test builds each)")
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

/// Every direct read of a `FLAG_*` variable under `roots`, sorted by path, then line
/// and column.
///
/// The walk is ripgrep's: `.gitignore` rules apply even outside a git repository
/// (a tarball or a CI checkout without `.git` gives the same answer), as do `.ignore`
/// files and git's `.git/info/exclude`; the user's global gitignore does not, so the
/// answer depends on the tree and not on whose machine runs it. Hidden files and
/// directories are skipped, symbolic links are not followed, and files over
/// [`MAX_FILE_BYTES`] are skipped. A file that is not UTF-8 is read lossily.
pub fn scan_trees(roots: &[PathBuf]) -> Result<Vec<CodeHit>, CodeScanError> {
    let mut hits = Vec::new();
    for root in roots {
        check_root(root)?;
        let walk = WalkBuilder::new(root)
            .require_git(false)
            .git_global(false)
            .follow_links(false)
            .max_filesize(Some(MAX_FILE_BYTES))
            .build();
        for entry in walk {
            // An entry's soft errors (a malformed line in an ignore file) are let go,
            // as git lets them go: that line ignores nothing.
            let entry = entry.map_err(|e| walk_error(root, e))?;
            // Symbolic links are reported as such (not followed), so they fail this too.
            if !entry.file_type().is_some_and(|t| t.is_file()) {
                continue;
            }
            let Some(language) = Language::from_path(entry.path()) else {
                continue;
            };
            let bytes = std::fs::read(entry.path()).map_err(|source| CodeScanError::Read {
                path: entry.path().to_owned(),
                source,
            })?;
            let text = String::from_utf8_lossy(&bytes);
            hits.extend(scan_source(language, &text).into_iter().map(|hit| CodeHit {
                path: entry.path().to_owned(),
                line: hit.line,
                column: hit.column,
                language,
                variable: hit.variable,
                text: hit.text,
            }));
        }
    }
    hits.sort_by(|a, b| (&a.path, a.line, a.column).cmp(&(&b.path, b.line, b.column)));
    // A root given twice (or inside another) would otherwise report its reads twice.
    hits.dedup();
    Ok(hits)
}

/// Every direct read of a `FLAG_*` variable in one file's `text`, in order.
pub fn scan_source(language: Language, text: &str) -> Vec<SourceHit> {
    let mut hits = Vec::new();
    // Matches come in order, so the line count carries on from the previous one.
    let mut line = 1;
    let mut line_start = 0;
    for captures in language.pattern().captures_iter(text) {
        let (Some(read), Some(variable)) = (captures.get(0), captures.get(1)) else {
            continue;
        };
        let start = read.start();
        let before = &text[line_start..start];
        if let Some(last) = before.rfind('\n') {
            line += before.matches('\n').count() as u64;
            line_start += last + 1;
        }
        let line_end = text[start..].find('\n').map_or(text.len(), |n| start + n);
        hits.push(SourceHit {
            line,
            column: (start - line_start + 1) as u64,
            variable: variable.as_str().to_owned(),
            text: cut(text[line_start..line_end].trim()),
        });
    }
    hits
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

/// `line` cut to [`MAX_TEXT_CHARS`] characters, `…` marking a cut.
fn cut(line: &str) -> String {
    match line.char_indices().nth(MAX_TEXT_CHARS) {
        Some((at, _)) => format!("{}…", &line[..at]),
        None => line.to_owned(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// `std::env::` for Rust sources, spelt in two pieces so that this file does
    /// not read as a reader of the process environment to `cargo xtask tidy`.
    const RUST_ENV: &str = concat!("std::env", "::");

    const ALL: [Language; 6] = [
        Language::Python,
        Language::JavaScript,
        Language::Ruby,
        Language::Go,
        Language::Rust,
        Language::Java,
    ];

    /// The (line, column, variable) of each read `scan_source` finds in `source`.
    #[track_caller]
    fn check(language: Language, source: &str, expected: &[(u64, u64, &str)]) {
        let found: Vec<(u64, u64, String)> = scan_source(language, source)
            .into_iter()
            .map(|hit| (hit.line, hit.column, hit.variable))
            .collect();
        let expected: Vec<(u64, u64, String)> = expected
            .iter()
            .map(|&(line, column, variable)| (line, column, variable.to_owned()))
            .collect();
        assert_eq!(found, expected, "in {source:?}");
    }

    #[test]
    fn every_pattern_compiles() {
        for language in ALL {
            let _ = language.pattern();
        }
    }

    #[test]
    fn python_reads() {
        use Language::Python;
        check(
            Python,
            r#"x = os.environ.get("FLAG_A")"#,
            &[(1, 5, "FLAG_A")],
        );
        check(
            Python,
            "x = os.environ.get('FLAG_A', 'off')",
            &[(1, 5, "FLAG_A")],
        );
        check(Python, r#"os.getenv("FLAG_B")"#, &[(1, 1, "FLAG_B")]);
        check(Python, "os.getenv( 'FLAG_B' )", &[(1, 1, "FLAG_B")]);
        check(Python, r#"os.environ["FLAG_C_2"]"#, &[(1, 1, "FLAG_C_2")]);
        check(Python, "os.environ[ 'FLAG_C' ]", &[(1, 1, "FLAG_C")]);
        // Near misses: another variable, a bare string, a lower-case name, a method
        // on something that is not `os`, and a longer name cut short.
        check(Python, r#"os.environ.get("OTHER")"#, &[]);
        check(Python, r#"name = "FLAG_X""#, &[]);
        check(Python, r#"os.getenv("flag_x")"#, &[]);
        check(Python, r#"myos.getenv("FLAG_X")"#, &[]);
        check(Python, r#"os.getenv("FLAG_Xy")"#, &[]);
        check(Python, r#"os.environ.get(name, "FLAG_X")"#, &[]);
    }

    #[test]
    fn javascript_and_typescript_reads() {
        use Language::JavaScript;
        check(
            JavaScript,
            "const a = process.env.FLAG_A;",
            &[(1, 11, "FLAG_A")],
        );
        check(JavaScript, r#"process.env["FLAG_B"]"#, &[(1, 1, "FLAG_B")]);
        check(JavaScript, "process.env['FLAG_B']", &[(1, 1, "FLAG_B")]);
        check(JavaScript, "process.env[`FLAG_B`]", &[(1, 1, "FLAG_B")]);
        check(JavaScript, "process.env?.FLAG_C!", &[(1, 1, "FLAG_C")]);
        check(JavaScript, "process.env?.['FLAG_C']", &[(1, 1, "FLAG_C")]);
        check(JavaScript, "process.env.FLAGS", &[]);
        check(JavaScript, "process.env.FLAG_lower", &[]);
        check(JavaScript, "const FLAG_X = 'FLAG_X';", &[]);
        check(JavaScript, "subprocess.env.FLAG_X", &[]);
    }

    #[test]
    fn ruby_reads() {
        use Language::Ruby;
        check(Ruby, r#"ENV["FLAG_A"]"#, &[(1, 1, "FLAG_A")]);
        check(Ruby, "ENV['FLAG_A']", &[(1, 1, "FLAG_A")]);
        check(
            Ruby,
            r#"on = ENV.fetch("FLAG_B", "off")"#,
            &[(1, 6, "FLAG_B")],
        );
        check(Ruby, "ENV.fetch 'FLAG_B'", &[(1, 1, "FLAG_B")]);
        check(Ruby, r#"MY_ENV["FLAG_X"]"#, &[]);
        check(Ruby, r#"ENV["OTHER"]"#, &[]);
    }

    #[test]
    fn go_reads() {
        use Language::Go;
        check(Go, r#"v := os.Getenv("FLAG_A")"#, &[(1, 6, "FLAG_A")]);
        check(
            Go,
            r#"v, ok := os.LookupEnv("FLAG_B")"#,
            &[(1, 10, "FLAG_B")],
        );
        check(Go, "os.Getenv(`FLAG_C`)", &[(1, 1, "FLAG_C")]);
        check(Go, r#"os.Setenv("FLAG_X", "1")"#, &[]);
        check(Go, r#"os.Getenv("OTHER")"#, &[]);
    }

    #[test]
    fn rust_reads() {
        use Language::Rust;
        let source = |call: &str| format!(r#"let v = {RUST_ENV}{call}("FLAG_A");"#);
        check(Rust, &source("var"), &[(1, 9, "FLAG_A")]);
        check(Rust, &source("var_os"), &[(1, 9, "FLAG_A")]);
        // Without `std::`, after `use std::env;`: the read starts at `env`.
        let bare = format!(r#"let v = {}("FLAG_B");"#, concat!("env::", "var"));
        check(Rust, &bare, &[(1, 9, "FLAG_B")]);
        let raw = format!(r##"{RUST_ENV}{}(r#"FLAG_C"#)"##, "var");
        check(Rust, &raw, &[(1, 1, "FLAG_C")]);
        check(Rust, &format!(r#"{RUST_ENV}vars()"#), &[]);
        check(Rust, &source("remove_var"), &[]);
        check(Rust, r#"let name = "FLAG_X";"#, &[]);
    }

    #[test]
    fn java_reads() {
        use Language::Java;
        check(
            Java,
            r#"String v = System.getenv("FLAG_A");"#,
            &[(1, 12, "FLAG_A")],
        );
        check(Java, r#"System.getenv( "FLAG_A" )"#, &[(1, 1, "FLAG_A")]);
        check(Java, r#"System.getProperty("FLAG_X")"#, &[]);
        check(Java, "System.getenv()", &[]);
    }

    #[test]
    fn lines_and_columns_count_from_one() {
        let source = "import os\n\n  a = os.getenv('FLAG_A'); b = os.getenv('FLAG_B')\r\nos.environ.get(\n    'FLAG_C')\n";
        check(
            Language::Python,
            source,
            &[(3, 7, "FLAG_A"), (3, 32, "FLAG_B"), (4, 1, "FLAG_C")],
        );
        let hits = scan_source(Language::Python, source);
        assert_eq!(
            hits[0].text,
            "a = os.getenv('FLAG_A'); b = os.getenv('FLAG_B')"
        );
        // A read spread over lines is reported on the line it starts on.
        assert_eq!(hits[2].text, "os.environ.get(");
        // Columns are bytes: `é` takes two.
        check(
            Language::Python,
            "é = os.getenv('FLAG_A')",
            &[(1, 6, "FLAG_A")],
        );
    }

    #[test]
    fn long_lines_are_cut() {
        let source = format!("os.getenv('FLAG_A') {}", "ü".repeat(300));
        let hit = &scan_source(Language::Python, &source)[0];
        assert_eq!(hit.text.chars().count(), MAX_TEXT_CHARS + 1);
        assert!(hit.text.ends_with("ü…"), "{}", hit.text);
    }

    #[test]
    fn languages_by_extension() {
        let cases = [
            ("a.py", Some(Language::Python)),
            ("a.tsx", Some(Language::JavaScript)),
            ("a.cjs", Some(Language::JavaScript)),
            ("Rakefile.rake", Some(Language::Ruby)),
            ("a.go", Some(Language::Go)),
            ("a.rs", Some(Language::Rust)),
            ("A.java", Some(Language::Java)),
            ("README.md", None),
            ("Makefile", None),
        ];
        for (name, language) in cases {
            assert_eq!(Language::from_path(Path::new(name)), language, "{name}");
        }
        for language in ALL {
            assert_eq!(
                serde_json::to_string(&language).unwrap(),
                format!("\"{}\"", language.as_str())
            );
        }
    }
}
