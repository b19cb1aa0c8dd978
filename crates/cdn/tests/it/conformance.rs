//! The one conformance suite every provider passes: the same cases, through the same wrappers
//! (`chunk` → `Retry` → `purge_all` → `wait_all`), against a peer that can tell whether a URL was really
//! dropped. A provider's test builds the provider against its peer and calls [`run_suite`] with a
//! [`Fixture`] for that peer.
//!
//! Rules for the provider under test: build it with `max-items = 3` (so "many paths" needs several
//! calls without thousands of requests); its origin (real caches) or its mock (APIs) must give the URL
//! `u` the tag [`tag_of`]`(u)` where the provider purges by tag.
//!
//! Cases, in order (a case whose capability is missing is not run, and the returned list says which
//! ran, so a test can insist on the ones its provider must pass):
//! - `one path`: one path dropped; every receipt completed; `status(id)` says `Completed`;
//! - `many paths`: more paths than one call takes → several calls, all dropped, no retries;
//! - `prefix`: a prefix drops the URLs under it and not a sibling;
//! - `tag`: a tag drops its URL and not another one;
//! - `host`: a host item drops the site's URLs;
//! - `all`: everything dropped;
//! - `refused`: an unsupported kind (or a malformed item, when every kind is supported) is refused by
//!   the chunker, and a bad call by the driver, before any request;
//! - `unauthorized`, `throttled`, `server error` (peers that can be scripted): an auth failure comes
//!   back at once without a retry; a 429 is retried after its `Retry-After`; a 5xx is retried; what
//!   is re-sent is the provider's unit ([`Provider::retry_unit`]): the call again for `Call`, the one
//!   request alone inside the same call for `Request`;
//! - `retry-after past the deadline` (peers that can be scripted): a 429 asking for a pause longer
//!   than what is left before the deadline fails at once, without sleeping and without a retry, and
//!   says so: the pause asked for, the time left, and to raise `timeout`.
//!
//! And [`run_fault_case`], for peers behind a fault-injecting [`Front`]: 600 URLs purged while every
//! 50th request fails (429 with `Retry-After: 1`, 500, a dropped connection, in turn); every URL must be
//! acknowledged before the deadline, with no more re-sends than faults and no re-send of a request the
//! peer had already acknowledged. The provider is built with its default limits there (a Fastly call
//! of 256 URLs, a Varnish call of 1,000), as in production.

use std::sync::Arc;
use std::sync::Mutex;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::Duration;

use async_trait::async_trait;
use staleguard_cdn::wrap::{
    self, Observer, Poll, PurgeReport, Retrier, Retry, RetryPolicy, RunOptions,
};
use staleguard_cdn::{
    Batch, Capabilities, CdnError, ErrorKind, Event, Invalidation, Item, ItemKind, Provider,
    Receipt, RetryUnit, Status,
};
use tokio::time::Instant;

use crate::faulty::{Counts, Front};

/// A failure a scripted peer answers to its next purge request.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Fault {
    /// 401 (CloudFront: `AccessDenied`).
    Unauthorized,
    /// 429 with `Retry-After: secs` (CloudFront: `Throttling`).
    Throttled { retry_after_secs: u64 },
    /// 500 (CloudFront: `ServiceUnavailable`).
    ServerError,
}

/// What the suite needs from the provider's peer.
#[async_trait]
pub trait Fixture: Send + Sync {
    /// Makes these URL paths cached. A real cache fetches each through every node and checks that the
    /// second fetch is a HIT; a mock starts a new record of purges (what [`Fixture::purged`] reads).
    async fn prime(&self, urls: &[&str]);
    /// True when `url` was dropped since it was primed: the next fetch through every node is a MISS
    /// with a new body (real cache), or a purge request since `prime` covers it (mock).
    async fn purged(&self, url: &str) -> bool;
    /// True when `url` is still cached since it was primed (every node: a HIT with the same body; mock:
    /// no purge request covers it).
    async fn kept(&self, url: &str) -> bool;
    /// Makes the next purge request fail with `fault`; false when the peer cannot be scripted, and the
    /// error cases are then not run (a real cache is scripted through a [`crate::faulty::Front`]).
    fn inject(&self, fault: Fault) -> bool;
    /// The host a `host` item purges (Cloudflare `hosts`), when the provider supports host items.
    fn host(&self) -> Option<String> {
        None
    }
}

/// The surrogate key the fixtures' origins and mocks give `url`: the project's own per-object key.
pub fn tag_of(url: &str) -> String {
    staleguard_core::purge::key_tag(url.trim_start_matches('/'))
}

/// Counts purge calls under the retry wrapper: every attempt of a provider whose unit is the call,
/// one per call for a provider whose unit is a request (its requests are retried inside the call).
/// It forwards the retry unit and `purge_each`, as every wrapper must.
#[derive(Debug)]
struct Counting {
    inner: Arc<dyn Provider>,
    purges: AtomicUsize,
}

#[async_trait]
impl Provider for Counting {
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
        self.purges.fetch_add(1, Ordering::SeqCst);
        self.inner.purge(batch).await
    }
    async fn purge_each(&self, batch: &Batch, retry: &Retrier) -> Result<Receipt, CdnError> {
        self.purges.fetch_add(1, Ordering::SeqCst);
        self.inner.purge_each(batch, retry).await
    }
    async fn status(&self, id: &str) -> Result<Status, CdnError> {
        self.inner.status(id).await
    }
    async fn list(&self, max: usize) -> Result<Vec<Invalidation>, CdnError> {
        self.inner.list(max).await
    }
}

struct Suite<'a> {
    raw: Arc<dyn Provider>,
    counting: Arc<Counting>,
    p: Retry<Arc<Counting>>,
    opts: RunOptions,
    events: Arc<Mutex<Vec<Event>>>,
    /// `Sending` events: every attempt, of a call or of one request re-sent on its own.
    sends: Arc<AtomicUsize>,
    fx: &'a dyn Fixture,
    run: String,
    n: AtomicUsize,
}

impl Suite<'_> {
    fn purges(&self) -> usize {
        self.counting.purges.load(Ordering::SeqCst)
    }

    fn sends(&self) -> usize {
        self.sends.load(Ordering::SeqCst)
    }

    /// Calls reaching the provider for one call retried once: the attempts when the unit is the call,
    /// the call alone when it is a request.
    fn calls_for_one_retry(&self) -> usize {
        match self.raw.retry_unit() {
            RetryUnit::Call => 2,
            RetryUnit::Request => 1,
        }
    }

    /// Chunks, sends and waits for `items`, as the CLI does.
    async fn purge(&self, items: Vec<Item>) -> Result<PurgeReport, CdnError> {
        let n = self.n.fetch_add(1, Ordering::SeqCst);
        let whole = Batch {
            items,
            reference: format!("{}-{n}", self.run),
            soft: false,
        };
        let calls = wrap::chunk(&self.p, &whole)?;
        let report = wrap::purge_all(&self.p, calls, &self.opts).await?;
        wrap::wait_all(&self.p, &report.receipts, &self.opts).await?;
        Ok(report)
    }

    async fn must_purge(&self, case: &str, items: Vec<Item>) -> PurgeReport {
        let shown: Vec<String> = items.iter().map(|i| i.to_string()).collect();
        match self.purge(items).await {
            Ok(r) => r,
            Err(e) => panic!(
                "{}: case `{case}`: purging {shown:?} failed: {e}",
                self.raw.name()
            ),
        }
    }

    async fn assert_purged(&self, case: &str, urls: &[&str]) {
        for u in urls {
            assert!(
                self.fx.purged(u).await,
                "{}: case `{case}`: `{u}` was not purged",
                self.raw.name()
            );
        }
    }

    async fn assert_kept(&self, case: &str, urls: &[&str]) {
        for u in urls {
            assert!(
                self.fx.kept(u).await,
                "{}: case `{case}`: `{u}` was purged but should not be",
                self.raw.name()
            );
        }
    }
}

/// Runs every case that applies to `p` against `fx`; returns the names of the cases run.
pub async fn run_suite(p: Arc<dyn Provider>, fx: &dyn Fixture) -> Vec<&'static str> {
    let caps = p.capabilities().clone();
    let name = p.name().to_string();
    assert!(
        caps.max_items_per_call <= 10,
        "{name}: build the provider with `max-items = 3` for the conformance suite (it has {})",
        caps.max_items_per_call
    );
    let events: Arc<Mutex<Vec<Event>>> = Arc::default();
    let sends: Arc<AtomicUsize> = Arc::default();
    let (seen, sent) = (events.clone(), sends.clone());
    let observer: Observer = Arc::new(move |e: &Event| {
        if matches!(e, Event::Sending { .. }) {
            sent.fetch_add(1, Ordering::SeqCst);
        }
        seen.lock().unwrap().push(e.clone())
    });
    let policy = RetryPolicy {
        base: Duration::from_millis(20),
        cap: Duration::from_millis(200),
        max_attempts: 5,
        budget: Duration::from_secs(60),
        jitter: true,
    };
    let opts = RunOptions::within(Duration::from_secs(60))
        .with_poll(Poll {
            first: Duration::from_millis(20),
            factor: 1.5,
            cap: Duration::from_millis(200),
        })
        .with_retry(policy.clone())
        .with_observer(observer.clone());
    let counting = Arc::new(Counting {
        inner: p.clone(),
        purges: AtomicUsize::new(0),
    });
    let retrying = Retry::new(counting.clone())
        .with_policy(policy)
        .with_deadline(opts.deadline)
        .with_observer(observer);
    let nanos = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .as_nanos();
    let s = Suite {
        raw: p.clone(),
        counting,
        p: retrying,
        opts,
        events,
        sends,
        fx,
        run: format!("conformance-{nanos}"),
        n: AtomicUsize::new(0),
    };
    let mut ran = Vec::new();

    // One path, and the status of a completed purge.
    if caps.paths {
        let case = "one path";
        fx.prime(&["/c1/a.html", "/c1/b.html"]).await;
        let report = s.must_purge(case, vec![Item::path("/c1/a.html")]).await;
        assert_eq!(report.calls, 1);
        assert_eq!(report.items, 1);
        s.assert_purged(case, &["/c1/a.html"]).await;
        s.assert_kept(case, &["/c1/b.html"]).await;
        for r in &report.receipts {
            assert_eq!(r.provider, name);
            if let Some(id) = &r.id {
                let st = p
                    .status(id)
                    .await
                    .unwrap_or_else(|e| panic!("{name}: status of `{id}`: {e}"));
                assert_eq!(
                    st,
                    Status::Completed,
                    "{name}: status of `{id}` after wait_all"
                );
            } else {
                assert_eq!(
                    r.status,
                    Status::Completed,
                    "{name}: a receipt without id must be completed"
                );
            }
        }
        ran.push(case);
    }

    // Many paths: several calls through the chunker.
    if caps.paths {
        let case = "many paths";
        let per_call = wrap::per_call(&caps, ItemKind::Path);
        let n = per_call * 2 + 1;
        let urls: Vec<String> = (0..n).map(|i| format!("/c2/p{i}.html")).collect();
        let refs: Vec<&str> = urls.iter().map(String::as_str).collect();
        fx.prime(&refs).await;
        let (before, sent) = (s.purges(), s.sends());
        let report = s
            .must_purge(case, urls.iter().map(Item::path).collect())
            .await;
        assert_eq!(report.calls, 3, "{name}: {n} paths at {per_call} per call");
        assert_eq!(report.items, n);
        assert_eq!(
            (s.purges() - before, s.sends() - sent),
            (3, 3),
            "{name}: a healthy peer needs no retry"
        );
        s.assert_purged(case, &refs).await;
        ran.push(case);
    }

    if caps.prefixes {
        let case = "prefix";
        fx.prime(&["/c3/d/a.html", "/c3/d/e/b.html", "/c3/other.html"])
            .await;
        s.must_purge(case, vec![Item::prefix("/c3/d/")]).await;
        s.assert_purged(case, &["/c3/d/a.html", "/c3/d/e/b.html"])
            .await;
        s.assert_kept(case, &["/c3/other.html"]).await;
        ran.push(case);
    }

    if caps.tags {
        let case = "tag";
        fx.prime(&["/c4/a.html", "/c4/b.html"]).await;
        s.must_purge(case, vec![Item::tag(tag_of("/c4/a.html"))])
            .await;
        s.assert_purged(case, &["/c4/a.html"]).await;
        s.assert_kept(case, &["/c4/b.html"]).await;
        ran.push(case);
    }

    if caps.hosts {
        let case = "host";
        let host = fx
            .host()
            .unwrap_or_else(|| panic!("{name} purges hosts: the fixture must say which"));
        fx.prime(&["/c6/a.html", "/c6/b/c.html"]).await;
        s.must_purge(case, vec![Item::host(host)]).await;
        s.assert_purged(case, &["/c6/a.html", "/c6/b/c.html"]).await;
        ran.push(case);
    }

    if caps.all {
        let case = "all";
        fx.prime(&["/c5/a.html", "/c5/b/c.html"]).await;
        s.must_purge(case, vec![Item::all()]).await;
        s.assert_purged(case, &["/c5/a.html", "/c5/b/c.html"]).await;
        ran.push(case);
    }

    // Refused before any request.
    {
        let case = "refused";
        let (before, sent) = (s.purges(), s.sends());
        let kinds = [
            (caps.paths, Item::path("/c7/a.html")),
            (caps.prefixes, Item::prefix("/c7/")),
            (caps.tags, Item::tag("c7")),
            (caps.hosts, Item::host("c7.example.com")),
            (caps.all, Item::all()),
        ];
        let unsupported = kinds.iter().find(|(ok, _)| !ok).map(|(_, i)| i.clone());
        let bad = unsupported
            .clone()
            .unwrap_or_else(|| Item::path("c7-no-leading-slash.html"));
        let e = s
            .purge(vec![Item::path("/c7/ok.html"), bad.clone()])
            .await
            .unwrap_err();
        assert_eq!(e.kind, ErrorKind::Invalid, "{name}: `{bad}`: {e}");
        assert!(
            e.to_string().contains(&bad.to_string()),
            "{name}: the error names the item: {e}"
        );
        let supported: Vec<Item> = kinds
            .iter()
            .filter(|(ok, _)| *ok)
            .map(|(_, i)| i.clone())
            .collect();
        if supported.len() >= 2 {
            // A call mixing kinds (the chunker never makes one) is refused by the driver.
            let mixed = Batch {
                items: supported[..2].to_vec(),
                reference: format!("{}-mixed", s.run),
                soft: false,
            };
            let e = wrap::purge_all(&s.p, vec![mixed], &s.opts)
                .await
                .unwrap_err();
            assert_eq!(e.kind, ErrorKind::Invalid, "{name}: mixed call: {e}");
        }
        if let Some(item) = unsupported {
            let lone = Batch {
                items: vec![item],
                reference: format!("{}-lone", s.run),
                soft: false,
            };
            let e = wrap::purge_all(&s.p, vec![lone], &s.opts)
                .await
                .unwrap_err();
            assert_eq!(e.kind, ErrorKind::Invalid, "{name}: unsupported call: {e}");
        }
        assert_eq!(
            (s.purges(), s.sends()),
            (before, sent),
            "{name}: a refused purge made a request"
        );
        ran.push(case);
    }

    // Error mapping, where the peer can be scripted.
    let one = || {
        if caps.paths {
            Item::path("/c8/a.html")
        } else {
            Item::tag(tag_of("/c8/a.html"))
        }
    };
    if fx.inject(Fault::Unauthorized) {
        let case = "unauthorized";
        fx.prime(&["/c8/a.html"]).await;
        let (before, sent) = (s.purges(), s.sends());
        let e = s.purge(vec![one()]).await.unwrap_err();
        assert_eq!(e.kind, ErrorKind::Unauthorized, "{name}: {e}");
        assert!(!e.retryable());
        assert_eq!(
            (s.purges() - before, s.sends() - sent),
            (1, 1),
            "{name}: an auth failure was retried"
        );
        ran.push(case);

        let case = "throttled";
        assert!(fx.inject(Fault::Throttled {
            retry_after_secs: 1
        }));
        s.events.lock().unwrap().clear();
        let (before, sent) = (s.purges(), s.sends());
        let t = Instant::now();
        s.must_purge(case, vec![one()]).await;
        let took = t.elapsed();
        assert_eq!(s.sends() - sent, 2, "{name}: a 429 is retried once");
        assert_eq!(
            s.purges() - before,
            s.calls_for_one_retry(),
            "{name}: the retry unit is {:?}",
            s.raw.retry_unit()
        );
        assert!(
            took >= Duration::from_secs(1),
            "{name}: Retry-After: 1 not honoured ({took:?})"
        );
        let waited = s.events.lock().unwrap().iter().any(
            |e| matches!(e, Event::Retrying { after, .. } if *after >= Duration::from_secs(1)),
        );
        assert!(
            waited,
            "{name}: no Retrying event with the Retry-After pause"
        );
        ran.push(case);

        let case = "server error";
        assert!(fx.inject(Fault::ServerError));
        let (before, sent) = (s.purges(), s.sends());
        fx.prime(&["/c8/a.html"]).await;
        s.must_purge(case, vec![one()]).await;
        assert_eq!(s.sends() - sent, 2, "{name}: a 5xx is retried once");
        assert_eq!(s.purges() - before, s.calls_for_one_retry());
        if caps.paths {
            s.assert_purged(case, &["/c8/a.html"]).await;
        }
        ran.push(case);

        let case = "retry-after past the deadline";
        assert!(fx.inject(Fault::Throttled {
            retry_after_secs: 3600
        }));
        s.events.lock().unwrap().clear();
        let (before, sent) = (s.purges(), s.sends());
        let e = s.purge(vec![one()]).await.unwrap_err();
        assert!(
            Instant::now() < s.opts.deadline,
            "{name}: waited for the deadline"
        );
        assert_eq!(e.kind, ErrorKind::Throttled, "{name}: {e}");
        assert_eq!(
            (s.purges() - before, s.sends() - sent),
            (1, 1),
            "{name}: retried: {e}"
        );
        let text = e.shown();
        assert!(
            text.contains("asked to wait 60m") && text.contains("remain before the deadline"),
            "{name}: the error does not say the pause is past the deadline: {text}"
        );
        assert!(
            text.contains("raise `timeout`"),
            "{name}: no hint to raise the timeout: {text}"
        );
        let retried = s
            .events
            .lock()
            .unwrap()
            .iter()
            .filter(|e| matches!(e, Event::Retrying { .. }))
            .count();
        assert_eq!(
            retried, 0,
            "{name}: a Retrying event for a pause never taken"
        );
        ran.push(case);
    }
    ran
}

/// What [`run_fault_case`] measured.
#[derive(Debug, Clone, Copy)]
pub struct FaultRun {
    pub calls: usize,
    /// Summed over the fronts.
    pub counts: Counts,
}

/// Purges `urls` paths through `chunk` → `Retry` → `purge_all` → `wait_all` while each of `fronts`
/// (the provider's peers, one per node) fails every 50th request. Every URL must be acknowledged
/// (purged, as the fixture sees it), before the deadline; no front may see more re-sends than it
/// injected faults, nor any re-send of a request its peer had acknowledged; each fault is one
/// `Retrying` event.
pub async fn run_fault_case(
    p: Arc<dyn Provider>,
    fx: &dyn Fixture,
    fronts: &[&Front],
    urls: usize,
) -> FaultRun {
    let name = p.name().to_string();
    let paths: Vec<String> = (0..urls).map(|i| format!("/faults/p{i}.html")).collect();
    let refs: Vec<&str> = paths.iter().map(String::as_str).collect();
    fx.prime(&refs).await;
    let events: Arc<Mutex<Vec<Event>>> = Arc::default();
    let seen = events.clone();
    let observer: Observer = Arc::new(move |e: &Event| seen.lock().unwrap().push(e.clone()));
    let opts = RunOptions::within(Duration::from_secs(30))
        .with_poll(Poll {
            first: Duration::from_millis(20),
            factor: 1.5,
            cap: Duration::from_millis(200),
        })
        .with_retry(RetryPolicy {
            base: Duration::from_millis(20),
            cap: Duration::from_millis(200),
            max_attempts: 5,
            budget: Duration::from_secs(30),
            jitter: true,
        })
        .with_observer(observer);
    for f in fronts {
        f.reset();
        f.fail_every(50);
    }
    let t = Instant::now();
    let r = wrap::retrying(p, &opts);
    let whole = Batch {
        items: paths.iter().map(Item::path).collect(),
        reference: format!("faults-{}", std::process::id()),
        soft: false,
    };
    let calls = wrap::chunk(&r, &whole).unwrap();
    let outcome = async {
        let report = wrap::purge_all(&r, calls, &opts).await?;
        wrap::wait_all(&r, &report.receipts, &opts).await?;
        Ok::<_, CdnError>(report)
    }
    .await;
    let elapsed = t.elapsed();
    let finished = Instant::now();
    let per_front: Vec<Counts> = fronts.iter().map(|f| f.counts()).collect();
    for f in fronts {
        f.reset();
    }
    let counts = per_front.iter().fold(Counts::default(), |a, c| Counts {
        requests: a.requests + c.requests,
        faults: a.faults + c.faults,
        resent: a.resent + c.resent,
        resent_acknowledged: a.resent_acknowledged + c.resent_acknowledged,
    });
    let report = outcome.unwrap_or_else(|e| {
        panic!(
            "{name}: {urls} URLs with faults: the purge failed after {elapsed:?} ({counts:?}): {e}"
        )
    });
    assert!(
        finished <= opts.deadline,
        "{name}: finished after the deadline"
    );
    let mut missing = Vec::new();
    for u in &refs {
        if !fx.purged(u).await {
            missing.push(*u);
        }
    }
    assert!(
        missing.is_empty(),
        "{name}: {} of {urls} URLs were never acknowledged: {:?}…",
        missing.len(),
        &missing[..missing.len().min(5)]
    );
    for (i, c) in per_front.iter().enumerate() {
        assert!(c.faults > 0, "{name}: front {i} injected no fault: {c:?}");
        assert!(
            c.resent <= c.faults,
            "{name}: front {i}: {} re-sends for {} faults ({c:?})",
            c.resent,
            c.faults
        );
        assert_eq!(
            c.resent_acknowledged, 0,
            "{name}: front {i}: requests already acknowledged were sent again ({c:?})"
        );
    }
    let retried = events
        .lock()
        .unwrap()
        .iter()
        .filter(|e| matches!(e, Event::Retrying { .. }))
        .count();
    assert_eq!(
        retried, counts.faults,
        "{name}: one Retrying event per fault ({counts:?})"
    );
    eprintln!(
        "{name}: {urls} URLs in {} calls with faults: {counts:?}, {retried} Retrying events, {elapsed:?}",
        report.calls
    );
    FaultRun {
        calls: report.calls,
        counts,
    }
}
