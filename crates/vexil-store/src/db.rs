//! `Db`, the handle to one database, and `WriteTx`, a transaction that writes.
//!
//! Both wrap a pool or transaction of one of the two backends. Every query is written
//! once: `on_pool!`/`on_tx!` expand the same body for SQLite and for PostgreSQL, each
//! with its concrete sqlx types, so no generic trait bounds are needed and no `Any`
//! driver is used (CRATES.md §2). Where the dialects truly differ (how a timestamp is
//! bound, how a writer takes its lock), `Dialect` says so in one place.

use std::str::FromStr;
use std::time::Duration;

use chrono::{DateTime, NaiveDateTime, Utc};
use sqlx::postgres::{PgConnectOptions, PgPoolOptions};
use sqlx::sqlite::{SqliteConnectOptions, SqliteJournalMode, SqlitePoolOptions, SqliteSynchronous};
use sqlx::{PgPool, Postgres, Sqlite, SqlitePool, Transaction};

use crate::error::StoreError;
use crate::url::{Backend, DatabaseUrl};

/// How long a connection attempt, or a wait for a pooled connection, may take before
/// the operator is told the database is unreachable.
const CONNECT_TIMEOUT: Duration = Duration::from_secs(5);

/// How long a SQLite writer waits for another process's write lock.
const BUSY_TIMEOUT: Duration = Duration::from_secs(5);

/// One database, SQLite or PostgreSQL. Cheap to clone (the pools are shared).
#[derive(Debug, Clone)]
pub struct Db {
    pub(crate) pool: Pool,
    url: DatabaseUrl,
}

#[derive(Debug, Clone)]
pub(crate) enum Pool {
    Sqlite(SqlitePool),
    Postgres(PgPool),
}

/// A write transaction: every change and its audit row go through one, and nothing
/// is visible until `commit`. Dropped without `commit`, it rolls back.
pub struct WriteTx {
    pub(crate) tx: Tx,
}

pub(crate) enum Tx {
    Sqlite(Transaction<'static, Sqlite>),
    Postgres(Transaction<'static, Postgres>),
}

/// Runs `$body` with `$pool` bound to the concrete pool and `$DB` to its backend type.
macro_rules! on_pool {
    ($db:expr, |$pool:ident, $DB:ident| $body:expr) => {
        match &$db.pool {
            $crate::db::Pool::Sqlite($pool) => {
                #[allow(unused)]
                type $DB = sqlx::Sqlite;
                $body
            }
            $crate::db::Pool::Postgres($pool) => {
                #[allow(unused)]
                type $DB = sqlx::Postgres;
                $body
            }
        }
    };
}

/// Runs `$body` with `$tx` bound to the concrete transaction and `$DB` to its backend.
macro_rules! on_tx {
    ($write:expr, |$tx:ident, $DB:ident| $body:expr) => {
        match &mut $write.tx {
            $crate::db::Tx::Sqlite($tx) => {
                #[allow(unused)]
                type $DB = sqlx::Sqlite;
                $body
            }
            $crate::db::Tx::Postgres($tx) => {
                #[allow(unused)]
                type $DB = sqlx::Postgres;
                $body
            }
        }
    };
}

pub(crate) use {on_pool, on_tx};

/// What differs between the two SQL dialects, and nothing else.
pub(crate) trait Dialect: sqlx::Database {
    /// How a timestamp is bound: fixed-format text on SQLite, `timestamptz` on PostgreSQL.
    type Timestamp;

    fn timestamp(at: DateTime<Utc>) -> Self::Timestamp;
}

impl Dialect for Sqlite {
    type Timestamp = String;

    /// `2026-11-24 07:35:42.123`: UTC, milliseconds, the format `strftime('%Y-%m-%d
    /// %H:%M:%f')` writes, so vexil's rows and the triggers' rows sort together.
    fn timestamp(at: DateTime<Utc>) -> String {
        at.format("%Y-%m-%d %H:%M:%S%.3f").to_string()
    }
}

impl Dialect for Postgres {
    type Timestamp = DateTime<Utc>;

    fn timestamp(at: DateTime<Utc>) -> DateTime<Utc> {
        at
    }
}

/// Reads a timestamp selected as `CAST(column AS TEXT)`: SQLite's stored text (with
/// or without milliseconds) or PostgreSQL's rendering in UTC (`…44.460542+00`).
pub(crate) fn parse_timestamp(text: &str) -> Result<DateTime<Utc>, StoreError> {
    let naive = text.strip_suffix("+00").unwrap_or(text);
    NaiveDateTime::parse_from_str(naive, "%Y-%m-%d %H:%M:%S%.f")
        .or_else(|_| NaiveDateTime::parse_from_str(naive, "%Y-%m-%d %H:%M:%S"))
        .map(|naive| naive.and_utc())
        // A value typed by hand into SQLite's text column, e.g. `2026-11-24T07:35:42Z`.
        .or_else(|_| DateTime::parse_from_rfc3339(text).map(|at| at.with_timezone(&Utc)))
        .map_err(|_| StoreError::Corrupt {
            what: format!("timestamp {text:?}"),
        })
}

impl Db {
    /// Opens the database `url` names: a SQLite file is created on first use.
    pub async fn connect(url: &DatabaseUrl) -> Result<Db, StoreError> {
        let connect_error = |source| StoreError::Connect {
            url: url.clone(),
            source,
        };
        let pool = match url.backend() {
            Backend::Sqlite => {
                let options = SqliteConnectOptions::from_str(url.expose())
                    .map_err(connect_error)?
                    .create_if_missing(true)
                    // WAL: readers never block the writer, and a flip is durable at commit.
                    .journal_mode(SqliteJournalMode::Wal)
                    .synchronous(SqliteSynchronous::Full)
                    .busy_timeout(BUSY_TIMEOUT)
                    .foreign_keys(true);
                let pool = SqlitePoolOptions::new()
                    .max_connections(8)
                    .acquire_timeout(CONNECT_TIMEOUT)
                    .connect_with(options)
                    .await
                    .map_err(connect_error)?;
                Pool::Sqlite(pool)
            }
            Backend::Postgres => {
                let options = PgConnectOptions::from_str(url.expose())
                    .map_err(connect_error)?
                    // Timestamps render in UTC when selected as text.
                    .options([("TimeZone", "UTC"), ("DateStyle", "ISO, YMD")]);
                // One plain connection first: when the server is down, the pool would
                // retry until its timeout and report only that it timed out, while
                // this reports why (refused, unknown host, bad password).
                let probe = tokio_timeout(<sqlx::PgConnection as sqlx::Connection>::connect_with(
                    &options,
                ))
                .await
                .map_err(connect_error)?;
                let _ = sqlx::Connection::close(probe).await;
                let pool = PgPoolOptions::new()
                    .max_connections(8)
                    .acquire_timeout(CONNECT_TIMEOUT)
                    .connect_with(options)
                    .await
                    .map_err(connect_error)?;
                Pool::Postgres(pool)
            }
        };
        Ok(Db {
            pool,
            url: url.clone(),
        })
    }

    pub fn url(&self) -> &DatabaseUrl {
        &self.url
    }

    /// Starts a write transaction.
    ///
    /// On SQLite it is `BEGIN IMMEDIATE`: the write lock is taken at the start, so two
    /// processes never both read and then deadlock upgrading to write; the second waits
    /// (`busy_timeout`) instead.
    pub async fn begin_write(&self) -> Result<WriteTx, StoreError> {
        let tx = match &self.pool {
            Pool::Sqlite(pool) => Tx::Sqlite(pool.begin_with("BEGIN IMMEDIATE").await?),
            Pool::Postgres(pool) => Tx::Postgres(pool.begin().await?),
        };
        Ok(WriteTx { tx })
    }

    /// Closes every pooled connection (tests, and a clean exit).
    pub async fn close(&self) {
        match &self.pool {
            Pool::Sqlite(pool) => pool.close().await,
            Pool::Postgres(pool) => pool.close().await,
        }
    }
}

/// `future`, or a pool-timeout error after `CONNECT_TIMEOUT`.
async fn tokio_timeout<T>(
    future: impl Future<Output = Result<T, sqlx::Error>>,
) -> Result<T, sqlx::Error> {
    match tokio::time::timeout(CONNECT_TIMEOUT, future).await {
        Ok(result) => result,
        Err(_) => Err(sqlx::Error::PoolTimedOut),
    }
}

impl WriteTx {
    pub async fn commit(self) -> Result<(), StoreError> {
        match self.tx {
            Tx::Sqlite(tx) => tx.commit().await?,
            Tx::Postgres(tx) => tx.commit().await?,
        }
        Ok(())
    }

    /// Serialises writers of one (flag, env) pair until this transaction ends.
    ///
    /// PostgreSQL: a transaction-scoped advisory lock, which also covers the pair whose
    /// row does not exist yet (`SELECT … FOR UPDATE` locks only existing rows).
    /// SQLite: nothing to do, `BEGIN IMMEDIATE` already holds the database's write lock.
    pub async fn lock_pair(&mut self, flag_key: &str, env: &str) -> Result<(), StoreError> {
        if let Tx::Postgres(tx) = &mut self.tx {
            sqlx::query("SELECT pg_advisory_xact_lock(hashtext($1))")
                .bind(format!("{flag_key}\u{1f}{env}"))
                .execute(&mut **tx)
                .await?;
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn timestamps_read_back_in_every_stored_format() {
        let at = |s: &str| parse_timestamp(s).unwrap().to_rfc3339();
        assert_eq!(
            at("2026-11-24 07:35:42.123"),
            "2026-11-24T07:35:42.123+00:00"
        );
        assert_eq!(at("2026-11-24 07:35:42"), "2026-11-24T07:35:42+00:00");
        assert_eq!(
            at("2026-11-24 07:35:44.460542+00"),
            "2026-11-24T07:35:44.460542+00:00"
        );
        assert!(parse_timestamp("yesterday").is_err());
        let stamp =
            <Sqlite as Dialect>::timestamp(parse_timestamp("2026-11-24 07:35:42.5").unwrap());
        assert_eq!(stamp, "2026-11-24 07:35:42.500");
    }
}
