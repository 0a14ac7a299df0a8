//! `vexil import --env ENV --from FILE|- [--dry-run] [--overwrite] --as NAME`: an app's
//! `FLAG_*` config moved into DB rows (docs/import.md), through `App::import`.
//!
//! The file is read whole (at most 1 MiB: `heroku config` is a few KiB), its
//! `FLAG_*` variables taken, and its text dropped before the database is opened: no
//! other variable's name or value is printed, logged or stored. Each line of the plan
//! names `file:line`. A line refused goes to stderr and nothing is written (exit 1);
//! a file that cannot be read or parsed is exit 2. `--json` prints the plan and what
//! was written on stdout.

use std::io::Read;

use anyhow::{Context, bail};
use serde::Serialize;
use vexil_app::{Import, TotpCode};
use vexil_core::Clearance;
use vexil_core::import::{Config, Format, Item, Master, Plan, Refusal, Step, read};
use vexil_core::message::one_line;

use crate::cli::import::ImportFormat;
use crate::cli::{GlobalArgs, ImportArgs};
use crate::{Outcome, config, output};

/// The largest config file read.
const MAX_CONFIG_BYTES: u64 = 1024 * 1024;

#[derive(Serialize)]
struct Report<'a> {
    env: &'a str,
    /// The file as given (`-` for stdin).
    from: &'a str,
    format: &'static str,
    dry_run: bool,
    /// How many other variables the file holds (not shown).
    ignored: usize,
    master: Option<&'a Master>,
    items: &'a [Item],
    refused: &'a [Refusal],
    written: Vec<Written<'a>>,
    actor: Option<&'a str>,
}

#[derive(Serialize)]
struct Written<'a> {
    key: &'a str,
    audit_id: i64,
}

pub(crate) async fn run(global: &GlobalArgs, args: &ImportArgs) -> anyhow::Result<Outcome> {
    // Before anything is read or a code spent: the same rule as a flip's.
    let reason = vexil_core::audit::reason(args.reason.as_deref())?;
    let (source, format, config) = read_config(args)?;
    let needs = if args.totp.is_some() {
        config::Needs::FlagsAndKey
    } else {
        config::Needs::Flags
    };
    let app = config::app(global, needs).await?;
    let env = app.envs().parse(&args.env)?;
    let actor = match &args.actor {
        Some(name) => Some(app.actor(name).await?),
        None => None,
    };
    let import = Import {
        env: &env,
        config: &config,
        overwrite: args.overwrite,
        reason,
    };
    let (plan, written, clearance) = if args.dry_run {
        let plan = app.import_plan(actor.as_ref(), &import).await?;
        let clearance = match &actor {
            Some(actor) if plan.refused.is_empty() => Some(app.import_clearance(actor, &plan)?),
            _ => None,
        };
        (plan, Vec::new(), clearance)
    } else {
        let actor = actor.as_ref().context("--as NAME is required to import")?;
        let code = args.totp.as_deref().and_then(TotpCode::new);
        let imported = app
            .import(actor, &import, config::step_up(code.as_ref()))
            .await?;
        (imported.plan, imported.written, None)
    };
    if args.json.json {
        output::json(&Report {
            env: env.as_str(),
            from: &args.from,
            format: format.as_str(),
            dry_run: args.dry_run,
            ignored: config.ignored,
            master: plan.master.as_ref(),
            items: &plan.items,
            refused: &plan.refused,
            written: written
                .iter()
                .map(|(key, audit_id)| Written {
                    key: key.as_str(),
                    audit_id: *audit_id,
                })
                .collect(),
            actor: actor.as_ref().map(vexil_app::Actor::name),
        })?;
    } else {
        print_plan(&source, format, &config, &plan, env.as_str())?;
    }
    for refusal in &plan.refused {
        output::diagnostic(format_args!(
            "{source}:{}: {}: {}",
            refusal.line,
            one_line(&refusal.variable),
            refusal.why
        ));
    }
    if !plan.refused.is_empty() {
        output::diagnostic(format_args!(
            "error: import refused: {} line(s) of {source}; nothing was written",
            plan.refused.len()
        ));
        return Ok(Outcome::Refused);
    }
    if !args.json.json {
        let writes = plan.writes().count();
        let kept = plan.items.len() - writes;
        if args.dry_run {
            let who = match (&actor, clearance) {
                (Some(actor), Some(Clearance::NeedsElevation)) => format!(
                    "; as {}: allowed with --totp (a high-risk flag's row)",
                    actor.name()
                ),
                (Some(actor), _) => format!("; as {}: allowed", actor.name()),
                (None, _) => String::new(),
            };
            output::line(format_args!(
                "dry run: nothing written; the import would write {writes} row(s) and keep {kept}{who}"
            ))?;
        } else {
            let ids: Vec<String> = written.iter().map(|(_, id)| id.to_string()).collect();
            let rows = if ids.is_empty() {
                String::new()
            } else {
                format!(
                    ", each with its console.flag.flip audit row (via import): {}",
                    ids.join(", ")
                )
            };
            let name = actor.as_ref().map_or("", |a| a.name());
            output::line(format_args!(
                "wrote {} row(s) in {env} as {name}{rows}; kept {kept}",
                written.len()
            ))?;
        }
    }
    Ok(Outcome::Success)
}

/// The file (or stdin) as `source` for messages, its format, and its `FLAG_*`
/// variables; the text itself goes out of scope here.
fn read_config(args: &ImportArgs) -> anyhow::Result<(String, Format, Config)> {
    let (source, mut reader): (String, Box<dyn Read>) = if args.from == "-" {
        ("stdin".to_owned(), Box::new(std::io::stdin()))
    } else {
        let shown = one_line(&args.from);
        let file =
            std::fs::File::open(&args.from).with_context(|| format!("cannot read '{shown}'"))?;
        (shown, Box::new(file))
    };
    let mut bytes = Vec::new();
    reader
        .by_ref()
        .take(MAX_CONFIG_BYTES + 1)
        .read_to_end(&mut bytes)
        .with_context(|| format!("cannot read '{source}'"))?;
    if bytes.len() as u64 > MAX_CONFIG_BYTES {
        bail!("{source} is larger than 1 MiB: not an app's config");
    }
    let text = match String::from_utf8(bytes) {
        Ok(text) => text,
        Err(e) => {
            let valid = e.utf8_error().valid_up_to();
            let line = e.as_bytes()[..valid]
                .iter()
                .filter(|&&b| b == b'\n')
                .count()
                + 1;
            bail!("{source}:{line}: not UTF-8 text");
        }
    };
    let format = match args.format {
        Some(ImportFormat::Json) => Format::Json,
        Some(ImportFormat::Dotenv) => Format::Dotenv,
        None => Format::detect(&text),
    };
    let config = read(&text, format).map_err(|e| match e {
        vexil_core::import::ConfigError::Line { line, why } => {
            anyhow::anyhow!("{source}:{line}: {why}")
        }
        vexil_core::import::ConfigError::Json { line, column, why } => {
            anyhow::anyhow!("{source}:{line}:{column}: not valid JSON: {why}")
        }
    })?;
    Ok((source, format, config))
}

fn on_off(value: bool) -> &'static str {
    if value { "on" } else { "off" }
}

fn print_plan(
    source: &str,
    format: Format,
    config: &Config,
    plan: &Plan,
    env: &str,
) -> anyhow::Result<()> {
    output::line(format_args!(
        "{source} ({}): {} FLAG_* variable(s) for {env}; {} other variable(s) ignored, not shown",
        format.as_str(),
        config.variables.len(),
        config.ignored
    ))?;
    match &plan.master {
        Some(master) => output::line(format_args!(
            "{source}:{}: FLAG_CONSOLE_FEATURE_FLAGS_DB: the master switch, {}",
            master.line, master.says
        ))?,
        None => output::line(
            "the master switch FLAG_CONSOLE_FEATURE_FLAGS_DB is not in the file: processes \
             that run this config ignore the DB rows",
        )?,
    }
    for item in &plan.items {
        let what = match &item.step {
            Step::Write { from, .. } => format!(
                "write a row {} (from {})",
                on_off(item.value),
                on_off(*from)
            ),
            Step::Keep => format!("keep the row ({})", item.row.map_or("none", on_off)),
        };
        output::line(format_args!(
            "{source}:{}: {}={}: {what}: {}",
            item.line,
            item.variable,
            on_off(item.value),
            item.why
        ))?;
    }
    Ok(())
}
