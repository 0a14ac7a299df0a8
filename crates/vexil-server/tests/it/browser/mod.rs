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

use crate::harness::PASSWORD;

mod chores;
mod flips;
mod pages;
mod promotion;

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

    /// A new browser at 1280 × 900 with JavaScript: its own profile, so its own
    /// cookies.
    async fn browser(&self) -> Client {
        self.browser_as(Screen::Desktop, Scripts::On).await
    }

    /// A new browser of that screen, with or without JavaScript (then the page's
    /// own scripts do not run; WebDriver's, which measure the page, still do).
    async fn browser_as(&self, screen: Screen, scripts: Scripts) -> Client {
        let (width, height) = screen.size();
        let mut args = vec![
            "--headless".to_owned(),
            "--no-sandbox".into(),
            "--disable-gpu".into(),
            "--disable-dev-shm-usage".into(),
            "--disable-background-networking".into(),
            "--disable-component-update".into(),
            "--disable-sync".into(),
            "--no-first-run".into(),
            format!("--window-size={width},{height}"),
            "--force-prefers-reduced-motion".into(),
        ];
        if scripts == Scripts::Off {
            args.push("--blink-settings=scriptEnabled=false".into());
        }
        let mut options = serde_json::json!({
            "binary": "/usr/bin/chromium",
            "args": args,
        });
        // A window narrower than about 500 px is widened by Chromium; a phone's
        // viewport is emulated instead, to the pixel (without touch events, which
        // chromedriver cannot send to a page whose scripts are off).
        if screen != Screen::Desktop {
            options["mobileEmulation"] = serde_json::json!({
                "deviceMetrics": { "width": width, "height": height, "pixelRatio": 1.0, "mobile": true, "touch": false },
            });
        }
        let mut capabilities = serde_json::Map::new();
        capabilities.insert("goog:chromeOptions".into(), options);
        ClientBuilder::new(HttpConnector::new())
            .capabilities(capabilities)
            .connect(&self.url)
            .await
            .expect("chromedriver starts Chromium")
    }
}

/// The screens the console is checked on.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Screen {
    Desktop,
    /// A 390 px phone (an iPhone 12 to 15).
    Phone,
    /// 320 px: the width WCAG's reflow criterion asks a page to fit.
    Narrow,
}

impl Screen {
    fn size(self) -> (u32, u32) {
        match self {
            Screen::Desktop => (1280, 900),
            Screen::Phone => (390, 844),
            Screen::Narrow => (320, 700),
        }
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Scripts {
    On,
    Off,
}

impl Drop for Driver {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// Where a test's screenshots go: `VEXIL_SCREENSHOTS` (the README's, relative to the
/// workspace) if set, else a temporary directory that goes with the test.
struct Shots {
    dir: PathBuf,
    _temporary: Option<tempfile::TempDir>,
}

impl Shots {
    fn new() -> Shots {
        match std::env::var_os("VEXIL_SCREENSHOTS") {
            Some(dir) => Shots {
                dir: Path::new(env!("CARGO_MANIFEST_DIR"))
                    .join("../..")
                    .join(dir),
                _temporary: None,
            },
            None => {
                let temporary = tempfile::tempdir().unwrap();
                Shots {
                    dir: temporary.path().to_owned(),
                    _temporary: Some(temporary),
                }
            }
        }
    }
}

async fn screenshot(browser: &Client, shots: &Shots, name: &str) {
    let png = browser.screenshot().await.unwrap();
    assert!(png.starts_with(b"\x89PNG"), "{name}: a PNG");
    std::fs::create_dir_all(&shots.dir).unwrap();
    std::fs::write(shots.dir.join(name), png).unwrap();
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
    fill_sign_in(browser, name).await;
    wait_for(browser, "//h1[starts-with(., 'Flags in')]").await;
}

/// Signs in as `name` on the sign-in page the browser is on.
async fn fill_sign_in(browser: &Client, name: &str) {
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
    click(browser, "form.stacked button[type=submit]").await;
}

/// The flip button of `flag`'s row.
async fn flip_button(browser: &Client, flag: &str) -> fantoccini::elements::Element {
    browser
        .find(Locator::Css(&format!("#flag-{flag} form.flip button")))
        .await
        .unwrap_or_else(|e| panic!("no flip button for {flag}: {e}"))
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

/// A script's answer (WebDriver runs it whatever the page's CSP or script setting).
async fn eval(browser: &Client, script: &str) -> serde_json::Value {
    browser
        .execute(script, Vec::new())
        .await
        .unwrap_or_else(|e| panic!("script {script:?} failed: {e}"))
}

/// The page scrolls sideways nowhere: the document is no wider than the window
/// (WCAG 1.4.10, reflow).
async fn assert_no_sideways_scroll(browser: &Client, what: &str) {
    if let Some(problem) = sideways_scroll(browser, what).await {
        panic!("{problem}");
    }
}

/// How the page scrolls sideways, if it does.
async fn sideways_scroll(browser: &Client, what: &str) -> Option<String> {
    let sizes = eval(
        browser,
        "return [document.documentElement.scrollWidth, window.innerWidth, \
         Array.from(document.querySelectorAll('body *')).filter(e => e.getBoundingClientRect().right > window.innerWidth + 1).slice(0, 5).map(e => e.outerHTML.slice(0, 120))];",
    )
    .await;
    let (scroll, inner) = (sizes[0].as_u64().unwrap(), sizes[1].as_u64().unwrap());
    (scroll > inner).then(|| {
        format!(
            "{what}: {scroll} px wide in a {inner} px window; too wide: {}",
            sizes[2]
        )
    })
}

/// axe-core, from its npm package (`.ci/services` installs it by its lockfile).
fn axe_source() -> String {
    let path =
        Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/axe/node_modules/axe-core/axe.min.js");
    std::fs::read_to_string(&path).unwrap_or_else(|e| {
        panic!(
            "cannot read axe-core at {} ({e}): run bash .ci/services",
            path.display()
        )
    })
}

/// axe-core finds nothing on the page: WCAG 2.0, 2.1 and 2.2, A and AA (target size
/// included), and its best practices.
async fn assert_axe_clean(browser: &Client, axe: &str, what: &str) {
    let violations = axe_violations(browser, axe, what).await;
    assert!(
        violations.is_empty(),
        "{what}: axe found:\n{}",
        violations.join("\n")
    );
}

/// What axe-core finds on the page, one line per rule.
async fn axe_violations(browser: &Client, axe: &str, what: &str) -> Vec<String> {
    eval(browser, axe).await;
    let found = browser
        .execute_async(
            "const done = arguments[arguments.length - 1];\
             axe.run(document, { runOnly: { type: 'tag', values: ['wcag2a', 'wcag2aa', 'wcag21a', 'wcag21aa', 'wcag22aa', 'best-practice'] } })\
               .then(r => done(r.violations.map(v => v.id + ' (' + v.impact + '): ' + v.help + ' at ' + v.nodes.slice(0, 3).map(n => n.target.join(' ')).join(', '))))\
               .catch(e => done(['axe failed: ' + e]));",
            Vec::new(),
        )
        .await
        .unwrap_or_else(|e| panic!("{what}: axe did not run: {e}"));
    serde_json::from_value(found).unwrap()
}
