//! One flag in one env as the console shows it: on a row of the flags list, and on
//! each side of the flag's own page. The same struct renders the lone row an htmx
//! flip swaps in.
//!
//! A row never misleads (docs/console.md): where the value that runs and the DB row
//! differ, or the row does not decide (the master switch is off), it shows both; a
//! flip starts from what the row holds, which is what the flip's conflict check
//! compares; and while the master switch is off, the button says it sets the row.

use std::collections::HashMap;

use askama::Template;
use vexil_app::{Actor, FlagState, FlagStates};
use vexil_core::{Action, Clearance, Denied, Env, check_role};

use crate::console::page::{on_off, utc};
use crate::console::session::Operator;
use crate::state::ServerState;

/// What the rows of one env share: who looks, the env's master switch, whether its
/// flips are confirmed, prod's values (a staging row shows them and judges the mark
/// by them) and the open promotions.
pub(crate) struct RowContext<'a> {
    actor: &'a Actor,
    elevated: bool,
    env: &'a Env,
    master_off: bool,
    confirms: bool,
    reason_required: bool,
    prod: HashMap<&'a str, &'a FlagState>,
    open: &'a HashMap<String, i64>,
}

impl<'a> RowContext<'a> {
    /// The context of `env`'s rows; `states` holds every env's (prod's included).
    pub(crate) fn new(
        server: &ServerState,
        operator: &'a Operator,
        env: &'a Env,
        states: &'a FlagStates,
        open: &'a HashMap<String, i64>,
    ) -> RowContext<'a> {
        RowContext {
            actor: &operator.actor,
            elevated: operator.elevated(),
            env,
            master_off: master_off(states, env),
            confirms: server.config.confirms(env),
            reason_required: server.config.reason_required(env),
            prod: states
                .states
                .iter()
                .filter(|s| s.env == Env::PROD)
                .map(|s| (s.key.as_str(), s))
                .collect(),
            open,
        }
    }
}

/// DB rows decide nothing in `env`: its master switch is off (or unreadable).
pub(crate) fn master_off(states: &FlagStates, env: &Env) -> bool {
    states
        .masters
        .iter()
        .any(|(e, master)| e == env && !master.db_layer_on())
}

/// One flag in one env, as a row or a side of the flag page.
pub(crate) struct FlagRow {
    pub(crate) key: String,
    pub(crate) description: String,
    pub(crate) risk: &'static str,
    pub(crate) env: String,
    /// The value that runs ("on"/"off").
    pub(crate) value_text: &'static str,
    /// The DB row's value, where there is a row.
    pub(crate) row_text: Option<&'static str>,
    /// Why the row does not decide the value, where it does not.
    pub(crate) not_in_effect: Option<&'static str>,
    /// "true"/"false": what a flip starts from (the row, else the value), sent back
    /// with the flip and compared by its conflict check.
    pub(crate) from: bool,
    pub(crate) to: bool,
    pub(crate) to_text: &'static str,
    /// The env's master switch is off: a flip sets the row and changes nothing that
    /// runs until the switch is on.
    pub(crate) master_off: bool,
    pub(crate) source: &'static str,
    pub(crate) env_var: Option<String>,
    pub(crate) dormant: Option<String>,
    pub(crate) invalid: Option<String>,
    pub(crate) drift: Option<String>,
    pub(crate) changed_by: Option<String>,
    pub(crate) changed_at: Option<String>,
    /// The role may flip this flag (perhaps after elevating).
    pub(crate) can_flip: bool,
    pub(crate) needs_totp: bool,
    /// Why the role may not flip it.
    pub(crate) denied: Option<String>,
    /// A flip here goes through the confirmation page (no htmx in place).
    pub(crate) confirms: bool,
    pub(crate) reason_required: bool,
    /// On a staging row: prod's value that runs, and its row where that differs.
    pub(crate) prod_text: Option<String>,
    /// "Mark active for prod" can succeed: on in staging, off in prod, no open
    /// promotion, a role that may mark.
    pub(crate) can_mark: bool,
    /// The flag's open promotion, linked instead of the mark button.
    pub(crate) open_promotion: Option<i64>,
    /// Just flipped by this operator: highlighted, its button focused (htmx).
    pub(crate) just_flipped: bool,
    /// Where the row is drawn, which decides where a flip comes back to.
    pub(crate) place: Place,
}

/// Where a flag's row is drawn.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Place {
    /// A row of the flags list: a flip that needs no confirmation is swapped in
    /// place by htmx; without JavaScript it comes back to the list.
    List,
    /// A side of the flag's own page: a flip comes back to that page.
    FlagPage,
}

impl FlagRow {
    pub(crate) fn new(state: &FlagState, cx: &RowContext<'_>) -> FlagRow {
        let (can_flip, needs_totp, denied) =
            match check_role(cx.actor.role(), Action::Flip(state.risk)) {
                Ok(Clearance::Granted) => (true, false, None),
                Ok(Clearance::NeedsElevation) => (true, !cx.elevated, None),
                Err(Denied::Forbidden { required, .. }) => {
                    (false, false, Some(format!("needs {required}")))
                }
                Err(Denied::ElevationRequired { .. }) => (true, true, None),
            };
        let from = state.row_or_value();
        let prod = (state.env == Env::STAGING)
            .then(|| cx.prod.get(state.key.as_str()))
            .flatten();
        let open_promotion = cx.open.get(&state.key).copied();
        FlagRow {
            key: state.key.clone(),
            description: state.description.clone(),
            risk: state.risk.as_str(),
            env: state.env.to_string(),
            value_text: on_off(state.value),
            row_text: state.row_value.map(on_off),
            not_in_effect: state.row_not_in_effect().then_some("master switch off"),
            from,
            to: !from,
            to_text: on_off(!from),
            master_off: cx.master_off,
            source: state.source.as_str(),
            env_var: state.env_var.clone(),
            dormant: state.dormant_env_var.clone(),
            invalid: state.invalid_env_var.clone(),
            drift: state.drift.as_ref().map(ToString::to_string),
            changed_by: state.updated_by.clone(),
            changed_at: state.updated_at.map(utc),
            can_flip,
            needs_totp,
            denied,
            confirms: cx.confirms && *cx.env == state.env,
            reason_required: cx.reason_required && *cx.env == state.env,
            prod_text: prod.map(|p| value_and_row(p)),
            // As the mark judges it: each side's row when there is one.
            can_mark: prod.is_some_and(|p| !p.row_or_value())
                && from
                && open_promotion.is_none()
                && cx.actor.may(Action::MarkPromote).is_ok(),
            open_promotion,
            just_flipped: false,
            place: Place::List,
        }
    }

    /// The row as a side of the flag's own page.
    pub(crate) fn on_flag_page(mut self) -> FlagRow {
        self.place = Place::FlagPage;
        self
    }

    /// An htmx flip swaps this row in place: a list row whose flip goes through no
    /// page of its own (no confirmation, no code to type).
    pub(crate) fn in_place(&self) -> bool {
        self.place == Place::List && !self.confirms && !self.needs_totp
    }

    /// The `back` field of its flip form: where the flip comes back to.
    pub(crate) fn back(&self) -> &'static str {
        match self.place {
            Place::List => "list",
            Place::FlagPage => "flag",
        }
    }

    /// The row as the one just flipped (highlighted, its button focused).
    pub(crate) fn flipped(mut self) -> FlagRow {
        self.just_flipped = true;
        self
    }

    /// The flip button's words: what it does, and where.
    pub(crate) fn button(&self) -> String {
        let verb = if self.master_off { "Set row" } else { "Turn" };
        let step = if self.confirms { "…" } else { "" };
        let totp = if self.needs_totp { " · TOTP" } else { "" };
        format!("{verb} {} in {}{step}{totp}", self.to_text, self.env)
    }
}

/// What a flip did, said from the flag's state now (so the notice stays true on a
/// reload): the value that runs, or the row set and why it does not run yet.
pub(crate) fn flip_notice(state: &FlagState) -> String {
    let by = match (&state.updated_by, state.updated_at) {
        (Some(by), Some(at)) => format!(" (by {by}, {})", utc(at)),
        _ => String::new(),
    };
    match state.row_value {
        Some(row) if state.row_not_in_effect() => format!(
            "{key}: the row in {env} is {row}{by}. Not in effect: the master switch is off in {env}, which still runs {value}.",
            key = state.key,
            env = state.env,
            row = on_off(row),
            value = on_off(state.value),
        ),
        _ => format!(
            "{} is {} in {}{by}.",
            state.key,
            on_off(state.value),
            state.env
        ),
    }
}

/// "on", or "off (row on)" where the row says otherwise.
fn value_and_row(state: &FlagState) -> String {
    let value = on_off(state.value);
    match state.row_value {
        Some(row) if row != state.value => format!("{value} (row {})", on_off(row)),
        _ => value.to_owned(),
    }
}

/// A lone row, what an htmx flip swaps in, with the notice that says what the flip
/// did (swapped out of band into the page's live region).
#[derive(Template)]
#[template(path = "flag_row_fragment.html")]
pub(crate) struct FlagRowFragment {
    pub(crate) row: FlagRow,
    pub(crate) csrf: String,
    /// The list's filters, sent back with the next flip (`ListView::query`).
    pub(crate) list_query: String,
    pub(crate) notice: Option<String>,
}
