//! `console_feature_flags`: the DB layer of resolution, one row per (flag, env).
//!
//! `WriteTx::write_flag` appends the `console.flag.flip` row and upserts the flag row
//! only if the row still holds the `audit_id` that was read (`Expected`): concurrent
//! writers need no lock, and a write that lost the race does nothing (the caller reads
//! again). On PostgreSQL the audit row and the upsert are one statement, a
//! data-modifying CTE. The triggers that audit direct SQL are described in
//! docs/schema.md.

use chrono::{DateTime, Utc};

use crate::audit::NewAudit;
#[cfg(feature = "postgres")]
use sqlx::Postgres;

use crate::db::{Db, Dialect, Tx, WriteTx, on_pool, on_tx, parse_timestamp};
use crate::error::StoreError;

/// One row. Keys and envs are kept as stored: a row may name a flag the flags file no
/// longer declares, and the console must still show it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct FlagRow {
    pub flag_key: String,
    pub env: String,
    pub value: bool,
    pub updated_at: DateTime<Utc>,
    /// The account name of vexil's last write, or `None` after direct SQL.
    pub updated_by: Option<String>,
    /// The audit row of the row's last change, what a write checks it still holds.
    pub audit_id: Option<i64>,
}

type RawRow = (String, String, i32, String, Option<String>, Option<i64>);

impl Db {
    /// Every row, ordered by flag then env.
    pub async fn flag_rows(&self) -> Result<Vec<FlagRow>, StoreError> {
        const SQL: &str = "SELECT flag_key, env, value, CAST(updated_at AS TEXT), updated_by, audit_id \
                           FROM console_feature_flags ORDER BY flag_key, env";
        let rows: Vec<RawRow> =
            on_pool!(self, |pool, DB| sqlx::query_as(SQL).fetch_all(pool).await?);
        rows.into_iter().map(flag_row).collect()
    }

    /// Every row of one env, value and audit id only.
    pub async fn flag_values_in(&self, env: &str) -> Result<Vec<FlagValue>, StoreError> {
        const SQL: &str =
            "SELECT flag_key, value, audit_id FROM console_feature_flags WHERE env = $1";
        let rows: Vec<(String, i32, Option<i64>)> = on_pool!(self, |pool, DB| {
            sqlx::query_as(SQL).bind(env).fetch_all(pool).await?
        });
        Ok(rows.into_iter().map(flag_value).collect())
    }

    /// One row's value and audit id.
    pub async fn flag_value(
        &self,
        flag_key: &str,
        env: &str,
    ) -> Result<Option<FlagValue>, StoreError> {
        const SQL: &str = "SELECT flag_key, value, audit_id FROM console_feature_flags \
                           WHERE flag_key = $1 AND env = $2";
        let row: Option<(String, i32, Option<i64>)> = on_pool!(self, |pool, DB| {
            sqlx::query_as(SQL)
                .bind(flag_key)
                .bind(env)
                .fetch_optional(pool)
                .await?
        });
        Ok(row.map(flag_value))
    }

    /// The row for (flag, env) as it stands, outside any write (a preflight; the
    /// write reads it again in its transaction: `WriteTx::flag_row`).
    pub async fn flag_row(&self, flag_key: &str, env: &str) -> Result<Option<FlagRow>, StoreError> {
        let row: Option<RawRow> = on_pool!(self, |pool, DB| {
            sqlx::query_as(ONE_ROW)
                .bind(flag_key)
                .bind(env)
                .fetch_optional(pool)
                .await?
        });
        row.map(flag_row).transpose()
    }
}

/// A row as a process holding a snapshot needs it: value and audit id, nothing that a
/// hand-edited row could make unreadable (a free-text `updated_at` on SQLite).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct FlagValue {
    pub flag_key: String,
    pub value: bool,
    pub audit_id: Option<i64>,
}

fn flag_value((flag_key, value, audit_id): (String, i32, Option<i64>)) -> FlagValue {
    // The schema's CHECK keeps `value` to 0 and 1 on both databases.
    FlagValue {
        flag_key,
        value: value == 1,
        audit_id,
    }
}

/// One row by its key.
const ONE_ROW: &str = "SELECT flag_key, env, value, CAST(updated_at AS TEXT), updated_by, audit_id \
                       FROM console_feature_flags WHERE flag_key = $1 AND env = $2";

impl WriteTx {
    /// The row for (flag, env), read inside the transaction that may change it.
    pub async fn flag_row(
        &mut self,
        flag_key: &str,
        env: &str,
    ) -> Result<Option<FlagRow>, StoreError> {
        let row: Option<RawRow> = on_tx!(self, |tx, DB| {
            sqlx::query_as(ONE_ROW)
                .bind(flag_key)
                .bind(env)
                .fetch_optional(&mut **tx)
                .await?
        });
        row.map(flag_row).transpose()
    }

    /// Sets (flag, env) to `value`, with `audit` appended in the same transaction,
    /// provided the row is still what this transaction read (`expected`). `Ok(None)`
    /// means someone else changed, created or deleted the row in between (another
    /// flip, or direct SQL) and nothing was written; the transaction should be dropped
    /// and the flip judged again from a fresh read.
    ///
    /// The audit row is written first and the flag row points at it (`audit_id`), which
    /// is how the database's triggers tell vexil's write from direct SQL and write no
    /// second row for it. A row that was read is only UPDATEd, and only while it holds
    /// the `audit_id` read (PostgreSQL re-checks that against the newest version once a
    /// concurrent writer commits); a row that was absent is only INSERTed, never over
    /// one that appeared meanwhile.
    pub async fn write_flag(
        &mut self,
        flag_key: &str,
        env: &str,
        value: bool,
        updated_by: &str,
        expected: Expected,
        audit: &NewAudit,
    ) -> Result<Option<i64>, StoreError> {
        let read = match expected {
            Expected::NoRow => None,
            Expected::Row { audit_id } => audit_id,
        };
        #[cfg(feature = "postgres")]
        if let Tx::Postgres(tx) = &mut self.tx {
            // One statement, one round trip: the audit row's INSERT feeds the write,
            // and the triggers, which run later in the same statement, see it.
            macro_rules! with_audit {
                ($write:literal $(,)?) => {
                    concat!(
                        "WITH audit AS (INSERT INTO console_audit_log \
                         (created_at, admin_id, action, target_type, target_id, payload, mac) \
                         VALUES ($4, $7, $8, $9, $10, $11, $12) RETURNING id) ",
                        $write
                    )
                };
            }
            // `$6` is `read` in both, so that both bind the same parameters.
            let sql = match expected {
                Expected::NoRow => with_audit!(
                    "INSERT INTO console_feature_flags \
                     (flag_key, env, value, updated_at, updated_by, audit_id) \
                     SELECT $1, $2, $3, $4, $5, audit.id FROM audit \
                     WHERE $6::BIGINT IS NULL \
                     ON CONFLICT (flag_key, env) DO NOTHING RETURNING audit_id",
                ),
                Expected::Row { .. } => with_audit!(
                    "UPDATE console_feature_flags f SET value = $3, updated_at = $4, \
                     updated_by = $5, audit_id = audit.id FROM audit \
                     WHERE f.flag_key = $1 AND f.env = $2 AND f.audit_id IS NOT DISTINCT FROM $6 \
                     RETURNING f.audit_id",
                ),
            };
            let created_at = <Postgres as Dialect>::stored(audit.created_at);
            let mac = audit.proof(self.prover.as_deref(), created_at, None);
            let written: Option<i64> = sqlx::query_scalar(sql)
                .bind(flag_key)
                .bind(env)
                .bind(i32::from(value))
                .bind(<Postgres as Dialect>::timestamp(created_at))
                .bind(updated_by)
                .bind(read)
                .bind(audit.admin_id)
                .bind(audit.action)
                .bind(audit.target_type)
                .bind(&audit.target_id)
                .bind(sqlx::types::Json(&audit.payload))
                .bind(mac)
                .fetch_optional(&mut **tx)
                .await?;
            if written.is_some() {
                self.audited.push(audit.action);
            }
            return Ok(written);
        }
        // SQLite has no data-modifying CTEs: two statements, each a hop to the
        // connection's thread rather than a network round trip.
        let audit_id = self.append_audit(audit).await?;
        let sql = match expected {
            Expected::NoRow => {
                "INSERT INTO console_feature_flags \
                 (flag_key, env, value, updated_at, updated_by, audit_id) \
                 SELECT $1, $2, $3, $4, $5, $6 WHERE $7 IS NULL \
                 ON CONFLICT (flag_key, env) DO NOTHING RETURNING audit_id"
            }
            Expected::Row { .. } => {
                "UPDATE console_feature_flags SET value = $3, updated_at = $4, \
                 updated_by = $5, audit_id = $6 \
                 WHERE flag_key = $1 AND env = $2 AND audit_id IS NOT DISTINCT FROM $7 \
                 RETURNING audit_id"
            }
        };
        let written: Option<i64> = on_tx!(self, |tx, DB| {
            sqlx::query_scalar(sql)
                .bind(flag_key)
                .bind(env)
                .bind(i32::from(value))
                .bind(<DB as Dialect>::timestamp(audit.created_at))
                .bind(updated_by)
                .bind(audit_id)
                .bind(read)
                .fetch_optional(&mut **tx)
                .await?
        });
        Ok(written)
    }
}

/// What a write expects the row to be: what its transaction read.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Expected {
    /// There was no row for (flag, env).
    NoRow,
    /// There was a row, pointing at this audit row (`None` for a row from before
    /// `audit_id` existed, or written by hand with none).
    Row { audit_id: Option<i64> },
}

impl Expected {
    pub fn of(row: Option<&FlagRow>) -> Expected {
        match row {
            None => Expected::NoRow,
            Some(row) => Expected::Row {
                audit_id: row.audit_id,
            },
        }
    }
}

fn flag_row(raw: RawRow) -> Result<FlagRow, StoreError> {
    let (flag_key, env, value, updated_at, updated_by, audit_id) = raw;
    Ok(FlagRow {
        updated_at: parse_timestamp(&updated_at)?,
        flag_key,
        env,
        value: value == 1,
        updated_by,
        audit_id,
    })
}
