//! `Route` and `route_table`: every route the server answers, as data. The router is
//! mounted from the same lists (`mount`), so a route cannot be served without being
//! listed; the OpenAPI test and the permission table test walk this list, so a route
//! added without its document entry or its permission row fails a test.

use axum::handler::Handler;
use axum::routing::{MethodFilter, MethodRouter};

use crate::state::ServerState;

/// Which door a route belongs to: who may call it and how it answers.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Surface {
    /// `/healthz`, `/readyz`, `/metrics`: anyone, no account (load balancers,
    /// Prometheus). They say nothing about flags or accounts.
    Probe,
    /// The OpenAPI document and Swagger UI: anyone, no account.
    Docs,
    /// The console's stylesheet, script and redirects: anyone.
    Static,
    /// HTML pages behind a console session (sign-in itself is open).
    Console,
    /// JSON behind a Bearer token.
    Api,
    /// The evaluation plane behind a client key: `/sdk/v1` and OFREP's `/ofrep/v1`.
    Sdk,
    /// CORS preflights of OFREP's routes: anyone. They say which methods and headers a
    /// browser may send, nothing about flags.
    Preflight,
}

/// One method on one path.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct Route {
    pub method: &'static str,
    /// axum's syntax: `{key}` for a parameter, `{*rest}` for the rest of the path.
    pub path: &'static str,
    pub surface: Surface,
}

/// A route and what answers it.
pub(crate) type Entry = (Route, MethodRouter<ServerState>);

/// `GET path`, answered by `handler`.
pub(crate) fn get<H, T>(surface: Surface, path: &'static str, handler: H) -> Entry
where
    H: Handler<T, ServerState>,
    T: 'static,
{
    entry(MethodFilter::GET, "GET", surface, path, handler)
}

/// `POST path`, answered by `handler`.
pub(crate) fn post<H, T>(surface: Surface, path: &'static str, handler: H) -> Entry
where
    H: Handler<T, ServerState>,
    T: 'static,
{
    entry(MethodFilter::POST, "POST", surface, path, handler)
}

/// `OPTIONS path`, answered by `handler`.
pub(crate) fn options<H, T>(surface: Surface, path: &'static str, handler: H) -> Entry
where
    H: Handler<T, ServerState>,
    T: 'static,
{
    entry(MethodFilter::OPTIONS, "OPTIONS", surface, path, handler)
}

/// The route as listed and what answers it, from one method: they cannot disagree.
fn entry<H, T>(
    filter: MethodFilter,
    method: &'static str,
    surface: Surface,
    path: &'static str,
    handler: H,
) -> Entry
where
    H: Handler<T, ServerState>,
    T: 'static,
{
    let route = Route {
        method,
        path,
        surface,
    };
    (route, axum::routing::on(filter, handler))
}

/// A router answering each entry (methods on one path merge).
pub(crate) fn mount(entries: Vec<Entry>) -> axum::Router<ServerState> {
    entries
        .into_iter()
        .fold(axum::Router::new(), |router, (route, handler)| {
            router.route(route.path, handler)
        })
}

/// Every route the server answers.
pub fn route_table() -> Vec<Route> {
    let mut entries = crate::serve::probes();
    entries.extend(crate::console::pages());
    entries.extend(crate::console::open_routes());
    entries.extend(crate::api::routes());
    entries.extend(crate::sdk::routes());
    entries.extend(crate::sdk::streams());
    entries.extend(crate::ofrep::routes());
    entries.extend(crate::ofrep::streams());
    entries.extend(crate::ofrep::preflights());
    let mut routes: Vec<Route> = entries.into_iter().map(|(route, _)| route).collect();
    routes.extend(crate::api::docs_routes());
    routes
}
