//! `/console/reconcile`: the (flag, env) pairs whose live processes run
//! something other than the DB row, with why (master switch off, a change not
//! applied), and for each the reconciling flip it offers. `POST /console/reconcile`
//! writes that flip through `App::reconcile`: the same role matrix and audit row as
//! any flip, a reason required, a TOTP code where the flag needs elevation.

use askama::Template;
use axum::Form;
use axum::extract::{Query, State};
use axum::http::StatusCode;
use axum::response::{IntoResponse, Redirect, Response};
use serde::Deserialize;
use vexil_app::{Reconcile, parse_flag_key};
use vexil_core::audit::Via;
use vexil_core::{Action, Clearance, check_role};

use crate::console::error::ConsoleError;
use crate::console::page::{self, Chrome};
use crate::console::session::Operator;
use crate::state::ServerState;

struct Process {
    name: String,
    runs: &'static str,
    detail: String,
}

struct Line {
    flag: String,
    env: String,
    db_value: &'static str,
    live: usize,
    processes: Vec<Process>,
    /// The value a reconciling flip writes (`None`: a flip cannot help), and
    /// whether it is proposed (it changes no process's value) or would change the
    /// `following` processes that run the row's value.
    flip_to: Option<bool>,
    proposed: bool,
    following: usize,
    /// May this account write the flip, and does it need a code first?
    may_flip: bool,
    needs_code: bool,
}

#[derive(Template)]
#[template(path = "reconcile.html")]
struct ReconcilePage {
    chrome: Chrome,
    csrf: String,
    lines: Vec<Line>,
    master_off: Vec<(String, String)>,
    notice: Option<String>,
    error: Option<String>,
}

#[derive(Debug, Default, Deserialize)]
pub(crate) struct ReconcileQuery {
    /// The audit row of a reconciling flip just written.
    done: Option<String>,
}

pub(crate) async fn show(
    State(state): State<ServerState>,
    operator: Operator,
    Query(query): Query<ReconcileQuery>,
) -> Result<Response, ConsoleError> {
    let role = operator.actor.role();
    operator.actor.may(Action::ViewFlags)?;
    let found = state.app.reconciliation(None).await?;
    let on_off = |v: bool| if v { "on" } else { "off" };
    let lines = found
        .findings
        .iter()
        .map(|pair| {
            let f = &pair.finding;
            Line {
                flag: pair.flag.clone(),
                env: pair.env.to_string(),
                db_value: on_off(f.db_value),
                live: f.live,
                processes: f
                    .divergent
                    .iter()
                    .map(|d| Process {
                        name: d.name.clone(),
                        runs: d.runs.map_or("unknown", on_off),
                        detail: d.detail.clone(),
                    })
                    .collect(),
                flip_to: f.flip_to,
                proposed: f.proposed,
                following: f.following,
                may_flip: check_role(role, Action::Flip(pair.risk)).is_ok(),
                needs_code: check_role(role, Action::Flip(pair.risk)) != Ok(Clearance::Granted)
                    && !operator.elevated(),
            }
        })
        .collect();
    let notice = query
        .done
        .as_deref()
        .and_then(|id| id.parse::<i64>().ok())
        .map(|id| format!("Reconciling flip written: audit row {id}."));
    let page = ReconcilePage {
        chrome: operator.chrome("reconcile"),
        csrf: operator.visitor.csrf().to_owned(),
        lines,
        master_off: found
            .master_off
            .iter()
            .map(|(env, names)| (env.to_string(), names.join(", ")))
            .collect(),
        notice,
        error: None,
    };
    Ok(page::html(StatusCode::OK, &page))
}

#[derive(Debug, Default, Deserialize)]
pub(crate) struct ReconcileForm {
    csrf: Option<String>,
    flag: Option<String>,
    env: Option<String>,
    to: Option<String>,
    reason: Option<String>,
    totp: Option<String>,
}

pub(crate) async fn submit(
    State(state): State<ServerState>,
    mut operator: Operator,
    Form(form): Form<ReconcileForm>,
) -> Result<Response, ConsoleError> {
    operator.visitor.check_csrf(form.csrf.as_deref())?;
    let flag = parse_flag_key(form.flag.as_deref().unwrap_or_default())?;
    let env = state
        .app
        .envs()
        .parse(form.env.as_deref().unwrap_or_default())?;
    let to = match form.to.as_deref().map(str::trim) {
        Some("true") => Some(true),
        Some("false") => Some(false),
        None | Some("") => None,
        Some(other) => {
            return Err(ConsoleError::BadRequest(format!(
                "to={other:?}: expected true or false"
            )));
        }
    };
    let ask = Reconcile {
        flag: &flag,
        env: &env,
        to,
        reason: form.reason.as_deref(),
        via: Via::Console,
    };
    let code = operator.code(&state, form.totp.as_deref())?;
    let address = operator.visitor.from();
    let step_up = operator.step_up(code.as_ref(), &address);
    let flipped = state.app.reconcile(&operator.actor, &ask, step_up).await?;
    operator.keep(flipped.elevation).await?;
    Ok(Redirect::to(&format!("/console/reconcile?done={}", flipped.audit_id)).into_response())
}
