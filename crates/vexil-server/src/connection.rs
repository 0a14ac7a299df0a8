//! How connections are served: `StallGuard`, `opening` and `Prefixed`, and
//! `serve_stream`, which serves an event stream on its own connection.
//!
//! `StallGuard`: a connection whose client has accepted no byte for a while is
//! closed. Without it, a client that stops reading an event stream keeps its
//! connection (and the server's buffers for it) forever: the stream is only polled
//! when the socket can take more, so the subscriber never even learns it fell behind.
//!
//! The guard wraps each accepted socket (`serve.rs`): a write that stays pending for
//! `limit` fails with `TimedOut`, and hyper drops the connection. A client that reads,
//! however slowly, is never cut by it.
//!
//! `opening` reads a new connection's first bytes. An event-stream request (`GET
//! /sdk/v1/stream`, `GET /ofrep/v1/events`) goes to `serve_stream`, which parses its
//! head (httparse), answers it through the same router and layers, and writes the
//! stream itself, delimited by close, without hyper's buffers per connection (the
//! memory of an idle subscriber). Any other goes to hyper behind `Prefixed` (the bytes
//! already read, read again).

use std::io;
use std::pin::Pin;
use std::task::{Context, Poll};
use std::time::Duration;

use std::net::SocketAddr;

use axum::Router;
use axum::extract::ConnectInfo;
use axum::http::{Request, StatusCode};
use http_body_util::BodyExt;
use tokio::io::{AsyncRead, AsyncReadExt, AsyncWrite, AsyncWriteExt, ReadBuf};
use tokio::net::TcpStream;
use tokio::time::{Instant, Sleep};

/// An accepted socket whose writes may not stall longer than `limit`.
pub(crate) struct StallGuard<T> {
    inner: T,
    limit: Duration,
    /// Armed while a write is pending; made on the first stall only.
    timer: Option<Pin<Box<Sleep>>>,
    armed: bool,
}

impl<T> StallGuard<T> {
    pub(crate) fn new(inner: T, limit: Duration) -> StallGuard<T> {
        StallGuard {
            inner,
            limit,
            timer: None,
            armed: false,
        }
    }

    /// The write is pending: arm the timer if it is not, and fail once it fires.
    fn stalled<R>(&mut self, cx: &mut Context<'_>) -> Poll<io::Result<R>> {
        let deadline = Instant::now() + self.limit;
        let timer = self
            .timer
            .get_or_insert_with(|| Box::pin(tokio::time::sleep_until(deadline)));
        if !self.armed {
            timer.as_mut().reset(deadline);
            self.armed = true;
        }
        match timer.as_mut().poll(cx) {
            Poll::Ready(()) => {
                metrics::counter!("vexil_connections_stalled_total").increment(1);
                tracing::info!(
                    seconds = self.limit.as_secs(),
                    "closing a connection whose client accepted no byte for {} s",
                    self.limit.as_secs()
                );
                Poll::Ready(Err(io::Error::new(
                    io::ErrorKind::TimedOut,
                    "the client stopped reading",
                )))
            }
            Poll::Pending => Poll::Pending,
        }
    }

    fn progressed<R>(
        &mut self,
        poll: Poll<io::Result<R>>,
        cx: &mut Context<'_>,
    ) -> Poll<io::Result<R>> {
        match poll {
            Poll::Pending => self.stalled(cx),
            ready => {
                self.armed = false;
                ready
            }
        }
    }
}

impl<T: AsyncRead + Unpin> AsyncRead for StallGuard<T> {
    fn poll_read(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &mut ReadBuf<'_>,
    ) -> Poll<io::Result<()>> {
        Pin::new(&mut self.get_mut().inner).poll_read(cx, buf)
    }
}

impl<T: AsyncWrite + Unpin> AsyncWrite for StallGuard<T> {
    fn poll_write(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &[u8],
    ) -> Poll<io::Result<usize>> {
        let this = self.get_mut();
        let poll = Pin::new(&mut this.inner).poll_write(cx, buf);
        this.progressed(poll, cx)
    }

    fn poll_write_vectored(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        bufs: &[io::IoSlice<'_>],
    ) -> Poll<io::Result<usize>> {
        let this = self.get_mut();
        let poll = Pin::new(&mut this.inner).poll_write_vectored(cx, bufs);
        this.progressed(poll, cx)
    }

    fn is_write_vectored(&self) -> bool {
        self.inner.is_write_vectored()
    }

    fn poll_flush(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        let this = self.get_mut();
        let poll = Pin::new(&mut this.inner).poll_flush(cx);
        this.progressed(poll, cx)
    }

    fn poll_shutdown(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        Pin::new(&mut self.get_mut().inner).poll_shutdown(cx)
    }
}

/// The request paths whose responses are event streams, served by `serve_stream`.
const STREAM_PATHS: [&[u8]; 2] = [b"GET /sdk/v1/stream", b"GET /ofrep/v1/events"];

/// The longest request head a stream connection may send.
const MAX_HEAD: usize = 16 * 1024;

/// What a connection's first bytes say it is.
pub(crate) enum Opening {
    /// A request for an event stream: served by `serve_stream`.
    Stream(Vec<u8>),
    /// Anything else: served by hyper, these bytes first.
    Other(Vec<u8>),
}

/// Reads just enough of a new connection to tell an event-stream request from any
/// other (at most the length of the longest stream request line's start). `None`
/// when the client sends nothing within `wait` or goes.
pub(crate) async fn opening(socket: &mut TcpStream, wait: Duration) -> Option<Opening> {
    let longest = STREAM_PATHS.iter().map(|p| p.len()).max().unwrap_or(0) + 1;
    let mut read = Vec::with_capacity(longest);
    let reading = async {
        loop {
            let could_be_stream = STREAM_PATHS.iter().any(|path| {
                let n = read.len().min(path.len());
                read[..n] == path[..n]
            });
            if !could_be_stream {
                return Some(Opening::Other(read));
            }
            if read.len() >= longest {
                // `GET /sdk/v1/stream` followed by ` ` or `?`: not `/streams`.
                let stream = STREAM_PATHS.iter().any(|path| {
                    read.starts_with(path) && matches!(read.get(path.len()), Some(b' ' | b'?'))
                });
                return Some(if stream {
                    Opening::Stream(read)
                } else {
                    Opening::Other(read)
                });
            }
            let mut byte = [0u8; 32];
            let want = (longest - read.len()).min(byte.len());
            match socket.read(&mut byte[..want]).await {
                Ok(0) | Err(_) => return None,
                Ok(n) => read.extend_from_slice(&byte[..n]),
            }
        }
    };
    tokio::time::timeout(wait, reading).await.ok().flatten()
}

/// A socket whose first bytes were already read: they are read again first.
pub(crate) struct Prefixed<T> {
    prefix: Vec<u8>,
    at: usize,
    inner: T,
}

impl<T> Prefixed<T> {
    pub(crate) fn new(prefix: Vec<u8>, inner: T) -> Prefixed<T> {
        Prefixed {
            prefix,
            at: 0,
            inner,
        }
    }
}

impl<T: AsyncRead + Unpin> AsyncRead for Prefixed<T> {
    fn poll_read(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &mut ReadBuf<'_>,
    ) -> Poll<io::Result<()>> {
        let this = self.get_mut();
        if this.at < this.prefix.len() {
            let rest = &this.prefix[this.at..];
            let n = rest.len().min(buf.remaining());
            buf.put_slice(&rest[..n]);
            this.at += n;
            if this.at == this.prefix.len() {
                this.prefix = Vec::new();
                this.at = 0;
            }
            return Poll::Ready(Ok(()));
        }
        Pin::new(&mut this.inner).poll_read(cx, buf)
    }
}

impl<T: AsyncWrite + Unpin> AsyncWrite for Prefixed<T> {
    fn poll_write(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &[u8],
    ) -> Poll<io::Result<usize>> {
        Pin::new(&mut self.get_mut().inner).poll_write(cx, buf)
    }

    fn poll_write_vectored(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        bufs: &[io::IoSlice<'_>],
    ) -> Poll<io::Result<usize>> {
        Pin::new(&mut self.get_mut().inner).poll_write_vectored(cx, bufs)
    }

    fn is_write_vectored(&self) -> bool {
        self.inner.is_write_vectored()
    }

    fn poll_flush(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        Pin::new(&mut self.get_mut().inner).poll_flush(cx)
    }

    fn poll_shutdown(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        Pin::new(&mut self.get_mut().inner).poll_shutdown(cx)
    }
}

/// Serves one event-stream request on its own connection, without hyper: the
/// request head is parsed here, answered by the same router (every layer: request
/// id, metrics, security headers, the key check), and the response written as
/// HTTP/1.1 delimited by the connection's close. The connection carries nothing
/// else, so it keeps no request or header buffers while it idles: hyper keeps 16 KiB
/// per connection for its life, most of an idle subscriber's memory otherwise.
///
/// A write that stalls past `write_timeout` ends it, as `StallGuard` does for
/// hyper's connections; so does the client closing its side, noticed at once.
pub(crate) async fn serve_stream(
    mut socket: TcpStream,
    peer: SocketAddr,
    mut head: Vec<u8>,
    app: Router,
    write_timeout: Duration,
    head_wait: Duration,
) {
    let Some(request) = read_head(&mut socket, &mut head, peer, head_wait).await else {
        let _ = socket
            .write_all(
                b"HTTP/1.1 400 Bad Request\r\nconnection: close\r\ncontent-length: 0\r\n\r\n",
            )
            .await;
        return;
    };
    drop(head);
    let Ok(response) = tower::ServiceExt::oneshot(app, request).await;
    let (parts, mut body) = response.into_parts();
    let streaming = parts.status == StatusCode::OK;
    let mut out = Vec::with_capacity(512);
    out.extend_from_slice(
        format!(
            "HTTP/1.1 {} {}\r\n",
            parts.status.as_u16(),
            parts.status.canonical_reason().unwrap_or("")
        )
        .as_bytes(),
    );
    out.extend_from_slice(
        format!(
            "date: {}\r\n",
            httpdate::fmt_http_date(std::time::SystemTime::now())
        )
        .as_bytes(),
    );
    for (name, value) in &parts.headers {
        if matches!(
            name.as_str(),
            "connection" | "content-length" | "transfer-encoding"
        ) {
            continue;
        }
        out.extend_from_slice(name.as_str().as_bytes());
        out.extend_from_slice(b": ");
        out.extend_from_slice(value.as_bytes());
        out.extend_from_slice(b"\r\n");
    }
    out.extend_from_slice(b"connection: close\r\n");
    if !streaming {
        // A refusal: its whole (small) body, with its length.
        let bytes = match body.collect().await {
            Ok(collected) => collected.to_bytes(),
            Err(_) => axum::body::Bytes::new(),
        };
        out.extend_from_slice(format!("content-length: {}\r\n\r\n", bytes.len()).as_bytes());
        out.extend_from_slice(&bytes);
        let _ = write(&mut socket, &out, write_timeout).await;
        let _ = socket.shutdown().await;
        return;
    }
    out.extend_from_slice(b"\r\n");
    if write(&mut socket, &out, write_timeout).await.is_err() {
        return;
    }
    drop(out);
    loop {
        tokio::select! {
            frame = body.frame() => match frame {
                Some(Ok(frame)) => {
                    if let Ok(data) = frame.into_data()
                        && write(&mut socket, &data, write_timeout).await.is_err()
                    {
                        return;
                    }
                }
                Some(Err(_)) | None => break,
            },
            // The client went (or sent something, which a stream does not read).
            readable = socket.readable() => {
                if readable.is_err() {
                    return;
                }
                let mut scratch = [0u8; 64];
                match socket.try_read(&mut scratch) {
                    Ok(0) => return,
                    Ok(_) => {}
                    Err(error) if error.kind() == io::ErrorKind::WouldBlock => {}
                    Err(_) => return,
                }
            }
        }
    }
    let _ = socket.shutdown().await;
}

/// The rest of the request head after `head`, parsed into a request with an empty
/// body; `None` for a malformed head, one with a body, or one too large.
async fn read_head(
    socket: &mut TcpStream,
    head: &mut Vec<u8>,
    peer: SocketAddr,
    wait: Duration,
) -> Option<Request<axum::body::Body>> {
    let reading = async {
        loop {
            if head.windows(4).any(|w| w == b"\r\n\r\n") {
                return Some(());
            }
            if head.len() > MAX_HEAD {
                return None;
            }
            let mut chunk = [0u8; 1024];
            match socket.read(&mut chunk).await {
                Ok(0) | Err(_) => return None,
                Ok(n) => head.extend_from_slice(&chunk[..n]),
            }
        }
    };
    tokio::time::timeout(wait, reading).await.ok().flatten()?;
    let mut headers = [httparse::EMPTY_HEADER; 64];
    let mut parsed = httparse::Request::new(&mut headers);
    if !matches!(parsed.parse(head), Ok(httparse::Status::Complete(_))) {
        return None;
    }
    let mut request = Request::builder()
        .method(parsed.method?)
        .uri(parsed.path?)
        .version(axum::http::Version::HTTP_11);
    for header in parsed.headers.iter() {
        let name = header.name.to_ascii_lowercase();
        // A stream request has no body; one that says otherwise is not served here.
        if name == "transfer-encoding" || (name == "content-length" && header.value != b"0") {
            return None;
        }
        request = request.header(header.name, header.value);
    }
    let mut request = request.body(axum::body::Body::empty()).ok()?;
    request.extensions_mut().insert(ConnectInfo(peer));
    Some(request)
}

/// How long and how many connections may take (docs/deploy.md, "Connections"):
/// what bounds a slow or hostile client, and a server being stopped.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ConnectionConfig {
    /// The longest a client may take to send a request's head, from its first byte
    /// (or, on a kept-alive connection, from the end of the last answer): then the
    /// connection is closed. A client sending one header line every few seconds is
    /// let go here.
    pub header_timeout: Duration,
    /// The longest a request may take from its head to its answer (reading its
    /// body included); then it is answered 408 and the connection closed. Event
    /// streams, which are meant to last, are not bound by it.
    pub request_timeout: Duration,
    /// Connections open at once; one more is answered 503 with `Retry-After` and
    /// closed. Each event-stream subscriber holds one.
    pub max_connections: usize,
    /// How long a stopping server lets its requests in flight finish; then the
    /// connections still open are dropped.
    pub shutdown_timeout: Duration,
}

impl Default for ConnectionConfig {
    fn default() -> ConnectionConfig {
        ConnectionConfig {
            header_timeout: Duration::from_secs(10),
            request_timeout: Duration::from_secs(30),
            max_connections: 10_000,
            shutdown_timeout: Duration::from_secs(10),
        }
    }
}

/// What a connection beyond `ConnectionConfig::max_connections` is told before it is
/// closed.
const TOO_MANY: &[u8] = b"HTTP/1.1 503 Service Unavailable\r\ncontent-type: text/plain; charset=utf-8\r\nretry-after: 1\r\nconnection: close\r\ncontent-length: 46\r\n\r\nvexil has too many connections open; try again";

/// Answers a connection the server has no room for, and closes it.
pub(crate) async fn refuse(mut socket: TcpStream) {
    metrics::counter!("vexil_connections_refused_total").increment(1);
    let _ = tokio::time::timeout(Duration::from_secs(1), socket.write_all(TOO_MANY)).await;
    let _ = socket.shutdown().await;
}

/// Whether a request's path is an event stream's (not bound by the request timeout).
pub(crate) fn is_stream_path(path: &str) -> bool {
    STREAM_PATHS
        .iter()
        .any(|start| start.strip_prefix(b"GET ") == Some(path.as_bytes()))
}

/// Writes all of `bytes`, or fails once the client has accepted no byte for
/// `limit` (a client that reads, however slowly, is never cut).
async fn write(socket: &mut TcpStream, mut bytes: &[u8], limit: Duration) -> io::Result<()> {
    while !bytes.is_empty() {
        match tokio::time::timeout(limit, socket.write(bytes)).await {
            Ok(Ok(0)) => return Err(io::ErrorKind::WriteZero.into()),
            Ok(Ok(n)) => bytes = &bytes[n..],
            Ok(Err(error)) => return Err(error),
            Err(_) => {
                metrics::counter!("vexil_connections_stalled_total").increment(1);
                tracing::info!(
                    "closing a stream whose client accepted no byte for {} s",
                    limit.as_secs()
                );
                return Err(io::ErrorKind::TimedOut.into());
            }
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use std::time::Duration;

    use tokio::io::{AsyncReadExt, AsyncWriteExt};

    use super::StallGuard;

    /// A peer that never reads: the writer's pipe fills, and the guard fails the
    /// write once `limit` has passed (time paused: no waiting).
    #[tokio::test(start_paused = true)]
    async fn a_write_that_stalls_fails_after_the_limit() {
        let (writer, _reader) = tokio::io::duplex(64);
        let mut guarded = StallGuard::new(writer, Duration::from_secs(30));
        let started = tokio::time::Instant::now();
        let error = loop {
            if let Err(error) = guarded.write_all(&[0u8; 1024]).await {
                break error;
            }
        };
        assert_eq!(error.kind(), std::io::ErrorKind::TimedOut);
        assert!(started.elapsed() >= Duration::from_secs(30));
        // A reader that keeps reading is never cut.
        let (writer, mut slow) = tokio::io::duplex(64);
        let mut guarded = StallGuard::new(writer, Duration::from_secs(30));
        let reading = tokio::spawn(async move {
            let mut buf = [0u8; 64];
            let mut total = 0;
            while total < 4096 {
                tokio::time::sleep(Duration::from_secs(10)).await;
                total += slow.read(&mut buf).await.unwrap();
            }
        });
        guarded.write_all(&[0u8; 4096]).await.unwrap();
        reading.await.unwrap();
    }
}
