//! `vexil audit verify | head | export` through the real binary, on both databases:
//! exit 0 on an intact chain, 1 naming the first bad row, 2 for bad input; an export
//! that verifies without the database; a forged row found.

use serde_json::Value;
use vexil_store::Backend;
use vexil_testkit::{TestDb, fails, ok};

use crate::site::Site;

/// A migrated database with an account and two flips, and a site with a key.
async fn site(backend: Backend) -> (TestDb, Site) {
    let test_db = TestDb::new(backend).await;
    let mut site = Site::new(test_db.url_string());
    site.secret_key = Some("5a".repeat(32));
    ok(&site.run_with_stdin(
        &["user", "add", "olive", "--role", "ops"],
        "a long enough password\n",
    ));
    for env in ["staging", "prod"] {
        ok(&site.run(&[
            "flip",
            "dark_mode",
            "--env",
            env,
            "--on",
            "--as",
            "olive",
            "--reason",
            "INC-9",
        ]));
    }
    (test_db, site)
}

async fn verify_head_and_export(backend: Backend) {
    let (test_db, site) = site(backend).await;
    let head = ok(&site.run(&["audit", "head"])).trim().to_owned();
    assert!(head.starts_with("3:") && head.len() == 2 + 64, "{head}");
    let verified = ok(&site.run(&["audit", "verify", "--anchor", &head])).to_owned();
    assert_eq!(
        verified,
        format!(
            "audit log intact: 3 rows sealed in order, head {head}\nanchor {head} found in the chain\n3 rows prove vexil wrote them\n"
        )
    );
    let json: Value = serde_json::from_str(ok(&site.run(&["audit", "verify", "--json"]))).unwrap();
    assert_eq!(
        (&json["ok"], &json["sealed"], &json["head"]),
        (
            &Value::Bool(true),
            &Value::from(3),
            &Value::from(head.clone())
        )
    );

    // An archive, verified later without the database, and the same archive edited.
    for format in ["jsonl", "csv"] {
        let exported = ok(&site.run(&["audit", "export", "--format", format])).to_owned();
        site.dir.write("audit.export", &exported);
        ok(&site.run(&[
            "audit",
            "verify",
            "--file",
            "audit.export",
            "--anchor",
            &head,
        ]));
        site.dir
            .write("audit.export", exported.replacen("INC-9", "INC-0", 1));
        let refused = site.run(&["audit", "verify", "--file", "audit.export"]);
        assert_eq!(
            (refused.code, refused.stderr.as_str()),
            (
                Some(1),
                "error: audit row 2 was changed after it was sealed\n"
            ),
            "{format}"
        );
    }

    // A row claiming olive's console, inserted by SQL.
    test_db
        .execute(
            "INSERT INTO console_audit_log (admin_id, action, target_type, target_id, payload) \
             VALUES (1, 'console.flag.flip', 'feature_flag', 'dark_mode', \
             '{\"flag\": \"dark_mode\", \"env\": \"prod\", \"from\": true, \"to\": false, \"via\": \"console\"}')",
        )
        .await
        .unwrap();
    let refused = site.run(&["audit", "verify"]);
    assert_eq!(
        (refused.code, refused.stderr.as_str()),
        (
            Some(1),
            "error: audit row 4 claims to be vexil's but carries no valid proof: written by direct SQL (or by a vexil without this VEXIL_SECRET_KEY)\n"
        )
    );
    let json: Value =
        serde_json::from_str(&site.run(&["audit", "verify", "--json"]).stdout).unwrap();
    assert_eq!(
        (&json["ok"], &json["fault"], &json["row"]),
        (&Value::Bool(false), &Value::from("forged"), &Value::from(4))
    );
    let listed = ok(&site.run(&["audit", "--limit", "1"])).to_owned();
    assert!(listed.contains("direct SQL (claims olive)"), "{listed}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn verify_head_and_export_on_sqlite() {
    verify_head_and_export(Backend::Sqlite).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn verify_head_and_export_on_postgres() {
    verify_head_and_export(Backend::Postgres).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn bad_input_is_named() {
    let (_test_db, site) = site(Backend::Sqlite).await;
    fails(
        &site.run(&["audit", "verify", "--anchor", "12:xyz"]),
        2,
        "error: --anchor: anchor '12:xyz' is not ID:HASH (a row id, a colon and 64 hexadecimal characters, as `vexil audit head` prints)\n",
    );
    fails(
        &site.run(&["audit", "verify", "--file", "missing.jsonl"]),
        2,
        "error: cannot open 'missing.jsonl': No such file or directory (os error 2)\n",
    );
    site.dir.write("cut.jsonl", "{\"id\": 1, \"created_at\"");
    fails(
        &site.run(&["audit", "verify", "--file", "cut.jsonl"]),
        2,
        "error: cut.jsonl:1: not an exported audit row: EOF while parsing an object at line 1 column 22\n",
    );
    fails(
        &site.run(&["audit", "export", "--since", "yesterday"]),
        2,
        &site.run(&["audit", "--since", "yesterday"]).stderr,
    );
}
