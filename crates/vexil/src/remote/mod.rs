//! Remote mode: one task per `Flags` handle follows a `vexil serve` (`VEXIL_URL`, with a
//! client key) instead of the database, and reports the process over HTTP. The server
//! sends rows and declarations (`vexil_core::sdk`), never resolved values, so the
//! resolution is the database mode's (`Shared::publish`): only where the rows come
//! from differs. See `docs/api.md` (client keys and `/sdk/v1`).
//!
//! - The **stream** (`GET /sdk/v1/stream`) sends a snapshot, then each changed row;
//!   `Last-Event-ID` resumes it after a cut, and the server sends a fresh snapshot when
//!   it cannot replay the gap.
//! - Every **TTL** the snapshot is read again (`GET /sdk/v1/snapshot`, `If-None-Match`:
//!   usually a 304), so a lost event costs at most one TTL.
//! - When the **server stops answering**, the last values keep serving, `health()`
//!   says so, and the stream is opened again with a capped, jittered backoff.
//! - Every **heartbeat** (and soon after a change is applied) the process reports
//!   itself (`POST /sdk/v1/report`), which makes it a live instance for every fleet
//!   tool of the server.

mod sse;

use std::sync::Arc;
use std::time::{Duration, SystemTime};

use secrecy::{ExposeSecret, SecretString};
use tokio::sync::{Notify, oneshot};
use tokio::time::{Instant, sleep_until};
use vexil_core::sdk::{Change, Report, Snapshot};
use vexil_core::reported::MASTER_KEY;
use vexil_core::{FlagDecl, FlagKey, FlagSet, VarState};

use crate::error::Error;
use crate::flags::Shared;
use crate::instance::{self, Identity};
use crate::link::{Link, RECEIPT_DELAY, Timing, backoff};
use crate::snapshot::Origin;

/// A stream that sends nothing for this long (three of the server's 15 s
/// keep-alives) is taken for dead and opened again.
const STREAM_IDLE: Duration = Duration::from_secs(45);
/// A TCP connection not made in this long has failed.
const CONNECT_TIMEOUT: Duration = Duration::from_secs(5);
/// A snapshot or a report not answered in this long has failed.
const REQUEST_TIMEOUT: Duration = Duration::from_secs(10);
/// The longest `Retry-After` obeyed: a server asking for more is asked again sooner.
const MAX_RETRY_AFTER: Duration = Duration::from_secs(60);

/// The server this handle follows, and how to reach it.
#[derive(Clone)]
pub(crate) struct Client {
    http: reqwest::Client,
    /// `VEXIL_URL` without a trailing `/`.
    base: Arc<str>,
    key: SecretString,
}

impl std::fmt::Debug for Client {
    /// Never the key.
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Client")
            .field("base", &self.base)
            .finish_non_exhaustive()
    }
}

/// `VEXIL_URL`: an `http` or `https` URL of a `vexil serve`, checked when the handle
/// starts. Only its scheme, host, port and path are used.
pub(crate) fn check_url(url: &str) -> Result<Arc<str>, Error> {
    let bad = |reason: &'static str| Error::BadServerUrl {
        url: url.to_owned(),
        reason,
    };
    let parsed = reqwest::Url::parse(url).map_err(|_| bad("it is not a URL"))?;
    if !matches!(parsed.scheme(), "http" | "https") {
        return Err(bad("it must start with http:// or https://"));
    }
    if parsed.host_str().is_none_or(str::is_empty) {
        return Err(bad("it names no host"));
    }
    if !parsed.username().is_empty() || parsed.password().is_some() {
        return Err(bad(
            "it must not hold credentials (the client key goes in VEXIL_CLIENT_KEY)",
        ));
    }
    if parsed.query().is_some() || parsed.fragment().is_some() {
        return Err(bad("it must not hold a query or a fragment"));
    }
    Ok(Arc::from(url.trim_end_matches('/')))
}

/// `VEXIL_CLIENT_KEY`: `vxc_` and 64 hexadecimal characters, as `vexil client-key
/// create` prints it. Never echoed in the error.
pub(crate) fn check_key(key: &str) -> Result<SecretString, Error> {
    let well_formed = key
        .strip_prefix("vxc_")
        .is_some_and(|hex| hex.len() == 64 && hex.bytes().all(|b| b.is_ascii_hexdigit()));
    if well_formed {
        Ok(SecretString::from(key.to_owned()))
    } else {
        Err(Error::BadClientKey)
    }
}

impl Client {
    pub(crate) fn new(
        base: Arc<str>,
        key: SecretString,
        user_agent: &str,
    ) -> Result<Client, Error> {
        let http = reqwest::Client::builder()
            .tls_backend_preconfigured(tls_config()?)
            .connect_timeout(CONNECT_TIMEOUT)
            .read_timeout(STREAM_IDLE)
            .tcp_nodelay(true)
            .user_agent(user_agent)
            .build()
            .map_err(|error| Error::HttpClient(error.to_string()))?;
        Ok(Client { http, base, key })
    }

    fn get(&self, path: &str) -> reqwest::RequestBuilder {
        self.http
            .get(format!("{}{path}", self.base))
            .bearer_auth(self.key.expose_secret())
    }
}

/// rustls with ring (the one crypto provider of vexil's graph) and the system's
/// trust store (`rustls-platform-verifier`: an operator's own CA works as for curl).
fn tls_config() -> Result<rustls::ClientConfig, Error> {
    use rustls_platform_verifier::BuilderVerifierExt;
    let provider = Arc::new(rustls::crypto::ring::default_provider());
    rustls::ClientConfig::builder_with_provider(provider)
        .with_safe_default_protocol_versions()
        .map_err(|error| Error::HttpClient(error.to_string()))?
        .with_platform_verifier()
        .map(|builder| builder.with_no_client_auth())
        .map_err(|error| Error::HttpClient(error.to_string()))
}

/// Why the server did not give what was asked.
#[derive(Debug, thiserror::Error)]
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

async fn refusal(response: reqwest::Response) -> Refusal {
    let status = response.status();
    if status == reqwest::StatusCode::UNAUTHORIZED {
        return Refusal::Key;
    }
    if status == reqwest::StatusCode::TOO_MANY_REQUESTS {
        let seconds = response
            .headers()
            .get(reqwest::header::RETRY_AFTER)
            .and_then(|value| value.to_str().ok())
            .and_then(|value| value.trim().parse::<u64>().ok())
            .unwrap_or(1);
        return Refusal::Wait(Duration::from_secs(seconds).min(MAX_RETRY_AFTER));
    }
    // The server's JSON error (`{"error", "message"}`), else the status alone.
    let message = response
        .json::<serde_json::Value>()
        .await
        .ok()
        .and_then(|body| body["message"].as_str().map(str::to_owned))
        .unwrap_or_default();
    Refusal::Status {
        status: status.as_u16(),
        message,
    }
}

fn unreachable(error: &reqwest::Error) -> Refusal {
    Refusal::Unreachable(vexil_core::message::error_chain(error))
}

/// What the task tells `start` about the first contact.
type FirstContact = oneshot::Sender<Result<(), Refusal>>;

/// The stream's state between events.
struct Stream {
    response: reqwest::Response,
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
    let mut next_full = Instant::now() + timing.ttl;
    loop {
        let outcome = tokio::select! {
            _ = &mut stop => return,
            () = sleep_until(open_at), if stream.is_none() => {
                match open(&client, &position).await {
                    Ok(opened) => {
                        stream = Some(opened);
                        Ok(())
                    }
                    Err(refused) => Err(refused),
                }
            }
            chunk = next_chunk(&mut stream) => match chunk {
                Ok(Some(bytes)) => {
                    let Some(open) = stream.as_mut() else { continue };
                    match open.parser.push(&bytes) {
                        Ok(items) => apply_items(&shared, &mut position, items).await,
                        Err(error) => Err(Refusal::Garbled(error.to_string())),
                    }
                }
                Ok(None) => Err(Refusal::Unreachable("the server closed the stream".to_owned())),
                Err(error) => Err(unreachable(&error)),
            },
            () = sleep_until(next_full) => {
                next_full = Instant::now() + timing.ttl;
                resync(&shared, &client, &mut position).await
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
                {
                    match sender.send(Err(refused)) {
                        Ok(()) => return,
                        Err(Err(refused)) => say_down(&shared, &refused, 1),
                        Err(Ok(())) => {}
                    }
                    open_at = Instant::now() + backoff(failures);
                    failures += 1;
                    continue;
                }
                let wait = match refused {
                    Refusal::Wait(wait) => wait,
                    _ => backoff(failures),
                };
                failures += 1;
                open_at = Instant::now() + wait;
            }
        }
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

async fn next_chunk(stream: &mut Option<Stream>) -> Result<Option<bytes::Bytes>, reqwest::Error> {
    match stream {
        Some(stream) => stream.response.chunk().await,
        None => std::future::pending().await,
    }
}

/// Opens the stream, resuming after the last event held.
async fn open(client: &Client, position: &Position) -> Result<Stream, Refusal> {
    let mut request = client
        .get("/sdk/v1/stream")
        .header(reqwest::header::ACCEPT, "text/event-stream");
    if let Some(id) = &position.last_event_id {
        request = request.header("last-event-id", id);
    }
    let response = request.send().await.map_err(|error| unreachable(&error))?;
    if !response.status().is_success() {
        return Err(refusal(response).await);
    }
    Ok(Stream {
        response,
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
                apply_snapshot(shared, &snapshot, true).await?;
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

/// A snapshot replaces every row and the server's declarations. One read for the TTL
/// (not `from_stream`) older than the rows already held changes nothing: the stream
/// got ahead of it.
async fn apply_snapshot(
    shared: &Shared,
    snapshot: &Snapshot,
    from_stream: bool,
) -> Result<(), Refusal> {
    if snapshot.env != shared.env.as_str() {
        return Err(Refusal::WrongEnv {
            key_env: snapshot.env.clone(),
            env: shared.env.to_string(),
        });
    }
    let mut rows = shared.rows.lock().await;
    let read_at = SystemTime::now();
    if !from_stream && rows.full_read_at.is_some() && snapshot.change_id < rows.last_change {
        return Ok(());
    }
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
/// here, and a description too long for a file is cut rather than refused: the
/// server's file was checked).
fn declarations(snapshot: &Snapshot) -> FlagSet {
    let decls = snapshot.flags.iter().filter_map(|(key, entry)| {
        let key = FlagKey::parse(key).ok()?;
        FlagDecl::new(key, entry.default, 0, entry.description.clone(), entry.risk).ok()
    });
    FlagSet::from_decls(decls).unwrap_or_default()
}

async fn apply_change(shared: &Shared, change: &Change) {
    metrics::counter!("vexil_flags_notifications_total").increment(1);
    let mut rows = shared.rows.lock().await;
    if change.change_id <= rows.last_change {
        // Replayed after a resume, and already in the snapshot held.
        return;
    }
    rows.set(
        &change.key,
        change.row.map(|value| (value, change.audit_id)),
    );
    rows.last_change = change.change_id;
    let origin = shared.snapshot.load().origin;
    shared.publish(&rows, origin);
}

/// The TTL's full read: the snapshot, unless it has not changed since the last.
async fn resync(shared: &Shared, client: &Client, position: &mut Position) -> Result<(), Refusal> {
    metrics::counter!("vexil_flags_refreshes_total", "kind" => "full").increment(1);
    let mut request = client.get("/sdk/v1/snapshot").timeout(REQUEST_TIMEOUT);
    if let Some(etag) = &position.etag {
        request = request.header(reqwest::header::IF_NONE_MATCH, etag);
    }
    let response = request.send().await.map_err(|error| unreachable(&error))?;
    if response.status() == reqwest::StatusCode::NOT_MODIFIED {
        let mut rows = shared.rows.lock().await;
        let read_at = SystemTime::now();
        rows.full_read_at = Some(read_at);
        let origin = Origin::Server { read_at };
        shared.publish(&rows, origin);
        shared.set_source_up(true, origin);
        return Ok(());
    }
    if !response.status().is_success() {
        return Err(refusal(response).await);
    }
    position.etag = response
        .headers()
        .get(reqwest::header::ETAG)
        .and_then(|value| value.to_str().ok())
        .map(str::to_owned);
    let snapshot: Snapshot = response
        .json()
        .await
        .map_err(|error| Refusal::Garbled(format!("the snapshot: {error}")))?;
    apply_snapshot(shared, &snapshot, false).await
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
        next = Instant::now() + heartbeat;
        if shared.rows.lock().await.full_read_at.is_none() {
            // Nothing the server would recognise yet: its declarations decide which
            // variables a report may name.
            continue;
        }
        let report = report(&identity, &shared).await;
        let sent = client
            .http
            .post(format!("{}/sdk/v1/report", client.base))
            .bearer_auth(client.key.expose_secret())
            .timeout(REQUEST_TIMEOUT)
            .json(&report)
            .send()
            .await;
        match sent {
            Ok(response) if response.status().is_success() => {
                refused_said = false;
                shared.set_reported(SystemTime::now());
            }
            Ok(response) => {
                let refused = refusal(response).await;
                // A refusal that is not a network blip (422: the server names the
                // field at fault) is said once, not every heartbeat.
                if !std::mem::replace(&mut refused_said, true) {
                    tracing::warn!(error = %refused, "the vexil server did not record this process's report");
                }
            }
            Err(error) => {
                tracing::debug!(error = %unreachable(&error), "cannot report this process");
            }
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
