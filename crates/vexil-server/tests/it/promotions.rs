//! Promotions through the JSON API on both databases, with the test clock: mark →
//! soak → approve → promote, every refusal with its status and code and nothing
//! written, and the typed confirmation and TOTP of a high-risk flag.

use chrono::TimeDelta;
use serde_json::json;
use vexil_app::StepUp;
use vexil_core::Clock;
use vexil_store::Backend;
use vexil_testkit::TestDb;

use crate::harness::{Api, FLAGS, NO_SOAK_FLAGS, Options, TestConsole};

/// A console whose flags file adds `NO_SOAK_FLAGS`.
pub(crate) async fn console(backend: Backend) -> TestConsole {
    let options = Options {
        flags: format!("{FLAGS}{NO_SOAK_FLAGS}"),
        ..Options::default()
    };
    TestConsole::start_with(TestDb::new(backend).await, options).await
}

/// Turns `flag` on in staging, as ops or root.
async fn on_in_staging(api: &Api, flag: &str, extra: serde_json::Value) {
    let mut body = json!({"env": "staging", "from": false, "to": true});
    if let (Some(body), Some(extra)) = (body.as_object_mut(), extra.as_object()) {
        body.extend(extra.clone());
    }
    let reply = api
        .post(&format!("/api/v1/flags/{flag}/flip"), &body.to_string())
        .await;
    assert_eq!(reply.status, 200, "{reply:?}");
}

async fn through_the_api(backend: Backend) {
    let console = console(backend).await;
    let ops = console.api(&console.token("ops1").await);
    let admin = console.api(&console.token("admin").await);
    let root = console.api(&console.token("root").await);

    // dark_mode: low risk, a soak of 24 h.
    on_in_staging(&ops, "dark_mode", json!({})).await;
    ops.post("/api/v1/flags/dark_mode/promotions", "")
        .await
        .assert_error(
            403,
            "forbidden",
            "role ops may not mark a flag active for prod",
        );
    let marked = admin.post("/api/v1/flags/dark_mode/promotions", "").await;
    assert_eq!(marked.status, 201, "{marked:?}");
    let id = marked.body["promotion"]["id"].as_i64().unwrap();
    let soak_end = console.clock.now() + TimeDelta::hours(24);
    let promotion = &marked.body["promotion"];
    assert_eq!(
        (
            &promotion["flag"],
            &promotion["state"],
            &promotion["risk"],
            &promotion["marked_by"],
            &promotion["soak_remaining_seconds"],
            &promotion["confirmation_phrase"]
        ),
        (
            &json!("dark_mode"),
            &json!("pending"),
            &json!("low"),
            &json!("admin"),
            &json!(86_400),
            &json!(null)
        )
    );
    assert_eq!(
        promotion["soak_ends_at"]
            .as_str()
            .unwrap()
            .parse::<chrono::DateTime<chrono::Utc>>()
            .unwrap(),
        soak_end
    );
    admin
        .post("/api/v1/flags/dark_mode/promotions", "")
        .await
        .assert_error(
            409,
            "invalid_state",
            "already has an open promotion (pending)",
        );
    admin
        .post("/api/v1/flags/legacy_banner/promotions", "")
        .await
        .assert_error(409, "invalid_state", "it is off in staging");
    admin
        .post("/api/v1/flags/no_such_flag/promotions", "")
        .await
        .assert_error(404, "not_found", "unknown flag 'no_such_flag'");

    // Early, unapproved, unknown, malformed: each refused, nothing written.
    let before = console.audit().await.len();
    let approve = format!("/api/v1/promotions/{id}/approve");
    let promote = format!("/api/v1/promotions/{id}/promote");
    admin.post(&approve, "").await.assert_error(
        409,
        "invalid_state",
        &format!(
            "the soak ends at {} UTC",
            soak_end.format("%Y-%m-%d %H:%M:%S")
        ),
    );
    admin.post(&promote, "{}").await.assert_error(
        409,
        "invalid_state",
        "only an approved promotion can be promoted",
    );
    ops.post(&approve, "").await.assert_error(
        403,
        "forbidden",
        "role ops may not approve a promotion",
    );
    admin
        .post("/api/v1/promotions/999/approve", "")
        .await
        .assert_error(404, "not_found", "no promotion 999");
    admin
        .post("/api/v1/promotions/abc/approve", "")
        .await
        .assert_error(
            422,
            "invalid_request",
            "id: expected a positive whole number",
        );
    admin
        .post(&format!("/api/v1/promotions/{id}/reject"), "{}")
        .await
        .assert_error(422, "invalid_request", "reason");
    admin
        .post(
            &format!("/api/v1/promotions/{id}/reject"),
            r#"{"reason": "  "}"#,
        )
        .await
        .assert_error(422, "invalid_request", "a rejection needs a reason");
    admin
        .post(&promote, r#"{"confirm": "yes"}"#)
        .await
        .assert_error(422, "invalid_request", "unknown field `confirm`");
    assert_eq!(
        console.audit().await.len(),
        before,
        "refusals write nothing"
    );

    // After the soak: approve, then promote; prod reads the row.
    console.clock.advance(TimeDelta::hours(24));
    let approved = root.post(&approve, "").await;
    assert_eq!(approved.status, 200, "{approved:?}");
    assert_eq!(approved.body["promotion"]["approved_by"], "root");
    let promoted = admin.post(&promote, "{}").await;
    assert_eq!(promoted.status, 200, "{promoted:?}");
    assert_eq!(promoted.body["promotion"]["state"], "promoted");
    assert!(promoted.body["flip_audit_id"].as_i64().is_some());
    let flag = ops.get("/api/v1/flags/dark_mode?env=prod").await;
    assert_eq!(
        (
            &flag.body["value"],
            &flag.body["source"],
            &flag.body["updated_by"]
        ),
        (&json!(true), &json!("db"), &json!("admin"))
    );
    assert_eq!(
        console.actions_since(before).await,
        [
            "console.flag.approved",
            "console.flag.flip",
            "console.flag.promoted"
        ]
    );

    // Listings: ops may read; support may not; filters are checked.
    let list = ops.get("/api/v1/promotions?state=promoted").await;
    assert_eq!(list.status, 200);
    assert_eq!(list.body.as_array().unwrap().len(), 1);
    assert_eq!(list.body[0]["id"], id);
    let none = ops
        .get("/api/v1/promotions?state=pending&flag=dark_mode")
        .await;
    assert_eq!(none.body, json!([]));
    ops.get("/api/v1/promotions?state=shipped")
        .await
        .assert_error(422, "invalid_request", "state: expected one of");
    ops.get("/api/v1/promotions?limit=0")
        .await
        .assert_error(422, "invalid_request", "limit");
    let one = ops.get(&format!("/api/v1/promotions/{id}")).await;
    assert_eq!((one.status, &one.body["state"]), (200, &json!("promoted")));
    let helper = console.api(&console.token("helper").await);
    helper.get("/api/v1/promotions").await.assert_error(
        403,
        "forbidden",
        "role support may not view the flags",
    );
    admin
        .post(
            &format!("/api/v1/promotions/{id}/reject"),
            r#"{"reason": "late"}"#,
        )
        .await
        .assert_error(
            409,
            "invalid_state",
            "the promotion is promoted: it accepts nothing more",
        );
    console.stop().await;
}
vexil_testkit::both!(through_the_api);

async fn a_high_risk_promote_through_the_api(backend: Backend) {
    let console = console(backend).await;
    let admin = console.api(&console.token("admin").await);
    let root = console.api(&console.token("root").await);
    on_in_staging(&root, "card_vault", json!({"totp": console.root_code(0)})).await;
    let marked = root.post("/api/v1/flags/card_vault/promotions", "").await;
    let id = marked.body["promotion"]["id"].as_i64().unwrap();
    assert_eq!(
        marked.body["promotion"]["confirmation_phrase"],
        "promote card_vault to prod"
    );
    let promote = format!("/api/v1/promotions/{id}/promote");
    // Not approved yet: refused before the code is looked at, so it is not spent.
    let before = console.audit().await.len();
    let early = json!({"confirmation": "promote card_vault to prod", "totp": console.root_code(1)});
    root.post(&promote, &early.to_string()).await.assert_error(
        409,
        "invalid_state",
        "only an approved promotion can be promoted",
    );
    assert_eq!(console.audit().await.len(), before, "no code checked");
    let approved = root
        .post(&format!("/api/v1/promotions/{id}/approve"), "")
        .await;
    assert_eq!(approved.status, 200, "{approved:?}");

    let before = console.audit().await.len();
    // The phrase is checked before the code: a wrong phrase spends no code.
    root.post(&promote, &json!({"totp": console.root_code(1)}).to_string())
        .await
        .assert_error(
            422,
            "confirmation_required",
            "needs the typed confirmation 'promote card_vault to prod'",
        );
    root.post(
        &promote,
        &json!({"confirmation": "promote card_vault to prod.", "totp": console.root_code(1)})
            .to_string(),
    )
    .await
    .assert_error(422, "confirmation_required", "does not match");
    assert_eq!(
        console.audit().await.len(),
        before,
        "no code checked, nothing written"
    );
    let phrase = json!({"confirmation": "promote card_vault to prod"});
    root.post(&promote, &phrase.to_string()).await.assert_error(
        403,
        "elevation_required",
        "elevate with a fresh TOTP code",
    );
    admin
        .post(&promote, &phrase.to_string())
        .await
        .assert_error(403, "elevation_required", "elevate");
    root.post(
        &promote,
        &json!({"confirmation": "promote card_vault to prod", "totp": "000000"}).to_string(),
    )
    .await
    .assert_error(403, "totp_invalid", "wrong or expired");
    assert_eq!(
        console.actions_since(before).await,
        ["console.auth.elevate_failed"]
    );
    assert_eq!(
        console.row("card_vault", "prod").await,
        None,
        "prod untouched"
    );

    let promoted = root
        .post(
            &promote,
            &json!({"confirmation": "promote card_vault to prod", "totp": console.root_code(1)})
                .to_string(),
        )
        .await;
    assert_eq!(promoted.status, 200, "{promoted:?}");
    assert_eq!(
        console.row("card_vault", "prod").await,
        Some((true, Some("root".to_owned())))
    );
    console.stop().await;
}
vexil_testkit::both!(a_high_risk_promote_through_the_api);

/// The staging value changes during the soak: the next step finds the promotion
/// stale, writes its expiry and says why; the expiry job then has nothing to do.
async fn a_staging_change_expires_it(backend: Backend) {
    let console = console(backend).await;
    let admin = console.api(&console.token("admin").await);
    on_in_staging(&admin, "dark_mode", json!({})).await;
    let id = admin
        .post("/api/v1/flags/dark_mode/promotions", "")
        .await
        .body["promotion"]["id"]
        .as_i64()
        .unwrap();
    let back = admin
        .post(
            "/api/v1/flags/dark_mode/flip",
            &json!({"env": "staging", "from": true, "to": false}).to_string(),
        )
        .await;
    assert_eq!(back.status, 200);
    console.clock.advance(TimeDelta::hours(25));
    // The approve finds it stale and expires it; or the server's own expiry round
    // (which runs at start, and may be late on a loaded machine) got there first.
    // Either way it is refused and expired once, for that reason. (The step's own
    // wording is checked without a server in vexil-app's tests.)
    let refused = admin
        .post(&format!("/api/v1/promotions/{id}/approve"), "")
        .await;
    let says = [
        "it has expired: the staging value changed while it was open",
        "the promotion is expired: it accepts nothing more",
    ];
    assert!(
        (refused.status, refused.code()) == (409, "invalid_state")
            && says.iter().any(|s| refused.message().contains(s)),
        "{refused:?}"
    );
    let expiries = console
        .audit()
        .await
        .iter()
        .filter(|r| r.action == "console.flag.expired")
        .count();
    assert_eq!(expiries, 1);
    let shown = admin.get(&format!("/api/v1/promotions/{id}")).await;
    assert_eq!(
        (
            &shown.body["state"],
            &shown.body["reason"],
            &shown.body["expires_at"]
        ),
        (&json!("expired"), &json!("staging_changed"), &json!(null))
    );
    let app = &console.state.app;
    assert!(app.expire_due(app.now()).await.unwrap().is_empty());
    console.stop().await;
}
vexil_testkit::both!(a_staging_change_expires_it);

/// `vexil serve`'s housekeeping expires due promotions: one already stale when the
/// server starts is expired by its first round, with no request.
async fn the_server_expires_due_promotions(backend: Backend) {
    let test_db = TestDb::new(backend).await;
    // Before the server: a promotion marked by another process, then staging changed
    // by direct SQL.
    let flags =
        vexil_core::FlagSet::parse("flags.yaml", format!("{FLAGS}{NO_SOAK_FLAGS}").as_bytes())
            .unwrap();
    let app = vexil_app::App::new(
        test_db.db.clone(),
        flags,
        vexil_core::Envs::runbook(),
        None,
        vexil_core::EnvSnapshot::default(),
        std::sync::Arc::new(vexil_testkit::TestClock::fixed()),
    );
    let password = secrecy::SecretString::from("correct horse battery");
    app.add_user(
        vexil_app::Admin::Cli,
        "earlier",
        vexil_core::Role::Superadmin,
        &password,
    )
    .await
    .unwrap();
    let earlier = app.actor("earlier").await.unwrap();
    let flip = vexil_app::Flip {
        flag: &vexil_core::FlagKey::parse("dark_mode").unwrap(),
        env: &vexil_core::Env::STAGING,
        expected_from: None,
        to: true,
        reason: None,
        via: vexil_core::audit::Via::Cli,
    };
    app.flip(&earlier, &flip, StepUp::None).await.unwrap();
    let id = app
        .mark_promote(
            &earlier,
            &vexil_core::FlagKey::parse("dark_mode").unwrap(),
            vexil_core::audit::Via::Cli,
        )
        .await
        .unwrap()
        .record
        .id;
    test_db
        .execute("UPDATE console_feature_flags SET value = 0 WHERE flag_key = 'dark_mode' AND env = 'staging'")
        .await
        .unwrap();

    let options = Options {
        flags: format!("{FLAGS}{NO_SOAK_FLAGS}"),
        ..Options::default()
    };
    let console = TestConsole::start_with(test_db, options).await;
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(10);
    loop {
        let record = console.state.app.promotion(id).await.unwrap();
        if record.promotion.state == vexil_core::promotion::PromotionState::Expired {
            assert_eq!(record.promotion.reason.as_deref(), Some("staging_changed"));
            break;
        }
        assert!(
            std::time::Instant::now() < deadline,
            "still {}",
            record.promotion.state
        );
        tokio::time::sleep(std::time::Duration::from_millis(50)).await;
    }
    console.stop().await;
}
vexil_testkit::both!(the_server_expires_due_promotions);
