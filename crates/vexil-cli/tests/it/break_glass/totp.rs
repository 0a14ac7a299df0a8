//! `user totp` and `flip --totp`: enrolment prints the URI once and keeps the secret
//! encrypted (SQLite: a key file beside the database; PostgreSQL: `VEXIL_SECRET_KEY`,
//! never a command-line argument), and a current code elevates one flip, once.

use vexil_store::Backend;
use vexil_testkit::{Run, TestDb, both, fails, ok};

use super::{site, site_after_a_flip};
use crate::site::Site;

/// The secret key PostgreSQL needs for TOTP (it has no key file); SQLite needs none.
fn secret_key(backend: Backend) -> Option<String> {
    (backend == Backend::Postgres).then(|| "2f".repeat(32))
}

/// [`site`] with sam enrolled, and sam's TOTP URI.
async fn enrolled(backend: Backend) -> (TestDb, Site, String) {
    let (test_db, mut site) = site(backend).await;
    site.secret_key = secret_key(backend);
    let uri = ok(&site.run(&["user", "totp", "sam"])).trim().to_owned();
    (test_db, site, uri)
}

/// The code `uri`'s authenticator shows now (the binary reads the real clock).
fn code_now(uri: &str) -> String {
    let now = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .as_secs();
    vexil_app::code_at(uri, now).unwrap()
}

/// sam turns console_billing (high risk) on in prod with `code`.
fn elevated_flip(site: &Site, code: &str) -> Run {
    site.run(&[
        "flip",
        "console_billing",
        "--env",
        "prod",
        "--on",
        "--as",
        "sam",
        "--totp",
        code,
    ])
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn enrolment_on_postgres_without_a_secret_key_says_what_to_set() {
    let (_test_db, site) = site(Backend::Postgres).await;
    let run = site.run(&["user", "totp", "sam"]);
    fails(
        &run,
        2,
        "error: no secret key to encrypt TOTP secrets: set VEXIL_SECRET_KEY to 64 hexadecimal characters\n",
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_secret_key_that_is_not_32_bytes_is_refused() {
    let (_test_db, mut site) = site(Backend::Postgres).await;
    site.secret_key = Some("2f".repeat(31));
    let run = site.run(&["user", "totp", "sam"]);
    fails(
        &run,
        2,
        "error: VEXIL_SECRET_KEY must be 64 hexadecimal characters (32 bytes)\n",
    );
}

/// Every user of the machine could read a key given on the command line.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_secret_key_is_never_taken_from_the_command_line() {
    let (_test_db, site) = site(Backend::Postgres).await;
    let key = "2f".repeat(32);
    let run = site.run(&["--secret-key", &key, "user", "totp", "sam"]);
    assert_eq!(run.code, Some(2), "{run:?}");
    assert!(
        run.stderr.contains("unexpected argument '--secret-key'"),
        "{run:?}"
    );
    assert!(!run.stderr.contains(&key), "{run:?}");
}

async fn enrolment_prints_the_uri_once(backend: Backend) {
    let (_test_db, mut site) = site(backend).await;
    site.secret_key = secret_key(backend);
    let enrol = site.run(&["user", "totp", "sam"]);
    let uri = ok(&enrol).trim().to_owned();
    assert!(uri.starts_with("otpauth://totp/vexil:sam?secret="), "{uri}");
    assert!(enrol.stderr.contains("it is not shown again"), "{enrol:?}");
}
both!(enrolment_prints_the_uri_once);

/// No VEXIL_SECRET_KEY: the key file beside the database, created 0600.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sqlite_keeps_the_secret_key_in_a_0600_file_beside_the_database() {
    use std::os::unix::fs::PermissionsExt;
    let (test_db, _site, _uri) = enrolled(Backend::Sqlite).await;
    let mut key_file = test_db.url().sqlite_file().unwrap().into_os_string();
    key_file.push(".key");
    let mode = std::fs::metadata(&key_file).unwrap().permissions().mode();
    assert_eq!(mode & 0o777, 0o600);
}

async fn a_totp_code_elevates_a_high_risk_flip(backend: Backend) {
    let (_test_db, site, uri) = enrolled(backend).await;
    let flipped = elevated_flip(&site, &code_now(&uri));
    assert!(
        ok(&flipped).starts_with("console_billing in prod: off -> on"),
        "{flipped:?}"
    );
}
both!(a_totp_code_elevates_a_high_risk_flip);

async fn a_totp_code_is_used_once(backend: Backend) {
    let (_test_db, site, uri) = enrolled(backend).await;
    let code = code_now(&uri);
    ok(&elevated_flip(&site, &code));
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
}
both!(a_totp_code_is_used_once);

async fn a_wrong_totp_code_is_refused(backend: Backend) {
    let (_test_db, site, uri) = enrolled(backend).await;
    ok(&elevated_flip(&site, &code_now(&uri)));
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
}
both!(a_wrong_totp_code_is_refused);

async fn an_account_without_totp_is_told_to_enrol(backend: Backend) {
    let (_test_db, mut site) = site_after_a_flip(backend).await;
    site.secret_key = secret_key(backend);
    fails(
        &elevated_flip(&site, "123456"),
        1,
        "error: account 'sam' has no TOTP enrolled: run `vexil user totp sam`\n",
    );
}
both!(an_account_without_totp_is_told_to_enrol);

/// The rows elevation wrote, oldest first: action and the `from` recorded.
fn elevation_rows(test_db: &TestDb) -> Vec<String> {
    let rows = test_db.client(
        "SELECT action || ' ' || (payload ->> 'from') FROM console_audit_log \
         WHERE action LIKE 'console.auth.elevate%' ORDER BY id",
    );
    rows.lines().map(str::to_owned).collect()
}

/// As from the console and the API: a code sent with a flip whose flag needs no
/// elevation is neither checked nor spent (it was refused here before, by an
/// account that has no TOTP at all).
async fn a_code_sent_for_a_flip_that_needs_none_is_not_spent(backend: Backend) {
    let (test_db, mut site) = site_after_a_flip(backend).await;
    site.secret_key = secret_key(backend);
    let low_risk = [
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
    assert!(
        ok(&site.run(&low_risk)).starts_with("dark_mode in prod: on -> off"),
        "{low_risk:?}"
    );
    assert_eq!(elevation_rows(&test_db), Vec::<String>::new());
}
both!(a_code_sent_for_a_flip_that_needs_none_is_not_spent);

/// Seven wrong codes from a shell: each is audited as the console audits it, and
/// after five the account is locked, the right code included.
async fn wrong_codes_at_the_cli_are_audited_and_lock_the_account(backend: Backend) {
    let (test_db, site, uri) = enrolled(backend).await;
    let right = code_now(&uri);
    let wrong = if right == "000000" {
        "111111"
    } else {
        "000000"
    };
    for _ in 0..5 {
        fails(
            &elevated_flip(&site, wrong),
            1,
            "error: the TOTP code is wrong or expired\n",
        );
    }
    for code in [wrong, right.as_str()] {
        let locked = elevated_flip(&site, code);
        assert_eq!(locked.code, Some(1), "{locked:?}");
        assert!(
            locked
                .stderr
                .starts_with("error: too many wrong TOTP codes for this account; try again in "),
            "{locked:?}"
        );
    }
    assert_eq!(
        elevation_rows(&test_db),
        vec!["console.auth.elevate_failed cli".to_owned(); 5]
    );
}
both!(wrong_codes_at_the_cli_are_audited_and_lock_the_account);

/// A good code is recorded as an elevation from the CLI.
async fn a_good_code_at_the_cli_is_audited(backend: Backend) {
    let (test_db, site, uri) = enrolled(backend).await;
    ok(&elevated_flip(&site, &code_now(&uri)));
    assert_eq!(
        elevation_rows(&test_db),
        vec!["console.auth.elevate cli".to_owned()]
    );
}
both!(a_good_code_at_the_cli_is_audited);
