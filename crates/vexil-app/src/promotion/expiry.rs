//! `App::expire_due`: the expiry job's round, which `vexil serve` runs every minute.

use chrono::{DateTime, Utc};
use serde_json::json;
use vexil_core::Env;
use vexil_core::promotion::{self, Changes, Event, ExpiryReason, Promotion, Windows};
use vexil_store::{PromotionRow, WriteTx};

use super::sides::{changes, sides_from};
use super::{PromotionRecord, Stepped, move_of, promotion_of, step_audit};
use crate::app::App;
use crate::error::AppError;

impl App {
    /// Expires every open promotion whose expiry is due at `now` (`due_expiry`),
    /// each in its own transaction with its `console.flag.expired` row. Safe to run
    /// from several processes at once: a promotion another process expired first is
    /// left alone, with no second audit row.
    ///
    /// Candidates are found by plain reads (every open promotion, every flag row, the
    /// two envs' variables: a handful of queries however many are open); only those
    /// are locked, judged again and written. A promotion that cannot be expired is
    /// logged and left for the next round, never a reason to skip the others.
    pub async fn expire_due(&self, now: DateTime<Utc>) -> Result<Vec<Stepped>, AppError> {
        let open = self.db.open_promotions().await?;
        if open.is_empty() {
            return Ok(Vec::new());
        }
        let rows = self.db.flag_rows().await?;
        let staging_vars = self.env_layer(&Env::STAGING).await?.snapshot.into_owned();
        let prod_vars = self.env_layer(&Env::PROD).await?.snapshot.into_owned();
        let flags = self.flags.load();
        let mut expired = Vec::new();
        for row in open {
            let row_in = |env: &Env| {
                rows.iter()
                    .find(|r| r.flag_key == row.flag_key && r.env == env.as_str())
                    .cloned()
            };
            let sides = sides_from(
                flags.get(&row.flag_key),
                (row_in(&Env::STAGING), Some(&staging_vars)),
                (row_in(&Env::PROD), Some(&prod_vars)),
            );
            let due = promotion_of(&row).map(|current| {
                promotion::due_expiry(&current, now, &self.windows, changes(&row, &sides))
            });
            let outcome = match due {
                Ok(None) => continue,
                Ok(Some(_)) => self.expire_one(row.id, now).await,
                Err(error) => Err(error),
            };
            match outcome {
                Ok(Some(stepped)) => expired.push(stepped),
                Ok(None) => {}
                Err(error) => tracing::warn!(
                    promotion = row.id,
                    %error,
                    "could not expire a promotion; the next round tries again"
                ),
            }
        }
        Ok(expired)
    }

    /// Expires promotion `id` if, locked and read again, its expiry is still due.
    async fn expire_one(&self, id: i64, now: DateTime<Utc>) -> Result<Option<Stepped>, AppError> {
        let mut tx = self.db.begin_write().await?;
        let (row, current, sides) = self.read_locked(&mut tx, id).await?;
        let Some(reason) =
            promotion::due_expiry(&current, now, &self.windows, changes(&row, &sides))
        else {
            return Ok(None);
        };
        let stepped = expire(&mut tx, &row, &current, now, &self.windows, reason).await?;
        if stepped.is_some() {
            tx.commit().await?;
        }
        Ok(stepped)
    }
}

/// Moves `current` to expired for `reason`, with its audit row (no account: vexil
/// expires it). `None` when another writer moved it first.
pub(super) async fn expire(
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
        elevation: None,
    }))
}
