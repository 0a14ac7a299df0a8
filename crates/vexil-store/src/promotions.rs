//! `console_promotions` (migration 0005): where each staging → prod promotion is.
//! The rules are `vexil_core::promotion`'s; this file only stores their outcome.
//! Writes run inside a `WriteTx` and take the audit row they write: `insert_promotion`
//! refuses a second open promotion for a flag (a partial unique index), and
//! `move_promotion` changes a row only if it is still in the state that was read.
//! Either writes its audit row only when it changed something.
//!
//! `WriteTx::promotion` locks the row until commit on PostgreSQL, so a second writer of
//! one promotion waits and then reads the first one's outcome.

use chrono::{DateTime, Utc};

use crate::audit::NewAudit;
use crate::db::{Db, Dialect, WriteTx, on_pool, on_tx, parse_timestamp};
use crate::error::StoreError;

/// A stored promotion.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PromotionRow {
    pub id: i64,
    pub flag_key: String,
    /// `pending`, `approved`, `promoted`, `rejected` or `expired`.
    pub state: String,
    pub marked_by: String,
    pub marked_at: DateTime<Utc>,
    pub soak_ends_at: DateTime<Utc>,
    /// The staging and prod rows' `audit_id` when it was marked.
    pub staging_audit_id: Option<i64>,
    pub prod_audit_id: Option<i64>,
    pub approved_by: Option<String>,
    pub approved_at: Option<DateTime<Utc>>,
    pub ended_at: Option<DateTime<Utc>>,
    pub ended_by: Option<String>,
    pub reason: Option<String>,
}

/// A promotion being opened.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct NewPromotion<'a> {
    pub flag_key: &'a str,
    pub marked_by: &'a str,
    pub marked_at: DateTime<Utc>,
    pub soak_ends_at: DateTime<Utc>,
    pub staging_audit_id: Option<i64>,
    pub prod_audit_id: Option<i64>,
}

/// A promotion's new state and what comes with it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PromotionMove<'a> {
    pub from: &'a str,
    pub to: &'a str,
    pub approved_by: Option<&'a str>,
    pub approved_at: Option<DateTime<Utc>>,
    pub ended_at: Option<DateTime<Utc>>,
    pub ended_by: Option<&'a str>,
    pub reason: Option<&'a str>,
}

type RawRow = (
    i64,
    String,
    String,
    String,
    String,
    String,
    Option<i64>,
    Option<i64>,
    Option<String>,
    Option<String>,
    Option<String>,
    Option<String>,
    Option<String>,
);

const SELECT: &str = "SELECT id, flag_key, state, marked_by, CAST(marked_at AS TEXT), \
                      CAST(soak_ends_at AS TEXT), staging_audit_id, prod_audit_id, approved_by, \
                      CAST(approved_at AS TEXT), CAST(ended_at AS TEXT), ended_by, reason \
                      FROM console_promotions";

impl Db {
    /// Promotion `id`.
    pub async fn promotion(&self, id: i64) -> Result<Option<PromotionRow>, StoreError> {
        let sql = sqlx::AssertSqlSafe(format!("{SELECT} WHERE id = $1"));
        let row: Option<RawRow> = on_pool!(self, |pool, DB| {
            sqlx::query_as(sql).bind(id).fetch_optional(pool).await?
        });
        row.map(promotion_row).transpose()
    }

    /// Promotions newest first: those in `state` and of `flag_key` if given, at most
    /// `limit`.
    pub async fn promotions(
        &self,
        state: Option<&str>,
        flag_key: Option<&str>,
        limit: u32,
    ) -> Result<Vec<PromotionRow>, StoreError> {
        let sql = sqlx::AssertSqlSafe(format!(
            "{SELECT} WHERE ($1 IS NULL OR state = $1) AND ($2 IS NULL OR flag_key = $2) \
             ORDER BY id DESC LIMIT $3"
        ));
        let rows: Vec<RawRow> = on_pool!(self, |pool, DB| {
            sqlx::query_as(sql)
                .bind(state)
                .bind(flag_key)
                .bind(i64::from(limit))
                .fetch_all(pool)
                .await?
        });
        rows.into_iter().map(promotion_row).collect()
    }

    /// Every open (pending or approved) promotion, oldest first: what the expiry job
    /// looks at.
    pub async fn open_promotions(&self) -> Result<Vec<PromotionRow>, StoreError> {
        let sql = sqlx::AssertSqlSafe(format!(
            "{SELECT} WHERE state IN ('pending', 'approved') ORDER BY id"
        ));
        let rows: Vec<RawRow> =
            on_pool!(self, |pool, DB| sqlx::query_as(sql).fetch_all(pool).await?);
        rows.into_iter().map(promotion_row).collect()
    }
}

impl WriteTx {
    /// Opens a promotion and appends its audit row (`audit`, given the new id); returns
    /// the promotion's id and the audit row's. `None` when the flag already has an open
    /// promotion: nothing is written.
    pub async fn insert_promotion(
        &mut self,
        new: &NewPromotion<'_>,
        audit: impl FnOnce(i64) -> NewAudit,
    ) -> Result<Option<(i64, i64)>, StoreError> {
        let id: Option<i64> = on_tx!(self, |tx, DB| {
            sqlx::query_scalar(
                "INSERT INTO console_promotions \
                 (flag_key, state, marked_by, marked_at, soak_ends_at, staging_audit_id, prod_audit_id) \
                 VALUES ($1, 'pending', $2, $3, $4, $5, $6) \
                 ON CONFLICT (flag_key) WHERE state IN ('pending', 'approved') DO NOTHING \
                 RETURNING id",
            )
            .bind(new.flag_key)
            .bind(new.marked_by)
            .bind(<DB as Dialect>::timestamp(new.marked_at))
            .bind(<DB as Dialect>::timestamp(new.soak_ends_at))
            .bind(new.staging_audit_id)
            .bind(new.prod_audit_id)
            .fetch_optional(&mut **tx)
            .await?
        });
        match id {
            Some(id) => Ok(Some((id, self.append_audit(&audit(id)).await?))),
            None => Ok(None),
        }
    }

    /// The flag's open promotion, if it has one.
    pub async fn open_promotion(
        &mut self,
        flag_key: &str,
    ) -> Result<Option<PromotionRow>, StoreError> {
        let sql = sqlx::AssertSqlSafe(format!(
            "{SELECT} WHERE flag_key = $1 AND state IN ('pending', 'approved')"
        ));
        let row: Option<RawRow> = on_tx!(self, |tx, DB| {
            sqlx::query_as(sql)
                .bind(flag_key)
                .fetch_optional(&mut **tx)
                .await?
        });
        row.map(promotion_row).transpose()
    }

    /// Promotion `id`, locked until this transaction ends: a second writer of the
    /// same promotion waits here, then reads what the first one committed, so it
    /// judges the flag's rows and the promotion as of one moment.
    pub async fn promotion(&mut self, id: i64) -> Result<Option<PromotionRow>, StoreError> {
        let row: Option<RawRow> = on_tx!(self, |tx, DB| {
            let sql = sqlx::AssertSqlSafe(format!(
                "{SELECT} WHERE id = $1{}",
                <DB as Dialect>::LOCK_ROWS
            ));
            sqlx::query_as(sql)
                .bind(id)
                .fetch_optional(&mut **tx)
                .await?
        });
        row.map(promotion_row).transpose()
    }

    /// Moves promotion `id` from `change.from` to `change.to`, if it is still in
    /// `from`, and appends `audit`; returns the audit row's id. `None` (nothing
    /// written) when another writer moved it first: on PostgreSQL the UPDATE waits
    /// for that writer's commit and then finds the state changed.
    pub async fn move_promotion(
        &mut self,
        id: i64,
        change: &PromotionMove<'_>,
        audit: &NewAudit,
    ) -> Result<Option<i64>, StoreError> {
        let rows = on_tx!(self, |tx, DB| {
            sqlx::query(
                "UPDATE console_promotions SET state = $3, \
                 approved_by = COALESCE($4, approved_by), \
                 approved_at = COALESCE($5, approved_at), \
                 ended_at = COALESCE($6, ended_at), ended_by = COALESCE($8, ended_by), \
                 reason = COALESCE($7, reason) \
                 WHERE id = $1 AND state = $2",
            )
            .bind(id)
            .bind(change.from)
            .bind(change.to)
            .bind(change.approved_by)
            .bind(change.approved_at.map(<DB as Dialect>::timestamp))
            .bind(change.ended_at.map(<DB as Dialect>::timestamp))
            .bind(change.reason)
            .bind(change.ended_by)
            .execute(&mut **tx)
            .await?
            .rows_affected()
        });
        if rows == 1 {
            Ok(Some(self.append_audit(audit).await?))
        } else {
            Ok(None)
        }
    }
}

fn promotion_row(raw: RawRow) -> Result<PromotionRow, StoreError> {
    let (
        id,
        flag_key,
        state,
        marked_by,
        marked_at,
        soak_ends_at,
        staging_audit_id,
        prod_audit_id,
        approved_by,
        approved_at,
        ended_at,
        ended_by,
        reason,
    ) = raw;
    let optional = |text: Option<String>| text.as_deref().map(parse_timestamp).transpose();
    Ok(PromotionRow {
        id,
        flag_key,
        state,
        marked_by,
        marked_at: parse_timestamp(&marked_at)?,
        soak_ends_at: parse_timestamp(&soak_ends_at)?,
        staging_audit_id,
        prod_audit_id,
        approved_by,
        approved_at: optional(approved_at)?,
        ended_at: optional(ended_at)?,
        ended_by,
        reason,
    })
}
