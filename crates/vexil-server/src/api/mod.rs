//! The JSON API under `/api/v1` (docs/api.md), its OpenAPI 3.1 document at
//! `/api/openapi.json` and Swagger UI at `/api/docs`.
//!
//! Every request is authenticated with `Authorization: Bearer <token>` (`Caller`),
//! checked against the role matrix by the use case it calls (`App::authorize`,
//! `Actor::may`) before anything is read or written, limited per client address (`ApiConfig::requests_per_second`), and
//! answered with JSON, errors included (`ApiError`, one table of codes).
//!
//! # Layout
//!
//! - `error.rs`: `CODES` and `ApiError`, mapped once to status and body.
//! - `auth.rs`: `Caller` (the Bearer token's account) and `TokenCache`.
//! - `json.rs`: extractors whose rejections speak the API's error shape.
//! - `flags.rs`: list, one flag, flip.
//! - `promotions.rs`: mark, list, show, approve, promote, reject; `PromotionView`.
//! - `audit.rs`: the audit log, a page at a time.
//! - `client_keys.rs`: list, create and revoke the keys applications use.
//! - `me.rs`: the token's account.
//!
//! `json_errors` gives the framework's own 404, 405 and 413 under `/api/` the API's
//! shape.

mod audit;
pub(crate) mod auth;
mod client_keys;
pub(crate) mod error;
mod flags;
pub(crate) mod json;
mod me;
mod promotions;

use std::net::IpAddr;
use std::sync::Arc;
use std::time::Duration;

use axum::Router;
use axum::extract::Request;
use axum::http::StatusCode;
use axum::middleware::Next;
use axum::response::{IntoResponse, Response};
use governor::middleware::NoOpMiddleware;
use tower_governor::GovernorLayer;
use tower_governor::governor::GovernorConfigBuilder;
use utoipa::OpenApi;
use utoipa::openapi::security::{HttpAuthScheme, HttpBuilder, SecurityScheme};

use crate::api::error::ApiError;
use crate::routes::{self, Entry, Route, Surface};
use crate::state::ServerState;

pub use client_keys::ClientKeyView;
pub use error::CODES;
pub use promotions::{PromotionView, StepResponse};

/// The API's routes.
pub(crate) fn routes() -> Vec<Entry> {
    use routes::{get, post};
    let a = Surface::Api;
    vec![
        get(a, "/api/v1/flags", flags::list),
        get(a, "/api/v1/flags/{key}", flags::show),
        post(a, "/api/v1/flags/{key}/flip", flags::flip),
        post(a, "/api/v1/flags/{key}/promotions", promotions::mark),
        get(a, "/api/v1/promotions", promotions::list),
        get(a, "/api/v1/promotions/{id}", promotions::show),
        post(a, "/api/v1/promotions/{id}/approve", promotions::approve),
        post(a, "/api/v1/promotions/{id}/promote", promotions::promote),
        post(a, "/api/v1/promotions/{id}/reject", promotions::reject),
        get(a, "/api/v1/audit", audit::list),
        get(a, "/api/v1/me", me::show),
        get(a, "/api/v1/client-keys", client_keys::list),
        post(a, "/api/v1/client-keys", client_keys::create),
        post(a, "/api/v1/client-keys/{id}/revoke", client_keys::revoke),
        get(Surface::Docs, "/api/openapi.json", openapi_json),
    ]
}

/// Swagger UI's routes, served by utoipa-swagger-ui's own router (listed here so
/// that the route table names them).
pub(crate) fn docs_routes() -> Vec<Route> {
    ["/api/docs", "/api/docs/", "/api/docs/{*rest}"]
        .into_iter()
        .map(|path| Route {
            method: "GET",
            path,
            surface: Surface::Docs,
        })
        .collect()
}

/// The API's routes behind the per-address limit, and the docs.
pub(crate) fn router(state: &ServerState) -> Router<ServerState> {
    let mut api = routes::mount(routes());
    if let Some(layer) = rate_limit(state) {
        api = api.layer(layer);
    }
    // No validator badge: it would call validator.swagger.io, which the CSP (rightly)
    // blocks and an offline install cannot reach.
    let swagger = utoipa_swagger_ui::SwaggerUi::new("/api/docs")
        .config(utoipa_swagger_ui::Config::from("/api/openapi.json").validator_url("none"));
    api.merge(swagger)
}

type Limiter = GovernorLayer<ClientAddress, NoOpMiddleware, axum::body::Body>;

/// The TCP peer's address, an IPv6 peer by its /64 (one host can hold a whole /64
/// and would otherwise get a fresh allowance per address). Behind a reverse proxy
/// every client shares the proxy's address: keep the proxy's own limits, or set the
/// limit to 0 and let the proxy do it.
#[derive(Debug, Clone, Copy)]
pub(crate) struct ClientAddress;

impl tower_governor::key_extractor::KeyExtractor for ClientAddress {
    type Key = IpAddr;

    fn extract<T>(
        &self,
        request: &axum::http::Request<T>,
    ) -> Result<IpAddr, tower_governor::GovernorError> {
        let peer = request
            .extensions()
            .get::<axum::extract::ConnectInfo<std::net::SocketAddr>>()
            .map(|info| info.0.ip())
            .ok_or(tower_governor::GovernorError::UnableToExtractKey)?;
        Ok(address_key(peer))
    }
}

/// An address as the limiter counts it (an IPv6 client by its /64).
pub(crate) fn address_key(peer: IpAddr) -> IpAddr {
    vexil_core::client_network::client_network(peer)
}

/// The per-address limit as a layer, and its limiter kept in the state for
/// housekeeping; `None` when the limit is off (`requests_per_second` 0).
fn rate_limit(state: &ServerState) -> Option<Limiter> {
    let per_second = state.api.requests_per_second;
    if per_second == 0 {
        return None;
    }
    // A burst of one second's worth, then one request every 1/n s (tower_governor's
    // `per_second(n)` means one every n seconds, not n a second).
    let config = GovernorConfigBuilder::default()
        .key_extractor(ClientAddress)
        .period(Duration::from_secs(1) / per_second)
        .burst_size(per_second)
        .finish()?;
    let config = Arc::new(config);
    state.api_limiter.set(config.limiter().clone()).ok();
    Some(GovernorLayer::new(config).error_handler(|error| {
        use tower_governor::GovernorError;
        let wait = match error {
            GovernorError::TooManyRequests { wait_time, .. } => Duration::from_secs(wait_time),
            // No peer address to key on (a router served without `serve`): a bug of
            // the embedding, not the caller's doing.
            other => {
                tracing::error!(error = ?other, "the API's rate limiter could not key the request");
                return ApiError::Internal("the rate limiter has no client address")
                    .into_response();
            }
        };
        ApiError::RateLimited(wait).into_response()
    }))
}

/// The OpenAPI 3.1 document: every API route and probe, generated from the handlers.
#[utoipa::path(
    get,
    path = "/api/openapi.json",
    tag = "docs",
    responses((status = 200, description = "This document", content_type = "application/json"))
)]
async fn openapi_json() -> impl IntoResponse {
    axum::Json(ApiDoc::openapi())
}

#[derive(OpenApi)]
#[openapi(
    info(
        title = "vexil",
        description = "Feature flags for staging and prod: read them, flip them (audited), promote them from staging to prod, read the audit log. \
                       Authenticate with `Authorization: Bearer <token>` from `vexil token create NAME`; \
                       the account's role applies as in the console (docs/roles.md). Every error is \
                       `{\"error\": \"<code>\", \"message\": \"...\"}`; the codes are listed in `docs/api.md`.",
        license(name = "Apache-2.0")
    ),
    paths(
        flags::list,
        flags::show,
        flags::flip,
        promotions::mark,
        promotions::list,
        promotions::show,
        promotions::approve,
        promotions::promote,
        promotions::reject,
        audit::list,
        me::show,
        client_keys::list,
        client_keys::create,
        client_keys::revoke,
        crate::sdk::snapshot::show,
        crate::sdk::stream::stream,
        crate::sdk::report::submit,
        crate::ofrep::evaluate::single,
        crate::ofrep::evaluate::bulk,
        crate::ofrep::evaluate::events,
        openapi_json,
        crate::health::healthz,
        crate::health::readyz,
        crate::metrics::render,
    ),
    components(schemas(error::ErrorBody, error::CurrentValue, ClientKeyView)),
    modifiers(&BearerScheme, &ErrorCodes),
    tags(
        (name = "flags", description = "Flags and flips"),
        (name = "promotions", description = "Staging → prod promotions: mark, soak, approve, promote"),
        (name = "audit", description = "The audit log"),
        (name = "accounts", description = "The calling account"),
        (name = "client keys", description = "The keys applications follow the server with (superadmin)"),
        (name = "sdk", description = "The evaluation plane for applications, with a client key: snapshot, change stream, reports"),
        (name = "ofrep", description = "The OpenFeature Remote Evaluation Protocol v1, with a client key (docs/ofrep.md)"),
        (name = "probes", description = "Health and metrics, no account needed"),
        (name = "docs", description = "This document"),
    )
)]
pub struct ApiDoc;

struct BearerScheme;

impl utoipa::Modify for BearerScheme {
    fn modify(&self, openapi: &mut utoipa::openapi::OpenApi) {
        let components = openapi.components.get_or_insert_with(Default::default);
        components.add_security_scheme(
            "bearer",
            SecurityScheme::Http(
                HttpBuilder::new()
                    .scheme(HttpAuthScheme::Bearer)
                    .description(Some(
                        "A token from `vexil token create NAME` (`vxl_` and 64 hex digits)",
                    ))
                    .build(),
            ),
        );
        components.add_security_scheme(
            "client_key",
            SecurityScheme::Http(
                HttpBuilder::new()
                    .scheme(HttpAuthScheme::Bearer)
                    .description(Some(
                        "A client key from `vexil client-key create --env ENV --app NAME` (`vxc_` and 64 hex digits): reads one env's flags and reports its processes, nothing else",
                    ))
                    .build(),
            ),
        );
    }
}

/// `ErrorBody.error` as the enum of `CODES`, each with its status and meaning, so the
/// document lists every code the API answers with.
struct ErrorCodes;

impl utoipa::Modify for ErrorCodes {
    fn modify(&self, openapi: &mut utoipa::openapi::OpenApi) {
        use utoipa::openapi::RefOr;
        use utoipa::openapi::schema::{ObjectBuilder, Schema, Type};
        let Some(components) = openapi.components.as_mut() else {
            return;
        };
        let Some(RefOr::T(Schema::Object(body))) = components.schemas.get_mut("ErrorBody") else {
            return;
        };
        let table: String = CODES
            .iter()
            .map(|(code, status, meaning)| format!("- `{code}` ({}): {meaning}\n", status.as_u16()))
            .collect();
        let codes = ObjectBuilder::new()
            .schema_type(Type::String)
            .enum_values(Some(CODES.iter().map(|(code, _, _)| *code)))
            .description(Some(format!("A stable error code:\n{table}")))
            .build();
        body.properties.insert("error".to_owned(), codes.into());
    }
}

/// Under `/api/` and `/sdk/`, the answers no handler gives (no route, wrong method, body over the
/// limit) in the API's JSON shape rather than as console pages or plain text.
pub(crate) async fn json_errors(request: Request, next: Next) -> Response {
    let path = request.uri().path();
    let json = path.starts_with("/api/") || path.starts_with("/sdk/");
    if !json || path.starts_with("/api/docs") {
        return next.run(request).await;
    }
    let path = path.to_owned();
    let response = next.run(request).await;
    let is_json = response
        .headers()
        .get(axum::http::header::CONTENT_TYPE)
        .is_some_and(|value| value.as_bytes().starts_with(b"application/json"));
    if is_json {
        return response;
    }
    let mut answer = match response.status() {
        StatusCode::NOT_FOUND => ApiError::NoRoute(vexil_core::message::one_line(&path)),
        StatusCode::METHOD_NOT_ALLOWED => ApiError::MethodNotAllowed,
        StatusCode::PAYLOAD_TOO_LARGE => ApiError::TooLarge,
        // A handler that panicked (`CatchPanicLayer` answered plain text).
        StatusCode::INTERNAL_SERVER_ERROR => ApiError::Internal("the request failed"),
        _ => return response,
    }
    .into_response();
    // A 405 says which methods the route takes (RFC 9110).
    if let Some(allow) = response.headers().get(axum::http::header::ALLOW) {
        answer
            .headers_mut()
            .insert(axum::http::header::ALLOW, allow.clone());
    }
    answer
}

#[cfg(test)]
mod tests {
    use std::net::IpAddr;

    use super::address_key;

    #[test]
    fn an_ipv6_client_is_counted_by_its_64() {
        let key = |text: &str| address_key(text.parse::<IpAddr>().unwrap()).to_string();
        assert_eq!(key("2001:db8:1:2:3:4:5:6"), "2001:db8:1:2::");
        assert_eq!(key("2001:db8:1:2:ffff::1"), "2001:db8:1:2::");
        assert_ne!(key("2001:db8:1:3::1"), key("2001:db8:1:2::1"));
        assert_eq!(key("::ffff:192.0.2.7"), "192.0.2.7");
        assert_eq!(key("192.0.2.7"), "192.0.2.7");
    }
}
