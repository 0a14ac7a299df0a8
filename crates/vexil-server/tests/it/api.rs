//! The JSON API on a real listener: the runbook's flows through `/api/v1` on both
//! databases, and every bad input with its status, error code and message, each
//! leaving the database as it was.

use serde_json::json;
use vexil_store::Backend;

use crate::harness::TestConsole;

/// Read, flip, conflict, no change, elevation and the audit log, as automation does.
async fn the_api_flips_as_the_console_does(backend: Backend) {
    let console = TestConsole::start(backend).await;
    let ops = console.api(&console.token("ops1").await);
    let root = console.api(&console.token("root").await);
    let admin = console.api(&console.token("admin").await);

    let list = ops.get("/api/v1/flags?env=prod").await;
    assert_eq!(list.status, 200, "{list:?}");
    let flags = list.body.as_array().unwrap();
    assert_eq!(flags.len(), 4);
    assert_eq!(
        flags[0],
        json!({"key": "dark_mode", "env": "prod", "value": false, "source": "yaml",
               "risk": "low", "description": "Dark theme for the dashboard.",
               "db_value": null, "updated_by": null, "updated_at": null, "dormant_env_var": null})
    );

    let flipped = ops
        .flip("dark_mode", false, json!({"reason": "incident 42"}))
        .await;
    assert_eq!(flipped.status, 200, "{flipped:?}");
    assert_eq!(flipped.body["from"], false);
    assert_eq!(flipped.body["to"], true);
    let state = &flipped.body["flag"];
    assert_eq!(
        (&state["value"], &state["source"], &state["updated_by"]),
        (&json!(true), &json!("db"), &json!("ops1"))
    );
    assert_eq!(
        console.row("dark_mode", "prod").await,
        Some((true, Some("ops1".into())))
    );
    let audit = console.audit().await;
    assert_eq!(audit[0].action, "console.flag.flip");
    assert_eq!(audit[0].admin_name.as_deref(), Some("ops1"));
    assert_eq!(
        audit[0].payload,
        json!({"flag": "dark_mode", "env": "prod", "from": false, "to": true,
               "via": "api", "reason": "incident 42"})
    );
    assert_eq!(flipped.body["audit_id"], audit[0].id);

    // One flag; the same state.
    let one = ops.get("/api/v1/flags/dark_mode?env=prod").await;
    assert_eq!(one.body, *state);

    // A stale `from`: 409 with the value in force, who and when; nothing written.
    let rows = console.audit().await.len();
    let stale = ops.flip("dark_mode", false, json!({})).await;
    stale.assert_error(409, "conflict", "dark_mode in prod is on now");
    assert_eq!(
        (
            &stale.body["current"]["value"],
            &stale.body["current"]["source"],
            &stale.body["current"]["updated_by"]
        ),
        (&json!(true), &json!("db"), &json!("ops1"))
    );
    assert!(stale.body["current"]["updated_at"].is_string());
    let same = ops
        .post(
            "/api/v1/flags/dark_mode/flip",
            r#"{"env":"prod","from":true,"to":true}"#,
        )
        .await;
    same.assert_error(409, "no_change", "already on");
    assert_eq!(console.audit().await.len(), rows);

    // The role matrix: ops may not flip medium or high flags; a superadmin needs a
    // fresh code for high, checked once.
    ops.flip("search_typo_tolerance", true, json!({}))
        .await
        .assert_error(403, "forbidden", "role ops may not flip a medium-risk flag");
    root.flip("new_checkout", false, json!({}))
        .await
        .assert_error(403, "elevation_required", "elevate with a fresh TOTP code");
    assert_eq!(console.audit().await.len(), rows);
    root.flip("new_checkout", false, json!({"totp": "000000"}))
        .await
        .assert_error(403, "totp_invalid", "wrong or expired");
    assert_eq!(
        console.actions_since(0).await.last().map(String::as_str),
        Some("console.auth.elevate_failed")
    );
    let code = console.root_code(0);
    let high = root
        .flip("new_checkout", false, json!({"totp": code}))
        .await;
    assert_eq!(high.status, 200, "{high:?}");
    let actions = console.actions_since(0).await;
    assert_eq!(
        actions[actions.len() - 2..],
        ["console.auth.elevate", "console.flag.flip"]
    );
    root.flip("new_checkout", true, json!({"totp": code}))
        .await
        .assert_error(403, "totp_invalid", "already used");
    // The role first: ops sending a code for a high-risk flag is refused without the
    // code being looked at (no elevation row); a code sent for a flag that needs none
    // is not checked either.
    let rows = console.audit().await.len();
    ops.flip("new_checkout", true, json!({"totp": "123456"}))
        .await
        .assert_error(403, "forbidden", "role ops may not flip a high-risk flag");
    assert_eq!(console.audit().await.len(), rows);
    let low = root
        .flip("legacy_banner", false, json!({"totp": "000000"}))
        .await;
    assert_eq!(low.status, 200, "{low:?}");
    assert_eq!(
        console.actions_since(0).await.last().map(String::as_str),
        Some("console.flag.flip")
    );
    assert_eq!(console.audit().await.len(), rows + 1);
    // A superadmin without TOTP is told how to get it.
    admin
        .flip("new_checkout", true, json!({"totp": "123456"}))
        .await
        .assert_error(403, "elevation_required", "vexil user totp admin");

    // The audit log, newest first, a page at a time, filtered: root flipped
    // new_checkout, then legacy_banner.
    let query = "/api/v1/audit?action=console.flag.flip&actor=root&limit=1";
    let page = ops.get(query).await;
    assert_eq!(page.status, 200, "{page:?}");
    let entries = page.body["entries"].as_array().unwrap();
    assert_eq!(entries.len(), 1);
    assert_eq!(entries[0]["target_id"], "legacy_banner");
    assert_eq!(entries[0]["actor"], "root");
    let next = page.body["next"].as_str().unwrap();
    assert_eq!(next, entries[0]["id"].to_string());
    let older = ops.get(&format!("{query}&before={next}")).await;
    assert_eq!(
        older.body["entries"][0]["target_id"], "new_checkout",
        "{older:?}"
    );
    assert_eq!(older.body["entries"].as_array().unwrap().len(), 1);
    assert_eq!(older.body["next"], json!(null), "the last page");
    let flips = ops
        .get("/api/v1/audit?action=console.flag.flip&flag=dark_mode&actor=ops1&env=prod")
        .await;
    assert_eq!(flips.body["entries"].as_array().unwrap().len(), 1);
    assert_eq!(flips.body["next"], json!(null));

    // Empty text parameters are absent, as a script's template sends them.
    let empty = ops
        .get("/api/v1/audit?action=&flag=dark_mode&actor=&env=&before=")
        .await;
    assert_eq!(empty.status, 200, "{empty:?}");
    assert!(!empty.body["entries"].as_array().unwrap().is_empty());

    let me = ops.get("/api/v1/me").await;
    assert_eq!(
        me.body,
        json!({"name": "ops1", "role": "ops", "totp_enrolled": false})
    );
    console.stop().await;
}
vexil_testkit::both!(the_api_flips_as_the_console_does);

/// Every kind of bad input (docs/api.md#errors): a clear status, code and message naming what was
/// wrong, and nothing written.
#[tokio::test]
async fn bad_input_is_named_and_changes_nothing() {
    let console = TestConsole::start(Backend::Sqlite).await;
    let token = console.token("ops1").await;
    let ops = console.api(&token);
    let doomed = console.token("helper").await;
    let rows = console.audit().await.len();

    // Authorization.
    let anonymous = ops.without_token();
    anonymous.get("/api/v1/flags?env=prod").await.assert_error(
        401,
        "unauthenticated",
        "no Authorization header",
    );
    for header in [
        "Basic b3BzMTpwYXNzd29yZA==".to_owned(),
        "Bearer".to_owned(),
        "Bearer ".to_owned(),
        format!("Bearer {token} extra"),
        format!("Bearer {}", "x".repeat(300)),
    ] {
        let reply = ops
            .with_authorization(&header)
            .get("/api/v1/flags?env=prod")
            .await;
        reply.assert_error(401, "unauthenticated", "malformed Authorization header");
        assert_eq!(reply.headers["www-authenticate"], "Bearer realm=\"vexil\"");
    }
    ops.with_authorization("Bearer vxl_0000")
        .get("/api/v1/me")
        .await
        .assert_error(401, "unauthenticated", "invalid or revoked API token");
    // The scheme is case-insensitive (RFC 9110).
    let lower = ops.with_authorization(&format!("bearer {token}"));
    assert_eq!(lower.get("/api/v1/me").await.status, 200);

    // A token whose account was deleted (by hand: vexil disables, never deletes; the
    // foreign key takes the token with it).
    console
        .test_db()
        .execute(
            "DELETE FROM api_tokens WHERE user_id = (SELECT id FROM users WHERE name = 'helper')",
        )
        .await
        .unwrap();
    console.api(&doomed).get("/api/v1/me").await.assert_error(
        401,
        "unauthenticated",
        "invalid or revoked API token",
    );

    // Bodies.
    let flip = "/api/v1/flags/dark_mode/flip";
    for (body, says) in [
        (
            r#"{"env":"prod","from":"false","to":true}"#,
            "from: invalid type: string \"false\", expected a boolean",
        ),
        (
            r#"{"env":"prod","from":false,"to":1}"#,
            "to: invalid type: integer `1`, expected a boolean",
        ),
        (r#"{"env":"prod","to":true}"#, "missing field `from`"),
        (
            r#"{"env":"prod","from":false,"to":true,"force":true}"#,
            "unknown field `force`",
        ),
        (
            r#"{"env":7,"from":false,"to":true}"#,
            "env: invalid type: integer `7`, expected a string",
        ),
        (
            r#"{"env":"prod","from":false,"to":true,"totp":123456}"#,
            "totp: invalid type: integer",
        ),
        (r#"{"env":"prod","from":false,"#, "EOF while parsing"),
        ("[]", "expected struct FlipRequest"),
    ] {
        ops.post(flip, body)
            .await
            .assert_error(422, "invalid_request", says);
    }
    let reason = format!(
        r#"{{"env":"prod","from":false,"to":true,"reason":"{}"}}"#,
        "x".repeat(501)
    );
    ops.post(flip, &reason).await.assert_error(
        422,
        "invalid_request",
        "reason: it is longer than 500 characters",
    );
    let no_type = ops
        .send(
            ops.client
                .post(format!("{}{flip}", ops.base))
                .body(r#"{"env":"prod","from":false,"to":true}"#),
        )
        .await;
    no_type.assert_error(422, "invalid_request", "Content-Type: application/json");
    ops.flip("dark_mode", false, json!({"env": "qa"}))
        .await
        .assert_error(
            422,
            "unknown_env",
            "unknown env 'qa' (expected one of: staging, prod)",
        );
    let huge = format!(
        r#"{{"env":"prod","from":false,"to":true,"reason":"{}"}}"#,
        "x".repeat(70_000)
    );
    ops.post(flip, &huge)
        .await
        .assert_error(413, "payload_too_large", "over the limit");

    // Paths and queries.
    ops.flip("Dark-Mode", false, json!({})).await.assert_error(
        422,
        "invalid_request",
        "key: invalid flag key 'Dark-Mode'",
    );
    ops.get("/api/v1/flags/no_such_flag?env=prod")
        .await
        .assert_error(404, "not_found", "unknown flag 'no_such_flag'");
    ops.flip("no_such_flag", false, json!({}))
        .await
        .assert_error(404, "not_found", "unknown flag 'no_such_flag'");
    ops.get("/api/v1/flags")
        .await
        .assert_error(422, "invalid_request", "missing field `env`");
    ops.get("/api/v1/flags?env=prod&colour=red")
        .await
        .assert_error(422, "invalid_request", "unknown field `colour`");
    for (query, says) in [
        // An integer given empty is no integer (the OpenAPI document's schema).
        ("limit=", "limit: \"\" is not a whole number from 1 to 500"),
        ("limit=0", "limit: 0 is out of range: 1 to 500"),
        ("limit=501", "limit: 501 is out of range: 1 to 500"),
        ("limit=-1", "limit: \"-1\" is not a whole number"),
        ("limit=ten", "limit: \"ten\" is not a whole number"),
        ("before=abc", "before: not a cursor"),
        ("before=0", "before: not a cursor"),
        ("before=-5", "before: not a cursor"),
        ("since=yesterday", "since: "),
        ("env=qa", "unknown env 'qa'"),
    ] {
        let reply = ops.get(&format!("/api/v1/audit?{query}")).await;
        let code = if query.starts_with("env") {
            "unknown_env"
        } else {
            "invalid_request"
        };
        reply.assert_error(422, code, says);
    }
    // The promotions list's limit is the same integer.
    for query in ["limit=", "limit=0", "limit=x"] {
        ops.get(&format!("/api/v1/promotions?{query}"))
            .await
            .assert_error(422, "invalid_request", "limit: ");
    }
    ops.get("/api/v1/nothing")
        .await
        .assert_error(404, "not_found", "no route /api/v1/nothing");
    let wrong_method = ops
        .send(ops.client.delete(format!("{}/api/v1/me", ops.base)))
        .await;
    wrong_method.assert_error(405, "method_not_allowed", "does not take that method");
    assert_eq!(wrong_method.headers["allow"], "GET,HEAD");

    assert_eq!(console.audit().await.len(), rows, "nothing was written");
    assert_eq!(console.row("dark_mode", "prod").await, None);
    console.stop().await;
}

/// The API's cached flag states: a caller reads its own flip at once, and a change
/// made elsewhere (here the runbook's SQL, as a script would run it) as soon as the
/// server's change feed reports it (with entries that would otherwise live an hour).
async fn reads_follow_changes_made_anywhere(backend: Backend) {
    // Entries never age out in this test: only the feed can make the change show.
    let options = crate::harness::Options {
        api: vexil_server::ApiConfig {
            flag_cache_max_age: std::time::Duration::from_secs(3600),
            ..vexil_server::ApiConfig::default()
        },
        ..crate::harness::Options::default()
    };
    let console = TestConsole::start_with(vexil_testkit::TestDb::new(backend).await, options).await;
    let ops = console.api(&console.token("ops1").await);
    let value = |reply: &crate::harness::Reply| reply.body["value"].as_bool();
    let read = || ops.get("/api/v1/flags/dark_mode?env=prod");
    assert_eq!(value(&read().await), Some(false));
    assert_eq!(ops.flip("dark_mode", false, json!({})).await.status, 200);
    assert_eq!(value(&read().await), Some(true), "its own flip, at once");

    console
        .test_db()
        .execute(
            "UPDATE console_feature_flags SET value = 0, updated_at = CURRENT_TIMESTAMP \
             WHERE flag_key = 'dark_mode' AND env = 'prod'",
        )
        .await
        .unwrap();
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(5);
    loop {
        let reply = read().await;
        if value(&reply) == Some(false) {
            assert_eq!(
                reply.body["updated_by"],
                json!(null),
                "direct SQL names no one"
            );
            break;
        }
        assert!(
            std::time::Instant::now() < deadline,
            "the SQL change never showed: {reply:?}"
        );
        tokio::task::yield_now().await;
    }
    console.stop().await;
}
vexil_testkit::both!(reads_follow_changes_made_anywhere);
