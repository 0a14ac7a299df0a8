//! Sessions that the database alone cannot mint: a writer with SQL access inserts a
//! `console_sessions` row for a superadmin "elevated until 2036" and presents its
//! cookie. Unsealed, it is no session; sealed with the server's own key (as if the
//! key had leaked), the elevation is still capped at one window from now and a
//! sign-in dated in the future is refused.

use chrono::{DateTime, TimeDelta, Utc};
use sha2::Digest;
use tower_sessions::session::Id;
use vexil_store::Backend;

use crate::harness::TestConsole;
use vexil_testkit::both;

/// A session row for `account`, as the console's store would write it, inserted
/// directly; `seal` says whether it carries the server's MAC. Returns the cookie.
async fn insert_session(
    console: &TestConsole,
    account: &str,
    signed_in_at: DateTime<Utc>,
    elevated_until: &str,
    seal: bool,
) -> String {
    let id = Id(0x5eed_0000_0000_0000_0000_0000_0000_0042);
    let hash: [u8; 32] = sha2::Sha256::digest(id.0.to_le_bytes()).into();
    let data = serde_json::json!({
        "console": {
            "csrf": "ab".repeat(32),
            "account": account,
            "signed_in_at": signed_in_at,
            "seen_at": console.state.app.now(),
            "elevated_until": elevated_until,
            "pending_totp": null,
        }
    })
    .to_string();
    let expires_at = Utc::now() + TimeDelta::minutes(30);
    let mac = seal.then(|| {
        console
            .state
            .app
            .session_mac()
            .expect("the test console has a secret key")
            .seal(&hash, &data, expires_at)
    });
    assert!(
        console
            .state
            .app
            .db()
            .create_session(&hash, &data, expires_at, mac.as_deref())
            .await
            .unwrap()
    );
    format!("{}={id}", vexil_server::SESSION_COOKIE)
}

async fn get(console: &TestConsole, cookie: &str, path: &str) -> (u16, String) {
    let response = reqwest::Client::builder()
        .redirect(reqwest::redirect::Policy::none())
        .build()
        .unwrap()
        .get(format!("http://{}{path}", console.address))
        .header("cookie", cookie)
        .send()
        .await
        .unwrap();
    (response.status().as_u16(), response.text().await.unwrap())
}

async fn a_session_row_inserted_by_sql_signs_nobody_in(backend: Backend) {
    let console = TestConsole::start(backend).await;
    let now = console.state.app.now();
    let cookie = insert_session(&console, "root", now, "2036-01-01T00:00:00Z", false).await;
    let (status, _) = get(&console, &cookie, "/console/flags").await;
    assert_eq!(status, 303, "sent to sign in");
}
both!(a_session_row_inserted_by_sql_signs_nobody_in);

async fn a_sealed_session_is_elevated_for_one_window_at_most(backend: Backend) {
    let console = TestConsole::start(backend).await;
    let now = console.state.app.now();
    // The check that a session works at all: a genuine elevation, five minutes long.
    let within = (now + TimeDelta::minutes(5)).to_rfc3339();
    let cookie = insert_session(&console, "root", now, &within, true).await;
    let (status, page) = get(&console, &cookie, "/console/flags").await;
    assert_eq!(status, 200);
    assert!(page.contains("elevated until"), "{page}");
}
both!(a_sealed_session_is_elevated_for_one_window_at_most);

async fn an_elevation_until_2036_is_no_elevation(backend: Backend) {
    let console = TestConsole::start(backend).await;
    let now = console.state.app.now();
    let cookie = insert_session(&console, "root", now, "2036-01-01T00:00:00Z", true).await;
    let (status, page) = get(&console, &cookie, "/console/flags").await;
    assert_eq!(status, 200, "signed in");
    assert!(!page.contains("elevated until"), "{page}");
}
both!(an_elevation_until_2036_is_no_elevation);

async fn a_sign_in_dated_in_the_future_is_refused(backend: Backend) {
    let console = TestConsole::start(backend).await;
    let later = console.state.app.now() + TimeDelta::days(365);
    let cookie = insert_session(&console, "root", later, "2026-01-01T00:00:00Z", true).await;
    let (status, _) = get(&console, &cookie, "/console/flags").await;
    assert_eq!(status, 303, "sent to sign in");
}
both!(a_sign_in_dated_in_the_future_is_refused);
