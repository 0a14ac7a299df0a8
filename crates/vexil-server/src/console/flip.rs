//! `POST /console/flags/<flag_key>/flip`: the flip form of each flag row. It carries
//! the CSRF token, the env, the value the operator's page started from (`from`: the
//! row, else the value; the flip's conflict check compares it), the value asked for
//! (`to`), a reason, and where to come back to (`list`: the list's filters; `back`:
//! the list or the flag's page).
//!
//! A flip in an env that confirms (prod, and any env that asks for a reason) first
//! answers its confirmation page, whose form posts the flip again with
//! `confirm=yes`; a reason the env asks for is required there. A flip that needs
//! elevation the session lacks answers the same page with a code field. Neither
//! writes anything; neither puts the pending flip in a URL (`flip_step.rs`).
//!
//! Done, it answers POST-redirect-GET back to the row, whose page then says what the
//! flip did (`flipped=`); with htmx it answers the updated row and a notice for the
//! page's live region. A stale page answers the conflict page.

use axum::Form;
use axum::extract::{Path, State};
use axum::http::{HeaderMap, StatusCode};
use axum::response::{IntoResponse, Redirect, Response};
use serde::Deserialize;
use vexil_app::{AppError, ErrorKind, FlagState, FlagStates, Flip, parse_flag_key};
use vexil_core::audit::{self, Via};
use vexil_core::message::one_line;
use vexil_core::{Action, Clearance, Denied, Env, check_role};

use crate::console::error::{ConsoleError, limited, wait};
use crate::console::flag_row::{FlagRow, FlagRowFragment, RowContext, flip_notice};
use crate::console::flags_page::{ListView, open_promotions};
use crate::console::flip_step::{self, PendingFlip, step_page};
use crate::console::page;
use crate::console::session::Operator;
use crate::state::ServerState;

#[derive(Debug, Default, Deserialize)]
pub(crate) struct FlipForm {
    csrf: Option<String>,
    env: Option<String>,
    from: Option<String>,
    to: Option<String>,
    reason: Option<String>,
    totp: Option<String>,
    /// The flags list's filters, to come back to (`ListView`).
    list: Option<String>,
    /// `flag` to come back to the flag's page; else the list.
    back: Option<String>,
    /// `yes` from the confirmation page.
    confirm: Option<String>,
}

pub(crate) async fn submit(
    State(state): State<ServerState>,
    Path(flag_key): Path<String>,
    headers: HeaderMap,
    mut operator: Operator,
    Form(form): Form<FlipForm>,
) -> Result<Response, ConsoleError> {
    operator.visitor.check_csrf(form.csrf.as_deref())?;
    let app = &state.app;
    let key = parse_flag_key(&flag_key)?;
    let env = app.envs().parse(form.env.as_deref().unwrap_or_default())?;
    let from = boolean("from", form.from.as_deref())?;
    let to = match form.to.as_deref() {
        Some(text) => boolean("to", Some(text))?,
        None => !from,
    };
    // A reason that cannot be kept is named on the flip's page (422), as a missing
    // one is; the box shows it escaped, never a raw control or bidi character.
    let (reason, reason_error) = match audit::reason(form.reason.as_deref()) {
        Ok(reason) => (reason, None),
        Err(error) => (None, Some(error)),
    };
    let from_htmx = headers.get("hx-request").is_some_and(|v| v == "true");
    let pending = PendingFlip {
        flag: key.clone(),
        env: env.clone(),
        from,
        to,
        reason: match reason_error {
            Some(_) => {
                let typed = form.reason.as_deref().unwrap_or_default().trim();
                one_line(
                    &typed
                        .chars()
                        .take(audit::MAX_REASON_CHARS)
                        .collect::<String>(),
                )
            }
            None => reason.unwrap_or_default().to_owned(),
        },
        list: ListView::parse(form.list.as_deref().unwrap_or_default()).query(),
        back: if form.back.as_deref() == Some("flag") {
            "flag"
        } else {
            "list"
        }
        .to_owned(),
    };
    let confirmed = form.confirm.as_deref() == Some("yes");
    let confirms = state.config.confirms(&env);
    let reason_missing =
        reason_error.is_none() && reason.is_none() && state.config.reason_required(&env);
    if (confirms && !confirmed) || reason_missing || reason_error.is_some() {
        // The flag as it is now: a page already stale gets the conflict at once.
        let states = flag_states(&state, &operator).await?;
        let current = find(&states.states, &key, &env)?;
        // A role that may never flip it is told so now, not after confirming.
        if let Err(denied @ Denied::Forbidden { .. }) =
            check_role(operator.actor.role(), Action::Flip(current.risk))
        {
            return Err(AppError::Denied(denied).into());
        }
        if current.drift.is_none() && current.row_or_value() != from {
            return conflict(&state, &operator, &env, &key, from, current).await;
        }
        let needs_totp = needs_totp(&operator, current);
        let error = match reason_error {
            Some(error) => Some(format!("{error}. Nothing was changed.")),
            None => (confirmed && reason_missing).then(|| {
                format!("A reason is required for a flip in {env}: say why (an incident, a ticket, what you saw). Nothing was changed.")
            }),
        };
        return step_page(
            &state, &operator, pending, &states, needs_totp, error, from_htmx,
        )
        .await;
    }
    let code = match operator.code(&state, form.totp.as_deref()) {
        Ok(code) => code,
        // Too many codes for this account: the flip's page again, still pending,
        // with the one wait (429, `Retry-After`).
        Err(ConsoleError::RateLimited { what, retry_after }) => {
            return too_many_codes(&state, &operator, pending, what, retry_after, from_htmx).await;
        }
        Err(error) => return Err(error),
    };
    let flip = Flip {
        flag: &key,
        env: &env,
        expected_from: Some(from),
        to,
        reason,
        via: Via::Console,
    };
    let address = operator.visitor.from();
    let step_up = operator.step_up(code.as_ref(), &address);
    let flipped = match app.flip(&operator.actor, &flip, step_up).await {
        Ok(flipped) => flipped,
        Err(AppError::Denied(Denied::ElevationRequired { .. })) => {
            let states = flag_states(&state, &operator).await?;
            return step_page(&state, &operator, pending, &states, true, None, from_htmx).await;
        }
        // A wrong code (audited) shows the page again, the flip still pending.
        Err(error) if error.kind() == ErrorKind::TotpRejected => {
            let states = flag_states(&state, &operator).await?;
            let message = Some(format!("{error}. Nothing was changed."));
            return step_page(
                &state, &operator, pending, &states, true, message, from_htmx,
            )
            .await;
        }
        // Locked after too many wrong codes: the same, with the lock's wait.
        Err(AppError::ElevationLocked { retry_after }) => {
            let what = "Too many wrong TOTP codes for this account.";
            return too_many_codes(&state, &operator, pending, what, retry_after, from_htmx).await;
        }
        Err(error @ AppError::Conflict { .. }) => {
            let page = flip_step::conflict(&state, &operator, &env, error).await?;
            return Ok(page);
        }
        Err(error) => return Err(error.into()),
    };
    operator.keep(flipped.elevation).await?;
    if from_htmx && pending.back == "list" {
        let states = app.flag_states(None).await?;
        let now = find(&states.states, &key, &env)?;
        let open = open_promotions(&state).await?;
        let cx = RowContext::new(&state, &operator, &env, &states, &open);
        let fragment = FlagRowFragment {
            row: FlagRow::new(now, &cx).flipped(),
            csrf: operator.visitor.csrf().to_owned(),
            list_query: pending.list.clone(),
            notice: Some(flip_notice(now)),
        };
        return Ok(page::html(StatusCode::OK, &fragment));
    }
    let target = if pending.back == "flag" {
        format!(
            "/console/flags/{key}?{}#env-{env}",
            page::query(&[("flipped", Some(env.as_str()))])
        )
    } else {
        let filters = &pending.list;
        format!(
            "/console/flags?{}{}{filters}#flag-{key}",
            page::query(&[("env", Some(env.as_str())), ("flipped", Some(key.as_str()))]),
            if filters.is_empty() { "" } else { "&" },
        )
    };
    Ok(Redirect::to(&target).into_response())
}

/// The flip's page again, still pending, refused for too many codes: `what`, then
/// the one wait (429, `Retry-After`).
async fn too_many_codes(
    state: &ServerState,
    operator: &Operator,
    pending: PendingFlip,
    what: &str,
    retry_after: std::time::Duration,
    from_htmx: bool,
) -> Result<Response, ConsoleError> {
    let states = flag_states(state, operator).await?;
    let message = format!(
        "{what} Try again in {}: nothing was changed, and the flip waits here.",
        wait(retry_after)
    );
    let mut page = step_page(
        state,
        operator,
        pending,
        &states,
        true,
        Some(message),
        from_htmx,
    )
    .await?;
    *page.status_mut() = StatusCode::TOO_MANY_REQUESTS;
    Ok(limited(page, retry_after))
}

/// The conflict page for a flip from `from` when `current` holds something else.
async fn conflict(
    state: &ServerState,
    operator: &Operator,
    env: &Env,
    key: &vexil_core::FlagKey,
    from: bool,
    current: &FlagState,
) -> Result<Response, ConsoleError> {
    let error = AppError::Conflict {
        flag: key.to_string(),
        env: env.to_string(),
        expected: from,
        current: current.row_or_value(),
        current_source: current.source,
        updated_by: current.updated_by.clone(),
        updated_at: current.updated_at,
    };
    flip_step::conflict(state, operator, env, error).await
}

/// The role may flip the flag only with an elevation the session lacks.
fn needs_totp(operator: &Operator, flag: &FlagState) -> bool {
    check_role(operator.actor.role(), Action::Flip(flag.risk)) == Ok(Clearance::NeedsElevation)
        && !operator.elevated()
}

/// Every flag's state in every env now (the flip's page draws a staging row with
/// prod's value), for a role that may see the flags: read once per answer.
async fn flag_states(state: &ServerState, operator: &Operator) -> Result<FlagStates, ConsoleError> {
    operator.actor.may(Action::ViewFlags)?;
    Ok(state.app.flag_states(None).await?)
}

fn find<'s>(
    states: &'s [FlagState],
    key: &vexil_core::FlagKey,
    env: &Env,
) -> Result<&'s FlagState, ConsoleError> {
    states
        .iter()
        .find(|s| s.key == key.as_str() && s.env == *env)
        .ok_or_else(|| {
            AppError::UnknownFlag {
                key: key.to_string(),
            }
            .into()
        })
}

/// `true`/`false` (what the form sends), or a clear refusal naming the field.
fn boolean(field: &str, text: Option<&str>) -> Result<bool, ConsoleError> {
    match text.map(str::trim) {
        Some("true") => Ok(true),
        Some("false") => Ok(false),
        Some(other) => Err(ConsoleError::BadRequest(format!(
            "{field}={other:?}: expected true or false"
        ))),
        None => Err(ConsoleError::BadRequest(format!(
            "{field} is missing: the form must say which value you saw"
        ))),
    }
}
