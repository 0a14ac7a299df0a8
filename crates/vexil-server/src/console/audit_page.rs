//! `GET /console/audit`: the audit log, newest first, filtered by action, flag,
//! account, env and time range as query parameters, a page at a time. Pages are cut
//! by row id (`before`), not by offset, so rows appended meanwhile never shift a page.
//! Each flip shows its propagation receipt: how many of its env's processes hold it.
//!
//! With a flag filter, the flag's promotions head its rows. Receipts come from
//! `App::receipts_for`, one read of the instances per page.

use askama::Template;
use axum::extract::{Query, State};
use axum::http::StatusCode;
use axum::response::Response;
use serde::Deserialize;
use serde_json::Value;
use vexil_app::ReceiptSummary;
use vexil_core::audit::{ACTIONS, FLAG_EXPIRED, TARGET_FEATURE_FLAG};
use vexil_core::parse_instant;
use vexil_store::{AuditFilter, AuditRow};

use crate::console::error::ConsoleError;
use crate::console::page::{self, Chrome, utc};
use crate::console::promotions_page::PromotionCard;
use crate::console::session::Operator;
use crate::state::ServerState;

/// Rows per page.
const PAGE: u32 = 50;

/// A flag's promotions shown above its history.
const PROMOTIONS: u32 = 20;

#[derive(Debug, Default, Deserialize)]
pub(crate) struct AuditQuery {
    action: Option<String>,
    flag: Option<String>,
    account: Option<String>,
    env: Option<String>,
    since: Option<String>,
    until: Option<String>,
    before: Option<String>,
}

struct RowView {
    id: i64,
    when: String,
    account: String,
    action: String,
    target: String,
    /// The flag's history, for rows about a flag.
    flag: Option<String>,
    details: Vec<(String, String)>,
    /// For a flip: how far it has propagated (`App::receipts_for`).
    receipt: Option<ReceiptView>,
}

struct ReceiptView {
    /// `seen by 2 of 3 instances, slowest 41 ms; missing: …`.
    text: String,
    /// Some process that applies rows does not hold it (yet).
    missing: bool,
}

#[derive(Template)]
#[template(path = "audit.html")]
struct AuditPage {
    chrome: Chrome,
    rows: Vec<RowView>,
    actions: Vec<&'static str>,
    envs: Vec<String>,
    action: String,
    flag: String,
    account: String,
    env: String,
    since: String,
    until: String,
    /// The next (older) page's link, when there is one.
    older: Option<String>,
    /// The newest page's link, when this is not it.
    newest: Option<String>,
    /// With a flag filter: the flag's promotions, newest first.
    recent: Vec<PromotionCard>,
}

pub(crate) async fn show(
    State(state): State<ServerState>,
    operator: Operator,
    Query(query): Query<AuditQuery>,
) -> Result<Response, ConsoleError> {
    let text = page::param;
    let (action, flag, account, env) = (
        text(&query.action),
        text(&query.flag),
        text(&query.account),
        text(&query.env),
    );
    let (since, until) = (text(&query.since), text(&query.until));
    let time = |field: &str, value: &str| {
        (!value.is_empty())
            .then(|| {
                parse_instant(value).map_err(|e| ConsoleError::BadRequest(format!("{field}={e}")))
            })
            .transpose()
    };
    let before = match text(&query.before).as_str() {
        "" => None,
        cursor => Some(cursor.parse::<i64>().ok().filter(|id| *id > 0).ok_or_else(|| {
            ConsoleError::BadRequest(format!(
                "before={cursor:?}: expected the id of an audit row (a positive whole number)"
            ))
        })?),
    };
    if !env.is_empty() {
        state.app.envs().parse(&env)?;
    }
    let some = |v: &String| (!v.is_empty()).then(|| v.clone());
    let filter = AuditFilter {
        action: some(&action),
        flag: some(&flag),
        account: None,
        actor: None,
        party: some(&account),
        env: some(&env),
        since: time("since", &since)?,
        until: time("until", &until)?,
        before,
        limit: PAGE + 1,
    };
    let mut rows = state.app.audit_page(&operator.actor, &filter).await?;
    let more = rows.len() > PAGE as usize;
    rows.truncate(PAGE as usize);
    let link = |before: Option<i64>| {
        let before = before.map(|id| id.to_string());
        format!(
            "/console/audit?{}",
            page::query(&[
                ("action", Some(&action)),
                ("flag", Some(&flag)),
                ("account", Some(&account)),
                ("env", Some(&env)),
                ("since", Some(&since)),
                ("until", Some(&until)),
                ("before", before.as_deref()),
            ])
        )
    };
    let older = more.then(|| link(rows.last().map(|row| row.id)));
    let receipts = state.app.receipts_for(&rows).await?;
    let unproven = state.app.unproven(&rows).await?;
    let mut recent = Vec::new();
    if !flag.is_empty() {
        let now = state.app.now();
        let who = (
            operator.actor.name(),
            operator.actor.role(),
            operator.elevated(),
        );
        for record in state.app.promotions(None, Some(&flag), PROMOTIONS).await? {
            recent.push(PromotionCard::new(&state, &record, now, who));
        }
    }
    let newest = before.is_some().then(|| link(None));
    let page = AuditPage {
        chrome: operator.chrome("audit"),
        rows: rows
            .iter()
            .map(|row| row_view(row, receipts.get(&row.id), unproven.contains(&row.id)))
            .collect(),
        actions: ACTIONS.to_vec(),
        envs: state.app.envs().iter().map(ToString::to_string).collect(),
        action,
        flag,
        account,
        env,
        since,
        until,
        older,
        newest,
        recent,
    };
    Ok(page::html(StatusCode::OK, &page))
}

/// `unproven`: the row claims an account or a door of vexil's without the proof
/// vexil writes (docs/audit-integrity.md), so it is shown as direct SQL.
fn row_view(row: &AuditRow, receipt: Option<&ReceiptSummary>, unproven: bool) -> RowView {
    let details = match &row.payload {
        Value::Object(fields) => fields
            .iter()
            .map(|(name, value)| (name.clone(), readable(value)))
            .collect(),
        other => vec![("payload".to_owned(), readable(other))],
    };
    RowView {
        id: row.id,
        when: utc(row.created_at),
        // No account: direct SQL, or vexil itself expiring a promotion.
        account: if unproven {
            format!(
                "direct SQL (claims {})",
                row.admin_name.as_deref().unwrap_or("vexil")
            )
        } else {
            row.admin_name.clone().unwrap_or_else(|| {
                if row.action == FLAG_EXPIRED {
                    "vexil"
                } else {
                    "—"
                }
                .to_owned()
            })
        },
        action: row.action.clone(),
        target: format!("{} {}", row.target_type, row.target_id),
        flag: (row.target_type == TARGET_FEATURE_FLAG).then(|| row.target_id.clone()),
        details,
        receipt: receipt.map(|summary| ReceiptView {
            text: summary.to_string(),
            missing: !summary.complete(),
        }),
    }
}

/// A payload value as a person reads it: text as is, booleans as on/off, the rest
/// as compact JSON.
fn readable(value: &Value) -> String {
    match value {
        Value::String(text) => text.clone(),
        Value::Bool(value) => page::on_off(*value).to_owned(),
        Value::Null => "—".to_owned(),
        other => other.to_string(),
    }
}
