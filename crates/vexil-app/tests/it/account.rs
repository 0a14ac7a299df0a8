//! Accounts: created with a hashed password, role changes and disabling audited,
//! and the bad inputs refused.

use secrecy::SecretString;
use vexil_app::{Admin, AppError};
use vexil_core::Role;
use vexil_store::{AuditFilter, Backend};

use crate::{TestApp, both};

async fn accounts_are_created_changed_and_disabled_with_audit_rows(backend: Backend) {
    let t = TestApp::new(backend, &[]).await;
    let password = SecretString::from("a long enough password");
    t.app
        .add_user(Admin::Cli, "alice", Role::Ops, &password)
        .await
        .unwrap();
    let users = t.app.users().await.unwrap();
    assert_eq!(
        (
            users[0].name.as_str(),
            users[0].role.as_str(),
            users[0].disabled
        ),
        ("alice", "ops", false)
    );
    assert!(
        users[0].password_hash.starts_with("$argon2id$"),
        "stored as an argon2id hash"
    );
    assert!(t.app.check_password("alice", &password).await.unwrap());
    assert!(
        !t.app
            .check_password("alice", &SecretString::from("a wrong password"))
            .await
            .unwrap()
    );
    assert!(!t.app.check_password("nobody", &password).await.unwrap());

    t.app
        .set_role(Admin::Cli, "alice", Role::Superadmin)
        .await
        .unwrap();
    assert_eq!(t.app.actor("alice").await.unwrap().role(), Role::Superadmin);
    t.app.disable_user(Admin::Cli, "alice").await.unwrap();
    assert_eq!(
        t.app.actor("alice").await.unwrap_err().to_string(),
        "account 'alice' is disabled"
    );
    assert!(
        !t.app.check_password("alice", &password).await.unwrap(),
        "a disabled account cannot sign in"
    );

    let actions: Vec<String> = t
        .app
        .db()
        .audit_page(&AuditFilter {
            limit: 10,
            ..AuditFilter::default()
        })
        .await
        .unwrap()
        .into_iter()
        .rev()
        .map(|row| format!("{} {} {}", row.action, row.target_id, row.payload))
        .collect();
    assert_eq!(
        actions,
        [
            r#"console.user.add alice {"name":"alice","role":"ops","via":"cli"}"#,
            r#"console.user.set_role alice {"from":"ops","name":"alice","to":"superadmin","via":"cli"}"#,
            r#"console.user.disable alice {"name":"alice","via":"cli"}"#,
        ]
    );
}
both!(accounts_are_created_changed_and_disabled_with_audit_rows);

async fn bad_account_requests_are_refused(backend: Backend) {
    let t = TestApp::new(backend, &[]).await;
    let password = SecretString::from("a long enough password");
    t.app
        .add_user(Admin::Cli, "alice", Role::Ops, &password)
        .await
        .unwrap();
    let error = |result: Result<(), AppError>| result.unwrap_err().to_string();
    assert_eq!(
        error(
            t.app
                .add_user(Admin::Cli, "alice", Role::Ops, &password)
                .await
                .map(drop)
        ),
        "account 'alice' already exists"
    );
    assert_eq!(
        error(
            t.app
                .add_user(Admin::Cli, "Bob", Role::Ops, &password)
                .await
                .map(drop)
        ),
        "invalid account name: it must start with a lower-case letter (a-z)"
    );
    assert_eq!(
        error(
            t.app
                .add_user(Admin::Cli, "bob", Role::Ops, &SecretString::from("short"))
                .await
                .map(drop)
        ),
        "the password is too short: at least 12 characters"
    );
    assert_eq!(
        error(t.app.set_role(Admin::Cli, "nobody", Role::Ops).await),
        "unknown account 'nobody'"
    );
    assert_eq!(
        error(t.app.actor("nobody").await.map(drop)),
        "unknown account 'nobody'"
    );
}
both!(bad_account_requests_are_refused);

async fn only_a_superadmin_account_manages_accounts(backend: Backend) {
    let t = TestApp::new(backend, &[]).await;
    let ops = t.account("olive", Role::Ops).await;
    let root = t.account("sam", Role::Superadmin).await;
    let password = SecretString::from("a long enough password");
    assert_eq!(
        t.app
            .set_role(Admin::Account(&ops), "olive", Role::Superadmin)
            .await
            .unwrap_err()
            .to_string(),
        "role ops may not manage accounts: it needs superadmin"
    );
    assert!(
        t.app
            .create_token(Admin::Account(&ops), "sam")
            .await
            .is_err()
    );
    assert!(t.app.enrol_totp(Admin::Account(&ops), "sam").await.is_err());
    assert!(
        t.app
            .add_user(Admin::Account(&ops), "eve", Role::Superadmin, &password)
            .await
            .is_err()
    );
    t.app
        .add_user(Admin::Account(&root), "bob", Role::Ops, &password)
        .await
        .unwrap();
    assert_eq!(
        t.app
            .set_role(Admin::Account(&root), "bob", Role::Ops)
            .await
            .unwrap_err()
            .to_string(),
        "account 'bob' already has role ops; nothing was changed"
    );
}
both!(only_a_superadmin_account_manages_accounts);
