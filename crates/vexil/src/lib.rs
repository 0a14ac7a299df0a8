//! vexil's library: ask `flags.is_on("key")` in nanoseconds, and see a flip made
//! anywhere (the console, the API, the CLI, or direct SQL) within milliseconds.
//!
//! A [`Flags`] handle holds an immutable snapshot of every declared flag resolved for
//! this process's env (SPEC §2: DB row, else `FLAG_*` variable, else YAML default).
//! `is_on` loads it through an `ArcSwap` and looks the key up: no lock, no allocation,
//! no I/O. One background task per handle keeps it current:
//!
//! - the **change feed** names each changed row (PostgreSQL `LISTEN`/`NOTIFY`; SQLite
//!   polls its data version every 100 ms), and only that row is read again;
//! - every **TTL** (30 s) everything is read again, so a lost notification costs at
//!   most one TTL;
//! - when the **database stops answering**, the last snapshot keeps serving (never the
//!   variables or YAML defaults, which a row may contradict), `health()` says so,
//!   and reads are retried with a capped backoff.
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
//!     .start()
//!     .await?;
//! // Until the database answers, values come from FLAG_* variables and YAML defaults.
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
//! `DATABASE_URL` and the `FLAG_*` variables instead.
//!
//! # Layout
//!
//! - `flags.rs`: `Flags`, `Flag`, `Applied`, `Health`.
//! - `snapshot.rs`: `Snapshot`, built whole for each change.
//! - `instance.rs`: this process's report to `vexil_instances` (who, env layer,
//!   receipts), written by the heartbeat.
//! - `refresh.rs`: the background task (feed, TTL, database down).
//! - `config.rs`: `Builder` and `Flags::from_env`.
//! - `error.rs`: `Error`.

mod config;
mod error;
mod flags;
mod instance;
mod refresh;
mod snapshot;

pub use config::{Builder, DEFAULT_HEARTBEAT, DEFAULT_POLL, DEFAULT_TTL, read_flag_set};
pub use error::Error;
pub use flags::{Applied, Flag, Flags, Health};
pub use snapshot::{Origin, Value};
pub use vexil_core::Source;
