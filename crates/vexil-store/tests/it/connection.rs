//! PostgreSQL connections are quick over TLS: the socket the driver opens has
//! `TCP_NODELAY`, so the TLS handshake never waits on a delayed ACK (~40 ms, twice,
//! per connection: vendor/README.md). PostgreSQL only; the local server must have
//! TLS on (Debian's default, `ssl = on` with its snakeoil certificate), and a test
//! fails when it has not.

use std::os::fd::AsRawFd;
use std::time::{Duration, Instant};

use sqlx::Connection;
use sqlx::postgres::PgConnection;
use vexil_store::{Backend, Db};
use vexil_testkit::TestDb;

/// How many connections the timing test opens.
const CONNECTIONS: usize = 20;

/// The median a connection with TLS may take. A stalled handshake takes two delayed
/// ACKs, ≥ 80 ms; one that does not stall takes a few milliseconds even in a debug
/// build on a busy machine, so this bound does not flake and still catches a stall.
const MEDIAN_BOUND: Duration = Duration::from_millis(40);

/// The socket of a connection with TLS has `TCP_NODELAY` set: read from the socket
/// itself, found among this process's descriptors by the port the server saw.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_postgresql_socket_has_nodelay() {
    let test_db = TestDb::unmigrated(Backend::Postgres).await;
    let mut connection = PgConnection::connect(&with_tls(&test_db))
        .await
        .expect("connecting with sslmode=require (does the local PostgreSQL have ssl = on?)");
    let (port,): (i32,) = sqlx::query_as("SELECT inet_client_port()")
        .fetch_one(&mut connection)
        .await
        .unwrap();
    let socket = own_tcp_socket(u16::try_from(port).unwrap())
        .expect("the connection's socket among this process's descriptors");
    assert!(
        socket.nodelay().unwrap(),
        "the driver opened its PostgreSQL socket without TCP_NODELAY"
    );
    connection.close().await.unwrap();
}

/// The measurement replayed: opening a connection with TLS, median of 20, is well
/// under what two delayed ACKs cost. Also through `Db::connect`, as every command
/// opens it.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn connecting_with_tls_does_not_stall() {
    let test_db = TestDb::new(Backend::Postgres).await;
    let url = with_tls(&test_db);
    let mut times = Vec::with_capacity(CONNECTIONS);
    for _ in 0..CONNECTIONS {
        let start = Instant::now();
        let connection = PgConnection::connect(&url)
            .await
            .expect("connecting with sslmode=require (does the local PostgreSQL have ssl = on?)");
        times.push(start.elapsed());
        connection.close().await.unwrap();
    }
    times.sort();
    let median = times[CONNECTIONS / 2];
    assert!(
        median < MEDIAN_BOUND,
        "median {median:?} per connection with TLS (all: {times:?})"
    );

    // `Db::connect` opens two (a probe, then the pool's first): the best of three
    // under twice the bound, where a stall would cost at least 160 ms each time.
    let db_url = vexil_store::DatabaseUrl::parse(&url).unwrap();
    let mut best = Duration::MAX;
    for _ in 0..3 {
        let start = Instant::now();
        let db = Db::connect(&db_url).await.unwrap();
        best = best.min(start.elapsed());
        db.close().await;
    }
    assert!(
        best < 2 * MEDIAN_BOUND,
        "Db::connect with TLS took {best:?} at best"
    );
}

/// The test database's URL with TLS required, so a server without TLS fails the test
/// instead of quietly measuring plain text.
fn with_tls(test_db: &TestDb) -> String {
    format!("{}?sslmode=require", test_db.url_string())
}

/// This process's TCP socket whose local port is `port`, as a second descriptor of
/// the same socket (`pidfd_getfd` on this process: no unsafe code, and the
/// driver's own descriptor is left as it is).
fn own_tcp_socket(port: u16) -> Option<std::net::TcpStream> {
    let pidfd = rustix::process::pidfd_open(
        rustix::process::getpid(),
        rustix::process::PidfdFlags::empty(),
    )
    .expect("pidfd_open on this process");
    let own = pidfd.as_raw_fd();
    for entry in std::fs::read_dir("/proc/self/fd").expect("/proc/self/fd") {
        let entry = entry.unwrap();
        let Ok(fd) = entry.file_name().to_string_lossy().parse::<i32>() else {
            continue;
        };
        let is_socket = std::fs::read_link(entry.path())
            .is_ok_and(|target| target.to_string_lossy().starts_with("socket:"));
        if fd == own || !is_socket {
            continue;
        }
        // The descriptor may have been closed since the listing; skip it then.
        let Ok(copy) =
            rustix::process::pidfd_getfd(&pidfd, fd, rustix::process::PidfdGetfdFlags::empty())
        else {
            continue;
        };
        let socket = std::net::TcpStream::from(copy);
        if socket.local_addr().is_ok_and(|addr| addr.port() == port)
            && socket.peer_addr().is_ok_and(|addr| addr.port() == 5432)
        {
            return Some(socket);
        }
    }
    None
}
