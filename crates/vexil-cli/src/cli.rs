//! The command line's shape (SPEC §9), as clap derive definitions.
//!
//! Every option that SPEC names an environment variable for takes it through clap's
//! `env`, so `--flags` and `VEXIL_FLAGS` are one setting with one precedence.

use std::path::PathBuf;

use clap::{Args, Parser, Subcommand};

/// vexil: see every feature flag, flip it safely, promote it from staging to prod,
/// and answer "who changed what, when".
#[derive(Debug, Parser)]
#[command(name = "vexil", version, propagate_version = true)]
pub(crate) struct Cli {
    #[command(flatten)]
    pub(crate) global: GlobalArgs,
    #[command(subcommand)]
    pub(crate) command: Command,
}

/// Settings every command reads.
#[derive(Debug, Args)]
pub(crate) struct GlobalArgs {
    /// The flags file: the canonical declarations of every flag.
    #[arg(
        long,
        global = true,
        env = "VEXIL_FLAGS",
        default_value = "feature_flags.yaml"
    )]
    pub(crate) flags: PathBuf,
}

#[derive(Debug, Subcommand)]
pub(crate) enum Command {
    /// Validate the flags file: print a summary, or every error with its file:line:col.
    Check(CheckArgs),
}

#[derive(Debug, Args)]
pub(crate) struct CheckArgs {
    /// Print the result (the flags, or the errors) as JSON on stdout.
    #[arg(long)]
    pub(crate) json: bool,
}
