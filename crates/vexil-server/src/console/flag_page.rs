//! `GET /console/flags/{key}`: one flag, its envs side by side (what runs, the row,
//! the variable, who changed it, when and why, and how far that change reached),
//! its open promotion, its history with reasons, and a flip control per env. The key
//! links here from every list. `flipped=ENV` after a flip from this page says what
//! the flip did (`flag_row::flip_notice`).

use std::collections::HashMap;

use askama::Template;
use axum::extract::{Path, Query, State};
use axum::http::StatusCode;
use axum::response::Response;
use serde::Deserialize;
use vexil_app::parse_flag_key;
use vexil_core::Action;
use vexil_store::AuditRow;

use crate::console::audit_row::{RowView, row_view};
use crate::console::error::ConsoleError;
use crate::console::flag_row::{FlagRow, RowContext, flip_notice};
use crate::console::flags_page::open_promotions;
use crate::console::flip_step::reason_of;
use crate::console::page::{self, Chrome, on_off, utc};
use crate::console::session::Operator;
use crate::state::ServerState;

/// How many of the flag's audit rows the page shows.
const HISTORY: u32 = 50;

#[derive(Debug, Default, Deserialize)]
pub(crate) struct FlagQuery {
    flipped: Option<String>,
}

/// One env of the flag: its row as the list draws it, and what the row's last
/// change said and reached.
struct Side {
    row: FlagRow,
    reason: Option<String>,
    receipt: Option<String>,
}

struct OpenPromotion {
    id: i64,
    state: &'static str,
    marked_by: String,
    soak_ends_at: String,
}

#[derive(Template)]
#[template(path = "flag.html")]
struct FlagPage {
    chrome: Chrome,
    csrf: String,
    key: String,
    description: String,
    risk: &'static str,
    default: &'static str,
    soak_hours: u32,
    sides: Vec<Side>,
    notice: Option<String>,
    promotion: Option<OpenPromotion>,
    /// The flag's audit rows, as the audit log tells them.
    history: Vec<RowView>,
    /// The flip forms carry no list filters here (`flip_form.html`).
    list_query: String,
}

pub(crate) async fn show(
    State(state): State<ServerState>,
    Path(flag_key): Path<String>,
    operator: Operator,
    Query(query): Query<FlagQuery>,
) -> Result<Response, ConsoleError> {
    operator.actor.may(Action::ViewFlags)?;
    let app = &state.app;
    let key = parse_flag_key(&flag_key)?;
    let decl =
        app.flags()
            .get(key.as_str())
            .cloned()
            .ok_or_else(|| vexil_app::AppError::UnknownFlag {
                key: key.to_string(),
            })?;
    let states = app.flag_states(None).await?;
    let open = open_promotions(&state).await?;
    let history = app.flag_history(&operator.actor, &key, HISTORY).await?;
    let mine: Vec<_> = states
        .states
        .iter()
        .filter(|s| s.key == key.as_str())
        .collect();
    // The rows' last changes: from the history when there, else read one by one.
    let mut changes: HashMap<i64, AuditRow> = HashMap::new();
    for id in mine.iter().filter_map(|s| s.audit_id) {
        let known = history.iter().find(|row| row.id == id).cloned();
        let row = match known {
            Some(row) => Some(row),
            None => app.audit_entry(&operator.actor, id).await?,
        };
        changes.extend(row.map(|row| (id, row)));
    }
    let mut told: Vec<AuditRow> = history.clone();
    told.extend(
        changes
            .values()
            .filter(|row| !history.iter().any(|h| h.id == row.id))
            .cloned(),
    );
    let receipts = app.receipts_for(&told).await?;
    let unproven = app.unproven(&history).await?;
    let now = app.now();
    let mut sides = Vec::new();
    let mut notice = None;
    for s in &mine {
        let cx = RowContext::new(&state, &operator, &s.env, &states, &open);
        let change = s.audit_id.and_then(|id| changes.get(&id));
        if query.flipped.as_deref() == Some(s.env.as_str()) {
            notice = Some(flip_notice(s));
        }
        sides.push(Side {
            row: FlagRow::new(s, &cx).on_flag_page(),
            reason: change.and_then(|row| reason_of(&row.payload)),
            receipt: change
                .and_then(|row| receipts.get(&row.id))
                .map(ToString::to_string),
        });
    }
    let promotion = match open.get(key.as_str()) {
        Some(&id) => {
            let record = app.promotion(id).await?;
            Some(OpenPromotion {
                id,
                state: record.promotion.state.as_str(),
                marked_by: record.promotion.marked_by,
                soak_ends_at: utc(record.promotion.soak_ends_at),
            })
        }
        None => None,
    };
    let page = FlagPage {
        chrome: operator.chrome("flags"),
        csrf: operator.visitor.csrf().to_owned(),
        key: key.to_string(),
        description: decl.description().to_owned(),
        risk: decl.risk().as_str(),
        default: on_off(decl.default()),
        soak_hours: decl.soak_period_hours(),
        sides,
        notice,
        promotion,
        history: history
            .iter()
            .map(|row| row_view(row, now, receipts.get(&row.id), unproven.contains(&row.id)))
            .collect(),
        list_query: String::new(),
    };
    Ok(page::html(StatusCode::OK, &page))
}
