//! The console over HTTP on a real listener: roles, flips, elevation for a flip,
//! conflicts, htmx and filters. Every
//! refusal also checks that nothing was written.

use chrono::TimeDelta;
use vexil_core::audit::{
    AUTH_ELEVATE, AUTH_ELEVATE_FAILED, AUTH_SIGN_IN, AUTH_SIGN_OUT, FLAG_FLIP,
};
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
        "/console/flags?env=staging#flag-dark_mode"
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

fn session_cookie(page: &crate::harness::Page) -> String {
    page.headers
        .get_all("set-cookie")
        .iter()
        .filter_map(|v| v.to_str().ok())
        .find(|v| v.starts_with("vexil_session="))
        .map(|v| v.split(';').next().unwrap().to_owned())
        .unwrap_or_default()
}

/// The `<tr>` of `flag` in a flags page.
fn row_of<'a>(body: &'a str, flag: &str) -> &'a str {
    let start = body
        .find(&format!("<tr id=\"flag-{flag}\">"))
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
    assert!(row_of(&flags.body, "dark_mode").contains("Turn on</button>"));
    assert!(row_of(&flags.body, "search_typo_tolerance").contains("needs superadmin"));
    assert!(!row_of(&flags.body, "new_checkout").contains("<form"));
    for (flag, from) in [("search_typo_tolerance", true), ("new_checkout", false)] {
        let page = browser.flip(flag, "prod", from, &[]).await;
        assert_eq!(page.status, 403, "{flag}: {}", page.body);
        page.assert_contains("role ops may not flip a");
        assert_eq!(console.row(flag, "prod").await, None);
    }
}

async fn superadmin_elevates_with_totp_for_a_high_risk_flag(backend: Backend) {
    let console = TestConsole::start(backend).await;
    let browser = console.browser();
    let signed_in = browser.sign_in("root", PASSWORD).await;
    let before_elevation = session_cookie(&signed_in);
    assert!(!before_elevation.is_empty());
    let flags = browser.get("/console/flags").await;
    assert!(row_of(&flags.body, "new_checkout").contains("Turn on · TOTP"));

    // Without elevation: to the elevation page, which shows the same flip.
    let page = browser
        .flip("new_checkout", "prod", false, &[("reason", "launch")])
        .await;
    assert_eq!(page.status, 303);
    assert_eq!(
        page.location(),
        "/console/elevate?flag=new_checkout&env=prod&from=false&to=true&reason=launch"
    );
    let elevate = browser.get(page.location()).await;
    elevate.assert_contains("Turning <code>new_checkout</code> (high risk)");
    elevate.assert_contains("action=\"/console/flags/new_checkout/flip\"");
    elevate.assert_contains("value=\"launch\"");
    assert_eq!(console.row("new_checkout", "prod").await, None);

    // A wrong code: refused, audited, nothing flipped.
    let wrong = browser
        .flip("new_checkout", "prod", false, &[("totp", "000000")])
        .await;
    assert_eq!(wrong.status, 422, "{}", wrong.body);
    wrong.assert_contains("the TOTP code is wrong or expired");
    assert_eq!(console.row("new_checkout", "prod").await, None);

    // The right code: elevated and flipped in one step, under a new session id.
    let code = console.root_code(0);
    let done = browser
        .flip(
            "new_checkout",
            "prod",
            false,
            &[("totp", &code), ("reason", "launch")],
        )
        .await;
    assert_eq!(done.status, 303, "{}", done.body);
    let after_elevation = session_cookie(&done);
    assert!(!after_elevation.is_empty());
    assert_ne!(
        after_elevation, before_elevation,
        "the session id changes at elevation"
    );
    // The id from before elevation opens nothing any more.
    let old = reqwest::Client::builder()
        .redirect(reqwest::redirect::Policy::none())
        .build()
        .unwrap()
        .get(format!("{}/console/flags", browser.base))
        .header("cookie", &before_elevation)
        .send()
        .await
        .unwrap();
    assert_eq!(old.status(), 303, "the pre-elevation session is gone");
    assert_eq!(
        console.row("new_checkout", "prod").await,
        Some((true, Some("root".into())))
    );
    let flags = browser.get("/console/flags").await;
    flags.assert_contains("elevated until 2026-01-15 09:40:00 UTC");
    assert!(row_of(&flags.body, "new_checkout").contains("Turn off</button>"));

    // Elevated: no code needed; a replayed code is refused.
    let again = browser.flip("new_checkout", "prod", true, &[]).await;
    assert_eq!(again.status, 303);
    let replayed = browser
        .flip("new_checkout", "prod", false, &[("totp", &code)])
        .await;
    assert_eq!(replayed.status, 422);
    replayed.assert_contains("already used");

    // Ten minutes later the elevation is gone.
    console.clock.advance(TimeDelta::minutes(10));
    let later = browser.flip("new_checkout", "prod", false, &[]).await;
    assert_eq!(later.status, 303);
    assert!(
        later.location().starts_with("/console/elevate?"),
        "{}",
        later.location()
    );
    assert_eq!(
        console.actions_since(0).await,
        [
            AUTH_SIGN_IN,
            AUTH_ELEVATE_FAILED,
            AUTH_ELEVATE,
            FLAG_FLIP,
            FLAG_FLIP,
            AUTH_ELEVATE_FAILED,
        ]
    );
    console.stop().await;
}
both!(superadmin_elevates_with_totp_for_a_high_risk_flag);

#[tokio::test]
async fn a_stale_page_gets_the_conflict_page_and_writes_nothing() {
    let console = TestConsole::start(Backend::Sqlite).await;
    let alice = console.signed_in("ops1").await;
    let bob = console.signed_in("root").await;
    // Both see dark_mode off; bob turns it on first.
    assert_eq!(bob.flip("dark_mode", "prod", false, &[]).await.status, 303);
    let rows = console.audit().await.len();
    let stale = alice.flip("dark_mode", "prod", false, &[]).await;
    assert_eq!(stale.status, 409, "{}", stale.body);
    stale.assert_contains("dark_mode changed since you loaded the page");
    stale.assert_contains("<strong>Nothing was changed.</strong>");
    stale.assert_contains("<dt>Set by</dt><dd>root</dd>");
    stale.assert_contains("<dt>When</dt><dd>2026-01-15 09:30:00 UTC</dd>");
    stale.assert_contains("<dt>Source</dt><dd>db</dd>");
    assert_eq!(
        console.row("dark_mode", "prod").await,
        Some((true, Some("root".into())))
    );
    assert_eq!(console.audit().await.len(), rows);
}

#[tokio::test]
async fn bad_flip_requests_name_what_is_wrong() {
    let console = TestConsole::start(Backend::Sqlite).await;
    let browser = console.signed_in("root").await;
    let csrf = browser.csrf().await;
    let post = |flag: &'static str, form: Vec<(&'static str, String)>| {
        let browser = &browser;
        let csrf = csrf.clone();
        async move {
            let mut fields: Vec<(&str, &str)> = vec![("csrf", csrf.as_str())];
            fields.extend(form.iter().map(|(k, v)| (*k, v.as_str())));
            browser
                .post(&format!("/console/flags/{flag}/flip"), &fields)
                .await
        }
    };
    let unknown = post(
        "no_such_flag",
        vec![("env", "prod".into()), ("from", "false".into())],
    )
    .await;
    assert_eq!(unknown.status, 404);
    unknown.assert_says("unknown flag 'no_such_flag'");
    let env = post(
        "dark_mode",
        vec![("env", "qa".into()), ("from", "false".into())],
    )
    .await;
    assert_eq!(env.status, 400);
    env.assert_contains("staging");
    env.assert_contains("prod");
    let from = post(
        "dark_mode",
        vec![("env", "prod".into()), ("from", "maybe".into())],
    )
    .await;
    assert_eq!(from.status, 400);
    from.assert_says("from=\"maybe\": expected true or false");
    let missing = post("dark_mode", vec![("env", "prod".into())]).await;
    assert_eq!(missing.status, 400);
    missing.assert_contains("from is missing");
    let same = post(
        "dark_mode",
        vec![
            ("env", "prod".into()),
            ("from", "false".into()),
            ("to", "false".into()),
        ],
    )
    .await;
    assert_eq!(same.status, 409);
    same.assert_contains("already off");
    let long = post(
        "dark_mode",
        vec![
            ("env", "prod".into()),
            ("from", "false".into()),
            ("reason", "x".repeat(501)),
        ],
    )
    .await;
    assert_eq!(long.status, 400);
    let huge = post(
        "dark_mode",
        vec![
            ("env", "prod".into()),
            ("from", "false".into()),
            ("reason", "x".repeat(100_000)),
        ],
    )
    .await;
    assert_eq!(huge.status, 413, "over the body limit");
    assert!(
        huge.header("content-security-policy")
            .contains("frame-ancestors 'none'")
    );
    assert_eq!(huge.header("cache-control"), "no-store");
    assert_eq!(console.row("dark_mode", "prod").await, None);
    assert_eq!(console.actions_since(0).await, [AUTH_SIGN_IN]);
    let page = browser.get("/console/flags?env=qa").await;
    assert_eq!(page.status, 400);
    let wrong_method = browser.get("/console/flags/dark_mode/flip").await;
    assert_eq!(wrong_method.status, 405);
    wrong_method.assert_says("This address does not take that kind of request.");
    let page = browser.get("/console/no-such-page").await;
    assert_eq!(page.status, 404);
    page.assert_contains("There is no page at this address");
}

#[tokio::test]
async fn with_htmx_the_row_is_swapped_in_place() {
    let console = TestConsole::start(Backend::Sqlite).await;
    let browser = console.signed_in("root").await;
    let csrf = browser.csrf().await;
    let htmx = [("hx-request", "true")];
    let form = |from: &'static str| {
        vec![
            ("csrf", csrf.clone()),
            ("env", "prod".to_owned()),
            ("from", from.to_owned()),
        ]
    };
    let as_pairs =
        |form: &Vec<(&'static str, String)>| -> Vec<(&'static str, String)> { form.clone() };
    let fields = as_pairs(&form("false"));
    let pairs: Vec<(&str, &str)> = fields.iter().map(|(k, v)| (*k, v.as_str())).collect();
    let row = browser
        .post_with("/console/flags/dark_mode/flip", &pairs, &htmx)
        .await;
    assert_eq!(row.status, 200, "{}", row.body);
    assert!(
        row.body
            .trim_start()
            .starts_with("<tr id=\"flag-dark_mode\">"),
        "{}",
        row.body
    );
    assert!(row.body.contains("<span class=\"source\">db</span>"));
    assert!(row.body.contains("<span class=\"by\">root</span>"));
    assert!(!row.body.contains("<html"), "a fragment, not a page");

    // A stale row: the conflict page, retargeted to the whole page.
    let stale = browser
        .post_with("/console/flags/dark_mode/flip", &pairs, &htmx)
        .await;
    assert_eq!(stale.status, 409);
    assert_eq!(stale.header("hx-retarget"), "body");
    stale.assert_contains("Nothing was changed.");

    // Elevation needed: htmx navigates the whole page there.
    let fields = form("false");
    let pairs: Vec<(&str, &str)> = fields.iter().map(|(k, v)| (*k, v.as_str())).collect();
    let elevate = browser
        .post_with("/console/flags/new_checkout/flip", &pairs, &htmx)
        .await;
    assert_eq!(elevate.status, 200);
    assert!(
        elevate
            .header("hx-redirect")
            .starts_with("/console/elevate?flag=new_checkout")
    );
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
        "/console/flags?env=prod&risk=low&sort=key#flag-legacy_banner"
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
        .assert_contains("Flips are recorded but have no effect until <code>FLAG_CONSOLE_FEATURE_FLAGS_DB=1</code>");
    let on = TestConsole::start(Backend::Sqlite).await;
    let page = on
        .signed_in("ops1")
        .await
        .get("/console/flags?env=prod")
        .await;
    assert!(!page.body.contains("Flips are recorded but have no effect"));
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
