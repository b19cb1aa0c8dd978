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

use std::collections::{BTreeMap, HashSet, VecDeque};
use std::future::Future;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use async_trait::async_trait;
use futures::{StreamExt, stream};
use staleguard_core::backoff::{Backoff, Jitter, Next};
pub use staleguard_core::event::Observer;
use staleguard_core::event::emit;
use staleguard_core::purge::{Capabilities, Item, ItemKind};
use tokio::time::Instant;
use tracing::Instrument;

use crate::{
    Batch, CdnError, ErrorKind, Event, Invalidation, Provider, Receipt, RetryUnit, Status,
};

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

// ---------------------------------------------------------------------------------------------------
// Retry

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

// ---------------------------------------------------------------------------------------------------
// Rate limit

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

// ---------------------------------------------------------------------------------------------------
// Chunking

fn kind_name(kind: ItemKind) -> &'static str {
    match kind {
        ItemKind::Path => "path",
        ItemKind::Prefix => "prefix",
        ItemKind::Tag => "tag",
        ItemKind::Host => "host",
        ItemKind::All => "purge-everything",
    }
}

/// The most items of `kind` one call may hold: `max_items_per_call`, and for paths and prefixes also
/// the in-flight limit (a call bigger than that could never be accepted).
pub fn per_call(caps: &Capabilities, kind: ItemKind) -> usize {
    let in_flight = match kind {
        ItemKind::Path => caps.max_paths_in_flight,
        ItemKind::Prefix => caps.max_prefixes_in_flight,
        _ => None,
    };
    caps.max_items_per_call
        .min(in_flight.unwrap_or(usize::MAX))
        .max(1)
}

fn check_item(provider: &dyn Provider, item: &Item) -> Result<(), CdnError> {
    let name = provider.name();
    let caps = provider.capabilities();
    if !caps.supports(item.kind) {
        let mut can: Vec<&str> = [
            ItemKind::Path,
            ItemKind::Prefix,
            ItemKind::Tag,
            ItemKind::Host,
            ItemKind::All,
        ]
        .into_iter()
        .filter(|k| caps.supports(*k))
        .map(kind_name)
        .collect();
        if can.is_empty() {
            can.push("nothing");
        }
        return Err(CdnError::new(
            ErrorKind::Invalid,
            name,
            format!(
                "cannot purge `{item}`: {} items are not supported here",
                kind_name(item.kind)
            ),
        )
        .with_hint(format!("this provider purges: {}", can.join(", "))));
    }
    let bad = match item.kind {
        ItemKind::Path | ItemKind::Prefix => !item.value.starts_with('/'),
        ItemKind::Tag | ItemKind::Host => {
            item.value.is_empty() || item.value.contains(char::is_whitespace)
        }
        ItemKind::All => false,
    };
    if bad {
        let want = match item.kind {
            ItemKind::Path | ItemKind::Prefix => "a URL path starting with `/`",
            _ => "a non-empty value without spaces",
        };
        return Err(CdnError::new(
            ErrorKind::Invalid,
            name,
            format!(
                "cannot purge `{item}`: a {} item must be {want}",
                kind_name(item.kind)
            ),
        ));
    }
    Ok(())
}

fn check_soft(provider: &dyn Provider, batch: &Batch) -> Result<(), CdnError> {
    if batch.soft && !provider.capabilities().soft {
        return Err(CdnError::new(
            ErrorKind::Invalid,
            provider.name(),
            "soft purge is not supported by this provider",
        )
        .with_hint("remove `soft = true` from the [[cdn]] entry"));
    }
    Ok(())
}

/// Checks one call against the provider's capabilities and limits (what [`chunk`] guarantees).
pub fn check_call(provider: &dyn Provider, batch: &Batch) -> Result<(), CdnError> {
    let name = provider.name();
    let caps = provider.capabilities();
    check_soft(provider, batch)?;
    for item in &batch.items {
        check_item(provider, item)?;
    }
    let Some(first) = batch.items.first() else {
        return Ok(());
    };
    if let Some(other) = batch.items.iter().find(|i| i.kind != first.kind) {
        return Err(CdnError::new(
            ErrorKind::Invalid,
            name,
            format!(
                "call `{}` mixes {} and {} items (one kind per call: split it with wrap::chunk)",
                batch.reference,
                kind_name(first.kind),
                kind_name(other.kind)
            ),
        ));
    }
    let max = per_call(caps, first.kind);
    if batch.items.len() > max {
        return Err(CdnError::new(
            ErrorKind::Invalid,
            name,
            format!(
                "call `{}` holds {} {} items, more than the {max} one call may hold (split it with wrap::chunk)",
                batch.reference,
                batch.items.len(),
                kind_name(first.kind)
            ),
        ));
    }
    Ok(())
}

/// Splits a whole purge into the calls to send: items deduplicated, grouped by kind (one kind per call:
/// Cloudflare requires it, and it keeps every provider simple), each call within [`per_call`]. The
/// calls' references are `<whole.reference>-<n>`, n from 1. Purge-everything makes every other item
/// moot: when present, it is the only call. An item the provider does not support, or a malformed one
/// (a path without the leading `/`, an empty tag), is refused with [`ErrorKind::Invalid`] before any
/// request is made.
pub fn chunk(provider: &dyn Provider, whole: &Batch) -> Result<Vec<Batch>, CdnError> {
    let caps = provider.capabilities();
    check_soft(provider, whole)?;
    for item in &whole.items {
        check_item(provider, item)?;
    }
    let call = |n: usize, items: Vec<Item>| Batch {
        items,
        reference: format!("{}-{n}", whole.reference),
        soft: whole.soft,
    };
    if whole.items.iter().any(|i| i.kind == ItemKind::All) {
        return Ok(vec![call(1, vec![Item::all()])]);
    }
    let mut seen = HashSet::new();
    let mut by_kind: BTreeMap<ItemKind, Vec<Item>> = BTreeMap::new();
    for item in &whole.items {
        if seen.insert(item) {
            by_kind.entry(item.kind).or_default().push(item.clone());
        }
    }
    let mut calls = Vec::new();
    for (kind, items) in by_kind {
        for part in items.chunks(per_call(caps, kind)) {
            calls.push(call(calls.len() + 1, part.to_vec()));
        }
    }
    Ok(calls)
}

/// The two halves of a call the provider found too large, with references `<ref>.1` and `<ref>.2`.
/// `None` for a call of one item.
pub fn halves(batch: &Batch) -> Option<(Batch, Batch)> {
    if batch.items.len() < 2 {
        return None;
    }
    let mid = batch.items.len() / 2;
    let half = |n: u8, items: &[Item]| Batch {
        items: items.to_vec(),
        reference: format!("{}.{n}", batch.reference),
        soft: batch.soft,
    };
    Some((half(1, &batch.items[..mid]), half(2, &batch.items[mid..])))
}

// ---------------------------------------------------------------------------------------------------
// Dry run

/// A provider that sends nothing: it records every batch and answers `Completed`. Used by `--dry-run`
/// (with the real provider's name and capabilities, so chunking is the same) and by tests.
#[derive(Debug, Clone)]
pub struct Recorder {
    name: String,
    caps: Capabilities,
    batches: Arc<Mutex<Vec<Batch>>>,
}

impl Recorder {
    pub fn new(name: impl Into<String>, caps: Capabilities) -> Recorder {
        Recorder {
            name: name.into(),
            caps,
            batches: Arc::default(),
        }
    }

    /// A recorder with `p`'s name and capabilities.
    pub fn like(p: &dyn Provider) -> Recorder {
        Recorder::new(p.name(), p.capabilities().clone())
    }

    /// The batches recorded so far, in order.
    pub fn batches(&self) -> Vec<Batch> {
        self.batches
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .clone()
    }
}

#[async_trait]
impl Provider for Recorder {
    fn name(&self) -> &str {
        &self.name
    }
    fn capabilities(&self) -> &Capabilities {
        &self.caps
    }
    async fn purge(&self, batch: &Batch) -> Result<Receipt, CdnError> {
        self.batches
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .push(batch.clone());
        Ok(Receipt {
            provider: self.name.clone(),
            id: None,
            status: Status::Completed,
            items: batch.items.len(),
            detail: "dry run: not sent".into(),
        })
    }
    async fn status(&self, _id: &str) -> Result<Status, CdnError> {
        Ok(Status::Completed)
    }
    async fn list(&self, max: usize) -> Result<Vec<Invalidation>, CdnError> {
        let batches = self.batches();
        Ok(batches
            .iter()
            .rev()
            .take(max)
            .map(|b| Invalidation {
                provider: self.name.clone(),
                id: b.reference.clone(),
                status: Status::Completed,
                created: None,
                items: b.items.iter().map(|i| i.to_string()).collect(),
                reference: Some(b.reference.clone()),
            })
            .collect())
    }
}

// ---------------------------------------------------------------------------------------------------
// Driver

/// How often to ask an asynchronous provider whether its purges completed: `first`, then ×`factor`
/// each round, at most `cap`, never past the deadline.
#[derive(Debug, Clone, PartialEq)]
pub struct Poll {
    pub first: Duration,
    pub factor: f64,
    pub cap: Duration,
}

impl Poll {
    /// The schedule: `first`, ×`factor` each round, at most `cap`, no jitter.
    pub fn schedule(&self) -> Backoff {
        Backoff::new(self.first, self.factor, self.cap)
    }
}

impl Default for Poll {
    fn default() -> Self {
        Poll {
            first: Duration::from_secs(1),
            factor: 1.5,
            cap: Duration::from_secs(20),
        }
    }
}

/// What the driver ([`purge_all`], [`wait_all`]) needs: the deadline, the polling schedule, the retry
/// policy for [`retrying`], and who to tell.
#[derive(Clone)]
pub struct RunOptions {
    /// Nothing waits past this instant (a config's `timeout` from the start of the purge).
    pub deadline: Instant,
    pub poll: Poll,
    pub retry: RetryPolicy,
    pub observer: Option<Observer>,
}

impl std::fmt::Debug for RunOptions {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("RunOptions")
            .field("deadline", &self.deadline)
            .field("poll", &self.poll)
            .field("retry", &self.retry)
            .field("observer", &self.observer.is_some())
            .finish()
    }
}

impl RunOptions {
    pub fn new(deadline: Instant) -> RunOptions {
        RunOptions {
            deadline,
            poll: Poll::default(),
            retry: RetryPolicy::default(),
            observer: None,
        }
    }
    /// A deadline `timeout` from now.
    pub fn within(timeout: Duration) -> RunOptions {
        RunOptions::new(Instant::now() + timeout)
    }
    pub fn with_poll(mut self, poll: Poll) -> RunOptions {
        self.poll = poll;
        self
    }
    pub fn with_retry(mut self, retry: RetryPolicy) -> RunOptions {
        self.retry = retry;
        self
    }
    pub fn with_observer(mut self, observer: Observer) -> RunOptions {
        self.observer = Some(observer);
        self
    }
}

/// What [`purge_all`] did.
#[derive(Debug, Clone, PartialEq)]
pub struct PurgeReport {
    pub provider: String,
    /// One per call sent, in order (a split call counts as its two halves). A receipt the driver saw
    /// complete while it respected in-flight limits is already marked `Completed`.
    pub receipts: Vec<Receipt>,
    /// Items sent.
    pub items: usize,
    /// Calls sent.
    pub calls: usize,
    pub elapsed: Duration,
}

impl PurgeReport {
    /// Ids of the purges still in progress (what [`wait_all`] waits for).
    pub fn in_progress(&self) -> Vec<&str> {
        self.receipts
            .iter()
            .filter(|r| r.status == Status::InProgress)
            .filter_map(|r| r.id.as_deref())
            .collect()
    }
}

/// One asynchronous purge the driver follows.
struct Pending {
    /// Index into the receipts.
    at: usize,
    id: String,
    paths: usize,
    prefixes: usize,
}

/// Polls `pending` until `enough` says so (on what is still pending) or the deadline passes.
/// Completed ones are removed and marked in `receipts`.
async fn poll_until(
    provider: &dyn Provider,
    pending: &mut Vec<Pending>,
    receipts: &mut [Receipt],
    opts: &RunOptions,
    enough: impl Fn(&[Pending]) -> bool,
) -> Result<(), CdnError> {
    let schedule = opts.poll.schedule();
    let mut round = 1;
    loop {
        if enough(pending) {
            return Ok(());
        }
        let left = opts.deadline.saturating_duration_since(Instant::now());
        let pause = schedule.until(round, 0.0, left);
        let last = pause.is_none();
        if let Some(pause) = pause {
            tokio::time::sleep(pause).await;
        }
        let mut still = Vec::with_capacity(pending.len());
        for p in pending.drain(..) {
            let status = provider.status(&p.id).await?;
            tracing::debug!(provider = provider.name(), id = %p.id, ?status, "polled");
            emit(
                opts.observer.as_ref(),
                Event::Polled {
                    provider: provider.name().to_string(),
                    id: p.id.clone(),
                    status,
                },
            );
            match status {
                Status::Completed => receipts[p.at].status = Status::Completed,
                Status::InProgress => still.push(p),
            }
        }
        *pending = still;
        if enough(pending) {
            return Ok(());
        }
        if last || Instant::now() >= opts.deadline {
            return Err(timeout_error(provider.name(), pending));
        }
        round += 1;
    }
}

fn timeout_error(name: &str, pending: &[Pending]) -> CdnError {
    let ids: Vec<String> = pending.iter().map(|p| format!("`{}`", p.id)).collect();
    let (noun, verb) = if ids.len() == 1 {
        ("invalidation", "is")
    } else {
        ("invalidations", "are")
    };
    let first = pending.first().map(|p| p.id.as_str()).unwrap_or("ID");
    CdnError::new(
        ErrorKind::Timeout,
        name,
        format!(
            "{noun} {} {verb} still in progress at the deadline",
            ids.join(", ")
        ),
    )
    .with_hint(format!(
        "the CDN finishes them on its own; check with `staleguard invalidations status {first}`, \
         or raise `timeout` in the [[cdn]] entry"
    ))
}

fn counts(batch: &Batch) -> (usize, usize) {
    let paths = batch
        .items
        .iter()
        .filter(|i| i.kind == ItemKind::Path)
        .count();
    let prefixes = batch
        .items
        .iter()
        .filter(|i| i.kind == ItemKind::Prefix)
        .count();
    (paths, prefixes)
}

fn with_progress(mut e: CdnError, receipts: &[Receipt], left: usize) -> CdnError {
    if receipts.is_empty() {
        return e;
    }
    let ids: Vec<&str> = receipts.iter().filter_map(|r| r.id.as_deref()).collect();
    e.message = format!(
        "{} ({} call{} sent before{}; {left} not sent)",
        e.message,
        receipts.len(),
        if receipts.len() == 1 { "" } else { "s" },
        if ids.is_empty() {
            String::new()
        } else {
            format!(": {}", ids.join(", "))
        }
    );
    e
}

/// Sends `calls` (from [`chunk`]) one after another. Every call is checked first ([`check_call`]):
/// a bad one fails the whole run before any request. For an asynchronous provider with in-flight
/// limits, a call that would exceed them together with this run's not yet completed calls waits
/// (polling, see [`Poll`]) until enough of those complete; past the deadline that is a
/// [`ErrorKind::Timeout`] naming the ids. A call refused with [`ErrorKind::BatchTooLarge`] is sent
/// again as its two [`halves`]. Any other error ends the run; its message says how many calls were
/// sent before it. Retrying is the provider's business: pass a [`Retry`] (see [`retrying`]).
pub async fn purge_all(
    provider: &dyn Provider,
    calls: Vec<Batch>,
    opts: &RunOptions,
) -> Result<PurgeReport, CdnError> {
    let started = Instant::now();
    let name = provider.name().to_string();
    for call in &calls {
        check_call(provider, call)?;
    }
    let caps = provider.capabilities().clone();
    let total_items: usize = calls.iter().map(|c| c.items.len()).sum();
    let span = tracing::info_span!("cdn.purge_all", provider = %name, calls = calls.len(), items = total_items);
    async move {
        let mut queue: VecDeque<Batch> = calls.into();
        let mut receipts: Vec<Receipt> = Vec::new();
        let mut pending: Vec<Pending> = Vec::new();
        let mut items = 0;
        while let Some(call) = queue.pop_front() {
            let (paths, prefixes) = counts(&call);
            if caps.asynchronous && !pending.is_empty() {
                let fits = |pending: &[Pending]| {
                    let busy_paths: usize = pending.iter().map(|p| p.paths).sum();
                    let busy_prefixes: usize = pending.iter().map(|p| p.prefixes).sum();
                    caps.max_paths_in_flight.is_none_or(|m| busy_paths + paths <= m)
                        && caps.max_prefixes_in_flight.is_none_or(|m| busy_prefixes + prefixes <= m)
                };
                if !fits(&pending) {
                    tracing::info!(
                        provider = %name,
                        waiting_for = pending.len(),
                        "in-flight limit reached: waiting for earlier purges to complete"
                    );
                    poll_until(provider, &mut pending, &mut receipts, opts, fits)
                        .await
                        .map_err(|e| with_progress(e, &receipts, queue.len() + 1))?;
                }
            }
            let t = Instant::now();
            let receipt = match provider.purge(&call).await {
                Ok(r) => r,
                Err(e) if e.kind == ErrorKind::BatchTooLarge => {
                    let Some((a, b)) = halves(&call) else {
                        return Err(with_progress(e, &receipts, queue.len()));
                    };
                    tracing::info!(provider = %name, items = call.items.len(), reference = %call.reference, "call too large: splitting it in halves");
                    emit(
                        opts.observer.as_ref(),
                        Event::Split {
                            provider: name.clone(),
                            reference: call.reference.clone(),
                            items: call.items.len(),
                        },
                    );
                    queue.push_front(b);
                    queue.push_front(a);
                    continue;
                }
                Err(e) => return Err(with_progress(e, &receipts, queue.len())),
            };
            tracing::info!(provider = %name, items = call.items.len(), id = ?receipt.id, status = ?receipt.status, "sent");
            emit(
                opts.observer.as_ref(),
                Event::Sent {
                    provider: name.clone(),
                    items: call.items.len(),
                    elapsed: t.elapsed(),
                    id: receipt.id.clone(),
                },
            );
            items += call.items.len();
            if receipt.status == Status::InProgress
                && let Some(id) = &receipt.id
            {
                pending.push(Pending { at: receipts.len(), id: id.clone(), paths, prefixes });
            }
            receipts.push(receipt);
        }
        let calls = receipts.len();
        Ok(PurgeReport { provider: name.clone(), receipts, items, calls, elapsed: started.elapsed() })
    }
    .instrument(span)
    .await
}

/// Waits until every `InProgress` receipt with an id is `Completed`: polls after `opts.poll.first`,
/// then ×`factor` up to `cap`, the last sleep cut short to the deadline and one last poll there. At
/// the deadline: a [`ErrorKind::Timeout`] error naming the provider and the ids still in progress,
/// with a hint (`staleguard invalidations status ID`). An `InProgress` receipt without an id cannot be
/// followed: [`ErrorKind::Other`].
pub async fn wait_all(
    provider: &dyn Provider,
    receipts: &[Receipt],
    opts: &RunOptions,
) -> Result<(), CdnError> {
    let mut receipts = receipts.to_vec();
    let mut pending = Vec::new();
    for (at, r) in receipts.iter().enumerate() {
        if r.status != Status::InProgress {
            continue;
        }
        let Some(id) = &r.id else {
            return Err(CdnError::new(
                ErrorKind::Other,
                provider.name(),
                "a purge is in progress but the provider gave no id to follow it",
            ));
        };
        pending.push(Pending {
            at,
            id: id.clone(),
            paths: 0,
            prefixes: 0,
        });
    }
    if pending.is_empty() {
        return Ok(());
    }
    let span = tracing::info_span!(
        "cdn.wait",
        provider = provider.name(),
        pending = pending.len()
    );
    poll_until(provider, &mut pending, &mut receipts, opts, |p| {
        p.is_empty()
    })
    .instrument(span)
    .await
}

#[cfg(test)]
mod tests {
    use std::collections::HashMap;

    use staleguard_core::purge::Pricing;

    use super::*;

    /// A provider whose answers are scripted: each purge takes the next scripted answer (default:
    /// a receipt, `Completed` unless the provider is asynchronous); each id completes after a number of
    /// polls.
    #[derive(Debug)]
    struct Scripted {
        caps: Capabilities,
        answers: Mutex<VecDeque<Result<(), CdnError>>>,
        /// Purge calls, with their (paused) time.
        calls: Mutex<Vec<(Batch, Instant)>>,
        /// id -> polls left before Completed.
        polls_left: Mutex<HashMap<String, u32>>,
        polls_needed: u32,
        /// Status polls, with their time.
        polls: Mutex<Vec<(String, Instant)>>,
        /// Largest sum of in-progress paths seen at a purge.
        in_flight_paths: Mutex<usize>,
        max_seen: Mutex<usize>,
        too_large_above: Option<usize>,
    }

    fn caps(max: usize) -> Capabilities {
        Capabilities {
            paths: true,
            prefixes: true,
            tags: false,
            hosts: false,
            all: true,
            soft: false,
            max_items_per_call: max,
            max_paths_in_flight: None,
            max_prefixes_in_flight: None,
            asynchronous: false,
            pricing: Pricing::FREE,
        }
    }

    impl Scripted {
        fn new(caps: Capabilities) -> Scripted {
            Scripted {
                caps,
                answers: Mutex::default(),
                calls: Mutex::default(),
                polls_left: Mutex::default(),
                polls_needed: 0,
                polls: Mutex::default(),
                in_flight_paths: Mutex::new(0),
                max_seen: Mutex::new(0),
                too_large_above: None,
            }
        }
        fn then(self, r: Result<(), CdnError>) -> Scripted {
            self.answers.lock().unwrap().push_back(r);
            self
        }
        fn fail(self, kind: ErrorKind) -> Scripted {
            self.then(Err(CdnError::new(kind, "fake", format!("{kind:?}"))))
        }
        fn calls(&self) -> Vec<(Batch, Instant)> {
            self.calls.lock().unwrap().clone()
        }
        fn refs(&self) -> Vec<String> {
            self.calls().into_iter().map(|(b, _)| b.reference).collect()
        }
    }

    #[async_trait]
    impl Provider for Scripted {
        fn name(&self) -> &str {
            "fake"
        }
        fn capabilities(&self) -> &Capabilities {
            &self.caps
        }
        async fn purge(&self, batch: &Batch) -> Result<Receipt, CdnError> {
            let n = {
                let mut calls = self.calls.lock().unwrap();
                calls.push((batch.clone(), Instant::now()));
                calls.len()
            };
            if let Some(Err(e)) = self.answers.lock().unwrap().pop_front() {
                return Err(e);
            }
            if self.too_large_above.is_some_and(|m| batch.items.len() > m) {
                return Err(CdnError::new(ErrorKind::BatchTooLarge, "fake", "too large"));
            }
            let id = format!("I{n}");
            let status = if self.caps.asynchronous {
                self.polls_left
                    .lock()
                    .unwrap()
                    .insert(id.clone(), self.polls_needed);
                let mut f = self.in_flight_paths.lock().unwrap();
                *f += batch.items.len();
                let mut m = self.max_seen.lock().unwrap();
                *m = (*m).max(*f);
                Status::InProgress
            } else {
                Status::Completed
            };
            Ok(Receipt {
                provider: "fake".into(),
                id: Some(id),
                status,
                items: batch.items.len(),
                detail: String::new(),
            })
        }
        async fn status(&self, id: &str) -> Result<Status, CdnError> {
            self.polls
                .lock()
                .unwrap()
                .push((id.to_string(), Instant::now()));
            let mut left = self.polls_left.lock().unwrap();
            let n = left.get_mut(id).expect("unknown id");
            if *n == 0 {
                return Ok(Status::Completed);
            }
            *n -= 1;
            if *n == 0 {
                let items = self
                    .calls()
                    .iter()
                    .enumerate()
                    .find(|(i, _)| format!("I{}", i + 1) == id)
                    .map(|(_, (b, _))| b.items.len())
                    .unwrap_or(0);
                *self.in_flight_paths.lock().unwrap() -= items;
                return Ok(Status::Completed);
            }
            Ok(Status::InProgress)
        }
        async fn list(&self, _max: usize) -> Result<Vec<Invalidation>, CdnError> {
            Ok(vec![])
        }
    }

    fn batch(paths: &[&str]) -> Batch {
        Batch {
            items: paths.iter().map(|p| Item::path(*p)).collect(),
            reference: "r".into(),
            soft: false,
        }
    }

    fn exact() -> RetryPolicy {
        RetryPolicy {
            jitter: false,
            ..RetryPolicy::default()
        }
    }

    fn events() -> (Observer, Arc<Mutex<Vec<Event>>>) {
        let seen: Arc<Mutex<Vec<Event>>> = Arc::default();
        let s = seen.clone();
        (
            Arc::new(move |e: &Event| s.lock().unwrap().push(e.clone())),
            seen,
        )
    }

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
        let text = e.to_string();
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

    #[test]
    fn chunk_groups_kinds_splits_by_limits_and_numbers_references() {
        let mut c = caps(3);
        c.max_prefixes_in_flight = Some(2);
        let p = Scripted::new(c);
        let whole = Batch {
            items: vec![
                Item::path("/a"),
                Item::prefix("/d/"),
                Item::path("/b"),
                Item::path("/a"),
                Item::path("/c"),
                Item::path("/e"),
                Item::prefix("/f/"),
                Item::prefix("/g/"),
            ],
            reference: "d1-cf".into(),
            soft: false,
        };
        let calls = chunk(&p, &whole).unwrap();
        let shape: Vec<(String, Vec<String>)> = calls
            .iter()
            .map(|b| {
                (
                    b.reference.clone(),
                    b.items.iter().map(|i| i.to_string()).collect(),
                )
            })
            .collect();
        let want = |r: &str, v: &[&str]| (r.to_string(), v.iter().map(|s| s.to_string()).collect());
        assert_eq!(
            shape,
            [
                want("d1-cf-1", &["/a", "/b", "/c"]),
                want("d1-cf-2", &["/e"]),
                want("d1-cf-3", &["/d/*", "/f/*"]),
                want("d1-cf-4", &["/g/*"]),
            ]
        );
        for call in &calls {
            check_call(&p, call).unwrap();
        }

        // Everything wins.
        let all = Batch {
            items: vec![Item::path("/a"), Item::all()],
            ..whole.clone()
        };
        let calls = chunk(&p, &all).unwrap();
        assert_eq!(calls.len(), 1);
        assert_eq!(calls[0].items, [Item::all()]);

        assert!(
            chunk(
                &p,
                &Batch {
                    items: vec![],
                    ..whole
                }
            )
            .unwrap()
            .is_empty()
        );
    }

    #[test]
    fn chunk_refuses_unsupported_and_malformed_items() {
        let p = Scripted::new(caps(3));
        let check = |items: Vec<Item>, soft: bool, want: &str| {
            let e = chunk(
                &p,
                &Batch {
                    items,
                    reference: "r".into(),
                    soft,
                },
            )
            .unwrap_err();
            assert_eq!(e.kind, ErrorKind::Invalid);
            assert!(e.to_string().contains(want), "{e}");
        };
        check(
            vec![Item::path("/a"), Item::tag("t")],
            false,
            "`#t`: tag items are not supported",
        );
        check(
            vec![Item::host("example.com")],
            false,
            "purges: path, prefix, purge-everything",
        );
        check(vec![Item::path("a.html")], false, "starting with `/`");
        check(vec![Item::path("/a")], true, "soft purge is not supported");
        assert!(p.calls().is_empty());
    }

    #[tokio::test(start_paused = true)]
    async fn purge_all_refuses_bad_calls_before_any_request() {
        let p = Scripted::new(caps(2));
        let opts = RunOptions::within(Duration::from_secs(60));
        let good = batch(&["/a"]);
        let mixed = Batch {
            items: vec![Item::path("/a"), Item::prefix("/b/")],
            ..batch(&[])
        };
        let big = batch(&["/a", "/b", "/c"]);
        let tag = Batch {
            items: vec![Item::tag("x")],
            ..batch(&[])
        };
        for bad in [mixed, big, tag] {
            let e = purge_all(&p, vec![good.clone(), bad], &opts)
                .await
                .unwrap_err();
            assert_eq!(e.kind, ErrorKind::Invalid, "{e}");
        }
        assert!(p.calls().is_empty());
    }

    #[tokio::test(start_paused = true)]
    async fn batch_too_large_is_split_in_halves() {
        let mut p = Scripted::new(caps(10));
        p.too_large_above = Some(2);
        let (obs, seen) = events();
        let opts = RunOptions::within(Duration::from_secs(60)).with_observer(obs);
        let calls = vec![
            Batch {
                reference: "d-1".into(),
                ..batch(&["/a", "/b", "/c", "/d", "/e"])
            },
            Batch {
                reference: "d-2".into(),
                ..batch(&["/f"])
            },
        ];
        let report = purge_all(&p, calls, &opts).await.unwrap();
        assert_eq!(
            p.refs(),
            ["d-1", "d-1.1", "d-1.2", "d-1.2.1", "d-1.2.2", "d-2"],
            "halves first, in order, then the next call"
        );
        assert_eq!(report.calls, 4);
        assert_eq!(report.items, 6);
        let splits = seen
            .lock()
            .unwrap()
            .iter()
            .filter(|e| matches!(e, Event::Split { .. }))
            .count();
        assert_eq!(splits, 2);

        // One item still too large: the error comes back, saying what was sent before.
        let mut p = Scripted::new(caps(10));
        p.too_large_above = Some(0);
        let e = purge_all(&p, vec![batch(&["/a"])], &opts)
            .await
            .unwrap_err();
        assert_eq!(e.kind, ErrorKind::BatchTooLarge);
    }

    #[tokio::test(start_paused = true)]
    async fn an_error_says_what_was_sent_before_it() {
        let p = Scripted::new(caps(10))
            .then(Ok(()))
            .fail(ErrorKind::Unauthorized);
        let opts = RunOptions::within(Duration::from_secs(60));
        let calls = vec![batch(&["/a"]), batch(&["/b"]), batch(&["/c"])];
        let e = purge_all(&p, calls, &opts).await.unwrap_err();
        assert_eq!(e.kind, ErrorKind::Unauthorized);
        assert!(
            e.message.contains("1 call sent before: I1; 1 not sent"),
            "{e}"
        );
    }

    fn asynchronous(polls: u32) -> Scripted {
        let mut c = caps(10);
        c.asynchronous = true;
        c.max_paths_in_flight = Some(5);
        let mut p = Scripted::new(c);
        p.polls_needed = polls;
        p
    }

    #[tokio::test(start_paused = true)]
    async fn wait_all_polls_adaptively_until_completed() {
        let p = asynchronous(4);
        let (obs, seen) = events();
        let opts = RunOptions::within(Duration::from_secs(600)).with_observer(obs);
        let report = purge_all(&p, vec![batch(&["/a"])], &opts).await.unwrap();
        assert_eq!(report.in_progress(), ["I1"]);
        let t = Instant::now();
        wait_all(&p, &report.receipts, &opts).await.unwrap();
        let at: Vec<u128> = p
            .polls
            .lock()
            .unwrap()
            .iter()
            .map(|(_, at)| (*at - t).as_millis())
            .collect();
        // 1 s, then ×1.5: 1, 2.5, 4.75, 8.125 s.
        assert_eq!(at, [1000, 2500, 4750, 8125]);
        let polled: Vec<Status> = seen
            .lock()
            .unwrap()
            .iter()
            .filter_map(|e| match e {
                Event::Polled { status, .. } => Some(*status),
                _ => None,
            })
            .collect();
        assert_eq!(polled.last(), Some(&Status::Completed));
        assert_eq!(polled.len(), 4);

        // The interval is capped.
        let p = asynchronous(20);
        let report = purge_all(&p, vec![batch(&["/a"])], &opts).await.unwrap();
        wait_all(&p, &report.receipts, &opts).await.unwrap();
        let polls = p.polls.lock().unwrap();
        let gaps: Vec<Duration> = polls.windows(2).map(|w| w[1].1 - w[0].1).collect();
        assert!(gaps.iter().all(|g| *g <= Duration::from_secs(20)));
        assert_eq!(gaps.last(), Some(&Duration::from_secs(20)));
    }

    #[tokio::test(start_paused = true)]
    async fn wait_all_times_out_at_the_deadline_naming_the_ids() {
        let p = asynchronous(1000);
        let start = Instant::now();
        let opts = RunOptions::within(Duration::from_secs(90));
        let report = purge_all(&p, vec![batch(&["/a"]), batch(&["/b"])], &opts)
            .await
            .unwrap();
        let e = wait_all(&p, &report.receipts, &opts).await.unwrap_err();
        assert_eq!(e.kind, ErrorKind::Timeout);
        assert_eq!(e.provider, "fake");
        let text = e.to_string();
        assert!(text.contains("`I1`, `I2` are still in progress"), "{text}");
        assert!(
            text.contains("staleguard invalidations status I1"),
            "{text}"
        );
        assert_eq!(
            start.elapsed(),
            Duration::from_secs(90),
            "never waits past the deadline"
        );
        let last = p.polls.lock().unwrap().last().unwrap().1;
        assert_eq!(
            last - start,
            Duration::from_secs(90),
            "one last poll at the deadline"
        );
    }

    #[tokio::test(start_paused = true)]
    async fn purge_all_respects_in_flight_limits() {
        let p = asynchronous(2);
        let opts = RunOptions::within(Duration::from_secs(600));
        let calls = vec![
            batch(&["/a", "/b", "/c"]),
            batch(&["/d", "/e"]),
            batch(&["/f", "/g"]),
        ];
        let report = purge_all(&p, calls, &opts).await.unwrap();
        assert_eq!(report.calls, 3);
        assert!(
            *p.max_seen.lock().unwrap() <= 5,
            "more than 5 paths in flight"
        );
        // The first two fit together (5); the third waited for them to complete.
        assert_eq!(report.receipts[0].status, Status::Completed);
        assert_eq!(report.receipts[1].status, Status::Completed);
        assert_eq!(report.in_progress(), ["I3"]);
        let calls = p.calls();
        assert!(calls[2].1 - calls[1].1 >= Duration::from_secs(2));
        wait_all(&p, &report.receipts, &opts).await.unwrap();
    }

    #[tokio::test(start_paused = true)]
    async fn waiting_for_room_in_flight_times_out_naming_the_ids_and_what_was_not_sent() {
        let p = asynchronous(1000);
        let opts = RunOptions::within(Duration::from_secs(30));
        let calls = vec![
            batch(&["/a", "/b", "/c", "/d", "/e"]),
            batch(&["/f"]),
            batch(&["/g"]),
        ];
        let e = purge_all(&p, calls, &opts).await.unwrap_err();
        assert_eq!(e.kind, ErrorKind::Timeout);
        let text = e.to_string();
        assert!(text.contains("`I1` is still in progress"), "{text}");
        assert!(
            text.contains("1 call sent before: I1; 2 not sent"),
            "{text}"
        );
        assert_eq!(p.calls().len(), 1);
    }

    #[tokio::test(start_paused = true)]
    async fn recorder_records_and_completes() {
        let rec = Recorder::new("dry", caps(2));
        let opts = RunOptions::within(Duration::from_secs(60));
        let whole = Batch {
            reference: "x".into(),
            ..batch(&["/a", "/b", "/c"])
        };
        let calls = chunk(&rec, &whole).unwrap();
        let report = purge_all(&rec, calls, &opts).await.unwrap();
        assert_eq!(report.calls, 2);
        assert!(report.in_progress().is_empty());
        let refs: Vec<String> = rec.batches().into_iter().map(|b| b.reference).collect();
        assert_eq!(refs, ["x-1", "x-2"]);
        let listed = rec.list(10).await.unwrap();
        assert_eq!(listed[0].id, "x-2");
        assert_eq!(listed[1].items, ["/a", "/b"]);
    }

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
