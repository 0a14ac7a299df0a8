//! Promotion from staging to prod (docs/promotion.md) as a pure state machine:
//! `mark` opens a promotion, `apply` moves it by one event, `due_expiry` says when
//! it must expire. The use cases read the facts (rows, the clock, who acts), call
//! these, and write the outcome with its audit row; nothing here does I/O.
//!
//! ```text
//! mark ──▶ pending ──approve (after the soak)──▶ approved ──promote──▶ promoted
//!             │                                     │
//!             ├──reject (a reason)──▶ rejected ◀────┤
//!             └──expire (a reason)──▶ expired  ◀────┘
//! ```
//!
//! Terminal states (`promoted`, `rejected`, `expired`) accept nothing.

use std::fmt;

use chrono::{DateTime, TimeDelta, Utc};
use serde::Serialize;

use crate::audit::{FLAG_APPROVED, FLAG_EXPIRED, FLAG_PROMOTED, FLAG_REJECTED};
use crate::risk::Risk;

/// Where a promotion is.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum PromotionState {
    Pending,
    Approved,
    Promoted,
    Rejected,
    Expired,
}

impl PromotionState {
    pub const ALL: [PromotionState; 5] = [
        PromotionState::Pending,
        PromotionState::Approved,
        PromotionState::Promoted,
        PromotionState::Rejected,
        PromotionState::Expired,
    ];

    pub fn as_str(self) -> &'static str {
        match self {
            PromotionState::Pending => "pending",
            PromotionState::Approved => "approved",
            PromotionState::Promoted => "promoted",
            PromotionState::Rejected => "rejected",
            PromotionState::Expired => "expired",
        }
    }

    /// The state named `text`, as stored.
    pub fn parse(text: &str) -> Option<PromotionState> {
        PromotionState::ALL.into_iter().find(|s| s.as_str() == text)
    }

    /// Pending or approved: the flag has an open promotion.
    pub fn is_open(self) -> bool {
        matches!(self, PromotionState::Pending | PromotionState::Approved)
    }
}

impl fmt::Display for PromotionState {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// Why a promotion expired, kept in its `console.flag.expired` audit row.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum ExpiryReason {
    /// The staging value changed while the promotion was open: what soaked is not
    /// what would be promoted.
    StagingChanged,
    /// Prod was changed by other means (a flip, direct SQL) while it was open.
    ProdChanged,
    /// Still pending `Windows::pending_after_soak` after the soak ended.
    PendingTooLong,
    /// Approved but not promoted within `Windows::approval`.
    ApprovalUnused,
}

impl ExpiryReason {
    pub const ALL: [ExpiryReason; 4] = [
        ExpiryReason::StagingChanged,
        ExpiryReason::ProdChanged,
        ExpiryReason::PendingTooLong,
        ExpiryReason::ApprovalUnused,
    ];

    /// The reason named `text`, as stored.
    pub fn parse(text: &str) -> Option<ExpiryReason> {
        ExpiryReason::ALL.into_iter().find(|r| r.as_str() == text)
    }

    pub fn as_str(self) -> &'static str {
        match self {
            ExpiryReason::StagingChanged => "staging_changed",
            ExpiryReason::ProdChanged => "prod_changed",
            ExpiryReason::PendingTooLong => "pending_too_long",
            ExpiryReason::ApprovalUnused => "approval_unused",
        }
    }
}

impl fmt::Display for ExpiryReason {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            ExpiryReason::StagingChanged => "the staging value changed while it was open",
            ExpiryReason::ProdChanged => "prod was changed by other means while it was open",
            ExpiryReason::PendingTooLong => "it was not approved in time after its soak",
            ExpiryReason::ApprovalUnused => "it was approved but not promoted in time",
        })
    }
}

/// How long an open promotion may wait, and whether the approver must differ from
/// the account that marked it (four eyes).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Windows {
    /// A pending promotion expires this long after its soak ended (default 7 days:
    /// a week to find an approver, after which the soak no longer says much about
    /// the flag as it is now).
    pub pending_after_soak: TimeDelta,
    /// An approved promotion expires this long after its approval (default 72 h: a
    /// weekend's worth; an approval is a judgement about a moment).
    pub approval: TimeDelta,
    /// The approver must not be the account that marked it.
    pub distinct_approver: bool,
}

impl Default for Windows {
    fn default() -> Windows {
        Windows {
            pending_after_soak: TimeDelta::days(7),
            approval: TimeDelta::hours(72),
            distinct_approver: false,
        }
    }
}

/// A promotion as the state machine sees it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Promotion {
    pub state: PromotionState,
    pub marked_by: String,
    pub marked_at: DateTime<Utc>,
    /// `marked_at` plus the flag's `soak_period_hours`.
    pub soak_ends_at: DateTime<Utc>,
    pub approved_by: Option<String>,
    pub approved_at: Option<DateTime<Utc>>,
    /// When it was promoted, rejected or expired.
    pub ended_at: Option<DateTime<Utc>>,
    /// Who promoted or rejected it (`None` for an expiry: vexil ends it).
    pub ended_by: Option<String>,
    /// A rejection's or an expiry's reason.
    pub reason: Option<String>,
}

/// What the use case read about the flag since the promotion was marked.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct Changes {
    /// The staging value is no longer the one that was marked (or its row was
    /// written again).
    pub staging_changed: bool,
    /// The prod row was written by anything but this promotion.
    pub prod_changed: bool,
}

/// Why a flag cannot be marked.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum MarkError {
    #[error("it is off in staging: only a flag verified on in staging is promoted")]
    OffInStaging,
    #[error("it is already on in prod: there is nothing to promote")]
    OnInProd,
    #[error("it already has an open promotion ({state})")]
    AlreadyOpen { state: PromotionState },
}

/// Opens a promotion for a flag on in staging and off in prod, with no open one.
pub fn mark(
    by: &str,
    now: DateTime<Utc>,
    soak_period_hours: u32,
    staging_on: bool,
    prod_on: bool,
    open: Option<PromotionState>,
) -> Result<Promotion, MarkError> {
    if let Some(state) = open.filter(|s| s.is_open()) {
        return Err(MarkError::AlreadyOpen { state });
    }
    if !staging_on {
        return Err(MarkError::OffInStaging);
    }
    if prod_on {
        return Err(MarkError::OnInProd);
    }
    Ok(Promotion {
        state: PromotionState::Pending,
        marked_by: by.to_owned(),
        marked_at: now,
        soak_ends_at: now + TimeDelta::hours(i64::from(soak_period_hours)),
        approved_by: None,
        approved_at: None,
        ended_at: None,
        ended_by: None,
        reason: None,
    })
}

/// What can happen to a promotion.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Event<'a> {
    Approve { by: &'a str },
    Promote { by: &'a str },
    Reject { by: &'a str, reason: &'a str },
    Expire(ExpiryReason),
}

/// A move from one state to another, and the audit action that records it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Transition {
    pub from: PromotionState,
    pub to: PromotionState,
    pub action: &'static str,
}

/// Why an event was refused; the promotion is unchanged.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum TransitionError {
    #[error("the promotion is {state}: it accepts nothing more")]
    Ended { state: PromotionState },
    #[error("the soak ends at {} UTC: approve after that", ends_at.format("%Y-%m-%d %H:%M:%S"))]
    SoakNotOver { ends_at: DateTime<Utc> },
    #[error("only a pending promotion can be approved; this one is {state}")]
    NotPending { state: PromotionState },
    #[error("only an approved promotion can be promoted; this one is {state}")]
    NotApproved { state: PromotionState },
    #[error("a rejection needs a reason")]
    ReasonRequired,
    #[error("'{name}' marked it: another superadmin must approve it (four eyes)")]
    SameApprover { name: String },
    /// The promotion must expire first (the use case applies `Expire(reason)`).
    #[error("it has expired: {reason}")]
    ExpiryDue { reason: ExpiryReason },
}

/// The expiry `promotion` is due for at `now`, if any: changes first (they make the
/// soak meaningless at once), then the time windows.
pub fn due_expiry(
    promotion: &Promotion,
    now: DateTime<Utc>,
    windows: &Windows,
    changes: Changes,
) -> Option<ExpiryReason> {
    if !promotion.state.is_open() {
        return None;
    }
    if changes.staging_changed {
        return Some(ExpiryReason::StagingChanged);
    }
    if changes.prod_changed {
        return Some(ExpiryReason::ProdChanged);
    }
    match expires_at(promotion, windows) {
        Some(at) if now >= at && promotion.state == PromotionState::Pending => {
            Some(ExpiryReason::PendingTooLong)
        }
        Some(at) if now >= at => Some(ExpiryReason::ApprovalUnused),
        _ => None,
    }
}

/// When an open promotion expires if nothing else happens: a pending one
/// `pending_after_soak` after its soak ends, an approved one `approval` after it was
/// approved. `None` for an ended one.
pub fn expires_at(promotion: &Promotion, windows: &Windows) -> Option<DateTime<Utc>> {
    match (promotion.state, promotion.approved_at) {
        (PromotionState::Pending, _) => Some(promotion.soak_ends_at + windows.pending_after_soak),
        (PromotionState::Approved, Some(at)) => Some(at + windows.approval),
        _ => None,
    }
}

/// `promotion` after `event` at `now`, and the transition to audit; or why not.
/// An event other than `Expire` on a promotion whose expiry is due is refused with
/// `ExpiryDue`, so nothing is approved or promoted on stale ground.
pub fn apply(
    promotion: &Promotion,
    event: &Event<'_>,
    now: DateTime<Utc>,
    windows: &Windows,
    changes: Changes,
) -> Result<(Promotion, Transition), TransitionError> {
    let from = promotion.state;
    if !from.is_open() {
        return Err(TransitionError::Ended { state: from });
    }
    if !matches!(event, Event::Expire(_))
        && let Some(reason) = due_expiry(promotion, now, windows, changes)
    {
        return Err(TransitionError::ExpiryDue { reason });
    }
    let mut next = promotion.clone();
    let (to, action) = match *event {
        Event::Approve { by } => {
            if from != PromotionState::Pending {
                return Err(TransitionError::NotPending { state: from });
            }
            if now < promotion.soak_ends_at {
                return Err(TransitionError::SoakNotOver {
                    ends_at: promotion.soak_ends_at,
                });
            }
            if windows.distinct_approver && by == promotion.marked_by {
                return Err(TransitionError::SameApprover {
                    name: by.to_owned(),
                });
            }
            next.approved_by = Some(by.to_owned());
            next.approved_at = Some(now);
            (PromotionState::Approved, FLAG_APPROVED)
        }
        Event::Promote { by } => {
            if from != PromotionState::Approved {
                return Err(TransitionError::NotApproved { state: from });
            }
            next.ended_at = Some(now);
            next.ended_by = Some(by.to_owned());
            (PromotionState::Promoted, FLAG_PROMOTED)
        }
        Event::Reject { by, reason } => {
            let reason = reason.trim();
            if reason.is_empty() {
                return Err(TransitionError::ReasonRequired);
            }
            next.ended_at = Some(now);
            next.ended_by = Some(by.to_owned());
            next.reason = Some(reason.to_owned());
            (PromotionState::Rejected, FLAG_REJECTED)
        }
        Event::Expire(reason) => {
            next.ended_at = Some(now);
            next.reason = Some(reason.as_str().to_owned());
            (PromotionState::Expired, FLAG_EXPIRED)
        }
    };
    next.state = to;
    Ok((next, Transition { from, to, action }))
}

/// Time left as people read it: `2 d 3 h`, `3 h 12 min`, `12 min`. Minutes round
/// up, so a soak still running never reads `0 min`.
pub fn time_left(left: TimeDelta) -> String {
    let minutes = (left.num_seconds().max(0) + 59) / 60;
    match (minutes / (24 * 60), minutes / 60 % 24, minutes % 60) {
        (0, 0, m) => format!("{m} min"),
        (0, h, m) => format!("{h} h {m} min"),
        (d, h, _) => format!("{d} d {h} h"),
    }
}

/// What an operator types to promote a `risk: high` flag, compared exactly.
pub fn confirmation_phrase(flag_key: &str) -> String {
    format!("promote {flag_key} to prod")
}

/// Why a promotion's typed confirmation was refused.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum ConfirmationError {
    #[error("promoting a high-risk flag needs the typed confirmation '{phrase}'")]
    Missing { phrase: String },
    #[error("the typed confirmation does not match: type '{phrase}' exactly")]
    Mismatch { phrase: String },
}

/// Checks what the operator typed to promote `flag_key`: a `risk: high` flag needs
/// [`confirmation_phrase`] exactly (no trimming, no case folding: typing it is the
/// point); other flags need nothing and ignore what was given.
pub fn check_confirmation(
    flag_key: &str,
    risk: Risk,
    given: Option<&str>,
) -> Result<(), ConfirmationError> {
    if risk != Risk::High {
        return Ok(());
    }
    let phrase = confirmation_phrase(flag_key);
    match given {
        None | Some("") => Err(ConfirmationError::Missing { phrase }),
        Some(text) if text == phrase => Ok(()),
        Some(_) => Err(ConfirmationError::Mismatch { phrase }),
    }
}
