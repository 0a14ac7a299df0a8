//! OFREP's routes: one flag, every flag (with `ETag` and the event stream it
//! advertises), and the event stream itself.
//!
//! A request is a key check, a look at the body's shape (`context`, if present, must
//! be an object: vexil has no targeting, so nothing in it changes an answer), and a
//! map lookup in what the hub rendered for the key's env.

use std::collections::HashMap;
use std::fmt;
use std::time::Duration;

use axum::body::{Body, Bytes};
use axum::extract::{FromRequestParts, Path, RawQuery, Request, State};
use axum::http::request::Parts;
use axum::http::{HeaderMap, HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};
use serde::Deserialize;
use serde::de::{IgnoredAny, MapAccess, Visitor};
use vexil_app::Client;

use crate::ofrep::error::OfrepError;
use crate::ofrep::matches;
use crate::sdk::auth::{authenticate, authenticate_events_token};
use crate::sdk::hub::Published;
use crate::sdk::stream::{self, Kind};
use crate::state::ServerState;

/// How long a bulk request triggered by a notification this server has not seen yet
/// (another server was quicker) waits for it.
const CATCH_UP_WAIT: Duration = Duration::from_secs(1);

/// How long an idle provider keeps the event stream open (OFREP's default).
const INACTIVITY_DELAY_SEC: u32 = 120;

/// The client an OFREP request acts for; refusals in OFREP's shape.
pub(crate) struct OfrepClient(std::sync::Arc<Client>);

impl FromRequestParts<ServerState> for OfrepClient {
    type Rejection = Response;

    async fn from_request_parts(parts: &mut Parts, state: &ServerState) -> Result<Self, Response> {
        authenticate(parts, state)
            .await
            .map(OfrepClient)
            .map_err(|refused| OfrepError::from(refused).respond(None))
    }
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
    OfrepClient(client): OfrepClient,
    Path(key): Path<String>,
    body: Bytes,
) -> Response {
    if let Err(error) = evaluation_request(&body) {
        return error.respond(Some(&key));
    }
    let published = match published(&state, &client).await {
        Ok(published) => published,
        Err(error) => return error.respond(Some(&key)),
    };
    match published.evaluations.single(&key) {
        Some(answer) => json(answer.clone()),
        None => OfrepError::NotFound.respond(Some(&key)),
    }
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
pub(crate) async fn bulk(
    State(state): State<ServerState>,
    OfrepClient(client): OfrepClient,
    RawQuery(query): RawQuery,
    headers: HeaderMap,
    body: Bytes,
) -> Response {
    match bulk_answer(&state, &client, query.as_deref(), &headers, &body).await {
        Ok(response) => response,
        Err(error) => error.respond(None),
    }
}

async fn bulk_answer(
    state: &ServerState,
    client: &Client,
    query: Option<&str>,
    headers: &HeaderMap,
    body: &[u8],
) -> Result<Response, OfrepError> {
    evaluation_request(body)?;
    let mut published = published(state, client).await?;
    let params: HashMap<String, String> = query
        .and_then(|query| serde_urlencoded::from_str(query).ok())
        .unwrap_or_default();
    let notified = params
        .get("flagConfigEtag")
        .or_else(|| params.get("sseEtag"));
    let current = |published: &Published| bare(published.evaluations.etag()).to_owned();
    match notified.map(|etag| bare(etag)) {
        Some(notified) if notified != current(&published) => {
            // A notification of a config this server has not read yet (another server
            // was quicker): wait for it briefly. Either way the answer is in full,
            // never a 304: the caller's `If-None-Match` names what it had before.
            published = state
                .hub
                .wait_for_etag(client.env(), notified, CATCH_UP_WAIT)
                .await
                .unwrap_or(published);
        }
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
        _ => authenticate(&parts, &state).await,
    };
    let client = match client {
        Ok(client) => client,
        Err(refused) => return OfrepError::from(refused).respond(None),
    };
    let resume = match stream::resume(&parts.headers) {
        Ok(resume) => resume,
        Err(why) => return OfrepError::Parse(why).respond(None),
    };
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
