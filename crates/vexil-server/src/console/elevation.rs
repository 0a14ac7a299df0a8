//! TOTP elevation: `GET/POST /console/elevate`. A fresh code elevates the session for
//! the app's elevation window (10 minutes by default), under a new session id, then
//! goes back to `next`. A flip that needs a code asks for it on its own page
//! (`flip_step.rs`), which posts the flip again with the code.

use askama::Template;
use axum::Form;
use axum::extract::{Query, State};
use axum::response::{IntoResponse, Redirect, Response};
use serde::Deserialize;
use vexil_app::{AppError, ErrorKind, TotpCode};

use crate::console::error::ConsoleError;
use crate::console::page::{self, Chrome};
use crate::console::session::{Operator, safe_next};
use crate::state::ServerState;

#[derive(Debug, Default, Deserialize)]
pub(crate) struct ElevateQuery {
    next: Option<String>,
}

#[derive(Debug, Default, Deserialize)]
pub(crate) struct ElevateForm {
    csrf: Option<String>,
    totp: Option<String>,
    next: Option<String>,
}

#[derive(Template)]
#[template(path = "elevate.html")]
struct ElevatePage {
    chrome: Chrome,
    csrf: String,
    next: String,
    /// Elevation grants the role something (superadmin): else the page says so.
    helps: bool,
    role: &'static str,
    enrolled: bool,
    minutes: u64,
    error: Option<String>,
}

pub(crate) async fn page(
    State(state): State<ServerState>,
    operator: Operator,
    Query(query): Query<ElevateQuery>,
) -> Result<Response, ConsoleError> {
    page_for(&state, &operator, query.next.as_deref(), None).await
}

/// The elevation page, for a page to return to, with an error from a refused code
/// (then status 422).
async fn page_for(
    state: &ServerState,
    operator: &Operator,
    next: Option<&str>,
    error: Option<String>,
) -> Result<Response, ConsoleError> {
    let enrolled = state.app.has_totp(operator.actor.name()).await?;
    let status = page::status_for(&error);
    let page = ElevatePage {
        chrome: operator.chrome(""),
        csrf: operator.visitor.csrf().to_owned(),
        next: safe_next(next).unwrap_or_default().to_owned(),
        helps: operator.actor.elevation_helps(),
        role: operator.actor.role().as_str(),
        enrolled,
        minutes: state.app.elevation_window().as_secs().div_ceil(60),
        error,
    };
    Ok(page::html(status, &page))
}

/// Elevates `operator`'s session with `code` (limited per account, audited either
/// way). A refused code is `Ok(Some(error))`, for the page to show.
async fn try_code(
    state: &ServerState,
    operator: &mut Operator,
    code: Option<TotpCode>,
) -> Result<Option<AppError>, ConsoleError> {
    let Some(code) = code else {
        return Ok(Some(AppError::TotpInvalid));
    };
    state.limit_account("totp", operator.actor.name())?;
    let from = operator.visitor.from();
    match state.app.elevate(&operator.actor, &code, &from).await {
        Ok(elevation) => {
            operator.keep(Some(elevation)).await?;
            Ok(None)
        }
        // A code refused, or an account with no TOTP to check it against: said on
        // the page, where the operator typed the code.
        Err(error @ AppError::TotpNotEnrolled { .. }) => Ok(Some(error)),
        Err(error) if error.kind() == ErrorKind::TotpRejected => Ok(Some(error)),
        Err(error) => Err(error.into()),
    }
}

pub(crate) async fn submit(
    State(state): State<ServerState>,
    mut operator: Operator,
    Form(form): Form<ElevateForm>,
) -> Result<Response, ConsoleError> {
    operator.visitor.check_csrf(form.csrf.as_deref())?;
    let code = TotpCode::from_field(form.totp.as_deref());
    match try_code(&state, &mut operator, code).await? {
        None => {
            let target = safe_next(form.next.as_deref()).unwrap_or("/console/flags");
            Ok(Redirect::to(target).into_response())
        }
        Some(error) => {
            page_for(
                &state,
                &operator,
                form.next.as_deref(),
                Some(error.to_string()),
            )
            .await
        }
    }
}
