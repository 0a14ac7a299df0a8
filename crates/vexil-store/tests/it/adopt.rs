//! Adoption (docs/adopt.md): the old console's database keeps every row, its id and
//! its history, and ends with exactly a fresh database's schema; vexil's writes and
//! the runbook's Option A are audited after it, and the chain seals the old rows.

use chrono::TimeDelta;
use vexil_core::Clock;
use vexil_core::audit_chain::Proof;
use vexil_store::{Backend, NewAudit, NewUser, StoreError};
use vexil_testkit::{RUNBOOK_OPTION_A, RUNBOOK_SELECT, TestClock, TestDb, audit_log, old_console};

use crate::both;
use crate::flags::write;

/// The schema as the database's catalog describes it: tables, columns, constraints,
/// indexes, triggers (and whether they fire), functions, sequences' settings, views,
/// and the migrations recorded with their checksums.
pub(crate) fn schema(test_db: &TestDb, backend: Backend) -> String {
    let queries: &[&str] = match backend {
        Backend::Sqlite => &[
            "SELECT type, name, tbl_name, sql FROM sqlite_master \
             WHERE name <> 'sqlite_sequence' ORDER BY type, name",
            "SELECT version, description, success, hex(checksum) FROM _sqlx_migrations ORDER BY version",
        ],
        Backend::Postgres => &[
            "SELECT table_name, column_name, ordinal_position, data_type, is_nullable, \
             column_default, is_identity, identity_generation FROM information_schema.columns \
             WHERE table_schema = 'public' ORDER BY 1, 3",
            "SELECT conrelid::regclass, conname, pg_get_constraintdef(oid) FROM pg_constraint \
             WHERE connamespace = 'public'::regnamespace ORDER BY 1, 2",
            "SELECT indexdef FROM pg_indexes WHERE schemaname = 'public' ORDER BY indexname",
            "SELECT tgrelid::regclass, tgname, tgenabled, pg_get_triggerdef(oid) FROM pg_trigger \
             WHERE NOT tgisinternal ORDER BY 1, 2",
            "SELECT proname, md5(prosrc), prosecdef, proconfig FROM pg_proc \
             WHERE pronamespace = 'public'::regnamespace ORDER BY 1",
            "SELECT sequencename, start_value, increment_by FROM pg_sequences \
             WHERE schemaname = 'public' ORDER BY 1",
            "SELECT viewname, definition FROM pg_views WHERE schemaname = 'public' ORDER BY 1",
            "SELECT typname FROM pg_type WHERE typnamespace = 'public'::regnamespace ORDER BY 1",
            "SELECT version, description, success, encode(checksum, 'hex') FROM _sqlx_migrations ORDER BY version",
        ],
    };
    queries
        .iter()
        .map(|sql| test_db.client(sql))
        .collect::<Vec<_>>()
        .join("\n")
}

async fn plain_migrate_asks_for_an_adoption(backend: Backend) {
    let test_db = old_console(backend).await;
    for error in [
        test_db.db.migrate().await.unwrap_err(),
        test_db.db.check_migrated().await.unwrap_err(),
    ] {
        assert!(
            matches!(error, StoreError::AdoptionNeeded { .. }),
            "{error:?}"
        );
        assert!(
            error.to_string().ends_with(
                "holds the runbook's tables (console_feature_flags with 4 rows, console_audit_log with 5 rows) but no vexil schema: run `vexil migrate --adopt` to keep them, with their history, and add vexil's schema around them (docs/adopt.md)"
            ),
            "{error}"
        );
    }
    // Nothing was written: the old console's tables alone.
    assert_eq!(
        test_db
            .db
            .runbook_tables()
            .await
            .unwrap()
            .unwrap()
            .tables
            .len(),
        2
    );
}
both!(plain_migrate_asks_for_an_adoption);

async fn adoption_keeps_every_row_its_id_and_its_values(backend: Backend) {
    let test_db = old_console(backend).await;
    let clock = TestClock::fixed();
    let before = test_db.client(RUNBOOK_SELECT);
    let everything = "SELECT id, created_at, admin_id, action, target_type, target_id, payload \
                      FROM console_audit_log ORDER BY id";
    let old_rows = test_db.client(everything);
    let flags = "SELECT flag_key, env, value, updated_at, updated_by FROM console_feature_flags \
                 ORDER BY flag_key, env";
    let old_flags = test_db.client(flags);

    let report = test_db.db.adopt(clock.now(), false).await.unwrap();
    assert_eq!(
        (report.flags, report.audit_rows, report.last_old_audit_id),
        (4, 5, 9)
    );
    assert_eq!(report.old_admins, [3, 7]);
    assert_eq!(report.accounts_from, 1_000_000);
    assert!(report.committed);
    assert_eq!(report.migrations.applied.first().map(|m| m.0), Some(1));
    test_db.db.check_migrated().await.unwrap();
    assert!(test_db.db.migrate().await.unwrap().applied.is_empty());

    // The runbook's SELECT, verbatim, returns the old rows exactly as before.
    assert_eq!(test_db.client(RUNBOOK_SELECT), before);
    assert!(before.contains("|7|"), "{before}");
    assert!(
        test_db
            .client(&format!("{} LIMIT 5", everything.trim_end_matches(';')))
            .starts_with(&old_rows)
    );
    assert_eq!(test_db.client(flags), old_flags);

    // Each flag row names the audit row that says vexil found it so.
    let log = audit_log(&test_db.db).await;
    let adopted: Vec<(&str, &serde_json::Value)> = log
        .iter()
        .filter(|row| row.action == "console.flag.adopt")
        .map(|row| (row.target_id.as_str(), &row.payload["env"]))
        .collect();
    assert_eq!(adopted.len(), 4);
    for row in test_db.db.flag_rows().await.unwrap() {
        let audit_id = row.audit_id.expect("an adopted row names its audit row");
        let named = log.iter().find(|a| a.id == audit_id).unwrap();
        assert_eq!(named.action, "console.flag.adopt");
        assert_eq!(named.target_id, row.flag_key);
        assert_eq!(named.payload["env"], row.env.as_str());
        assert_eq!(named.payload["value"], row.value);
    }
    // The old admins' rows are marked as theirs, before vexil.
    let old = log.iter().find(|row| row.id == 2).unwrap();
    assert_eq!(
        old.old_admin().map(|a| a.to_string()).as_deref(),
        Some("console admin #7 (before vexil)")
    );
    assert_eq!(old.admin_name.as_deref(), Some("console_admin_7"));
    let placeholders: Vec<(String, bool)> = test_db
        .db
        .users()
        .await
        .unwrap()
        .into_iter()
        .map(|u| (u.name, u.disabled))
        .collect();
    assert_eq!(
        placeholders,
        [
            ("console_admin_3".to_owned(), true),
            ("console_admin_7".to_owned(), true)
        ]
    );
    let adoption = test_db.db.adoption().await.unwrap().unwrap();
    assert_eq!(
        (adoption.last_old_audit_id, adoption.accounts_from),
        (9, 1_000_000)
    );
}
both!(adoption_keeps_every_row_its_id_and_its_values);

async fn after_adoption_ids_continue_writes_are_audited_and_the_chain_holds(backend: Backend) {
    let test_db = old_console(backend).await;
    let clock = TestClock::fixed();
    test_db.db.adopt(clock.now(), false).await.unwrap();
    let newest_old = audit_log(&test_db.db).await[0].id;
    assert_eq!(
        newest_old,
        9 + 2 + 4,
        "2 placeholders and 4 flag rows adopted"
    );

    // A vexil account is numbered above every old admin id.
    let mut tx = test_db.db.begin_write().await.unwrap();
    let user = NewUser {
        name: "alice",
        role: "ops",
        password_hash: "x",
        created_at: clock.now(),
    };
    let audit = NewAudit {
        created_at: clock.now(),
        admin_id: None,
        action: "console.user.add",
        target_type: "user",
        target_id: "alice".to_owned(),
        payload: serde_json::json!({"name": "alice", "role": "ops", "via": "cli"}),
    };
    let alice = tx.insert_user(&user, &audit).await.unwrap();
    tx.commit().await.unwrap();
    assert_eq!(alice, 1_000_000);

    // vexil's flip, then the runbook's Option A: each audited once, after the old rows.
    clock.advance(TimeDelta::seconds(1));
    let flip = write(
        &test_db.db,
        "dark_mode",
        "prod",
        false,
        "alice",
        clock.now(),
    )
    .await;
    assert_eq!(flip, newest_old + 2);
    test_db.client(RUNBOOK_OPTION_A);
    let log = audit_log(&test_db.db).await;
    assert_eq!(log[0].id, flip + 1);
    assert_eq!(
        (
            log[0].admin_id,
            &log[0].payload["via"],
            &log[0].payload["to"]
        ),
        (None, &serde_json::json!("sql"), &serde_json::json!(true))
    );
    let runbook = test_db.client(RUNBOOK_SELECT);
    assert_eq!(runbook.lines().count(), 4 + 2, "{runbook}");

    // The chain seals the old rows with the new ones, and verifies.
    let sealed = test_db.db.seal_audit().await.unwrap();
    assert_eq!(sealed.sealed, log.len() as u64);
    let verified = test_db
        .db
        .verify_audit(None, &|_| Proof::NotChecked)
        .await
        .unwrap()
        .expect("the chain holds");
    assert_eq!(verified.sealed, log.len() as u64);
    assert_eq!(
        test_db.db.audit_proofs_since().await.unwrap(),
        newest_old,
        "rows up to the adoption's own are written before proofs existed"
    );
}
both!(after_adoption_ids_continue_writes_are_audited_and_the_chain_holds);

async fn the_adopted_schema_is_a_fresh_one(backend: Backend) {
    let adopted = old_console(backend).await;
    adopted
        .db
        .adopt(TestClock::fixed().now(), false)
        .await
        .unwrap();
    let fresh = TestDb::new(backend).await;
    assert_eq!(schema(&adopted, backend), schema(&fresh, backend));
    assert_eq!(
        adopted.db.broken_guards().await.unwrap(),
        Vec::<String>::new()
    );
}
both!(the_adopted_schema_is_a_fresh_one);

async fn a_rehearsal_changes_nothing(backend: Backend) {
    let test_db = old_console(backend).await;
    let before = schema_and_rows(&test_db, backend);
    let report = test_db
        .db
        .adopt(TestClock::fixed().now(), true)
        .await
        .unwrap();
    assert!(!report.committed);
    assert_eq!((report.flags, report.audit_rows), (4, 5));
    assert_eq!(schema_and_rows(&test_db, backend), before);
}
both!(a_rehearsal_changes_nothing);

async fn there_is_nothing_to_adopt_in_a_vexil_or_an_empty_database(backend: Backend) {
    let now = TestClock::fixed().now();
    let vexil = TestDb::new(backend).await;
    let error = vexil.db.adopt(now, false).await.unwrap_err();
    assert!(
        error
            .to_string()
            .ends_with(": it is vexil's already; `vexil migrate` applies what it lacks"),
        "{error}"
    );
    let empty = TestDb::unmigrated(backend).await;
    let error = empty.db.adopt(now, false).await.unwrap_err();
    assert!(
        error.to_string().ends_with(
            ": it holds neither console_feature_flags nor console_audit_log (is DATABASE_URL the old console's database?)"
        ),
        "{error}"
    );
    assert!(empty.db.runbook_tables().await.unwrap().is_none());
}
both!(there_is_nothing_to_adopt_in_a_vexil_or_an_empty_database);

/// The schema and every row of the runbook's tables: what a refused or rehearsed
/// adoption must leave as it was.
pub(crate) fn schema_and_rows(test_db: &TestDb, backend: Backend) -> String {
    let catalog = match backend {
        Backend::Sqlite => {
            "SELECT type, name, tbl_name, sql FROM sqlite_master ORDER BY type, name"
        }
        Backend::Postgres => {
            "SELECT c.relname, c.relkind, a.attname, format_type(a.atttypid, a.atttypmod) \
             FROM pg_class c LEFT JOIN pg_attribute a ON a.attrelid = c.oid AND a.attnum > 0 \
             WHERE c.relnamespace = 'public'::regnamespace ORDER BY 1, 3"
        }
    };
    [
        catalog,
        "SELECT * FROM console_audit_log ORDER BY id",
        "SELECT * FROM console_feature_flags ORDER BY flag_key, env",
    ]
    .iter()
    .map(|sql| test_db.client(sql))
    .collect::<Vec<_>>()
    .join("\n")
}
