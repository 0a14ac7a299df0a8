//! `serve`: the router on a listener until `shutdown` completes, then in-flight
//! requests are drained before it returns.

use std::future::Future;

use axum::Router;
use axum::routing::get;
use tokio::net::TcpListener;

use crate::state::ServerState;

/// Every route, over one shared state.
pub fn router(state: ServerState) -> Router {
    Router::new()
        // Up and serving, whatever the database says (readiness is `/readyz`, issue [E]).
        .route("/healthz", get(|| async { "ok\n" }))
        .with_state(state)
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
