//! Signing in and out: `GET/POST /console/sign-in`, `POST /console/sign-out`.
//!
//! The sign-in form's CSRF token is stateless (`vexil_app::FormKey`): the browser
//! holds a random value in the `vexil_sign_in` cookie and the form carries its MAC,
//! so a visitor who has not signed in costs no session row (thousands of anonymous
//! page loads used to write thousands). The session starts at sign-in.
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
use axum::http::{HeaderMap, HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Redirect, Response};
use secrecy::SecretString;
use serde::Deserialize;
use tower_sessions::cookie::{Cookie, SameSite};
use vexil_app::{Actor, AppError, TotpCode};
use vexil_core::Action;

use crate::console::error::{self, ConsoleError};
use crate::console::page::{self, Chrome};
use crate::console::session::{Operator, Visitor, new_token, safe_next};
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
    /// A TOTP code, asked for when the account is under attack.
    code: Option<String>,
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
    /// Ask for a TOTP code too: the account is under attack (`App::sign_in`).
    ask_code: bool,
}

/// The cookie that holds the sign-in form's random value.
const FORM_COOKIE: &str = "vexil_sign_in";

/// The browser's sign-in form value: the `vexil_sign_in` cookie, if it sent a
/// well-formed one (64 hex digits, as `new_token` makes them).
fn form_value(headers: &HeaderMap) -> Option<String> {
    headers
        .get_all(header::COOKIE)
        .iter()
        .filter_map(|value| value.to_str().ok())
        .flat_map(|value| value.split(';'))
        .filter_map(|pair| pair.trim().split_once('='))
        .find(|(name, _)| *name == FORM_COOKIE)
        .map(|(_, value)| value.to_owned())
        .filter(|value| value.len() == 64 && value.bytes().all(|b| b.is_ascii_hexdigit()))
}

/// The cookie that gives the browser `value`: for the sign-in path only, never sent
/// cross-site, unreadable to scripts, and gone when the browser closes.
fn form_cookie(value: &str, secure: bool) -> HeaderValue {
    let cookie = Cookie::build((FORM_COOKIE, value.to_owned()))
        .path("/console/sign-in")
        .http_only(true)
        .same_site(SameSite::Strict)
        .secure(secure)
        .build();
    HeaderValue::from_str(&cookie.to_string()).unwrap_or(HeaderValue::from_static(""))
}

impl SignInPage {
    /// The form again after a refused attempt: the name typed stays, the password
    /// never comes back, and `error` says why.
    fn again(csrf: &str, next: Option<String>, name: &str, error: String) -> SignInPage {
        SignInPage {
            chrome: Chrome::anonymous(),
            csrf: csrf.to_owned(),
            next: next.unwrap_or_default(),
            // As typed, but with what free text may not hold escaped (the record of
            // the attempt shows it so too): no raw NUL or bidi control in the page.
            name: vexil_core::message::one_line(name),
            notice: None,
            error: Some(error),
            ask_code: false,
        }
    }

    fn asking_code(mut self) -> SignInPage {
        self.ask_code = true;
        self
    }
}

pub(crate) async fn page(
    State(state): State<ServerState>,
    headers: HeaderMap,
    Query(query): Query<SignInQuery>,
) -> Result<Response, ConsoleError> {
    // The browser's value if it has one (another tab's form stays good), else a new
    // one. Nothing is stored.
    let (value, fresh) = match form_value(&headers) {
        Some(value) => (value, false),
        None => (new_token()?, true),
    };
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
        csrf: state.app.form_key().token(&value),
        next: safe_next(query.next.as_deref())
            .unwrap_or_default()
            .to_owned(),
        name: String::new(),
        notice,
        error: None,
        ask_code: false,
    };
    let mut response = page::html(StatusCode::OK, &page);
    if fresh {
        response.headers_mut().append(
            header::SET_COOKIE,
            form_cookie(&value, state.config.secure_cookies),
        );
    }
    Ok(response)
}

pub(crate) async fn submit(
    State(state): State<ServerState>,
    visitor: Visitor,
    headers: HeaderMap,
    Form(form): Form<SignInForm>,
) -> Result<Response, ConsoleError> {
    let value = form_value(&headers).unwrap_or_default();
    let csrf = form.csrf.unwrap_or_default();
    if !state.app.form_key().check(&value, &csrf) {
        return Err(ConsoleError::Csrf);
    }
    let name = form.name.unwrap_or_default();
    let next = safe_next(form.next.as_deref()).map(str::to_owned);
    // The address's allowance first: an account's is not spent by attempts its
    // address may not make.
    let refused = match visitor.ip.map(|ip| state.address_attempt(ip)) {
        Some(Err(wait)) => Some(wait),
        _ => state.sign_in_attempt(visitor.ip, name.trim()).err(),
    };
    if let Some(wait) = refused {
        // The account may be locked for longer: the page names the one wait that
        // lets the next attempt through.
        let locked = state.app.sign_in_lock(name.trim(), &visitor.from()).await?;
        let wait = locked.map_or(wait, |locked| locked.max(wait));
        return Ok(too_many(&csrf, next, &name, wait));
    }
    let password = SecretString::from(form.password.unwrap_or_default());
    let code = TotpCode::from_field(form.code.as_deref());
    match state
        .app
        .sign_in(name.trim(), &password, code.as_ref(), &visitor.from())
        .await
    {
        Ok(actor) => {
            let now = state.app.now();
            visitor.sign_in(&actor, now).await?;
            let target = next.unwrap_or_else(|| landing(&actor).to_owned());
            Ok(Redirect::to(&target).into_response())
        }
        Err(AppError::BadCredentials) => {
            // With a code asked for, the answer does not say which of the three
            // was wrong.
            let (message, asked) = match form.code {
                Some(_) => ("wrong account name, password or code".to_owned(), true),
                None => (AppError::BadCredentials.to_string(), false),
            };
            let mut page = SignInPage::again(&csrf, next, &name, message);
            page.ask_code = asked;
            Ok(page::html(StatusCode::UNAUTHORIZED, &page))
        }
        Err(AppError::SignInNeedsCode) => {
            let message = "This account needs a code from its authenticator app as well, for now: nothing was checked.";
            let page = SignInPage::again(&csrf, next, &name, message.to_owned()).asking_code();
            Ok(page::html(StatusCode::UNAUTHORIZED, &page))
        }
        Err(AppError::SignInLocked { retry_after }) => {
            Ok(too_many(&csrf, next, &name, retry_after))
        }
        Err(AppError::Busy { retry_after }) => {
            let message = format!(
                "vexil is busy checking other sign-ins; nothing was checked. Try again in {}.",
                error::wait(retry_after)
            );
            let page = SignInPage::again(&csrf, next, &name, message);
            Ok(error::limited(
                page::html(StatusCode::SERVICE_UNAVAILABLE, &page),
                retry_after,
            ))
        }
        Err(error) => Err(error.into()),
    }
}

/// The form again, refused for too many attempts: one message, one wait (429, with
/// `Retry-After`). Nothing was checked, so nothing says whether the name exists.
fn too_many(csrf: &str, next: Option<String>, name: &str, wait: Duration) -> Response {
    let message = format!(
        "Too many sign-in attempts. Try again in {}.",
        error::wait(wait)
    );
    let page = SignInPage::again(csrf, next, name, message);
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
