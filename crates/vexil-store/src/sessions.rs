//! `console_sessions`: the console's sessions, keyed by the SHA-256 of their id (the
//! caller hashes; this file never sees an id). Expired rows are never returned, and
//! are deleted in bulk by `delete_expired_sessions`.

use chrono::{DateTime, Utc};

use crate::db::{Db, Dialect, on_pool, parse_timestamp};
use crate::error::StoreError;

/// A stored session: its data, expiry, and the MAC the server wrote over them
/// (checked by the server, which holds the key).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct StoredSession {
    pub data: String,
    pub expires_at: DateTime<Utc>,
    pub mac: Option<Vec<u8>>,
}

impl Db {
    /// Stores a new session; `false` if a session with this id hash exists already
    /// (the caller draws another id).
    pub async fn create_session(
        &self,
        id_hash: &[u8],
        data: &str,
        expires_at: DateTime<Utc>,
        mac: Option<&[u8]>,
    ) -> Result<bool, StoreError> {
        const SQL: &str = "INSERT INTO console_sessions (id_hash, data, expires_at, mac) \
                           VALUES ($1, $2, $3, $4) ON CONFLICT (id_hash) DO NOTHING";
        let inserted = on_pool!(self, |pool, DB| {
            sqlx::query(SQL)
                .bind(id_hash)
                .bind(data)
                .bind(<DB as Dialect>::timestamp(expires_at))
                .bind(mac)
                .execute(pool)
                .await?
                .rows_affected()
        });
        Ok(inserted == 1)
    }

    /// Updates a stored session. A session that is gone (signed out, rotated to a new
    /// id, expired and deleted) stays gone: a request still in flight on the old id
    /// must not bring it back.
    pub async fn save_session(
        &self,
        id_hash: &[u8],
        data: &str,
        expires_at: DateTime<Utc>,
        mac: Option<&[u8]>,
    ) -> Result<(), StoreError> {
        const SQL: &str =
            "UPDATE console_sessions SET data = $1, expires_at = $2, mac = $3 WHERE id_hash = $4";
        on_pool!(self, |pool, DB| {
            sqlx::query(SQL)
                .bind(data)
                .bind(<DB as Dialect>::timestamp(expires_at))
                .bind(mac)
                .bind(id_hash)
                .execute(pool)
                .await?;
        });
        Ok(())
    }

    /// The session's data and expiry, if it exists and has not expired by `now`.
    pub async fn load_session(
        &self,
        id_hash: &[u8],
        now: DateTime<Utc>,
    ) -> Result<Option<StoredSession>, StoreError> {
        const SQL: &str = "SELECT data, CAST(expires_at AS TEXT), mac FROM console_sessions \
                           WHERE id_hash = $1 AND expires_at > $2";
        let row: Option<(String, String, Option<Vec<u8>>)> = on_pool!(self, |pool, DB| {
            sqlx::query_as(SQL)
                .bind(id_hash)
                .bind(<DB as Dialect>::timestamp(now))
                .fetch_optional(pool)
                .await?
        });
        row.map(|(data, expires_at, mac)| {
            Ok(StoredSession {
                data,
                expires_at: parse_timestamp(&expires_at)?,
                mac,
            })
        })
        .transpose()
    }

    /// Ends a session (sign-out, or its id rotated).
    pub async fn delete_session(&self, id_hash: &[u8]) -> Result<(), StoreError> {
        const SQL: &str = "DELETE FROM console_sessions WHERE id_hash = $1";
        on_pool!(self, |pool, DB| {
            sqlx::query(SQL).bind(id_hash).execute(pool).await?;
        });
        Ok(())
    }

    /// Deletes every session expired by `now`; how many.
    pub async fn delete_expired_sessions(&self, now: DateTime<Utc>) -> Result<u64, StoreError> {
        const SQL: &str = "DELETE FROM console_sessions WHERE expires_at <= $1";
        Ok(on_pool!(self, |pool, DB| {
            sqlx::query(SQL)
                .bind(<DB as Dialect>::timestamp(now))
                .execute(pool)
                .await?
                .rows_affected()
        }))
    }
}
