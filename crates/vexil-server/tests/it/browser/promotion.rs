//! Promotion in a real browser.

use vexil_store::Backend;

use super::{Driver, Shots, click, flip_button, screenshot, sign_in, wait_for};
use crate::harness::{FLAGS, NO_SOAK_FLAGS, Options, TestConsole};
use vexil_testkit::TestDb;

/// Promotion in a real browser: flags turned on in staging, marked from their rows,
/// a live countdown, a high-risk flag with no soak approved and promoted with its
/// typed phrase; the page's screenshot for the README.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn promotion_in_a_real_browser() {
    let options = Options {
        flags: format!("{FLAGS}{NO_SOAK_FLAGS}"),
        ..Options::default()
    };
    let console = TestConsole::start_with(TestDb::new(Backend::Sqlite).await, options).await;
    // The real time, so that the page's countdown (the browser's clock) agrees.
    console.clock.set(chrono::Utc::now());
    let base = format!("http://{}", console.address);
    let driver = Driver::start();
    let shots = Shots::new();

    let root = driver.browser().await;
    sign_in(&root, &base, "root").await;
    root.goto(&format!("{base}/console/flags?env=staging"))
        .await
        .unwrap();
    wait_for(&root, "//h1[starts-with(., 'Flags in')]").await;
    // dark_mode (low, a 24 h soak) and card_vault (high, no soak) on in staging.
    flip_button(&root, "dark_mode").await.click().await.unwrap();
    wait_for(
        &root,
        "//tr[@id='flag-dark_mode'][.//span[contains(@class, 'value-on')]]",
    )
    .await;
    flip_button(&root, "card_vault")
        .await
        .click()
        .await
        .unwrap();
    wait_for(&root, "//input[@id='totp']")
        .await
        .send_keys(&console.root_code(0))
        .await
        .unwrap();
    click(&root, "form.stacked button[type=submit]").await;
    wait_for(
        &root,
        "//tr[@id='flag-card_vault'][.//span[contains(@class, 'value-on')]]",
    )
    .await;

    // Marked from their staging rows.
    for flag in ["dark_mode", "card_vault"] {
        root.goto(&format!("{base}/console/flags?env=staging"))
            .await
            .unwrap();
        wait_for(&root, "//h1[starts-with(., 'Flags in')]").await;
        click(&root, &format!("#flag-{flag} form.mark button")).await;
        wait_for(
            &root,
            &format!("//p[@class='notice' and contains(., 'of {flag} is pending now')]"),
        )
        .await;
    }
    // The countdown runs: the script replaced the server's text with seconds.
    let countdown = wait_for(&root, "//time[@data-countdown][contains(., ' s')]").await;
    assert!(
        countdown
            .text()
            .await
            .unwrap()
            .starts_with("in 23 h 59 min"),
        "{}",
        countdown.text().await.unwrap()
    );
    let vault = console
        .state
        .app
        .promotions(None, Some("card_vault"), 1)
        .await
        .unwrap()[0]
        .id;
    click(
        &root,
        &format!("#promotion-{vault} form[action$='/approve'] button"),
    )
    .await;
    wait_for(
        &root,
        "//p[@class='notice' and contains(., 'of card_vault is approved now')]",
    )
    .await;
    let phrase = wait_for(&root, &format!("//input[@id='confirm-{vault}']")).await;
    screenshot(&root, &shots, "promotions.png").await;

    // A wrong phrase: refused, nothing written; then the right one.
    phrase.send_keys("promote card_vault").await.unwrap();
    click(&root, &format!("#promotion-{vault} form.promote button")).await;
    wait_for(&root, "//h1[text()='Type the confirmation']").await;
    assert_eq!(console.row("card_vault", "prod").await, None);
    root.goto(&format!("{base}/console/promotions"))
        .await
        .unwrap();
    wait_for(&root, &format!("//input[@id='confirm-{vault}']"))
        .await
        .send_keys("promote card_vault to prod")
        .await
        .unwrap();
    click(&root, &format!("#promotion-{vault} form.promote button")).await;
    wait_for(
        &root,
        "//p[@class='notice' and contains(., 'of card_vault is promoted now')]",
    )
    .await;
    assert_eq!(
        console.row("card_vault", "prod").await,
        Some((true, Some("root".into())))
    );
    root.close().await.unwrap();
    drop(driver);
    console.stop().await;
}
