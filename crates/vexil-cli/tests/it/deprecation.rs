//! `vexil deprecation`: the runbook's deprecation table from the real binary, with a
//! live process (a `vexil::Flags` handle of this test) reporting its variables.

use serde_json::{Value, json};
use vexil_store::Backend;
use vexil_testkit::{TestDb, both, fails, live_instance, ok};

use crate::site::Site;

async fn the_table_from_the_binary(backend: Backend) {
    let test_db = TestDb::new(backend).await;
    let site = Site::new(test_db.url_string());
    ok(&site.run_with_stdin(
        &["user", "add", "root", "--role", "superadmin"],
        "a long enough password",
    ));
    // A staging process with FLAG_DARK_MODE set, reporting every 100 ms.
    let process = live_instance(test_db.url_string(), "staging", &[("FLAG_DARK_MODE", "1")]).await;
    ok(&site.run(&[
        "flip",
        "dark_mode",
        "--env",
        "staging",
        "--off",
        "--as",
        "root",
    ]));

    let listed: Value = serde_json::from_str(ok(&site.run(&["deprecation", "--json"]))).unwrap();
    let line = |flag: &str, env: &str| {
        listed
            .as_array()
            .unwrap()
            .iter()
            .find(|l| l["flag"] == flag && l["env"] == env)
            .cloned()
            .unwrap()
    };
    let staging = line("dark_mode", "staging");
    assert_eq!(
        (
            &staging["variable"],
            &staging["status"],
            &staging["row"],
            &staging["flips"],
            &staging["reporting"]
        ),
        (
            &json!("FLAG_DARK_MODE"),
            &json!("dormant"),
            &json!(false),
            &json!(1),
            &json!(1)
        )
    );
    assert_eq!(staging["set_on"].as_array().unwrap().len(), 1);
    assert_eq!(line("dark_mode", "prod")["status"], "unknown");
    assert_eq!(line("csv_export_streaming", "staging")["status"], "removed");

    let text = ok(&site.run(&["deprecation", "--env", "staging"])).to_owned();
    assert!(text.contains("FLAG_DARK_MODE"), "{text}");
    assert!(!text.contains(" prod "), "only staging's lines: {text}");
    fails(
        &site.run(&["deprecation", "--env", "qa"]),
        2,
        "error: unknown env 'qa' (expected one of: staging, prod)\n",
    );
    drop(process);
}
both!(the_table_from_the_binary);
