//! Flag rows: vexil's writes (one audit row each) and direct SQL (audited by the
//! database's triggers), including the runbook's two statements verbatim.

use chrono::{DateTime, Utc};
use serde_json::json;
use vexil_core::Clock;
use vexil_store::{AuditFilter, Backend, Db, Expected};
use vexil_testkit::{TestClock, TestDb};

use crate::{both, flip_audit};

/// What vexil's flip writes: the row and its audit entry, in one transaction.
pub(crate) async fn write(
    db: &Db,
    flag_key: &str,
    env: &str,
    value: bool,
    by: &str,
    at: DateTime<Utc>,
) -> i64 {
    let mut tx = db.begin_write().await.unwrap();
    let audit = flip_audit(
        flag_key,
        at,
        json!({"flag": flag_key, "env": env, "from": !value, "to": value, "via": "cli"}),
    );
    let expected = Expected::of(tx.flag_row(flag_key, env).await.unwrap().as_ref());
    let id = tx
        .write_flag(flag_key, env, value, by, expected, &audit)
        .await
        .unwrap()
        .expect("the row was not changed meanwhile");
    tx.commit().await.unwrap();
    id
}

async fn all_audit(db: &Db) -> Vec<serde_json::Value> {
    let filter = AuditFilter {
        limit: 100,
        ..AuditFilter::default()
    };
    db.audit_page(&filter)
        .await
        .unwrap()
        .into_iter()
        .rev()
        .map(|row| row.payload)
        .collect()
}

async fn a_write_is_its_row_and_exactly_one_audit_row(backend: Backend) {
    let test_db = TestDb::new(backend).await;
    let clock = TestClock::fixed();
    write(
        &test_db.db,
        "dark_mode",
        "staging",
        true,
        "alice",
        clock.now(),
    )
    .await;
    let rows = test_db.db.flag_rows().await.unwrap();
    assert_eq!(rows.len(), 1);
    assert_eq!(
        (
            rows[0].flag_key.as_str(),
            rows[0].env.as_str(),
            rows[0].value
        ),
        ("dark_mode", "staging", true)
    );
    assert_eq!(
        (rows[0].updated_at, rows[0].updated_by.as_deref()),
        (clock.now(), Some("alice"))
    );

    clock.advance(chrono::TimeDelta::milliseconds(1500));
    write(
        &test_db.db,
        "dark_mode",
        "staging",
        false,
        "bob",
        clock.now(),
    )
    .await;
    let payloads = all_audit(&test_db.db).await;
    assert_eq!(
        payloads,
        [
            json!({"flag": "dark_mode", "env": "staging", "from": false, "to": true, "via": "cli"}),
            json!({"flag": "dark_mode", "env": "staging", "from": true, "to": false, "via": "cli"}),
        ],
        "vexil's own writes must not fire the out-of-band trigger"
    );
    let row = &test_db.db.flag_rows().await.unwrap()[0];
    assert_eq!(
        (row.value, row.updated_at, row.updated_by.as_deref()),
        (false, clock.now(), Some("bob"))
    );
}
both!(a_write_is_its_row_and_exactly_one_audit_row);

async fn a_rolled_back_write_leaves_neither_row(backend: Backend) {
    let test_db = TestDb::new(backend).await;
    let mut tx = test_db.db.begin_write().await.unwrap();
    let audit = flip_audit(
        "a",
        TestClock::fixed().now(),
        json!({"flag": "a", "env": "prod", "from": false, "to": true}),
    );
    tx.write_flag("a", "prod", true, "alice", Expected::NoRow, &audit)
        .await
        .unwrap();
    drop(tx);
    assert_eq!(test_db.db.flag_rows().await.unwrap(), []);
    assert_eq!(
        all_audit(&test_db.db).await,
        Vec::<serde_json::Value>::new()
    );
}
both!(a_rolled_back_write_leaves_neither_row);

/// The runbook's Option A, verbatim, through the operator's own client.
async fn the_runbook_update_is_audited_as_sql(backend: Backend) {
    let test_db = TestDb::new(backend).await;
    write(
        &test_db.db,
        "console_billing",
        "prod",
        false,
        "alice",
        TestClock::fixed().now(),
    )
    .await;
    test_db.client("UPDATE console_feature_flags SET value=1, updated_at=CURRENT_TIMESTAMP\nWHERE flag_key='console_billing' AND env='prod';",
    );
    let row = &test_db.db.flag_rows().await.unwrap()[0];
    assert!(row.value);
    let page = test_db
        .db
        .audit_page(&AuditFilter {
            limit: 10,
            ..AuditFilter::default()
        })
        .await
        .unwrap();
    assert_eq!(page.len(), 2);
    let newest = &page[0];
    assert_eq!(
        (
            newest.admin_id,
            newest.action.as_str(),
            newest.target_type.as_str()
        ),
        (None, "console.flag.flip", "feature_flag")
    );
    assert_eq!(newest.target_id, "console_billing");
    assert_eq!(
        newest.payload,
        json!({"flag": "console_billing", "env": "prod", "from": false, "to": true, "via": "sql"})
    );

    // The runbook's query, verbatim, shows it first.
    let listed = test_db.client("SELECT created_at, admin_id, payload\nFROM console_audit_log\nWHERE action = 'console.flag.flip'\nORDER BY created_at DESC\nLIMIT 50;",
    );
    let lines: Vec<&str> = listed.lines().collect();
    assert_eq!(lines.len(), 2, "{listed}");
    assert!(
        lines[0].contains("\"via\"") && lines[0].contains("sql"),
        "{listed}"
    );
    assert!(lines[1].contains("cli"), "{listed}");
}
both!(the_runbook_update_is_audited_as_sql);

async fn direct_inserts_and_deletes_are_audited_too(backend: Backend) {
    let test_db = TestDb::new(backend).await;
    test_db.execute("INSERT INTO console_feature_flags (flag_key, env, value, updated_by) VALUES ('a', 'staging', 1, 'mallory')",
    )
    .await
    .unwrap();
    let row = &test_db.db.flag_rows().await.unwrap()[0];
    assert_eq!(
        row.updated_by, None,
        "a name typed into SQL is not an account's change"
    );
    // Updating it again out of band is audited again.
    test_db
        .execute("UPDATE console_feature_flags SET value = 1 WHERE flag_key = 'a'")
        .await
        .unwrap();
    test_db
        .execute("DELETE FROM console_feature_flags WHERE flag_key = 'a'")
        .await
        .unwrap();
    assert_eq!(
        all_audit(&test_db.db).await,
        [
            json!({"flag": "a", "env": "staging", "from": null, "to": true, "via": "sql",
                "from_unknown": "no live process of staging reports its variables"}),
            // Setting the value it has is a write without change (write_evidence.rs).
            json!({"flag": "a", "env": "staging", "value": true, "via": "sql"}),
            json!({"flag": "a", "env": "staging", "from": true, "to": null, "deleted": true, "via": "sql"}),
        ]
    );
    let error = test_db
        .execute("INSERT INTO console_feature_flags (flag_key, env, value) VALUES ('a', 'prod', 2)")
        .await
        .unwrap_err();
    assert!(
        error.contains("CHECK") || error.contains("check"),
        "{error}"
    );
}
both!(direct_inserts_and_deletes_are_audited_too);

/// Direct SQL that looks like vexil's write, or hides in an upsert, is still audited
/// exactly once; an upsert that changes nothing writes nothing.
async fn disguised_direct_sql_is_audited_once(backend: Backend) {
    let test_db = TestDb::new(backend).await;
    write(
        &test_db.db,
        "a",
        "staging",
        true,
        "alice",
        TestClock::fixed().now(),
    )
    .await;
    let before = all_audit(&test_db.db).await.len();

    // A copy of staging's row to prod, audit_id and all.
    test_db.execute("INSERT INTO console_feature_flags (flag_key, env, value, updated_at, updated_by, audit_id) \
         SELECT flag_key, 'prod', value, updated_at, updated_by, audit_id FROM console_feature_flags \
         WHERE flag_key = 'a' AND env = 'staging'",
    )
    .await
    .unwrap();
    // A change that clears audit_id.
    test_db.execute("UPDATE console_feature_flags SET value = 0, audit_id = NULL WHERE flag_key = 'a' AND env = 'staging'")
        .await
        .unwrap();
    // An upsert that updates an existing row, and one that does nothing.
    test_db
        .execute(
            "INSERT INTO console_feature_flags (flag_key, env, value) VALUES ('a', 'prod', 0) \
         ON CONFLICT (flag_key, env) DO UPDATE SET value = excluded.value",
        )
        .await
        .unwrap();
    test_db.execute("INSERT INTO console_feature_flags (flag_key, env, value) VALUES ('a', 'prod', 1) ON CONFLICT DO NOTHING",
    )
    .await
    .unwrap();

    // A row restored from a backup: deleted, then inserted again with the audit_id it
    // had, which names a real flip of this flag, env and value, but an old one.
    write(
        &test_db.db,
        "b",
        "prod",
        true,
        "alice",
        TestClock::fixed().now(),
    )
    .await;
    test_db
        .execute("DELETE FROM console_feature_flags WHERE flag_key = 'b'")
        .await
        .unwrap();
    let restored = test_db.execute("INSERT INTO console_feature_flags (flag_key, env, value, audit_id) \
         SELECT 'b', 'prod', 1, MAX(id) FROM console_audit_log WHERE target_id = 'b' AND payload LIKE '%cli%'",
    )
    .await;
    // PostgreSQL's JSONB has no LIKE: the same through a cast.
    if restored.is_err() {
        test_db.execute("INSERT INTO console_feature_flags (flag_key, env, value, audit_id) \
             SELECT 'b', 'prod', 1, MAX(id) FROM console_audit_log WHERE target_id = 'b' AND payload::text LIKE '%cli%'",
        )
        .await
        .unwrap();
    }
    // Renaming a row's flag or env would make the old pair vanish unaudited: refused.
    let renamed = test_db
        .execute("UPDATE console_feature_flags SET env = 'qa' WHERE flag_key = 'b'")
        .await
        .unwrap_err();
    assert!(
        renamed.contains("flag_key and env cannot be changed"),
        "{renamed}"
    );

    let payloads = all_audit(&test_db.db).await;
    assert_eq!(
        payloads[before..],
        [
            json!({"flag": "a", "env": "prod", "from": null, "to": true, "via": "sql",
                "from_unknown": "no live process of prod reports its variables"}),
            json!({"flag": "a", "env": "staging", "from": true, "to": false, "via": "sql"}),
            json!({"flag": "a", "env": "prod", "from": true, "to": false, "via": "sql"}),
            json!({"flag": "b", "env": "prod", "from": false, "to": true, "via": "cli"}),
            json!({"flag": "b", "env": "prod", "from": true, "to": null, "deleted": true, "via": "sql"}),
            json!({"flag": "b", "env": "prod", "from": null, "to": true, "via": "sql",
                "from_unknown": "no live process of prod reports its variables"}),
        ]
    );
    let rows = test_db.db.flag_rows().await.unwrap();
    assert!(rows.iter().all(|row| row.updated_by.is_none()), "{rows:?}");
}
both!(disguised_direct_sql_is_audited_once);

async fn the_log_cannot_be_replaced_nor_the_flags_truncated(backend: Backend) {
    let test_db = TestDb::new(backend).await;
    write(
        &test_db.db,
        "a",
        "prod",
        true,
        "alice",
        TestClock::fixed().now(),
    )
    .await;
    match backend {
        Backend::Sqlite => {
            let error = test_db.execute("INSERT OR REPLACE INTO console_audit_log (id, action, target_type, target_id, payload) \
                 VALUES (1, 'x', 'x', 'x', '{}')",
            )
            .await
            .unwrap_err();
            assert!(
                error.contains("console_audit_log is append-only: audit rows cannot be replaced"),
                "{error}"
            );
        }
        Backend::Postgres => {
            let error = test_db
                .execute("TRUNCATE console_feature_flags")
                .await
                .unwrap_err();
            assert!(
                error.contains("console_feature_flags cannot be truncated"),
                "{error}"
            );
        }
    }
    assert_eq!(all_audit(&test_db.db).await.len(), 1);
    assert_eq!(test_db.db.flag_rows().await.unwrap().len(), 1);
}
both!(the_log_cannot_be_replaced_nor_the_flags_truncated);

/// A write checks that the row is still the one read; direct SQL in between makes it
/// write nothing (the use case turns that into a conflict).
async fn a_write_over_a_changed_row_writes_nothing(backend: Backend) {
    let test_db = TestDb::new(backend).await;
    write(
        &test_db.db,
        "a",
        "prod",
        true,
        "alice",
        TestClock::fixed().now(),
    )
    .await;
    let read = Expected::of(test_db.db.flag_rows().await.unwrap().first());
    test_db
        .execute("UPDATE console_feature_flags SET value = 0 WHERE flag_key = 'a'")
        .await
        .unwrap();
    let before = all_audit(&test_db.db).await.len();

    let mut tx = test_db.db.begin_write().await.unwrap();
    let audit = flip_audit(
        "a",
        TestClock::fixed().now(),
        json!({"flag": "a", "env": "prod", "from": true, "to": false}),
    );
    assert_eq!(
        tx.write_flag("a", "prod", false, "bob", read, &audit)
            .await
            .unwrap(),
        None
    );
    drop(tx);
    assert_eq!(all_audit(&test_db.db).await.len(), before);
    assert_eq!(test_db.db.flag_rows().await.unwrap()[0].updated_by, None);

    // The row deleted after it was read: not created again by the write.
    let read = Expected::of(test_db.db.flag_rows().await.unwrap().first());
    test_db
        .execute("DELETE FROM console_feature_flags WHERE flag_key = 'a'")
        .await
        .unwrap();
    let mut tx = test_db.db.begin_write().await.unwrap();
    assert_eq!(
        tx.write_flag("a", "prod", true, "bob", read, &audit)
            .await
            .unwrap(),
        None
    );
    drop(tx);
    assert_eq!(test_db.db.flag_rows().await.unwrap(), []);
    // No row when read, one created before the write: not overwritten.
    test_db
        .execute("INSERT INTO console_feature_flags (flag_key, env, value) VALUES ('a', 'prod', 1)")
        .await
        .unwrap();
    let mut tx = test_db.db.begin_write().await.unwrap();
    assert_eq!(
        tx.write_flag("a", "prod", false, "bob", Expected::NoRow, &audit)
            .await
            .unwrap(),
        None
    );
    drop(tx);
    assert!(test_db.db.flag_rows().await.unwrap()[0].value);
}
both!(a_write_over_a_changed_row_writes_nothing);

/// The runbook's UPDATE, verbatim, through a connection of the operator's own (the
/// client test above runs it through `sqlite3` and `psql`).
async fn the_runbook_update_through_a_connection(backend: Backend) {
    let test_db = TestDb::new(backend).await;
    write(
        &test_db.db,
        "my_new_feature",
        "staging",
        false,
        "alice",
        TestClock::fixed().now(),
    )
    .await;
    let changed = test_db.execute("UPDATE console_feature_flags SET value=1, updated_at=CURRENT_TIMESTAMP\nWHERE flag_key='my_new_feature' AND env='staging';",
    )
    .await
    .unwrap();
    assert_eq!(changed, 1);
    let newest = all_audit(&test_db.db).await.pop().unwrap();
    assert_eq!(
        newest,
        json!({"flag": "my_new_feature", "env": "staging", "from": false, "to": true, "via": "sql"})
    );
    assert!(test_db.db.flag_rows().await.unwrap()[0].value);
}
both!(the_runbook_update_through_a_connection);
