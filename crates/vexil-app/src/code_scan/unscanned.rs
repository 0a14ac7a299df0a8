//! The files the scan does not read, checked with the runbook's own grep so that
//! nothing it lists goes unmentioned: a `.gitignore`d file, a file in no language the
//! scan knows (a template, a README) or one over 4 MiB. Each line the grep would list
//! there comes back in `grep_only`, saying why the file was not scanned; none fails
//! the GA item, but the operator sees every line the grep sees.

use std::collections::HashSet;
use std::path::{Path, PathBuf};
use std::sync::LazyLock;

use ignore::WalkBuilder;
use regex::Regex;

use super::source::cut;
use super::{CodeScanError, GrepOnly, Language, MAX_FILE_BYTES, RUNBOOK_GREP, walk_error};

/// The runbook's pattern as grep reads it (a basic regular expression: `.` any
/// character, `*` any number of them), which Rust's regex reads the same way.
static GREP: LazyLock<Regex> =
    LazyLock::new(|| Regex::new(RUNBOOK_GREP).expect("the runbook's pattern is valid"));

/// A file larger than this is not read even here: grep would, but no source file is.
const MAX_GREP_BYTES: u64 = 64 * 1024 * 1024;

/// The grep's lines in the files under `root` that the scan did not read (`scanned`).
pub(super) fn grep_unscanned(
    root: &Path,
    scanned: &HashSet<PathBuf>,
) -> Result<Vec<GrepOnly>, CodeScanError> {
    let mut lines = Vec::new();
    let walk = WalkBuilder::new(root)
        .standard_filters(false)
        .follow_links(false)
        .filter_entry(|entry| entry.file_name() != ".git")
        .build();
    for entry in walk {
        let entry = entry.map_err(|e| walk_error(root, e))?;
        if !entry.file_type().is_some_and(|t| t.is_file()) || scanned.contains(entry.path()) {
            continue;
        }
        let path = entry.path();
        let size = entry.metadata().map_or(0, |m| m.len());
        if size > MAX_GREP_BYTES {
            continue;
        }
        let bytes = std::fs::read(path).map_err(|source| CodeScanError::Read {
            path: path.to_owned(),
            source,
        })?;
        // grep says "binary file matches" of such a file, and lists no line.
        if bytes.iter().take(8192).any(|b| *b == 0) {
            continue;
        }
        let why = why_not_scanned(path, size);
        let text = String::from_utf8_lossy(&bytes);
        for (index, line) in text.lines().enumerate() {
            if GREP.is_match(line) {
                lines.push(GrepOnly {
                    path: path.to_owned(),
                    line: index as u64 + 1,
                    text: cut(line),
                    why: why.to_owned(),
                });
            }
        }
    }
    Ok(lines)
}

fn why_not_scanned(path: &Path, size: u64) -> &'static str {
    if size > MAX_FILE_BYTES {
        "not scanned: over 4 MiB (a bundle or generated file)"
    } else if Language::from_path(path).is_some() {
        "not scanned: ignored by a .gitignore (not deployed from git)"
    } else {
        "not scanned: in no language the scan reads"
    }
}
