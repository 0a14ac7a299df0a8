//! `client_keys` (migration 0006): the keys applications follow a server with, one env
//! and one application each, stored only as SHA-256 hashes.
//!
//! Keys are found by the SHA-256 of what is presented. `WriteTx::insert_client_key` and
//! `revoke_client_key` write their audit rows; `Db::touch_client_key` (the last use,
//! not audited), `Db::revoked_client_keys` (what a server ends open streams by) and
//! `Db::live_client_key_hash` (what an OFREP events token is checked against) only read
//! or note use.

use chrono::{DateTime, Utc};

use crate::audit::NewAudit;
use crate::db::{Db, Dialect, WriteTx, on_pool, on_tx, parse_timestamp};
use crate::error::StoreError;

/// A client key as listed: never the key itself, only its first characters.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ClientKeyRow {
    pub id: i64,
    /// The env it reads, as stored.
    pub env: String,
    pub app: String,
    pub prefix: String,
    pub created_at: DateTime<Utc>,
    /// The account that created it; `None` for an operator at the CLI.
    pub created_by: Option<String>,
    pub last_used_at: Option<DateTime<Utc>>,
    pub revoked_at: Option<DateTime<Utc>>,
}

/// A key to store: its hash, never the key.
#[derive(Debug, Clone, Copy)]
pub struct NewClientKey<'a> {
    pub env: &'a str,
    pub app: &'a str,
    pub prefix: &'a str,
    pub key_hash: &'a [u8],
    pub created_by: Option<&'a str>,
}

type RawRow = (
    i64,
    String,
    String,
    String,
    String,
    Option<String>,
    Option<String>,
    Option<String>,
);

const SELECT: &str = "SELECT id, env, app, prefix, CAST(created_at AS TEXT), created_by, \
                      CAST(last_used_at AS TEXT), CAST(revoked_at AS TEXT) FROM client_keys";

impl Db {
    /// Every client key, newest first.
    pub async fn client_keys(&self) -> Result<Vec<ClientKeyRow>, StoreError> {
        let sql = sqlx::AssertSqlSafe(format!("{SELECT} ORDER BY id DESC"));
        let rows: Vec<RawRow> =
            on_pool!(self, |pool, DB| sqlx::query_as(sql).fetch_all(pool).await?);
        rows.into_iter().map(client_key_row).collect()
    }

    /// The key whose SHA-256 is `hash`, revoked or not.
    pub async fn client_key_by_hash(
        &self,
        hash: &[u8],
    ) -> Result<Option<ClientKeyRow>, StoreError> {
        let sql = sqlx::AssertSqlSafe(format!("{SELECT} WHERE key_hash = $1"));
        let row: Option<RawRow> = on_pool!(self, |pool, DB| {
            sqlx::query_as(sql).bind(hash).fetch_optional(pool).await?
        });
        row.map(client_key_row).transpose()
    }

    /// The key `id`, revoked or not.
    pub async fn client_key_by_id(&self, id: i64) -> Result<Option<ClientKeyRow>, StoreError> {
        let sql = sqlx::AssertSqlSafe(format!("{SELECT} WHERE id = $1"));
        let row: Option<RawRow> = on_pool!(self, |pool, DB| {
            sqlx::query_as(sql).bind(id).fetch_optional(pool).await?
        });
        row.map(client_key_row).transpose()
    }

    /// The SHA-256 of key `id`, if it exists and is not revoked (what an OFREP event
    /// stream's token is derived from).
    pub async fn live_client_key_hash(&self, id: i64) -> Result<Option<Vec<u8>>, StoreError> {
        const SQL: &str = "SELECT key_hash FROM client_keys WHERE id = $1 AND revoked_at IS NULL";
        Ok(on_pool!(self, |pool, DB| {
            sqlx::query_scalar(SQL)
                .bind(id)
                .fetch_optional(pool)
                .await?
        }))
    }

    /// The ids of every revoked key: what a server checks its open streams against
    /// (revocations are rare, and the list is read every few seconds).
    pub async fn revoked_client_keys(&self) -> Result<Vec<i64>, StoreError> {
        const SQL: &str = "SELECT id FROM client_keys WHERE revoked_at IS NOT NULL";
        Ok(on_pool!(self, |pool, DB| sqlx::query_scalar(SQL)
            .fetch_all(pool)
            .await?))
    }

    /// Notes that a key was used (not audited: it changes no permission).
    pub async fn touch_client_key(&self, id: i64, at: DateTime<Utc>) -> Result<(), StoreError> {
        on_pool!(self, |pool, DB| {
            sqlx::query("UPDATE client_keys SET last_used_at = $1 WHERE id = $2")
                .bind(<DB as Dialect>::timestamp(at))
                .bind(id)
                .execute(pool)
                .await?;
        });
        Ok(())
    }
}

impl WriteTx {
    /// Stores a new key's hash, with its audit row; returns its id. The audit row's
    /// `target_id` is the new id, so it is written after the key.
    pub async fn insert_client_key(
        &mut self,
        key: &NewClientKey<'_>,
        audit: &NewAudit,
    ) -> Result<i64, StoreError> {
        let id: i64 = on_tx!(self, |tx, DB| {
            sqlx::query_scalar(
                "INSERT INTO client_keys (env, app, prefix, key_hash, created_at, created_by) \
                 VALUES ($1, $2, $3, $4, $5, $6) RETURNING id",
            )
            .bind(key.env)
            .bind(key.app)
            .bind(key.prefix)
            .bind(key.key_hash)
            .bind(<DB as Dialect>::timestamp(audit.created_at))
            .bind(key.created_by)
            .fetch_one(&mut **tx)
            .await?
        });
        let mut audit = audit.clone();
        audit.target_id = id.to_string();
        audit.payload["id"] = serde_json::json!(id);
        self.append_audit(&audit).await?;
        Ok(id)
    }

    /// Revokes a key for good, with its audit row. `false` if it was revoked already.
    pub async fn revoke_client_key(
        &mut self,
        id: i64,
        audit: &NewAudit,
    ) -> Result<bool, StoreError> {
        let rows = on_tx!(self, |tx, DB| {
            sqlx::query(
                "UPDATE client_keys SET revoked_at = $1 WHERE id = $2 AND revoked_at IS NULL",
            )
            .bind(<DB as Dialect>::timestamp(audit.created_at))
            .bind(id)
            .execute(&mut **tx)
            .await?
            .rows_affected()
        });
        if rows == 1 {
            self.append_audit(audit).await?;
        }
        Ok(rows == 1)
    }
}

fn client_key_row(raw: RawRow) -> Result<ClientKeyRow, StoreError> {
    let (id, env, app, prefix, created_at, created_by, last_used_at, revoked_at) = raw;
    let optional = |text: Option<String>| text.as_deref().map(parse_timestamp).transpose();
    Ok(ClientKeyRow {
        id,
        env,
        app,
        prefix,
        created_at: parse_timestamp(&created_at)?,
        created_by,
        last_used_at: optional(last_used_at)?,
        revoked_at: optional(revoked_at)?,
    })
}
