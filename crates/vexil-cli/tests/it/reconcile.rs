//! `vexil reconcile` end to end from the real binary, both databases: a process
//! running with the master switch off and `FLAG_DARK_MODE=1` (the runbook's Option
//! B) while prod's row says off; the binary lists it with its offer, refuses a flip
//! without a reason (writing nothing), writes the reconciling flip with one, and then
//! finds nothing left but the process still off the DB layer.

use serde_json::Value;
use vexil_core::EnvSnapshot;
use vexil_store::Backend;
use vexil_testkit::{TestDb, both, example_flags, fails, live_instance, ok, start_instance};

use crate::site::Site;

async fn option_b_reconciled_from_the_binary(backend: Backend) {
    let test_db = TestDb::new(backend).await;
    let site = Site::new(test_db.url_string());
    ok(&site.run_with_stdin(
        &["user", "add", "root", "--role", "superadmin"],
        "a long enough password",
    ));
    ok(&site.run(&["flip", "dark_mode", "--env", "prod", "--on", "--as", "root"]));
    ok(&site.run(&[
        "flip",
        "dark_mode",
        "--env",
        "prod",
        "--off",
        "--as",
        "root",
    ]));
    let listed = ok(&site.run(&["reconcile"])).to_owned();
    assert_eq!(
        listed,
        "nothing to reconcile: every live process runs what its env's DB rows say\n"
    );

    let process = live_instance(
        test_db.url_string(),
        "prod",
        &[
            ("FLAG_CONSOLE_FEATURE_FLAGS_DB", "0"),
            ("FLAG_DARK_MODE", "1"),
        ],
    )
    .await;
    let listed = ok(&site.run(&["reconcile"])).to_owned();
    assert!(
        listed.starts_with("prod: the master switch is not on for "),
        "{listed}"
    );
    assert!(
        listed.contains("dark_mode in prod: the DB row says off; 1 of 1 live process(es) differ"),
        "{listed}"
    );
    assert!(
        listed.contains("runs on: master switch off, its variable on gives on"),
        "{listed}"
    );
    assert!(
        listed.contains(
            "offer: a reconciling flip to on (it changes no process's value): vexil reconcile --flip dark_mode --env prod"
        ),
        "{listed}"
    );
    let json: Value = serde_json::from_str(ok(&site.run(&["reconcile", "--json"]))).unwrap();
    assert_eq!(json["findings"][0]["flag"], "dark_mode");
    assert_eq!(json["findings"][0]["flip_to"], true);
    assert_eq!(json["findings"][0]["proposed"], true);
    assert_eq!(json["findings"][0]["following"], 0);
    assert_eq!(json["findings"][0]["divergent"][0]["cause"], "master_off");
    assert_eq!(json["master_off"][0]["env"], "prod");

    // Without a reason: refused, nothing written.
    let audit_before = ok(&site.run(&["audit", "--json"])).to_owned();
    let refused = site.run(&[
        "reconcile",
        "--flip",
        "dark_mode",
        "--env",
        "prod",
        "--as",
        "root",
        "--reason",
        " ",
    ]);
    fails(
        &refused,
        1,
        "error: cannot reconcile dark_mode in prod: a reason is required (it goes into the audit row); nothing was changed\n",
    );
    assert_eq!(ok(&site.run(&["audit", "--json"])), audit_before);

    let done = ok(&site.run(&[
        "reconcile",
        "--flip",
        "dark_mode",
        "--env",
        "prod",
        "--as",
        "root",
        "--reason",
        "INC-42: break-glass on web",
    ]))
    .to_owned();
    assert!(
        done.starts_with("dark_mode in prod: off -> on, a reconciling flip (audit row "),
        "{done}"
    );
    let audit: Value = serde_json::from_str(ok(&site.run(&["audit", "--json"]))).unwrap();
    let newest = &audit[0];
    assert_eq!(newest["action"], "console.flag.flip", "{audit:#}");
    assert_eq!(newest["payload"]["reconcile"], true);
    assert_eq!(newest["payload"]["via"], "cli");
    assert_eq!(newest["payload"]["reason"], "INC-42: break-glass on web");

    let listed = ok(&site.run(&["reconcile"])).to_owned();
    assert!(listed.contains("nothing to reconcile"), "{listed}");
    assert!(
        listed.starts_with("prod: the master switch is not on"),
        "{listed}"
    );
    drop(process);
}
both!(option_b_reconciled_from_the_binary);

/// The runbook's likely layout: the app on Option B, the console (`vexil serve`) still
/// on the DB layer and following the row. The console serves no product traffic, so
/// the reconciling flip is still offered, followed by the silenced command that turns
/// the app's DB layer back on.
async fn vexil_servers_following_the_row_do_not_block_the_offer(backend: Backend) {
    let test_db = TestDb::new(backend).await;
    let site = Site::new(test_db.url_string());
    ok(&site.run_with_stdin(
        &["user", "add", "root", "--role", "superadmin"],
        "a long enough password",
    ));
    for to in ["--on", "--off"] {
        ok(&site.run(&["flip", "dark_mode", "--env", "prod", to, "--as", "root"]));
    }
    let process = |app: &str, vars: &[(&str, &str)]| {
        start_instance(
            vexil::Flags::builder()
                .env("prod")
                .flag_set(example_flags())
                .env_vars(EnvSnapshot::capture(vars.iter().copied()))
                .database_url(test_db.url_string())
                .application(app),
        )
    };
    let console = process(
        vexil_app::VEXIL_SERVE_APP,
        &[("FLAG_CONSOLE_FEATURE_FLAGS_DB", "1")],
    )
    .await;
    let app = process(
        "raxx-console-prod",
        &[
            ("FLAG_CONSOLE_FEATURE_FLAGS_DB", "0"),
            ("FLAG_DARK_MODE", "1"),
        ],
    )
    .await;
    let json: Value = serde_json::from_str(ok(&site.run(&["reconcile", "--json"]))).unwrap();
    let finding = &json["findings"][0];
    assert_eq!(
        (
            &finding["proposed"],
            &finding["following"],
            &finding["servers_following"],
            &finding["reenable"]
        ),
        (
            &Value::Bool(true),
            &Value::from(0),
            &Value::from(1),
            &serde_json::json!(["raxx-console-prod"])
        ),
        "{json:#}"
    );
    let listed = ok(&site.run(&["reconcile"])).to_owned();
    assert!(
        listed.contains("offer: a reconciling flip to on (it changes no process's value)")
            && listed.contains("(1 vexil serve process(es) follow the row")
            && listed.contains(
                "    heroku config:set FLAG_CONSOLE_FEATURE_FLAGS_DB=1 --app raxx-console-prod >/dev/null 2>&1\n"
            ),
        "{listed}"
    );
    drop((console, app));
}
both!(vexil_servers_following_the_row_do_not_block_the_offer);
