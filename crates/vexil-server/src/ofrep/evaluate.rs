//! OFREP's routes: one flag, every flag (with `ETag` and the event stream it
//! advertises), and the event stream itself.
//!
//! A request is a key check, a look at the body's shape (`context`, if present, must
//! be an object: vexil has no targeting, so nothing in it changes an answer), and a
//! map lookup in what the hub rendered for the key's env.
//!
//! `answer` is the one evaluation code path: the routes call it, and `serve.rs` calls
//! it straight from the accept loop (`direct`, `answer_directly`) for speed. A bulk
//! request's `If-None-Match` gets a 304 only for a state this server has read. It adds
//! OFREP's CORS and the security headers, and counts the request.

use std::collections::HashMap;
use std::fmt;
use std::time::Duration;

use axum::body::{Body, Bytes};
use axum::extract::{Path, Request, State};
use axum::http::{HeaderMap, HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};
use serde::Deserialize;
use serde::de::{IgnoredAny, MapAccess, Visitor};
use vexil_app::Client;

use crate::ofrep::error::OfrepError;
use crate::ofrep::matches;
use crate::sdk::auth::{authenticate, authenticate_events_token};
use crate::sdk::event::Published;
use crate::sdk::hub::Resume;
use crate::sdk::stream::{self, Kind};
use crate::state::ServerState;

/// How long a bulk request triggered by a notification this server has not seen yet
/// (another server was quicker) waits for it.
const CATCH_UP_WAIT: Duration = Duration::from_secs(1);

/// How long an idle provider keeps the event stream open (OFREP's default).
const INACTIVITY_DELAY_SEC: u32 = 120;

/// What an evaluation request asks for.
#[derive(Debug, Clone, Copy)]
pub(crate) enum Asked<'a> {
    /// One flag, by key (`/ofrep/v1/evaluate/flags/{key}`).
    One(&'a str),
    /// Every flag (`/ofrep/v1/evaluate/flags`).
    All,
}

/// The answer to an evaluation request, whichever way it came: through the router, or
/// straight from the accept loop (`serve.rs`), which takes the evaluation routes past
/// the router for speed. Everything an answer carries is added here, so both ways
/// answer alike: OFREP's CORS headers, the security headers every response gets, and
/// the request counted (`metrics::count_hot`).
pub(crate) async fn answer(
    state: &ServerState,
    headers: &HeaderMap,
    peer: Option<std::net::IpAddr>,
    query: Option<&str>,
    asked: Asked<'_>,
    body: &[u8],
) -> Response {
    let key = match asked {
        Asked::One(key) => Some(key),
        Asked::All => None,
    };
    let answered = async {
        let client = authenticate(headers, peer, state).await?;
        evaluation_request(body)?;
        match asked {
            Asked::One(key) => {
                let published = published(state, &client).await?;
                match published.evaluations.single(key) {
                    Some(answer) => Ok(json(answer.clone())),
                    None => Err(OfrepError::NotFound),
                }
            }
            Asked::All => bulk_answer(state, &client, query, headers).await,
        }
    };
    let answered = futures_util::FutureExt::catch_unwind(std::panic::AssertUnwindSafe(answered));
    let mut response = match answered.await {
        Ok(Ok(response)) => response,
        Ok(Err(error)) => error.respond(key),
        Err(_) => {
            tracing::error!("an OFREP evaluation panicked");
            OfrepError::Internal.respond(key)
        }
    };
    let headers = response.headers_mut();
    for (name, value) in crate::ofrep::CORS_HEADERS
        .into_iter()
        .chain(crate::serve::SECURITY_HEADERS)
    {
        headers.insert(name, HeaderValue::from_static(value));
    }
    let route = match asked {
        Asked::One(_) => "/ofrep/v1/evaluate/flags/{key}",
        Asked::All => "/ofrep/v1/evaluate/flags",
    };
    crate::metrics::count_hot("POST", route, response.status());
    response
}

/// What the accept loop asks of a request before it routes it: an OFREP evaluation
/// it may answer straight away (`answer_directly`), or `None` for the router. Only
/// the plain forms: a `POST` of one of the two paths, with a key that needs no
/// decoding; anything else (another method, `%` in the key) takes the router, which
/// answers it the same way or refuses it.
pub(crate) fn direct(request: &axum::http::Request<hyper::body::Incoming>) -> bool {
    if request.method() != axum::http::Method::POST {
        return false;
    }
    let path = request.uri().path();
    match path.strip_prefix("/ofrep/v1/evaluate/flags") {
        Some("") => true,
        Some(rest) => rest
            .strip_prefix('/')
            .is_some_and(|key| !key.is_empty() && !key.contains(['/', '%'])),
        None => false,
    }
}

/// Answers an evaluation request (one `direct` accepted) without the router: the
/// same `answer`, with the same body limit and a panic answered 500.
pub(crate) async fn answer_directly(
    state: &ServerState,
    request: axum::http::Request<hyper::body::Incoming>,
    peer: std::net::SocketAddr,
) -> Response {
    use http_body_util::BodyExt;

    let (parts, body) = request.into_parts();
    let asked = match parts.uri.path().strip_prefix("/ofrep/v1/evaluate/flags/") {
        Some(key) => Asked::One(key),
        None => Asked::All,
    };
    let limited = http_body_util::Limited::new(body, crate::serve::MAX_BODY_BYTES);
    let Ok(body) = limited
        .collect()
        .await
        .map(http_body_util::Collected::to_bytes)
    else {
        return unreadable(asked);
    };
    let peer = Some(crate::api::address_key(peer.ip()));
    answer(state, &parts.headers, peer, parts.uri.query(), asked, &body).await
}

/// Evaluates one boolean flag for the key's env: its DB row (`STATIC`), else the
/// flags file's default (`DEFAULT`).
#[utoipa::path(
    post,
    path = "/ofrep/v1/evaluate/flags/{key}",
    tag = "ofrep",
    params(("key" = String, Path, description = "The flag key")),
    request_body(content = serde_json::Value, description = "`{\"context\": {…}}`; vexil has no targeting, so the context changes nothing (it must be an object if sent)", content_type = "application/json"),
    responses(
        (status = 200, description = "`{key, value, reason: STATIC|DEFAULT, variant: on|off, metadata: {source, risk}}`", content_type = "application/json"),
        (status = 400, description = "`PARSE_ERROR` (not JSON) or `INVALID_CONTEXT` (`context` not an object)", content_type = "application/json"),
        (status = 401, description = "No client key, a revoked one, or an account's API token"),
        (status = 404, description = "`FLAG_NOT_FOUND`", content_type = "application/json"),
        (status = 429, description = "Too many requests for this key; `Retry-After` in seconds"),
        (status = 503, description = "The server cannot read the database yet"),
    ),
    security(("client_key" = []))
)]
pub(crate) async fn single(
    State(state): State<ServerState>,
    Path(key): Path<String>,
    request: Request,
) -> Response {
    routed(&state, request, Asked::One(&key)).await
}

/// Evaluates every flag of the key's env, with an `ETag`; advertises the event stream
/// (`eventStreams`, and `refreshConnections` under the draft's name).
#[utoipa::path(
    post,
    path = "/ofrep/v1/evaluate/flags",
    tag = "ofrep",
    params(
        ("If-None-Match" = Option<String>, Header, description = "The `ETag` of the evaluations held: 304 while current"),
        ("flagConfigEtag" = Option<String>, Query, description = "The `etag` of the `refetchEvaluation` notification that prompted this request (`sseEtag` in ADR 0008's draft): never answered 304 unless current"),
        ("flagConfigLastModified" = Option<String>, Query, description = "The notification's `lastModified` (`sseLastModified`); accepted, not needed"),
    ),
    request_body(content = serde_json::Value, description = "`{\"context\": {…}}`", content_type = "application/json"),
    responses(
        (status = 200, description = "`{flags: [...], metadata: {env}, eventStreams: [{type: sse, url|endpoint, inactivityDelaySec}], refreshConnections: [...]}`, with an `ETag`", content_type = "application/json"),
        (status = 304, description = "The evaluations held are current"),
        (status = 400, description = "`PARSE_ERROR` or `INVALID_CONTEXT`", content_type = "application/json"),
        (status = 401, description = "No client key, a revoked one, or an account's API token"),
        (status = 429, description = "Too many requests for this key; `Retry-After` in seconds"),
        (status = 503, description = "The server cannot read the database yet"),
    ),
    security(("client_key" = []))
)]
pub(crate) async fn bulk(State(state): State<ServerState>, request: Request) -> Response {
    routed(&state, request, Asked::All).await
}

/// `answer` for a request that came through the router.
async fn routed(state: &ServerState, request: Request, asked: Asked<'_>) -> Response {
    let (parts, body) = request.into_parts();
    let Ok(body) = axum::body::to_bytes(body, crate::serve::MAX_BODY_BYTES).await else {
        return unreadable(asked);
    };
    let peer = crate::sdk::auth::peer(&parts);
    answer(state, &parts.headers, peer, parts.uri.query(), asked, &body).await
}

/// A body over the limit, or one that could not be read.
fn unreadable(asked: Asked<'_>) -> Response {
    let key = match asked {
        Asked::One(key) => Some(key),
        Asked::All => None,
    };
    OfrepError::Parse("the body is over 64 KiB or unreadable".to_owned()).respond(key)
}

async fn bulk_answer(
    state: &ServerState,
    client: &Client,
    query: Option<&str>,
    headers: &HeaderMap,
) -> Result<Response, OfrepError> {
    let mut published = published(state, client).await?;
    let params: HashMap<String, String> = query
        .and_then(|query| serde_urlencoded::from_str(query).ok())
        .unwrap_or_default();
    let notified = params
        .get("flagConfigEtag")
        .or_else(|| params.get("sseEtag"));
    let current = |published: &Published| bare(published.evaluations.etag()).to_owned();
    match notified.map(|etag| bare(etag)) {
        // A notification of a config this server has not read yet (another server
        // was quicker): wait for it briefly; one it has read and moved past since
        // needs no wait. Either way the answer is in full, never a 304: the caller's
        // `If-None-Match` names what it had before.
        Some(notified)
            if notified != current(&published)
                && !state.hub.published_lately(client.env(), notified) =>
        {
            published = state
                .hub
                .wait_for_etag(client.env(), notified, CATCH_UP_WAIT)
                .await
                .unwrap_or(published);
        }
        Some(notified) if notified != current(&published) => {}
        _ if matches(headers, published.evaluations.etag()) => {
            let etag = etag_header(&published)?;
            return Ok((StatusCode::NOT_MODIFIED, [(header::ETAG, etag)]).into_response());
        }
        _ => {}
    }
    let stream = event_stream(state, client);
    let mut answer = Vec::with_capacity(published.evaluations.bulk_flags().len() + 512);
    answer.extend_from_slice(b"{\"flags\":");
    answer.extend_from_slice(published.evaluations.bulk_flags());
    answer.extend_from_slice(
        format!(
            ",\"metadata\":{{\"env\":\"{env}\"}},\"eventStreams\":[{stream}],\"refreshConnections\":[{stream}]}}",
            env = client.env(),
        )
        .as_bytes(),
    );
    let mut response = json(Bytes::from(answer));
    response
        .headers_mut()
        .insert(header::ETAG, etag_header(&published)?);
    Ok(response)
}

/// The event stream a bulk answer advertises (OFREP ADR 0008): an absolute URL when
/// the server knows its public address, else a path on the caller's origin. A
/// browser's `EventSource` sends no `Authorization` header, so the URL carries a
/// token that opens only this key's notifications (never a flag value); providers
/// are told to treat such URLs as secret.
fn event_stream(state: &ServerState, client: &Client) -> impl fmt::Display {
    let path = format!("/ofrep/v1/events?token={}", client.events_token());
    let target = match state.hub.config().public_url.as_deref() {
        Some(origin) => format!("\"url\":\"{}{path}\"", origin.trim_end_matches('/')),
        None => format!("\"endpoint\":{{\"requestUri\":\"{path}\"}}"),
    };
    format!("{{\"type\":\"sse\",{target},\"inactivityDelaySec\":{INACTIVITY_DELAY_SEC}}}")
}

/// `refetchEvaluation` notifications for the key's env: after every change, the bulk
/// answer's new `ETag`. Opened with the key (`Authorization`) or the token a bulk
/// answer advertises (`?token=`, for browsers). `Last-Event-ID` replays the
/// notifications missed, or sends one when they cannot be replayed.
#[utoipa::path(
    get,
    path = "/ofrep/v1/events",
    tag = "ofrep",
    params(
        ("token" = Option<String>, Query, description = "The token from a bulk answer's `eventStreams` (instead of `Authorization`)"),
        ("Last-Event-ID" = Option<String>, Header, description = "The last notification's id"),
    ),
    responses(
        (status = 200, description = "`text/event-stream`: `event: message`, `data: {\"type\": \"refetchEvaluation\", \"etag\", \"lastModified\"}`, `id:` the change id; `: keep-alive` comments", content_type = "text/event-stream"),
        (status = 401, description = "No key, a bad token, or a revoked key"),
        (status = 400, description = "`Last-Event-ID` is not an id this server sends"),
    ),
    security(("client_key" = []))
)]
pub(crate) async fn events(State(state): State<ServerState>, request: Request) -> Response {
    let (parts, _) = request.into_parts();
    let token = parts.uri.query().and_then(|query| {
        serde_urlencoded::from_str::<HashMap<String, String>>(query)
            .ok()?
            .remove("token")
    });
    let client = match (parts.headers.contains_key(header::AUTHORIZATION), token) {
        (false, Some(token)) => authenticate_events_token(&parts, &state, &token).await,
        _ => authenticate(&parts.headers, crate::sdk::auth::peer(&parts), &state).await,
    };
    let client = match client {
        Ok(client) => client,
        Err(refused) => return OfrepError::from(refused).respond(None),
    };
    // A browser's `EventSource` gives up for good on a refusal: an id this server
    // cannot read is answered with a notification to refetch instead.
    let resume = stream::resume(&parts.headers).unwrap_or(Resume::Lost);
    match stream::subscribe(&state, &client, &resume, Kind::Ofrep).await {
        Ok(response) => response,
        Err(_) => OfrepError::Unavailable.respond(None),
    }
}

/// The key's env as the hub holds it, waiting briefly for its first read.
async fn published(
    state: &ServerState,
    client: &Client,
) -> Result<std::sync::Arc<Published>, OfrepError> {
    if let Some(published) = state.hub.published(client.env()) {
        return Ok(published);
    }
    crate::sdk::loaded(&state.hub)
        .await
        .map_err(|_| OfrepError::Unavailable)?;
    state
        .hub
        .published(client.env())
        .ok_or(OfrepError::Unavailable)
}

/// An OFREP request body: empty, or a JSON object whose `context`, if present, is an
/// object.
fn evaluation_request(body: &[u8]) -> Result<(), OfrepError> {
    if body.iter().all(u8::is_ascii_whitespace) {
        return Ok(());
    }
    let request: EvaluationRequest = serde_json::from_slice(body).map_err(|error| {
        OfrepError::Parse(format!(
            "the body is not a JSON object like {{\"context\": {{…}}}}: {error}"
        ))
    })?;
    match request.context {
        Some(Shape::Object) | Some(Shape::Null) | None => Ok(()),
        Some(Shape::Other(what)) => Err(OfrepError::InvalidContext(format!(
            "`context` must be an object, not {what}"
        ))),
    }
}

#[derive(Deserialize)]
struct EvaluationRequest {
    #[serde(default)]
    context: Option<Shape>,
}

/// What a `context` is, read without keeping any of it.
enum Shape {
    Object,
    Null,
    Other(&'static str),
}

impl<'de> Deserialize<'de> for Shape {
    fn deserialize<D: serde::Deserializer<'de>>(deserializer: D) -> Result<Shape, D::Error> {
        deserializer.deserialize_any(ShapeVisitor)
    }
}

struct ShapeVisitor;

impl<'de> Visitor<'de> for ShapeVisitor {
    type Value = Shape;

    fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("a context")
    }

    fn visit_map<A: MapAccess<'de>>(self, mut map: A) -> Result<Shape, A::Error> {
        while map.next_entry::<IgnoredAny, IgnoredAny>()?.is_some() {}
        Ok(Shape::Object)
    }

    fn visit_seq<A: serde::de::SeqAccess<'de>>(self, mut seq: A) -> Result<Shape, A::Error> {
        while seq.next_element::<IgnoredAny>()?.is_some() {}
        Ok(Shape::Other("an array"))
    }

    fn visit_unit<E>(self) -> Result<Shape, E> {
        Ok(Shape::Null)
    }

    fn visit_bool<E>(self, _: bool) -> Result<Shape, E> {
        Ok(Shape::Other("a boolean"))
    }

    fn visit_i64<E>(self, _: i64) -> Result<Shape, E> {
        Ok(Shape::Other("a number"))
    }

    fn visit_u64<E>(self, _: u64) -> Result<Shape, E> {
        Ok(Shape::Other("a number"))
    }

    fn visit_f64<E>(self, _: f64) -> Result<Shape, E> {
        Ok(Shape::Other("a number"))
    }

    fn visit_str<E>(self, _: &str) -> Result<Shape, E> {
        Ok(Shape::Other("a string"))
    }
}

/// An ETag without its weak marker and quotes, for comparing what a notification
/// carried (sent quoted, perhaps unquoted by a client) with what is current.
fn bare(etag: &str) -> &str {
    let etag = etag.trim();
    let etag = etag.strip_prefix("W/").unwrap_or(etag);
    etag.trim_matches('"')
}

fn etag_header(published: &Published) -> Result<HeaderValue, OfrepError> {
    HeaderValue::from_str(published.evaluations.etag()).map_err(|_| OfrepError::Internal)
}

fn json(body: Bytes) -> Response {
    (
        [(
            header::CONTENT_TYPE,
            HeaderValue::from_static("application/json"),
        )],
        Body::from(body),
    )
        .into_response()
}
