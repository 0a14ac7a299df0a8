//! `ServerState`: what every request handler shares (cheap to clone);
//! `ConsoleConfig`, the console's session and sign-in settings; `ApiConfig`, the
//! API's limits.

use std::net::IpAddr;
use std::num::NonZeroU32;
use std::path::PathBuf;
use std::sync::{Arc, OnceLock};
use std::time::Duration;

use governor::clock::{Clock, DefaultClock, QuantaInstant};
use governor::middleware::NoOpMiddleware;
use governor::{DefaultKeyedRateLimiter, Quota, RateLimiter};
use tower_governor::governor::SharedRateLimiter;
use vexil_app::App;
use vexil_core::Env;

use crate::api::auth::TokenCache;
use crate::console::error::ConsoleError;
use crate::flag_cache::FlagCache;
use crate::sdk::SdkConfig;
use crate::sdk::auth::KeyCache;
use crate::sdk::hub::Hub;

/// What every request handler shares: one `Arc`, so that the clone axum makes for
/// each request costs one reference count (it was a dozen, and a path's copy, on the
/// evaluation routes' hot path).
#[derive(Clone)]
pub struct ServerState(Arc<Shared>);

impl std::ops::Deref for ServerState {
    type Target = Shared;

    fn deref(&self) -> &Shared {
        &self.0
    }
}

/// The parts of `ServerState` (cloned only to be rebuilt, before serving).
#[derive(Clone)]
pub struct Shared {
    pub app: Arc<App>,
    /// The flags file the declarations came from, read again by `reload`.
    pub flags_file: PathBuf,
    pub config: Arc<ConsoleConfig>,
    /// Sign-in attempts per client address. In memory, per process: the per-account
    /// lock (`App::sign_in`) is the one that holds across processes; this one only
    /// keeps one address from trying many accounts quickly.
    pub(crate) sign_in_limiter: Arc<DefaultKeyedRateLimiter<IpAddr>>,
    /// Sign-in and elevation attempts per account, in memory: the audit-log lock
    /// counts failures once they are recorded, so a burst of parallel attempts would
    /// all be checked before the first failure lands; this bounds the burst.
    pub(crate) account_limiter: Arc<DefaultKeyedRateLimiter<String>>,
    pub api: Arc<ApiConfig>,
    /// Each env's flag states for the API, until something changes.
    pub(crate) flag_cache: Arc<FlagCache>,
    /// Accounts by token hash, for `ApiConfig::token_ttl`.
    pub(crate) tokens: Arc<TokenCache>,
    /// The API's per-address limiter, once the router made it: housekeeping forgets
    /// addresses it has not seen lately.
    pub(crate) api_limiter: Arc<OnceLock<ApiLimiter>>,
    /// Every env as the applications see it, and their streams (`sdk/hub.rs`).
    pub(crate) hub: Arc<Hub>,
    /// Client keys by hash, and the evaluation plane's limits.
    pub(crate) keys: Arc<KeyCache>,
    /// The audit chain's newest link as this server last sealed or saw it, for
    /// `/metrics` (docs/audit-integrity.md).
    pub(crate) audit_head: Arc<arc_swap::ArcSwapOption<vexil_core::audit_chain::Anchor>>,
    /// Timeouts and the connection cap (`serve.rs`).
    pub(crate) connections: Arc<crate::connection::ConnectionConfig>,
}

pub(crate) type ApiLimiter = SharedRateLimiter<IpAddr, NoOpMiddleware<QuantaInstant>>;

/// How the API behaves. The defaults: 100 requests a second per client address (a
/// burst of as many), a token's account re-read at least every 2 seconds, and flag
/// lists at most a second old.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ApiConfig {
    /// Requests per second one client address may make to `/api/v1`, and the burst;
    /// 0 turns the limit off (behind a proxy that limits, or to measure).
    pub requests_per_second: u32,
    /// How long a token's account (its role, whether it is enabled, whether the token
    /// is revoked) is trusted without reading it again, on the app's clock; zero reads
    /// it on every request.
    pub token_ttl: Duration,
    /// How long the API may serve a flag list computed earlier, if no change was seen
    /// meanwhile (the live processes' reports, which the change feed does not carry,
    /// are at most this old).
    pub flag_cache_max_age: Duration,
}

impl Default for ApiConfig {
    fn default() -> ApiConfig {
        ApiConfig {
            requests_per_second: 100,
            token_ttl: Duration::from_secs(2),
            flag_cache_max_age: Duration::from_secs(1),
        }
    }
}

/// How console sessions behave. The defaults: 30 minutes idle, 12 hours at most, 10
/// sign-in attempts a minute per address and 6 per account. How long an elevation
/// lasts is the app's (`App::with_elevation_window`), since every door elevates.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ConsoleConfig {
    /// Mark the session cookie `Secure`: set when the public URL is https. Plain http
    /// is for loopback and the demo.
    pub secure_cookies: bool,
    /// A session unused this long is over.
    pub idle_timeout: Duration,
    /// A session is over this long after its sign-in, used or not.
    pub absolute_timeout: Duration,
    /// Sign-in attempts one client address may make per minute (a burst of as many,
    /// then one every `60 / n` seconds).
    pub sign_in_attempts_per_minute: NonZeroU32,
    /// Sign-in or elevation attempts one account may make per minute, whatever the
    /// address (a burst of as many).
    pub account_attempts_per_minute: NonZeroU32,
    /// The envs whose console flips must give a reason (`VEXIL_REQUIRE_REASON`,
    /// prod by default). Prod flips are confirmed on a page of their own whatever
    /// this holds (docs/console.md).
    pub require_reason: Vec<Env>,
}

impl ConsoleConfig {
    /// A console flip in `env` must give a reason.
    pub fn reason_required(&self, env: &Env) -> bool {
        self.require_reason.contains(env)
    }

    /// A console flip in `env` is confirmed on its own page before it is written:
    /// prod, and every env that asks for a reason.
    pub fn confirms(&self, env: &Env) -> bool {
        *env == Env::PROD || self.reason_required(env)
    }
}

impl Default for ConsoleConfig {
    fn default() -> ConsoleConfig {
        ConsoleConfig {
            secure_cookies: false,
            idle_timeout: Duration::from_secs(30 * 60),
            absolute_timeout: Duration::from_secs(12 * 60 * 60),
            sign_in_attempts_per_minute: NonZeroU32::new(10).unwrap_or(NonZeroU32::MIN),
            account_attempts_per_minute: NonZeroU32::new(6).unwrap_or(NonZeroU32::MIN),
            require_reason: vec![Env::PROD],
        }
    }
}

/// What a reload did.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Reloaded {
    pub flags: usize,
}

impl ServerState {
    pub fn new(app: Arc<App>, flags_file: PathBuf, config: ConsoleConfig) -> ServerState {
        ServerState::with_api(app, flags_file, config, ApiConfig::default())
    }

    pub fn with_api(
        app: Arc<App>,
        flags_file: PathBuf,
        config: ConsoleConfig,
        api: ApiConfig,
    ) -> ServerState {
        let max_age = api.flag_cache_max_age;
        let sdk = SdkConfig::default();
        let quota = Quota::per_minute(config.sign_in_attempts_per_minute);
        let keys = Arc::new(KeyCache::new(sdk.requests_per_second));
        let hub = Arc::new(Hub::new(app.envs(), sdk));
        let flag_cache = Arc::new(FlagCache::new(max_age));
        // Every flag change this process commits, whichever door it came through,
        // drops the cached states before the use case returns.
        let cache = Arc::clone(&flag_cache);
        if !app.on_flag_change(move || cache.invalidate()) {
            tracing::warn!(
                "this app already reports its changes elsewhere; the API's flag cache relies on its change feed and its age limit"
            );
        }
        ServerState(Arc::new(Shared {
            app,
            flags_file,
            sign_in_limiter: Arc::new(RateLimiter::keyed(quota)),
            account_limiter: Arc::new(RateLimiter::keyed(Quota::per_minute(
                config.account_attempts_per_minute,
            ))),
            config: Arc::new(config),
            api: Arc::new(api),
            tokens: Arc::new(TokenCache::default()),
            flag_cache,
            api_limiter: Arc::new(OnceLock::new()),
            keys,
            hub,
            audit_head: Arc::default(),
            connections: Arc::default(),
        }))
    }

    /// The connections' timeouts and cap, replacing the defaults. Call it before
    /// serving.
    pub fn with_connections(self, connections: crate::connection::ConnectionConfig) -> ServerState {
        let shared = Arc::unwrap_or_clone(self.0);
        ServerState(Arc::new(Shared {
            connections: Arc::new(connections),
            ..shared
        }))
    }

    /// The evaluation plane's settings (`SdkConfig`), replacing the defaults. Call it
    /// before serving: the hub starts empty.
    pub fn with_sdk(self, sdk: SdkConfig) -> ServerState {
        let shared = Arc::unwrap_or_clone(self.0);
        ServerState(Arc::new(Shared {
            keys: Arc::new(KeyCache::new(sdk.requests_per_second)),
            hub: Arc::new(Hub::new(shared.app.envs(), sdk)),
            ..shared
        }))
    }

    /// The evaluation plane's settings.
    pub fn sdk_config(&self) -> &SdkConfig {
        self.hub.config()
    }

    /// Takes one sign-in attempt from `ip`'s allowance, or says how long to wait. An
    /// IPv6 client is counted by its /64, as the API's limit counts it: one host may
    /// hold a whole /64, and would otherwise get a fresh allowance per address.
    pub(crate) fn address_attempt(&self, ip: IpAddr) -> Result<(), Duration> {
        self.sign_in_limiter
            .check_key(&crate::api::address_key(ip))
            .map_err(|not_until| not_until.wait_time_from(DefaultClock::default().now()))
    }

    /// Takes one attempt at `what` (`sign-in`, `totp`) from `account`'s allowance;
    /// each kind of attempt has its own.
    pub(crate) fn limit_account(&self, what: &str, account: &str) -> Result<(), ConsoleError> {
        self.account_attempt(what, account)
            .map_err(|retry_after| ConsoleError::RateLimited {
                what: "Too many attempts for this account. Nothing was checked.",
                retry_after,
            })
    }

    /// One sign-in attempt at `account` from `ip`'s network, or how long to wait:
    /// counted per network as well as per account, so that a stranger's attempts do
    /// not spend the allowance of the account's owner elsewhere.
    pub(crate) fn sign_in_attempt(
        &self,
        ip: Option<IpAddr>,
        account: &str,
    ) -> Result<(), Duration> {
        let network = ip.map_or_else(String::new, |ip| crate::api::address_key(ip).to_string());
        let account: String = account.chars().take(64).collect();
        // The key whole: `account_attempt` would cut the network and name to 64.
        self.account_limiter
            .check_key(&format!("sign-in:{network} {account}"))
            .map_err(|not_until| not_until.wait_time_from(DefaultClock::default().now()))
    }

    /// One attempt at `what` from `account`'s allowance, or how long to wait.
    pub(crate) fn account_attempt(&self, what: &str, account: &str) -> Result<(), Duration> {
        let key: String = format!("{what}:{}", account.chars().take(64).collect::<String>());
        self.account_limiter
            .check_key(&key)
            .map_err(|not_until| not_until.wait_time_from(DefaultClock::default().now()))
    }

    /// Reads the flags file again (SIGHUP). An invalid or unreadable file changes
    /// nothing: the last valid declarations stay, and the error says why, every error
    /// with its file:line:col.
    pub async fn reload(&self) -> Result<Reloaded, vexil::Error> {
        let flags = vexil::read_flag_set(&self.flags_file)?;
        let count = flags.len();
        self.app.replace_flags(flags).await;
        self.hub.reload(&self.app.flags());
        Ok(Reloaded { flags: count })
    }
}

#[cfg(test)]
mod tests {
    use std::net::IpAddr;
    use std::sync::Arc;

    use vexil_app::App;
    use vexil_core::{EnvSnapshot, Envs, FlagSet};
    use vexil_store::Backend;
    use vexil_testkit::{TestClock, TestDb};

    use super::{ApiConfig, ConsoleConfig, ServerState};

    /// A host holding a whole IPv6 /64 gets one allowance of sign-in attempts, not
    /// one per address (replayed: ten addresses of one /64, then an eleventh).
    #[tokio::test]
    async fn the_sign_in_limit_counts_an_ipv6_client_by_its_64() {
        let test_db = TestDb::new(Backend::Sqlite).await;
        let app = App::new(
            test_db.db.clone(),
            FlagSet::from_decls([]).unwrap(),
            Envs::runbook(),
            None,
            EnvSnapshot::default(),
            Arc::new(TestClock::fixed()),
        );
        let state = ServerState::with_api(
            Arc::new(app),
            "feature_flags.yaml".into(),
            ConsoleConfig::default(),
            ApiConfig::default(),
        );
        let per_minute = ConsoleConfig::default().sign_in_attempts_per_minute.get();
        for n in 1..=per_minute {
            let ip: IpAddr = format!("2001:db8:7:9::{n:x}").parse().unwrap();
            assert!(state.address_attempt(ip).is_ok(), "attempt {n}");
        }
        let another: IpAddr = "2001:db8:7:9:ffff::1".parse().unwrap();
        assert!(state.address_attempt(another).is_err(), "same /64");
        let elsewhere: IpAddr = "2001:db8:7:a::1".parse().unwrap();
        assert!(state.address_attempt(elsewhere).is_ok(), "another /64");
    }
}
