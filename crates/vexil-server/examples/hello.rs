//! A bare axum server answering `hello` on `GET /`: the ceiling `cargo xtask
//! api-bench` measures vexil's API against in the same run (same framework, same
//! runtime, same machine, no work per request). `hello ADDRESS` serves until killed.

use axum::Router;
use axum::routing::get;

#[tokio::main]
async fn main() -> std::io::Result<()> {
    let address = std::env::args()
        .nth(1)
        .unwrap_or_else(|| "127.0.0.1:8090".to_owned());
    let listener = tokio::net::TcpListener::bind(&address).await?;
    println!("hello listening on http://{}", listener.local_addr()?);
    let app = Router::new().route("/", get(|| async { "hello" }));
    axum::serve(listener, app).await
}
