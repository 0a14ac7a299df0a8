//! The page between a flip's click and its write, drawn as the answer to the flip's
//! own POST (so the pending flip, its reason included, never travels in a GET URL):
//!
//! - the confirmation of a flip in prod (or an env that asks for a reason): it names
//!   the flag, the env and the change, says what the flip will and will not do
//!   (master switch off: it sets the row only), and asks for the reason;
//! - the TOTP code of a flip that needs elevation the session lacks;
//! - the same page again, with what was wrong (reason missing, code refused).
//!
//! Its form posts the same flip again with `confirm=yes`, still checked against the
//! value the operator saw. And the conflict page: a flip from a stale page, with who
//! changed the flag, when and why, and the flip offered again from the value now.

use askama::Template;
use axum::http::{HeaderValue, StatusCode};
use axum::response::Response;
use vexil_app::{Actor, AppError, FlagState, FlagStates};
use vexil_core::{Env, FlagKey};

use crate::console::error::ConsoleError;
use crate::console::flag_row::{FlagRow, RowContext};
use crate::console::page::{self, Chrome, on_off, utc};
use crate::console::session::Operator;
use crate::state::ServerState;

/// A flip as the operator asked for it, not yet written.
#[derive(Debug, Clone)]
pub(crate) struct PendingFlip {
    pub(crate) flag: FlagKey,
    pub(crate) env: Env,
    /// What the operator's page showed as the flip's start (the row, else the value).
    pub(crate) from: bool,
    pub(crate) to: bool,
    pub(crate) reason: String,
    /// The flags list's filters, to come back to.
    pub(crate) list: String,
    /// `list` or `flag`: the page to come back to.
    pub(crate) back: String,
}

impl PendingFlip {
    fn to_text(&self) -> &'static str {
        on_off(self.to)
    }

    fn start_text(&self) -> &'static str {
        on_off(self.from)
    }
}

#[derive(Template)]
#[template(path = "flip_step.html")]
struct StepPage {
    chrome: Chrome,
    csrf: String,
    flip: PendingFlip,
    /// The flag as it is now, drawn as its row is.
    row: FlagRow,
    reason_required: bool,
    needs_totp: bool,
    enrolled: bool,
    minutes: u64,
    error: Option<String>,
}

/// The confirmation or code page of `flip`, drawn from `states` (every env's, as the
/// flip's handler read them), with `error` (then 422) if one was made.
pub(crate) async fn step_page(
    state: &ServerState,
    operator: &Operator,
    flip: PendingFlip,
    states: &FlagStates,
    needs_totp: bool,
    error: Option<String>,
    from_htmx: bool,
) -> Result<Response, ConsoleError> {
    let current = states
        .states
        .iter()
        .find(|s| s.key == flip.flag.as_str() && s.env == flip.env)
        .ok_or_else(|| AppError::UnknownFlag {
            key: flip.flag.to_string(),
        })?;
    let open = std::collections::HashMap::new();
    let cx = RowContext::new(state, operator, &flip.env, states, &open);
    let page = StepPage {
        chrome: operator.chrome("flags").in_env(&flip.env),
        csrf: operator.visitor.csrf().to_owned(),
        row: FlagRow::new(current, &cx),
        reason_required: state.config.reason_required(&flip.env),
        needs_totp,
        enrolled: !needs_totp || state.app.has_totp(operator.actor.name()).await?,
        minutes: state.app.elevation_window().as_secs().div_ceil(60),
        error,
        flip,
    };
    let status = page::status_for(&page.error);
    Ok(whole_page(page::html(status, &page), from_htmx))
}

/// A page that replaces the whole document even when htmx asked for a row.
pub(crate) fn whole_page(mut response: Response, from_htmx: bool) -> Response {
    if from_htmx {
        let headers = response.headers_mut();
        headers.insert("hx-retarget", HeaderValue::from_static("body"));
        headers.insert("hx-reswap", HeaderValue::from_static("innerHTML"));
    }
    response
}

/// A flip refused because the page was stale: what is true now, who made it so,
/// when and why; nothing was written; the flip offered again from the value now.
#[derive(Template)]
#[template(path = "conflict.html")]
struct ConflictPage {
    chrome: Chrome,
    csrf: String,
    flag: String,
    env: String,
    /// "on" or "off", as the page showed it and as it is.
    expected: &'static str,
    current: &'static str,
    source: &'static str,
    updated_by: Option<String>,
    updated_at: Option<String>,
    /// The reason the last change gave, if the operator may read the audit log.
    reason: Option<String>,
    /// The flag now, with its flip from the value now (drawn by `flip_form.html`).
    row: FlagRow,
    list_query: String,
}

/// The conflict page of a refused flip, or the error as any other (`error` is not a
/// conflict, or the flag vanished meanwhile).
pub(crate) async fn conflict(
    state: &ServerState,
    operator: &Operator,
    env: &Env,
    error: AppError,
) -> Result<Response, ConsoleError> {
    let AppError::Conflict {
        flag,
        env: env_name,
        expected,
        current,
        current_source,
        updated_by,
        updated_at,
    } = error
    else {
        return Err(error.into());
    };
    let states = state.app.flag_states(None).await?;
    let Some(now) = states
        .states
        .iter()
        .find(|s| s.key == flag && s.env == *env)
    else {
        return Err(AppError::UnknownFlag { key: flag }.into());
    };
    let reason = last_reason(state, &operator.actor, now).await?;
    let open = super::flags_page::open_promotions(state).await?;
    let cx = RowContext::new(state, operator, env, &states, &open);
    let page = ConflictPage {
        chrome: operator.chrome("flags").in_env(env),
        csrf: operator.visitor.csrf().to_owned(),
        flag: flag.clone(),
        env: env_name,
        expected: on_off(expected),
        current: on_off(current),
        source: current_source.as_str(),
        updated_by,
        updated_at: updated_at.map(utc),
        reason,
        row: FlagRow::new(now, &cx).on_flag_page(),
        list_query: String::new(),
    };
    Ok(page::html(StatusCode::CONFLICT, &page))
}

/// The reason given with the row's last change by vexil, if it gave one and `actor`
/// may read the audit log.
pub(crate) async fn last_reason(
    state: &ServerState,
    actor: &Actor,
    flag: &FlagState,
) -> Result<Option<String>, ConsoleError> {
    let Some(id) = flag.audit_id else {
        return Ok(None);
    };
    if actor.may(vexil_core::Action::ViewAudit).is_err() {
        return Ok(None);
    }
    let row = state.app.audit_entry(actor, id).await?;
    Ok(row.and_then(|row| reason_of(&row.payload)))
}

/// A flip's or a promotion's `reason`, from its audit payload.
pub(crate) fn reason_of(payload: &serde_json::Value) -> Option<String> {
    payload
        .get("reason")
        .and_then(serde_json::Value::as_str)
        .filter(|r| !r.is_empty())
        .map(str::to_owned)
}
