//! Who calls the evaluation plane: `authenticate` turns `Authorization: Bearer vxc_…`
//! into the `Client` the key acts for, or says why not (`KeyRefused`). The SDK routes
//! (`ClientCaller`) and OFREP each say it in their own shape.
//!
//! - Keys are found by their SHA-256 in `KeyCache` for `ApiConfig::token_ttl` (2 s) on
//!   the app's clock, as API tokens are: a revoked key is refused within that window.
//!   Only valid keys are cached.
//! - A lookup that misses the cache costs a database read, so each client address
//!   may cause `LOOKUPS_PER_SECOND` of them (bad keys included). A fleet behind one
//!   NAT shares its key, which is looked up once per window for all of them.
//! - Requests are limited per key (`SdkConfig::requests_per_second`), never per
//!   address: a thousand processes behind one NAT must not starve each other.
//! - An account's API token (`vxl_…`) is refused here, and a client key by the
//!   management API: different jobs, different credentials.

use std::collections::HashMap;
use std::net::{IpAddr, SocketAddr};
use std::num::NonZeroU32;
use std::sync::Mutex;
use std::time::Duration;

use axum::extract::{ConnectInfo, FromRequestParts};
use axum::http::header;
use axum::http::request::Parts;
use chrono::{DateTime, Utc};
use governor::clock::{Clock, DefaultClock};
use governor::{DefaultKeyedRateLimiter, Quota, RateLimiter};
use secrecy::SecretString;
use sha2::{Digest, Sha256};
use vexil_app::{AppError, CLIENT_KEY_PREFIX, Client, TOKEN_PREFIX};

use crate::api::error::ApiError;
use crate::state::ServerState;

/// Database lookups of uncached keys one client address may cause per second (and
/// the burst).
const LOOKUPS_PER_SECOND: u32 = 50;

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
pub(crate) struct ClientCaller(pub(crate) Client);

impl FromRequestParts<ServerState> for ClientCaller {
    type Rejection = ApiError;

    async fn from_request_parts(parts: &mut Parts, state: &ServerState) -> Result<Self, ApiError> {
        authenticate(parts, state)
            .await
            .map(ClientCaller)
            .map_err(|refused| match refused {
                KeyRefused::Unauthenticated(why) => ApiError::Unauthenticated(why),
                KeyRefused::RateLimited(wait) => ApiError::RateLimited(wait),
                KeyRefused::App(error) => ApiError::App(error),
            })
    }
}

/// The client of `Authorization: Bearer vxc_…`, limited per key.
pub(crate) async fn authenticate(parts: &Parts, state: &ServerState) -> Result<Client, KeyRefused> {
    let key = bearer_key(parts)?;
    let hash: [u8; 32] = Sha256::digest(key.as_bytes()).into();
    let app = &state.app;
    let now = app.now();
    let ttl = state.api.token_ttl;
    let client = match state.keys.get(&hash, now, ttl) {
        Some(client) => client,
        None => {
            if let Some(peer) = peer(parts) {
                state.keys.limit_lookup(peer)?;
            }
            let client = app
                .client_for_key(&SecretString::from(key))
                .await
                .map_err(|error| match error {
                    AppError::BadClientKey => KeyRefused::Unauthenticated("invalid or revoked client key"),
                    other => KeyRefused::App(other),
                })?;
            if !ttl.is_zero() {
                state.keys.put(hash, client.clone(), now);
            }
            client
        }
    };
    state.keys.limit_key(client.key_id())?;
    Ok(client)
}

/// The client of an OFREP events token (`Client::events_token`, for a browser's
/// `EventSource`, which sends no `Authorization`), limited as a key is.
pub(crate) async fn authenticate_events_token(
    parts: &Parts,
    state: &ServerState,
    token: &str,
) -> Result<Client, KeyRefused> {
    if let Some(peer) = peer(parts) {
        state.keys.limit_lookup(peer)?;
    }
    let client = state
        .app
        .client_for_events_token(token)
        .await
        .map_err(|error| match error {
            AppError::BadClientKey => {
                KeyRefused::Unauthenticated("invalid events token, or its client key was revoked")
            }
            other => KeyRefused::App(other),
        })?;
    state.keys.limit_key(client.key_id())?;
    Ok(client)
}

/// The client's address as the lookup limit counts it (an IPv6 one by its /64).
fn peer(parts: &Parts) -> Option<IpAddr> {
    parts
        .extensions
        .get::<ConnectInfo<SocketAddr>>()
        .map(|info| crate::api::address_key(info.0.ip()))
}

/// The key of `Authorization: Bearer <key>`, or why there is none.
fn bearer_key(parts: &Parts) -> Result<String, KeyRefused> {
    let value = parts.headers.get(header::AUTHORIZATION).ok_or(KeyRefused::Unauthenticated(
        "no Authorization header: send `Authorization: Bearer vxc_…` (from `vexil client-key create`)",
    ))?;
    let malformed = || KeyRefused::Unauthenticated("malformed Authorization header: expected `Bearer vxc_…`");
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
    Ok(key.to_owned())
}

/// Clients by key hash, and the limits around them.
pub(crate) struct KeyCache {
    entries: Mutex<HashMap<[u8; 32], (Client, DateTime<Utc>)>>,
    per_key: Option<DefaultKeyedRateLimiter<i64>>,
    lookups: DefaultKeyedRateLimiter<IpAddr>,
}

impl KeyCache {
    /// `requests_per_second` per key (and the burst); 0 turns the limit off.
    pub(crate) fn new(requests_per_second: u32) -> KeyCache {
        let per_key = NonZeroU32::new(requests_per_second)
            .map(|n| RateLimiter::keyed(Quota::per_second(n)));
        let lookups = NonZeroU32::new(LOOKUPS_PER_SECOND).unwrap_or(NonZeroU32::MIN);
        KeyCache {
            entries: Mutex::default(),
            per_key,
            lookups: RateLimiter::keyed(Quota::per_second(lookups)),
        }
    }

    fn get(&self, hash: &[u8; 32], now: DateTime<Utc>, ttl: Duration) -> Option<Client> {
        let entries = self.entries.lock().unwrap_or_else(std::sync::PoisonError::into_inner);
        let (client, read_at) = entries.get(hash)?;
        let age = (now - *read_at).to_std().unwrap_or(Duration::MAX);
        (age < ttl).then(|| client.clone())
    }

    fn put(&self, hash: [u8; 32], client: Client, now: DateTime<Utc>) {
        let mut entries = self.entries.lock().unwrap_or_else(std::sync::PoisonError::into_inner);
        if entries.len() >= MAX_ENTRIES {
            entries.clear();
        }
        entries.insert(hash, (client, now));
    }

    fn limit_key(&self, key_id: i64) -> Result<(), KeyRefused> {
        let Some(limiter) = &self.per_key else {
            return Ok(());
        };
        limiter
            .check_key(&key_id)
            .map_err(|not_until| KeyRefused::RateLimited(not_until.wait_time_from(DefaultClock::default().now())))
    }

    fn limit_lookup(&self, peer: IpAddr) -> Result<(), KeyRefused> {
        self.lookups
            .check_key(&peer)
            .map_err(|not_until| KeyRefused::RateLimited(not_until.wait_time_from(DefaultClock::default().now())))
    }

    /// Forgets limiter state of keys and addresses not seen lately (housekeeping).
    pub(crate) fn retain_recent(&self) {
        if let Some(limiter) = &self.per_key {
            limiter.retain_recent();
        }
        self.lookups.retain_recent();
    }
}
