//! `StallGuard`: a connection whose client has accepted no byte for a while is
//! closed. Without it, a client that stops reading an event stream keeps its
//! connection (and the server's buffers for it) forever: the stream is only polled
//! when the socket can take more, so the subscriber never even learns it fell behind.
//!
//! The guard wraps each accepted socket (`serve.rs`): a write that stays pending for
//! `limit` fails with `TimedOut`, and hyper drops the connection. A client that reads,
//! however slowly, is never cut by it.

use std::io;
use std::pin::Pin;
use std::task::{Context, Poll};
use std::time::Duration;

use tokio::io::{AsyncRead, AsyncWrite, ReadBuf};
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
