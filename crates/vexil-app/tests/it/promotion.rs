//! Promotion from staging to prod through the use cases, on both databases with the
//! test clock: the happy path without sleeping, each refusal writing nothing, every
//! expiry reason written once, and two servers racing on one promotion.

use chrono::TimeDelta;
use serde_json::json;
use vexil_app::{Actor, App, AppError, Flip, PromoteRequest, StepUp, Stepped};
use vexil_core::audit::Via;
use vexil_core::promotion::{
    ConfirmationError, MarkError, PromotionState, TransitionError, Windows,
};
use vexil_core::{Denied, Role, Source};
use vexil_store::{AuditRow, Backend};
use vexil_testkit::audit_log;

use crate::{TestApp, both};

/// Everything the log holds, oldest first.
async fn audit(app: &App) -> Vec<AuditRow> {
    let mut rows = audit_log(app.db()).await;
    rows.reverse();
    rows
}

fn actions(rows: &[AuditRow]) -> Vec<&str> {
    rows.iter().map(|r| r.action.as_str()).collect()
}

async fn flip(app: &App, actor: &Actor, key: &str, env: &str, to: bool) {
    let flip = Flip {
        flag: crate::key(key),
        env: crate::env(env),
        expected_from: None,
        to,
        reason: None,
        via: Via::Cli,
    };
    crate::flip_as(app, actor, &flip).await.unwrap();
}

fn promote_request(confirmation: Option<&str>) -> PromoteRequest<'_> {
    PromoteRequest {
        confirmation,
        via: Via::Api,
    }
}

/// A flag on in staging and marked, by `root`.
async fn marked(t: &TestApp, root: &Actor, key: &str) -> Stepped {
    flip(&t.app, root, key, "staging", true).await;
    t.app
        .mark_promote(root, crate::key(key), Via::Console)
        .await
        .unwrap()
}

/// What a refusal must leave behind: the same log, the same rows, the same promotion.
async fn unchanged(t: &TestApp, id: i64, log: usize, state: PromotionState) {
    assert_eq!(audit(&t.app).await.len(), log, "no audit row");
    assert_eq!(t.app.promotion(id).await.unwrap().promotion.state, state);
}

async fn mark_soak_approve_promote(backend: Backend) {
    let t = TestApp::new(backend, &[("FLAG_CONSOLE_FEATURE_FLAGS_DB", "1")]).await;
    let root = t.account("root", Role::Superadmin).await;
    let boss = t.account("boss", Role::Superadmin).await;
    // csv_export_streaming: low risk, the default soak of 24 h.
    let start = t.app.now();
    let mark = marked(&t, &root, "csv_export_streaming").await;
    let id = mark.record.id;
    assert_eq!(mark.record.promotion.state, PromotionState::Pending);
    assert_eq!(
        mark.record.promotion.soak_ends_at,
        start + TimeDelta::hours(24)
    );

    // An hour before the soak ends: refused, and the message says when it ends.
    t.clock.advance(TimeDelta::hours(23));
    let log = audit(&t.app).await.len();
    let early = t.app.approve(&boss, id, Via::Api).await.unwrap_err();
    assert_eq!(
        early.to_string(),
        format!(
            "promotion {id} of csv_export_streaming: the soak ends at {} UTC: approve after that",
            (start + TimeDelta::hours(24)).format("%Y-%m-%d %H:%M:%S")
        )
    );
    unchanged(&t, id, log, PromotionState::Pending).await;
    // Promote before approval: refused too.
    let unapproved = t
        .app
        .promote(&boss, id, &promote_request(None), StepUp::None)
        .await
        .unwrap_err();
    assert!(
        matches!(
            unapproved,
            AppError::Promotion {
                error: TransitionError::NotApproved { .. },
                ..
            }
        ),
        "{unapproved}"
    );
    unchanged(&t, id, log, PromotionState::Pending).await;

    t.clock.advance(TimeDelta::hours(1));
    let approved = t.app.approve(&boss, id, Via::Api).await.unwrap();
    assert_eq!(
        approved.record.promotion.approved_by.as_deref(),
        Some("boss")
    );
    t.clock.advance(TimeDelta::minutes(5));
    let promoted = t
        .app
        .promote(&root, id, &promote_request(None), StepUp::None)
        .await
        .unwrap();
    assert_eq!(promoted.record.promotion.state, PromotionState::Promoted);

    // Prod now reads the row vexil wrote, by the account that promoted.
    let prod = t
        .app
        .flag_states(Some(&vexil_core::Env::PROD))
        .await
        .unwrap();
    let state = prod
        .states
        .iter()
        .find(|s| s.key == "csv_export_streaming")
        .unwrap();
    assert_eq!(
        (state.value, state.source, state.updated_by.as_deref()),
        (true, Source::Db, Some("root"))
    );
    // The trail, one row per step, the flip and the promoted row together.
    let rows = audit(&t.app).await;
    assert_eq!(
        actions(&rows),
        [
            "console.user.add",
            "console.user.add",
            "console.flag.flip",
            "console.flag.mark_promote",
            "console.flag.approved",
            "console.flag.flip",
            "console.flag.promoted",
        ]
    );
    let soak_end =
        (start + TimeDelta::hours(24)).to_rfc3339_opts(chrono::SecondsFormat::AutoSi, true);
    assert_eq!(
        rows[3].payload,
        json!({"flag": "csv_export_streaming", "promotion_id": id, "soak_ends_at": soak_end, "soak_period_hours": 24, "via": "console"})
    );
    assert_eq!(rows[3].id, mark.audit_id);
    assert_eq!(
        rows[4].payload,
        json!({"flag": "csv_export_streaming", "promotion_id": id, "state": "approved", "via": "api"})
    );
    assert_eq!(rows[4].admin_name.as_deref(), Some("boss"));
    assert_eq!(
        rows[5].payload,
        json!({"flag": "csv_export_streaming", "env": "prod", "from": false, "to": true, "via": "api", "promotion_id": id})
    );
    assert_eq!(Some(rows[5].id), promoted.flip_audit_id);
    assert_eq!(
        rows[6].payload,
        json!({"flag": "csv_export_streaming", "promotion_id": id, "state": "promoted", "via": "api", "flip_audit_id": rows[5].id})
    );
    assert_eq!(rows[6].admin_name.as_deref(), Some("root"));

    // Terminal: nothing more is accepted, and the flag may not be marked again (it
    // is on in prod now).
    let again = t
        .app
        .reject(&root, id, "too late", Via::Cli)
        .await
        .unwrap_err();
    assert_eq!(
        again.to_string(),
        format!(
            "promotion {id} of csv_export_streaming: the promotion is promoted: it accepts nothing more"
        )
    );
    let remark = t
        .app
        .mark_promote(&root, crate::key("csv_export_streaming"), Via::Cli)
        .await
        .unwrap_err();
    assert_eq!(
        remark.to_string(),
        "cannot mark csv_export_streaming active for prod: it is already on in prod: there is nothing to promote"
    );
}
both!(mark_soak_approve_promote);

async fn marking_is_refused_unless_on_in_staging_off_in_prod_and_none_open(backend: Backend) {
    let t = TestApp::new(backend, &[]).await;
    let root = t.account("root", Role::Superadmin).await;
    let ops = t.account("olive", Role::Ops).await;
    let refuse = |error: AppError, expected: MarkError| match error {
        AppError::CannotMark { reason, .. } => assert_eq!(reason, expected),
        other => panic!("{other}"),
    };
    let log = audit(&t.app).await.len();
    refuse(
        t.app
            .mark_promote(&root, crate::key("dark_mode"), Via::Cli)
            .await
            .unwrap_err(),
        MarkError::OffInStaging,
    );
    // On in both by default.
    refuse(
        t.app
            .mark_promote(&root, crate::key("search_typo_tolerance"), Via::Cli)
            .await
            .unwrap_err(),
        MarkError::OnInProd,
    );
    assert!(matches!(
        t.app
            .mark_promote(&root, crate::key("no_such_flag"), Via::Cli)
            .await,
        Err(AppError::UnknownFlag { .. })
    ));
    assert!(matches!(
        t.app
            .mark_promote(&ops, crate::key("dark_mode"), Via::Cli)
            .await,
        Err(AppError::Denied(Denied::Forbidden { .. }))
    ));
    assert_eq!(audit(&t.app).await.len(), log, "refusals write nothing");

    let mark = marked(&t, &root, "dark_mode").await;
    refuse(
        t.app
            .mark_promote(&root, crate::key("dark_mode"), Via::Cli)
            .await
            .unwrap_err(),
        MarkError::AlreadyOpen {
            state: PromotionState::Pending,
        },
    );
    // Support may not approve, promote or reject, whatever the state.
    let support = t.account("sue", Role::Support).await;
    let id = mark.record.id;
    assert!(matches!(
        t.app.approve(&support, id, Via::Api).await,
        Err(AppError::Denied(Denied::Forbidden { .. }))
    ));
    assert!(matches!(
        t.app.reject(&ops, id, "no", Via::Api).await,
        Err(AppError::Denied(Denied::Forbidden { .. }))
    ));
    assert!(matches!(
        t.app
            .promote(&ops, id, &promote_request(None), StepUp::None)
            .await,
        Err(AppError::Denied(Denied::Forbidden { .. }))
    ));
    assert!(matches!(
        t.app.approve(&root, 999, Via::Api).await,
        Err(AppError::UnknownPromotion { id: 999 })
    ));
    // A rejection needs a reason; with one, the flag can be marked again.
    let log = audit(&t.app).await.len();
    assert!(matches!(
        t.app.reject(&root, id, "  ", Via::Api).await,
        Err(AppError::Promotion {
            error: TransitionError::ReasonRequired,
            ..
        })
    ));
    unchanged(&t, id, log, PromotionState::Pending).await;
    let rejected = t
        .app
        .reject(&root, id, " INC-7: staging errors ", Via::Api)
        .await
        .unwrap();
    assert_eq!(
        rejected.record.promotion.reason.as_deref(),
        Some("INC-7: staging errors")
    );
    let row = audit(&t.app).await.pop().unwrap();
    assert_eq!(
        (row.action.as_str(), &row.payload),
        (
            "console.flag.rejected",
            &json!({"flag": "dark_mode", "promotion_id": id, "state": "rejected", "via": "api", "reason": "INC-7: staging errors"})
        )
    );
    t.app
        .mark_promote(&root, crate::key("dark_mode"), Via::Cli)
        .await
        .unwrap();
}
both!(marking_is_refused_unless_on_in_staging_off_in_prod_and_none_open);

async fn a_high_risk_promote_needs_elevation_and_the_exact_phrase(backend: Backend) {
    let t = TestApp::new(backend, &[]).await;
    let root = t.account("root", Role::Superadmin).await;
    let key = "payments_provider_v2";
    let id = marked(&t, &root, key).await.record.id;
    t.clock.advance(TimeDelta::hours(72));
    t.app.approve(&root, id, Via::Console).await.unwrap();
    let log = audit(&t.app).await.len();

    let phrase = "promote payments_provider_v2 to prod";
    let no_phrase = t
        .app
        .promote(&root, id, &promote_request(None), StepUp::None)
        .await
        .unwrap_err();
    assert!(
        matches!(&no_phrase, AppError::Confirmation(ConfirmationError::Missing { phrase: p }) if p == phrase),
        "{no_phrase}"
    );
    assert_eq!(
        no_phrase.to_string(),
        "promoting a high-risk flag needs the typed confirmation 'promote payments_provider_v2 to prod'"
    );
    for wrong in [
        "promote payments_provider_v2 to prod ",
        "Promote payments_provider_v2 to prod",
        "promote dark_mode to prod",
    ] {
        let error = t
            .app
            .promote(&root, id, &promote_request(Some(wrong)), StepUp::None)
            .await
            .unwrap_err();
        assert!(
            matches!(
                error,
                AppError::Confirmation(ConfirmationError::Mismatch { .. })
            ),
            "{wrong:?}: {error}"
        );
    }
    assert!(matches!(
        t.app
            .promote(&root, id, &promote_request(Some(phrase)), StepUp::None)
            .await,
        Err(AppError::Denied(Denied::ElevationRequired { .. }))
    ));
    unchanged(&t, id, log, PromotionState::Approved).await;
    let prod_rows =
        |rows: Vec<vexil_store::FlagRow>| rows.into_iter().filter(|r| r.env == "prod").count();
    assert_eq!(
        prod_rows(t.app.db().flag_rows().await.unwrap()),
        0,
        "prod untouched"
    );

    let elevation = crate::elevate(&t.app, &root).await;
    t.app
        .promote(
            &root,
            id,
            &promote_request(Some(phrase)),
            StepUp::Held(&elevation),
        )
        .await
        .unwrap();
    assert_eq!(prod_rows(t.app.db().flag_rows().await.unwrap()), 1);
}
both!(a_high_risk_promote_needs_elevation_and_the_exact_phrase);

async fn open_promotions_expire_once_with_their_reason(backend: Backend) {
    let t = TestApp::new(backend, &[]).await;
    let root = t.account("root", Role::Superadmin).await;
    // Staging flipped back during the soak.
    let staging = marked(&t, &root, "csv_export_streaming").await.record.id;
    // Prod changed by direct SQL while open.
    let prod = marked(&t, &root, "email_digest_batching").await.record.id;
    // Left pending, and approved but never promoted.
    let pending = marked(&t, &root, "image_cdn_migration").await.record.id;
    let approved = marked(&t, &root, "dark_mode").await.record.id;
    t.app.approve(&root, approved, Via::Cli).await.unwrap();

    t.clock.advance(TimeDelta::hours(1));
    flip(&t.app, &root, "csv_export_streaming", "staging", false).await;
    t.execute(
        "INSERT INTO console_feature_flags (flag_key, env, value, updated_at) \
         VALUES ('email_digest_batching', 'prod', 0, CURRENT_TIMESTAMP)",
    )
    .await;
    let now = t.app.now();
    let reasons = |expired: Vec<Stepped>| {
        expired
            .into_iter()
            .map(|s| (s.record.id, s.record.promotion.reason.unwrap()))
            .collect::<Vec<_>>()
    };
    // Two servers run the job at the same moment: each promotion expires once, by
    // one of them, with one audit row.
    let other = t.another().await;
    let (mine, theirs) = tokio::join!(t.app.expire_due(now), other.expire_due(now));
    let mut expired = reasons(mine.unwrap());
    expired.extend(reasons(theirs.unwrap()));
    expired.sort();
    assert_eq!(
        expired,
        [
            (staging, "staging_changed".to_owned()),
            (prod, "prod_changed".to_owned())
        ]
    );
    let expiries = |rows: &[AuditRow]| {
        rows.iter()
            .filter(|r| r.action == "console.flag.expired")
            .count()
    };
    assert_eq!(expiries(&audit(&t.app).await), 2);
    // Idempotent: a second run, here or in another process, writes nothing.
    let log = audit(&t.app).await.len();
    assert!(t.app.expire_due(now).await.unwrap().is_empty());
    assert!(other.expire_due(now).await.unwrap().is_empty());
    assert_eq!(audit(&t.app).await.len(), log);
    let row = audit(&t.app)
        .await
        .into_iter()
        .rfind(|r| r.action == "console.flag.expired")
        .unwrap();
    assert_eq!(row.admin_id, None, "vexil expires it, no account");
    assert_eq!(
        row.payload,
        json!({"flag": "email_digest_batching", "promotion_id": prod, "state": "expired", "reason": "prod_changed", "detail": "prod was changed by other means while it was open"})
    );

    // The windows: 72 h after approval; soak (24 h) + 7 days for a pending one.
    t.clock.advance(TimeDelta::hours(70));
    assert!(t.app.expire_due(t.app.now()).await.unwrap().is_empty());
    t.clock.advance(TimeDelta::hours(1));
    assert_eq!(
        reasons(t.app.expire_due(t.app.now()).await.unwrap()),
        [(approved, "approval_unused".to_owned())]
    );
    t.clock
        .advance(TimeDelta::days(7) + TimeDelta::hours(24) - TimeDelta::hours(72));
    assert_eq!(
        reasons(t.app.expire_due(t.app.now()).await.unwrap()),
        [(pending, "pending_too_long".to_owned())]
    );
    assert!(
        t.app
            .promotions(Some(PromotionState::Pending), None, 10)
            .await
            .unwrap()
            .is_empty()
    );
    assert_eq!(
        t.app
            .promotions(Some(PromotionState::Expired), None, 10)
            .await
            .unwrap()
            .len(),
        4
    );
}
both!(open_promotions_expire_once_with_their_reason);

async fn a_step_on_a_stale_promotion_expires_it_and_says_why(backend: Backend) {
    let t = TestApp::new(backend, &[]).await;
    let root = t.account("root", Role::Superadmin).await;
    let id = marked(&t, &root, "dark_mode").await.record.id;
    t.execute("UPDATE console_feature_flags SET value = 0 WHERE flag_key = 'dark_mode' AND env = 'staging'")
        .await;
    let error = t.app.approve(&root, id, Via::Api).await.unwrap_err();
    assert_eq!(
        error.to_string(),
        format!(
            "promotion {id} of dark_mode: it has expired: the staging value changed while it was open"
        )
    );
    let rows = audit(&t.app).await;
    assert_eq!(actions(&rows).last(), Some(&"console.flag.expired"));
    assert!(!actions(&rows).contains(&"console.flag.approved"));
    assert_eq!(
        t.app.promotion(id).await.unwrap().promotion.state,
        PromotionState::Expired
    );
}
both!(a_step_on_a_stale_promotion_expires_it_and_says_why);

async fn four_eyes_when_configured(backend: Backend) {
    let mut t = TestApp::new(backend, &[]).await;
    t.app = t.app.with_promotion_windows(Windows {
        distinct_approver: true,
        ..Windows::default()
    });
    let root = t.account("root", Role::Superadmin).await;
    let boss = t.account("boss", Role::Superadmin).await;
    let id = marked(&t, &root, "dark_mode").await.record.id;
    let own = t.app.approve(&root, id, Via::Api).await.unwrap_err();
    assert_eq!(
        own.to_string(),
        format!(
            "promotion {id} of dark_mode: 'root' marked it: another superadmin must approve it (four eyes)"
        )
    );
    t.app.approve(&boss, id, Via::Api).await.unwrap();
}
both!(four_eyes_when_configured);

/// Two servers approve, then promote, one promotion at the same moment: one wins
/// each time, prod is written once, and the log holds one row per step.
async fn concurrent_steps_from_two_servers_move_it_once(backend: Backend) {
    let t = TestApp::new(backend, &[]).await;
    let root = t.account("root", Role::Superadmin).await;
    let boss = t.account("boss", Role::Superadmin).await;
    let other = t.another().await;
    for round in 0..5 {
        let key = [
            "dark_mode",
            "csv_export_streaming",
            "image_cdn_migration",
            "email_digest_batching",
            "search_index_v3",
        ][round];
        let id = marked(&t, &root, key).await.record.id;
        t.clock.advance(TimeDelta::hours(72));
        let (a, b) = tokio::join!(
            t.app.approve(&root, id, Via::Api),
            other.approve(&boss, id, Via::Console)
        );
        assert_eq!(a.is_ok() as u8 + b.is_ok() as u8, 1, "{a:?} {b:?}");
        let loser = a.err().or(b.err()).unwrap();
        assert!(
            matches!(
                loser,
                AppError::Promotion {
                    error: TransitionError::NotPending {
                        state: PromotionState::Approved
                    },
                    ..
                }
            ),
            "{loser}"
        );
        let request = promote_request(None);
        let (a, b) = tokio::join!(
            t.app.promote(&root, id, &request, StepUp::None),
            other.promote(&boss, id, &request, StepUp::None)
        );
        assert_eq!(a.is_ok() as u8 + b.is_ok() as u8, 1, "{a:?} {b:?}");
        let loser = a.err().or(b.err()).unwrap();
        assert!(
            matches!(
                loser,
                AppError::Promotion {
                    error: TransitionError::Ended {
                        state: PromotionState::Promoted
                    },
                    ..
                }
            ),
            "{loser}"
        );
        let rows = audit(&t.app).await;
        let of_key = |action: &str| {
            rows.iter()
                .filter(|r| r.target_id == key && r.action == action)
                .count()
        };
        assert_eq!(
            (
                of_key("console.flag.approved"),
                of_key("console.flag.promoted"),
                of_key("console.flag.flip")
            ),
            (1, 1, 2),
            "staging's flip and prod's"
        );
    }
}
both!(concurrent_steps_from_two_servers_move_it_once);
