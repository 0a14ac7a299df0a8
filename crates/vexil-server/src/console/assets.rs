//! The console's static files, built into the binary: its stylesheet, its one script
//! (the promotions countdown, and focus after an htmx flip) and htmx 2.0.11
//! (vendored from npm, BSD-0; sha256
//! d6fdc75f204e6bdefa99b69bf1e6d4ac69b8a364f77929f45c13476b4000f717). Nothing
//! is loaded from another origin.

use axum::http::header;
use axum::response::IntoResponse;

/// Cached for an hour: they change only with the binary.
const CACHE: &str = "public, max-age=3600";

pub(crate) async fn stylesheet() -> impl IntoResponse {
    (
        [
            (header::CONTENT_TYPE, "text/css; charset=utf-8"),
            (header::CACHE_CONTROL, CACHE),
        ],
        include_str!("../../static/console.css"),
    )
}

/// The console's script: the promotions countdown, and focus after an htmx flip (the
/// only script of our own: the CSP allows scripts from this origin only, never
/// inline).
pub(crate) async fn script() -> impl IntoResponse {
    (
        [
            (header::CONTENT_TYPE, "text/javascript; charset=utf-8"),
            (header::CACHE_CONTROL, CACHE),
        ],
        include_str!("../../static/console.js"),
    )
}

pub(crate) async fn htmx() -> impl IntoResponse {
    (
        [
            (header::CONTENT_TYPE, "text/javascript; charset=utf-8"),
            (header::CACHE_CONTROL, CACHE),
        ],
        include_str!("../../static/htmx.min.js"),
    )
}
