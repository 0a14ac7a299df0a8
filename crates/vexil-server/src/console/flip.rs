//! `POST /console/flags/<flag_key>/flip`: the form on each flag row. It carries the
//! CSRF token, the env, the value the operator saw (`from`), the value asked for
//! (`to`), an optional reason, and a TOTP code when the flag needs elevation.
//!
//! Without JavaScript it answers POST-redirect-GET back to the row; with htmx it
//! answers the updated row alone. A flag that needs elevation the session lacks goes
//! to the elevation page, which posts the same flip again with a code.
//!
//! Each form carries the list's filters (`ListView`), so the redirect returns to the
//! same filtered list.

use axum::Form;
use axum::extract::{Path, State};
use axum::http::{HeaderMap, StatusCode};
use axum::response::{IntoResponse, Redirect, Response};
use serde::Deserialize;
use vexil_app::{AppError, ErrorKind, Flip, parse_flag_key};
use vexil_core::Denied;
use vexil_core::audit::{self, Via};

use crate::console::elevation::{self, PendingFlip};
use crate::console::error::ConsoleError;
use crate::console::flags_page::{FlagRow, FlagRowFragment, ListView, open_promotions};
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
    let reason = audit::reason(form.reason.as_deref())
        .map_err(|e| ConsoleError::BadRequest(e.to_string()))?;
    let list = ListView::parse(form.list.as_deref().unwrap_or_default());
    let code = operator.code(&state, form.totp.as_deref())?;
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
    let pending = || PendingFlip::new(&state, &key, &env, from, to, reason);
    let flipped = match app.flip(&operator.actor, &flip, step_up).await {
        Ok(flipped) => flipped,
        Err(AppError::Denied(Denied::ElevationRequired { .. })) => {
            let target = format!("/console/elevate?{}", pending().query());
            return Ok(Redirect::to(&target).into_response());
        }
        // A wrong code (audited) shows the elevation page again, the flip still
        // pending.
        Err(error) if error.kind() == ErrorKind::TotpRejected => {
            let message = Some(error.to_string());
            return elevation::page_for(&state, &operator, Some(pending()), None, message).await;
        }
        Err(error) => return Err(error.into()),
    };
    operator.keep(flipped.elevation).await?;
    if headers.get("hx-request").is_some_and(|v| v == "true") {
        let states = app.flag_states(Some(&env)).await?;
        let state_now = states
            .states
            .iter()
            .find(|s| s.key == key.as_str())
            .ok_or_else(|| AppError::UnknownFlag {
                key: key.to_string(),
            })?;
        let open = open_promotions(&state).await?;
        let fragment = FlagRowFragment {
            row: FlagRow::new(state_now, &operator.actor, operator.elevated())
                .with_promotion(&open),
            csrf: operator.visitor.csrf().to_owned(),
            env: env.to_string(),
            list_query: list.query(),
        };
        return Ok(page::html(StatusCode::OK, &fragment));
    }
    let filters = list.query();
    let target = format!(
        "/console/flags?{}{}{filters}#flag-{key}",
        page::query(&[("env", Some(env.as_str()))]),
        if filters.is_empty() { "" } else { "&" },
    );
    Ok(Redirect::to(&target).into_response())
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
