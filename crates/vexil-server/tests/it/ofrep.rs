//! OFREP over a real socket, request by request as the protocol specifies it: one
//! flag, every flag with its `ETag`, the event stream the bulk answer advertises,
//! and every bad input in OFREP's own error shapes. OpenFeature's own providers
//! are run against the real binary in `vexil-cli`'s `openfeature.rs`.

use std::time::Duration;

use serde_json::{Value, json};
use vexil_store::Backend;

use crate::events::EventReader;
use crate::harness::{Api, Reply, TestConsole};

const SINGLE: &str = "/ofrep/v1/evaluate/flags";

/// A request with an OFREP body (sent as given) and these headers.
async fn post(api: &Api, path: &str, body: &str, headers: &[(&str, &str)]) -> Reply {
    let mut request = api
        .client
        .post(format!("{}{path}", api.base))
        .header("content-type", "application/json")
        .body(body.to_owned());
    for (name, value) in headers {
        request = request.header(*name, *value);
    }
    api.send(request).await
}

/// `flag`'s single evaluation, once its value is `value` (the hub follows the feed).
async fn evaluated_once(api: &Api, flag: &str, value: bool) -> Reply {
    let deadline = std::time::Instant::now() + Duration::from_secs(10);
    loop {
        let reply = post(api, &format!("{SINGLE}/{flag}"), "{}", &[]).await;
        if reply.body["value"] == value {
            return reply;
        }
        assert!(std::time::Instant::now() < deadline, "{reply:?}");
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
}

async fn a_flag_is_its_row_else_its_default(backend: Backend) {
    let console = TestConsole::start(backend).await;
    let api = console.api(&console.client_key("prod", "web").await);
    let reply = post(
        &api,
        &format!("{SINGLE}/dark_mode"),
        r#"{"context": {"targetingKey": "user-1", "plan": "gold"}}"#,
        &[],
    )
    .await;
    assert_eq!(reply.status, 200, "{reply:?}");
    assert_eq!(reply.headers["content-type"], "application/json");
    assert_eq!(
        reply.body,
        json!({"key": "dark_mode", "value": false, "reason": "DEFAULT", "variant": "off",
               "metadata": {"source": "yaml", "risk": "low"}})
    );
    let admin = console.api(&console.token("admin").await);
    assert_eq!(admin.flip("dark_mode", false, json!({})).await.status, 200);
    let reply = evaluated_once(&api, "dark_mode", true).await;
    assert_eq!(
        reply.body,
        json!({"key": "dark_mode", "value": true, "reason": "STATIC", "variant": "on",
               "metadata": {"source": "db", "risk": "low"}})
    );
    // The caller's FLAG_* variables are out of the server's sight: a staging row
    // never answers for prod, and prod's default stands where prod has no row.
    let staging = console.api(&console.client_key("staging", "web").await);
    let other = post(&staging, &format!("{SINGLE}/dark_mode"), "{}", &[]).await;
    assert_eq!(
        (other.body["value"].clone(), other.body["reason"].clone()),
        (json!(false), json!("DEFAULT"))
    );
    console.stop().await;
}
vexil_testkit::both!(a_flag_is_its_row_else_its_default);

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn bad_requests_get_ofreps_error_shapes() {
    let console = TestConsole::start(Backend::Sqlite).await;
    let key = console.client_key("prod", "web").await;
    let api = console.api(&key);
    // Bodies real providers send: none, an empty object, a context.
    for body in ["", "{}", r#"{"context": {}}"#, r#"{"context": null}"#] {
        let reply = post(&api, &format!("{SINGLE}/dark_mode"), body, &[]).await;
        assert_eq!(reply.status, 200, "{body:?}: {reply:?}");
    }
    let check = |reply: Reply, status: u16, body: Value| {
        assert_eq!(reply.status, status, "{reply:?}");
        for (field, want) in body.as_object().unwrap() {
            let got = reply.body[field].as_str().unwrap_or_default();
            assert!(
                got.contains(want.as_str().unwrap()),
                "{field}: {got:?} in {reply:?}"
            );
        }
    };
    check(
        post(&api, &format!("{SINGLE}/no_such_flag"), "{}", &[]).await,
        404,
        json!({"key": "no_such_flag", "errorCode": "FLAG_NOT_FOUND", "errorDetails": "flag 'no_such_flag' is not declared"}),
    );
    check(
        post(&api, &format!("{SINGLE}/dark_mode"), "{not json", &[]).await,
        400,
        json!({"key": "dark_mode", "errorCode": "PARSE_ERROR", "errorDetails": "the body is not a JSON object"}),
    );
    check(
        post(
            &api,
            &format!("{SINGLE}/dark_mode"),
            r#"{"context": true}"#,
            &[],
        )
        .await,
        400,
        json!({"key": "dark_mode", "errorCode": "INVALID_CONTEXT", "errorDetails": "`context` must be an object, not a boolean"}),
    );
    check(
        post(&api, SINGLE, r#"{"context": [1]}"#, &[]).await,
        400,
        json!({"errorCode": "INVALID_CONTEXT", "errorDetails": "not an array"}),
    );
    // Credentials: none, an account's token, an unknown key.
    for (authorization, says) in [
        (None, "send `Authorization: Bearer vxc_"),
        (
            Some(format!("Bearer {}", console.token("admin").await)),
            "applications use a client key",
        ),
        (
            Some(format!("Bearer vxc_{}", "0".repeat(64))),
            "invalid or revoked client key",
        ),
    ] {
        let caller = match &authorization {
            Some(value) => api.with_authorization(value),
            None => api.without_token(),
        };
        let reply = post(&caller, &format!("{SINGLE}/dark_mode"), "{}", &[]).await;
        assert_eq!(reply.status, 401, "{reply:?}");
        assert!(
            reply.body["errorDetails"].as_str().unwrap().contains(says),
            "{reply:?}"
        );
    }
    console.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_bulk_answer_has_an_etag_and_advertises_its_event_stream() {
    let console = TestConsole::start(Backend::Sqlite).await;
    let api = console.api(&console.client_key("prod", "web").await);
    let reply = post(&api, SINGLE, r#"{"context": {"targetingKey": "u"}}"#, &[]).await;
    assert_eq!(reply.status, 200, "{reply:?}");
    let flags = reply.body["flags"].as_array().unwrap();
    assert_eq!(flags.len(), 4);
    assert_eq!(flags[0]["key"], "dark_mode");
    assert_eq!(
        flags[1],
        json!({"key": "search_typo_tolerance", "value": true, "reason": "DEFAULT", "variant": "on", "metadata": {"source": "yaml", "risk": "medium"}})
    );
    assert_eq!(reply.body["metadata"], json!({"env": "prod"}));
    let stream = &reply.body["eventStreams"][0];
    assert_eq!(stream["type"], "sse");
    assert_eq!(stream["inactivityDelaySec"], 120);
    let uri = stream["endpoint"]["requestUri"]
        .as_str()
        .unwrap()
        .to_owned();
    assert!(uri.starts_with("/ofrep/v1/events?token="), "{uri}");
    assert_eq!(
        reply.body["refreshConnections"][0], *stream,
        "the draft's name, same stream"
    );
    let etag = reply.headers["etag"].to_str().unwrap().to_owned();
    assert!(etag.starts_with('"') && etag.ends_with('"'), "{etag}");

    let unchanged = post(&api, SINGLE, "{}", &[("if-none-match", &etag)]).await;
    assert_eq!(unchanged.status, 304, "{unchanged:?}");
    assert_eq!(unchanged.headers["etag"].to_str().unwrap(), etag);

    // The stream the answer advertises, opened as a browser's EventSource would (no
    // Authorization header): a flip is a `refetchEvaluation` with the new ETag.
    let mut events = EventReader::open(&api.base, &uri, &[]).await.unwrap();
    let admin = console.api(&console.token("admin").await);
    assert_eq!(admin.flip("dark_mode", false, json!({})).await.status, 200);
    let notified = events.next().await;
    assert_eq!(notified.event, "message");
    assert_eq!(notified.data["type"], "refetchEvaluation");
    let new_etag = notified.data["etag"].as_str().unwrap().to_owned();
    assert_ne!(new_etag, etag);
    assert!(notified.data["lastModified"].as_i64().unwrap() > 1_700_000_000);
    assert!(notified.id.is_some());
    // The refetch it triggers: never a 304 for the old ETag, the new one in full.
    let query = format!(
        "{SINGLE}?flagConfigEtag={}&flagConfigLastModified={}",
        urlencode(&new_etag),
        notified.data["lastModified"]
    );
    let refetched = post(&api, &query, "{}", &[("if-none-match", &etag)]).await;
    assert_eq!(refetched.status, 200, "{refetched:?}");
    assert_eq!(refetched.headers["etag"].to_str().unwrap(), new_etag);
    assert_eq!(refetched.body["flags"][0]["value"], true);
    // The draft's parameter names are honoured too.
    let draft = format!("{SINGLE}?sseEtag={}", urlencode(&new_etag));
    assert_eq!(
        post(&api, &draft, "{}", &[("if-none-match", &etag)])
            .await
            .status,
        200
    );
    // Last-Event-ID: the notification missed since is sent again.
    let from = notified.id.clone().unwrap();
    assert_eq!(
        admin.flip("legacy_banner", false, json!({})).await.status,
        200
    );
    let mut seen = events.next().await;
    assert_eq!(seen.data["type"], "refetchEvaluation");
    drop(events);
    let mut resumed = EventReader::open(&api.base, &uri, &[("last-event-id", &from)])
        .await
        .unwrap();
    let again = resumed.next().await;
    assert_eq!(again.id, seen.id.take());
    // An id this server never sends (a browser would give up on a refusal): a
    // notification to refetch.
    let mut lost = EventReader::open(&api.base, &uri, &[("last-event-id", "evt-1234")])
        .await
        .unwrap();
    assert_eq!(lost.next().await.data["type"], "refetchEvaluation");
    // A refetch for a notification this server has moved past answers at once
    // (it waits only for one it has not read yet), in full.
    let stale = format!("{SINGLE}?flagConfigEtag={}", urlencode(&new_etag));
    let started = std::time::Instant::now();
    let answered = post(&api, &stale, "{}", &[("if-none-match", &new_etag)]).await;
    assert_eq!(answered.status, 200, "{answered:?}");
    assert_ne!(answered.headers["etag"].to_str().unwrap(), new_etag);
    assert!(
        started.elapsed() < Duration::from_millis(900),
        "it waited {:?}",
        started.elapsed()
    );
    // A token that is not this key's opens nothing.
    let forged = uri.replace("token=", "token=9");
    let refused = EventReader::open(&api.base, &forged, &[])
        .await
        .err()
        .unwrap();
    assert_eq!(refused.0, 401, "{refused:?}");
    console.stop().await;
}

/// The accept loop answers plain evaluation requests itself, past the router, and
/// the router answers the rest (a percent-encoded key): both the same, headers too.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_direct_way_and_the_routed_way_answer_alike() {
    let console = TestConsole::start(Backend::Sqlite).await;
    let api = console.api(&console.client_key("prod", "web").await);
    let direct = post(&api, &format!("{SINGLE}/dark_mode"), "{}", &[]).await;
    let routed = post(&api, &format!("{SINGLE}/dark%5Fmode"), "{}", &[]).await;
    assert_eq!((direct.status, &direct.body), (routed.status, &routed.body));
    for name in [
        "content-type",
        "access-control-allow-origin",
        "access-control-expose-headers",
        "x-content-type-options",
        "cache-control",
        "content-security-policy",
    ] {
        assert_eq!(direct.headers.get(name), routed.headers.get(name), "{name}");
        assert!(direct.headers.get(name).is_some(), "{name}");
    }
    // Over the body limit: refused in OFREP's shape, by either way.
    let big = format!(r#"{{"context": {{"pad": "{}"}}}}"#, "x".repeat(70 * 1024));
    for path in [
        format!("{SINGLE}/dark_mode"),
        format!("{SINGLE}/dark%5Fmode"),
    ] {
        let reply = post(&api, &path, &big, &[]).await;
        assert_eq!(
            (reply.status, reply.body["errorCode"].as_str()),
            (400, Some("PARSE_ERROR")),
            "{path}"
        );
    }
    console.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn browsers_on_another_origin_may_ask() {
    let console = TestConsole::start(Backend::Sqlite).await;
    let preflight = reqwest::Client::new()
        .request(
            reqwest::Method::OPTIONS,
            format!("http://{}{SINGLE}", console.address),
        )
        .header("origin", "https://app.example")
        .header("access-control-request-method", "POST")
        .header(
            "access-control-request-headers",
            "authorization,content-type,if-none-match",
        )
        .send()
        .await
        .unwrap();
    assert_eq!(preflight.status(), 204);
    let allowed = preflight.headers()["access-control-allow-headers"]
        .to_str()
        .unwrap()
        .to_lowercase();
    for header in ["authorization", "content-type", "if-none-match"] {
        assert!(allowed.contains(header), "{allowed}");
    }
    let api = console.api(&console.client_key("prod", "web").await);
    let reply = post(&api, SINGLE, "{}", &[("origin", "https://app.example")]).await;
    assert_eq!(reply.headers["access-control-allow-origin"], "*");
    assert!(
        reply.headers["access-control-expose-headers"]
            .to_str()
            .unwrap()
            .contains("etag")
    );
    console.stop().await;
}

fn urlencode(text: &str) -> String {
    text.bytes()
        .map(|b| match b {
            b'A'..=b'Z' | b'a'..=b'z' | b'0'..=b'9' | b'-' | b'_' | b'.' | b'~' => {
                (b as char).to_string()
            }
            other => format!("%{other:02X}"),
        })
        .collect()
}
