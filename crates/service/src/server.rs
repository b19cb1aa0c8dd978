//! The service process: the API on the server foundation shared with `staleguard serve`
//! ([`staleguard_serve::accept`]: one accept loop, keep-alive, a watchdog per connection) and the
//! workers. Shutdown order: stop accepting and let open requests finish (every event acknowledged so
//! far is committed), then stop starting batches and finish those in flight (their outcome recorded),
//! then return.

use std::sync::Arc;
use std::time::Duration;

use tokio::net::TcpListener;
use tower::ServiceExt as _;

use crate::api::{self, Api};
use crate::worker::{self, Sender};

/// A connection without progress for this long is closed.
pub const IDLE_TIMEOUT: Duration = Duration::from_secs(60);

/// Serves the API on `listener` and runs the workers (at most `concurrency` batches in flight per
/// provider) until `shutdown` resolves.
pub async fn run(
    api: Api,
    sender: Arc<dyn Sender>,
    listener: TcpListener,
    concurrency: usize,
    shutdown: impl std::future::Future<Output = ()>,
) {
    let (stop, stopped) = tokio::sync::oneshot::channel::<()>();
    let workers = tokio::spawn(worker::run(api.clone(), sender, concurrency, async move {
        let _ = stopped.await;
    }));
    let router = api::router(api);
    staleguard_serve::accept::serve(
        listener,
        move |req, _peer| {
            let router = router.clone();
            async move {
                match router.oneshot(req).await {
                    Ok(r) => r,
                    Err(never) => match never {},
                }
            }
        },
        IDLE_TIMEOUT,
        shutdown,
    )
    .await;
    let _ = stop.send(());
    let _ = workers.await;
}
