//! One connection: hyper's HTTP/1 state machine over the socket, plus a watchdog that closes the
//! connection once it stops making progress.
//!
//! Progress is a request handed to the handler or response bytes accepted by the socket. A connection
//! without either for the idle timeout is closed: an idle keep-alive connection, a head trickled in a byte
//! at a time (slowloris), a client that stopped reading. A slow download keeps writing, so it stays.
//!
//! hyper's own `header_read_timeout` does the slowloris part, but it allocates and registers a timer for
//! every request; this costs one plain counter increment per write and one timer wake-up per connection
//! every quarter of the timeout.

use std::io;
use std::pin::Pin;
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::task::{Context, Poll};
use std::time::Duration;

use hyper::rt::{Read, ReadBufCursor, Write};

/// A count that goes up whenever the connection makes progress; the watchdog only compares values.
#[derive(Debug, Default)]
pub struct Progress(AtomicU64);

impl Progress {
    /// Records progress. Only the connection's own task writes it, so a load and a store suffice.
    #[inline]
    pub fn bump(&self) {
        self.0.store(
            self.0.load(Ordering::Relaxed).wrapping_add(1),
            Ordering::Relaxed,
        );
    }

    fn get(&self) -> u64 {
        self.0.load(Ordering::Relaxed)
    }
}

/// An IO that records response bytes written as progress.
pub struct Watched<T> {
    io: T,
    progress: Arc<Progress>,
}

impl<T> Watched<T> {
    pub fn new(io: T, progress: Arc<Progress>) -> Self {
        Watched { io, progress }
    }
}

impl<T: Read + Unpin> Read for Watched<T> {
    fn poll_read(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: ReadBufCursor<'_>,
    ) -> Poll<io::Result<()>> {
        Pin::new(&mut self.get_mut().io).poll_read(cx, buf)
    }
}

impl<T: Write + Unpin> Write for Watched<T> {
    fn poll_write(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &[u8],
    ) -> Poll<io::Result<usize>> {
        let this = self.get_mut();
        let r = Pin::new(&mut this.io).poll_write(cx, buf);
        if let Poll::Ready(Ok(n)) = r
            && n > 0
        {
            this.progress.bump();
        }
        r
    }

    fn poll_write_vectored(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        bufs: &[io::IoSlice<'_>],
    ) -> Poll<io::Result<usize>> {
        let this = self.get_mut();
        let r = Pin::new(&mut this.io).poll_write_vectored(cx, bufs);
        if let Poll::Ready(Ok(n)) = r
            && n > 0
        {
            this.progress.bump();
        }
        r
    }

    fn is_write_vectored(&self) -> bool {
        self.io.is_write_vectored()
    }

    fn poll_flush(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        Pin::new(&mut self.get_mut().io).poll_flush(cx)
    }

    fn poll_shutdown(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        Pin::new(&mut self.get_mut().io).poll_shutdown(cx)
    }
}

/// Runs `conn` in a task of its own and aborts it (closing the socket) once `progress` has not moved for
/// `timeout`. The watchdog wakes every quarter of the timeout, so a stalled connection is closed between
/// 1 and 1.25 timeouts after its last progress; it is never woken by the connection's own IO.
pub async fn supervise<F>(conn: F, progress: Arc<Progress>, timeout: Duration)
where
    F: std::future::Future<Output = ()> + Send + 'static,
{
    let task = tokio::spawn(conn);
    let abort = task.abort_handle();
    tokio::pin!(task);
    let period = (timeout / 4).max(Duration::from_millis(50));
    let mut seen = progress.get();
    let mut still_since = tokio::time::Instant::now();
    let mut tick = tokio::time::interval_at(still_since + period, period);
    tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    loop {
        tokio::select! {
            _ = &mut task => return,
            now = tick.tick() => {
                let current = progress.get();
                if current != seen {
                    seen = current;
                    still_since = now;
                } else if now.duration_since(still_since) >= timeout {
                    tracing::debug!(idle_secs = timeout.as_secs(), "closing a connection without progress");
                    abort.abort();
                    return;
                }
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test(start_paused = true)]
    async fn stalled_connection_is_aborted_and_active_one_kept() {
        // Stalled: never bumps.
        let p = Arc::new(Progress::default());
        let (tx, rx) = tokio::sync::oneshot::channel::<()>();
        let stalled = async move {
            let _guard = tx; // dropped (closing the channel) when the task is aborted
            std::future::pending::<()>().await;
        };
        let start = tokio::time::Instant::now();
        supervise(stalled, p, Duration::from_secs(8)).await;
        assert!(rx.await.is_err(), "the stalled task was dropped");
        let waited = start.elapsed();
        assert!(
            waited >= Duration::from_secs(8) && waited <= Duration::from_secs(10),
            "{waited:?}"
        );

        // Active: bumps every 3 s for 30 s, then finishes by itself.
        let p = Arc::new(Progress::default());
        let p2 = p.clone();
        let active = async move {
            for _ in 0..10 {
                tokio::time::sleep(Duration::from_secs(3)).await;
                p2.bump();
            }
        };
        let start = tokio::time::Instant::now();
        supervise(active, p, Duration::from_secs(8)).await;
        assert_eq!(start.elapsed(), Duration::from_secs(30), "ran to its end");
    }
}
