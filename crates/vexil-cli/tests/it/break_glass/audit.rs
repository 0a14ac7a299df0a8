//! `audit`, `audit show` and `instances`: a flip's propagation receipts when no process
//! links the library, a row that is not a flip or does not exist, a bad `--since`, and
//! the fleet when none of it is live.

use serde_json::Value;
use vexil_store::Backend;
use vexil_testkit::{both, fails, ok};

use super::{site, site_after_a_flip};
use crate::site::Site;

/// The id of the audit row of the flip [`site_after_a_flip`] made.
fn flip_id(site: &Site) -> String {
    let audit: Value =
        serde_json::from_str(ok(&site.run(&["audit", "--flag", "dark_mode", "--json"]))).unwrap();
    audit[0]["id"].as_i64().unwrap().to_string()
}

async fn a_bad_since_is_named(backend: Backend) {
    let (_test_db, site) = site(backend).await;
    fails(
        &site.run(&["audit", "--since", "yesterday"]),
        2,
        "error: --since 'yesterday': expected an RFC 3339 time (2026-11-24T07:35:42Z), a UTC time (2026-11-24T07:35) or a date (2026-11-24)\n",
    );
}
both!(a_bad_since_is_named);

/// No process links the library here, so none applies the flip.
async fn a_flips_receipt_says_no_instance_reports(backend: Backend) {
    let (_test_db, site) = site_after_a_flip(backend).await;
    let flip_id = flip_id(&site);
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
}
both!(a_flips_receipt_says_no_instance_reports);

async fn a_flips_receipt_in_json_lists_no_instances(backend: Backend) {
    let (_test_db, site) = site_after_a_flip(backend).await;
    let flip_id = flip_id(&site);
    let shown: Value =
        serde_json::from_str(ok(&site.run(&["audit", "show", &flip_id, "--json"]))).unwrap();
    assert_eq!(
        (shown["flag"].as_str(), shown["env"].as_str()),
        (Some("dark_mode"), Some("prod"))
    );
    assert_eq!(shown["instances"], serde_json::json!([]));
}
both!(a_flips_receipt_in_json_lists_no_instances);

async fn audit_show_of_a_row_that_is_not_a_flip_is_refused(backend: Backend) {
    let (_test_db, site) = site(backend).await;
    ok(&site.run(&["user", "disable", "olive"]));
    let users_audit: Value = serde_json::from_str(ok(&site.run(&[
        "audit",
        "--action",
        "console.user.disable",
        "--json",
    ])))
    .unwrap();
    let disable_id = users_audit[0]["id"].as_i64().unwrap();
    fails(
        &site.run(&["audit", "show", &disable_id.to_string()]),
        2,
        &format!(
            "error: audit row {disable_id} is not a flag change: only a flip has propagation receipts\n"
        ),
    );
}
both!(audit_show_of_a_row_that_is_not_a_flip_is_refused);

async fn audit_show_of_a_missing_row_is_named(backend: Backend) {
    let (_test_db, site) = site(backend).await;
    fails(
        &site.run(&["audit", "show", "999999"]),
        2,
        "error: no audit row 999999\n",
    );
}
both!(audit_show_of_a_missing_row_is_named);

async fn instances_with_none_live_says_so(backend: Backend) {
    let (_test_db, site) = site(backend).await;
    assert_eq!(ok(&site.run(&["instances"])), "no live instances\n");
    assert_eq!(
        ok(&site.run(&["instances", "--env", "prod", "--json"])),
        "[]\n"
    );
}
both!(instances_with_none_live_says_so);

async fn instances_of_an_unknown_env_is_refused(backend: Backend) {
    let (_test_db, site) = site(backend).await;
    let unknown = site.run(&["instances", "--env", "qa"]);
    assert_eq!(unknown.code, Some(2), "{unknown:?}");
    assert!(unknown.stderr.contains("'qa'"), "{unknown:?}");
}
both!(instances_of_an_unknown_env_is_refused);
