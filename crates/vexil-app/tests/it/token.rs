//! API tokens: shown once, stored hashed, revocable, and acting for their account's
//! current role only while the account is enabled.

use secrecy::{ExposeSecret, SecretString};
use vexil_app::{Admin, AppError};
use vexil_core::Role;
use vexil_store::Backend;

use crate::{TestApp, both};

async fn tokens_act_for_their_account_until_revoked(backend: Backend) {
    let t = TestApp::new(backend, &[]).await;
    t.account("bot", Role::Ops).await;
    let (id, token) = t.app.create_token(Admin::Cli, "bot").await.unwrap();
    let text = token.expose_secret();
    assert!(text.starts_with("vxl_") && text.len() == 68, "{text}");

    let listed = t.app.tokens().await.unwrap();
    assert_eq!((listed[0].id, listed[0].prefix.as_str()), (id, &text[..12]));
    assert_eq!(listed[0].last_used_at, None);

    let actor = t.app.actor_for_token(&token).await.unwrap();
    assert_eq!((actor.name(), actor.role()), ("bot", Role::Ops));
    assert!(t.app.tokens().await.unwrap()[0].last_used_at.is_some());

    // The account's current role applies at each use.
    t.app
        .set_role(Admin::Cli, "bot", Role::Readonly)
        .await
        .unwrap();
    assert_eq!(
        t.app.actor_for_token(&token).await.unwrap().role(),
        Role::Readonly
    );

    let wrong = SecretString::from(format!("vxl_{}", "0".repeat(64)));
    assert!(matches!(
        t.app.actor_for_token(&wrong).await,
        Err(AppError::BadToken)
    ));

    t.app.revoke_token(Admin::Cli, id).await.unwrap();
    assert!(matches!(
        t.app.actor_for_token(&token).await,
        Err(AppError::BadToken)
    ));
    assert_eq!(
        t.app
            .revoke_token(Admin::Cli, id)
            .await
            .unwrap_err()
            .to_string(),
        format!("API token {id} is already revoked")
    );
    assert_eq!(
        t.app
            .revoke_token(Admin::Cli, 999)
            .await
            .unwrap_err()
            .to_string(),
        "unknown API token 999"
    );
}
both!(tokens_act_for_their_account_until_revoked);

async fn a_disabled_account_s_tokens_stop_working(backend: Backend) {
    let t = TestApp::new(backend, &[]).await;
    t.account("bot", Role::Ops).await;
    let (_, token) = t.app.create_token(Admin::Cli, "bot").await.unwrap();
    t.app.disable_user(Admin::Cli, "bot").await.unwrap();
    assert!(matches!(
        t.app.actor_for_token(&token).await,
        Err(AppError::BadToken)
    ));
    assert_eq!(
        t.app
            .create_token(Admin::Cli, "bot")
            .await
            .unwrap_err()
            .to_string(),
        "account 'bot' is disabled"
    );
}
both!(a_disabled_account_s_tokens_stop_working);
