//! `Flags`, the handle an application asks, and `Flag`, a handle to one flag for hot
//! loops. Both read; only the mode's task (`database.rs`, `remote/`) writes, by
//! swapping in a new snapshot.
//!
//! `Flags` is a cheap clone of one `Arc`; `Flag` is one flag's cell (one atomic load).
//! `is_on` is a thread-local generation check and one foldhash lookup: no lock, no
//! allocation; an undeclared key is off and logged once. `Shared::publish` is the one
//! place a snapshot is built and swapped in. `reload`/`reload_file` (the server's
//! SIGHUP) change nothing on an invalid file. `start` returns once the first full read
//! is in (`first_read`), at most the start timeout (5 s), so no dormant variable
//! decides while a process starts.

use std::cell::RefCell;
use std::collections::HashSet;
use std::path::PathBuf;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, Mutex, PoisonError};
use std::time::{Duration, SystemTime};

use arc_swap::ArcSwap;
use chrono::Utc;
use foldhash::HashMap;
use tokio::sync::{OnceCell, broadcast, oneshot, watch};
use vexil_core::sdk::Held;
use vexil_core::{Env, EnvSnapshot, FlagSet, Source};

use crate::error::Error;
use crate::link::Link;
use crate::snapshot::{Origin, Snapshot, Value};

/// The source of `Shared::id`.
static NEXT_ID: AtomicU64 = AtomicU64::new(0);

/// A thread's last snapshot of one handle (see `Flags::is_on`).
struct Cached {
    id: u64,
    generation: u64,
    snapshot: Arc<Snapshot>,
}

thread_local! {
    static LOCAL: RefCell<Option<Cached>> = const { RefCell::new(None) };
}

/// How many undeclared keys are each logged once; past that, only counted, so that an
/// application asking for generated keys cannot fill memory or the log.
const UNDECLARED_LOGGED: usize = 1024;

/// A cheap-to-clone handle to this process's flags. Cloning shares one snapshot and one
/// background task; the task stops when the last clone is dropped.
///
/// ```no_run
/// # async fn run() -> Result<(), vexil::Error> {
/// let flags = vexil::Flags::from_env().await?;
/// if flags.is_on("search_typo_tolerance") {
///     // the new code path
/// }
/// # Ok(())
/// # }
/// ```
#[derive(Clone)]
pub struct Flags {
    pub(crate) shared: Arc<Shared>,
    _stop: Arc<oneshot::Sender<()>>,
}

impl std::fmt::Debug for Flags {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Flags")
            .field("env", &self.shared.env.as_str())
            .field("health", &*self.shared.health.borrow())
            .finish_non_exhaustive()
    }
}

/// A handle to one flag, resolved by name once: `is_on` is one atomic load. It follows
/// every change the snapshot follows, and keeps the background task running as a
/// `Flags` clone does.
#[derive(Clone)]
pub struct Flag {
    cell: Arc<AtomicBool>,
    _stop: Arc<oneshot::Sender<()>>,
}

impl std::fmt::Debug for Flag {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Flag").field("on", &self.is_on()).finish()
    }
}

impl Flag {
    #[inline]
    pub fn is_on(&self) -> bool {
        self.cell.load(Ordering::Relaxed)
    }
}

/// A change this process applied: the value `is_on` returns from now on.
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub struct Applied {
    pub flag_key: String,
    pub on: bool,
    pub source: Source,
}

/// Whether the source (the database, or the server in remote mode) answers, and how
/// old the values are.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[non_exhaustive]
pub struct Health {
    /// The source answered the last read (in remote mode: the stream is open).
    pub source_up: bool,
    pub origin: Origin,
    /// When this process last reported itself (what `vexil instances` and `vexil
    /// audit show` read); `None` before the first.
    pub reported_at: Option<SystemTime>,
}

impl Health {
    /// How long ago the last full read succeeded (single rows read for notifications
    /// in between do not count); `None` when none has (the values come from the
    /// variables and the YAML defaults).
    pub fn snapshot_age(&self) -> Option<Duration> {
        self.origin.read_at().map(|read_at| {
            SystemTime::now()
                .duration_since(read_at)
                .unwrap_or_default()
        })
    }
}

/// What every clone of a `Flags` shares with the refresher.
pub(crate) struct Shared {
    pub(crate) env: Env,
    /// What the values are read from, for log lines: "database" or "server".
    pub(crate) source_name: &'static str,
    pub(crate) flags: ArcSwap<FlagSet>,
    /// Where `flags` came from, for `reload_file`; `None` when set in code.
    flags_file: Option<PathBuf>,
    pub(crate) env_vars: EnvSnapshot,
    pub(crate) snapshot: ArcSwap<Snapshot>,
    /// Unique to this handle's family of clones, for the thread-local cache.
    id: u64,
    /// Bumped after every swap: a thread whose cached snapshot is of an older
    /// generation loads the new one.
    generation: AtomicU64,
    /// The cells behind `Flag` handles, by key, updated after every swap.
    cells: Mutex<HashMap<Box<str>, Arc<AtomicBool>>>,
    undeclared: Mutex<HashSet<Box<str>>>,
    /// How this handle reaches its source, once it has: what `invalidate` reads.
    pub(crate) link: OnceCell<Link>,
    /// Serialises every read-then-publish, so a slower read never overwrites a newer
    /// one; holds this env's DB rows as last read.
    pub(crate) rows: tokio::sync::Mutex<Rows>,
    pub(crate) applied: broadcast::Sender<Applied>,
    pub(crate) health: watch::Sender<Health>,
}

/// This env's rows as last read, the change behind each, and the newest change applied.
#[derive(Debug, Default)]
pub(crate) struct Rows {
    pub(crate) values: HashMap<Box<str>, bool>,
    /// For each row with an audit id: that id and when this process first held it.
    pub(crate) receipts: HashMap<Box<str>, Held>,
    pub(crate) last_change: i64,
    /// The source's declarations, when it sends them (a server does): they decide
    /// which flags exist, with the process's own file adding those the server does
    /// not declare yet. `None` in database mode: the process's file alone.
    pub(crate) declared: Option<Arc<FlagSet>>,
    /// Whether an unset master switch lets rows decide. The database says no (the
    /// runbook's rule for processes that read it); a server says yes to the processes
    /// that follow it (`master_switch_default` of its snapshot).
    pub(crate) master_switch_default: bool,
    /// When the last full read succeeded; until one has, single rows are not enough to
    /// call the values the database's.
    pub(crate) full_read_at: Option<SystemTime>,
    /// A receipt changed since the last report: report soon.
    pub(crate) receipts_changed: bool,
}

impl Rows {
    /// Records a row as read now, its value and the audit row behind it; `None` when
    /// (flag, env) has no row.
    pub(crate) fn set(&mut self, key: &str, row: Option<(bool, Option<i64>)>) {
        match row {
            Some((value, audit_id)) => {
                self.values.insert(Box::from(key), value);
                match audit_id {
                    Some(audit_id)
                        if self.receipts.get(key).map(|r| r.audit_id) != Some(audit_id) =>
                    {
                        self.receipts.insert(
                            Box::from(key),
                            Held {
                                audit_id,
                                applied_at: Utc::now(),
                            },
                        );
                        self.receipts_changed = true;
                    }
                    Some(_) => {}
                    None => {
                        self.receipts_changed |= self.receipts.remove(key).is_some();
                    }
                }
            }
            None => {
                self.values.remove(key);
                self.receipts_changed |= self.receipts.remove(key).is_some();
            }
        }
    }
}

impl Flags {
    pub(crate) fn new(
        source_name: &'static str,
        env: Env,
        flags: FlagSet,
        flags_file: Option<PathBuf>,
        env_vars: EnvSnapshot,
    ) -> (Flags, Arc<Shared>, oneshot::Receiver<()>) {
        let snapshot = Snapshot::build(&flags, &Rows::default(), &env_vars, Origin::Fallback);
        let health = Health {
            source_up: false,
            origin: Origin::Fallback,
            reported_at: None,
        };
        let shared = Arc::new(Shared {
            env,
            source_name,
            flags: ArcSwap::from_pointee(flags),
            flags_file,
            env_vars,
            snapshot: ArcSwap::from_pointee(snapshot),
            id: NEXT_ID.fetch_add(1, Ordering::Relaxed),
            generation: AtomicU64::new(0),
            cells: Mutex::default(),
            undeclared: Mutex::default(),
            link: OnceCell::new(),
            rows: tokio::sync::Mutex::default(),
            applied: broadcast::channel(1024).0,
            health: watch::channel(health).0,
        });
        let (stop, stopped) = oneshot::channel();
        let flags = Flags {
            shared: shared.clone(),
            _stop: Arc::new(stop),
        };
        (flags, shared, stopped)
    }

    /// Whether `key` is on in this process's env. Lock-free and allocation-free: one
    /// snapshot load and one hash lookup. A key the flags file does not declare is
    /// off; it is logged once and counted (`vexil_flags_undeclared_total`).
    #[inline]
    pub fn is_on(&self, key: &str) -> bool {
        let shared = &*self.shared;
        let generation = shared.generation.load(Ordering::Acquire);
        // Each thread keeps the snapshot it last used and takes a new one only when
        // the generation moved: one atomic load and a thread-local access instead of
        // `ArcSwap::load`'s debt bookkeeping, a third of the cost.
        let found = LOCAL.try_with(|local| {
            let mut local = local.borrow_mut();
            let stale = local
                .as_ref()
                .is_none_or(|cached| cached.id != shared.id || cached.generation != generation);
            if stale {
                *local = Some(Cached {
                    id: shared.id,
                    generation,
                    snapshot: shared.snapshot.load_full(),
                });
            }
            local
                .as_ref()
                .and_then(|cached| cached.snapshot.values.get(key).map(|value| value.on))
        });
        // The thread is exiting and its locals are gone: the shared snapshot.
        let found =
            found.unwrap_or_else(|_| shared.snapshot.load().values.get(key).map(|value| value.on));
        match found {
            Some(on) => on,
            None => shared.undeclared(key),
        }
    }

    /// The value of `key` and where it came from; `None` when it is not declared.
    pub fn value(&self, key: &str) -> Option<Value> {
        self.shared.snapshot.load().values.get(key).copied()
    }

    /// A handle to one flag for hot loops: `flag.is_on()` is one atomic load.
    pub fn flag(&self, key: &str) -> Flag {
        // Said (if undeclared) before the lock is taken: see `undeclared`.
        if !self.shared.snapshot.load().values.contains_key(key) {
            self.shared.undeclared(key);
        }
        let mut cells = self
            .shared
            .cells
            .lock()
            .unwrap_or_else(PoisonError::into_inner);
        // Loaded under the lock that `publish` updates the cells under: a swap either
        // happened before (and this reads it) or updates this cell after.
        let snapshot = self.shared.snapshot.load();
        let cell = cells.entry(Box::from(key)).or_insert_with(|| {
            let on = snapshot.values.get(key).is_some_and(|value| value.on);
            Arc::new(AtomicBool::new(on))
        });
        Flag {
            cell: cell.clone(),
            _stop: self._stop.clone(),
        }
    }

    /// Waits for the first full read of the source, at most `timeout`; a refusal at
    /// first contact (remote mode: a key the server refuses, another env's key) is
    /// the error.
    pub(crate) async fn first_read(
        &self,
        first: Option<crate::config::FirstContact>,
        timeout: Duration,
    ) -> Result<(), Error> {
        let mut health = self.watch_health();
        let read = async move {
            let read_in = health.wait_for(|health| health.origin.read_at().is_some());
            match first {
                #[cfg(feature = "remote")]
                Some(contact) => tokio::select! {
                    Ok(Err(refused)) = contact => Err(Error::from(refused)),
                    _ = read_in => Ok(()),
                },
                _ => {
                    let _ = read_in.await;
                    Ok(())
                }
            }
        };
        match tokio::time::timeout(timeout, read).await {
            Ok(read) => read,
            Err(_) => {
                if !timeout.is_zero() {
                    tracing::warn!(
                        env = self.env(),
                        "the {} did not answer within {timeout:?}: resolving from FLAG_* variables and YAML defaults until it does",
                        self.shared.source_name
                    );
                }
                Ok(())
            }
        }
    }

    /// The env this process belongs to.
    pub fn env(&self) -> &str {
        self.shared.env.as_str()
    }

    /// Whether the source answers, and how old the values are.
    pub fn health(&self) -> Health {
        *self.shared.health.borrow()
    }

    /// Follows `health` as it changes (the source going down or coming back).
    pub fn watch_health(&self) -> watch::Receiver<Health> {
        self.shared.health.subscribe()
    }

    /// Every change this process applies from now on, as it applies it.
    pub fn subscribe(&self) -> broadcast::Receiver<Applied> {
        self.shared.applied.subscribe()
    }

    /// Replaces the declarations (a reloaded flags file) and resolves every flag again
    /// against the rows already held. A key no longer declared is off from now on.
    pub async fn reload(&self, flags: FlagSet) {
        let rows = self.shared.rows.lock().await;
        self.shared.flags.store(Arc::new(flags));
        let origin = self.shared.snapshot.load().origin;
        self.shared.publish(&rows, origin);
    }

    /// Reads the flags file again (the one the handle was started with). An invalid
    /// or unreadable file changes nothing: the last valid declarations stay, and the
    /// error says why (every error in the file, with its line and column).
    pub async fn reload_file(&self) -> Result<(), Error> {
        let path = self.shared.flags_file.as_ref().ok_or(Error::NoFlagsFile)?;
        let flags = crate::config::read_flag_set(path)?;
        self.reload(flags).await;
        Ok(())
    }

    /// Re-reads one flag's row now: what the process that flipped it calls, so that it
    /// sees its own flip before any notification arrives. In remote mode it reads the
    /// server's snapshot, which holds a flip once the server has seen it (its change
    /// feed: within milliseconds on PostgreSQL), so it is no such guarantee there.
    pub async fn invalidate(&self, key: &str) -> Result<(), Error> {
        let Some(link) = self.shared.link.get() else {
            return Err(Error::SourceDown);
        };
        link.read_again(&self.shared, key).await
    }
}

impl Shared {
    #[cold]
    fn undeclared(&self, key: &str) -> bool {
        metrics::counter!("vexil_flags_undeclared_total").increment(1);
        let first_time = {
            let mut seen = self
                .undeclared
                .lock()
                .unwrap_or_else(PoisonError::into_inner);
            seen.len() < UNDECLARED_LOGGED && seen.insert(Box::from(key))
        };
        // Logged with no lock held: a log line may run foreign code (the Python
        // package hands it to Python's `logging`, which can switch threads).
        if first_time {
            tracing::warn!(
                flag = key,
                "flag {key:?} is not declared in the flags file; it is off (logged once)"
            );
        }
        false
    }

    /// Swaps in the snapshot built from `rows`, updates the `Flag` cells, and tells
    /// subscribers what changed. Called with `rows` locked.
    pub(crate) fn publish(&self, rows: &Rows, origin: Origin) {
        let flags = self.flags.load();
        let now = Arc::new(Snapshot::build(&flags, rows, &self.env_vars, origin));
        let before = self.snapshot.swap(now.clone());
        self.generation.fetch_add(1, Ordering::Release);
        {
            let cells = self.cells.lock().unwrap_or_else(PoisonError::into_inner);
            for (key, cell) in cells.iter() {
                let on = now.values.get(key).is_some_and(|value| value.on);
                cell.store(on, Ordering::Relaxed);
            }
        }
        // A flag no longer declared (a reload) is off from now on.
        for key in before
            .values
            .keys()
            .filter(|key| !now.values.contains_key(*key))
        {
            let _ = self.applied.send(Applied {
                flag_key: key.to_string(),
                on: false,
                source: Source::Yaml,
            });
        }
        for (key, value) in &now.values {
            if before.values.get(key) != Some(value) {
                // No receiver is fine: nobody is watching.
                let _ = self.applied.send(Applied {
                    flag_key: key.to_string(),
                    on: value.on,
                    source: value.source,
                });
            }
        }
        if let Some(read_at) = origin.read_at() {
            let seconds = read_at
                .duration_since(SystemTime::UNIX_EPOCH)
                .unwrap_or_default()
                .as_secs_f64();
            metrics::gauge!("vexil_flags_snapshot_timestamp_seconds").set(seconds);
        }
    }

    /// Records that the source answered (or not), logging only the changes of state.
    pub(crate) fn set_source_up(&self, up: bool, origin: Origin) {
        let before = *self.health.borrow();
        let source = self.source_name;
        if before.source_up && !up {
            tracing::error!(
                env = self.env.as_str(),
                "the {source} stopped answering; serving the last values read from it until it does"
            );
        } else if !before.source_up && up {
            tracing::info!(
                env = self.env.as_str(),
                "the {source} answers; values are current"
            );
        }
        self.health.send_modify(|health| {
            health.source_up = up;
            health.origin = origin;
        });
    }

    /// Records that this process's report was written.
    pub(crate) fn set_reported(&self, at: SystemTime) {
        self.health
            .send_modify(|health| health.reported_at = Some(at));
    }
}
