//! `token create|list|revoke`: an API token is printed once, listed by its prefix
//! only, and revoked for good.

use serde_json::Value;
use vexil_store::Backend;
use vexil_testkit::{both, fails, ok};

use super::site;

async fn a_token_is_printed_once_and_listed_by_its_prefix(backend: Backend) {
    let (_test_db, site) = site(backend).await;
    let token = ok(&site.run(&["token", "create", "olive"]))
        .trim()
        .to_owned();
    assert!(token.starts_with("vxl_") && token.len() == 68, "{token}");
    let tokens: Value = serde_json::from_str(ok(&site.run(&["token", "list", "--json"]))).unwrap();
    assert_eq!(tokens[0]["token"], format!("{}…", &token[..12]));
    assert!(
        !tokens.to_string().contains(&token),
        "the token itself is never listed"
    );
}
both!(a_token_is_printed_once_and_listed_by_its_prefix);

async fn a_revoked_token_stays_revoked(backend: Backend) {
    let (_test_db, site) = site(backend).await;
    ok(&site.run(&["token", "create", "olive"]));
    assert_eq!(
        ok(&site.run(&["token", "revoke", "1"])),
        "API token 1 is revoked\n"
    );
    fails(
        &site.run(&["token", "revoke", "1"]),
        1,
        "error: API token 1 is already revoked\n",
    );
}
both!(a_revoked_token_stays_revoked);
