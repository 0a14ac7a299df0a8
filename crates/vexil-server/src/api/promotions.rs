//! Promotions from staging to prod (docs/promotion.md, docs/api.md):
//! `POST /api/v1/flags/{key}/promotions` marks a flag, `GET /api/v1/promotions[?state=]`
//! and `GET /api/v1/promotions/{id}` read them, and
//! `POST /api/v1/promotions/{id}/approve|promote|reject` move them.
//!
//! Each checks the role first (a role that may not act learns nothing), then its body.
//! A promote then checks the typed confirmation (a high-risk flag) and that the
//! promotion can be promoted now (checked by `App::promote`), and only then a TOTP
//! code, so a wrong phrase or a promotion not yet approved spends no code.
//!
//! `PromotionView` is the one JSON shape of a promotion (also the CLI's `--json`). TOTP
//! goes through `Caller::elevate_for`, shared with the flip.

// utoipa's `params(Type)` expands to a path the lint calls over-qualified.
#![allow(unused_qualifications)]

use axum::extract::State;
use axum::http::StatusCode;
use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};
use utoipa::{IntoParams, ToSchema};
use vexil_app::{App, PromoteRequest, PromotionRecord, Stepped};
use vexil_core::Action;
use vexil_core::audit::Via;
use vexil_core::promotion::{self, PromotionState};

use crate::api::auth::Caller;
use crate::api::error::{ApiError, ErrorBody};
use crate::api::json::{ApiJson, ApiQuery, FlagKeyPath, IdPath, limit_param};
use crate::state::ServerState;

/// A promotion as the API, the CLI's `--json` and the console show it.
#[derive(Debug, Clone, Serialize, ToSchema)]
pub struct PromotionView {
    pub id: i64,
    pub flag: String,
    /// The flag's risk; `null` when the flags file no longer declares it.
    pub risk: Option<&'static str>,
    /// `pending`, `approved`, `promoted`, `rejected` or `expired`.
    #[schema(example = "pending")]
    pub state: &'static str,
    pub marked_by: String,
    pub marked_at: DateTime<Utc>,
    pub soak_ends_at: DateTime<Utc>,
    /// Whole seconds until the soak ends; 0 once it has.
    pub soak_remaining_seconds: i64,
    pub approved_by: Option<String>,
    pub approved_at: Option<DateTime<Utc>>,
    /// When it was promoted, rejected or expired.
    pub ended_at: Option<DateTime<Utc>>,
    /// Who promoted or rejected it (`null` for an expiry).
    pub ended_by: Option<String>,
    /// A rejection's reason, or an expiry's (`staging_changed`, `prod_changed`,
    /// `pending_too_long`, `approval_unused`).
    pub reason: Option<String>,
    /// When an open promotion expires if nothing else happens.
    pub expires_at: Option<DateTime<Utc>>,
    /// What to send as `confirmation` to promote it (high-risk flags only).
    pub confirmation_phrase: Option<String>,
}

impl PromotionView {
    /// `record` as seen at `now`, with its flag's risk from the flags in force.
    pub fn new(app: &App, record: &PromotionRecord, now: DateTime<Utc>) -> PromotionView {
        let flags = app.flags();
        let risk = flags.get(&record.flag_key).map(vexil_core::FlagDecl::risk);
        let p = &record.promotion;
        PromotionView {
            id: record.id,
            flag: record.flag_key.clone(),
            risk: risk.map(vexil_core::Risk::as_str),
            state: p.state.as_str(),
            marked_by: p.marked_by.clone(),
            marked_at: p.marked_at,
            soak_ends_at: p.soak_ends_at,
            soak_remaining_seconds: (p.soak_ends_at - now).num_seconds().max(0),
            approved_by: p.approved_by.clone(),
            approved_at: p.approved_at,
            ended_at: p.ended_at,
            ended_by: p.ended_by.clone(),
            reason: p.reason.clone(),
            expires_at: promotion::expires_at(p, app.promotion_windows()),
            confirmation_phrase: (risk == Some(vexil_core::Risk::High))
                .then(|| promotion::confirmation_phrase(&record.flag_key)),
        }
    }
}

/// What a step did, as the API and the CLI's `--json` answer it.
#[derive(Debug, Serialize, ToSchema)]
pub struct StepResponse {
    /// The audit row of this step (`console.flag.mark_promote`, `approved`, …).
    audit_id: i64,
    /// For a promote: the `console.flag.flip` row of the prod write.
    #[serde(skip_serializing_if = "Option::is_none")]
    flip_audit_id: Option<i64>,
    promotion: PromotionView,
}

impl StepResponse {
    pub fn new(app: &App, stepped: &Stepped) -> StepResponse {
        StepResponse {
            audit_id: stepped.audit_id,
            flip_audit_id: stepped.flip_audit_id,
            promotion: PromotionView::new(app, &stepped.record, app.now()),
        }
    }
}

fn answer(state: &ServerState, stepped: &Stepped) -> ApiJson<StepResponse> {
    ApiJson(StepResponse::new(&state.app, stepped))
}

/// `GET /api/v1/promotions` parameters.
#[derive(Debug, Deserialize, IntoParams)]
#[into_params(parameter_in = Query)]
pub(crate) struct ListQuery {
    /// Only promotions in this state: pending, approved, promoted, rejected, expired.
    state: Option<String>,
    /// Only promotions of this flag.
    flag: Option<String>,
    /// At most this many, 1–500 (default 100).
    #[param(value_type = Option<u32>)]
    limit: Option<String>,
}

/// A promote's body.
#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub(crate) struct PromoteBody {
    /// The exact phrase `promote <flag> to prod`, for a high-risk flag.
    confirmation: Option<String>,
    /// A fresh TOTP code, for a high-risk flag.
    totp: Option<String>,
}

/// A rejection's body.
#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub(crate) struct RejectBody {
    /// Why, for the audit log: required, one line of at most 500 characters, with no
    /// control or bidi control character (docs/api.md#free-text).
    reason: String,
}

/// Marks a flag that is on in staging and off in prod active for prod: a pending
/// promotion whose soak ends `soak_period_hours` from now.
#[utoipa::path(
    post,
    path = "/api/v1/flags/{key}/promotions",
    tag = "promotions",
    params(("key" = String, Path, description = "The flag key")),
    security(("bearer" = [])),
    responses(
        (status = 201, description = "Marked", body = StepResponse),
        (status = 409, description = "invalid_state: off in staging, on in prod, or already open", body = ErrorBody),
        (status = "4XX", description = "unauthenticated, forbidden, not_found, invalid_request, rate_limited", body = ErrorBody),
        (status = 503, description = "unavailable", body = ErrorBody),
    )
)]
pub(crate) async fn mark(
    State(state): State<ServerState>,
    caller: Caller,
    FlagKeyPath(key): FlagKeyPath,
) -> Result<(StatusCode, ApiJson<StepResponse>), ApiError> {
    let stepped = state
        .app
        .mark_promote(&caller.actor, &key, Via::Api)
        .await?;
    Ok((StatusCode::CREATED, answer(&state, &stepped)))
}

/// Promotions, newest first.
#[utoipa::path(
    get,
    path = "/api/v1/promotions",
    tag = "promotions",
    params(ListQuery),
    security(("bearer" = [])),
    responses(
        (status = 200, description = "Newest first", body = [PromotionView]),
        (status = "4XX", description = "unauthenticated, forbidden, invalid_request, rate_limited", body = ErrorBody),
        (status = 503, description = "unavailable", body = ErrorBody),
    )
)]
pub(crate) async fn list(
    State(state): State<ServerState>,
    caller: Caller,
    ApiQuery(query): ApiQuery<ListQuery>,
) -> Result<ApiJson<Vec<PromotionView>>, ApiError> {
    caller.actor.may(Action::ViewFlags)?;
    let given = |v: Option<String>| v.filter(|v| !v.is_empty());
    let wanted = match given(query.state) {
        None => None,
        Some(text) => Some(PromotionState::parse(&text).ok_or_else(|| {
            ApiError::Invalid(format!(
                "state: expected one of pending, approved, promoted, rejected, expired, not {}",
                vexil_core::message::one_line(&text)
            ))
        })?),
    };
    let limit = limit_param(query.limit.as_deref(), 100)?;
    let flag = given(query.flag);
    let records = state.app.promotions(wanted, flag.as_deref(), limit).await?;
    let now = state.app.now();
    Ok(ApiJson(
        records
            .iter()
            .map(|record| PromotionView::new(&state.app, record, now))
            .collect(),
    ))
}

/// One promotion.
#[utoipa::path(
    get,
    path = "/api/v1/promotions/{id}",
    tag = "promotions",
    params(("id" = i64, Path, description = "The promotion's id")),
    security(("bearer" = [])),
    responses(
        (status = 200, description = "The promotion", body = PromotionView),
        (status = "4XX", description = "unauthenticated, forbidden, not_found, invalid_request, rate_limited", body = ErrorBody),
        (status = 503, description = "unavailable", body = ErrorBody),
    )
)]
pub(crate) async fn show(
    State(state): State<ServerState>,
    caller: Caller,
    IdPath(id): IdPath,
) -> Result<ApiJson<PromotionView>, ApiError> {
    caller.actor.may(Action::ViewFlags)?;
    let record = state.app.promotion(id).await?;
    Ok(ApiJson(PromotionView::new(
        &state.app,
        &record,
        state.app.now(),
    )))
}

/// Approves a pending promotion whose soak has ended.
#[utoipa::path(
    post,
    path = "/api/v1/promotions/{id}/approve",
    tag = "promotions",
    params(("id" = i64, Path, description = "The promotion's id")),
    security(("bearer" = [])),
    responses(
        (status = 200, description = "Approved", body = StepResponse),
        (status = 409, description = "invalid_state: the soak has not ended (the message says when it does), not pending, or expired", body = ErrorBody),
        (status = "4XX", description = "unauthenticated, forbidden (also the four-eyes rule), not_found, invalid_request, rate_limited", body = ErrorBody),
        (status = 503, description = "unavailable", body = ErrorBody),
    )
)]
pub(crate) async fn approve(
    State(state): State<ServerState>,
    caller: Caller,
    IdPath(id): IdPath,
) -> Result<ApiJson<StepResponse>, ApiError> {
    let stepped = state.app.approve(&caller.actor, id, Via::Api).await?;
    Ok(answer(&state, &stepped))
}

/// Rejects a pending or approved promotion.
#[utoipa::path(
    post,
    path = "/api/v1/promotions/{id}/reject",
    tag = "promotions",
    params(("id" = i64, Path, description = "The promotion's id")),
    request_body = RejectBody,
    security(("bearer" = [])),
    responses(
        (status = 200, description = "Rejected", body = StepResponse),
        (status = 409, description = "invalid_state: already ended", body = ErrorBody),
        (status = "4XX", description = "unauthenticated, forbidden, not_found, invalid_request (no reason), rate_limited", body = ErrorBody),
        (status = 503, description = "unavailable", body = ErrorBody),
    )
)]
pub(crate) async fn reject(
    State(state): State<ServerState>,
    caller: Caller,
    IdPath(id): IdPath,
    ApiJson(body): ApiJson<RejectBody>,
) -> Result<ApiJson<StepResponse>, ApiError> {
    let stepped = state
        .app
        .reject(&caller.actor, id, &body.reason, Via::Api)
        .await?;
    Ok(answer(&state, &stepped))
}

/// Promotes an approved promotion: writes the prod row (with its
/// `console.flag.flip` audit row) and the `console.flag.promoted` row in one
/// transaction. A high-risk flag needs `confirmation` and `totp`.
#[utoipa::path(
    post,
    path = "/api/v1/promotions/{id}/promote",
    tag = "promotions",
    params(("id" = i64, Path, description = "The promotion's id")),
    request_body = PromoteBody,
    security(("bearer" = [])),
    responses(
        (status = 200, description = "Promoted", body = StepResponse),
        (status = 409, description = "invalid_state: not approved, already ended, or expired", body = ErrorBody),
        (status = 422, description = "confirmation_required: the typed phrase is missing or different", body = ErrorBody),
        (status = "4XX", description = "unauthenticated, forbidden, elevation_required, totp_invalid, not_found, invalid_request, rate_limited", body = ErrorBody),
        (status = 503, description = "unavailable", body = ErrorBody),
    )
)]
pub(crate) async fn promote(
    State(state): State<ServerState>,
    caller: Caller,
    IdPath(id): IdPath,
    ApiJson(body): ApiJson<PromoteBody>,
) -> Result<ApiJson<StepResponse>, ApiError> {
    let code = caller.code(&state, body.totp.as_deref())?;
    let request = PromoteRequest {
        confirmation: body.confirmation.as_deref(),
        via: Via::Api,
    };
    let address = caller.from();
    // Role, phrase and state are checked before a code is looked at: a code is spent
    // only on a promote that can happen.
    let stepped = state
        .app
        .promote(
            &caller.actor,
            id,
            &request,
            caller.step_up(code.as_ref(), &address),
        )
        .await?;
    Ok(answer(&state, &stepped))
}
