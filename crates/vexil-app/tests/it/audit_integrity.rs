//! The audit log's hash chain and proofs of authorship, attacked as the role each
//! attack needs: the schema's owner rewriting history with its guards off, a writer
//! forging a row, an archive edited after export.

use std::sync::Arc;

use vexil_app::{App, ExportFormat, Flip, StepUp};
use vexil_core::Role;
use vexil_core::audit::Via;
use vexil_core::audit_chain::{Anchor, Fault};
use vexil_store::Backend;

use crate::{TestApp, both};

fn flip<'a>(flag_key: &'a str, env: &'a str, to: bool) -> Flip<'a> {
    Flip {
        flag: crate::key(flag_key),
        env: crate::env(env),
        expected_from: None,
        to,
        reason: Some("INC-7"),
        via: Via::Cli,
    }
}

/// An account, three flips by it and one runbook UPDATE by direct SQL, sealed: rows
/// 1 (the account), 2–4 (flips), 5 (the UPDATE's row).
async fn world(backend: Backend) -> (TestApp, Anchor) {
    let t = TestApp::new(backend, &[]).await;
    let ops = t.account("olivia", Role::Ops).await;
    for (env, to) in [("staging", true), ("prod", true), ("staging", false)] {
        t.app
            .flip(&ops, &flip("dark_mode", env, to), StepUp::None)
            .await
            .unwrap();
    }
    t.execute(
        "UPDATE console_feature_flags SET value=0, updated_at=CURRENT_TIMESTAMP \
         WHERE flag_key='dark_mode' AND env='prod'",
    )
    .await;
    let head = t.app.audit_head().await.unwrap().expect("rows were sealed");
    assert_eq!(head.id, 5);
    let check = t.app.verify_audit(Some(head)).await.unwrap();
    let found = check.outcome.unwrap();
    assert_eq!((found.sealed, found.pending, found.proven), (5, 0, 4));
    assert_eq!(found.anchor, Some(head));
    assert!(check.attribution_checked);
    (t, head)
}

/// `sql` run as the schema's owner with the audit log's guards switched off, the way
/// an owner would rewrite history.
async fn as_owner_unguarded(t: &TestApp, backend: Backend, sql: &str) {
    match backend {
        Backend::Postgres => {
            t.execute(&format!(
                "ALTER TABLE console_audit_log DISABLE TRIGGER USER; {sql}; \
                 ALTER TABLE console_audit_log ENABLE TRIGGER USER"
            ))
            .await;
        }
        Backend::Sqlite => {
            t.execute(&format!(
                "DROP TRIGGER IF EXISTS console_audit_log_no_update; \
                 DROP TRIGGER IF EXISTS console_audit_log_no_delete; \
                 DROP TRIGGER IF EXISTS console_audit_log_no_replace; {sql}"
            ))
            .await;
        }
    }
}

async fn fault(app: &App, anchor: Option<Anchor>) -> Fault {
    app.verify_audit(anchor).await.unwrap().outcome.unwrap_err()
}

async fn one_changed_byte_is_named(backend: Backend) {
    let (t, head) = world(backend).await;
    let set = match backend {
        Backend::Postgres => "payload = jsonb_set(payload, '{reason}', '\"INC-8\"')",
        Backend::Sqlite => "payload = json_set(payload, '$.reason', 'INC-8')",
    };
    as_owner_unguarded(
        &t,
        backend,
        &format!("UPDATE console_audit_log SET {set} WHERE id = 3"),
    )
    .await;
    assert_eq!(fault(&t.app, None).await, Fault::Changed { id: 3 });
    assert_eq!(fault(&t.app, Some(head)).await, Fault::Changed { id: 3 });
}
both!(one_changed_byte_is_named);

async fn a_deleted_row_is_named(backend: Backend) {
    let (t, _) = world(backend).await;
    as_owner_unguarded(&t, backend, "DELETE FROM console_audit_log WHERE id = 2").await;
    assert_eq!(fault(&t.app, None).await, Fault::Removed { id: 2 });
    let message = fault(&t.app, None).await.to_string();
    assert_eq!(message, "audit row 2 was removed after it was sealed");
}
both!(a_deleted_row_is_named);

async fn swapped_rows_are_named_as_reordered(backend: Backend) {
    let (t, _) = world(backend).await;
    let swap = match backend {
        Backend::Postgres => {
            "UPDATE console_audit_log a SET created_at = b.created_at, admin_id = b.admin_id, \
             action = b.action, target_type = b.target_type, target_id = b.target_id, \
             payload = b.payload, mac = b.mac FROM console_audit_log b \
             WHERE (a.id = 2 AND b.id = 3) OR (a.id = 3 AND b.id = 2)"
        }
        Backend::Sqlite => {
            "UPDATE console_audit_log AS a SET created_at = b.created_at, admin_id = b.admin_id, \
             action = b.action, target_type = b.target_type, target_id = b.target_id, \
             payload = b.payload, mac = b.mac FROM (SELECT * FROM console_audit_log) AS b \
             WHERE (a.id = 2 AND b.id = 3) OR (a.id = 3 AND b.id = 2)"
        }
    };
    as_owner_unguarded(
        &t,
        backend,
        &format!("DROP INDEX IF EXISTS console_audit_log_mac; {swap}"),
    )
    .await;
    assert_eq!(
        fault(&t.app, None).await,
        Fault::Reordered {
            id: 2,
            sealed_as: 3
        }
    );
}
both!(swapped_rows_are_named_as_reordered);

async fn a_row_inserted_with_an_old_id_is_named(backend: Backend) {
    let t = TestApp::new(backend, &[]).await;
    let ops = t.account("olivia", Role::Ops).await;
    let overriding = match backend {
        Backend::Postgres => "OVERRIDING SYSTEM VALUE",
        Backend::Sqlite => "",
    };
    let payload =
        r#"'{"flag": "dark_mode", "env": "prod", "from": false, "to": true, "via": "sql"}'"#;
    // A gap in the ids (as rolled-back transactions leave on PostgreSQL), then rows
    // after it, sealed.
    t.execute(&format!(
        "INSERT INTO console_audit_log (id, admin_id, action, target_type, target_id, payload) \
         {overriding} VALUES (100, NULL, 'console.flag.flip', 'feature_flag', 'dark_mode', {payload})"
    ))
    .await;
    t.app
        .flip(&ops, &flip("dark_mode", "staging", true), StepUp::None)
        .await
        .unwrap();
    t.app.seal_audit().await.unwrap();
    assert!(t.app.verify_audit(None).await.unwrap().outcome.is_ok());
    // Later, a row slipped into the gap, dated back: it is not in the chain.
    t.execute(&format!(
        "INSERT INTO console_audit_log (id, created_at, admin_id, action, target_type, target_id, payload) \
         {overriding} VALUES (50, '2026-01-01 00:00:00', NULL, 'console.flag.flip', 'feature_flag', 'dark_mode', {payload})"
    ))
    .await;
    assert_eq!(fault(&t.app, None).await, Fault::NotInChain { id: 50 });
}
both!(a_row_inserted_with_an_old_id_is_named);

async fn an_anchor_from_another_database_is_refused(backend: Backend) {
    let (t, head) = world(backend).await;
    let (other, other_head) = world(backend).await;
    // Same ids, other rows: the anchor's row is there with another hash.
    assert_eq!(
        fault(&t.app, Some(other_head)).await,
        Fault::AnchorMismatch { anchor: other_head }
    );
    let beyond = Anchor {
        id: head.id + 100,
        hash: head.hash,
    };
    assert_eq!(
        fault(&other.app, Some(beyond)).await,
        Fault::AnchorMissing { anchor: beyond }
    );
}
both!(an_anchor_from_another_database_is_refused);

/// The owner recomputes the whole chain after an edit (the seals table emptied and
/// sealed again): every link follows. Editing the direct-SQL row (no proof to
/// break), only the anchor kept outside tells; editing one of vexil's rows, its proof
/// tells too.
async fn a_rewritten_chain_is_caught_by_its_anchor(backend: Backend) {
    let (t, head) = world(backend).await;
    let (set, unguard_seals) = match backend {
        Backend::Postgres => (
            "payload = jsonb_set(payload, '{to}', 'true')",
            "ALTER TABLE console_audit_seals DISABLE TRIGGER USER; DELETE FROM console_audit_seals; \
             ALTER TABLE console_audit_seals ENABLE TRIGGER USER",
        ),
        Backend::Sqlite => (
            "payload = json_set(payload, '$.to', json('true'))",
            "DROP TRIGGER console_audit_seals_no_delete; DELETE FROM console_audit_seals",
        ),
    };
    as_owner_unguarded(
        &t,
        backend,
        &format!("UPDATE console_audit_log SET {set} WHERE id = 5; {unguard_seals}"),
    )
    .await;
    t.app.seal_audit().await.unwrap();
    assert!(
        t.app.verify_audit(None).await.unwrap().outcome.is_ok(),
        "without an anchor, a chain recomputed by its owner looks intact"
    );
    assert_eq!(
        fault(&t.app, Some(head)).await,
        Fault::AnchorMismatch { anchor: head }
    );
    let unguard_again = match backend {
        Backend::Postgres => unguard_seals,
        Backend::Sqlite => "DELETE FROM console_audit_seals",
    };
    as_owner_unguarded(
        &t,
        backend,
        &format!(
            "UPDATE console_audit_log SET {} WHERE id = 3; {unguard_again}",
            set.replace("true", "false")
        ),
    )
    .await;
    t.app.seal_audit().await.unwrap();
    assert_eq!(fault(&t.app, None).await, Fault::Forged { id: 3 });
}
both!(a_rewritten_chain_is_caught_by_its_anchor);

/// A writer with the runtime's rights (not the key) inserts a flip "by olivia, via
/// the console" and points the flag row at it in the same transaction, so the
/// trigger takes it for vexil's write and no `via: sql` row appears. The row carries
/// no valid proof: verify names it, and the pages show it as direct SQL.
async fn a_forged_attribution_is_named(backend: Backend) {
    let (t, _) = world(backend).await;
    let sql = match backend {
        Backend::Postgres => {
            "BEGIN; \
             WITH forged AS (INSERT INTO console_audit_log (admin_id, action, target_type, target_id, payload) \
               VALUES (1, 'console.flag.flip', 'feature_flag', 'dark_mode', \
               '{\"flag\": \"dark_mode\", \"env\": \"prod\", \"from\": false, \"to\": true, \"via\": \"console\"}') RETURNING id) \
             UPDATE console_feature_flags SET value = 1, updated_by = 'olivia', audit_id = (SELECT id FROM forged) \
             WHERE flag_key = 'dark_mode' AND env = 'prod'; COMMIT"
        }
        Backend::Sqlite => {
            "BEGIN; \
             INSERT INTO console_audit_log (admin_id, action, target_type, target_id, payload) \
               VALUES (1, 'console.flag.flip', 'feature_flag', 'dark_mode', \
               json_object('flag', 'dark_mode', 'env', 'prod', 'from', json('false'), 'to', json('true'), 'via', 'console')); \
             UPDATE console_feature_flags SET value = 1, updated_by = 'olivia', audit_id = last_insert_rowid() \
             WHERE flag_key = 'dark_mode' AND env = 'prod'; COMMIT"
        }
    };
    t.execute(sql).await;
    let rows = t.app.db().flag_rows().await.unwrap();
    let prod = rows.iter().find(|r| r.env == "prod").unwrap();
    assert_eq!(
        (prod.value, prod.audit_id, prod.updated_by.as_deref()),
        (true, Some(6), Some("olivia")),
        "the trigger took the forged row for vexil's own write"
    );
    assert_eq!(fault(&t.app, None).await, Fault::Forged { id: 6 });
    let page = t
        .app
        .db()
        .audit_page(&vexil_store::AuditFilter {
            limit: 1,
            ..Default::default()
        })
        .await
        .unwrap();
    assert_eq!(page[0].id, 6);
    assert!(!t.app.audit_row_proven(&page[0].chain_row()).await.unwrap());
}
both!(a_forged_attribution_is_named);

/// Two servers seal while flips land on both: one chain, every row in it once.
async fn two_servers_seal_one_chain(backend: Backend) {
    let t = TestApp::new(backend, &[]).await;
    let ops = t.account("olivia", Role::Ops).await;
    // Two processes, each with a pool of its own (no secret key: the chain is what
    // this test is about).
    let servers = [Arc::new(t.another().await), Arc::new(t.another().await)];
    let stop = Arc::new(std::sync::atomic::AtomicBool::new(false));
    let sealers: Vec<_> = servers
        .clone()
        .into_iter()
        .map(|app| {
            let stop = stop.clone();
            tokio::spawn(async move {
                while !stop.load(std::sync::atomic::Ordering::Relaxed) {
                    app.seal_audit().await.unwrap();
                    tokio::time::sleep(std::time::Duration::from_millis(2)).await;
                }
            })
        })
        .collect();
    let flips = servers.clone().into_iter().enumerate().map(|(n, app)| {
        let ops = ops.clone();
        tokio::spawn(async move {
            for i in 0..15 {
                let env = if n == 0 { "staging" } else { "prod" };
                app.flip(&ops, &flip("dark_mode", env, i % 2 == 0), StepUp::None)
                    .await
                    .unwrap();
            }
        })
    });
    for task in flips.collect::<Vec<_>>() {
        task.await.unwrap();
    }
    stop.store(true, std::sync::atomic::Ordering::Relaxed);
    for task in sealers {
        task.await.unwrap();
    }
    servers[0].seal_audit().await.unwrap();
    let check = servers[1].verify_audit(None).await.unwrap();
    assert!(!check.attribution_checked);
    let found = check.outcome.unwrap();
    assert_eq!((found.sealed, found.pending), (31, 0));
}
both!(two_servers_seal_one_chain);

/// Rows committed by a process that died before sealing them are sealed by the next
/// one, in order; until then verify reports them as pending, not as faults.
async fn rows_left_unsealed_by_a_crash_are_sealed_later(backend: Backend) {
    let (t, head) = world(backend).await;
    let ops = t.app.actor("olivia").await.unwrap();
    t.app
        .flip(&ops, &flip("dark_mode", "prod", true), StepUp::None)
        .await
        .unwrap();
    assert_eq!(t.app.db().audit_unsealed().await.unwrap().0, 1);
    let sealed = t.app.seal_audit().await.unwrap();
    assert_eq!((sealed.sealed, sealed.head.map(|h| h.id)), (1, Some(6)));
    let found = t
        .app
        .verify_audit(Some(head))
        .await
        .unwrap()
        .outcome
        .unwrap();
    assert_eq!((found.sealed, found.pending), (6, 0));
}
both!(rows_left_unsealed_by_a_crash_are_sealed_later);

async fn export(app: &App, format: ExportFormat) -> String {
    let mut out = Vec::new();
    app.export_audit(None, None, format, &mut out)
        .await
        .unwrap();
    String::from_utf8(out).unwrap()
}

fn verify_file(app: &App, text: &str, anchor: Option<Anchor>) -> Result<Result<(), Fault>, String> {
    app.verify_audit_file("audit.jsonl", text.as_bytes(), anchor)
        .map(|check| check.outcome.map(|_| ()))
        .map_err(|e| e.to_string())
}

async fn an_export_verifies_without_the_database_and_edits_are_named(backend: Backend) {
    let (t, head) = world(backend).await;
    for format in [ExportFormat::Jsonl, ExportFormat::Csv] {
        let text = export(&t.app, format).await;
        assert_eq!(
            verify_file(&t.app, &text, Some(head)),
            Ok(Ok(())),
            "{format:?}"
        );
        // One payload byte edited.
        let edited = text.replacen("INC-7", "INC-8", 1);
        assert_eq!(
            verify_file(&t.app, &edited, None),
            Ok(Err(Fault::Changed { id: 2 })),
            "{format:?}"
        );
    }
    let text = export(&t.app, ExportFormat::Jsonl).await;
    let lines: Vec<&str> = text.lines().collect();
    // A line removed.
    let without_third = [&lines[..2], &lines[3..]].concat().join("\n");
    assert_eq!(
        verify_file(&t.app, &without_third, None),
        Ok(Err(Fault::Removed { id: 3 }))
    );
    // Cut short mid-line: the broken line is named.
    let cut = &text[..text.len() - 20];
    let error = verify_file(&t.app, cut, None).unwrap_err();
    assert!(
        error.starts_with("audit.jsonl:5: not an exported audit row"),
        "{error}"
    );
    // Cut at a line boundary: the chain holds, but the anchor is not in it.
    let short = lines[..4].join("\n");
    assert_eq!(
        verify_file(&t.app, &short, Some(head)),
        Ok(Err(Fault::AnchorMissing { anchor: head }))
    );
    // An export from the middle verifies on its own, tied to the whole by the anchor.
    let tail = lines[2..].join("\n");
    assert_eq!(verify_file(&t.app, &tail, Some(head)), Ok(Ok(())));
}
both!(an_export_verifies_without_the_database_and_edits_are_named);

/// `vexil doctor`'s guards item, as evidence lines; empty when it passes.
async fn guard_failures(app: &App) -> Vec<String> {
    let checks = app.doctor(None, &[], None).await.unwrap();
    let guards = checks.iter().find(|c| c.id == "audit_guards").unwrap();
    match guards.outcome {
        vexil_core::doctor::Outcome::Pass => Vec::new(),
        _ => guards.evidence.clone(),
    }
}

/// The guards are checked as they are, not by name: a function body replaced with
/// `RETURN NEW` (PostgreSQL), its search_path unpinned, a trigger re-created with
/// another body (SQLite), and a row changed behind the chain all fail the item.
async fn doctor_checks_what_the_guards_do_not_only_their_names(backend: Backend) {
    let (t, _) = world(backend).await;
    assert_eq!(guard_failures(&t.app).await, Vec::<String>::new());
    match backend {
        Backend::Postgres => {
            t.execute(
                "CREATE OR REPLACE FUNCTION console_audit_log_append_only() RETURNS trigger \
                 LANGUAGE plpgsql AS $$ BEGIN RETURN NEW; END; $$; \
                 ALTER FUNCTION console_feature_flags_changed() RESET search_path",
            )
            .await;
            assert_eq!(
                guard_failures(&t.app).await,
                [
                    "function console_audit_log_append_only was replaced (its body is not the one vexil installed)",
                    // CREATE OR REPLACE drops what ALTER FUNCTION had set.
                    "function console_audit_log_append_only is not SECURITY DEFINER",
                    "function console_audit_log_append_only does not pin its search_path (search_path=pg_catalog, public, pg_temp)",
                    "function console_feature_flags_changed does not pin its search_path (search_path=pg_catalog, public, pg_temp)",
                ]
            );
        }
        Backend::Sqlite => {
            t.execute(
                "DROP TRIGGER console_audit_log_no_update; \
                 CREATE TRIGGER console_audit_log_no_update BEFORE UPDATE ON console_audit_log \
                 BEGIN SELECT 1; END",
            )
            .await;
            assert_eq!(
                guard_failures(&t.app).await,
                [
                    "trigger console_audit_log_no_update was replaced (its definition is not the one vexil installed)"
                ]
            );
        }
    }
    // With the guard gone, a row is rewritten: the chain says which.
    t.execute("UPDATE console_audit_log SET target_id = 'other' WHERE id = 4")
        .await;
    let failures = guard_failures(&t.app).await;
    assert_eq!(
        failures.last().map(String::as_str),
        Some("audit chain: audit row 4 was changed after it was sealed")
    );
}
both!(doctor_checks_what_the_guards_do_not_only_their_names);

/// A genuine row of vexil's, copied whole (its proof included) under a new id, to
/// make an old flip count again: PostgreSQL refuses the copy (the proof is unique);
/// on SQLite the proof names the original id, so the copy carries no valid proof.
async fn a_copied_row_carries_no_proof(backend: Backend) {
    let (t, _) = world(backend).await;
    let copy = "INSERT INTO console_audit_log (created_at, admin_id, action, target_type, target_id, payload, mac) \
                SELECT created_at, admin_id, action, target_type, target_id, payload, mac \
                FROM console_audit_log WHERE id = 3";
    match backend {
        Backend::Postgres => {
            let refused = t.try_execute(copy).await.unwrap_err();
            assert!(refused.contains("console_audit_log_mac"), "{refused}");
        }
        Backend::Sqlite => {
            t.execute(copy).await;
            assert_eq!(fault(&t.app, None).await, Fault::Forged { id: 6 });
        }
    }
}
both!(a_copied_row_carries_no_proof);
