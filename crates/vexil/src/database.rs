//! Database mode: one task per `Flags` handle keeps its snapshot current from the
//! database (`DATABASE_URL`), and reports the process to `vexil_instances`.
//!
//! It reads everything at start, then applies the change feed (PostgreSQL's
//! notifications, SQLite's data version) row by row, and reads everything again every
//! TTL in case a notification was lost. When the database stops answering it keeps
//! the last snapshot, says so once, and retries with a capped backoff; the first
//! successful read after that is a full one.
//!
//! Every read-then-publish holds one lock, so a slow read never overwrites a newer one,
//! and until one full read has succeeded a notification triggers a full read. It reads
//! only `flag_key`, `value` and `audit_id`, opens only an existing database
//! (`Db::connect_existing`) and accepts a newer schema (`Db::check_readable`). Its
//! report (every heartbeat, 10 s, and soon after a change is applied) is the library's
//! only write; pruning old reports and changes is `vexil serve`'s housekeeping.

use std::collections::HashSet;
use std::sync::Arc;
use std::time::SystemTime;

use chrono::{DateTime, Utc};
use tokio::sync::oneshot;
use tokio::time::{Instant, sleep_until};
use vexil_core::FlagSet;
use vexil_core::message::error_chain;
use vexil_store::{
    Change, DatabaseUrl, Db, FeedEvent, FlagValue, InstanceReport, Receipt, StoreError, Transport,
};

use crate::error::Error;
use crate::flags::{Rows, Shared};
use crate::instance::{self, Identity};
use crate::link::{Link, RECEIPT_DELAY, Timing, backoff};
use crate::snapshot::Origin;

/// More changes than this since the last one applied: read everything instead.
const CATCH_UP_LIMIT: i64 = 256;

pub(crate) async fn run(
    shared: Arc<Shared>,
    url: DatabaseUrl,
    timing: Timing,
    identity: Identity,
    mut stop: oneshot::Receiver<()>,
) {
    let mut failures = 0usize;
    let db = loop {
        match connect(&url).await {
            Ok(db) => break db,
            Err(error) => {
                if failures == 0 {
                    tracing::error!(
                        error = %error_chain(&error),
                        env = shared.env.as_str(),
                        "cannot read flag values from the database; resolving from FLAG_* variables and YAML defaults until it answers"
                    );
                }
                metrics::counter!("vexil_flags_database_errors_total").increment(1);
                let wait = Instant::now() + backoff(failures);
                failures += 1;
                tokio::select! {
                    _ = &mut stop => return,
                    () = sleep_until(wait) => {}
                }
            }
        }
    };
    let _ = shared.link.set(Link::Database(db.clone()));
    let mut feed = timing.feed.then(|| db.change_feed(timing.poll));
    let mut failures = 0usize;
    let mut next_full = Instant::now();
    let mut next_report = Instant::now() + RECEIPT_DELAY;
    let mut declared: Option<Arc<FlagSet>> = None;
    loop {
        let event = tokio::select! {
            _ = &mut stop => return,
            () = sleep_until(next_full) => FeedEvent::Resync,
            Some(event) = next_event(&mut feed) => event,
            () = sleep_until(next_report) => {
                declare_defaults(&shared, &db, &mut declared).await;
                let report = report(&identity, &shared, Utc::now()).await;
                match db.report_instance(&report).await {
                    Ok(()) => shared.set_reported(SystemTime::now()),
                    Err(error) => {
                        tracing::debug!(error = %error_chain(&error), "cannot report this instance");
                    }
                }
                next_report = Instant::now() + timing.heartbeat;
                continue;
            }
        };
        let result = match &event {
            FeedEvent::Resync => read_all(&shared, &db).await,
            FeedEvent::Changed(change) => apply(&shared, &db, change).await,
            FeedEvent::Committed => catch_up(&shared, &db).await,
        };
        // Report a change applied soon, without waiting for the heartbeat; only a
        // change: on SQLite the report itself is a commit that the feed sees.
        if std::mem::take(&mut shared.rows.lock().await.receipts_changed) {
            next_report = next_report.min(Instant::now() + RECEIPT_DELAY);
        }
        metrics::counter!("vexil_flags_refreshes_total", "kind" => kind(&event)).increment(1);
        match result {
            // Only a full read resets the schedule: after a failure, the full read
            // that is due stays due, whatever single rows succeed meanwhile.
            Ok(()) if matches!(event, FeedEvent::Resync) => {
                next_full = Instant::now() + timing.ttl;
                failures = 0;
            }
            Ok(()) => {}
            Err(error) => {
                metrics::counter!("vexil_flags_database_errors_total").increment(1);
                tracing::debug!(error = %error_chain(&error), "flag refresh failed");
                let origin = shared.snapshot.load().origin;
                shared.set_source_up(false, origin);
                next_full = Instant::now() + backoff(failures);
                failures += 1;
            }
        }
    }
}

/// Records the flag set's defaults in the database once per flag set (at the first
/// report, and after `reload_file`), for the triggers that audit a row inserted by
/// direct SQL (docs/schema.md). Best effort: a role that may not write them only makes
/// such audit rows say the default is unknown.
async fn declare_defaults(shared: &Shared, db: &Db, declared: &mut Option<Arc<FlagSet>>) {
    let flags = shared.flags.load_full();
    if declared.as_ref().is_some_and(|d| Arc::ptr_eq(d, &flags)) {
        return;
    }
    let defaults = flags
        .iter()
        .map(|decl| (decl.key().to_string(), decl.default()))
        .collect();
    match db.declare_defaults(&defaults).await {
        Ok(()) => *declared = Some(flags),
        Err(error) => {
            tracing::debug!(error = %error_chain(&error), "cannot record the flags' defaults");
            // Not retried at every heartbeat: one attempt per flag set.
            *declared = Some(flags);
        }
    }
}

async fn next_event(feed: &mut Option<vexil_store::ChangeFeed>) -> Option<FeedEvent> {
    match feed {
        Some(feed) => feed.events.recv().await,
        None => std::future::pending().await,
    }
}

fn kind(event: &FeedEvent) -> &'static str {
    match event {
        FeedEvent::Resync => "full",
        FeedEvent::Changed(_) => "notification",
        FeedEvent::Committed => "poll",
    }
}

/// An existing database (never a new SQLite file where `DATABASE_URL` was wrong) with
/// at least this vexil's migrations (a newer schema is fine to read).
async fn connect(url: &DatabaseUrl) -> Result<Db, Error> {
    let db = Db::connect_existing(url).await?;
    db.check_readable().await?;
    Ok(db)
}

/// Reads every row of this env and publishes the result.
pub(crate) async fn read_all(shared: &Shared, db: &Db) -> Result<(), Error> {
    let mut rows = shared.rows.lock().await;
    // The change mark first: a change committed between the two reads is then both
    // in the rows and replayed later, which is harmless; the other order could miss it.
    let last_change = db.last_change().await?;
    let read = db.flag_values_in(shared.env.as_str()).await?;
    let present: HashSet<&str> = read.iter().map(|row| row.flag_key.as_str()).collect();
    rows.values.retain(|key, _| present.contains(&**key));
    rows.receipts.retain(|key, _| present.contains(&**key));
    for row in &read {
        rows.set(&row.flag_key, Some(held(row)));
    }
    rows.last_change = last_change;
    rows.full_read_at = Some(SystemTime::now());
    publish_read(shared, &rows);
    Ok(())
}

/// Re-reads one row of this env and publishes the result.
pub(crate) async fn read_pair(shared: &Shared, db: &Db, key: &str) -> Result<(), Error> {
    let mut rows = shared.rows.lock().await;
    if rows.full_read_at.is_none() {
        // One row is not the database's view: everything else would still be the
        // variables' and YAML's. Read it all.
        drop(rows);
        return read_all(shared, db).await;
    }
    let row = db.flag_value(key, shared.env.as_str()).await?;
    rows.set(key, row.as_ref().map(held));
    publish_read(shared, &rows);
    Ok(())
}

/// One notification: the row it names, if it is of this env.
async fn apply(shared: &Shared, db: &Db, change: &Change) -> Result<(), Error> {
    metrics::counter!("vexil_flags_notifications_total").increment(1);
    if change.env == shared.env.as_str() {
        read_pair(shared, db, &change.flag_key).await?;
    }
    let mut rows = shared.rows.lock().await;
    rows.last_change = rows.last_change.max(change.seq);
    Ok(())
}

/// SQLite's data version moved: the changes since the last one applied, row by row.
async fn catch_up(shared: &Shared, db: &Db) -> Result<(), Error> {
    let since = shared.rows.lock().await.last_change;
    let changes = db.changes_since(since, CATCH_UP_LIMIT).await?;
    if changes.len() as i64 >= CATCH_UP_LIMIT {
        return read_all(shared, db).await;
    }
    let mut keys: Vec<&str> = changes
        .iter()
        .filter(|change| change.env == shared.env.as_str())
        .map(|change| change.flag_key.as_str())
        .collect();
    keys.sort_unstable();
    keys.dedup();
    for key in keys {
        read_pair(shared, db, key).await?;
    }
    if let Some(last) = changes.last() {
        let mut rows = shared.rows.lock().await;
        rows.last_change = rows.last_change.max(last.seq);
    }
    Ok(())
}

fn held(row: &FlagValue) -> (bool, Option<i64>) {
    (row.value, row.audit_id)
}

fn publish_read(shared: &Shared, rows: &Rows) {
    let origin = Origin::Database {
        read_at: rows.full_read_at.unwrap_or_else(SystemTime::now),
    };
    shared.publish(rows, origin);
    shared.set_source_up(true, origin);
}

/// This process's report to `vexil_instances` as of `now`: the declarations now held
/// (a reload may have changed them) and the rows it holds.
async fn report(identity: &Identity, shared: &Shared, now: DateTime<Utc>) -> InstanceReport {
    let applied = shared
        .rows
        .lock()
        .await
        .receipts
        .iter()
        .map(|(key, held)| {
            let receipt = Receipt {
                audit_id: held.audit_id,
                applied_at: held.applied_at,
            };
            (key.to_string(), receipt)
        })
        .collect();
    InstanceReport {
        id: identity.id.clone(),
        env: shared.env.to_string(),
        host: identity.host.clone(),
        pid: identity.pid,
        application: identity.application.clone(),
        version: identity.version.clone(),
        started_at: identity.started_at,
        last_seen: now,
        live: true,
        env_layer: instance::env_layer(&shared.flags.load(), &shared.env_vars),
        applied,
        language: identity.language.clone(),
        transport: Transport::Database,
        change_id: None,
    }
}

impl From<StoreError> for Error {
    fn from(error: StoreError) -> Error {
        Error::Store(error)
    }
}
