//! Rate limit: [`RateLimited`] starts at most `per_second` calls a second.

use std::sync::Mutex;
use std::time::Duration;

use async_trait::async_trait;
use staleguard_core::purge::Capabilities;
use tokio::time::Instant;

use super::Retrier;
use crate::{Batch, CdnError, Invalidation, Provider, Receipt, RetryUnit, Status};

/// At most `per_second` calls (purge, status, list together) start per second: each call waits for its
/// slot, slots `1 / per_second` apart. Concurrent callers queue fairly in slot order.
pub struct RateLimited<P> {
    inner: P,
    interval: Option<Duration>,
    next: Mutex<Option<Instant>>,
}

impl<P: std::fmt::Debug> std::fmt::Debug for RateLimited<P> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("RateLimited")
            .field("inner", &self.inner)
            .field("interval", &self.interval)
            .finish_non_exhaustive()
    }
}

impl<P: Provider> RateLimited<P> {
    /// `per_second` <= 0 (or not finite): no limit.
    pub fn new(inner: P, per_second: f64) -> RateLimited<P> {
        let interval = (per_second > 0.0 && per_second.is_finite())
            .then(|| Duration::from_secs_f64(1.0 / per_second));
        RateLimited {
            inner,
            interval,
            next: Mutex::new(None),
        }
    }

    async fn slot(&self) {
        let Some(interval) = self.interval else {
            return;
        };
        let at = {
            let mut next = self.next.lock().unwrap_or_else(|e| e.into_inner());
            let now = Instant::now();
            let at = next.map_or(now, |n| n.max(now));
            *next = Some(at + interval);
            at
        };
        tokio::time::sleep_until(at).await;
    }
}

#[async_trait]
impl<P: Provider> Provider for RateLimited<P> {
    fn name(&self) -> &str {
        self.inner.name()
    }
    fn capabilities(&self) -> &Capabilities {
        self.inner.capabilities()
    }
    fn url_prefix(&self) -> Option<&str> {
        self.inner.url_prefix()
    }
    fn free_tier_scope(&self) -> Option<&str> {
        self.inner.free_tier_scope()
    }
    fn retry_unit(&self) -> RetryUnit {
        self.inner.retry_unit()
    }
    async fn purge(&self, batch: &Batch) -> Result<Receipt, CdnError> {
        self.slot().await;
        self.inner.purge(batch).await
    }
    /// One slot per call: the requests re-sent inside it take none (they are few, and each waits for its
    /// own backoff or `Retry-After`). A provider whose unit is the call takes a slot per attempt.
    async fn purge_each(&self, batch: &Batch, retry: &Retrier) -> Result<Receipt, CdnError> {
        match self.inner.retry_unit() {
            RetryUnit::Request => {
                self.slot().await;
                self.inner.purge_each(batch, retry).await
            }
            RetryUnit::Call => {
                retry
                    .run("purge", batch.items.len(), |_| self.purge(batch))
                    .await
            }
        }
    }
    async fn status(&self, id: &str) -> Result<Status, CdnError> {
        self.slot().await;
        self.inner.status(id).await
    }
    async fn list(&self, max: usize) -> Result<Vec<Invalidation>, CdnError> {
        self.slot().await;
        self.inner.list(max).await
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::wrap::scripted::*;

    #[tokio::test(start_paused = true)]
    async fn rate_limit_spaces_calls() {
        let p = Scripted::new(caps(10));
        let r = RateLimited::new(&p, 4.0);
        let t = Instant::now();
        for _ in 0..5 {
            r.purge(&batch(&["/a"])).await.unwrap();
        }
        let times: Vec<Duration> = p.calls().iter().map(|(_, at)| *at - t).collect();
        let ms: Vec<u128> = times.iter().map(|d| d.as_millis()).collect();
        assert_eq!(ms, [0, 250, 500, 750, 1000]);

        // Concurrent callers share the slots.
        let p = Scripted::new(caps(10));
        let r = RateLimited::new(&p, 2.0);
        let t = Instant::now();
        let b = batch(&["/a"]);
        let _ = futures::future::join_all((0..4).map(|_| r.purge(&b))).await;
        assert_eq!(t.elapsed(), Duration::from_millis(1500));

        // No limit.
        let p = Scripted::new(caps(10));
        let r = RateLimited::new(&p, 0.0);
        let t = Instant::now();
        for _ in 0..5 {
            r.purge(&batch(&["/a"])).await.unwrap();
        }
        assert_eq!(t.elapsed(), Duration::ZERO);
    }
}
