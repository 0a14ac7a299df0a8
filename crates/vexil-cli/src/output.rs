//! Writing to stdout and stderr without `println!`, which panics when the reader has
//! gone (`vexil check --json | head -c0`) or the disk is full (`> /dev/full`).
//!
//! A failed write to stdout is an error like any other, except a closed pipe, which
//! `main` treats as the reader's choice and ends quietly. A failed write to stderr is
//! dropped: there is nowhere left to report it.

use std::fmt::Display;
use std::io::{self, Write};

use anyhow::Context;
use serde::Serialize;

/// One line on stdout.
pub(crate) fn line(text: impl Display) -> anyhow::Result<()> {
    writeln!(io::stdout().lock(), "{text}").context("cannot write to stdout")
}

/// `value` as pretty JSON on stdout, then a newline.
pub(crate) fn json(value: &impl Serialize) -> anyhow::Result<()> {
    let mut stdout = io::stdout().lock();
    serde_json::to_writer_pretty(&mut stdout, value)
        .map_err(io::Error::from)
        .and_then(|()| writeln!(stdout))
        .context("cannot write to stdout")
}

/// One line on stderr, if stderr still takes it.
pub(crate) fn diagnostic(text: impl Display) {
    let _ = writeln!(io::stderr().lock(), "{text}");
}

/// A table with `header`, no borders: easy to read, and to cut columns from.
pub(crate) fn table<'a>(header: impl IntoIterator<Item = &'a str>) -> comfy_table::Table {
    let mut table = comfy_table::Table::new();
    table.load_style(comfy_table::presets::NOTHING);
    table.set_header(header.into_iter().collect::<Vec<_>>());
    table
}

/// Whether `error` is a write to a pipe whose reader has closed it.
pub(crate) fn is_broken_pipe(error: &anyhow::Error) -> bool {
    error
        .chain()
        .filter_map(|cause| cause.downcast_ref::<io::Error>())
        .any(|e| e.kind() == io::ErrorKind::BrokenPipe)
}
