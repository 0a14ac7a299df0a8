//! `/console/client-keys` through the console's forms: a superadmin makes a key (shown
//! once), lists keys with their last use and revokes one; every other role is refused;
//! a bad name or a missing CSRF token writes nothing.

use vexil_store::Backend;

use crate::harness::TestConsole;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_superadmin_makes_lists_and_revokes_client_keys() {
    let console = TestConsole::start(Backend::Sqlite).await;
    let admin = console.signed_in("admin").await;
    let page = admin.get("/console/client-keys").await;
    assert_eq!(page.status, 200, "{}", page.body);
    page.assert_says("No client keys yet.");
    page.assert_contains(r#"<a href="/console/client-keys" aria-current="page">Client keys</a>"#);

    let csrf = page.csrf();
    let made = admin
        .post(
            "/console/client-keys",
            &[
                ("csrf", &csrf),
                ("env", "prod"),
                ("app", "raxx-console-prod"),
            ],
        )
        .await;
    assert_eq!(made.status, 200, "{}", made.body);
    made.assert_says("New key for raxx-console-prod in prod");
    made.assert_says("Copy it now: it is not shown again.");
    let start =
        made.body.find(r#"<code class="secret">"#).unwrap() + r#"<code class="secret">"#.len();
    let key = made.body[start..start + 68].to_owned();
    assert!(key.starts_with("vxc_"), "{key}");
    // It works, and the list shows only its first characters from now on.
    let snapshot = console.api(&key).get("/sdk/v1/snapshot").await;
    assert_eq!(snapshot.status, 200, "{snapshot:?}");
    let listed = admin.get("/console/client-keys").await;
    listed.assert_contains(&format!("<code>{}…</code>", &key[..12]));
    assert!(!listed.body.contains(&key), "the key is shown again");
    listed.assert_says("raxx-console-prod");
    assert!(
        !listed.text().contains("Last used\">never"),
        "{}",
        listed.body
    );

    let revoked = admin
        .post("/console/client-keys/1/revoke", &[("csrf", &csrf)])
        .await;
    assert_eq!(revoked.status, 303, "{}", revoked.body);
    assert_eq!(revoked.location(), "/console/client-keys?revoked=1");
    let after = admin.get(revoked.location()).await;
    after.assert_says("Client key 1 is revoked.");
    after.assert_says("revoked ");
    let again = admin
        .post("/console/client-keys/1/revoke", &[("csrf", &csrf)])
        .await;
    assert_eq!(again.status, 409, "{}", again.body);
    again.assert_says("client key 1 is already revoked");

    let actions: Vec<(String, serde_json::Value)> = console
        .audit()
        .await
        .into_iter()
        .filter(|row| row.action.starts_with("console.client_key."))
        .map(|row| (row.action, row.payload["via"].clone()))
        .collect();
    assert_eq!(
        actions,
        [
            ("console.client_key.revoke".to_owned(), "console".into()),
            ("console.client_key.create".to_owned(), "console".into()),
        ]
    );
    console.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn other_roles_bad_names_and_forged_forms_change_nothing() {
    let console = TestConsole::start(Backend::Sqlite).await;
    for name in ["reader", "helper", "ops1"] {
        let browser = console.signed_in(name).await;
        let page = browser.get("/console/client-keys").await;
        assert_eq!(page.status, 403, "{name}: {}", page.body);
        let csrf = browser.csrf().await;
        let made = browser
            .post(
                "/console/client-keys",
                &[("csrf", &csrf), ("env", "prod"), ("app", "web")],
            )
            .await;
        assert_eq!(made.status, 403, "{name}: {}", made.body);
        // The navigation offers only what the role may open.
        assert!(
            !browser
                .get("/console/account")
                .await
                .body
                .contains("/console/client-keys")
        );
    }
    let admin = console.signed_in("admin").await;
    let csrf = admin.csrf().await;
    let bad = admin
        .post(
            "/console/client-keys",
            &[("csrf", &csrf), ("env", "prod"), ("app", "web app")],
        )
        .await;
    assert_eq!(bad.status, 400, "{}", bad.body);
    bad.assert_says("invalid application name 'web app'");
    bad.assert_says("No key was created.");
    let env = admin
        .post(
            "/console/client-keys",
            &[("csrf", &csrf), ("env", "qa"), ("app", "web")],
        )
        .await;
    assert_eq!(env.status, 400, "{}", env.body);
    let forged = admin
        .post("/console/client-keys", &[("env", "prod"), ("app", "web")])
        .await;
    assert_eq!(forged.status, 403, "{}", forged.body);
    assert!(
        console
            .state
            .app
            .db()
            .client_keys()
            .await
            .unwrap()
            .is_empty()
    );
    let written: Vec<String> = console
        .audit()
        .await
        .into_iter()
        .map(|row| row.action)
        .filter(|action| !action.starts_with("console.auth."))
        .collect();
    assert!(written.is_empty(), "{written:?}");
    console.stop().await;
}
