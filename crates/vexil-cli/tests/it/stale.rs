//! `vexil flags list --stale` from the real binary, both databases: flags never
//! flipped and a row of an undeclared flag listed, a flipped flag not, `--json`, and
//! a bad `--days` refused with a usage error.

use serde_json::Value;
use vexil_store::Backend;
use vexil_testkit::{TestDb, both, ok};

use crate::site::Site;

async fn stale_flags_from_the_binary(backend: Backend) {
    let test_db = TestDb::new(backend).await;
    let site = Site::new(test_db.url_string());
    ok(&site.run_with_stdin(
        &["user", "add", "root", "--role", "superadmin"],
        "a long enough password",
    ));
    ok(&site.run(&["flip", "dark_mode", "--env", "prod", "--on", "--as", "root"]));
    test_db
        .execute(
            "INSERT INTO console_feature_flags (flag_key, env, value, updated_at) \
             VALUES ('retired_flag', 'staging', 0, CURRENT_TIMESTAMP)",
        )
        .await
        .unwrap();
    let text = ok(&site.run(&["flags", "list", "--stale"])).to_owned();
    assert!(text.contains("never flipped: still used?"), "{text}");
    assert!(
        text.contains("a row in staging (off), but the flags file does not declare it"),
        "{text}"
    );
    let json: Value = serde_json::from_str(ok(
        &site.run(&["flags", "list", "--stale", "--days", "7", "--json"])
    ))
    .unwrap();
    assert_eq!(json["days"], 7);
    let keys: Vec<&str> = json["flags"]
        .as_array()
        .unwrap()
        .iter()
        .map(|f| f["key"].as_str().unwrap())
        .collect();
    assert!(!keys.contains(&"dark_mode"), "flipped: {keys:?}");
    assert!(keys.contains(&"search_typo_tolerance"), "{keys:?}");
    let first = json["flags"][0]["stale"][0]["kind"].as_str();
    assert_eq!(first, Some("never_flipped"));
    assert_eq!(json["undeclared_rows"][0][0], "retired_flag");

    let bad = site.run(&["flags", "list", "--stale", "--days", "0"]);
    assert_eq!(bad.code, Some(2), "{bad:?}");
    assert!(bad.stderr.contains("--days"), "{bad:?}");
    let bad = site.run(&["flags", "list", "--days", "7"]);
    assert_eq!(bad.code, Some(2), "--days without --stale: {bad:?}");
}
both!(stale_flags_from_the_binary);
