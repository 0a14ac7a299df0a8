//! Remote mode: one task per `Flags` handle follows a `vexil serve` (`VEXIL_URL`, with a
//! client key) instead of the database, and reports the process over HTTP. The server
//! sends rows and declarations (`vexil_core::sdk`), never resolved values, so the
//! resolution is the database mode's (`Shared::publish`): only where the rows come
//! from differs. See `docs/api.md` (client keys and `/sdk/v1`).
//!
//! - The **stream** (`GET /sdk/v1/stream`) sends a snapshot, then each changed row;
//!   `Last-Event-ID` resumes it after a cut, and the server sends a fresh snapshot when
//!   it cannot replay the gap.
//! - Every **TTL** a fresh stream replaces the open one; its first event is a
//!   snapshot, so the full read arrives in the stream's own order, never beside it,
//!   and a lost event costs at most one TTL. Events are applied in the stream's order
//!   whatever their ids (PostgreSQL may commit ids out of order). 45 s without a byte,
//!   keep-alives included, and the stream is taken for dead.
//! - With `change_feed(false)` (a proxy that cuts long responses) there is no stream:
//!   `GET /sdk/v1/snapshot` every TTL instead (`If-None-Match`: usually a 304).
//! - When the **server stops answering**, the last values keep serving, `health()`
//!   says so, and the stream is opened again with a capped, jittered backoff.
//! - Every **heartbeat** (and soon after a change is applied) the process reports
//!   itself (`POST /sdk/v1/report`, from a second task), which makes it a live
//!   instance for every fleet tool of the server.
//! - A key the server refuses, or a key of another env, at first contact is
//!   `start`'s error; later, as any outage, the last values keep serving.

mod http;
mod sse;

pub(crate) use self::http::{Client, check_key, check_url};

use std::sync::Arc;
use std::time::{Duration, SystemTime};

use ::http::header::{ACCEPT, ETAG, IF_NONE_MATCH};
use ::http::{Method, StatusCode};
use http_body_util::BodyExt;
use tokio::sync::{Notify, oneshot};
use tokio::time::{Instant, sleep_until};
use vexil_core::reported::MASTER_KEY;
use vexil_core::sdk::{Change, Report, Snapshot};
use vexil_core::{FlagDecl, FlagKey, FlagSet, VarState};

use crate::error::Error;
use crate::flags::Shared;
use crate::instance::{self, Identity};
use crate::link::{Link, RECEIPT_DELAY, Timing, backoff};
use crate::snapshot::Origin;

/// A stream that sends nothing for this long (three of the server's 15 s
/// keep-alives) is taken for dead and opened again.
const STREAM_IDLE: Duration = Duration::from_secs(45);
/// How long to wait before asking again with a key the server refused.
const KEY_REFUSED_RETRY: Duration = Duration::from_secs(60);

/// Why the server did not give what was asked.
#[derive(Debug, Clone, thiserror::Error)]
pub(crate) enum Refusal {
    #[error("the server refused the client key (401): it is unknown, revoked, or not a client key")]
    Key,
    #[error("the server asks to wait {0:?} (429)")]
    Wait(Duration),
    #[error("the server answered {status}: {message}")]
    Status { status: u16, message: String },
    #[error("the server cannot be reached: {0}")]
    Unreachable(String),
    #[error("the server sent something that is not vexil's: {0}")]
    Garbled(String),
    #[error(
        "the client key reads env {key_env} but this process belongs to {env} (VEXIL_ENV): use a key of {env}"
    )]
    WrongEnv { key_env: String, env: String },
}

impl Refusal {
    /// The first contact's refusals that no wait will cure: `start` returns them.
    fn is_fatal(&self) -> bool {
        matches!(self, Refusal::Key | Refusal::WrongEnv { .. })
    }
}

/// What the task tells `start` about the first contact.
type FirstContact = oneshot::Sender<Result<(), Refusal>>;

/// The stream's state between events.
struct Stream {
    body: hyper::body::Incoming,
    parser: sse::Parser,
}

/// Where the stream stands: the id to resume from, and the snapshot's ETag.
#[derive(Default)]
struct Position {
    last_event_id: Option<String>,
    etag: Option<String>,
}

pub(crate) async fn run(
    shared: Arc<Shared>,
    client: Client,
    timing: Timing,
    identity: Identity,
    first: FirstContact,
    mut stop: oneshot::Receiver<()>,
) {
    let _ = shared.link.set(Link::Server(client.clone()));
    let reported = Arc::new(Notify::new());
    let reporter = tokio::spawn(report_loop(
        shared.clone(),
        client.clone(),
        timing.heartbeat,
        identity,
        reported.clone(),
    ));
    let _reporter = AbortOnDrop(reporter);
    let mut first = Some(first);
    let mut stream: Option<Stream> = None;
    let mut position = Position::default();
    let mut failures = 0usize;
    let mut open_at = Instant::now();
    // When the open stream is taken for dead: `STREAM_IDLE` after its last byte.
    let mut idle_at = Instant::now();
    // Without the stream (`change_feed(false)`: a proxy that breaks long responses),
    // the snapshot is read at once and every TTL.
    let mut next_full = match timing.feed {
        true => Instant::now() + timing.ttl,
        false => Instant::now(),
    };
    loop {
        let outcome = tokio::select! {
            _ = &mut stop => return,
            () = sleep_until(open_at), if timing.feed && stream.is_none() => {
                match open(&client, &mut position).await {
                    Ok(opened) => {
                        stream = Some(opened);
                        idle_at = Instant::now() + STREAM_IDLE;
                        Ok(())
                    }
                    Err(refused) => Err(refused),
                }
            }
            chunk = next_chunk(&mut stream) => match chunk {
                Ok(Some(bytes)) => {
                    idle_at = Instant::now() + STREAM_IDLE;
                    let Some(open) = stream.as_mut() else { continue };
                    match open.parser.push(&bytes) {
                        Ok(items) => {
                            let applied = apply_items(&shared, &mut position, items).await;
                            if applied.is_ok() {
                                resumed(&shared).await;
                            }
                            applied
                        }
                        Err(error) => Err(Refusal::Garbled(error.to_string())),
                    }
                }
                Ok(None) => Err(Refusal::Unreachable("the server closed the stream".to_owned())),
                Err(refused) => Err(refused),
            },
            () = sleep_until(idle_at), if stream.is_some() => Err(Refusal::Unreachable(format!(
                "the stream sent nothing, not even a keep-alive, for {STREAM_IDLE:?}"
            ))),
            () = sleep_until(next_full) => {
                next_full = Instant::now() + timing.ttl;
                metrics::counter!("vexil_flags_refreshes_total", "kind" => "full").increment(1);
                if !timing.feed {
                    match resync(&shared, &client, &mut position).await {
                        Err(refused) => {
                            // The TTL's read is the only way in: retry it on the backoff.
                            next_full = Instant::now() + backoff(failures);
                            Err(refused)
                        }
                        read => read,
                    }
                } else if stream.is_some() {
                    // The TTL's full read, in the stream's own order: a fresh stream,
                    // whose first event is a snapshot, replaces this one. (A snapshot
                    // read beside the stream could land after a change it predates.)
                    match open(&client, &mut Position::default()).await {
                        Ok(fresh) => {
                            stream = Some(fresh);
                            idle_at = Instant::now() + STREAM_IDLE;
                        }
                        Err(refused) => {
                            tracing::debug!(error = %refused, "the TTL's fresh stream failed; keeping the open one");
                        }
                    }
                    continue;
                } else {
                    // Reconnecting: the next open reads everything anyway.
                    continue;
                }
            }
        };
        if std::mem::take(&mut shared.rows.lock().await.receipts_changed) {
            reported.notify_one();
        }
        match outcome {
            Ok(()) => {
                if shared.health.borrow().source_up {
                    failures = 0;
                    if let Some(first) = first.take() {
                        let _ = first.send(Ok(()));
                    }
                }
            }
            Err(refused) => {
                metrics::counter!("vexil_flags_database_errors_total").increment(1);
                if stream.take().is_some() || failures == 0 {
                    say_down(&shared, &refused, failures);
                }
                // Refused at first contact, for good: `start` returns the error (if it
                // still waits; otherwise the handle keeps trying, as after a cut).
                if refused.is_fatal()
                    && let Some(sender) = first.take()
                    && sender.send(Err(refused.clone())).is_ok()
                {
                    return;
                }
                let wait = match refused {
                    Refusal::Wait(wait) => wait,
                    // Not a blip: asking again soon would only add to the bad keys
                    // the server counts for this address (a fleet behind one NAT).
                    Refusal::Key => KEY_REFUSED_RETRY,
                    _ => backoff(failures),
                };
                failures += 1;
                open_at = Instant::now() + wait;
            }
        }
    }
}

/// A resumed stream is live once it sends its first bytes (the events it replays,
/// or a keep-alive): the rows held are current again. A fresh one is live with its
/// snapshot (`apply_snapshot`).
async fn resumed(shared: &Shared) {
    if shared.health.borrow().source_up {
        return;
    }
    if shared.rows.lock().await.full_read_at.is_some() {
        let origin = shared.snapshot.load().origin;
        shared.set_source_up(true, origin);
    }
}

/// Logs the first failure of a run of them (the database mode's rule: said once),
/// and marks the source down.
fn say_down(shared: &Shared, refused: &Refusal, failures: usize) {
    let origin = shared.snapshot.load().origin;
    if failures == 0 {
        match origin {
            Origin::Fallback => tracing::error!(
                error = %refused,
                env = shared.env.as_str(),
                "cannot follow the vexil server; resolving from FLAG_* variables and YAML defaults until it answers"
            ),
            _ => tracing::debug!(error = %refused, "the stream from the vexil server ended"),
        }
    }
    if matches!(refused, Refusal::Key) {
        // Not a network blip: an operator revoked the key (or it never existed).
        tracing::error!(
            env = shared.env.as_str(),
            "the vexil server refuses this process's client key (VEXIL_CLIENT_KEY): it is unknown or revoked; serving the last values until a valid key is configured"
        );
    }
    shared.set_source_up(false, origin);
}

/// The stream's next bytes; `None` when the server ended it.
async fn next_chunk(stream: &mut Option<Stream>) -> Result<Option<bytes::Bytes>, Refusal> {
    let Some(stream) = stream else {
        return std::future::pending().await;
    };
    loop {
        // No timeout here: this future is made anew on every turn of the task's loop;
        // the idle deadline lives there.
        let frame = stream.body.frame().await;
        match frame {
            None => return Ok(None),
            Some(Err(error)) => return Err(Refusal::Unreachable(error.to_string())),
            Some(Ok(frame)) => {
                if let Ok(data) = frame.into_data() {
                    return Ok(Some(data));
                }
                // Trailers: nothing for us.
            }
        }
    }
}

/// Opens the stream, resuming after the last event held. A resumption the server
/// refuses (an id it cannot read) is dropped, so that the next attempt starts afresh.
async fn open(client: &Client, position: &mut Position) -> Result<Stream, Refusal> {
    let mut headers = vec![(ACCEPT, "text/event-stream")];
    if let Some(id) = &position.last_event_id {
        headers.push((
            ::http::HeaderName::from_static("last-event-id"),
            id.as_str(),
        ));
    }
    let sent = tokio::time::timeout(
        http::REQUEST_TIMEOUT,
        client.send(Method::GET, "/sdk/v1/stream", &headers, None),
    )
    .await
    .map_err(|_| Refusal::Unreachable("the stream was not answered in time".to_owned()))?;
    let response = match sent {
        Ok(response) => response,
        Err(
            refused @ Refusal::Status {
                status: 400..=499, ..
            },
        ) => {
            position.last_event_id = None;
            return Err(refused);
        }
        Err(refused) => return Err(refused),
    };
    let content_type = response
        .headers()
        .get(::http::header::CONTENT_TYPE)
        .and_then(|value| value.to_str().ok())
        .unwrap_or_default();
    if response.status() != StatusCode::OK || !content_type.starts_with("text/event-stream") {
        return Err(Refusal::Garbled(format!(
            "the stream answered {} with {content_type:?}, not an event stream",
            response.status()
        )));
    }
    Ok(Stream {
        body: response.into_body(),
        parser: sse::Parser::default(),
    })
}

/// Applies what the stream sent, in order.
async fn apply_items(
    shared: &Shared,
    position: &mut Position,
    items: Vec<sse::Item>,
) -> Result<(), Refusal> {
    for item in items {
        let sse::Item::Event(event) = item else {
            continue;
        };
        match event.name.as_str() {
            "snapshot" => {
                let snapshot: Snapshot = serde_json::from_str(&event.data)
                    .map_err(|error| Refusal::Garbled(format!("a snapshot event: {error}")))?;
                apply_snapshot(shared, &snapshot).await?;
            }
            "change" => {
                let change: Change = serde_json::from_str(&event.data)
                    .map_err(|error| Refusal::Garbled(format!("a change event: {error}")))?;
                apply_change(shared, &change).await;
            }
            // Events this version does not know: a newer server's, skipped.
            _ => {}
        }
        if event.id.is_some() {
            position.last_event_id = event.id;
        }
    }
    Ok(())
}

/// A snapshot replaces every row and the server's declarations.
async fn apply_snapshot(shared: &Shared, snapshot: &Snapshot) -> Result<(), Refusal> {
    if snapshot.env != shared.env.as_str() {
        return Err(Refusal::WrongEnv {
            key_env: snapshot.env.clone(),
            env: shared.env.to_string(),
        });
    }
    let mut rows = shared.rows.lock().await;
    let read_at = SystemTime::now();
    rows.declared = Some(Arc::new(declarations(snapshot)));
    rows.values.clear();
    let before = std::mem::take(&mut rows.receipts);
    for (key, entry) in &snapshot.flags {
        match (entry.row, before.get(key.as_str())) {
            // Held before: keep when it was first held.
            (Some(value), Some(held)) if Some(held.audit_id) == entry.audit_id => {
                rows.values.insert(Box::from(key.as_str()), value);
                rows.receipts.insert(Box::from(key.as_str()), *held);
            }
            (row, _) => rows.set(key, row.map(|value| (value, entry.audit_id))),
        }
    }
    rows.receipts_changed |= rows.receipts.len() != before.len();
    rows.last_change = snapshot.change_id;
    rows.master_switch_default = snapshot.master_switch_default;
    rows.full_read_at = Some(read_at);
    let origin = Origin::Server { read_at };
    shared.publish(&rows, origin);
    shared.set_source_up(true, origin);
    Ok(())
}

/// The server's declarations as this process holds them (a soak period means nothing
/// here). A declaration this version would refuse (a newer server's rules, say) is
/// left out rather than failing the snapshot.
fn declarations(snapshot: &Snapshot) -> FlagSet {
    let decls = snapshot.flags.iter().filter_map(|(key, entry)| {
        let key = FlagKey::parse(key).ok()?;
        FlagDecl::new(key, entry.default, 0, entry.description.clone(), entry.risk).ok()
    });
    FlagSet::from_decls(decls).unwrap_or_default()
}

async fn apply_change(shared: &Shared, change: &Change) {
    metrics::counter!("vexil_flags_notifications_total").increment(1);
    // Applied in the stream's order whatever its id: the server sends each row as it
    // is after the change, in the order it saw them, while ids (the database's
    // sequence) may commit out of order.
    let mut rows = shared.rows.lock().await;
    rows.set(
        &change.key,
        change.row.map(|value| (value, change.audit_id)),
    );
    rows.last_change = rows.last_change.max(change.change_id);
    let origin = shared.snapshot.load().origin;
    shared.publish(&rows, origin);
}

/// The TTL's full read: the snapshot, unless it has not changed since the last.
async fn resync(shared: &Shared, client: &Client, position: &mut Position) -> Result<(), Refusal> {
    let mut headers = Vec::new();
    if let Some(etag) = &position.etag {
        headers.push((IF_NONE_MATCH, etag.as_str()));
    }
    let response = tokio::time::timeout(
        http::REQUEST_TIMEOUT,
        client.send(Method::GET, "/sdk/v1/snapshot", &headers, None),
    )
    .await
    .map_err(|_| Refusal::Unreachable("the snapshot was not answered in time".to_owned()))??;
    if response.status() == StatusCode::NOT_MODIFIED {
        let mut rows = shared.rows.lock().await;
        let read_at = SystemTime::now();
        rows.full_read_at = Some(read_at);
        let origin = Origin::Server { read_at };
        shared.publish(&rows, origin);
        shared.set_source_up(true, origin);
        return Ok(());
    }
    let etag = response
        .headers()
        .get(ETAG)
        .and_then(|value| value.to_str().ok())
        .map(str::to_owned);
    let bytes = tokio::time::timeout(http::REQUEST_TIMEOUT, http::body(response))
        .await
        .map_err(|_| Refusal::Unreachable("the snapshot was not read in time".to_owned()))??;
    let snapshot: Snapshot = serde_json::from_slice(&bytes)
        .map_err(|error| Refusal::Garbled(format!("the snapshot: {error}")))?;
    apply_snapshot(shared, &snapshot).await?;
    // Only a snapshot applied may be answered 304 next time.
    position.etag = etag;
    Ok(())
}

/// `Flags::invalidate` in remote mode: the snapshot, now.
pub(crate) async fn read_snapshot(shared: &Shared, client: &Client) -> Result<(), Error> {
    let mut position = Position::default();
    resync(shared, client, &mut position)
        .await
        .map_err(Error::from)
}

/// Reports the process every heartbeat, and soon after a change is applied.
async fn report_loop(
    shared: Arc<Shared>,
    client: Client,
    heartbeat: Duration,
    identity: Identity,
    changed: Arc<Notify>,
) {
    let mut next = Instant::now() + RECEIPT_DELAY;
    let mut refused_said = false;
    loop {
        tokio::select! {
            () = sleep_until(next) => {}
            () = changed.notified() => {
                // Bursts of changes coalesce into one report.
                tokio::time::sleep(RECEIPT_DELAY).await;
            }
        }
        if shared.rows.lock().await.full_read_at.is_none() {
            // Nothing the server would recognise yet (its declarations decide which
            // variables a report may name): soon again.
            next = Instant::now() + RECEIPT_DELAY;
            continue;
        }
        next = Instant::now() + heartbeat;
        let report = report(&identity, &shared).await;
        let body = match serde_json::to_vec(&report) {
            Ok(body) => body,
            Err(error) => {
                tracing::warn!(%error, "cannot write this process's report");
                continue;
            }
        };
        let sent = tokio::time::timeout(
            http::REQUEST_TIMEOUT,
            client.send(Method::POST, "/sdk/v1/report", &[], Some(body)),
        )
        .await;
        match sent {
            Ok(Ok(_)) => {
                refused_said = false;
                shared.set_reported(SystemTime::now());
            }
            Ok(Err(refused @ (Refusal::Status { .. } | Refusal::Key))) => {
                // A refusal that is not a network blip (422: the server names the
                // field at fault) is said once, not every heartbeat.
                if !std::mem::replace(&mut refused_said, true) {
                    tracing::warn!(error = %refused, "the vexil server did not record this process's report");
                }
            }
            Ok(Err(refused)) => {
                tracing::debug!(error = %refused, "cannot report this process");
            }
            Err(_) => tracing::debug!("the report was not answered in time"),
        }
    }
}

/// This process's report: its variables parsed (never their values), for the flags
/// the server declares (it refuses others).
async fn report(identity: &Identity, shared: &Shared) -> Report {
    let rows = shared.rows.lock().await;
    let declared = rows
        .declared
        .clone()
        .unwrap_or_else(|| shared.flags.load_full());
    let mut vars = instance::env_layer(&declared, &shared.env_vars);
    let master_switch = vars
        .remove(MASTER_KEY)
        .unwrap_or_else(|| VarState::Unset.as_str().to_owned());
    // Undeclared variables go in a field of their own: a server checks `vars`
    // against the flags it declares.
    let undeclared = vars
        .extract_if(.., |name, _| name.starts_with("FLAG_"))
        .collect();
    let applied = rows
        .receipts
        .iter()
        .filter(|(key, _)| declared.get(key).is_some())
        .map(|(key, held)| (key.to_string(), *held))
        .collect();
    Report {
        instance: identity.id.clone(),
        env: Some(shared.env.to_string()),
        app: None,
        host: identity.host.clone(),
        pid: identity.pid,
        language: identity.language.clone(),
        version: identity.version.clone(),
        started_at: identity.started_at,
        master_switch,
        vars,
        undeclared,
        change_id: Some(rows.last_change),
        applied,
    }
}

/// Stops the reporter with the stream task.
struct AbortOnDrop(tokio::task::JoinHandle<()>);

impl Drop for AbortOnDrop {
    fn drop(&mut self) {
        self.0.abort();
    }
}
