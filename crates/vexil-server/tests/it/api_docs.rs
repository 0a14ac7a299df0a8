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
            matches!(r.surface, Surface::Api | Surface::Sdk | Surface::Probe)
                || r.path == "/api/openapi.json"
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

    // The security schemes: an account's token on every /api/v1 operation, a client
    // key on every evaluation-plane one.
    for scheme in ["bearer", "client_key"] {
        assert_eq!(
            doc["components"]["securitySchemes"][scheme]["scheme"],
            "bearer"
        );
    }
    for (method, path) in &described {
        let operation = &doc["paths"][path][method];
        let account = operation["security"] == json!([{"bearer": []}]);
        assert_eq!(account, path.starts_with("/api/v1/"), "{method} {path}");
        let client = operation["security"] == json!([{"client_key": []}]);
        let plane = path.starts_with("/sdk/") || path.starts_with("/ofrep/");
        assert_eq!(client, plane, "{method} {path}");
        let ok = match (method.as_str(), path.as_str()) {
            ("post", p) if p.ends_with("/promotions") || p.ends_with("/client-keys") => "201",
            ("post", "/sdk/v1/report") => "204",
            _ => "200",
        };
        assert!(operation["responses"][ok].is_object(), "{method} {path}");
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
        "PromotionView",
        "StepResponse",
        "PromoteBody",
        "RejectBody",
        "ClientKeyView",
        "CreateBody",
        "Created",
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
    // Anything but a plain token is replaced, never logged as sent.
    for forged in ["a b", "x".repeat(65).as_str(), "id\twith-tab", "ünïcode"] {
        let sent = reqwest::header::HeaderValue::from_bytes(forged.as_bytes()).unwrap();
        let replaced = browser
            .client
            .get(format!("{}/healthz", browser.base))
            .header("x-request-id", sent)
            .send()
            .await
            .unwrap();
        let id = replaced.headers()["x-request-id"]
            .to_str()
            .unwrap_or_default()
            .to_owned();
        assert_eq!(id.len(), 36, "{forged:?} → {id:?}");
    }
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
    // Unmatched paths share one label, and made-up methods one: a scan cannot grow
    // the series without bound.
    browser.get("/no/such/page/4711").await;
    let odd = reqwest::Method::from_bytes(b"FROBNICATE4711").unwrap();
    browser
        .client
        .request(odd, format!("{}/healthz", browser.base))
        .send()
        .await
        .unwrap();
    let again = browser.get("/metrics").await;
    again.assert_contains(r#"route="unmatched""#);
    again.assert_contains(r#"method="other""#);
    // Only the labels: a duration sum or the audit head's hash may hold these digits.
    for line in again.body.lines().filter(|line| !line.starts_with('#')) {
        let labels = line.split_once('{').map_or("", |(_, rest)| rest);
        let labels = labels.split_once('}').map_or("", |(labels, _)| labels);
        let labels = labels.replace(&audit_head_hash(&again.body), "");
        assert!(!labels.contains("4711"), "{line}");
    }

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

/// The hash label of `vexil_audit_head_info`, which is whatever the chain holds.
fn audit_head_hash(text: &str) -> String {
    text.lines()
        .find(|line| line.starts_with("vexil_audit_head_info{"))
        .and_then(|line| line.split_once("hash=\""))
        .and_then(|(_, rest)| rest.split_once('"'))
        .map_or_else(String::new, |(hash, _)| hash.to_owned())
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

/// Every `curl` in `docs/api.md` and `docs/ofrep.md`, run in order against a real
/// server: the status in its `# →` line, and the answer holding what the JSON shown
/// after it shows (ids, times and messages aside).
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_examples_in_docs_api_md_run() {
    let read = |name: &str| {
        std::fs::read_to_string(format!("{}/../../docs/{name}", env!("CARGO_MANIFEST_DIR")))
            .unwrap_or_else(|e| panic!("docs/{name}: {e}"))
    };
    let doc = format!("{}\n{}", read("api.md"), read("ofrep.md"));
    let console = TestConsole::start(Backend::Sqlite).await;
    let token = console.token("ops1").await;
    let root_token = console.token("root").await;
    let key = console.client_key("prod", "web").await;
    let home = tempfile::tempdir().unwrap();
    // curl reads its defaults from $HOME/.curlrc: the status on a last line of its own.
    std::fs::write(
        home.path().join(".curlrc"),
        "write-out = \"\\n%{http_code}\"\n",
    )
    .unwrap();

    let blocks = fenced_blocks(&doc);
    let mut ran = 0;
    for (i, (lang, body)) in blocks.iter().enumerate() {
        if lang != "sh" {
            continue;
        }
        let status: u16 = body
            .lines()
            .find_map(|l| l.strip_prefix("# → "))
            .unwrap_or_else(|| panic!("no `# →` status in {body}"))
            .parse()
            .unwrap();
        let output = tokio::process::Command::new("bash")
            .arg("-c")
            .arg(body)
            .env_clear()
            .env("PATH", "/usr/bin:/bin")
            .env("HOME", home.path())
            .env("VEXIL", format!("http://{}", console.address))
            .env("TOKEN", &token)
            .env("ROOT_TOKEN", &root_token)
            .env("KEY", &key)
            .env("TOTP", console.root_code(0))
            .output()
            .await
            .expect("bash and curl");
        let stdout = String::from_utf8_lossy(&output.stdout);
        let (answer, got) = stdout.rsplit_once('\n').unwrap_or(("", &stdout));
        assert_eq!(got.parse::<u16>().ok(), Some(status), "{body}\n→ {stdout}");
        if let Some((lang, shown)) = blocks.get(i + 1)
            && lang == "json"
        {
            let shown: serde_json::Value =
                serde_json::from_str(shown).unwrap_or_else(|e| panic!("{e}: {shown}"));
            let answer: serde_json::Value =
                serde_json::from_str(answer).unwrap_or_else(|e| panic!("{e}: {answer}"));
            holds(&shown, &answer, body);
        }
        ran += 1;
    }
    assert!(ran >= 8, "only {ran} examples");

    // The error table is `CODES`, row for row.
    for (code, status, _) in CODES {
        let row = format!("| `{code}` | {} |", status.as_u16());
        assert!(doc.contains(&row), "docs/api.md lacks {row}");
    }
    console.stop().await;
}

/// The fenced code blocks of a Markdown text: (language, body).
fn fenced_blocks(text: &str) -> Vec<(String, String)> {
    let mut blocks = Vec::new();
    let mut current: Option<(String, String)> = None;
    for line in text.lines() {
        match (&mut current, line.strip_prefix("```")) {
            (None, Some(lang)) => current = Some((lang.trim().to_owned(), String::new())),
            (Some(_), Some(_)) => blocks.extend(current.take()),
            (Some((_, body)), None) => {
                body.push_str(line);
                body.push('\n');
            }
            (None, None) => {}
        }
    }
    blocks
}

/// `answer` has every key `shown` has, with the same values, except the ones that
/// differ from run to run.
#[track_caller]
fn holds(shown: &serde_json::Value, answer: &serde_json::Value, example: &str) {
    use serde_json::Value;
    const VARIES: [&str; 6] = [
        "audit_id",
        "id",
        "created_at",
        "updated_at",
        "message",
        "description",
    ];
    match (shown, answer) {
        (Value::Object(shown), Value::Object(answer)) => {
            for (key, value) in shown {
                let got = answer
                    .get(key)
                    .unwrap_or_else(|| panic!("no {key:?} in {answer:?} for {example}"));
                if !VARIES.contains(&key.as_str()) {
                    holds(value, got, example);
                }
            }
        }
        (Value::Array(shown), Value::Array(answer)) => {
            assert!(!answer.is_empty() || shown.is_empty(), "{example}");
            if let (Some(shown), Some(got)) = (shown.first(), answer.first()) {
                holds(shown, got, example);
            }
        }
        _ => assert_eq!(shown, answer, "{example}"),
    }
}
