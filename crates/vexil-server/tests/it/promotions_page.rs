//! Promotion through the console's forms on both databases, with the test clock: the
//! mark button on a staging row, the promotions page with its countdown, approve, the
//! typed phrase and a TOTP code for a high-risk flag, refusals as pages that change
//! nothing, and the flag's history. One behaviour per test.

use chrono::TimeDelta;
use vexil_core::promotion::PromotionState;
use vexil_store::Backend;
use vexil_testkit::both;

use crate::harness::{Browser, TestConsole};
use crate::promotions::console;

/// The typed confirmation of card_vault's promote.
const PHRASE: &str = "promote card_vault to prod";

/// A console where ops has turned dark_mode on in staging: ops and root signed in.
async fn dark_mode_on_in_staging(backend: Backend) -> (TestConsole, Browser, Browser) {
    let console = console(backend).await;
    let ops = console.signed_in("ops1").await;
    let root = console.signed_in("root").await;
    assert_eq!(
        ops.flip("dark_mode", "staging", false, &[]).await.status,
        303
    );
    (console, ops, root)
}

/// root marks dark_mode with the staging row's button: the promotion's id, and where
/// the form sent root.
async fn mark_dark_mode(console: &TestConsole, root: &Browser) -> (i64, String) {
    let csrf = root.csrf().await;
    let marked = root
        .post("/console/flags/dark_mode/promotions", &[("csrf", &csrf)])
        .await;
    assert_eq!(marked.status, 303);
    let id = console.state.app.promotions(None, None, 10).await.unwrap()[0].id;
    (id, marked.location().to_owned())
}

/// Whether no promotion was opened.
async fn no_promotion(console: &TestConsole) -> bool {
    console
        .state
        .app
        .promotions(None, None, 10)
        .await
        .unwrap()
        .is_empty()
}

/// dark_mode marked, a day later (its soak over) approved and promoted by root in a
/// new session: that session.
async fn dark_mode_promoted(console: &TestConsole, root: &Browser) -> Browser {
    let (id, _) = mark_dark_mode(console, root).await;
    console.clock.advance(TimeDelta::hours(24));
    let root = console.signed_in("root").await;
    let csrf = root.csrf().await;
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
    root
}

/// card_vault (high risk, no soak) on in staging with root's code of now, marked and
/// approved by root in a new session: that session, its CSRF token, the promotion's id.
async fn card_vault_approved(backend: Backend) -> (TestConsole, Browser, String, i64) {
    let console = console(backend).await;
    let root = console.signed_in("root").await;
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
        .promotions(Some(PromotionState::Pending), None, 10)
        .await
        .unwrap()[0]
        .id;
    fresh
        .post(
            &format!("/console/promotions/{id}/approve"),
            &[("csrf", &csrf)],
        )
        .await;
    (console, fresh, csrf, id)
}

async fn root_sees_the_mark_button_on_a_flag_on_in_staging(backend: Backend) {
    let (console, _ops, root) = dark_mode_on_in_staging(backend).await;
    let staging = root.get("/console/flags?env=staging").await;
    staging.assert_contains(r#"action="/console/flags/dark_mode/promotions""#);
    assert!(
        !staging
            .body
            .contains(r#"action="/console/flags/legacy_banner/promotions""#),
        "off in staging"
    );
    console.stop().await;
}
both!(root_sees_the_mark_button_on_a_flag_on_in_staging);

async fn ops_sees_no_mark_button_and_may_not_post_it(backend: Backend) {
    let (console, ops, _root) = dark_mode_on_in_staging(backend).await;
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
    assert!(no_promotion(&console).await);
    console.stop().await;
}
both!(ops_sees_no_mark_button_and_may_not_post_it);

async fn a_mark_with_a_forged_csrf_token_is_refused(backend: Backend) {
    let (console, _ops, root) = dark_mode_on_in_staging(backend).await;
    let forged = root
        .post("/console/flags/dark_mode/promotions", &[("csrf", "forged")])
        .await;
    assert_eq!(forged.status, 403);
    assert!(no_promotion(&console).await);
    console.stop().await;
}
both!(a_mark_with_a_forged_csrf_token_is_refused);

async fn marking_leads_to_the_promotion_and_its_countdown(backend: Backend) {
    let (console, _ops, root) = dark_mode_on_in_staging(backend).await;
    let (id, location) = mark_dark_mode(&console, &root).await;
    assert_eq!(
        location,
        format!("/console/promotions?done={id}#promotion-{id}")
    );
    let page = root.get(&location).await;
    assert_eq!(page.status, 200);
    page.assert_contains(&format!("Promotion {id} of dark_mode is pending now."));
    page.assert_contains("data-countdown>in 1 d 0 h</time>");
    assert!(
        !page.body.contains("/approve"),
        "no approve before the soak ends"
    );
    console.stop().await;
}
both!(marking_leads_to_the_promotion_and_its_countdown);

async fn the_flags_page_says_a_promotion_is_open(backend: Backend) {
    let (console, _ops, root) = dark_mode_on_in_staging(backend).await;
    let (id, _) = mark_dark_mode(&console, &root).await;
    let staging = root.get("/console/flags?env=staging").await;
    staging.assert_contains(&format!("promotion #{id} open"));
    console.stop().await;
}
both!(the_flags_page_says_a_promotion_is_open);

/// Approving early anyway: a page that says when the soak ends.
async fn approving_before_the_soak_ends_says_when_it_does(backend: Backend) {
    let (console, _ops, root) = dark_mode_on_in_staging(backend).await;
    let (id, _) = mark_dark_mode(&console, &root).await;
    let csrf = root.csrf().await;
    let early = root
        .post(
            &format!("/console/promotions/{id}/approve"),
            &[("csrf", &csrf)],
        )
        .await;
    assert_eq!(early.status, 409);
    early.assert_says("the soak ends at");
    console.stop().await;
}
both!(approving_before_the_soak_ends_says_when_it_does);

/// A day later, in a new session, the promotion can be approved.
async fn after_the_soak_the_page_offers_approve(backend: Backend) {
    let (console, _ops, root) = dark_mode_on_in_staging(backend).await;
    let (id, _) = mark_dark_mode(&console, &root).await;
    console.clock.advance(TimeDelta::hours(24));
    let root = console.signed_in("root").await;
    let page = root.get("/console/promotions").await;
    page.assert_contains(&format!(r#"action="/console/promotions/{id}/approve""#));
    console.stop().await;
}
both!(after_the_soak_the_page_offers_approve);

async fn approve_then_promote_turns_the_flag_on_in_prod(backend: Backend) {
    let (console, _ops, root) = dark_mode_on_in_staging(backend).await;
    dark_mode_promoted(&console, &root).await;
    assert_eq!(
        console.row("dark_mode", "prod").await,
        Some((true, Some("root".to_owned())))
    );
    console.stop().await;
}
both!(approve_then_promote_turns_the_flag_on_in_prod);

async fn the_flags_history_lists_its_promotions(backend: Backend) {
    let (console, _ops, root) = dark_mode_on_in_staging(backend).await;
    let root = dark_mode_promoted(&console, &root).await;
    let history = root.get("/console/audit?flag=dark_mode").await;
    history.assert_contains("Promotions of <code>dark_mode</code>");
    history.assert_contains("console.flag.promoted");
    console.stop().await;
}
both!(the_flags_history_lists_its_promotions);

/// card_vault: high risk, no soak. The phrase is asked for, and a code.
async fn a_high_risk_promotion_asks_for_the_phrase_and_a_code(backend: Backend) {
    let (console, fresh, _csrf, id) = card_vault_approved(backend).await;
    let page = fresh.get("/console/promotions").await;
    page.assert_contains(
        "Type <strong class=\"phrase\">promote card_vault to prod</strong> to confirm",
    );
    page.assert_contains(&format!(r#"id="totp-{id}" name="totp""#));
    console.stop().await;
}
both!(a_high_risk_promotion_asks_for_the_phrase_and_a_code);

/// The phrase is checked first: a wrong one spends no code and writes nothing.
async fn a_wrong_phrase_is_refused_before_the_code(backend: Backend) {
    let (console, fresh, csrf, id) = card_vault_approved(backend).await;
    let before = console.audit().await.len();
    let wrong = fresh
        .post(
            &format!("/console/promotions/{id}/promote"),
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
    console.stop().await;
}
both!(a_wrong_phrase_is_refused_before_the_code);

/// No code, no elevation: to the elevation page, and back to the promotion after.
async fn a_promote_without_a_code_goes_to_the_elevation_page(backend: Backend) {
    let (console, fresh, csrf, id) = card_vault_approved(backend).await;
    let no_code = fresh
        .post(
            &format!("/console/promotions/{id}/promote"),
            &[("csrf", &csrf), ("confirmation", PHRASE)],
        )
        .await;
    assert_eq!(no_code.status, 303);
    assert_eq!(
        no_code.location(),
        format!("/console/elevate?next=%2Fconsole%2Fpromotions%23promotion-{id}")
    );
    assert_eq!(console.row("card_vault", "prod").await, None);
    console.stop().await;
}
both!(a_promote_without_a_code_goes_to_the_elevation_page);

/// The phrase and the code a refusal carried (never spent) promote.
async fn the_phrase_and_a_code_promote_a_high_risk_flag(backend: Backend) {
    let (console, fresh, csrf, id) = card_vault_approved(backend).await;
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
    let done = fresh
        .post(
            &promote,
            &[
                ("csrf", &csrf),
                ("confirmation", PHRASE),
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
both!(the_phrase_and_a_code_promote_a_high_risk_flag);
