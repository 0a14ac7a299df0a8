//! `/console/audit` over HTTP: newest first, filters as query parameters, pages cut
//! by row id that rows appended meanwhile do not shift, and bad filters named.

use vexil_store::Backend;

use crate::harness::TestConsole;

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
    assert_eq!(first.body.matches("<tr id=\"audit-").count(), 50);
    first.assert_contains("<tr id=\"audit-67\">");
    let older = first.body.split("rel=\"next\"").next().unwrap();
    let href = &older[older.rfind("href=\"").unwrap() + 6..older.rfind('"').unwrap()];
    assert_eq!(href, "/console/audit?before=18");
    // Rows appended meanwhile do not shift the next page.
    assert_eq!(
        browser.flip("dark_mode", "prod", value, &[]).await.status,
        303
    );
    let second = browser.get(&href.replace("&amp;", "&")).await;
    let ids: Vec<&str> = second
        .body
        .split("<tr id=\"audit-")
        .skip(1)
        .map(|rest| &rest[..rest.find('"').unwrap()])
        .collect();
    let expected: Vec<String> = (1..=17).rev().map(|id| id.to_string()).collect();
    assert_eq!(ids, expected, "the set-up's rows (1 to 6) included");
    assert!(!second.body.contains("rel=\"next\""));
    // Each flip shows its receipt (no process links the library here), and only a
    // flip: the second page holds ten of them and the set-up's and sign-in's rows.
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
        assert_eq!(
            page.body.matches("<tr id=\"audit-").count(),
            rows,
            "{query}"
        );
    }
    let flip = browser.get("/console/audit?env=prod&flag=dark_mode").await;
    flip.assert_contains("<dt>from</dt><dd>off</dd>");
    flip.assert_contains("<dt>to</dt><dd>on</dd>");
    for (query, error) in [
        ("?before=x", "before=\"x\": expected the id of an audit row"),
        ("?before=-3", "expected the id of an audit row"),
        (
            "?since=yesterday",
            "since='yesterday': expected an RFC 3339 time",
        ),
        ("?env=qa", "unknown env"),
    ] {
        let page = browser.get(&format!("/console/audit{query}")).await;
        assert_eq!(page.status, 400, "{query}");
        page.assert_says(error);
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
