//! Slow and many clients: a request head sent a line at a time is cut at the header
//! timeout, a body sent too slowly is answered 408 at the request timeout, a
//! connection beyond the cap is answered 503 at once, and a stopping server drops
//! what is still open at its shutdown deadline instead of waiting for it forever.

use std::time::{Duration, Instant};

use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;
use vexil_server::ConnectionConfig;
use vexil_store::Backend;
use vexil_testkit::TestDb;

use crate::harness::{Options, TestConsole};

async fn console(connections: ConnectionConfig) -> TestConsole {
    let options = Options {
        connections,
        ..Options::default()
    };
    TestConsole::start_with(TestDb::new(Backend::Sqlite).await, options).await
}

/// Reads until the server closes the connection (or `limit` passes: then `None`),
/// and returns what it said.
async fn until_closed(socket: &mut TcpStream, limit: Duration) -> Option<String> {
    let mut said = Vec::new();
    let read = tokio::time::timeout(limit, socket.read_to_end(&mut said)).await;
    match read {
        Ok(_) => Some(String::from_utf8_lossy(&said).into_owned()),
        Err(_) => None,
    }
}

/// `GET /healthz` on a connection of its own: what the server said before closing it.
async fn healthz(console: &TestConsole) -> String {
    let mut socket = TcpStream::connect(console.address).await.unwrap();
    socket
        .write_all(b"GET /healthz HTTP/1.1\r\nhost: x\r\nconnection: close\r\n\r\n")
        .await
        .unwrap();
    until_closed(&mut socket, Duration::from_secs(5))
        .await
        .unwrap()
}

/// Replayed: clients sending one header line every few seconds all stayed open.
#[tokio::test]
async fn a_head_sent_a_line_at_a_time_is_cut_at_the_header_timeout() {
    let console = console(ConnectionConfig {
        header_timeout: Duration::from_secs(1),
        ..ConnectionConfig::default()
    })
    .await;
    let mut sockets = Vec::new();
    for _ in 0..20 {
        let mut socket = TcpStream::connect(console.address).await.unwrap();
        socket
            .write_all(b"GET /healthz HTTP/1.1\r\n")
            .await
            .unwrap();
        sockets.push(socket);
    }
    let started = Instant::now();
    let mut closed = 0;
    // A header line every 300 ms: never a whole head.
    while started.elapsed() < Duration::from_secs(4) && closed < sockets.len() {
        tokio::time::sleep(Duration::from_millis(300)).await;
        closed = 0;
        for socket in &mut sockets {
            if socket.write_all(b"x-slow: 1\r\n").await.is_err() {
                closed += 1;
                continue;
            }
            let mut byte = [0u8; 1];
            if let Ok(Ok(0) | Err(_)) =
                tokio::time::timeout(Duration::from_millis(1), socket.read(&mut byte)).await
            {
                closed += 1;
            }
        }
    }
    assert_eq!(closed, sockets.len(), "every slow head was cut");
    assert!(started.elapsed() < Duration::from_secs(4));
    // A whole request still gets its answer.
    let said = healthz(&console).await;
    assert!(said.starts_with("HTTP/1.1 200"), "{said}");
}

#[tokio::test]
async fn a_body_sent_too_slowly_is_answered_408_at_the_request_timeout() {
    let console = console(ConnectionConfig {
        request_timeout: Duration::from_secs(1),
        ..ConnectionConfig::default()
    })
    .await;
    let mut socket = TcpStream::connect(console.address).await.unwrap();
    socket
        .write_all(
            b"POST /console/sign-in HTTP/1.1\r\nhost: x\r\ncontent-type: application/x-www-form-urlencoded\r\ncontent-length: 100\r\n\r\nname=ops1",
        )
        .await
        .unwrap();
    let started = Instant::now();
    let said = until_closed(&mut socket, Duration::from_secs(5))
        .await
        .expect("answered and closed");
    assert!(said.starts_with("HTTP/1.1 408"), "{said}");
    assert!(said.contains("longer than 1 s"), "{said}");
    assert!(started.elapsed() < Duration::from_secs(3));
}

/// One connection beyond the cap is answered 503 with a wait at once, not left
/// waiting; a connection let go makes room again.
#[tokio::test]
async fn a_connection_beyond_the_cap_is_answered_503() {
    let console = console(ConnectionConfig {
        max_connections: 5,
        ..ConnectionConfig::default()
    })
    .await;
    let mut idle = Vec::new();
    for _ in 0..5 {
        idle.push(TcpStream::connect(console.address).await.unwrap());
    }
    // Accepted in order: the sixth finds no room.
    tokio::time::sleep(Duration::from_millis(200)).await;
    let mut sixth = TcpStream::connect(console.address).await.unwrap();
    let said = until_closed(&mut sixth, Duration::from_secs(2))
        .await
        .expect("answered at once");
    assert!(said.starts_with("HTTP/1.1 503"), "{said}");
    assert!(
        said.to_ascii_lowercase().contains("retry-after: 1"),
        "{said}"
    );
    drop(idle);
    tokio::time::sleep(Duration::from_millis(200)).await;
    let said = healthz(&console).await;
    assert!(said.starts_with("HTTP/1.1 200"), "{said}");
}

/// Replayed: with three half-sent requests open, a stopping server waited for them
/// (20 s and more); now it drops them at its shutdown deadline.
#[tokio::test]
async fn a_stopping_server_drops_half_sent_requests_at_its_deadline() {
    let console = console(ConnectionConfig {
        shutdown_timeout: Duration::from_secs(1),
        ..ConnectionConfig::default()
    })
    .await;
    let mut half_sent = Vec::new();
    for start in [
        // An event stream's head, not finished: read outside hyper.
        &b"GET /sdk/v1/stream HTTP/1.1\r\nhost: x\r\n"[..],
        b"GET /ofrep/v1/events HTTP/1.1\r\nhost: x\r\n",
        b"POST /console/sign-in HTTP/1.1\r\nhost: x\r\ncontent-length: 100\r\n\r\nname=",
    ] {
        let mut socket = TcpStream::connect(console.address).await.unwrap();
        socket.write_all(start).await.unwrap();
        half_sent.push(socket);
    }
    tokio::time::sleep(Duration::from_millis(200)).await;
    let started = Instant::now();
    tokio::time::timeout(Duration::from_secs(5), console.stop())
        .await
        .expect("stopped by its deadline");
    let took = started.elapsed();
    assert!(
        took >= Duration::from_millis(900),
        "it waited first: {took:?}"
    );
    assert!(took < Duration::from_secs(3), "{took:?}");
}
