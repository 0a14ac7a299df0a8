//! `vexil deprecation [--env ENV] [--json]`: the runbook's deprecation
//! table. For each declared flag and env: the DB row, the audited flips, where the
//! `FLAG_*` variable is still set among the live processes, and the verdict with its
//! reason. It proposes; removing a variable stays a manual step, as the runbook
//! insists ("never remove a Heroku env var speculatively"). `--by-app` judges each
//! application on its own processes; `--heroku` prints the silenced
//! `heroku config:unset` line for each application where the variable is safe to
//! remove and still set, and nothing else.

use serde::Serialize;
use vexil_app::FlagDeprecation;
use vexil_core::deprecation::{Evidence, Status, Verdict};
use vexil_core::heroku::heroku_unset;

use crate::cli::{DeprecationArgs, GlobalArgs};
use crate::{Outcome, config, output};

/// One line of the table, as `--json` prints it.
#[derive(Serialize)]
struct Line<'a> {
    flag: &'a str,
    variable: &'a str,
    env: &'a str,
    /// With `--by-app`: the application the line judges.
    #[serde(skip_serializing_if = "Option::is_none")]
    app: Option<&'a str>,
    status: Status,
    because: &'a str,
    row: Option<bool>,
    flips: u64,
    /// The live processes that still have the variable set.
    set_on: Vec<&'a str>,
    /// How many live processes of the env (or the app) reported.
    reporting: usize,
    /// On a line safe to remove: the silenced command for each application that
    /// still has the variable set (an application whose name Heroku would not take is
    /// left out and named in `not_heroku_apps`).
    heroku: Vec<String>,
    #[serde(skip_serializing_if = "Vec::is_empty")]
    not_heroku_apps: Vec<&'a str>,
}

pub(crate) async fn run(global: &GlobalArgs, args: &DeprecationArgs) -> anyhow::Result<Outcome> {
    let app = config::app(global, config::Needs::Flags).await?;
    let only = args
        .env
        .as_deref()
        .map(|name| app.envs().parse(name))
        .transpose()?;
    let table = app.deprecation(only.as_ref()).await?;
    let by_app = args.by_app || args.app.is_some() || args.heroku;
    let lines: Vec<Line<'_>> = table
        .iter()
        .flat_map(|flag| {
            let judged = if by_app { &flag.apps } else { &flag.envs };
            judged
                .iter()
                .filter(|(verdict, _)| {
                    args.app.is_none() || verdict.app.as_deref() == args.app.as_deref()
                })
                .map(|(verdict, evidence)| line(flag, verdict, evidence))
        })
        .collect();
    if args.heroku {
        return heroku(&lines);
    }
    if args.json.json {
        output::json(&lines)?;
        return Ok(Outcome::Success);
    }
    let mut header = vec!["variable", "env"];
    if by_app {
        header.push("app");
    }
    header.extend(["status", "row", "flips", "because"]);
    let mut out = output::table(header);
    for line in &lines {
        let row = match line.row {
            Some(true) => "on",
            Some(false) => "off",
            None => "-",
        };
        let mut cells = vec![line.variable.to_owned(), line.env.to_owned()];
        if by_app {
            cells.push(line.app.unwrap_or("-").to_owned());
        }
        cells.extend([
            line.status.to_string(),
            row.to_owned(),
            line.flips.to_string(),
            line.because.to_owned(),
        ]);
        out.add_row(cells);
    }
    output::line(out)?;
    let safe = lines
        .iter()
        .filter(|l| l.status == Status::SafeToRemove)
        .count();
    if safe > 0 {
        output::line(format_args!(
            "\n{safe} line(s) can be removed by hand (vexil removes nothing): `vexil deprecation --heroku` prints the silenced commands, per application"
        ))?;
    }
    Ok(Outcome::Success)
}

fn line<'a>(flag: &'a FlagDeprecation, verdict: &'a Verdict, evidence: &'a Evidence) -> Line<'a> {
    // On a line safe to remove: each application still carrying the variable, with
    // its command, or without one when Heroku would not take its name.
    let mut heroku = Vec::new();
    let mut not_heroku_apps = Vec::new();
    if verdict.status == Status::SafeToRemove {
        for app in evidence.carrier_apps() {
            match heroku_unset(&flag.variable, app) {
                Some(command) => heroku.push(command),
                None => not_heroku_apps.push(app),
            }
        }
    }
    Line {
        flag: &flag.key,
        variable: &flag.variable,
        env: verdict.env.as_str(),
        app: verdict.app.as_deref(),
        status: verdict.status,
        because: &verdict.because,
        row: evidence.row,
        flips: evidence.flips,
        set_on: evidence.carriers(),
        reporting: evidence.reported.len(),
        heroku,
        not_heroku_apps,
    }
}

/// The commands, each under a comment saying why; an application name Heroku would
/// not take is said, never put in a command.
fn heroku(lines: &[Line<'_>]) -> anyhow::Result<Outcome> {
    let mut any = false;
    for line in lines.iter().filter(|l| l.status == Status::SafeToRemove) {
        for command in &line.heroku {
            any = true;
            output::line(format_args!(
                "# {} in {}: {}\n{command}",
                line.variable, line.env, line.because
            ))?;
        }
        for app in &line.not_heroku_apps {
            output::line(format_args!(
                "# {} in {}: safe to remove from application {app}, which is not a Heroku app name (no command printed)",
                line.variable, line.env
            ))?;
        }
    }
    if !any {
        output::line("# no variable is safe to remove from any application yet")?;
    }
    Ok(Outcome::Success)
}
