//! Promotions in the console (docs/promotion.md): `GET /console/promotions` lists the
//! open ones (state, soak remaining, who did what, the steps the operator may take)
//! and the recent ended ones; `POST /console/flags/<flag_key>/promotions` marks a
//! flag from its staging row; `POST /console/promotions/<id>/approve|promote|reject`
//! move one. Every form carries the CSRF token and answers POST-redirect-GET.
//!
//! Promoting a high-risk flag asks for the confirmation phrase, typed, and a TOTP
//! code when the session is not elevated: the phrase is checked first, so a wrong
//! phrase spends no code.
//!
//! The soak countdown is plain text without JavaScript (`console.js` updates it). The
//! TOTP code is tried by `elevation::try_code`, shared with the flip.

use askama::Template;
use axum::Form;
use axum::extract::{Path, Query, State};
use axum::http::StatusCode;
use axum::response::{IntoResponse, Redirect, Response};
use chrono::{DateTime, Utc};
use serde::Deserialize;
use vexil_app::{AppError, PromoteRequest, PromotionRecord, parse_flag_key};
use vexil_core::audit::Via;
use vexil_core::promotion::{self, ExpiryReason, PromotionState, time_left};
use vexil_core::{Action, Denied, Risk, Role, check_role};

use crate::console::error::ConsoleError;
use crate::console::page::{self, Chrome, utc};
use crate::console::session::Operator;
use crate::state::ServerState;

/// Ended promotions shown under the open ones.
const RECENT: u32 = 20;

#[derive(Debug, Default, Deserialize)]
pub(crate) struct PromotionsQuery {
    /// The promotion a step just moved, highlighted with a notice.
    done: Option<String>,
}

#[derive(Debug, Default, Deserialize)]
pub(crate) struct StepForm {
    csrf: Option<String>,
    /// A rejection's reason.
    reason: Option<String>,
    /// A high-risk promote's typed phrase.
    confirmation: Option<String>,
    totp: Option<String>,
}

/// One promotion as the page shows it.
pub(crate) struct PromotionCard {
    pub(crate) id: i64,
    pub(crate) flag: String,
    pub(crate) risk: &'static str,
    pub(crate) state: &'static str,
    pub(crate) marked_by: String,
    pub(crate) marked_at: String,
    pub(crate) soak_ends_at: String,
    /// RFC 3339, for the live countdown (`<time datetime>`).
    pub(crate) soak_ends_iso: String,
    /// "3 h 12 min" while the soak runs; `None` once it has ended.
    pub(crate) soak_left: Option<String>,
    pub(crate) approved: Option<String>,
    pub(crate) ended: Option<String>,
    pub(crate) reason: Option<String>,
    pub(crate) expires_at: Option<String>,
    pub(crate) can_approve: bool,
    pub(crate) can_promote: bool,
    pub(crate) can_reject: bool,
    /// The phrase to type (high-risk flags).
    pub(crate) phrase: Option<String>,
    /// The promote form asks for a TOTP code (high risk, session not elevated).
    pub(crate) needs_totp: bool,
}

impl PromotionCard {
    pub(crate) fn new(
        state: &ServerState,
        record: &PromotionRecord,
        now: DateTime<Utc>,
        (actor, role, elevated): (&str, Role, bool),
    ) -> PromotionCard {
        let windows = state.app.promotion_windows();
        let flags = state.app.flags();
        let risk = flags.get(&record.flag_key).map(vexil_core::FlagDecl::risk);
        let p = &record.promotion;
        let may = |action| check_role(role, action).is_ok();
        let soak_over = now >= p.soak_ends_at;
        let high = risk == Some(Risk::High);
        let by_at = |by: Option<&String>, at: Option<DateTime<Utc>>| {
            at.map(|at| match by {
                Some(by) => format!("{by}, {}", utc(at)),
                None => format!("vexil, {}", utc(at)),
            })
        };
        PromotionCard {
            id: record.id,
            flag: record.flag_key.clone(),
            risk: risk.map_or("undeclared", Risk::as_str),
            state: p.state.as_str(),
            marked_by: p.marked_by.clone(),
            marked_at: utc(p.marked_at),
            soak_ends_at: utc(p.soak_ends_at),
            soak_ends_iso: p
                .soak_ends_at
                .to_rfc3339_opts(chrono::SecondsFormat::Secs, true),
            soak_left: (!soak_over).then(|| time_left(p.soak_ends_at - now)),
            approved: by_at(p.approved_by.as_ref(), p.approved_at),
            ended: by_at(p.ended_by.as_ref(), p.ended_at),
            // An expiry's reason is a code, said in words; a rejection's is the
            // operator's own.
            reason: p.reason.as_deref().map(|reason| {
                match (p.state, ExpiryReason::parse(reason)) {
                    (PromotionState::Expired, Some(code)) => code.to_string(),
                    _ => reason.to_owned(),
                }
            }),
            expires_at: promotion::expires_at(p, windows).map(utc),
            can_approve: p.state == PromotionState::Pending
                && soak_over
                && may(Action::ApprovePromotion)
                && !(windows.distinct_approver && p.marked_by == actor),
            can_promote: p.state == PromotionState::Approved
                && risk.is_some_and(|risk| may(Action::Promote(risk))),
            can_reject: p.state.is_open() && may(Action::RejectPromotion),
            phrase: high.then(|| promotion::confirmation_phrase(&record.flag_key)),
            needs_totp: high && !elevated,
        }
    }
}

#[derive(Template)]
#[template(path = "promotions.html")]
struct PromotionsPage {
    chrome: Chrome,
    csrf: String,
    open: Vec<PromotionCard>,
    recent: Vec<PromotionCard>,
    notice: Option<String>,
    pending_days: i64,
    approval_hours: i64,
    distinct_approver: bool,
}

pub(crate) async fn show(
    State(state): State<ServerState>,
    operator: Operator,
    Query(query): Query<PromotionsQuery>,
) -> Result<Response, ConsoleError> {
    let role = operator.actor.role();
    operator.actor.may(Action::ViewFlags)?;
    let app = &state.app;
    let now = app.now();
    let who = (operator.actor.name(), role, operator.elevated());
    let card = |record: &PromotionRecord| PromotionCard::new(&state, record, now, who);
    // Approved first (the next step is theirs), then pending, each oldest first.
    let mut records = app.open_promotions().await?;
    records.sort_by_key(|r| (r.promotion.state != PromotionState::Approved, r.id));
    let open: Vec<PromotionCard> = records.iter().map(card).collect();
    let recent = app
        .promotions(None, None, RECENT + u32::try_from(open.len()).unwrap_or(0))
        .await?
        .iter()
        .filter(|record| !record.promotion.state.is_open())
        .take(RECENT as usize)
        .map(card)
        .collect();
    // A notice about the promotion a step just moved; an unknown id says nothing.
    let done = query.done.as_deref().and_then(|id| id.parse::<i64>().ok());
    let notice = match done {
        Some(id) => match app.promotion(id).await {
            Ok(record) => Some(format!(
                "Promotion {id} of {} is {} now.",
                record.flag_key, record.promotion.state
            )),
            Err(AppError::UnknownPromotion { .. }) => None,
            Err(error) => return Err(error.into()),
        },
        None => None,
    };
    let windows = app.promotion_windows();
    let page = PromotionsPage {
        chrome: operator.chrome("promotions"),
        csrf: operator.visitor.csrf().to_owned(),
        open,
        recent,
        notice,
        pending_days: windows.pending_after_soak.num_days(),
        approval_hours: windows.approval.num_hours(),
        distinct_approver: windows.distinct_approver,
    };
    Ok(page::html(StatusCode::OK, &page))
}

/// A promotion id from the path, or a clear refusal.
fn promotion_id(text: &str) -> Result<i64, ConsoleError> {
    text.parse::<i64>()
        .ok()
        .filter(|id| *id > 0)
        .ok_or_else(|| {
            ConsoleError::BadRequest(format!(
                "promotion id {}: expected a positive whole number",
                vexil_core::message::one_line(text)
            ))
        })
}

/// Back to the list, the moved promotion named.
fn done(id: i64) -> Response {
    Redirect::to(&format!("/console/promotions?done={id}#promotion-{id}")).into_response()
}

pub(crate) async fn mark(
    State(state): State<ServerState>,
    Path(flag_key): Path<String>,
    operator: Operator,
    Form(form): Form<StepForm>,
) -> Result<Response, ConsoleError> {
    operator.visitor.check_csrf(form.csrf.as_deref())?;
    let key = parse_flag_key(&flag_key)?;
    let stepped = state
        .app
        .mark_promote(&operator.actor, &key, Via::Console)
        .await?;
    Ok(done(stepped.record.id))
}

pub(crate) async fn approve(
    State(state): State<ServerState>,
    Path(id): Path<String>,
    operator: Operator,
    Form(form): Form<StepForm>,
) -> Result<Response, ConsoleError> {
    operator.visitor.check_csrf(form.csrf.as_deref())?;
    let id = promotion_id(&id)?;
    state.app.approve(&operator.actor, id, Via::Console).await?;
    Ok(done(id))
}

pub(crate) async fn reject(
    State(state): State<ServerState>,
    Path(id): Path<String>,
    operator: Operator,
    Form(form): Form<StepForm>,
) -> Result<Response, ConsoleError> {
    operator.visitor.check_csrf(form.csrf.as_deref())?;
    let id = promotion_id(&id)?;
    let reason = form.reason.unwrap_or_default();
    state
        .app
        .reject(&operator.actor, id, &reason, Via::Console)
        .await?;
    Ok(done(id))
}

pub(crate) async fn promote(
    State(state): State<ServerState>,
    Path(id): Path<String>,
    mut operator: Operator,
    Form(form): Form<StepForm>,
) -> Result<Response, ConsoleError> {
    operator.visitor.check_csrf(form.csrf.as_deref())?;
    let id = promotion_id(&id)?;
    let confirmation = form.confirmation.as_deref();
    let code = operator.code(&state, form.totp.as_deref())?;
    let request = PromoteRequest {
        confirmation,
        via: Via::Console,
    };
    let address = operator.visitor.from();
    let step_up = operator.step_up(code.as_ref(), &address);
    // Role, phrase and state are checked before a code is looked at: a code is
    // spent only on a promote that needs it and can happen.
    match state
        .app
        .promote(&operator.actor, id, &request, step_up)
        .await
    {
        Ok(stepped) => operator.keep(stepped.elevation).await?,
        Err(AppError::Denied(Denied::ElevationRequired { .. })) => {
            // The elevation ran out while the page was open (or no code was sent):
            // elevate, then come back to the promotion.
            let next = format!("/console/promotions#promotion-{id}");
            let target = format!("/console/elevate?{}", page::query(&[("next", Some(&next))]));
            return Ok(Redirect::to(&target).into_response());
        }
        Err(error) => return Err(error.into()),
    }
    Ok(done(id))
}
