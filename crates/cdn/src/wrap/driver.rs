//! The driver: [`purge_all`] sends a purge's calls in order within in-flight limits, splitting those
//! found too large; [`wait_all`] follows asynchronous purges to completion by polling ([`Poll`]).

use std::collections::VecDeque;
use std::time::Duration;

use staleguard_core::backoff::Backoff;
use staleguard_core::event::emit;
use staleguard_core::purge::ItemKind;
use tokio::time::Instant;
use tracing::Instrument;

use super::{Observer, RetryPolicy, check_call, halves};
use crate::{Batch, CdnError, ErrorKind, Event, Provider, Receipt, Status};

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
/// policy for [`retrying`](super::retrying), and who to tell.
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

/// Sends `calls` (from [`chunk`](super::chunk)) one after another. Every call is checked first ([`check_call`]):
/// a bad one fails the whole run before any request. For an asynchronous provider with in-flight
/// limits, a call that would exceed them together with this run's not yet completed calls waits
/// (polling, see [`Poll`]) until enough of those complete; past the deadline that is a
/// [`ErrorKind::Timeout`] naming the ids. A call refused with [`ErrorKind::BatchTooLarge`] is sent
/// again as its two [`halves`]. Any other error ends the run; its message says how many calls were
/// sent before it. Retrying is the provider's business: pass a [`Retry`](super::Retry) (see [`retrying`](super::retrying)).
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
    use staleguard_core::purge::Item;

    use super::*;
    use crate::wrap::scripted::*;

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
        let text = e.shown();
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
}
