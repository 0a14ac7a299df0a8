//! The JSON API under `/api/v1` (SPEC §10), its OpenAPI 3.1 document at
//! `/api/openapi.json` and Swagger UI at `/api/docs`.
//!
//! Every request is authenticated with `Authorization: Bearer <token>` (`Caller`),
//! checked against the role matrix with `vexil_core::authorize` before it reads
//! anything, limited per client address (`ApiConfig::requests_per_second`), and
//! answered with JSON, errors included (`ApiError`, one table of codes).
//!
//! # Layout
//!
//! - `error.rs`: `CODES` and `ApiError`, mapped once to status and body.
//! - `auth.rs`: `Caller` (the Bearer token's account) and `TokenCache`.
//! - `json.rs`: extractors whose rejections speak the API's error shape.
//! - `flags.rs`: list, one flag, flip.
//! - `audit.rs`: the audit log, a page at a time.
//! - `me.rs`: the token's account.

mod audit;
pub(crate) mod auth;
pub(crate) mod error;
mod flags;
mod json;
mod me;

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
use tower_governor::key_extractor::PeerIpKeyExtractor;
use utoipa::OpenApi;
use utoipa::openapi::security::{HttpAuthScheme, HttpBuilder, SecurityScheme};

use crate::api::error::ApiError;
use crate::routes::{self, Entry, Route, Surface};
use crate::state::ServerState;

pub use error::CODES;

/// The API's routes.
pub(crate) fn routes() -> Vec<Entry> {
    use routes::{get, post};
    let a = Surface::Api;
    vec![
        get(a, "/api/v1/flags", flags::list),
        get(a, "/api/v1/flags/{key}", flags::show),
        post(a, "/api/v1/flags/{key}/flip", flags::flip),
        get(a, "/api/v1/audit", audit::list),
        get(a, "/api/v1/me", me::show),
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
    let swagger = utoipa_swagger_ui::SwaggerUi::new("/api/docs")
        .config(utoipa_swagger_ui::Config::from("/api/openapi.json"));
    api.merge(swagger)
}

type Limiter = GovernorLayer<PeerIpKeyExtractor, NoOpMiddleware, axum::body::Body>;

/// The per-address limit as a layer, and its limiter kept in the state for
/// housekeeping; `None` when the limit is off (`requests_per_second` 0).
fn rate_limit(state: &ServerState) -> Option<Limiter> {
    let per_second = state.api.requests_per_second;
    if per_second == 0 {
        return None;
    }
    // A burst of one second's worth, then one request every 1/n s (tower_governor's
    // `per_second(n)` means one every n seconds: CRATES.md P13).
    let config = GovernorConfigBuilder::default()
        .key_extractor(PeerIpKeyExtractor)
        .period(Duration::from_secs(1) / per_second)
        .burst_size(per_second)
        .finish()?;
    let config = Arc::new(config);
    state.api_limiter.set(config.limiter().clone()).ok();
    Some(GovernorLayer::new(config).error_handler(|error| {
        use tower_governor::GovernorError;
        let wait = match error {
            GovernorError::TooManyRequests { wait_time, .. } => Duration::from_secs(wait_time),
            _ => Duration::from_secs(1),
        };
        metrics::counter!("vexil_rate_limited_total", "surface" => "api").increment(1);
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
        description = "Feature flags for staging and prod: read them, flip them (audited), read the audit log. \
                       Authenticate with `Authorization: Bearer <token>` from `vexil token create NAME`; \
                       the account's role applies as in the console (SPEC §5). Every error is \
                       `{\"error\": \"<code>\", \"message\": \"...\"}`; the codes are listed in `docs/api.md`.",
        license(name = "Apache-2.0")
    ),
    paths(
        flags::list,
        flags::show,
        flags::flip,
        audit::list,
        me::show,
        openapi_json,
        crate::health::healthz,
        crate::health::readyz,
        crate::metrics::render,
    ),
    components(schemas(error::ErrorBody, error::CurrentValue)),
    modifiers(&BearerScheme, &ErrorCodes),
    tags(
        (name = "flags", description = "Flags and flips"),
        (name = "audit", description = "The audit log"),
        (name = "accounts", description = "The calling account"),
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

/// Under `/api/`, the answers no handler gives (no route, wrong method, body over the
/// limit) in the API's JSON shape rather than as console pages or plain text.
pub(crate) async fn json_errors(request: Request, next: Next) -> Response {
    let path = request.uri().path().to_owned();
    let response = next.run(request).await;
    if !path.starts_with("/api/") || path.starts_with("/api/docs") {
        return response;
    }
    let is_json = response
        .headers()
        .get(axum::http::header::CONTENT_TYPE)
        .is_some_and(|value| value.as_bytes().starts_with(b"application/json"));
    if is_json {
        return response;
    }
    match response.status() {
        StatusCode::NOT_FOUND => {
            ApiError::NoRoute(vexil_core::message::one_line(&path)).into_response()
        }
        StatusCode::METHOD_NOT_ALLOWED => ApiError::MethodNotAllowed.into_response(),
        StatusCode::PAYLOAD_TOO_LARGE => ApiError::TooLarge.into_response(),
        _ => response,
    }
}
