//! Every refusal from the command line writes nothing: the soak, the role, a
//! promotion that is rejected, and a high-risk flag's typed phrase and TOTP code (the
//! code a refusal carried is not spent).

use chrono::{DateTime, Utc};
use serde_json::{Value, json};
use vexil_store::Backend;
use vexil_testkit::{Run, TestDb, audit_log, both, fails, ok};

use super::{audit_rows, has_prod_row, json_of, site, state_of};
use crate::site::Site;

/// The typed confirmation of checkout_v2's promote.
const PHRASE: &str = "promote checkout_v2 to prod";

/// csv_export_streaming (a 24 h soak) on in staging as olive and marked by root: the
/// promotion's id, when its soak ends, and the mark's answer.
fn soaking(site: &Site) -> (String, DateTime<Utc>, Value) {
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
    (soaking, soak_ends_at, marked)
}

/// checkout_v2 on in staging from direct SQL (audited by the database, so that no
/// code is spent on the way) and marked by root: the mark's answer.
async fn high_risk_marked(test_db: &TestDb, site: &Site) -> Value {
    test_db
        .execute("INSERT INTO console_feature_flags (flag_key, env, value) VALUES ('checkout_v2', 'staging', 1)")
        .await
        .unwrap();
    json_of(&site.run(&["promotion", "mark", "checkout_v2", "--as", "root", "--json"]))
}

/// [`site`] with root enrolled and checkout_v2's promotion approved: the promotion's
/// id and a code root's authenticator shows now (the binary reads the real clock).
async fn high_risk_approved(backend: Backend) -> (TestDb, Site, i64, String) {
    let (test_db, site) = site(backend).await;
    let enrol = site.run(&["user", "totp", "root"]);
    let uri = ok(&enrol).trim().to_owned();
    let marked = high_risk_marked(&test_db, &site).await;
    let id = marked["promotion"]["id"].as_i64().unwrap();
    ok(&site.run(&["promotion", "approve", &id.to_string(), "--as", "root"]));
    let now = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .as_secs();
    let code = vexil_app::code_at(&uri, now).unwrap();
    (test_db, site, id, code)
}

/// `promotion promote ID --as root` with `extra`.
fn promote(site: &Site, id: i64, extra: &[&str]) -> Run {
    let risky = id.to_string();
    let mut args = vec!["promotion", "promote", risky.as_str(), "--as", "root"];
    args.extend_from_slice(extra);
    site.run(&args)
}

/// Since the log held `log` rows nothing was written, no code was checked, and
/// promotion `id` of checkout_v2 is still approved with no prod row.
async fn nothing_written(test_db: &TestDb, log: usize, id: i64) {
    let after = audit_log(&test_db.db).await;
    assert_eq!(after.len(), log, "nothing written");
    assert!(
        !after
            .iter()
            .any(|row| row.action.starts_with("console.auth.elevate")),
        "no code was checked"
    );
    assert!(!has_prod_row(test_db, "checkout_v2").await);
    assert_eq!(state_of(test_db, id).await, "approved");
}

async fn a_marked_flag_soaks_for_its_period(backend: Backend) {
    let (_test_db, site) = site(backend).await;
    let (_soaking, _soak_ends_at, marked) = soaking(&site);
    let remaining = marked["promotion"]["soak_remaining_seconds"]
        .as_i64()
        .unwrap();
    assert!((86_390..=86_400).contains(&remaining), "{marked}");
}
both!(a_marked_flag_soaks_for_its_period);

/// The soak: a 24 h flag cannot be approved yet, and the message says until when.
async fn approve_before_the_soak_ends_is_refused(backend: Backend) {
    let (test_db, site) = site(backend).await;
    let (soaking, soak_ends_at, _marked) = soaking(&site);
    let log = audit_rows(&test_db).await;
    fails(
        &site.run(&["promotion", "approve", &soaking, "--as", "root"]),
        1,
        &format!(
            "error: promotion {soaking} of csv_export_streaming: the soak ends at {} UTC: approve after that\n",
            soak_ends_at.format("%Y-%m-%d %H:%M:%S")
        ),
    );
    assert_eq!(audit_rows(&test_db).await, log);
}
both!(approve_before_the_soak_ends_is_refused);

async fn show_says_when_the_soak_ends(backend: Backend) {
    let (_test_db, site) = site(backend).await;
    let (soaking, soak_ends_at, _marked) = soaking(&site);
    let shown = site.run(&["promotion", "show", &soaking]);
    assert!(
        ok(&shown).contains(&format!(
            "soak_ends_at: {} UTC (",
            soak_ends_at.format("%Y-%m-%d %H:%M:%S")
        )) && shown.stdout.contains(" left)\n"),
        "{shown:?}"
    );
}
both!(show_says_when_the_soak_ends);

/// The role: ops may neither mark nor move a promotion, with or without a code.
async fn ops_may_neither_mark_nor_move_a_promotion(backend: Backend) {
    let (test_db, site) = site(backend).await;
    let (soaking, _soak_ends_at, _marked) = soaking(&site);
    ok(&site.run(&[
        "flip",
        "onboarding_checklist_v2",
        "--env",
        "staging",
        "--on",
        "--as",
        "olive",
    ]));
    let log = audit_rows(&test_db).await;
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
    assert_eq!(audit_rows(&test_db).await, log, "nothing written");
    assert_eq!(
        state_of(&test_db, soaking.parse().unwrap()).await,
        "pending"
    );
    assert_eq!(
        ok(&site.run(&["promotion", "list", "--flag", "onboarding_checklist_v2"])),
        "no promotions\n"
    );
}
both!(ops_may_neither_mark_nor_move_a_promotion);

async fn reject_ends_a_promotion_with_its_reason(backend: Backend) {
    let (test_db, site) = site(backend).await;
    let (soaking, _soak_ends_at, _marked) = soaking(&site);
    let log = audit_rows(&test_db).await;
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
}
both!(reject_ends_a_promotion_with_its_reason);

async fn a_high_risk_promotion_names_its_phrase(backend: Backend) {
    let (test_db, site) = site(backend).await;
    let marked = high_risk_marked(&test_db, &site).await;
    let risky = marked["promotion"]["id"].as_i64().unwrap().to_string();
    assert_eq!(marked["promotion"]["confirmation_phrase"], PHRASE);
    let shown = site.run(&["promotion", "show", &risky]);
    assert!(
        ok(&shown).contains("\nrisk: high\n")
            && shown
                .stdout
                .ends_with(&format!("confirmation_phrase: {PHRASE}\n")),
        "{shown:?}"
    );
}
both!(a_high_risk_promotion_names_its_phrase);

async fn a_high_risk_promote_without_the_phrase_is_refused(backend: Backend) {
    let (test_db, site, id, code) = high_risk_approved(backend).await;
    let log = audit_rows(&test_db).await;
    fails(
        &promote(&site, id, &["--totp", &code]),
        1,
        &format!("error: promoting a high-risk flag needs the typed confirmation '{PHRASE}'\n"),
    );
    nothing_written(&test_db, log, id).await;
}
both!(a_high_risk_promote_without_the_phrase_is_refused);

async fn a_high_risk_promote_with_another_phrase_is_refused(backend: Backend) {
    let (test_db, site, id, code) = high_risk_approved(backend).await;
    let log = audit_rows(&test_db).await;
    for wrong in [
        "promote checkout_v2 to prod ",
        "Promote checkout_v2 to prod",
        "promote dark_mode to prod",
    ] {
        fails(
            &promote(&site, id, &["--confirm", wrong, "--totp", &code]),
            1,
            &format!("error: the typed confirmation does not match: type '{PHRASE}' exactly\n"),
        );
    }
    nothing_written(&test_db, log, id).await;
}
both!(a_high_risk_promote_with_another_phrase_is_refused);

async fn a_high_risk_promote_without_a_code_is_refused(backend: Backend) {
    let (test_db, site, id, _code) = high_risk_approved(backend).await;
    let log = audit_rows(&test_db).await;
    fails(
        &promote(&site, id, &["--confirm", PHRASE]),
        1,
        "error: to promote a high-risk flag, elevate with a fresh TOTP code first\n",
    );
    nothing_written(&test_db, log, id).await;
}
both!(a_high_risk_promote_without_a_code_is_refused);

/// The code the refusals carried was never spent: it promotes after them.
async fn a_refused_promote_spends_no_code(backend: Backend) {
    let (test_db, site, id, code) = high_risk_approved(backend).await;
    let log = audit_rows(&test_db).await;
    fails(
        &promote(&site, id, &["--totp", &code]),
        1,
        &format!("error: promoting a high-risk flag needs the typed confirmation '{PHRASE}'\n"),
    );
    fails(
        &promote(
            &site,
            id,
            &["--confirm", "promote dark_mode to prod", "--totp", &code],
        ),
        1,
        &format!("error: the typed confirmation does not match: type '{PHRASE}' exactly\n"),
    );
    nothing_written(&test_db, log, id).await;
    let promoted = promote(&site, id, &["--confirm", PHRASE, "--totp", &code]);
    // The code's elevation is audited first (`console.auth.elevate`, as from every
    // door), then the prod flip, then the promotion.
    assert_eq!(
        ok(&promoted),
        format!(
            "promotion {id} of checkout_v2: promoted by root, now on in prod (audit row {}; the prod flip: audit row {})\n",
            log + 3,
            log + 2
        )
    );
    assert!(has_prod_row(&test_db, "checkout_v2").await);
}
both!(a_refused_promote_spends_no_code);
