//! vexil's HTTP server. One `serve(listener, state, shutdown)` runs it, for
//! `vexil serve` and for every test alike (STYLE.md rule 6): the tests bind a
//! loopback port and talk HTTP to the same router the binary serves.
//!
//! Today it serves `/healthz` and reloads the flags file on request; the console
//! (issue [D]) and the API (issue [E]) are routes added to `router`.
//!
//! # Layout
//!
//! - `serve.rs`: `serve` and `router`.
//! - `session_store.rs`: `DbSessionStore`, tower-sessions' store on our database.
//! - `state.rs`: `ServerState` (the `App` and where its flags file is) and `reload`.

mod console;
mod serve;
mod session_store;
mod state;

pub use console::SESSION_COOKIE;
pub use serve::{router, serve};
pub use session_store::DbSessionStore;
pub use state::{ConsoleConfig, Reloaded, ServerState};
