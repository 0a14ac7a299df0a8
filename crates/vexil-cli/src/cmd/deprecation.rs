//! `vexil deprecation [--env ENV] [--json]`: the runbook's deprecation
//! table. For each declared flag and env: the DB row, the audited flips, where the
//! `FLAG_*` variable is still set among the live processes, and the verdict with its
//! reason. It proposes; removing a variable stays a manual step, as the runbook
//! insists ("never remove a Heroku env var speculatively").

use serde::Serialize;
use vexil_core::deprecation::Status;

use crate::cli::{DeprecationArgs, GlobalArgs};
use crate::{Outcome, config, output};

/// One line of the table, as `--json` prints it.
#[derive(Serialize)]
struct Line<'a> {
    flag: &'a str,
    variable: &'a str,
    env: &'a str,
    status: Status,
    because: &'a str,
    row: Option<bool>,
    flips: u64,
    /// The live processes that still have the variable set.
    set_on: Vec<&'a str>,
    /// How many live processes of the env reported.
    reporting: usize,
}

pub(crate) async fn run(global: &GlobalArgs, args: &DeprecationArgs) -> anyhow::Result<Outcome> {
    let app = config::app(global, config::Needs::Flags).await?;
    let only = args
        .env
        .as_deref()
        .map(|name| app.envs().parse(name))
        .transpose()?;
    let table = app.deprecation(only.as_ref()).await?;
    let lines: Vec<Line<'_>> = table
        .iter()
        .flat_map(|flag| {
            flag.envs.iter().map(|(verdict, evidence)| Line {
                flag: &flag.key,
                variable: &flag.variable,
                env: verdict.env.as_str(),
                status: verdict.status,
                because: &verdict.because,
                row: evidence.row,
                flips: evidence.flips,
                set_on: evidence.carriers(),
                reporting: evidence.reported.len(),
            })
        })
        .collect();
    if args.json.json {
        output::json(&lines)?;
        return Ok(Outcome::Success);
    }
    let mut out = output::table(["variable", "env", "status", "row", "flips", "because"]);
    for line in &lines {
        let row = match line.row {
            Some(true) => "on",
            Some(false) => "off",
            None => "-",
        };
        out.add_row([
            line.variable.to_owned(),
            line.env.to_owned(),
            line.status.to_string(),
            row.to_owned(),
            line.flips.to_string(),
            line.because.to_owned(),
        ]);
    }
    output::line(out)?;
    let safe: Vec<&Line<'_>> = lines
        .iter()
        .filter(|l| l.status == Status::SafeToRemove)
        .collect();
    if !safe.is_empty() {
        output::line(format_args!(
            "\n{} variable(s) can be removed by hand (vexil removes nothing): the lines marked \"safe to remove\" name the processes that still carry each",
            safe.len()
        ))?;
    }
    Ok(Outcome::Success)
}
