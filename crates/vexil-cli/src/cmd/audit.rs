//! `vexil audit`: the audit log, newest first, filtered as `/console/audit` is (here a
//! flag or an account is named whole, as scripts name them).
//!
//! `audit show ID` prints one row and, for a flip, which live instances apply it, with
//! the console's receipt line; `audit verify|head|export` check and export the hash
//! chain (docs/audit-integrity.md).

use anyhow::bail;
use serde::Serialize;
use vexil_store::AuditFilter;

use vexil_app::{AuditCheck, ExportFormat, ReceiptState};
use vexil_core::audit_chain::Anchor;

use crate::cli::{AuditArgs, AuditCommand, ExportFormatArg, GlobalArgs};
use crate::{Outcome, config, output};

/// The most rows one listing prints.
const MAX_LIMIT: u32 = 10_000;

pub(crate) async fn run(global: &GlobalArgs, args: &AuditArgs) -> anyhow::Result<Outcome> {
    match &args.show {
        Some(AuditCommand::Show { id, json }) => return show(global, *id, json.json).await,
        Some(AuditCommand::Verify { anchor, file, json }) => {
            return verify(global, anchor.as_deref(), file.as_deref(), json.json).await;
        }
        Some(AuditCommand::Head) => return head(global).await,
        Some(AuditCommand::Export {
            since,
            until,
            format,
        }) => return export(global, since.as_deref(), until.as_deref(), *format).await,
        None => {}
    }
    if args.limit == 0 || args.limit > MAX_LIMIT {
        bail!("--limit {}: expected 1 to {MAX_LIMIT}", args.limit);
    }
    let filter = AuditFilter {
        action: args.action.clone(),
        flag: args.flag.clone(),
        actor: args.actor.clone(),
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
        limit: args.limit,
        ..AuditFilter::default()
    };
    vexil_app::check_audit_filter(&filter)?;
    let app = config::app(global, config::Needs::Database).await?;
    let rows = app.db().audit_page(&filter).await?;
    // Rows that claim an account or a door of vexil's without vexil's proof are
    // shown as direct SQL (docs/audit-integrity.md).
    let unproven = app.unproven(&rows).await?;
    if args.json.json {
        let rows: Vec<RowView<'_>> = rows
            .iter()
            .map(|row| RowView {
                id: row.id,
                created_at: row.created_at.to_rfc3339(),
                actor: row.admin_name.as_deref(),
                old_admin: row.old_admin().map(|old| OldAdminView {
                    id: old.id,
                    account: old.account,
                    before_vexil: old.before_vexil,
                    shown: old.to_string(),
                }),
                proven: !unproven.contains(&row.id),
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
        // A row under an old console admin's id says so (docs/adopt.md).
        let name = row.admin_name.as_deref();
        let actor = if unproven.contains(&row.id) {
            format!("direct SQL (claims {})", name.unwrap_or("vexil"))
        } else if let Some(old) = row.old_admin() {
            old.to_string()
        } else {
            name.unwrap_or("-").to_owned()
        };
        table.add_row([
            row.id.to_string(),
            row.created_at.format("%Y-%m-%d %H:%M:%S%.3f").to_string(),
            actor,
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
    /// `false`: the row claims an account or a door of vexil's without vexil's proof.
    proven: bool,
    action: &'a str,
    target_type: &'a str,
    target_id: &'a str,
    payload: &'a serde_json::Value,
    /// Set for a row written under an old console admin's id (docs/adopt.md).
    #[serde(skip_serializing_if = "Option::is_none")]
    old_admin: Option<OldAdminView<'a>>,
}

#[derive(Serialize)]
struct OldAdminView<'a> {
    id: i64,
    /// The vexil account the old id is mapped to, if any.
    account: Option<&'a str>,
    before_vexil: bool,
    /// As the table shows it: `console admin #7 (before vexil)`.
    shown: String,
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
    let actor = match row.old_admin() {
        Some(old) => old.to_string(),
        None => row.admin_name.as_deref().unwrap_or("-").to_owned(),
    };
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

fn parse_anchor(text: Option<&str>) -> anyhow::Result<Option<Anchor>> {
    text.map(|t| {
        t.parse::<Anchor>()
            .map_err(|e| anyhow::anyhow!("--anchor: {e}"))
    })
    .transpose()
}

/// `vexil audit verify`: the chain in the database, or in an export file.
async fn verify(
    global: &GlobalArgs,
    anchor: Option<&str>,
    file: Option<&std::path::Path>,
    json: bool,
) -> anyhow::Result<Outcome> {
    let anchor = parse_anchor(anchor)?;
    let app = config::app(global, config::Needs::Database).await?;
    let check = match file {
        None => app.verify_audit(anchor).await?,
        Some(path) => {
            let shown = vexil_core::message::one_line(&path.display().to_string());
            let opened = std::fs::File::open(path)
                .map_err(|e| anyhow::anyhow!("cannot open '{shown}': {e}"))?;
            app.verify_audit_file(&shown, std::io::BufReader::new(opened), anchor)?
        }
    };
    let AuditCheck {
        outcome,
        attribution_checked,
    } = check;
    if json {
        let body = match &outcome {
            Ok(found) => serde_json::json!({
                "ok": true,
                "sealed": found.sealed,
                "pending": found.pending,
                "oldest_pending": found.oldest_pending.map(|t| t.to_rfc3339()),
                "proven": found.proven,
                "head": found.head.map(|h| h.to_string()),
                "anchor": found.anchor.map(|a| a.to_string()),
                "attribution_checked": attribution_checked,
            }),
            Err(fault) => serde_json::json!({
                "ok": false,
                "fault": fault.kind(),
                "row": fault.id(),
                "message": fault.to_string(),
                "attribution_checked": attribution_checked,
            }),
        };
        output::json(&body)?;
    } else {
        match &outcome {
            Ok(found) => {
                let mut text = format!("audit log intact: {} rows sealed in order", found.sealed);
                if let Some(head) = found.head {
                    text.push_str(&format!(", head {head}"));
                }
                if let Some(anchor) = found.anchor {
                    text.push_str(&format!("\nanchor {anchor} found in the chain"));
                }
                if found.pending > 0 {
                    text.push_str(&format!(
                        "\n{} rows not sealed yet (oldest at {}): no vexil process has sealed them",
                        found.pending,
                        found.oldest_pending.map_or_else(String::new, |t| t
                            .format("%Y-%m-%d %H:%M:%S UTC")
                            .to_string())
                    ));
                }
                if attribution_checked {
                    text.push_str(&format!("\n{} rows prove vexil wrote them", found.proven));
                } else {
                    text.push_str(
                        "\nwho wrote each row was not checked: no secret key (VEXIL_SECRET_KEY)",
                    );
                }
                output::line(text)?;
            }
            Err(fault) => {
                eprintln!("error: {fault}");
            }
        }
    }
    Ok(if outcome.is_ok() {
        Outcome::Success
    } else {
        Outcome::Refused
    })
}

/// `vexil audit head`: seals, then prints `ID:HASH`.
async fn head(global: &GlobalArgs) -> anyhow::Result<Outcome> {
    let app = config::app(global, config::Needs::Database).await?;
    match app.audit_head().await? {
        Some(head) => output::line(head)?,
        None => bail!("the audit log is empty: there is no head to anchor yet"),
    }
    Ok(Outcome::Success)
}

/// `vexil audit export`: rows and their links on stdout.
async fn export(
    global: &GlobalArgs,
    since: Option<&str>,
    until: Option<&str>,
    format: ExportFormatArg,
) -> anyhow::Result<Outcome> {
    let since = since
        .map(|t| config::parse_time("--since", t))
        .transpose()?;
    let until = until
        .map(|t| config::parse_time("--until", t))
        .transpose()?;
    let app = config::app(global, config::Needs::Database).await?;
    let format = match format {
        ExportFormatArg::Jsonl => ExportFormat::Jsonl,
        ExportFormatArg::Csv => ExportFormat::Csv,
    };
    let mut out = std::io::BufWriter::with_capacity(1 << 16, std::io::stdout());
    app.export_audit(since, until, format, &mut out).await?;
    Ok(Outcome::Success)
}
