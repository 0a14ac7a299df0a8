//! What every vexil test needs, in one place, so that tests read as the feature they
//! check rather than as set-up.
//!
//! # Layout
//!
//! - `clock.rs`: `TestClock`, a `Clock` that moves only when a test moves it.
//! - `workdir.rs`: `Workdir`, a scratch directory with helpers to write files and to
//!   run the real `vexil` binary in it with a clean environment; `ok` and `fails`,
//!   the asserts on a finished run.
//! - `example_flags.rs`: the example flags file, as text and parsed.
//! - `code_corpus.rs`: `code_corpus`, a committed source tree of real-world `FLAG_*`
//!   reads and near misses for the code scan.
//! - `instance.rs` (feature `instance`): `live_instance`, a process linking the
//!   library that reports itself, returned once its first report is in.
//! - `old_console.rs`: the runbook's team's console database before vexil (its two
//!   tables and their history), to adopt; the runbook's SELECT and Option A.
//! - `seed.rs`: bulk audit rows for benchmarks (`cargo xtask audit-rows`).
//! - `proxy.rs`: `Proxy`, a TCP proxy a test can cut and restore (a database that
//!   goes away and comes back).
//! - `db.rs`: `TestDb`, a fresh database per test: a SQLite file in a temporary
//!   directory, or a PostgreSQL database created for the test and dropped after it;
//!   SQL through the database's own client, and `audit_log`, every audit row.

mod clock;
mod code_corpus;
mod db;
mod example_flags;
#[cfg(feature = "instance")]
mod instance;
mod old_console;
mod proxy;
pub mod seed;
mod workdir;

pub use clock::TestClock;
pub use code_corpus::code_corpus;
pub use db::{POSTGRES_ADMIN_URL, TestDb, audit_log};
pub use example_flags::{EXAMPLE_FLAGS, example_flags};
#[cfg(feature = "instance")]
pub use instance::{live_instance, reported_after, start_instance};
pub use old_console::{
    RUNBOOK_OPTION_A, RUNBOOK_SELECT, old_console, old_console_ddl, old_console_history,
};
pub use proxy::Proxy;
pub use workdir::{Run, Workdir, fails, ok};
