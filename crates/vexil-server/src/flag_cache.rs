//! `FlagCache`: each env's flag states as the API reads them, computed once per change
//! rather than once per request.
//!
//! Reading the states costs two database queries (the rows, the live processes'
//! reports); automation polls `GET /api/v1/flags` far more often than flags change.
//! An entry is used only while both hold:
//!
//! - no change was seen since it was computed: `invalidate` is called by every flip
//!   made through this server (console or API) before it answers, by a reload of
//!   the flags file, and by the server's own change feed (`sdk/feed.rs`) for changes
//!   made anywhere else (another server, the CLI, direct SQL), within the feed's
//!   latency (PostgreSQL `NOTIFY`: at once; SQLite: its poll, 20 ms);
//! - it is younger than `ApiConfig::flag_cache_max_age` (1 s), which bounds what the feed does not carry
//!   (the live processes' reports behind the env layer and drift) and the time a
//!   missed notification could matter.
//!
//! So a caller always reads its own flips, and others' within a second at most.

use std::collections::HashMap;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex, OnceLock};
use std::time::{Duration, Instant};

use axum::body::Bytes;
use vexil_app::{App, AppError, FlagStates};
use vexil_core::Env;

/// States by env, each with the generation it was computed at.
pub(crate) struct FlagCache {
    generation: AtomicU64,
    entries: Mutex<HashMap<String, Entry>>,
    /// The oldest entry served (`ApiConfig::flag_cache_max_age`, 1 s).
    max_age: Duration,
}

struct Entry {
    generation: u64,
    computed_at: Instant,
    states: Arc<CachedStates>,
}

/// One env's states, and what the API answers for the whole list, rendered once on
/// first use (every caller allowed to list gets the same bytes).
pub(crate) struct CachedStates {
    pub(crate) states: FlagStates,
    pub(crate) list_json: OnceLock<Bytes>,
}

impl FlagCache {
    pub(crate) fn new(max_age: Duration) -> FlagCache {
        FlagCache {
            generation: AtomicU64::new(0),
            entries: Mutex::new(HashMap::new()),
            max_age,
        }
    }

    /// `env`'s states: the cached ones if still good, else read now.
    pub(crate) async fn states(&self, app: &App, env: &Env) -> Result<Arc<CachedStates>, AppError> {
        // Read before computing: a change that lands meanwhile bumps the generation,
        // and the entry stored below is then already stale.
        let generation = self.generation.load(Ordering::Acquire);
        let started = Instant::now();
        {
            let entries = self.lock();
            if let Some(entry) = entries.get(env.as_str())
                && entry.generation == generation
                && entry.computed_at.elapsed() < self.max_age
            {
                return Ok(entry.states.clone());
            }
        }
        let states = Arc::new(CachedStates {
            states: app.flag_states(Some(env)).await?,
            list_json: OnceLock::new(),
        });
        let mut entries = self.lock();
        // A slower read of an older generation does not replace a newer one.
        if entries
            .get(env.as_str())
            .is_some_and(|entry| entry.generation > generation)
        {
            return Ok(states);
        }
        entries.insert(
            env.to_string(),
            Entry {
                generation,
                // When the read began: the data is at most this old.
                computed_at: started,
                states: states.clone(),
            },
        );
        Ok(states)
    }

    /// Something changed: every entry is stale.
    pub(crate) fn invalidate(&self) {
        self.generation.fetch_add(1, Ordering::AcqRel);
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, HashMap<String, Entry>> {
        self.entries
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
    }
}
