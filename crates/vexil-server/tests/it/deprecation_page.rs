//! `/console/deprecation`: the runbook's deprecation table in the console, from a live
//! process reporting its variables and a flip made through the console; and
//! `/console/stale`, the stale flags.

use vexil_store::Backend;

use crate::harness::TestConsole;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_table_in_the_console() {
    let console = TestConsole::start(Backend::Sqlite).await;
    let process = console
        .live_instance(
            "staging",
            "web",
            &[
                ("FLAG_CONSOLE_FEATURE_FLAGS_DB", "1"),
                ("FLAG_DARK_MODE", "1"),
            ],
        )
        .await;

    let ops = console.signed_in("ops1").await;
    let before = ops.get("/console/deprecation").await;
    assert_eq!(before.status, 200);
    before.assert_says("in use");
    // The staging row: the variable turns dormant there (prod has no row yet).
    assert_eq!(
        ops.flip("dark_mode", "staging", true, &[]).await.status,
        303
    );
    let page = ops.get("/console/deprecation").await;
    page.assert_contains(r#"<tr id="deprecation-dark_mode-staging">"#);
    let row = page
        .body
        .split(r#"<tr id="deprecation-dark_mode-staging">"#)
        .nth(1)
        .and_then(|rest| rest.split("</tr>").next())
        .unwrap()
        .to_owned();
    assert!(row.contains("status-dormant"), "{row}");
    assert!(row.contains("no DB row in prod"), "{row}");
    assert!(row.contains("pid"), "the process that carries it: {row}");
    page.assert_contains("No application can drop a variable yet.");

    // With prod's row too, staging's variable is safe to remove from the one app
    // that carries it: the silenced command for it.
    assert_eq!(ops.flip("dark_mode", "prod", false, &[]).await.status, 303);
    let page = ops.get("/console/deprecation").await;
    page.assert_contains(
        "<code>heroku config:unset FLAG_DARK_MODE --app web &#62;/dev/null 2&#62;&#38;1</code>",
    );

    let reader = console.signed_in("reader").await;
    assert_eq!(reader.get("/console/deprecation").await.status, 403);
    drop(process);
    console.stop().await;
}

/// `/console/stale`: flags never flipped and a row of an undeclared flag, the
/// threshold from the query, a bad one refused by name; readonly denied.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn stale_flags_in_the_console() {
    let console = TestConsole::start(Backend::Sqlite).await;
    console
        .test_db()
        .execute(
            "INSERT INTO console_feature_flags (flag_key, env, value, updated_at) \
             VALUES ('retired_flag', 'prod', 1, CURRENT_TIMESTAMP)",
        )
        .await
        .unwrap();
    let ops = console.signed_in("ops1").await;
    assert_eq!(ops.flip("dark_mode", "prod", false, &[]).await.status, 303);
    let page = ops.get("/console/stale?days=7").await;
    assert_eq!(page.status, 200);
    page.assert_contains(r#"value="7""#);
    page.assert_contains(r#"<tr id="stale-search_typo_tolerance">"#);
    page.assert_says("never flipped: still used?");
    assert!(
        !page.body.contains(r#"id="stale-dark_mode""#),
        "dark_mode was flipped"
    );
    page.assert_contains(r#"<li id="undeclared-retired_flag-prod">"#);
    let bad = ops.get("/console/stale?days=0").await;
    assert_eq!(bad.status, 400);
    bad.assert_says("days=");
    ops.get("/console/flags")
        .await
        .assert_contains(r#"href="/console/stale""#);
    let reader = console.signed_in("reader").await;
    assert_eq!(reader.get("/console/stale").await.status, 403);
    console.stop().await;
}
