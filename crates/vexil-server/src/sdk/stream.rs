//! `GET /sdk/v1/stream`, and the event-stream body it shares with OFREP's
//! `GET /ofrep/v1/events`: what a subscription sends first (a snapshot, or the
//! changes it missed), then every event of its env as the hub sends it, until the
//! client goes, falls too far behind, its key is revoked or the server stops.

use std::collections::VecDeque;
use std::sync::Arc;
use std::time::Duration;

use axum::body::{Body, Bytes};
use axum::extract::State;
use axum::http::{HeaderMap, HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};
use tokio::sync::broadcast::error::RecvError;
use vexil_app::Client;

use crate::api::error::ApiError;
use crate::api::json::ApiQuery;
use crate::sdk::auth::ClientCaller;
use crate::sdk::event::{EventId, Frame};
use crate::sdk::hub::Resume;
use crate::sdk::{EnvQuery, check_env, loaded};
use crate::state::ServerState;

/// Which stream a subscriber reads: the same events, rendered for each.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Kind {
    /// `/sdk/v1/stream`: snapshots and row changes.
    Sdk,
    /// OFREP's `refetchEvaluation` notifications.
    Ofrep,
}

impl Kind {
    fn as_str(self) -> &'static str {
        match self {
            Kind::Sdk => "sdk",
            Kind::Ofrep => "ofrep",
        }
    }
}

/// The change stream (docs/api.md#client-keys): a `snapshot` event, then a `change` event per row
/// changed, keep-alive comments between; `Last-Event-ID` resumes.
#[utoipa::path(
    get,
    path = "/sdk/v1/stream",
    tag = "sdk",
    params(
        ("env" = Option<String>, Query, description = "The env the process belongs to; refused (422) unless it is the key's"),
        ("Last-Event-ID" = Option<String>, Header, description = "The id of the last event received: the changes since are replayed, or a fresh snapshot is sent when they cannot be"),
    ),
    responses(
        (status = 200, description = "`text/event-stream`: `snapshot` (data: the snapshot), then `change` events (data: `{change_id, key, row, audit_id}`; `id:` the change id), and `: keep-alive` comments at least every 15 s", content_type = "text/event-stream"),
        (status = 401, description = "`unauthenticated`: no client key, a revoked one, or an account's API token", body = crate::api::error::ErrorBody),
        (status = 422, description = "`invalid_request`: the env is not the key's, or `Last-Event-ID` is not an id this server sends", body = crate::api::error::ErrorBody),
        (status = 429, description = "`rate_limited`: too many requests for this key", body = crate::api::error::ErrorBody),
        (status = 503, description = "`unavailable`: the server has not read the database since it started", body = crate::api::error::ErrorBody),
    ),
    security(("client_key" = []))
)]
pub(crate) async fn stream(
    State(state): State<ServerState>,
    ClientCaller(client): ClientCaller,
    ApiQuery(query): ApiQuery<EnvQuery>,
    headers: HeaderMap,
) -> Result<Response, ApiError> {
    check_env(&client, query.env.as_deref())?;
    let resume = resume(&headers).map_err(ApiError::Invalid)?;
    subscribe(&state, &client, &resume, Kind::Sdk).await
}

/// Where `Last-Event-ID` says to resume, or why it says nothing this server sent.
pub(crate) fn resume(headers: &HeaderMap) -> Result<Resume, String> {
    let Some(value) = headers.get("last-event-id") else {
        return Ok(Resume::Snapshot);
    };
    let text = value.to_str().unwrap_or_default().trim();
    if text.is_empty() {
        return Ok(Resume::Snapshot);
    }
    EventId::parse(text).map(Resume::After).ok_or_else(|| {
        format!(
            "Last-Event-ID {} is not an event id this server sends (a change id such as 42, or 42.1 after a reload); reconnect without it for a fresh snapshot",
            vexil_core::message::one_line(&text.chars().take(64).collect::<String>())
        )
    })
}

/// A subscription of `client`'s env as a streaming response.
pub(crate) async fn subscribe(
    state: &ServerState,
    client: &Client,
    resume: &Resume,
    kind: Kind,
) -> Result<Response, ApiError> {
    let hub = state.hub.clone();
    loaded(&hub).await?;
    if *hub.closing().borrow() {
        // The server is stopping: a stream opened now would hold shutdown up.
        return Err(ApiError::Unavailable);
    }
    let subscription = hub
        .subscribe(client.env(), resume)
        .ok_or(ApiError::Internal("the env has no channel"))?;
    // An OFREP provider fetches everything when it connects: a fresh connection
    // needs no notification, only a resume that missed some.
    let fresh_ofrep = kind == Kind::Ofrep && matches!(resume, Resume::Snapshot);
    let first: VecDeque<Bytes> = subscription
        .first
        .iter()
        .filter(|_| !fresh_ofrep)
        .filter_map(|frame| frame.bytes(kind))
        .collect();
    // Marked unseen, so that the first wait looks at them: a close or a revocation
    // that happened before this subscription began ends it too.
    let mut closing = hub.closing();
    closing.mark_changed();
    let mut revoked = hub.revoked();
    revoked.mark_changed();
    let stream = Subscriber {
        first,
        events: subscription.events,
        closing,
        revoked,
        key_id: client.key_id(),
        kind,
        _gauge: Gauge::new(kind),
    };
    let body = Body::from_stream(futures_util::stream::unfold(stream, Subscriber::next));
    let mut response = (StatusCode::OK, body).into_response();
    let headers = response.headers_mut();
    headers.insert(
        header::CONTENT_TYPE,
        HeaderValue::from_static("text/event-stream"),
    );
    headers.insert(header::CACHE_CONTROL, HeaderValue::from_static("no-store"));
    // Tells nginx not to buffer the stream.
    headers.insert("x-accel-buffering", HeaderValue::from_static("no"));
    Ok(response)
}

impl Frame {
    fn bytes(&self, kind: Kind) -> Option<Bytes> {
        match kind {
            Kind::Sdk => self.sdk.clone(),
            Kind::Ofrep => self.ofrep.clone(),
        }
    }
}

/// One open stream.
struct Subscriber {
    first: VecDeque<Bytes>,
    events: tokio::sync::broadcast::Receiver<Arc<Frame>>,
    closing: tokio::sync::watch::Receiver<bool>,
    revoked: tokio::sync::watch::Receiver<Arc<std::collections::BTreeSet<i64>>>,
    key_id: i64,
    kind: Kind,
    _gauge: Gauge,
}

impl Subscriber {
    /// The next bytes to send, or the end of the stream.
    async fn next(mut self) -> Option<(Result<Bytes, std::io::Error>, Subscriber)> {
        if let Some(bytes) = self.first.pop_front() {
            return Some((Ok(bytes), self));
        }
        loop {
            tokio::select! {
                biased;
                changed = self.closing.changed() => {
                    if changed.is_err() || *self.closing.borrow() {
                        return None;
                    }
                }
                changed = self.revoked.changed() => {
                    if changed.is_err() {
                        return None;
                    }
                    if self.revoked.borrow().contains(&self.key_id) {
                        tracing::info!(key = self.key_id, "ending a stream: its client key was revoked");
                        dropped("revoked");
                        return None;
                    }
                }
                event = self.events.recv() => match event {
                    Ok(frame) => {
                        if let Some(bytes) = frame.bytes(self.kind) {
                            return Some((Ok(bytes), self));
                        }
                    }
                    Err(RecvError::Lagged(missed)) => {
                        tracing::warn!(
                            key = self.key_id,
                            missed,
                            "dropping a subscriber that fell {missed} events behind; it reconnects and resumes or gets a fresh snapshot"
                        );
                        dropped("lagged");
                        return None;
                    }
                    Err(RecvError::Closed) => return None,
                },
            }
        }
    }
}

fn dropped(reason: &'static str) {
    metrics::counter!("vexil_sdk_subscribers_dropped_total", "reason" => reason).increment(1);
}

/// Counts open streams by kind while it lives.
struct Gauge(Kind);

impl Gauge {
    fn new(kind: Kind) -> Gauge {
        metrics::gauge!("vexil_sdk_subscribers", "stream" => kind.as_str()).increment(1.0);
        Gauge(kind)
    }
}

impl Drop for Gauge {
    fn drop(&mut self) {
        metrics::gauge!("vexil_sdk_subscribers", "stream" => self.0.as_str()).decrement(1.0);
    }
}

/// How long a request waits for the hub's first read of the database.
pub(crate) const FIRST_READ_WAIT: Duration = Duration::from_secs(5);
