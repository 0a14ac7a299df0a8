//! `Caller`: the account an API request acts for, from `Authorization: Bearer
//! <token>`; and `TokenCache`, which spares the database a lookup per request.
//!
//! The cache maps the token's SHA-256 (never the token) to the account as it was read,
//! for `ApiConfig::token_ttl` on the app's clock (2 s by default). The role is
//! therefore at most that old, and a revoked token or a disabled account is refused
//! at most that long after the change (docs/roles.md#api-tokens). Unknown
//! tokens are not cached, so a new token works at once; a flood of bad tokens meets
//! the per-address limit instead.

use std::collections::HashMap;
use std::net::{IpAddr, SocketAddr};
use std::sync::Mutex;
use std::time::Duration;

use axum::extract::{ConnectInfo, FromRequestParts};
use axum::http::header;
use axum::http::request::Parts;
use chrono::{DateTime, Utc};
use secrecy::SecretString;
use sha2::{Digest, Sha256};
use vexil_app::{Actor, AppError, StepUp, TotpCode};

use crate::api::error::ApiError;
use crate::state::ServerState;

/// The longest `Authorization` value looked at: a vexil token is 68 characters.
const MAX_TOKEN_CHARS: usize = 256;

const MALFORMED: &str = "malformed Authorization header: expected `Bearer <token>`";

/// Entries kept at most; past it the cache starts again empty (a few kilobytes each
/// way, and only ever reached by many distinct valid tokens).
const MAX_ENTRIES: usize = 10_000;

/// The account a request acts for: its token was valid, and its account enabled,
/// at most `token_ttl` ago.
#[derive(Debug, Clone)]
pub(crate) struct Caller {
    pub(crate) actor: Actor,
    /// The client's address, for audit rows (`Caller::from`).
    peer: Option<IpAddr>,
}

impl Caller {
    /// The `totp` field of this request, if one was sent, taken from the account's
    /// allowance of attempts (in memory: the audit-log lock counts failures once
    /// recorded, so a burst of parallel guesses would all be checked before it sees
    /// one).
    pub(crate) fn code(
        &self,
        state: &ServerState,
        field: Option<&str>,
    ) -> Result<Option<TotpCode>, ApiError> {
        let code = TotpCode::from_field(field);
        if code.is_some() {
            state
                .account_attempt("totp", self.actor.name())
                .map_err(ApiError::RateLimited)?;
        }
        Ok(code)
    }

    /// What this request brings to a use case that may need elevation: its `totp`
    /// code, if it sent one (an API request holds no elevation of its own).
    pub(crate) fn step_up<'a>(&self, code: Option<&'a TotpCode>, from: &'a str) -> StepUp<'a> {
        StepUp::from_parts(code, None, from)
    }

    /// The client's address as audit rows record it (`unknown` without one).
    pub(crate) fn from(&self) -> String {
        self.peer
            .map_or_else(|| "unknown".to_owned(), |ip| ip.to_string())
    }
}

/// An account as read for a token, and when.
type Cached = (Actor, DateTime<Utc>);

/// Accounts by token hash, each with when it was read.
#[derive(Default)]
pub(crate) struct TokenCache {
    entries: Mutex<HashMap<[u8; 32], Cached>>,
}

impl TokenCache {
    fn get(&self, hash: &[u8; 32], now: DateTime<Utc>, ttl: Duration) -> Option<Actor> {
        let entries = self
            .entries
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner);
        let (actor, read_at) = entries.get(hash)?;
        let age = (now - *read_at).to_std().unwrap_or(Duration::MAX);
        (age < ttl).then(|| actor.clone())
    }

    fn put(&self, hash: [u8; 32], actor: Actor, now: DateTime<Utc>) {
        let mut entries = self
            .entries
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner);
        if entries.len() >= MAX_ENTRIES {
            entries.clear();
        }
        entries.insert(hash, (actor, now));
    }
}

impl FromRequestParts<ServerState> for Caller {
    type Rejection = ApiError;

    async fn from_request_parts(
        parts: &mut Parts,
        state: &ServerState,
    ) -> Result<Caller, ApiError> {
        let peer = parts
            .extensions
            .get::<ConnectInfo<SocketAddr>>()
            .map(|info| info.0.ip());
        let token = bearer(parts)?;
        let hash: [u8; 32] = Sha256::digest(token.as_bytes()).into();
        let app = &state.app;
        let now = app.now();
        let ttl = state.api.token_ttl;
        if let Some(actor) = state.tokens.get(&hash, now, ttl) {
            return Ok(Caller { actor, peer });
        }
        let actor = app
            .actor_for_token(&SecretString::from(token))
            .await
            .map_err(|error| match error {
                AppError::BadToken => ApiError::Unauthenticated("invalid or revoked API token"),
                other => ApiError::App(other),
            })?;
        if !ttl.is_zero() {
            state.tokens.put(hash, actor.clone(), now);
        }
        Ok(Caller { actor, peer })
    }
}

/// The token of `Authorization: Bearer <token>`, or why there is none.
fn bearer(parts: &Parts) -> Result<String, ApiError> {
    let value = parts
        .headers
        .get(header::AUTHORIZATION)
        .ok_or(ApiError::Unauthenticated(
            "no Authorization header: send `Authorization: Bearer <token>` (from `vexil token create`)",
        ))?;
    let malformed = || ApiError::Unauthenticated(MALFORMED);
    let text = value.to_str().map_err(|_| malformed())?;
    let (scheme, token) = text.split_once(' ').ok_or_else(malformed)?;
    let token = token.trim();
    if !scheme.eq_ignore_ascii_case("bearer")
        || token.is_empty()
        || token.len() > MAX_TOKEN_CHARS
        || token.contains(char::is_whitespace)
    {
        return Err(malformed());
    }
    if token.starts_with(vexil_app::CLIENT_KEY_PREFIX) {
        return Err(ApiError::Unauthenticated(
            "a client key cannot use the management API: it reads flags through /sdk/v1 and /ofrep/v1 only; use an account's API token (`vexil token create`)",
        ));
    }
    Ok(token.to_owned())
}
