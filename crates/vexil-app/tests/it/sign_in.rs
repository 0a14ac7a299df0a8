//! `App::sign_in`: one vague refusal for every bad credential, each attempt audited
//! (names that are no account summed), and locks the audit log carries (so every
//! server process sees them) that a stranger cannot turn against the account's
//! owner.

use chrono::TimeDelta;
use secrecy::ExposeSecret;
use secrecy::SecretString;
use vexil_app::{ACCOUNT_FAILURES, Admin, AppError, LOCK_WINDOW, MAX_FAILURES, TotpCode, code_at};
use vexil_core::Role;
use vexil_store::{AuditFilter, Backend};

use crate::{TestApp, both};

/// The password `TestApp::account` gives every account.
fn right() -> SecretString {
    SecretString::from("correct horse battery staple")
}

async fn auth_rows(t: &TestApp) -> Vec<(String, Option<i64>, serde_json::Value)> {
    let mut rows = Vec::new();
    for action in [
        "console.auth.sign_in",
        "console.auth.sign_in_failed",
        "console.auth.sign_in_failed_unknown",
    ] {
        let filter = AuditFilter {
            action: Some(action.to_owned()),
            limit: 100,
            ..AuditFilter::default()
        };
        for row in t.app.db().audit_page(&filter).await.unwrap() {
            rows.push((row.action, row.admin_id, row.payload));
        }
    }
    rows
}

async fn every_sign_in_is_audited_and_bad_ones_are_one_message(backend: Backend) {
    let t = TestApp::new(backend, &[]).await;
    let olive = t.account("olive", Role::Ops).await;
    t.account("gone", Role::Ops).await;
    t.app.disable_user(Admin::Cli, "gone").await.unwrap();

    let actor = t
        .app
        .sign_in("olive", &right(), None, "192.0.2.7")
        .await
        .unwrap();
    assert_eq!(actor, olive);
    let wrong = SecretString::from("not the password at all");
    for (name, password) in [("olive", &wrong), ("nobody", &right()), ("gone", &right())] {
        let refused = t
            .app
            .sign_in(name, password, None, "192.0.2.8")
            .await
            .unwrap_err();
        assert!(
            matches!(refused, AppError::BadCredentials),
            "{name}: {refused}"
        );
        assert_eq!(refused.to_string(), "wrong account name or password");
    }
    // The unknown name is summed in memory, into one row when the server asks.
    assert_eq!(auth_rows(&t).await.len(), 3);
    t.app.summarize_unknown_sign_ins().await.unwrap();
    t.app.summarize_unknown_sign_ins().await.unwrap();
    let rows = auth_rows(&t).await;
    let since = t.app.now().to_rfc3339();
    assert_eq!(
        rows,
        [
            (
                "console.auth.sign_in".to_owned(),
                Some(olive.id()),
                serde_json::json!({"account": "olive", "from": "192.0.2.7"})
            ),
            (
                "console.auth.sign_in_failed".to_owned(),
                None,
                serde_json::json!({"account": "gone", "from": "192.0.2.8"})
            ),
            (
                "console.auth.sign_in_failed".to_owned(),
                None,
                serde_json::json!({"account": "olive", "from": "192.0.2.8"})
            ),
            (
                "console.auth.sign_in_failed_unknown".to_owned(),
                None,
                serde_json::json!({
                    "attempts": 1, "accounts": ["nobody"], "from": ["192.0.2.8"], "since": since
                })
            ),
        ]
    );
}
both!(every_sign_in_is_audited_and_bad_ones_are_one_message);

/// Five failures from one network lock that network out of the account; the
/// owner signing in from elsewhere is not locked out (replayed: five wrong passwords
/// every 15 minutes used to keep any account, superadmins included, out of the
/// console from everywhere).
async fn repeated_failures_lock_their_network_out_of_the_account(backend: Backend) {
    let t = TestApp::new(backend, &[]).await;
    t.account("olive", Role::Ops).await;
    let wrong = SecretString::from("not the password at all");
    for _ in 0..MAX_FAILURES {
        t.clock.advance(TimeDelta::seconds(10));
        assert!(matches!(
            t.app.sign_in("olive", &wrong, None, "198.51.100.1").await,
            Err(AppError::BadCredentials)
        ));
    }
    let before = auth_rows(&t).await.len();
    // Locked: even the right password, and the refusal writes nothing.
    let locked = t
        .app
        .sign_in("olive", &right(), None, "198.51.100.1")
        .await
        .unwrap_err();
    let AppError::SignInLocked { retry_after } = locked else {
        panic!("{locked}");
    };
    // The oldest failure was 40 s ago; the window is 15 min.
    assert_eq!(
        retry_after,
        (LOCK_WINDOW - TimeDelta::seconds(40)).to_std().unwrap()
    );
    assert_eq!(
        locked.to_string(),
        "too many failed sign-ins for this account; try again in 860 s"
    );
    assert_eq!(auth_rows(&t).await.len(), before);
    // The same /64 is the same network; the owner elsewhere is not locked out.
    t.account("sam", Role::Superadmin).await;
    for _ in 0..MAX_FAILURES {
        let _refused = t.app.sign_in("sam", &wrong, None, "2001:db8:5:6::1").await;
    }
    assert!(matches!(
        t.app
            .sign_in("sam", &right(), None, "2001:db8:5:6::2")
            .await,
        Err(AppError::SignInLocked { .. })
    ));
    t.app
        .sign_in("sam", &right(), None, "203.0.113.9")
        .await
        .unwrap();
    // Another account is not locked.
    t.account("rita", Role::Superadmin).await;
    t.app
        .sign_in("rita", &right(), None, "198.51.100.1")
        .await
        .unwrap();

    t.clock.advance(LOCK_WINDOW);
    t.app
        .sign_in("olive", &right(), None, "198.51.100.1")
        .await
        .unwrap();
}
both!(repeated_failures_lock_their_network_out_of_the_account);

/// A door that refused an attempt on its own reads the lock, to name one wait: the
/// reading writes nothing and counts as no attempt.
async fn the_lock_is_read_without_an_attempt(backend: Backend) {
    let t = TestApp::new(backend, &[]).await;
    t.account("olive", Role::Ops).await;
    assert_eq!(
        t.app.sign_in_lock("olive", "198.51.100.1").await.unwrap(),
        None
    );
    let wrong = SecretString::from("not the password at all");
    for _ in 0..MAX_FAILURES {
        t.clock.advance(TimeDelta::seconds(10));
        let _refused = t.app.sign_in("olive", &wrong, None, "198.51.100.1").await;
    }
    let before = auth_rows(&t).await.len();
    t.clock.advance(TimeDelta::seconds(20));
    // The oldest failure was 60 s ago; the window is 15 min.
    assert_eq!(
        t.app.sign_in_lock("olive", "198.51.100.1").await.unwrap(),
        Some((LOCK_WINDOW - TimeDelta::seconds(60)).to_std().unwrap())
    );
    assert_eq!(
        t.app.sign_in_lock("sam", "198.51.100.1").await.unwrap(),
        None
    );
    assert_eq!(auth_rows(&t).await.len(), before);
}
both!(the_lock_is_read_without_an_attempt);

/// Failures from many networks put the account under attack: the password alone
/// no longer signs it in from anywhere, the password and a valid code do; an
/// account without TOTP is locked instead.
async fn an_account_attacked_from_many_networks_asks_for_a_code(backend: Backend) {
    let t = TestApp::new(backend, &[]).await;
    let olive = t.account("olive", Role::Ops).await;
    t.account("sam", Role::Ops).await;
    let wrong = SecretString::from("not the password at all");
    for name in ["olive", "sam"] {
        for n in 0..ACCOUNT_FAILURES {
            let from = format!("198.51.100.{n}");
            let refused = t.app.sign_in(name, &wrong, None, &from).await;
            assert!(matches!(refused, Err(AppError::BadCredentials)), "{n}");
        }
    }
    let before = auth_rows(&t).await.len();
    let asked = t.app.sign_in("olive", &right(), None, "203.0.113.9").await;
    assert!(matches!(asked, Err(AppError::SignInNeedsCode)), "{asked:?}");
    assert_eq!(
        auth_rows(&t).await.len(),
        before,
        "nothing checked, nothing written"
    );

    let uri = t.app.enrol_totp(Admin::Cli, "olive").await.unwrap();
    let at = u64::try_from(t.app.now().timestamp()).unwrap();
    let code = TotpCode::new(&code_at(uri.expose_secret(), at).unwrap()).unwrap();
    let wrong_code = TotpCode::new("000000").unwrap();
    let refused = t
        .app
        .sign_in("olive", &right(), Some(&wrong_code), "203.0.113.9")
        .await;
    assert!(
        matches!(refused, Err(AppError::BadCredentials)),
        "{refused:?}"
    );
    let actor = t
        .app
        .sign_in("olive", &right(), Some(&code), "203.0.113.9")
        .await
        .unwrap();
    assert_eq!(actor, olive);

    // A wrong password with the right code is refused alike, and recorded.
    t.clock.advance(TimeDelta::seconds(30));
    let at = u64::try_from(t.app.now().timestamp()).unwrap();
    let next = TotpCode::new(&code_at(uri.expose_secret(), at).unwrap()).unwrap();
    let before = auth_rows(&t).await.len();
    let refused = t
        .app
        .sign_in("olive", &wrong, Some(&next), "203.0.113.9")
        .await;
    assert!(
        matches!(refused, Err(AppError::BadCredentials)),
        "{refused:?}"
    );
    assert_eq!(auth_rows(&t).await.len(), before + 1);

    // No TOTP: the right password with any code gets the answer a wrong one gets
    // (nothing tells an attacker the password was right), until the attack stops.
    for password in [right(), wrong.clone()] {
        let refused = t
            .app
            .sign_in("sam", &password, Some(&next), "203.0.113.9")
            .await;
        assert!(
            matches!(refused, Err(AppError::BadCredentials)),
            "{refused:?}"
        );
    }
    t.clock.advance(LOCK_WINDOW);
    t.app
        .sign_in("sam", &right(), None, "203.0.113.9")
        .await
        .unwrap();
}
both!(an_account_attacked_from_many_networks_asks_for_a_code);

/// A name that is no account is locked and asked for a code as an account is, so
/// the answers do not tell which names exist.
async fn a_name_that_is_no_account_gets_the_same_answers(backend: Backend) {
    let t = TestApp::new(backend, &[]).await;
    t.account("olive", Role::Ops).await;
    let wrong = SecretString::from("not the password at all");
    for name in ["olive", "nobody"] {
        for _ in 0..MAX_FAILURES {
            let _refused = t.app.sign_in(name, &wrong, None, "198.51.100.1").await;
        }
        let locked = t.app.sign_in(name, &wrong, None, "198.51.100.1").await;
        assert!(
            matches!(locked, Err(AppError::SignInLocked { .. })),
            "{name}"
        );
        for n in 0..ACCOUNT_FAILURES {
            let _refused = t
                .app
                .sign_in(name, &wrong, None, &format!("203.0.113.{n}"))
                .await;
        }
        let asked = t.app.sign_in(name, &right(), None, "192.0.2.1").await;
        assert!(matches!(asked, Err(AppError::SignInNeedsCode)), "{name}");
    }
}
both!(a_name_that_is_no_account_gets_the_same_answers);

/// TOTP set-up asks the password: an enrolled account is refused before it is
/// checked (no oracle), and a wrong one is a failed sign-in, audited and locked as
/// one (replayed: a session could guess the password at 6 a minute, unrecorded).
async fn totp_set_up_checks_the_password_as_a_sign_in_does(backend: Backend) {
    let t = TestApp::new(backend, &[]).await;
    let olive = t.account("olive", Role::Ops).await;
    let wrong = SecretString::from("not the password at all");
    let from = "198.51.100.1";
    for _ in 0..MAX_FAILURES {
        let refused = t.app.begin_own_totp(&olive, &wrong, from).await;
        assert!(matches!(refused, Err(AppError::BadCredentials)));
    }
    let rows = auth_rows(&t).await;
    assert_eq!(rows.len(), MAX_FAILURES as usize);
    assert_eq!(rows[0].2["during"], "totp_setup");
    let locked = t.app.begin_own_totp(&olive, &right(), from).await;
    assert!(matches!(locked, Err(AppError::SignInLocked { .. })));
    let locked = t.app.sign_in("olive", &right(), None, from).await;
    assert!(
        matches!(locked, Err(AppError::SignInLocked { .. })),
        "{locked:?}"
    );

    t.clock.advance(LOCK_WINDOW);
    t.app.enrol_totp(Admin::Cli, "olive").await.unwrap();
    let before = auth_rows(&t).await.len();
    let enrolled = t.app.begin_own_totp(&olive, &wrong, from).await;
    assert!(matches!(
        enrolled,
        Err(AppError::TotpAlreadyEnrolled { .. })
    ));
    assert_eq!(auth_rows(&t).await.len(), before);
}
both!(totp_set_up_checks_the_password_as_a_sign_in_does);
