//! Promotion from staging to prod (docs/promotion.md): `mark_promote`, `approve`,
//! `promote`, `reject` and `expire_due`. Each authorizes first, then runs one
//! transaction: read the promotion and both rows of its flag, let
//! `vexil_core::promotion` decide, and write the outcome with its audit row. A move
//! is written only if the promotion is still in the state that was read, so two
//! servers (or a server and the expiry job) never both move one promotion; the loser
//! reads again and is refused by the state machine on the newer state.
//!
//! `promote_preflight` is what a door calls before it looks at a TOTP code (the role,
//! the typed phrase, a promotion that can be promoted now), so a code is spent only on
//! a promote that can happen. The windows and the four-eyes rule come from
//! `App::with_promotion_windows`. The rules are in docs/promotion.md.

use chrono::{DateTime, Utc};
use serde_json::{Value, json};
use vexil_core::audit::{FLAG_FLIP, FLAG_MARK_PROMOTE, FlipPayload, TARGET_FEATURE_FLAG, Via};
use vexil_core::promotion::{
    self, Changes, Event, Promotion, PromotionState, Transition, TransitionError, Windows,
    check_confirmation,
};
use vexil_core::{Action, Env, FlagDecl, FlagKey};
use vexil_store::{
    Expected, NewAudit, NewPromotion, PromotionMove, PromotionRow, StoreError, WriteTx,
};

use crate::app::{Actor, App};
use crate::elevation::{Elevation, StepUp};
use crate::error::AppError;

mod expiry;
mod sides;

use expiry::expire;
use sides::changes;

/// A promotion and the flag it is about.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PromotionRecord {
    pub id: i64,
    pub flag_key: String,
    pub promotion: Promotion,
}

/// What a step did: the promotion after it and the audit row that records it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Stepped {
    pub record: PromotionRecord,
    pub audit_id: i64,
    /// For a promote, the `console.flag.flip` row of the prod write.
    pub flip_audit_id: Option<i64>,
    /// For a promote, the elevation a code sent with it made (a console session
    /// keeps it).
    pub elevation: Option<Elevation>,
}

/// A promote as asked for.
#[derive(Debug, Clone, Copy)]
pub struct PromoteRequest<'a> {
    /// What the operator typed; a `risk: high` flag needs its confirmation phrase.
    pub confirmation: Option<&'a str>,
    pub via: Via,
}

impl App {
    /// The windows after which open promotions expire, and the four-eyes rule.
    pub fn with_promotion_windows(mut self, windows: Windows) -> App {
        self.windows = windows;
        self
    }

    pub fn promotion_windows(&self) -> &Windows {
        &self.windows
    }

    /// Promotions newest first, in `state` and of `flag_key` when given. The front
    /// ends authorize reading them as reading the flags.
    pub async fn promotions(
        &self,
        state: Option<PromotionState>,
        flag_key: Option<&str>,
        limit: u32,
    ) -> Result<Vec<PromotionRecord>, AppError> {
        // A filter from a door: free text until checked (a NUL fails PostgreSQL).
        if let Some(flag_key) = flag_key {
            vexil_core::text::check("flag", flag_key)?;
        }
        let rows = self
            .db
            .promotions(state.map(PromotionState::as_str), flag_key, limit)
            .await?;
        rows.into_iter().map(record).collect()
    }

    pub async fn promotion(&self, id: i64) -> Result<PromotionRecord, AppError> {
        let row = self
            .db
            .promotion(id)
            .await?
            .ok_or(AppError::UnknownPromotion { id })?;
        record(row)
    }

    /// Opens a promotion for a flag on in staging and off in prod; its soak ends
    /// `soak_period_hours` from now.
    pub async fn mark_promote(
        &self,
        actor: &Actor,
        flag_key: &FlagKey,
        via: Via,
    ) -> Result<Stepped, AppError> {
        self.authorize(actor, Action::MarkPromote, StepUp::None)
            .await?;
        let decl = self.visible_flag(actor, flag_key)?;
        let decl = &decl;
        let key = decl.key().as_str();
        let now = self.clock.now();
        let mut tx = self.db.begin_write().await?;
        let open = match tx.open_promotion(key).await? {
            Some(row) => Some(state_of(&row)?),
            None => None,
        };
        let sides = self.sides(&mut tx, key, Some(decl)).await?;
        let cannot = |reason| AppError::CannotMark {
            flag: key.to_owned(),
            reason,
        };
        let marked = promotion::mark(
            actor.name(),
            now,
            decl.soak_period_hours(),
            sides.staging_on == Some(true),
            sides.prod_on == Some(true),
            open,
        )
        .map_err(cannot)?;
        let new = NewPromotion {
            flag_key: key,
            marked_by: actor.name(),
            marked_at: now,
            soak_ends_at: marked.soak_ends_at,
            staging_audit_id: sides.staging.as_ref().and_then(|r| r.audit_id),
            prod_audit_id: sides.prod.as_ref().and_then(|r| r.audit_id),
        };
        let audit = |id| NewAudit {
            created_at: now,
            admin_id: Some(actor.id()),
            action: FLAG_MARK_PROMOTE,
            target_type: TARGET_FEATURE_FLAG,
            target_id: key.to_owned(),
            payload: json!({
                "flag": key,
                "promotion_id": id,
                "soak_ends_at": marked.soak_ends_at,
                "soak_period_hours": decl.soak_period_hours(),
                "via": via,
            }),
        };
        // `None`: another server opened one after our read (PostgreSQL); the index
        // that refused it is the rule, and a new statement sees the one it holds.
        let Some((id, audit_id)) = tx.insert_promotion(&new, audit).await? else {
            let state = match tx.open_promotion(key).await? {
                Some(row) => state_of(&row)?,
                None => PromotionState::Pending,
            };
            return Err(cannot(promotion::MarkError::AlreadyOpen { state }));
        };
        tx.commit().await?;
        Ok(Stepped {
            record: PromotionRecord {
                id,
                flag_key: key.to_owned(),
                promotion: marked,
            },
            audit_id,
            flip_audit_id: None,
            elevation: None,
        })
    }

    /// Approves a pending promotion whose soak has ended.
    pub async fn approve(&self, actor: &Actor, id: i64, via: Via) -> Result<Stepped, AppError> {
        self.authorize(actor, Action::ApprovePromotion, StepUp::None)
            .await?;
        self.step(actor, id, Event::Approve { by: actor.name() }, via)
            .await
    }

    /// Rejects a pending or approved promotion; the reason is required.
    pub async fn reject(
        &self,
        actor: &Actor,
        id: i64,
        reason: &str,
        via: Via,
    ) -> Result<Stepped, AppError> {
        self.authorize(actor, Action::RejectPromotion, StepUp::None)
            .await?;
        // Refused before the transaction: a malformed request changes nothing, not
        // even a due expiry.
        let Some(reason) = vexil_core::audit::reason(Some(reason))? else {
            return Err(AppError::Promotion {
                id,
                flag: self.promotion(id).await?.flag_key,
                error: TransitionError::ReasonRequired,
            });
        };
        self.step(
            actor,
            id,
            Event::Reject {
                by: actor.name(),
                reason,
            },
            via,
        )
        .await
    }

    /// What a promote of `id` asks of `actor` before a code is spent: the role
    /// (superadmin before the promotion is read, then the flag's risk, elevation
    /// aside), the typed phrase, and a promotion that, as last read, could be
    /// promoted now (approved, not expired by the clock). `promote` then checks
    /// everything again under lock.
    async fn promote_preflight(
        &self,
        actor: &Actor,
        id: i64,
        confirmation: Option<&str>,
    ) -> Result<(FlagDecl, Action), AppError> {
        let (record, decl, action) = self.promote_requirement(actor, id, confirmation).await?;
        let event = Event::Promote { by: actor.name() };
        let now = self.clock.now();
        promotion::apply(
            &record.promotion,
            &event,
            now,
            &self.windows,
            Changes::default(),
        )
        .map_err(|error| AppError::Promotion {
            id,
            flag: record.flag_key.clone(),
            error,
        })?;
        Ok((decl, action))
    }

    /// The role and the typed phrase of a promote, and its action.
    async fn promote_requirement(
        &self,
        actor: &Actor,
        id: i64,
        confirmation: Option<&str>,
    ) -> Result<(PromotionRecord, FlagDecl, Action), AppError> {
        // Every promote needs superadmin: a lower role learns nothing of the promotion.
        actor.may(Action::Promote(vexil_core::Risk::Low))?;
        let record = self.promotion(id).await?;
        let flags = self.flags.load();
        let decl = flags
            .get(&record.flag_key)
            .cloned()
            .ok_or_else(|| AppError::UnknownFlag {
                key: record.flag_key.clone(),
            })?;
        let action = Action::Promote(decl.risk());
        actor.may(action)?;
        check_confirmation(&record.flag_key, decl.risk(), confirmation)?;
        Ok((record, decl, action))
    }

    /// Promotes an approved promotion: the prod row, its `console.flag.flip` audit
    /// row and the `console.flag.promoted` row, in one transaction.
    pub async fn promote(
        &self,
        actor: &Actor,
        id: i64,
        request: &PromoteRequest<'_>,
        step_up: StepUp<'_>,
    ) -> Result<Stepped, AppError> {
        let (decl, action) = self
            .promote_preflight(actor, id, request.confirmation)
            .await?;
        let elevation = self.authorize(actor, action, step_up).await?;
        let decl = &decl;
        let key = decl.key().as_str();
        let by = Some(actor);
        // Each pass either commits, is refused, or lost a race that moved the
        // promotion or the prod row forward; the next read sees that, so this ends.
        loop {
            let now = self.clock.now();
            let mut tx = self.db.begin_write().await?;
            let (row, current) = read(&mut tx, id).await?;
            let sides = self.sides(&mut tx, key, Some(decl)).await?;
            let changes = changes(&row, &sides);
            let event = Event::Promote { by: actor.name() };
            let (next, transition) =
                match promotion::apply(&current, &event, now, &self.windows, changes) {
                    Ok(step) => step,
                    Err(error) => return self.refused(tx, &row, &current, now, error).await,
                };
            let payload = FlipPayload {
                flag: decl.key(),
                env: &Env::PROD,
                // Off: a prod already on has expired the promotion (`changes`).
                from: sides.prod_on.unwrap_or(false),
                to: true,
                via: request.via,
                reason: None,
                drift: None,
                promotion_id: Some(id),
                reconcile: false,
            };
            let flip_audit = NewAudit {
                created_at: now,
                admin_id: Some(actor.id()),
                action: FLAG_FLIP,
                target_type: TARGET_FEATURE_FLAG,
                target_id: key.to_owned(),
                payload: json!(payload),
            };
            let expected = Expected::of(sides.prod.as_ref());
            let Some(flip_audit_id) = tx
                .write_flag(
                    key,
                    Env::PROD.as_str(),
                    true,
                    actor.name(),
                    expected,
                    &flip_audit,
                )
                .await?
            else {
                continue;
            };
            let extra = json!({"flip_audit_id": flip_audit_id});
            let audit = step_audit(now, by, &row, &next, transition, Some(request.via), extra);
            let Some(audit_id) = tx
                .move_promotion(id, &move_of(&next, transition), &audit)
                .await?
            else {
                continue;
            };
            tx.commit().await?;
            self.flipped(decl, &Env::PROD, request.via).await;
            return Ok(Stepped {
                record: PromotionRecord {
                    id,
                    flag_key: row.flag_key,
                    promotion: next,
                },
                audit_id,
                flip_audit_id: Some(flip_audit_id),
                elevation,
            });
        }
    }

    /// Every open promotion, oldest first.
    pub async fn open_promotions(&self) -> Result<Vec<PromotionRecord>, AppError> {
        let rows = self.db.open_promotions().await?;
        rows.into_iter().map(record).collect()
    }

    /// Approve or reject: read, decide, move with the audit row.
    async fn step(
        &self,
        actor: &Actor,
        id: i64,
        event: Event<'_>,
        via: Via,
    ) -> Result<Stepped, AppError> {
        loop {
            let now = self.clock.now();
            let mut tx = self.db.begin_write().await?;
            let (row, current, sides) = self.read_locked(&mut tx, id).await?;
            let (next, transition) =
                match promotion::apply(&current, &event, now, &self.windows, changes(&row, &sides))
                {
                    Ok(step) => step,
                    Err(error) => return self.refused(tx, &row, &current, now, error).await,
                };
            let audit = step_audit(
                now,
                Some(actor),
                &row,
                &next,
                transition,
                Some(via),
                json!({}),
            );
            // `None`: another writer moved it after our read; read again.
            if let Some(audit_id) = tx
                .move_promotion(id, &move_of(&next, transition), &audit)
                .await?
            {
                tx.commit().await?;
                return Ok(Stepped {
                    record: PromotionRecord {
                        id,
                        flag_key: row.flag_key,
                        promotion: next,
                    },
                    audit_id,
                    flip_audit_id: None,
                    elevation: None,
                });
            }
        }
    }

    /// The state machine refused `error`. When the refusal is that the promotion's
    /// expiry is due, it is expired now (committed, audited) before saying so, so the
    /// page the operator reloads shows why.
    async fn refused(
        &self,
        mut tx: WriteTx,
        row: &PromotionRow,
        current: &Promotion,
        now: DateTime<Utc>,
        error: TransitionError,
    ) -> Result<Stepped, AppError> {
        if let TransitionError::ExpiryDue { reason } = error
            && expire(&mut tx, row, current, now, &self.windows, reason)
                .await?
                .is_some()
        {
            tx.commit().await?;
        }
        Err(AppError::Promotion {
            id: row.id,
            flag: row.flag_key.clone(),
            error,
        })
    }
}

/// The audit row of a transition (docs/schema.md: the promotion id, and for a rejection or
/// an expiry its reason), plus the flag, the new state, the door and `extra`.
fn step_audit(
    now: DateTime<Utc>,
    actor: Option<&Actor>,
    row: &PromotionRow,
    next: &Promotion,
    transition: Transition,
    via: Option<Via>,
    extra: Value,
) -> NewAudit {
    let mut payload = json!({
        "flag": row.flag_key,
        "promotion_id": row.id,
        "state": transition.to,
    });
    if let Some(via) = via {
        payload["via"] = json!(via);
    }
    if let Some(reason) = &next.reason {
        payload["reason"] = json!(reason);
    }
    if let (Value::Object(payload), Value::Object(extra)) = (&mut payload, extra) {
        payload.extend(extra);
    }
    NewAudit {
        created_at: now,
        admin_id: actor.map(Actor::id),
        action: transition.action,
        target_type: TARGET_FEATURE_FLAG,
        target_id: row.flag_key.clone(),
        payload,
    }
}

fn move_of<'a>(next: &'a Promotion, transition: Transition) -> PromotionMove<'a> {
    let approved = transition.to == PromotionState::Approved;
    PromotionMove {
        from: transition.from.as_str(),
        to: transition.to.as_str(),
        approved_by: next.approved_by.as_deref().filter(|_| approved),
        approved_at: next.approved_at.filter(|_| approved),
        ended_at: next.ended_at,
        ended_by: next.ended_by.as_deref(),
        reason: next.reason.as_deref(),
    }
}

/// Promotion `id` as this transaction sees it.
async fn read(tx: &mut WriteTx, id: i64) -> Result<(PromotionRow, Promotion), AppError> {
    let row = tx
        .promotion(id)
        .await?
        .ok_or(AppError::UnknownPromotion { id })?;
    let promotion = promotion_of(&row)?;
    Ok((row, promotion))
}

fn record(row: PromotionRow) -> Result<PromotionRecord, AppError> {
    Ok(PromotionRecord {
        promotion: promotion_of(&row)?,
        id: row.id,
        flag_key: row.flag_key,
    })
}

fn promotion_of(row: &PromotionRow) -> Result<Promotion, AppError> {
    Ok(Promotion {
        state: state_of(row)?,
        marked_by: row.marked_by.clone(),
        marked_at: row.marked_at,
        soak_ends_at: row.soak_ends_at,
        approved_by: row.approved_by.clone(),
        approved_at: row.approved_at,
        ended_at: row.ended_at,
        ended_by: row.ended_by.clone(),
        reason: row.reason.clone(),
    })
}

fn state_of(row: &PromotionRow) -> Result<PromotionState, AppError> {
    PromotionState::parse(&row.state).ok_or_else(|| {
        AppError::Store(StoreError::Corrupt {
            what: format!("the state of promotion {}", row.id),
        })
    })
}
