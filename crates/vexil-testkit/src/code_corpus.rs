//! The code-scan corpus: a source tree of real-world `FLAG_*` reads and near misses
//! (`fixtures/code_corpus/`), committed so that the scan's tests and the runbook's own
//! grep read the same files. Its `.rs` file is a fixture, never compiled; tidy skips
//! `fixtures/` directories.

use std::path::PathBuf;

/// The corpus's root directory.
pub fn code_corpus() -> PathBuf {
    PathBuf::from(concat!(env!("CARGO_MANIFEST_DIR"), "/fixtures/code_corpus"))
}
