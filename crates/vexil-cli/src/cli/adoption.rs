//! The command line of adoption (docs/adopt.md): `vexil migrate --adopt` and `vexil
//! user map-admin`.

use clap::Args;

#[derive(Debug, Args)]
pub(crate) struct MigrateArgs {
    /// Adopt the runbook's console_feature_flags and console_audit_log, with every
    /// row and its history, and build vexil's schema around them, in one
    /// transaction (docs/adopt.md); refused, changing nothing, when a table's shape
    /// or values differ from what vexil takes.
    #[arg(long)]
    pub(crate) adopt: bool,
    /// With --adopt: do all of it, report, and roll it back.
    #[arg(long, requires = "adopt")]
    pub(crate) dry_run: bool,
}

#[derive(Debug, Args)]
pub(crate) struct MapAdminArgs {
    /// The old console's id for its admin (console_audit_log.admin_id).
    pub(crate) id: i64,
    /// The vexil account.
    pub(crate) name: String,
}
