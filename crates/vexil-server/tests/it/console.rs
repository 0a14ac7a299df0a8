//! The console over HTTP on a real listener: sign-in, roles, the flags list, its
//! filters and the master switch banner. Flips themselves (confirmation, elevation,
//! conflicts, htmx) are in `flips.rs`. Every refusal also checks that nothing was
//! written.

use vexil_core::audit::{AUTH_SIGN_IN, AUTH_SIGN_OUT, FLAG_FLIP};
use vexil_store::Backend;
use vexil_testkit::{TestDb, both};

use crate::harness::{Options, PASSWORD, TestConsole};

async fn sign_in_flip_and_sign_out(backend: Backend) {
    let console = TestConsole::start(backend).await;
    let browser = console.browser();

    // Not signed in: every page sends to sign-in, and comes back after.
    let page = browser.get("/console/flags?env=staging").await;
    assert_eq!(page.status, 303);
    assert_eq!(
        page.location(),
        "/console/sign-in?next=%2Fconsole%2Fflags%3Fenv%3Dstaging"
    );

    let form = browser.get("/console/sign-in").await;
    let before = session_cookie(&form);
    let signed_in = browser
        .sign_in_to("ops1", PASSWORD, "/console/flags?env=staging")
        .await;
    assert_eq!(signed_in.status, 303, "{}", signed_in.body);
    assert_eq!(signed_in.location(), "/console/flags?env=staging");
    let cookie = signed_in.header("set-cookie").to_owned();
    assert!(cookie.starts_with("vexil_session="), "{cookie}");
    for attribute in ["HttpOnly", "SameSite=Strict", "Path=/"] {
        assert!(cookie.contains(attribute), "{attribute} missing: {cookie}");
    }
    assert!(!cookie.contains("Secure"), "plain http: {cookie}");
    assert_ne!(
        session_cookie(&signed_in),
        before,
        "the session id changes at sign-in"
    );

    let flags = browser.get("/console/flags?env=staging").await;
    assert_eq!(flags.status, 200);
    flags.assert_contains("Flags in <span class=\"env env-staging\">staging</span>");
    flags.assert_contains("<tr id=\"flag-dark_mode\">");
    flags.assert_contains("ops1");

    let flipped = browser
        .flip("dark_mode", "staging", false, &[("reason", "ticket 42")])
        .await;
    assert_eq!(flipped.status, 303, "{}", flipped.body);
    assert_eq!(
        flipped.location(),
        "/console/flags?env=staging&flipped=dark_mode#flag-dark_mode"
    );
    assert_eq!(
        console.row("dark_mode", "staging").await,
        Some((true, Some("ops1".into())))
    );
    let flags = browser.get("/console/flags?env=staging").await;
    let row = row_of(&flags.body, "dark_mode");
    assert!(row.contains("value-on\">on<"), "{row}");
    assert!(row.contains("<span class=\"source\">db</span>"), "{row}");
    assert!(row.contains("<span class=\"by\">ops1</span>"), "{row}");
    let audit = console.audit().await;
    assert_eq!(audit[0].action, FLAG_FLIP);
    assert_eq!(audit[0].admin_name.as_deref(), Some("ops1"));
    assert_eq!(audit[0].payload["reason"], "ticket 42");
    assert_eq!(audit[0].payload["via"], "console");

    let csrf = browser.csrf().await;
    let out = browser.post("/console/sign-out", &[("csrf", &csrf)]).await;
    assert_eq!(out.status, 303);
    assert_eq!(out.location(), "/console/sign-in?signed_out=1");
    assert_eq!(
        browser.get("/console/flags").await.status,
        303,
        "signed out"
    );
    assert_eq!(
        console.actions_since(0).await,
        [AUTH_SIGN_IN, FLAG_FLIP, AUTH_SIGN_OUT]
    );
    console.stop().await;
}
both!(sign_in_flip_and_sign_out);

pub(crate) fn session_cookie(page: &crate::harness::Page) -> String {
    page.headers
        .get_all("set-cookie")
        .iter()
        .filter_map(|v| v.to_str().ok())
        .find(|v| v.starts_with("vexil_session="))
        .map(|v| v.split(';').next().unwrap().to_owned())
        .unwrap_or_default()
}

/// The `<tr>` of `flag` in a flags page.
pub(crate) fn row_of<'a>(body: &'a str, flag: &str) -> &'a str {
    let start = body
        .find(&format!("<tr id=\"flag-{flag}\""))
        .unwrap_or_else(|| panic!("no row for {flag}"));
    let end = body[start..].find("</tr>").unwrap() + start;
    &body[start..end]
}

#[tokio::test]
async fn readonly_and_support_get_403_on_the_flag_and_audit_pages() {
    let console = TestConsole::start(Backend::Sqlite).await;
    for name in ["reader", "helper"] {
        let browser = console.signed_in(name).await;
        for path in [
            "/console/flags",
            "/console/flags?env=staging",
            "/console/audit",
        ] {
            let page = browser.get(path).await;
            assert_eq!(page.status, 403, "{name} {path}");
            page.assert_contains("needs ops");
        }
        let page = browser.flip("dark_mode", "prod", false, &[]).await;
        assert_eq!(page.status, 403, "{name} flips");
        assert_eq!(browser.get("/console/account").await.status, 200);
    }
    assert_eq!(console.row("dark_mode", "prod").await, None);
    assert!(
        !console
            .actions_since(0)
            .await
            .contains(&FLAG_FLIP.to_owned())
    );
}

#[tokio::test]
async fn ops_may_flip_low_only_and_sees_why_not() {
    let console = TestConsole::start(Backend::Sqlite).await;
    let browser = console.signed_in("ops1").await;
    let flags = browser.get("/console/flags").await;
    assert!(row_of(&flags.body, "dark_mode").contains("Turn on in prod…</button>"));
    assert!(row_of(&flags.body, "search_typo_tolerance").contains("needs superadmin"));
    assert!(!row_of(&flags.body, "new_checkout").contains("<form"));
    for (flag, from) in [("search_typo_tolerance", true), ("new_checkout", false)] {
        let page = browser.flip(flag, "prod", from, &[]).await;
        assert_eq!(page.status, 403, "{flag}: {}", page.body);
        page.assert_contains("role ops may not flip a");
        assert_eq!(console.row(flag, "prod").await, None);
    }
}

#[tokio::test]
async fn descriptions_are_escaped() {
    let console = TestConsole::start(Backend::Sqlite).await;
    let browser = console.signed_in("ops1").await;
    let page = browser.get("/console/flags").await;
    page.assert_says("<script>alert('x')</script> & friends");
    assert!(!page.body.contains("<script>alert"));
}

#[tokio::test]
async fn filters_and_sorting_are_query_parameters() {
    let console = TestConsole::start(Backend::Sqlite).await;
    let browser = console.signed_in("root").await;
    assert_eq!(
        browser.flip("dark_mode", "prod", false, &[]).await.status,
        303
    );
    let keys = |body: &str| -> Vec<String> {
        body.split("<tr id=\"flag-")
            .skip(1)
            .map(|rest| rest[..rest.find('"').unwrap()].to_owned())
            .collect()
    };
    for (query, expected) in [
        (
            "",
            vec![
                "dark_mode",
                "search_typo_tolerance",
                "new_checkout",
                "legacy_banner",
            ],
        ),
        ("&q=CHECKOUT", vec!["new_checkout"]),
        ("&q=fuzzy", vec!["search_typo_tolerance"]),
        ("&risk=low", vec!["dark_mode", "legacy_banner"]),
        ("&source=db", vec!["dark_mode"]),
        ("&value=on", vec!["dark_mode", "search_typo_tolerance"]),
        ("&value=off&risk=high", vec!["new_checkout"]),
        (
            "&sort=key",
            vec![
                "dark_mode",
                "legacy_banner",
                "new_checkout",
                "search_typo_tolerance",
            ],
        ),
        (
            "&sort=risk",
            vec![
                "new_checkout",
                "search_typo_tolerance",
                "dark_mode",
                "legacy_banner",
            ],
        ),
        (
            "&sort=changed",
            vec![
                "dark_mode",
                "legacy_banner",
                "new_checkout",
                "search_typo_tolerance",
            ],
        ),
    ] {
        let page = browser
            .get(&format!("/console/flags?env=prod{query}"))
            .await;
        assert_eq!(page.status, 200, "{query}");
        assert_eq!(keys(&page.body), expected, "{query}");
    }
    // A flip keeps the list as it was (without JavaScript, through the redirect);
    // only the list's own parameters come back, re-encoded.
    let page = browser
        .get("/console/flags?env=prod&risk=low&q=banner")
        .await;
    page.assert_contains("name=\"list\" value=\"q=banner&#38;risk=low\"");
    let flipped = browser
        .flip(
            "legacy_banner",
            "prod",
            false,
            &[("list", "risk=low&sort=key&next=//evil.example")],
        )
        .await;
    assert_eq!(
        flipped.location(),
        "/console/flags?env=prod&flipped=legacy_banner&risk=low&sort=key#flag-legacy_banner"
    );
    let page = browser.get("/console/flags?env=prod&risk=extreme").await;
    assert_eq!(page.status, 400);
    page.assert_says("risk=\"extreme\" is not a filter: expected one of low, medium, high");
}

#[tokio::test]
async fn the_master_switch_banner_shows_when_db_rows_do_not_count() {
    let console = TestConsole::start_with(
        TestDb::new(Backend::Sqlite).await,
        Options {
            env_vars: vec![("FLAG_CONSOLE_FEATURE_FLAGS_DB".into(), "0".into())],
            ..Options::default()
        },
    )
    .await;
    let browser = console.signed_in("ops1").await;
    browser
        .get("/console/flags?env=prod")
        .await
        .assert_contains("DB rows decide nothing there: a flip sets the row");
    let on = TestConsole::start(Backend::Sqlite).await;
    let page = on
        .signed_in("ops1")
        .await
        .get("/console/flags?env=prod")
        .await;
    assert!(!page.body.contains("DB rows decide nothing there"));
}

#[tokio::test]
async fn pages_are_gzipped_for_clients_that_ask() {
    let console = TestConsole::start(Backend::Sqlite).await;
    let browser = console.signed_in("ops1").await;
    let response = browser
        .client
        .get(format!("{}/console/flags", browser.base))
        .header("accept-encoding", "gzip")
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), 200);
    assert_eq!(response.headers()["content-encoding"], "gzip");
}
