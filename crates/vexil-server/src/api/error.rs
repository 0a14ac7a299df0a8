//! `ApiError`: why an API request did not get its answer, mapped here once to a
//! status and the body `{"error": "<code>", "message": "..."}` (ARCHITECTURE.md, invariant 8).
//!
//! `CODES` is the one table of error codes: the OpenAPI document, `docs/api.md` and
//! the tests read it. A code, once published, keeps its meaning and its status.
//! A 5xx never shows internals: the full error goes to the log, inside the request's
//! span (which carries its request id).
//!
//! A `conflict` carries the value in force, `rate_limited` a `Retry-After`, and a 401 a
//! `WWW-Authenticate`.

use std::time::Duration;

use axum::Json;
use axum::http::{HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};
use chrono::{DateTime, Utc};
use serde::Serialize;
use utoipa::ToSchema;
use vexil_app::AppError;
use vexil_core::Denied;
use vexil_core::message::error_chain;
use vexil_core::promotion::TransitionError;

/// Every error code the API answers with: its status and when it is used.
pub const CODES: [(&str, StatusCode, &str); 16] = [
    (
        "unauthenticated",
        StatusCode::UNAUTHORIZED,
        "No `Authorization: Bearer` header, a malformed one, or a token that is unknown, revoked, or whose account is disabled or deleted; on the management API, a client key; on `/sdk/v1`, an account's token or a client key that is unknown or revoked.",
    ),
    (
        "forbidden",
        StatusCode::FORBIDDEN,
        "The account's role may not do this (SPEC §5); elevation would not help.",
    ),
    (
        "elevation_required",
        StatusCode::FORBIDDEN,
        "The role suffices but the action needs TOTP elevation: send `totp` with a fresh code (the account must have TOTP enrolled).",
    ),
    (
        "totp_invalid",
        StatusCode::FORBIDDEN,
        "The `totp` code is wrong, expired or already used.",
    ),
    (
        "not_found",
        StatusCode::NOT_FOUND,
        "No such flag, promotion, client key or route.",
    ),
    (
        "method_not_allowed",
        StatusCode::METHOD_NOT_ALLOWED,
        "The route exists but does not take this method.",
    ),
    (
        "conflict",
        StatusCode::CONFLICT,
        "`from` is not the value in force: the body's `current` says what is, its source, who set it and when. Nothing was written.",
    ),
    (
        "no_change",
        StatusCode::CONFLICT,
        "The flag already has the value asked for. Nothing was written.",
    ),
    (
        "invalid_state",
        StatusCode::CONFLICT,
        "The flag or promotion is not in a state that allows this step: not on in staging or already on in prod (mark), already open, soak not over (the message says when it ends), not pending, not approved, already ended, or expired (a due expiry is written before this answer); a client key already revoked. Nothing else was written.",
    ),
    (
        "confirmation_required",
        StatusCode::UNPROCESSABLE_ENTITY,
        "Promoting a high-risk flag needs `confirmation` set to the exact phrase `promote <flag> to prod` (the promotion's `confirmation_phrase`); it was missing or different. Nothing was written and no TOTP code was spent.",
    ),
    (
        "payload_too_large",
        StatusCode::PAYLOAD_TOO_LARGE,
        "The request body is over 64 KiB.",
    ),
    (
        "invalid_request",
        StatusCode::UNPROCESSABLE_ENTITY,
        "A malformed body, parameter or path: the message names the field.",
    ),
    (
        "unknown_env",
        StatusCode::UNPROCESSABLE_ENTITY,
        "The env is not one of the configured envs.",
    ),
    (
        "rate_limited",
        StatusCode::TOO_MANY_REQUESTS,
        "Too many requests from this address (on `/sdk/v1`: for this client key), or too many wrong TOTP codes for this account: `Retry-After` says when to try again.",
    ),
    (
        "unavailable",
        StatusCode::SERVICE_UNAVAILABLE,
        "The database does not answer. Nothing was written; the break-glass CLI (`vexil flip`) works with database access alone.",
    ),
    (
        "internal",
        StatusCode::INTERNAL_SERVER_ERROR,
        "Anything else; the server log has the details under the response's `x-request-id`.",
    ),
];

/// The body of every error response.
#[derive(Debug, Clone, Serialize, ToSchema)]
pub(crate) struct ErrorBody {
    /// A stable code from the table in `docs/api.md`.
    pub error: &'static str,
    /// What went wrong, for a person; names the field where one is at fault.
    pub message: String,
    /// With `conflict`: the value in force, so the caller can decide again.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub current: Option<CurrentValue>,
}

/// The value in force when a flip was refused as stale.
#[derive(Debug, Clone, Serialize, ToSchema)]
pub(crate) struct CurrentValue {
    pub value: bool,
    /// `db`, `env` or `yaml`.
    pub source: &'static str,
    pub updated_by: Option<String>,
    pub updated_at: Option<DateTime<Utc>>,
}

#[derive(Debug, thiserror::Error)]
pub(crate) enum ApiError {
    #[error("{0}")]
    Unauthenticated(&'static str),
    /// A body, query or path that does not parse; the message names the field.
    #[error("{0}")]
    Invalid(String),
    #[error("no route {0}")]
    NoRoute(String),
    #[error("this route does not take that method")]
    MethodNotAllowed,
    #[error("the request body is over the limit")]
    TooLarge,
    #[error("too many requests from this address; try again in {} s", .0.as_secs().max(1))]
    RateLimited(Duration),
    /// Something on the server's side, with what the log says (the caller gets the
    /// generic message).
    #[error("{0}")]
    Internal(&'static str),
    /// The hub has not read the database since the server started.
    #[error("the server has not read the database since it started; try again shortly")]
    Unavailable,
    #[error(transparent)]
    App(#[from] AppError),
}

impl From<Denied> for ApiError {
    fn from(denied: Denied) -> ApiError {
        ApiError::App(denied.into())
    }
}

impl From<vexil_core::EnvError> for ApiError {
    fn from(error: vexil_core::EnvError) -> ApiError {
        ApiError::App(error.into())
    }
}

impl From<vexil_store::StoreError> for ApiError {
    fn from(error: vexil_store::StoreError) -> ApiError {
        ApiError::App(error.into())
    }
}

impl ApiError {
    /// The code from `CODES` this error answers with.
    pub(crate) fn code(&self) -> &'static str {
        match self {
            ApiError::Unauthenticated(_) => "unauthenticated",
            ApiError::Invalid(_) => "invalid_request",
            ApiError::NoRoute(_) => "not_found",
            ApiError::MethodNotAllowed => "method_not_allowed",
            ApiError::TooLarge => "payload_too_large",
            ApiError::RateLimited(_) => "rate_limited",
            ApiError::Internal(_) => "internal",
            ApiError::Unavailable => "unavailable",
            ApiError::App(error) => match error {
                AppError::BadToken | AppError::BadClientKey => "unauthenticated",
                AppError::UnknownClientKey { .. } => "not_found",
                AppError::ClientKeyRevoked { .. } => "invalid_state",
                AppError::InvalidAppName(_) | AppError::Report(_) => "invalid_request",
                AppError::Denied(Denied::Forbidden { .. }) => "forbidden",
                AppError::Denied(Denied::ElevationRequired { .. })
                | AppError::TotpNotEnrolled { .. } => "elevation_required",
                AppError::TotpInvalid | AppError::TotpReplayed => "totp_invalid",
                AppError::ElevationLocked { .. } => "rate_limited",
                AppError::UnknownFlag { .. } | AppError::UnknownPromotion { .. } => "not_found",
                AppError::Promotion {
                    error: TransitionError::SameApprover { .. },
                    ..
                } => "forbidden",
                AppError::Promotion {
                    error: TransitionError::ReasonRequired,
                    ..
                }
                | AppError::ReasonTooLong(_) => "invalid_request",
                AppError::Promotion { .. } | AppError::CannotMark { .. } => "invalid_state",
                AppError::Confirmation(_) => "confirmation_required",
                AppError::UnknownEnv(_) => "unknown_env",
                AppError::Conflict { .. } => "conflict",
                AppError::NoChange { .. } => "no_change",
                AppError::Store(error) if error.is_unavailable() => "unavailable",
                _ => "internal",
            },
        }
    }
}

/// The status `CODES` gives `code`.
pub(crate) fn status_of(code: &str) -> StatusCode {
    CODES
        .iter()
        .find(|(c, _, _)| *c == code)
        .map_or(StatusCode::INTERNAL_SERVER_ERROR, |(_, status, _)| *status)
}

impl IntoResponse for ApiError {
    fn into_response(self) -> Response {
        let code = self.code();
        let status = status_of(code);
        let retry_after = match &self {
            ApiError::RateLimited(wait)
            | ApiError::App(AppError::ElevationLocked { retry_after: wait }) => Some(*wait),
            _ => None,
        };
        let message = match &self {
            ApiError::App(AppError::Store(error)) if code == "unavailable" => {
                metrics::counter!("vexil_database_errors_total", "surface" => "api").increment(1);
                tracing::error!(error = %error_chain(error), "the database failed");
                "the database does not answer; nothing was written. The break-glass CLI \
                 (`vexil flip`) works with database access alone"
                    .to_owned()
            }
            _ if code == "internal" => {
                tracing::error!(error = %error_chain(&self), "API request failed");
                "the server could not answer; its log has the details under this response's x-request-id".to_owned()
            }
            other => other.to_string(),
        };
        let current = match &self {
            ApiError::App(AppError::Conflict {
                current,
                current_source,
                updated_by,
                updated_at,
                ..
            }) => Some(CurrentValue {
                value: *current,
                source: current_source.as_str(),
                updated_by: updated_by.clone(),
                updated_at: *updated_at,
            }),
            _ => None,
        };
        let body = ErrorBody {
            error: code,
            message,
            current,
        };
        if code == "rate_limited" {
            metrics::counter!("vexil_rate_limited_total", "surface" => "api").increment(1);
        }
        let mut response = (status, Json(body)).into_response();
        if status == StatusCode::UNAUTHORIZED {
            response.headers_mut().insert(
                header::WWW_AUTHENTICATE,
                HeaderValue::from_static("Bearer realm=\"vexil\""),
            );
        }
        if let Some(wait) = retry_after
            && let Ok(value) = HeaderValue::from_str(&wait.as_secs().max(1).to_string())
        {
            response.headers_mut().insert(header::RETRY_AFTER, value);
        }
        response
    }
}
