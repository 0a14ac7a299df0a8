//! The `vexil` binary: parse the command line, run one command, and on failure print
//! one line on stderr and exit non-zero.
//!
//! # Layout
//!
//! - `cli.rs`: the clap definitions, the CLI's whole shape (SPEC §9).
//! - `config.rs`: the one place that reads the process environment by hand.
//! - `output.rs`: stdout and stderr, written without panicking.
//! - `cmd/`: one file per command; each takes its parsed arguments and returns an
//!   [`Outcome`].
//!
//! # Exit codes
//!
//! - `0`: the command did what was asked.
//! - `1`: the command ran and the answer is no (e.g. `check` found errors).
//! - `2`: the command could not run: bad usage (clap's own code), an unreadable file.

mod cli;
mod cmd;
mod config;
mod output;

use std::process::ExitCode;

use clap::Parser;

/// How a command that ran to its end finished.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Outcome {
    Success,
    /// It ran, and what it checked is wrong; it has printed why.
    Refused,
}

fn main() -> ExitCode {
    let cli = cli::Cli::parse();
    match cmd::run(cli) {
        Ok(Outcome::Success) => ExitCode::SUCCESS,
        Ok(Outcome::Refused) => ExitCode::from(1),
        // The reader of our output left (`| head`): nothing more to say to anyone.
        Err(error) if output::is_broken_pipe(&error) => ExitCode::SUCCESS,
        Err(error) => {
            // `{:#}` prints the whole anyhow chain on one line: "a: b: c".
            output::diagnostic(format_args!("error: {error:#}"));
            ExitCode::from(2)
        }
    }
}
