//! `Hub`: one feed in, many subscribers out. The server follows the database's change
//! feed once (PostgreSQL `LISTEN`, SQLite's data-version poll, and a full read every
//! `resync_every` as the safety net), holds each env's rows, and renders every event
//! once for all subscribers:
//!
//! - `Published`: an env as it is now (the snapshot's JSON and ETag, the OFREP
//!   evaluations), swapped whole on every change; requests read it without a lock;
//! - a broadcast channel per env: each subscriber's queue is its place in the
//!   channel's ring (`SdkConfig::queue` events). A subscriber that falls further
//!   behind is dropped with a log line; sending never waits for anyone;
//! - the changes since the env's last snapshot, kept for `Last-Event-ID` (at most
//!   `SdkConfig::replay`); a resume from anywhere else gets a fresh snapshot.
//!
//! A change's event id is its change id (`console_flag_changes.seq`). A snapshot's is
//! the change it is current to and a number of its own (`42.8817`), new for every
//! snapshot and starting at random on every boot, so that no resume from another
//! event, another snapshot or another boot (a reload, an edited flags file, a resync
//! after a missed notification) is ever told it missed nothing.
//!
//! A subscriber joins under the state's lock, so nothing is sent between its first
//! frames and its first event. The hub also keeps the recent OFREP `ETag`s.

use std::collections::{BTreeSet, VecDeque};
use std::sync::atomic::{AtomicI64, AtomicU64, Ordering};
use std::sync::{Arc, Mutex, PoisonError};
use std::time::Duration;

use arc_swap::ArcSwap;
use axum::body::Bytes;
use foldhash::HashMap;
use sha2::{Digest, Sha256};
use tokio::sync::{broadcast, watch};
use vexil_app::App;
use vexil_core::sdk::{self, Snapshot};
use vexil_core::{Env, Envs, FlagSet};
use vexil_store::{Change, FlagValue, StoreError};

use crate::ofrep::Evaluations;
use crate::sdk::SdkConfig;
use crate::sdk::event::{
    EventId, Frame, KEEP_ALIVE, Published, boot_generation, json, refetch_frame, snapshot_frame,
    sse,
};

/// Changes read at once on SQLite before a full read is cheaper.
const CATCH_UP_LIMIT: i64 = 256;

/// What a new subscriber is sent first, then the events from its place in the ring.
pub(crate) struct Subscription {
    pub(crate) first: Vec<Arc<Frame>>,
    pub(crate) events: broadcast::Receiver<Arc<Frame>>,
}

/// Where a subscriber resumes from.
pub(crate) enum Resume {
    /// A fresh snapshot.
    Snapshot,
    /// From an event this server cannot place (a malformed id from a browser's
    /// `EventSource`): a fresh snapshot, which tells the subscriber it may have missed
    /// something.
    Lost,
    /// After this event, if the hub still has what followed it.
    After(EventId),
}

pub(crate) struct Hub {
    channels: Vec<Channel>,
    config: SdkConfig,
    /// The last snapshot's number (the second part of its id): random at start, one
    /// more for each snapshot.
    generation: AtomicU64,
    /// The newest change read (SQLite reads the change table after it).
    last_change: AtomicI64,
    /// False until the first full read: requests wait for it, briefly.
    loaded: watch::Sender<bool>,
    /// True once the server is stopping: every stream ends, so that shutdown can
    /// finish the connections instead of waiting on them forever.
    closing: watch::Sender<bool>,
    /// Client keys revoked, as last read; a stream opened with one of them ends.
    revoked: watch::Sender<Arc<BTreeSet<i64>>>,
}

struct Channel {
    env: Env,
    published: ArcSwap<Option<Arc<Published>>>,
    /// Bumped after every publish, for requests waiting on a change.
    version: watch::Sender<u64>,
    state: Mutex<EnvState>,
    events: broadcast::Sender<Arc<Frame>>,
}

#[derive(Default)]
struct EnvState {
    /// The env's rows as last read, declared or not: value and audit id.
    rows: HashMap<String, (bool, Option<i64>)>,
    /// The id of the snapshot the ring starts from.
    base: Option<EventId>,
    /// The changes since `base`, oldest first, with their ids.
    ring: VecDeque<(EventId, Arc<Frame>)>,
    /// The ring dropped its oldest changes: a resume from `base` needs a snapshot.
    ring_cut: bool,
    /// The OFREP `ETag`s published lately, newest last: a notification naming one
    /// of them is of a change this server has read.
    recent_etags: VecDeque<String>,
}

/// How many recent OFREP `ETag`s each env remembers.
const RECENT_ETAGS: usize = 64;

impl Hub {
    pub(crate) fn new(envs: &Envs, config: SdkConfig) -> Hub {
        let channels = envs
            .iter()
            .map(|env| Channel {
                env: env.clone(),
                published: ArcSwap::from_pointee(None),
                version: watch::channel(0).0,
                state: Mutex::default(),
                events: broadcast::channel(config.queue.max(1)).0,
            })
            .collect();
        Hub {
            channels,
            config,
            generation: AtomicU64::new(boot_generation()),
            last_change: AtomicI64::new(0),
            loaded: watch::channel(false).0,
            closing: watch::channel(false).0,
            revoked: watch::channel(Arc::default()).0,
        }
    }

    pub(crate) fn config(&self) -> &SdkConfig {
        &self.config
    }

    /// `env` as it is now; `None` until the first full read.
    pub(crate) fn published(&self, env: &Env) -> Option<Arc<Published>> {
        self.channel(env)
            .and_then(|channel| channel.published.load().as_ref().clone())
    }

    /// Waits up to `wait` for the first full read; whether it happened.
    pub(crate) async fn ready(&self, wait: Duration) -> bool {
        let mut loaded = self.loaded.subscribe();
        tokio::time::timeout(wait, loaded.wait_for(|loaded| *loaded))
            .await
            .is_ok_and(|result| result.is_ok())
    }

    /// A new subscriber of `env`: what to send first (a snapshot, or the changes it
    /// missed), then its receiver. `None` until the first full read.
    pub(crate) fn subscribe(&self, env: &Env, resume: &Resume) -> Option<Subscription> {
        let channel = self.channel(env)?;
        // Under the state's lock, which every publish holds while it sends: nothing
        // is sent between what `first` holds and the receiver's first event.
        let state = lock(&channel.state);
        let published = channel.published.load().as_ref().clone()?;
        let events = channel.events.subscribe();
        let replay = match resume {
            Resume::After(id) if Some(*id) == state.base && !state.ring_cut => Some(0),
            Resume::After(id) => state
                .ring
                .iter()
                .position(|(ring_id, _)| ring_id == id)
                .map(|at| at + 1),
            Resume::Snapshot | Resume::Lost => None,
        };
        let first = match replay {
            Some(from) => state
                .ring
                .iter()
                .skip(from)
                .map(|(_, frame)| frame.clone())
                .collect(),
            None => vec![Arc::new(snapshot_frame(&published))],
        };
        Some(Subscription { first, events })
    }

    /// Whether this server has published `etag` (unquoted) for `env` lately: a
    /// notification naming it is of a change already read here.
    pub(crate) fn published_lately(&self, env: &Env, etag: &str) -> bool {
        self.channel(env).is_some_and(|channel| {
            lock(&channel.state)
                .recent_etags
                .iter()
                .any(|recent| recent.trim_matches('"') == etag)
        })
    }

    /// `env` once its OFREP `ETag` is `etag` (unquoted), waiting up to `wait` for
    /// this server to read the change that makes it so; `None` if it did not.
    pub(crate) async fn wait_for_etag(
        &self,
        env: &Env,
        etag: &str,
        wait: Duration,
    ) -> Option<Arc<Published>> {
        let channel = self.channel(env)?;
        let mut version = channel.version.subscribe();
        let current = |channel: &Channel| {
            channel
                .published
                .load()
                .as_ref()
                .clone()
                .filter(|published| published.evaluations.etag().trim_matches('"') == etag)
        };
        let found = async {
            loop {
                if let Some(published) = current(channel) {
                    return Some(published);
                }
                version.changed().await.ok()?;
            }
        };
        tokio::time::timeout(wait, found).await.ok().flatten()
    }

    /// Ends every stream (the server is stopping).
    pub(crate) fn close(&self) {
        self.closing.send_replace(true);
    }

    pub(crate) fn closing(&self) -> watch::Receiver<bool> {
        self.closing.subscribe()
    }

    pub(crate) fn revoked(&self) -> watch::Receiver<Arc<BTreeSet<i64>>> {
        self.revoked.subscribe()
    }

    /// Records the revoked keys; streams of newly revoked ones end.
    pub(crate) fn set_revoked(&self, ids: BTreeSet<i64>) {
        self.revoked.send_if_modified(|revoked| {
            let changed = **revoked != ids;
            if changed {
                *revoked = Arc::new(ids);
            }
            changed
        });
    }

    /// Sends a keep-alive comment on every stream.
    pub(crate) fn keep_alive(&self) {
        let frame = Arc::new(Frame {
            sdk: Some(Bytes::from_static(KEEP_ALIVE)),
            ofrep: Some(Bytes::from_static(KEEP_ALIVE)),
        });
        for channel in &self.channels {
            let _ = channel.events.send(frame.clone());
        }
    }

    /// Reads every env's rows and publishes each env that changed, or every env when
    /// `announce` (the feed reconnected or a read failed before: subscribers may
    /// have missed changes, and a snapshot tells them where things stand).
    pub(crate) async fn load(&self, app: &App, announce: bool) -> Result<(), StoreError> {
        // The change mark first: a change committed between the two reads is then in
        // the rows and replayed later, which is harmless; the other order could miss it.
        let last_change = app.last_change().await?;
        let mut read = Vec::with_capacity(self.channels.len());
        for channel in &self.channels {
            read.push(app.flag_values_in(channel.env.as_str()).await?);
        }
        let first = !*self.loaded.borrow();
        for (channel, rows) in self.channels.iter().zip(read) {
            let rows: HashMap<String, (bool, Option<i64>)> = rows
                .into_iter()
                .map(
                    |FlagValue {
                         flag_key,
                         value,
                         audit_id,
                     }| (flag_key, (value, audit_id)),
                )
                .collect();
            let mut state = lock(&channel.state);
            // Under the lock a reload publishes under: never an older set over it.
            let flags = app.flags();
            if !first && !announce && state.rows == rows {
                continue;
            }
            state.rows = rows;
            let id = EventId {
                change: last_change,
                generation: self.next_generation(),
            };
            self.publish_snapshot(channel, &mut state, &flags, id);
        }
        self.last_change.fetch_max(last_change, Ordering::AcqRel);
        self.loaded.send_replace(true);
        Ok(())
    }

    /// One change named by the feed (PostgreSQL): that row is read again.
    pub(crate) async fn apply(&self, app: &App, change: &Change) -> Result<(), StoreError> {
        if !*self.loaded.borrow() {
            return self.load(app, false).await;
        }
        self.apply_row(app, change).await?;
        self.last_change.fetch_max(change.seq, Ordering::AcqRel);
        Ok(())
    }

    /// SQLite committed something: the changes after the last one read, row by row.
    pub(crate) async fn catch_up(&self, app: &App) -> Result<(), StoreError> {
        if !*self.loaded.borrow() {
            return self.load(app, false).await;
        }
        let since = self.last_change.load(Ordering::Acquire);
        let changes = app.changes_since(since, CATCH_UP_LIMIT).await?;
        if changes.len() as i64 >= CATCH_UP_LIMIT {
            return self.load(app, false).await;
        }
        for change in &changes {
            self.apply_row(app, change).await?;
            self.last_change.fetch_max(change.seq, Ordering::AcqRel);
        }
        Ok(())
    }

    /// The flags file was reloaded: every env gets a snapshot with the new
    /// declarations (and a new generation in its id).
    pub(crate) fn reload(&self, flags: &FlagSet) {
        for channel in &self.channels {
            let mut state = lock(&channel.state);
            let Some(base) = channel.published.load().as_ref().as_ref().map(|p| p.id) else {
                continue;
            };
            let id = EventId {
                change: base.change,
                generation: self.next_generation(),
            };
            self.publish_snapshot(channel, &mut state, flags, id);
        }
    }

    async fn apply_row(&self, app: &App, change: &Change) -> Result<(), StoreError> {
        let Some(channel) = self
            .channels
            .iter()
            .find(|channel| channel.env.as_str() == change.env)
        else {
            // A row of an env vexil does not manage: nobody follows it.
            return Ok(());
        };
        let row = app
            .flag_value(&change.flag_key, &change.env)
            .await?
            .map(|row| (row.value, row.audit_id));
        let mut state = lock(&channel.state);
        // Under the lock a reload publishes under: never an older set over it.
        let flags = app.flags();
        let before = match row {
            Some(row) => state.rows.insert(change.flag_key.clone(), row),
            None => state.rows.remove(&change.flag_key),
        };
        // Undeclared flags are nobody's business; an unchanged row (a second
        // notification for what was already read) is nothing new.
        if flags.get(&change.flag_key).is_none() || before == row {
            return Ok(());
        }
        let id = EventId {
            change: change.seq,
            generation: 0,
        };
        let published = self.render(channel, &state, &flags, id);
        let body = sdk::Change {
            change_id: change.seq,
            key: change.flag_key.clone(),
            row: row.map(|(value, _)| value),
            audit_id: row.and_then(|(_, audit_id)| audit_id),
        };
        let frame = Arc::new(Frame {
            sdk: Some(sse(id, "change", &json(&body))),
            ofrep: Some(refetch_frame(&published)),
        });
        state.ring.push_back((id, frame.clone()));
        if state.ring.len() > self.config.replay {
            state.ring.pop_front();
            state.ring_cut = true;
        }
        remember(&mut state, &published);
        channel.published.store(Arc::new(Some(published)));
        channel.version.send_modify(|version| *version += 1);
        metrics::counter!("vexil_sdk_events_total", "event" => "change").increment(1);
        let _ = channel.events.send(frame);
        Ok(())
    }

    /// Renders `state` as `env`'s new snapshot, publishes it and sends it to every
    /// subscriber; the ring starts again from it.
    fn publish_snapshot(
        &self,
        channel: &Channel,
        state: &mut EnvState,
        flags: &FlagSet,
        id: EventId,
    ) {
        let published = self.render(channel, state, flags, id);
        let frame = Arc::new(snapshot_frame(&published));
        state.base = Some(id);
        state.ring.clear();
        state.ring_cut = false;
        remember(state, &published);
        channel.published.store(Arc::new(Some(published)));
        channel.version.send_modify(|version| *version += 1);
        metrics::counter!("vexil_sdk_events_total", "event" => "snapshot").increment(1);
        let _ = channel.events.send(frame);
    }

    fn render(
        &self,
        channel: &Channel,
        state: &EnvState,
        flags: &FlagSet,
        id: EventId,
    ) -> Arc<Published> {
        let snapshot = Snapshot::build(&channel.env, id.change, flags, |key| {
            state.rows.get(key).copied()
        });
        let body = json(&snapshot);
        let digest = Sha256::digest(&body);
        Arc::new(Published {
            id,
            snapshot_etag: format!("\"{}\"", hex::encode(&digest[..12])),
            evaluations: Evaluations::build(&snapshot),
            snapshot: body,
            modified_at: chrono::Utc::now().timestamp(),
        })
    }

    /// A new snapshot's number.
    fn next_generation(&self) -> u64 {
        self.generation.fetch_add(1, Ordering::AcqRel) + 1
    }

    fn channel(&self, env: &Env) -> Option<&Channel> {
        self.channels.iter().find(|channel| &channel.env == env)
    }
}

/// Remembers `published`'s OFREP `ETag` among the env's recent ones.
fn remember(state: &mut EnvState, published: &Published) {
    state
        .recent_etags
        .push_back(published.evaluations.etag().to_owned());
    if state.recent_etags.len() > RECENT_ETAGS {
        state.recent_etags.pop_front();
    }
}

fn lock<T>(mutex: &Mutex<T>) -> std::sync::MutexGuard<'_, T> {
    mutex.lock().unwrap_or_else(PoisonError::into_inner)
}
