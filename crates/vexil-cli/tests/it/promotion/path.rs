//! The path from staging to prod from the command line: mark, show, approve, promote,
//! each step audited with `"via": "cli"`, the listings, and bad input.

use serde_json::json;
use vexil_store::Backend;
use vexil_testkit::{Run, both, fails, ok};

use super::{json_of, marked, promoted, site, timeless};

async fn mark_opens_a_pending_promotion(backend: Backend) {
    let (_test_db, site) = site(backend).await;
    let marked = marked(&site);
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
}
both!(mark_opens_a_pending_promotion);

async fn show_prints_a_promotion_and_when_it_expires(backend: Backend) {
    let (_test_db, site) = site(backend).await;
    let id = marked(&site)["promotion"]["id"].as_i64().unwrap();
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
}
both!(show_prints_a_promotion_and_when_it_expires);

async fn approve_names_its_audit_row(backend: Backend) {
    let (_test_db, site) = site(backend).await;
    let marked = marked(&site);
    let id = marked["promotion"]["id"].as_i64().unwrap();
    let mark_audit = marked["audit_id"].as_i64().unwrap();
    let approved = site.run(&["promotion", "approve", &id.to_string(), "--as", "root"]);
    let approve_audit = mark_audit + 1;
    assert_eq!(
        ok(&approved),
        format!("promotion {id} of dark_mode: approved by root (audit row {approve_audit})\n")
    );
}
both!(approve_names_its_audit_row);

async fn promote_ends_the_promotion_with_the_prod_flip(backend: Backend) {
    let (_test_db, _site, id, promoted) = promoted(backend).await;
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
}
both!(promote_ends_the_promotion_with_the_prod_flip);

/// Prod is on, from its row, as every process with the DB layer on sees it.
async fn a_promoted_flag_is_on_in_prod_from_its_row(backend: Backend) {
    let (_test_db, site, _id, _promoted) = promoted(backend).await;
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
}
both!(a_promoted_flag_is_on_in_prod_from_its_row);

async fn each_step_is_audited_via_cli(backend: Backend) {
    let (_test_db, site, id, promoted) = promoted(backend).await;
    let flip_audit = promoted["flip_audit_id"].as_i64().unwrap();
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
}
both!(each_step_is_audited_via_cli);

async fn list_in_json_is_the_array_of_views(backend: Backend) {
    let (_test_db, site, _id, promoted) = promoted(backend).await;
    let all = json_of(&site.run(&["promotion", "list", "--json"]));
    assert_eq!(timeless(&all), json!([timeless(&promoted["promotion"])]));
}
both!(list_in_json_is_the_array_of_views);

async fn list_filters_by_state_and_flag(backend: Backend) {
    let (_test_db, site, _id, _promoted) = promoted(backend).await;
    let none = site.run(&["promotion", "list", "--state", "pending", "--json"]);
    assert_eq!(ok(&none), "[]\n");
    assert_eq!(
        ok(&site.run(&["promotion", "list", "--flag", "checkout_v2"])),
        "no promotions\n"
    );
}
both!(list_filters_by_state_and_flag);

async fn list_prints_a_table(backend: Backend) {
    let (_test_db, site, id, _promoted) = promoted(backend).await;
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
}
both!(list_prints_a_table);

/// A promoted promotion accepts nothing more; it is not an input error.
async fn a_promoted_promotion_accepts_nothing_more(backend: Backend) {
    let (_test_db, site, id, _promoted) = promoted(backend).await;
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
}
both!(a_promoted_promotion_accepts_nothing_more);

/// Bad input: exit 2, one line naming what was wrong (promotion 1 exists).
async fn bad_input_is_named(backend: Backend) {
    let (_test_db, site, _id, _promoted) = promoted(backend).await;
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
}
both!(bad_input_is_named);

async fn reject_without_a_reason_is_a_usage_error(backend: Backend) {
    let (_test_db, site) = site(backend).await;
    let id = marked(&site)["promotion"]["id"].as_i64().unwrap();
    let usage = site.run(&["promotion", "reject", &id.to_string(), "--as", "root"]);
    assert_eq!(usage.code, Some(2), "{usage:?}");
    assert!(
        usage
            .stderr
            .contains("required arguments were not provided:\n  --reason <REASON>"),
        "{usage:?}"
    );
}
both!(reject_without_a_reason_is_a_usage_error);
