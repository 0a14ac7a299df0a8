//! `flip` from the command line: a flip is audited with `"via": "cli"` and listed from
//! its row; each refusal (the value it has, the role, a high-risk flag, an unknown
//! flag, env or account, a row the flags file does not declare) is one line.

use serde_json::Value;
use vexil_store::Backend;
use vexil_testkit::{Run, both, fails, ok};

use super::{site, site_after_a_flip};
use crate::VEXIL;

async fn a_flip_is_audited_via_cli(backend: Backend) {
    let (_test_db, site) = site(backend).await;
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
    let audit: Value =
        serde_json::from_str(ok(&site.run(&["audit", "--flag", "dark_mode", "--json"]))).unwrap();
    let rows = audit.as_array().unwrap();
    assert_eq!(rows.len(), 1);
    assert_eq!(rows[0]["actor"], "olive");
    assert_eq!(
        rows[0]["payload"],
        serde_json::json!({"flag": "dark_mode", "env": "prod", "from": false, "to": true, "via": "cli", "reason": "INC-7"})
    );
}
both!(a_flip_is_audited_via_cli);

async fn a_flipped_flag_is_listed_from_its_row(backend: Backend) {
    let (test_db, site) = site_after_a_flip(backend).await;
    let list: Value = serde_json::from_str(ok(&Run::of(
        site.dir
            .command(VEXIL, ["flags", "list", "--env", "prod", "--json"])
            .env("DATABASE_URL", test_db.url_string())
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
}
both!(a_flipped_flag_is_listed_from_its_row);

async fn a_flip_to_the_value_a_flag_has_changes_nothing(backend: Backend) {
    let (_test_db, site) = site_after_a_flip(backend).await;
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
}
both!(a_flip_to_the_value_a_flag_has_changes_nothing);

async fn a_role_may_not_flip_a_flag_above_its_risk(backend: Backend) {
    let (_test_db, site) = site(backend).await;
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
}
both!(a_role_may_not_flip_a_flag_above_its_risk);

async fn a_high_risk_flip_without_a_totp_code_is_refused(backend: Backend) {
    let (_test_db, site) = site(backend).await;
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
}
both!(a_high_risk_flip_without_a_totp_code_is_refused);

async fn an_unknown_flag_is_named(backend: Backend) {
    let (_test_db, site) = site(backend).await;
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
}
both!(an_unknown_flag_is_named);

async fn an_unknown_env_is_named(backend: Backend) {
    let (_test_db, site) = site_after_a_flip(backend).await;
    fails(
        &site.run(&["flip", "dark_mode", "--env", "qa", "--on", "--as", "olive"]),
        2,
        "error: unknown env 'qa' (expected one of: staging, prod)\n",
    );
}
both!(an_unknown_env_is_named);

async fn an_unknown_account_is_named(backend: Backend) {
    let (_test_db, site) = site_after_a_flip(backend).await;
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
}
both!(an_unknown_account_is_named);

/// A row for a flag the file does not declare, left by direct SQL (the database's own
/// client, as an operator would type it).
const STRAY_ROW: &str =
    "INSERT INTO console_feature_flags (flag_key, env, value) VALUES ('retired_flag', 'prod', 1)";

async fn a_row_the_flags_file_does_not_declare_is_not_flippable(backend: Backend) {
    let (test_db, site) = site(backend).await;
    test_db.client(STRAY_ROW);
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
}
both!(a_row_the_flags_file_does_not_declare_is_not_flippable);

async fn the_listing_points_at_a_row_the_flags_file_does_not_declare(backend: Backend) {
    let (test_db, site) = site(backend).await;
    test_db.client(STRAY_ROW);
    let listed = site.run(&["flags", "list", "--env", "prod"]);
    let warning = "warning: the database has a row for 'retired_flag' in prod, which the flags file does not declare";
    assert!(listed.stderr.contains(warning), "{listed:?}");
}
both!(the_listing_points_at_a_row_the_flags_file_does_not_declare);

/// A reason with a control or bidi character is bad input (exit 2), named with the
/// character as `U+XXXX`, and nothing is written. (A NUL cannot reach the CLI: an
/// argument is a C string.)
#[tokio::test]
async fn a_reason_with_a_control_or_bidi_character_is_refused() {
    let (_test_db, site) = site(Backend::Sqlite).await;
    for (reason, says) in [
        (
            "INC-7 \u{1b}[2J",
            "error: reason: character 7 is U+001B, a control character, which could drive a terminal: remove it\n",
        ),
        (
            "\u{202E}7-CNI",
            "error: reason: character 1 is U+202E, a bidi control, which would reorder the text shown around it: remove it\n",
        ),
    ] {
        fails(
            &site.run(&[
                "flip",
                "dark_mode",
                "--env",
                "prod",
                "--on",
                "--as",
                "olive",
                "--reason",
                reason,
            ]),
            2,
            says,
        );
    }
    let audit: Value =
        serde_json::from_str(ok(&site.run(&["audit", "--flag", "dark_mode", "--json"]))).unwrap();
    assert_eq!(audit, serde_json::json!([]), "nothing was written");
    fails(
        &site.run(&["audit", "--actor", "olive\u{1b}"]),
        2,
        "error: actor: character 6 is U+001B, a control character, which could drive a terminal: remove it\n",
    );
}
