//! The web console: server-rendered pages over the use cases, usable without
//! JavaScript and on a phone; htmx, where present, updates a flipped row in place.
//!
//! Every page but sign-in asks for an `Operator` (a signed-in, unexpired session)
//! and checks the role matrix with `vexil_core::authorize` before it reads anything;
//! every form carries the session's CSRF token.

mod account;
mod assets;
mod audit_page;
mod elevation;
pub(crate) mod error;
mod flags_page;
mod flip;
mod htmx;
pub(crate) mod page;
pub(crate) mod session;
mod sign_in;

use axum::Router;
use axum::middleware;
use axum::response::Redirect;
use axum::routing::{get, post};
use tower_sessions::cookie::SameSite;
use tower_sessions::{Expiry, SessionManagerLayer};

use crate::session_store::DbSessionStore;
use crate::state::ServerState;

/// The session cookie's name.
pub const SESSION_COOKIE: &str = "vexil_session";

/// The console's routes, with their session layer; and its static files, without.
pub(crate) fn routes(state: &ServerState) -> Router<ServerState> {
    let idle = time::Duration::try_from(state.config.idle_timeout).unwrap_or(time::Duration::MAX);
    let sessions = SessionManagerLayer::new(DbSessionStore::new(state.app.db().clone()))
        .with_name(SESSION_COOKIE)
        .with_http_only(true)
        .with_same_site(SameSite::Strict)
        .with_secure(state.config.secure_cookies)
        .with_path("/")
        .with_expiry(Expiry::OnInactivity(idle));
    let pages = Router::new()
        .route("/console", get(|| async { Redirect::to("/console/flags") }))
        .route("/console/sign-in", get(sign_in::page).post(sign_in::submit))
        .route("/console/sign-out", post(sign_in::sign_out))
        .route("/console/flags", get(flags_page::show))
        .route("/console/flags/{flag_key}/flip", post(flip::submit))
        .route(
            "/console/elevate",
            get(elevation::page).post(elevation::submit),
        )
        .route("/console/account", get(account::page))
        .route("/console/account/totp", post(account::begin_totp))
        .route("/console/account/totp/confirm", post(account::confirm_totp))
        .route("/console/audit", get(audit_page::show))
        .layer(middleware::from_fn(htmx::adapt))
        .layer(sessions);
    Router::new()
        .route("/", get(|| async { Redirect::to("/console/flags") }))
        .route("/static/console.css", get(assets::stylesheet))
        .route("/static/htmx.min.js", get(assets::htmx))
        .merge(pages)
}
