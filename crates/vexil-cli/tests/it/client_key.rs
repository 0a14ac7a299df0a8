//! `vexil client-key create|list|revoke` through the real binary, on both databases:
//! the key printed once and stored only hashed, each change audited with
//! `"via": "cli"`, and every bad input with its one-line error and exit code.

use serde_json::Value;
use vexil_store::{AuditFilter, Backend};
use vexil_testkit::{TestDb, fails, ok};

use crate::site::Site;

async fn client_keys_from_the_command_line(backend: Backend) {
    let test_db = TestDb::new(backend).await;
    let site = Site::new(test_db.url_string());

    let created = site.run(&[
        "client-key",
        "create",
        "--env",
        "prod",
        "--app",
        "raxx-console-prod",
    ]);
    let key = ok(&created).trim().to_owned();
    assert!(key.starts_with("vxc_") && key.len() == 68, "{key}");
    assert!(key[4..].chars().all(|c| c.is_ascii_hexdigit()), "{key}");
    assert_eq!(
        created.stderr,
        "client key 1 created for raxx-console-prod in prod: store it now, it is not shown again\n"
    );
    let listed: Value =
        serde_json::from_str(ok(&site.run(&["client-key", "list", "--json"]))).unwrap();
    assert_eq!(listed[0]["id"], 1);
    assert_eq!(listed[0]["env"], "prod");
    assert_eq!(listed[0]["app"], "raxx-console-prod");
    assert_eq!(listed[0]["prefix"], &key[..12]);
    assert_eq!(listed[0]["created_by"], Value::Null);
    assert_eq!(listed[0]["revoked_at"], Value::Null);
    let table = site.run(&["client-key", "list"]);
    assert!(
        ok(&table).contains(&format!("{}…", &key[..12])),
        "{table:?}"
    );
    assert!(!table.stdout.contains(&key), "the key is never shown again");
    // The database holds its hash, never the key.
    let stored = test_db.db.client_keys().await.unwrap();
    assert_eq!(stored.len(), 1);

    // A process following a server with it, as `vexil instances` lists it.
    let report = vexil_store::InstanceReport {
        id: "k1-abc".to_owned(),
        env: "prod".to_owned(),
        host: "web.1".to_owned(),
        pid: 42,
        application: "raxx-console-prod".to_owned(),
        version: "0.1.0".to_owned(),
        started_at: chrono::Utc::now(),
        last_seen: chrono::Utc::now(),
        live: true,
        env_layer: [("console_feature_flags_db".to_owned(), "on".to_owned())].into(),
        applied: Default::default(),
        language: "python".to_owned(),
        transport: vexil_store::Transport::Server,
        change_id: Some(7),
    };
    test_db.db.report_instance(&report).await.unwrap();
    let listed: Value = serde_json::from_str(ok(&site.run(&["instances", "--json"]))).unwrap();
    assert_eq!(
        (
            &listed[0]["language"],
            &listed[0]["transport"],
            &listed[0]["application"]
        ),
        (
            &Value::from("python"),
            &Value::from("server"),
            &Value::from("raxx-console-prod")
        )
    );
    assert!(ok(&site.run(&["instances"])).contains("python 0.1.0 (server)"));

    assert_eq!(
        ok(&site.run(&["client-key", "revoke", "1"])),
        "client key 1 (raxx-console-prod in prod) is revoked\n"
    );
    fails(
        &site.run(&["client-key", "revoke", "1"]),
        1,
        "error: client key 1 is already revoked\n",
    );
    fails(
        &site.run(&["client-key", "revoke", "7"]),
        2,
        "error: unknown client key 7\n",
    );
    fails(
        &site.run(&["client-key", "create", "--env", "qa", "--app", "web"]),
        2,
        "error: unknown env 'qa' (expected one of: staging, prod)\n",
    );
    fails(
        &site.run(&["client-key", "create", "--env", "prod", "--app", "web app"]),
        2,
        "error: invalid application name 'web app': only letters, digits, '.', '_' and '-' are allowed\n",
    );
    let audit = test_db
        .db
        .audit_page(&AuditFilter {
            limit: 10,
            ..AuditFilter::default()
        })
        .await
        .unwrap();
    let actions: Vec<(&str, &str, &Value)> = audit
        .iter()
        .map(|row| {
            (
                row.action.as_str(),
                row.target_id.as_str(),
                &row.payload["via"],
            )
        })
        .collect();
    assert_eq!(
        actions,
        [
            ("console.client_key.revoke", "1", &Value::from("cli")),
            ("console.client_key.create", "1", &Value::from("cli")),
        ]
    );
    assert_eq!(audit[1].payload["key"], &key[..12]);
    assert_eq!(audit[1].admin_id, None);
    assert!(
        !audit[1].payload.to_string().contains(&key[12..]),
        "the key is not in the log"
    );
}
vexil_testkit::both!(client_keys_from_the_command_line);
