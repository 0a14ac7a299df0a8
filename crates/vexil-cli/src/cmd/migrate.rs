//! `vexil migrate`: apply the migrations the database lacks, and say what was done.
//! `--adopt` makes an old console's database vexil's, keeping its two tables and
//! their history (docs/adopt.md); `--dry-run` rehearses it and rolls it back.

use vexil_core::Clock;
use vexil_store::{AdoptionReport, Db};

use crate::cli::{GlobalArgs, MigrateArgs};
use crate::{Outcome, config, output};

pub(crate) async fn run(global: &GlobalArgs, args: &MigrateArgs) -> anyhow::Result<Outcome> {
    let db = config::open_database(global).await?;
    if args.adopt {
        let report = db.adopt(config::SystemClock.now(), args.dry_run).await;
        db.close().await;
        adopted(&db, &report?)?;
        if !args.dry_run {
            // The old rows join the chain now, not at the first server's start.
            config::seal(global).await;
        }
        return Ok(Outcome::Success);
    }
    let report = db.migrate().await?;
    let url = db.url();
    if report.applied.is_empty() {
        output::line(format_args!(
            "{url}: up to date at migration {}; nothing to apply",
            report.version
        ))?;
    } else {
        for (version, description) in &report.applied {
            output::line(format_args!(
                "{url}: applied migration {version:04} {description}"
            ))?;
        }
        output::line(format_args!("{url}: now at migration {}", report.version))?;
    }
    db.close().await;
    Ok(Outcome::Success)
}

fn adopted(db: &Db, report: &AdoptionReport) -> anyhow::Result<()> {
    let url = db.url();
    let verb = if report.committed {
        "adopted"
    } else {
        "dry run, rolled back: would adopt"
    };
    output::line(format_args!(
        "{url}: {verb} console_feature_flags ({} rows) and console_audit_log ({} rows, the newest id {}), every row kept with its id",
        report.flags, report.audit_rows, report.last_old_audit_id
    ))?;
    if report.old_admins.is_empty() {
        output::line(format_args!(
            "{url}: no old console admin ids in the audit log"
        ))?;
    } else {
        let ids: Vec<String> = report.old_admins.iter().map(i64::to_string).collect();
        output::line(format_args!(
            "{url}: old console admins {} kept as disabled accounts console_admin_ID (they cannot sign in); map each to its vexil account with `vexil user map-admin ID NAME`",
            ids.join(", ")
        ))?;
    }
    output::line(format_args!(
        "{url}: vexil's own accounts are numbered from {}",
        report.accounts_from
    ))?;
    let (applied, now) = if report.committed {
        ("applied", "now")
    } else {
        ("would apply", "would be")
    };
    for (version, description) in &report.migrations.applied {
        output::line(format_args!(
            "{url}: {applied} migration {version:04} {description}"
        ))?;
    }
    output::line(format_args!(
        "{url}: {now} at migration {}",
        report.migrations.version
    ))?;
    if !report.committed {
        output::line(format_args!("{url}: nothing was changed"))?;
    }
    Ok(())
}
