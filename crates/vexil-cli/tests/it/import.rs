//! `vexil import` through the real binary, both databases: `heroku config --json`
//! output and a dotenv file on stdin each write one audited row per flag (`"via":
//! "import"`, `from` the value in force); the master switch is noted, not imported;
//! a dry run writes nothing; a bad line in each format is named by `file:line` and
//! nothing is written; rows that exist are kept (and `--overwrite` writes over them);
//! a row that would change what live processes run is refused; the role matrix holds;
//! and a secret from the file appears nowhere: not on stdout, not on stderr, not in
//! the database.

use serde_json::{Value, json};
use vexil_store::Backend;
use vexil_testkit::{Run, TestDb, both, fails, live_instance, ok};

use crate::site::Site;

/// Values the config files hold that must never leave them.
const SECRETS: [&str; 3] = ["S3cr3t-pa55", "sk_live_51SECRETVALUE", "maybe-s3cret"];

/// `heroku config --json --app raxx-console-prod`, as Heroku prints it.
const HEROKU_JSON: &str = r#"{
  "DATABASE_URL": "postgres://console:S3cr3t-pa55@db.internal/console",
  "FLAG_CONSOLE_FEATURE_FLAGS_DB": "1",
  "FLAG_DARK_MODE": "1",
  "FLAG_SEARCH_INDEX_V3": "off",
  "STRIPE_SECRET_KEY": "sk_live_51SECRETVALUE"
}
"#;

/// A dotenv file: comments, a blank line, `export`, quotes, a comment after a value,
/// a multi-line quoted secret whose lines look like variables, a shell-quoted value.
const DOTENV: &str = "\
# raxx-console-staging, from `heroku config --shell`
export DATABASE_URL='postgres://console:S3cr3t-pa55@db.internal/console'

FLAG_CONSOLE_FEATURE_FLAGS_DB=0
FLAG_DARK_MODE=\"on\"   # the new look
PRIVATE_KEY=\"-----BEGIN KEY-----
FLAG_EMAIL_DIGEST_BATCHING=1
sk_live_51SECRETVALUE
-----END KEY-----\"
export FLAG_SEARCH_INDEX_V3='no'
QUOTED='it'\\''s'
";

/// A migrated database with `root` (superadmin) and `olive` (ops).
async fn site(backend: Backend) -> (TestDb, Site) {
    let test_db = TestDb::new(backend).await;
    let mut site = Site::new(test_db.url_string());
    // PostgreSQL has no key file for TOTP secrets.
    site.secret_key = Some("3c".repeat(32));
    for (name, role) in [("root", "superadmin"), ("olive", "ops")] {
        ok(&site.run_with_stdin(
            &["user", "add", name, "--role", role],
            "a long enough password\n",
        ));
    }
    (test_db, site)
}

/// The rows as `(flag, env, value, updated_by)`.
fn rows(test_db: &TestDb) -> String {
    test_db.client(
        "SELECT flag_key, env, value, updated_by FROM console_feature_flags ORDER BY flag_key, env",
    )
}

/// The `console.flag.flip` rows' payloads, oldest first.
fn flips(site: &Site) -> Vec<Value> {
    let audit: Value = serde_json::from_str(ok(&site.run(&[
        "audit",
        "--action",
        "console.flag.flip",
        "--json",
    ])))
    .unwrap();
    let mut payloads: Vec<Value> = audit
        .as_array()
        .unwrap()
        .iter()
        .map(|row| {
            assert_eq!(row["actor"], "root", "{row}");
            row["payload"].clone()
        })
        .collect();
    payloads.reverse();
    payloads
}

/// The whole database as text, the way its own tools dump it.
fn dump(test_db: &TestDb) -> String {
    let output = match test_db.url().sqlite_file() {
        Some(file) => std::process::Command::new("sqlite3")
            .arg(file)
            .arg(".dump")
            .output(),
        None => std::process::Command::new("pg_dump")
            .arg(test_db.url_string())
            .output(),
    }
    .expect("the database's dump tool runs");
    assert!(output.status.success(), "{output:?}");
    String::from_utf8_lossy(&output.stdout).into_owned()
}

#[track_caller]
fn no_secret(what: &str, text: &str) {
    for secret in SECRETS {
        assert!(!text.contains(secret), "{what} shows a secret: {text}");
    }
}

/// Neither the run's output nor the database holds any of [`SECRETS`].
#[track_caller]
fn nothing_leaked(run: &Run, test_db: &TestDb) {
    no_secret("stdout", &run.stdout);
    no_secret("stderr", &run.stderr);
    let dump = dump(test_db);
    assert!(dump.contains("console_audit_log"), "not a dump: {dump}");
    no_secret("the database", &dump);
}

async fn heroku_json_writes_one_audited_row_per_flag(backend: Backend) {
    let (test_db, site) = site(backend).await;
    site.dir.write("heroku.json", HEROKU_JSON);
    let run = site.run(&[
        "import",
        "--env",
        "prod",
        "--from",
        "heroku.json",
        "--as",
        "root",
    ]);
    assert_eq!(
        ok(&run),
        "heroku.json (json): 3 FLAG_* variable(s) for prod; 2 other variable(s) ignored, not shown\n\
         heroku.json:3: FLAG_CONSOLE_FEATURE_FLAGS_DB: the master switch, on: processes that run this config follow the DB rows; not a flag, not imported\n\
         heroku.json:4: FLAG_DARK_MODE=on: write a row on (from on): no prod row, and no live process of prod reports: the file is taken as what runs, so nothing changes in force\n\
         heroku.json:5: FLAG_SEARCH_INDEX_V3=off: write a row off (from off): no prod row, and no live process of prod reports: the file is taken as what runs, so nothing changes in force\n\
         wrote 2 row(s) in prod as root, each with its console.flag.flip audit row (via import): 3, 4; kept 0\n"
    );
    // The master switch is no flag: no row for it.
    assert_eq!(
        rows(&test_db),
        "dark_mode|prod|1|root\nsearch_index_v3|prod|0|root\n"
    );
    assert_eq!(
        flips(&site),
        [
            json!({"flag": "dark_mode", "env": "prod", "from": true, "to": true, "via": "import"}),
            json!({"flag": "search_index_v3", "env": "prod", "from": false, "to": false, "via": "import"}),
        ]
    );
    nothing_leaked(&run, &test_db);
}
both!(heroku_json_writes_one_audited_row_per_flag);

async fn a_dotenv_file_on_stdin(backend: Backend) {
    let (test_db, site) = site(backend).await;
    let run = site.run_with_stdin(
        &[
            "import",
            "--env",
            "staging",
            "--from",
            "-",
            "--as",
            "root",
            "--reason",
            "adopt vexil",
        ],
        DOTENV,
    );
    let stdout = ok(&run);
    for line in [
        "stdin (dotenv): 3 FLAG_* variable(s) for staging; 3 other variable(s) ignored, not shown\n",
        "stdin:4: FLAG_CONSOLE_FEATURE_FLAGS_DB: the master switch, off: processes that run this config ignore the DB rows",
        "stdin:5: FLAG_DARK_MODE=on: write a row on (from on)",
        "stdin:10: FLAG_SEARCH_INDEX_V3=off: write a row off (from off)",
        "wrote 2 row(s) in staging as root",
    ] {
        assert!(stdout.contains(line), "{line:?} not in {stdout}");
    }
    // The variable inside the quoted key is part of its value, not a variable.
    assert_eq!(
        rows(&test_db),
        "dark_mode|staging|1|root\nsearch_index_v3|staging|0|root\n"
    );
    let payloads = flips(&site);
    assert_eq!(payloads.len(), 2);
    assert_eq!(
        payloads[0],
        json!({"flag": "dark_mode", "env": "staging", "from": true, "to": true, "via": "import", "reason": "adopt vexil"})
    );
    nothing_leaked(&run, &test_db);
}
both!(a_dotenv_file_on_stdin);

async fn a_dry_run_writes_nothing(backend: Backend) {
    let (test_db, site) = site(backend).await;
    site.dir.write("heroku.json", HEROKU_JSON);
    site.dir.write("staging.env", DOTENV);
    let audit_before = ok(&site.run(&["audit", "--json"])).to_owned();
    for (file, env) in [("heroku.json", "prod"), ("staging.env", "staging")] {
        let run = site.run(&[
            "import",
            "--env",
            env,
            "--from",
            file,
            "--dry-run",
            "--as",
            "root",
        ]);
        let stdout = ok(&run);
        assert!(
            stdout.ends_with(
                "dry run: nothing written; the import would write 2 row(s) and keep 0; as root: allowed\n"
            ),
            "{stdout}"
        );
        assert!(stdout.contains(&format!("{file}:")), "{stdout}");
        nothing_leaked(&run, &test_db);
    }
    // Without --as too, and as JSON: the plan, each variable with its line.
    let run = site.run(&[
        "import",
        "--env",
        "prod",
        "--from",
        "heroku.json",
        "--dry-run",
        "--json",
    ]);
    let plan: Value = serde_json::from_str(ok(&run)).unwrap();
    assert_eq!(
        (
            &plan["dry_run"],
            &plan["ignored"],
            &plan["written"],
            &plan["actor"]
        ),
        (&json!(true), &json!(2), &json!([]), &Value::Null)
    );
    assert_eq!(
        plan["items"][0],
        json!({"key": "dark_mode", "variable": "FLAG_DARK_MODE", "line": 4, "value": true,
            "risk": "low", "row": null, "step": "write", "from": true,
            "why": "no prod row, and no live process of prod reports: the file is taken as what runs, so nothing changes in force"})
    );
    assert_eq!(plan["master"]["line"], 3);
    assert_eq!(rows(&test_db), "");
    assert_eq!(ok(&site.run(&["audit", "--json"])), audit_before);
}
both!(a_dry_run_writes_nothing);

async fn a_bad_line_in_each_format_is_named_and_nothing_is_written(backend: Backend) {
    let (test_db, site) = site(backend).await;
    let audit_before = ok(&site.run(&["audit", "--json"])).to_owned();
    let import =
        |file: &str| site.run(&["import", "--env", "prod", "--from", file, "--as", "root"]);
    let refused = |run: &Run, lines: &[&str]| {
        assert_eq!(run.code, Some(1), "{run:?}");
        assert_eq!(run.stderr_lines(), lines, "{run:?}");
        nothing_leaked(run, &test_db);
    };

    // JSON: an undeclared key, a value that is no on/off spelling, a good line.
    site.dir.write(
        "bad.json",
        "{\n  \"FLAG_SEARCH_INDEX_V3\": \"1\",\n  \"FLAG_NOT_A_FLAG\": \"1\",\n  \"FLAG_DARK_MODE\": \"maybe-s3cret\"\n}\n",
    );
    let run = import("bad.json");
    refused(
        &run,
        &[
            "bad.json:3: FLAG_NOT_A_FLAG: no flag in the flags file has this variable (a flag's is FLAG_ and its key upper-cased): declare the flag first, or leave the line out",
            "bad.json:4: FLAG_DARK_MODE: its value is none of 1, true, on, yes, 0, false, off, no (not shown)",
            "error: import refused: 2 line(s) of bad.json; nothing was written",
        ],
    );
    // The good line is in the plan, and still not written.
    assert!(
        run.stdout
            .contains("bad.json:2: FLAG_SEARCH_INDEX_V3=on: write"),
        "{run:?}"
    );

    // dotenv: the same refusals, and a name set twice to two values.
    site.dir.write(
        "bad.env",
        "FLAG_DARK_MODE=maybe-s3cret\nexport FLAG_NOT_A_FLAG=1\nFLAG_SEARCH_INDEX_V3=1\nFLAG_SEARCH_INDEX_V3=0\n",
    );
    refused(
        &import("bad.env"),
        &[
            "bad.env:1: FLAG_DARK_MODE: its value is none of 1, true, on, yes, 0, false, off, no (not shown)",
            "bad.env:2: FLAG_NOT_A_FLAG: no flag in the flags file has this variable (a flag's is FLAG_ and its key upper-cased): declare the flag first, or leave the line out",
            "bad.env:4: FLAG_SEARCH_INDEX_V3: set again, to another value than on line 3",
            "error: import refused: 3 line(s) of bad.env; nothing was written",
        ],
    );

    // Files that do not parse: the line (and column), never its text.
    site.dir
        .write("broken.env", "FLAG_DARK_MODE=1\nmaybe-s3cret\n");
    fails(
        &import("broken.env"),
        2,
        "error: broken.env:2: not NAME=VALUE (the line is not shown: it may hold a secret)\n",
    );
    site.dir
        .write("open.env", "FLAG_DARK_MODE=1\nKEY=\"maybe-s3cret\n");
    fails(
        &import("open.env"),
        2,
        "error: open.env:2: a quoted value is never closed\n",
    );
    site.dir.write(
        "broken.json",
        "{\n  \"FLAG_DARK_MODE\": \"1\"\n  \"KEY\": \"maybe-s3cret\"\n}\n",
    );
    fails(
        &import("broken.json"),
        2,
        "error: broken.json:3:3: not valid JSON: expected `,` or `}`\n",
    );
    site.dir.write(
        "table.txt",
        "=== raxx-console-prod Config Vars\nKEY: maybe-s3cret\n",
    );
    fails(
        &import("table.txt"),
        2,
        "error: table.txt:1: this is `heroku config`'s table; give its --json (or --shell) output\n",
    );
    assert_eq!(rows(&test_db), "");
    assert_eq!(ok(&site.run(&["audit", "--json"])), audit_before);
}
both!(a_bad_line_in_each_format_is_named_and_nothing_is_written);

async fn rows_that_exist_are_kept(backend: Backend) {
    let (test_db, site) = site(backend).await;
    for flag in ["dark_mode", "search_index_v3"] {
        ok(&site.run(&["flip", flag, "--env", "prod", "--on", "--as", "root"]));
    }
    site.dir.write(
        "prod.env",
        "FLAG_DARK_MODE=1\nFLAG_SEARCH_INDEX_V3=off\nFLAG_ONBOARDING_CHECKLIST_V2=0\n",
    );
    let import = |extra: &[&str]| {
        let mut args = vec![
            "import", "--env", "prod", "--from", "prod.env", "--as", "root",
        ];
        args.extend_from_slice(extra);
        site.run(&args)
    };
    let stdout = ok(&import(&[])).to_owned();
    for line in [
        "prod.env:1: FLAG_DARK_MODE=on: keep the row (on): the prod row already says on: the variable is dormant",
        "prod.env:2: FLAG_SEARCH_INDEX_V3=off: keep the row (on): the prod row says on and stays in force: the variable is dormant, and differs (it still decides where the master switch is off); --overwrite writes off",
        "prod.env:3: FLAG_ONBOARDING_CHECKLIST_V2=off: write a row off (from off)",
        "wrote 1 row(s) in prod as root, each with its console.flag.flip audit row (via import): 5; kept 2",
    ] {
        assert!(stdout.contains(line), "{line:?} not in {stdout}");
    }
    assert_eq!(
        rows(&test_db),
        "dark_mode|prod|1|root\nonboarding_checklist_v2|prod|0|root\nsearch_index_v3|prod|1|root\n"
    );
    // --overwrite writes over the row that differs, a flip from the row's value.
    let stdout = ok(&import(&["--overwrite"])).to_owned();
    assert!(
        stdout.contains("prod.env:2: FLAG_SEARCH_INDEX_V3=off: write a row off (from on): --overwrite: the prod row said on; it now says off"),
        "{stdout}"
    );
    assert!(stdout.ends_with("(via import): 6; kept 2\n"), "{stdout}");
    assert_eq!(
        flips(&site).last().unwrap(),
        &json!({"flag": "search_index_v3", "env": "prod", "from": true, "to": false, "via": "import"})
    );
}
both!(rows_that_exist_are_kept);

async fn a_row_that_would_change_live_processes_is_refused(backend: Backend) {
    let (test_db, site) = site(backend).await;
    let vars = [
        ("FLAG_CONSOLE_FEATURE_FLAGS_DB", "1"),
        ("FLAG_DARK_MODE", "0"),
        ("FLAG_SEARCH_INDEX_V3", "1"),
    ];
    let web = live_instance(test_db.url_string(), "prod", &vars).await;
    site.dir
        .write("prod.env", "FLAG_DARK_MODE=1\nFLAG_SEARCH_INDEX_V3=1\n");
    let import = |extra: &[&str]| {
        let mut args = vec![
            "import", "--env", "prod", "--from", "prod.env", "--as", "root",
        ];
        args.extend_from_slice(extra);
        site.run(&args)
    };
    let run = import(&[]);
    assert_eq!(run.code, Some(1), "{run:?}");
    let pid = std::process::id();
    let line = &run.stderr_lines()[0];
    assert!(
        line.starts_with("prod.env:1: FLAG_DARK_MODE: a row saying on would change what they run: 1 of 1 live process(es) of prod run off (")
            && line.ends_with(&format!(" pid {pid}); --overwrite writes it anyway, audited as the change it is")),
        "{run:?}"
    );
    assert!(
        run.stdout.contains("prod.env:2: FLAG_SEARCH_INDEX_V3=on: write a row on (from on): no prod row; its 1 live process(es) run on already, so nothing changes in force"),
        "{run:?}"
    );
    assert_eq!(rows(&test_db), "");
    // Said explicitly, it is written as the change it is.
    ok(&import(&["--overwrite"]));
    assert_eq!(
        flips(&site),
        [
            json!({"flag": "dark_mode", "env": "prod", "from": false, "to": true, "via": "import"}),
            json!({"flag": "search_index_v3", "env": "prod", "from": true, "to": true, "via": "import"}),
        ]
    );
    drop(web);
}
both!(a_row_that_would_change_live_processes_is_refused);

async fn the_role_matrix_holds(backend: Backend) {
    let (test_db, site) = site(backend).await;
    site.dir
        .write("prod.env", "FLAG_DARK_MODE=1\nFLAG_CONSOLE_BILLING=0\n");
    let import = |who: &str, extra: &[&str]| {
        let mut args = vec!["import", "--env", "prod", "--from", "prod.env", "--as", who];
        args.extend_from_slice(extra);
        site.run(&args)
    };
    // Importing is a superadmin's act, whatever the risk; ops learns nothing.
    fails(
        &import("olive", &[]),
        1,
        "error: role ops may not import the variable of a low-risk flag: it needs superadmin\n",
    );
    fails(
        &import("olive", &["--dry-run"]),
        1,
        "error: role ops may not import the variable of a low-risk flag: it needs superadmin\n",
    );
    // A high-risk flag's row needs a TOTP code, checked only once the plan holds.
    let run = import("root", &[]);
    assert_eq!(
        (run.code, run.stderr.as_str()),
        (
            Some(1),
            "error: to import the variable of a high-risk flag, elevate with a fresh TOTP code first\n"
        ),
        "{run:?}"
    );
    assert!(
        ok(&import("root", &["--dry-run"]))
            .ends_with("as root: allowed with --totp (a high-risk flag's row)\n")
    );
    assert_eq!(rows(&test_db), "");
    let uri = ok(&site.run(&["user", "totp", "root"])).trim().to_owned();
    let now = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .as_secs();
    let code = vexil_app::code_at(&uri, now).unwrap();
    ok(&import("root", &["--totp", &code]));
    assert_eq!(
        rows(&test_db),
        "console_billing|prod|0|root\ndark_mode|prod|1|root\n"
    );
}
both!(the_role_matrix_holds);
