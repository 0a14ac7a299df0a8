//! The change feed: which (flag, env) rows changed, told to every process holding a
//! snapshot, for vexil's writes and direct SQL alike (migration 0002's triggers).
//!
//! PostgreSQL: a dedicated connection LISTENs on `vexil_flag_changes`; each
//! notification names one row. SQLite: a dedicated connection polls `PRAGMA
//! data_version`, which changes when another connection commits and costs no query
//! of the database file; only then are `console_flag_changes` rows read.
//!
//! Either way a pump task feeds a channel, so the reader can wait on it next to a
//! timer without cancelling a half-read network message.
//!
//! `Db::changes_since` and `Db::last_change` read the table; `Db::prune_changes` keeps
//! a day's worth (a process away longer reads everything when it is back). `Db::clock`
//! and `Db::change_times` give the database's own clock, which stamps the instances'
//! reports, so that "applied yet?" and "how long ago" are judged on one clock.

use std::str::FromStr;
use std::time::Duration;

#[cfg(feature = "postgres")]
use sqlx::postgres::PgListener;
#[cfg(feature = "sqlite")]
use sqlx::sqlite::SqliteConnectOptions;
#[cfg(feature = "sqlite")]
use sqlx::{Connection, SqliteConnection};
use tokio::sync::mpsc;
use tokio::task::JoinHandle;

use chrono::{DateTime, Utc};

use crate::db::{Db, Dialect, Pool, on_pool, parse_timestamp};
use crate::error::StoreError;

/// The PostgreSQL channel the triggers notify.
const CHANNEL: &str = "vexil_flag_changes";

/// How long the feed waits before connecting again after losing its connection.
const RECONNECT_BACKOFF: [Duration; 4] = [
    Duration::from_millis(100),
    Duration::from_millis(500),
    Duration::from_secs(1),
    Duration::from_secs(5),
];

/// One row changed, as the change table or a notification names it.
#[derive(Debug, Clone, PartialEq, Eq, serde::Deserialize)]
pub struct Change {
    pub seq: i64,
    #[serde(rename = "flag")]
    pub flag_key: String,
    pub env: String,
}

/// What the feed tells its reader.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum FeedEvent {
    /// These rows changed (PostgreSQL: one notification).
    Changed(Change),
    /// Something was committed by another connection (SQLite): read the change table
    /// after the last change applied.
    Committed,
    /// The feed (re)connected, and may have missed changes before: read everything.
    Resync,
}

/// The running feed: events arrive on `events`; dropping it stops the pump.
#[derive(Debug)]
pub struct ChangeFeed {
    pub events: mpsc::Receiver<FeedEvent>,
    pump: JoinHandle<()>,
}

impl Drop for ChangeFeed {
    fn drop(&mut self) {
        self.pump.abort();
    }
}

/// [`Db::change_times`]: the database's clock, and each row's last change by it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ChangeTimes {
    pub now: DateTime<Utc>,
    pub last: std::collections::HashMap<(String, String), DateTime<Utc>>,
}

impl Db {
    /// Starts the change feed for this database. `poll` is how often SQLite's data
    /// version is checked (PostgreSQL pushes). The first event is always `Resync`,
    /// sent once the feed is listening, so a reader that then reads everything has no
    /// gap between its read and the first change it is told about.
    pub fn change_feed(&self, poll: Duration) -> ChangeFeed {
        let (send, events) = mpsc::channel(1024);
        let pump = match &self.pool {
            #[cfg(feature = "sqlite")]
            Pool::Sqlite(_) => tokio::spawn(poll_sqlite(self.clone(), poll, send)),
            #[cfg(feature = "postgres")]
            Pool::Postgres(pool) => tokio::spawn(listen_postgres(pool.clone(), send)),
        };
        ChangeFeed { events, pump }
    }

    /// The changes after `seq`, oldest first, at most `limit` (more means: read all).
    pub async fn changes_since(&self, seq: i64, limit: i64) -> Result<Vec<Change>, StoreError> {
        const SQL: &str = "SELECT seq, flag_key, env FROM console_flag_changes \
                           WHERE seq > $1 ORDER BY seq LIMIT $2";
        let rows: Vec<(i64, String, String)> = on_pool!(self, |pool, DB| {
            sqlx::query_as(SQL)
                .bind(seq)
                .bind(limit)
                .fetch_all(pool)
                .await?
        });
        Ok(rows
            .into_iter()
            .map(|(seq, flag_key, env)| Change { seq, flag_key, env })
            .collect())
    }

    /// Forgets the changes made before `before` (all but the newest, which keeps the
    /// sequence's high mark). A process that has been away longer reads everything
    /// when it comes back, as every process does at start and each TTL.
    pub async fn prune_changes(&self, before: DateTime<Utc>) -> Result<u64, StoreError> {
        const SQL: &str = "DELETE FROM console_flag_changes WHERE changed_at < $1 \
                           AND seq < (SELECT MAX(seq) FROM console_flag_changes)";
        Ok(on_pool!(self, |pool, DB| {
            sqlx::query(SQL)
                .bind(<DB as Dialect>::timestamp(before))
                .execute(pool)
                .await?
                .rows_affected()
        }))
    }

    /// The database's clock: what the processes' reports (`last_seen`) are stamped
    /// with, so "how long ago" is read on it rather than on a host's own clock.
    pub async fn clock(&self) -> Result<DateTime<Utc>, StoreError> {
        let sql = if self.is_sqlite() {
            "SELECT strftime('%Y-%m-%d %H:%M:%f', 'now')"
        } else {
            "SELECT CAST(now() AS TEXT)"
        };
        let now: String = on_pool!(self, |pool, DB| {
            sqlx::query_scalar(sql).fetch_one(pool).await?
        });
        parse_timestamp(&now)
    }

    /// The database's clock now, and when each (flag, env) row last changed by it, as
    /// far back as the feed keeps (a day): what "has every live process applied this
    /// yet?" is judged on, on the clock the processes' reports are stamped with.
    pub async fn change_times(&self) -> Result<ChangeTimes, StoreError> {
        const SQL: &str = "SELECT flag_key, env, CAST(MAX(changed_at) AS TEXT) \
                           FROM console_flag_changes GROUP BY flag_key, env";
        let now = self.clock().await?;
        let rows: Vec<(String, String, String)> =
            on_pool!(self, |pool, DB| sqlx::query_as(SQL).fetch_all(pool).await?);
        Ok(ChangeTimes {
            now,
            last: rows
                .into_iter()
                .map(|(flag, env, at)| Ok(((flag, env), parse_timestamp(&at)?)))
                .collect::<Result<_, StoreError>>()?,
        })
    }

    /// The newest change's `seq`, 0 when nothing ever changed.
    pub async fn last_change(&self) -> Result<i64, StoreError> {
        const SQL: &str = "SELECT COALESCE(MAX(seq), 0) FROM console_flag_changes";
        Ok(on_pool!(self, |pool, DB| {
            sqlx::query_scalar::<_, i64>(SQL).fetch_one(pool).await?
        }))
    }
}

#[cfg(feature = "postgres")]
async fn listen_postgres(pool: sqlx::PgPool, send: mpsc::Sender<FeedEvent>) {
    let mut failures = 0;
    loop {
        let listening = async {
            let mut listener = PgListener::connect_with(&pool).await?;
            listener.listen(CHANNEL).await?;
            Ok::<_, sqlx::Error>(listener)
        };
        let mut listener = match listening.await {
            Ok(listener) => listener,
            Err(error) => {
                tracing::debug!(%error, "change feed: cannot listen");
                tokio::time::sleep(backoff(failures)).await;
                failures += 1;
                continue;
            }
        };
        failures = 0;
        if send.send(FeedEvent::Resync).await.is_err() {
            return;
        }
        loop {
            let event = match listener.try_recv().await {
                Ok(Some(notification)) => match serde_json::from_str(notification.payload()) {
                    Ok(change) => FeedEvent::Changed(change),
                    Err(error) => {
                        tracing::warn!(%error, payload = notification.payload(), "change feed: unreadable notification; reading everything");
                        FeedEvent::Resync
                    }
                },
                // The connection dropped and sqlx connected again (and listens again):
                // what was notified in between is lost.
                Ok(None) => FeedEvent::Resync,
                // Terminated by the server, or it cannot reconnect: start over. The
                // reader reads everything now, which also tells it whether the
                // database itself is down.
                Err(error) => {
                    tracing::debug!(%error, "change feed: connection lost");
                    if send.send(FeedEvent::Resync).await.is_err() {
                        return;
                    }
                    break;
                }
            };
            if send.send(event).await.is_err() {
                return;
            }
        }
    }
}

#[cfg(feature = "sqlite")]
async fn poll_sqlite(db: Db, poll: Duration, send: mpsc::Sender<FeedEvent>) {
    let mut failures = 0;
    loop {
        // A connection of its own: `data_version` is per connection, and changes
        // only for commits made by other connections, this process's pool included.
        let connecting = async {
            let options = SqliteConnectOptions::from_str(db.url().expose())?;
            SqliteConnection::connect_with(&options).await
        };
        let mut conn = match connecting.await {
            Ok(conn) => conn,
            Err(error) => {
                tracing::debug!(%error, "change feed: cannot open the database");
                tokio::time::sleep(backoff(failures)).await;
                failures += 1;
                continue;
            }
        };
        failures = 0;
        let mut seen: Option<i64> = None;
        let mut ticks = tokio::time::interval(poll);
        ticks.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
        loop {
            ticks.tick().await;
            let version = match sqlx::query_scalar::<_, i64>("PRAGMA data_version")
                .fetch_one(&mut conn)
                .await
            {
                Ok(version) => version,
                Err(error) => {
                    tracing::debug!(%error, "change feed: cannot poll");
                    break;
                }
            };
            let event = match seen {
                None => FeedEvent::Resync,
                Some(before) if before != version => FeedEvent::Committed,
                Some(_) => continue,
            };
            seen = Some(version);
            if send.send(event).await.is_err() {
                return;
            }
        }
    }
}

fn backoff(failures: usize) -> Duration {
    RECONNECT_BACKOFF[failures.min(RECONNECT_BACKOFF.len() - 1)]
}
