//! `vexil promotion mark|list|show|approve|promote|reject` through the real binary, on
//! a SQLite file and on PostgreSQL: the path from staging to prod, the `--json`
//! shapes, bad input, and every refusal (the soak, the role, a high-risk flag's
//! phrase and TOTP code) writing nothing.
//!
//! The binary runs on the real clock, so the flags that go all the way to prod have
//! `soak_period_hours: 0`, and a 24 h soak is only ever refused.

use chrono::{DateTime, Utc};
use serde_json::{Value, json};
use vexil_store::{AuditFilter, Backend};
use vexil_testkit::{Run, TestDb, both, fails, ok};

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
    let flags = format!(
        "{}{HIGH_RISK_FLAG}",
        include_str!("../../../../examples/feature_flags.yaml")
    );
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

/// Every audit row, newest first, read from the database itself.
async fn audit_log(test_db: &TestDb) -> Vec<vexil_store::AuditRow> {
    let filter = AuditFilter {
        limit: 10_000,
        ..AuditFilter::default()
    };
    test_db.db.audit_page(&filter).await.unwrap()
}

/// Whether `key` has a row in prod.
async fn has_prod_row(test_db: &TestDb, key: &str) -> bool {
    let rows = test_db.db.flag_rows().await.unwrap();
    rows.iter().any(|r| r.flag_key == key && r.env == "prod")
}

async fn state_of(test_db: &TestDb, id: i64) -> String {
    test_db.db.promotion(id).await.unwrap().unwrap().state
}

async fn mark_approve_promote(backend: Backend) {
    let (test_db, site) = site(backend).await;
    ok(&site.run(&[
        "flip",
        "dark_mode",
        "--env",
        "staging",
        "--on",
        "--as",
        "olive",
    ]));

    let marked = json_of(&site.run(&["promotion", "mark", "dark_mode", "--as", "root", "--json"]));
    let id = marked["promotion"]["id"].as_i64().unwrap();
    let mark_audit = marked["audit_id"].as_i64().unwrap();
    assert_eq!(
        timeless(&marked),
        json!({
            "audit_id": mark_audit,
            "promotion": {
                "id": id, "flag": "dark_mode", "risk": "low", "state": "pending",
                "marked_by": "root", "marked_at": "<time>", "soak_ends_at": "<time>",
                "soak_remaining_seconds": 0, "approved_by": null, "approved_at": null,
                "ended_at": null, "ended_by": null, "reason": null, "expires_at": "<time>",
                "confirmation_phrase": null,
            },
        })
    );
    let shown = site.run(&["promotion", "show", &id.to_string()]);
    let lines: Vec<&str> = ok(&shown).lines().collect();
    assert_eq!(
        lines[..5],
        [
            format!("id: {id}").as_str(),
            "flag: dark_mode",
            "risk: low",
            "state: pending",
            "marked_by: root"
        ]
    );
    assert!(
        lines.iter().any(|l| l.starts_with("expires_at: ")),
        "an open promotion says when it expires: {shown:?}"
    );

    let approved = site.run(&["promotion", "approve", &id.to_string(), "--as", "root"]);
    let approve_audit = mark_audit + 1;
    assert_eq!(
        ok(&approved),
        format!("promotion {id} of dark_mode: approved by root (audit row {approve_audit})\n")
    );
    let promoted = json_of(&site.run(&[
        "promotion",
        "promote",
        &id.to_string(),
        "--as",
        "root",
        "--json",
    ]));
    let flip_audit = promoted["flip_audit_id"].as_i64().unwrap();
    assert_eq!(
        timeless(&promoted),
        json!({
            "audit_id": flip_audit + 1,
            "flip_audit_id": flip_audit,
            "promotion": {
                "id": id, "flag": "dark_mode", "risk": "low", "state": "promoted",
                "marked_by": "root", "marked_at": "<time>", "soak_ends_at": "<time>",
                "soak_remaining_seconds": 0, "approved_by": "root", "approved_at": "<time>",
                "ended_at": "<time>", "ended_by": "root", "reason": null, "expires_at": null,
                "confirmation_phrase": null,
            },
        })
    );

    // Prod is on, from its row, as every process with the DB layer on sees it.
    let listed = Run::of(
        site.command(&["flags", "list", "--env", "prod", "--json"])
            .env("FLAG_CONSOLE_FEATURE_FLAGS_DB", "1"),
    );
    let listed = json_of(&listed);
    let dark_mode = listed["flags"]
        .as_array()
        .unwrap()
        .iter()
        .find(|f| f["key"] == "dark_mode")
        .unwrap();
    assert_eq!(
        (&dark_mode["value"], &dark_mode["source"]),
        (&json!(true), &json!("db"))
    );
    let log = json_of(&site.run(&["audit", "--flag", "dark_mode", "--json"]));
    let actions: Vec<&str> = log
        .as_array()
        .unwrap()
        .iter()
        .map(|row| row["action"].as_str().unwrap())
        .collect();
    assert_eq!(
        actions,
        [
            "console.flag.promoted",
            "console.flag.flip",
            "console.flag.approved",
            "console.flag.mark_promote",
            "console.flag.flip",
        ]
    );
    assert_eq!(log[1]["id"], flip_audit);
    assert_eq!(
        log[1]["payload"],
        json!({"flag": "dark_mode", "env": "prod", "from": false, "to": true, "via": "cli", "promotion_id": id})
    );
    assert_eq!(log[0]["payload"]["via"], "cli");

    // Listings: the array of views, filtered, and the table.
    let all = json_of(&site.run(&["promotion", "list", "--json"]));
    assert_eq!(timeless(&all), json!([timeless(&promoted["promotion"])]));
    let none = site.run(&["promotion", "list", "--state", "pending", "--json"]);
    assert_eq!(ok(&none), "[]\n");
    assert_eq!(
        ok(&site.run(&["promotion", "list", "--flag", "checkout_v2"])),
        "no promotions\n"
    );
    let table = site.run(&["promotion", "list", "--state", "promoted"]);
    let rows: Vec<Vec<&str>> = ok(&table)
        .lines()
        .map(|l| l.split_whitespace().collect())
        .collect();
    assert_eq!(
        rows[0],
        [
            "id", "flag", "state", "marked", "by", "soak", "ends", "(UTC)", "approved", "by",
            "reason"
        ]
    );
    assert_eq!(
        (rows.len(), &rows[1][..4], &rows[1][6..]),
        (
            2,
            &[id.to_string().as_str(), "dark_mode", "promoted", "root"][..],
            &["root", "-"][..]
        )
    );

    // A promoted promotion accepts nothing more; it is not an input error.
    fails(
        &site.run(&[
            "promotion",
            "reject",
            &id.to_string(),
            "--as",
            "root",
            "--reason",
            "late",
        ]),
        1,
        &format!(
            "error: promotion {id} of dark_mode: the promotion is promoted: it accepts nothing more\n"
        ),
    );

    // Bad input: exit 2, one line naming what was wrong.
    for (args, stderr) in [
        (
            &["promotion", "show", "999"][..],
            "error: no promotion 999\n",
        ),
        (
            &["promotion", "approve", "999", "--as", "root"],
            "error: no promotion 999\n",
        ),
        (
            &["promotion", "promote", "999", "--as", "root"],
            "error: no promotion 999\n",
        ),
        (
            &["promotion", "list", "--state", "done"],
            "error: unknown promotion state 'done' (expected one of: pending, approved, promoted, rejected, expired)\n",
        ),
        (
            &["promotion", "list", "--limit", "501"],
            "error: --limit 501: expected 1 to 500\n",
        ),
        (
            &["promotion", "list", "--flag", "dark_mod"],
            "error: unknown flag 'dark_mod': it is not declared in the flags file\n",
        ),
        (
            &["promotion", "mark", "dark_mod", "--as", "root"],
            "error: unknown flag 'dark_mod': it is not declared in the flags file\n",
        ),
        (
            &["promotion", "approve", "1", "--as", "nobody"],
            "error: unknown account 'nobody'\n",
        ),
    ] {
        fails(&site.run(args), 2, stderr);
    }
    let usage = site.run(&["promotion", "reject", &id.to_string(), "--as", "root"]);
    assert_eq!(usage.code, Some(2), "{usage:?}");
    assert!(
        usage
            .stderr
            .contains("required arguments were not provided:\n  --reason <REASON>"),
        "{usage:?}"
    );
    drop(test_db);
}
both!(mark_approve_promote);

async fn every_refusal_writes_nothing(backend: Backend) {
    let (test_db, site) = site(backend).await;

    // The soak: a 24 h flag cannot be approved yet, and the message says until when.
    ok(&site.run(&[
        "flip",
        "csv_export_streaming",
        "--env",
        "staging",
        "--on",
        "--as",
        "olive",
    ]));
    let marked = json_of(&site.run(&[
        "promotion",
        "mark",
        "csv_export_streaming",
        "--as",
        "root",
        "--json",
    ]));
    let soaking = marked["promotion"]["id"].as_i64().unwrap().to_string();
    let soak_ends_at: DateTime<Utc> = marked["promotion"]["soak_ends_at"]
        .as_str()
        .unwrap()
        .parse()
        .unwrap();
    let remaining = marked["promotion"]["soak_remaining_seconds"]
        .as_i64()
        .unwrap();
    assert!((86_390..=86_400).contains(&remaining), "{marked}");
    let log = audit_log(&test_db).await.len();
    fails(
        &site.run(&["promotion", "approve", &soaking, "--as", "root"]),
        1,
        &format!(
            "error: promotion {soaking} of csv_export_streaming: the soak ends at {} UTC: approve after that\n",
            soak_ends_at.format("%Y-%m-%d %H:%M:%S")
        ),
    );
    assert_eq!(audit_log(&test_db).await.len(), log);
    let shown = site.run(&["promotion", "show", &soaking]);
    assert!(
        ok(&shown).contains(&format!(
            "soak_ends_at: {} UTC (",
            soak_ends_at.format("%Y-%m-%d %H:%M:%S")
        )) && shown.stdout.contains(" left)\n"),
        "{shown:?}"
    );

    // The role: ops may neither mark nor move a promotion, with or without a code.
    ok(&site.run(&[
        "flip",
        "onboarding_checklist_v2",
        "--env",
        "staging",
        "--on",
        "--as",
        "olive",
    ]));
    let log = audit_log(&test_db).await.len();
    for (args, action) in [
        (
            &[
                "promotion",
                "mark",
                "onboarding_checklist_v2",
                "--as",
                "olive",
            ][..],
            "mark a flag active for prod",
        ),
        (
            &["promotion", "approve", &soaking, "--as", "olive"],
            "approve a promotion",
        ),
        (
            &[
                "promotion",
                "promote",
                &soaking,
                "--as",
                "olive",
                "--totp",
                "123456",
            ],
            "promote a low-risk flag",
        ),
        (
            &[
                "promotion",
                "reject",
                &soaking,
                "--as",
                "olive",
                "--reason",
                "no",
            ],
            "reject a promotion",
        ),
    ] {
        fails(
            &site.run(args),
            1,
            &format!("error: role ops may not {action}: it needs superadmin\n"),
        );
    }
    assert_eq!(audit_log(&test_db).await.len(), log, "nothing written");
    assert_eq!(
        state_of(&test_db, soaking.parse().unwrap()).await,
        "pending"
    );
    assert_eq!(
        ok(&site.run(&["promotion", "list", "--flag", "onboarding_checklist_v2"])),
        "no promotions\n"
    );
    let rejected = site.run(&[
        "promotion",
        "reject",
        &soaking,
        "--as",
        "root",
        "--reason",
        "not this week",
    ]);
    assert_eq!(
        ok(&rejected),
        format!(
            "promotion {soaking} of csv_export_streaming: rejected by root (audit row {})\n",
            log + 1
        )
    );
    let rejected = json_of(&site.run(&["promotion", "show", &soaking, "--json"]));
    assert_eq!(
        (
            &rejected["state"],
            &rejected["reason"],
            &rejected["expires_at"]
        ),
        (&json!("rejected"), &json!("not this week"), &Value::Null)
    );

    // A high-risk flag: the exact phrase, then a TOTP code. Its staging row comes from
    // direct SQL (audited by the database), so that no code is spent on the way.
    let enrol = site.run(&["user", "totp", "root"]);
    let uri = ok(&enrol).trim().to_owned();
    test_db
        .execute("INSERT INTO console_feature_flags (flag_key, env, value) VALUES ('checkout_v2', 'staging', 1)")
        .await
        .unwrap();
    let marked =
        json_of(&site.run(&["promotion", "mark", "checkout_v2", "--as", "root", "--json"]));
    let id = marked["promotion"]["id"].as_i64().unwrap();
    let risky = id.to_string();
    let phrase = "promote checkout_v2 to prod";
    assert_eq!(marked["promotion"]["confirmation_phrase"], phrase);
    let shown = site.run(&["promotion", "show", &risky]);
    assert!(
        ok(&shown).contains("\nrisk: high\n")
            && shown
                .stdout
                .ends_with(&format!("confirmation_phrase: {phrase}\n")),
        "{shown:?}"
    );
    ok(&site.run(&["promotion", "approve", &risky, "--as", "root"]));

    let now = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .as_secs();
    let code = vexil_app::code_at(&uri, now).unwrap();
    let log = audit_log(&test_db).await.len();
    let promote = |extra: &[&str]| {
        let mut args = vec!["promotion", "promote", risky.as_str(), "--as", "root"];
        args.extend_from_slice(extra);
        site.run(&args)
    };
    fails(
        &promote(&["--totp", &code]),
        1,
        &format!("error: promoting a high-risk flag needs the typed confirmation '{phrase}'\n"),
    );
    for wrong in [
        "promote checkout_v2 to prod ",
        "Promote checkout_v2 to prod",
        "promote dark_mode to prod",
    ] {
        fails(
            &promote(&["--confirm", wrong, "--totp", &code]),
            1,
            &format!("error: the typed confirmation does not match: type '{phrase}' exactly\n"),
        );
    }
    fails(
        &promote(&["--confirm", phrase]),
        1,
        "error: to promote a high-risk flag, elevate with a fresh TOTP code first\n",
    );
    let after = audit_log(&test_db).await;
    assert_eq!(after.len(), log, "nothing written");
    assert!(
        !after
            .iter()
            .any(|row| row.action.starts_with("console.auth.elevate")),
        "no code was checked"
    );
    assert!(!has_prod_row(&test_db, "checkout_v2").await);
    assert_eq!(state_of(&test_db, id).await, "approved");

    // The code the refusals carried was never spent: it promotes now.
    let promoted = promote(&["--confirm", phrase, "--totp", &code]);
    assert_eq!(
        ok(&promoted),
        format!(
            "promotion {id} of checkout_v2: promoted by root, now on in prod (audit row {}; the prod flip: audit row {})\n",
            log + 2,
            log + 1
        )
    );
    assert!(has_prod_row(&test_db, "checkout_v2").await);
}
both!(every_refusal_writes_nothing);

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
