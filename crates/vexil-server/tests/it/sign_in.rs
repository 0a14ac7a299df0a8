//! Signing in and staying signed in: one vague refusal, the per-account and
//! per-address limits, CSRF on every form, session expiry, the elevation page and
//! self-service TOTP enrolment. Every refusal also checks that nothing was written.

use chrono::TimeDelta;
use vexil_core::audit::{
    AUTH_ELEVATE_FAILED, AUTH_SIGN_IN, AUTH_SIGN_IN_FAILED, AUTH_SIGN_IN_FAILED_UNKNOWN,
    USER_TOTP_ENROL,
};
use vexil_server::ConsoleConfig;
use vexil_store::Backend;
use vexil_testkit::TestDb;

use crate::harness::{Options, PASSWORD, Page, TestConsole};

#[tokio::test]
async fn wrong_and_unknown_accounts_get_one_answer_and_are_audited() {
    let console = TestConsole::start(Backend::Sqlite).await;
    let browser = console.browser();
    let wrong = browser.sign_in("ops1", "not the password").await;
    let unknown = browser.sign_in("nobody", PASSWORD).await;
    for page in [&wrong, &unknown] {
        assert_eq!(page.status, 401);
        page.assert_contains("wrong account name or password");
        assert!(!page.body.contains(PASSWORD) && !page.body.contains("not the password"));
    }
    wrong.assert_contains("value=\"ops1\"");
    assert_eq!(
        browser.get("/console/flags").await.status,
        303,
        "not signed in"
    );
    // The account's failure has its row; the name that is no account is summed
    // into one row a minute (the housekeeping's call, made here).
    let audit = console.audit().await;
    assert_eq!(audit.len(), 1);
    assert_eq!(audit[0].action, AUTH_SIGN_IN_FAILED);
    assert_eq!(audit[0].payload["account"], "ops1");
    assert_eq!(audit[0].payload["from"], "127.0.0.1");
    console
        .state
        .app
        .summarize_unknown_sign_ins()
        .await
        .unwrap();
    let audit = console.audit().await;
    assert_eq!(audit[0].action, AUTH_SIGN_IN_FAILED_UNKNOWN);
    assert_eq!(audit[0].payload["accounts"], serde_json::json!(["nobody"]));
    assert_eq!(audit[0].payload["attempts"], 1);
}

/// Whichever limit refuses (the account's lock, the address's quota), the form comes
/// back with one message and one wait, the longest that holds, which is also
/// `Retry-After`.
#[tokio::test]
async fn an_account_is_locked_after_five_failures_and_an_address_after_its_quota() {
    let config = ConsoleConfig {
        sign_in_attempts_per_minute: 8.try_into().unwrap(),
        ..ConsoleConfig::default()
    };
    let console = TestConsole::start_with(
        TestDb::new(Backend::Sqlite).await,
        Options {
            config,
            ..Options::default()
        },
    )
    .await;
    let browser = console.browser();
    for _ in 0..5 {
        assert_eq!(browser.sign_in("ops1", "wrong password!").await.status, 401);
    }
    let locked = browser.sign_in("ops1", PASSWORD).await;
    assert_eq!(locked.status, 429, "{}", locked.body);
    one_wait(&locked, "15 min");
    assert_eq!(locked.header("retry-after"), "900");
    locked.assert_contains(r#"value="ops1""#);
    // The lock writes nothing: a flood cannot flood the audit log.
    assert_eq!(console.audit().await.len(), 5);

    // Other accounts, same address: the address's quota (8 a minute) runs out.
    assert_eq!(
        browser.sign_in("admin", "wrong password!").await.status,
        401
    );
    assert_eq!(browser.sign_in("root", "wrong password!").await.status, 401);
    let limited = browser.sign_in("admin", PASSWORD).await;
    assert_eq!(limited.status, 429, "{}", limited.body);
    let wait: u64 = limited.header("retry-after").parse().unwrap();
    assert!((1..=8).contains(&wait), "{wait}");
    one_wait(&limited, &format!("{wait} s"));
    // Both limits hold for ops1: the page names the longer wait, the lock's.
    let both = browser.sign_in("ops1", PASSWORD).await;
    assert_eq!(both.status, 429, "{}", both.body);
    one_wait(&both, "15 min");
    assert_eq!(both.header("retry-after"), "900");
    assert_eq!(
        console.audit().await.len(),
        7,
        "the limited attempts are not checked"
    );
}

/// The page says "Too many sign-in attempts. Try again in `wait`." and names no
/// other wait.
#[track_caller]
fn one_wait(page: &Page, wait: &str) {
    page.assert_says(&format!(
        r#"<p class="error" role="alert">Too many sign-in attempts. Try again in {wait}.</p>"#
    ));
    let text = page.text().to_lowercase();
    assert_eq!(text.matches("try again").count(), 1, "{}", page.body);
    assert_eq!(text.matches("too many").count(), 1, "{}", page.body);
}

#[tokio::test]
async fn forms_without_this_sessions_csrf_token_change_nothing() {
    let console = TestConsole::start(Backend::Sqlite).await;
    let browser = console.browser();
    let no_token = browser
        .post(
            "/console/sign-in",
            &[("name", "ops1"), ("password", PASSWORD)],
        )
        .await;
    assert_eq!(no_token.status, 403);
    no_token.assert_contains("This form has expired");
    assert!(
        console.audit().await.is_empty(),
        "not even a sign-in attempt"
    );

    let browser = console.signed_in("ops1").await;
    for token in ["", "0000", &"a".repeat(64)] {
        let page = browser
            .post(
                "/console/flags/dark_mode/flip",
                &[
                    ("csrf", token),
                    ("env", "prod"),
                    ("from", "false"),
                    ("to", "true"),
                ],
            )
            .await;
        assert_eq!(page.status, 403, "{token:?}");
    }
    // Another session's token is not this one's.
    let other = console.signed_in("root").await;
    let theirs = other.csrf().await;
    let page = browser
        .post(
            "/console/flags/dark_mode/flip",
            &[("csrf", &theirs), ("env", "prod"), ("from", "false")],
        )
        .await;
    assert_eq!(page.status, 403);
    assert_eq!(console.row("dark_mode", "prod").await, None);
    assert_eq!(console.actions_since(0).await, [AUTH_SIGN_IN, AUTH_SIGN_IN]);
}

#[tokio::test]
async fn sessions_end_after_idle_and_absolute_limits() {
    let console = TestConsole::start(Backend::Sqlite).await;
    let browser = console.signed_in("ops1").await;
    console.clock.advance(TimeDelta::minutes(29));
    assert_eq!(
        browser.get("/console/flags").await.status,
        200,
        "29 min idle"
    );
    console.clock.advance(TimeDelta::minutes(30));
    let page = browser.get("/console/flags").await;
    assert_eq!(page.status, 303, "30 min idle");
    assert_eq!(
        page.location(),
        "/console/sign-in?next=%2Fconsole%2Fflags&expired=1"
    );
    let form = browser
        .get(page.location().trim_start_matches(&browser.base))
        .await;
    form.assert_contains("Your session ended");

    // Used every 25 minutes, it still ends 12 hours after sign-in.
    let browser = console.signed_in("ops1").await;
    for _ in 0..28 {
        console.clock.advance(TimeDelta::minutes(25));
        assert_eq!(browser.get("/console/flags").await.status, 200);
    }
    console.clock.advance(TimeDelta::minutes(25));
    assert_eq!(browser.get("/console/flags").await.status, 303, "12 h");
}

#[tokio::test]
async fn after_sign_in_only_console_paths_are_followed() {
    let console = TestConsole::start(Backend::Sqlite).await;
    for (next, lands) in [
        (
            "/console/audit?flag=dark_mode",
            "/console/audit?flag=dark_mode",
        ),
        ("//evil.example/console", "/console/flags"),
        ("https://evil.example/", "/console/flags"),
        ("/\\evil.example", "/console/flags"),
        ("/console//evil.example", "/console/flags"),
    ] {
        let page = console.browser().sign_in_to("ops1", PASSWORD, next).await;
        assert_eq!((page.status, page.location()), (303, lands), "{next}");
    }
    // Accounts that may not see the flags land on their account page.
    let page = console.browser().sign_in("reader", PASSWORD).await;
    assert_eq!(page.location(), "/console/account");
}

#[tokio::test]
async fn the_elevation_page_elevates_and_returns() {
    let console = TestConsole::start(Backend::Sqlite).await;
    let browser = console.signed_in("root").await;
    let form = browser.get("/console/elevate?next=/console/audit").await;
    assert_eq!(form.status, 200);
    let csrf = form.csrf();
    let code = console.root_code(-1);
    let page = browser
        .post(
            "/console/elevate",
            &[("csrf", &csrf), ("totp", &code), ("next", "/console/audit")],
        )
        .await;
    assert_eq!((page.status, page.location()), (303, "/console/audit"));
    browser
        .get("/console/audit")
        .await
        .assert_contains("elevated until");

    // Without TOTP enrolled, the page says where to set it up.
    let admin = console.signed_in("admin").await;
    admin
        .get("/console/elevate")
        .await
        .assert_contains("Your account has no TOTP enrolled");
}

#[tokio::test]
async fn an_account_enrols_totp_itself_with_a_confirming_code() {
    let console = TestConsole::start(Backend::Sqlite).await;
    let browser = console.signed_in("admin").await;
    let page = browser.get("/console/account").await;
    page.assert_contains("Set up TOTP");
    let csrf = page.csrf();
    // The password first: a stolen session cookie alone binds no second factor.
    let refused = browser
        .post(
            "/console/account/totp",
            &[("csrf", &csrf), ("password", "not my password")],
        )
        .await;
    assert_eq!(refused.status, 422);
    refused.assert_says("wrong password: TOTP set-up needs your current password");
    assert!(!refused.body.contains("<svg"));
    let started = browser
        .post(
            "/console/account/totp",
            &[("csrf", &csrf), ("password", PASSWORD)],
        )
        .await;
    assert_eq!(
        (started.status, started.location()),
        (303, "/console/account")
    );
    let page = browser.get("/console/account").await;
    page.assert_contains("<svg");
    let uri_start = page
        .body
        .find("otpauth://totp/vexil:admin?")
        .expect("the URI");
    let uri = &page.body[uri_start..page.body[uri_start..].find('<').unwrap() + uri_start];
    let uri = uri.replace("&amp;", "&").replace("&#38;", "&");
    assert!(
        !console.state.app.has_totp("admin").await.unwrap(),
        "not before a code"
    );

    let wrong = browser
        .post(
            "/console/account/totp/confirm",
            &[("csrf", &csrf), ("totp", "123456")],
        )
        .await;
    assert_eq!(wrong.status, 422);
    wrong.assert_contains("<svg");
    let now = vexil_core::Clock::now(&*console.clock).timestamp();
    let code = vexil_app::code_at(&uri, u64::try_from(now).unwrap()).unwrap();
    let done = browser
        .post(
            "/console/account/totp/confirm",
            &[("csrf", &csrf), ("totp", &code)],
        )
        .await;
    assert_eq!(
        (done.status, done.location()),
        (303, "/console/account?enrolled=1")
    );
    assert!(console.state.app.has_totp("admin").await.unwrap());
    browser
        .get("/console/account?enrolled=1")
        .await
        .assert_contains("TOTP is set up");
    // The confirming code is spent; a fresh one elevates.
    let replay = browser
        .post("/console/elevate", &[("csrf", &csrf), ("totp", &code)])
        .await;
    assert_eq!(replay.status, 422);
    assert_eq!(
        console.actions_since(0).await,
        // The wrong password at set-up is a failed sign-in, counted as one.
        [
            AUTH_SIGN_IN,
            AUTH_SIGN_IN_FAILED,
            USER_TOTP_ENROL,
            AUTH_ELEVATE_FAILED
        ]
    );
    // Enrolled accounts cannot replace it from a session.
    let again = browser
        .post(
            "/console/account/totp",
            &[("csrf", &csrf), ("password", PASSWORD)],
        )
        .await;
    assert_eq!(again.status, 422);
    again.assert_contains("has TOTP enrolled already");
}

/// For an authenticator that cannot scan, the key is shown in groups of four: the
/// URI's secret, spaced for reading.
#[tokio::test]
async fn the_totp_key_is_shown_in_groups_of_four() {
    let console = TestConsole::start(Backend::Sqlite).await;
    let browser = console.signed_in("admin").await;
    let csrf = browser.csrf().await;
    let started = browser
        .post(
            "/console/account/totp",
            &[("csrf", &csrf), ("password", PASSWORD)],
        )
        .await;
    assert_eq!(started.status, 303, "{}", started.body);
    let page = browser.get("/console/account").await;
    let marker = r#"<code class="totp-key" id="totp-key">"#;
    let start = page.body.find(marker).expect("the key") + marker.len();
    let key = &page.body[start..start + page.body[start..].find('<').unwrap()];
    let groups: Vec<&str> = key.split(' ').collect();
    assert!(groups.len() >= 8, "{key}");
    let (last, full) = groups.split_last().unwrap();
    assert!(full.iter().all(|group| group.len() == 4), "{key}");
    assert!((1..=4).contains(&last.len()), "{key}");
    assert!(
        key.chars()
            .all(|c| c == ' ' || c.is_ascii_uppercase() || ('2'..='7').contains(&c)),
        "base32: {key}"
    );
    let secret = format!("secret={}&", key.replace(' ', ""));
    assert!(page.body.contains(&secret), "the URI's secret");
}

#[tokio::test]
async fn wrong_totp_codes_lock_elevation() {
    let console = TestConsole::start(Backend::Sqlite).await;
    let browser = console.signed_in("root").await;
    let csrf = browser.csrf().await;
    let right = console.root_code(0);
    let wrong = console.wrong_root_code();
    for _ in 0..5 {
        let page = browser
            .post("/console/elevate", &[("csrf", &csrf), ("totp", wrong)])
            .await;
        assert_eq!(page.status, 422);
    }
    let locked = browser
        .post("/console/elevate", &[("csrf", &csrf), ("totp", &right)])
        .await;
    assert_eq!(locked.status, 429);
    locked.assert_says("Too many wrong TOTP codes for this account.");
    // One wait, said once, as Retry-After says it.
    assert_eq!(
        locked.text().matches("Try again in").count(),
        1,
        "{}",
        locked.body
    );
    assert_eq!(
        locked.text().matches("try again in").count(),
        0,
        "{}",
        locked.body
    );
    assert!(!locked.header("retry-after").is_empty());
    // A seventh attempt within the minute meets the account's burst limit first,
    // before anything is checked (parallel guesses cannot outrun the audit count).
    let burst = browser
        .post("/console/elevate", &[("csrf", &csrf), ("totp", &right)])
        .await;
    assert_eq!(burst.status, 429);
    burst.assert_says("Too many attempts for this account");
    let mut expected = vec![AUTH_SIGN_IN.to_owned()];
    expected.extend(std::iter::repeat_n(AUTH_ELEVATE_FAILED.to_owned(), 5));
    assert_eq!(console.actions_since(0).await, expected);
}

/// Visitors who have not signed in cost no database write: the sign-in page's CSRF
/// token is stateless (replayed: 2,000 cookie-less page loads made 2,000 session
/// rows). A form without the browser's cookie, or with another browser's token, is
/// refused; the session row appears at sign-in.
async fn anonymous_visitors_write_nothing(backend: Backend) {
    let console = TestConsole::start(backend).await;
    let client = reqwest::Client::new();
    let url = format!("http://{}/console/sign-in", console.address);
    let mut loads = Vec::new();
    for _ in 0..2_000 {
        loads.push(client.get(&url).send());
    }
    for load in futures_util::future::join_all(loads).await {
        assert_eq!(load.unwrap().status(), 200);
    }
    assert_eq!(console.session_rows().await, 0);
    assert_eq!(console.audit().await.len(), 0);

    // One browser's token does not go with another's cookie, nor with none.
    let alice = console.browser();
    let mallory = console.browser();
    let token = alice.get("/console/sign-in").await.csrf();
    mallory.get("/console/sign-in").await;
    let form = [
        ("csrf", token.as_str()),
        ("name", "ops1"),
        ("password", PASSWORD),
    ];
    for refused in [
        mallory.post("/console/sign-in", &form).await,
        console.browser().post("/console/sign-in", &form).await,
    ] {
        assert_eq!(refused.status, 403, "{}", refused.body);
    }
    assert_eq!(console.session_rows().await, 0);
    let signed_in = alice.post("/console/sign-in", &form).await;
    assert_eq!(signed_in.status, 303);
    assert_eq!(console.session_rows().await, 1);
}
vexil_testkit::both!(anonymous_visitors_write_nothing);

/// An account failed from many networks asks for a code on the sign-in page: the
/// password alone is refused (nothing checked), the page shows the code field, and
/// the password with the code signs in; a wrong code gets the one vague answer.
#[tokio::test]
async fn an_account_under_attack_signs_in_with_its_code() {
    let console = TestConsole::start(Backend::Sqlite).await;
    let wrong = secrecy::SecretString::from("not the password");
    for n in 0..vexil_app::ACCOUNT_FAILURES {
        let from = format!("198.51.100.{n}");
        let _refused = console.state.app.sign_in("root", &wrong, None, &from).await;
    }
    let browser = console.browser();
    let asked = browser.sign_in("root", PASSWORD).await;
    assert_eq!(asked.status, 401, "{}", asked.body);
    asked.assert_contains("needs a code from its authenticator app");
    asked.assert_contains("id=\"code\"");
    let csrf = asked.csrf();
    let form = |code: &str| {
        [
            ("csrf", csrf.clone()),
            ("name", "root".to_owned()),
            ("password", PASSWORD.to_owned()),
            ("code", code.to_owned()),
        ]
    };
    let wrong_code = form(console.wrong_root_code());
    let refused = browser
        .post(
            "/console/sign-in",
            &wrong_code.each_ref().map(|(k, v)| (*k, v.as_str())),
        )
        .await;
    assert_eq!(refused.status, 401);
    refused.assert_contains("wrong account name, password or code");
    let right = form(&console.root_code(0));
    let signed_in = browser
        .post(
            "/console/sign-in",
            &right.each_ref().map(|(k, v)| (*k, v.as_str())),
        )
        .await;
    assert_eq!(signed_in.status, 303, "{}", signed_in.body);
}
