//! `DbSessionStore`: tower-sessions' `SessionStore` over `console_sessions`, on either
//! database (the published sqlx store does not build with sqlx 0.9).
//! A row is keyed by the SHA-256 of the session id and holds only the session's data
//! and expiry, never the id: a copy of the table signs nobody in. With the secret key
//! each record is sealed (`SessionMac`), so a row inserted or edited by SQL signs
//! nobody in either.

use async_trait::async_trait;
use chrono::{DateTime, Utc};
use sha2::{Digest, Sha256};
use time::OffsetDateTime;
use tower_sessions::SessionStore;
use tower_sessions::session::{Id, Record};
use tower_sessions::session_store::{Error, Result};
use vexil_app::{App, SessionMac};
use vexil_store::Db;

#[derive(Debug, Clone)]
pub struct DbSessionStore {
    db: Db,
    /// Seals each record; with it, a row without a valid seal (inserted or edited by
    /// SQL) is no session (docs/audit-integrity.md).
    mac: Option<SessionMac>,
}

impl DbSessionStore {
    pub fn new(db: Db) -> DbSessionStore {
        DbSessionStore { db, mac: None }
    }

    /// The store of `app`'s database, sealing with its secret key when it has one.
    pub fn for_app(app: &App) -> DbSessionStore {
        DbSessionStore::new(app.db().clone()).with_mac(app.session_mac())
    }

    /// The same store, sealing records with `mac` and refusing rows it did not seal.
    pub fn with_mac(mut self, mac: Option<SessionMac>) -> DbSessionStore {
        self.mac = mac;
        self
    }

    fn seal(&self, id_hash: &[u8], data: &str, expires_at: DateTime<Utc>) -> Option<Vec<u8>> {
        self.mac
            .as_ref()
            .map(|mac| mac.seal(id_hash, data, expires_at))
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
        let expires_at = to_chrono(record.expiry_date);
        loop {
            let hash = id_hash(&record.id);
            let seal = self.seal(&hash, &data, expires_at);
            if self
                .db
                .create_session(&hash, &data, expires_at, seal.as_deref())
                .await
                .map_err(|e| backend(&e))?
            {
                break;
            }
            record.id = Id::default();
        }
        Ok(())
    }

    async fn save(&self, record: &Record) -> Result<()> {
        let data = serde_json::to_string(&record.data).map_err(|e| Error::Encode(e.to_string()))?;
        let hash = id_hash(&record.id);
        let expires_at = to_chrono(record.expiry_date);
        let seal = self.seal(&hash, &data, expires_at);
        self.db
            .save_session(&hash, &data, expires_at, seal.as_deref())
            .await
            .map_err(|e| backend(&e))
    }

    async fn load(&self, id: &Id) -> Result<Option<Record>> {
        let hash = id_hash(id);
        let Some(stored) = self
            .db
            .load_session(&hash, Utc::now())
            .await
            .map_err(|e| backend(&e))?
        else {
            return Ok(None);
        };
        if let Some(mac) = &self.mac {
            let sealed = stored
                .mac
                .as_deref()
                .is_some_and(|seal| mac.check(&hash, &stored.data, stored.expires_at, seal));
            if !sealed {
                tracing::warn!(
                    "refused a console session whose record this server did not seal (written or changed by SQL?)"
                );
                return Ok(None);
            }
        }
        Ok(Some(Record {
            id: *id,
            data: serde_json::from_str(&stored.data).map_err(|e| Error::Decode(e.to_string()))?,
            expiry_date: to_time(stored.expires_at)?,
        }))
    }

    async fn delete(&self, id: &Id) -> Result<()> {
        self.db
            .delete_session(&id_hash(id))
            .await
            .map_err(|e| backend(&e))
    }
}
