//! TOTP elevation: `GET/POST /console/elevate`. A fresh code elevates the session for
//! `ConsoleConfig::elevation` (10 minutes by default), under a new session id.
//!
//! Asked for by a flip, the page shows that flip and posts it again, code included,
//! to the flip route: the operator comes back to the same flip, which is still
//! checked against the value they saw.

use askama::Template;
use axum::Form;
use axum::extract::{Query, State};
use axum::response::{IntoResponse, Redirect, Response};
use serde::Deserialize;
use vexil_app::{AppError, ErrorKind, TotpCode};
use vexil_core::{Action, Env, FlagDecl, FlagKey, Risk};

use crate::console::error::ConsoleError;
use crate::console::page::{self, Chrome, on_off};
use crate::console::session::{Operator, safe_next};
use crate::state::ServerState;

/// A flip waiting for elevation.
#[derive(Debug, Clone)]
pub(crate) struct PendingFlip {
    pub(crate) flag: String,
    pub(crate) risk: &'static str,
    pub(crate) env: String,
    pub(crate) from: bool,
    pub(crate) to: bool,
    pub(crate) reason: String,
}

impl PendingFlip {
    /// A flip of `key` in `env` waiting for elevation.
    pub(crate) fn new(
        state: &ServerState,
        key: &FlagKey,
        env: &Env,
        from: bool,
        to: bool,
        reason: Option<&str>,
    ) -> PendingFlip {
        let risk = state
            .app
            .flags()
            .get(key.as_str())
            .map_or(Risk::High, FlagDecl::risk);
        PendingFlip {
            flag: key.to_string(),
            risk: risk.as_str(),
            env: env.to_string(),
            from,
            to,
            reason: reason.unwrap_or_default().to_owned(),
        }
    }

    /// The flip as the elevation page's query.
    pub(crate) fn query(&self) -> String {
        page::query(&[
            ("flag", Some(&self.flag)),
            ("env", Some(&self.env)),
            ("from", Some(if self.from { "true" } else { "false" })),
            ("to", Some(if self.to { "true" } else { "false" })),
            ("reason", Some(&self.reason)),
        ])
    }

    fn before_text(&self) -> &'static str {
        on_off(self.from)
    }

    fn after_text(&self) -> &'static str {
        on_off(self.to)
    }
}

#[derive(Debug, Default, Deserialize)]
pub(crate) struct ElevateQuery {
    next: Option<String>,
    flag: Option<String>,
    env: Option<String>,
    from: Option<String>,
    to: Option<String>,
    reason: Option<String>,
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
    flip: Option<PendingFlip>,
    next: String,
    enrolled: bool,
    minutes: u64,
    error: Option<String>,
}

pub(crate) async fn page(
    State(state): State<ServerState>,
    operator: Operator,
    Query(query): Query<ElevateQuery>,
) -> Result<Response, ConsoleError> {
    let flip = match query.flag.as_deref() {
        Some(key) => {
            // Only a role that may flip the flag is shown its pending flip.
            operator.actor.may(Action::ViewFlags)?;
            let flags = state.app.flags();
            let decl = flags.get(key).ok_or_else(|| AppError::UnknownFlag {
                key: key.to_owned(),
            })?;
            operator.actor.may(Action::Flip(decl.risk()))?;
            let env = state
                .app
                .envs()
                .parse(query.env.as_deref().unwrap_or_default())?;
            let from = query.from.as_deref() == Some("true");
            Some(PendingFlip {
                flag: decl.key().to_string(),
                risk: decl.risk().as_str(),
                env: env.to_string(),
                from,
                to: query.to.as_deref().map_or(!from, |to| to == "true"),
                reason: query.reason.unwrap_or_default(),
            })
        }
        None => None,
    };
    page_for(&state, &operator, flip, query.next.as_deref(), None).await
}

/// The elevation page, for a pending flip or a page to return to, with an error
/// from a refused code (then status 422).
pub(crate) async fn page_for(
    state: &ServerState,
    operator: &Operator,
    flip: Option<PendingFlip>,
    next: Option<&str>,
    error: Option<String>,
) -> Result<Response, ConsoleError> {
    let enrolled = state.app.has_totp(operator.actor.name()).await?;
    let status = page::status_for(&error);
    let page = ElevatePage {
        chrome: operator.chrome(""),
        csrf: operator.visitor.csrf().to_owned(),
        flip,
        next: safe_next(next).unwrap_or_default().to_owned(),
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
                None,
                form.next.as_deref(),
                Some(error.to_string()),
            )
            .await
        }
    }
}
