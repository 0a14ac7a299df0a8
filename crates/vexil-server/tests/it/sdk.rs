//! The evaluation plane's SDK routes over a real socket: the snapshot and its ETag,
//! the change stream (a flip, a promotion and the runbook's direct SQL reaching it,
//! `Last-Event-ID`), reports that make a following process a live instance, and
//! every credential refused where it does not belong.

use std::time::Duration;

use serde_json::{Value, json};
use vexil_store::Backend;

use crate::events::EventReader;
use crate::harness::{Api, NO_SOAK_FLAGS, Options, TestConsole};

/// The `Authorization` header of a client key.
fn bearer(key: &str) -> String {
    format!("Bearer {key}")
}

/// The base URL of `console`.
fn base(console: &TestConsole) -> String {
    format!("http://{}", console.address)
}

/// `console`'s prod stream, opened with `key` (and these extra headers).
async fn stream(console: &TestConsole, key: &str, headers: &[(&str, &str)]) -> EventReader {
    let authorization = bearer(key);
    let mut all = vec![("authorization", authorization.as_str())];
    all.extend_from_slice(headers);
    EventReader::open(&base(console), "/sdk/v1/stream", &all)
        .await
        .unwrap()
}

/// The snapshot `key` reads, once `flag`'s row is `row` (the hub follows the
/// database's feed: on SQLite within its 20 ms look).
async fn snapshot_once(api: &Api, flag: &str, row: Value) -> crate::harness::Reply {
    let deadline = std::time::Instant::now() + Duration::from_secs(10);
    loop {
        let reply = api.get("/sdk/v1/snapshot").await;
        assert_eq!(reply.status, 200, "{reply:?}");
        if reply.body["flags"][flag]["row"] == row {
            return reply;
        }
        assert!(
            std::time::Instant::now() < deadline,
            "{flag} never {row}: {reply:?}"
        );
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
}

async fn a_snapshot_holds_rows_and_defaults_with_an_etag(backend: Backend) {
    let console = TestConsole::start(backend).await;
    let key = console.client_key("prod", "web").await;
    let api = console.api(&key);
    let reply = api.get("/sdk/v1/snapshot?env=prod").await;
    assert_eq!(reply.status, 200, "{reply:?}");
    assert_eq!(reply.headers["content-type"], "application/json");
    let body = &reply.body;
    assert_eq!(body["env"], "prod");
    assert_eq!(body["master_switch_default"], true);
    // Every declared flag, in file order; rows and defaults, never a resolved value.
    let text = reqwest::Client::new()
        .get(format!("{}/sdk/v1/snapshot", base(&console)))
        .header("authorization", bearer(&key))
        .send()
        .await
        .unwrap()
        .text()
        .await
        .unwrap();
    let at = |flag: &str| text.find(&format!("\"{flag}\":{{")).unwrap();
    assert!(at("dark_mode") < at("search_typo_tolerance"), "{text}");
    assert!(at("search_typo_tolerance") < at("new_checkout"), "{text}");
    assert!(at("new_checkout") < at("legacy_banner"), "{text}");
    assert_eq!(body["flags"].as_object().unwrap().len(), 4);
    assert_eq!(
        body["flags"]["search_typo_tolerance"],
        json!({"row": null, "default": true, "risk": "medium", "description": "Fuzzy search.", "audit_id": null})
    );
    let etag = reply.headers["etag"].to_str().unwrap().to_owned();
    let again = api
        .send(
            api.client
                .get(format!("{}/sdk/v1/snapshot", api.base))
                .header("if-none-match", &etag),
        )
        .await;
    assert_eq!(again.status, 304, "{again:?}");

    let admin = console.api(&console.token("admin").await);
    let flipped = admin.flip("dark_mode", false, json!({})).await;
    assert_eq!(flipped.status, 200, "{flipped:?}");
    let reply = snapshot_once(&api, "dark_mode", json!(true)).await;
    let flip = console.audit().await.remove(0);
    assert_eq!(reply.body["flags"]["dark_mode"]["audit_id"], json!(flip.id));
    assert_ne!(reply.headers["etag"].to_str().unwrap(), etag);
    console.stop().await;
}
vexil_testkit::both!(a_snapshot_holds_rows_and_defaults_with_an_etag);

async fn the_stream_sends_a_snapshot_then_every_change_of_its_env(backend: Backend) {
    let console = TestConsole::start(backend).await;
    let key = console.client_key("prod", "web").await;
    let mut events = stream(&console, &key, &[]).await;
    let first = events.next().await;
    assert_eq!(first.event, "snapshot");
    assert_eq!(first.data["env"], "prod");
    assert_eq!(first.data["flags"]["dark_mode"]["row"], Value::Null);
    // A snapshot's id: the change it is current to, and a number of its own.
    let id = first.id.clone().unwrap();
    let (change, number) = id.split_once('.').unwrap();
    assert_eq!(change, first.data["change_id"].to_string());
    assert!(number.parse::<u64>().unwrap() > 0, "{id}");

    // A flip through the API, then the runbook's Option A, verbatim.
    let admin = console.api(&console.token("admin").await);
    assert_eq!(admin.flip("dark_mode", false, json!({})).await.status, 200);
    let change = events.next().await;
    assert_eq!(change.event, "change");
    let flip = console.audit().await.remove(0);
    assert_eq!(
        change.data,
        json!({"change_id": change.data["change_id"], "key": "dark_mode", "row": true, "audit_id": flip.id})
    );
    assert_eq!(
        change.id.as_deref(),
        Some(change.data["change_id"].to_string().as_str())
    );
    console
        .test_db()
        .execute(
            "UPDATE console_feature_flags SET value=0, updated_at=CURRENT_TIMESTAMP \
             WHERE flag_key='dark_mode' AND env='prod'",
        )
        .await
        .unwrap();
    let sql = events.next().await;
    assert_eq!(
        (sql.data["key"].as_str(), &sql.data["row"]),
        (Some("dark_mode"), &json!(false))
    );
    let audited = console.audit().await.remove(0);
    assert_eq!(audited.payload["via"], "sql");
    assert_eq!(sql.data["audit_id"], json!(audited.id));
    assert!(
        sql.data["change_id"].as_i64() > change.data["change_id"].as_i64(),
        "{sql:?} after {change:?}"
    );

    // A change in staging is not prod's: the next prod event is the next prod change.
    let staging = admin
        .post(
            "/api/v1/flags/dark_mode/flip",
            &json!({"env": "staging", "from": false, "to": true}).to_string(),
        )
        .await;
    assert_eq!(staging.status, 200, "{staging:?}");
    assert_eq!(
        admin.flip("new_checkout", false, json!({})).await.status,
        403
    );
    assert_eq!(
        admin
            .flip("search_typo_tolerance", true, json!({}))
            .await
            .status,
        200
    );
    let next = events.next().await;
    assert_eq!(next.data["key"], "search_typo_tolerance");
    console.stop().await;
}
vexil_testkit::both!(the_stream_sends_a_snapshot_then_every_change_of_its_env);

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_promotion_reaches_the_stream() {
    let options = Options {
        flags: format!("{}{NO_SOAK_FLAGS}", crate::harness::FLAGS),
        ..Options::default()
    };
    let test_db = vexil_testkit::TestDb::new(Backend::Sqlite).await;
    let console = TestConsole::start_with(test_db, options).await;
    let key = console.client_key("prod", "web").await;
    let mut events = stream(&console, &key, &[]).await;
    assert_eq!(events.next().await.event, "snapshot");
    let admin = console.api(&console.token("admin").await);
    let staging = admin
        .post(
            "/api/v1/flags/weekly_digest/flip",
            &json!({"env": "staging", "from": false, "to": true}).to_string(),
        )
        .await;
    assert_eq!(staging.status, 200, "{staging:?}");
    let marked = admin
        .post("/api/v1/flags/weekly_digest/promotions", "{}")
        .await;
    assert_eq!(marked.status, 201, "{marked:?}");
    let id = marked.body["promotion"]["id"].as_i64().unwrap();
    let approved = admin
        .post(&format!("/api/v1/promotions/{id}/approve"), "{}")
        .await;
    assert_eq!(approved.status, 200, "{approved:?}");
    let promoted = admin
        .post(&format!("/api/v1/promotions/{id}/promote"), "{}")
        .await;
    assert_eq!(promoted.status, 200, "{promoted:?}");
    let change = events.next().await;
    assert_eq!(
        (change.data["key"].as_str(), &change.data["row"]),
        (Some("weekly_digest"), &json!(true))
    );
    assert_eq!(change.data["audit_id"], promoted.body["flip_audit_id"]);
    console.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn last_event_id_replays_what_was_missed_or_sends_a_snapshot() {
    let console = TestConsole::start(Backend::Sqlite).await;
    let key = console.client_key("prod", "web").await;
    let admin = console.api(&console.token("admin").await);
    let mut events = stream(&console, &key, &[]).await;
    let snapshot = events.next().await;
    assert_eq!(admin.flip("dark_mode", false, json!({})).await.status, 200);
    let first = events.next().await;
    drop(events);
    // Missed while away: two more changes.
    assert_eq!(admin.flip("dark_mode", true, json!({})).await.status, 200);
    assert_eq!(
        admin.flip("legacy_banner", false, json!({})).await.status,
        200
    );
    // The hub has them once the snapshot shows the last one.
    snapshot_once(&console.api(&key), "legacy_banner", json!(true)).await;

    let from_first = first.id.clone().unwrap();
    let mut resumed = stream(&console, &key, &[("last-event-id", &from_first)]).await;
    let (a, b) = (resumed.next().await, resumed.next().await);
    assert_eq!(
        (a.event.as_str(), &a.data["key"], &a.data["row"]),
        ("change", &json!("dark_mode"), &json!(false))
    );
    assert_eq!(
        (b.event.as_str(), &b.data["key"]),
        ("change", &json!("legacy_banner"))
    );
    // From the snapshot itself: all three changes.
    let from_snapshot = snapshot.id.clone().unwrap();
    let mut again = stream(&console, &key, &[("last-event-id", &from_snapshot)]).await;
    assert_eq!(again.next().await.id, first.id);
    // From an id the hub never sent (another database's, or long gone): a snapshot.
    let mut unknown = stream(&console, &key, &[("last-event-id", "999999")]).await;
    let fresh = unknown.next().await;
    assert_eq!(fresh.event, "snapshot");
    assert_eq!(fresh.data["flags"]["legacy_banner"]["row"], true);
    // Not an id at all: refused, naming the header.
    let refused = EventReader::open(
        &base(&console),
        "/sdk/v1/stream",
        &[
            ("authorization", &bearer(&key)),
            ("last-event-id", "evt-12; drop"),
        ],
    )
    .await
    .err()
    .unwrap();
    assert_eq!(refused.0, 422, "{refused:?}");
    assert_eq!(refused.1["error"], "invalid_request");
    assert!(
        refused.1["message"]
            .as_str()
            .unwrap()
            .contains("Last-Event-ID"),
        "{refused:?}"
    );
    console.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_reload_of_the_flags_file_reaches_subscribers_as_a_snapshot() {
    let console = TestConsole::start(Backend::Sqlite).await;
    let key = console.client_key("prod", "web").await;
    let mut events = stream(&console, &key, &[]).await;
    let before = events.next().await;
    let reloaded = format!(
        "{}brand_new:\n  default: true\n  description: New.\n  risk: low\n",
        crate::harness::FLAGS
    );
    std::fs::write(&console.state.flags_file, reloaded).unwrap();
    console.state.reload().await.unwrap();
    let after = events.next().await;
    assert_eq!(after.event, "snapshot");
    assert_eq!(after.data["flags"]["brand_new"]["default"], true);
    // A new id: a process that last saw the old snapshot is not told it missed nothing.
    assert_ne!(after.id, before.id);
    let mut resumed = stream(
        &console,
        &key,
        &[("last-event-id", before.id.as_deref().unwrap())],
    )
    .await;
    assert_eq!(
        resumed.next().await.data["flags"]["brand_new"]["default"],
        true
    );
    console.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn each_credential_is_refused_where_it_does_not_belong() {
    let console = TestConsole::start(Backend::Sqlite).await;
    let key = console.client_key("prod", "web").await;
    let token = console.token("admin").await;
    let anonymous = console.api("").without_token();
    anonymous.get("/sdk/v1/snapshot").await.assert_error(
        401,
        "unauthenticated",
        "send `Authorization: Bearer vxc_",
    );
    // An account's token reads no SDK route; a client key reads no management route.
    console
        .api(&token)
        .get("/sdk/v1/snapshot")
        .await
        .assert_error(401, "unauthenticated", "applications use a client key");
    console
        .api(&key)
        .get("/api/v1/flags?env=prod")
        .await
        .assert_error(
            401,
            "unauthenticated",
            "a client key cannot use the management API",
        );
    console
        .api("vxc_0000000000000000000000000000000000000000000000000000000000000000")
        .get("/sdk/v1/snapshot")
        .await
        .assert_error(401, "unauthenticated", "invalid or revoked client key");
    // A key reads its own env only.
    console
        .api(&key)
        .get("/sdk/v1/snapshot?env=staging")
        .await
        .assert_error(422, "invalid_request", "this client key reads prod");
    // The SDK's refusals by the framework speak its JSON too.
    let wrong = console
        .api(&key)
        .send(reqwest::Client::new().put(format!("{}/sdk/v1/snapshot", base(&console))))
        .await;
    assert_eq!(
        (wrong.status, wrong.code()),
        (405, "method_not_allowed"),
        "{wrong:?}"
    );
    // In the console, a Bearer header opens nothing.
    let page = reqwest::Client::builder()
        .redirect(reqwest::redirect::Policy::none())
        .build()
        .unwrap()
        .get(format!("{}/console/flags", base(&console)))
        .header("authorization", bearer(&key))
        .send()
        .await
        .unwrap();
    assert_eq!(page.status(), 303);
    console.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_revoked_key_loses_its_open_stream_within_the_cache_window() {
    let console = TestConsole::start(Backend::Sqlite).await;
    let key = console.client_key("prod", "web").await;
    let mut events = stream(&console, &key, &[]).await;
    events.next().await;
    let admin = console.api(&console.token("admin").await);
    let listed = admin.get("/api/v1/client-keys").await;
    let id = listed.body[0]["id"].as_i64().unwrap();
    let revoked = admin
        .post(&format!("/api/v1/client-keys/{id}/revoke"), "{}")
        .await;
    assert_eq!(revoked.status, 200, "{revoked:?}");
    // Within the key cache window (2 s) and a check of the revoked keys.
    assert!(
        events.ends_within(Duration::from_secs(8)).await,
        "the stream stayed open"
    );
    // A stream opened on the key's cached entry after the server learnt of the
    // revocation (the test clock holds the cache entry young) ends at once too.
    let mut late = stream(&console, &key, &[]).await;
    assert!(
        late.ends_within(Duration::from_secs(3)).await,
        "the late stream stayed open"
    );
    console.clock.advance(chrono::TimeDelta::seconds(3));
    console
        .api(&key)
        .get("/sdk/v1/snapshot")
        .await
        .assert_error(401, "unauthenticated", "invalid or revoked client key");
    console.stop().await;
}

/// A report as a following Python process sends it.
fn report(extra: &Value) -> String {
    let mut body = json!({
        "instance": "a1b2c3",
        "host": "web.1",
        "pid": 4242,
        "language": "python",
        "version": "0.1.0",
        "started_at": "2026-12-01T10:00:00Z",
        "master_switch": "unset",
        "vars": {"dark_mode": "on"},
        "change_id": 3,
        "applied": {},
    });
    body.as_object_mut()
        .unwrap()
        .extend(extra.as_object().unwrap().clone());
    body.to_string()
}

async fn a_report_makes_a_following_process_a_live_instance(backend: Backend) {
    let console = TestConsole::start(backend).await;
    let key = console.client_key("prod", "web").await;
    let api = console.api(&key);
    let app = &console.state.app;
    for (body, says) in [
        (
            report(&json!({"vars": {"no_such_flag": "on"}})),
            "vars: unknown flag 'no_such_flag'",
        ),
        (
            report(&json!({"vars": {"dark_mode": "1"}})),
            "'1' is not a parsed state",
        ),
        (
            report(&json!({"master_switch": "yes"})),
            "'yes' is not a parsed state",
        ),
        (
            report(&json!({"env": "staging"})),
            "names env 'staging' but this client key reads prod",
        ),
        (
            report(&json!({"app": "worker"})),
            "names application 'worker' but this client key is web's",
        ),
        (
            report(&json!({"host": "web 1\n"})),
            "host: it holds a character that is not allowed",
        ),
        ("{\"instance\": 5}".to_owned(), "instance"),
    ] {
        api.post("/sdk/v1/report", &body)
            .await
            .assert_error(422, "invalid_request", says);
    }
    assert!(
        app.live_instances(Some("prod")).await.unwrap().is_empty(),
        "refused reports recorded"
    );

    let admin = console.api(&console.token("admin").await);
    assert_eq!(admin.flip("dark_mode", false, json!({})).await.status, 200);
    let flip = console.audit().await.remove(0);
    let reply = api
        .post(
            "/sdk/v1/report",
            &report(&json!({"applied": {"dark_mode": {"audit_id": flip.id, "applied_at": "2026-12-01T10:00:01Z"}}})),
        )
        .await;
    assert_eq!(reply.status, 204, "{reply:?}");
    let live = app.live_instances(Some("prod")).await.unwrap();
    assert_eq!(live.len(), 1, "{live:?}");
    let process = &live[0];
    assert_eq!(
        (
            process.application.as_str(),
            process.host.as_str(),
            process.pid,
            process.language.as_str()
        ),
        ("web", "web.1", 4242, "python")
    );
    assert_eq!(process.transport, vexil_store::Transport::Server);
    assert_eq!(process.change_id, Some(3));
    // Its unset master switch acts as on (it follows vexil), its variable as parsed.
    assert_eq!(process.env_layer["console_feature_flags_db"], "on");
    assert_eq!(process.env_layer["dark_mode"], "on");
    // The console's fleet page shows it, with what it runs.
    console.clock.set(chrono::Utc::now());
    let page = console
        .signed_in("ops1")
        .await
        .get("/console/instances")
        .await;
    page.assert_contains(r#"<td data-label="Runs">python 0.1.0, follows the server</td>"#);
    // The flip's receipt counts it like any process.
    let receipts = app.receipts(flip.id).await.unwrap();
    assert_eq!(receipts.instances.len(), 1);
    assert!(
        matches!(
            receipts.instances[0].1,
            vexil_app::ReceiptState::Applied { .. }
        ),
        "{receipts:?}"
    );
    console.stop().await;
}
vexil_testkit::both!(a_report_makes_a_following_process_a_live_instance);

/// Requests are limited per key, never per address: one key over its allowance is
/// told when to come back, another key from the same address is not slowed; an
/// address that presents bad keys is slowed before each costs a database read.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn limits_are_per_key_and_bad_keys_per_address() {
    let options = Options {
        sdk: vexil_server::SdkConfig {
            requests_per_second: 5,
            ..vexil_server::SdkConfig::default()
        },
        ..Options::default()
    };
    let console =
        TestConsole::start_with(vexil_testkit::TestDb::new(Backend::Sqlite).await, options).await;
    let busy = console.api(&console.client_key("prod", "web").await);
    let quiet = console.api(&console.client_key("prod", "worker").await);
    let mut refused = None;
    for _ in 0..20 {
        let reply = busy.get("/sdk/v1/snapshot").await;
        if reply.status == 429 {
            refused = Some(reply);
            break;
        }
        assert_eq!(reply.status, 200, "{reply:?}");
    }
    let refused = refused.expect("the busy key was never limited");
    refused.assert_error(429, "rate_limited", "try again in");
    assert!(refused.headers.contains_key("retry-after"), "{refused:?}");
    // The same address, another key: not slowed.
    assert_eq!(quiet.get("/sdk/v1/snapshot").await.status, 200);
    // Bad keys from one address: past 20 a second, refused before they are looked up.
    let mut limited = false;
    for i in 0..40 {
        let bad = console.api(&format!("vxc_{i:064x}"));
        let reply = bad.get("/sdk/v1/snapshot").await;
        if reply.status == 429 {
            limited = true;
            break;
        }
        assert_eq!(reply.status, 401, "{reply:?}");
    }
    assert!(limited, "40 bad keys from one address, never slowed");
    console.stop().await;
}
