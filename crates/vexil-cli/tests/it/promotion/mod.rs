//! `vexil promotion mark|list|show|approve|promote|reject` through the real binary, on
//! a SQLite file and on PostgreSQL: the path from staging to prod, the `--json`
//! shapes, bad input, and every refusal (the soak, the role, a high-risk flag's
//! phrase and TOTP code) writing nothing.
//!
//! The binary runs on the real clock, so the flags that go all the way to prod have
//! `soak_period_hours: 0`, and a 24 h soak is only ever refused.
//!
//! - `path.rs`: mark, show, approve, promote, the listings, and bad input;
//! - `refusals.rs`: the soak, the role, reject, and a high-risk flag's phrase and
//!   TOTP code, each refusal writing nothing.

mod path;
mod refusals;

use chrono::DateTime;
use serde_json::{Value, json};
use vexil_store::Backend;
use vexil_testkit::{EXAMPLE_FLAGS, Run, TestDb, audit_log, fails, ok};

use crate::site::Site;

/// The example flags, and a high-risk one that needs no soak, so that a test can
/// reach its promote without waiting.
const HIGH_RISK_FLAG: &str = "
checkout_v2:
  default: false
  soak_period_hours: 0
  description: \"The new checkout\"
  risk: high
";

/// A migrated database, the flags file with `checkout_v2`, and `root` (superadmin)
/// and `olive` (ops).
async fn site(backend: Backend) -> (TestDb, Site) {
    let test_db = TestDb::new(backend).await;
    let mut site = Site::new(test_db.url_string());
    let flags = format!("{EXAMPLE_FLAGS}{HIGH_RISK_FLAG}");
    site.dir.write("feature_flags.yaml", flags);
    // PostgreSQL has no key file beside the database; one setting for both.
    site.secret_key = Some("5a".repeat(32));
    for (name, role) in [("root", "superadmin"), ("olive", "ops")] {
        ok(&site.run_with_stdin(
            &["user", "add", name, "--role", role],
            "a long enough password",
        ));
    }
    (test_db, site)
}

/// Parses a command's JSON answer.
#[track_caller]
fn json_of(run: &Run) -> Value {
    serde_json::from_str(ok(run)).unwrap_or_else(|e| panic!("{e}: {run:?}"))
}

/// `value` with each promotion time (at any depth) checked to be RFC 3339 and
/// replaced by `"<time>"`, so that the rest compares whole.
#[track_caller]
fn timeless(value: &Value) -> Value {
    const TIMES: [&str; 5] = [
        "marked_at",
        "soak_ends_at",
        "approved_at",
        "ended_at",
        "expires_at",
    ];
    match value {
        Value::Array(items) => Value::Array(items.iter().map(timeless).collect()),
        Value::Object(fields) => Value::Object(
            fields
                .iter()
                .map(|(name, field)| match field.as_str() {
                    Some(at) if TIMES.contains(&name.as_str()) => {
                        DateTime::parse_from_rfc3339(at)
                            .unwrap_or_else(|e| panic!("{name}: {at}: {e}"));
                        (name.clone(), json!("<time>"))
                    }
                    _ => (name.clone(), timeless(field)),
                })
                .collect(),
        ),
        other => other.clone(),
    }
}

/// How many audit rows the database holds.
async fn audit_rows(test_db: &TestDb) -> usize {
    audit_log(&test_db.db).await.len()
}

/// Whether `key` has a row in prod.
async fn has_prod_row(test_db: &TestDb, key: &str) -> bool {
    let rows = test_db.db.flag_rows().await.unwrap();
    rows.iter().any(|r| r.flag_key == key && r.env == "prod")
}

async fn state_of(test_db: &TestDb, id: i64) -> String {
    test_db.db.promotion(id).await.unwrap().unwrap().state
}

/// dark_mode (no soak) on in staging as olive, and marked by root: the mark's answer.
fn marked(site: &Site) -> Value {
    ok(&site.run(&[
        "flip",
        "dark_mode",
        "--env",
        "staging",
        "--on",
        "--as",
        "olive",
    ]));
    json_of(&site.run(&["promotion", "mark", "dark_mode", "--as", "root", "--json"]))
}

/// [`site`] with dark_mode marked, approved and promoted by root: the promotion's id
/// and the promote's answer.
async fn promoted(backend: Backend) -> (TestDb, Site, i64, Value) {
    let (test_db, site) = site(backend).await;
    let id = marked(&site)["promotion"]["id"].as_i64().unwrap();
    ok(&site.run(&["promotion", "approve", &id.to_string(), "--as", "root"]));
    let promoted = json_of(&site.run(&[
        "promotion",
        "promote",
        &id.to_string(),
        "--as",
        "root",
        "--json",
    ]));
    (test_db, site, id, promoted)
}

/// The promotion rules come from the environment; a bad value is named and stops the
/// promotion commands only, never the break-glass ones.
#[tokio::test]
async fn a_bad_promotion_setting_is_named_and_blocks_only_promotions() {
    let (_test_db, site) = site(Backend::Sqlite).await;
    for (name, value, says) in [
        (
            "VEXIL_PROMOTION_PENDING_DAYS",
            "seven",
            "error: VEXIL_PROMOTION_PENDING_DAYS must be a whole number from 1 to 90, not 'seven'\n",
        ),
        (
            "VEXIL_PROMOTION_APPROVAL_HOURS",
            "0",
            "error: VEXIL_PROMOTION_APPROVAL_HOURS must be a whole number from 1 to 720, not '0'\n",
        ),
        (
            "VEXIL_PROMOTION_DISTINCT_APPROVER",
            "maybe",
            "error: VEXIL_PROMOTION_DISTINCT_APPROVER must be 1 or 0 (true/false, on/off), not 'maybe'\n",
        ),
    ] {
        let listed = Run::of(site.command(&["promotion", "list"]).env(name, value));
        fails(&listed, 2, says);
        for value_flag in ["--on", "--off"] {
            let args = [
                "flip",
                "dark_mode",
                "--env",
                "staging",
                value_flag,
                "--as",
                "root",
            ];
            let flipped = Run::of(site.command(&args).env(name, value));
            assert_eq!(flipped.code, Some(0), "{flipped:?}");
        }
    }
    let fine = Run::of(
        site.command(&["promotion", "list"])
            .env("VEXIL_PROMOTION_PENDING_DAYS", "14")
            .env("VEXIL_PROMOTION_DISTINCT_APPROVER", "1"),
    );
    assert_eq!(fine.code, Some(0), "{fine:?}");
}
