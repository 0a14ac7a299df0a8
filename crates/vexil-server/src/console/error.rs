//! `ConsoleError`: why a console request did not get its page, mapped here once to a
//! status and an HTML page (ARCHITECTURE.md, invariant 8). A 5xx page never shows internals: the
//! full error is logged (inside the request's span, `TraceLayer` in `serve.rs`), and
//! the page says what the operator can do instead.
//!
//! Statuses: 403 (role, CSRF), 404, 400 (bad input, naming it), 409 (a conflict, with
//! who and when), 422 (TOTP), 429 (with `Retry-After`), and 503 when the database is
//! down, naming the break-glass paths.

use std::time::Duration;

use axum::http::{HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Redirect, Response};
use vexil_app::AppError;
use vexil_core::Denied;
use vexil_core::message::error_chain;
use vexil_core::promotion::TransitionError;

use crate::console::page::{self, ConflictPage, MessagePage};

#[derive(Debug, thiserror::Error)]
pub(crate) enum ConsoleError {
    /// No signed-in session (or it ran out): sign in, then come back to `next`.
    #[error("sign-in required")]
    SignInRequired { next: String, expired: bool },
    #[error("the form's CSRF token is missing or not this session's")]
    Csrf,
    #[error("{0}")]
    BadRequest(String),
    #[error("{what}")]
    RateLimited {
        what: &'static str,
        retry_after: Duration,
    },
    #[error(transparent)]
    App(#[from] AppError),
    #[error("session store: {0}")]
    Session(#[from] tower_sessions::session::Error),
    #[error("{0}")]
    Internal(String),
}

/// The break-glass paths, named on every page that says the database is down.
const BREAK_GLASS: [&str; 3] = [
    "Flip from a shell with database access: vexil flip <flag_key> --env <env> --on|--off --as <your account> (audited, no console needed).",
    "If vexil's database itself is lost, set the flag's FLAG_<KEY>=1 or 0 on the app and restart it (the runbook's Option A): the env layer decides while no DB row does.",
    "vexil serve keeps running: this page comes back by itself when the database answers.",
];

// What a handler asks of the core and the store directly (the role matrix, an env
// name, the audit log) fails as the use cases would, and is shown the same way.
impl From<Denied> for ConsoleError {
    fn from(denied: Denied) -> ConsoleError {
        ConsoleError::App(denied.into())
    }
}

impl From<vexil_core::EnvError> for ConsoleError {
    fn from(error: vexil_core::EnvError) -> ConsoleError {
        ConsoleError::App(error.into())
    }
}

impl From<vexil_store::StoreError> for ConsoleError {
    fn from(error: vexil_store::StoreError) -> ConsoleError {
        ConsoleError::App(error.into())
    }
}

impl IntoResponse for ConsoleError {
    fn into_response(self) -> Response {
        match self {
            ConsoleError::SignInRequired { next, expired } => {
                let mut target = String::from("/console/sign-in?");
                target.push_str(&page::query(&[
                    ("next", Some(next.as_str())),
                    ("expired", expired.then_some("1")),
                ]));
                Redirect::to(&target).into_response()
            }
            ConsoleError::Csrf => MessagePage::new(
                StatusCode::FORBIDDEN,
                "This form has expired",
                "The form was not sent by this console session (it may be from before a sign-in, or from another site). Nothing was changed. Reload the page and try again.",
            )
            .into_response(),
            ConsoleError::BadRequest(message) => {
                MessagePage::new(StatusCode::BAD_REQUEST, "Bad request", &message).into_response()
            }
            ConsoleError::RateLimited { what, retry_after } => too_many(what, retry_after),
            ConsoleError::App(error) => app_error(error),
            ConsoleError::Session(error) => {
                tracing::error!(%error, "the session store failed");
                unavailable()
            }
            ConsoleError::Internal(error) => {
                tracing::error!(%error, "console request failed");
                MessagePage::new(
                    StatusCode::INTERNAL_SERVER_ERROR,
                    "Something went wrong",
                    "The console could not answer; the server log has the details. Nothing was changed.",
                )
                .into_response()
            }
        }
    }
}

fn app_error(error: AppError) -> Response {
    let message = error.to_string();
    match error {
        AppError::Denied(Denied::Forbidden { .. } | Denied::ElevationRequired { .. }) => {
            MessagePage::new(StatusCode::FORBIDDEN, "Not allowed", &message).into_response()
        }
        AppError::UnknownFlag { .. } => {
            MessagePage::new(StatusCode::NOT_FOUND, "No such flag", &message).into_response()
        }
        AppError::UnknownPromotion { .. } => {
            MessagePage::new(StatusCode::NOT_FOUND, "No such promotion", &message).into_response()
        }
        AppError::UnknownClientKey { .. } => {
            MessagePage::new(StatusCode::NOT_FOUND, "No such client key", &message).into_response()
        }
        AppError::ClientKeyRevoked { .. } => {
            MessagePage::new(StatusCode::CONFLICT, "Already revoked", &message).into_response()
        }
        AppError::InvalidAppName(_) => MessagePage::new(
            StatusCode::BAD_REQUEST,
            "Not an application name",
            &format!("{message}. No key was created."),
        )
        .into_response(),
        AppError::Promotion {
            error: TransitionError::SameApprover { .. },
            ..
        } => MessagePage::new(StatusCode::FORBIDDEN, "Not allowed", &message).into_response(),
        AppError::Promotion {
            error: TransitionError::ReasonRequired,
            ..
        } => MessagePage::new(
            StatusCode::UNPROCESSABLE_ENTITY,
            "A reason is needed",
            &message,
        )
        .into_response(),
        AppError::ReasonTooLong(_) => MessagePage::new(
            StatusCode::UNPROCESSABLE_ENTITY,
            "The reason is too long",
            &message,
        )
        .into_response(),
        AppError::ReconcileRefused { .. } => {
            let mut page = MessagePage::new(StatusCode::CONFLICT, "Not reconciled", &message);
            page.items
                .push("The reconcile page shows what each live process runs now.".to_owned());
            page.into_response()
        }
        AppError::Promotion { .. } | AppError::CannotMark { .. } => {
            let mut page = MessagePage::new(StatusCode::CONFLICT, "Not possible now", &message);
            page.items.push(
                "Nothing else was changed. The promotions page shows where each one is.".to_owned(),
            );
            page.into_response()
        }
        AppError::Confirmation(_) => MessagePage::new(
            StatusCode::UNPROCESSABLE_ENTITY,
            "Type the confirmation",
            &format!("{message}. Nothing was changed and no TOTP code was used."),
        )
        .into_response(),
        AppError::UnknownEnv(_) => {
            MessagePage::new(StatusCode::BAD_REQUEST, "No such env", &message).into_response()
        }
        AppError::Conflict {
            flag,
            env,
            expected,
            current,
            current_source,
            updated_by,
            updated_at,
        } => ConflictPage {
            chrome: page::Chrome::error(),
            flag,
            env,
            expected: page::on_off(expected),
            current: page::on_off(current),
            source: current_source.as_str(),
            updated_by,
            updated_at: updated_at.map(page::utc),
        }
        .into_response(),
        AppError::NoChange { .. } => {
            MessagePage::new(StatusCode::CONFLICT, "Nothing to change", &message).into_response()
        }
        AppError::SignInLocked { retry_after } | AppError::ElevationLocked { retry_after } => {
            too_many(&message, retry_after)
        }
        AppError::TotpInvalid
        | AppError::TotpReplayed
        | AppError::TotpNotEnrolled { .. }
        | AppError::TotpAlreadyEnrolled { .. } => {
            MessagePage::new(StatusCode::UNPROCESSABLE_ENTITY, "TOTP", &message).into_response()
        }
        AppError::Store(error) if error.is_unavailable() => {
            tracing::error!(error = %error_chain(&error), "the database failed");
            unavailable()
        }
        error => {
            tracing::error!(error = %error_chain(&error), "console request failed");
            MessagePage::new(
                StatusCode::INTERNAL_SERVER_ERROR,
                "Something went wrong",
                "The console could not answer; the server log has the details.",
            )
            .into_response()
        }
    }
}

fn too_many(message: &str, retry_after: Duration) -> Response {
    metrics::counter!("vexil_rate_limited_total", "surface" => "console").increment(1);
    let seconds = retry_after.as_secs().max(1);
    let mut page = MessagePage::new(StatusCode::TOO_MANY_REQUESTS, "Too many attempts", message);
    page.items.push(format!("Try again in {seconds} s."));
    let mut response = page.into_response();
    if let Ok(value) = HeaderValue::from_str(&seconds.to_string()) {
        response.headers_mut().insert(header::RETRY_AFTER, value);
    }
    response
}

fn unavailable() -> Response {
    metrics::counter!("vexil_database_errors_total", "surface" => "console").increment(1);
    let mut page = MessagePage::new(
        StatusCode::SERVICE_UNAVAILABLE,
        "The database is not answering",
        "vexil cannot read or record flags right now, so the console shows nothing rather than something stale. Nothing was changed. Meanwhile:",
    );
    page.items = BREAK_GLASS.iter().map(|&item| item.to_owned()).collect();
    page.into_response()
}
