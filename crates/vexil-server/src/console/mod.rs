//! The web console: server-rendered pages over the use cases, usable without
//! JavaScript and on a phone; htmx, where present, updates a flipped row in place.
//!
//! Every page but sign-in asks for an `Operator` (a signed-in, unexpired session)
//! and leaves the role to the use case it calls (`App::authorize`, `Actor::may`), which
//! checks it before anything is read or written;
//! every form carries the session's CSRF token.
//!
//! The session cookie is `vexil_session`: `HttpOnly`, `SameSite=Strict`, and `Secure`
//! when the public URL is https.

mod account;
mod assets;
mod audit_page;
mod audit_row;
mod audit_sentence;
mod client_keys_page;
mod deprecation_page;
mod elevation;
pub(crate) mod error;
mod flag_page;
mod flag_row;
mod flags_page;
mod flip;
mod flip_step;
mod htmx;
mod instances_page;
pub(crate) mod page;
pub(crate) mod promotions_page;
mod reconcile_page;
pub(crate) mod session;
mod sign_in;
mod stale_page;

use axum::Router;
use axum::middleware;
use axum::response::Redirect;
use tower_sessions::cookie::SameSite;
use tower_sessions::{Expiry, SessionManagerLayer};

use crate::routes::{self, Entry, Surface};
use crate::session_store::DbSessionStore;
use crate::state::ServerState;

/// The session cookie's name.
pub const SESSION_COOKIE: &str = "vexil_session";

/// The console's pages, which run behind its session layer.
pub(crate) fn pages() -> Vec<Entry> {
    use routes::{get, post};
    let c = Surface::Console;
    vec![
        get(c, "/console", || async { Redirect::to("/console/flags") }),
        get(c, "/console/sign-in", sign_in::page),
        post(c, "/console/sign-in", sign_in::submit),
        post(c, "/console/sign-out", sign_in::sign_out),
        get(c, "/console/flags", flags_page::show),
        get(c, "/console/flags/{flag_key}", flag_page::show),
        post(c, "/console/flags/{flag_key}/flip", flip::submit),
        get(c, "/console/elevate", elevation::page),
        post(c, "/console/elevate", elevation::submit),
        get(c, "/console/account", account::page),
        post(c, "/console/account/totp", account::begin_totp),
        post(c, "/console/account/totp/confirm", account::confirm_totp),
        get(c, "/console/audit", audit_page::show),
        get(c, "/console/promotions", promotions_page::show),
        get(c, "/console/deprecation", deprecation_page::show),
        get(c, "/console/stale", stale_page::show),
        get(c, "/console/reconcile", reconcile_page::show),
        post(c, "/console/reconcile", reconcile_page::submit),
        get(c, "/console/instances", instances_page::show),
        get(c, "/console/client-keys", client_keys_page::show),
        post(c, "/console/client-keys", client_keys_page::create),
        post(
            c,
            "/console/client-keys/{id}/revoke",
            client_keys_page::revoke,
        ),
        post(
            c,
            "/console/flags/{flag_key}/promotions",
            promotions_page::mark,
        ),
        post(
            c,
            "/console/promotions/{id}/approve",
            promotions_page::approve,
        ),
        post(
            c,
            "/console/promotions/{id}/promote",
            promotions_page::promote,
        ),
        post(
            c,
            "/console/promotions/{id}/reject",
            promotions_page::reject,
        ),
    ]
}

/// What the console serves without a session: the way in and its static files.
pub(crate) fn open_routes() -> Vec<Entry> {
    use routes::get;
    let s = Surface::Static;
    vec![
        get(s, "/", || async { Redirect::to("/console/flags") }),
        get(s, "/static/console.css", assets::stylesheet),
        get(s, "/static/htmx.min.js", assets::htmx),
        get(s, "/static/console.js", assets::script),
    ]
}

/// The console's routes, its pages behind the session layer.
pub(crate) fn routes(state: &ServerState) -> Router<ServerState> {
    let idle = time::Duration::try_from(state.config.idle_timeout).unwrap_or(time::Duration::MAX);
    let sessions = SessionManagerLayer::new(DbSessionStore::for_app(&state.app))
        .with_name(SESSION_COOKIE)
        .with_http_only(true)
        .with_same_site(SameSite::Strict)
        .with_secure(state.config.secure_cookies)
        .with_path("/")
        .with_expiry(Expiry::OnInactivity(idle));
    let pages = routes::mount(pages())
        .layer(middleware::from_fn(htmx::adapt))
        .layer(middleware::from_fn(page::keep_header))
        .layer(sessions);
    routes::mount(open_routes()).merge(pages)
}
