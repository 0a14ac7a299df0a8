//! The commands that need a database, through the real binary: `migrate`, `user`,
//! `flags list`, `flip`, `user totp`, `token`, `audit` and `instances`, on a SQLite
//! file and on PostgreSQL, and every bad input with its one-line error and exit code.
//! One test per behaviour, each on a fresh database set up with only what it needs.
//!
//! - `database.rs`: `migrate`, an unmigrated database, and database URLs that cannot
//!   be opened;
//! - `accounts.rs`: `user add|list|disable|set-role`;
//! - `flip.rs`: `flip` and its refusals, and what `flags list` then shows;
//! - `totp.rs`: `user totp` and a flip elevated with `--totp`;
//! - `tokens.rs`: `token create|list|revoke`;
//! - `audit.rs`: `audit`, `audit show` (a flip's propagation receipts) and `instances`.

mod accounts;
mod audit;
mod database;
mod flip;
mod tokens;
mod totp;

use vexil_store::Backend;
use vexil_testkit::{TestDb, ok};

use crate::site::Site;

/// A migrated database and a site on it, with `olive` (ops) and `sam` (superadmin)
/// added as an operator adds them, the password on stdin: audit rows 1 and 2.
async fn site(backend: Backend) -> (TestDb, Site) {
    let test_db = TestDb::new(backend).await;
    let site = Site::new(test_db.url_string());
    ok(&site.run_with_stdin(
        &["user", "add", "olive", "--role", "ops"],
        "a long enough password\n",
    ));
    ok(&site.run_with_stdin(
        &["user", "add", "sam", "--role", "superadmin"],
        "another long password",
    ));
    (test_db, site)
}

/// [`site`], and `dark_mode` flipped on in prod by olive for INC-7: audit row 3.
async fn site_after_a_flip(backend: Backend) -> (TestDb, Site) {
    let (test_db, site) = site(backend).await;
    ok(&site.run(&[
        "flip",
        "dark_mode",
        "--env",
        "prod",
        "--on",
        "--as",
        "olive",
        "--reason",
        "INC-7",
    ]));
    (test_db, site)
}
