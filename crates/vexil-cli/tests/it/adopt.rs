//! The cut-over of docs/adopt.md through the real binary, on both databases: the
//! runbook's console database refused by plain `vexil migrate` and `vexil serve` with
//! the way forward, adopted (rehearsed first), its old admins mapped, flipped by vexil
//! and by the runbook's Option A, written to by the old console beside vexil, and
//! verified; a database of another shape refused, unchanged.

use serde_json::Value;
use vexil_store::Backend;
use vexil_testkit::{
    RUNBOOK_OPTION_A, RUNBOOK_SELECT, TestDb, both, fails, ok, old_console, old_console_ddl,
};

use crate::site::Site;

/// What plain `vexil migrate` says on the runbook's database, before and after a
/// refused or rehearsed adoption.
fn adopt_first(test_db: &TestDb) -> String {
    format!(
        "error: the database {} holds the runbook's tables (console_feature_flags with 4 rows, console_audit_log with 5 rows) but no vexil schema: run `vexil migrate --adopt` to keep them, with their history, and add vexil's schema around them (docs/adopt.md)\n",
        test_db.url()
    )
}

/// An old console's database and a site on it, with a secret key so that `audit
/// verify` checks who wrote each row.
async fn old_site(backend: Backend) -> (TestDb, Site) {
    let test_db = old_console(backend).await;
    let mut site = Site::new(test_db.url_string());
    site.secret_key = Some("5a".repeat(32));
    (test_db, site)
}

async fn plain_migrate_and_serve_ask_for_an_adoption(backend: Backend) {
    let (test_db, site) = old_site(backend).await;
    fails(&site.run(&["migrate"]), 2, &adopt_first(&test_db));
    let served = site.run(&["serve", "--bind", "127.0.0.1:0"]);
    assert_eq!(served.code, Some(2), "{served:?}");
    assert!(
        served.stderr.ends_with(&adopt_first(&test_db)),
        "{served:?}"
    );
    fails(&site.run(&["flags", "list"]), 2, &adopt_first(&test_db));
}
both!(plain_migrate_and_serve_ask_for_an_adoption);

async fn the_cut_over(backend: Backend) {
    let (test_db, site) = old_site(backend).await;
    let url = test_db.url();
    let before = test_db.client(RUNBOOK_SELECT);

    // A rehearsal first: it says what it would do and changes nothing.
    let rehearsed = ok(&site.run(&["migrate", "--adopt", "--dry-run"])).to_owned();
    assert!(
        rehearsed.starts_with(&format!(
            "{url}: dry run, rolled back: would adopt console_feature_flags (4 rows) and console_audit_log (5 rows, the newest id 9), every row kept with its id\n"
        )),
        "{rehearsed}"
    );
    assert!(rehearsed.ends_with(&format!("{url}: nothing was changed\n")));
    fails(&site.run(&["migrate"]), 2, &adopt_first(&test_db));

    let adopted = ok(&site.run(&["migrate", "--adopt"])).to_owned();
    assert!(
        adopted.starts_with(&format!(
            "{url}: adopted console_feature_flags (4 rows) and console_audit_log (5 rows, the newest id 9), every row kept with its id\n\
             {url}: old console admins 3, 7 kept as disabled accounts console_admin_ID (they cannot sign in); map each to its vexil account with `vexil user map-admin ID NAME`\n\
             {url}: vexil's own accounts are numbered from 1000000\n\
             {url}: applied migration 0001 init\n"
        )),
        "{adopted}"
    );
    assert_eq!(test_db.client(RUNBOOK_SELECT), before);

    // The old admins, shown as such, then one mapped to its person's vexil account.
    ok(&site.run_with_stdin(
        &["user", "add", "alice", "--role", "ops"],
        "a long enough password\n",
    ));
    let listed = ok(&site.run(&["audit", "--limit", "50"])).to_owned();
    assert!(
        listed.contains("console admin #7 (before vexil)"),
        "{listed}"
    );
    assert!(
        listed.contains("console admin #3 (before vexil)"),
        "{listed}"
    );
    assert_eq!(
        ok(&site.run(&["user", "map-admin", "7", "alice"])),
        "old console admin #7 is mapped to account 'alice'\n"
    );
    let listed = ok(&site.run(&["audit", "--limit", "50"])).to_owned();
    assert!(
        listed.contains("alice (console admin #7, before vexil)"),
        "{listed}"
    );
    let rows: Value = serde_json::from_str(ok(&site.run(&["audit", "--json"]))).unwrap();
    let old_flip = rows
        .as_array()
        .unwrap()
        .iter()
        .find(|row| row["id"] == 2)
        .unwrap();
    assert_eq!(
        (
            &old_flip["actor"],
            &old_flip["old_admin"]["account"],
            &old_flip["old_admin"]["before_vexil"]
        ),
        (
            &Value::from("console_admin_7"),
            &Value::from("alice"),
            &Value::Bool(true)
        )
    );
    let users = ok(&site.run(&["user", "list"])).to_owned();
    assert!(users.contains("old console admin #7 → alice"), "{users}");
    assert!(
        users.contains("old console admin #3 (not mapped)"),
        "{users}"
    );

    // vexil's flip and the runbook's Option A, each audited after the old rows.
    ok(&site.run(&[
        "flip",
        "dark_mode",
        "--env",
        "prod",
        "--off",
        "--as",
        "alice",
    ]));
    test_db.client(RUNBOOK_OPTION_A);
    let after = test_db.client(RUNBOOK_SELECT);
    let lines: Vec<&str> = after.lines().collect();
    assert_eq!(lines.len(), 6, "{after}");
    let option_a = lines[0].replace(' ', "");
    assert!(
        option_a.contains(r#""via":"sql""#) && option_a.contains(r#""to":true"#),
        "{after}"
    );
    assert!(lines[1].contains("|1000000|"), "{after}");
    assert_eq!(lines[2..].join("\n") + "\n", before);
    let newest: Value =
        serde_json::from_str(ok(&site.run(&["audit", "--json", "--limit", "2"]))).unwrap();
    // After the old ids (to 9): 2 placeholders and 4 flag rows adopted, alice, the
    // mapping; then the flip and Option A.
    assert_eq!(
        (&newest[1]["id"], &newest[0]["id"]),
        (&Value::from(18), &Value::from(19))
    );

    // The old console, still running, writes under its admin's id: its row is the
    // old console's, not a forgery of vexil's.
    test_db
        .execute(
            r#"INSERT INTO console_audit_log (admin_id, action, target_type, target_id, payload)
               VALUES (7, 'console.flag.flip', 'feature_flag', 'dark_mode', '{"flag": "dark_mode", "env": "staging", "from": true, "to": false}')"#,
        )
        .await
        .unwrap();
    let listed = ok(&site.run(&["audit", "--limit", "1"])).to_owned();
    assert!(
        listed.contains("alice (console admin #7, old console)"),
        "{listed}"
    );
    let verified = ok(&site.run(&["audit", "verify"])).to_owned();
    assert!(
        verified.starts_with("audit log intact: 16 rows sealed in order, head 20:"),
        "{verified}"
    );

    // A row under the old id that claims one of vexil's doors is vexil's claim, and
    // without vexil's proof it is direct SQL, whatever name it borrows.
    test_db
        .execute(
            r#"INSERT INTO console_audit_log (admin_id, action, target_type, target_id, payload)
               VALUES (7, 'console.flag.flip', 'feature_flag', 'dark_mode', '{"flag": "dark_mode", "env": "prod", "from": true, "to": false, "via": "console"}')"#,
        )
        .await
        .unwrap();
    let listed = ok(&site.run(&["audit", "--limit", "1"])).to_owned();
    assert!(listed.contains("direct SQL (claims "), "{listed}");
    let forged = site.run(&["audit", "verify"]);
    assert_eq!(forged.code, Some(1), "{forged:?}");
}
both!(the_cut_over);

async fn map_admin_reserves_new_old_ids_and_refuses_what_is_not_one(backend: Backend) {
    let (test_db, site) = old_site(backend).await;
    ok(&site.run(&["migrate", "--adopt"]));
    ok(&site.run_with_stdin(
        &["user", "add", "bob", "--role", "ops"],
        "a long enough password\n",
    ));
    // An admin the old console made after the adoption: refused by the foreign key
    // until it has its placeholder, never taken for a vexil account.
    let insert = r#"INSERT INTO console_audit_log (admin_id, action, target_type, target_id, payload)
                    VALUES (12, 'console.admin.login', 'admin', '12', '{}')"#;
    test_db.execute(insert).await.unwrap_err();
    ok(&site.run(&["user", "map-admin", "12", "bob"]));
    test_db.execute(insert).await.unwrap();
    let listed = ok(&site.run(&["audit", "--limit", "3"])).to_owned();
    assert!(
        listed.contains("bob (console admin #12, old console)"),
        "{listed}"
    );

    fails(
        &site.run(&["user", "map-admin", "12", "bob"]),
        1,
        "error: old console admin #12 is mapped to 'bob' already; nothing was changed\n",
    );
    fails(
        &site.run(&["user", "map-admin", "1000000", "bob"]),
        2,
        "error: 1000000 is not an old console admin's id: those are from 1 to 999999, below vexil's own accounts\n",
    );
    fails(
        &site.run(&["user", "map-admin", "7", "console_admin_3"]),
        2,
        "error: account 'console_admin_3' holds old console admin #3: map to the vexil account of the person instead\n",
    );
    fails(
        &site.run(&["user", "map-admin", "7", "nobody"]),
        2,
        "error: unknown account 'nobody'\n",
    );

    let fresh = TestDb::new(backend).await;
    let site = Site::new(fresh.url_string());
    ok(&site.run_with_stdin(
        &["user", "add", "bob", "--role", "ops"],
        "a long enough password\n",
    ));
    fails(
        &site.run(&["user", "map-admin", "7", "bob"]),
        2,
        "error: this database was not adopted from an old console (docs/adopt.md): it has no old admin ids to map\n",
    );
}
both!(map_admin_reserves_new_old_ids_and_refuses_what_is_not_one);

async fn a_table_of_another_shape_is_refused_and_left_as_it_was(backend: Backend) {
    let test_db = TestDb::unmigrated(backend).await;
    let (from, to) = match backend {
        Backend::Postgres => (
            "value       integer NOT NULL DEFAULT 0",
            "value boolean NOT NULL",
        ),
        Backend::Sqlite => (
            "value       INTEGER NOT NULL DEFAULT 0",
            "value TEXT NOT NULL",
        ),
    };
    let ddl = old_console_ddl(backend).replace(from, to);
    assert_ne!(ddl, old_console_ddl(backend));
    test_db.execute(&ddl).await.unwrap();
    let site = Site::new(test_db.url_string());
    let refused = site.run(&["migrate", "--adopt"]);
    assert_eq!(refused.code, Some(2), "{refused:?}");
    let found = if backend == Backend::Postgres {
        "boolean"
    } else {
        "TEXT"
    };
    assert!(
        refused.stderr.starts_with(&format!(
            "error: cannot adopt the database {} (nothing was changed): console_feature_flags.value is {found}, vexil needs an integer 0 or 1",
            test_db.url()
        )),
        "{refused:?}"
    );
    fails(
        &site.run(&["migrate"]),
        2,
        &format!(
            "error: the database {} holds the runbook's tables (console_feature_flags with 0 rows, console_audit_log with 0 rows) but no vexil schema: run `vexil migrate --adopt` to keep them, with their history, and add vexil's schema around them (docs/adopt.md)\n",
            test_db.url()
        ),
    );
}
both!(a_table_of_another_shape_is_refused_and_left_as_it_was);
