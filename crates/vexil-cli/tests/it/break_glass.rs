//! The commands that need a database, through the real binary: `migrate`, `user`,
//! `flags list`, `flip` and `audit`, on a SQLite file and on PostgreSQL, and every
//! bad input with its one-line error and exit code.

use serde_json::Value;
use vexil_store::Backend;
use vexil_testkit::{Run, TestDb, fails, ok};

use crate::VEXIL;
use crate::site::Site;

async fn the_break_glass_path(backend: Backend) {
    let test_db = TestDb::unmigrated(backend).await;
    let mut site = Site::new(test_db.url_string());
    let url = test_db.url_string();

    fails(
        &site.run(&["flags", "list"]),
        2,
        &format!(
            "error: the database {url} is not migrated (at migration 0, this vexil needs 7): run `vexil migrate`\n"
        ),
    );
    assert_eq!(
        ok(&site.run(&["migrate"])),
        format!(
            "{url}: applied migration 0001 init\n{url}: applied migration 0002 change feed\n{url}: applied migration 0003 instances\n{url}: applied migration 0004 sessions\n{url}: applied migration 0005 promotions\n{url}: applied migration 0006 client keys\n{url}: applied migration 0007 audit integrity\n{url}: now at migration 7\n"
        )
    );
    assert_eq!(
        ok(&site.run(&["migrate"])),
        format!("{url}: up to date at migration 7; nothing to apply\n")
    );

    assert_eq!(
        ok(&site.run_with_stdin(
            &["user", "add", "olive", "--role", "ops"],
            "a long enough password\n"
        )),
        "created account 'olive' with role ops\n"
    );
    assert_eq!(
        ok(&site.run_with_stdin(
            &["user", "add", "sam", "--role", "superadmin"],
            "another long password"
        )),
        "created account 'sam' with role superadmin\n"
    );
    fails(
        &site.run_with_stdin(&["user", "add", "eve", "--role", "ops"], ""),
        2,
        "error: no password on stdin: pipe it in, e.g. `vexil user add NAME --role ops < password.txt`\n",
    );
    fails(
        &site.run_with_stdin(
            &["user", "add", "eve", "--role", "admin"],
            "a long enough password",
        ),
        2,
        "error: unknown role 'admin' (expected one of: readonly, support, ops, superadmin)\n",
    );
    let users: Value = serde_json::from_str(ok(&site.run(&["user", "list", "--json"]))).unwrap();
    let names: Vec<&str> = users
        .as_array()
        .unwrap()
        .iter()
        .map(|u| u["name"].as_str().unwrap())
        .collect();
    assert_eq!(names, ["olive", "sam"]);

    assert_eq!(
        ok(&site.run(&[
            "flip",
            "dark_mode",
            "--env",
            "prod",
            "--on",
            "--as",
            "olive",
            "--reason",
            "INC-7"
        ])),
        "dark_mode in prod: off -> on (audit row 3, by olive)\n"
    );
    fails(
        &site.run(&[
            "flip",
            "dark_mode",
            "--env",
            "prod",
            "--on",
            "--as",
            "olive",
        ]),
        1,
        "error: dark_mode in prod is already on; nothing was changed\n",
    );
    fails(
        &site.run(&[
            "flip",
            "search_index_v3",
            "--env",
            "prod",
            "--on",
            "--as",
            "olive",
        ]),
        1,
        "error: role ops may not flip a medium-risk flag: it needs superadmin\n",
    );
    fails(
        &site.run(&[
            "flip",
            "console_billing",
            "--env",
            "prod",
            "--on",
            "--as",
            "sam",
        ]),
        1,
        "error: to flip a high-risk flag, elevate with a fresh TOTP code first\n",
    );
    fails(
        &site.run(&[
            "flip",
            "no_such_flag",
            "--env",
            "prod",
            "--on",
            "--as",
            "olive",
        ]),
        2,
        "error: unknown flag 'no_such_flag': it is not declared in the flags file\n",
    );
    // TOTP: enrol, then a current code elevates one flip, once. PostgreSQL has no
    // key file: without VEXIL_SECRET_KEY, enrolment says what to set.
    if backend == Backend::Postgres {
        let run = site.run(&["user", "totp", "sam"]);
        fails(
            &run,
            2,
            "error: no secret key to encrypt TOTP secrets: set VEXIL_SECRET_KEY to 64 hexadecimal characters\n",
        );
        // A key that is not one is refused, and never taken from the command line,
        // where every user of the machine could read it.
        site.secret_key = Some("2f".repeat(31));
        let run = site.run(&["user", "totp", "sam"]);
        fails(
            &run,
            2,
            "error: VEXIL_SECRET_KEY must be 64 hexadecimal characters (32 bytes)\n",
        );
        let key = "2f".repeat(32);
        let run = site.run(&["--secret-key", &key, "user", "totp", "sam"]);
        assert_eq!(run.code, Some(2), "{run:?}");
        assert!(
            run.stderr.contains("unexpected argument '--secret-key'"),
            "{run:?}"
        );
        assert!(!run.stderr.contains(&key), "{run:?}");
        site.secret_key = Some(key);
    }
    let enrol = site.run(&["user", "totp", "sam"]);
    let uri = ok(&enrol).trim().to_owned();
    assert!(uri.starts_with("otpauth://totp/vexil:sam?secret="), "{uri}");
    assert!(enrol.stderr.contains("it is not shown again"), "{enrol:?}");
    if backend == Backend::Sqlite {
        // No VEXIL_SECRET_KEY: the key file beside the database, created 0600.
        use std::os::unix::fs::PermissionsExt;
        let mut key_file = test_db.url().sqlite_file().unwrap().into_os_string();
        key_file.push(".key");
        let mode = std::fs::metadata(&key_file).unwrap().permissions().mode();
        assert_eq!(mode & 0o777, 0o600);
    }
    let now = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .as_secs();
    let code = vexil_app::code_at(&uri, now).unwrap();
    let flipped = site.run(&[
        "flip",
        "console_billing",
        "--env",
        "prod",
        "--on",
        "--as",
        "sam",
        "--totp",
        &code,
    ]);
    assert!(
        ok(&flipped).starts_with("console_billing in prod: off -> on"),
        "{flipped:?}"
    );
    let replay = [
        "flip",
        "console_billing",
        "--env",
        "prod",
        "--off",
        "--as",
        "sam",
        "--totp",
        code.as_str(),
    ];
    fails(
        &site.run(&replay),
        1,
        "error: the TOTP code was already used: wait for the next one\n",
    );
    let wrong = [
        "flip",
        "console_billing",
        "--env",
        "prod",
        "--off",
        "--as",
        "sam",
        "--totp",
        "00000x",
    ];
    fails(
        &site.run(&wrong),
        1,
        "error: the TOTP code is wrong or expired\n",
    );
    let unenrolled = [
        "flip",
        "dark_mode",
        "--env",
        "prod",
        "--off",
        "--as",
        "olive",
        "--totp",
        "123456",
    ];
    fails(
        &site.run(&unenrolled),
        1,
        "error: account 'olive' has no TOTP enrolled: run `vexil user totp olive`\n",
    );

    // API tokens: printed once, listed by prefix only, revoked for good.
    let token = ok(&site.run(&["token", "create", "olive"]))
        .trim()
        .to_owned();
    assert!(token.starts_with("vxl_") && token.len() == 68, "{token}");
    let tokens: Value = serde_json::from_str(ok(&site.run(&["token", "list", "--json"]))).unwrap();
    assert_eq!(tokens[0]["token"], format!("{}…", &token[..12]));
    assert!(
        !tokens.to_string().contains(&token),
        "the token itself is never listed"
    );
    assert_eq!(
        ok(&site.run(&["token", "revoke", "1"])),
        "API token 1 is revoked\n"
    );
    fails(
        &site.run(&["token", "revoke", "1"]),
        1,
        "error: API token 1 is already revoked\n",
    );

    // A row for a flag the file does not declare (left by direct SQL) does not make it
    // flippable, and the listing points at it.
    let insert = "INSERT INTO console_feature_flags (flag_key, env, value) VALUES ('retired_flag', 'prod', 1)";
    let mut stray = match backend {
        Backend::Sqlite => {
            let mut c = std::process::Command::new("sqlite3");
            c.arg(test_db.url().sqlite_file().unwrap()).arg(insert);
            c
        }
        Backend::Postgres => {
            let mut c = std::process::Command::new("psql");
            c.args([url.as_str(), "-q", "-c", insert]);
            c
        }
    };
    assert!(stray.status().unwrap().success());
    let retired = [
        "flip",
        "retired_flag",
        "--env",
        "prod",
        "--off",
        "--as",
        "olive",
    ];
    fails(
        &site.run(&retired),
        2,
        "error: unknown flag 'retired_flag': it is not declared in the flags file\n",
    );
    let listed = site.run(&["flags", "list", "--env", "prod"]);
    let warning = "warning: the database has a row for 'retired_flag' in prod, which the flags file does not declare";
    assert!(listed.stderr.contains(warning), "{listed:?}");

    fails(
        &site.run(&["flip", "dark_mode", "--env", "qa", "--on", "--as", "olive"]),
        2,
        "error: unknown env 'qa' (expected one of: staging, prod)\n",
    );
    fails(
        &site.run(&[
            "flip",
            "dark_mode",
            "--env",
            "prod",
            "--off",
            "--as",
            "nobody",
        ]),
        2,
        "error: unknown account 'nobody'\n",
    );
    assert_eq!(
        ok(&site.run(&["user", "disable", "olive"])),
        "account 'olive' is disabled\n"
    );
    fails(
        &site.run(&[
            "flip",
            "dark_mode",
            "--env",
            "prod",
            "--off",
            "--as",
            "olive",
        ]),
        1,
        "error: account 'olive' is disabled\n",
    );
    assert_eq!(
        ok(&site.run(&["user", "set-role", "sam", "ops"])),
        "account 'sam' now has role ops\n"
    );

    let list: Value = serde_json::from_str(ok(&Run::of(
        site.dir
            .command(VEXIL, ["flags", "list", "--env", "prod", "--json"])
            .env("DATABASE_URL", &url)
            .env("FLAG_CONSOLE_FEATURE_FLAGS_DB", "1"),
    )))
    .unwrap();
    let dark_mode = list["flags"]
        .as_array()
        .unwrap()
        .iter()
        .find(|f| f["key"] == "dark_mode")
        .unwrap();
    assert_eq!(
        (
            &dark_mode["value"],
            &dark_mode["source"],
            &dark_mode["updated_by"]
        ),
        (
            &Value::Bool(true),
            &Value::from("db"),
            &Value::from("olive")
        )
    );
    assert_eq!(
        list["flags"].as_array().unwrap().len(),
        12,
        "every flag, prod only"
    );

    let audit: Value =
        serde_json::from_str(ok(&site.run(&["audit", "--flag", "dark_mode", "--json"]))).unwrap();
    let rows = audit.as_array().unwrap();
    assert_eq!(rows.len(), 1);
    assert_eq!(rows[0]["actor"], "olive");
    assert_eq!(
        rows[0]["payload"],
        serde_json::json!({"flag": "dark_mode", "env": "prod", "from": false, "to": true, "via": "cli", "reason": "INC-7"})
    );
    let users_audit: Value = serde_json::from_str(ok(&site.run(&[
        "audit",
        "--action",
        "console.user.disable",
        "--json",
    ])))
    .unwrap();
    assert_eq!(users_audit.as_array().unwrap().len(), 1);
    fails(
        &site.run(&["audit", "--since", "yesterday"]),
        2,
        "error: --since 'yesterday': expected an RFC 3339 time (2026-11-24T07:35:42Z), a UTC time (2026-11-24T07:35) or a date (2026-11-24)\n",
    );

    // Propagation receipts: no process links the library here, so none applies it.
    let flip_id = rows[0]["id"].as_i64().unwrap().to_string();
    let shown = site.run(&["audit", "show", &flip_id]);
    assert!(
        ok(&shown).starts_with(&format!(
            "audit row {flip_id}: console.flag.flip by olive at "
        )),
        "{shown:?}"
    );
    assert!(
        shown
            .stdout
            .ends_with("receipt: no instance reports\n0 process(es) of prod: 0 applied, 0 superseded, 0 pending, 0 ignored (DB layer off), 0 not reporting\n"),
        "{shown:?}"
    );
    let shown: Value =
        serde_json::from_str(ok(&site.run(&["audit", "show", &flip_id, "--json"]))).unwrap();
    assert_eq!(
        (shown["flag"].as_str(), shown["env"].as_str()),
        (Some("dark_mode"), Some("prod"))
    );
    assert_eq!(shown["instances"], serde_json::json!([]));
    let disable_id = users_audit[0]["id"].as_i64().unwrap();
    fails(
        &site.run(&["audit", "show", &disable_id.to_string()]),
        2,
        &format!(
            "error: audit row {disable_id} is not a flag change: only a flip has propagation receipts\n"
        ),
    );
    fails(
        &site.run(&["audit", "show", "999999"]),
        2,
        "error: no audit row 999999\n",
    );
    assert_eq!(ok(&site.run(&["instances"])), "no live instances\n");
    assert_eq!(
        ok(&site.run(&["instances", "--env", "prod", "--json"])),
        "[]\n"
    );
    let unknown = site.run(&["instances", "--env", "qa"]);
    assert_eq!(unknown.code, Some(2), "{unknown:?}");
    assert!(unknown.stderr.contains("'qa'"), "{unknown:?}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_break_glass_path_on_sqlite() {
    the_break_glass_path(Backend::Sqlite).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_break_glass_path_on_postgres() {
    the_break_glass_path(Backend::Postgres).await;
}

/// Account, token and audit commands need the database only: a broken flags file
/// must not lock the operator out of them during an incident.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn account_commands_work_without_a_flags_file() {
    let test_db = TestDb::new(Backend::Sqlite).await;
    let site = Site::new(test_db.url_string());
    site.dir.write("feature_flags.yaml", "not: [valid\n");
    assert_eq!(
        ok(&site.run_with_stdin(
            &["user", "add", "root", "--role", "superadmin"],
            "a long enough password"
        )),
        "created account 'root' with role superadmin\n"
    );
    assert!(ok(&site.run(&["audit", "--limit", "5"])).contains("console.user.add"));
    let run = site.run(&["flags", "list"]);
    assert_eq!(run.code, Some(2));
    assert!(run.stderr.starts_with("error: the flags file feature_flags.yaml has 1 error(s), the first: feature_flags.yaml:"), "{run:?}");
}

#[test]
fn a_database_that_cannot_be_reached_is_named_without_its_password() {
    let site = Site::new("postgres://vexil:hunter2@127.0.0.1:1/vexil".to_owned());
    let run = site.run(&["flags", "list"]);
    assert_eq!(run.code, Some(2), "{run:?}");
    assert!(
        run.stderr.starts_with(
            "error: cannot open the database postgres://vexil:***@127.0.0.1:1/vexil: "
        ),
        "{}",
        run.stderr
    );
    assert!(!run.stderr.contains("hunter2"));
    assert!(
        run.stderr.contains("Connection refused"),
        "says why: {}",
        run.stderr
    );
    assert_eq!(run.stderr.lines().count(), 1);
}

#[test]
fn a_sqlite_file_where_none_can_be_created_is_named() {
    let site = Site::new("sqlite:///proc/vexil.db".to_owned());
    let run = site.run(&["migrate"]);
    assert_eq!(run.code, Some(2), "{run:?}");
    assert!(
        run.stderr
            .starts_with("error: cannot open the database sqlite:///proc/vexil.db: "),
        "{}",
        run.stderr
    );
}

#[test]
fn a_database_url_with_another_scheme_is_refused() {
    let site = Site::new("mysql://root:hunter2@localhost/db".to_owned());
    let run = site.run(&["migrate"]);
    assert_eq!(
        (run.code, run.stderr.as_str()),
        (
            Some(2),
            "error: DATABASE_URL mysql://root:***@localhost/db has an unsupported scheme \"mysql\": use sqlite://PATH or postgres://USER@HOST/DB\n"
        )
    );
}
