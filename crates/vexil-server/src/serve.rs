//! `serve`: the router on a listener until `shutdown` completes, then in-flight
//! requests are drained before it returns; `router`, every route behind the
//! hardening every response gets.
//!
//! The accept loop sends event streams to `connection::serve_stream`, OFREP evaluations
//! straight to `ofrep::evaluate`, and the rest to hyper's HTTP/1 with a timer, each
//! socket in a `StallGuard`; shutdown first ends the event streams. Every response
//! gets, unless its handler says otherwise: a CSP with no inline script and
//! `frame-ancestors 'none'`, `nosniff`, `no-referrer`, `Cache-Control: no-store`; a
//! request body is at most 64 KiB; answers are gzipped. Each request but the evaluation
//! routes' gets an `x-request-id` (a proxy's is kept) and a span carrying it. The peer
//! address of each connection is kept for audit rows and limits. The housekeeping task
//! expires due promotions, deletes expired sessions, forgets instances gone for a day
//! and changes older than a day, and idle limiter entries.

use std::future::Future;

use std::time::Duration;

use axum::Router;
use axum::extract::ConnectInfo;
use axum::http::{HeaderName, HeaderValue, Request, StatusCode};
use axum::middleware;
use hyper::body::Incoming;
use tokio::net::TcpListener;
use tower_http::catch_panic::CatchPanicLayer;
use tower_http::compression::CompressionLayer;
use tower_http::limit::RequestBodyLimitLayer;
use tower_http::request_id::{MakeRequestUuid, PropagateRequestIdLayer, SetRequestIdLayer};
use tower_http::set_header::SetResponseHeaderLayer;
use tower_http::trace::TraceLayer;

use crate::connection::{Opening, Prefixed, StallGuard};
use crate::console::page::MessagePage;
use crate::health;
use crate::routes::{self, Entry, Surface};
use crate::state::ServerState;

/// The largest request body accepted: forms and JSON requests are a few hundred bytes.
pub(crate) const MAX_BODY_BYTES: usize = 64 * 1024;

/// What every response says about itself, unless a handler said otherwise: no script
/// or style from anywhere but here and never inline (CSP), never framed, no sniffing,
/// no referrer, and not stored (console pages show who changed what; a shared
/// machine's cache must not keep them).
pub(crate) const SECURITY_HEADERS: [(&str, &str); 5] = [
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

/// The probes: up, ready, metrics.
pub(crate) fn probes() -> Vec<Entry> {
    let p = Surface::Probe;
    vec![
        routes::get(p, "/healthz", health::healthz),
        routes::get(p, "/readyz", health::readyz),
        routes::get(p, "/metrics", crate::metrics::render),
    ]
}

/// Every route, over one shared state, behind the hardening every response gets.
/// The evaluation routes a fleet calls at high rates have a lean stack of their own
/// (`sdk::hot_router`), merged in after the others got theirs.
pub fn router(state: ServerState) -> Router {
    crate::metrics::handle();
    let mut router = routes::mount(probes())
        .merge(crate::console::routes(&state))
        .merge(crate::api::router(&state))
        .merge(crate::sdk::stream_router())
        .fallback(not_found)
        .method_not_allowed_fallback(method_not_allowed)
        // On each route (whose template is then known) and on the fallbacks.
        .layer(middleware::from_fn(crate::metrics::record))
        // A handler that panics answers 500 (as JSON under /api/, by `json_errors`)
        // instead of dropping the connection.
        .layer(CatchPanicLayer::new())
        // Inside the header layers, so that a 413 carries them too.
        .layer(RequestBodyLimitLayer::new(MAX_BODY_BYTES))
        .layer(middleware::from_fn(crate::api::json_errors));
    for (name, value) in SECURITY_HEADERS {
        router = router.layer(SetResponseHeaderLayer::if_not_present(
            HeaderName::from_static(name),
            HeaderValue::from_static(value),
        ));
    }
    let request_id = HeaderName::from_static(REQUEST_ID);
    router
        .layer(CompressionLayer::new())
        // One span per request, carrying its id: every line a handler logs names it.
        .layer(TraceLayer::new_for_http().make_span_with(request_span))
        .layer(PropagateRequestIdLayer::new(request_id.clone()))
        .layer(SetRequestIdLayer::new(request_id, MakeRequestUuid))
        .layer(middleware::map_request(keep_only_plain_request_ids))
        .merge(crate::sdk::hot_router())
        .with_state(state)
}

/// A proxy's request id is kept only if it is a plain token (letters, digits, `.`,
/// `_`, `-`, at most 64): anything else would go into every log line of the request
/// as the caller wrote it. It is dropped, and the server makes its own.
async fn keep_only_plain_request_ids(
    mut request: Request<axum::body::Body>,
) -> Request<axum::body::Body> {
    let plain = |value: &HeaderValue| {
        let bytes = value.as_bytes();
        (1..=64).contains(&bytes.len())
            && bytes
                .iter()
                .all(|b| b.is_ascii_alphanumeric() || b"._-".contains(b))
    };
    if request
        .headers()
        .get(REQUEST_ID)
        .is_some_and(|value| !plain(value))
    {
        request.headers_mut().remove(REQUEST_ID);
    }
    request
}

/// The header that carries a request's id, in the request (a proxy's, kept) and in
/// the response.
pub const REQUEST_ID: &str = "x-request-id";

fn request_span(request: &Request<axum::body::Body>) -> tracing::Span {
    let id = request
        .headers()
        .get(REQUEST_ID)
        .and_then(|value| value.to_str().ok())
        .unwrap_or("-");
    tracing::info_span!(
        "request",
        id = %id,
        method = %request.method(),
        path = %request.uri().path(),
    )
}

/// Any other path: a page that says so, not an empty body.
async fn not_found() -> axum::response::Response {
    use axum::response::IntoResponse;
    MessagePage::new(
        StatusCode::NOT_FOUND,
        "Not found",
        "There is no page at this address.",
    )
    .into_response()
}

/// A known path asked with a method it does not take.
async fn method_not_allowed() -> axum::response::Response {
    use axum::response::IntoResponse;
    MessagePage::new(
        StatusCode::METHOD_NOT_ALLOWED,
        "Not allowed here",
        "This address does not take that kind of request.",
    )
    .into_response()
}

/// How often expired sessions are deleted and idle sign-in limits forgotten.
const HOUSEKEEPING_EVERY: Duration = Duration::from_secs(60);
/// A process not seen for this long is gone for good: its report is deleted.
const FORGET_PROCESSES_AFTER: Duration = Duration::from_secs(24 * 3600);

/// Serves `state` on `listener` until `shutdown` resolves; requests in flight then
/// finish before this returns (event streams are ended first: they would never
/// finish by themselves). Each connection's peer address is kept for the handlers
/// (audit rows, per-address limits).
///
/// The accept loop is ours rather than `axum::serve`'s so that an event-stream
/// request gets a connection of its own served without hyper's buffers
/// (`connection::serve_stream`: the memory of an idle subscriber), each other socket
/// is wrapped in a `StallGuard` (a client that stops reading is let go after
/// `SdkConfig::write_timeout`), and `ConnectionConfig` holds: a request head (or a
/// connection's first bytes) must come whole within `header_timeout`, a request must
/// be answered within `request_timeout` (event streams aside), at most
/// `max_connections` are open (one more is answered 503), and once `shutdown`
/// resolves, what is still open after `shutdown_timeout` is dropped.
pub async fn serve(
    listener: TcpListener,
    state: ServerState,
    shutdown: impl Future<Output = ()> + Send + 'static,
) -> std::io::Result<()> {
    let housekeeping = tokio::spawn(housekeeping(state.clone()));
    let sealing = tokio::spawn(sealing(state.clone()));
    let changes = tokio::spawn(crate::sdk::feed::follow(state.clone()));
    let hub = state.hub.clone();
    let write_timeout = state.hub.config().write_timeout;
    let limits = state.connections.clone();
    let app = router(state.clone());
    let mut http = hyper::server::conn::http1::Builder::new();
    http.timer(hyper_util::rt::TokioTimer::new())
        .header_read_timeout(limits.header_timeout);
    let http = std::sync::Arc::new(http);
    let graceful = hyper_util::server::graceful::GracefulShutdown::new();
    // The event streams served without hyper, and the openings being read.
    let tracker = tokio_util::task::TaskTracker::new();
    // Connections whose first bytes have not come yet are let go at shutdown.
    let stopping = tokio_util::sync::CancellationToken::new();
    // Connections still open when the shutdown deadline passes are dropped.
    let dropping = tokio_util::sync::CancellationToken::new();
    let open = std::sync::Arc::new(tokio::sync::Semaphore::new(limits.max_connections));
    tokio::pin!(shutdown);
    loop {
        let (mut socket, peer) = tokio::select! {
            accepted = listener.accept() => match accepted {
                Ok(accepted) => accepted,
                Err(error) => {
                    accept_failed(&error).await;
                    continue;
                }
            },
            () = &mut shutdown => break,
        };
        // Small writes (an event, a short answer) go out at once.
        let _ = socket.set_nodelay(true);
        let Ok(room) = open.clone().try_acquire_owned() else {
            tracker.spawn(crate::connection::refuse(socket));
            continue;
        };
        let limits = limits.clone();
        let dropping = dropping.clone();
        let handlers = tracker.clone();
        let app = app.clone();
        let state = state.clone();
        let http = http.clone();
        let watcher = graceful.watcher();
        let stopping = stopping.clone();
        tracker.spawn(async move {
            let _room = room;
            let opening = tokio::select! {
                opening = crate::connection::opening(&mut socket, limits.header_timeout) => opening,
                () = stopping.cancelled() => None,
            };
            let connection = async {
                match opening {
                    None => {}
                    Some(Opening::Stream(head)) => {
                        crate::connection::serve_stream(
                            socket,
                            peer,
                            head,
                            app,
                            write_timeout,
                            limits.header_timeout,
                        )
                        .await;
                    }
                    Some(Opening::Other(read)) => {
                        let io = hyper_util::rt::TokioIo::new(StallGuard::new(
                            Prefixed::new(read, socket),
                            write_timeout,
                        ));
                        let request_timeout = limits.request_timeout;
                        let service =
                            hyper::service::service_fn(move |mut request: Request<Incoming>| {
                                let app = app.clone();
                                let state = state.clone();
                                let handlers = handlers.clone();
                                async move {
                                    if crate::connection::is_stream_path(request.uri().path()) {
                                        request.extensions_mut().insert(ConnectInfo(peer));
                                        return tower::ServiceExt::oneshot(
                                            app,
                                            request.map(axum::body::Body::new),
                                        )
                                        .await;
                                    }
                                    // OFREP's evaluations, a fleet's hottest requests, go
                                    // straight to their answer (`ofrep::evaluate::answer`,
                                    // which the router's routes call too).
                                    if crate::ofrep::evaluate::direct(&request) {
                                        let response = crate::ofrep::evaluate::answer_directly(
                                            &state, request, peer,
                                        )
                                        .await;
                                        return Ok::<_, std::convert::Infallible>(response);
                                    }
                                    request.extensions_mut().insert(ConnectInfo(peer));
                                    // The body is read here, within the request's
                                    // time; then the handler runs as a task of its own,
                                    // tracked for shutdown: a timeout (or the shutdown
                                    // deadline) lets go of the connection, never of a
                                    // change half made (a flip that commits late still
                                    // tells its caches).
                                    let deadline = tokio::time::Instant::now() + request_timeout;
                                    // A body that says it is too large is left to the
                                    // router's limit, which answers 413 each door's way.
                                    let declared = request
                                        .headers()
                                        .get(axum::http::header::CONTENT_LENGTH)
                                        .and_then(|v| v.to_str().ok())
                                        .and_then(|v| v.parse::<usize>().ok());
                                    if declared.is_some_and(|n| n > MAX_BODY_BYTES) {
                                        let request = request.map(axum::body::Body::new);
                                        return tower::ServiceExt::oneshot(app, request).await;
                                    }
                                    let (parts, body) = request.into_parts();
                                    let body = http_body_util::BodyExt::collect(
                                        http_body_util::Limited::new(body, MAX_BODY_BYTES),
                                    );
                                    let body = match tokio::time::timeout_at(deadline, body).await {
                                        Ok(Ok(body)) => axum::body::Body::from(body.to_bytes()),
                                        Ok(Err(_)) => return Ok(too_large()),
                                        Err(_) => return Ok(too_slow(request_timeout)),
                                    };
                                    let request = Request::from_parts(parts, body);
                                    let answer =
                                        handlers.spawn(tower::ServiceExt::oneshot(app, request));
                                    match tokio::time::timeout_at(deadline, answer).await {
                                        Ok(Ok(answered)) => answered,
                                        Ok(Err(_)) => Ok(failed()),
                                        Err(_) => Ok(too_slow(request_timeout)),
                                    }
                                }
                            });
                        if let Err(error) = watcher.watch(http.serve_connection(io, service)).await
                        {
                            tracing::debug!(%error, "connection ended with an error");
                        }
                    }
                }
            };
            tokio::select! {
                () = connection => {}
                () = dropping.cancelled() => {}
            }
        });
    }
    drop(listener);
    // Event streams never end by themselves: close them, then drain the rest.
    hub.close();
    stopping.cancel();
    tracker.close();
    let drained = async {
        graceful.shutdown().await;
        tracker.wait().await;
    };
    if tokio::time::timeout(limits.shutdown_timeout, drained)
        .await
        .is_err()
    {
        tracing::warn!(
            connections = tracker.len(),
            "dropping the connections still open {} s after the shutdown began",
            limits.shutdown_timeout.as_secs()
        );
        dropping.cancel();
        tracker.wait().await;
    }
    // Stopped and waited for: nothing of this server runs after `serve` returns.
    housekeeping.abort();
    let _ = housekeeping.await;
    // The last minute's failed sign-ins for unknown names, which housekeeping would
    // have written next.
    if let Err(error) = state.app.summarize_unknown_sign_ins().await {
        tracing::warn!(%error, "could not record the failed sign-ins for unknown names");
    }
    changes.abort();
    sealing.abort();
    let _ = sealing.await;
    let _ = changes.await;
    Ok(())
}

/// The answer to a request that took longer than `limit` (its body was too slow,
/// or its handler): 408, and the connection is closed after it.
fn too_slow(limit: Duration) -> axum::response::Response {
    metrics::counter!("vexil_requests_timed_out_total").increment(1);
    let text = format!(
        "The request took longer than {} s and was dropped; if it changed something, look before trying again.",
        limit.as_secs()
    );
    closing(StatusCode::REQUEST_TIMEOUT, "Too slow", &text)
}

/// The answer to a body larger than `MAX_BODY_BYTES` (or cut off by its client).
fn too_large() -> axum::response::Response {
    let text = "A request's body is at most 64 KiB; nothing was changed.";
    closing(StatusCode::PAYLOAD_TOO_LARGE, "Too large", text)
}

/// A message page after which the connection is closed.
fn closing(status: StatusCode, title: &str, text: &str) -> axum::response::Response {
    use axum::response::IntoResponse;
    let mut response = MessagePage::new(status, title, text).into_response();
    response.headers_mut().insert(
        axum::http::header::CONNECTION,
        HeaderValue::from_static("close"),
    );
    response
}

/// The answer when a handler's task ended without one (it cannot panic past the
/// router's guard; this is for a task cancelled by the runtime going away).
fn failed() -> axum::response::Response {
    use axum::response::IntoResponse;
    MessagePage::new(
        StatusCode::INTERNAL_SERVER_ERROR,
        "Something went wrong",
        "The request could not be finished. Look before trying again.",
    )
    .into_response()
}

/// An `accept` that failed. A connection that went before it was accepted is the
/// client's business; anything else (out of file descriptors) is waited out briefly,
/// rather than spinning.
async fn accept_failed(error: &std::io::Error) {
    use std::io::ErrorKind;
    if matches!(
        error.kind(),
        ErrorKind::ConnectionRefused | ErrorKind::ConnectionAborted | ErrorKind::ConnectionReset
    ) {
        return;
    }
    tracing::error!(%error, "cannot accept a connection; trying again in a second");
    tokio::time::sleep(Duration::from_secs(1)).await;
}

/// How often the audit log's new rows are sealed into its chain.
const SEAL_EVERY: Duration = Duration::from_secs(1);
/// How often the chain's head is written to the log, as an anchor to keep.
const LOG_HEAD_EVERY: Duration = Duration::from_secs(300);

/// Seals the audit log's new rows into its hash chain every second (with any number
/// of servers doing the same: each seals what is there), publishes the head on
/// `/metrics`, and logs it every five minutes, so that a log collector holds anchors
/// outside the database without anyone running `vexil audit head`.
async fn sealing(state: ServerState) {
    let mut every = tokio::time::interval(SEAL_EVERY);
    every.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    let mut logged: Option<(std::time::Instant, i64)> = None;
    loop {
        every.tick().await;
        match state.app.seal_audit().await {
            Ok(report) => {
                if report.sealed > 0 {
                    metrics::counter!("vexil_audit_rows_sealed_total").increment(report.sealed);
                }
                state.audit_head.store(report.head.map(std::sync::Arc::new));
                if let Some(head) = report.head {
                    let due = logged
                        .is_none_or(|(at, id)| id != head.id && at.elapsed() >= LOG_HEAD_EVERY);
                    if due {
                        tracing::info!(anchor = %head, "audit chain head (keep it: vexil audit verify --anchor ID:HASH)");
                        logged = Some((std::time::Instant::now(), head.id));
                    }
                }
            }
            Err(error) => tracing::warn!(
                error = %vexil_core::message::error_chain(&error),
                "could not seal the audit log; trying again in a second"
            ),
        }
    }
}

/// Expires the promotions whose expiry is due (at most a minute late; safe with
/// several servers, which each try and at most one writes), deletes expired sessions
/// (a stolen cookie of an expired session opens nothing anyway; this keeps the table
/// small), forgets processes gone for a day and changes older than a day (the
/// library's processes used to do this; they now only read and report), and forgets
/// addresses with no recent sign-in attempt. A failure is logged and tried again next
/// time.
async fn housekeeping(state: ServerState) {
    let mut every = tokio::time::interval(HOUSEKEEPING_EVERY);
    every.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    loop {
        every.tick().await;
        match state.app.expire_due(state.app.now()).await {
            Ok(expired) => {
                for stepped in expired {
                    let promotion = &stepped.record.promotion;
                    tracing::info!(
                        promotion = stepped.record.id,
                        flag = %stepped.record.flag_key,
                        reason = promotion.reason.as_deref().unwrap_or_default(),
                        "promotion expired"
                    );
                }
            }
            Err(error) => tracing::warn!(%error, "could not expire due promotions"),
        }
        if let Err(error) = state.app.delete_expired_sessions(chrono::Utc::now()).await {
            tracing::warn!(%error, "could not delete expired console sessions");
        }
        if let Err(error) = state
            .app
            .forget_instances_gone_for(FORGET_PROCESSES_AFTER)
            .await
        {
            tracing::warn!(%error, "could not forget processes gone for a day");
        }
        let day_ago = chrono::Utc::now() - chrono::TimeDelta::days(1);
        if let Err(error) = state.app.forget_changes_before(day_ago).await {
            tracing::warn!(%error, "could not forget changes older than a day");
        }
        if let Err(error) = state.app.summarize_unknown_sign_ins().await {
            tracing::warn!(%error, "could not record the failed sign-ins for unknown names");
        }
        state.sign_in_limiter.retain_recent();
        state.keys.retain_recent();
        if let Some(limiter) = state.api_limiter.get() {
            limiter.retain_recent();
        }
        crate::metrics::handle().run_upkeep();
    }
}
