//! What changes when htmx (not the browser) sends a console request. Handlers answer
//! as for a plain browser; this layer adapts the answer:
//!
//! - a redirect becomes `HX-Redirect`, so htmx navigates the whole page instead of
//!   fetching the target and swapping it into a table row;
//! - an error page is retargeted to the whole body (`HX-Retarget`, `HX-Reswap`),
//!   so a conflict or a refusal reads exactly as it does without JavaScript.

use axum::extract::Request;
use axum::http::{HeaderValue, StatusCode, header};
use axum::middleware::Next;
use axum::response::{IntoResponse, Response};

pub(crate) async fn adapt(request: Request, next: Next) -> Response {
    let from_htmx = request
        .headers()
        .get("hx-request")
        .is_some_and(|v| v == "true");
    let mut response = next.run(request).await;
    if !from_htmx {
        return response;
    }
    let status = response.status();
    if status.is_redirection()
        && let Some(location) = response.headers().get(header::LOCATION).cloned()
    {
        let mut redirect = StatusCode::OK.into_response();
        redirect.headers_mut().insert("hx-redirect", location);
        return redirect;
    }
    if status.is_client_error() || status.is_server_error() {
        let headers = response.headers_mut();
        headers.insert("hx-retarget", HeaderValue::from_static("body"));
        headers.insert("hx-reswap", HeaderValue::from_static("innerHTML"));
    }
    response
}
