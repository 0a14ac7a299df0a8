//! The languages the code scan reads, chosen by file extension or, for a script with
//! none (`bin/console`, `manage`), by its `#!` line; and what the scan must know of
//! each one's syntax to read a call's argument: its comments and its strings.

use std::path::Path;

use serde::Serialize;

/// A language the scan knows.
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
    /// else. Templates that run code count (`.erb`, Vue and Svelte components);
    /// type stubs (`.pyi`) do not, since they never run.
    pub fn from_path(path: &Path) -> Option<Language> {
        let ext = path.extension()?.to_str()?;
        Some(match ext {
            "py" | "pyw" => Language::Python,
            "js" | "mjs" | "cjs" | "jsx" | "ts" | "tsx" | "mts" | "cts" | "vue" | "svelte" => {
                Language::JavaScript
            }
            "rb" | "rake" | "erb" => Language::Ruby,
            "go" => Language::Go,
            "rs" => Language::Rust,
            "java" => Language::Java,
            _ => return None,
        })
    }

    /// The language of a script by its first line, `#!/usr/bin/env python3` or
    /// `#!/usr/bin/node`; `None` when it names no interpreter the scan knows.
    pub fn from_shebang(first_line: &str) -> Option<Language> {
        let line = first_line.strip_prefix("#!")?;
        // The interpreter is the last path segment of the first word, or the word after
        // `env` (with its options: `env -S node --flag`).
        let mut words = line.split_whitespace();
        let mut program = words.next()?.rsplit('/').next()?;
        if program == "env" {
            program = words.find(|w| !w.starts_with('-'))?;
        }
        let name = program.trim_end_matches(|c: char| c.is_ascii_digit() || c == '.');
        Some(match name {
            "python" | "pypy" => Language::Python,
            "node" | "deno" | "bun" | "ts-node" | "tsx" => Language::JavaScript,
            "ruby" => Language::Ruby,
            _ => return None,
        })
    }

    /// What starts a comment that runs to the end of the line.
    pub(super) fn line_comment(self) -> &'static str {
        match self {
            Language::Python | Language::Ruby => "#",
            Language::JavaScript | Language::Go | Language::Rust | Language::Java => "//",
        }
    }

    /// Whether `/* … */` is a comment.
    pub(super) fn block_comments(self) -> bool {
        !matches!(self, Language::Python | Language::Ruby)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn languages_by_extension() {
        let cases = [
            ("a.py", Some(Language::Python)),
            ("a.pyi", None),
            ("a.tsx", Some(Language::JavaScript)),
            ("a.cjs", Some(Language::JavaScript)),
            ("App.vue", Some(Language::JavaScript)),
            ("Rakefile.rake", Some(Language::Ruby)),
            ("show.html.erb", Some(Language::Ruby)),
            ("a.go", Some(Language::Go)),
            ("a.rs", Some(Language::Rust)),
            ("A.java", Some(Language::Java)),
            ("README.md", None),
            ("Makefile", None),
        ];
        for (name, language) in cases {
            assert_eq!(Language::from_path(Path::new(name)), language, "{name}");
        }
        for language in [
            Language::Python,
            Language::JavaScript,
            Language::Ruby,
            Language::Go,
            Language::Rust,
            Language::Java,
        ] {
            assert_eq!(
                serde_json::to_string(&language).unwrap(),
                format!("\"{}\"", language.as_str())
            );
        }
    }

    #[test]
    fn languages_by_shebang() {
        let cases = [
            ("#!/usr/bin/env python3", Some(Language::Python)),
            ("#!/usr/bin/python3.11 -u", Some(Language::Python)),
            (
                "#!/usr/bin/env -S node --no-warnings",
                Some(Language::JavaScript),
            ),
            ("#!/usr/local/bin/ruby", Some(Language::Ruby)),
            ("#!/bin/sh", None),
            ("#!/usr/bin/env bash", None),
            ("import os", None),
            ("#!", None),
        ];
        for (line, language) in cases {
            assert_eq!(Language::from_shebang(line), language, "{line}");
        }
    }
}
