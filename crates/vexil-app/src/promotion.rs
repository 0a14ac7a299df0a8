//! Promotion from staging to prod (SPEC §7, issue [F]): `mark_promote`, `approve`,
//! `promote`, `reject` and `expire_due`. Each authorizes first, then runs one
//! transaction: read the promotion and both rows of its flag, let
//! `vexil_core::promotion` decide, and write the outcome with its audit row. A move
//! is written only if the promotion is still in the state that was read, so two
//! servers (or a server and the expiry job) never both move one promotion; the loser
//! reads again and is refused by the state machine on the newer state.

use chrono::{DateTime, Utc};
use serde_json::{Value, json};
use vexil_core::audit::{FLAG_FLIP, FLAG_MARK_PROMOTE, FlipPayload, TARGET_FEATURE_FLAG, Via};
use vexil_core::promotion::{
    self, Changes, Event, ExpiryReason, Promotion, PromotionState, Transition, TransitionError,
    Windows, check_confirmation,
};
use vexil_core::{Action, Env, FlagDecl, MasterSwitch, authorize, resolve};
use vexil_store::{
    Expected, FlagRow, NewAudit, NewPromotion, PromotionMove, PromotionRow, StoreError, WriteTx,
};

use crate::app::{Actor, App};
use crate::error::AppError;

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
}

/// A promote as asked for.
#[derive(Debug, Clone, Copy)]
pub struct PromoteRequest<'a> {
    /// Whether the caller holds a valid TOTP elevation.
    pub elevated: bool,
    /// What the operator typed; a `risk: high` flag needs its confirmation phrase.
    pub confirmation: Option<&'a str>,
    pub via: Via,
}

/// The flag's two rows and the values in force, as one transaction reads them.
struct Sides {
    staging: Option<FlagRow>,
    prod: Option<FlagRow>,
    staging_on: Option<bool>,
    prod_on: Option<bool>,
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
        flag_key: &str,
        via: Via,
    ) -> Result<Stepped, AppError> {
        let flags = self.flags.load();
        let decl = flags.get(flag_key).ok_or_else(|| AppError::UnknownFlag {
            key: flag_key.to_owned(),
        })?;
        authorize(actor.role, Action::MarkPromote, false)?;
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
            &actor.name,
            now,
            decl.soak_period_hours(),
            sides.staging_on == Some(true),
            sides.prod_on == Some(true),
            open,
        )
        .map_err(cannot)?;
        let new = NewPromotion {
            flag_key: key,
            marked_by: &actor.name,
            marked_at: now,
            soak_ends_at: marked.soak_ends_at,
            staging_audit_id: sides.staging.as_ref().and_then(|r| r.audit_id),
            prod_audit_id: sides.prod.as_ref().and_then(|r| r.audit_id),
        };
        let audit = |id| NewAudit {
            created_at: now,
            admin_id: Some(actor.id),
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
        // that refused it is the rule.
        let (id, audit_id) = tx.insert_promotion(&new, audit).await?.ok_or_else(|| {
            cannot(promotion::MarkError::AlreadyOpen {
                state: PromotionState::Pending,
            })
        })?;
        tx.commit().await?;
        Ok(Stepped {
            record: PromotionRecord {
                id,
                flag_key: key.to_owned(),
                promotion: marked,
            },
            audit_id,
            flip_audit_id: None,
        })
    }

    /// Approves a pending promotion whose soak has ended.
    pub async fn approve(&self, actor: &Actor, id: i64, via: Via) -> Result<Stepped, AppError> {
        authorize(actor.role, Action::ApprovePromotion, false)?;
        self.step(actor, id, Event::Approve { by: &actor.name }, via)
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
        authorize(actor.role, Action::RejectPromotion, false)?;
        let reason = vexil_core::audit::reason(Some(reason))?.unwrap_or("");
        self.step(
            actor,
            id,
            Event::Reject {
                by: &actor.name,
                reason,
            },
            via,
        )
        .await
    }

    /// Promotes an approved promotion: the prod row, its `console.flag.flip` audit
    /// row and the `console.flag.promoted` row, in one transaction.
    pub async fn promote(
        &self,
        actor: &Actor,
        id: i64,
        request: &PromoteRequest<'_>,
    ) -> Result<Stepped, AppError> {
        let flags = self.flags.load();
        let flag_key = self.promotion(id).await?.flag_key;
        let decl = flags
            .get(&flag_key)
            .ok_or(AppError::UnknownFlag { key: flag_key })?;
        let key = decl.key().as_str();
        authorize(actor.role, Action::Promote(decl.risk()), request.elevated)?;
        check_confirmation(key, decl.risk(), request.confirmation)?;
        let by = Some(actor);
        // Each pass either commits, is refused, or lost a race that moved the
        // promotion or the prod row forward; the next read sees that, so this ends.
        loop {
            let now = self.clock.now();
            let mut tx = self.db.begin_write().await?;
            let (row, current) = read(&mut tx, id).await?;
            let sides = self.sides(&mut tx, key, Some(decl)).await?;
            let changes = changes(&row, &sides);
            let event = Event::Promote { by: &actor.name };
            let (next, transition) =
                match promotion::apply(&current, &event, now, &self.windows, changes) {
                    Ok(step) => step,
                    Err(error) => return self.refused(tx, &row, &current, now, error).await,
                };
            let payload = FlipPayload {
                flag: decl.key(),
                env: &Env::PROD,
                from: false,
                to: true,
                via: request.via,
                reason: None,
                drift: None,
                promotion_id: Some(id),
            };
            let flip_audit = NewAudit {
                created_at: now,
                admin_id: Some(actor.id),
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
                    &actor.name,
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
            });
        }
    }

    /// Expires every open promotion whose expiry is due at `now` (`due_expiry`),
    /// each in its own transaction with its `console.flag.expired` row. Safe to run
    /// from several processes at once: a promotion another process expired first is
    /// left alone, with no second audit row.
    pub async fn expire_due(&self, now: DateTime<Utc>) -> Result<Vec<Stepped>, AppError> {
        let mut expired = Vec::new();
        for open in self.db.open_promotions().await? {
            let mut tx = self.db.begin_write().await?;
            let (row, current) = read(&mut tx, open.id).await?;
            let flags = self.flags.load();
            let sides = self
                .sides(&mut tx, &row.flag_key, flags.get(&row.flag_key))
                .await?;
            let Some(reason) =
                promotion::due_expiry(&current, now, &self.windows, changes(&row, &sides))
            else {
                continue;
            };
            if let Some(stepped) =
                expire(&mut tx, &row, &current, now, &self.windows, reason).await?
            {
                tx.commit().await?;
                expired.push(stepped);
            }
        }
        Ok(expired)
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
            let (row, current) = read(&mut tx, id).await?;
            let flags = self.flags.load();
            let sides = self
                .sides(&mut tx, &row.flag_key, flags.get(&row.flag_key))
                .await?;
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

    /// The flag's rows in staging and prod and the values in force there (a row if
    /// there is one, whatever the master switch, as a flip judges "before"; else the
    /// env's variables; else the default). Values are unknown without a declaration.
    async fn sides(
        &self,
        tx: &mut WriteTx,
        key: &str,
        decl: Option<&FlagDecl>,
    ) -> Result<Sides, AppError> {
        let staging = tx.flag_row(key, Env::STAGING.as_str()).await?;
        let prod = tx.flag_row(key, Env::PROD.as_str()).await?;
        let (staging_on, prod_on) = match decl {
            Some(decl) => (
                Some(
                    self.value_in(tx, decl, &Env::STAGING, staging.as_ref())
                        .await?,
                ),
                Some(self.value_in(tx, decl, &Env::PROD, prod.as_ref()).await?),
            ),
            None => (None, None),
        };
        Ok(Sides {
            staging,
            prod,
            staging_on,
            prod_on,
        })
    }

    async fn value_in(
        &self,
        tx: &mut WriteTx,
        decl: &FlagDecl,
        env: &Env,
        row: Option<&FlagRow>,
    ) -> Result<bool, AppError> {
        if let Some(row) = row {
            return Ok(row.value);
        }
        let layer = self.env_layer_in(tx, env).await?;
        Ok(resolve(decl, None, &layer.snapshot, MasterSwitch::On).value)
    }
}

/// What changed since the promotion was marked: a row written again (by vexil or by
/// SQL: either gives it a new `audit_id`), or a value that no longer holds.
fn changes(row: &PromotionRow, sides: &Sides) -> Changes {
    let audit_id = |row: &Option<FlagRow>| row.as_ref().and_then(|r| r.audit_id);
    Changes {
        staging_changed: audit_id(&sides.staging) != row.staging_audit_id
            || sides.staging_on == Some(false),
        prod_changed: audit_id(&sides.prod) != row.prod_audit_id || sides.prod_on == Some(true),
    }
}

/// Moves `current` to expired for `reason`, with its audit row (no account: vexil
/// expires it). `None` when another writer moved it first.
async fn expire(
    tx: &mut WriteTx,
    row: &PromotionRow,
    current: &Promotion,
    now: DateTime<Utc>,
    windows: &Windows,
    reason: ExpiryReason,
) -> Result<Option<Stepped>, AppError> {
    let (next, transition) = promotion::apply(
        current,
        &Event::Expire(reason),
        now,
        windows,
        Changes::default(),
    )
    .map_err(|error| AppError::Promotion {
        id: row.id,
        flag: row.flag_key.clone(),
        error,
    })?;
    let extra = json!({"detail": reason.to_string()});
    let audit = step_audit(now, None, row, &next, transition, None, extra);
    let Some(audit_id) = tx
        .move_promotion(row.id, &move_of(&next, transition), &audit)
        .await?
    else {
        return Ok(None);
    };
    Ok(Some(Stepped {
        record: PromotionRecord {
            id: row.id,
            flag_key: row.flag_key.clone(),
            promotion: next,
        },
        audit_id,
        flip_audit_id: None,
    }))
}

/// The audit row of a transition (SPEC §4: the promotion id, and for a rejection or
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
        admin_id: actor.map(|a| a.id),
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
