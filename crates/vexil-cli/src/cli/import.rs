//! `vexil import`'s arguments (docs/import.md), beside the rest of the command line's
//! shape in `cli.rs`.

use clap::Args;

use super::JsonArgs;

// No `Debug`: it may hold a TOTP code.
#[derive(Args)]
pub(crate) struct ImportArgs {
    /// The env whose rows to write.
    #[arg(long)]
    pub(crate) env: String,
    /// The config: a file, or - for stdin. Only FLAG_* variables are read; every
    /// other variable is skipped and never shown or stored.
    #[arg(long, value_name = "FILE")]
    pub(crate) from: String,
    /// How the config is written (default: JSON if it starts with `{`, else dotenv).
    #[arg(long, value_enum)]
    pub(crate) format: Option<ImportFormat>,
    /// Print what would be written or kept, and why; write nothing.
    #[arg(long)]
    pub(crate) dry_run: bool,
    /// Write the file's value even where it changes the value in force (docs/import.md).
    #[arg(long)]
    pub(crate) overwrite: bool,
    /// The account acting (superadmin); with --dry-run, optional and only checked.
    #[arg(long = "as", value_name = "NAME", required_unless_present = "dry_run")]
    pub(crate) actor: Option<String>,
    /// Why, for each audit row.
    #[arg(long)]
    pub(crate) reason: Option<String>,
    /// A current TOTP code, needed when a high-risk flag's row is written.
    #[arg(long, value_name = "CODE")]
    pub(crate) totp: Option<String>,
    #[command(flatten)]
    pub(crate) json: JsonArgs,
}

/// `--format` of `vexil import`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
pub(crate) enum ImportFormat {
    /// `heroku config --json --app X`: one object, name → value.
    Json,
    /// `NAME=VALUE` lines (`export`, quotes and comments allowed).
    Dotenv,
}
