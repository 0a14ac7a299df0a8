//! `GET /console/deprecation`: the runbook's deprecation table, as
//! `vexil deprecation` prints it: for each flag and env, the verdict on its `FLAG_*`
//! variable, the evidence, and the live processes that still carry it; then, per
//! application (Heroku config is per app), where the variable is safe to remove and
//! the silenced `heroku config:unset` line for it. Read-only: removing a variable
//! stays a manual step.

use askama::Template;
use axum::extract::State;
use axum::http::StatusCode;
use axum::response::Response;
use vexil_core::Action;
use vexil_core::deprecation::Status;
use vexil_core::heroku::heroku_unset;

use crate::console::error::ConsoleError;
use crate::console::page::{self, Chrome};
use crate::console::session::Operator;
use crate::state::ServerState;

struct Line {
    flag: String,
    variable: String,
    env: String,
    /// `in use`, `dormant`, … and its CSS class (`in-use`, …).
    status: &'static str,
    status_class: String,
    row: &'static str,
    flips: u64,
    because: String,
    set_on: Vec<String>,
}

/// An application where a variable is safe to remove and still set.
struct Removable {
    flag: String,
    variable: String,
    env: String,
    app: String,
    /// `None` when the reported name is not one Heroku takes: it is never put in a
    /// command line.
    command: Option<String>,
}

#[derive(Template)]
#[template(path = "deprecation.html")]
struct DeprecationPage {
    chrome: Chrome,
    lines: Vec<Line>,
    safe: usize,
    removable: Vec<Removable>,
}

pub(crate) async fn show(
    State(state): State<ServerState>,
    operator: Operator,
) -> Result<Response, ConsoleError> {
    operator.actor.may(Action::ViewFlags)?;
    let table = state.app.deprecation(None).await?;
    let mut lines = Vec::new();
    for flag in &table {
        for (verdict, evidence) in &flag.envs {
            lines.push(Line {
                flag: flag.key.clone(),
                variable: flag.variable.clone(),
                env: verdict.env.to_string(),
                status: verdict.status.as_str(),
                status_class: verdict.status.as_str().replace(' ', "-"),
                row: match evidence.row {
                    Some(true) => "on",
                    Some(false) => "off",
                    None => "—",
                },
                flips: evidence.flips,
                because: verdict.because.clone(),
                set_on: evidence.carriers().into_iter().map(str::to_owned).collect(),
            });
        }
    }
    let safe = lines
        .iter()
        .filter(|l| l.status == "safe to remove")
        .count();
    let removable = table
        .iter()
        .flat_map(|flag| {
            flag.apps
                .iter()
                .filter(|(verdict, _)| verdict.status == Status::SafeToRemove)
                .flat_map(move |(verdict, evidence)| {
                    evidence
                        .carrier_apps()
                        .into_iter()
                        .map(move |app| Removable {
                            flag: flag.key.clone(),
                            variable: flag.variable.clone(),
                            env: verdict.env.to_string(),
                            app: app.to_owned(),
                            command: heroku_unset(&flag.variable, app),
                        })
                })
        })
        .collect();
    let page = DeprecationPage {
        chrome: operator.chrome("deprecation"),
        lines,
        safe,
        removable,
    };
    Ok(page::html(StatusCode::OK, &page))
}
