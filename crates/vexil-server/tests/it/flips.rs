//! Console flips over HTTP: the confirmation page of a prod flip, the reason an env
//! asks for, elevation asked for on the flip's own page (never through a GET URL),
//! conflicts with the other change's reason, htmx's row and notice, the flash after
//! a flip without JavaScript, and a flip posted after its session ended. Every
//! refusal also checks that nothing was written.

use chrono::TimeDelta;
use vexil_core::Env;
use vexil_core::audit::{AUTH_ELEVATE, AUTH_ELEVATE_FAILED, AUTH_SIGN_IN, FLAG_FLIP};
use vexil_server::ConsoleConfig;
use vexil_store::Backend;
use vexil_testkit::{TestDb, both};

use crate::console::{row_of, session_cookie};
use crate::harness::{Options, TestConsole};

#[tokio::test]
async fn a_prod_flip_is_confirmed_on_its_own_page_naming_flag_env_and_change() {
    let console = TestConsole::start(Backend::Sqlite).await;
    let browser = console.signed_in("ops1").await;
    let flags = browser.get("/console/flags?env=prod").await;
    flags.assert_contains("class=\"env-band env-band-prod\"");
    let row = row_of(&flags.body, "dark_mode");
    assert!(row.contains("Turn on in prod…</button>"), "{row}");
    assert!(
        !row.contains("hx-post"),
        "a prod flip is not swapped in place: {row}"
    );

    // The row's button (Enter in its reason box too): the confirmation, nothing written.
    let step = browser
        .flip_form("dark_mode", "prod", false, &[("reason", "INC-77 rollback")])
        .await;
    assert_eq!(step.status, 200, "{}", step.body);
    step.assert_contains(
        "<h1 id=\"step-title\">Turn <code>dark_mode</code> ON in <span class=\"env env-prod\">prod</span>?</h1>",
    );
    step.assert_contains("name=\"confirm\" value=\"yes\"");
    step.assert_contains("value=\"INC-77 rollback\"");
    step.assert_says("Turn dark_mode on in prod</button>");
    step.assert_says("Cancel: change nothing");
    assert_eq!(console.row("dark_mode", "prod").await, None);
    assert_eq!(console.actions_since(0).await, [AUTH_SIGN_IN]);

    // Confirmed: written, and the list says what it did.
    let done = browser
        .flip_form(
            "dark_mode",
            "prod",
            false,
            &[("reason", "INC-77 rollback"), ("confirm", "yes")],
        )
        .await;
    assert_eq!(done.status, 303, "{}", done.body);
    assert_eq!(
        done.location(),
        "/console/flags?env=prod&flipped=dark_mode#flag-dark_mode"
    );
    assert_eq!(
        console.row("dark_mode", "prod").await,
        Some((true, Some("ops1".into())))
    );
    let list = browser.get(done.location()).await;
    list.assert_says("dark_mode is on in prod (by ops1, 2026-01-15 09:30:00 UTC).");
    assert!(row_of(&list.body, "dark_mode").contains("class=\"just-flipped\""));

    // Staging is not confirmed: its rows flip in place.
    let staging = browser.get("/console/flags?env=staging").await;
    assert!(row_of(&staging.body, "dark_mode").contains("hx-post"));
    let flipped = browser.flip_form("dark_mode", "staging", false, &[]).await;
    assert_eq!(flipped.status, 303);
}

/// A list filtered on the value hides the row once it is flipped: the page still
/// says what the flip did.
#[tokio::test]
async fn the_flash_stays_when_a_filter_now_hides_the_flipped_row() {
    let console = TestConsole::start(Backend::Sqlite).await;
    let browser = console.signed_in("ops1").await;
    let done = browser
        .flip("dark_mode", "staging", false, &[("list", "value=off")])
        .await;
    assert_eq!(
        done.location(),
        "/console/flags?env=staging&flipped=dark_mode&value=off#flag-dark_mode"
    );
    let list = browser.get(done.location()).await;
    assert!(
        !list.body.contains("<tr id=\"flag-dark_mode\""),
        "filtered out"
    );
    list.assert_says("dark_mode is on in staging (by ops1, 2026-01-15 09:30:00 UTC).");
}

#[tokio::test]
async fn a_reason_is_required_where_the_env_asks_for_one() {
    let console = TestConsole::start(Backend::Sqlite).await;
    let browser = console.signed_in("ops1").await;
    for reason in ["", "   "] {
        let refused = browser
            .flip_form(
                "dark_mode",
                "prod",
                false,
                &[("reason", reason), ("confirm", "yes")],
            )
            .await;
        assert_eq!(refused.status, 422, "{}", refused.body);
        refused.assert_says("A reason is required for a flip in prod");
        refused.assert_contains("aria-invalid=\"true\"");
        refused.assert_contains("required aria-required=\"true\"");
    }
    assert_eq!(console.row("dark_mode", "prod").await, None);
    assert_eq!(console.actions_since(0).await, [AUTH_SIGN_IN]);
    // Staging asks for none by default.
    let staging = browser.flip_form("dark_mode", "staging", false, &[]).await;
    assert_eq!(staging.status, 303);
}

#[tokio::test]
async fn which_envs_ask_for_a_reason_is_configurable() {
    let options = Options {
        config: ConsoleConfig {
            require_reason: vec![Env::STAGING],
            ..ConsoleConfig::default()
        },
        ..Options::default()
    };
    let console = TestConsole::start_with(TestDb::new(Backend::Sqlite).await, options).await;
    let browser = console.signed_in("ops1").await;
    // Staging now confirms and asks for a reason.
    let list = browser.get("/console/flags?env=staging").await;
    assert!(!row_of(&list.body, "dark_mode").contains("hx-post"));
    let refused = browser
        .flip_form("dark_mode", "staging", false, &[("confirm", "yes")])
        .await;
    assert_eq!(refused.status, 422);
    refused.assert_says("A reason is required for a flip in staging");
    // Prod is still confirmed, but a reason is optional there now.
    let step = browser.flip_form("dark_mode", "prod", false, &[]).await;
    assert_eq!(step.status, 200);
    step.assert_says("Reason (optional)");
    let done = browser
        .flip_form("dark_mode", "prod", false, &[("confirm", "yes")])
        .await;
    assert_eq!(done.status, 303, "{}", done.body);
    assert_eq!(console.audit().await[0].payload.get("reason"), None);
}

async fn superadmin_elevates_on_the_flips_own_page(backend: Backend) {
    let console = TestConsole::start(backend).await;
    let browser = console.browser();
    let signed_in = browser.sign_in("root", crate::harness::PASSWORD).await;
    let before_elevation = session_cookie(&signed_in);
    assert!(!before_elevation.is_empty());
    let flags = browser.get("/console/flags").await;
    assert!(row_of(&flags.body, "new_checkout").contains("Turn on in prod… · TOTP"));

    // Confirmed without a code: the same page asks for one; the reason stays in the
    // POSTed form, never in a URL.
    let page = browser
        .flip("new_checkout", "prod", false, &[("reason", "launch")])
        .await;
    assert_eq!(page.status, 200, "{}", page.body);
    assert_eq!(page.location(), "");
    page.assert_contains("id=\"totp\"");
    page.assert_contains("value=\"launch\"");
    page.assert_contains("action=\"/console/flags/new_checkout/flip\"");
    assert_eq!(console.row("new_checkout", "prod").await, None);

    // A wrong code: refused, audited, nothing flipped, the page again.
    let wrong = browser
        .flip("new_checkout", "prod", false, &[("totp", "000000")])
        .await;
    assert_eq!(wrong.status, 422, "{}", wrong.body);
    wrong.assert_contains("the TOTP code is wrong or expired");
    wrong.assert_contains("id=\"totp\"");
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
    assert!(row_of(&flags.body, "new_checkout").contains("Turn off in prod…</button>"));

    // Elevated: no code needed; a replayed code is refused.
    let again = browser.flip("new_checkout", "prod", true, &[]).await;
    assert_eq!(again.status, 303);
    let replayed = browser
        .flip("new_checkout", "prod", false, &[("totp", &code)])
        .await;
    assert_eq!(replayed.status, 422);
    replayed.assert_contains("already used");

    // Ten minutes later the elevation is gone: the code is asked for again.
    console.clock.advance(TimeDelta::minutes(10));
    let later = browser.flip("new_checkout", "prod", false, &[]).await;
    assert_eq!(later.status, 200);
    later.assert_contains("id=\"totp\"");
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
both!(superadmin_elevates_on_the_flips_own_page);

#[tokio::test]
async fn a_stale_page_gets_the_conflict_page_with_the_other_reason_and_writes_nothing() {
    let console = TestConsole::start(Backend::Sqlite).await;
    let alice = console.signed_in("ops1").await;
    let bob = console.signed_in("root").await;
    // Both see dark_mode off; bob turns it on first, saying why.
    let first = bob
        .flip(
            "dark_mode",
            "prod",
            false,
            &[("reason", "INC-77: dark users")],
        )
        .await;
    assert_eq!(first.status, 303);
    let rows = console.audit().await.len();
    // At the confirmation step and after it: the same conflict.
    for confirm in ["", "yes"] {
        let stale = alice
            .flip("dark_mode", "prod", false, &[("confirm", confirm)])
            .await;
        assert_eq!(stale.status, 409, "{}", stale.body);
        stale.assert_contains("dark_mode changed since you loaded the page");
        stale.assert_contains("<strong>Nothing was changed.</strong>");
        stale.assert_contains("<dt>Set by</dt><dd>root</dd>");
        stale.assert_contains("<dt>When</dt><dd>2026-01-15 09:30:00 UTC</dd>");
        stale.assert_says("<q class=\"reason-text\">INC-77: dark users</q>");
        // The flip offered again, from the value now.
        stale.assert_contains("name=\"from\" value=\"true\"");
        stale.assert_says("Turn off in prod…</button>");
        // The header is the signed-in one.
        stale.assert_contains("<span class=\"account\">ops1</span>");
    }
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
    let flip = |flag: &'static str, form: Vec<(&'static str, String)>| {
        let browser = &browser;
        async move {
            let fields: Vec<(&str, &str)> = form.iter().map(|(k, v)| (*k, v.as_str())).collect();
            let csrf = browser.csrf().await;
            let mut all = vec![("csrf", csrf.as_str()), ("confirm", "yes"), ("reason", "r")];
            all.retain(|(k, _)| !fields.iter().any(|(given, _)| given == k));
            all.extend(fields);
            browser
                .post(&format!("/console/flags/{flag}/flip"), &all)
                .await
        }
    };
    let prod = || ("env", "prod".to_owned());
    let unknown = flip("no_such_flag", vec![prod(), ("from", "false".into())]).await;
    assert_eq!(unknown.status, 404);
    unknown.assert_says("unknown flag 'no_such_flag'");
    let env = flip(
        "dark_mode",
        vec![("env", "qa".into()), ("from", "false".into())],
    )
    .await;
    assert_eq!(env.status, 400);
    env.assert_contains("staging");
    env.assert_contains("prod");
    let from = flip("dark_mode", vec![prod(), ("from", "maybe".into())]).await;
    assert_eq!(from.status, 400);
    from.assert_says("from=\"maybe\": expected true or false");
    let missing = flip("dark_mode", vec![prod()]).await;
    assert_eq!(missing.status, 400);
    missing.assert_contains("from is missing");
    let same = flip(
        "dark_mode",
        vec![prod(), ("from", "false".into()), ("to", "false".into())],
    )
    .await;
    assert_eq!(same.status, 409);
    same.assert_contains("already off");
    let long = flip(
        "dark_mode",
        vec![
            prod(),
            ("from", "false".into()),
            ("reason", "x".repeat(501)),
        ],
    )
    .await;
    // Named on the flip's page, still pending, as a missing reason is.
    assert_eq!(long.status, 422);
    long.assert_says("reason: it is longer than 500 characters. Nothing was changed.");
    let huge = flip(
        "dark_mode",
        vec![
            prod(),
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
    let forged = browser
        .post(
            "/console/flags/dark_mode/flip",
            &[
                ("csrf", "0".repeat(64).as_str()),
                ("env", "prod"),
                ("from", "false"),
            ],
        )
        .await;
    assert_eq!(forged.status, 403);
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
async fn with_htmx_the_row_is_swapped_in_place_with_a_notice() {
    let console = TestConsole::start(Backend::Sqlite).await;
    let browser = console.signed_in("root").await;
    let csrf = browser.csrf().await;
    let htmx = [("hx-request", "true")];
    let form = |flag_from: &'static str| {
        [
            ("csrf", csrf.as_str()),
            ("env", "staging"),
            ("from", flag_from),
        ]
    };
    let row = browser
        .post_with("/console/flags/dark_mode/flip", &form("false"), &htmx)
        .await;
    assert_eq!(row.status, 200, "{}", row.body);
    assert!(
        row.body
            .trim_start()
            .starts_with("<tr id=\"flag-dark_mode\" class=\"just-flipped\" data-focus>"),
        "{}",
        row.body
    );
    assert!(row.body.contains("<span class=\"source\">db</span>"));
    assert!(row.body.contains("<span class=\"by\">root</span>"));
    assert!(!row.body.contains("<html"), "a fragment, not a page");
    // The notice for the live region, swapped out of band.
    assert!(
        row.body.contains(
            "<div id=\"flip-notice\" hx-swap-oob=\"innerHTML\">dark_mode is on in staging (by root, 2026-01-15 09:30:00 UTC).</div>"
        ),
        "{}",
        row.body
    );

    // A stale row: the conflict page, retargeted to the whole page.
    let stale = browser
        .post_with("/console/flags/dark_mode/flip", &form("false"), &htmx)
        .await;
    assert_eq!(stale.status, 409);
    assert_eq!(stale.header("hx-retarget"), "body");
    stale.assert_contains("Nothing was changed.");

    // Elevation needed: the code page, over the whole page.
    let elevate = browser
        .post_with("/console/flags/new_checkout/flip", &form("false"), &htmx)
        .await;
    assert_eq!(elevate.status, 200);
    assert_eq!(elevate.header("hx-retarget"), "body");
    elevate.assert_contains("id=\"totp\"");
    assert_eq!(console.row("new_checkout", "staging").await, None);
}

/// With the master switch off, a flip used to leave the row "off · yaml" with the
/// same button, and a second click was a conflict about one's own change: a first
/// impression that flipping does nothing.
#[tokio::test]
async fn with_the_master_switch_off_the_row_and_what_runs_are_both_shown() {
    let options = Options {
        env_vars: vec![("FLAG_CONSOLE_FEATURE_FLAGS_DB".into(), "0".into())],
        ..Options::default()
    };
    let console = TestConsole::start_with(TestDb::new(Backend::Sqlite).await, options).await;
    let browser = console.signed_in("ops1").await;
    let list = browser.get("/console/flags?env=staging").await;
    let row = row_of(&list.body, "dark_mode");
    assert!(row.contains("Set row on in staging</button>"), "{row}");
    assert!(
        row.contains("sets the row; what runs changes once"),
        "{row}"
    );

    let first = browser.flip("dark_mode", "staging", false, &[]).await;
    assert_eq!(first.status, 303, "{}", first.body);
    let list = browser.get(first.location()).await;
    list.assert_says(
        "dark_mode: the row in staging is on (by ops1, 2026-01-15 09:30:00 UTC). Not in effect: the master switch is off in staging, which still runs off.",
    );
    let row = row_of(&list.body, "dark_mode");
    assert!(row.contains("value-off\">runs off</span>"), "{row}");
    assert!(
        row.contains("row on, not in effect: master switch off"),
        "{row}"
    );
    // The next flip starts from the row: it turns the row off, no conflict.
    assert!(row.contains("name=\"from\" value=\"true\""), "{row}");
    assert!(row.contains("Set row off in staging</button>"), "{row}");
    let second = browser.flip("dark_mode", "staging", true, &[]).await;
    assert_eq!(second.status, 303, "{}", second.body);
    assert_eq!(
        console.row("dark_mode", "staging").await,
        Some((false, Some("ops1".into())))
    );
    // The prod confirmation says what the flip will and will not do.
    let step = browser.flip_form("dark_mode", "prod", false, &[]).await;
    step.assert_says("this sets the DB row to on and changes nothing that runs");
    step.assert_says("Set the row on in prod</button>");
}

#[tokio::test]
async fn a_flip_posted_after_the_session_ended_says_nothing_was_changed() {
    let console = TestConsole::start(Backend::Sqlite).await;
    let browser = console.signed_in("ops1").await;
    let csrf = browser.csrf().await;
    console.clock.advance(TimeDelta::hours(13));
    let lost = browser
        .post(
            "/console/flags/dark_mode/flip",
            &[("csrf", &csrf), ("env", "staging"), ("from", "false")],
        )
        .await;
    assert_eq!(lost.status, 303);
    assert_eq!(
        lost.location(),
        "/console/sign-in?next=%2Fconsole%2Fflags%2Fdark_mode&expired=1&dropped=1"
    );
    let sign_in = browser.get(lost.location()).await;
    sign_in.assert_says("Your session ended before your change was sent: nothing was changed.");
    assert_eq!(console.row("dark_mode", "staging").await, None);
}

#[tokio::test]
async fn elevation_is_not_offered_to_a_role_it_does_not_help() {
    let console = TestConsole::start(Backend::Sqlite).await;
    let ops = console.signed_in("ops1").await;
    let page = ops.get("/console/elevate").await;
    assert_eq!(page.status, 200);
    page.assert_says("Your role, ops, gains nothing from elevation");
    assert!(!page.body.contains("id=\"totp\""));
    let root = console.signed_in("root").await;
    root.get("/console/elevate")
        .await
        .assert_contains("id=\"totp\"");
}

/// Codes sent faster than the account's allowance: the flip's page again, still
/// pending, with the one wait; nothing is checked or written.
#[tokio::test]
async fn too_many_codes_keep_the_flip_pending_with_one_wait() {
    let console = TestConsole::start(Backend::Sqlite).await;
    let browser = console.signed_in("root").await;
    let right = console.root_code(0);
    let wrong = console.wrong_root_code();
    for _ in 0..5 {
        let refused = browser
            .flip("new_checkout", "staging", false, &[("totp", wrong)])
            .await;
        assert_eq!(refused.status, 422, "{}", refused.body);
    }
    // The sixth: the account is locked; the seventh: over the minute's allowance.
    for says in [
        "Too many wrong TOTP codes for this account.",
        "Too many attempts for this account.",
    ] {
        let page = browser
            .flip("new_checkout", "staging", false, &[("totp", &right)])
            .await;
        assert_eq!(page.status, 429, "{}", page.body);
        assert!(!page.header("retry-after").is_empty());
        page.assert_contains("id=\"totp\"");
        page.assert_says(says);
        assert_eq!(
            page.text().matches("Try again in").count(),
            1,
            "{}",
            page.body
        );
    }
    assert_eq!(console.row("new_checkout", "staging").await, None);
}
