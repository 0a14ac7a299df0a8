//! The console's header and way back as each role sees them: the navigation offers
//! only what the role may open, a refusal by role points at the account page, and
//! elevation is offered only to a role it helps.

use vexil_store::Backend;

use crate::harness::TestConsole;

/// Whether `body` links to `path` from its navigation or a page.
fn links(body: &str, path: &str) -> bool {
    body.contains(&format!("href=\"{path}\""))
}

#[tokio::test]
async fn the_navigation_shows_only_what_the_role_may_open() {
    let console = TestConsole::start(Backend::Sqlite).await;
    // (account, flag pages, audit log, client keys, where the brand goes)
    for (name, flag_pages, audit, client_keys, home) in [
        ("reader", false, false, false, "/console/account"),
        ("helper", false, false, false, "/console/account"),
        ("ops1", true, true, false, "/console/flags"),
        ("admin", true, true, true, "/console/flags"),
    ] {
        let browser = console.signed_in(name).await;
        let page = browser.get("/console/account").await;
        assert_eq!(page.status, 200, "{name}");
        for path in [
            "/console/promotions",
            "/console/deprecation",
            "/console/reconcile",
            "/console/instances",
        ] {
            assert_eq!(links(&page.body, path), flag_pages, "{name}: {path}");
        }
        assert_eq!(links(&page.body, "/console/audit"), audit, "{name}");
        assert_eq!(
            links(&page.body, "/console/client-keys"),
            client_keys,
            "{name}"
        );
        assert!(
            page.body
                .contains(&format!("<a class=\"brand\" href=\"{home}\">")),
            "{name}: the brand links to {home}"
        );
        assert!(links(&page.body, "/console/account"), "{name}");
    }
    console.stop().await;
}

#[tokio::test]
async fn a_refusal_by_role_points_back_at_the_account_page() {
    let console = TestConsole::start(Backend::Sqlite).await;
    let reader = console.signed_in("reader").await;
    let refused = reader.get("/console/flags").await;
    assert_eq!(refused.status, 403);
    refused.assert_says("Back to your account");
    assert!(links(&refused.body, "/console/account"));
    // From there, nothing the role may not open.
    let account = reader.get("/console/account").await;
    assert!(!links(&account.body, "/console/audit"));
    console.stop().await;
}

#[tokio::test]
async fn elevation_is_offered_only_to_a_role_it_helps() {
    let console = TestConsole::start(Backend::Sqlite).await;
    // root is a superadmin with TOTP enrolled: a high-risk flip needs elevation.
    let root = console.signed_in("root").await;
    let page = root.get("/console/account").await;
    assert!(links(&page.body, "/console/elevate"), "{}", page.body);
    // ops flips nothing that needs elevation: the page says so and offers none.
    let ops = console.signed_in("ops1").await;
    let page = ops.get("/console/account").await;
    assert!(!links(&page.body, "/console/elevate"));
    page.assert_says("Your role makes none, so it needs no elevation today.");
    console.stop().await;
}

#[tokio::test]
async fn an_error_page_keeps_the_account_its_navigation_and_sign_out() {
    let console = TestConsole::start(Backend::Sqlite).await;
    let ops = console.signed_in("ops1").await;
    let csrf = ops.csrf().await;
    let refused = ops.get("/console/client-keys").await;
    let unknown = ops
        .post(
            "/console/flags/no_such_flag/flip",
            &[("csrf", &csrf), ("env", "prod"), ("from", "false")],
        )
        .await;
    for (page, status) in [(&refused, 403), (&unknown, 404)] {
        assert_eq!(page.status, status, "{}", page.body);
        assert!(
            page.body.contains("<span class=\"account\">ops1</span>"),
            "{status}: {}",
            page.body
        );
        assert!(
            page.body.contains("action=\"/console/sign-out\""),
            "{status}"
        );
        assert!(!links(&page.body, "/console/client-keys"), "{status}");
        assert!(links(&page.body, "/console/audit"), "{status}");
    }
    console.stop().await;
}
