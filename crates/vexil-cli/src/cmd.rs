//! One module per command; `run` dispatches to them.
//!
//! The commands that write audit rows seal the audit log before they exit
//! (`config::seal`), so a deployment with no server running still gets its rows sealed.

mod audit;
mod check;
mod client_key;
mod db;
mod deprecation;
mod doctor;
mod flags;
mod flip;
mod import;
mod instances;
mod migrate;
mod promotion;
mod reconcile;
mod serve;
mod token;
mod user;

use crate::cli::{Cli, Command};
use crate::{Outcome, config};

pub(crate) async fn run(cli: Cli) -> anyhow::Result<Outcome> {
    let global = &cli.global;
    // Commands that write audit rows seal them into the chain before they exit, so
    // that a deployment with no `vexil serve` running (SQLite at a desk) still gets
    // its rows sealed within seconds (docs/audit-integrity.md).
    let writes = matches!(
        cli.command,
        Command::User(_)
            | Command::Token(_)
            | Command::ClientKey(_)
            | Command::Flip(_)
            | Command::Import(_)
            | Command::Promotion(_)
            | Command::Reconcile(_)
    );
    let outcome = dispatch(cli.command, global).await;
    if writes && outcome.is_ok() {
        config::seal(global).await;
    }
    outcome
}

async fn dispatch(command: Command, global: &crate::cli::GlobalArgs) -> anyhow::Result<Outcome> {
    match command {
        Command::Check(args) => check::run(global, &args),
        Command::Migrate(args) => migrate::run(global, &args).await,
        Command::Db(command) => db::run(command),
        Command::User(command) => user::run(global, command).await,
        Command::Flags(command) => flags::run(global, command).await,
        Command::Token(command) => token::run(global, command).await,
        Command::ClientKey(command) => client_key::run(global, command).await,
        Command::Flip(args) => flip::run(global, &args).await,
        Command::Import(args) => import::run(global, &args).await,
        Command::Promotion(command) => promotion::run(global, command).await,
        Command::Audit(args) => audit::run(global, &args).await,
        Command::Instances(args) => instances::run(global, &args).await,
        Command::Deprecation(args) => deprecation::run(global, &args).await,
        Command::Doctor(args) => doctor::run(global, &args).await,
        Command::Reconcile(args) => reconcile::run(global, &args).await,
        Command::Serve(args) => serve::run(global, &args).await,
    }
}
