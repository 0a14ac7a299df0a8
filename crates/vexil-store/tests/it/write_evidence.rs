//! Evidence is what happened (docs/schema.md, "Direct SQL"): a direct UPDATE that
//! changes no value is a `console.flag.touched` row, never a flip, and never counts as
//! one; a direct INSERT records as `from` the value in force before it, as far as the
//! database can know it, and says what it cannot.

use std::collections::BTreeMap;

use chrono::Utc;
use serde_json::{Value, json};
use vexil_core::Clock;
use vexil_store::{AuditFilter, Backend, Db, InstanceReport, Transport};
use vexil_testkit::{TestClock, TestDb};

use crate::both;
use crate::flags::write;

async fn audit(db: &Db) -> Vec<(String, Value)> {
    let filter = AuditFilter {
        limit: 100,
        ..AuditFilter::default()
    };
    let page = db.audit_page(&filter).await.unwrap();
    page.into_iter()
        .rev()
        .map(|row| (row.action, row.payload))
        .collect()
}

/// A live process of `env` reporting `vars` (flag key → `on`/`off`/`invalid`).
async fn report(db: &Db, id: &str, env: &str, vars: &[(&str, &str)]) {
    let mut env_layer: BTreeMap<String, String> = vars
        .iter()
        .map(|(k, v)| ((*k).to_owned(), (*v).to_owned()))
        .collect();
    env_layer.insert("console_feature_flags_db".to_owned(), "on".to_owned());
    db.report_instance(&InstanceReport {
        id: id.to_owned(),
        env: env.to_owned(),
        host: "web.1".to_owned(),
        pid: 42,
        application: "raxx-console-prod".to_owned(),
        version: "0.1.0".to_owned(),
        started_at: Utc::now(),
        last_seen: Utc::now(),
        live: true,
        env_layer,
        applied: BTreeMap::new(),
        language: "python".to_owned(),
        transport: Transport::Database,
        change_id: None,
    })
    .await
    .unwrap();
}

/// The runbook's Option A on a row already 1: recorded as a write without change,
/// the row still pointing at the flip that set it, and no flip evidence.
async fn an_update_that_changes_nothing_is_no_flip(backend: Backend) {
    let test_db = TestDb::new(backend).await;
    let audit_id = write(
        &test_db.db,
        "console_billing",
        "prod",
        true,
        "alice",
        TestClock::fixed().now(),
    )
    .await;
    test_db.client("UPDATE console_feature_flags SET value=1, updated_at=CURRENT_TIMESTAMP\nWHERE flag_key='console_billing' AND env='prod';",
    );
    // Also one that tries to repoint the row and sign it: neither sticks.
    test_db
        .execute("UPDATE console_feature_flags SET value = 1, audit_id = NULL, updated_by = 'mallory' WHERE flag_key = 'console_billing'")
        .await
        .unwrap();
    let log = audit(&test_db.db).await;
    assert_eq!(log.len(), 3, "{log:?}");
    for (action, payload) in &log[1..] {
        assert_eq!(action, "console.flag.touched");
        assert_eq!(
            *payload,
            json!({"flag": "console_billing", "env": "prod", "value": true, "via": "sql"})
        );
    }
    let row = &test_db.db.flag_rows().await.unwrap()[0];
    assert_eq!(
        (row.value, row.updated_by.as_deref(), row.audit_id),
        (true, Some("alice"), Some(audit_id))
    );
    // The runbook's SELECT lists flips only: the write without change is not one.
    let listed = test_db.client("SELECT created_at, admin_id, payload\nFROM console_audit_log\nWHERE action = 'console.flag.flip'\nORDER BY created_at DESC\nLIMIT 50;",
    );
    assert_eq!(listed.lines().count(), 1, "{listed}");

    // A true→true flip that direct SQL wrote before this rule is no evidence either.
    test_db
        .execute(&format!(
            "INSERT INTO console_audit_log (admin_id, action, target_type, target_id, payload) \
             VALUES (NULL, 'console.flag.flip', 'feature_flag', 'dark_mode', {})",
            json_literal(
                backend,
                r#"{"flag": "dark_mode", "env": "prod", "from": true, "to": true, "via": "sql"}"#
            )
        ))
        .await
        .unwrap();
    // A row inserted by SQL counts, even when the value before it is unknown (here:
    // no live process reports), and so does one from before migration 0008.
    test_db
        .execute("INSERT INTO console_feature_flags (flag_key, env, value) VALUES ('legacy_banner', 'staging', 1)")
        .await
        .unwrap();
    test_db
        .execute(&format!(
            "INSERT INTO console_audit_log (admin_id, action, target_type, target_id, payload) \
             VALUES (NULL, 'console.flag.flip', 'feature_flag', 'new_checkout', {})",
            json_literal(
                backend,
                r#"{"flag": "new_checkout", "env": "prod", "from": null, "to": true, "via": "sql"}"#
            )
        ))
        .await
        .unwrap();
    let counts = test_db.db.flip_counts().await.unwrap();
    let mut counted: Vec<(&str, &str, u64)> = counts
        .iter()
        .map(|c| (c.flag.as_str(), c.env.as_str(), c.count))
        .collect();
    counted.sort_unstable();
    assert_eq!(
        counted,
        [
            ("console_billing", "prod", 1),
            ("legacy_banner", "staging", 1),
            ("new_checkout", "prod", 1)
        ]
    );
    assert_eq!(
        test_db.db.broken_guards().await.unwrap(),
        Vec::<String>::new()
    );
}
both!(an_update_that_changes_nothing_is_no_flip);

fn json_literal(backend: Backend, json: &str) -> String {
    match backend {
        Backend::Sqlite => format!("'{json}'"),
        Backend::Postgres => format!("'{json}'::jsonb"),
    }
}

/// A row inserted by SQL takes over from the variable or the default: its audit row
/// says which value that was, or why the database cannot know.
async fn an_insert_records_the_value_in_force_before_it(backend: Backend) {
    let test_db = TestDb::new(backend).await;
    let db = &test_db.db;
    db.declare_defaults(
        &[
            ("dark_mode".to_owned(), false),
            ("support_chat_widget".to_owned(), true),
            ("csv_export_streaming".to_owned(), false),
        ]
        .into(),
    )
    .await
    .unwrap();
    // Declaring again the same defaults writes nothing; a changed one is updated.
    db.declare_defaults(&[("dark_mode".to_owned(), true)].into())
        .await
        .unwrap();
    assert_eq!(
        db.declared_defaults().await.unwrap(),
        [
            ("csv_export_streaming".to_owned(), false),
            ("dark_mode".to_owned(), true),
            ("support_chat_widget".to_owned(), true)
        ]
        .into()
    );
    report(
        db,
        "p1",
        "staging",
        &[("dark_mode", "off"), ("support_chat_widget", "off")],
    )
    .await;
    report(db, "p2", "staging", &[("dark_mode", "off")]).await;

    for (flag, env) in [
        ("dark_mode", "staging"),            // every process: variable off
        ("csv_export_streaming", "staging"), // no variable anywhere: the default
        ("support_chat_widget", "staging"),  // p1 off by variable, p2 on by default
        ("undeclared_thing", "staging"),     // no default in the database
        ("dark_mode", "prod"),               // no live process at all
    ] {
        test_db
            .execute(&format!(
                "INSERT INTO console_feature_flags (flag_key, env, value) VALUES ('{flag}', '{env}', 1)"
            ))
            .await
            .unwrap();
    }
    let payloads: Vec<Value> = audit(db).await.into_iter().map(|(_, p)| p).collect();
    let base = |flag: &str, env: &str| json!({"flag": flag, "env": env, "to": true, "via": "sql"});
    let with = |mut v: Value, extra: Value| {
        for (k, x) in extra.as_object().unwrap() {
            v[k] = x.clone();
        }
        v
    };
    assert_eq!(
        payloads,
        [
            with(
                base("dark_mode", "staging"),
                json!({"from": false, "from_source": "variable"})
            ),
            with(
                base("csv_export_streaming", "staging"),
                json!({"from": false, "from_source": "default"})
            ),
            with(
                base("support_chat_widget", "staging"),
                json!({"from": null, "from_unknown": "the live processes of staging disagree (0 on, 1 off by variable, 1 by the default, on)"})
            ),
            with(
                base("undeclared_thing", "staging"),
                json!({"from": null, "from_unknown": "the flag's default is not in the database (undeclared, or declared by no vexil process yet)"})
            ),
            with(
                base("dark_mode", "prod"),
                json!({"from": null, "from_unknown": "no live process of prod reports its variables"})
            ),
        ]
    );
}
both!(an_insert_records_the_value_in_force_before_it);
