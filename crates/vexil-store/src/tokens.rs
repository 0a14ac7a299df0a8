//! `api_tokens`: API tokens, stored only as SHA-256 hashes.
//!
//! A token is found by the SHA-256 of what is presented (`Db::token_by_hash`) or by id.
//! Creating and revoking run in a `WriteTx` with their audit row; `Db::touch_token`
//! records the last use and is not audited.

use chrono::{DateTime, Utc};

use crate::audit::NewAudit;
use crate::db::{Db, Dialect, WriteTx, on_pool, on_tx, parse_timestamp};
use crate::error::StoreError;

/// A token as listed: never the token itself, only its first characters.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TokenRow {
    pub id: i64,
    pub user_id: i64,
    pub user_name: String,
    pub prefix: String,
    pub created_at: DateTime<Utc>,
    pub last_used_at: Option<DateTime<Utc>>,
    pub revoked_at: Option<DateTime<Utc>>,
}

type RawRow = (
    i64,
    i64,
    String,
    String,
    String,
    Option<String>,
    Option<String>,
);

const SELECT: &str = "SELECT t.id, t.user_id, u.name, t.prefix, CAST(t.created_at AS TEXT), \
                      CAST(t.last_used_at AS TEXT), CAST(t.revoked_at AS TEXT) \
                      FROM api_tokens t JOIN users u ON u.id = t.user_id";

impl Db {
    /// Every token, newest first.
    pub async fn tokens(&self) -> Result<Vec<TokenRow>, StoreError> {
        let sql = sqlx::AssertSqlSafe(format!("{SELECT} ORDER BY t.id DESC"));
        let rows: Vec<RawRow> =
            on_pool!(self, |pool, DB| sqlx::query_as(sql).fetch_all(pool).await?);
        rows.into_iter().map(token_row).collect()
    }

    /// The token whose SHA-256 is `hash`, revoked or not.
    pub async fn token_by_hash(&self, hash: &[u8]) -> Result<Option<TokenRow>, StoreError> {
        let sql = sqlx::AssertSqlSafe(format!("{SELECT} WHERE t.token_hash = $1"));
        let row: Option<RawRow> = on_pool!(self, |pool, DB| {
            sqlx::query_as(sql).bind(hash).fetch_optional(pool).await?
        });
        row.map(token_row).transpose()
    }

    /// The token `id`, revoked or not.
    pub async fn token_by_id(&self, id: i64) -> Result<Option<TokenRow>, StoreError> {
        let sql = sqlx::AssertSqlSafe(format!("{SELECT} WHERE t.id = $1"));
        let row: Option<RawRow> = on_pool!(self, |pool, DB| {
            sqlx::query_as(sql).bind(id).fetch_optional(pool).await?
        });
        row.map(token_row).transpose()
    }

    /// Notes that a token was used (not audited: it changes no permission).
    pub async fn touch_token(&self, id: i64, at: DateTime<Utc>) -> Result<(), StoreError> {
        on_pool!(self, |pool, DB| {
            sqlx::query("UPDATE api_tokens SET last_used_at = $1 WHERE id = $2")
                .bind(<DB as Dialect>::timestamp(at))
                .bind(id)
                .execute(pool)
                .await?;
        });
        Ok(())
    }
}

impl WriteTx {
    /// Stores a new token's hash, with its audit row; returns its id.
    pub async fn insert_token(
        &mut self,
        user_id: i64,
        prefix: &str,
        hash: &[u8],
        audit: &NewAudit,
    ) -> Result<i64, StoreError> {
        let id = on_tx!(self, |tx, DB| {
            sqlx::query_scalar(
                "INSERT INTO api_tokens (user_id, prefix, token_hash, created_at) VALUES ($1, $2, $3, $4) RETURNING id",
            )
            .bind(user_id)
            .bind(prefix)
            .bind(hash)
            .bind(<DB as Dialect>::timestamp(audit.created_at))
            .fetch_one(&mut **tx)
            .await?
        });
        self.append_audit(audit).await?;
        Ok(id)
    }

    /// Revokes a token for good, with its audit row. `false` if it was revoked already.
    pub async fn revoke_token(&mut self, id: i64, audit: &NewAudit) -> Result<bool, StoreError> {
        let rows = on_tx!(self, |tx, DB| {
            sqlx::query(
                "UPDATE api_tokens SET revoked_at = $1 WHERE id = $2 AND revoked_at IS NULL",
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

fn token_row(raw: RawRow) -> Result<TokenRow, StoreError> {
    let (id, user_id, user_name, prefix, created_at, last_used_at, revoked_at) = raw;
    let optional = |text: Option<String>| text.as_deref().map(parse_timestamp).transpose();
    Ok(TokenRow {
        id,
        user_id,
        user_name,
        prefix,
        created_at: parse_timestamp(&created_at)?,
        last_used_at: optional(last_used_at)?,
        revoked_at: optional(revoked_at)?,
    })
}
