//! Elevation as every door gets it from `App::authorize`: a code is checked only
//! where the action needs it and only after everything else that could refuse it,
//! every code checked is audited, wrong ones lock the account, and a held elevation
//! holds for its account and its window only.

use chrono::TimeDelta;
use secrecy::ExposeSecret;
use vexil_app::{Actor, Admin, AppError, Flip, PromoteRequest, StepUp, TotpCode, code_at};
use vexil_core::audit::{AUTH_ELEVATE, AUTH_ELEVATE_FAILED, Via};
use vexil_core::{Clock, Denied, Role};
use vexil_store::{AuditFilter, Backend};

use crate::{TestApp, both};

fn flip<'a>(flag: &str, to: bool) -> Flip<'a> {
    Flip {
        flag: crate::key(flag),
        env: crate::env("prod"),
        expected_from: None,
        to,
        reason: None,
        via: Via::Cli,
    }
}

/// How many rows of `action` the log holds.
async fn count(t: &TestApp, action: &str) -> usize {
    let filter = AuditFilter {
        action: Some(action.to_owned()),
        limit: 100,
        ..AuditFilter::default()
    };
    t.app.db().audit_page(&filter).await.unwrap().len()
}

/// Enrols `actor` and returns the code its authenticator shows now.
async fn enrolled(t: &TestApp, actor: &Actor) -> (String, TotpCode) {
    let uri = t.app.enrol_totp(Admin::Cli, actor.name()).await.unwrap();
    let uri = uri.expose_secret().to_owned();
    let now = u64::try_from(t.clock.now().timestamp()).unwrap();
    let code = crate::code(&code_at(&uri, now).unwrap());
    (uri, code)
}

async fn a_code_sent_for_an_action_that_needs_none_is_not_spent(backend: Backend) {
    let t = TestApp::new(backend, &[]).await;
    let root = t.account("root", Role::Superadmin).await;
    let (_, code) = enrolled(&t, &root).await;
    let wrong = crate::code("000000");
    for code in [&wrong, &code] {
        let step_up = StepUp::Code { code, from: "test" };
        let flipped = t.app.flip(&root, &flip("dark_mode", true), step_up).await;
        assert!(flipped.unwrap().elevation.is_none());
        t.app
            .flip(&root, &flip("dark_mode", false), StepUp::None)
            .await
            .unwrap();
    }
    assert_eq!(count(&t, AUTH_ELEVATE).await, 0);
    assert_eq!(count(&t, AUTH_ELEVATE_FAILED).await, 0);
    // The code is still good for an action that needs it.
    t.app.elevate(&root, &code, "test").await.unwrap();
}
both!(a_code_sent_for_an_action_that_needs_none_is_not_spent);

async fn a_role_too_low_spends_no_code(backend: Backend) {
    let t = TestApp::new(backend, &[]).await;
    let ops = t.account("olive", Role::Ops).await;
    let (_, code) = enrolled(&t, &ops).await;
    let step_up = StepUp::Code {
        code: &code,
        from: "test",
    };
    let refused = t
        .app
        .flip(&ops, &flip("console_billing", true), step_up)
        .await
        .unwrap_err();
    assert!(
        matches!(refused, AppError::Denied(Denied::Forbidden { .. })),
        "{refused}"
    );
    assert_eq!(count(&t, AUTH_ELEVATE).await, 0);
    assert_eq!(count(&t, AUTH_ELEVATE_FAILED).await, 0);
    t.app.elevate(&ops, &code, "test").await.unwrap();
}
both!(a_role_too_low_spends_no_code);

async fn a_code_with_a_flip_elevates_once_and_is_audited(backend: Backend) {
    let t = TestApp::new(backend, &[]).await;
    let root = t.account("root", Role::Superadmin).await;
    let (_, code) = enrolled(&t, &root).await;
    let step_up = StepUp::Code {
        code: &code,
        from: "10.0.0.7",
    };
    let flipped = t
        .app
        .flip(&root, &flip("console_billing", true), step_up)
        .await
        .unwrap();
    let elevation = flipped.elevation.expect("the code's elevation, to keep");
    assert_eq!(
        elevation.until(),
        t.clock.now() + TimeDelta::minutes(10),
        "one window from now"
    );
    assert_eq!(count(&t, AUTH_ELEVATE).await, 1);
    // Held, it elevates the next flip with no code; replayed, the code is refused.
    t.app
        .flip(
            &root,
            &flip("console_billing", false),
            StepUp::Held(&elevation),
        )
        .await
        .unwrap();
    let replayed = t
        .app
        .flip(&root, &flip("console_billing", true), step_up)
        .await;
    assert!(
        matches!(replayed, Err(AppError::TotpReplayed)),
        "{replayed:?}"
    );
    assert_eq!(count(&t, AUTH_ELEVATE_FAILED).await, 1);
}
both!(a_code_with_a_flip_elevates_once_and_is_audited);

async fn a_flip_that_would_be_refused_spends_no_code(backend: Backend) {
    let t = TestApp::new(backend, &[]).await;
    let root = t.account("root", Role::Superadmin).await;
    let (_, code) = enrolled(&t, &root).await;
    let step_up = StepUp::Code {
        code: &code,
        from: "test",
    };
    // console_billing is off in prod: a flip from "on" is stale, a flip to "off" is
    // no change; neither looks at the code.
    let stale = Flip {
        expected_from: Some(true),
        ..flip("console_billing", false)
    };
    let refused = t.app.flip(&root, &stale, step_up).await;
    assert!(
        matches!(refused, Err(AppError::Conflict { .. })),
        "{refused:?}"
    );
    let same = t
        .app
        .flip(&root, &flip("console_billing", false), step_up)
        .await;
    assert!(matches!(same, Err(AppError::NoChange { .. })), "{same:?}");
    assert_eq!(count(&t, AUTH_ELEVATE).await, 0);
    assert_eq!(count(&t, AUTH_ELEVATE_FAILED).await, 0);
    // The code still elevates the flip that can happen.
    let flipped = t
        .app
        .flip(&root, &flip("console_billing", true), step_up)
        .await
        .unwrap();
    assert!(flipped.elevation.is_some());
}
both!(a_flip_that_would_be_refused_spends_no_code);

async fn wrong_codes_lock_the_account_whichever_door_sends_them(backend: Backend) {
    let t = TestApp::new(backend, &[]).await;
    let root = t.account("root", Role::Superadmin).await;
    let (_, right) = enrolled(&t, &root).await;
    let wrong = if right == crate::code("000000") {
        crate::code("111111")
    } else {
        crate::code("000000")
    };
    // Five wrong codes, as the CLI, the API or the console would send them with a
    // flip: each refused and recorded.
    for _ in 0..5 {
        let step_up = StepUp::Code {
            code: &wrong,
            from: "cli",
        };
        let refused = t
            .app
            .flip(&root, &flip("console_billing", true), step_up)
            .await;
        assert!(matches!(refused, Err(AppError::TotpInvalid)), "{refused:?}");
    }
    assert_eq!(count(&t, AUTH_ELEVATE_FAILED).await, 5);
    // Then even the right code is refused until the window has passed, unrecorded.
    let step_up = StepUp::Code {
        code: &right,
        from: "cli",
    };
    let locked = t
        .app
        .flip(&root, &flip("console_billing", true), step_up)
        .await;
    assert!(
        matches!(locked, Err(AppError::ElevationLocked { .. })),
        "{locked:?}"
    );
    assert_eq!(count(&t, AUTH_ELEVATE_FAILED).await, 5);
    assert_eq!(count(&t, AUTH_ELEVATE).await, 0);
    assert!(t.app.db().flag_rows().await.unwrap().is_empty());
}
both!(wrong_codes_lock_the_account_whichever_door_sends_them);

async fn a_held_elevation_holds_for_its_account_and_window_only(backend: Backend) {
    let t = TestApp::new(backend, &[]).await;
    let root = t.account("root", Role::Superadmin).await;
    let sam = t.account("sam", Role::Superadmin).await;
    let now = t.clock.now();
    // What a session may say: within one window (and a minute of clock skew).
    assert!(
        t.app
            .resume_elevation(&root, now + TimeDelta::minutes(11))
            .is_some()
    );
    for forged in [
        now + TimeDelta::minutes(12),
        now + TimeDelta::days(3650),
        now,
        now - TimeDelta::seconds(1),
    ] {
        assert!(t.app.resume_elevation(&root, forged).is_none(), "{forged}");
    }
    let roots = t
        .app
        .resume_elevation(&root, now + TimeDelta::minutes(5))
        .unwrap();
    let refused = t
        .app
        .flip(&sam, &flip("console_billing", true), StepUp::Held(&roots))
        .await;
    assert!(
        matches!(
            refused,
            Err(AppError::Denied(Denied::ElevationRequired { .. }))
        ),
        "another account's elevation: {refused:?}"
    );
    t.clock.advance(TimeDelta::minutes(5));
    let refused = t
        .app
        .flip(&root, &flip("console_billing", true), StepUp::Held(&roots))
        .await;
    assert!(
        matches!(
            refused,
            Err(AppError::Denied(Denied::ElevationRequired { .. }))
        ),
        "an elevation that ran out: {refused:?}"
    );
}
both!(a_held_elevation_holds_for_its_account_and_window_only);

async fn a_promote_that_cannot_happen_spends_no_code(backend: Backend) {
    let t = TestApp::new(backend, &[]).await;
    let root = t.account("root", Role::Superadmin).await;
    let key = "payments_provider_v2";
    crate::flip_as(
        &t.app,
        &root,
        &Flip {
            env: crate::env("staging"),
            ..flip(key, true)
        },
    )
    .await
    .unwrap();
    let id = t
        .app
        .mark_promote(&root, crate::key(key), Via::Cli)
        .await
        .unwrap()
        .record
        .id;
    let (_, code) = enrolled(&t, &root).await;
    let elevated_before = count(&t, AUTH_ELEVATE).await;
    let step_up = StepUp::Code {
        code: &code,
        from: "cli",
    };
    let phrase = format!("promote {key} to prod");
    let request = |confirmation| PromoteRequest {
        confirmation,
        via: Via::Cli,
    };
    // Not approved yet, then a wrong phrase: both refused before the code is looked at.
    let early = t
        .app
        .promote(&root, id, &request(Some(phrase.as_str())), step_up)
        .await;
    assert!(
        matches!(early, Err(AppError::Promotion { .. })),
        "{early:?}"
    );
    // Its soak is 72 hours.
    t.clock.advance(TimeDelta::hours(72));
    t.app.approve(&root, id, Via::Cli).await.unwrap();
    let typo = t
        .app
        .promote(&root, id, &request(Some("promote it")), step_up)
        .await;
    assert!(matches!(typo, Err(AppError::Confirmation(_))), "{typo:?}");
    assert_eq!(count(&t, AUTH_ELEVATE).await, elevated_before);
    assert_eq!(count(&t, AUTH_ELEVATE_FAILED).await, 0);
    // The clock moved on: the code of now, once, promotes.
    let (uri, _) = enrolled(&t, &root).await;
    let now = u64::try_from(t.clock.now().timestamp()).unwrap();
    let code = crate::code(&code_at(&uri, now).unwrap());
    let step_up = StepUp::Code {
        code: &code,
        from: "cli",
    };
    let promoted = t
        .app
        .promote(&root, id, &request(Some(phrase.as_str())), step_up)
        .await
        .unwrap();
    assert!(promoted.elevation.is_some());
    assert_eq!(count(&t, AUTH_ELEVATE).await, elevated_before + 1);
}
both!(a_promote_that_cannot_happen_spends_no_code);
