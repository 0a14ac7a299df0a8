//! `/healthz` and `/readyz`, for load balancers and orchestrators (issue [E] item 3).
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
use serde_json::json;
use vexil_store::StoreError;

use crate::state::ServerState;

/// How long `/readyz` waits for the database before it says it is not ready.
const READY_WITHIN: Duration = Duration::from_secs(2);

pub(crate) async fn healthz() -> &'static str {
    "ok\n"
}

pub(crate) async fn readyz(State(state): State<ServerState>) -> Response {
    let flags = state.app.flags().len();
    let reason = match tokio::time::timeout(READY_WITHIN, state.app.db().check_migrated()).await {
        Ok(Ok(())) => {
            return (
                StatusCode::OK,
                Json(json!({"status": "ready", "flags": flags})),
            )
                .into_response();
        }
        Ok(Err(error @ (StoreError::NotMigrated { .. } | StoreError::TooNew { .. }))) => {
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
    (
        StatusCode::SERVICE_UNAVAILABLE,
        Json(json!({"status": "unavailable", "reason": reason})),
    )
        .into_response()
}
