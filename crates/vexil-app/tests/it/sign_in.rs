//! `App::sign_in`: one vague refusal for every bad credential, each attempt audited,
//! and a lock after repeated failures for one account that the audit log carries
//! (so every server process sees it).

use chrono::TimeDelta;
use secrecy::SecretString;
use vexil_app::{Admin, AppError, LOCK_WINDOW, MAX_FAILURES};
use vexil_core::Role;
use vexil_store::{AuditFilter, Backend};

use crate::{TestApp, both};

/// The password `TestApp::account` gives every account.
fn right() -> SecretString {
    SecretString::from("correct horse battery staple")
}

async fn auth_rows(t: &TestApp) -> Vec<(String, Option<i64>, serde_json::Value)> {
    let mut rows = Vec::new();
    for action in ["console.auth.sign_in", "console.auth.sign_in_failed"] {
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

    let actor = t.app.sign_in("olive", &right(), "192.0.2.7").await.unwrap();
    assert_eq!(actor, olive);
    let wrong = SecretString::from("not the password at all");
    for (name, password) in [("olive", &wrong), ("nobody", &right()), ("gone", &right())] {
        let refused = t
            .app
            .sign_in(name, password, "192.0.2.8")
            .await
            .unwrap_err();
        assert!(
            matches!(refused, AppError::BadCredentials),
            "{name}: {refused}"
        );
        assert_eq!(refused.to_string(), "wrong account name or password");
    }
    let rows = auth_rows(&t).await;
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
                serde_json::json!({"account": "nobody", "from": "192.0.2.8"})
            ),
            (
                "console.auth.sign_in_failed".to_owned(),
                None,
                serde_json::json!({"account": "olive", "from": "192.0.2.8"})
            ),
        ]
    );
}
both!(every_sign_in_is_audited_and_bad_ones_are_one_message);

async fn repeated_failures_lock_the_account_for_the_window(backend: Backend) {
    let t = TestApp::new(backend, &[]).await;
    t.account("olive", Role::Ops).await;
    let wrong = SecretString::from("not the password at all");
    for _ in 0..MAX_FAILURES {
        t.clock.advance(TimeDelta::seconds(10));
        assert!(matches!(
            t.app.sign_in("olive", &wrong, "198.51.100.1").await,
            Err(AppError::BadCredentials)
        ));
    }
    let before = auth_rows(&t).await.len();
    // Locked: even the right password, and the refusal writes nothing.
    let locked = t
        .app
        .sign_in("olive", &right(), "198.51.100.1")
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
    // Another account is not locked.
    t.account("sam", Role::Superadmin).await;
    t.app
        .sign_in("sam", &right(), "198.51.100.1")
        .await
        .unwrap();

    t.clock.advance(LOCK_WINDOW);
    t.app
        .sign_in("olive", &right(), "198.51.100.1")
        .await
        .unwrap();
}
both!(repeated_failures_lock_the_account_for_the_window);

/// A door that refused an attempt on its own reads the lock, to name one wait: the
/// reading writes nothing and counts as no attempt.
async fn the_lock_is_read_without_an_attempt(backend: Backend) {
    let t = TestApp::new(backend, &[]).await;
    t.account("olive", Role::Ops).await;
    assert_eq!(t.app.sign_in_lock("olive").await.unwrap(), None);
    let wrong = SecretString::from("not the password at all");
    for _ in 0..MAX_FAILURES {
        t.clock.advance(TimeDelta::seconds(10));
        let _refused = t.app.sign_in("olive", &wrong, "198.51.100.1").await;
    }
    let before = auth_rows(&t).await.len();
    t.clock.advance(TimeDelta::seconds(20));
    // The oldest failure was 60 s ago; the window is 15 min.
    assert_eq!(
        t.app.sign_in_lock("olive").await.unwrap(),
        Some((LOCK_WINDOW - TimeDelta::seconds(60)).to_std().unwrap())
    );
    assert_eq!(t.app.sign_in_lock("sam").await.unwrap(), None);
    assert_eq!(auth_rows(&t).await.len(), before);
}
both!(the_lock_is_read_without_an_attempt);
