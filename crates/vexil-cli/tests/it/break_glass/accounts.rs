//! `user add|list|disable|set-role`: database access is the credential, the password
//! comes on stdin, and each change is audited.

use serde_json::Value;
use vexil_store::Backend;
use vexil_testkit::{TestDb, both, fails, ok};

use super::{site, site_after_a_flip};
use crate::site::Site;

async fn user_add_creates_an_account_with_its_role(backend: Backend) {
    let test_db = TestDb::new(backend).await;
    let site = Site::new(test_db.url_string());
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
}
both!(user_add_creates_an_account_with_its_role);

async fn user_add_without_a_password_on_stdin_is_refused(backend: Backend) {
    let (_test_db, site) = site(backend).await;
    fails(
        &site.run_with_stdin(&["user", "add", "eve", "--role", "ops"], ""),
        2,
        "error: no password on stdin: pipe it in, e.g. `vexil user add NAME --role ops < password.txt`\n",
    );
}
both!(user_add_without_a_password_on_stdin_is_refused);

async fn user_add_with_an_unknown_role_is_refused(backend: Backend) {
    let (_test_db, site) = site(backend).await;
    fails(
        &site.run_with_stdin(
            &["user", "add", "eve", "--role", "admin"],
            "a long enough password",
        ),
        2,
        "error: unknown role 'admin' (expected one of: readonly, support, ops, superadmin)\n",
    );
}
both!(user_add_with_an_unknown_role_is_refused);

async fn user_list_names_every_account(backend: Backend) {
    let (_test_db, site) = site(backend).await;
    let users: Value = serde_json::from_str(ok(&site.run(&["user", "list", "--json"]))).unwrap();
    let names: Vec<&str> = users
        .as_array()
        .unwrap()
        .iter()
        .map(|u| u["name"].as_str().unwrap())
        .collect();
    assert_eq!(names, ["olive", "sam"]);
}
both!(user_list_names_every_account);

async fn a_disabled_account_may_not_flip(backend: Backend) {
    let (_test_db, site) = site_after_a_flip(backend).await;
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
}
both!(a_disabled_account_may_not_flip);

async fn disabling_an_account_is_audited(backend: Backend) {
    let (_test_db, site) = site(backend).await;
    ok(&site.run(&["user", "disable", "olive"]));
    let users_audit: Value = serde_json::from_str(ok(&site.run(&[
        "audit",
        "--action",
        "console.user.disable",
        "--json",
    ])))
    .unwrap();
    assert_eq!(users_audit.as_array().unwrap().len(), 1);
}
both!(disabling_an_account_is_audited);

async fn set_role_gives_an_account_another_role(backend: Backend) {
    let (_test_db, site) = site(backend).await;
    assert_eq!(
        ok(&site.run(&["user", "set-role", "sam", "ops"])),
        "account 'sam' now has role ops\n"
    );
}
both!(set_role_gives_an_account_another_role);

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
