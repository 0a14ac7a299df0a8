//! vexil's HTTP server. One `serve(listener, state, shutdown)` runs it, for
//! `vexil serve` and for every test alike (ARCHITECTURE.md, invariant 11): the tests bind a
//! loopback port and talk HTTP to the same router the binary serves.
//!
//! It serves the web console, the JSON API with its OpenAPI document, the evaluation
//! plane for applications (the SDK routes and OFREP), the health probes and
//! `/metrics`.
//!
//! # Layout
//!
//! - `serve.rs`: `serve` (the accept loop) and `router`, the hardening every response
//!   gets, request ids.
//! - `connection.rs`: `StallGuard`, which lets go of a client that stopped reading.
//! - `routes.rs`: `route_table`, every route as data; the router is mounted from it.
//! - `state.rs`: `ServerState` (the `App`, the flags file, `ConsoleConfig`,
//!   `ApiConfig`, the limiters, the token cache) and `reload`.
//! - `flag_cache.rs`: each env's flag states for the API, until something changes.
//! - `health.rs`: `/healthz` (up) and `/readyz` (the database answers).
//! - `metrics.rs`: `/metrics` and the per-request metrics.
//! - `session_store.rs`: `DbSessionStore`, tower-sessions' store on our database.
//! - `console/`: the web console (`console/mod.rs` lists its files).
//! - `api/`: the JSON API (`api/mod.rs` lists its files).
//! - `sdk/`: the evaluation plane for applications, behind client keys: the hub that
//!   follows the database once for every subscriber, the snapshot, the change stream
//!   and reports (`sdk/mod.rs` lists its files).
//! - `ofrep/`: the OpenFeature Remote Evaluation Protocol over the same hub.

mod api;
mod connection;
mod console;
mod flag_cache;
mod health;
mod metrics;
mod ofrep;
mod routes;
mod sdk;
mod serve;
mod session_store;
mod state;

pub use api::{ApiDoc, CODES, ClientKeyView, PromotionView, StepResponse};
pub use connection::ConnectionConfig;
pub use console::SESSION_COOKIE;
pub use routes::{Route, Surface, route_table};
pub use sdk::SdkConfig;
pub use serve::{REQUEST_ID, router, serve};
pub use session_store::DbSessionStore;
pub use state::{ApiConfig, ConsoleConfig, Reloaded, ServerState, Shared};
