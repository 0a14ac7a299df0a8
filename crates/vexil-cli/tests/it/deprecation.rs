//! `vexil deprecation`: the runbook's deprecation table from the real binary, with a
//! live process (a `vexil::Flags` handle of this test) reporting its variables.

use serde_json::{Value, json};
use vexil_core::EnvSnapshot;
use vexil_store::Backend;
use vexil_testkit::{TestDb, both, example_flags, fails, live_instance, ok, start_instance};

use crate::site::Site;

async fn the_table_from_the_binary(backend: Backend) {
    let test_db = TestDb::new(backend).await;
    let site = Site::new(test_db.url_string());
    ok(&site.run_with_stdin(
        &["user", "add", "root", "--role", "superadmin"],
        "a long enough password",
    ));
    // A staging process on the DB layer with FLAG_DARK_MODE set, reporting every 100 ms.
    let process = live_instance(
        test_db.url_string(),
        "staging",
        &[
            ("FLAG_CONSOLE_FEATURE_FLAGS_DB", "1"),
            ("FLAG_DARK_MODE", "1"),
        ],
    )
    .await;
    ok(&site.run(&[
        "flip",
        "dark_mode",
        "--env",
        "staging",
        "--off",
        "--as",
        "root",
    ]));

    let listed: Value = serde_json::from_str(ok(&site.run(&["deprecation", "--json"]))).unwrap();
    let line = |flag: &str, env: &str| {
        listed
            .as_array()
            .unwrap()
            .iter()
            .find(|l| l["flag"] == flag && l["env"] == env)
            .cloned()
            .unwrap()
    };
    let staging = line("dark_mode", "staging");
    assert_eq!(
        (
            &staging["variable"],
            &staging["status"],
            &staging["row"],
            &staging["flips"],
            &staging["reporting"]
        ),
        (
            &json!("FLAG_DARK_MODE"),
            &json!("dormant"),
            &json!(false),
            &json!(1),
            &json!(1)
        )
    );
    assert_eq!(staging["set_on"].as_array().unwrap().len(), 1);
    assert_eq!(line("dark_mode", "prod")["status"], "unknown");
    assert_eq!(line("csv_export_streaming", "staging")["status"], "removed");

    let text = ok(&site.run(&["deprecation", "--env", "staging"])).to_owned();
    assert!(text.contains("FLAG_DARK_MODE"), "{text}");
    assert!(!text.contains(" prod "), "only staging's lines: {text}");
    fails(
        &site.run(&["deprecation", "--env", "qa"]),
        2,
        "error: unknown env 'qa' (expected one of: staging, prod)\n",
    );
    drop(process);
}
both!(the_table_from_the_binary);

/// A process of `app` in `env` with these variables, reporting every 100 ms.
async fn process(url: String, env: &str, app: &str, vars: &[(&str, &str)]) -> vexil::Flags {
    start_instance(
        vexil::Flags::builder()
            .env(env)
            .flag_set(example_flags())
            .env_vars(EnvSnapshot::capture(vars.iter().copied()))
            .database_url(url)
            .application(app),
    )
    .await
}

/// The runbook's layout during #553: the console apps on the DB layer, Raptor's app
/// on Option B (master switch off, its variable on). Removing the variable from
/// Raptor's app would change its value: in use there, and so never "safe to remove"
/// for the env; the console's app may drop it, and `--heroku` prints exactly that.
async fn a_variable_is_judged_per_app(backend: Backend) {
    let test_db = TestDb::new(backend).await;
    let site = Site::new(test_db.url_string());
    ok(&site.run_with_stdin(
        &["user", "add", "root", "--role", "superadmin"],
        "a long enough password",
    ));
    let on_db = [
        ("FLAG_CONSOLE_FEATURE_FLAGS_DB", "1"),
        ("FLAG_DARK_MODE", "1"),
    ];
    let url = test_db.url_string();
    let mut processes = vec![
        process(url.clone(), "staging", "raxx-console-staging", &on_db).await,
        process(url.clone(), "prod", "raxx-console-prod", &on_db).await,
    ];
    for env in ["staging", "prod"] {
        ok(&site.run(&["flip", "dark_mode", "--env", env, "--off", "--as", "root"]));
    }
    let status = |args: &[&str]| -> Vec<(String, String)> {
        let listed: Value = serde_json::from_str(ok(&site.run(args))).unwrap();
        listed
            .as_array()
            .unwrap()
            .iter()
            .filter(|l| l["flag"] == "dark_mode")
            .map(|l| {
                let who = l["app"].as_str().unwrap_or(l["env"].as_str().unwrap());
                (who.to_owned(), l["status"].as_str().unwrap().to_owned())
            })
            .collect()
    };
    assert_eq!(
        status(&["deprecation", "--json"]),
        [
            ("staging".to_owned(), "safe_to_remove".to_owned()),
            ("prod".to_owned(), "safe_to_remove".to_owned())
        ]
    );
    processes.push(
        process(
            url.clone(),
            "prod",
            "raxx-api-prod",
            &[
                ("FLAG_CONSOLE_FEATURE_FLAGS_DB", "0"),
                ("FLAG_DARK_MODE", "1"),
            ],
        )
        .await,
    );
    let listed: Value =
        serde_json::from_str(ok(&site.run(&["deprecation", "--json", "--env", "prod"]))).unwrap();
    let prod = listed
        .as_array()
        .unwrap()
        .iter()
        .find(|l| l["flag"] == "dark_mode")
        .unwrap();
    assert_eq!(prod["status"], "in_use");
    assert!(
        prod["because"]
            .as_str()
            .unwrap()
            .contains("(master switch off): removing it would turn the flag OFF"),
        "{prod}"
    );
    assert_eq!(
        status(&["deprecation", "--json", "--by-app"]),
        [
            (
                "raxx-console-staging".to_owned(),
                "safe_to_remove".to_owned()
            ),
            ("raxx-api-prod".to_owned(), "in_use".to_owned()),
            ("raxx-console-prod".to_owned(), "safe_to_remove".to_owned())
        ]
    );
    let commands = ok(&site.run(&["deprecation", "--heroku"])).to_owned();
    let lines: Vec<&str> = commands
        .lines()
        .filter(|l| l.contains("FLAG_DARK_MODE") && !l.starts_with('#'))
        .collect();
    assert_eq!(
        lines,
        [
            "heroku config:unset FLAG_DARK_MODE --app raxx-console-staging >/dev/null 2>&1",
            "heroku config:unset FLAG_DARK_MODE --app raxx-console-prod >/dev/null 2>&1"
        ],
        "{commands}"
    );
    assert!(!commands.contains("--app raxx-api-prod"), "{commands}");
    drop(processes);
}
both!(a_variable_is_judged_per_app);
