//! `vexil reconcile [--env ENV] [--json]`: the (flag, env) pairs whose live processes
//! run something other than the DB row, each with the reconciling flip it
//! offers; `vexil reconcile --flip KEY --env ENV --as NAME --reason TEXT` writes that
//! flip through the flip use case (same role matrix, `"via": "cli"`). Listing is
//! read-only; exit 0 either way, since what it found is an answer, not an error.

use serde::Serialize;
use vexil_app::{Reconcile, Reconciliation, TotpCode, parse_flag_key};
use vexil_core::audit::Via;
use vexil_core::heroku::heroku_set;
use vexil_core::reconcile::Finding;

use crate::cli::{GlobalArgs, ReconcileArgs};
use crate::{Outcome, config, output};

#[derive(Serialize)]
struct Line<'a> {
    flag: &'a str,
    env: &'a str,
    risk: &'a str,
    #[serde(flatten)]
    finding: &'a Finding,
}

#[derive(Serialize)]
struct MasterOff<'a> {
    env: &'a str,
    processes: &'a [String],
}

#[derive(Serialize)]
struct Report<'a> {
    findings: Vec<Line<'a>>,
    master_off: Vec<MasterOff<'a>>,
}

pub(crate) async fn run(global: &GlobalArgs, args: &ReconcileArgs) -> anyhow::Result<Outcome> {
    if let Some(flag) = &args.flip {
        return flip(global, args, flag).await;
    }
    let app = config::app(global, config::Needs::Flags).await?;
    let only = args
        .env
        .as_deref()
        .map(|name| app.envs().parse(name))
        .transpose()?;
    let found = app.reconciliation(only.as_ref()).await?;
    if args.json.json {
        output::json(&report(&found))?;
    } else {
        print(&found)?;
    }
    Ok(Outcome::Success)
}

fn report(found: &Reconciliation) -> Report<'_> {
    Report {
        findings: found
            .findings
            .iter()
            .map(|p| Line {
                flag: &p.flag,
                env: p.env.as_str(),
                risk: p.risk.as_str(),
                finding: &p.finding,
            })
            .collect(),
        master_off: found
            .master_off
            .iter()
            .map(|(env, processes)| MasterOff {
                env: env.as_str(),
                processes,
            })
            .collect(),
    }
}

fn on_off(value: bool) -> &'static str {
    if value { "on" } else { "off" }
}

fn print(found: &Reconciliation) -> anyhow::Result<()> {
    for (env, processes) in &found.master_off {
        output::line(format_args!(
            "{env}: the master switch is not on for {}: DB rows do not reach them",
            processes.join(", ")
        ))?;
    }
    if found.findings.is_empty() {
        output::line(format_args!(
            "nothing to reconcile: every live process runs what its env's DB rows say"
        ))?;
        return Ok(());
    }
    for pair in &found.findings {
        let f = &pair.finding;
        output::line(format_args!(
            "\n{} in {}: the DB row says {}; {} of {} live process(es) differ",
            pair.flag,
            pair.env,
            on_off(f.db_value),
            f.divergent.len(),
            f.live
        ))?;
        for d in &f.divergent {
            let runs = d.runs.map_or("an unknown value", on_off);
            output::line(format_args!("  {} runs {runs}: {}", d.name, d.detail))?;
        }
        match (f.flip_to, f.proposed) {
            (Some(to), true) => output::line(format_args!(
                "  offer: a reconciling flip to {} (it changes no process's value): \
                 vexil reconcile --flip {} --env {} --as NAME --reason TEXT",
                on_off(to),
                pair.flag,
                pair.env
            ))?,
            (Some(to), false) => output::line(format_args!(
                "  not proposed: {} live process(es) run {}, and a flip to {} changes them too; \
                 to write it anyway: vexil reconcile --flip {} --env {} --{} --as NAME --reason TEXT",
                f.following,
                on_off(f.db_value),
                on_off(to),
                pair.flag,
                pair.env,
                on_off(to)
            ))?,
            (None, _) => output::line(format_args!(
                "  no flip: a flip cannot reach processes that do not apply changes \
                 (restart them, or check their database connection)"
            ))?,
        }
        if f.flip_to.is_some() && f.servers_following > 0 {
            output::line(format_args!(
                "  ({} vexil serve process(es) follow the row: they serve no product traffic, \
                 and show the new row after the flip)",
                f.servers_following
            ))?;
        }
        if f.flip_to.is_some() && !f.reenable.is_empty() {
            output::line(format_args!(
                "  then re-enable the DB layer (silenced: config:set echoes the app's whole config):"
            ))?;
            for app in &f.reenable {
                match heroku_set("FLAG_CONSOLE_FEATURE_FLAGS_DB", "1", app) {
                    Some(command) => output::line(format_args!("    {command}"))?,
                    None => output::line(format_args!(
                        "    # application {app} is not a Heroku app name: set FLAG_CONSOLE_FEATURE_FLAGS_DB=1 there by hand"
                    ))?,
                }
            }
        }
    }
    Ok(())
}

async fn flip(global: &GlobalArgs, args: &ReconcileArgs, flag: &str) -> anyhow::Result<Outcome> {
    let needs = if args.totp.is_some() {
        config::Needs::FlagsAndKey
    } else {
        config::Needs::Flags
    };
    let app = config::app(global, needs).await?;
    // clap's `requires_all` holds these when --flip is given.
    let (Some(env), Some(name)) = (args.env.as_deref(), args.actor.as_deref()) else {
        anyhow::bail!("--flip needs --env and --as");
    };
    let actor = app.actor(name).await?;
    let to = match (args.on, args.off) {
        (true, _) => Some(true),
        (_, true) => Some(false),
        _ => None,
    };
    let key = parse_flag_key(flag)?;
    let env = app.envs().parse(env)?;
    let ask = Reconcile {
        flag: &key,
        env: &env,
        to,
        reason: args.reason.as_deref(),
        via: Via::Cli,
    };
    // `App::reconcile` checks the role, the reason and the pair before it spends a
    // code.
    let code = args.totp.as_deref().and_then(TotpCode::new);
    let flipped = app
        .reconcile(&actor, &ask, config::step_up(code.as_ref()))
        .await?;
    output::line(format_args!(
        "{flag} in {env}: {} -> {}, a reconciling flip (audit row {}, by {})",
        on_off(flipped.from),
        on_off(flipped.to),
        flipped.audit_id,
        actor.name()
    ))?;
    Ok(Outcome::Success)
}
