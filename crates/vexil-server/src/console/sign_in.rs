//! Signing in and out: `GET/POST /console/sign-in`, `POST /console/sign-out`.
//!
//! A wrong password, an unknown account and a disabled one get the same page and the
//! same argon2 work (`App::sign_in`). Attempts are limited per client address and per
//! account here (in memory), and per account in the use case (failures counted in the
//! audit log). Whichever refuses, the form comes back with one message and one wait,
//! the longest of the limits that hold, which is also `Retry-After`.

use std::time::Duration;

use askama::Template;
use axum::Form;
use axum::extract::{Query, State};
use axum::http::StatusCode;
use axum::response::{IntoResponse, Redirect, Response};
use secrecy::SecretString;
use serde::Deserialize;
use vexil_app::{Actor, AppError};
use vexil_core::Action;

use crate::console::error::{self, ConsoleError};
use crate::console::page::{self, Chrome};
use crate::console::session::{Operator, Visitor, safe_next};
use crate::state::ServerState;

#[derive(Debug, Default, Deserialize)]
pub(crate) struct SignInQuery {
    next: Option<String>,
    expired: Option<String>,
    /// A form was posted after the session ended: it was not sent.
    dropped: Option<String>,
    signed_out: Option<String>,
}

#[derive(Debug, Default, Deserialize)]
pub(crate) struct SignInForm {
    csrf: Option<String>,
    name: Option<String>,
    password: Option<String>,
    next: Option<String>,
}

#[derive(Debug, Default, Deserialize)]
pub(crate) struct CsrfForm {
    pub(crate) csrf: Option<String>,
}

#[derive(Template)]
#[template(path = "sign_in.html")]
struct SignInPage {
    chrome: Chrome,
    csrf: String,
    next: String,
    name: String,
    notice: Option<&'static str>,
    error: Option<String>,
}

impl SignInPage {
    /// The form again after a refused attempt: the name typed stays, the password
    /// never comes back, and `error` says why.
    fn again(visitor: &Visitor, next: Option<String>, name: &str, error: String) -> SignInPage {
        SignInPage {
            chrome: Chrome::anonymous(),
            csrf: visitor.csrf().to_owned(),
            next: next.unwrap_or_default(),
            // As typed, but with what free text may not hold escaped (the record of
            // the attempt shows it so too): no raw NUL or bidi control in the page.
            name: vexil_core::message::one_line(name),
            notice: None,
            error: Some(error),
        }
    }
}

pub(crate) async fn page(
    mut visitor: Visitor,
    Query(query): Query<SignInQuery>,
) -> Result<Response, ConsoleError> {
    visitor.ensure_csrf().await?;
    let notice = if query.dropped.is_some() {
        Some(
            "Your session ended before your change was sent: nothing was changed. Sign in, look at the page again, and redo it if it is still wanted.",
        )
    } else if query.expired.is_some() {
        Some("Your session ended (it was idle too long, or too old). Sign in again.")
    } else if query.signed_out.is_some() {
        Some("You are signed out.")
    } else {
        None
    };
    let page = SignInPage {
        chrome: Chrome::anonymous(),
        csrf: visitor.csrf().to_owned(),
        next: safe_next(query.next.as_deref())
            .unwrap_or_default()
            .to_owned(),
        name: String::new(),
        notice,
        error: None,
    };
    Ok(page::html(StatusCode::OK, &page))
}

pub(crate) async fn submit(
    State(state): State<ServerState>,
    visitor: Visitor,
    Form(form): Form<SignInForm>,
) -> Result<Response, ConsoleError> {
    visitor.check_csrf(form.csrf.as_deref())?;
    let name = form.name.unwrap_or_default();
    let next = safe_next(form.next.as_deref()).map(str::to_owned);
    // The address's allowance first: an account's is not spent by attempts its
    // address may not make.
    let refused = match visitor.ip.map(|ip| state.address_attempt(ip)) {
        Some(Err(wait)) => Some(wait),
        _ => state.account_attempt("sign-in", name.trim()).err(),
    };
    if let Some(wait) = refused {
        // The account may be locked for longer: the page names the one wait that
        // lets the next attempt through.
        let locked = state.app.sign_in_lock(name.trim()).await?;
        let wait = locked.map_or(wait, |locked| locked.max(wait));
        return Ok(too_many(&visitor, next, &name, wait));
    }
    let password = SecretString::from(form.password.unwrap_or_default());
    match state
        .app
        .sign_in(name.trim(), &password, &visitor.from())
        .await
    {
        Ok(actor) => {
            let now = state.app.now();
            visitor.sign_in(&actor, now).await?;
            let target = next.unwrap_or_else(|| landing(&actor).to_owned());
            Ok(Redirect::to(&target).into_response())
        }
        Err(AppError::BadCredentials) => {
            let page =
                SignInPage::again(&visitor, next, &name, AppError::BadCredentials.to_string());
            Ok(page::html(StatusCode::UNAUTHORIZED, &page))
        }
        Err(AppError::SignInLocked { retry_after }) => {
            Ok(too_many(&visitor, next, &name, retry_after))
        }
        Err(error) => Err(error.into()),
    }
}

/// The form again, refused for too many attempts: one message, one wait (429, with
/// `Retry-After`). Nothing was checked, so nothing says whether the name exists.
fn too_many(visitor: &Visitor, next: Option<String>, name: &str, wait: Duration) -> Response {
    let message = format!(
        "Too many sign-in attempts. Try again in {}.",
        error::wait(wait)
    );
    let page = SignInPage::again(visitor, next, name, message);
    error::limited(page::html(StatusCode::TOO_MANY_REQUESTS, &page), wait)
}

/// Where an account lands after signing in: the flags if it may see them, else its
/// account page (readonly and support may sign in, but not open the flag pages).
fn landing(actor: &Actor) -> &'static str {
    if actor.may(Action::ViewFlags).is_ok() {
        "/console/flags"
    } else {
        "/console/account"
    }
}

pub(crate) async fn sign_out(
    State(state): State<ServerState>,
    operator: Operator,
    Form(form): Form<CsrfForm>,
) -> Result<Response, ConsoleError> {
    operator.visitor.check_csrf(form.csrf.as_deref())?;
    state
        .app
        .sign_out(&operator.actor, &operator.visitor.from())
        .await?;
    operator.visitor.sign_out().await?;
    Ok(Redirect::to("/console/sign-in?signed_out=1").into_response())
}
