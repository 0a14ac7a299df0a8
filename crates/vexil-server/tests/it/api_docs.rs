//! What describes the server to others: the OpenAPI document (complete: a route it
//! does not describe fails here), Swagger UI from vendored files, request ids, and
//! `/metrics` (every metric it shows is described in `docs/metrics.md`).

use std::collections::BTreeSet;

use serde_json::json;
use vexil_server::{CODES, Surface, route_table};
use vexil_store::Backend;

use crate::harness::TestConsole;

#[tokio::test]
async fn the_openapi_document_describes_every_route_and_code() {
    let console = TestConsole::start(Backend::Sqlite).await;
    let anonymous = console.api("").without_token();
    let reply = anonymous.get("/api/openapi.json").await;
    assert_eq!(reply.status, 200, "{reply:?}");
    let doc = reply.body;
    assert_eq!(doc["openapi"], "3.1.0");

    // Every API route, probe and the document itself, with its method; and nothing
    // the server does not serve.
    let served: BTreeSet<(String, String)> = route_table()
        .into_iter()
        .filter(|r| {
            matches!(r.surface, Surface::Api | Surface::Probe) || r.path == "/api/openapi.json"
        })
        .map(|r| (r.method.to_lowercase(), r.path.to_owned()))
        .collect();
    let described: BTreeSet<(String, String)> = doc["paths"]
        .as_object()
        .unwrap()
        .iter()
        .flat_map(|(path, item)| {
            item.as_object()
                .unwrap()
                .keys()
                .map(move |method| (method.clone(), path.clone()))
        })
        .collect();
    assert_eq!(served, described);

    // The security scheme, on every /api/v1 operation.
    assert_eq!(
        doc["components"]["securitySchemes"]["bearer"]["scheme"],
        "bearer"
    );
    for (method, path) in &described {
        let operation = &doc["paths"][path][method];
        let secured = operation["security"] == json!([{"bearer": []}]);
        assert_eq!(secured, path.starts_with("/api/v1/"), "{method} {path}");
        assert!(operation["responses"]["200"].is_object(), "{method} {path}");
    }
    // Every error code, in the error body's schema.
    let schemas = &doc["components"]["schemas"];
    let codes: Vec<&str> = CODES.iter().map(|(code, _, _)| *code).collect();
    assert_eq!(
        schemas["ErrorBody"]["properties"]["error"]["enum"],
        json!(codes)
    );
    for name in [
        "FlagView",
        "FlipRequest",
        "FlipResponse",
        "AuditPage",
        "AuditEntry",
        "Me",
        "ErrorBody",
        "CurrentValue",
        "Readiness",
    ] {
        assert!(schemas[name].is_object(), "schema {name}");
    }
    // The flip body as the server reads it: unknown fields are refused.
    assert_eq!(
        schemas["FlipRequest"]["required"],
        json!(["env", "from", "to"])
    );

    // Swagger UI, from files built into the binary.
    let browser = console.browser();
    let docs = browser.get("/api/docs/").await;
    assert_eq!(docs.status, 200);
    docs.assert_contains("swagger-ui");
    let init = browser.get("/api/docs/swagger-initializer.js").await;
    init.assert_contains("/api/openapi.json");
    let bundle = browser.get("/api/docs/swagger-ui-bundle.js").await;
    assert_eq!(bundle.status, 200);
    assert!(bundle.body.len() > 100_000);
    console.stop().await;
}

#[tokio::test]
async fn every_response_carries_a_request_id() {
    let console = TestConsole::start(Backend::Sqlite).await;
    let browser = console.browser();
    let first = browser.get("/healthz").await;
    let second = browser.get("/api/v1/me").await;
    let (a, b) = (first.header("x-request-id"), second.header("x-request-id"));
    assert_eq!((a.len(), b.len()), (36, 36), "{a} {b}");
    assert_ne!(a, b);
    // A proxy's id is kept, so one id follows the request through both logs.
    let kept = browser
        .client
        .get(format!("{}/healthz", browser.base))
        .header("x-request-id", "lb-7f3a")
        .send()
        .await
        .unwrap();
    assert_eq!(kept.headers()["x-request-id"], "lb-7f3a");
    console.stop().await;
}

#[tokio::test]
async fn metrics_count_what_happens_and_are_documented() {
    let console = TestConsole::start(Backend::Sqlite).await;
    let ops = console.api(&console.token("ops1").await);
    assert_eq!(ops.flip("dark_mode", false, json!({})).await.status, 200);
    assert_eq!(ops.flip("dark_mode", false, json!({})).await.status, 409);
    let browser = console.browser();
    assert_eq!(browser.sign_in("ops1", "wrong").await.status, 401);

    let metrics = browser.get("/metrics").await;
    assert_eq!(metrics.status, 200);
    assert_eq!(
        metrics.header("content-type"),
        "text/plain; version=0.0.4; charset=utf-8"
    );
    for line in [
        r#"vexil_http_requests_total{method="POST",route="/api/v1/flags/{key}/flip",status="200"}"#,
        r#"vexil_http_requests_total{method="POST",route="/api/v1/flags/{key}/flip",status="409"}"#,
        r#"vexil_http_request_duration_seconds_bucket{method="POST",route="/api/v1/flags/{key}/flip",status="200",le="0.005"}"#,
        r#"vexil_flips_total{env="prod",risk="low",via="api"}"#,
        r#"vexil_flip_conflicts_total{env="prod",via="api"}"#,
        "vexil_sign_in_failures_total",
        r#"vexil_audit_rows_written_total{action="console.flag.flip"}"#,
        r#"vexil_audit_rows_written_total{action="console.auth.sign_in_failed"}"#,
        r#"vexil_build_info{version=""#,
    ] {
        metrics.assert_contains(line);
    }
    // Unmatched paths share one label: a scan cannot grow the series without bound.
    browser.get("/no/such/page/4711").await;
    let again = browser.get("/metrics").await;
    again.assert_contains(r#"route="unmatched""#);
    assert!(!again.body.contains("4711"));

    let documented = std::fs::read_to_string(concat!(
        env!("CARGO_MANIFEST_DIR"),
        "/../../docs/metrics.md"
    ))
    .expect("docs/metrics.md");
    for name in metric_names(&again.body) {
        assert!(
            documented.contains(&format!("`{name}`")),
            "{name} is not described in docs/metrics.md"
        );
    }
    console.stop().await;
}

/// The metric families a Prometheus text page shows (histograms once, by base name).
fn metric_names(text: &str) -> BTreeSet<String> {
    text.lines()
        .filter(|line| !line.starts_with('#') && !line.trim().is_empty())
        .map(|line| {
            let name = line.split(['{', ' ']).next().unwrap_or_default();
            ["_bucket", "_sum", "_count"]
                .iter()
                .find_map(|suffix| name.strip_suffix(suffix))
                .unwrap_or(name)
                .to_owned()
        })
        .collect()
}
