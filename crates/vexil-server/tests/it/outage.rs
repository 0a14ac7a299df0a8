//! The database down under a running console: every page (and API answer) is a 503 that names the
//! break-glass paths and nothing internal, `/readyz` says not ready while
//! `/healthz` stays up, and the console comes back by itself.

use vexil_store::Backend;
use vexil_testkit::{Proxy, TestDb};

use crate::harness::{Options, TestConsole};

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn with_the_database_down_the_console_names_the_break_glass_paths() {
    let test_db = TestDb::new(Backend::Postgres).await;
    let proxy = Proxy::start("127.0.0.1:5432".parse().unwrap()).await;
    let url = vexil_store::DatabaseUrl::parse(&test_db.postgres_url_via(proxy.addr())).unwrap();
    let db = vexil_store::Db::connect(&url).await.unwrap();
    let console = TestConsole::start_with(
        test_db,
        Options {
            db: Some(db),
            ..Options::default()
        },
    )
    .await;
    let api = console.api(&console.token("ops1").await);
    let browser = console.signed_in("ops1").await;
    let csrf = browser.csrf().await;
    assert_eq!(browser.get("/console/flags").await.status, 200);
    proxy.cut();
    let flip = [("csrf", csrf.as_str()), ("env", "prod"), ("from", "false")];
    for page in [
        browser.get("/console/flags").await,
        browser.post("/console/flags/dark_mode/flip", &flip).await,
        // The sign-in page itself needs no database (nothing is stored for a
        // visitor); signing in does.
        console.browser().sign_in("ops1", "any password").await,
    ] {
        assert_eq!(page.status, 503, "{}", page.body);
        page.assert_contains("The database is not answering");
        page.assert_says("vexil flip <flag_key> --env <env> --on|--off --as <your account>");
        page.assert_contains("Option A");
        assert!(
            !page.body.contains("sqlx") && !page.body.contains("127.0.0.1"),
            "{}",
            page.body
        );
    }
    // The API says the same in its own shape.
    for reply in [
        api.get("/api/v1/flags?env=prod").await,
        api.flip("dark_mode", false, serde_json::json!({})).await,
    ] {
        reply.assert_error(
            503,
            "unavailable",
            "the database does not answer; nothing was written",
        );
        assert!(reply.message().contains("vexil flip"), "{reply:?}");
        assert!(!reply.message().contains("127.0.0.1"), "{reply:?}");
    }
    // The probes: up, not ready, and no more said to an anonymous caller than that.
    assert_eq!(browser.get("/healthz").await.status, 200);
    let ready = browser.get("/readyz").await;
    assert_eq!(ready.status, 503);
    assert_eq!(
        ready.body,
        r#"{"reason":"the database does not answer","status":"unavailable"}"#
    );
    proxy.restore();
    // The pool reconnects on the next request that needs it.
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(10);
    while browser.get("/console/flags").await.status != 200 {
        assert!(
            std::time::Instant::now() < deadline,
            "the console comes back with the database"
        );
        tokio::task::yield_now().await;
    }
    assert_eq!(console.row("dark_mode", "prod").await, None);
}
