//! `vexil doctor [--code DIR]... [--json]`: the runbook's GA checklist and vexil's own
//! health. Each item passes or fails with its evidence; exit 0 only when
//! none fails (a skipped code scan is not a failure). It reads and changes nothing,
//! and runs against a database whose schema is not current, to say so.
//!
//! `--code` trees are scanned first (`vexil_app::code_scan`), so a mistyped path fails
//! before the database is opened. `--json` adds the scan's findings as data under
//! `code` (`null` without `--code`): each read with its `path`, `line`, `column`,
//! `language`, `variable` and `dynamic` (a name built at run time), and `grep_only`,
//! the lines the runbook's grep lists that read no flag's variable, each with `why`.

use anyhow::Context;
use serde::Serialize;
use vexil_app::code_scan::{CodeScan, scan_trees};
use vexil_core::doctor::{Check, Outcome as ItemOutcome, passes};

use crate::cli::{DoctorArgs, GlobalArgs};
use crate::{Outcome, config, output};

#[derive(Serialize)]
struct Report<'a> {
    passed: bool,
    checks: &'a [Check],
    code: Option<&'a CodeScan>,
}

pub(crate) async fn run(global: &GlobalArgs, args: &DoctorArgs) -> anyhow::Result<Outcome> {
    let code = if args.code.is_empty() {
        None
    } else {
        Some(scan_trees(&args.code).context("the code scan failed")?)
    };
    let app = config::app(global, config::Needs::FlagsAnySchema).await?;
    let checks = app
        .doctor(code.as_ref(), &args.gone, args.app.as_deref())
        .await?;
    let passed = passes(&checks);
    if args.json.json {
        output::json(&Report {
            passed,
            checks: &checks,
            code: code.as_ref(),
        })?;
    } else {
        for check in &checks {
            output::line(format_args!(
                "{:<8} {:<18} {}",
                check.outcome.as_str(),
                check.id,
                check.title
            ))?;
            for evidence in &check.evidence {
                output::line(format_args!("{:<27} {evidence}", ""))?;
            }
        }
        let count = |outcome| checks.iter().filter(|c| c.outcome == outcome).count();
        output::line(format_args!(
            "\n{} passed, {} failed, {} skipped",
            count(ItemOutcome::Pass),
            count(ItemOutcome::Fail),
            count(ItemOutcome::Skipped)
        ))?;
    }
    Ok(if passed {
        Outcome::Success
    } else {
        Outcome::Refused
    })
}
