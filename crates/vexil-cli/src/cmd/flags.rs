//! `vexil flags list [--env ENV]`: each flag's value and source per env, as this
//! process resolves it, with dormant and invalid variables.
//!
//! `--stale [--days N]` lists the stale flags instead (`App::stale_flags`).

use serde::Serialize;
use vexil_app::FlagState;
use vexil_core::MasterSwitch;

use crate::cli::{FlagsCommand, GlobalArgs};
use crate::{Outcome, config, output};

pub(crate) async fn run(global: &GlobalArgs, command: FlagsCommand) -> anyhow::Result<Outcome> {
    let FlagsCommand::List {
        env,
        json,
        stale,
        days,
    } = command;
    let app = config::app(global, config::Needs::Flags).await?;
    if stale {
        return list_stale(&app, days, json.json).await;
    }
    let only = env.map(|name| app.envs().parse(&name)).transpose()?;
    let states = app.flag_states(only.as_ref()).await?;
    let master = app.master_switch();
    if json.json {
        let flags: Vec<FlagView<'_>> = states.states.iter().map(FlagView::from).collect();
        let undeclared: Vec<(&str, &str, bool)> = states
            .undeclared_rows
            .iter()
            .map(|row| (row.flag_key.as_str(), row.env.as_str(), row.value))
            .collect();
        output::json(&serde_json::json!({
            "master_switch": master,
            "flags": flags,
            "undeclared_rows": undeclared,
        }))?;
        return Ok(Outcome::Success);
    }

    if master != MasterSwitch::On {
        output::diagnostic(
            "note: FLAG_CONSOLE_FEATURE_FLAGS_DB is not on for this process, so DB rows are shown \
             (column `row`) but do not decide the value; set it to 1 to see what a process with the \
             DB layer on sees",
        );
    }
    let mut table = output::table([
        "flag",
        "risk",
        "env",
        "value",
        "source",
        "row",
        "last changed",
        "variable",
    ]);
    for state in &states.states {
        let on_off = |on: bool| if on { "on" } else { "off" };
        let changed = match (&state.updated_by, state.updated_at) {
            (by, Some(at)) => format!(
                "{} {}",
                by.as_deref().unwrap_or("(sql)"),
                at.format("%Y-%m-%d %H:%M")
            ),
            _ => String::new(),
        };
        let mut variable = match (&state.dormant_env_var, &state.invalid_env_var) {
            (_, Some(invalid)) => invalid.clone(),
            (Some(dormant), None) => format!("{dormant} (dormant)"),
            (None, None) => String::new(),
        };
        if let Some(drift) = &state.drift {
            // e.g. "drift: on ×2, unset ×1": the live processes of this env disagree.
            variable = format!("{variable} drift: {drift}").trim().to_owned();
        }
        table.add_row([
            state.key.as_str(),
            state.risk.as_str(),
            state.env.as_str(),
            on_off(state.value),
            state.source.as_str(),
            state.row_value.map_or("-", on_off),
            &changed,
            &variable,
        ]);
    }
    output::line(table)?;
    for (env, drift) in &states.master_drift {
        output::diagnostic(format_args!(
            "warning: the live processes of {env} disagree about FLAG_CONSOLE_FEATURE_FLAGS_DB ({drift}): DB rows decide values in some of them only",
        ));
    }
    for row in &states.undeclared_rows {
        output::diagnostic(format_args!(
            "warning: the database has a row for '{}' in {}, which the flags file does not declare",
            vexil_core::message::one_line(&row.flag_key),
            vexil_core::message::one_line(&row.env)
        ));
    }
    Ok(Outcome::Success)
}

/// `flags list --stale`: the stale flags, and why each.
async fn list_stale(app: &vexil_app::App, days: u32, json: bool) -> anyhow::Result<Outcome> {
    let stale = app.stale_flags(days).await?;
    if json {
        let flags: Vec<serde_json::Value> = stale
            .flags
            .iter()
            .map(|(key, why)| serde_json::json!({ "key": key, "stale": why }))
            .collect();
        let undeclared: Vec<(&str, &str, bool)> = stale
            .undeclared_rows
            .iter()
            .map(|row| (row.flag_key.as_str(), row.env.as_str(), row.value))
            .collect();
        output::json(&serde_json::json!({
            "days": days,
            "flags": flags,
            "undeclared_rows": undeclared,
        }))?;
        return Ok(Outcome::Success);
    }
    if stale.flags.is_empty() && stale.undeclared_rows.is_empty() {
        output::line("no stale flags")?;
        return Ok(Outcome::Success);
    }
    let mut table = output::table(["flag", "why"]);
    for (key, why) in &stale.flags {
        let why: Vec<String> = why.iter().map(vexil_core::stale::Stale::describe).collect();
        table.add_row([key.clone(), why.join("; ")]);
    }
    for row in &stale.undeclared_rows {
        table.add_row([
            row.flag_key.clone(),
            format!(
                "a row in {} ({}), but the flags file does not declare it",
                row.env,
                if row.value { "on" } else { "off" }
            ),
        ]);
    }
    output::line(table)?;
    Ok(Outcome::Success)
}

#[derive(Serialize)]
struct FlagView<'a> {
    key: &'a str,
    env: &'a str,
    risk: &'a str,
    value: bool,
    source: &'a str,
    row_value: Option<bool>,
    updated_by: Option<&'a str>,
    updated_at: Option<String>,
    dormant_env_var: Option<&'a str>,
    invalid_env_var: Option<&'a str>,
    /// How many live processes of this env report each state of the variable, when
    /// they disagree.
    drift: Option<&'a std::collections::BTreeMap<vexil_core::VarState, usize>>,
}

impl<'a> From<&'a FlagState> for FlagView<'a> {
    fn from(state: &'a FlagState) -> Self {
        FlagView {
            key: &state.key,
            env: state.env.as_str(),
            risk: state.risk.as_str(),
            value: state.value,
            source: state.source.as_str(),
            row_value: state.row_value,
            updated_by: state.updated_by.as_deref(),
            updated_at: state.updated_at.map(|at| at.to_rfc3339()),
            dormant_env_var: state.dormant_env_var.as_deref(),
            invalid_env_var: state.invalid_env_var.as_deref(),
            drift: state.drift.as_ref().map(|d| &d.states),
        }
    }
}
