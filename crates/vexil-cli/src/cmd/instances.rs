//! `vexil instances`: the live processes, as they report themselves (a heartbeat
//! every 10 s; gone after three missed): linked to the database, or following a
//! server, in any language.

use serde::Serialize;
use vexil_core::reported::MASTER_KEY;

use crate::cli::{GlobalArgs, InstancesArgs};
use crate::{Outcome, config, output};

pub(crate) async fn run(global: &GlobalArgs, args: &InstancesArgs) -> anyhow::Result<Outcome> {
    let app = config::app(global, config::Needs::Database).await?;
    let instances = app.live_instances(args.env.as_deref()).await?;
    if args.json.json {
        let views: Vec<InstanceView<'_>> = instances
            .iter()
            .map(|i| InstanceView {
                id: &i.id,
                env: &i.env,
                host: &i.host,
                pid: i.pid,
                application: &i.application,
                language: &i.language,
                version: &i.version,
                transport: i.transport.as_str(),
                started_at: i.started_at.to_rfc3339(),
                last_seen: i.last_seen.to_rfc3339(),
                env_layer: &i.env_layer,
            })
            .collect();
        output::json(&views)?;
        return Ok(Outcome::Success);
    }
    if instances.is_empty() {
        output::line("no live instances")?;
        return Ok(Outcome::Success);
    }
    let mut table = output::table([
        "env",
        "application",
        "host",
        "pid",
        "runs",
        "started (UTC)",
        "last seen (UTC)",
        "DB layer",
        "FLAG_* set",
    ]);
    for i in &instances {
        // The master switch always (unset means the DB layer is off), then the flags'
        // variables that are set.
        let db_layer = i
            .env_layer
            .get(MASTER_KEY)
            .map_or("unset", String::as_str)
            .to_owned();
        let vars: Vec<String> = i
            .env_layer
            .iter()
            .filter(|(key, state)| key.as_str() != MASTER_KEY && state.as_str() != "unset")
            .map(|(key, state)| format!("{key}={state}"))
            .collect();
        table.add_row([
            i.env.clone(),
            vexil_core::message::one_line(&i.application),
            vexil_core::message::one_line(&i.host),
            i.pid.to_string(),
            format!(
                "{} {} ({})",
                vexil_core::message::one_line(&i.language),
                vexil_core::message::one_line(&i.version),
                i.transport.as_str()
            ),
            i.started_at.format("%Y-%m-%d %H:%M:%S").to_string(),
            i.last_seen.format("%Y-%m-%d %H:%M:%S").to_string(),
            db_layer,
            vars.join(" "),
        ]);
    }
    output::line(table)?;
    Ok(Outcome::Success)
}

#[derive(Serialize)]
struct InstanceView<'a> {
    id: &'a str,
    env: &'a str,
    host: &'a str,
    pid: i64,
    application: &'a str,
    /// `rust` for the library, `python` for the package, or what a process following
    /// a server says.
    language: &'a str,
    version: &'a str,
    /// `database` (it links the library to the database) or `server` (it follows a
    /// `vexil serve`).
    transport: &'a str,
    started_at: String,
    last_seen: String,
    env_layer: &'a std::collections::BTreeMap<String, String>,
}
