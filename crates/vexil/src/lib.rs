//! vexil's library: ask `flags.is_on("key")` in nanoseconds, and see a flip made
//! anywhere (the console, the API, the CLI, or direct SQL) within milliseconds.
//!
//! A [`Flags`] handle holds an immutable snapshot of every declared flag resolved for
//! this process's env (DB row, else `FLAG_*` variable, else YAML default: the
//! runbook's order, `vexil_core::resolve`). `is_on` loads it and looks the key up: no lock, no
//! allocation, no I/O. One background task per handle keeps it current, in one of
//! two modes that differ only in where the rows come from:
//!
//! - **database mode** (`DATABASE_URL`, `database.rs`): the database's change feed
//!   names each changed row (PostgreSQL `LISTEN`/`NOTIFY`; SQLite polls its data
//!   version every 100 ms), and only that row is read again;
//! - **remote mode** (`VEXIL_URL` and `VEXIL_CLIENT_KEY`, `remote/`): a `vexil serve`
//!   streams rows and declarations, and the process reports itself over HTTP; a fleet
//!   then holds no database connection at all.
//!
//! In both, every **TTL** (30 s) everything is read again, so a lost notification
//! costs at most one TTL; when the **source stops answering**, the last snapshot keeps
//! serving (never the variables or YAML defaults, which a row may contradict),
//! `health()` says so, and reads are retried with a capped, jittered backoff. `start`
//! returns once the first full read is in (at most `start_timeout`), so no variable
//! decides a value that a row contradicts while the process starts.
//!
//! ```
//! # #[tokio::main(flavor = "current_thread")]
//! # async fn main() -> Result<(), vexil::Error> {
//! # let dir = std::env::temp_dir().join(format!("vexil-doc-{}", std::process::id()));
//! # std::fs::create_dir_all(&dir).unwrap();
//! # let flags_file = dir.join("feature_flags.yaml");
//! # std::fs::write(&flags_file, "dark_mode:\n  description: Dark theme.\n  default: true\n  risk: low\n  soak_period_hours: 0\n").unwrap();
//! # let database_url = format!("sqlite://{}", dir.join("vexil.db").display());
//! let flags = vexil::Flags::builder()
//!     .env("prod")
//!     .flags_file(&flags_file)
//!     .database_url(database_url) // e.g. "sqlite://vexil.db" or "postgres://…"
//!     .start_timeout(std::time::Duration::from_millis(100)) // default 5 s
//!     .start()
//!     .await?;
//! // No database here: past the start timeout, values come from FLAG_* variables
//! // and YAML defaults until the database answers.
//! assert!(flags.is_on("dark_mode"));
//! // Undeclared keys are off (and logged once).
//! assert!(!flags.is_on("no_such_flag"));
//! // For a hot loop: resolve the name once, then each check is one atomic load.
//! let dark_mode = flags.flag("dark_mode");
//! assert!(dark_mode.is_on());
//! # Ok(())
//! # }
//! ```
//!
//! In an application, `Flags::from_env()` reads `VEXIL_ENV`, `VEXIL_FLAGS`,
//! `DATABASE_URL` (or `VEXIL_URL` and `VEXIL_CLIENT_KEY`) and the `FLAG_*` variables
//! instead.
//!
//! # Features
//!
//! `sqlite` and `postgres` (database mode) and `remote` (remote mode), all on by
//! default. An application that follows a server builds with `default-features =
//! false, features = ["remote"]` and compiles no database driver.
//!
//! # Layout
//!
//! - `flags.rs`: `Flags`, `Flag`, `Applied`, `Health`, and the one place a snapshot
//!   is published (`Shared::publish`).
//! - `snapshot.rs`: `Snapshot`, built whole for each change: the one resolution.
//! - `instance.rs`: this process as reports show it (who, env layer).
//! - `database.rs`: database mode's task (feed, TTL, database down, reports).
//! - `remote/`: remote mode's task (stream, TTL, server down, reports) and its
//!   server-sent-events reader.
//! - `link.rs`: what both share: timing, the retry schedule, `invalidate`'s way in.
//! - `config.rs`: `Builder` and `Flags::from_env`.
//! - `error.rs`: `Error`.

mod config;
#[cfg(feature = "database")]
mod database;
mod error;
mod flags;
mod instance;
mod link;
#[cfg(feature = "remote")]
mod remote;
mod snapshot;

pub use config::{
    Builder, DEFAULT_HEARTBEAT, DEFAULT_POLL, DEFAULT_START_TIMEOUT, DEFAULT_TTL, read_flag_set,
};
pub use error::Error;
pub use flags::{Applied, Flag, Flags, Health};
pub use snapshot::{Origin, Value};
pub use vexil_core::Source;
