//! `GET /api/v1/client-keys`, `POST /api/v1/client-keys` and
//! `POST /api/v1/client-keys/{id}/revoke`: the keys applications follow the server
//! with (docs/roles.md#client-keys), superadmin only, each change audited with `"via": "api"`.
//!
//! `ClientKeyView` is the one JSON shape of a key (also the CLI's `--json`).

use axum::extract::State;
use axum::http::StatusCode;
use chrono::{DateTime, Utc};
use secrecy::ExposeSecret;
use serde::{Deserialize, Serialize};
use utoipa::ToSchema;
use vexil_app::Admin;
use vexil_core::AppName;
use vexil_core::audit::Via;
use vexil_store::ClientKeyRow;

use crate::api::auth::Caller;
use crate::api::error::{ApiError, ErrorBody};
use crate::api::json::{ApiJson, IdPath};
use crate::state::ServerState;

/// A client key as listed: never the key, only its first characters.
#[derive(Debug, Serialize, ToSchema)]
pub struct ClientKeyView {
    id: i64,
    /// The one env it reads.
    env: String,
    /// The application it was made for.
    app: String,
    /// `vxc_` and the key's first 8 characters.
    prefix: String,
    created_at: DateTime<Utc>,
    /// The account that created it; `null` for an operator at the CLI.
    created_by: Option<String>,
    /// When a server last looked it up (noted at most once a minute per server).
    last_used_at: Option<DateTime<Utc>>,
    revoked_at: Option<DateTime<Utc>>,
}

impl From<ClientKeyRow> for ClientKeyView {
    fn from(row: ClientKeyRow) -> ClientKeyView {
        ClientKeyView {
            id: row.id,
            env: row.env,
            app: row.app,
            prefix: row.prefix,
            created_at: row.created_at,
            created_by: row.created_by,
            last_used_at: row.last_used_at,
            revoked_at: row.revoked_at,
        }
    }
}

/// A new key's body.
#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub(crate) struct CreateBody {
    /// `staging` or `prod`.
    env: String,
    /// The application's name (letters, digits, `.`, `_`, `-`; at most 64).
    app: String,
}

/// A new key: shown this once, stored only as a hash.
#[derive(Debug, Serialize, ToSchema)]
pub(crate) struct Created {
    id: i64,
    env: String,
    app: String,
    /// `vxc_` and 64 hexadecimal characters: `Authorization: Bearer <key>` on
    /// `/sdk/v1` and `/ofrep/v1`.
    key: String,
}

/// Every client key, newest first.
#[utoipa::path(
    get,
    path = "/api/v1/client-keys",
    tag = "client keys",
    security(("bearer" = [])),
    responses(
        (status = 200, description = "Every client key, newest first", body = [ClientKeyView]),
        (status = "4XX", description = "unauthenticated, forbidden (superadmin only), rate_limited", body = ErrorBody),
        (status = 503, description = "unavailable", body = ErrorBody),
    )
)]
pub(crate) async fn list(
    State(state): State<ServerState>,
    caller: Caller,
) -> Result<ApiJson<Vec<ClientKeyView>>, ApiError> {
    let keys = state.app.client_keys(Admin::Account(&caller.actor)).await?;
    Ok(ApiJson(keys.into_iter().map(ClientKeyView::from).collect()))
}

/// Creates a key for one env and application; the key is in this answer only.
#[utoipa::path(
    post,
    path = "/api/v1/client-keys",
    tag = "client keys",
    security(("bearer" = [])),
    request_body = CreateBody,
    responses(
        (status = 201, description = "The key, shown once", body = Created),
        (status = "4XX", description = "unauthenticated, forbidden (superadmin only), invalid_request (a bad application name), unknown_env, rate_limited", body = ErrorBody),
        (status = 503, description = "unavailable", body = ErrorBody),
    )
)]
pub(crate) async fn create(
    State(state): State<ServerState>,
    caller: Caller,
    ApiJson(body): ApiJson<CreateBody>,
) -> Result<(StatusCode, ApiJson<Created>), ApiError> {
    let env = state.app.envs().parse(&body.env)?;
    let app = AppName::parse(&body.app).map_err(|error| ApiError::Invalid(error.to_string()))?;
    let (id, key) = state
        .app
        .create_client_key(Admin::Account(&caller.actor), Via::Api, &env, &app)
        .await?;
    Ok((
        StatusCode::CREATED,
        ApiJson(Created {
            id,
            env: env.to_string(),
            app: app.to_string(),
            key: key.expose_secret().to_owned(),
        }),
    ))
}

/// Revokes a key for good: servers refuse it within their key cache window (2 s),
/// open streams included.
#[utoipa::path(
    post,
    path = "/api/v1/client-keys/{id}/revoke",
    tag = "client keys",
    security(("bearer" = [])),
    params(("id" = i64, Path, description = "The key's id")),
    responses(
        (status = 200, description = "The key, revoked", body = ClientKeyView),
        (status = "4XX", description = "unauthenticated, forbidden (superadmin only), not_found, invalid_state (already revoked), rate_limited", body = ErrorBody),
        (status = 503, description = "unavailable", body = ErrorBody),
    )
)]
pub(crate) async fn revoke(
    State(state): State<ServerState>,
    caller: Caller,
    IdPath(id): IdPath,
) -> Result<ApiJson<ClientKeyView>, ApiError> {
    let key = state
        .app
        .revoke_client_key(Admin::Account(&caller.actor), Via::Api, id)
        .await?;
    Ok(ApiJson(key.into()))
}
