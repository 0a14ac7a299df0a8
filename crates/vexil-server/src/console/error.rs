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
use vexil_app::{AppError, ErrorKind};
use vexil_core::Denied;
use vexil_core::message::error_chain;

use crate::console::page::{self, MessagePage};

#[derive(Debug, thiserror::Error)]
pub(crate) enum ConsoleError {
    /// No signed-in session (or it ran out): sign in, then come back to `next`.
    #[error("sign-in required")]
    /// `dropped`: the request was a form's, not sent (its session had ended).
    SignInRequired {
        next: String,
        expired: bool,
        dropped: bool,
    },
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
            ConsoleError::SignInRequired {
                next,
                expired,
                dropped,
            } => {
                let mut target = String::from("/console/sign-in?");
                target.push_str(&page::query(&[
                    ("next", Some(next.as_str())),
                    ("expired", expired.then_some("1")),
                    ("dropped", dropped.then_some("1")),
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
            ConsoleError::App(error) => app_error(&error),
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

/// A use case's refusal or failure as a page: one arm per kind.
fn app_error(error: &AppError) -> Response {
    let message = error.to_string();
    let message_page = |status, title: &str| {
        let mut page = MessagePage::new(status, title, &message);
        page.items.extend(next_step(error).map(str::to_owned));
        page
    };
    let page = |status, title: &str| message_page(status, title).into_response();
    match error.kind() {
        ErrorKind::Invalid => page(StatusCode::BAD_REQUEST, "Bad request"),
        ErrorKind::UnknownEnv => page(StatusCode::BAD_REQUEST, "No such env"),
        ErrorKind::NotFound => page(StatusCode::NOT_FOUND, "Not found"),
        ErrorKind::Unauthenticated => page(StatusCode::UNAUTHORIZED, "Not signed in"),
        // The flags may be what the role may not open: back to the account page.
        ErrorKind::Forbidden => message_page(StatusCode::FORBIDDEN, "Not allowed")
            .back_to_account()
            .into_response(),
        ErrorKind::ElevationRequired => page(StatusCode::FORBIDDEN, "Not allowed"),
        ErrorKind::TotpRejected => page(StatusCode::UNPROCESSABLE_ENTITY, "TOTP"),
        ErrorKind::RateLimited => too_many(
            locked(error, &message),
            error.retry_after().unwrap_or_default(),
        ),
        // A flip's conflict has its own page (`flip_step::conflict`).
        ErrorKind::Conflict => page(StatusCode::CONFLICT, "Conflict"),
        ErrorKind::NoChange => page(StatusCode::CONFLICT, "Nothing to change"),
        ErrorKind::InvalidState => page(StatusCode::CONFLICT, "Not possible now"),
        ErrorKind::ConfirmationRequired => {
            page(StatusCode::UNPROCESSABLE_ENTITY, "Type the confirmation")
        }
        ErrorKind::Unavailable => {
            tracing::error!(error = %error_chain(error), "the database failed");
            unavailable()
        }
        ErrorKind::Internal => {
            tracing::error!(error = %error_chain(error), "console request failed");
            MessagePage::new(
                StatusCode::INTERNAL_SERVER_ERROR,
                "Something went wrong",
                "The console could not answer; the server log has the details.",
            )
            .into_response()
        }
    }
}

/// What the operator can rely on or do next, where the message alone does not say.
fn next_step(error: &AppError) -> Option<&'static str> {
    if matches!(error, AppError::InvalidAppName(_)) {
        Some("No key was created.")
    } else if matches!(error, AppError::Confirmation(_)) {
        Some("Nothing was changed and no TOTP code was used.")
    } else if matches!(
        error,
        AppError::Promotion { .. } | AppError::CannotMark { .. }
    ) {
        Some("Nothing else was changed. The promotions page shows where each one is.")
    } else if matches!(error, AppError::ReconcileRefused { .. }) {
        Some("The reconcile page shows what each live process runs now.")
    } else {
        None
    }
}

/// What a lock refused, without the wait its message names: the page says the one
/// wait itself (`too_many`), as `Retry-After` does.
fn locked<'a>(error: &AppError, message: &'a str) -> &'a str {
    match error {
        AppError::SignInLocked { .. } => "Too many failed sign-ins for this account.",
        AppError::ElevationLocked { .. } => "Too many wrong TOTP codes for this account.",
        _ => message,
    }
}

fn too_many(message: &str, retry_after: Duration) -> Response {
    let mut page = MessagePage::new(StatusCode::TOO_MANY_REQUESTS, "Too many attempts", message);
    page.items
        .push(format!("Try again in {}.", wait(retry_after)));
    limited(page.into_response(), retry_after)
}

/// `response`, a refusal for too many attempts, with `Retry-After` in whole seconds
/// (rounded up: never earlier than the limit allows), counted.
pub(crate) fn limited(mut response: Response, retry_after: Duration) -> Response {
    metrics::counter!("vexil_rate_limited_total", "surface" => "console").increment(1);
    if let Ok(value) = HeaderValue::from_str(&seconds(retry_after).to_string()) {
        response.headers_mut().insert(header::RETRY_AFTER, value);
    }
    response
}

/// A wait as a person reads it: `40 s` under a minute, else whole minutes, rounded up
/// like `Retry-After`.
pub(crate) fn wait(retry_after: Duration) -> String {
    match seconds(retry_after) {
        seconds @ 0..60 => format!("{seconds} s"),
        seconds => format!("{} min", seconds.div_ceil(60)),
    }
}

fn seconds(retry_after: Duration) -> u64 {
    let whole = retry_after.as_secs() + u64::from(retry_after.subsec_nanos() > 0);
    whole.max(1)
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

#[cfg(test)]
mod tests {
    use std::time::Duration;

    use super::wait;

    #[test]
    fn waits_read_in_seconds_then_minutes_rounded_up() {
        for (millis, says) in [
            (0, "1 s"),
            (7_200, "8 s"),
            (59_000, "59 s"),
            (60_000, "1 min"),
            (61_000, "2 min"),
            (900_000, "15 min"),
        ] {
            assert_eq!(wait(Duration::from_millis(millis)), says, "{millis}");
        }
    }
}
