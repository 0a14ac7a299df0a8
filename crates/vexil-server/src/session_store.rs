//! `DbSessionStore`: tower-sessions' `SessionStore` over `console_sessions`, on either
//! database (CRATES.md P1: the published sqlx store does not build with sqlx 0.9).
//! A row is keyed by the SHA-256 of the session id and holds only the session's data
//! and expiry, never the id: a copy of the table signs nobody in.

use async_trait::async_trait;
use chrono::{DateTime, Utc};
use sha2::{Digest, Sha256};
use time::OffsetDateTime;
use tower_sessions::SessionStore;
use tower_sessions::session::{Id, Record};
use tower_sessions::session_store::{Error, Result};
use vexil_store::Db;

#[derive(Debug, Clone)]
pub struct DbSessionStore {
    db: Db,
}

impl DbSessionStore {
    pub fn new(db: Db) -> DbSessionStore {
        DbSessionStore { db }
    }
}

fn id_hash(id: &Id) -> [u8; 32] {
    Sha256::digest(id.0.to_le_bytes()).into()
}

fn to_chrono(at: OffsetDateTime) -> DateTime<Utc> {
    // Nanoseconds since 1970 fit an i64 until the year 2262.
    DateTime::from_timestamp_nanos(i64::try_from(at.unix_timestamp_nanos()).unwrap_or(i64::MAX))
}

fn to_time(at: DateTime<Utc>) -> Result<OffsetDateTime> {
    OffsetDateTime::from_unix_timestamp_nanos(i128::from(
        at.timestamp_nanos_opt().unwrap_or(i64::MAX),
    ))
    .map_err(|e| Error::Decode(e.to_string()))
}

/// The store's error and its causes on one line (tower-sessions keeps only a string).
fn backend(error: &vexil_store::StoreError) -> Error {
    Error::Backend(vexil_core::message::error_chain(error))
}

#[async_trait]
impl SessionStore for DbSessionStore {
    /// Stores a new session, drawing another id on the (2^-128) chance of a collision.
    async fn create(&self, record: &mut Record) -> Result<()> {
        let data = serde_json::to_string(&record.data).map_err(|e| Error::Encode(e.to_string()))?;
        while !self
            .db
            .create_session(&id_hash(&record.id), &data, to_chrono(record.expiry_date))
            .await
            .map_err(|e| backend(&e))?
        {
            record.id = Id::default();
        }
        Ok(())
    }

    async fn save(&self, record: &Record) -> Result<()> {
        let data = serde_json::to_string(&record.data).map_err(|e| Error::Encode(e.to_string()))?;
        self.db
            .save_session(&id_hash(&record.id), &data, to_chrono(record.expiry_date))
            .await
            .map_err(|e| backend(&e))
    }

    async fn load(&self, id: &Id) -> Result<Option<Record>> {
        let Some((data, expires_at)) = self
            .db
            .load_session(&id_hash(id), Utc::now())
            .await
            .map_err(|e| backend(&e))?
        else {
            return Ok(None);
        };
        Ok(Some(Record {
            id: *id,
            data: serde_json::from_str(&data).map_err(|e| Error::Decode(e.to_string()))?,
            expiry_date: to_time(expires_at)?,
        }))
    }

    async fn delete(&self, id: &Id) -> Result<()> {
        self.db
            .delete_session(&id_hash(id))
            .await
            .map_err(|e| backend(&e))
    }
}
