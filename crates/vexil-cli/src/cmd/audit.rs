//! `vexil audit`: the audit log, newest first, filtered like `/console/audit`.

use anyhow::bail;
use serde::Serialize;
use vexil_store::AuditFilter;

use vexil_app::ReceiptState;

use crate::cli::{AuditArgs, AuditCommand, GlobalArgs};
use crate::{Outcome, config, output};

/// The most rows one listing prints.
const MAX_LIMIT: u32 = 10_000;

pub(crate) async fn run(global: &GlobalArgs, args: &AuditArgs) -> anyhow::Result<Outcome> {
    if let Some(AuditCommand::Show { id, json }) = &args.show {
        return show(global, *id, json.json).await;
    }
    if args.limit == 0 || args.limit > MAX_LIMIT {
        bail!("--limit {}: expected 1 to {MAX_LIMIT}", args.limit);
    }
    let filter = AuditFilter {
        action: args.action.clone(),
        flag: args.flag.clone(),
        account: None,
        actor: args.actor.clone(),
        party: None,
        env: args.env.clone(),
        since: args
            .since
            .as_deref()
            .map(|t| config::parse_time("--since", t))
            .transpose()?,
        until: args
            .until
            .as_deref()
            .map(|t| config::parse_time("--until", t))
            .transpose()?,
        before: None,
        limit: args.limit,
    };
    let app = config::app(global, config::Needs::Database).await?;
    let rows = app.db().audit_page(&filter).await?;
    if args.json.json {
        let rows: Vec<RowView<'_>> = rows
            .iter()
            .map(|row| RowView {
                id: row.id,
                created_at: row.created_at.to_rfc3339(),
                actor: row.admin_name.as_deref(),
                action: &row.action,
                target_type: &row.target_type,
                target_id: &row.target_id,
                payload: &row.payload,
            })
            .collect();
        output::json(&rows)?;
        return Ok(Outcome::Success);
    }
    let mut table = output::table(["id", "time (UTC)", "actor", "action", "target", "payload"]);
    for row in &rows {
        // A row without an account is a change made outside vexil (direct SQL) or
        // at the CLI by an operator with database access.
        let actor = row.admin_name.as_deref().unwrap_or("-");
        table.add_row([
            row.id.to_string(),
            row.created_at.format("%Y-%m-%d %H:%M:%S%.3f").to_string(),
            actor.to_owned(),
            row.action.clone(),
            vexil_core::message::one_line(&row.target_id),
            vexil_core::message::one_line(&row.payload.to_string()),
        ]);
    }
    output::line(table)?;
    Ok(Outcome::Success)
}

#[derive(Serialize)]
struct RowView<'a> {
    id: i64,
    created_at: String,
    actor: Option<&'a str>,
    action: &'a str,
    target_type: &'a str,
    target_id: &'a str,
    payload: &'a serde_json::Value,
}

/// One audit row, and the live processes of its env with whether each applies it.
async fn show(global: &GlobalArgs, id: i64, json: bool) -> anyhow::Result<Outcome> {
    let app = config::app(global, config::Needs::Database).await?;
    let receipts = app.receipts(id).await?;
    let row = &receipts.row;
    let states: Vec<InstanceReceipt<'_>> = receipts
        .instances
        .iter()
        .map(|(instance, state)| {
            let (status, since, change) = match *state {
                ReceiptState::Applied { at } => ("applied", Some(at.to_rfc3339()), Some(row.id)),
                ReceiptState::Superseded { by, at } => {
                    ("superseded", Some(at.to_rfc3339()), Some(by))
                }
                ReceiptState::Pending { holds } => ("pending", None, holds),
                ReceiptState::Ignored => ("ignored (DB layer off)", None, None),
                ReceiptState::NotReporting { last_seen } => {
                    ("not reporting", Some(last_seen.to_rfc3339()), None)
                }
            };
            InstanceReceipt {
                instance: &instance.id,
                application: &instance.application,
                host: &instance.host,
                pid: instance.pid,
                status,
                since,
                change,
            }
        })
        .collect();
    if json {
        output::json(&serde_json::json!({
            "id": row.id,
            "created_at": row.created_at.to_rfc3339(),
            "actor": row.admin_name,
            "action": row.action,
            "flag": receipts.flag,
            "env": receipts.env,
            "payload": row.payload,
            "instances": states,
        }))?;
        return Ok(Outcome::Success);
    }
    let actor = row.admin_name.as_deref().unwrap_or("-");
    output::line(format_args!(
        "audit row {}: {} by {actor} at {}\n{}",
        row.id,
        row.action,
        row.created_at.format("%Y-%m-%d %H:%M:%S%.3f UTC"),
        vexil_core::message::one_line(&row.payload.to_string())
    ))?;
    output::line(format_args!("receipt: {}", receipts.summary()))?;
    let count = |status: &str| {
        states
            .iter()
            .filter(|s| s.status.starts_with(status))
            .count()
    };
    output::line(format_args!(
        "{} process(es) of {}: {} applied, {} superseded, {} pending, {} ignored (DB layer off), {} not reporting",
        states.len(),
        receipts.env,
        count("applied"),
        count("superseded"),
        count("pending"),
        count("ignored"),
        count("not reporting"),
    ))?;
    if !states.is_empty() {
        let mut table = output::table([
            "status",
            "since (UTC)",
            "application",
            "host",
            "pid",
            "instance",
        ]);
        for state in &states {
            table.add_row([
                state.status.to_owned(),
                state.since.clone().unwrap_or_else(|| "-".to_owned()),
                vexil_core::message::one_line(state.application),
                vexil_core::message::one_line(state.host),
                state.pid.to_string(),
                state.instance.to_owned(),
            ]);
        }
        output::line(table)?;
    }
    Ok(Outcome::Success)
}

#[derive(Serialize)]
struct InstanceReceipt<'a> {
    instance: &'a str,
    application: &'a str,
    host: &'a str,
    pid: i64,
    /// `applied`, `superseded` (a later change of the same row is held), `pending`,
    /// `ignored (DB layer off)` or `not reporting` (`since`: last seen).
    status: &'static str,
    since: Option<String>,
    /// The change (audit row) the process holds for this flag.
    change: Option<i64>,
}
