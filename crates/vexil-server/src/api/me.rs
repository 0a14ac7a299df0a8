//! `GET /api/v1/me`: who a token acts for, with which role. Any enabled account's
//! token may ask; a script checks it before it acts.

use axum::extract::State;
use serde::Serialize;
use utoipa::ToSchema;

use crate::api::auth::Caller;
use crate::api::error::{ApiError, ErrorBody};
use crate::api::json::ApiJson;
use crate::state::ServerState;

/// The account a token acts for.
#[derive(Debug, Serialize, ToSchema)]
pub(crate) struct Me {
    name: String,
    /// `readonly`, `support`, `ops` or `superadmin`: the account's role now.
    role: &'static str,
    /// Whether the account can elevate with TOTP (needed to flip `risk: high` flags).
    totp_enrolled: bool,
}

/// The account this token acts for.
#[utoipa::path(
    get,
    path = "/api/v1/me",
    tag = "accounts",
    security(("bearer" = [])),
    responses(
        (status = 200, description = "The token's account", body = Me),
        (status = "4XX", description = "unauthenticated, rate_limited", body = ErrorBody),
        (status = 503, description = "unavailable", body = ErrorBody),
    )
)]
pub(crate) async fn show(
    State(state): State<ServerState>,
    caller: Caller,
) -> Result<ApiJson<Me>, ApiError> {
    let totp_enrolled = state.app.has_totp(caller.actor.name()).await?;
    Ok(ApiJson(Me {
        role: caller.actor.role().as_str(),
        name: caller.actor.name().to_owned(),
        totp_enrolled,
    }))
}
