//! `/healthz` and `/readyz`, for load balancers and orchestrators.
//!
//! `/healthz` says the process is up and serving, whatever the database says: a
//! probe that restarts unhealthy processes must not restart every server when the
//! database goes down. `/readyz` says whether this server can do its job now: the
//! database answers (within `READY_WITHIN`) and is migrated; a valid flags file is
//! always loaded, since `vexil serve` refuses to start without one and a reload keeps
//! the last valid set. Neither needs a session, and neither tells an anonymous
//! caller more than a fixed reason (no URL, no host, no error text).

use std::time::Duration;

use axum::Json;
use axum::extract::State;
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use vexil_store::StoreError;

use crate::state::ServerState;

/// What `/readyz` answers.
#[derive(serde::Serialize, utoipa::ToSchema)]
pub(crate) struct Readiness {
    // In alphabetical order, as the body has always been written.
    /// With `ready`: how many flags are declared.
    #[serde(skip_serializing_if = "Option::is_none")]
    flags: Option<usize>,
    /// With `unavailable`: why, in fixed words (no host, no error text).
    #[serde(skip_serializing_if = "Option::is_none")]
    reason: Option<&'static str>,
    /// `ready` or `unavailable`.
    status: &'static str,
}

/// How long `/readyz` waits for the database before it says it is not ready.
const READY_WITHIN: Duration = Duration::from_secs(2);

/// The process is up and serving.
#[utoipa::path(
    get,
    path = "/healthz",
    tag = "probes",
    responses((status = 200, description = "Always, while the process serves", body = String, content_type = "text/plain", example = "ok\n"))
)]
pub(crate) async fn healthz() -> &'static str {
    "ok\n"
}

/// Whether this server can do its job now: 200 while the database answers within 2 s
/// and is migrated (a valid flags file is always loaded), 503 with a reason otherwise.
#[utoipa::path(
    get,
    path = "/readyz",
    tag = "probes",
    responses(
        (status = 200, description = "Ready", body = Readiness, example = json!({"status": "ready", "flags": 12})),
        (status = 503, description = "Not ready, with a fixed reason", body = Readiness, example = json!({"status": "unavailable", "reason": "the database does not answer"})),
    )
)]
pub(crate) async fn readyz(State(state): State<ServerState>) -> Response {
    let flags = state.app.flags().len();
    let reason = match tokio::time::timeout(READY_WITHIN, state.app.check_migrated()).await {
        Ok(Ok(())) => {
            let ready = Readiness {
                status: "ready",
                flags: Some(flags),
                reason: None,
            };
            return (StatusCode::OK, Json(ready)).into_response();
        }
        Ok(Err(
            error @ (StoreError::NotMigrated { .. }
            | StoreError::TooNew { .. }
            | StoreError::AdoptionNeeded { .. }),
        )) => {
            tracing::warn!(%error, "not ready");
            "the database schema is not the one this vexil needs: run `vexil migrate`"
        }
        Ok(Err(error)) => {
            tracing::warn!(error = %vexil_core::message::error_chain(&error), "not ready");
            "the database does not answer"
        }
        Err(_) => {
            tracing::warn!("not ready: the database did not answer in time");
            "the database does not answer"
        }
    };
    metrics::counter!("vexil_database_errors_total", "surface" => "readyz").increment(1);
    let unavailable = Readiness {
        status: "unavailable",
        flags: None,
        reason: Some(reason),
    };
    (StatusCode::SERVICE_UNAVAILABLE, Json(unavailable)).into_response()
}
