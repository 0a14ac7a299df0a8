//! `Builder`: how a `Flags` handle is set up, in code or from the environment
//! (`Flags::from_env`). The only file of the library that reads the process
//! environment or the file system.

use std::io::Read;
use std::path::{Path, PathBuf};
use std::time::Duration;

use vexil_core::decl::MAX_FILE_BYTES;
use vexil_core::{EnvSnapshot, Envs, FlagSet};
use vexil_store::DatabaseUrl;

use crate::error::Error;
use crate::flags::Flags;
use crate::instance::Identity;
use crate::refresh::{self, Timing};

/// SPEC §8: a flip reaches every process within this even if every notification is
/// lost.
pub const DEFAULT_TTL: Duration = Duration::from_secs(30);
/// How often a process on SQLite checks for commits by others.
pub const DEFAULT_POLL: Duration = Duration::from_millis(100);
/// How often a process reports itself to `vexil_instances`; one not seen for three
/// of these counts as gone.
pub const DEFAULT_HEARTBEAT: Duration = Duration::from_secs(10);

/// Where the flags come from and how they are kept current.
#[derive(Clone)]
pub struct Builder {
    env: Option<String>,
    flags_file: PathBuf,
    flag_set: Option<FlagSet>,
    database_url: String,
    env_vars: Option<EnvSnapshot>,
    application: Option<String>,
    timing: Timing,
}

impl Default for Builder {
    fn default() -> Builder {
        Builder {
            env: None,
            flags_file: PathBuf::from("feature_flags.yaml"),
            flag_set: None,
            database_url: "sqlite://vexil.db".to_owned(),
            env_vars: None,
            application: None,
            timing: Timing {
                ttl: DEFAULT_TTL,
                poll: DEFAULT_POLL,
                feed: true,
                heartbeat: DEFAULT_HEARTBEAT,
            },
        }
    }
}

impl std::fmt::Debug for Builder {
    /// Never the database password: the URL as `DatabaseUrl` shows it.
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let url = DatabaseUrl::parse(&self.database_url)
            .map_or_else(|_| "(not a database URL)".to_owned(), |url| url.to_string());
        f.debug_struct("Builder")
            .field("env", &self.env)
            .field("flags_file", &self.flags_file)
            .field("database_url", &url)
            .field("application", &self.application)
            .field("timing", &self.timing)
            .finish_non_exhaustive()
    }
}

impl Builder {
    /// The env this process belongs to (`VEXIL_ENV`): required.
    pub fn env(mut self, env: impl Into<String>) -> Builder {
        self.env = Some(env.into());
        self
    }

    /// The flags file (`VEXIL_FLAGS`; default `feature_flags.yaml`).
    pub fn flags_file(mut self, path: impl Into<PathBuf>) -> Builder {
        // The later of `flags_file` and `flag_set` wins.
        self.flag_set = None;
        self.flags_file = path.into();
        self
    }

    /// The declarations themselves, instead of a file.
    pub fn flag_set(mut self, flags: FlagSet) -> Builder {
        self.flag_set = Some(flags);
        self
    }

    /// `DATABASE_URL` (default `sqlite://vexil.db`).
    pub fn database_url(mut self, url: impl Into<String>) -> Builder {
        self.database_url = url.into();
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
    /// the executable).
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
    /// TTL only: for a PostgreSQL reached through a pooler that cannot `LISTEN`.
    pub fn change_feed(mut self, on: bool) -> Builder {
        self.timing.feed = on;
        self
    }

    /// Checks the settings, resolves every flag from the variables and YAML defaults,
    /// and starts the background task that reads the database (on the current tokio
    /// runtime). The database not answering is not an error: the handle says so in
    /// its logs and `health()`, and switches to DB values as soon as it can read them.
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
        let url = DatabaseUrl::parse(&self.database_url)?;
        let (flags, flags_file) = match self.flag_set {
            Some(flags) => (flags, None),
            None => (read_flag_set(&self.flags_file)?, Some(self.flags_file)),
        };
        let env_vars = self.env_vars.unwrap_or_else(process_env_vars);
        let identity = Identity {
            id: instance_id()?,
            host: host_name(),
            pid: i64::from(std::process::id()),
            application: self.application.unwrap_or_else(executable_name),
            started_at: chrono::Utc::now(),
        };
        let (handle, shared, stop) = Flags::new(env, flags, flags_file, env_vars);
        tokio::spawn(refresh::run(shared, url, self.timing, identity, stop));
        Ok(handle)
    }
}

impl Flags {
    /// A builder with vexil's defaults.
    pub fn builder() -> Builder {
        Builder::default()
    }

    /// `DATABASE_URL`, `VEXIL_FLAGS`, `VEXIL_ENV`, `VEXIL_APP`, `VEXIL_CACHE_TTL` (seconds),
    /// `VEXIL_POLL_MS`, the master switch and the `FLAG_*` variables, read once.
    pub async fn from_env() -> Result<Flags, Error> {
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
        builder.start().await
    }
}

/// The bounds of the timing settings: tight enough to exclude a busy loop and a
/// process that never refreshes, loose enough for tests (which run in milliseconds).
const MIN_TTL: Duration = Duration::from_millis(100);
const MAX_TTL: Duration = Duration::from_secs(3600);
const MIN_POLL: Duration = Duration::from_millis(10);
const MAX_POLL: Duration = Duration::from_secs(60);
const MIN_HEARTBEAT: Duration = Duration::from_millis(50);
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
