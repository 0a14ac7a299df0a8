//! `POST /sdk/v1/report`: a process that follows this server reports itself (its
//! host, pid, application, language, parsed `FLAG_*` states, master switch and the
//! last change it applied); from then on it is a live instance of the key's env, as a
//! process linked to the database is, for every fleet tool.

use axum::extract::State;
use axum::http::StatusCode;

use crate::api::error::ApiError;
use crate::api::json::ApiJson;
use crate::sdk::auth::ClientCaller;
use crate::state::ServerState;

/// Records the calling process's report (every heartbeat, 10 s).
#[utoipa::path(
    post,
    path = "/sdk/v1/report",
    tag = "sdk",
    request_body(content = serde_json::Value, description = "`{instance, host, pid, language, version, started_at, master_switch, vars: {KEY: on|off|invalid}, change_id, applied: {KEY: {audit_id, applied_at}}, env?, app?}`: variables parsed, never raw", content_type = "application/json"),
    responses(
        (status = 204, description = "Recorded"),
        (status = 401, description = "`unauthenticated`: no client key, a revoked one, or an account's API token", body = crate::api::error::ErrorBody),
        (status = 422, description = "`invalid_request`: a malformed body, an undeclared flag key, a raw value where a parsed state belongs, or an env or application other than the key's; nothing was recorded", body = crate::api::error::ErrorBody),
        (status = 429, description = "`rate_limited`: too many requests for this key", body = crate::api::error::ErrorBody),
        (status = 503, description = "`unavailable`: the database does not answer", body = crate::api::error::ErrorBody),
    ),
    security(("client_key" = []))
)]
pub(crate) async fn submit(
    State(state): State<ServerState>,
    ClientCaller(client): ClientCaller,
    ApiJson(report): ApiJson<vexil_core::sdk::Report>,
) -> Result<StatusCode, ApiError> {
    state.app.report_process(&client, report).await?;
    Ok(StatusCode::NO_CONTENT)
}
