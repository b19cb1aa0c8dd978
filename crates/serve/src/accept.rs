//! The server foundation shared by `staleguard serve` and `staleguard service`: one accept loop,
//! HTTP/1.1 with keep-alive, a watchdog per connection ([`crate::conn`]: a connection without progress
//! for the idle timeout is closed) and a graceful shutdown (stop accepting, let open requests finish,
//! at most [`DRAIN`]).

use std::convert::Infallible;
use std::future::Future;
use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;

use hyper::body::{Body, Incoming};
use hyper::server::conn::http1;
use hyper::service::service_fn;
use hyper::{Request, Response};
use hyper_util::rt::TokioIo;
use tokio::net::TcpListener;

use crate::conn;

/// How long open requests may take to finish after a shutdown.
pub const DRAIN: Duration = Duration::from_secs(10);

/// Serves `listener` until `shutdown` resolves: each request goes to `handle(request, peer)`; then
/// stops accepting and waits (up to [`DRAIN`]) for open requests.
pub async fn serve<H, Fut, B>(
    listener: TcpListener,
    handle: H,
    idle_timeout: Duration,
    shutdown: impl Future<Output = ()>,
) where
    H: Fn(Request<Incoming>, SocketAddr) -> Fut + Clone + Send + Sync + 'static,
    Fut: Future<Output = Response<B>> + Send + 'static,
    B: Body + Send + 'static,
    B::Data: Send,
    B::Error: Into<Box<dyn std::error::Error + Send + Sync>>,
{
    let graceful = hyper_util::server::graceful::GracefulShutdown::new();
    tokio::pin!(shutdown);
    loop {
        tokio::select! {
            accepted = listener.accept() => {
                let (stream, peer) = match accepted {
                    Ok(a) => a,
                    Err(e) => {
                        tracing::warn!(error = %e, "accept failed");
                        tokio::time::sleep(Duration::from_millis(50)).await;
                        continue;
                    }
                };
                let _ = stream.set_nodelay(true);
                let progress = Arc::new(conn::Progress::default());
                let seen = progress.clone();
                let handle = handle.clone();
                let svc = service_fn(move |req| {
                    seen.bump();
                    let answer = handle(req, peer);
                    async move { Ok::<_, Infallible>(answer.await) }
                });
                // writev off: hyper copies head and small bodies into one buffer and sends it with a
                // single write, which is cheaper than a vectored write for the small responses that
                // dominate. No hyper timer: the watchdog in `conn` closes stalled connections.
                let io = conn::Watched::new(TokioIo::new(stream), progress.clone());
                let connection = graceful.watch(http1::Builder::new().writev(false).serve_connection(io, svc));
                let served = async move {
                    if let Err(e) = connection.await {
                        tracing::debug!(error = %e, "connection ended with an error");
                    }
                };
                tokio::spawn(conn::supervise(served, progress, idle_timeout));
            }
            () = &mut shutdown => break,
        }
    }
    drop(listener);
    tokio::select! {
        () = graceful.shutdown() => {}
        () = tokio::time::sleep(DRAIN) => tracing::warn!("open connections did not finish within {} s", DRAIN.as_secs()),
    }
}
