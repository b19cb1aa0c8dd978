//! Wrappers written once for all providers: retry with backoff and jitter under a deadline, rate limit,
//! chunking by the provider's limits, dry-run recording, and the driver that sends a purge's calls and
//! waits for them to complete.
//!
//! The standard stack, from the wire up:
//!
//! ```text
//! provider (one purge call per purge)     cloudfront, varnish, cloudflare, fastly; or Recorder (dry run)
//!   └ RateLimited   at most `max-rate` calls per second (crate::open adds it from the config)
//!     └ Retry       retryable errors again with backoff + full jitter, Retry-After, under a deadline;
//!                   the unit re-sent is the provider's (`Provider::retry_unit`): the call, or only
//!                   the call's requests that failed (Fastly URLs, Varnish node × item)
//!       └ purge_all / wait_all   the driver: calls in order, in-flight limits, BatchTooLarge halves,
//!                                adaptive polling of asynchronous purges, Timeout naming the ids
//! ```
//!
//! Typical use (what `staleguard invalidate` and `deploy` do):
//!
//! ```no_run
//! # use std::{sync::Arc, time::Duration};
//! # use staleguard_cdn::{Batch, Item, Provider, CdnError, wrap::{self, RunOptions}};
//! # async fn f(p: Arc<dyn Provider>, items: Vec<Item>) -> Result<(), CdnError> {
//! let opts = RunOptions::within(Duration::from_secs(20 * 60));
//! let p = wrap::retrying(p, &opts);
//! let whole = Batch { items, reference: "d42-cloudfront".into(), soft: false };
//! let calls = wrap::chunk(&p, &whole)?; // one kind per call, within the limits; refs d42-cloudfront-1, -2, …
//! let report = wrap::purge_all(&p, calls, &opts).await?;
//! wrap::wait_all(&p, &report.receipts, &opts).await?; // only when the config says `wait = true`
//! # Ok(()) }
//! ```
//!
//! Invariants:
//! - every call the driver sends holds items of one kind, each supported by the provider, at most
//!   `max_items_per_call` of them and never more than an in-flight limit: a batch that breaks this is
//!   refused with [`ErrorKind::Invalid`] before the first request;
//! - a retry re-sends the very same [`Batch`] (same `reference`), so a provider with idempotency keys
//!   (CloudFront `CallerReference`) never creates a second purge; the halves of a split call get new
//!   references (`<ref>.1`, `<ref>.2`) because their content differs;
//! - what is re-sent is the provider's unit of work ([`RetryUnit`]): a provider whose call is one
//!   request (CloudFront, Cloudflare) has the whole call re-sent; one whose call is many independent
//!   requests (Fastly URL purges, Varnish: one request per item and node) makes the call once and
//!   re-sends only the requests that failed, each on its own schedule ([`Retrier::each`]), so a
//!   request the CDN acknowledged is never sent again and one failure does not hold up the others;
//! - nothing sleeps past a deadline: a retry that would is not made, a poll is cut short to the deadline;
//!   a `Retry-After` longer than the time left fails at once, with a message giving both;
//! - events: [`Retry`] emits [`Event::Sending`] per attempt (for a request unit: once for the call,
//!   then once per request re-sent) and [`Event::Retrying`] per failure retried; the driver emits
//!   [`Event::Sent`] per call, [`Event::Split`] and [`Event::Polled`]. Each also logs with `tracing`,
//!   with the provider and the batch size as fields.
//!
//! [`ErrorKind::Invalid`]: crate::ErrorKind::Invalid
//! [`Batch`]: crate::Batch
//! [`RetryUnit`]: crate::RetryUnit
//! [`Event::Sending`]: crate::Event::Sending
//! [`Event::Retrying`]: crate::Event::Retrying
//! [`Event::Sent`]: crate::Event::Sent
//! [`Event::Split`]: crate::Event::Split
//! [`Event::Polled`]: crate::Event::Polled

mod chunk;
mod driver;
mod rate;
mod record;
mod retry;
#[cfg(test)]
mod scripted;

use std::time::Duration;

pub use chunk::{check_call, chunk, halves, per_call};
pub use driver::{Poll, PurgeReport, RunOptions, purge_all, wait_all};
pub use rate::RateLimited;
pub use record::Recorder;
pub use retry::{Retrier, Retry, RetryPolicy, retrying};
pub use staleguard_core::event::Observer;

/// A duration for messages: `1.5s`, `45s`, `20m`, `2m 5s`.
pub fn human(d: Duration) -> String {
    let ms = d.as_millis();
    if ms < 10_000 {
        let s = format!("{:.1}", d.as_secs_f64());
        return format!("{}s", s.trim_end_matches(".0"));
    }
    let s = d.as_secs();
    match (s / 60, s % 60) {
        (0, s) => format!("{s}s"),
        (m, 0) => format!("{m}m"),
        (m, s) => format!("{m}m {s}s"),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn human_durations() {
        let check = |ms: u64, want: &str| assert_eq!(human(Duration::from_millis(ms)), want);
        check(1500, "1.5s");
        check(2000, "2s");
        check(45_000, "45s");
        check(1_200_000, "20m");
        check(125_000, "2m 5s");
    }
}
