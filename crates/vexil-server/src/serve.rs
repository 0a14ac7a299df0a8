//! `serve`: the router on a listener until `shutdown` completes, then in-flight
//! requests are drained before it returns.

use std::future::Future;

use axum::Router;
use axum::http::{HeaderName, HeaderValue};
use axum::routing::get;
use tokio::net::TcpListener;
use tower_http::compression::CompressionLayer;
use tower_http::limit::RequestBodyLimitLayer;
use tower_http::set_header::SetResponseHeaderLayer;

use crate::state::ServerState;

/// The largest request body accepted: forms and JSON requests are a few hundred bytes.
const MAX_BODY_BYTES: usize = 64 * 1024;

/// What every response says about itself, unless a handler said otherwise: no script
/// or style from anywhere but here and never inline (CSP), never framed, no sniffing,
/// no referrer, and not stored (console pages show who changed what; a shared
/// machine's cache must not keep them).
const SECURITY_HEADERS: [(&str, &str); 5] = [
    (
        "content-security-policy",
        "default-src 'self'; script-src 'self'; style-src 'self'; img-src 'self' data:; \
         frame-ancestors 'none'; base-uri 'none'; form-action 'self'",
    ),
    ("x-content-type-options", "nosniff"),
    ("referrer-policy", "no-referrer"),
    ("x-frame-options", "DENY"),
    ("cache-control", "no-store"),
];

/// Every route, over one shared state, behind the hardening every response gets.
pub fn router(state: ServerState) -> Router {
    let mut router = Router::new()
        // Up and serving, whatever the database says (readiness is `/readyz`, issue [E]).
        .route("/healthz", get(|| async { "ok\n" }))
        .with_state(state);
    for (name, value) in SECURITY_HEADERS {
        router = router.layer(SetResponseHeaderLayer::if_not_present(
            HeaderName::from_static(name),
            HeaderValue::from_static(value),
        ));
    }
    router
        .layer(RequestBodyLimitLayer::new(MAX_BODY_BYTES))
        .layer(CompressionLayer::new())
}

/// Serves `state` on `listener` until `shutdown` resolves; requests in flight then
/// finish before this returns.
pub async fn serve(
    listener: TcpListener,
    state: ServerState,
    shutdown: impl Future<Output = ()> + Send + 'static,
) -> std::io::Result<()> {
    axum::serve(listener, router(state))
        .with_graceful_shutdown(shutdown)
        .await
}
