//! OFREP, the OpenFeature Remote Evaluation Protocol v1
//! (`docs/ofrep.md`): any OpenFeature SDK's OFREP provider evaluates vexil's boolean
//! flags over HTTP with a client key, unmodified.
//!
//! - `POST /ofrep/v1/evaluate/flags/{key}`: one flag;
//! - `POST /ofrep/v1/evaluate/flags`: every flag, with an `ETag` (`If-None-Match`
//!   → 304), and `eventStreams` (OFREP ADR 0008; also under its draft name
//!   `refreshConnections`) pointing at
//! - `GET /ofrep/v1/events`: `refetchEvaluation` notifications, so that a provider
//!   hears a flip at once instead of polling.
//!
//! The server cannot see the caller's `FLAG_*` variables or master switch: it answers
//! the env's DB row (reason `STATIC`), else the flags file's default (`DEFAULT`).
//! Every answer is rendered once per change by the hub (`Evaluations`), so an
//! evaluation is a key check and a map lookup.
//!
//! # Layout
//!
//! - `evaluate.rs`: the two evaluation routes and the events route.
//! - `error.rs`: `OfrepError`, OFREP's error shapes.

mod error;
pub(crate) mod evaluate;

use axum::body::Bytes;
use axum::http::HeaderMap;
use axum::http::header::IF_NONE_MATCH;
use foldhash::HashMap;
use serde::Serialize;
use sha2::{Digest, Sha256};
use vexil_core::sdk::Snapshot;

use crate::routes::{self, Entry, Surface};

/// OFREP's evaluation routes (served on the lean stack: `sdk::hot_router`).
pub(crate) fn routes() -> Vec<Entry> {
    use routes::post;
    let s = Surface::Sdk;
    vec![
        post(s, "/ofrep/v1/evaluate/flags/{key}", evaluate::single),
        post(s, "/ofrep/v1/evaluate/flags", evaluate::bulk),
    ]
}

/// OFREP's event stream (served like every other route).
pub(crate) fn streams() -> Vec<Entry> {
    vec![routes::get(
        Surface::Sdk,
        "/ofrep/v1/events",
        evaluate::events,
    )]
}

/// The CORS preflights of OFREP's routes: a browser on another origin (OpenFeature's
/// web provider) asks before it sends `Authorization` or JSON.
pub(crate) fn preflights() -> Vec<Entry> {
    let p = Surface::Preflight;
    [
        "/ofrep/v1/evaluate/flags/{key}",
        "/ofrep/v1/evaluate/flags",
        "/ofrep/v1/events",
    ]
    .into_iter()
    .map(|path| routes::options(p, path, preflight))
    .collect()
}

/// What a browser on another origin may send to OFREP's routes. Safe to allow any
/// origin: the credential is a client key in a header or the events token in a URL,
/// never a cookie, so another origin learns nothing it could not ask for itself.
async fn preflight(path: axum::extract::MatchedPath) -> axum::response::Response {
    use axum::http::{HeaderValue, StatusCode};
    use axum::response::IntoResponse;

    const ALLOWED: [(&str, &str); 4] = [
        ("access-control-allow-origin", "*"),
        ("access-control-allow-methods", "GET, POST"),
        (
            "access-control-allow-headers",
            "authorization, content-type, if-none-match, last-event-id",
        ),
        ("access-control-max-age", "86400"),
    ];
    let mut response = StatusCode::NO_CONTENT.into_response();
    let headers = response.headers_mut();
    for (name, value) in ALLOWED.into_iter().chain(crate::serve::SECURITY_HEADERS) {
        headers.insert(name, HeaderValue::from_static(value));
    }
    crate::metrics::count_hot("OPTIONS", path.as_str(), response.status());
    response
}

/// The CORS headers of every OFREP answer: any origin may read it, and the `ETag`
/// (which the web provider sends back as `If-None-Match`).
pub(crate) const CORS_HEADERS: [(&str, &str); 2] = [
    ("access-control-allow-origin", "*"),
    ("access-control-expose-headers", "etag"),
];

/// One env's evaluations, rendered once per change.
pub(crate) struct Evaluations {
    /// Each declared flag's answer to a single evaluation.
    single: HashMap<Box<str>, Bytes>,
    /// The bulk answer's `flags` array.
    bulk_flags: Bytes,
    /// A digest of `bulk_flags`: the bulk answer's `ETag`, quoted.
    etag: String,
}

/// One flag's evaluation (`evaluationSuccess`, boolean). `variant` is always sent:
/// some providers (Python's) refuse an answer without one.
#[derive(Serialize)]
struct Success<'a> {
    key: &'a str,
    value: bool,
    /// `STATIC`: the env's DB row; `DEFAULT`: no row, the flags file's default.
    reason: &'static str,
    variant: &'static str,
    metadata: Metadata,
}

/// What OFREP's `metadata` carries for a flag (primitive values only).
#[derive(Serialize)]
struct Metadata {
    /// `db` or `yaml`, as the console says it.
    source: &'static str,
    risk: &'static str,
}

impl Evaluations {
    pub(crate) fn build(snapshot: &Snapshot) -> Evaluations {
        let mut single = HashMap::default();
        let mut all = Vec::with_capacity(snapshot.flags.len());
        for (key, flag) in &snapshot.flags {
            let value = flag.row.unwrap_or(flag.default);
            let success = Success {
                key,
                value,
                reason: if flag.row.is_some() {
                    "STATIC"
                } else {
                    "DEFAULT"
                },
                variant: if value { "on" } else { "off" },
                metadata: Metadata {
                    source: if flag.row.is_some() { "db" } else { "yaml" },
                    risk: flag.risk.as_str(),
                },
            };
            single.insert(Box::from(key.as_str()), json(&success));
            all.push(success);
        }
        let bulk_flags = json(&all);
        let digest = Sha256::digest(&bulk_flags);
        Evaluations {
            single,
            etag: format!("\"{}\"", hex::encode(&digest[..12])),
            bulk_flags,
        }
    }

    /// `key`'s answer; `None` when it is not declared.
    pub(crate) fn single(&self, key: &str) -> Option<&Bytes> {
        self.single.get(key)
    }

    /// The bulk answer's `ETag`, quoted.
    pub(crate) fn etag(&self) -> &str {
        &self.etag
    }

    pub(crate) fn bulk_flags(&self) -> &Bytes {
        &self.bulk_flags
    }
}

/// Whether `If-None-Match` names `etag` (or is `*`).
pub(crate) fn matches(headers: &HeaderMap, etag: &str) -> bool {
    let Some(value) = headers.get(IF_NONE_MATCH).and_then(|v| v.to_str().ok()) else {
        return false;
    };
    value.split(',').map(str::trim).any(|candidate| {
        candidate == "*" || candidate == etag || candidate.strip_prefix("W/") == Some(etag)
    })
}

fn json(value: &impl Serialize) -> Bytes {
    // Plain data: serialising cannot fail.
    Bytes::from(serde_json::to_vec(value).unwrap_or_default())
}
