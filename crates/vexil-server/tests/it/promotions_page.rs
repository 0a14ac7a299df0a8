//! Promotion through the console's forms on both databases, with the test clock.

use chrono::TimeDelta;
use vexil_store::Backend;

use crate::promotions::console;

/// The same flow through the console's forms: the mark button on a staging row, the
/// promotions page with its countdown, approve, the typed phrase and a TOTP code for
/// a high-risk flag, refusals as pages that change nothing, and the flag's history.
async fn through_the_console(backend: Backend) {
    let console = console(backend).await;
    let ops = console.signed_in("ops1").await;
    let root = console.signed_in("root").await;

    // dark_mode on in staging: root sees the button, ops does not (and may not post).
    assert_eq!(
        ops.flip("dark_mode", "staging", false, &[]).await.status,
        303
    );
    let staging = root.get("/console/flags?env=staging").await;
    staging.assert_contains(r#"action="/console/flags/dark_mode/promotions""#);
    assert!(
        !staging
            .body
            .contains(r#"action="/console/flags/legacy_banner/promotions""#),
        "off in staging"
    );
    let as_ops = ops.get("/console/flags?env=staging").await;
    assert!(!as_ops.body.contains("Mark active for prod"));
    let ops_csrf = ops.csrf().await;
    let refused = ops
        .post(
            "/console/flags/dark_mode/promotions",
            &[("csrf", &ops_csrf)],
        )
        .await;
    assert_eq!(refused.status, 403);
    refused.assert_says("role ops may not mark a flag active for prod");
    let csrf = root.csrf().await;
    let forged = root
        .post("/console/flags/dark_mode/promotions", &[("csrf", "forged")])
        .await;
    assert_eq!(forged.status, 403);
    assert!(
        console
            .state
            .app
            .promotions(None, None, 10)
            .await
            .unwrap()
            .is_empty()
    );

    let marked = root
        .post("/console/flags/dark_mode/promotions", &[("csrf", &csrf)])
        .await;
    assert_eq!(marked.status, 303);
    let id = console.state.app.promotions(None, None, 10).await.unwrap()[0].id;
    assert_eq!(
        marked.location(),
        format!("/console/promotions?done={id}#promotion-{id}")
    );
    let page = root.get(marked.location()).await;
    assert_eq!(page.status, 200);
    page.assert_contains(&format!("Promotion {id} of dark_mode is pending now."));
    page.assert_contains("data-countdown>in 1 d 0 h</time>");
    assert!(
        !page.body.contains("/approve"),
        "no approve before the soak ends"
    );
    let staging = root.get("/console/flags?env=staging").await;
    staging.assert_contains(&format!("promotion #{id} open"));
    // Approving early anyway: a page that says when the soak ends.
    let early = root
        .post(
            &format!("/console/promotions/{id}/approve"),
            &[("csrf", &csrf)],
        )
        .await;
    assert_eq!(early.status, 409);
    early.assert_says("the soak ends at");

    console.clock.advance(TimeDelta::hours(24));
    // A day later: a new session.
    let root = console.signed_in("root").await;
    let csrf = root.csrf().await;
    let page = root.get("/console/promotions").await;
    page.assert_contains(&format!(r#"action="/console/promotions/{id}/approve""#));
    let approved = root
        .post(
            &format!("/console/promotions/{id}/approve"),
            &[("csrf", &csrf)],
        )
        .await;
    assert_eq!(approved.status, 303);
    let promoted = root
        .post(
            &format!("/console/promotions/{id}/promote"),
            &[("csrf", &csrf)],
        )
        .await;
    assert_eq!(promoted.status, 303);
    assert_eq!(
        console.row("dark_mode", "prod").await,
        Some((true, Some("root".to_owned())))
    );
    let history = root.get("/console/audit?flag=dark_mode").await;
    history.assert_contains("Promotions of <code>dark_mode</code>");
    history.assert_contains("console.flag.promoted");

    // card_vault: high risk, no soak. The phrase is asked for and checked first.
    let flipped = root
        .flip(
            "card_vault",
            "staging",
            false,
            &[("totp", &console.root_code(0))],
        )
        .await;
    assert_eq!(flipped.status, 303, "{}", flipped.body);
    let fresh = console.signed_in("root").await;
    let csrf = fresh.csrf().await;
    fresh
        .post("/console/flags/card_vault/promotions", &[("csrf", &csrf)])
        .await;
    let id = console
        .state
        .app
        .promotions(
            Some(vexil_core::promotion::PromotionState::Pending),
            None,
            10,
        )
        .await
        .unwrap()[0]
        .id;
    fresh
        .post(
            &format!("/console/promotions/{id}/approve"),
            &[("csrf", &csrf)],
        )
        .await;
    let page = fresh.get("/console/promotions").await;
    page.assert_contains(
        "Type <strong class=\"phrase\">promote card_vault to prod</strong> to confirm",
    );
    page.assert_contains(&format!(r#"id="totp-{id}" name="totp""#));
    let before = console.audit().await.len();
    let promote = format!("/console/promotions/{id}/promote");
    let wrong = fresh
        .post(
            &promote,
            &[
                ("csrf", &csrf),
                ("confirmation", "promote card_vault"),
                ("totp", &console.root_code(1)),
            ],
        )
        .await;
    assert_eq!(wrong.status, 422);
    wrong.assert_says("type 'promote card_vault to prod' exactly");
    assert_eq!(
        console.audit().await.len(),
        before,
        "no code spent, nothing written"
    );
    let no_code = fresh
        .post(
            &promote,
            &[
                ("csrf", &csrf),
                ("confirmation", "promote card_vault to prod"),
            ],
        )
        .await;
    // No code, no elevation: to the elevation page, and back to the promotion after.
    assert_eq!(no_code.status, 303);
    assert_eq!(
        no_code.location(),
        "/console/elevate?next=%2Fconsole%2Fpromotions%23promotion-2"
    );
    assert_eq!(console.row("card_vault", "prod").await, None);
    let done = fresh
        .post(
            &promote,
            &[
                ("csrf", &csrf),
                ("confirmation", "promote card_vault to prod"),
                ("totp", &console.root_code(1)),
            ],
        )
        .await;
    assert_eq!(done.status, 303, "{}", done.body);
    assert_eq!(
        console.row("card_vault", "prod").await,
        Some((true, Some("root".to_owned())))
    );
    console.stop().await;
}
vexil_testkit::both!(through_the_console);
