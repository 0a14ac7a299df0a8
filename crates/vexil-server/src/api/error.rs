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
use vexil_app::{AppError, ErrorKind};
use vexil_core::Denied;
use vexil_core::message::error_chain;

/// An error code of the API. Its text is `as_str`; its status and meaning are its
/// row in `CODES`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub(crate) enum Code {
    Unauthenticated,
    Forbidden,
    ElevationRequired,
    TotpInvalid,
    NotFound,
    MethodNotAllowed,
    Conflict,
    NoChange,
    InvalidState,
    ConfirmationRequired,
    PayloadTooLarge,
    InvalidRequest,
    UnknownEnv,
    RateLimited,
    Unavailable,
    Internal,
}

impl Code {
    pub(crate) const fn as_str(self) -> &'static str {
        match self {
            Code::Unauthenticated => "unauthenticated",
            Code::Forbidden => "forbidden",
            Code::ElevationRequired => "elevation_required",
            Code::TotpInvalid => "totp_invalid",
            Code::NotFound => "not_found",
            Code::MethodNotAllowed => "method_not_allowed",
            Code::Conflict => "conflict",
            Code::NoChange => "no_change",
            Code::InvalidState => "invalid_state",
            Code::ConfirmationRequired => "confirmation_required",
            Code::PayloadTooLarge => "payload_too_large",
            Code::InvalidRequest => "invalid_request",
            Code::UnknownEnv => "unknown_env",
            Code::RateLimited => "rate_limited",
            Code::Unavailable => "unavailable",
            Code::Internal => "internal",
        }
    }

    /// The status `CODES` gives this code.
    pub(crate) fn status(self) -> StatusCode {
        CODES
            .iter()
            .find(|(code, _, _)| *code == self.as_str())
            .map_or(StatusCode::INTERNAL_SERVER_ERROR, |(_, status, _)| *status)
    }

    /// The code a use case's refusal or failure answers with: one arm per kind.
    pub(crate) fn of(kind: ErrorKind) -> Code {
        match kind {
            ErrorKind::Invalid => Code::InvalidRequest,
            ErrorKind::UnknownEnv => Code::UnknownEnv,
            ErrorKind::NotFound => Code::NotFound,
            ErrorKind::Unauthenticated => Code::Unauthenticated,
            ErrorKind::Forbidden => Code::Forbidden,
            ErrorKind::ElevationRequired => Code::ElevationRequired,
            ErrorKind::TotpRejected => Code::TotpInvalid,
            ErrorKind::RateLimited => Code::RateLimited,
            ErrorKind::Conflict => Code::Conflict,
            ErrorKind::NoChange => Code::NoChange,
            ErrorKind::InvalidState => Code::InvalidState,
            ErrorKind::ConfirmationRequired => Code::ConfirmationRequired,
            ErrorKind::Unavailable => Code::Unavailable,
            ErrorKind::Internal => Code::Internal,
        }
    }
}

/// Every error code the API answers with: its status and when it is used.
pub const CODES: [(&str, StatusCode, &str); 16] = [
    (
        Code::Unauthenticated.as_str(),
        StatusCode::UNAUTHORIZED,
        "No `Authorization: Bearer` header, a malformed one, or a token that is unknown, revoked, or whose account is disabled or deleted; on the management API, a client key; on `/sdk/v1`, an account's token or a client key that is unknown or revoked.",
    ),
    (
        Code::Forbidden.as_str(),
        StatusCode::FORBIDDEN,
        "The account's role may not do this (docs/roles.md); elevation would not help.",
    ),
    (
        Code::ElevationRequired.as_str(),
        StatusCode::FORBIDDEN,
        "The role suffices but the action needs TOTP elevation: send `totp` with a fresh code (the account must have TOTP enrolled).",
    ),
    (
        Code::TotpInvalid.as_str(),
        StatusCode::FORBIDDEN,
        "The `totp` code is wrong, expired or already used.",
    ),
    (
        Code::NotFound.as_str(),
        StatusCode::NOT_FOUND,
        "No such flag, promotion, client key or route.",
    ),
    (
        Code::MethodNotAllowed.as_str(),
        StatusCode::METHOD_NOT_ALLOWED,
        "The route exists but does not take this method.",
    ),
    (
        Code::Conflict.as_str(),
        StatusCode::CONFLICT,
        "`from` is not the value in force: the body's `current` says what is, its source, who set it and when. Nothing was written.",
    ),
    (
        Code::NoChange.as_str(),
        StatusCode::CONFLICT,
        "The flag already has the value asked for. Nothing was written.",
    ),
    (
        Code::InvalidState.as_str(),
        StatusCode::CONFLICT,
        "The flag or promotion is not in a state that allows this step: not on in staging or already on in prod (mark), already open, soak not over (the message says when it ends), not pending, not approved, already ended, or expired (a due expiry is written before this answer); a client key already revoked. Nothing else was written.",
    ),
    (
        Code::ConfirmationRequired.as_str(),
        StatusCode::UNPROCESSABLE_ENTITY,
        "Promoting a high-risk flag needs `confirmation` set to the exact phrase `promote <flag> to prod` (the promotion's `confirmation_phrase`); it was missing or different. Nothing was written and no TOTP code was spent.",
    ),
    (
        Code::PayloadTooLarge.as_str(),
        StatusCode::PAYLOAD_TOO_LARGE,
        "The request body is over 64 KiB.",
    ),
    (
        Code::InvalidRequest.as_str(),
        StatusCode::UNPROCESSABLE_ENTITY,
        "A malformed body, parameter or path: the message names the field.",
    ),
    (
        Code::UnknownEnv.as_str(),
        StatusCode::UNPROCESSABLE_ENTITY,
        "The env is not one of the configured envs.",
    ),
    (
        Code::RateLimited.as_str(),
        StatusCode::TOO_MANY_REQUESTS,
        "Too many requests from this address (on `/sdk/v1`: for this client key), or too many wrong TOTP codes for this account: `Retry-After` says when to try again.",
    ),
    (
        Code::Unavailable.as_str(),
        StatusCode::SERVICE_UNAVAILABLE,
        "The database does not answer. Nothing was written; the break-glass CLI (`vexil flip`) works with database access alone.",
    ),
    (
        Code::Internal.as_str(),
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
    /// The code this error answers with.
    pub(crate) fn code(&self) -> Code {
        match self {
            ApiError::Unauthenticated(_) => Code::Unauthenticated,
            ApiError::Invalid(_) => Code::InvalidRequest,
            ApiError::NoRoute(_) => Code::NotFound,
            ApiError::MethodNotAllowed => Code::MethodNotAllowed,
            ApiError::TooLarge => Code::PayloadTooLarge,
            ApiError::RateLimited(_) => Code::RateLimited,
            ApiError::Internal(_) => Code::Internal,
            ApiError::Unavailable => Code::Unavailable,
            ApiError::App(error) => Code::of(error.kind()),
        }
    }
}

impl IntoResponse for ApiError {
    fn into_response(self) -> Response {
        let code = self.code();
        let status = code.status();
        let retry_after = match &self {
            ApiError::RateLimited(wait) => Some(*wait),
            ApiError::App(error) => error.retry_after(),
            _ => None,
        };
        let message = match &self {
            ApiError::App(AppError::Store(error)) if code == Code::Unavailable => {
                metrics::counter!("vexil_database_errors_total", "surface" => "api").increment(1);
                tracing::error!(error = %error_chain(error), "the database failed");
                "the database does not answer; nothing was written. The break-glass CLI \
                 (`vexil flip`) works with database access alone"
                    .to_owned()
            }
            _ if code == Code::Internal => {
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
            error: code.as_str(),
            message,
            current,
        };
        if code == Code::RateLimited {
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
