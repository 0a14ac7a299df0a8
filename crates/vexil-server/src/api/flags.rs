//! `GET /api/v1/flags?env=`, `GET /api/v1/flags/{key}?env=` and
//! `POST /api/v1/flags/{key}/flip`: the flags page and its flip form, as JSON.
//!
//! A flip checks, in this order: the token, the key's shape, the body (its env
//! included), then `App::flip`'s sequence: the role (a role that may not flip this
//! flag learns nothing more and spends no code), then TOTP where the flag needs it. A
//! `totp` sent for a flag that needs none is not checked and not spent.

// utoipa's `params(Type)` expands to a path the lint calls over-qualified.
#![allow(unused_qualifications)]

use axum::extract::State;
use axum::http::header;
use axum::response::{IntoResponse, Response};
use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};
use utoipa::{IntoParams, ToSchema};
use vexil_app::{AppError, FlagState, Flip};
use vexil_core::audit::{self, Via};
use vexil_core::{Action, FlagKey};

use crate::api::auth::Caller;
use crate::api::error::{ApiError, ErrorBody};
use crate::api::json::{ApiJson, ApiQuery, FlagKeyPath};
use crate::state::ServerState;

/// One flag in one env, as this server resolves it (docs/api.md).
#[derive(Debug, Clone, Serialize, ToSchema)]
pub(crate) struct FlagView {
    key: String,
    env: String,
    /// The effective value.
    value: bool,
    /// What decided it: `db`, `env` or `yaml`.
    #[schema(example = "db")]
    source: &'static str,
    /// `low`, `medium` or `high`.
    risk: &'static str,
    description: String,
    /// The DB row's value, if there is a row, whether or not the env's master switch
    /// (`FLAG_CONSOLE_FEATURE_FLAGS_DB`) lets it decide `value`.
    db_value: Option<bool>,
    /// Who wrote the DB row, if there is one (`null` for direct SQL).
    updated_by: Option<String>,
    updated_at: Option<DateTime<Utc>>,
    /// `FLAG_X=1` when a DB row makes the process variable dormant.
    dormant_env_var: Option<String>,
}

impl From<&FlagState> for FlagView {
    fn from(state: &FlagState) -> FlagView {
        FlagView {
            key: state.key.clone(),
            env: state.env.to_string(),
            value: state.value,
            source: state.source.as_str(),
            risk: state.risk.as_str(),
            description: state.description.clone(),
            db_value: state.row_value,
            updated_by: state.updated_by.clone(),
            updated_at: state.updated_at,
            dormant_env_var: state.dormant_env_var.clone(),
        }
    }
}

#[derive(Debug, Deserialize, IntoParams)]
#[serde(deny_unknown_fields)]
#[into_params(parameter_in = Query)]
pub(crate) struct EnvQuery {
    /// The env to read: `staging` or `prod`.
    env: String,
}

/// Every declared flag in one env, in file order.
#[utoipa::path(
    get,
    path = "/api/v1/flags",
    tag = "flags",
    params(EnvQuery),
    security(("bearer" = [])),
    responses(
        (status = 200, description = "Every declared flag in the env", body = Vec<FlagView>),
        (status = "4XX", description = "unauthenticated, forbidden, invalid_request, unknown_env, rate_limited", body = ErrorBody),
        (status = 503, description = "unavailable", body = ErrorBody),
    )
)]
pub(crate) async fn list(
    State(state): State<ServerState>,
    caller: Caller,
    ApiQuery(query): ApiQuery<EnvQuery>,
) -> Result<Response, ApiError> {
    caller.actor.may(Action::ViewFlags)?;
    let env = state.app.envs().parse(&query.env)?;
    let cached = state.flag_cache.states(&state.app, &env).await?;
    let body = cached.list_json.get_or_init(|| {
        let views: Vec<FlagView> = cached.states.states.iter().map(FlagView::from).collect();
        // Serialising plain structs of strings, bools and dates cannot fail.
        serde_json::to_vec(&views).unwrap_or_default().into()
    });
    Ok(([(header::CONTENT_TYPE, "application/json")], body.clone()).into_response())
}

/// One flag in one env.
#[utoipa::path(
    get,
    path = "/api/v1/flags/{key}",
    tag = "flags",
    params(("key" = String, Path, description = "The flag key, `^[a-z][a-z0-9_]{0,63}$`"), EnvQuery),
    security(("bearer" = [])),
    responses(
        (status = 200, description = "The flag in the env", body = FlagView),
        (status = "4XX", description = "unauthenticated, forbidden, not_found, invalid_request, unknown_env, rate_limited", body = ErrorBody),
        (status = 503, description = "unavailable", body = ErrorBody),
    )
)]
pub(crate) async fn show(
    State(state): State<ServerState>,
    caller: Caller,
    FlagKeyPath(key): FlagKeyPath,
    ApiQuery(query): ApiQuery<EnvQuery>,
) -> Result<ApiJson<FlagView>, ApiError> {
    caller.actor.may(Action::ViewFlags)?;
    let env = state.app.envs().parse(&query.env)?;
    Ok(ApiJson(one_flag(&state, &key, &env).await?))
}

async fn one_flag(
    state: &ServerState,
    key: &FlagKey,
    env: &vexil_core::Env,
) -> Result<FlagView, ApiError> {
    let cached = state.flag_cache.states(&state.app, env).await?;
    let found = cached.states.states.iter().find(|s| s.key == key.as_str());
    found.map(FlagView::from).ok_or_else(|| {
        AppError::UnknownFlag {
            key: key.to_string(),
        }
        .into()
    })
}

/// A flip as asked for.
#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub(crate) struct FlipRequest {
    /// `staging` or `prod`.
    env: String,
    /// The value the caller saw: a flip from a value no longer in force is refused
    /// (`conflict`), never applied blindly.
    from: bool,
    to: bool,
    /// A fresh TOTP code, for a flag whose flip needs elevation (`risk: high`).
    #[schema(example = "123456")]
    totp: Option<String>,
    /// Why, kept in the audit row: one line of at most 500 characters, with no
    /// control or bidi control character (docs/api.md#free-text).
    reason: Option<String>,
}

/// What a flip did.
#[derive(Debug, Serialize, ToSchema)]
pub(crate) struct FlipResponse {
    /// The id of the flip's `console.flag.flip` audit row.
    audit_id: i64,
    from: bool,
    to: bool,
    /// The flag in the env after the flip; `null` in the rare case that it could not
    /// be read back (the flip is done: `audit_id` is its row).
    flag: Option<FlagView>,
}

/// Flips one flag in one env, audited in the same transaction.
#[utoipa::path(
    post,
    path = "/api/v1/flags/{key}/flip",
    tag = "flags",
    params(("key" = String, Path, description = "The flag key")),
    request_body = FlipRequest,
    security(("bearer" = [])),
    responses(
        (status = 200, description = "Flipped", body = FlipResponse),
        (status = 409, description = "conflict (the body's `current` is the value in force) or no_change", body = ErrorBody),
        (status = "4XX", description = "unauthenticated, forbidden, elevation_required, totp_invalid, not_found, payload_too_large, invalid_request, unknown_env, rate_limited", body = ErrorBody),
        (status = 503, description = "unavailable", body = ErrorBody),
    )
)]
pub(crate) async fn flip(
    State(state): State<ServerState>,
    caller: Caller,
    FlagKeyPath(key): FlagKeyPath,
    ApiJson(request): ApiJson<FlipRequest>,
) -> Result<ApiJson<FlipResponse>, ApiError> {
    let env = state.app.envs().parse(&request.env)?;
    let reason =
        audit::reason(request.reason.as_deref()).map_err(|e| ApiError::Invalid(e.to_string()))?;
    let code = caller.code(&state, request.totp.as_deref())?;
    let flip = Flip {
        flag: &key,
        env: &env,
        expected_from: Some(request.from),
        to: request.to,
        reason,
        via: Via::Api,
    };
    let address = caller.from();
    let flipped = state
        .app
        .flip(
            &caller.actor,
            &flip,
            caller.step_up(code.as_ref(), &address),
        )
        .await?;
    // The flip is committed: if its state cannot be read back now, say so in the
    // answer rather than fail it (a retry would only meet a conflict).
    let flag = match one_flag(&state, &key, &env).await {
        Ok(flag) => Some(flag),
        Err(error) => {
            tracing::warn!(%error, "a flip was done but its state could not be read back");
            None
        }
    };
    Ok(ApiJson(FlipResponse {
        audit_id: flipped.audit_id,
        from: flipped.from,
        to: flipped.to,
        flag,
    }))
}
