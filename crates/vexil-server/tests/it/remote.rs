//! The library's remote mode against a real server on a loopback port: a process that
//! follows `vexil serve` with a client key sees a flip and the runbook's direct SQL,
//! resolves with its own variables, keeps its last values while the server is cut and
//! catches up when it is back, falls back to the TTL without the stream, refuses a
//! bad key or a key of another env at start, survives its key being revoked, and is a
//! live instance for every fleet tool.

use std::time::Duration;

use serde_json::json;
use vexil::{Flags, Origin, Source};
use vexil_core::EnvSnapshot;
use vexil_store::{Backend, Transport};
use vexil_testkit::Proxy;

use crate::harness::TestConsole;

const DEADLINE: Duration = Duration::from_secs(20);

/// The runbook's Option A on prod, verbatim but for the flag and value.
fn runbook_update(flag: &str, value: u8) -> String {
    format!(
        "UPDATE console_feature_flags SET value={value}, updated_at=CURRENT_TIMESTAMP \
         WHERE flag_key='{flag}' AND env='prod'"
    )
}

/// A remote-mode handle on `base` with `key`, these variables, and no flags file
/// (the server's declarations are enough).
fn remote(base: &str, key: &str, vars: &[(&str, &str)]) -> vexil::Builder {
    Flags::builder()
        .env("prod")
        .server_url(base)
        .client_key(key)
        .flag_set(vexil_core::FlagSet::default())
        .env_vars(EnvSnapshot::capture(vars.iter().copied()))
        .heartbeat(Duration::from_millis(100))
}

fn base(console: &TestConsole) -> String {
    format!("http://{}", console.address)
}

/// Waits until `key` is `on` in `flags`.
async fn until_on(flags: &Flags, key: &str, on: bool) {
    let mut changes = flags.subscribe();
    tokio::time::timeout(DEADLINE, async {
        while flags.is_on(key) != on {
            let _ = changes.recv().await;
        }
    })
    .await
    .unwrap_or_else(|_| panic!("{key} never became {on}: {:?}", flags.value(key)));
}

async fn until_health(flags: &Flags, ready: impl Fn(&vexil::Health) -> bool) {
    let mut health = flags.watch_health();
    tokio::time::timeout(DEADLINE, health.wait_for(|h| ready(h)))
        .await
        .unwrap_or_else(|_| panic!("health never got there: {:?}", flags.health()))
        .unwrap();
}

async fn a_remote_process_follows_flips_and_direct_sql(backend: Backend) {
    let console = TestConsole::start(backend).await;
    let key = console.client_key("prod", "web").await;
    // The master switch unset: a following process lets rows decide (the server's
    // snapshot says so), and FLAG_DARK_MODE decides only while no row exists.
    let flags = remote(&base(&console), &key, &[("FLAG_DARK_MODE", "1")])
        .start()
        .await
        .unwrap();
    // `start` returned with the server's snapshot in: the declarations are the
    // server's, and nothing is a fallback.
    let health = flags.health();
    assert!(health.source_up);
    assert!(matches!(health.origin, Origin::Server { .. }), "{health:?}");
    assert!(flags.is_on("dark_mode"));
    assert_eq!(flags.value("dark_mode").unwrap().source, Source::Env);
    assert!(flags.is_on("search_typo_tolerance"), "the YAML default");
    assert!(!flags.is_on("no_such_flag"));

    let admin = console.api(&console.token("admin").await);
    let flipped = admin.flip("dark_mode", false, json!({})).await;
    assert_eq!(flipped.status, 200, "{flipped:?}");
    // The row is on, as the variable is: the source tells them apart.
    let mut changes = flags.subscribe();
    tokio::time::timeout(DEADLINE, async {
        while flags.value("dark_mode").unwrap().source != Source::Db {
            let _ = changes.recv().await;
        }
    })
    .await
    .unwrap();
    console
        .test_db()
        .execute(&runbook_update("dark_mode", 0))
        .await
        .unwrap();
    until_on(&flags, "dark_mode", false).await;
    assert_eq!(flags.value("dark_mode").unwrap().source, Source::Db);
    console.stop().await;
}
vexil_testkit::both!(a_remote_process_follows_flips_and_direct_sql);

async fn a_remote_process_is_a_live_instance_of_its_keys_app(backend: Backend) {
    let console = TestConsole::start(backend).await;
    let key = console.client_key("prod", "web").await;
    let flags = remote(
        &base(&console),
        &key,
        &[
            ("FLAG_CONSOLE_FEATURE_FLAGS_DB", "0"),
            ("FLAG_DARK_MODE", "yes"),
            ("FLAG_NOT_DECLARED", "1"),
        ],
    )
    .start()
    .await
    .unwrap();
    until_health(&flags, |h| h.reported_at.is_some()).await;
    let live = console
        .state
        .app
        .live_instances(Some("prod"))
        .await
        .unwrap();
    let process = live
        .iter()
        .find(|process| process.pid == i64::from(std::process::id()))
        .unwrap_or_else(|| panic!("not listed: {live:?}"));
    assert_eq!(process.application, "web", "the key's application");
    assert_eq!(process.language, "rust");
    assert_eq!(process.transport, Transport::Server);
    assert_eq!(process.env_layer["dark_mode"], "on");
    assert_eq!(process.env_layer["console_feature_flags_db"], "off");
    // A variable of no declared flag is not reported (the server would refuse it).
    assert!(!process.env_layer.contains_key("not_declared"));
    // The master switch off: rows do not decide here, as in database mode.
    let admin = console.api(&console.token("admin").await);
    assert_eq!(
        admin
            .flip("search_typo_tolerance", true, json!({}))
            .await
            .status,
        200
    );
    let flip = console.audit().await.remove(0);
    // Its receipt: the process holds the flip's row (not in force, but held).
    tokio::time::timeout(DEADLINE, async {
        loop {
            let live = console
                .state
                .app
                .live_instances(Some("prod"))
                .await
                .unwrap();
            let held = live.iter().any(|process| {
                process
                    .applied
                    .get("search_typo_tolerance")
                    .is_some_and(|receipt| receipt.audit_id == flip.id)
            });
            if held {
                break;
            }
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
    })
    .await
    .expect("no receipt of the flip");
    assert!(
        flags.is_on("search_typo_tolerance"),
        "the default: the switch is off"
    );
    console.stop().await;
}
vexil_testkit::both!(a_remote_process_is_a_live_instance_of_its_keys_app);

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_cut_server_leaves_the_last_values_and_the_stream_resumes() {
    let console = TestConsole::start(Backend::Postgres).await;
    let key = console.client_key("prod", "web").await;
    let proxy = Proxy::start(console.address).await;
    let flags = remote(&format!("http://{}", proxy.addr()), &key, &[])
        .start()
        .await
        .unwrap();
    let admin = console.api(&console.token("admin").await);
    assert_eq!(admin.flip("dark_mode", false, json!({})).await.status, 200);
    until_on(&flags, "dark_mode", true).await;

    proxy.cut();
    until_health(&flags, |h| !h.source_up).await;
    // The last values, never the variables' or defaults'.
    assert!(flags.is_on("dark_mode"));
    assert_eq!(flags.value("dark_mode").unwrap().source, Source::Db);
    // A change made while it is cut off arrives when it is back.
    console
        .test_db()
        .execute(&runbook_update("dark_mode", 0))
        .await
        .unwrap();
    proxy.restore();
    until_on(&flags, "dark_mode", false).await;
    until_health(&flags, |h| h.source_up).await;
    console.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_process_started_while_the_server_is_down_falls_back_then_follows() {
    let console = TestConsole::start(Backend::Sqlite).await;
    let key = console.client_key("prod", "web").await;
    let admin = console.api(&console.token("admin").await);
    assert_eq!(admin.flip("dark_mode", false, json!({})).await.status, 200);
    let proxy = Proxy::start(console.address).await;
    proxy.cut();
    let flags_file = vexil::read_flag_set(&console.state.flags_file).unwrap();
    let begun = std::time::Instant::now();
    let flags = remote(
        &format!("http://{}", proxy.addr()),
        &key,
        &[("FLAG_DARK_MODE", "0")],
    )
    .flag_set(flags_file)
    .start_timeout(Duration::from_millis(300))
    .start()
    .await
    .unwrap();
    assert!(begun.elapsed() >= Duration::from_millis(300));
    // Its own file and variables, loudly, until the server answers.
    assert_eq!(flags.health().origin, Origin::Fallback);
    assert!(!flags.is_on("dark_mode"));
    assert_eq!(flags.value("dark_mode").unwrap().source, Source::Env);
    proxy.restore();
    until_on(&flags, "dark_mode", true).await;
    assert_eq!(flags.value("dark_mode").unwrap().source, Source::Db);
    console.stop().await;
}

async fn without_the_stream_the_ttl_brings_every_change(backend: Backend) {
    let console = TestConsole::start(backend).await;
    let key = console.client_key("prod", "web").await;
    let flags = remote(&base(&console), &key, &[])
        .change_feed(false)
        .ttl(Duration::from_millis(300))
        .start()
        .await
        .unwrap();
    assert!(flags.health().source_up);
    console
        .test_db()
        .execute(
            "INSERT INTO console_feature_flags (flag_key, env, value) VALUES ('dark_mode', 'prod', 1)",
        )
        .await
        .unwrap();
    until_on(&flags, "dark_mode", true).await;
    console.stop().await;
}
vexil_testkit::both!(without_the_stream_the_ttl_brings_every_change);

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_bad_key_or_a_key_of_another_env_is_refused_at_start() {
    let console = TestConsole::start(Backend::Sqlite).await;
    let unknown = format!("vxc_{}", "0".repeat(64));
    let error = remote(&base(&console), &unknown, &[])
        .start()
        .await
        .unwrap_err();
    assert!(matches!(error, vexil::Error::ClientKeyRefused), "{error}");
    assert!(error.to_string().contains("unknown or revoked"), "{error}");

    let error = remote(&base(&console), "vxc_short", &[])
        .start()
        .await
        .unwrap_err();
    assert!(matches!(error, vexil::Error::BadClientKey), "{error}");
    assert!(
        !error.to_string().contains("vxc_short"),
        "the key echoed: {error}"
    );

    let staging = console.client_key("staging", "web").await;
    let error = remote(&base(&console), &staging, &[])
        .start()
        .await
        .unwrap_err();
    assert_eq!(
        error.to_string(),
        "VEXIL_CLIENT_KEY reads env staging but this process belongs to prod (VEXIL_ENV): use a key of prod"
    );

    // An account's token is not a client key.
    let token = console.token("admin").await;
    let error = remote(&base(&console), &token, &[])
        .start()
        .await
        .unwrap_err();
    assert!(matches!(error, vexil::Error::BadClientKey), "{error}");

    let key = console.client_key("prod", "web").await;
    let error = remote(&base(&console), &key, &[])
        .database_url("sqlite://vexil.db")
        .start()
        .await
        .unwrap_err();
    assert!(matches!(error, vexil::Error::BothSources), "{error}");
    assert!(error.to_string().contains("DATABASE_URL"));
    assert!(error.to_string().contains("VEXIL_URL"));

    let error = Flags::builder()
        .env("prod")
        .server_url(base(&console))
        .start()
        .await
        .unwrap_err();
    assert!(matches!(error, vexil::Error::NoClientKey), "{error}");

    let error = remote("ftp://flags.internal", &key, &[])
        .start()
        .await
        .unwrap_err();
    assert_eq!(
        error.to_string(),
        "VEXIL_URL \"ftp://flags.internal\" is not a vexil server's URL: it must start with http:// or https://"
    );
    console.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_key_revoked_mid_run_keeps_the_last_values_and_says_so() {
    let console = TestConsole::start(Backend::Sqlite).await;
    let key = console.client_key("prod", "web").await;
    let admin = console.api(&console.token("admin").await);
    assert_eq!(admin.flip("dark_mode", false, json!({})).await.status, 200);
    let flags = remote(&base(&console), &key, &[]).start().await.unwrap();
    // The server's hub may read the flip after the process started.
    until_on(&flags, "dark_mode", true).await;
    let listed = admin.get("/api/v1/client-keys").await;
    let id = listed.body[0]["id"].as_i64().unwrap();
    let revoked = admin
        .post(&format!("/api/v1/client-keys/{id}/revoke"), "{}")
        .await;
    assert_eq!(revoked.status, 200, "{revoked:?}");
    // The server ends the stream within its key cache window; the process cannot
    // open another, and keeps what it had.
    until_health(&flags, |h| !h.source_up).await;
    console.clock.advance(chrono::TimeDelta::seconds(3));
    assert_eq!(admin.flip("dark_mode", true, json!({})).await.status, 200);
    tokio::time::sleep(Duration::from_millis(500)).await;
    assert!(flags.is_on("dark_mode"), "the last value held");
    assert!(!flags.health().source_up);
    console.stop().await;
}

/// PostgreSQL numbers changes when they are made but tells of them when they commit:
/// a change numbered 10 can arrive after one numbered 11. Both reach the process (it
/// once took the later-arriving lower number for a replay and dropped it).
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn changes_committed_out_of_their_order_both_arrive() {
    let console = TestConsole::start(Backend::Postgres).await;
    let key = console.client_key("prod", "web").await;
    let admin = console.api(&console.token("admin").await);
    for flag in ["dark_mode", "legacy_banner"] {
        assert_eq!(admin.flip(flag, false, json!({})).await.status, 200);
    }
    let flags = remote(&base(&console), &key, &[]).start().await.unwrap();
    until_on(&flags, "dark_mode", true).await;
    until_on(&flags, "legacy_banner", true).await;
    // The first transaction takes its number, then waits before it commits; the
    // second takes the next number and commits first.
    let slow = tokio::process::Command::new("psql")
        .args([
            "-X",
            "-q",
            "-v",
            "ON_ERROR_STOP=1",
            &console.test_db().url_string(),
        ])
        .args(["-c", "BEGIN", "-c", &runbook_update("dark_mode", 0)])
        .args(["-c", "SELECT pg_sleep(1)", "-c", "COMMIT"])
        .stdout(std::process::Stdio::null())
        .spawn()
        .expect("psql (bash .ci/services installs it)");
    tokio::time::sleep(Duration::from_millis(300)).await;
    console
        .test_db()
        .execute(&runbook_update("legacy_banner", 0))
        .await
        .unwrap();
    let status = slow.wait_with_output().await.unwrap().status;
    assert!(status.success());
    until_on(&flags, "legacy_banner", false).await;
    until_on(&flags, "dark_mode", false).await;
    console.stop().await;
}

/// Every TTL the stream is replaced by a fresh one that starts with a snapshot (the
/// full read, in the stream's own order): changes keep arriving across the swaps.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_ttls_fresh_streams_lose_no_change() {
    let console = TestConsole::start(Backend::Postgres).await;
    let key = console.client_key("prod", "web").await;
    let flags = remote(&base(&console), &key, &[])
        .ttl(Duration::from_millis(150))
        .start()
        .await
        .unwrap();
    let admin = console.api(&console.token("admin").await);
    assert_eq!(admin.flip("dark_mode", false, json!({})).await.status, 200);
    until_on(&flags, "dark_mode", true).await;
    for round in 0..8u8 {
        let on = round % 2 == 1;
        console
            .test_db()
            .execute(&runbook_update("dark_mode", u8::from(on)))
            .await
            .unwrap();
        until_on(&flags, "dark_mode", on).await;
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    assert!(flags.health().source_up);
    console.stop().await;
}
