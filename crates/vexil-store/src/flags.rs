//! `console_feature_flags`: the DB layer of resolution, one row per (flag, env).

use chrono::{DateTime, Utc};

use crate::audit::NewAudit;
use crate::db::{Db, Dialect, WriteTx, on_pool, on_tx, parse_timestamp};
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
}

type RawRow = (String, String, i32, String, Option<String>);

impl Db {
    /// Every row, ordered by flag then env.
    pub async fn flag_rows(&self) -> Result<Vec<FlagRow>, StoreError> {
        const SQL: &str = "SELECT flag_key, env, value, CAST(updated_at AS TEXT), updated_by \
                           FROM console_feature_flags ORDER BY flag_key, env";
        let rows: Vec<RawRow> =
            on_pool!(self, |pool, DB| sqlx::query_as(SQL).fetch_all(pool).await?);
        rows.into_iter().map(flag_row).collect()
    }
}

impl WriteTx {
    /// The row for (flag, env), read inside the transaction that may change it.
    pub async fn flag_row(
        &mut self,
        flag_key: &str,
        env: &str,
    ) -> Result<Option<FlagRow>, StoreError> {
        const SQL: &str = "SELECT flag_key, env, value, CAST(updated_at AS TEXT), updated_by \
                           FROM console_feature_flags WHERE flag_key = $1 AND env = $2";
        let row: Option<RawRow> = on_tx!(self, |tx, DB| {
            sqlx::query_as(SQL)
                .bind(flag_key)
                .bind(env)
                .fetch_optional(&mut **tx)
                .await?
        });
        row.map(flag_row).transpose()
    }

    /// Sets (flag, env) to `value`, with `audit` appended in the same transaction.
    ///
    /// The audit row is written first and the flag row points at it (`audit_id`), which
    /// is how the database's triggers tell vexil's write from direct SQL and write no
    /// second row for it.
    pub async fn write_flag(
        &mut self,
        flag_key: &str,
        env: &str,
        value: bool,
        updated_by: &str,
        audit: &NewAudit,
    ) -> Result<i64, StoreError> {
        let audit_id = self.append_audit(audit).await?;
        on_tx!(self, |tx, DB| {
            sqlx::query(
                "INSERT INTO console_feature_flags (flag_key, env, value, updated_at, updated_by, audit_id) \
                 VALUES ($1, $2, $3, $4, $5, $6) \
                 ON CONFLICT (flag_key, env) DO UPDATE SET value = excluded.value, \
                 updated_at = excluded.updated_at, updated_by = excluded.updated_by, \
                 audit_id = excluded.audit_id",
            )
            .bind(flag_key)
            .bind(env)
            .bind(i32::from(value))
            .bind(<DB as Dialect>::timestamp(audit.created_at))
            .bind(updated_by)
            .bind(audit_id)
            .execute(&mut **tx)
            .await?;
        });
        Ok(audit_id)
    }
}

fn flag_row(raw: RawRow) -> Result<FlagRow, StoreError> {
    let (flag_key, env, value, updated_at, updated_by) = raw;
    Ok(FlagRow {
        updated_at: parse_timestamp(&updated_at)?,
        flag_key,
        env,
        value: value == 1,
        updated_by,
    })
}
