//! `GET /api/v1/audit`: the audit log, newest first, filtered like `vexil audit`, a
//! page at a time. Pages are cut by row id: the body's `next` is the `before` of the
//! next (older) page, so rows appended meanwhile never shift a page.
//!
//! `limit` is 1 to 500.

// utoipa's `params(Type)` expands to a path the lint calls over-qualified.
#![allow(unused_qualifications)]

use axum::extract::State;
use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};
use serde_json::Value;
use utoipa::{IntoParams, ToSchema};
use vexil_core::parse_instant;
use vexil_store::{AuditFilter, AuditRow};

use crate::api::auth::Caller;
use crate::api::error::{ApiError, ErrorBody};
use crate::api::json::{ApiJson, ApiQuery, limit_param};
use crate::state::ServerState;

/// Rows per page unless `limit` says otherwise (at most `json::MAX_LIMIT`).
const DEFAULT_LIMIT: u32 = 50;

#[derive(Debug, Default, Deserialize, IntoParams)]
#[serde(deny_unknown_fields)]
#[into_params(parameter_in = Query)]
pub(crate) struct AuditQuery {
    /// An action name, e.g. `console.flag.flip`.
    action: Option<String>,
    /// A flag key.
    flag: Option<String>,
    /// The account that wrote the row.
    actor: Option<String>,
    /// Rows whose payload names this env.
    env: Option<String>,
    /// From this instant on (RFC 3339, or `YYYY-MM-DD[ HH:MM[:SS]]` in UTC).
    since: Option<String>,
    /// Before this instant.
    until: Option<String>,
    /// Rows per page, 1 to 500 (default 50).
    #[param(value_type = Option<u32>)]
    limit: Option<String>,
    /// The `next` of the previous page: only rows older than it.
    before: Option<String>,
}

/// One audit row.
#[derive(Debug, Serialize, ToSchema)]
pub(crate) struct AuditEntry {
    id: i64,
    created_at: DateTime<Utc>,
    /// The account that wrote it; `null` for direct SQL and failed sign-ins.
    actor: Option<String>,
    #[schema(example = "console.flag.flip")]
    action: String,
    /// `feature_flag` or `user`.
    target_type: String,
    target_id: String,
    payload: Value,
    /// Present when the row was written under an id of the old console's admins
    /// (docs/adopt.md); `actor` is then the placeholder account holding that id.
    #[serde(skip_serializing_if = "Option::is_none")]
    old_admin: Option<OldAdminEntry>,
}

/// An admin of the console vexil adopted, under whose id a row was written.
#[derive(Debug, Serialize, ToSchema)]
pub(crate) struct OldAdminEntry {
    /// The old console's id for its admin (`admin_id` in the table).
    id: i64,
    /// The vexil account the id is mapped to, if any.
    account: Option<String>,
    /// Written before the adoption; else by the old console running beside vexil.
    before_vexil: bool,
}

impl From<AuditRow> for AuditEntry {
    fn from(row: AuditRow) -> AuditEntry {
        let old_admin = row.old_admin().map(|old| OldAdminEntry {
            id: old.id,
            account: old.account.map(str::to_owned),
            before_vexil: old.before_vexil,
        });
        AuditEntry {
            id: row.id,
            created_at: row.created_at,
            actor: row.admin_name,
            action: row.action,
            target_type: row.target_type,
            target_id: row.target_id,
            payload: row.payload,
            old_admin,
        }
    }
}

/// A page of the audit log.
#[derive(Debug, Serialize, ToSchema)]
pub(crate) struct AuditPage {
    /// Newest first.
    entries: Vec<AuditEntry>,
    /// The `before` of the next (older) page; `null` on the last page.
    next: Option<String>,
}

/// The audit log, newest first.
#[utoipa::path(
    get,
    path = "/api/v1/audit",
    tag = "audit",
    params(AuditQuery),
    security(("bearer" = [])),
    responses(
        (status = 200, description = "A page of the audit log", body = AuditPage),
        (status = "4XX", description = "unauthenticated, forbidden, invalid_request, unknown_env, rate_limited", body = ErrorBody),
        (status = 503, description = "unavailable", body = ErrorBody),
    )
)]
pub(crate) async fn list(
    State(state): State<ServerState>,
    caller: Caller,
    ApiQuery(query): ApiQuery<AuditQuery>,
) -> Result<ApiJson<AuditPage>, ApiError> {
    // An empty text parameter (`?action=&flag=x`, as a script's template sends it) is
    // absent; an empty integer is no integer (`limit_param`).
    let limit = limit_param(query.limit.as_deref(), DEFAULT_LIMIT)?;
    // A cursor is text to the caller (`next`): empty is absent, as for the filters.
    let before = given(&query.before)
        .map(|cursor| {
            cursor
                .parse::<i64>()
                .ok()
                .filter(|id| *id > 0)
                .ok_or_else(|| {
                    ApiError::Invalid(
                        "before: not a cursor: pass the `next` of the previous page".to_owned(),
                    )
                })
        })
        .transpose()?;
    let instant = |field: &str, value: Option<&str>| {
        value
            .map(|text| parse_instant(text).map_err(|e| ApiError::Invalid(format!("{field}: {e}"))))
            .transpose()
    };
    if let Some(env) = given(&query.env) {
        state.app.envs().parse(env)?;
    }
    let owned = |value: &Option<String>| given(value).map(str::to_owned);
    let filter = AuditFilter {
        action: owned(&query.action),
        flag: owned(&query.flag),
        actor: owned(&query.actor),
        env: owned(&query.env),
        since: instant("since", given(&query.since))?,
        until: instant("until", given(&query.until))?,
        before,
        // One more than asked: whether there is a next page.
        limit: limit + 1,
        ..AuditFilter::default()
    };
    let mut rows = state.app.audit_page(&caller.actor, &filter).await?;
    let more = rows.len() > limit as usize;
    rows.truncate(limit as usize);
    let next = more
        .then(|| rows.last().map(|row| row.id.to_string()))
        .flatten();
    Ok(ApiJson(AuditPage {
        entries: rows.into_iter().map(AuditEntry::from).collect(),
        next,
    }))
}

/// A query parameter's value, or `None` when it is absent or empty.
fn given(value: &Option<String>) -> Option<&str> {
    value.as_deref().map(str::trim).filter(|v| !v.is_empty())
}
