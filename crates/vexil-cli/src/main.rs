//! The `vexil` binary: parse the command line, run one command, and on failure print
//! one line on stderr and exit non-zero.
//!
//! # Layout
//!
//! - `cli.rs`: the clap definitions, the CLI's whole shape (docs/cli.md).
//! - `config.rs`: the one place that reads the process environment by hand.
//! - `output.rs`: stdout and stderr, written without panicking.
//! - `cmd/`: one file per command; each takes its parsed arguments and returns an
//!   [`Outcome`].
//!
//! # Exit codes
//!
//! - `0`: the command did what was asked.
//! - `1`: the command ran and the answer is no: `check` found errors; a request was
//!   refused (role, elevation or a TOTP code that is wrong, reused or not enrolled,
//!   too many wrong codes, a conflict, no change to make, a disabled account, an existing account, a
//!   revoked token, a promotion step its state does not allow or a confirmation
//!   phrase that is missing or different, a reconciling flip refused); `doctor`
//!   found a failing item; `audit verify` found a fault; `serve` found the flags
//!   file invalid.
//! - `2`: the command could not run: bad usage (clap's own code) or input (unknown
//!   flag, env, account or promotion), an unreadable file, an unreachable or
//!   unmigrated database.

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
    let runtime = match tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
    {
        Ok(runtime) => runtime,
        Err(error) => {
            output::diagnostic(format_args!(
                "error: cannot start the async runtime: {error}"
            ));
            return ExitCode::from(2);
        }
    };
    match runtime.block_on(cmd::run(cli)) {
        Ok(Outcome::Success) => ExitCode::SUCCESS,
        Ok(Outcome::Refused) => ExitCode::from(1),
        // The reader of our output left (`| head`): nothing more to say to anyone.
        Err(error) if output::is_broken_pipe(&error) => ExitCode::SUCCESS,
        Err(error) => {
            // `{:#}` prints the whole anyhow chain on one line: "a: b: c".
            output::diagnostic(format_args!("error: {error:#}"));
            ExitCode::from(exit_code(&error))
        }
    }
}

/// 1 for a refusal (the request was understood and is not allowed or not needed
/// now), 2 for everything else (bad input, or nothing could be checked): one arm per
/// kind of `AppError`.
fn exit_code(error: &anyhow::Error) -> u8 {
    use vexil_app::{AppError, ErrorKind};
    let Some(error) = error.downcast_ref::<AppError>() else {
        return 2;
    };
    match error.kind() {
        ErrorKind::Forbidden
        | ErrorKind::ElevationRequired
        | ErrorKind::TotpRejected
        | ErrorKind::RateLimited
        | ErrorKind::Conflict
        | ErrorKind::NoChange
        | ErrorKind::InvalidState
        | ErrorKind::ConfirmationRequired => 1,
        ErrorKind::Invalid
        | ErrorKind::UnknownEnv
        | ErrorKind::NotFound
        | ErrorKind::Unauthenticated
        | ErrorKind::Unavailable
        | ErrorKind::Internal => 2,
    }
}
