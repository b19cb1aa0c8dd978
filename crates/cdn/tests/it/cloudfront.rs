//! The CloudFront provider (its REST client on `staleguard-aws`), (a) against our fake CloudFront (the conformance suite,
//! `InProgress` polling, quotas, throttling, CallerReference idempotency, `auto`, origin paths, error
//! mapping) and (b) against a real moto server (the happy path and unknown ids: moto completes at once
//! and models no quotas, see `../shared/peers/README.md`). A missing moto fails the test with a hint.

use std::sync::{Arc, Mutex};
use std::time::Duration;

use async_trait::async_trait;
use serde_json::{Value, json};
use staleguard_aws::Credentials;
use staleguard_cdn::cloudfront::{self, CALL_TIMEOUT, CloudFront};
use staleguard_cdn::wrap::{self, Observer, Poll, PurgeReport, Retry, RetryPolicy, RunOptions};
use staleguard_cdn::{
    Batch, CdnError, ErrorKind, Event, Item, OpenContext, Provider, RetryUnit, Status,
};
use staleguard_core::config::CdnConfig;
use staleguard_testkit::moto::Moto;

use crate::conformance::{Fault, Fixture, run_suite};
use crate::fake_cloudfront::{FakeCloudFront, FakeDistribution, FakeOptions, Throttle};

const SECRET: &str = "s3cr3t-key-do-not-print";
const DIST: &str = "EFAKEDIST0001";

/// Fixed test credentials (the environment's are not used).
fn creds() -> Credentials {
    Credentials::fixed("AKIDTESTING", SECRET, None)
}

/// A `[[cdn]]` entry for CloudFront at `api`, with `extra` keys (kebab-case) merged in.
fn cfg(api: &str, distribution: &[&str], extra: Value) -> CdnConfig {
    let mut v = json!({ "provider": "cloudfront", "distribution": distribution, "api": api });
    for (k, x) in extra.as_object().cloned().unwrap_or_default() {
        v[k] = x;
    }
    let c: CdnConfig = serde_json::from_value(v).expect("a valid [[cdn]] entry");
    c.check().expect("the entry passes its checks");
    c
}

fn ctx(bucket: Option<&str>, store_prefix: &str) -> OpenContext {
    OpenContext {
        bucket: bucket.map(str::to_string),
        store_prefix: store_prefix.into(),
    }
}

async fn open_one(c: &CdnConfig, x: &OpenContext) -> CloudFront {
    let mut v = cloudfront::open_with(c, x, creds(), CALL_TIMEOUT)
        .await
        .unwrap_or_else(|e| panic!("open: {e}"));
    assert_eq!(v.len(), 1, "{v:?}");
    v.remove(0)
}

async fn fake(opts: FakeOptions) -> Arc<FakeCloudFront> {
    let f = FakeCloudFront::start(opts).await;
    f.add_distribution(FakeDistribution::s3(DIST, "site", "").with_alias("www.example.com"));
    Arc::new(f)
}

/// Quick retries and polls, so the tests take seconds.
fn opts(timeout: Duration) -> (RunOptions, Arc<Mutex<Vec<Event>>>) {
    let events: Arc<Mutex<Vec<Event>>> = Arc::default();
    let seen = events.clone();
    let observer: Observer = Arc::new(move |e: &Event| seen.lock().unwrap().push(e.clone()));
    let o = RunOptions::within(timeout)
        .with_poll(Poll {
            first: Duration::from_millis(20),
            factor: 1.5,
            cap: Duration::from_millis(200),
        })
        .with_retry(RetryPolicy {
            base: Duration::from_millis(50),
            cap: Duration::from_millis(400),
            max_attempts: 8,
            budget: timeout,
            jitter: true,
        })
        .with_observer(observer);
    (o, events)
}

/// chunk → Retry → purge_all (→ wait_all when `wait`), as the CLI does.
async fn run(
    p: &CloudFront,
    items: Vec<Item>,
    reference: &str,
    o: &RunOptions,
    wait: bool,
) -> Result<PurgeReport, CdnError> {
    let r = wrap::retrying(Arc::new(p.clone()), o);
    let calls = wrap::chunk(
        &r,
        &Batch {
            items,
            reference: reference.into(),
            soft: false,
        },
    )?;
    let report = wrap::purge_all(&r, calls, o).await?;
    if wait {
        wrap::wait_all(&r, &report.receipts, o).await?;
    }
    Ok(report)
}

fn paths(n: usize, dir: &str) -> Vec<Item> {
    (0..n)
        .map(|i| Item::path(format!("/{dir}/p{i}.html")))
        .collect()
}

// ---------------------------------------------------------------------------------------------------
// (a) against the fake

/// The conformance fixture over the fake: a URL is purged when an invalidation created since `prime`
/// covers it.
struct FakeFixture {
    fake: Arc<FakeCloudFront>,
    mark: Mutex<usize>,
}

fn covers(path: &str, url: &str) -> bool {
    match path.strip_suffix('*') {
        Some(prefix) => url.starts_with(prefix),
        None => path == url,
    }
}

#[async_trait]
impl Fixture for FakeFixture {
    async fn prime(&self, _urls: &[&str]) {
        *self.mark.lock().unwrap() = self.fake.invalidations(DIST).len();
    }
    async fn purged(&self, url: &str) -> bool {
        let mark = *self.mark.lock().unwrap();
        self.fake.invalidations(DIST)[mark..]
            .iter()
            .any(|i| i.paths.iter().any(|p| covers(p, url)))
    }
    async fn kept(&self, url: &str) -> bool {
        !self.purged(url).await
    }
    fn inject(&self, fault: Fault) -> bool {
        const OP: &str = "CreateInvalidation";
        match fault {
            Fault::Unauthorized => self.fake.fail_next(OP, 403, "AccessDenied", 1),
            Fault::Throttled { retry_after_secs } => {
                self.fake
                    .fail_next_retry_after(OP, 400, "Throttling", retry_after_secs)
            }
            Fault::ServerError => self.fake.fail_next(OP, 503, "ServiceUnavailable", 1),
        }
        true
    }
}

#[tokio::test]
async fn cloudfront_passes_the_conformance_suite_against_the_fake() {
    let fake = fake(FakeOptions::default()).await;
    let p = open_one(
        &cfg(&fake.url, &[DIST], json!({ "max-items": 3 })),
        &ctx(Some("site"), ""),
    )
    .await;
    assert!(!format!("{p:?}").contains(SECRET), "{p:?}");
    let fx = FakeFixture {
        fake: fake.clone(),
        mark: Mutex::new(0),
    };
    assert_eq!(p.retry_unit(), RetryUnit::Call, "one invalidation per call");
    let ran = run_suite(Arc::new(p), &fx).await;
    assert_eq!(
        ran,
        [
            "one path",
            "many paths",
            "prefix",
            "all",
            "refused",
            "unauthorized",
            "throttled",
            "server error",
            "retry-after past the deadline"
        ]
    );
    let reqs = fake.requests();
    assert!(
        reqs.iter().all(|r| r.signed),
        "every request is SigV4-signed"
    );
    assert!(
        reqs.iter()
            .all(|r| !r.body.contains(SECRET) && !r.query.contains(SECRET))
    );
    // Every invalidation of the suite went out with the batch's reference as CallerReference.
    for i in fake.invalidations(DIST) {
        assert!(i.reference.starts_with("conformance-"), "{}", i.reference);
    }
}

#[tokio::test]
async fn in_progress_is_polled_until_completed_through_the_driver() {
    let fake = fake(FakeOptions {
        complete_after_polls: 3,
        ..Default::default()
    })
    .await;
    let p = open_one(&cfg(&fake.url, &[DIST], json!({})), &ctx(None, "")).await;
    let (o, events) = opts(Duration::from_secs(30));

    let report = run(
        &p,
        vec![Item::path("/index.html"), Item::path("/a b.html")],
        "d1-cf",
        &o,
        false,
    )
    .await
    .unwrap();
    assert_eq!(
        report.in_progress().len(),
        1,
        "CloudFront answers InProgress"
    );
    let id = report.in_progress()[0].to_string();
    assert_eq!(p.status(&id).await.unwrap(), Status::InProgress);

    wrap::wait_all(
        &wrap::retrying(Arc::new(p.clone()), &o),
        &report.receipts,
        &o,
    )
    .await
    .unwrap();
    assert_eq!(p.status(&id).await.unwrap(), Status::Completed);
    let polled: Vec<Status> = events
        .lock()
        .unwrap()
        .iter()
        .filter_map(|e| match e {
            Event::Polled { status, .. } => Some(*status),
            _ => None,
        })
        .collect();
    assert_eq!(
        polled,
        [Status::InProgress, Status::Completed],
        "the 2nd and 3rd polls"
    );

    let inv = &fake.invalidations(DIST)[0];
    assert_eq!(inv.reference, "d1-cf-1");
    let create = &fake.calls("CreateInvalidation")[0];
    assert_eq!(
        (create.method.as_str(), create.path.as_str()),
        (
            "POST",
            "/2020-05-31/distribution/EFAKEDIST0001/invalidation"
        )
    );
    assert!(
        create.body.contains("<Quantity>2</Quantity>"),
        "{}",
        create.body
    );
    assert_eq!(
        inv.paths,
        ["/index.html", "/a%20b.html"],
        "space percent-encoded"
    );

    let listed = p.list(10).await.unwrap();
    assert_eq!(listed.len(), 1);
    assert_eq!(listed[0].id, id);
    assert_eq!(listed[0].status, Status::Completed);
    assert_eq!(listed[0].provider, format!("cloudfront:{DIST}"));
    assert_eq!(listed[0].reference.as_deref(), Some("d1-cf-1"));
    assert_eq!(listed[0].items, ["/index.html", "/a%20b.html"]);
    assert!(
        listed[0]
            .created
            .as_deref()
            .is_some_and(|c| c.ends_with('Z')),
        "{:?}",
        listed[0].created
    );
}

#[tokio::test]
async fn list_is_newest_first_across_pages_and_details_only_the_newest() {
    let fake = fake(FakeOptions {
        max_page: 4,
        ..Default::default()
    })
    .await;
    let p = open_one(&cfg(&fake.url, &[DIST], json!({})), &ctx(None, "")).await;
    for n in 0..13 {
        let b = Batch {
            items: vec![Item::path(format!("/l{n}"))],
            reference: format!("l-{n}"),
            soft: false,
        };
        p.purge(&b).await.unwrap();
        tokio::time::sleep(Duration::from_millis(2)).await;
    }
    let listed = p.list(12).await.unwrap();
    let refs: Vec<Option<&str>> = listed.iter().map(|i| i.reference.as_deref()).collect();
    let want: Vec<Option<String>> = (1..13)
        .rev()
        .map(|n| (n >= 3).then(|| format!("l-{n}")))
        .collect();
    assert_eq!(
        refs,
        want.iter().map(|w| w.as_deref()).collect::<Vec<_>>(),
        "details for the 10 newest only"
    );
    assert!(
        fake.calls("ListInvalidations").len() >= 3,
        "paged at 4 a page"
    );
}

/// A listing that goes oldest first (moto) still gives the newest `max`, even `max = 1`.
#[tokio::test]
async fn list_gives_the_newest_when_the_listing_is_oldest_first() {
    let fake = fake(FakeOptions {
        max_page: 2,
        oldest_first: true,
        ..Default::default()
    })
    .await;
    let p = open_one(&cfg(&fake.url, &[DIST], json!({})), &ctx(None, "")).await;
    for n in 0..5 {
        let b = Batch {
            items: vec![Item::path(format!("/o{n}"))],
            reference: format!("o-{n}"),
            soft: false,
        };
        p.purge(&b).await.unwrap();
        tokio::time::sleep(Duration::from_millis(2)).await;
    }
    let refs = |listed: Vec<staleguard_cdn::Invalidation>| -> Vec<String> {
        listed
            .into_iter()
            .map(|i| i.reference.unwrap_or_default())
            .collect()
    };
    assert_eq!(refs(p.list(3).await.unwrap()), ["o-4", "o-3", "o-2"]);
    assert_eq!(refs(p.list(1).await.unwrap()), ["o-4"]);
}

#[tokio::test]
async fn three_thousand_and_one_paths_make_two_calls_the_second_after_the_first_completed() {
    let fake = fake(FakeOptions::default()).await;
    let p = open_one(&cfg(&fake.url, &[DIST], json!({})), &ctx(None, "")).await;
    let (o, _) = opts(Duration::from_secs(60));
    let report = run(&p, paths(3001, "big"), "d2-cf", &o, true)
        .await
        .unwrap();
    assert_eq!(report.calls, 2);
    assert_eq!(report.items, 3001);
    let invs = fake.invalidations(DIST);
    let sizes: Vec<usize> = invs.iter().map(|i| i.paths.len()).collect();
    assert_eq!(sizes, [3000, 1]);
    let ops: Vec<(&str, u16)> = fake.requests().iter().map(|r| (r.op, r.status)).collect();
    assert!(
        ops.iter().all(|(_, s)| *s < 300),
        "nothing refused: {ops:?}"
    );
    let creates: Vec<usize> = ops
        .iter()
        .enumerate()
        .filter(|(_, (op, _))| *op == "CreateInvalidation")
        .map(|(i, _)| i)
        .collect();
    let polls_between = ops[creates[0]..creates[1]]
        .iter()
        .filter(|(op, _)| *op == "GetInvalidation")
        .count();
    assert!(
        polls_between >= 2,
        "the second call waited for the first to complete: {ops:?}"
    );
}

#[tokio::test]
async fn sixteen_wildcards_wait_for_the_first_fifteen_to_complete() {
    let fake = fake(FakeOptions::default()).await;
    let p = open_one(&cfg(&fake.url, &[DIST], json!({})), &ctx(None, "")).await;
    let (o, _) = opts(Duration::from_secs(60));
    let items: Vec<Item> = (0..16).map(|i| Item::prefix(format!("/w{i}/"))).collect();
    let report = run(&p, items, "d3-cf", &o, true).await.unwrap();
    assert_eq!(report.calls, 2);
    let invs = fake.invalidations(DIST);
    assert_eq!(
        invs.iter().map(|i| i.paths.len()).collect::<Vec<_>>(),
        [15, 1]
    );
    assert!(invs[0].paths.iter().all(|p| p.ends_with("/*")));
    assert!(
        invs[0].completed && invs[0].polls >= 2,
        "the first completed before the second was sent"
    );
    assert!(
        fake.requests().iter().all(|r| r.code.is_empty()),
        "no TooManyInvalidationsInProgress"
    );
}

#[tokio::test]
async fn throttling_is_retried() {
    let fake = fake(FakeOptions {
        throttle: Some(Throttle {
            burst: 1,
            per_second: 4.0,
        }),
        ..Default::default()
    })
    .await;
    let p = open_one(
        &cfg(&fake.url, &[DIST], json!({ "max-items": 1 })),
        &ctx(None, ""),
    )
    .await;
    let (o, events) = opts(Duration::from_secs(60));
    let report = run(&p, paths(4, "t"), "d4-cf", &o, true).await.unwrap();
    assert_eq!(report.calls, 4);
    let throttled = fake
        .calls("CreateInvalidation")
        .iter()
        .filter(|r| r.code == "Throttling")
        .count();
    assert!(throttled >= 1, "the burst of 1 was exceeded");
    assert_eq!(
        fake.invalidations(DIST).len(),
        4,
        "one invalidation per call, none twice"
    );
    let retried = events
        .lock()
        .unwrap()
        .iter()
        .filter(|e| matches!(e, Event::Retrying { .. }))
        .count();
    assert_eq!(retried, throttled);
}

#[tokio::test]
async fn too_many_in_progress_waits_and_retries() {
    // Invalidations complete by age only (1 s): another deploy's 15 wildcards are in flight.
    let fake = fake(FakeOptions {
        complete_after_polls: u32::MAX,
        complete_after: Some(Duration::from_millis(1000)),
        ..Default::default()
    })
    .await;
    let p = open_one(&cfg(&fake.url, &[DIST], json!({})), &ctx(None, "")).await;
    let (o, _) = opts(Duration::from_secs(60));
    let others: Vec<Item> = (0..15).map(|i| Item::prefix(format!("/o{i}/"))).collect();
    run(&p, others, "other-deploy", &o, false).await.unwrap();

    let t = std::time::Instant::now();
    let report = run(&p, vec![Item::prefix("/mine/")], "d5-cf", &o, true)
        .await
        .unwrap();
    assert_eq!(report.calls, 1);
    let refused = fake
        .calls("CreateInvalidation")
        .iter()
        .filter(|r| r.code == "TooManyInvalidationsInProgress")
        .count();
    assert!(refused >= 1, "the 16th wildcard was refused at first");
    assert!(
        t.elapsed() >= Duration::from_millis(800),
        "it waited for the others to complete"
    );
    assert_eq!(fake.invalidations(DIST).len(), 2);
}

#[tokio::test]
async fn a_lost_response_is_retried_with_the_same_caller_reference_and_creates_one_invalidation() {
    let fake = fake(FakeOptions::default()).await;
    let c = cfg(&fake.url, &[DIST], json!({}));
    let p = cloudfront::open_with(&c, &ctx(None, ""), creds(), Duration::from_millis(400))
        .await
        .unwrap()
        .remove(0);
    fake.lose_next_create_response(Duration::from_secs(3));
    let (o, events) = opts(Duration::from_secs(60));
    let report = run(&p, vec![Item::path("/lost.html")], "d6-cf", &o, true)
        .await
        .unwrap();
    assert_eq!(report.calls, 1);
    let creates = fake.calls("CreateInvalidation");
    assert_eq!(
        creates.len(),
        2,
        "the first answer was lost, the call was sent again"
    );
    assert!(creates.iter().all(|r| {
        r.body
            .contains("<CallerReference>d6-cf-1</CallerReference>")
    }));
    assert_eq!(
        fake.invalidations(DIST).len(),
        1,
        "exactly one invalidation"
    );
    let retried: Vec<String> = events
        .lock()
        .unwrap()
        .iter()
        .filter_map(|e| match e {
            Event::Retrying { error, .. } => Some(error.clone()),
            _ => None,
        })
        .collect();
    assert_eq!(retried.len(), 1);
    assert!(retried[0].contains("timed out"), "{retried:?}");
}

#[tokio::test]
async fn the_same_reference_with_other_paths_is_refused() {
    let fake = fake(FakeOptions::default()).await;
    let p = open_one(&cfg(&fake.url, &[DIST], json!({})), &ctx(None, "")).await;
    let b = |path: &str| Batch {
        items: vec![Item::path(path)],
        reference: "same-ref".into(),
        soft: false,
    };
    let first = p.purge(&b("/a")).await.unwrap();
    let again = p.purge(&b("/a")).await.unwrap();
    assert_eq!(
        first.id, again.id,
        "same reference and paths: the same invalidation"
    );
    let e = p.purge(&b("/b")).await.unwrap_err();
    assert_eq!(e.kind, ErrorKind::Invalid, "{e}");
    assert!(!e.retryable());
    let text = e.shown();
    assert!(
        text.contains("InvalidationBatchAlreadyExists") && text.contains("`same-ref`"),
        "{text}"
    );
    assert!(e.hint().is_some(), "{e:?}");
    assert_eq!(fake.invalidations(DIST).len(), 1);
}

#[tokio::test]
async fn auto_finds_distributions_by_alias_across_pages() {
    let fake = FakeCloudFront::start(FakeOptions {
        max_page: 1,
        ..Default::default()
    })
    .await;
    fake.add_distribution(
        FakeDistribution::s3("EONE0000001", "one", "").with_alias("one.example.com"),
    );
    fake.add_distribution(
        FakeDistribution::s3("ETWO0000002", "two", "").with_alias("*.example.org"),
    );
    fake.add_distribution(
        FakeDistribution::s3("ESITE000003", "site", "/site").with_alias("www.example.com"),
    );
    fake.add_distribution(
        FakeDistribution::s3("EWILD000004", "site", "").with_alias("*.example.com"),
    );

    let auto = |domain: &str| cfg(&fake.url, &["auto"], json!({ "domain": domain }));
    let p = open_one(
        &auto("https://WWW.example.com/"),
        &ctx(Some("site"), "site/"),
    )
    .await;
    assert_eq!(
        p.distribution(),
        "ESITE000003",
        "the exact alias wins over `*.example.com`"
    );
    assert_eq!(p.name(), "cloudfront:ESITE000003");
    assert_eq!(
        p.url_prefix(),
        Some("/"),
        "store s3://site/site/ behind origin path /site"
    );
    assert!(fake.calls("ListDistributions").len() >= 4, "all pages read");

    let p = open_one(&auto("img.example.org"), &ctx(None, "")).await;
    assert_eq!(p.distribution(), "ETWO0000002", "wildcard alias");
    let p = open_one(&auto("deone0000001.cloudfront.net"), &ctx(None, "")).await;
    assert_eq!(
        p.distribution(),
        "EONE0000001",
        "the distribution's own domain name"
    );
    assert_eq!(p.domain_name(), "deone0000001.cloudfront.net");

    // auto and an explicit id naming the same distribution: one provider; two ids: two.
    let both = cfg(
        &fake.url,
        &["auto", "ESITE000003", "EONE0000001"],
        json!({ "domain": "www.example.com" }),
    );
    let v = cloudfront::open_with(&both, &ctx(None, ""), creds(), CALL_TIMEOUT)
        .await
        .unwrap();
    let ids: Vec<&str> = v.iter().map(|p| p.distribution()).collect();
    assert_eq!(ids, ["ESITE000003", "EONE0000001"]);

    let e = cloudfront::open_with(
        &auto("nope.example.net"),
        &ctx(None, ""),
        creds(),
        CALL_TIMEOUT,
    )
    .await
    .unwrap_err();
    assert_eq!(e.kind, ErrorKind::Config, "{e}");
    let text = e.shown();
    for want in [
        "nope.example.net",
        "`EONE0000001`",
        "one.example.com",
        "*.example.org",
    ] {
        assert!(text.contains(want), "missing {want}: {text}");
    }
    assert!(e.hint().is_some(), "{e:?}");
}

#[tokio::test]
async fn the_url_prefix_follows_the_origin_path() {
    let fake = FakeCloudFront::start(FakeOptions::default()).await;
    fake.add_distribution(FakeDistribution::s3("EPATH000001", "b", "/site"));
    fake.add_distribution(FakeDistribution::s3("EROOT000002", "b", ""));
    let open = |id: &str, extra: Value, bucket: Option<&'static str>, prefix: &'static str| {
        let c = cfg(&fake.url, &[id], extra);
        async move {
            cloudfront::open_with(&c, &ctx(bucket, prefix), creds(), CALL_TIMEOUT)
                .await
                .map(|mut v| v.remove(0))
        }
    };
    let prefix = |r: Result<CloudFront, CdnError>| r.unwrap().url_prefix().map(str::to_string);
    assert_eq!(
        prefix(open("EPATH000001", json!({}), Some("b"), "site/").await).as_deref(),
        Some("/")
    );
    assert_eq!(
        prefix(open("EPATH000001", json!({}), Some("b"), "site/en/").await).as_deref(),
        Some("/en/")
    );
    assert_eq!(
        prefix(open("EROOT000002", json!({}), Some("b"), "site/").await).as_deref(),
        Some("/site/")
    );
    assert_eq!(
        prefix(open("EROOT000002", json!({}), Some("b"), "").await).as_deref(),
        Some("/")
    );
    assert_eq!(
        prefix(open("EROOT000002", json!({}), None, "site/").await),
        None,
        "no bucket: the config decides"
    );
    let set = json!({ "url-prefix": "static" });
    assert_eq!(
        prefix(open("EPATH000001", set, Some("b"), "other/").await).as_deref(),
        Some("/static/"),
        "url-prefix wins"
    );

    let e = open("EPATH000001", json!({}), Some("b"), "other/")
        .await
        .unwrap_err();
    assert_eq!(e.kind, ErrorKind::Config);
    assert!(e.to_string().contains("serves only `s3://b/site/`"), "{e}");
    assert!(e.hint().is_some(), "{e:?}");
    let e = open("EROOT000002", json!({}), Some("other-bucket"), "")
        .await
        .unwrap_err();
    assert!(
        e.to_string()
            .contains("no origin of the distribution serves bucket `other-bucket`"),
        "{e}"
    );
}

#[tokio::test]
async fn errors_are_mapped_to_kinds_with_hints() {
    let fake = fake(FakeOptions {
        tags: true,
        ..Default::default()
    })
    .await;
    let c = cfg(&fake.url, &[DIST], json!({}));
    let p = open_one(&c, &ctx(None, "")).await;
    let one = |path: &str| Batch {
        items: vec![Item::path(path)],
        reference: format!("r-{path}"),
        soft: false,
    };

    // Unknown distribution, by id.
    let e = cloudfront::open_with(
        &cfg(&fake.url, &["ENOPE"], json!({})),
        &ctx(None, ""),
        creds(),
        CALL_TIMEOUT,
    )
    .await
    .unwrap_err();
    assert_eq!(e.kind, ErrorKind::NotFound, "{e}");
    assert!(
        e.to_string().contains("ENOPE")
            && e.to_string().contains("NoSuchDistribution")
            && e.hint.is_some(),
        "{e}"
    );
    let e = cloudfront::open_with(
        &cfg(&fake.url, &["E-bad id"], json!({})),
        &ctx(None, ""),
        creds(),
        CALL_TIMEOUT,
    )
    .await
    .unwrap_err();
    assert_eq!(e.kind, ErrorKind::Config, "{e}");

    // Scripted service errors.
    for (status, code, kind) in [
        (413, "BatchTooLarge", ErrorKind::BatchTooLarge),
        (
            400,
            "TooManyInvalidationsInProgress",
            ErrorKind::TooManyInProgress,
        ),
        (400, "Throttling", ErrorKind::Throttled),
        (403, "AccessDenied", ErrorKind::Unauthorized),
        (403, "InvalidClientTokenId", ErrorKind::Unauthorized),
        (404, "NoSuchDistribution", ErrorKind::NotFound),
        (500, "InternalError", ErrorKind::Transient),
        (502, "", ErrorKind::Transient),
        (400, "InvalidArgument", ErrorKind::Invalid),
    ] {
        fake.fail_next("CreateInvalidation", status, code, 1);
        let e = p.purge(&one("/e.html")).await.unwrap_err();
        assert_eq!(e.kind, kind, "{code}: {e}");
        assert_eq!(e.provider, format!("cloudfront:{DIST}"));
        if !code.is_empty() {
            assert!(e.message.contains(code), "{e}");
        }
        if kind == ErrorKind::Unauthorized {
            assert!(
                e.hint.as_deref().is_some_and(|h| h.contains("credentials")),
                "{e}"
            );
        }
    }
    fake.deny_access(true);
    let e = p.status("I000000000001").await.unwrap_err();
    assert_eq!(e.kind, ErrorKind::Unauthorized, "{e}");
    fake.deny_access(false);

    // The fake's own validation (a path our renderer would never send) and unknown invalidations.
    let e = p.status("INOPE").await.unwrap_err();
    assert_eq!(e.kind, ErrorKind::NotFound, "{e}");

    // Refused before any request: mid-path `*`, no leading `/`, tags while not enabled, hosts.
    let before = fake.calls("CreateInvalidation").len();
    for bad in [
        Item::path("/a/*/b"),
        Item::path("/a*"),
        Item::path("rel.html"),
        Item::tag("t"),
        Item::host("x.example.com"),
    ] {
        let b = Batch {
            items: vec![bad.clone()],
            reference: "bad".into(),
            soft: false,
        };
        let e = p.purge(&b).await.unwrap_err();
        assert_eq!(e.kind, ErrorKind::Invalid, "{bad:?}: {e}");
        assert!(
            e.message.contains(&format!("`{bad}`")),
            "names the item: {e}"
        );
    }
    assert_eq!(fake.calls("CreateInvalidation").len(), before);

    // Tags when enabled.
    let tagged = open_one(
        &cfg(&fake.url, &[DIST], json!({ "tags": true })),
        &ctx(None, ""),
    )
    .await;
    assert!(tagged.capabilities().tags);
    tagged
        .purge(&Batch {
            items: vec![Item::tag("product-7")],
            reference: "tag-1".into(),
            soft: false,
        })
        .await
        .unwrap();
    assert_eq!(
        fake.invalidations(DIST).last().unwrap().paths,
        ["#product-7"]
    );

    // Nothing listens: transient.
    let dead = {
        let l = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
        format!("http://{}", l.local_addr().unwrap())
    };
    let e = cloudfront::open_with(
        &cfg(&dead, &[DIST], json!({})),
        &ctx(None, ""),
        creds(),
        CALL_TIMEOUT,
    )
    .await
    .unwrap_err();
    assert_eq!(e.kind, ErrorKind::Transient, "{e}");
    assert!(e.retryable());
    assert!(
        e.message.contains("Connection refused") && !e.message.contains("DispatchFailure {"),
        "one readable line: {e}"
    );

    // No credentials at all.
    let none = Credentials::from_provider(
        Arc::new(NoCredentials),
        staleguard_aws::Source::InstanceMetadata,
    );
    let e = cloudfront::open_with(&c, &ctx(None, ""), none, CALL_TIMEOUT)
        .await
        .unwrap_err();
    assert_eq!(e.kind, ErrorKind::Unauthorized, "{e}");
    assert!(e.hint.is_some(), "{e}");
    assert!(!format!("{e:?}").contains(SECRET));
}

#[tokio::test]
async fn the_provider_retries_nothing_itself() {
    let fake = fake(FakeOptions::default()).await;
    let p = open_one(&cfg(&fake.url, &[DIST], json!({})), &ctx(None, "")).await;
    fake.fail_next("CreateInvalidation", 503, "ServiceUnavailable", 1);
    let b = Batch {
        items: vec![Item::path("/x")],
        reference: "once".into(),
        soft: false,
    };
    assert_eq!(p.purge(&b).await.unwrap_err().kind, ErrorKind::Transient);
    assert_eq!(
        fake.calls("CreateInvalidation").len(),
        1,
        "the SDK's own retries are off"
    );
    // Through Retry it goes through.
    let r = Retry::new(&p).with_policy(RetryPolicy {
        base: Duration::from_millis(10),
        jitter: false,
        ..Default::default()
    });
    fake.fail_next("CreateInvalidation", 503, "ServiceUnavailable", 1);
    r.purge(&b).await.unwrap();
    assert_eq!(fake.calls("CreateInvalidation").len(), 3);
}

// ---------------------------------------------------------------------------------------------------
// (b) against a real moto server

/// A credential provider that has none, as the instance metadata service answers off EC2.
#[derive(Debug)]
struct NoCredentials;

#[async_trait]
impl object_store::CredentialProvider for NoCredentials {
    type Credential = staleguard_aws::AwsCredential;
    async fn get_credential(&self) -> object_store::Result<Arc<staleguard_aws::AwsCredential>> {
        Err(object_store::Error::Generic {
            store: "test",
            source: "error sending request: connection refused (169.254.169.254)".into(),
        })
    }
}

#[tokio::test]
async fn moto_happy_path_by_id_and_by_alias() {
    let moto = Moto::start();
    let id = moto.create_distribution("site", "", "www.moto.example");
    let other = moto.create_distribution("elsewhere", "", "other.moto.example");
    assert_ne!(id, other);

    // By id: the origin is the bucket, no origin path.
    let p = open_one(
        &cfg(&moto.url, &[&id], json!({})),
        &ctx(Some("site"), "app/"),
    )
    .await;
    // CloudFront's free paths are counted per account: the distribution's ARN names it.
    assert_eq!(p.free_tier_scope(), Some("cloudfront-account:123456789012"));
    assert_eq!(p.distribution(), id);
    assert_eq!(p.url_prefix(), Some("/app/"));
    assert!(
        p.domain_name().ends_with(".cloudfront.net"),
        "{}",
        p.domain_name()
    );

    // By alias.
    let auto = open_one(
        &cfg(
            &moto.url,
            &["auto"],
            json!({ "domain": "www.moto.example" }),
        ),
        &ctx(Some("site"), ""),
    )
    .await;
    assert_eq!(auto.distribution(), id);
    assert_eq!(auto.url_prefix(), Some("/"));

    // Purge: moto answers COMPLETED at once (upper case) and that is Completed.
    let items = vec![Item::path("/index.html"), Item::path("/a b.html")];
    let receipt = p
        .purge(&Batch {
            items,
            reference: "moto-1".into(),
            soft: false,
        })
        .await
        .unwrap();
    assert_eq!(receipt.status, Status::Completed, "{receipt:?}");
    assert_eq!(receipt.items, 2);
    let inv = receipt.id.clone().expect("an invalidation id");
    assert_eq!(p.status(&inv).await.unwrap(), Status::Completed);

    // Through the wrappers: nothing to wait for.
    let (o, _) = opts(Duration::from_secs(30));
    let report = run(
        &p,
        vec![Item::prefix("/assets/"), Item::all()],
        "moto-2",
        &o,
        true,
    )
    .await
    .unwrap();
    assert!(report.in_progress().is_empty());

    let listed = p.list(10).await.unwrap();
    assert_eq!(listed.len(), 2, "{listed:?}");
    let first = listed
        .iter()
        .find(|i| i.id == inv)
        .expect("the first invalidation is listed");
    assert_eq!(first.status, Status::Completed);
    assert_eq!(first.reference.as_deref(), Some("moto-1"));
    assert_eq!(first.items, ["/index.html", "/a%20b.html"]);
    assert!(first.created.is_some());
    assert!(
        listed.iter().any(|i| i.items == ["/*"]),
        "purge-everything went out as /*: {listed:?}"
    );

    // Unknown ids.
    let e = cloudfront::open_with(
        &cfg(&moto.url, &["ENOPE12345"], json!({})),
        &ctx(None, ""),
        creds(),
        CALL_TIMEOUT,
    )
    .await
    .unwrap_err();
    assert_eq!(e.kind, ErrorKind::NotFound, "{e}");
    assert!(e.to_string().contains("ENOPE12345"), "{e}");
    assert!(e.hint.is_some());
    let e = p.status("NOPE").await.unwrap_err();
    assert_eq!(e.kind, ErrorKind::NotFound, "{e}");

    // auto with a domain no distribution has: the error lists what it saw.
    let e = cloudfront::open_with(
        &cfg(&moto.url, &["auto"], json!({ "domain": "nope.example" })),
        &ctx(None, ""),
        creds(),
        CALL_TIMEOUT,
    )
    .await
    .unwrap_err();
    assert_eq!(e.kind, ErrorKind::Config);
    assert!(
        e.to_string().contains(&id) && e.to_string().contains("other.moto.example"),
        "{e}"
    );
}
