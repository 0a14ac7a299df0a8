//! The evaluation plane (docs/api.md#client-keys): what applications follow the server with, behind a
//! client key. `vexil serve` is the hub between the fleet and the database: it
//! follows the database once and fans every change out to every subscriber.
//!
//! - `GET /sdk/v1/snapshot`: the key's env, rows and declarations (never resolved
//!   values), with an `ETag`;
//! - `GET /sdk/v1/stream`: the same as a `snapshot` event, then a `change` event per
//!   row changed, resumable with `Last-Event-ID`;
//! - `POST /sdk/v1/report`: a following process reports itself, and from then on is a
//!   live instance like a process linked to the database.
//!
//! OFREP (`crate::ofrep`) reads the same hub.
//!
//! # Layout
//!
//! - `hub.rs`: `Hub`, each env as it is now and a broadcast channel per env.
//! - `event.rs`: `EventId`, `Published`, `Frame`: the events a hub sends, rendered once.
//! - `feed.rs`: `follow`, the one task that feeds the hub from the database.
//! - `auth.rs`: `authenticate` (a client key → `Client`), `ClientCaller`, `KeyCache`.
//! - `stream.rs`: the event-stream body, shared with OFREP's events.
//! - `snapshot.rs`: `GET /sdk/v1/snapshot`.
//! - `report.rs`: `POST /sdk/v1/report`.
//!
//! `hot_router` serves the snapshot and report routes on a lean stack: no span or
//! request id per request, counted by `metrics::count_hot`.

pub(crate) mod auth;
pub(crate) mod event;
pub(crate) mod feed;
pub(crate) mod hub;
pub(crate) mod report;
pub(crate) mod snapshot;
pub(crate) mod stream;

use std::time::Duration;

use serde::Deserialize;
use utoipa::IntoParams;
use vexil_app::Client;

use crate::api::error::ApiError;
use crate::routes::{self, Entry, Surface};
use crate::sdk::hub::Hub;
use crate::state::ServerState;

/// How the evaluation plane behaves.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SdkConfig {
    /// Requests per second one client key may make to `/sdk/v1` and `/ofrep/v1` (and
    /// the burst), whatever the address; 0 turns the limit off.
    pub requests_per_second: u32,
    /// Events a subscriber may fall behind before it is dropped.
    pub queue: usize,
    /// Changes kept per env for `Last-Event-ID`.
    pub replay: usize,
    /// A comment on every stream this often, so that proxies keep idle ones open.
    pub keep_alive: Duration,
    /// A full read of the database this often, in case a notification was lost.
    pub resync_every: Duration,
    /// A connection whose client accepts no byte for this long is closed: a
    /// subscriber that stopped reading (any connection, in fact).
    pub write_timeout: Duration,
    /// The server's public address (`VEXIL_PUBLIC_URL`), for the absolute event-stream
    /// URL OFREP's bulk answer advertises; without it, a path on the same origin.
    pub public_url: Option<String>,
}

impl Default for SdkConfig {
    fn default() -> SdkConfig {
        SdkConfig {
            // Sized for a fleet on one key: a thousand processes reporting every 10 s,
            // reconnecting at once after a restart, or asking OFREP per request.
            requests_per_second: 20_000,
            queue: 1024,
            replay: 4096,
            keep_alive: Duration::from_secs(15),
            resync_every: Duration::from_secs(30),
            write_timeout: Duration::from_secs(30),
            public_url: None,
        }
    }
}

/// The SDK's request-answer routes (served on the lean stack: `hot_router`).
pub(crate) fn routes() -> Vec<Entry> {
    use routes::{get, post};
    let s = Surface::Sdk;
    vec![
        get(s, "/sdk/v1/snapshot", snapshot::show),
        post(s, "/sdk/v1/report", report::submit),
    ]
}

/// The SDK's event stream (served like every other route).
pub(crate) fn streams() -> Vec<Entry> {
    vec![routes::get(Surface::Sdk, "/sdk/v1/stream", stream::stream)]
}

/// The event streams, for the main router: each answered once per connection, so
/// the full stack costs nothing that matters; OFREP's carry its CORS headers.
pub(crate) fn stream_router() -> axum::Router<ServerState> {
    routes::mount(streams()).merge(with_cors(routes::mount(crate::ofrep::streams())))
}

/// The evaluation routes a fleet calls at high rates (OFREP evaluations, snapshots,
/// reports), on a lean stack of their own: no span, request id or histogram per
/// request (a span alone costs more than an evaluation), counted with counters
/// registered once (`metrics::count_hot`); the same security headers, body limit and
/// panic guard as every route.
pub(crate) fn hot_router() -> axum::Router<ServerState> {
    use axum::http::{HeaderName, HeaderValue};
    use tower_http::catch_panic::CatchPanicLayer;
    use tower_http::limit::RequestBodyLimitLayer;
    use tower_http::set_header::SetResponseHeaderLayer;

    let mut sdk = routes::mount(routes())
        .layer(axum::middleware::from_fn(crate::metrics::record_hot))
        .layer(RequestBodyLimitLayer::new(crate::serve::MAX_BODY_BYTES));
    for (name, value) in crate::serve::SECURITY_HEADERS {
        sdk = sdk.layer(SetResponseHeaderLayer::if_not_present(
            HeaderName::from_static(name),
            HeaderValue::from_static(value),
        ));
    }
    // OFREP's evaluations add their headers, count themselves and hold their bodies
    // to the limit (`ofrep::evaluate::answer`), the same whether they come through
    // here or straight from the accept loop; their preflights (on the same paths, so
    // mounted with them) answer for themselves too.
    let ofrep =
        routes::mount(crate::ofrep::routes()).merge(routes::mount(crate::ofrep::preflights()));
    sdk.merge(ofrep)
        .layer(CatchPanicLayer::new())
        // The SDK's refusals by the layers above (a method, a body too large, a
        // panic) in its JSON shape, as the API's.
        .layer(axum::middleware::from_fn(crate::api::json_errors))
}

/// `router`'s answers carry OFREP's CORS headers.
fn with_cors(router: axum::Router<ServerState>) -> axum::Router<ServerState> {
    use axum::http::{HeaderName, HeaderValue};
    use tower_http::set_header::SetResponseHeaderLayer;

    crate::ofrep::CORS_HEADERS
        .into_iter()
        .fold(router, |router, (name, value)| {
            router.layer(SetResponseHeaderLayer::overriding(
                HeaderName::from_static(name),
                HeaderValue::from_static(value),
            ))
        })
}

#[derive(Debug, Deserialize, IntoParams)]
#[serde(deny_unknown_fields)]
#[into_params(parameter_in = Query)]
pub(crate) struct EnvQuery {
    /// The env the process belongs to (`VEXIL_ENV`): refused unless it is the key's.
    #[serde(default)]
    pub(crate) env: Option<String>,
}

/// A request that names an env must name its key's: a process configured for
/// staging that was given prod's key would otherwise follow prod without a word.
pub(crate) fn check_env(client: &Client, env: Option<&str>) -> Result<(), ApiError> {
    match env {
        Some(env) if env != client.env().as_str() => Err(ApiError::Invalid(format!(
            "the request names env '{}' but this client key reads {}: use a key made for that env (`vexil client-key create --env {}`)",
            vexil_core::message::one_line(&env.chars().take(64).collect::<String>()),
            client.env(),
            vexil_core::message::one_line(&env.chars().take(64).collect::<String>()),
        ))),
        _ => Ok(()),
    }
}

/// Waits briefly for the hub's first read of the database; `unavailable` if it has
/// not happened (the database has not answered since the server started).
pub(crate) async fn loaded(hub: &Hub) -> Result<(), ApiError> {
    if hub.ready(stream::FIRST_READ_WAIT).await {
        Ok(())
    } else {
        Err(ApiError::Unavailable)
    }
}
