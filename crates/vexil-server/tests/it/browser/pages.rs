//! Every console page in a real browser, as each role sees it: axe-core finds
//! nothing on it (WCAG 2.2 AA, target size included) at 1280 px and at 390 px, and
//! it never scrolls sideways, down to 320 px, with JavaScript and without. The
//! header by role: the navigation shows only what the role may open, and an error
//! page keeps the account and its sign-out.

use fantoccini::{Client, Locator};
use vexil_store::Backend;

use super::{
    Driver, Screen, Scripts, assert_axe_clean, assert_no_sideways_scroll, axe_source,
    axe_violations, fill_sign_in, flip_button, sideways_scroll, sign_in, wait_for,
};
use crate::harness::{FLAGS, NO_SOAK_FLAGS, Options, TestConsole};
use vexil_testkit::TestDb;

/// The pages a superadmin opens (paths, or a step reached by a click: `confirm`,
/// the prod confirmation; `code`, a flip's TOTP code page).
const ROOT_PAGES: [&str; 16] = [
    "confirm",
    "code",
    "/console/audit?since=yesterday&flag=dark",
    "/console/flags?env=prod",
    "/console/flags?env=staging&q=dark",
    "/console/flags/dark_mode",
    "/console/promotions",
    "/console/deprecation",
    "/console/reconcile",
    "/console/instances",
    "/console/stale",
    "/console/audit",
    "/console/client-keys",
    "/console/account",
    "/console/elevate",
    "/console/no-such-page",
];

/// A console with something on every page: flips with reasons in both envs, an open
/// promotion, a live process per env, a client key.
async fn a_lived_in_console() -> (TestConsole, Vec<vexil::Flags>) {
    let options = Options {
        flags: format!("{FLAGS}{NO_SOAK_FLAGS}"),
        ..Options::default()
    };
    let console = TestConsole::start_with(TestDb::new(Backend::Sqlite).await, options).await;
    let root = console.signed_in("root").await;
    for (flag, env, reason) in [
        ("dark_mode", "staging", "staff first"),
        ("weekly_digest", "staging", "ready for the newsletter"),
        ("legacy_banner", "prod", "INC-77: the banner confuses users"),
    ] {
        let flipped = root.flip(flag, env, false, &[("reason", reason)]).await;
        assert_eq!(flipped.status, 303, "{}", flipped.body);
    }
    let csrf = root.csrf().await;
    let marked = root
        .post(
            "/console/flags/weekly_digest/promotions",
            &[("csrf", &csrf)],
        )
        .await;
    assert_eq!(marked.status, 303);
    console.client_key("prod", "web").await;
    let processes = vec![
        console
            .live_instance("staging", "web", &[("FLAG_CONSOLE_FEATURE_FLAGS_DB", "1")])
            .await,
        console
            .live_instance("prod", "web", &[("FLAG_CONSOLE_FEATURE_FLAGS_DB", "1")])
            .await,
    ];
    (console, processes)
}

/// `browser` on `path` (or on a flip's page, reached by its button): what
/// scrolls sideways, and what axe-core finds where `axe` is given.
async fn check(
    browser: &Client,
    base: &str,
    path: &str,
    axe: Option<&str>,
    what: &str,
) -> Vec<String> {
    if path == "confirm" || path == "code" {
        let (env, flag) = if path == "confirm" {
            ("prod", "dark_mode")
        } else {
            ("staging", "new_checkout")
        };
        browser
            .goto(&format!("{base}/console/flags?env={env}"))
            .await
            .unwrap();
        flip_button(browser, flag).await.click().await.unwrap();
        wait_for(browser, "//h1[@id='step-title']").await;
    } else {
        browser.goto(&format!("{base}{path}")).await.unwrap();
        wait_for(browser, "//h1").await;
    }
    let width = super::eval(browser, "return window.innerWidth;").await;
    assert!(
        [1280, 390, 320].contains(&width.as_u64().unwrap()),
        "{what} {path}: the window is {width} px wide, not a screen the test means"
    );
    let what = format!("{what} {path}");
    let mut problems: Vec<String> = sideways_scroll(browser, &what).await.into_iter().collect();
    if let Some(axe) = axe {
        let found = axe_violations(browser, axe, &what).await;
        problems.extend(found.into_iter().map(|v| format!("{what}: {v}")));
    }
    problems
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn every_page_passes_axe_and_fits_a_phone_with_and_without_javascript() {
    let (console, processes) = a_lived_in_console().await;
    let base = format!("http://{}", console.address);
    let driver = Driver::start();
    let axe = axe_source();
    let pages = ROOT_PAGES.iter().copied();
    let mut problems = Vec::new();
    for scripts in [Scripts::On, Scripts::Off] {
        // axe-core needs the page's event loop, which a page without scripts does not
        // run; the markup is the same either way, so it judges the pages with them.
        let axe = (scripts == Scripts::On).then_some(axe.as_str());
        // Anonymous: the sign-in page.
        for screen in [Screen::Desktop, Screen::Phone] {
            let anonymous = driver.browser_as(screen, scripts).await;
            let what = format!("anonymous {screen:?} {scripts:?}");
            for page in ["/console/sign-in", "/console/sign-in?expired=1&dropped=1"] {
                problems.extend(check(&anonymous, &base, page, axe, &what).await);
            }
            anonymous.close().await.unwrap();
        }
        for screen in [Screen::Desktop, Screen::Phone] {
            let root = driver.browser_as(screen, scripts).await;
            sign_in(&root, &base, "root").await;
            for path in pages.clone() {
                let what = format!("root {screen:?} {scripts:?}");
                problems.extend(check(&root, &base, path, axe, &what).await);
            }
            root.close().await.unwrap();
        }
        // 320 px (WCAG's reflow width): nothing scrolls sideways.
        let narrow = driver.browser_as(Screen::Narrow, scripts).await;
        sign_in(&narrow, &base, "root").await;
        for path in pages.clone() {
            let what = format!("root 320 px {scripts:?}");
            problems.extend(check(&narrow, &base, path, None, &what).await);
        }
        narrow.close().await.unwrap();
    }
    assert!(
        problems.is_empty(),
        "{} problems:\n{}",
        problems.len(),
        problems.join("\n")
    );
    drop(processes);
    drop(driver);
    console.stop().await;
}

/// readonly and support: their account page, a navigation with nothing that
/// answers 403, and a refusal page that keeps the header and leads back.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_header_follows_the_role_in_a_real_browser() {
    let console = TestConsole::start(Backend::Sqlite).await;
    let base = format!("http://{}", console.address);
    let driver = Driver::start();
    let axe = axe_source();
    for (name, screen) in [("reader", Screen::Desktop), ("helper", Screen::Phone)] {
        let reader = driver.browser_as(screen, Scripts::On).await;
        reader
            .goto(&format!("{base}/console/sign-in"))
            .await
            .unwrap();
        fill_sign_in(&reader, name).await;
        wait_for(
            &reader,
            "//h1[contains(., 'account') or contains(., 'Account')]",
        )
        .await;
        let nav: Vec<String> = {
            let mut names = Vec::new();
            for link in reader.find_all(Locator::Css("nav.pages a")).await.unwrap() {
                names.push(link.text().await.unwrap());
            }
            names
        };
        assert_eq!(nav, ["Account"], "{screen:?}");
        assert_axe_clean(&reader, &axe, "reader's account").await;
        // The elevation page offers nothing to a role it does not help.
        reader
            .goto(&format!("{base}/console/elevate"))
            .await
            .unwrap();
        wait_for(&reader, "//p[contains(., 'gains nothing from elevation')]").await;
        assert!(reader.find(Locator::Id("totp")).await.is_err());
        // A page the role may not open: refused, with the header kept.
        reader.goto(&format!("{base}/console/flags")).await.unwrap();
        wait_for(&reader, "//h1[text()='Not allowed']").await;
        wait_for(
            &reader,
            &format!("//span[@class='account' and text()='{name}']"),
        )
        .await;
        wait_for(&reader, "//a[text()='Back to your account']").await;
        wait_for(&reader, "//form[@action='/console/sign-out']").await;
        assert_no_sideways_scroll(&reader, "the refusal").await;
        assert_axe_clean(&reader, &axe, "the refusal").await;
        reader.close().await.unwrap();
    }
    drop(driver);
    console.stop().await;
}
