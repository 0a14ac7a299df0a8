//! Who calls the evaluation plane: `authenticate` turns `Authorization: Bearer vxc_…`
//! into the `Client` the key acts for, or says why not (`KeyRefused`). The SDK routes
//! (`ClientCaller`) and OFREP each say it in their own shape.
//!
//! - Keys are found by their SHA-256 in `KeyCache` for `ApiConfig::token_ttl` (2 s) on
//!   the app's clock, as API tokens are: a revoked key is refused within that window.
//!   Only valid keys are cached.
//! - A key the cache misses is read from the database once, however many requests
//!   present it at that moment (a fleet reconnecting after a restart behind one NAT).
//!   An address that presents bad keys (each costs a read) may present
//!   `FAILURES_PER_SECOND` of them, then waits; a valid key never counts against it.
//! - Requests are limited per key (`SdkConfig::requests_per_second`), never per
//!   address: a thousand processes behind one NAT must not starve each other.
//! - An account's API token (`vxl_…`) is refused here, and a client key by the
//!   management API: different jobs, different credentials.
//!
//! A key's use is noted in the database at most once a minute per server.

use std::collections::HashMap;
use std::net::{IpAddr, SocketAddr};
use std::num::NonZeroU32;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use axum::extract::{ConnectInfo, FromRequestParts};
use axum::http::request::Parts;
use axum::http::{HeaderMap, header};
use chrono::{DateTime, Utc};
use governor::clock::{Clock, DefaultClock};
use governor::{DefaultKeyedRateLimiter, Quota, RateLimiter};
use secrecy::SecretString;
use sha2::{Digest, Sha256};
use tokio::sync::OnceCell;
use vexil_app::{AppError, CLIENT_KEY_PREFIX, Client, TOKEN_PREFIX};

use crate::api::error::ApiError;
use crate::state::ServerState;

/// Bad keys one client address may present per second (and the burst) before it
/// waits: each costs a database read.
const FAILURES_PER_SECOND: u32 = 20;

/// How often a key's use is noted, at most.
const NOTE_EVERY: Duration = Duration::from_secs(60);

/// Entries kept at most; past it the cache starts again empty.
const MAX_ENTRIES: usize = 10_000;

/// Why a request to the evaluation plane is refused before it is read.
#[derive(Debug)]
pub(crate) enum KeyRefused {
    /// No key, a malformed header, an unknown or revoked key, or an account's token.
    Unauthenticated(&'static str),
    /// Too many requests for this key, or lookups from this address.
    RateLimited(Duration),
    /// The database could not say (down): nothing is known about the key.
    App(AppError),
}

/// The client an SDK request acts for, refusals in the API's JSON shape.
#[derive(Debug, Clone)]
pub(crate) struct ClientCaller(pub(crate) Arc<Client>);

impl FromRequestParts<ServerState> for ClientCaller {
    type Rejection = ApiError;

    async fn from_request_parts(parts: &mut Parts, state: &ServerState) -> Result<Self, ApiError> {
        authenticate(&parts.headers, peer(parts), state)
            .await
            .map(ClientCaller)
            .map_err(|refused| match refused {
                KeyRefused::Unauthenticated(why) => ApiError::Unauthenticated(why),
                KeyRefused::RateLimited(wait) => ApiError::RateLimited(wait),
                KeyRefused::App(error) => ApiError::App(error),
            })
    }
}

/// The client of `Authorization: Bearer vxc_…` in `headers`, limited per key;
/// `peer` is the client's address as limits count it (`peer`).
pub(crate) async fn authenticate(
    headers: &HeaderMap,
    peer: Option<IpAddr>,
    state: &ServerState,
) -> Result<Arc<Client>, KeyRefused> {
    let key = bearer_key(headers)?;
    let hash: [u8; 32] = Sha256::digest(key.as_bytes()).into();
    let client = match state.keys.get(&hash, state.app.now(), state.api.token_ttl) {
        Some(client) => client,
        None => look_up(peer, state, hash, SecretString::from(key.to_owned())).await?,
    };
    state.keys.limit_key(client.key_id())?;
    Ok(client)
}

/// A key the cache does not hold, read from the database once however many requests
/// present it at the same moment (a fleet reconnecting after a restart), and cached.
/// Only an address that presented bad keys is ever slowed down.
async fn look_up(
    peer: Option<IpAddr>,
    state: &ServerState,
    hash: [u8; 32],
    key: SecretString,
) -> Result<Arc<Client>, KeyRefused> {
    if let Some(peer) = peer {
        state.keys.check_blocked(peer)?;
    }
    let now = state.app.now();
    let cell = state.keys.in_flight(hash);
    // Whatever happens to this request (even dropped mid-lookup), the lookup ends
    // with it: the next miss reads again, and no entry is left behind.
    let _landing = Landing {
        keys: &state.keys,
        hash,
    };
    let found = cell
        .get_or_try_init(|| async {
            match state.app.client_for_key(&key).await {
                Ok(client) => Ok(Some(Arc::new(client))),
                Err(AppError::BadClientKey) => Ok(None),
                Err(other) => Err(other),
            }
        })
        .await
        .cloned();
    match found {
        Ok(Some(client)) => {
            if !state.api.token_ttl.is_zero() {
                state.keys.put(hash, client.clone(), now);
            }
            note_use(state, client.key_id()).await;
            Ok(client)
        }
        Ok(None) => {
            if let Some(peer) = peer {
                state.keys.count_failure(peer);
            }
            Err(KeyRefused::Unauthenticated("invalid or revoked client key"))
        }
        Err(error) => Err(KeyRefused::App(error)),
    }
}

/// Ends a key's lookup in flight when dropped.
struct Landing<'a> {
    keys: &'a KeyCache,
    hash: KeyHash,
}

impl Drop for Landing<'_> {
    fn drop(&mut self) {
        self.keys.landed(&self.hash);
    }
}

/// Notes a key's use at most once a minute per server: "last used" needs no more,
/// and a write per lookup would make a cache that reads on every request (a
/// `token_ttl` of zero) a write per request. A failure only costs the note.
async fn note_use(state: &ServerState, key_id: i64) {
    if state.keys.due_for_note(key_id)
        && let Err(error) = state.app.note_client_key_use(key_id).await
    {
        tracing::debug!(%error, key = key_id, "cannot note a client key's use");
    }
}

/// The client of an OFREP events token (`Client::events_token`, for a browser's
/// `EventSource`, which sends no `Authorization`), limited as a key is.
pub(crate) async fn authenticate_events_token(
    parts: &Parts,
    state: &ServerState,
    token: &str,
) -> Result<Arc<Client>, KeyRefused> {
    let peer = peer(parts);
    if let Some(peer) = peer {
        state.keys.check_blocked(peer)?;
    }
    let client = state
        .app
        .client_for_events_token(token)
        .await
        .map_err(|error| match error {
            AppError::BadClientKey => {
                if let Some(peer) = peer {
                    state.keys.count_failure(peer);
                }
                KeyRefused::Unauthenticated("invalid events token, or its client key was revoked")
            }
            other => KeyRefused::App(other),
        })?;
    state.keys.limit_key(client.key_id())?;
    note_use(state, client.key_id()).await;
    Ok(Arc::new(client))
}

/// The client's address as the lookup limit counts it (an IPv6 one by its /64).
pub(crate) fn peer(parts: &Parts) -> Option<IpAddr> {
    parts
        .extensions
        .get::<ConnectInfo<SocketAddr>>()
        .map(|info| crate::api::address_key(info.0.ip()))
}

/// The key of `Authorization: Bearer <key>`, or why there is none.
fn bearer_key(headers: &HeaderMap) -> Result<&str, KeyRefused> {
    let value = headers.get(header::AUTHORIZATION).ok_or(KeyRefused::Unauthenticated(
        "no Authorization header: send `Authorization: Bearer vxc_…` (from `vexil client-key create`)",
    ))?;
    let malformed =
        || KeyRefused::Unauthenticated("malformed Authorization header: expected `Bearer vxc_…`");
    let text = value.to_str().map_err(|_| malformed())?;
    let (scheme, key) = text.split_once(' ').ok_or_else(malformed)?;
    let key = key.trim();
    if !scheme.eq_ignore_ascii_case("bearer") || key.is_empty() || key.len() > 256 {
        return Err(malformed());
    }
    if key.starts_with(TOKEN_PREFIX) {
        return Err(KeyRefused::Unauthenticated(
            "an account's API token cannot read the evaluation plane: applications use a client key (`vexil client-key create`)",
        ));
    }
    if !key.starts_with(CLIENT_KEY_PREFIX) {
        return Err(KeyRefused::Unauthenticated("invalid or revoked client key"));
    }
    Ok(key)
}

/// A key's SHA-256.
type KeyHash = [u8; 32];

/// A valid key's client, and when it was read.
type Cached = (Arc<Client>, DateTime<Utc>);

/// A key's lookup that later callers wait for: the client, or `None` for a bad key.
type Lookup = Arc<OnceCell<Option<Arc<Client>>>>;

/// Clients by key hash, the lookups in flight, and the limits around them.
pub(crate) struct KeyCache {
    /// Each valid key's client, and when it was read.
    entries: Mutex<HashMap<KeyHash, Cached>>,
    /// One database read per key hash at a time.
    in_flight: Mutex<HashMap<KeyHash, Lookup>>,
    per_key: Option<DefaultKeyedRateLimiter<i64>>,
    /// Bad keys per address, and the addresses that presented too many, until when.
    failures: DefaultKeyedRateLimiter<IpAddr>,
    blocked: Mutex<HashMap<IpAddr, Instant>>,
    /// When each key's use was last noted.
    noted: Mutex<HashMap<i64, Instant>>,
}

impl KeyCache {
    /// `requests_per_second` per key (and the burst); 0 turns the limit off.
    pub(crate) fn new(requests_per_second: u32) -> KeyCache {
        let per_key =
            NonZeroU32::new(requests_per_second).map(|n| RateLimiter::keyed(Quota::per_second(n)));
        let failures = NonZeroU32::new(FAILURES_PER_SECOND).unwrap_or(NonZeroU32::MIN);
        KeyCache {
            entries: Mutex::default(),
            in_flight: Mutex::default(),
            per_key,
            failures: RateLimiter::keyed(Quota::per_second(failures)),
            blocked: Mutex::default(),
            noted: Mutex::default(),
        }
    }

    fn get(&self, hash: &[u8; 32], now: DateTime<Utc>, ttl: Duration) -> Option<Arc<Client>> {
        let entries = lock(&self.entries);
        let (client, read_at) = entries.get(hash)?;
        let age = (now - *read_at).to_std().unwrap_or(Duration::MAX);
        (age < ttl).then(|| client.clone())
    }

    fn put(&self, hash: [u8; 32], client: Arc<Client>, now: DateTime<Utc>) {
        let mut entries = lock(&self.entries);
        if entries.len() >= MAX_ENTRIES {
            entries.clear();
        }
        entries.insert(hash, (client, now));
    }

    /// The lookup of `hash` to join or start.
    fn in_flight(&self, hash: KeyHash) -> Lookup {
        lock(&self.in_flight).entry(hash).or_default().clone()
    }

    /// The lookup of `hash` is over: the next miss reads again.
    fn landed(&self, hash: &[u8; 32]) {
        lock(&self.in_flight).remove(hash);
    }

    fn limit_key(&self, key_id: i64) -> Result<(), KeyRefused> {
        let Some(limiter) = &self.per_key else {
            return Ok(());
        };
        limiter
            .check_key(&key_id)
            .map_err(|not_until| KeyRefused::RateLimited(wait(&not_until)))
    }

    /// Whether key `id`'s use should be noted now (and, if so, it counts as noted).
    fn due_for_note(&self, id: i64) -> bool {
        let now = Instant::now();
        let mut noted = lock(&self.noted);
        let due = noted
            .get(&id)
            .is_none_or(|at| now.duration_since(*at) >= NOTE_EVERY);
        if due {
            if noted.len() >= MAX_ENTRIES {
                noted.clear();
            }
            noted.insert(id, now);
        }
        due
    }

    /// Refuses an address that presented too many bad keys lately.
    fn check_blocked(&self, peer: IpAddr) -> Result<(), KeyRefused> {
        let mut blocked = lock(&self.blocked);
        match blocked.get(&peer) {
            Some(until) if *until > Instant::now() => {
                Err(KeyRefused::RateLimited(*until - Instant::now()))
            }
            Some(_) => {
                blocked.remove(&peer);
                Ok(())
            }
            None => Ok(()),
        }
    }

    /// An address presented a bad key: past its allowance, it waits.
    fn count_failure(&self, peer: IpAddr) {
        if let Err(not_until) = self.failures.check_key(&peer) {
            lock(&self.blocked).insert(peer, Instant::now() + wait(&not_until));
        }
    }

    /// Forgets limiter state of keys and addresses not seen lately (housekeeping).
    pub(crate) fn retain_recent(&self) {
        if let Some(limiter) = &self.per_key {
            limiter.retain_recent();
        }
        self.failures.retain_recent();
        let now = Instant::now();
        lock(&self.blocked).retain(|_, until| *until > now);
    }
}

fn wait(not_until: &governor::NotUntil<governor::clock::QuantaInstant>) -> Duration {
    not_until.wait_time_from(DefaultClock::default().now())
}

fn lock<T>(mutex: &Mutex<T>) -> std::sync::MutexGuard<'_, T> {
    mutex
        .lock()
        .unwrap_or_else(std::sync::PoisonError::into_inner)
}
