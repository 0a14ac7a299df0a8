//! The three PostgreSQL roles of docs/deploy.md: the schema's owner migrates; vexil
//! runs as a runtime role (`vexil db grants --runtime`, `vexil serve --no-migrate`);
//! the runbook's Option A runs as a break-glass role that may only UPDATE
//! `console_feature_flags`. Neither of the two can switch a guard off, replace a
//! trigger function or rewrite the audit log; the break-glass role cannot even read
//! accounts or sessions.

use vexil_store::Backend;
use vexil_testkit::{TestDb, fails, ok};

use crate::serve::Server;
use crate::site::Site;

/// A migrated database with an account, its runtime and break-glass roles granted
/// exactly what `vexil db grants` prints, and a site for each role.
async fn three_roles() -> (TestDb, Site, String, String) {
    let test_db = TestDb::new(Backend::Postgres).await;
    let runtime = test_db.role("runtime").await;
    let break_glass = test_db.role("breakglass").await;
    let owner = Site::new(test_db.url_string());
    let grants = ok(&owner.run(&[
        "db",
        "grants",
        "--runtime",
        &runtime,
        "--break-glass",
        &break_glass,
    ]))
    .to_owned();
    assert!(
        grants.contains(&format!(
            "GRANT SELECT, UPDATE (value, updated_at) ON \"public\".console_feature_flags TO \"{break_glass}\";"
        )),
        "{grants}"
    );
    test_db.execute(&grants).await.unwrap();
    let mut site = Site::new(test_db.postgres_url_as(&runtime));
    site.secret_key = Some("3c".repeat(32));
    (test_db, site, runtime, break_glass)
}

/// Every table of the schema has its line in the runtime grants: a table added by a
/// migration without one would fail vexil at run time under the role split.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn every_table_has_a_runtime_grant() {
    let test_db = TestDb::new(Backend::Postgres).await;
    let site = Site::new(test_db.url_string());
    let grants = ok(&site.run(&["db", "grants", "--runtime", "rt"])).to_owned();
    let tables =
        test_db.client("SELECT tablename FROM pg_tables WHERE schemaname = 'public' ORDER BY 1");
    for table in tables.lines() {
        assert!(
            grants.contains(&format!("ON \"public\".{table} TO \"rt\"")),
            "no grant for {table}:\n{grants}"
        );
    }
    fails(
        &site.run(&["db", "grants", "--runtime", "same", "--break-glass", "same"]),
        2,
        "error: --break-glass must be another role than --runtime\n",
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn vexil_runs_as_the_runtime_role() {
    let (test_db, site, runtime, _) = three_roles().await;
    // It cannot migrate: the owner does.
    let refused = site.run(&["migrate"]);
    assert_eq!(refused.code, Some(2), "{refused:?}");
    ok(&site.run_with_stdin(
        &["user", "add", "olive", "--role", "ops"],
        "a long enough password\n",
    ));
    ok(&site.run(&[
        "flip",
        "dark_mode",
        "--env",
        "prod",
        "--on",
        "--as",
        "olive",
        "--reason",
        "INC-1",
    ]));
    let verified = ok(&site.run(&["audit", "verify"])).to_owned();
    assert!(
        verified.starts_with("audit log intact: 2 rows sealed in order, head 2:"),
        "{verified}"
    );
    assert!(
        verified.ends_with("2 rows prove vexil wrote them\n"),
        "{verified}"
    );

    let server = Server::spawn(site.command(&["serve", "--bind", "127.0.0.1:0", "--no-migrate"]));
    let line = server.wait_for("vexil listening on http://");
    assert!(!line.is_empty());
    drop(server);

    // What the runtime role cannot do, each refused by the database itself.
    for (sql, error) in [
        (
            "ALTER TABLE console_audit_log DISABLE TRIGGER console_audit_log_no_update_or_delete",
            "must be owner of table console_audit_log",
        ),
        (
            "CREATE OR REPLACE FUNCTION console_audit_log_append_only() RETURNS trigger \
             LANGUAGE plpgsql AS $$ BEGIN RETURN NEW; END; $$",
            // PostgreSQL 15 on: no CREATE on `public` for PUBLIC; before: not the owner.
            "permission denied for schema public|must be owner of function console_audit_log_append_only",
        ),
        (
            "UPDATE console_audit_log SET payload = '{}' WHERE id = 2",
            "permission denied for table console_audit_log",
        ),
        (
            "DELETE FROM console_audit_seals",
            "permission denied for table console_audit_seals",
        ),
        (
            "TRUNCATE console_audit_log",
            "permission denied for table console_audit_log",
        ),
        (
            "CREATE TABLE console_audit_log_copy (id BIGINT)",
            "permission denied for schema public",
        ),
        (
            "CREATE TEMP TABLE console_audit_log (id BIGINT)",
            "permission denied to create temporary tables",
        ),
    ] {
        let refused = test_db.execute_as(&runtime, sql).await.unwrap_err();
        assert!(
            error.split('|').any(|e| refused.contains(e)),
            "{sql}: {refused}"
        );
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn option_a_runs_as_the_break_glass_role_and_nothing_else() {
    let (test_db, site, _, break_glass) = three_roles().await;
    ok(&site.run_with_stdin(
        &["user", "add", "olive", "--role", "ops"],
        "a long enough password\n",
    ));
    ok(&site.run(&[
        "flip",
        "dark_mode",
        "--env",
        "prod",
        "--on",
        "--as",
        "olive",
    ]));
    // The runbook's statement, verbatim, as the break-glass role: applied and audited.
    test_db
        .execute_as(
            &break_glass,
            "UPDATE console_feature_flags SET value=0, updated_at=CURRENT_TIMESTAMP \
             WHERE flag_key='dark_mode' AND env='prod';",
        )
        .await
        .unwrap();
    assert_eq!(
        test_db
            .client(
                "SELECT admin_id IS NULL, payload->>'from', payload->>'to', payload->>'via' \
                 FROM console_audit_log ORDER BY id DESC LIMIT 1"
            )
            .trim(),
        "t|true|false|sql"
    );
    let verified = ok(&site.run(&["audit", "verify"])).to_owned();
    assert!(
        verified.starts_with("audit log intact: 3 rows sealed"),
        "{verified}"
    );

    for (sql, error) in [
        (
            "INSERT INTO console_audit_log (action, target_type, target_id, payload) \
             VALUES ('console.flag.flip', 'feature_flag', 'dark_mode', '{}')",
            "permission denied for table console_audit_log",
        ),
        (
            "UPDATE console_feature_flags SET audit_id = 1 WHERE flag_key = 'dark_mode'",
            "permission denied for table console_feature_flags",
        ),
        (
            "INSERT INTO console_feature_flags (flag_key, env, value) VALUES ('x', 'prod', 1)",
            "permission denied for table console_feature_flags",
        ),
        (
            "DELETE FROM console_feature_flags",
            "permission denied for table console_feature_flags",
        ),
        ("SELECT * FROM users", "permission denied for table users"),
        (
            "INSERT INTO console_sessions (id_hash, data, expires_at) VALUES ('\\x00', '{}', now())",
            "permission denied for table console_sessions",
        ),
        (
            "ALTER TABLE console_feature_flags DISABLE TRIGGER console_feature_flags_sql_update",
            "must be owner of table console_feature_flags",
        ),
        (
            "CREATE OR REPLACE FUNCTION console_feature_flags_audit_update() RETURNS trigger \
             LANGUAGE plpgsql AS $$ BEGIN RETURN NEW; END; $$",
            "permission denied for schema public|must be owner of function console_feature_flags_audit_update",
        ),
    ] {
        let refused = test_db.execute_as(&break_glass, sql).await.unwrap_err();
        assert!(
            error.split('|').any(|e| refused.contains(e)),
            "{sql}: {refused}"
        );
    }
}
