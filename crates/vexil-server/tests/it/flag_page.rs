//! `/console/flags/{key}`: a flag's envs side by side with who, when and why, its
//! history and open promotion, flips that come back to it; and the staging list's
//! view of prod, with "Mark active for prod" only where marking can succeed.

use vexil_store::Backend;

use crate::console::row_of;
use crate::harness::TestConsole;

#[tokio::test]
async fn a_flags_page_shows_both_envs_with_who_when_and_why() {
    let console = TestConsole::start(Backend::Sqlite).await;
    let root = console.signed_in("root").await;
    for (env, reason) in [("staging", "try it on staff"), ("prod", "INC-1 launch")] {
        let flipped = root
            .flip("dark_mode", env, false, &[("reason", reason)])
            .await;
        assert_eq!(flipped.status, 303, "{}", flipped.body);
    }
    // Every list links the key to the flag's page.
    let list = root.get("/console/flags?env=prod").await;
    assert!(
        row_of(&list.body, "dark_mode")
            .contains("<a class=\"key\" href=\"/console/flags/dark_mode\">")
    );

    let page = root.get("/console/flags/dark_mode").await;
    assert_eq!(page.status, 200, "{}", page.body);
    page.assert_contains("<h1><code>dark_mode</code></h1>");
    for env in ["staging", "prod"] {
        page.assert_contains(&format!("id=\"env-{env}\""));
    }
    page.assert_says("<q class=\"reason-text\">try it on staff</q>");
    page.assert_says("<q class=\"reason-text\">INC-1 launch</q>");
    page.assert_contains("<dt>Row</dt><dd>on</dd>");
    page.assert_contains("<dt>Variable</dt><dd><span class=\"muted\">unset</span>");
    page.assert_contains("<dt>Who</dt><dd>root</dd>");
    page.assert_contains("<dt>When</dt><dd>2026-01-15 09:30:00 UTC</dd>");
    // The history, newest first, with reasons.
    let prod = page
        .body
        .find("<code>dark_mode</code> ON in prod")
        .expect("the prod flip");
    let staging = page
        .body
        .find("<code>dark_mode</code> ON in staging")
        .expect("the staging flip");
    assert!(prod < staging, "newest first");
    // Flips from the page: staging's in place, prod's confirmed; both come back here.
    page.assert_contains("Turn off in staging</button>");
    page.assert_contains("Turn off in prod…</button>");
    page.assert_contains("name=\"back\" value=\"flag\"");
    let back = root
        .flip("dark_mode", "staging", true, &[("back", "flag")])
        .await;
    assert_eq!(back.status, 303);
    assert_eq!(
        back.location(),
        "/console/flags/dark_mode?flipped=staging#env-staging"
    );
    root.get(back.location())
        .await
        .assert_says("dark_mode is off in staging (by root, 2026-01-15 09:30:00 UTC).");
}

#[tokio::test]
async fn a_flags_page_refuses_what_the_list_refuses() {
    let console = TestConsole::start(Backend::Sqlite).await;
    let ops = console.signed_in("ops1").await;
    let unknown = ops.get("/console/flags/no_such_flag").await;
    assert_eq!(unknown.status, 404);
    unknown.assert_says("unknown flag 'no_such_flag'");
    let malformed = ops.get("/console/flags/Not%20A%20Key").await;
    assert_eq!(malformed.status, 404);
    for name in ["reader", "helper"] {
        let page = console
            .signed_in(name)
            .await
            .get("/console/flags/dark_mode")
            .await;
        assert_eq!(page.status, 403, "{name}");
    }
    // ops sees a high-risk flag, and why it has no flip control.
    let page = ops.get("/console/flags/new_checkout").await;
    assert_eq!(page.status, 200);
    page.assert_contains("needs superadmin");
}

#[tokio::test]
async fn mark_active_for_prod_is_offered_only_where_marking_can_succeed() {
    let console = TestConsole::start(Backend::Sqlite).await;
    let root = console.signed_in("root").await;
    let staging_row = |body: &str| row_of(body, "dark_mode").to_owned();
    // Off in staging: nothing to mark.
    let list = root.get("/console/flags?env=staging").await;
    assert!(!staging_row(&list.body).contains("Mark active for prod"));
    assert!(staging_row(&list.body).contains("prod: off"));
    // On in staging, off in prod: markable.
    assert_eq!(
        root.flip("dark_mode", "staging", false, &[]).await.status,
        303
    );
    let list = root.get("/console/flags?env=staging").await;
    assert!(staging_row(&list.body).contains("Mark active for prod"));
    // On in prod too: marking would be refused, so it is not offered.
    assert_eq!(root.flip("dark_mode", "prod", false, &[]).await.status, 303);
    let list = root.get("/console/flags?env=staging").await;
    let row = staging_row(&list.body);
    assert!(!row.contains("Mark active for prod"), "{row}");
    assert!(row.contains("prod: on"), "{row}");
    // Off in prod again, then marked: the flag's page shows the open promotion.
    assert_eq!(root.flip("dark_mode", "prod", true, &[]).await.status, 303);
    let csrf = root.csrf().await;
    let marked = root
        .post("/console/flags/dark_mode/promotions", &[("csrf", &csrf)])
        .await;
    assert_eq!(marked.status, 303, "{}", marked.body);
    let page = root.get("/console/flags/dark_mode").await;
    page.assert_says("is pending: marked by root");
    // Every list leads to the flag's page.
    for (list, flag) in [
        ("/console/promotions", "dark_mode"),
        ("/console/stale", "legacy_banner"),
        ("/console/deprecation", "dark_mode"),
    ] {
        root.get(list)
            .await
            .assert_contains(&format!("<a href=\"/console/flags/{flag}\">"));
    }
    assert!(!page.body.contains("Mark active for prod"));
    // ops may not mark: never offered.
    let ops = console.signed_in("ops1").await;
    let list = ops.get("/console/flags?env=staging").await;
    assert!(!list.body.contains("Mark active for prod"));
}

/// Each side says how far its last change reached the env's live processes.
#[tokio::test]
async fn a_flags_page_says_how_far_the_last_change_reached() {
    let console = TestConsole::start(Backend::Sqlite).await;
    let process = console
        .live_instance("prod", "web", &[("FLAG_CONSOLE_FEATURE_FLAGS_DB", "1")])
        .await;
    let root = console.signed_in("root").await;
    assert_eq!(root.flip("dark_mode", "prod", false, &[]).await.status, 303);
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(20);
    loop {
        let page = root.get("/console/flags/dark_mode").await;
        if page.body.contains("<dt>Reached</dt><dd>seen by 1 of 1") {
            break;
        }
        assert!(
            std::time::Instant::now() < deadline,
            "the receipt never said the process holds it:\n{}",
            page.body
        );
        tokio::time::sleep(std::time::Duration::from_millis(100)).await;
    }
    drop(process);
}
