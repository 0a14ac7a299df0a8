//! `App::doctor` on real evidence, both databases: a world where every checklist item
//! passes (live processes of both envs reporting, rows flipped through vexil, an
//! enrolled superadmin, a clean source tree), and one where each item fails for its
//! own reason (a process with the master switch off, a variable without a row, a row
//! written while a guard was dropped, an undeclared row, a superadmin without TOTP,
//! a direct read in code).

use vexil_app::code_scan::scan_trees;
use vexil_app::{Admin, Flip};
use vexil_core::Role;
use vexil_core::audit::Via;
use vexil_core::doctor::{Check, Outcome, passes};
use vexil_store::Backend;
use vexil_testkit::{TestDb, Workdir, live_instance};

use crate::{TestApp, both};

fn item<'a>(checks: &'a [Check], id: &str) -> &'a Check {
    checks
        .iter()
        .find(|c| c.id == id)
        .unwrap_or_else(|| panic!("no item {id} in {checks:#?}"))
}

#[track_caller]
fn check(checks: &[Check], id: &str, outcome: Outcome, evidence: &[&str]) {
    let found = item(checks, id);
    assert_eq!(found.outcome, outcome, "{id}: {found:#?}");
    for needle in evidence {
        assert!(
            found.evidence.iter().any(|e| e.contains(needle)),
            "{id}: no evidence containing {needle:?} in {:#?}",
            found.evidence
        );
    }
}

async fn flip(t: &TestApp, root: &vexil_app::Actor, key: &str, env: &str, to: bool) {
    let flip = Flip {
        flag: crate::key(key),
        env: crate::env(env),
        expected_from: None,
        to,
        reason: None,
        via: Via::Cli,
    };
    crate::flip_as(&t.app, root, &flip).await.unwrap();
}

async fn every_item_passes_in_a_migrated_world(backend: Backend) {
    let test_db = TestDb::new(backend).await;
    let vars = [
        ("FLAG_CONSOLE_FEATURE_FLAGS_DB", "1"),
        ("FLAG_DARK_MODE", "1"),
    ];
    let staging = live_instance(test_db.url_string(), "staging", &vars).await;
    let prod = live_instance(test_db.url_string(), "prod", &vars).await;
    let t = TestApp::on(test_db, &[]);
    let root = t.account("root", Role::Superadmin).await;
    t.app.enrol_totp(Admin::Cli, "root").await.unwrap();
    // An ops account without TOTP is fine: only superadmins must have it.
    t.account("olive", Role::Ops).await;
    flip(&t, &root, "dark_mode", "staging", true).await;
    flip(&t, &root, "dark_mode", "prod", false).await;
    let code = Workdir::new();
    code.write(
        "views.py",
        "from flags import flags\nflags.is_on('dark_mode')\n",
    );

    let checks = t
        .app
        .doctor(
            Some(&scan_trees(&[code.path().to_owned()]).unwrap()),
            &[],
            None,
        )
        .await
        .unwrap();
    assert!(passes(&checks), "{checks:#?}");
    check(
        &checks,
        "master_switch",
        Outcome::Pass,
        &["staging: 1 live", "prod: 1 live"],
    );
    check(
        &checks,
        "variables_dormant",
        Outcome::Pass,
        &["2 variable(s) still set"],
    );
    check(&checks, "migrated_flips", Outcome::Pass, &["2 row(s)"]);
    check(&checks, "code_reads", Outcome::Pass, &["none found"]);
    check(&checks, "migrations", Outcome::Pass, &[]);
    check(&checks, "audit_guards", Outcome::Pass, &[]);
    check(&checks, "undeclared_rows", Outcome::Pass, &[]);
    check(
        &checks,
        "superadmin_totp",
        Outcome::Pass,
        &["1 superadmin(s)"],
    );
    // Without a source tree, the scan is skipped and the checklist still passes.
    let checks = t.app.doctor(None, &[], None).await.unwrap();
    check(&checks, "code_reads", Outcome::Skipped, &["--code DIR"]);
    assert!(passes(&checks));
    drop((staging, prod));
}
both!(every_item_passes_in_a_migrated_world);

async fn each_item_fails_with_its_evidence(backend: Backend) {
    let test_db = TestDb::new(backend).await;
    // staging: one process on the DB layer, one the runbook's Option B left off it.
    let on = live_instance(
        test_db.url_string(),
        "staging",
        &[("FLAG_CONSOLE_FEATURE_FLAGS_DB", "1")],
    )
    .await;
    let off = live_instance(
        test_db.url_string(),
        "staging",
        &[
            ("FLAG_CONSOLE_FEATURE_FLAGS_DB", "0"),
            ("FLAG_EMAIL_DIGEST_BATCHING", "1"),
        ],
    )
    .await;
    // prod: nobody reports.
    let t = TestApp::on(test_db, &[]);
    t.account("root", Role::Superadmin).await;
    let disabled = t.account("old_admin", Role::Superadmin).await;
    t.app
        .disable_user(Admin::Cli, disabled.name())
        .await
        .unwrap();

    // A row written while its audit trigger was gone: no flip entry for it.
    let (drop_guard, insert) = match backend {
        Backend::Sqlite => (
            "DROP TRIGGER console_feature_flags_sql_insert",
            "INSERT INTO console_feature_flags (flag_key, env, value, updated_at) \
             VALUES ('csv_export_streaming', 'staging', 1, CURRENT_TIMESTAMP)",
        ),
        Backend::Postgres => (
            "ALTER TABLE console_feature_flags DISABLE TRIGGER console_feature_flags_sql_insert",
            "INSERT INTO console_feature_flags (flag_key, env, value, updated_at) \
             VALUES ('csv_export_streaming', 'staging', 1, now())",
        ),
    };
    t.execute(drop_guard).await;
    t.execute(insert).await;
    // A row no declaration claims (audited by the insert trigger's sibling, if any).
    let undeclared = match backend {
        Backend::Sqlite => {
            "INSERT INTO console_feature_flags (flag_key, env, value, updated_at) \
             VALUES ('retired_flag', 'prod', 0, CURRENT_TIMESTAMP)"
        }
        Backend::Postgres => {
            "INSERT INTO console_feature_flags (flag_key, env, value, updated_at) \
             VALUES ('retired_flag', 'prod', 0, now())"
        }
    };
    t.execute(undeclared).await;
    let code = Workdir::new();
    code.write(
        "flags.py",
        "import os\n\nDARK = os.environ.get(\"FLAG_DARK_MODE\")\n",
    );

    let checks = t
        .app
        .doctor(
            Some(&scan_trees(&[code.path().to_owned()]).unwrap()),
            &[],
            None,
        )
        .await
        .unwrap();
    assert!(!passes(&checks));
    check(
        &checks,
        "master_switch",
        Outcome::Fail,
        &[
            "staging: not on for 1 of 2 live processes",
            "(off)",
            "prod: no live process reports",
        ],
    );
    check(
        &checks,
        "variables_dormant",
        Outcome::Fail,
        &["FLAG_EMAIL_DIGEST_BATCHING in staging: no DB row"],
    );
    check(
        &checks,
        "migrated_flips",
        Outcome::Fail,
        &["csv_export_streaming in staging: a DB row but no console.flag.flip entry"],
    );
    check(
        &checks,
        "code_reads",
        Outcome::Fail,
        &["flags.py:3:8: FLAG_DARK_MODE (python)"],
    );
    check(&checks, "migrations", Outcome::Pass, &[]);
    let guard = match backend {
        Backend::Sqlite => "trigger console_feature_flags_sql_insert is missing",
        Backend::Postgres => "trigger console_feature_flags_sql_insert is disabled",
    };
    check(&checks, "audit_guards", Outcome::Fail, &[guard]);
    check(
        &checks,
        "undeclared_rows",
        Outcome::Fail,
        &["retired_flag in prod"],
    );
    // The disabled superadmin is not asked for TOTP.
    let totp = item(&checks, "superadmin_totp");
    assert_eq!(totp.outcome, Outcome::Fail);
    assert_eq!(
        totp.evidence,
        ["root: no TOTP enrolled (vexil user totp root)"]
    );
    drop((on, off));
}
both!(each_item_fails_with_its_evidence);

/// A database vexil has not migrated is an answer, not an error.
async fn an_old_schema_is_reported(backend: Backend) {
    let test_db = TestDb::new(backend).await;
    let t = TestApp::on(test_db, &[]);
    t.execute("DROP TABLE console_promotions").await;
    t.execute("DELETE FROM _sqlx_migrations WHERE version = 5")
        .await;
    let checks = t.app.doctor(None, &[], None).await.unwrap();
    check(&checks, "migrations", Outcome::Fail, &["vexil migrate"]);
    check(
        &checks,
        "superadmin_totp",
        Outcome::Fail,
        &["not checked: the database's schema is not current"],
    );
    assert!(!passes(&checks));
}
both!(an_old_schema_is_reported);
