//! One module per command; `run` dispatches to them.

mod check;

use crate::Outcome;
use crate::cli::{Cli, Command};

pub(crate) fn run(cli: Cli) -> anyhow::Result<Outcome> {
    match cli.command {
        Command::Check(args) => check::run(&cli.global, &args),
    }
}
