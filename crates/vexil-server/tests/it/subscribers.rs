//! The hub under a fleet's conditions: a subscriber that never reads (dropped, the
//! others unaffected), a thousand subscribers reconnecting at once after a restart,
//! the database cut under running streams, and keep-alives on an idle stream.

use std::time::{Duration, Instant};

use serde_json::json;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;
use vexil_server::SdkConfig;
use vexil_store::Backend;
use vexil_testkit::{Proxy, TestDb};

use crate::events::EventReader;
use crate::harness::{FLAGS, Options, TestConsole};

/// The prod stream of `console`, read as a process would.
async fn subscriber(console: &TestConsole, key: &str) -> EventReader {
    EventReader::open(
        &format!("http://{}", console.address),
        "/sdk/v1/stream",
        &[("authorization", &format!("Bearer {key}"))],
    )
    .await
    .unwrap()
}

/// The request line and headers of a stream request, as raw bytes.
fn stream_request(key: &str) -> String {
    format!(
        "GET /sdk/v1/stream HTTP/1.1\r\nHost: vexil\r\nAuthorization: Bearer {key}\r\nAccept: text/event-stream\r\n\r\n"
    )
}

/// A flags file of `n` more flags with long descriptions: a large snapshot.
fn many_flags(n: usize) -> String {
    let mut text = FLAGS.to_owned();
    for i in 0..n {
        text.push_str(&format!(
            "bulk_flag_{i:05}:\n  default: false\n  description: \"{}\"\n  risk: low\n",
            "padding to make every snapshot large ".repeat(5)
        ));
    }
    text
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_subscriber_that_never_reads_is_dropped_and_the_others_are_not_slowed() {
    let options = Options {
        flags: many_flags(3000),
        sdk: SdkConfig {
            queue: 8,
            write_timeout: Duration::from_secs(1),
            ..SdkConfig::default()
        },
        ..Options::default()
    };
    let console = TestConsole::start_with(TestDb::new(Backend::Sqlite).await, options).await;
    let key = console.client_key("prod", "web").await;
    // The stuck one: a small receive buffer, and it never reads.
    let socket = tokio::net::TcpSocket::new_v4().unwrap();
    socket.set_recv_buffer_size(4096).unwrap();
    let mut stuck = socket.connect(console.address).await.unwrap();
    stuck
        .write_all(stream_request(&key).as_bytes())
        .await
        .unwrap();
    let mut reading = subscriber(&console, &key).await;
    assert_eq!(reading.next().await.event, "snapshot");
    // Far more than the stuck one's socket holds, and more events than its queue.
    for _ in 0..12 {
        console.state.reload().await.unwrap();
        assert_eq!(reading.next().await.event, "snapshot");
    }
    let admin = console.api(&console.token("admin").await);
    let flipped_at = Instant::now();
    assert_eq!(admin.flip("dark_mode", false, json!({})).await.status, 200);
    let change = reading.next().await;
    assert_eq!(change.data["key"], "dark_mode");
    assert!(
        flipped_at.elapsed() < Duration::from_secs(2),
        "the reading subscriber waited {:?} behind the stuck one",
        flipped_at.elapsed()
    );
    // The stuck one was let go: what it can still read ends (the server closed the
    // connection) without the last change.
    let mut received = Vec::new();
    let ended =
        tokio::time::timeout(Duration::from_secs(20), stuck.read_to_end(&mut received)).await;
    assert!(
        ended.is_ok(),
        "the stuck subscriber's connection is still open"
    );
    let text = String::from_utf8_lossy(&received);
    assert!(
        text.starts_with("HTTP/1.1 200 OK"),
        "{}",
        &text[..text.len().min(200)]
    );
    assert!(
        !text.contains("event: change"),
        "the stuck subscriber got the last change"
    );
    console.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_thousand_subscribers_reconnect_at_once_after_a_restart() {
    const SUBSCRIBERS: usize = 1000;
    raise_open_file_limit(4 * SUBSCRIBERS as u64);
    let mut console = TestConsole::start(Backend::Sqlite).await;
    let key = console.client_key("prod", "web").await;
    let address = console.address;
    let (restarted, _) = tokio::sync::watch::channel(false);
    let mut fleet = Vec::with_capacity(SUBSCRIBERS);
    let (connected, mut all_connected) = tokio::sync::mpsc::channel::<()>(SUBSCRIBERS);
    for _ in 0..SUBSCRIBERS {
        let key = key.clone();
        let connected = connected.clone();
        let mut restarted = restarted.subscribe();
        fleet.push(tokio::spawn(async move {
            let mut stream = TcpStream::connect(address).await.unwrap();
            stream
                .write_all(stream_request(&key).as_bytes())
                .await
                .unwrap();
            read_until(&mut stream, "event: snapshot").await.unwrap();
            connected.send(()).await.unwrap();
            // The server stops: the stream ends.
            let mut rest = Vec::new();
            stream.read_to_end(&mut rest).await.unwrap();
            restarted.wait_for(|r| *r).await.unwrap();
            // Every process reconnects at the same moment; a refused connect is
            // tried again.
            let started = Instant::now();
            loop {
                if let Ok(mut stream) = TcpStream::connect(address).await {
                    stream
                        .write_all(stream_request(&key).as_bytes())
                        .await
                        .unwrap();
                    if read_until(&mut stream, "event: snapshot").await.is_some() {
                        return started.elapsed();
                    }
                }
                tokio::time::sleep(Duration::from_millis(50)).await;
            }
        }));
    }
    drop(connected);
    for _ in 0..SUBSCRIBERS {
        tokio::time::timeout(Duration::from_secs(60), all_connected.recv())
            .await
            .expect("every subscriber connects")
            .unwrap();
    }
    console.restart().await;
    restarted.send_replace(true);
    let mut slowest = Duration::ZERO;
    for subscriber in fleet {
        let took = tokio::time::timeout(Duration::from_secs(60), subscriber)
            .await
            .expect("every subscriber is back within a minute")
            .unwrap();
        slowest = slowest.max(took);
    }
    println!("{SUBSCRIBERS} subscribers back after a restart, slowest in {slowest:?}");
    console.stop().await;
}

/// Reads `stream` until `marker` shows up (`None` if it ends first or sends an error).
async fn read_until(stream: &mut TcpStream, marker: &str) -> Option<()> {
    let mut seen = Vec::new();
    let mut buffer = [0u8; 4096];
    loop {
        let n = tokio::time::timeout(Duration::from_secs(60), stream.read(&mut buffer))
            .await
            .ok()?
            .ok()?;
        if n == 0 {
            return None;
        }
        seen.extend_from_slice(&buffer[..n]);
        let text = String::from_utf8_lossy(&seen);
        if !text.starts_with("HTTP/1.1 200") && text.contains("\r\n\r\n") {
            return None;
        }
        if text.contains(marker) {
            return Some(());
        }
    }
}

/// The soft limit of open files up to `wanted` (at most the hard limit): a test
/// with a thousand connections on both ends of one process needs more than some
/// defaults give.
fn raise_open_file_limit(wanted: u64) {
    use rustix::process::{Resource, getrlimit, setrlimit};
    let mut limit = getrlimit(Resource::Nofile);
    let hard = limit.maximum.unwrap_or(u64::MAX);
    assert!(
        hard >= wanted,
        "the open-file hard limit {hard} is below {wanted}"
    );
    if limit.current.is_some_and(|current| current < wanted) {
        limit.current = Some(wanted);
        setrlimit(Resource::Nofile, limit).unwrap();
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn subscribers_keep_the_last_state_through_an_outage_then_get_a_fresh_snapshot() {
    let test_db = TestDb::new(Backend::Postgres).await;
    let proxy = Proxy::start("127.0.0.1:5432".parse().unwrap()).await;
    let url = vexil_store::DatabaseUrl::parse(&test_db.postgres_url_via(proxy.addr())).unwrap();
    let options = Options {
        db: Some(vexil_store::Db::connect(&url).await.unwrap()),
        ..Options::default()
    };
    let console = TestConsole::start_with(test_db, options).await;
    let key = console.client_key("prod", "web").await;
    let mut reading = subscriber(&console, &key).await;
    assert_eq!(reading.next().await.event, "snapshot");

    proxy.cut();
    // Changed while the server cannot see the database: the runbook's Option A.
    console
        .test_db()
        .execute(
            "INSERT INTO console_feature_flags (flag_key, env, value) VALUES ('dark_mode', 'prod', 1)",
        )
        .await
        .unwrap();
    // Meanwhile the stream stays open and says nothing it does not know.
    assert_eq!(reading.within(Duration::from_secs(2)).await, None);
    proxy.restore();
    let fresh = reading.next().await;
    assert_eq!(fresh.event, "snapshot");
    assert_eq!(fresh.data["flags"]["dark_mode"]["row"], true);
    console.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_idle_stream_gets_keep_alives() {
    let options = Options {
        sdk: SdkConfig {
            keep_alive: Duration::from_millis(100),
            ..SdkConfig::default()
        },
        ..Options::default()
    };
    let console = TestConsole::start_with(TestDb::new(Backend::Sqlite).await, options).await;
    let key = console.client_key("prod", "web").await;
    let mut reading = subscriber(&console, &key).await;
    assert_eq!(reading.next().await.event, "snapshot");
    assert_eq!(reading.within(Duration::from_millis(500)).await, None);
    assert!(
        reading.keep_alives >= 2,
        "{} keep-alives",
        reading.keep_alives
    );
    console.stop().await;
}
