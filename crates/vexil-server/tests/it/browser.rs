//! The console in a real browser: Debian's headless Chromium, driven through
//! chromedriver (WebDriver). It fails, never skips, when either is missing:
//! `.ci/services` installs them.
//!
//! With `VEXIL_SCREENSHOTS=docs/screenshots` (relative to the workspace) the run
//! also refreshes the README's screenshots; otherwise they go to a temporary
//! directory, taken all the same.

use std::io::{BufRead, BufReader};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::Duration;

use fantoccini::{Client, ClientBuilder, Locator};
use hyper_util::client::legacy::connect::HttpConnector;
use vexil_store::Backend;

use crate::harness::{FLAGS, NO_SOAK_FLAGS, Options, PASSWORD, TestConsole};
use vexil_testkit::TestDb;

/// How long any one wait for the page may take before the test fails.
const WAIT: Duration = Duration::from_secs(20);

/// chromedriver, killed when the test ends however it ends (a panicking test must not orphan it).
struct Driver {
    child: Child,
    url: String,
}

impl Driver {
    fn start() -> Driver {
        let port = {
            let probe = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
            probe.local_addr().unwrap().port()
        };
        let mut child = Command::new("chromedriver")
            .arg(format!("--port={port}"))
            .stdout(Stdio::piped())
            .stderr(Stdio::null())
            .spawn()
            .unwrap_or_else(|e| {
                panic!(
                    "cannot start chromedriver ({e}): install Debian's chromium and chromium-driver (bash .ci/services does)"
                )
            });
        // Ready when it says so on stdout (no polling of the port).
        let stdout = child.stdout.take().unwrap();
        let (ready, started) = std::sync::mpsc::channel();
        std::thread::spawn(move || {
            for line in BufReader::new(stdout).lines().map_while(Result::ok) {
                if line.contains("started successfully") {
                    let _ = ready.send(());
                }
            }
        });
        started
            .recv_timeout(WAIT)
            .expect("chromedriver did not say it started");
        Driver {
            child,
            url: format!("http://127.0.0.1:{port}"),
        }
    }

    /// A new browser: its own profile, so its own cookies.
    async fn browser(&self) -> Client {
        let options = serde_json::json!({
            "binary": "/usr/bin/chromium",
            "args": [
                "--headless", "--no-sandbox", "--disable-gpu", "--disable-dev-shm-usage",
                "--disable-background-networking", "--disable-component-update",
                "--disable-sync", "--no-first-run", "--window-size=1280,900",
                "--force-prefers-reduced-motion",
            ],
        });
        let mut capabilities = serde_json::Map::new();
        capabilities.insert("goog:chromeOptions".into(), options);
        ClientBuilder::new(HttpConnector::new())
            .capabilities(capabilities)
            .connect(&self.url)
            .await
            .expect("chromedriver starts Chromium")
    }
}

impl Drop for Driver {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

fn screenshots_dir(temporary: &Path) -> PathBuf {
    match std::env::var_os("VEXIL_SCREENSHOTS") {
        Some(dir) => Path::new(env!("CARGO_MANIFEST_DIR"))
            .join("../..")
            .join(dir),
        None => temporary.to_owned(),
    }
}

async fn screenshot(browser: &Client, dir: &Path, name: &str) {
    let png = browser.screenshot().await.unwrap();
    assert!(png.starts_with(b"\x89PNG"), "{name}: a PNG");
    std::fs::create_dir_all(dir).unwrap();
    std::fs::write(dir.join(name), png).unwrap();
}

async fn wait_for(browser: &Client, xpath: &str) -> fantoccini::elements::Element {
    browser
        .wait()
        .at_most(WAIT)
        .for_element(Locator::XPath(xpath))
        .await
        .unwrap_or_else(|e| {
            panic!("waited for {xpath}: {e}");
        })
}

async fn sign_in(browser: &Client, base: &str, name: &str) {
    browser
        .goto(&format!("{base}/console/flags"))
        .await
        .unwrap();
    wait_for(browser, "//h1[text()='Sign in to vexil']").await;
    browser
        .find(Locator::Id("name"))
        .await
        .unwrap()
        .send_keys(name)
        .await
        .unwrap();
    browser
        .find(Locator::Id("password"))
        .await
        .unwrap()
        .send_keys(PASSWORD)
        .await
        .unwrap();
    browser
        .find(Locator::Css("form.stacked button[type=submit]"))
        .await
        .unwrap()
        .click()
        .await
        .unwrap();
    wait_for(browser, "//h1[starts-with(., 'Flags in')]").await;
}

/// The flip button of `flag`'s row.
async fn flip_button(browser: &Client, flag: &str) -> fantoccini::elements::Element {
    browser
        .find(Locator::Css(&format!("#flag-{flag} form.flip button")))
        .await
        .unwrap_or_else(|e| panic!("no flip button for {flag}: {e}"))
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_console_in_a_real_browser() {
    let console = TestConsole::start(Backend::Sqlite).await;
    let base = format!("http://{}", console.address);
    let driver = Driver::start();
    let temporary = tempfile::tempdir().unwrap();
    let shots = screenshots_dir(temporary.path());

    // ops signs in and flips a low flag; htmx swaps the row in place.
    let ops = driver.browser().await;
    sign_in(&ops, &base, "ops1").await;
    flip_button(&ops, "dark_mode").await.click().await.unwrap();
    wait_for(
        &ops,
        "//tr[@id='flag-dark_mode'][.//span[@class='source' and text()='db']][.//span[@class='by' and text()='ops1']]",
    )
    .await;
    assert_eq!(
        console.row("dark_mode", "prod").await,
        Some((true, Some("ops1".into())))
    );
    // ops cannot flip a high-risk flag: no control, and the row says why.
    let high = ops.find(Locator::Id("flag-new_checkout")).await.unwrap();
    assert!(high.find(Locator::Css("form")).await.is_err());
    assert!(high.text().await.unwrap().contains("needs superadmin"));
    screenshot(&ops, &shots, "flags.png").await;
    ops.find(Locator::Css("form.inline button"))
        .await
        .unwrap()
        .click()
        .await
        .unwrap();
    wait_for(&ops, "//p[text()='You are signed out.']").await;

    // root elevates with a TOTP code and flips a high-risk flag.
    let root = driver.browser().await;
    sign_in(&root, &base, "root").await;
    flip_button(&root, "new_checkout")
        .await
        .click()
        .await
        .unwrap();
    let code_field = wait_for(&root, "//input[@id='totp']").await;
    screenshot(&root, &shots, "elevation.png").await;
    code_field.send_keys(&console.root_code(0)).await.unwrap();
    root.find(Locator::Css("form.stacked button[type=submit]"))
        .await
        .unwrap()
        .click()
        .await
        .unwrap();
    wait_for(
        &root,
        "//tr[@id='flag-new_checkout'][.//span[contains(@class, 'value-on')]][.//span[@class='by' and text()='root']]",
    )
    .await;
    wait_for(&root, "//span[@class='elevated']").await;
    assert_eq!(
        console.row("new_checkout", "prod").await,
        Some((true, Some("root".into())))
    );

    // A second session loads the page; root turns dark_mode off meanwhile; the second
    // session's click comes from a stale page and gets the conflict page.
    let stale = driver.browser().await;
    sign_in(&stale, &base, "admin").await;
    flip_button(&root, "dark_mode").await.click().await.unwrap();
    wait_for(
        &root,
        "//tr[@id='flag-dark_mode'][.//span[contains(@class, 'value-off')]][.//span[@class='by' and text()='root']]",
    )
    .await;
    flip_button(&stale, "dark_mode")
        .await
        .click()
        .await
        .unwrap();
    wait_for(
        &stale,
        "//h1[text()='dark_mode changed since you loaded the page']",
    )
    .await;
    let page = stale.source().await.unwrap();
    assert!(page.contains("Nothing was changed."), "{page}");
    screenshot(&stale, &shots, "conflict.png").await;
    assert_eq!(
        console.row("dark_mode", "prod").await,
        Some((false, Some("root".into())))
    );

    root.goto(&format!("{base}/console/audit")).await.unwrap();
    wait_for(&root, "//h1[text()='Audit log']").await;
    screenshot(&root, &shots, "audit.png").await;

    root.set_window_size(390, 844).await.unwrap();
    root.goto(&format!("{base}/console/flags")).await.unwrap();
    wait_for(&root, "//h1[starts-with(., 'Flags in')]").await;
    screenshot(&root, &shots, "flags-phone.png").await;

    for browser in [ops, root, stale] {
        browser.close().await.unwrap();
    }
    drop(driver);
    console.stop().await;
}

/// Submits the form of `selector` by clicking its submit button.
async fn click(browser: &Client, selector: &str) {
    browser
        .find(Locator::Css(selector))
        .await
        .unwrap_or_else(|e| panic!("no {selector}: {e}"))
        .click()
        .await
        .unwrap();
}

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
    let temporary = tempfile::tempdir().unwrap();
    let shots = screenshots_dir(temporary.path());

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
    let temporary = tempfile::tempdir().unwrap();
    let shots = screenshots_dir(temporary.path());
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
