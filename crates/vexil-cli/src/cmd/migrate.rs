//! `vexil migrate`: apply the migrations the database lacks, and say what was done.

use crate::cli::GlobalArgs;
use crate::{Outcome, config, output};

pub(crate) async fn run(global: &GlobalArgs) -> anyhow::Result<Outcome> {
    let db = config::open_database(global).await?;
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
