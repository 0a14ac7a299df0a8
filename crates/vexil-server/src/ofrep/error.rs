//! `OfrepError`: why an OFREP request got no evaluation, in OFREP's shapes (its
//! `evaluationFailure`, `flagNotFound` and `generalErrorResponse`). Every JSON error
//! body carries `errorCode` and `errorDetails`, and the flag's `key` where there is
//! one: OpenFeature's JavaScript provider reads a 400, 404 or 500 only when both
//! `key` and `errorCode` are there. `Retry-After` is in seconds, which every provider
//! parses (some misread a date).

use std::time::Duration;

use axum::Json;
use axum::http::{HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};
use serde::Serialize;

use vexil_core::message::{error_chain, one_line};

use crate::sdk::auth::KeyRefused;

#[derive(Debug)]
pub(crate) enum OfrepError {
    /// 400 `PARSE_ERROR`: the body is not JSON.
    Parse(String),
    /// 400 `INVALID_CONTEXT`: `context` is not an object.
    InvalidContext(String),
    /// 404 `FLAG_NOT_FOUND`.
    NotFound,
    /// 401: no client key, a revoked one, or an account's token.
    Unauthenticated(&'static str),
    /// 429, with `Retry-After`.
    RateLimited(Duration),
    /// 503: the server has not read the database since it started.
    Unavailable,
    /// 500: details in the log only.
    Internal,
}

/// An error body: `key` where a flag is named.
#[derive(Serialize)]
#[serde(rename_all = "camelCase")]
struct Body<'a> {
    #[serde(skip_serializing_if = "Option::is_none")]
    key: Option<&'a str>,
    error_code: &'static str,
    error_details: String,
}

impl From<KeyRefused> for OfrepError {
    fn from(refused: KeyRefused) -> OfrepError {
        match refused {
            KeyRefused::Unauthenticated(why) => OfrepError::Unauthenticated(why),
            KeyRefused::RateLimited(wait) => OfrepError::RateLimited(wait),
            KeyRefused::App(error) if matches!(&error, vexil_app::AppError::Store(e) if e.is_unavailable()) =>
            {
                tracing::error!(error = %error_chain(&error), "cannot look up a client key");
                OfrepError::Unavailable
            }
            KeyRefused::App(error) => {
                tracing::error!(error = %error_chain(&error), "cannot look up a client key");
                OfrepError::Internal
            }
        }
    }
}

impl OfrepError {
    /// The answer for a request about `key` (`None` for the bulk route).
    pub(crate) fn respond(self, key: Option<&str>) -> Response {
        let mut retry_after = None;
        let (status, code, details) = match self {
            OfrepError::Parse(why) => (StatusCode::BAD_REQUEST, "PARSE_ERROR", why),
            OfrepError::InvalidContext(why) => (StatusCode::BAD_REQUEST, "INVALID_CONTEXT", why),
            OfrepError::NotFound => (
                StatusCode::NOT_FOUND,
                "FLAG_NOT_FOUND",
                format!(
                    "flag '{}' is not declared in vexil's flags file",
                    one_line(&key.unwrap_or_default().chars().take(64).collect::<String>())
                ),
            ),
            OfrepError::Unauthenticated(why) => {
                (StatusCode::UNAUTHORIZED, "GENERAL", why.to_owned())
            }
            OfrepError::RateLimited(wait) => {
                let seconds = wait.as_secs().max(1);
                retry_after = Some(seconds);
                (
                    StatusCode::TOO_MANY_REQUESTS,
                    "GENERAL",
                    format!("too many requests for this client key; try again in {seconds} s"),
                )
            }
            OfrepError::Unavailable => {
                retry_after = Some(1);
                (
                    StatusCode::SERVICE_UNAVAILABLE,
                    "GENERAL",
                    "the server cannot read the database; try again shortly".to_owned(),
                )
            }
            OfrepError::Internal => (
                StatusCode::INTERNAL_SERVER_ERROR,
                "GENERAL",
                "the server could not answer; its log has the details".to_owned(),
            ),
        };
        let body = Body {
            key,
            error_code: code,
            error_details: details,
        };
        let mut response = (status, Json(body)).into_response();
        if status == StatusCode::UNAUTHORIZED {
            response.headers_mut().insert(
                header::WWW_AUTHENTICATE,
                HeaderValue::from_static("Bearer realm=\"vexil\""),
            );
        }
        if let Some(seconds) = retry_after {
            response
                .headers_mut()
                .insert(header::RETRY_AFTER, HeaderValue::from(seconds));
        }
        response
    }
}
