//! The operator chores' pages in a real browser.

use fantoccini::Locator;
use vexil_store::Backend;

use super::{Driver, Shots, screenshot, sign_in, wait_for};
use crate::harness::TestConsole;

/// The operator chores' pages in a real browser, with live processes: one
/// in staging, and one in prod left on the runbook's Option B (master switch off,
/// `FLAG_DARK_MODE=1`) while prod's row says off. Screenshots for the README.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_operator_chores_in_a_real_browser() {
    let console = TestConsole::start(Backend::Sqlite).await;
    let base = format!("http://{}", console.address);
    let mut processes = Vec::new();
    // The second staging process lacks the variable: drift on the instances page.
    for (env, master, vars) in [("staging", "1", 2), ("staging", "1", 1), ("prod", "0", 2)] {
        let vars = &[
            ("FLAG_CONSOLE_FEATURE_FLAGS_DB", master),
            ("FLAG_DARK_MODE", "1"),
        ][..vars];
        processes.push(console.live_instance(env, "web", vars).await);
    }
    // Rows: dark_mode off in prod (written on, then off), on in staging.
    let http = console.signed_in("ops1").await;
    for (env, from) in [("prod", false), ("prod", true), ("staging", true)] {
        assert_eq!(http.flip("dark_mode", env, from, &[]).await.status, 303);
    }
    let driver = Driver::start();
    let shots = Shots::new();
    let ops = driver.browser().await;
    sign_in(&ops, &base, "ops1").await;

    ops.goto(&format!("{base}/console/deprecation"))
        .await
        .unwrap();
    wait_for(&ops, "//tr[@id='deprecation-dark_mode-staging']").await;
    screenshot(&ops, &shots, "deprecation.png").await;

    ops.goto(&format!("{base}/console/reconcile"))
        .await
        .unwrap();
    let card = wait_for(&ops, "//section[@id='reconcile-dark_mode-prod']").await;
    assert!(
        card.text()
            .await
            .unwrap()
            .contains("master switch off, its variable on gives on")
    );
    screenshot(&ops, &shots, "reconcile.png").await;
    // The reconciling flip, with its reason, from the page's own form.
    card.find(Locator::Css("input[name=reason]"))
        .await
        .unwrap()
        .send_keys("INC-12: break-glass on web")
        .await
        .unwrap();
    card.find(Locator::Css("button[type=submit]"))
        .await
        .unwrap()
        .click()
        .await
        .unwrap();
    wait_for(&ops, "//p[starts-with(., 'Reconciling flip written')]").await;
    assert_eq!(
        console.row("dark_mode", "prod").await.map(|r| r.0),
        Some(true)
    );

    ops.goto(&format!("{base}/console/instances"))
        .await
        .unwrap();
    wait_for(&ops, "//h1").await;
    screenshot(&ops, &shots, "instances.png").await;
    ops.close().await.unwrap();
    drop(processes);
    console.stop().await;
}
