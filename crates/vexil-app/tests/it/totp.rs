//! TOTP: enrolment, a code accepted once only, and every way a code is refused.

use chrono::TimeDelta;
use secrecy::ExposeSecret;
use vexil_app::{Admin, AppError, Flip, SecretKey, StepUp, code_at};
use vexil_core::audit::Via;
use vexil_core::{Clock, Role};
use vexil_store::Backend;

use crate::{TestApp, both};

fn now(t: &TestApp) -> u64 {
    u64::try_from(t.clock.now().timestamp()).unwrap()
}

async fn a_code_elevates_once(backend: Backend) {
    let t = TestApp::new(backend, &[]).await;
    let sam = t.account("sam", Role::Superadmin).await;
    assert_eq!(
        t.app
            .elevate(&sam, &crate::code("123456"), "test")
            .await
            .unwrap_err()
            .to_string(),
        "account 'sam' has no TOTP enrolled: run `vexil user totp sam`"
    );

    let uri = t.app.enrol_totp(Admin::Cli, "sam").await.unwrap();
    assert!(
        uri.expose_secret()
            .starts_with("otpauth://totp/vexil:sam?secret="),
        "{}",
        uri.expose_secret()
    );
    let code = code_at(uri.expose_secret(), now(&t)).unwrap();
    t.app
        .elevate(&sam, &crate::code(&code), "test")
        .await
        .unwrap();
    assert!(
        matches!(
            t.app.elevate(&sam, &crate::code(&code), "test").await,
            Err(AppError::TotpReplayed)
        ),
        "a code is accepted once only"
    );

    // One step of drift either way is accepted; but not a step at or before one used.
    t.clock.advance(TimeDelta::seconds(30));
    let next = code_at(uri.expose_secret(), now(&t) + 30).unwrap();
    t.app
        .elevate(&sam, &crate::code(&next), "test")
        .await
        .unwrap();
    let earlier = code_at(uri.expose_secret(), now(&t)).unwrap();
    assert!(matches!(
        t.app.elevate(&sam, &crate::code(&earlier), "test").await,
        Err(AppError::TotpReplayed)
    ));

    // A code from two minutes ago is expired; a wrong one is wrong; both say so alike.
    let old = code_at(uri.expose_secret(), now(&t) - 120).unwrap();
    assert!(matches!(
        t.app.elevate(&sam, &crate::code(&old), "test").await,
        Err(AppError::TotpInvalid)
    ));
    assert_eq!(
        t.app
            .elevate(&sam, &crate::code("12345x"), "test")
            .await
            .unwrap_err()
            .to_string(),
        "the TOTP code is wrong or expired"
    );

    // The elevation lets the superadmin flip a high-risk flag.
    t.clock.advance(TimeDelta::seconds(90));
    let code = code_at(uri.expose_secret(), now(&t)).unwrap();
    let elevation = t
        .app
        .elevate(&sam, &crate::code(&code), "test")
        .await
        .unwrap();
    let flip = Flip {
        flag: crate::key("console_billing"),
        env: crate::env("prod"),
        expected_from: Some(false),
        to: true,
        reason: None,
        via: Via::Cli,
    };
    t.app
        .flip(&sam, &flip, StepUp::Held(&elevation))
        .await
        .unwrap();
}
both!(a_code_elevates_once);

async fn a_secret_is_unreadable_under_another_key(backend: Backend) {
    let t = TestApp::new(backend, &[]).await;
    let sam = t.account("sam", Role::Superadmin).await;
    let uri = t.app.enrol_totp(Admin::Cli, "sam").await.unwrap();
    let code = code_at(uri.expose_secret(), now(&t)).unwrap();
    // The same database, opened with another key.
    let rotated = vexil_app::App::new(
        t.app.db().clone(),
        (*t.app.flags()).clone(),
        t.app.envs().clone(),
        None,
        vexil_core::EnvSnapshot::default(),
        t.clock.clone(),
    )
    .with_secret_key(SecretKey::generate());
    assert_eq!(
        rotated
            .elevate(&sam, &crate::code(&code), "test")
            .await
            .unwrap_err()
            .to_string(),
        "the TOTP secret of 'sam' cannot be read with this secret key (was VEXIL_SECRET_KEY changed?): re-enrol with `vexil user totp sam`"
    );
}
both!(a_secret_is_unreadable_under_another_key);
