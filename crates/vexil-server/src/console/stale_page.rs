//! `GET /console/stale[?days=N]`: stale flags, as `vexil flags list
//! --stale` prints them: on in every env and unchanged for N days (30 by default),
//! never flipped, and DB rows no declaration claims. Read-only: cleaning up is a
//! change to code and the flags file, made by a person.

use askama::Template;
use axum::extract::{Query, State};
use axum::http::StatusCode;
use axum::response::Response;
use serde::Deserialize;
use vexil_core::Action;
use vexil_core::stale::DEFAULT_STALE_DAYS;

use crate::console::error::ConsoleError;
use crate::console::page::{self, Chrome};
use crate::console::session::Operator;
use crate::state::ServerState;

/// The most days one may ask for: ten years, far past any flag's life.
const MAX_DAYS: u32 = 3650;

#[derive(Debug, Default, Deserialize)]
pub(crate) struct StaleQuery {
    days: Option<String>,
}

#[derive(Template)]
#[template(path = "stale.html")]
struct StalePage {
    chrome: Chrome,
    days: u32,
    /// (flag, what makes it stale, in words).
    flags: Vec<(String, Vec<String>)>,
    /// (flag, env, value) of rows no declaration claims.
    undeclared: Vec<(String, String, &'static str)>,
}

pub(crate) async fn show(
    State(state): State<ServerState>,
    operator: Operator,
    Query(query): Query<StaleQuery>,
) -> Result<Response, ConsoleError> {
    operator.actor.may(Action::ViewFlags)?;
    let days = match query.days.as_deref().map(str::trim) {
        None | Some("") => DEFAULT_STALE_DAYS,
        Some(text) => text
            .parse::<u32>()
            .ok()
            .filter(|d| (1..=MAX_DAYS).contains(d))
            .ok_or_else(|| {
                ConsoleError::BadRequest(format!(
                    "days={text:?}: expected a whole number of days from 1 to {MAX_DAYS}"
                ))
            })?,
    };
    let stale = state.app.stale_flags(days).await?;
    let page = StalePage {
        chrome: operator.chrome("flags"),
        days,
        flags: stale
            .flags
            .iter()
            .map(|(key, why)| {
                (
                    key.clone(),
                    why.iter().map(vexil_core::stale::Stale::describe).collect(),
                )
            })
            .collect(),
        undeclared: stale
            .undeclared_rows
            .iter()
            .map(|r| {
                (
                    r.flag_key.clone(),
                    r.env.clone(),
                    if r.value { "on" } else { "off" },
                )
            })
            .collect(),
    };
    Ok(page::html(StatusCode::OK, &page))
}
