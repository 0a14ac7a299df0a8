//! `/console/reconcile`: a live process running with the master switch off and
//! `FLAG_DARK_MODE=1` (the runbook's Option B) while prod's row says off; the page
//! shows it with its offer, refuses a flip without a reason or without the CSRF
//! token (writing nothing), and writes the reconciling flip with one, which reaches
//! an application following the server like any change.

use vexil_store::Backend;

use crate::harness::TestConsole;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn option_b_reconciled_in_the_console() {
    let console = TestConsole::start(Backend::Sqlite).await;
    let process = console
        .live_instance(
            "prod",
            "web",
            &[
                ("FLAG_CONSOLE_FEATURE_FLAGS_DB", "0"),
                ("FLAG_DARK_MODE", "1"),
            ],
        )
        .await;

    let ops = console.signed_in("ops1").await;
    // The row says off (written on, then off), as the process runs on.
    assert_eq!(ops.flip("dark_mode", "prod", false, &[]).await.status, 303);
    assert_eq!(ops.flip("dark_mode", "prod", true, &[]).await.status, 303);
    let page = ops.get("/console/reconcile").await;
    assert_eq!(page.status, 200);
    page.assert_contains(r#"<section class="card reconcile" id="reconcile-dark_mode-prod">"#);
    page.assert_says("prod: the master switch is not on for");
    page.assert_says("master switch off, its variable on gives on");
    page.assert_says("Write the reconciling flip to on");
    let audit_rows = || async { ops.get("/console/audit").await.body.matches("<tr").count() };
    let before = audit_rows().await;

    let csrf = ops.csrf().await;
    let form = |reason: &'static str| {
        vec![
            ("flag", "dark_mode"),
            ("env", "prod"),
            ("to", "true"),
            ("reason", reason),
        ]
    };
    let mut no_reason = form(" ");
    no_reason.push(("csrf", &csrf));
    let refused = ops.post("/console/reconcile", &no_reason).await;
    assert_eq!(refused.status, 409);
    refused.assert_says("a reason is required");
    let no_csrf = ops.post("/console/reconcile", &form("INC-9")).await;
    assert_eq!(no_csrf.status, 403);
    assert_eq!(audit_rows().await, before, "a refusal wrote something");

    // An application following this server sees the reconciling flip as it sees any.
    let key = console.client_key("prod", "web").await;
    let mut following = crate::events::EventReader::open(
        &format!("http://{}", console.address),
        "/sdk/v1/stream",
        &[("authorization", &format!("Bearer {key}"))],
    )
    .await
    .unwrap();
    // Until it holds the row as written (the hub follows the database's feed).
    let mut row = following.next().await.data["flags"]["dark_mode"]["row"].clone();
    while row != serde_json::json!(false) {
        row = following.next().await.data["row"].clone();
    }

    let mut ok = form("INC-9: break-glass on web");
    ok.push(("csrf", &csrf));
    let done = ops.post("/console/reconcile", &ok).await;
    assert_eq!(done.status, 303, "{}", done.body);
    assert!(done.location().starts_with("/console/reconcile?done="));
    let page = ops.get(done.location()).await;
    page.assert_says("Reconciling flip written: audit row");
    page.assert_says("Nothing to reconcile");
    let log = ops.get("/console/audit?flag=dark_mode").await;
    log.assert_says("INC-9: break-glass on web");
    let change = following.next().await;
    assert_eq!(
        (
            change.event.as_str(),
            &change.data["key"],
            &change.data["row"]
        ),
        (
            "change",
            &serde_json::json!("dark_mode"),
            &serde_json::json!(true)
        )
    );

    let reader = console.signed_in("reader").await;
    assert_eq!(reader.get("/console/reconcile").await.status, 403);
    drop(process);
    console.stop().await;
}
