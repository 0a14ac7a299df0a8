//! `vexil audit`: the audit log, newest first, filtered like `/console/audit`.

use anyhow::bail;
use serde::Serialize;
use vexil_store::AuditFilter;

use crate::cli::{AuditArgs, GlobalArgs};
use crate::{Outcome, config, output};

/// The most rows one listing prints.
const MAX_LIMIT: u32 = 10_000;

pub(crate) async fn run(global: &GlobalArgs, args: &AuditArgs) -> anyhow::Result<Outcome> {
    if args.limit == 0 || args.limit > MAX_LIMIT {
        bail!("--limit {}: expected 1 to {MAX_LIMIT}", args.limit);
    }
    let filter = AuditFilter {
        action: args.action.clone(),
        flag: args.flag.clone(),
        actor: args.actor.clone(),
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
