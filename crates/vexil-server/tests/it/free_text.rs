//! Free text from outside (docs/api.md#free-text): a NUL, a control character or a
//! bidi control in a reason, a filter or a sign-in name is refused at every door
//! with the field named and the character as `U+XXXX`, and nothing is written. The
//! NUL cases run on both databases: PostgreSQL's `text` cannot hold a NUL, which
//! used to fail deep in the database with a 500.

use serde_json::json;
use vexil_core::audit::AUTH_SIGN_IN_FAILED_UNKNOWN;
use vexil_store::Backend;
use vexil_testkit::both;

use crate::harness::{PASSWORD, TestConsole};
use crate::promotions;

async fn a_nul_in_a_console_flip_reason_is_refused(backend: Backend) {
    let console = TestConsole::start(backend).await;
    let browser = console.signed_in("admin").await;
    let before = console.audit().await.len();
    let page = browser
        .flip("dark_mode", "prod", false, &[("reason", "roll\0back")])
        .await;
    assert_eq!(page.status, 422, "{}", page.body);
    page.assert_says(
        "reason: character 5 is U+0000, a NUL, which the database cannot store: remove it",
    );
    assert!(!page.body.contains('\0'), "the NUL is not echoed");
    // Still the flip's page, pending, with the reason shown escaped.
    page.assert_contains(r#"value="roll\0back""#);
    assert_eq!(console.audit().await.len(), before, "nothing was written");
    assert_eq!(console.row("dark_mode", "prod").await, None);
    console.stop().await;
}
both!(a_nul_in_a_console_flip_reason_is_refused);

/// A bidi override or an ESC in a reason: the same 422 on the flip's page, from the
/// flags list's row (staging, no confirmation) as from the confirmation page.
#[tokio::test]
async fn bidi_and_escape_in_a_console_flip_reason_are_refused() {
    let console = TestConsole::start(Backend::Sqlite).await;
    let browser = console.signed_in("admin").await;
    let before = console.audit().await.len();
    for (env, reason, says) in [
        (
            "prod",
            "INC-7 \u{202E}kcab llor",
            "reason: character 7 is U+202E, a bidi control, which would reorder the text shown around it: remove it",
        ),
        (
            "staging",
            "\u{1b}[31mred",
            "reason: character 1 is U+001B, a control character, which could drive a terminal: remove it",
        ),
        (
            "staging",
            "two\nlines",
            "reason: character 4 is U+000A, a tab or line break, where the text must be one line: remove it",
        ),
    ] {
        let page = browser
            .flip_form("dark_mode", env, false, &[("reason", reason)])
            .await;
        assert_eq!(page.status, 422, "{reason:?}: {}", page.body);
        page.assert_says(says);
        assert!(!page.body.contains('\u{202E}') && !page.body.contains('\u{1b}'));
    }
    assert_eq!(console.audit().await.len(), before, "nothing was written");
    console.stop().await;
}

async fn a_nul_in_an_api_flip_reason_is_refused(backend: Backend) {
    let console = TestConsole::start(backend).await;
    let api = console.api(&console.token("admin").await);
    let before = console.audit().await.len();
    api.flip("dark_mode", false, json!({"reason": "roll\u{0}back"}))
        .await
        .assert_error(
            422,
            "invalid_request",
            "reason: character 5 is U+0000, a NUL, which the database cannot store",
        );
    assert_eq!(console.audit().await.len(), before, "nothing was written");
    assert_eq!(console.row("dark_mode", "prod").await, None);
    console.stop().await;
}
both!(a_nul_in_an_api_flip_reason_is_refused);

#[tokio::test]
async fn bidi_and_escape_in_an_api_flip_reason_are_refused() {
    let console = TestConsole::start(Backend::Sqlite).await;
    let api = console.api(&console.token("admin").await);
    let before = console.audit().await.len();
    for (reason, says) in [
        (
            "\u{202E}kcab",
            "reason: character 1 is U+202E, a bidi control",
        ),
        (
            "a\u{2066}b",
            "reason: character 2 is U+2066, a bidi control",
        ),
        (
            "ok \u{1b}[2J",
            "reason: character 4 is U+001B, a control character",
        ),
        (
            "del\u{7f}",
            "reason: character 4 is U+007F, a control character",
        ),
        (
            "c1\u{9b}",
            "reason: character 3 is U+009B, a control character",
        ),
    ] {
        api.flip("dark_mode", false, json!({"reason": reason}))
            .await
            .assert_error(422, "invalid_request", says);
    }
    assert_eq!(console.audit().await.len(), before, "nothing was written");
    console.stop().await;
}

/// A bidi mark (not an override) is text that mixes directions; it is kept.
#[tokio::test]
async fn a_bidi_mark_in_a_reason_is_kept() {
    let console = TestConsole::start(Backend::Sqlite).await;
    let api = console.api(&console.token("admin").await);
    let reason = "\u{5d1}\u{5d3}\u{5d9}\u{5e7}\u{5d4} \u{200F}INC-7";
    let reply = api
        .flip("dark_mode", false, json!({"reason": reason}))
        .await;
    assert_eq!(reply.status, 200, "{reply:?}");
    assert_eq!(console.audit().await[0].payload["reason"], reason);
    console.stop().await;
}

async fn a_nul_in_an_audit_filter_is_named_on_the_console(backend: Backend) {
    let console = TestConsole::start(backend).await;
    let browser = console.signed_in("root").await;
    for field in ["flag", "account"] {
        let page = browser.get(&format!("/console/audit?{field}=a%00b")).await;
        assert_eq!(page.status, 422, "{field}: {}", page.body);
        page.assert_says(&format!(
            "{field}: character 2 is U+0000, a NUL, which the database cannot store: remove it"
        ));
        page.assert_contains(&format!(
            r#"aria-invalid="true" aria-describedby="{field}-error""#
        ));
        assert!(!page.body.contains('\0'), "the NUL is not echoed");
    }
    let page = browser.get("/console/audit?account=%E2%80%AEx").await;
    assert_eq!(page.status, 422, "{}", page.body);
    page.assert_says("account: character 1 is U+202E, a bidi control");
    console.stop().await;
}
both!(a_nul_in_an_audit_filter_is_named_on_the_console);

async fn a_nul_in_an_api_filter_is_refused(backend: Backend) {
    let console = TestConsole::start(backend).await;
    let api = console.api(&console.token("root").await);
    for field in ["action", "flag", "actor"] {
        api.get(&format!("/api/v1/audit?{field}=a%00b"))
            .await
            .assert_error(
                422,
                "invalid_request",
                &format!("{field}: character 2 is U+0000, a NUL"),
            );
    }
    // An env is one of the configured names; the refusal quotes it escaped.
    api.get("/api/v1/audit?env=a%00b").await.assert_error(
        422,
        "unknown_env",
        "unknown env 'a\\0b'",
    );
    api.get("/api/v1/promotions?flag=a%00b").await.assert_error(
        422,
        "invalid_request",
        "flag: character 2 is U+0000, a NUL",
    );
    console.stop().await;
}
both!(a_nul_in_an_api_filter_is_refused);

async fn a_nul_in_a_rejection_reason_is_refused(backend: Backend) {
    let console = promotions::console(backend).await;
    let admin = console.api(&console.token("admin").await);
    let on = admin
        .flip("weekly_digest", false, json!({"env": "staging"}))
        .await;
    assert_eq!(on.status, 200, "{on:?}");
    let marked = admin
        .post("/api/v1/flags/weekly_digest/promotions", "")
        .await;
    assert_eq!(marked.status, 201, "{marked:?}");
    let id = marked.body["promotion"]["id"].as_i64().unwrap();
    let before = console.audit().await.len();
    admin
        .post(
            &format!("/api/v1/promotions/{id}/reject"),
            &json!({"reason": "no\u{0}pe"}).to_string(),
        )
        .await
        .assert_error(422, "invalid_request", "reason: character 3 is U+0000");
    assert_eq!(console.audit().await.len(), before, "nothing was written");
    console.stop().await;
}
both!(a_nul_in_a_rejection_reason_is_refused);

/// A name no account can have (account names are `a-z`, `0-9` and `_`) gets the
/// one vague answer of a wrong name or password, so it tells nothing about which
/// names exist; the attempt is audited with the name escaped, never raw.
async fn a_nul_or_bidi_in_a_sign_in_name_is_a_wrong_name(backend: Backend) {
    let console = TestConsole::start(backend).await;
    let browser = console.browser();
    for name in ["root\0", "\u{202E}toor"] {
        let page = browser.sign_in(name, PASSWORD).await;
        assert_eq!(page.status, 401, "{name:?}: {}", page.body);
        page.assert_contains("wrong account name or password");
        assert!(!page.body.contains('\0') && !page.body.contains('\u{202E}'));
    }
    // Names that are no account are summed into one row (the housekeeping's call,
    // made here), escaped.
    assert_eq!(console.audit().await.len(), 0);
    console
        .state
        .app
        .summarize_unknown_sign_ins()
        .await
        .unwrap();
    let audit = console.audit().await;
    assert_eq!(audit.len(), 1);
    assert_eq!(audit[0].action, AUTH_SIGN_IN_FAILED_UNKNOWN);
    assert_eq!(
        audit[0].payload["accounts"],
        serde_json::json!(["root\\0", "\\u{202e}toor"])
    );
    console.stop().await;
}
both!(a_nul_or_bidi_in_a_sign_in_name_is_a_wrong_name);
