//! `/console/audit` over HTTP: one sentence a row, newest first, filters as query
//! parameters (the flag and account ones matching part of a name), pages cut by row
//! id that rows appended meanwhile do not shift, both ways, and bad filters named
//! next to their fields.

use chrono::TimeDelta;
use vexil_store::Backend;

use crate::harness::{Page, TestConsole};

#[tokio::test]
async fn the_audit_page_filters_and_pages_by_row_id() {
    let console = TestConsole::start(Backend::Sqlite).await;
    let browser = console.signed_in("root").await;
    let mut value = false;
    for _ in 0..30 {
        for env in ["staging", "prod"] {
            let page = browser.flip("dark_mode", env, value, &[]).await;
            assert_eq!(page.status, 303, "{}", page.body);
        }
        value = !value;
    }
    // 6 set-up rows, 1 sign-in, 60 flips. Newest first, 50 a page.
    let first = browser.get("/console/audit").await;
    assert_eq!(row_ids(&first).len(), 50);
    first.assert_contains("<tr id=\"audit-67\">");
    let href = link(&first, "next");
    assert_eq!(href, "/console/audit?before=18");
    // Rows appended meanwhile do not shift the next page.
    assert_eq!(
        browser.flip("dark_mode", "prod", value, &[]).await.status,
        303
    );
    let second = browser.get(&href).await;
    let expected: Vec<i64> = (1..=17).rev().collect();
    assert_eq!(
        row_ids(&second),
        expected,
        "the set-up's rows (1 to 6) included"
    );
    assert!(!second.body.contains("rel=\"next\""));
    // Each flip keeps its receipt in its details (no process links the library
    // here), and only a flip: the second page holds ten of them and the set-up's and
    // sign-in's rows.
    let receipt = r#"<p class="receipt">Receipt: no instance reports</p>"#;
    assert_eq!(first.body.matches(receipt).count(), 50);
    assert_eq!(second.body.matches(receipt).count(), 10);
    second.assert_contains(">Newest</a>");

    for (query, rows) in [
        ("?env=staging", 30),
        ("?env=prod&flag=dark_mode", 31),
        ("?action=console.auth.sign_in", 1),
        ("?account=root&env=prod", 31),
        ("?account=ops1", 1), // its creation (a row about it), no more
        ("?flag=new_checkout", 0),
        ("?since=2026-01-15T09:30&until=2026-01-16", 50),
        ("?until=2026-01-15", 0),
    ] {
        let page = browser.get(&format!("/console/audit{query}")).await;
        assert_eq!(page.status, 200, "{query}");
        assert_eq!(row_ids(&page).len(), rows, "{query}");
    }
    let flip = browser.get("/console/audit?env=prod&flag=dark_mode").await;
    flip.assert_contains("<dt>from</dt><dd>off</dd>");
    flip.assert_contains("<dt>to</dt><dd>on</dd>");
}

/// A flip reads as one sentence: who, which flag, on or off, where, and the reason
/// quoted, cut with … past 80 characters; no reason, no colon.
#[tokio::test]
async fn a_flip_reads_as_one_sentence_with_its_reason() {
    let console = TestConsole::start(Backend::Sqlite).await;
    let browser = console.signed_in("root").await;
    let long = format!("INC-78 {}", "very ".repeat(30));
    // Prod asks for a reason; staging takes a flip without one.
    for (env, from, reason) in [
        ("prod", false, "INC-77 rollback"),
        ("prod", true, long.as_str()),
        ("staging", false, ""),
    ] {
        let page = browser
            .flip("dark_mode", env, from, &[("reason", reason)])
            .await;
        assert_eq!(page.status, 303, "{}", page.body);
    }
    let page = browser.get("/console/audit?action=console.flag.flip").await;
    let cut: String = long.chars().take(80).collect();
    assert_eq!(
        sentences(&page),
        [
            "root turned dark_mode ON in staging".to_owned(),
            format!("root turned dark_mode OFF in prod: '{}…'", cut.trim_end()),
            "root turned dark_mode ON in prod: 'INC-77 rollback'".to_owned(),
        ]
    );
    // The flag in the sentence leads to its page (both envs and its history).
    page.assert_contains(r#"<a href="/console/flags/dark_mode"><code>dark_mode</code></a>"#);
    // Who: the account; a change made by direct SQL says so.
    console
        .test_db()
        .execute("UPDATE console_feature_flags SET value = 1 WHERE flag_key = 'dark_mode' AND env = 'prod'")
        .await
        .unwrap();
    let page = browser.get("/console/audit?action=console.flag.flip").await;
    assert_eq!(
        sentences(&page)[0],
        "direct SQL turned dark_mode ON in prod"
    );
    // The same statement again changes nothing: a write without change, not a flip.
    console
        .test_db()
        .execute("UPDATE console_feature_flags SET value = 1 WHERE flag_key = 'dark_mode' AND env = 'prod'")
        .await
        .unwrap();
    let page = browser.get("/console/audit").await;
    assert_eq!(
        sentences(&page)[0],
        "direct SQL wrote the dark_mode row in prod without changing it (still ON)"
    );
    let flips = browser.get("/console/audit?action=console.flag.flip").await;
    assert_eq!(
        sentences(&flips)[0],
        "direct SQL turned dark_mode ON in prod"
    );
}

/// The whole payload stays one click away, folded, the change and its reason first.
#[tokio::test]
async fn details_are_folded_with_the_change_and_its_reason_first() {
    let console = TestConsole::start(Backend::Sqlite).await;
    let browser = console.signed_in("root").await;
    let page = browser
        .flip("dark_mode", "prod", false, &[("reason", "INC-77")])
        .await;
    assert_eq!(page.status, 303, "{}", page.body);
    let page = browser.get("/console/audit?action=console.flag.flip").await;
    let row = &page.body[page.body.find("<tr id=\"audit-").unwrap()..];
    let details = &row[row.find("<details>").expect("folded")..row.find("</details>").unwrap()];
    let keys: Vec<&str> = details
        .split("<dt>")
        .skip(1)
        .map(|rest| &rest[..rest.find("</dt>").unwrap()])
        .collect();
    assert_eq!(keys, ["from", "to", "reason", "flag", "env", "via"]);
    assert!(
        details.contains("<dt>reason</dt><dd>INC-77</dd>"),
        "{details}"
    );
    assert!(
        details.contains("Flag flipped <code>console.flag.flip</code>"),
        "{details}"
    );
}

/// The action filter reads in words; the values sent stay the fixed action names.
#[tokio::test]
async fn the_action_filter_offers_readable_names_with_the_fixed_values() {
    let console = TestConsole::start(Backend::Sqlite).await;
    let browser = console.signed_in("root").await;
    let page = browser.get("/console/audit").await;
    for (value, label) in [
        ("console.flag.flip", "Flag flipped"),
        ("console.flag.approved", "Promotion approved"),
        ("console.user.set_role", "Role changed"),
        ("console.client_key.revoke", "Client key revoked"),
        ("console.auth.sign_in_failed", "Sign-in failed"),
    ] {
        page.assert_contains(&format!(r#"<option value="{value}">{label}</option>"#));
    }
    page.assert_contains(r#"<optgroup label="Flags">"#);
    let page = browser
        .get("/console/audit?action=console.auth.sign_in")
        .await;
    page.assert_contains(r#"<option value="console.auth.sign_in" selected>Signed in</option>"#);
    assert_eq!(sentences(&page), ["root signed in from 127.0.0.1"]);
}

/// The flag and account boxes match part of a name in any case, and suggest the
/// declared flags and the accounts.
async fn flag_and_account_filters_match_part_of_a_name(backend: Backend) {
    let console = TestConsole::start(backend).await;
    let root = console.signed_in("root").await;
    let ops = console.signed_in("ops1").await;
    let no_reason = [("reason", "")];
    assert_eq!(
        root.flip("dark_mode", "staging", false, &no_reason)
            .await
            .status,
        303
    );
    assert_eq!(
        ops.flip("legacy_banner", "staging", false, &no_reason)
            .await
            .status,
        303
    );
    let page = root.get("/console/audit?flag=DARK").await;
    assert_eq!(sentences(&page), ["root turned dark_mode ON in staging"]);
    page.assert_contains(r#"value="DARK" list="flag-names""#);
    let page = root.get("/console/audit?account=PS").await;
    assert_eq!(
        sentences(&page),
        [
            "ops1 turned legacy_banner ON in staging",
            "ops1 signed in from 127.0.0.1",
            "the CLI added account ops1 as ops",
        ]
    );
    let page = root.get("/console/audit?account=o&flag=banner").await;
    assert_eq!(
        sentences(&page),
        ["ops1 turned legacy_banner ON in staging"]
    );
    let flags = datalist(&page, "flag-names");
    assert_eq!(
        flags,
        [
            "dark_mode",
            "legacy_banner",
            "new_checkout",
            "search_typo_tolerance"
        ]
    );
    let accounts = datalist(&page, "account-names");
    assert_eq!(accounts, ["admin", "helper", "ops1", "reader", "root"]);
}
vexil_testkit::both!(flag_and_account_filters_match_part_of_a_name);

/// `%`, `_` and `\` typed in a box match only themselves, not any text.
async fn like_wildcards_in_a_filter_match_only_themselves(backend: Backend) {
    let console = TestConsole::start(backend).await;
    let root = console.signed_in("root").await;
    assert_eq!(root.flip("dark_mode", "prod", false, &[]).await.status, 303);
    assert_eq!(
        root.flip("legacy_banner", "prod", false, &[]).await.status,
        303
    );
    for (query, rows) in [
        ("flag=%25", 0),
        ("flag=%5C", 0),
        ("flag=k_m", 1),
        ("flag=_", 2),
        ("account=%25", 0),
        ("account=r_o", 0),
        ("account=%5C", 0),
    ] {
        let page = root.get(&format!("/console/audit?{query}")).await;
        assert_eq!(page.status, 200, "{query}");
        assert_eq!(row_ids(&page).len(), rows, "{query}");
    }
}
vexil_testkit::both!(like_wildcards_in_a_filter_match_only_themselves);

/// A date that does not read is named next to its field (422), the form as typed,
/// and no error page in its place.
#[tokio::test]
async fn a_bad_date_is_named_next_to_its_field_with_the_form_kept() {
    let console = TestConsole::start(Backend::Sqlite).await;
    let browser = console.signed_in("root").await;
    let page = browser
        .get("/console/audit?flag=dark&account=ro&action=console.flag.flip&since=yesterday")
        .await;
    assert_eq!(page.status, 422, "{}", page.body);
    page.assert_contains("<h1>Audit log</h1>");
    page.assert_contains(
        r#"<input id="since" name="since" type="text" value="yesterday" placeholder="2026-01-15 09:30" aria-invalid="true" aria-describedby="since-error">"#,
    );
    page.assert_says(
        r#"<p class="field-error" id="since-error">'yesterday': expected an RFC 3339 time"#,
    );
    page.assert_contains(r#"value="dark" list="flag-names""#);
    page.assert_contains(r#"value="ro" list="account-names""#);
    page.assert_contains(r#"<option value="console.flag.flip" selected>Flag flipped</option>"#);
    assert!(row_ids(&page).is_empty());
    assert!(
        !page
            .body
            .contains("aria-invalid=\"true\" aria-describedby=\"until-error\"")
    );
}

/// Every filter the page cannot apply is named where it was given, with 422.
#[tokio::test]
async fn filters_that_cannot_apply_are_named_where_they_were_given() {
    let console = TestConsole::start(Backend::Sqlite).await;
    let browser = console.signed_in("root").await;
    #[track_caller]
    fn check(page: &Page, field: &str, says: &str) {
        assert_eq!(page.status, 422, "{field}: {}", page.body);
        page.assert_says(says);
        if !field.is_empty() {
            page.assert_contains(&format!(
                r#"aria-invalid="true" aria-describedby="{field}-error""#
            ));
        }
    }
    for (query, field, says) in [
        (
            "since=2026-01-16&until=2026-01-15",
            "until",
            "the range ends before it starts: until must be later than since (2026-01-16 00:00:00 UTC)",
        ),
        (
            "action=console.flag.flop",
            "action",
            "\"console.flag.flop\" is not an action vexil records",
        ),
        ("env=qa", "env", "unknown env 'qa'"),
        (
            "before=x",
            "",
            "before=\"x\": expected the id of an audit row",
        ),
        (
            "after=-3",
            "",
            "after=\"-3\": expected the id of an audit row",
        ),
    ] {
        let page = browser.get(&format!("/console/audit?{query}")).await;
        check(&page, field, says);
    }
    let page = browser
        .get("/console/audit?since=2026-01-16T00:00&until=2026-01-15")
        .await;
    page.assert_contains(
        r#"<input id="since" name="since" type="datetime-local" value="2026-01-16T00:00""#,
    );
}

/// Newer and Older go back and forth over the same pages, keeping the filters.
#[tokio::test]
async fn newer_and_older_links_go_back_and_forth() {
    let console = TestConsole::start(Backend::Sqlite).await;
    let browser = console.signed_in("root").await;
    let mut value = false;
    for _ in 0..120 {
        let page = browser.flip("dark_mode", "prod", value, &[]).await;
        assert_eq!(page.status, 303, "{}", page.body);
        value = !value;
    }
    // 120 flips, ids 8 to 127: pages of 50.
    let filtered = "/console/audit?flag=dark&env=prod";
    let first = browser.get(filtered).await;
    assert!(!first.body.contains("rel=\"prev\""), "the newest page");
    let older = link(&first, "next");
    assert_eq!(older, "/console/audit?flag=dark&env=prod&before=78");
    let second = browser.get(&older).await;
    assert_eq!(row_ids(&second), (28..=77).rev().collect::<Vec<_>>());
    let third = browser.get(&link(&second, "next")).await;
    assert_eq!(row_ids(&third), (8..=27).rev().collect::<Vec<_>>());
    assert!(!third.body.contains("rel=\"next\""), "the oldest page");
    let newer = link(&third, "prev");
    assert_eq!(newer, "/console/audit?flag=dark&env=prod&after=27");
    let back = browser.get(&newer).await;
    assert_eq!(row_ids(&back), row_ids(&second));
    let back = browser.get(&link(&back, "prev")).await;
    assert_eq!(row_ids(&back), row_ids(&first));
    assert!(!back.body.contains("rel=\"prev\""));
}

/// Times read relative to the app's clock, the UTC instant on hover, without
/// JavaScript.
#[tokio::test]
async fn times_read_relative_with_the_utc_instant_on_hover() {
    let console = TestConsole::start(Backend::Sqlite).await;
    let browser = console.signed_in("root").await;
    assert_eq!(
        browser.flip("dark_mode", "prod", false, &[]).await.status,
        303
    );
    let flip = "/console/audit?action=console.flag.flip";
    let time = |says: &str| {
        format!(
            r#"<time datetime="2026-01-15T09:30:00Z" title="2026-01-15 09:30:00 UTC">{says}</time>"#
        )
    };
    for (advance, says) in [
        (TimeDelta::minutes(3), "3 min ago"),
        (TimeDelta::hours(2), "2 h ago"),
        (TimeDelta::hours(22), "yesterday"),
        (TimeDelta::days(2), "2026-01-15"),
    ] {
        console.clock.advance(advance);
        // A session lasts less than these waits: a fresh one each time.
        let browser = console.signed_in("root").await;
        browser.get(flip).await.assert_contains(&time(says));
    }
}

/// A row inserted by SQL that claims to be a console flip by an account carries no
/// proof of vexil's: the page shows it as direct SQL, naming the claim.
async fn a_forged_row_is_shown_as_direct_sql(backend: Backend) {
    let console = TestConsole::start(backend).await;
    let browser = console.signed_in("root").await;
    let page = browser.flip("dark_mode", "staging", false, &[]).await;
    assert_eq!(page.status, 303, "{}", page.body);
    let payload = match backend {
        Backend::Postgres => {
            "'{\"flag\": \"dark_mode\", \"env\": \"prod\", \"from\": false, \"to\": true, \"via\": \"console\"}'"
        }
        Backend::Sqlite => {
            "json_object('flag', 'dark_mode', 'env', 'prod', 'from', json('false'), 'to', json('true'), 'via', 'console')"
        }
    };
    console
        .test_db()
        .execute(&format!(
            "INSERT INTO console_audit_log (admin_id, action, target_type, target_id, payload) \
             SELECT id, 'console.flag.flip', 'feature_flag', 'dark_mode', {payload} \
             FROM users WHERE name = 'ops1'"
        ))
        .await
        .unwrap();
    let page = browser.get("/console/audit?flag=dark_mode").await;
    assert_eq!(page.status, 200);
    page.assert_contains("direct SQL (claims ops1)");
    assert_eq!(
        page.body.matches("direct SQL (claims").count(),
        1,
        "root's own flip stays root's"
    );
}
vexil_testkit::both!(a_forged_row_is_shown_as_direct_sql);

/// The server seals a flip's audit row within seconds, with nobody asking, and
/// publishes the chain's head on /metrics as an anchor.
async fn the_server_seals_and_publishes_its_head(backend: Backend) {
    let console = TestConsole::start(backend).await;
    let browser = console.signed_in("root").await;
    let page = browser.flip("dark_mode", "staging", false, &[]).await;
    assert_eq!(page.status, 303, "{}", page.body);
    let filter = vexil_store::AuditFilter {
        limit: 1,
        ..Default::default()
    };
    let newest = console.state.app.db().audit_page(&filter).await.unwrap()[0].id;
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(10);
    let head = loop {
        if let Some(head) = console.state.app.db().audit_head().await.unwrap()
            && head.id >= newest
        {
            break head;
        }
        assert!(
            std::time::Instant::now() < deadline,
            "not sealed within 10 s"
        );
        tokio::time::sleep(std::time::Duration::from_millis(100)).await;
    };
    let line = format!(
        "vexil_audit_head_info{{id=\"{}\",hash=\"{}\"}} 1",
        head.id,
        vexil_core::audit_chain::hex(&head.hash)
    );
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(10);
    loop {
        let metrics = browser.get("/metrics").await;
        if metrics.body.contains(&line) {
            break;
        }
        assert!(
            std::time::Instant::now() < deadline,
            "{line} not on /metrics:\n{}",
            metrics.body
        );
        tokio::time::sleep(std::time::Duration::from_millis(100)).await;
    }
}
vexil_testkit::both!(the_server_seals_and_publishes_its_head);

/// The ids of the page's rows, in order.
fn row_ids(page: &Page) -> Vec<i64> {
    page.body
        .split("<tr id=\"audit-")
        .skip(1)
        .map(|rest| rest[..rest.find('"').unwrap()].parse().unwrap())
        .collect()
}

/// The rows' sentences as a person reads them (tags dropped, escapes undone).
fn sentences(page: &Page) -> Vec<String> {
    page.text()
        .split("<span class=\"sentence\">")
        .skip(1)
        .map(|rest| without_tags(&rest[..rest.find("</span>").unwrap()]))
        .collect()
}

fn without_tags(html: &str) -> String {
    let mut text = String::new();
    let mut in_tag = false;
    for c in html.chars() {
        match c {
            '<' => in_tag = true,
            '>' => in_tag = false,
            c if !in_tag => text.push(c),
            _ => {}
        }
    }
    text
}

/// The `href` of the page's link with `rel`, escapes undone.
#[track_caller]
fn link(page: &Page, rel: &str) -> String {
    let marker = format!("rel=\"{rel}\"");
    let before = page.body.split(&marker).next().unwrap();
    assert!(
        before.len() < page.body.len(),
        "no {rel} link:\n{}",
        page.body
    );
    let start = before.rfind("href=\"").unwrap() + 6;
    before[start..before[start..].find('"').unwrap() + start]
        .replace("&#38;", "&")
        .replace("&amp;", "&")
}

/// The values a `<datalist>` suggests.
fn datalist(page: &Page, id: &str) -> Vec<String> {
    let start = page.body.find(&format!("<datalist id=\"{id}\">")).unwrap();
    let list = &page.body[start..start + page.body[start..].find("</datalist>").unwrap()];
    list.split("<option value=\"")
        .skip(1)
        .map(|rest| rest[..rest.find('"').unwrap()].to_owned())
        .collect()
}
