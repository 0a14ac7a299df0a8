//! `Db`, the handle to one database, and `WriteTx`, a transaction that writes.
//!
//! Both wrap a pool or transaction of one of the two backends. Every query is written
//! once: `on_pool!`/`on_tx!` expand the same body for SQLite and for PostgreSQL, each
//! with its concrete sqlx types, so no generic trait bounds are needed and no `Any`
//! driver is used (it would erase each backend's own types). Where the dialects truly differ (how a timestamp is
//! bound), `Dialect` says so in one place.
//!
//! Timestamps are bound as fixed-format UTC text with milliseconds on SQLite and as
//! `timestamptz` on PostgreSQL, and both timestamps and JSON are read back as `CAST(…
//! AS TEXT)`. A SQLite writer queues at the process's write gate and then begins with
//! `BEGIN IMMEDIATE`, so no writer sleeps in SQLite's busy handler; PostgreSQL writers
//! run side by side. A pooled connection is pinged only after it sat idle for a while
//! (`ping_if_idle`).

use std::str::FromStr;
use std::sync::Arc;
use std::time::Duration;

use chrono::{DateTime, NaiveDateTime, Utc};
use sqlx::Transaction;
#[cfg(feature = "postgres")]
use sqlx::postgres::{PgConnectOptions, PgPoolOptions};
#[cfg(feature = "sqlite")]
use sqlx::sqlite::{SqliteConnectOptions, SqliteJournalMode, SqlitePoolOptions, SqliteSynchronous};
#[cfg(feature = "postgres")]
use sqlx::{PgPool, Postgres};
#[cfg(feature = "sqlite")]
use sqlx::{Sqlite, SqlitePool};
use tokio::sync::OwnedMutexGuard;

use crate::error::StoreError;
use crate::url::{Backend, DatabaseUrl};

/// How long a connection attempt, or a wait for a pooled connection, may take before
/// the operator is told the database is unreachable.
const CONNECT_TIMEOUT: Duration = Duration::from_secs(5);

/// How long a pooled connection may sit idle before it is pinged on its next use.
const IDLE_PING_AFTER: Duration = Duration::from_secs(1);

/// How long a SQLite writer waits for another process's write lock.
const BUSY_TIMEOUT: Duration = Duration::from_secs(5);

/// One database, SQLite or PostgreSQL. Cheap to clone (the pools are shared).
#[derive(Debug, Clone)]
pub struct Db {
    pub(crate) pool: Pool,
    url: DatabaseUrl,
    /// SQLite: this process's writers queue here, in order, for the one write lock,
    /// rather than all trying `BEGIN IMMEDIATE` and sleeping in SQLite's busy handler,
    /// which backs off in steps of milliseconds while the lock is held for a fraction
    /// of one. Other processes still meet the busy timeout. Unused on PostgreSQL,
    /// whose writers run side by side.
    ///
    /// (A pool of one dedicated write connection does the same queueing, but sqlx
    /// hands a released connection back through a spawned task, and one writer
    /// measured slower.)
    pub(crate) write_gate: Arc<tokio::sync::Mutex<()>>,
    /// Signs the audit rows this process writes (`AuditProver`); `None` writes them
    /// without a proof.
    pub(crate) prover: Option<Arc<dyn AuditProver>>,
}

/// Proves that vexil wrote an audit row: given the row's canonical content
/// (`vexil_core::audit_chain::content`), the bytes stored in its `mac` column. The
/// application layer implements it with the instance's secret key, which the
/// database never sees, so a row inserted by SQL cannot carry a valid one.
pub trait AuditProver: Send + Sync + std::fmt::Debug {
    /// `id`: the id the row will have, when the store knows it before the insert
    /// (SQLite, whose one writer draws it): the proof is then bound to it, so that
    /// a copy of the row under another id carries no valid proof. Without it
    /// (PostgreSQL), a random nonce makes each proof unique, and a unique index on
    /// `mac` refuses a copy.
    fn prove(&self, content: &[u8], id: Option<i64>) -> Vec<u8>;
}

/// The backends this build speaks: the features `sqlite` and `postgres` (both by
/// default; the library following a database may take one).
#[derive(Debug, Clone)]
pub(crate) enum Pool {
    #[cfg(feature = "sqlite")]
    Sqlite(SqlitePool),
    #[cfg(feature = "postgres")]
    Postgres(PgPool),
}

/// A write transaction: every change and its audit row go through one, and nothing
/// is visible until `commit`. Dropped without `commit`, it rolls back.
pub struct WriteTx {
    // Declared first, so dropped first: the transaction ends before the gate opens.
    pub(crate) tx: Tx,
    _gate: Option<OwnedMutexGuard<()>>,
    /// The actions of the audit rows written, counted in metrics once committed.
    pub(crate) audited: Vec<&'static str>,
    pub(crate) prover: Option<Arc<dyn AuditProver>>,
}

pub(crate) enum Tx {
    #[cfg(feature = "sqlite")]
    Sqlite(Transaction<'static, Sqlite>),
    #[cfg(feature = "postgres")]
    Postgres(Transaction<'static, Postgres>),
}

/// Runs `$body` with `$pool` bound to the concrete pool and `$DB` to its backend type.
macro_rules! on_pool {
    ($db:expr, |$pool:ident, $DB:ident| $body:expr) => {
        match &$db.pool {
            #[cfg(feature = "sqlite")]
            $crate::db::Pool::Sqlite($pool) => {
                #[allow(unused)]
                type $DB = sqlx::Sqlite;
                $body
            }
            #[cfg(feature = "postgres")]
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
            #[cfg(feature = "sqlite")]
            $crate::db::Tx::Sqlite($tx) => {
                #[allow(unused)]
                type $DB = sqlx::Sqlite;
                $body
            }
            #[cfg(feature = "postgres")]
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

    /// Appended to a SELECT inside a write to lock the rows it reads until commit:
    /// `FOR UPDATE` on PostgreSQL; nothing on SQLite, whose writer holds the whole
    /// database already.
    const LOCK_ROWS: &'static str;

    fn timestamp(at: DateTime<Utc>) -> Self::Timestamp;

    /// `at` as the column keeps it (milliseconds on SQLite, microseconds on
    /// PostgreSQL): what a proof over a row must cover to match the row read back.
    fn stored(at: DateTime<Utc>) -> DateTime<Utc>;
}

#[cfg(feature = "sqlite")]
impl Dialect for Sqlite {
    type Timestamp = String;

    const LOCK_ROWS: &'static str = "";

    /// `2026-11-24 07:35:42.123`: UTC, milliseconds, the format `strftime('%Y-%m-%d
    /// %H:%M:%f')` writes, so vexil's rows and the triggers' rows sort together.
    fn timestamp(at: DateTime<Utc>) -> String {
        at.format("%Y-%m-%d %H:%M:%S%.3f").to_string()
    }

    fn stored(at: DateTime<Utc>) -> DateTime<Utc> {
        chrono::SubsecRound::trunc_subsecs(at, 3)
    }
}

#[cfg(feature = "postgres")]
impl Dialect for Postgres {
    type Timestamp = DateTime<Utc>;

    const LOCK_ROWS: &'static str = " FOR UPDATE";

    fn timestamp(at: DateTime<Utc>) -> DateTime<Utc> {
        at
    }

    fn stored(at: DateTime<Utc>) -> DateTime<Utc> {
        chrono::SubsecRound::trunc_subsecs(at, 6)
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

/// Creates a SQLite database file that does not exist yet, readable and writable by
/// its owner only (0600), before SQLite opens it: it holds password hashes, sessions
/// and the audit log, and SQLite gives the `-wal` and `-shm` files it creates the
/// mode of the database file. An in-memory database has no file. If the file cannot
/// be created here, SQLite's own open says why.
#[cfg(feature = "sqlite")]
fn create_private(path: &std::path::Path) {
    if path.as_os_str().is_empty() || path.to_string_lossy().starts_with(':') {
        return;
    }
    let mut options = std::fs::OpenOptions::new();
    options.write(true).create_new(true);
    #[cfg(unix)]
    std::os::unix::fs::OpenOptionsExt::mode(&mut options, 0o600);
    let _ = options.open(path);
}

impl Db {
    /// Opens the database `url` names: a SQLite file is created on first use, private
    /// to its owner (`create_private`).
    pub async fn connect(url: &DatabaseUrl) -> Result<Db, StoreError> {
        Db::open(url, true).await
    }

    /// Opens a database that must exist already: what a process that only reads
    /// (the library) does, so that a wrong `DATABASE_URL` is an unreachable database
    /// rather than an empty SQLite file created in its working directory.
    pub async fn connect_existing(url: &DatabaseUrl) -> Result<Db, StoreError> {
        Db::open(url, false).await
    }

    async fn open(url: &DatabaseUrl, create: bool) -> Result<Db, StoreError> {
        let connect_error = |source| StoreError::Connect {
            url: url.clone(),
            source,
        };
        let pool = match url.backend() {
            #[cfg(feature = "sqlite")]
            Backend::Sqlite => {
                if create && let Some(path) = url.sqlite_file() {
                    create_private(&path);
                }
                let options = SqliteConnectOptions::from_str(url.expose())
                    .map_err(connect_error)?
                    .create_if_missing(create)
                    // WAL: readers never block the writer, and a flip is durable at commit.
                    .journal_mode(SqliteJournalMode::Wal)
                    .synchronous(SqliteSynchronous::Full)
                    .busy_timeout(BUSY_TIMEOUT)
                    .foreign_keys(true);
                let pool = SqlitePoolOptions::new()
                    .max_connections(8)
                    .acquire_timeout(CONNECT_TIMEOUT)
                    .test_before_acquire(false)
                    .before_acquire(|conn, meta| Box::pin(ping_if_idle(conn, meta)))
                    .connect_with(options)
                    .await
                    .map_err(connect_error)?;
                Pool::Sqlite(pool)
            }
            #[cfg(feature = "postgres")]
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
                    .test_before_acquire(false)
                    .before_acquire(|conn, meta| Box::pin(ping_if_idle(conn, meta)))
                    .connect_with(options)
                    .await
                    .map_err(connect_error)?;
                Pool::Postgres(pool)
            }
            #[cfg(not(feature = "sqlite"))]
            Backend::Sqlite => {
                return Err(StoreError::NotBuiltIn {
                    backend: "SQLite",
                    feature: "sqlite",
                });
            }
            #[cfg(not(feature = "postgres"))]
            Backend::Postgres => {
                return Err(StoreError::NotBuiltIn {
                    backend: "PostgreSQL",
                    feature: "postgres",
                });
            }
        };
        Ok(Db {
            pool,
            url: url.clone(),
            write_gate: Arc::default(),
            prover: None,
        })
    }

    pub(crate) fn is_sqlite(&self) -> bool {
        match self.pool {
            #[cfg(feature = "sqlite")]
            Pool::Sqlite(_) => true,
            #[cfg(feature = "postgres")]
            Pool::Postgres(_) => false,
        }
    }

    pub fn url(&self) -> &DatabaseUrl {
        &self.url
    }

    /// Starts a write transaction.
    ///
    /// On SQLite it is `BEGIN IMMEDIATE`: the write lock is taken at the start, so two
    /// processes never both read and then deadlock upgrading to write; the second waits
    /// (`busy_timeout`) instead. Within one process, writers first queue at the write
    /// gate, so that they take turns without sleeping.
    pub async fn begin_write(&self) -> Result<WriteTx, StoreError> {
        match &self.pool {
            #[cfg(feature = "sqlite")]
            Pool::Sqlite(pool) => {
                // As long as SQLite's own busy timeout, and failing the same way.
                let gate = tokio::time::timeout(BUSY_TIMEOUT, self.write_gate.clone().lock_owned())
                    .await
                    .map_err(|_| sqlx::Error::PoolTimedOut)?;
                Ok(WriteTx {
                    tx: Tx::Sqlite(pool.begin_with("BEGIN IMMEDIATE").await?),
                    _gate: Some(gate),
                    audited: Vec::new(),
                    prover: self.prover.clone(),
                })
            }
            #[cfg(feature = "postgres")]
            Pool::Postgres(pool) => Ok(WriteTx {
                tx: Tx::Postgres(pool.begin().await?),
                _gate: None,
                audited: Vec::new(),
                prover: self.prover.clone(),
            }),
        }
    }

    /// This database, signing the audit rows written through it with `prover`.
    pub fn with_prover(mut self, prover: Arc<dyn AuditProver>) -> Db {
        self.prover = Some(prover);
        self
    }

    /// Closes every pooled connection (tests, and a clean exit).
    pub async fn close(&self) {
        match &self.pool {
            #[cfg(feature = "sqlite")]
            Pool::Sqlite(pool) => pool.close().await,
            #[cfg(feature = "postgres")]
            Pool::Postgres(pool) => pool.close().await,
        }
    }
}

/// Checks a pooled connection before handing it out, but only one that sat idle for
/// `IDLE_PING_AFTER`: sqlx's default pings on every acquire, a round trip that made a
/// third of a PostgreSQL flip. A connection in steady use has just proved itself; one
/// that idled may have been cut (a database restart), and is replaced if so.
async fn ping_if_idle<C: sqlx::Connection>(
    conn: &mut C,
    meta: sqlx::pool::PoolConnectionMetadata,
) -> Result<bool, sqlx::Error> {
    if meta.idle_for >= IDLE_PING_AFTER {
        conn.ping().await?;
    }
    Ok(true)
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
    pub(crate) fn is_sqlite(&self) -> bool {
        match self.tx {
            #[cfg(feature = "sqlite")]
            Tx::Sqlite(_) => true,
            #[cfg(feature = "postgres")]
            Tx::Postgres(_) => false,
        }
    }

    pub async fn commit(self) -> Result<(), StoreError> {
        match self.tx {
            #[cfg(feature = "sqlite")]
            Tx::Sqlite(tx) => tx.commit().await?,
            #[cfg(feature = "postgres")]
            Tx::Postgres(tx) => tx.commit().await?,
        }
        for action in self.audited {
            metrics::counter!("vexil_audit_rows_written_total", "action" => action).increment(1);
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[cfg(feature = "sqlite")]
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
