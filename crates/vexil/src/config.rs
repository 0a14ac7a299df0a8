//! `Builder`: how a `Flags` handle is set up, in code or from the environment
//! (`Flags::from_env`), in either mode (the database, or a server with a client key).
//! The only file of the library that reads the process environment or the file
//! system.
//!
//! `Flags::from_env` reads `VEXIL_ENV`, `VEXIL_FLAGS`, `DATABASE_URL` or `VEXIL_URL`
//! with `VEXIL_CLIENT_KEY`, `VEXIL_APP`, `VEXIL_CACHE_TTL`, `VEXIL_POLL_MS`,
//! `VEXIL_START_TIMEOUT_MS` and the `FLAG_*` variables; both sources named is an error
//! that names both. `read_flag_set` reads and parses a flags file.

use std::io::Read;
use std::path::{Path, PathBuf};
use std::time::Duration;

use vexil_core::decl::MAX_FILE_BYTES;
use vexil_core::{EnvSnapshot, Envs, FlagSet};

use crate::error::Error;
use crate::flags::Flags;
use crate::instance::Identity;
use crate::link::Timing;

/// A flip reaches every process within this even if every notification is
/// lost.
pub const DEFAULT_TTL: Duration = Duration::from_secs(30);
/// How often a process on SQLite checks for commits by others.
pub const DEFAULT_POLL: Duration = Duration::from_millis(100);
/// How often a process reports itself; one not seen for three of these counts as gone.
pub const DEFAULT_HEARTBEAT: Duration = Duration::from_secs(10);
/// How long `start` (and `from_env`) waits for the first full read of the source
/// before it returns with values from the variables and the YAML defaults.
pub const DEFAULT_START_TIMEOUT: Duration = Duration::from_secs(5);
/// The database of a process that names none.
const DEFAULT_DATABASE_URL: &str = "sqlite://vexil.db";
const DEFAULT_FLAGS_FILE: &str = "feature_flags.yaml";

/// Where the flags come from and how they are kept current.
#[derive(Clone)]
pub struct Builder {
    env: Option<String>,
    flags_file: PathBuf,
    /// Whether `flags_file` was named (`VEXIL_FLAGS`): in remote mode an unnamed
    /// default file may be missing, the server's declarations being enough.
    flags_file_named: bool,
    flag_set: Option<FlagSet>,
    database_url: Option<String>,
    server_url: Option<String>,
    client_key: Option<secrecy::SecretString>,
    env_vars: Option<EnvSnapshot>,
    application: Option<String>,
    language: String,
    version: String,
    timing: Timing,
}

impl Default for Builder {
    fn default() -> Builder {
        Builder {
            env: None,
            flags_file: PathBuf::from(DEFAULT_FLAGS_FILE),
            flags_file_named: false,
            flag_set: None,
            database_url: None,
            server_url: None,
            client_key: None,
            env_vars: None,
            application: None,
            language: "rust".to_owned(),
            version: env!("CARGO_PKG_VERSION").to_owned(),
            timing: Timing {
                ttl: DEFAULT_TTL,
                poll: DEFAULT_POLL,
                feed: true,
                heartbeat: DEFAULT_HEARTBEAT,
                start_timeout: DEFAULT_START_TIMEOUT,
            },
        }
    }
}

impl std::fmt::Debug for Builder {
    /// Never the database password nor the client key.
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Builder")
            .field("env", &self.env)
            .field("flags_file", &self.flags_file)
            .field("database_url", &self.database_url.as_deref().map(shown_url))
            .field("server_url", &self.server_url)
            .field("client_key", &self.client_key.as_ref().map(|_| "(set)"))
            .field("application", &self.application)
            .field("timing", &self.timing)
            .finish_non_exhaustive()
    }
}

/// A database URL as logs may show it: without its password.
#[cfg(feature = "database")]
fn shown_url(url: &str) -> String {
    vexil_store::DatabaseUrl::parse(url)
        .map_or_else(|_| "(not a database URL)".to_owned(), |url| url.to_string())
}

#[cfg(not(feature = "database"))]
fn shown_url(_url: &str) -> String {
    "(set)".to_owned()
}

/// Where a handle reads its rows: the two modes.
enum Mode {
    Database(String),
    Server {
        url: String,
        key: secrecy::SecretString,
    },
}

impl Builder {
    /// The env this process belongs to (`VEXIL_ENV`): required.
    pub fn env(mut self, env: impl Into<String>) -> Builder {
        self.env = Some(env.into());
        self
    }

    /// The flags file (`VEXIL_FLAGS`; default `feature_flags.yaml`). In remote mode it
    /// may be left out: the server's declarations decide, and the file's add the flags
    /// the server does not declare yet (and serve until the server first answers).
    pub fn flags_file(mut self, path: impl Into<PathBuf>) -> Builder {
        // The later of `flags_file` and `flag_set` wins.
        self.flag_set = None;
        self.flags_file = path.into();
        self.flags_file_named = true;
        self
    }

    /// The declarations themselves, instead of a file.
    pub fn flag_set(mut self, flags: FlagSet) -> Builder {
        self.flag_set = Some(flags);
        self
    }

    /// Database mode: `DATABASE_URL` (default `sqlite://vexil.db` when no server is
    /// named either).
    pub fn database_url(mut self, url: impl Into<String>) -> Builder {
        self.database_url = Some(url.into());
        self
    }

    /// Remote mode: the `vexil serve` to follow (`VEXIL_URL`, e.g.
    /// `https://flags.internal`), with `client_key`. Naming a database too is an error.
    pub fn server_url(mut self, url: impl Into<String>) -> Builder {
        self.server_url = Some(url.into());
        self
    }

    /// The client key of remote mode (`VEXIL_CLIENT_KEY`, from `vexil client-key
    /// create`): it names the env and the application the process reports as.
    pub fn client_key(mut self, key: impl Into<String>) -> Builder {
        self.client_key = Some(secrecy::SecretString::from(key.into()));
        self
    }

    /// How long `start` waits for the first full read of the source (default 5 s;
    /// `VEXIL_START_TIMEOUT_MS`). Until then no `FLAG_*` variable can decide a value
    /// that a row contradicts; past it, `start` returns with the variables' and YAML
    /// defaults' values, says so, and switches as soon as the source answers. Zero
    /// returns at once.
    pub fn start_timeout(mut self, timeout: Duration) -> Builder {
        self.timing.start_timeout = timeout;
        self
    }

    /// The language and version reports carry: for a binding over this library (the
    /// Python package reports `python` and its own version).
    #[doc(hidden)]
    pub fn reported_as(mut self, language: &str, version: &str) -> Builder {
        language.clone_into(&mut self.language);
        version.clone_into(&mut self.version);
        self
    }

    /// This process's `FLAG_*` variables and master switch (default: captured from the
    /// process environment when the handle starts).
    pub fn env_vars(mut self, vars: EnvSnapshot) -> Builder {
        self.env_vars = Some(vars);
        self
    }

    /// How often everything is read again, whatever the change feed says.
    pub fn ttl(mut self, ttl: Duration) -> Builder {
        self.timing.ttl = ttl;
        self
    }

    /// How often SQLite is polled for commits by other processes.
    pub fn poll_interval(mut self, poll: Duration) -> Builder {
        self.timing.poll = poll;
        self
    }

    /// The application's name in instance reports (`VEXIL_APP`; default: the name of
    /// the executable). In remote mode the client key names it.
    pub fn application(mut self, name: impl Into<String>) -> Builder {
        self.application = Some(name.into());
        self
    }

    /// How often this process reports itself (default 10 s).
    pub fn heartbeat(mut self, every: Duration) -> Builder {
        self.timing.heartbeat = every;
        self
    }

    /// Whether to follow the change feed (default on). Off, changes arrive with the
    /// TTL only: for a PostgreSQL reached through a pooler that cannot `LISTEN`, or in
    /// remote mode a proxy that cuts long-lived responses (the snapshot is then read
    /// every TTL, a 304 when nothing changed).
    pub fn change_feed(mut self, on: bool) -> Builder {
        self.timing.feed = on;
        self
    }

    /// Checks the settings, resolves every flag from the variables and YAML defaults,
    /// starts the background task that follows the source (on the current tokio
    /// runtime), and waits for its first full read (at most the start timeout). A
    /// source that does not answer is not an error: the handle says so in its logs and
    /// `health()`, and switches to the source's values as soon as it can read them. A
    /// server that refuses the client key, or sends another env's flags, is.
    ///
    /// The background task runs on the tokio runtime this is awaited on, and lives as
    /// long as that runtime and the last `Flags` or `Flag` handle: a handle kept after
    /// its runtime shut down keeps its last values and follows no more changes.
    pub async fn start(self) -> Result<Flags, Error> {
        let env = Envs::runbook().parse(self.env.as_deref().ok_or(Error::NoEnv)?)?;
        check_range("the TTL", self.timing.ttl, MIN_TTL, MAX_TTL)?;
        check_range("the poll interval", self.timing.poll, MIN_POLL, MAX_POLL)?;
        check_range(
            "the heartbeat",
            self.timing.heartbeat,
            MIN_HEARTBEAT,
            MAX_HEARTBEAT,
        )?;
        check_range(
            "the start timeout",
            self.timing.start_timeout,
            Duration::ZERO,
            MAX_START_TIMEOUT,
        )?;
        let mode = match (self.database_url, self.server_url) {
            (Some(_), Some(_)) => return Err(Error::BothSources),
            (None, Some(url)) => Mode::Server {
                url,
                key: self.client_key.ok_or(Error::NoClientKey)?,
            },
            (database_url, None) => {
                Mode::Database(database_url.unwrap_or_else(|| DEFAULT_DATABASE_URL.to_owned()))
            }
        };
        let remote = matches!(mode, Mode::Server { .. });
        let (flags, flags_file) = match self.flag_set {
            Some(flags) => (flags, None),
            None if remote && !self.flags_file_named && !self.flags_file.exists() => {
                tracing::info!(
                    "no flags file ({DEFAULT_FLAGS_FILE}, VEXIL_FLAGS): every flag is the server's; until it first answers, every flag is off"
                );
                (FlagSet::default(), None)
            }
            None => (read_flag_set(&self.flags_file)?, Some(self.flags_file)),
        };
        let env_vars = self.env_vars.unwrap_or_else(process_env_vars);
        let identity = Identity {
            id: instance_id()?,
            host: host_name(),
            pid: i64::from(std::process::id()),
            application: self.application.unwrap_or_else(executable_name),
            started_at: chrono::Utc::now(),
            language: self.language,
            version: self.version,
        };
        let timing = self.timing;
        let source_name = if remote { "server" } else { "database" };
        let (handle, shared, stop) = Flags::new(source_name, env, flags, flags_file, env_vars);
        let first = match mode {
            Mode::Database(url) => {
                start_database(shared, &url, timing, identity, stop)?;
                None
            }
            Mode::Server { url, key } => {
                Some(start_remote(shared, &url, &key, timing, identity, stop)?)
            }
        };
        handle.first_read(first, timing.start_timeout).await?;
        Ok(handle)
    }
}

#[cfg(feature = "database")]
fn start_database(
    shared: std::sync::Arc<crate::flags::Shared>,
    url: &str,
    timing: Timing,
    identity: Identity,
    stop: tokio::sync::oneshot::Receiver<()>,
) -> Result<(), Error> {
    let url = vexil_store::DatabaseUrl::parse(url)?;
    tokio::spawn(crate::database::run(shared, url, timing, identity, stop));
    Ok(())
}

#[cfg(not(feature = "database"))]
fn start_database(
    _shared: std::sync::Arc<crate::flags::Shared>,
    _url: &str,
    _timing: Timing,
    _identity: Identity,
    _stop: tokio::sync::oneshot::Receiver<()>,
) -> Result<(), Error> {
    Err(Error::NotBuiltIn {
        mode: "database mode (DATABASE_URL)",
        features: "sqlite or postgres",
    })
}

/// What remote mode's task tells `start` of its first contact.
#[cfg(feature = "remote")]
pub(crate) type FirstContact = tokio::sync::oneshot::Receiver<Result<(), crate::remote::Refusal>>;
#[cfg(not(feature = "remote"))]
pub(crate) type FirstContact = std::convert::Infallible;

#[cfg(feature = "remote")]
fn start_remote(
    shared: std::sync::Arc<crate::flags::Shared>,
    url: &str,
    key: &secrecy::SecretString,
    timing: Timing,
    identity: Identity,
    stop: tokio::sync::oneshot::Receiver<()>,
) -> Result<FirstContact, Error> {
    use secrecy::ExposeSecret;
    let base = crate::remote::check_url(url)?;
    let key = crate::remote::check_key(key.expose_secret())?;
    let user_agent = format!("vexil-{}/{}", identity.language, identity.version);
    let client = crate::remote::Client::new(base, &key, &user_agent)?;
    let (first, contact) = tokio::sync::oneshot::channel();
    tokio::spawn(crate::remote::run(
        shared, client, timing, identity, first, stop,
    ));
    Ok(contact)
}

#[cfg(not(feature = "remote"))]
fn start_remote(
    _shared: std::sync::Arc<crate::flags::Shared>,
    _url: &str,
    _key: &secrecy::SecretString,
    _timing: Timing,
    _identity: Identity,
    _stop: tokio::sync::oneshot::Receiver<()>,
) -> Result<FirstContact, Error> {
    Err(Error::NotBuiltIn {
        mode: "remote mode (VEXIL_URL)",
        features: "remote",
    })
}

impl Flags {
    /// A builder with vexil's defaults.
    pub fn builder() -> Builder {
        Builder::default()
    }

    /// `VEXIL_ENV`, `VEXIL_FLAGS`, either `DATABASE_URL` (database mode) or
    /// `VEXIL_URL` and `VEXIL_CLIENT_KEY` (remote mode), `VEXIL_APP`,
    /// `VEXIL_CACHE_TTL` (seconds), `VEXIL_POLL_MS`, `VEXIL_START_TIMEOUT_MS`, the
    /// master switch and the `FLAG_*` variables, read once. Returns once the first
    /// full read is in (or the start timeout passed: see `Builder::start_timeout`).
    pub async fn from_env() -> Result<Flags, Error> {
        Flags::builder_from_env()?.start().await
    }

    /// The builder `from_env` starts: for a binding that adds its own settings.
    #[doc(hidden)]
    pub fn builder_from_env() -> Result<Builder, Error> {
        let var = |name| std::env::var(name).ok().filter(|v| !v.is_empty());
        let mut builder = Flags::builder();
        if let Some(env) = var("VEXIL_ENV") {
            builder = builder.env(env);
        }
        if let Some(path) = var("VEXIL_FLAGS") {
            builder = builder.flags_file(path);
        }
        if let Some(url) = var("DATABASE_URL") {
            builder = builder.database_url(url);
        }
        if let Some(url) = var("VEXIL_URL") {
            builder = builder.server_url(url);
        }
        if let Some(key) = var("VEXIL_CLIENT_KEY") {
            builder = builder.client_key(key);
        }
        if let Some(timeout) = var("VEXIL_START_TIMEOUT_MS") {
            let Ok(millis) = timeout.trim().parse() else {
                return Err(Error::BadSetting {
                    name: "VEXIL_START_TIMEOUT_MS",
                    unit: "milliseconds",
                    value: timeout,
                });
            };
            builder = builder.start_timeout(Duration::from_millis(millis));
        }
        if let Some(application) = var("VEXIL_APP") {
            builder = builder.application(application);
        }
        if let Some(ttl) = var("VEXIL_CACHE_TTL") {
            builder = builder.ttl(Duration::from_secs(number(
                "VEXIL_CACHE_TTL",
                "seconds",
                ttl,
            )?));
        }
        if let Some(poll) = var("VEXIL_POLL_MS") {
            builder = builder.poll_interval(Duration::from_millis(number(
                "VEXIL_POLL_MS",
                "milliseconds",
                poll,
            )?));
        }
        Ok(builder)
    }
}

/// The bounds of the timing settings: tight enough to exclude a busy loop and a
/// process that never refreshes, loose enough for tests (which run in milliseconds).
const MIN_TTL: Duration = Duration::from_millis(100);
const MAX_TTL: Duration = Duration::from_secs(3600);
const MIN_POLL: Duration = Duration::from_millis(10);
const MAX_POLL: Duration = Duration::from_secs(60);
const MIN_HEARTBEAT: Duration = Duration::from_millis(50);
const MAX_START_TIMEOUT: Duration = Duration::from_secs(120);
/// No longer than the default: a process not seen for three heartbeats of the default
/// (30 s) counts as gone.
const MAX_HEARTBEAT: Duration = DEFAULT_HEARTBEAT;

fn check_range(
    what: &'static str,
    value: Duration,
    min: Duration,
    max: Duration,
) -> Result<(), Error> {
    if (min..=max).contains(&value) {
        Ok(())
    } else {
        Err(Error::OutOfRange {
            what,
            value,
            min,
            max,
        })
    }
}

fn number(name: &'static str, unit: &'static str, value: String) -> Result<u64, Error> {
    match value.trim().parse() {
        Ok(n) if n > 0 => Ok(n),
        _ => Err(Error::BadSetting { name, unit, value }),
    }
}

/// 128 random bits: unique across hosts and restarts without coordination.
fn instance_id() -> Result<String, Error> {
    let mut bytes = [0u8; 16];
    getrandom::fill(&mut bytes).map_err(|error| Error::Random(error.to_string()))?;
    Ok(hex::encode(bytes))
}

/// The kernel's host name (Linux), else `HOSTNAME`, else `unknown`.
fn host_name() -> String {
    std::fs::read_to_string("/proc/sys/kernel/hostname")
        .ok()
        .or_else(|| std::env::var("HOSTNAME").ok())
        .map(|name| name.trim().to_owned())
        .filter(|name| !name.is_empty())
        .unwrap_or_else(|| "unknown".to_owned())
}

fn executable_name() -> String {
    std::env::current_exe()
        .ok()
        .and_then(|path| path.file_stem().map(|s| s.to_string_lossy().into_owned()))
        .unwrap_or_else(|| "unknown".to_owned())
}

fn process_env_vars() -> EnvSnapshot {
    EnvSnapshot::capture(std::env::vars_os().map(|(name, value)| {
        (
            name.to_string_lossy().into_owned(),
            value.to_string_lossy().into_owned(),
        )
    }))
}

/// The flags file, read to at most one byte past the limit (so `/dev/zero` is refused
/// as too large rather than filling memory), and validated whole.
pub fn read_flag_set(path: &Path) -> Result<FlagSet, Error> {
    let source = path.display().to_string();
    let read_error = |source_error| Error::ReadFlagsFile {
        path: source.clone(),
        source: source_error,
    };
    let file = std::fs::File::open(path).map_err(read_error)?;
    let mut bytes = Vec::new();
    file.take(MAX_FILE_BYTES as u64 + 1)
        .read_to_end(&mut bytes)
        .map_err(read_error)?;
    FlagSet::parse(&source, &bytes).map_err(Error::InvalidFlagsFile)
}
