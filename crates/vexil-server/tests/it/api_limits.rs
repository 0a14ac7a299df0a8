//! The API's limits: a token's account is re-read within `token_ttl` (so a revoked
//! token, a disabled account or a new role takes effect within seconds, on the app's
//! clock), and one address's burst meets 429s while others are still served.

use std::net::{IpAddr, Ipv4Addr};
use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::Duration;

use chrono::TimeDelta;
use vexil_app::Admin;
use vexil_core::Role;
use vexil_server::ApiConfig;
use vexil_store::Backend;
use vexil_testkit::TestDb;

use crate::harness::{Options, TestConsole};

#[tokio::test]
async fn revocation_disabling_and_role_changes_apply_within_the_cache_window() {
    let console = TestConsole::start(Backend::Sqlite).await;
    let app = console.state.app.clone();
    let ops_token = console.token("ops1").await;
    let ops = console.api(&ops_token);
    let reader = console.api(&console.token("reader").await);
    let admin = console.api(&console.token("admin").await);
    assert_eq!(ops.get("/api/v1/me").await.status, 200);
    assert_eq!(reader.get("/api/v1/flags?env=prod").await.status, 403);
    assert_eq!(admin.get("/api/v1/me").await.status, 200);

    let id = app
        .tokens()
        .await
        .unwrap()
        .into_iter()
        .find(|t| t.user_name == "ops1")
        .unwrap()
        .id;
    app.revoke_token(Admin::Cli, id).await.unwrap();
    app.set_role(Admin::Cli, "reader", Role::Ops).await.unwrap();
    app.disable_user(Admin::Cli, "admin").await.unwrap();
    // Within the window (2 s by default) the cached account still answers: the
    // documented price of not reading the database on every request.
    assert_eq!(ops.get("/api/v1/me").await.status, 200);
    console.clock.advance(TimeDelta::milliseconds(2_000));
    ops.get("/api/v1/me").await.assert_error(
        401,
        "unauthenticated",
        "invalid or revoked API token",
    );
    admin.get("/api/v1/me").await.assert_error(
        401,
        "unauthenticated",
        "invalid or revoked API token",
    );
    assert_eq!(reader.get("/api/v1/flags?env=prod").await.status, 200);
    // A token unknown a moment ago works at once: unknown tokens are not cached.
    let fresh = console.api(&console.token("ops1").await);
    assert_eq!(fresh.get("/api/v1/me").await.status, 200);
    console.stop().await;
}

#[tokio::test]
async fn with_no_cache_window_every_request_reads_the_account() {
    let console = TestConsole::start_with(
        TestDb::new(Backend::Sqlite).await,
        Options {
            api: ApiConfig {
                token_ttl: Duration::ZERO,
                ..ApiConfig::default()
            },
            ..Options::default()
        },
    )
    .await;
    let ops = console.api(&console.token("ops1").await);
    assert_eq!(ops.get("/api/v1/me").await.status, 200);
    console
        .state
        .app
        .disable_user(Admin::Cli, "ops1")
        .await
        .unwrap();
    assert_eq!(ops.get("/api/v1/me").await.status, 401);
    console.stop().await;
}

/// 10,000 requests from one address: past its allowance each is a 429 with
/// `Retry-After` and the JSON body, and another address is served meanwhile.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_burst_from_one_address_is_limited_and_others_are_served() {
    let console = TestConsole::start_with(
        TestDb::new(Backend::Sqlite).await,
        Options {
            api: ApiConfig {
                requests_per_second: 50,
                ..ApiConfig::default()
            },
            ..Options::default()
        },
    )
    .await;
    let token = console.token("ops1").await;
    let flood = console.api(&token);
    let url = format!("{}/api/v1/me", flood.base);
    let (ok, limited) = (Arc::new(AtomicUsize::new(0)), Arc::new(AtomicUsize::new(0)));
    let started = std::time::Instant::now();
    let mut workers = Vec::new();
    for _ in 0..32 {
        let (client, url, token) = (flood.client.clone(), url.clone(), token.clone());
        let (ok, limited) = (ok.clone(), limited.clone());
        workers.push(tokio::spawn(async move {
            for _ in 0..(10_000 / 32 + 1) {
                let response = client.get(&url).bearer_auth(&token).send().await.unwrap();
                match response.status().as_u16() {
                    200 => ok.fetch_add(1, Ordering::Relaxed),
                    429 => {
                        let retry: u64 = response.headers()["retry-after"]
                            .to_str()
                            .unwrap()
                            .parse()
                            .unwrap();
                        assert!((1..=60).contains(&retry), "{retry}");
                        let body: serde_json::Value =
                            serde_json::from_str(&response.text().await.unwrap()).unwrap();
                        assert_eq!(body["error"], "rate_limited");
                        limited.fetch_add(1, Ordering::Relaxed)
                    }
                    other => panic!("status {other}"),
                };
            }
        }));
    }
    // Meanwhile (once the flood is being limited), from another loopback address:
    // served, and promptly.
    while limited.load(Ordering::Relaxed) == 0 {
        tokio::task::yield_now().await;
    }
    let other = reqwest::Client::builder()
        .local_address(IpAddr::V4(Ipv4Addr::new(127, 0, 0, 2)))
        .build()
        .unwrap();
    for _ in 0..5 {
        let asked = std::time::Instant::now();
        let response = other.get(&url).bearer_auth(&token).send().await.unwrap();
        assert_eq!(response.status(), 200);
        assert!(
            asked.elapsed() < Duration::from_secs(2),
            "{:?}",
            asked.elapsed()
        );
    }
    for worker in workers {
        worker.await.unwrap();
    }
    let (ok, limited) = (ok.load(Ordering::Relaxed), limited.load(Ordering::Relaxed));
    assert!(ok + limited >= 10_000);
    // A burst of 50, then 50 a second for as long as the flood lasted.
    let allowed = 50 + (started.elapsed().as_secs_f64() * 50.0).ceil() as usize + 1;
    assert!(ok <= allowed, "{ok} served, at most {allowed} allowed");
    assert!(limited >= 10_000 - allowed, "{limited} limited");
    // The probes are not the API's: the flooding address still gets them.
    assert_eq!(console.browser().get("/healthz").await.status, 200);
    console.stop().await;
}

/// Wrong TOTP codes through the API meet the per-account limit in memory, so a
/// parallel burst cannot try more codes than the audit-log lock would allow.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_burst_of_totp_guesses_is_limited_per_account() {
    let console = TestConsole::start(Backend::Sqlite).await;
    let root = console.api(&console.token("root").await);
    let guesses: Vec<_> = (0..12)
        .map(|i| {
            let root = root.clone();
            let body = serde_json::json!({"totp": format!("{:06}", 100_000 + i)});
            tokio::spawn(async move { root.flip("new_checkout", false, body).await })
        })
        .collect();
    let mut replies = Vec::new();
    for guess in guesses {
        replies.push(guess.await.unwrap());
    }
    let limited = replies
        .iter()
        .filter(|r| r.code() == "rate_limited")
        .count();
    let refused = replies
        .iter()
        .filter(|r| r.code() == "totp_invalid")
        .count();
    assert_eq!(limited + refused, 12, "{replies:?}");
    assert!(refused <= 6, "{refused} codes were checked");
    assert!(
        replies
            .iter()
            .filter(|r| r.status == 429)
            .all(|r| r.headers.contains_key("retry-after"))
    );
    let checked = console
        .actions_since(0)
        .await
        .iter()
        .filter(|a| *a == "console.auth.elevate_failed")
        .count();
    assert_eq!(checked, refused);
    console.stop().await;
}
