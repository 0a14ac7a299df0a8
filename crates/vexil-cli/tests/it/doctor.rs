//! `vexil doctor` from the real binary, both databases: exit 1 with each failing
//! item's evidence, exit 0 once the world meets the GA checklist, `--json`, a direct
//! read found by `--code` (and not in an ignored file), a missing tree named, and a
//! database vexil has not migrated reported rather than refused, and `--gone` naming
//! the processes (of which app) that still carry a variable.

use serde_json::Value;
use vexil_core::EnvSnapshot;
use vexil_store::Backend;
use vexil_testkit::{
    TestDb, Workdir, both, example_flags, fails, live_instance, ok, start_instance,
};

use crate::site::Site;

async fn the_checklist_from_the_binary(backend: Backend) {
    let test_db = TestDb::new(backend).await;
    let mut site = Site::new(test_db.url_string());
    // PostgreSQL has no key file for TOTP secrets.
    site.secret_key = Some("5a".repeat(32));
    ok(&site.run_with_stdin(
        &["user", "add", "root", "--role", "superadmin"],
        "a long enough password",
    ));
    let vars = [
        ("FLAG_CONSOLE_FEATURE_FLAGS_DB", "1"),
        ("FLAG_DARK_MODE", "1"),
    ];
    let staging = live_instance(test_db.url_string(), "staging", &vars).await;
    let prod = live_instance(test_db.url_string(), "prod", &vars).await;

    // Before migrating dark_mode: its variable decides, root has no TOTP.
    let run = site.run(&["doctor"]);
    assert_eq!(run.code, Some(1), "{run:?}");
    assert!(
        run.stdout.contains("FAIL     variables_dormant"),
        "{}",
        run.stdout
    );
    assert!(
        run.stdout.contains("FLAG_DARK_MODE in staging: no DB row"),
        "{}",
        run.stdout
    );
    assert!(
        run.stdout.contains("root: no TOTP enrolled"),
        "{}",
        run.stdout
    );
    assert!(run.stdout.contains("skipped  code_reads"), "{}", run.stdout);
    assert!(
        run.stdout.ends_with("5 passed, 2 failed, 2 skipped\n"),
        "{}",
        run.stdout
    );

    // The runbook's migration: a flip per env, TOTP for the superadmin.
    for env in ["staging", "prod"] {
        ok(&site.run(&["flip", "dark_mode", "--env", env, "--off", "--as", "root"]));
    }
    ok(&site.run(&["user", "totp", "root"]));
    let code = Workdir::new();
    code.write(".gitignore", "legacy.js\n");
    code.write("legacy.js", "const x = process.env.FLAG_DARK_MODE;\n");
    code.write("app.js", "flags.isOn('dark_mode');\n");
    let tree = code.path().to_str().unwrap();
    let run = site.run(&[
        "doctor",
        "--code",
        tree,
        "--gone",
        "FLAG_CONSOLE_FLAG_MGMT",
        "--json",
    ]);
    let report: Value = serde_json::from_str(ok(&run)).unwrap();
    assert_eq!(report["passed"], true, "{report:#}");
    let outcomes: Vec<(&str, &str)> = report["checks"]
        .as_array()
        .unwrap()
        .iter()
        .map(|c| (c["id"].as_str().unwrap(), c["outcome"].as_str().unwrap()))
        .collect();
    assert_eq!(
        outcomes,
        [
            ("master_switch", "pass"),
            ("variables_dormant", "pass"),
            ("migrated_flips", "pass"),
            ("variables_gone", "pass"),
            ("code_reads", "pass"),
            ("migrations", "pass"),
            ("audit_guards", "pass"),
            ("undeclared_rows", "pass"),
            ("superadmin_totp", "pass"),
        ]
    );

    // A direct read that is not ignored fails the scan, as file:line:col.
    code.write(
        "views.py",
        "import os\nDARK = os.getenv('FLAG_DARK_MODE')\n",
    );
    let run = site.run(&["doctor", "--code", tree]);
    assert_eq!(run.code, Some(1), "{run:?}");
    assert!(
        run.stdout.contains("views.py:2:8: FLAG_DARK_MODE (python)"),
        "{}",
        run.stdout
    );
    assert!(!run.stdout.contains("legacy.js"), "{}", run.stdout);
    // The generic helper the runbook's grep lists: a dynamic name, failing alike.
    code.write(
        "views.py",
        "import os\n\ndef is_on(key):\n    return os.environ.get(\"FLAG_\" + key.upper(), \"0\")\n",
    );
    let run = site.run(&["doctor", "--code", tree]);
    assert_eq!(run.code, Some(1), "{run:?}");
    assert!(
        run.stdout.contains(
            "views.py:4:12: FLAG_{…} (python, dynamic name): return os.environ.get(\"FLAG_\" + key.upper(), \"0\")"
        ),
        "{}",
        run.stdout
    );
    // A tree that is not there: could not run.
    let missing = site.run(&["doctor", "--code", "/no/such/tree"]);
    assert_eq!(missing.code, Some(2), "{missing:?}");
    assert!(missing.stderr.contains("/no/such/tree"), "{missing:?}");

    // The feature's own gate, still set on one app's process: the GA item fails and
    // names it; read for the other app alone, it passes.
    let gate = start_instance(
        vexil::Flags::builder()
            .env("prod")
            .flag_set(example_flags())
            .env_vars(EnvSnapshot::capture([
                ("FLAG_CONSOLE_FEATURE_FLAGS_DB", "1"),
                ("FLAG_CONSOLE_FLAG_MGMT", "1"),
            ]))
            .database_url(test_db.url_string())
            .application("raxx-console-prod"),
    )
    .await;
    let run = site.run(&["doctor", "--gone", "FLAG_CONSOLE_FLAG_MGMT"]);
    assert_eq!(run.code, Some(1), "{run:?}");
    assert!(
        run.stdout.contains("FAIL     variables_gone")
            && run
                .stdout
                .contains("FLAG_CONSOLE_FLAG_MGMT in prod: still set on ")
            && run.stdout.contains(" of raxx-console-prod"),
        "{}",
        run.stdout
    );
    let run = site.run(&["doctor", "--gone", "FLAG_CONSOLE_FLAG_MGMT", "--app", "web"]);
    assert!(
        run.stdout.contains("pass     variables_gone"),
        "{}",
        run.stdout
    );
    let bad = site.run(&["doctor", "--gone", "console_flag_mgmt"]);
    assert_eq!(bad.code, Some(2), "{bad:?}");
    assert!(
        bad.stderr
            .contains("invalid value 'console_flag_mgmt' for '--gone <VAR>'")
            && bad
                .stderr
                .contains("expected FLAG_ followed by upper-case letters"),
        "{bad:?}"
    );
    drop((staging, prod, gate));
}
both!(the_checklist_from_the_binary);

/// Every other command refuses an unmigrated database; doctor reports it.
async fn an_unmigrated_database_is_reported(backend: Backend) {
    let test_db = TestDb::unmigrated(backend).await;
    let site = Site::new(test_db.url_string());
    fails(
        &site.run(&["flags", "list"]),
        2,
        &format!(
            "error: the database {} is not migrated (at migration 0, this vexil needs 9): run `vexil migrate`\n",
            test_db.url()
        ),
    );
    let run = site.run(&["doctor"]);
    assert_eq!(run.code, Some(1), "{run:?}");
    assert!(run.stdout.contains("FAIL     migrations"), "{}", run.stdout);
    assert!(
        run.stdout
            .contains("not checked: the database's schema is not current"),
        "{}",
        run.stdout
    );
}
both!(an_unmigrated_database_is_reported);
