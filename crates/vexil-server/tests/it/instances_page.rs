//! `/console/instances` and the audit log's propagation receipts, from live processes
//! linking the library: two staging processes that disagree about a variable, one
//! whose master switch is off, a flip made in the console reaching them, and prod with
//! no process at all.

use std::time::Duration;

use vexil_store::Backend;

use crate::harness::{Browser, Page, TestConsole};

/// A staging process of `application` with `vars`, once it has reported itself.
async fn process(console: &TestConsole, application: &str, vars: &[(&str, &str)]) -> vexil::Flags {
    console.live_instance("staging", application, vars).await
}

/// The table row of the process of `application`.
#[track_caller]
fn row_of(page: &Page, application: &str) -> String {
    page.body
        .split(r#"<tr id="instance-"#)
        .skip(1)
        .filter_map(|rest| rest.split("</tr>").next())
        .find(|row| {
            row.contains(&format!(
                r#"<td data-label="Application">{application}</td>"#
            ))
        })
        .unwrap_or_else(|| panic!("no row of {application}:\n{}", page.body))
        .to_owned()
}

/// The instances page, its relative times read against the clock set to now.
async fn instances(console: &TestConsole, browser: &Browser) -> Page {
    console.clock.set(chrono::Utc::now());
    browser.get("/console/instances").await
}

/// The page at `path`, once it says `text` (propagation takes a heartbeat or two).
async fn once_it_says(browser: &Browser, path: &str, text: &str) -> Page {
    let deadline = std::time::Instant::now() + Duration::from_secs(20);
    loop {
        let page = browser.get(path).await;
        if page.text().contains(text) {
            return page;
        }
        assert!(
            std::time::Instant::now() < deadline,
            "{text:?} never said by {path}:\n{}",
            page.body
        );
        tokio::task::yield_now().await;
    }
}

async fn the_fleet_its_drift_and_a_flips_receipt(backend: Backend) {
    let console = TestConsole::start(backend).await;
    // The app's clock at the real time before anyone signs in: relative times are
    // read against it, and moving it later by days would expire the sessions.
    console.clock.set(chrono::Utc::now());
    let on = ("FLAG_CONSOLE_FEATURE_FLAGS_DB", "1");
    let web = process(&console, "web", &[on, ("FLAG_DARK_MODE", "1")]).await;
    let worker = process(&console, "worker", &[on]).await;

    let ops = console.signed_in("ops1").await;
    let page = instances(&console, &ops).await;
    assert_eq!(page.status, 200);
    page.assert_contains(r#"<a href="/console/instances" aria-current="page">Instances</a>"#);
    page.assert_says("2 live instances; drift: FLAG_DARK_MODE unset 1, on 1");
    page.assert_says("No live instance of prod reports to this database.");
    let (web_row, worker_row) = (row_of(&page, "web"), row_of(&page, "worker"));
    for (row, state) in [(&web_row, "on"), (&worker_row, "unset")] {
        assert!(
            row.contains(&format!(
                r#"<li class="drift"><span class="visually-hidden">drift: </span><code>FLAG_DARK_MODE</code> {state}</li>"#
            )),
            "{row}"
        );
        assert!(
            row.contains(r#"<td data-label="Master switch">on</td>"#),
            "the master switch agrees: {row}"
        );
        assert!(row.contains(" s ago</span>"), "last seen, relative: {row}");
        assert!(
            row.contains(&format!(
                "<td data-label=\"PID\">{}</td>",
                std::process::id()
            )),
            "{row}"
        );
    }

    // A process whose master switch is off: drift, and rows decide nothing there.
    let batch = process(&console, "batch", &[("FLAG_CONSOLE_FEATURE_FLAGS_DB", "0")]).await;
    let page = instances(&console, &ops).await;
    page.assert_says(
        "3 live instances; drift: FLAG_CONSOLE_FEATURE_FLAGS_DB on 2, off 1; FLAG_DARK_MODE unset 2, on 1",
    );
    let batch_row = row_of(&page, "batch");
    assert!(
        batch_row.contains(r#"<td data-label="Master switch" class="drift"><span class="visually-hidden">drift: </span>off</td>"#),
        "{batch_row}"
    );

    // A flip in the console: its receipt on the audit log once both processes that
    // apply rows hold it; the third one ignores rows.
    // The audit row's time is the app's clock: now, so that "slowest" is real.
    console.clock.set(chrono::Utc::now());
    assert_eq!(
        ops.flip("dark_mode", "staging", false, &[]).await.status,
        303
    );
    let flip = console.audit().await.remove(0);
    assert_eq!(flip.action, "console.flag.flip");
    let host = console
        .state
        .app
        .live_instances(Some("staging"))
        .await
        .unwrap()[0]
        .host
        .clone();
    let pid = std::process::id();
    let audit = once_it_says(
        &ops,
        "/console/audit?flag=dark_mode",
        "Receipt: seen by 2 of 2 instances, slowest ",
    )
    .await;
    audit.assert_says(&format!(" ms; ignores rows: {host} pid {pid}</p>"));
    audit.assert_contains(r#"<p class="receipt">Receipt: seen by 2 of 2"#);

    // Each process's last change links to its audit row, once the one that ignores
    // rows holds it too (it still reads them; nothing waited for it above).
    let page = once_it_says(
        &ops,
        "/console/instances",
        "3 live instances; drift: FLAG_CONSOLE_FEATURE_FLAGS_DB on 2, off 1; FLAG_DARK_MODE unset 2, on 1</p>",
    )
    .await;
    let link = format!(
        r##"<a href="/console/audit?flag=dark_mode&#38;before={}#audit-{}">#{}</a> <a href="/console/flags/dark_mode"><code>dark_mode</code></a>"##,
        flip.id + 1,
        flip.id,
        flip.id
    );
    for application in ["web", "worker", "batch"] {
        let row = row_of(&page, application);
        assert!(row.contains(&link), "{row}");
        assert!(
            row.contains(r#"<td data-label="Last change">"#),
            "not behind: {row}"
        );
    }
    ops.get(&format!(
        "/console/audit?flag=dark_mode&before={}",
        flip.id + 1
    ))
    .await
    .assert_contains(&format!(r#"<tr id="audit-{}">"#, flip.id));

    // A process that has not applied it (a report written by hand: it holds no row):
    // missing from the receipt, and behind on the instances page.
    let now = match backend {
        Backend::Sqlite => "strftime('%Y-%m-%d %H:%M:%f', 'now')",
        Backend::Postgres => "now()",
    };
    console
        .test_db()
        .execute(&format!(
            "INSERT INTO vexil_instances (id, env, host, pid, application, version, started_at, last_seen, env_layer, applied) \
             VALUES ('ghost', 'staging', 'host-7', 123, 'ghost', 'v', {now}, {now}, \
             '{{\"console_feature_flags_db\":\"on\"}}', '{{}}')"
        ))
        .await
        .unwrap();
    let audit = ops.get("/console/audit?flag=dark_mode").await;
    audit.assert_says("Receipt: seen by 2 of 3 instances, slowest ");
    audit.assert_says(&format!(
        " ms; missing: host-7 pid 123; ignores rows: {host} pid {pid}"
    ));
    audit.assert_contains(r#"<p class="receipt receipt-missing">"#);
    let page = instances(&console, &ops).await;
    page.assert_says(&format!(
        "4 live instances; drift: FLAG_CONSOLE_FEATURE_FLAGS_DB on 3, off 1; FLAG_DARK_MODE unset 3, on 1; dark_mode change #{} not applied by 1",
        flip.id
    ));
    let ghost = row_of(&page, "ghost");
    assert!(
        ghost.contains(r#"<td data-label="Last change" class="drift">"#),
        "{ghost}"
    );
    assert!(
        ghost.contains("dark_mode: newest change not applied (holds no row)"),
        "{ghost}"
    );

    // Read-only, for ops and up (the permission table walks every role).
    let reader = console.signed_in("reader").await;
    assert_eq!(reader.get("/console/instances").await.status, 403);
    drop((web, worker, batch));
    console.stop().await;
}
vexil_testkit::both!(the_fleet_its_drift_and_a_flips_receipt);
