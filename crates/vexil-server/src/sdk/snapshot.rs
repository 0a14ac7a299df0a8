//! `GET /sdk/v1/snapshot`: the key's env as the hub holds it, the body rendered once
//! per change for every caller, with an `ETag`; `If-None-Match` answers 304.

use axum::extract::State;
use axum::http::{HeaderMap, HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};

use crate::api::error::ApiError;
use crate::api::json::ApiQuery;
use crate::sdk::auth::ClientCaller;
use crate::sdk::{EnvQuery, check_env, loaded};
use crate::state::ServerState;

/// The env's rows and declarations (docs/api.md#client-keys): `{env, change_id,
/// master_switch_default, flags: {KEY: {row, default, risk, description, audit_id}}}`.
/// Each process resolves them with its own `FLAG_*` variables and master switch.
#[utoipa::path(
    get,
    path = "/sdk/v1/snapshot",
    tag = "sdk",
    params(
        EnvQuery,
        ("If-None-Match" = Option<String>, Header, description = "The `ETag` of a snapshot already held: 304 while it is current"),
    ),
    responses(
        (status = 200, description = "The snapshot, with an `ETag`", content_type = "application/json"),
        (status = 304, description = "The snapshot held (`If-None-Match`) is current"),
        (status = 401, description = "`unauthenticated`: no client key, a revoked one, or an account's API token", body = crate::api::error::ErrorBody),
        (status = 422, description = "`invalid_request`: the env is not the key's", body = crate::api::error::ErrorBody),
        (status = 429, description = "`rate_limited`: too many requests for this key", body = crate::api::error::ErrorBody),
        (status = 503, description = "`unavailable`: the server has not read the database since it started", body = crate::api::error::ErrorBody),
    ),
    security(("client_key" = []))
)]
pub(crate) async fn show(
    State(state): State<ServerState>,
    ClientCaller(client): ClientCaller,
    ApiQuery(query): ApiQuery<EnvQuery>,
    headers: HeaderMap,
) -> Result<Response, ApiError> {
    check_env(&client, query.env.as_deref())?;
    loaded(&state.hub).await?;
    let published = state
        .hub
        .published(client.env())
        .ok_or(ApiError::Unavailable)?;
    let etag = HeaderValue::from_str(&published.snapshot_etag)
        .map_err(|_| ApiError::Internal("an ETag that is no header value"))?;
    if crate::ofrep::matches(&headers, &published.snapshot_etag) {
        return Ok((StatusCode::NOT_MODIFIED, [(header::ETAG, etag)]).into_response());
    }
    Ok((
        [
            (
                header::CONTENT_TYPE,
                HeaderValue::from_static("application/json"),
            ),
            (header::ETAG, etag),
        ],
        published.snapshot.clone(),
    )
        .into_response())
}
