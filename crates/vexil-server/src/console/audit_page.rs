//! `GET /console/audit`: the audit log, newest first, one sentence a row
//! (`audit_row.rs`), filtered by action, flag, account, env and time range as query
//! parameters, a page at a time.
//!
//! The flag and account filters match part of a name, in any case, and suggest the
//! declared flags and the accounts. A filter that cannot be read (a bad date, a range
//! that ends before it starts, an unknown action or env) is named next to its field,
//! the form kept as typed, with 422 and no rows: never an error page instead of the
//! form.
//!
//! Pages are cut by row id, not by offset, so rows appended meanwhile never shift a
//! page: `before` is the cursor of an older page, `after` of a newer one. Each flip
//! shows its propagation receipt (`App::receipts_for`, one read of the instances per
//! page). With a flag filter naming a declared flag, its promotions head its rows.

use askama::Template;
use axum::extract::{Query, State};
use axum::http::StatusCode;
use axum::response::Response;
use chrono::{DateTime, Timelike, Utc};
use serde::Deserialize;
use vexil_app::{Actor, AuditNames};
use vexil_core::audit::ACTIONS;
use vexil_core::message::one_line;
use vexil_core::{parse_instant, text};
use vexil_store::{AuditFilter, AuditRow};

use crate::console::audit_row::{self, RowView};
use crate::console::error::ConsoleError;
use crate::console::page::{self, Chrome};
use crate::console::promotions_page::PromotionCard;
use crate::console::session::Operator;
use crate::state::ServerState;

/// Rows per page.
const PAGE: u32 = 50;

/// A flag's promotions shown above its history.
const PROMOTIONS: u32 = 20;

/// The action filter's groups: the options under each share its name's prefix.
const ACTION_GROUPS: [(&str, &str); 4] = [
    ("Flags", "console.flag."),
    ("Accounts", "console.user."),
    ("Client keys", "console.client_key."),
    ("Sign-in", "console.auth."),
];

#[derive(Debug, Default, Deserialize)]
pub(crate) struct AuditQuery {
    action: Option<String>,
    flag: Option<String>,
    account: Option<String>,
    env: Option<String>,
    since: Option<String>,
    until: Option<String>,
    before: Option<String>,
    after: Option<String>,
}

/// One filter field: what was typed, what its input shows, and what is wrong with it.
#[derive(Default)]
struct Field {
    /// As typed (trimmed): what the page's links carry on.
    value: String,
    /// What the input shows: the typed text, or for a valid time the form its
    /// `datetime-local` input reads.
    shown: String,
    /// `datetime-local` for a time the input can show, else `text` (so that a bad
    /// time stays visible as typed).
    kind: &'static str,
    error: Option<String>,
}

/// The filter form as typed.
struct Filters {
    action: Field,
    flag: Field,
    account: Field,
    env: Field,
    since: Field,
    until: Field,
}

struct ActionGroup {
    label: &'static str,
    /// (fixed name, readable name).
    options: Vec<(&'static str, &'static str)>,
}

#[derive(Template)]
#[template(path = "audit.html")]
struct AuditPage {
    chrome: Chrome,
    filters: Filters,
    /// Suggestions for the flag and account inputs.
    names: AuditNames,
    groups: Vec<ActionGroup>,
    envs: Vec<String>,
    /// What is wrong with the page asked for beyond its fields (a cursor that is not
    /// a row id).
    error: Option<String>,
    rows: Vec<RowView>,
    /// The links to the newer page, the newest and the older page, when there is one.
    newer: Option<String>,
    newest: Option<String>,
    older: Option<String>,
    /// With a flag filter naming a flag: its promotions, newest first.
    recent: Vec<PromotionCard>,
}

pub(crate) async fn show(
    State(state): State<ServerState>,
    operator: Operator,
    Query(query): Query<AuditQuery>,
) -> Result<Response, ConsoleError> {
    // Also the role check, before anything about the filters is said.
    let names = state.app.audit_names(&operator.actor).await?;
    let mut filters = Filters::typed(&query);
    let checked = filters.check(&state);
    let cursors = cursor("before", &query.before)
        .and_then(|before| cursor("after", &query.after).map(|after| (before, after)));
    let mut page = AuditPage {
        chrome: operator.chrome("audit"),
        filters,
        names,
        groups: action_groups(),
        envs: state.app.envs().iter().map(ToString::to_string).collect(),
        error: cursors.as_ref().err().cloned(),
        rows: Vec::new(),
        newer: None,
        newest: None,
        older: None,
        recent: Vec::new(),
    };
    let (Some(mut filter), Ok((before, after))) = (checked, cursors) else {
        return Ok(page::html(StatusCode::UNPROCESSABLE_ENTITY, &page));
    };
    filter.before = before;
    filter.after = after;
    let actor = &operator.actor;
    let Window { rows, newer, older } = window(&state, actor, filter).await?;
    let filters = &page.filters;
    let (newer, newest, older) = (
        newer.then(|| filters.link(rows.first().map(|row| (Side::After, row.id)))),
        newer.then(|| filters.link(None)),
        older.then(|| filters.link(rows.last().map(|row| (Side::Before, row.id)))),
    );
    (page.newer, page.newest, page.older) = (newer, newest, older);
    let receipts = state.app.receipts_for(&rows).await?;
    let unproven = state.app.unproven(&rows).await?;
    let now = state.app.now();
    page.rows = rows
        .iter()
        .map(|row| {
            let receipt = receipts.get(&row.id);
            audit_row::row_view(row, now, receipt, unproven.contains(&row.id))
        })
        .collect();
    let flag = &page.filters.flag.value;
    if page.names.flags.contains(flag) {
        let who = (actor.name(), actor.role(), operator.elevated());
        for record in state.app.promotions(None, Some(flag), PROMOTIONS).await? {
            page.recent
                .push(PromotionCard::new(&state, &record, now, who));
        }
    }
    Ok(page::html(StatusCode::OK, &page))
}

/// A page of rows, newest first, and whether rows newer and older than it match.
struct Window {
    rows: Vec<AuditRow>,
    newer: bool,
    older: bool,
}

/// Which way a cursor reads from its row id.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Side {
    Before,
    After,
}

/// The page `filter` asks for (`before`, `after` or neither: the newest).
async fn window(
    state: &ServerState,
    actor: &Actor,
    filter: AuditFilter,
) -> Result<Window, ConsoleError> {
    let page = PAGE as usize;
    // One row more than a page: whether there is more in the direction read.
    let mut filter = AuditFilter {
        limit: PAGE + 1,
        ..filter
    };
    let mut rows = state.app.audit_page(actor, &filter).await?;
    if filter.after.is_some() {
        if rows.len() > page {
            // Read oldest first from the cursor: the row past the page is the newest.
            rows.remove(0);
            let older = match rows.last() {
                Some(last) => exists(state, actor, &filter, Side::Before, last.id).await?,
                None => false,
            };
            return Ok(Window {
                rows,
                newer: true,
                older,
            });
        }
        // Short of a page: the newest page instead, so that going back always shows
        // a full page.
        (filter.before, filter.after) = (None, None);
        rows = state.app.audit_page(actor, &filter).await?;
    }
    let older = rows.len() > page;
    rows.truncate(page);
    let newer = match (filter.before, rows.first()) {
        (None, _) => false,
        (Some(_), Some(first)) => exists(state, actor, &filter, Side::After, first.id).await?,
        // Past the oldest row: the way back is the newest page.
        (Some(_), None) => true,
    };
    Ok(Window { rows, newer, older })
}

/// Whether a row of `filter` lies on `side` of row `id`.
async fn exists(
    state: &ServerState,
    actor: &Actor,
    filter: &AuditFilter,
    side: Side,
    id: i64,
) -> Result<bool, ConsoleError> {
    let beyond = AuditFilter {
        before: (side == Side::Before).then_some(id),
        after: (side == Side::After).then_some(id),
        limit: 1,
        ..filter.clone()
    };
    Ok(!state.app.audit_page(actor, &beyond).await?.is_empty())
}

impl Filters {
    fn typed(query: &AuditQuery) -> Filters {
        let field = |value: &Option<String>| {
            let value = page::param(value);
            Field {
                shown: value.clone(),
                value,
                kind: "text",
                error: None,
            }
        };
        Filters {
            action: field(&query.action),
            flag: field(&query.flag),
            account: field(&query.account),
            env: field(&query.env),
            since: field(&query.since),
            until: field(&query.until),
        }
    }

    /// The store's filter for these fields, or `None` when one of them cannot be read
    /// (each such field then carries its error).
    fn check(&mut self, state: &ServerState) -> Option<AuditFilter> {
        let some = |field: &Field| (!field.value.is_empty()).then(|| field.value.clone());
        // Free text first (`vexil_core::text`): a NUL would fail the query on
        // PostgreSQL, and no other check should quote a control or bidi character.
        let texts = [
            ("action", &mut self.action),
            ("flag", &mut self.flag),
            ("account", &mut self.account),
            ("env", &mut self.env),
        ];
        for (name, field) in texts {
            if let Err(error) = text::check(name, &field.value) {
                field.error = Some(error.to_string());
                field.shown = one_line(&field.value);
            }
        }
        if !self.action.value.is_empty()
            && self.action.error.is_none()
            && !ACTIONS.contains(&self.action.value.as_str())
        {
            self.action.error = Some(format!(
                "{:?} is not an action vexil records: pick one from the list",
                self.action.value
            ));
        }
        if !self.env.value.is_empty()
            && self.env.error.is_none()
            && let Err(error) = state.app.envs().parse(&self.env.value)
        {
            self.env.error = Some(error.to_string());
        }
        let since = self.since.time();
        let until = self.until.time();
        if let (Some(since), Some(until)) = (since, until)
            && since >= until
        {
            self.until.error = Some(format!(
                "the range ends before it starts: until must be later than since ({})",
                page::utc(since)
            ));
        }
        let fields = [
            &self.action,
            &self.flag,
            &self.account,
            &self.env,
            &self.since,
            &self.until,
        ];
        if fields.iter().any(|field| field.error.is_some()) {
            return None;
        }
        Some(AuditFilter {
            action: some(&self.action),
            flag_contains: some(&self.flag),
            party_contains: some(&self.account),
            env: some(&self.env),
            since,
            until,
            ..AuditFilter::default()
        })
    }

    /// This page's address with these filters as typed, and `cursor`.
    fn link(&self, cursor: Option<(Side, i64)>) -> String {
        let id = cursor.map(|(_, id)| id.to_string());
        let mut pairs = vec![
            ("action", Some(self.action.value.as_str())),
            ("flag", Some(self.flag.value.as_str())),
            ("account", Some(self.account.value.as_str())),
            ("env", Some(self.env.value.as_str())),
            ("since", Some(self.since.value.as_str())),
            ("until", Some(self.until.value.as_str())),
        ];
        match cursor {
            Some((Side::Before, _)) => pairs.push(("before", id.as_deref())),
            Some((Side::After, _)) => pairs.push(("after", id.as_deref())),
            None => {}
        }
        format!("/console/audit?{}", page::query(&pairs))
    }
}

impl Field {
    /// The instant this field names, if it names one; a text that does not read as a
    /// time gets its error, and stays in a text input as typed.
    fn time(&mut self) -> Option<DateTime<Utc>> {
        if self.value.is_empty() {
            self.kind = "datetime-local";
            return None;
        }
        match parse_instant(&self.value) {
            Ok(at) => {
                self.kind = "datetime-local";
                self.shown = datetime_local(at);
                Some(at)
            }
            Err(error) => {
                self.error = Some(error.to_string());
                None
            }
        }
    }
}

/// An instant as a `datetime-local` input reads it (UTC, to the second if it has any).
fn datetime_local(at: DateTime<Utc>) -> String {
    let format = if at.second() == 0 {
        "%Y-%m-%dT%H:%M"
    } else {
        "%Y-%m-%dT%H:%M:%S"
    };
    at.format(format).to_string()
}

/// A cursor parameter: absent, or the id of an audit row.
fn cursor(name: &str, value: &Option<String>) -> Result<Option<i64>, String> {
    match page::param(value).as_str() {
        "" => Ok(None),
        text => text
            .parse::<i64>()
            .ok()
            .filter(|id| *id > 0)
            .map(Some)
            .ok_or_else(|| {
                format!(
                    "{name}={text:?}: expected the id of an audit row (a positive whole number)"
                )
            }),
    }
}

/// Every action vexil records, in its group, with its readable name.
fn action_groups() -> Vec<ActionGroup> {
    ACTION_GROUPS
        .iter()
        .map(|(label, prefix)| ActionGroup {
            label,
            options: ACTIONS
                .iter()
                .filter(|action| action.starts_with(prefix))
                .map(|action| (*action, audit_row::label(action).unwrap_or(action)))
                .collect(),
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use vexil_core::audit::ACTIONS;

    use super::action_groups;

    #[test]
    fn every_action_is_in_one_group() {
        let listed: usize = action_groups().iter().map(|g| g.options.len()).sum();
        assert_eq!(listed, ACTIONS.len());
    }
}
