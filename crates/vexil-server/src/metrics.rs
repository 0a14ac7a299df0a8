//! `/metrics` in Prometheus text format, and the per-request metrics. Every metric
//! is described in `docs/metrics.md`.
//!
//! One recorder per process (the `metrics` facade is process-global): the first
//! server to start installs it, and every other server in the process (tests run
//! several) renders the same one. Labels are bounded: routes are axum's templates
//! (`/api/v1/flags/{key}`), never raw paths, and no flag key or account name is a
//! label.

use std::sync::OnceLock;
use std::time::Instant;

use axum::extract::{MatchedPath, Request, State};
use axum::http::{HeaderValue, header};
use axum::middleware::Next;
use axum::response::{IntoResponse, Response};
use metrics_exporter_prometheus::{Matcher, PrometheusBuilder, PrometheusHandle};

use crate::state::ServerState;

/// Latency buckets, in seconds: a page is a few milliseconds; a flip on PostgreSQL
/// tens; anything past a second is an incident.
const LATENCY_BUCKETS: [f64; 12] = [
    0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5,
];

static HANDLE: OnceLock<PrometheusHandle> = OnceLock::new();

/// The process's recorder, installed on first use.
pub(crate) fn handle() -> &'static PrometheusHandle {
    HANDLE.get_or_init(|| {
        let builder = PrometheusBuilder::new()
            .set_buckets_for_metric(
                Matcher::Full("vexil_http_request_duration_seconds".to_owned()),
                &LATENCY_BUCKETS,
            )
            .unwrap_or_else(|_| PrometheusBuilder::new());
        let recorder = builder.build_recorder();
        let handle = recorder.handle();
        // Another recorder already installed (an embedding program's own) keeps
        // receiving the metrics; this handle then renders what reached it only.
        if metrics::set_global_recorder(recorder).is_err() {
            tracing::warn!(
                "a metrics recorder was already installed; /metrics shows only vexil's build info"
            );
        }
        metrics::gauge!("vexil_build_info", "version" => env!("CARGO_PKG_VERSION")).set(1.0);
        handle
    })
}

/// Counts each request and times it, by method, route template and status.
pub(crate) async fn record(request: Request, next: Next) -> Response {
    let started = Instant::now();
    // Only the standard methods by name: any other string a client sends would be
    // a new series each time.
    let method = match request.method().as_str() {
        known @ ("GET" | "HEAD" | "POST" | "PUT" | "PATCH" | "DELETE" | "OPTIONS") => {
            known.to_owned()
        }
        _ => "other".to_owned(),
    };
    let route = request
        .extensions()
        .get::<MatchedPath>()
        .map_or_else(|| "unmatched".to_owned(), |path| path.as_str().to_owned());
    let response = next.run(request).await;
    let status = response.status().as_u16().to_string();
    let labels = [("method", method), ("route", route), ("status", status)];
    metrics::counter!("vexil_http_requests_total", &labels).increment(1);
    metrics::histogram!("vexil_http_request_duration_seconds", &labels)
        .record(started.elapsed().as_secs_f64());
    response
}

/// The evaluation routes `record_hot` counts, and the statuses they answer with.
const HOT_ROUTES: [(&str, &str); 7] = [
    ("POST", "/ofrep/v1/evaluate/flags/{key}"),
    ("POST", "/ofrep/v1/evaluate/flags"),
    ("GET", "/sdk/v1/snapshot"),
    ("POST", "/sdk/v1/report"),
    ("OPTIONS", "/ofrep/v1/evaluate/flags/{key}"),
    ("OPTIONS", "/ofrep/v1/evaluate/flags"),
    ("OPTIONS", "/ofrep/v1/events"),
];
const HOT_STATUSES: [u16; 12] = [200, 204, 304, 400, 401, 404, 405, 413, 422, 429, 500, 503];

/// Counts each request of the SDK's request-answer routes (`sdk::hot_router`), as
/// `count_hot` does.
pub(crate) async fn record_hot(request: Request, next: Next) -> Response {
    let method = request.method().clone();
    let route = request
        .extensions()
        .get::<MatchedPath>()
        .map(|path| path.as_str().to_owned());
    let response = next.run(request).await;
    count_hot(
        method.as_str(),
        route.as_deref().unwrap_or("unmatched"),
        response.status(),
    );
    response
}

/// Counts a request of an evaluation route in `vexil_http_requests_total`, as
/// `record` does, through counters registered once: these routes answer tens of
/// thousands of requests a second, and a label lookup and a histogram per request
/// would cost more than the evaluation. They have no latency histogram
/// (BENCHMARKS.md measures them).
pub(crate) fn count_hot(method: &str, route: &str, status: axum::http::StatusCode) {
    static COUNTERS: OnceLock<Vec<Vec<metrics::Counter>>> = OnceLock::new();
    let counters = COUNTERS.get_or_init(|| {
        HOT_ROUTES
            .iter()
            .map(|(method, route)| {
                HOT_STATUSES
                    .iter()
                    .map(|status| {
                        let labels = [
                            ("method", (*method).to_owned()),
                            ("route", (*route).to_owned()),
                            ("status", status.to_string()),
                        ];
                        metrics::counter!("vexil_http_requests_total", &labels)
                    })
                    .collect()
            })
            .collect()
    });
    let status = status.as_u16();
    let at_route = HOT_ROUTES
        .iter()
        .position(|(m, r)| *m == method && *r == route);
    match (at_route, HOT_STATUSES.iter().position(|s| *s == status)) {
        (Some(at_route), Some(at_status)) => counters[at_route][at_status].increment(1),
        _ => {
            // Bounded labels, as `record`'s: a method or route a caller made up is
            // `other` / `unmatched`, never a new series.
            let method = match method {
                known @ ("GET" | "HEAD" | "POST" | "PUT" | "PATCH" | "DELETE" | "OPTIONS") => known,
                _ => "other",
            };
            let route = if HOT_ROUTES.iter().any(|(_, r)| *r == route) {
                route
            } else {
                "unmatched"
            };
            let labels = [
                ("method", method.to_owned()),
                ("route", route.to_owned()),
                ("status", status.to_string()),
            ];
            metrics::counter!("vexil_http_requests_total", &labels).increment(1);
        }
    }
}

/// Every metric, in Prometheus text format (0.0.4).
#[utoipa::path(
    get,
    path = "/metrics",
    tag = "probes",
    responses((status = 200, description = "Prometheus text format; every metric is described in docs/metrics.md", body = String, content_type = "text/plain"))
)]
pub(crate) async fn render(State(state): State<ServerState>) -> Response {
    if let Some(age) = state
        .app
        .view()
        .and_then(|view| view.health().snapshot_age())
    {
        metrics::gauge!("vexil_snapshot_age_seconds").set(age.as_secs_f64());
    }
    let handle = handle();
    handle.run_upkeep();
    let mut text = handle.render();
    // The chain's head as one info series, rendered here rather than recorded: a
    // label that changes with every seal would otherwise leave a stale series behind
    // each time.
    if let Some(head) = state.audit_head.load_full() {
        text.push_str(&format!(
            "# HELP vexil_audit_head_info The audit chain's newest link (ID:HASH): an anchor for `vexil audit verify --anchor`.\n\
             # TYPE vexil_audit_head_info gauge\n\
             vexil_audit_head_info{{id=\"{}\",hash=\"{}\"}} 1\n",
            head.id,
            vexil_core::audit_chain::hex(&head.hash)
        ));
    }
    let mut response = text.into_response();
    response.headers_mut().insert(
        header::CONTENT_TYPE,
        HeaderValue::from_static("text/plain; version=0.0.4; charset=utf-8"),
    );
    response
}
