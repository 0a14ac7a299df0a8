//! vexil's HTTP server. One `serve(listener, state, shutdown)` runs it, for
//! `vexil serve` and for every test alike (STYLE.md rule 6): the tests bind a
//! loopback port and talk HTTP to the same router the binary serves.
//!
//! It serves the web console (issue [D]) and the health probes; the JSON API (issue
//! [E]) is added to `router` beside them.
//!
//! # Layout
//!
//! - `serve.rs`: `serve` and `router`, and the hardening every response gets.
//! - `state.rs`: `ServerState` (the `App`, the flags file, `ConsoleConfig`, the
//!   sign-in limiters) and `reload`.
//! - `health.rs`: `/healthz` (up) and `/readyz` (the database answers).
//! - `session_store.rs`: `DbSessionStore`, tower-sessions' store on our database.
//! - `console/`: the web console (`console/mod.rs` lists its files).

mod api;
mod console;
mod health;
mod metrics;
mod routes;
mod serve;
mod session_store;
mod state;

pub use api::{ApiDoc, CODES};
pub use console::SESSION_COOKIE;
pub use routes::{Route, Surface, route_table};
pub use serve::{REQUEST_ID, router, serve};
pub use session_store::DbSessionStore;
pub use state::{ApiConfig, ConsoleConfig, Reloaded, ServerState};
