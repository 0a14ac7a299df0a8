//! `App::audit_page` and `App::audit_names`: the audit log for a role that may read
//! it, its flag and account filters matching part of a name, and the names those
//! filters suggest.

use vexil_app::{AppError, AuditNames, Flip};
use vexil_core::Role;
use vexil_core::audit::Via;
use vexil_store::{AuditFilter, Backend};

use crate::{TestApp, both};

/// Flips `flag` in staging from its default off to on, as `actor`.
async fn turn_on(t: &TestApp, actor: &vexil_app::Actor, flag: &str) {
    let flip = Flip {
        flag: crate::key(flag),
        env: crate::env("staging"),
        expected_from: Some(false),
        to: true,
        reason: None,
        via: Via::Console,
    };
    crate::flip_as(&t.app, actor, &flip).await.unwrap();
}

async fn flag_and_account_filters_match_part_of_a_name(backend: Backend) {
    let t = TestApp::new(backend, &[]).await;
    let olive = t.account("olive", Role::Ops).await;
    let oliver = t.account("oliver", Role::Ops).await;
    turn_on(&t, &olive, "dark_mode").await;
    turn_on(&t, &oliver, "onboarding_checklist_v2").await;
    turn_on(&t, &oliver, "csv_export_streaming").await;
    let rows = |filter: AuditFilter| {
        let (app, actor) = (&t.app, &olive);
        async move {
            let filter = AuditFilter {
                limit: 50,
                ..filter
            };
            let rows = app.audit_page(actor, &filter).await.unwrap();
            rows.into_iter()
                .map(|row| (row.admin_name.unwrap_or_default(), row.target_id))
                .collect::<Vec<_>>()
        }
    };
    let by_flag = rows(AuditFilter {
        flag_contains: Some("Export_".to_owned()),
        ..AuditFilter::default()
    })
    .await;
    assert_eq!(by_flag, [("oliver".into(), "csv_export_streaming".into())]);
    // "OLIVE" is part of both names: their changes and the rows about them (each
    // account's creation).
    let by_account = rows(AuditFilter {
        party_contains: Some("OLIVE".to_owned()),
        ..AuditFilter::default()
    })
    .await;
    let targets: Vec<&str> = by_account.iter().map(|(_, t)| t.as_str()).collect();
    assert_eq!(
        targets,
        [
            "csv_export_streaming",
            "onboarding_checklist_v2",
            "dark_mode",
            "oliver",
            "olive"
        ]
    );
    let only_oliver = rows(AuditFilter {
        party_contains: Some("liver".to_owned()),
        flag_contains: Some("v2".to_owned()),
        ..AuditFilter::default()
    })
    .await;
    assert_eq!(
        only_oliver,
        [("oliver".into(), "onboarding_checklist_v2".into())]
    );
}
both!(flag_and_account_filters_match_part_of_a_name);

async fn the_filters_suggest_every_flag_and_account_to_roles_that_read_the_log(backend: Backend) {
    let t = TestApp::new(backend, &[]).await;
    let ops = t.account("olive", Role::Ops).await;
    let reader = t.account("rita", Role::Readonly).await;
    let AuditNames { flags, accounts } = t.app.audit_names(&ops).await.unwrap();
    assert_eq!(accounts, ["olive", "rita"]);
    assert_eq!(flags.len(), t.app.flags().len());
    assert!(flags.windows(2).all(|w| w[0] < w[1]), "sorted: {flags:?}");
    assert!(flags.iter().any(|flag| flag == "dark_mode"));
    let refused = t.app.audit_names(&reader).await.unwrap_err();
    assert!(matches!(refused, AppError::Denied(_)), "{refused}");
}
both!(the_filters_suggest_every_flag_and_account_to_roles_that_read_the_log);
