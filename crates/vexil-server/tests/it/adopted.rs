//! The console and the API over an adopted database (docs/adopt.md): a row written
//! under an old console admin's id reads as that admin's, before vexil, and, once the
//! id is mapped, as the vexil account's, still marked as the old console's.

use serde_json::json;
use vexil_app::Admin;
use vexil_core::Clock;
use vexil_store::Backend;
use vexil_testkit::{TestClock, old_console};

use crate::harness::{Options, TestConsole};

async fn old_admins_read_as_such_in_the_console_and_the_api(backend: Backend) {
    let test_db = old_console(backend).await;
    test_db
        .db
        .adopt(TestClock::fixed().now(), false)
        .await
        .unwrap();
    let console = TestConsole::start_with(test_db, Options::default()).await;
    let browser = console.signed_in("root").await;
    let page = browser.get("/console/audit?flag=dark_mode").await;
    page.assert_says("console admin #7 (before vexil) turned");
    page.assert_says("adopted the prod row of");

    console
        .state
        .app
        .map_old_admin(Admin::Cli, 7, "ops1")
        .await
        .unwrap();
    let page = browser.get("/console/audit?flag=dark_mode").await;
    page.assert_says("ops1 (console admin #7, before vexil) turned");
    browser
        .get("/console/audit")
        .await
        .assert_says("the CLI mapped old console admin #7 to account ops1");

    let api = console.api(&console.token("ops1").await);
    let reply = api
        .get("/api/v1/audit?flag=dark_mode&action=console.flag.flip")
        .await;
    assert_eq!(reply.status, 200, "{reply:?}");
    let old = reply.body["entries"]
        .as_array()
        .unwrap()
        .iter()
        .find(|entry| entry["id"] == 2)
        .unwrap();
    assert_eq!(
        (&old["actor"], &old["old_admin"]),
        (
            &json!("console_admin_7"),
            &json!({"id": 7, "account": "ops1", "before_vexil": true})
        )
    );
}
vexil_testkit::both!(old_admins_read_as_such_in_the_console_and_the_api);
