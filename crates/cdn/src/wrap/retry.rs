//! Retry with backoff under a deadline: [`Retry`] re-sends a provider's unit of work on retryable
//! errors, on the schedule of a [`RetryPolicy`]; [`Retrier`] is that schedule, handed to providers whose
//! unit is a request.

use std::future::Future;
use std::sync::Arc;
use std::time::Duration;

use async_trait::async_trait;
use futures::{StreamExt, stream};
use staleguard_core::backoff::{Backoff, Jitter, Next};
use staleguard_core::event::emit;
use staleguard_core::purge::Capabilities;
use tokio::time::Instant;
use tracing::Instrument;

use super::{Observer, RunOptions, human};
use crate::{
    Batch, CdnError, ErrorKind, Event, Invalidation, Provider, Receipt, RetryUnit, Status,
};

/// How [`Retry`] backs off.
#[derive(Debug, Clone, PartialEq)]
pub struct RetryPolicy {
    /// The first backoff ceiling; it doubles per attempt.
    pub base: Duration,
    /// The largest backoff ceiling (a `Retry-After` may ask for more and is honoured).
    pub cap: Duration,
    /// Attempts at most for throttling and transient errors (TooManyInProgress is bounded by time only:
    /// it clears when earlier purges complete, which takes minutes on CloudFront).
    pub max_attempts: u32,
    /// Time at most from the first attempt of one operation, when no earlier deadline is set.
    pub budget: Duration,
    /// Full jitter (a uniform pause between 0 and the ceiling); off: the ceiling itself (tests).
    pub jitter: bool,
}

impl Default for RetryPolicy {
    fn default() -> Self {
        RetryPolicy {
            base: Duration::from_millis(500),
            cap: Duration::from_secs(20),
            max_attempts: 10,
            budget: Duration::from_secs(20 * 60),
            jitter: true,
        }
    }
}

impl RetryPolicy {
    /// The schedule: `base`, doubling per attempt up to `cap`, with full jitter when `jitter` is on.
    pub fn schedule(&self) -> Backoff {
        Backoff::new(self.base, 2.0, self.cap).with_jitter(if self.jitter {
            Jitter::Full
        } else {
            Jitter::None
        })
    }

    /// The pause before attempt `attempt + 1` (`attempt` >= 1 failed attempts so far), before
    /// `Retry-After` is taken into account.
    pub fn backoff(&self, attempt: u32) -> Duration {
        self.schedule().delay(attempt, rand::random())
    }
}

/// One provider's retry schedule: the [`RetryPolicy`], the deadline, who to tell. [`Retry`] drives a
/// provider's calls by it; a provider whose unit of work is a request ([`RetryUnit::Request`]) is
/// handed it in [`Provider::purge_each`] and sends its requests through [`Retrier::each`], so the
/// requests of one call are retried one by one under the same policy, deadline and events as calls.
#[derive(Clone)]
pub struct Retrier {
    name: String,
    /// `None`: no retry at all ([`Retrier::once`]).
    policy: Option<RetryPolicy>,
    deadline: Option<Instant>,
    observer: Option<Observer>,
}

impl std::fmt::Debug for Retrier {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Retrier")
            .field("name", &self.name)
            .field("policy", &self.policy)
            .field("deadline", &self.deadline)
            .finish_non_exhaustive()
    }
}

impl Retrier {
    /// The default policy, no deadline, for the provider labelled `name`.
    pub fn new(name: impl Into<String>) -> Retrier {
        Retrier {
            name: name.into(),
            policy: Some(RetryPolicy::default()),
            deadline: None,
            observer: None,
        }
    }
    /// No retry: each request is sent once and its error comes back as it is (what a provider's own
    /// [`Provider::purge`] uses when it is built on [`Provider::purge_each`]).
    pub fn once(name: impl Into<String>) -> Retrier {
        Retrier {
            policy: None,
            ..Retrier::new(name)
        }
    }
    pub fn with_policy(mut self, policy: RetryPolicy) -> Retrier {
        self.policy = Some(policy);
        self
    }
    /// No retry is started that would end after `deadline`.
    pub fn with_deadline(mut self, deadline: Instant) -> Retrier {
        self.deadline = Some(deadline);
        self
    }
    pub fn with_observer(mut self, observer: Observer) -> Retrier {
        self.observer = Some(observer);
        self
    }

    /// Tells the observer (the CLI's progress, tests) about `event`.
    pub fn emit(&self, event: Event) {
        emit(self.observer.as_ref(), event);
    }

    /// Runs `op` (given the attempt number, from 1) until it succeeds, its error is not retryable, or
    /// the attempts, the budget or the deadline run out; between attempts, [`Event::Retrying`] and a
    /// pause of the backoff or the `Retry-After`, whichever is longer. A `Retry-After` longer than
    /// the time left fails at once. `what` and `items` are for the logs.
    pub async fn run<T, F, Fut>(&self, what: &str, items: usize, mut op: F) -> Result<T, CdnError>
    where
        F: FnMut(u32) -> Fut,
        Fut: Future<Output = Result<T, CdnError>>,
    {
        let Some(policy) = &self.policy else {
            return op(1).await;
        };
        let start = Instant::now();
        let mut give_up = start + policy.budget;
        if let Some(d) = self.deadline {
            give_up = give_up.min(d);
        }
        let mut attempt = 1u32;
        let mut counted = 0u32;
        loop {
            let err = match op(attempt).await {
                Ok(v) => return Ok(v),
                Err(e) => e,
            };
            if !err.retryable() {
                return Err(err);
            }
            if err.kind != ErrorKind::TooManyInProgress {
                counted += 1;
            }
            let now = Instant::now();
            let left = give_up.saturating_duration_since(now);
            if let Some(asked) = err.retry_after.filter(|a| *a > left)
                && counted < policy.max_attempts
            {
                return Err(past_deadline(err, asked, left));
            }
            let next = match give_up.checked_duration_since(now) {
                Some(left) => {
                    policy
                        .schedule()
                        .next(attempt, rand::random(), err.retry_after, left)
                }
                None => Next::TooLate(Duration::ZERO),
            };
            let after = match next {
                Next::Wait(after) if counted < policy.max_attempts => Some(after),
                Next::Wait(_) | Next::TooLate(_) => None,
            };
            let Some(after) = after else {
                let why = if counted >= policy.max_attempts {
                    "attempts"
                } else {
                    "time"
                };
                let mut e = err;
                e.message = format!(
                    "{} (gave up after {attempt} attempt{} in {}: out of {why})",
                    e.message,
                    if attempt == 1 { "" } else { "s" },
                    human(now - start)
                );
                if e.hint.is_none() {
                    e.hint = Some(
                        "the CDN kept refusing: run the same command again later (purges are idempotent), \
                         or raise `timeout` in the [[cdn]] entry"
                            .into(),
                    );
                }
                return Err(e);
            };
            tracing::info!(
                provider = %self.name,
                op = what,
                items,
                attempt,
                after_ms = after.as_millis() as u64,
                error = %err.message,
                "retrying"
            );
            self.emit(Event::Retrying {
                provider: self.name.clone(),
                error: err.to_string(),
                after,
                attempt,
            });
            tokio::time::sleep(after).await;
            attempt += 1;
        }
    }

    /// Sends the independent requests of one purge call, `sizes.len()` of them (`sizes[i]`: the items
    /// request `i` carries), at most `concurrency` at a time, by `send(i, attempt)`. Each request is
    /// retried on its own, as [`Retrier::run`] retries a call: a request that failed is sent again after
    /// its own pause (announced by [`Event::Retrying`], then [`Event::Sending`] with its size and
    /// attempt), one that succeeded is never sent again, and no request's failure holds up the
    /// others. Returns every request's outcome, in request order: its answer, or its last error.
    pub async fn each<T, F, Fut>(
        &self,
        sizes: &[usize],
        concurrency: usize,
        send: F,
    ) -> Vec<Result<T, CdnError>>
    where
        F: Fn(usize, u32) -> Fut,
        Fut: Future<Output = Result<T, CdnError>>,
    {
        let send = &send;
        // Futures built first, then driven: closures in stream adapters trip async-trait's `Send`
        // check in the providers that call this (higher-ranked lifetimes).
        let requests: Vec<_> = sizes
            .iter()
            .enumerate()
            .map(|(i, &items)| async move {
                let outcome = self
                    .run("purge", items, |attempt| {
                        if attempt > 1 {
                            self.emit(Event::Sending {
                                provider: self.name.clone(),
                                items,
                                attempt,
                            });
                        }
                        send(i, attempt)
                    })
                    .await;
                (i, outcome)
            })
            .collect();
        let mut done: Vec<(usize, Result<T, CdnError>)> = stream::iter(requests)
            .buffer_unordered(concurrency.max(1))
            .collect()
            .await;
        done.sort_by_key(|(i, _)| *i);
        done.into_iter().map(|(_, r)| r).collect()
    }
}

/// A retryable error whose `Retry-After` (`asked`) is longer than the time `left` before the deadline:
/// no retry could be made in time, so it comes back at once, saying so and what to do.
fn past_deadline(mut e: CdnError, asked: Duration, left: Duration) -> CdnError {
    e.message = format!(
        "{} (the CDN asked to wait {} before a retry, but only {} remain before the deadline)",
        e.message,
        human(asked),
        human(left)
    );
    let ours = format!(
        "raise `timeout` in the [[cdn]] entry above {} so the pause fits, or run the same command again \
         once it is over (purges are idempotent)",
        human(asked)
    );
    e.hint = Some(match e.hint.take() {
        Some(h) => format!("{ours}; {h}"),
        None => ours,
    });
    e
}

/// Retries a provider's work on retryable errors ([`CdnError::retryable`]): exponential backoff with
/// full jitter, at least the `Retry-After` the provider asked for, until the attempts, the budget or the
/// deadline run out ([`Retrier::run`]). What is retried is the provider's unit of work
/// ([`Provider::retry_unit`]): for [`RetryUnit::Call`] the same batch is re-sent whole; for
/// [`RetryUnit::Request`] the call is made once through [`Provider::purge_each`] and only its requests
/// that failed are re-sent, each on its own ([`Retrier::each`]). Errors that are not retryable
/// (Unauthorized, Invalid, NotFound, BatchTooLarge, …) come back at once.
pub struct Retry<P> {
    inner: P,
    retrier: Retrier,
}

impl<P: std::fmt::Debug> std::fmt::Debug for Retry<P> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Retry")
            .field("inner", &self.inner)
            .field("policy", &self.retrier.policy)
            .field("deadline", &self.retrier.deadline)
            .finish_non_exhaustive()
    }
}

impl<P: Provider> Retry<P> {
    pub fn new(inner: P) -> Retry<P> {
        Retry {
            retrier: Retrier::new(inner.name()),
            inner,
        }
    }
    pub fn with_policy(mut self, policy: RetryPolicy) -> Retry<P> {
        self.retrier = self.retrier.with_policy(policy);
        self
    }
    /// No retry is started that would end after `deadline`.
    pub fn with_deadline(mut self, deadline: Instant) -> Retry<P> {
        self.retrier = self.retrier.with_deadline(deadline);
        self
    }
    pub fn with_observer(mut self, observer: Observer) -> Retry<P> {
        self.retrier = self.retrier.with_observer(observer);
        self
    }
}

#[async_trait]
impl<P: Provider> Provider for Retry<P> {
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
    async fn purge(&self, batch: &Batch) -> Result<Receipt, CdnError> {
        let unit = self.inner.retry_unit();
        let span = tracing::info_span!(
            "cdn.purge",
            provider = self.inner.name(),
            items = batch.items.len(),
            reference = %batch.reference,
            unit = ?unit
        );
        let sending = |attempt| Event::Sending {
            provider: self.inner.name().to_string(),
            items: batch.items.len(),
            attempt,
        };
        match unit {
            RetryUnit::Call => {
                self.retrier
                    .run("purge", batch.items.len(), |attempt| {
                        self.retrier.emit(sending(attempt));
                        self.inner.purge(batch)
                    })
                    .instrument(span)
                    .await
            }
            RetryUnit::Request => {
                self.retrier.emit(sending(1));
                self.inner
                    .purge_each(batch, &self.retrier)
                    .instrument(span)
                    .await
            }
        }
    }
    async fn status(&self, id: &str) -> Result<Status, CdnError> {
        self.retrier
            .run("status", 0, |_| self.inner.status(id))
            .await
    }
    async fn list(&self, max: usize) -> Result<Vec<Invalidation>, CdnError> {
        self.retrier.run("list", 0, |_| self.inner.list(max)).await
    }
}

/// The standard stack over a provider from [`crate::open`]: [`Retry`] with `opts`' deadline and observer.
pub fn retrying(p: Arc<dyn Provider>, opts: &RunOptions) -> Arc<dyn Provider> {
    let mut r = Retry::new(p)
        .with_policy(opts.retry.clone())
        .with_deadline(opts.deadline);
    if let Some(o) = &opts.observer {
        r = r.with_observer(o.clone());
    }
    Arc::new(r)
}

#[cfg(test)]
mod tests {
    use std::collections::{HashMap, VecDeque};
    use std::sync::Mutex;

    use super::*;
    use crate::wrap::RateLimited;
    use crate::wrap::scripted::*;

    #[tokio::test(start_paused = true)]
    async fn retries_retryable_errors_with_the_same_batch() {
        for kind in [
            ErrorKind::Throttled,
            ErrorKind::Transient,
            ErrorKind::TooManyInProgress,
        ] {
            let p = Scripted::new(caps(10)).fail(kind).fail(kind);
            let (obs, seen) = events();
            let r = Retry::new(&p).with_policy(exact()).with_observer(obs);
            let t = Instant::now();
            let receipt = r.purge(&batch(&["/a"])).await.unwrap();
            assert_eq!(receipt.status, Status::Completed);
            assert_eq!(
                p.refs(),
                ["r", "r", "r"],
                "{kind:?}: same reference on every attempt"
            );
            // No jitter: 500 ms, then 1 s.
            assert_eq!(t.elapsed(), Duration::from_millis(1500), "{kind:?}");
            let seen = seen.lock().unwrap();
            let retrying: Vec<_> = seen
                .iter()
                .filter_map(|e| match e {
                    Event::Retrying { after, attempt, .. } => Some((*attempt, *after)),
                    _ => None,
                })
                .collect();
            assert_eq!(
                retrying,
                [(1, Duration::from_millis(500)), (2, Duration::from_secs(1))]
            );
            let sending = seen
                .iter()
                .filter(|e| matches!(e, Event::Sending { .. }))
                .count();
            assert_eq!(sending, 3);
        }
    }

    #[tokio::test(start_paused = true)]
    async fn does_not_retry_errors_that_are_not_retryable() {
        for kind in [
            ErrorKind::Unauthorized,
            ErrorKind::Invalid,
            ErrorKind::NotFound,
            ErrorKind::Config,
            ErrorKind::BatchTooLarge,
            ErrorKind::Other,
        ] {
            let p = Scripted::new(caps(10)).fail(kind);
            let r = Retry::new(&p).with_policy(exact());
            let t = Instant::now();
            let e = r.purge(&batch(&["/a"])).await.unwrap_err();
            assert_eq!(e.kind, kind);
            assert_eq!(p.calls().len(), 1, "{kind:?} was retried");
            assert_eq!(t.elapsed(), Duration::ZERO);
        }
    }

    #[tokio::test(start_paused = true)]
    async fn honours_retry_after() {
        let p =
            Scripted::new(caps(10)).then(Err(CdnError::new(ErrorKind::Throttled, "fake", "429")
                .with_retry_after(Some(Duration::from_secs(7)))));
        let r = Retry::new(&p).with_policy(RetryPolicy::default());
        r.purge(&batch(&["/a"])).await.unwrap();
        let calls = p.calls();
        assert_eq!(calls.len(), 2);
        assert!(
            calls[1].1 - calls[0].1 >= Duration::from_secs(7),
            "retried before Retry-After"
        );
        assert!(calls[1].1 - calls[0].1 <= Duration::from_millis(7001));
    }

    #[tokio::test(start_paused = true)]
    async fn gives_up_at_the_deadline_without_sleeping_past_it() {
        let mut p = Scripted::new(caps(10));
        for _ in 0..100 {
            p = p.fail(ErrorKind::TooManyInProgress);
        }
        let t = Instant::now();
        let deadline = t + Duration::from_secs(30);
        let r = Retry::new(&p).with_policy(exact()).with_deadline(deadline);
        let e = r.purge(&batch(&["/a"])).await.unwrap_err();
        assert_eq!(e.kind, ErrorKind::TooManyInProgress);
        assert!(Instant::now() <= deadline);
        assert!(e.message.contains("gave up after"), "{e}");
        assert!(e.hint.is_some());
        // 0.5 + 1 + 2 + 4 + 8 = 15.5 s; the next pause (16 s) would end past the deadline.
        assert_eq!(p.calls().len(), 6);

        // A Retry-After beyond the deadline is not waited for.
        let p =
            Scripted::new(caps(10)).then(Err(CdnError::new(ErrorKind::Throttled, "fake", "429")
                .with_retry_after(Some(Duration::from_secs(3600)))));
        let r = Retry::new(&p).with_deadline(Instant::now() + Duration::from_secs(60));
        let t = Instant::now();
        let e = r.purge(&batch(&["/a"])).await.unwrap_err();
        assert_eq!(e.kind, ErrorKind::Throttled);
        assert_eq!(t.elapsed(), Duration::ZERO);
        assert_eq!(p.calls().len(), 1);
        let text = e.shown();
        assert!(
            text.contains(
                "asked to wait 60m before a retry, but only 1m remain before the deadline"
            ),
            "{text}"
        );
        assert!(
            text.contains("hint: raise `timeout` in the [[cdn]] entry above 60m"),
            "{text}"
        );

        // Only what is left counts: a pause that fitted the whole timeout but not what remains.
        let p = Scripted::new(caps(10))
            .fail(ErrorKind::Transient)
            .then(Err(CdnError::new(ErrorKind::Throttled, "fake", "429")
                .with_retry_after(Some(Duration::from_secs(50)))));
        let r = Retry::new(&p)
            .with_policy(RetryPolicy {
                base: Duration::from_secs(20),
                ..exact()
            })
            .with_deadline(Instant::now() + Duration::from_secs(60));
        let e = r.purge(&batch(&["/a"])).await.unwrap_err();
        assert_eq!(p.calls().len(), 2);
        assert!(e.message.contains("only 40s remain"), "{e}");
    }

    /// A provider whose unit is a request: one request per item; `fails[value]` is the errors that
    /// item's request answers first, in order.
    #[derive(Debug)]
    struct PerItem {
        caps: Capabilities,
        fails: Mutex<HashMap<String, VecDeque<CdnError>>>,
        /// Requests sent, by item, in order.
        sent: Mutex<Vec<String>>,
        /// Calls reaching `purge_each`.
        calls: Mutex<usize>,
    }

    impl PerItem {
        fn new(fails: &[(&str, Vec<CdnError>)]) -> PerItem {
            PerItem {
                caps: caps(10),
                fails: Mutex::new(
                    fails
                        .iter()
                        .map(|(v, e)| (v.to_string(), e.iter().cloned().collect()))
                        .collect(),
                ),
                sent: Mutex::default(),
                calls: Mutex::new(0),
            }
        }
        fn sent_for(&self, v: &str) -> usize {
            self.sent.lock().unwrap().iter().filter(|s| *s == v).count()
        }
        async fn send(&self, value: &str) -> Result<(), CdnError> {
            self.sent.lock().unwrap().push(value.to_string());
            let next = self
                .fails
                .lock()
                .unwrap()
                .get_mut(value)
                .and_then(|q| q.pop_front());
            match next {
                Some(e) => Err(e),
                None => Ok(()),
            }
        }
    }

    #[async_trait]
    impl Provider for PerItem {
        fn name(&self) -> &str {
            "per-item"
        }
        fn capabilities(&self) -> &Capabilities {
            &self.caps
        }
        fn retry_unit(&self) -> RetryUnit {
            RetryUnit::Request
        }
        async fn purge(&self, batch: &Batch) -> Result<Receipt, CdnError> {
            self.purge_each(batch, &Retrier::once("per-item")).await
        }
        async fn purge_each(&self, batch: &Batch, retry: &Retrier) -> Result<Receipt, CdnError> {
            *self.calls.lock().unwrap() += 1;
            let sizes = vec![1; batch.items.len()];
            let out = retry
                .each(&sizes, 2, |i, _| self.send(&batch.items[i].value))
                .await;
            let failed: Vec<CdnError> = out.into_iter().filter_map(Result::err).collect();
            if let Some(e) = failed.into_iter().next() {
                return Err(e);
            }
            Ok(Receipt {
                provider: "per-item".into(),
                id: None,
                status: Status::Completed,
                items: batch.items.len(),
                detail: String::new(),
            })
        }
        async fn status(&self, _id: &str) -> Result<Status, CdnError> {
            Ok(Status::Completed)
        }
        async fn list(&self, _max: usize) -> Result<Vec<Invalidation>, CdnError> {
            Ok(vec![])
        }
    }

    fn err(kind: ErrorKind, after: Option<u64>) -> CdnError {
        CdnError::new(kind, "per-item", format!("{kind:?}"))
            .with_retry_after(after.map(Duration::from_secs))
    }

    #[tokio::test(start_paused = true)]
    async fn a_request_unit_retries_only_the_requests_that_failed() {
        let p = PerItem::new(&[
            ("/c", vec![err(ErrorKind::Transient, None)]),
            (
                "/e",
                vec![
                    err(ErrorKind::Throttled, Some(3)),
                    err(ErrorKind::Transient, None),
                ],
            ),
        ]);
        let (obs, seen) = events();
        // Through the rate limiter too: it forwards the unit.
        let r = Retry::new(RateLimited::new(&p, 0.0))
            .with_policy(exact())
            .with_observer(obs);
        let t = Instant::now();
        let receipt = r
            .purge(&batch(&["/a", "/b", "/c", "/d", "/e"]))
            .await
            .unwrap();
        assert_eq!(receipt.items, 5);
        assert_eq!(*p.calls.lock().unwrap(), 1, "the call is made once");
        let per: Vec<usize> = ["/a", "/b", "/c", "/d", "/e"]
            .iter()
            .map(|v| p.sent_for(v))
            .collect();
        assert_eq!(
            per,
            [1, 1, 2, 1, 3],
            "only the failed requests are sent again"
        );
        // `/e` waits its Retry-After (3 s), then its second backoff (1 s); `/c` its 500 ms alongside.
        assert_eq!(t.elapsed(), Duration::from_secs(4));
        let seen = seen.lock().unwrap();
        let sending: Vec<(usize, u32)> = seen
            .iter()
            .filter_map(|e| match e {
                Event::Sending { items, attempt, .. } => Some((*items, *attempt)),
                _ => None,
            })
            .collect();
        assert_eq!(sending, [(5, 1), (1, 2), (1, 2), (1, 3)]);
        let retrying = seen
            .iter()
            .filter(|e| matches!(e, Event::Retrying { .. }))
            .count();
        assert_eq!(retrying, 3, "one per failed request");
    }

    #[tokio::test(start_paused = true)]
    async fn a_request_unit_fails_with_what_failed_for_good() {
        // `/b` is refused for good; `/a` succeeds after a retry and is not sent again.
        let p = PerItem::new(&[
            ("/a", vec![err(ErrorKind::Transient, None)]),
            ("/b", vec![err(ErrorKind::Unauthorized, None)]),
        ]);
        let r = Retry::new(&p).with_policy(exact());
        let e = r.purge(&batch(&["/a", "/b"])).await.unwrap_err();
        assert_eq!(e.kind, ErrorKind::Unauthorized);
        assert_eq!((p.sent_for("/a"), p.sent_for("/b")), (2, 1));

        // Out of attempts: the request's own count, the others untouched.
        let p = PerItem::new(&[(
            "/a",
            (0..20).map(|_| err(ErrorKind::Transient, None)).collect(),
        )]);
        let policy = RetryPolicy {
            max_attempts: 3,
            ..exact()
        };
        let e = Retry::new(&p)
            .with_policy(policy)
            .purge(&batch(&["/a", "/b"]))
            .await
            .unwrap_err();
        assert!(e.message.contains("gave up after 3 attempts"), "{e}");
        assert_eq!((p.sent_for("/a"), p.sent_for("/b")), (3, 1));

        // A Retry-After past the deadline: that request fails at once, and the call with it.
        let p = PerItem::new(&[("/a", vec![err(ErrorKind::Throttled, Some(3600))])]);
        let t = Instant::now();
        let e = Retry::new(&p)
            .with_deadline(t + Duration::from_secs(60))
            .purge(&batch(&["/a", "/b"]))
            .await
            .unwrap_err();
        assert_eq!(t.elapsed(), Duration::ZERO);
        assert!(e.message.contains("asked to wait 60m"), "{e}");
        assert_eq!((p.sent_for("/a"), p.sent_for("/b")), (1, 1));

        // Alone (no Retry), each request is sent once.
        let p = PerItem::new(&[("/a", vec![err(ErrorKind::Transient, None)])]);
        let e = p.purge(&batch(&["/a", "/b"])).await.unwrap_err();
        assert_eq!(e.kind, ErrorKind::Transient);
        assert!(!e.message.contains("gave up"), "{e}");
        assert_eq!(p.sent.lock().unwrap().len(), 2);
    }

    #[tokio::test(start_paused = true)]
    async fn counts_attempts_for_throttling_but_not_for_in_progress() {
        let mut p = Scripted::new(caps(10));
        for _ in 0..20 {
            p = p.fail(ErrorKind::Throttled);
        }
        let policy = RetryPolicy {
            max_attempts: 4,
            ..exact()
        };
        let e = Retry::new(&p)
            .with_policy(policy.clone())
            .purge(&batch(&["/a"]))
            .await
            .unwrap_err();
        assert_eq!(e.kind, ErrorKind::Throttled);
        assert_eq!(p.calls().len(), 4);

        let mut p = Scripted::new(caps(10));
        for _ in 0..6 {
            p = p.fail(ErrorKind::TooManyInProgress);
        }
        Retry::new(&p)
            .with_policy(policy)
            .purge(&batch(&["/a"]))
            .await
            .unwrap();
        assert_eq!(p.calls().len(), 7);
    }

    #[test]
    fn full_jitter_stays_under_the_exponential_ceiling() {
        let p = RetryPolicy::default();
        for attempt in 1..12 {
            let ceiling =
                (Duration::from_millis(500) * 2u32.pow(attempt - 1)).min(Duration::from_secs(20));
            for _ in 0..50 {
                assert!(p.backoff(attempt) <= ceiling);
            }
        }
        assert_eq!(exact().backoff(40), Duration::from_secs(20));
    }
}
