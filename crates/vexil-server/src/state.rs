//! `ServerState`: what every request handler shares (cheap to clone), and
//! `ConsoleConfig`, the console's session and sign-in settings.

use std::net::IpAddr;
use std::num::NonZeroU32;
use std::path::PathBuf;
use std::sync::Arc;
use std::time::Duration;

use governor::{DefaultKeyedRateLimiter, Quota, RateLimiter};
use vexil_app::App;

#[derive(Clone)]
pub struct ServerState {
    pub app: Arc<App>,
    /// The flags file the declarations came from, read again by `reload`.
    pub flags_file: PathBuf,
    pub config: Arc<ConsoleConfig>,
    /// Sign-in attempts per client address. In memory, per process: the per-account
    /// lock (`App::sign_in`) is the one that holds across processes; this one only
    /// keeps one address from trying many accounts quickly.
    pub(crate) sign_in_limiter: Arc<DefaultKeyedRateLimiter<IpAddr>>,
}

/// How console sessions behave. The defaults are the issue's: 30 minutes idle, 12
/// hours at most, 10 minutes of elevation, 10 sign-in attempts a minute per address.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ConsoleConfig {
    /// Mark the session cookie `Secure`: set when the public URL is https. Plain http
    /// is for loopback and the demo.
    pub secure_cookies: bool,
    /// A session unused this long is over.
    pub idle_timeout: Duration,
    /// A session is over this long after its sign-in, used or not.
    pub absolute_timeout: Duration,
    /// How long a fresh TOTP code elevates a session.
    pub elevation: Duration,
    /// Sign-in attempts one client address may make per minute (a burst of as many,
    /// then one every `60 / n` seconds).
    pub sign_in_attempts_per_minute: NonZeroU32,
}

impl Default for ConsoleConfig {
    fn default() -> ConsoleConfig {
        ConsoleConfig {
            secure_cookies: false,
            idle_timeout: Duration::from_secs(30 * 60),
            absolute_timeout: Duration::from_secs(12 * 60 * 60),
            elevation: Duration::from_secs(10 * 60),
            sign_in_attempts_per_minute: NonZeroU32::new(10).unwrap_or(NonZeroU32::MIN),
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
        let quota = Quota::per_minute(config.sign_in_attempts_per_minute);
        ServerState {
            app,
            flags_file,
            sign_in_limiter: Arc::new(RateLimiter::keyed(quota)),
            config: Arc::new(config),
        }
    }

    /// Reads the flags file again (SIGHUP). An invalid or unreadable file changes
    /// nothing: the last valid declarations stay, and the error says why, every error
    /// with its file:line:col.
    pub async fn reload(&self) -> Result<Reloaded, vexil::Error> {
        let flags = vexil::read_flag_set(&self.flags_file)?;
        let count = flags.len();
        self.app.replace_flags(flags).await;
        Ok(Reloaded { flags: count })
    }
}
