//! What every vexil test needs, in one place, so that tests read as the feature they
//! check rather than as set-up.
//!
//! # Layout
//!
//! - `clock.rs`: `TestClock`, a `Clock` that moves only when a test moves it.
//! - `workdir.rs`: `Workdir`, a scratch directory with helpers to write files and to
//!   run the real `vexil` binary in it with a clean environment.
//! - `seed.rs`: bulk audit rows for benchmarks (`cargo xtask audit-rows`).
//! - `proxy.rs`: `Proxy`, a TCP proxy a test can cut and restore (a database that
//!   goes away and comes back).
//! - `db.rs`: `TestDb`, a fresh database per test: a SQLite file in a temporary
//!   directory, or a PostgreSQL database created for the test and dropped after it.

mod clock;
mod db;
mod proxy;
pub mod seed;
mod workdir;

pub use clock::TestClock;
pub use db::{POSTGRES_ADMIN_URL, TestDb};
pub use proxy::Proxy;
pub use workdir::{Run, Workdir};
