//! Flips in a real browser, on a desktop and a phone, with JavaScript and without:
//! a staging flip (htmx in place with a live notice and the focus on the new button,
//! or a redirect with the flash), a prod flip through its confirmation page with its
//! reason, the flag's own page, a conflict showing the other change's reason, and
//! elevation asked for on the flip's own page.

use fantoccini::{Client, Locator};
use vexil_store::Backend;

use super::{
    Driver, Screen, Scripts, Shots, assert_axe_clean, axe_source, click, eval, fill_sign_in,
    flip_button, screenshot, sign_in, wait_for,
};
use crate::harness::TestConsole;

/// The notice the live region (or the flash) says, once it says something.
async fn notice(browser: &Client, says: &str) {
    wait_for(
        browser,
        &format!("//div[@id='flip-notice' and contains(., \"{says}\")]"),
    )
    .await;
}

/// One operator's flips, as `screen` and `scripts` let them happen.
async fn flips_as_an_operator(screen: Screen, scripts: Scripts) {
    let console = TestConsole::start(Backend::Sqlite).await;
    let base = format!("http://{}", console.address);
    let driver = Driver::start();
    let shots = Shots::new();
    let desktop_js = screen == Screen::Desktop && scripts == Scripts::On;
    let label = format!("{screen:?} with scripts {scripts:?}");

    let ops = driver.browser_as(screen, scripts).await;
    sign_in(&ops, &base, "ops1").await;
    // The page's own scripts run or not, as asked (htmx is the proof).
    let htmx = eval(&ops, "return typeof window.htmx;").await;
    let expected = if scripts == Scripts::On {
        "object"
    } else {
        "undefined"
    };
    assert_eq!(htmx, expected, "{label}");

    // Staging: the row's button flips at once.
    ops.goto(&format!("{base}/console/flags?env=staging"))
        .await
        .unwrap();
    flip_button(&ops, "dark_mode").await.click().await.unwrap();
    notice(&ops, "dark_mode is on in staging (by ops1").await;
    wait_for(
        &ops,
        "//tr[@id='flag-dark_mode' and contains(@class, 'just-flipped')][.//span[@class='by' and text()='ops1']]",
    )
    .await;
    // The keyboard focus is on the row's new button, not lost to <body>.
    let focused = eval(&ops, "return document.activeElement.textContent;").await;
    if scripts == Scripts::On {
        assert_eq!(focused, "Turn off in staging", "{label}");
    }
    assert_eq!(
        console.row("dark_mode", "staging").await,
        Some((true, Some("ops1".into()))),
        "{label}"
    );

    // Prod: Enter in the reason box asks for a confirmation, nothing written yet.
    ops.goto(&format!("{base}/console/flags?env=prod"))
        .await
        .unwrap();
    wait_for(&ops, "//div[contains(@class, 'env-band-prod')]").await;
    if desktop_js {
        screenshot(&ops, &shots, "flags.png").await;
    }
    if screen == Screen::Phone && scripts == Scripts::On {
        screenshot(&ops, &shots, "flags-phone.png").await;
    }
    ops.find(Locator::Css("#flag-dark_mode input[name=reason]"))
        .await
        .unwrap()
        .send_keys("INC-77 dark users\u{E007}")
        .await
        .unwrap();
    wait_for(&ops, "//h1[@id='step-title'][contains(., 'ON in')]").await;
    assert_eq!(console.row("dark_mode", "prod").await, None, "{label}");
    if desktop_js {
        screenshot(&ops, &shots, "flip-confirm.png").await;
    }
    click(&ops, "form.stacked button[type=submit]").await;
    notice(&ops, "dark_mode is on in prod (by ops1").await;
    assert_eq!(
        console.row("dark_mode", "prod").await,
        Some((true, Some("ops1".into()))),
        "{label}"
    );

    // The key leads to the flag's page: both envs, who and why.
    click(&ops, "#flag-dark_mode a.key").await;
    let prod = wait_for(&ops, "//section[@id='env-prod']").await;
    assert!(
        prod.text().await.unwrap().contains("INC-77 dark users"),
        "{label}"
    );
    wait_for(&ops, "//section[@id='env-staging']").await;
    wait_for(
        &ops,
        "//ol[@class='history-list']/li[contains(., 'dark_mode ON in prod')]",
    )
    .await;
    if desktop_js {
        screenshot(&ops, &shots, "flag.png").await;
    }
    if screen == Screen::Phone && scripts == Scripts::On {
        screenshot(&ops, &shots, "flag-phone.png").await;
    }

    // Someone else turns it off meanwhile; this page's flip is a conflict that says
    // who, when and why, and offers the flip again from the value now.
    let other = console.signed_in("root").await;
    let reverted = other
        .flip("dark_mode", "prod", true, &[("reason", "INC-78 revert")])
        .await;
    assert_eq!(reverted.status, 303);
    click(&ops, "#env-prod form.flip button").await;
    wait_for(
        &ops,
        "//h1[text()='dark_mode changed since you loaded the page']",
    )
    .await;
    let page = ops.source().await.unwrap();
    assert!(page.contains("INC-78 revert"), "{label}: {page}");
    wait_for(
        &ops,
        "//div[contains(@class, 'again')]//button[contains(., 'Turn on in prod')]",
    )
    .await;
    if scripts == Scripts::On {
        let what = format!("the conflict page, {label}");
        assert_axe_clean(&ops, &axe_source(), &what).await;
    }
    if desktop_js {
        screenshot(&ops, &shots, "conflict.png").await;
        ops.goto(&format!("{base}/console/audit")).await.unwrap();
        wait_for(&ops, "//h1[text()='Audit log']").await;
        screenshot(&ops, &shots, "audit.png").await;
    }
    assert_eq!(
        console.row("dark_mode", "prod").await,
        Some((false, Some("root".into()))),
        "{label}"
    );
    ops.close().await.unwrap();
    drop(driver);
    console.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn flips_with_javascript_on_a_desktop_and_a_phone() {
    for screen in [Screen::Desktop, Screen::Phone] {
        flips_as_an_operator(screen, Scripts::On).await;
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn flips_without_javascript_on_a_desktop_and_a_phone() {
    for screen in [Screen::Desktop, Screen::Phone] {
        flips_as_an_operator(screen, Scripts::Off).await;
    }
}

/// A high-risk flip asks for the code on its own page, and the code flips it.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_superadmin_elevates_on_the_flips_own_page() {
    let console = TestConsole::start(Backend::Sqlite).await;
    let base = format!("http://{}", console.address);
    let driver = Driver::start();
    let shots = Shots::new();
    let root = driver.browser().await;
    sign_in(&root, &base, "root").await;
    root.goto(&format!("{base}/console/flags?env=staging"))
        .await
        .unwrap();
    flip_button(&root, "new_checkout")
        .await
        .click()
        .await
        .unwrap();
    let code_field = wait_for(&root, "//input[@id='totp']").await;
    screenshot(&root, &shots, "elevation.png").await;
    code_field.send_keys(&console.root_code(0)).await.unwrap();
    click(&root, "form.stacked button[type=submit]").await;
    notice(&root, "new_checkout is on in staging (by root").await;
    wait_for(&root, "//span[@class='elevated']").await;
    assert_eq!(
        console.row("new_checkout", "staging").await,
        Some((true, Some("root".into())))
    );
    root.close().await.unwrap();
    drop(driver);
    console.stop().await;
}

/// With the master switch off, each flip says what it set and that it runs
/// nothing yet, and the next click flips the row back: no conflict about one's own
/// change (the stock demo's first impression, before `--demo` turned the switch on).
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn with_the_master_switch_off_a_flip_says_what_it_did_not_do() {
    let options = crate::harness::Options {
        env_vars: vec![("FLAG_CONSOLE_FEATURE_FLAGS_DB".into(), "0".into())],
        ..crate::harness::Options::default()
    };
    let console =
        TestConsole::start_with(vexil_testkit::TestDb::new(Backend::Sqlite).await, options).await;
    let base = format!("http://{}", console.address);
    let driver = Driver::start();
    let ops = driver.browser().await;
    sign_in(&ops, &base, "ops1").await;
    ops.goto(&format!("{base}/console/flags?env=staging"))
        .await
        .unwrap();
    for (click_no, row) in [(1, "on"), (2, "off")] {
        let button = flip_button(&ops, "dark_mode").await;
        let to = if row == "on" {
            "Set row on in staging"
        } else {
            "Set row off in staging"
        };
        assert_eq!(button.text().await.unwrap(), to, "click {click_no}");
        button.click().await.unwrap();
        notice(
            &ops,
            &format!("dark_mode: the row in staging is {row} (by ops1"),
        )
        .await;
        notice(
            &ops,
            "Not in effect: the master switch is off in staging, which still runs off.",
        )
        .await;
        let cell = wait_for(&ops, "//tr[@id='flag-dark_mode']/td[@data-label='Value']").await;
        let text = cell.text().await.unwrap();
        assert!(text.contains("runs off"), "{text}");
        assert!(
            text.contains(&format!("row {row}, not in effect: master switch off")),
            "{text}"
        );
        assert_eq!(
            console.row("dark_mode", "staging").await.map(|r| r.0),
            Some(row == "on")
        );
    }
    ops.close().await.unwrap();
    drop(driver);
    console.stop().await;
}

/// Sign-in keeps the list asked for (env and filters); a flip clicked after the
/// session ended is not sent, the sign-in page says so, and signing in again comes
/// back to the flag's page (both envs: no env assumed).
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_flip_after_the_session_ended_says_it_was_not_sent() {
    let console = TestConsole::start(Backend::Sqlite).await;
    let base = format!("http://{}", console.address);
    let driver = Driver::start();
    let ops = driver.browser().await;
    ops.goto(&format!("{base}/console/flags?env=staging&q=dark"))
        .await
        .unwrap();
    wait_for(&ops, "//h1[text()='Sign in to vexil']").await;
    fill_sign_in(&ops, "ops1").await;
    wait_for(&ops, "//h1[starts-with(., 'Flags in')]").await;
    let url = ops.current_url().await.unwrap();
    assert_eq!(url.query(), Some("env=staging&q=dark"));
    console.clock.advance(chrono::TimeDelta::hours(13));
    flip_button(&ops, "dark_mode").await.click().await.unwrap();
    wait_for(
        &ops,
        "//p[contains(., 'Your session ended before your change was sent: nothing was changed.')]",
    )
    .await;
    assert_eq!(console.row("dark_mode", "staging").await, None);
    fill_sign_in(&ops, "ops1").await;
    wait_for(&ops, "//h1/code[text()='dark_mode']").await;
    assert_eq!(
        ops.current_url().await.unwrap().path(),
        "/console/flags/dark_mode"
    );
    ops.close().await.unwrap();
    drop(driver);
    console.stop().await;
}
