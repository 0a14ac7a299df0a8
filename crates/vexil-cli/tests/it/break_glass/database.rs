//! `migrate` and the database a command is pointed at: an unmigrated one is named
//! with the migration it is at, `migrate` applies each migration once, and a URL that
//! cannot be opened or has another scheme is named without its password.

use vexil_store::Backend;
use vexil_testkit::{TestDb, both, fails, ok};

use crate::site::Site;

async fn a_command_on_an_unmigrated_database_says_to_migrate(backend: Backend) {
    let test_db = TestDb::unmigrated(backend).await;
    let site = Site::new(test_db.url_string());
    let url = test_db.url_string();
    fails(
        &site.run(&["flags", "list"]),
        2,
        &format!(
            "error: the database {url} is not migrated (at migration 0, this vexil needs 9): run `vexil migrate`\n"
        ),
    );
}
both!(a_command_on_an_unmigrated_database_says_to_migrate);

async fn migrate_applies_each_migration_in_order(backend: Backend) {
    let test_db = TestDb::unmigrated(backend).await;
    let site = Site::new(test_db.url_string());
    let url = test_db.url_string();
    assert_eq!(
        ok(&site.run(&["migrate"])),
        format!(
            "{url}: applied migration 0001 init\n{url}: applied migration 0002 change feed\n{url}: applied migration 0003 instances\n{url}: applied migration 0004 sessions\n{url}: applied migration 0005 promotions\n{url}: applied migration 0006 client keys\n{url}: applied migration 0007 audit integrity\n{url}: applied migration 0008 write evidence\n{url}: applied migration 0009 adoption\n{url}: now at migration 9\n"
        )
    );
}
both!(migrate_applies_each_migration_in_order);

async fn migrate_on_a_migrated_database_applies_nothing(backend: Backend) {
    let test_db = TestDb::unmigrated(backend).await;
    let site = Site::new(test_db.url_string());
    let url = test_db.url_string();
    ok(&site.run(&["migrate"]));
    assert_eq!(
        ok(&site.run(&["migrate"])),
        format!("{url}: up to date at migration 9; nothing to apply\n")
    );
}
both!(migrate_on_a_migrated_database_applies_nothing);

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
