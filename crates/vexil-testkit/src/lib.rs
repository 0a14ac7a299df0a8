//! What every vexil test needs, in one place, so that tests read as the feature they
//! check rather than as set-up.
//!
//! # Layout
//!
//! - `clock.rs`: `TestClock`, a `Clock` that moves only when a test moves it.
//! - `workdir.rs`: `Workdir`, a scratch directory with helpers to write files and to
//!   run the real `vexil` binary in it with a clean environment.
//!
//! Later issues add the test databases (a temp SQLite file or a fresh PostgreSQL
//! database per test) and `spawn_server()` here.

mod clock;
mod workdir;

pub use clock::TestClock;
pub use workdir::{Run, Workdir};
