//! `GET /console/flags?env=`: every declared flag in one env, as this server resolves
//! it, with search, filters and sorting as query parameters (so a filtered view is a
//! link one can paste into an incident channel), and a flip control on each row the
//! signed-in role may flip.
//!
//! It shows a banner when the master switch is off, and says why a row has no flip
//! control where the role may not flip it.

use std::collections::HashMap;

use askama::Template;
use axum::extract::{Query, State};
use axum::http::StatusCode;
use axum::response::Response;
use serde::Deserialize;
use vexil_app::{FlagState, FlagStates};
use vexil_core::{Action, Env};

use crate::console::error::ConsoleError;
use crate::console::flag_row::{FlagRow, RowContext, flip_notice, master_off};
use crate::console::page::{self, Chrome, on_off};
use crate::console::session::Operator;
use crate::state::ServerState;

#[derive(Debug, Default, Clone, Deserialize)]
pub(crate) struct FlagsQuery {
    env: Option<String>,
    /// A flag just flipped from this list without JavaScript: the page says what the
    /// flip did (from the flag's state now) and highlights its row.
    flipped: Option<String>,
    #[serde(flatten)]
    list: ListView,
}

/// The list's filters and sort, without the env: carried by each flip form so that
/// the page after a flip shows the same list.
#[derive(Debug, Default, Clone, Deserialize)]
pub(crate) struct ListView {
    /// Words to find in the key or description.
    q: Option<String>,
    risk: Option<String>,
    source: Option<String>,
    value: Option<String>,
    sort: Option<String>,
}

impl ListView {
    /// Reads a flip form's `list` field; anything unknown in it is dropped.
    pub(crate) fn parse(encoded: &str) -> ListView {
        serde_urlencoded::from_str(encoded).unwrap_or_default()
    }

    /// The filters as a query string (only the known names, values trimmed and
    /// re-encoded).
    pub(crate) fn query(&self) -> String {
        let [q, risk, source, value, sort] =
            [&self.q, &self.risk, &self.source, &self.value, &self.sort].map(page::param);
        page::query(&[
            ("q", Some(&q)),
            ("risk", Some(&risk)),
            ("source", Some(&source)),
            ("value", Some(&value)),
            ("sort", Some(&sort)),
        ])
    }
}

pub(crate) struct SortLink {
    label: &'static str,
    href: String,
    /// `ascending`/`descending` on the column sorted by, for `aria-sort`.
    aria_sort: Option<&'static str>,
}

#[derive(Template)]
#[template(path = "flags.html")]
struct FlagsPage {
    chrome: Chrome,
    csrf: String,
    env: String,
    envs: Vec<String>,
    rows: Vec<FlagRow>,
    total: usize,
    master_off: bool,
    notice: Option<String>,
    master_drift: Option<String>,
    undeclared: Vec<String>,
    q: String,
    risk: String,
    source: String,
    value: String,
    sort: String,
    sort_links: Vec<SortLink>,
    list_query: String,
}

/// The columns one may sort by: (query value, header label, descending?).
const SORTS: [(&str, &str, bool); 5] = [
    ("key", "Flag", false),
    ("risk", "Risk", true),
    ("value", "Value", true),
    ("source", "Source", false),
    ("changed", "Last changed", true),
];

pub(crate) async fn show(
    State(state): State<ServerState>,
    operator: Operator,
    Query(query): Query<FlagsQuery>,
) -> Result<Response, ConsoleError> {
    operator.actor.may(Action::ViewFlags)?;
    let env = chosen_env(&state, query.env.as_deref())?;
    // Every env's: a staging row shows prod's value and judges the mark by it.
    let states = state.app.flag_states(None).await?;
    let open = open_promotions(&state).await?;
    let cx = RowContext::new(&state, &operator, &env, &states, &open);
    let page = flags_page(
        &operator,
        &cx,
        &env,
        &states,
        &query,
        state.app.envs().iter(),
    )?;
    Ok(page::html(StatusCode::OK, &page))
}

/// Each flag's open promotion, by flag key.
pub(crate) async fn open_promotions(
    state: &ServerState,
) -> Result<HashMap<String, i64>, ConsoleError> {
    let open = state.app.open_promotions().await?;
    Ok(open.into_iter().map(|r| (r.flag_key, r.id)).collect())
}

/// The env asked for, else this server's own env, else the first configured.
pub(crate) fn chosen_env(state: &ServerState, asked: Option<&str>) -> Result<Env, ConsoleError> {
    match asked.filter(|e| !e.is_empty()) {
        Some(name) => Ok(state.app.envs().parse(name)?),
        None => state
            .app
            .process_env()
            .or_else(|| state.app.envs().iter().next())
            .cloned()
            .ok_or_else(|| ConsoleError::Internal("no env is configured".into())),
    }
}

fn flags_page<'a>(
    operator: &Operator,
    cx: &RowContext<'_>,
    env: &Env,
    states: &FlagStates,
    query: &FlagsQuery,
    envs: impl Iterator<Item = &'a Env>,
) -> Result<FlagsPage, ConsoleError> {
    let list = &query.list;
    let [q, risk, source, value, sort] =
        [&list.q, &list.risk, &list.source, &list.value, &list.sort].map(page::param);
    for (name, given, allowed) in [
        ("risk", &risk, &["low", "medium", "high"][..]),
        ("source", &source, &["db", "env", "yaml"][..]),
        ("value", &value, &["on", "off"][..]),
        (
            "sort",
            &sort,
            &["key", "risk", "value", "source", "changed"][..],
        ),
    ] {
        if !given.is_empty() && !allowed.contains(&given.as_str()) {
            return Err(ConsoleError::BadRequest(format!(
                "{name}={given:?} is not a filter: expected one of {}",
                allowed.join(", ")
            )));
        }
    }
    let needle = q.to_lowercase();
    let mut shown: Vec<&FlagState> = states
        .states
        .iter()
        .filter(|s| {
            s.env == *env
                && (needle.is_empty()
                    || s.key.contains(&needle)
                    || s.description.to_lowercase().contains(&needle))
                && (risk.is_empty() || s.risk.as_str() == risk)
                && (source.is_empty() || s.source.as_str() == source)
                && (value.is_empty() || on_off(s.value) == value)
        })
        .collect();
    match sort.as_str() {
        "key" => shown.sort_by(|a, b| a.key.cmp(&b.key)),
        "risk" => shown.sort_by(|a, b| b.risk.cmp(&a.risk).then(a.key.cmp(&b.key))),
        "value" => shown.sort_by(|a, b| b.value.cmp(&a.value).then(a.key.cmp(&b.key))),
        "source" => shown.sort_by(|a, b| {
            a.source
                .as_str()
                .cmp(b.source.as_str())
                .then(a.key.cmp(&b.key))
        }),
        "changed" => shown.sort_by(|a, b| b.updated_at.cmp(&a.updated_at).then(a.key.cmp(&b.key))),
        // File order: the order the team declared them in.
        _ => {}
    }
    // From the env's states, not the rows shown: a filter that now hides the
    // flipped row (value=off after turning it on) must not hide what the flip did.
    let flipped = query.flipped.as_deref();
    let notice = states
        .states
        .iter()
        .find(|s| s.env == *env && Some(s.key.as_str()) == flipped)
        .map(flip_notice);
    let rows = shown
        .iter()
        .map(|s| {
            let row = FlagRow::new(s, cx);
            if Some(s.key.as_str()) == flipped {
                row.flipped()
            } else {
                row
            }
        })
        .collect();
    let sort_links = SORTS
        .iter()
        .map(|&(by, label, descending)| SortLink {
            label,
            href: format!(
                "/console/flags?{}",
                page::query(&[
                    ("env", Some(env.as_str())),
                    ("q", Some(&q)),
                    ("risk", Some(&risk)),
                    ("source", Some(&source)),
                    ("value", Some(&value)),
                    ("sort", Some(by)),
                ])
            ),
            aria_sort: (sort == by).then_some(if descending {
                "descending"
            } else {
                "ascending"
            }),
        })
        .collect();
    let master_off = master_off(states, env);
    let master_drift = states
        .master_drift
        .iter()
        .find(|(e, _)| e == env)
        .map(|(_, drift)| drift.to_string());
    let list_query = list.query();
    Ok(FlagsPage {
        chrome: operator.chrome("flags").in_env(env),
        csrf: operator.visitor.csrf().to_owned(),
        env: env.to_string(),
        envs: envs.map(ToString::to_string).collect(),
        rows,
        total: states.states.iter().filter(|s| s.env == *env).count(),
        master_off,
        notice,
        master_drift,
        undeclared: states
            .undeclared_rows
            .iter()
            .filter(|row| row.env == env.as_str())
            .map(|row| row.flag_key.clone())
            .collect(),
        q,
        risk,
        source,
        value,
        list_query,
        sort,
        sort_links,
    })
}
