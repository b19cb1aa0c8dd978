//! The verify / warm / notify engine against in-process axum servers playing the CDN (edges that serve
//! the old bytes for a while, edges that never converge, two nodes of which one is stale, an edge whose
//! brotli variant is stale behind a fresh identity one, encoded bodies and decompression bombs) and a
//! Slack-compatible webhook receiver.

use std::collections::HashMap;
use std::io::Write as _;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use axum::Router;
use axum::body::{Body, Bytes};
use axum::extract::State;
use axum::http::{HeaderMap, StatusCode, Uri};
use axum::response::Response;
use axum::routing::post;
use serde_json::{Value, json};
use sha2::Digest as _;
use staleguard_check::notify;
use staleguard_check::probe;
use staleguard_check::verify::{self, Expect, Target, VerifyOptions};
use staleguard_check::warm::{self, WarmOptions};
use staleguard_core::event::{Event, Observer};
use tokio::time::Instant;

// ---------------------------------------------------------------------------------------------------
// A fake CDN: per path, a script of replies (the last one repeats), a log of requests, and the
// largest number of requests it had in flight at once.

#[derive(Clone)]
struct Reply {
    status: u16,
    headers: Vec<(&'static str, String)>,
    body: Bytes,
}

impl Reply {
    fn ok(body: impl Into<Bytes>) -> Reply {
        Reply {
            status: 200,
            headers: Vec::new(),
            body: body.into(),
        }
    }

    fn status(mut self, s: u16) -> Reply {
        self.status = s;
        self
    }

    fn header(mut self, name: &'static str, value: impl Into<String>) -> Reply {
        self.headers.push((name, value.into()));
        self
    }
}

#[derive(Debug, Clone)]
struct Hit {
    path: String,
    accept_encoding: Option<String>,
    host: Option<String>,
    cache_control: Option<String>,
}

struct Fake {
    routes: Mutex<HashMap<String, (Vec<Reply>, usize)>>,
    log: Mutex<Vec<Hit>>,
    inflight: AtomicUsize,
    max_inflight: AtomicUsize,
    delay: Duration,
}

impl Fake {
    fn new(delay: Duration) -> Arc<Fake> {
        Arc::new(Fake {
            routes: Mutex::new(HashMap::new()),
            log: Mutex::new(Vec::new()),
            inflight: AtomicUsize::new(0),
            max_inflight: AtomicUsize::new(0),
            delay,
        })
    }

    fn route(&self, path: &str, replies: Vec<Reply>) {
        self.routes
            .lock()
            .unwrap()
            .insert(path.to_string(), (replies, 0));
    }

    fn hits(&self) -> Vec<Hit> {
        self.log.lock().unwrap().clone()
    }

    fn requests_for(&self, path: &str) -> usize {
        self.hits().iter().filter(|h| h.path == path).count()
    }
}

async fn handle(State(f): State<Arc<Fake>>, uri: Uri, headers: HeaderMap) -> Response {
    let now = f.inflight.fetch_add(1, Ordering::SeqCst) + 1;
    f.max_inflight.fetch_max(now, Ordering::SeqCst);
    let text = |n: &str| {
        headers
            .get(n)
            .and_then(|v| v.to_str().ok())
            .map(String::from)
    };
    let path = uri
        .path_and_query()
        .map(|p| p.as_str().to_string())
        .unwrap_or_default();
    f.log.lock().unwrap().push(Hit {
        path: path.clone(),
        accept_encoding: text("accept-encoding"),
        host: text("host"),
        cache_control: text("cache-control"),
    });
    if !f.delay.is_zero() {
        tokio::time::sleep(f.delay).await;
    }
    let reply = {
        let mut routes = f.routes.lock().unwrap();
        routes.get_mut(&path).map(|(replies, served)| {
            let r = replies[(*served).min(replies.len() - 1)].clone();
            *served += 1;
            r
        })
    };
    f.inflight.fetch_sub(1, Ordering::SeqCst);
    let reply = reply.unwrap_or_else(|| Reply::ok("not found").status(404));
    let mut b = Response::builder().status(reply.status);
    for (n, v) in &reply.headers {
        b = b.header(*n, v);
    }
    b.body(Body::from(reply.body)).unwrap()
}

/// Serves `fake` on a fresh loopback port; returns the base URL.
async fn serve(fake: Arc<Fake>) -> String {
    let app = Router::new().fallback(handle).with_state(fake);
    serve_router(app).await
}

async fn serve_router(app: Router) -> String {
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    tokio::spawn(async move { axum::serve(listener, app).await.unwrap() });
    format!("http://{addr}")
}

fn b3(bytes: &[u8]) -> String {
    blake3::hash(bytes).to_hex().to_string()
}

fn sha256(bytes: &[u8]) -> String {
    sha2::Sha256::digest(bytes)
        .iter()
        .map(|b| format!("{b:02x}"))
        .collect()
}

fn gzip(bytes: &[u8]) -> Vec<u8> {
    let mut e = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::default());
    e.write_all(bytes).unwrap();
    e.finish().unwrap()
}

/// `deflate` as RFC 9110 means it: zlib-wrapped.
fn zlib(bytes: &[u8]) -> Vec<u8> {
    let mut e = flate2::write::ZlibEncoder::new(Vec::new(), flate2::Compression::default());
    e.write_all(bytes).unwrap();
    e.finish().unwrap()
}

/// `deflate` as some servers send it: raw.
fn raw_deflate(bytes: &[u8]) -> Vec<u8> {
    let mut e = flate2::write::DeflateEncoder::new(Vec::new(), flate2::Compression::default());
    e.write_all(bytes).unwrap();
    e.finish().unwrap()
}

fn br(bytes: &[u8]) -> Vec<u8> {
    let mut out = Vec::new();
    {
        let mut e = brotli::CompressorWriter::new(&mut out, 4096, 5, 22);
        e.write_all(bytes).unwrap();
    }
    out
}

fn zst(bytes: &[u8]) -> Vec<u8> {
    zstd::stream::encode_all(bytes, 3).unwrap()
}

const BROWSER: &str = "gzip, deflate, br, zstd";

fn only(encoding: &str) -> Vec<String> {
    vec![encoding.to_string()]
}

/// An observer that keeps every event, and what it kept.
fn recorded() -> (Observer, Arc<Mutex<Vec<Event>>>) {
    let events: Arc<Mutex<Vec<Event>>> = Arc::default();
    let kept = events.clone();
    (
        Arc::new(move |e: &Event| kept.lock().unwrap().push(e.clone())),
        events,
    )
}

/// Fast retries, a deadline `secs` from now.
fn opts(bases: Vec<String>, secs: f64) -> VerifyOptions {
    VerifyOptions::new(bases, Instant::now() + Duration::from_secs_f64(secs))
        .with_retry(Duration::from_millis(20), Duration::from_millis(100))
        .with_request_timeout(Duration::from_secs(2))
}

const OLD: &[u8] = b"body { color: red }";
const NEW: &[u8] = b"body { color: blue }";

fn stale(body: &[u8]) -> Reply {
    Reply::ok(body.to_vec())
        .header("age", "120")
        .header("x-cache", "HIT")
        .header("cache-control", "public, max-age=0, s-maxage=300")
        .header("etag", "\"old\"")
}

// ---------------------------------------------------------------------------------------------------
// verify

#[tokio::test]
async fn passes_after_the_edge_converges() {
    let fake = Fake::new(Duration::ZERO);
    let mut script = vec![stale(OLD); 3];
    script.push(
        Reply::ok(NEW.to_vec())
            .header("age", "0")
            .header("x-cache", "MISS"),
    );
    fake.route("/app.css", script);
    let base = serve(fake.clone()).await;
    let targets =
        [Target::new("/app.css", Expect::Blake3(b3(NEW).to_uppercase())).with_label("app.css")];
    // one encoding: the script of replies is the path's, whatever the Accept-Encoding
    let (observer, events) = recorded();
    let o = opts(vec![base.clone()], 5.0)
        .with_encodings(only("identity"))
        .with_observer(observer);
    let report = verify::verify(&targets, &o).await;
    assert!(report.ok, "{report:#?}");
    assert_eq!(report.stale, 0);
    assert_eq!(report.checks.len(), 1);
    // one event per re-check: what was seen, and a pause of 20 ms doubling up to 100 ms, plus up to 50 %
    let rechecks: Vec<(u32, Option<String>, Duration)> = events
        .lock()
        .unwrap()
        .iter()
        .filter_map(|e| match e {
            Event::Rechecking {
                attempt,
                got,
                after,
                path,
                encoding,
                ..
            } => {
                assert_eq!((path.as_str(), encoding.as_str()), ("/app.css", "identity"));
                Some((*attempt, got.clone(), *after))
            }
            _ => None,
        })
        .collect();
    assert_eq!(rechecks.len(), 3, "{rechecks:?}");
    for (n, (attempt, got, after)) in rechecks.into_iter().enumerate() {
        assert_eq!(attempt, n as u32 + 1);
        assert_eq!(got.as_deref(), Some(b3(OLD).as_str()));
        let ceiling =
            (Duration::from_millis(20) * 2u32.pow(n as u32)).min(Duration::from_millis(100));
        assert!(
            after >= ceiling && after <= ceiling.mul_f64(1.5),
            "{after:?} after attempt {attempt}"
        );
    }
    let c = &report.checks[0];
    assert_eq!(c.encoding, "identity");
    assert_eq!(c.seen.content_encoding, None);
    assert_eq!(c.attempts, 4);
    assert_eq!(c.label.as_deref(), Some("app.css"));
    assert_eq!(c.seen.got.as_deref(), Some(b3(NEW).as_str()));
    assert_eq!(c.seen.x_cache.as_deref(), Some("MISS"));
    assert_eq!(c.seen.age.as_deref(), Some("0"));
    assert_eq!(c.error, None);
    for h in fake.hits() {
        // what users see: no cache busting
        assert_eq!(h.accept_encoding.as_deref(), Some("identity"));
        assert_eq!(h.cache_control, None);
        assert_eq!(h.path, "/app.css");
    }
    let json = serde_json::to_value(&report).unwrap();
    assert_eq!(json["checks"][0]["attempts"], 4);
    assert!(json["seconds"].is_f64());
}

#[tokio::test]
async fn fails_at_the_deadline_naming_what_it_saw() {
    let fake = Fake::new(Duration::ZERO);
    fake.route("/index.html", vec![stale(OLD)]);
    let base = serve(fake.clone()).await;
    let targets = [Target::new("/index.html", Expect::Blake3(b3(NEW)))];
    let started = std::time::Instant::now();
    let report = verify::verify(&targets, &opts(vec![base.clone()], 0.6)).await;
    let took = started.elapsed();
    assert!(
        took >= Duration::from_millis(550) && took < Duration::from_secs(3),
        "{took:?}"
    );
    assert!(!report.ok);
    // once per default encoding: what browsers send, then identity
    assert_eq!(report.stale, 2);
    let encodings: Vec<&str> = report.stale_checks().map(|c| c.encoding.as_str()).collect();
    assert_eq!(encodings, vec![BROWSER, "identity"]);
    assert_eq!(
        verify::default_encodings(),
        vec![BROWSER.to_string(), "identity".to_string()]
    );
    for c in report.stale_checks() {
        assert_eq!(
            (c.base.as_str(), c.path.as_str()),
            (base.as_str(), "/index.html")
        );
        assert!(c.attempts > 2, "{c:#?}");
        assert_eq!(c.expected, format!("blake3 {}", b3(NEW)));
        assert_eq!(c.seen.got.as_deref(), Some(b3(OLD).as_str()));
        assert_eq!(c.seen.status, Some(200));
        assert_eq!(c.seen.age.as_deref(), Some("120"));
        assert_eq!(c.seen.x_cache.as_deref(), Some("HIT"));
        assert_eq!(c.seen.etag.as_deref(), Some("\"old\""));
        assert_eq!(
            c.seen.cache_control.as_deref(),
            Some("public, max-age=0, s-maxage=300")
        );
        assert_eq!(c.seen.content_encoding, None);
        assert_eq!(c.error, None, "other content is not an error");
    }
    let attempts: u32 = report.checks.iter().map(|c| c.attempts).sum();
    assert_eq!(fake.requests_for("/index.html") as u32, attempts);
    for enc in [BROWSER, "identity"] {
        let sent = fake
            .hits()
            .iter()
            .filter(|h| h.accept_encoding.as_deref() == Some(enc))
            .count() as u32;
        let c = report.checks.iter().find(|c| c.encoding == enc).unwrap();
        assert_eq!(sent, c.attempts, "{enc}");
    }
}

#[tokio::test]
async fn only_the_stale_node_fails() {
    let fresh = Fake::new(Duration::ZERO);
    let stale_node = Fake::new(Duration::ZERO);
    for f in [&fresh, &stale_node] {
        f.route("/about/", vec![Reply::ok("about v2")]);
    }
    fresh.route("/", vec![Reply::ok(NEW.to_vec())]);
    stale_node.route("/", vec![stale(OLD)]);
    let (a, b) = (serve(fresh).await, serve(stale_node).await);
    let targets = [
        Target::new("/about/", Expect::Blake3(b3(b"about v2"))),
        Target::new("/", Expect::Blake3(b3(NEW))),
    ];
    let report = verify::verify(&targets, &opts(vec![b.clone(), a.clone()], 0.4)).await;
    assert_eq!(report.checks.len(), 2 * 2 * 2);
    // sorted by base, then path, then encoding
    let order: Vec<(String, String, String)> = report
        .checks
        .iter()
        .map(|c| (c.base.clone(), c.path.clone(), c.encoding.clone()))
        .collect();
    let mut sorted = order.clone();
    sorted.sort();
    sorted.dedup();
    assert_eq!(order, sorted);
    let failed: Vec<(&str, &str, &str)> = report
        .stale_checks()
        .map(|c| (c.base.as_str(), c.path.as_str(), c.encoding.as_str()))
        .collect();
    assert_eq!(
        failed,
        vec![(b.as_str(), "/", BROWSER), (b.as_str(), "/", "identity")]
    );
    assert_eq!(report.stale, 2);
    assert!(!report.ok);
    assert!(
        report
            .checks
            .iter()
            .filter(|c| c.ok)
            .all(|c| c.attempts == 1)
    );
}

#[tokio::test]
async fn version_endpoint() {
    let fake = Fake::new(Duration::ZERO);
    fake.route(
        "/.well-known/staleguard/version",
        vec![
            Reply::ok(json!({"version": "d41"}).to_string()),
            Reply::ok(json!({"version": "d42", "deployed": 1}).to_string()),
        ],
    );
    fake.route("/v-num", vec![Reply::ok(r#"{"version": 7}"#)]);
    fake.route("/not-json", vec![Reply::ok("<html>")]);
    let base = serve(fake).await;
    let targets = [
        Target::new(
            "/.well-known/staleguard/version",
            Expect::Version("d42".into()),
        ),
        Target::new("/v-num", Expect::Version("7".into())),
        Target::new("/not-json", Expect::Version("d42".into())),
    ];
    let report = verify::verify(&targets, &opts(vec![base], 0.3)).await;
    let by = |p: &str| {
        let checks: Vec<_> = report.checks.iter().filter(|c| c.path == p).collect();
        assert_eq!(checks.len(), 2, "once per encoding: {checks:#?}");
        checks
    };
    let v = by("/.well-known/staleguard/version");
    // the first answer (d41) went to one of the two checks, which asked again
    let attempts: u32 = v.iter().map(|c| c.attempts).sum();
    assert_eq!(attempts, 3, "{v:#?}");
    for c in &v {
        assert!(c.ok, "{c:#?}");
        assert_eq!(c.expected, "version d42");
        assert_eq!(c.seen.got.as_deref(), Some("d42"));
    }
    assert!(by("/v-num").iter().all(|c| c.ok));
    for bad in by("/not-json") {
        assert!(!bad.ok);
        assert!(
            bad.error.as_deref().unwrap().contains("not JSON"),
            "{bad:#?}"
        );
    }
}

#[tokio::test]
async fn sha256_for_a_download_alias() {
    let fake = Fake::new(Duration::ZERO);
    let v2 = vec![7u8; 100_000];
    fake.route("/download/app-latest.tar.gz", vec![Reply::ok(v2.clone())]);
    fake.route("/download/app-latest.zip", vec![Reply::ok(vec![1u8; 10])]);
    let base = serve(fake).await;
    let targets = [
        Target::new("/download/app-latest.tar.gz", Expect::Sha256(sha256(&v2))),
        Target::new(
            "/download/app-latest.zip",
            Expect::Sha256(sha256(b"something else")),
        ),
    ];
    let report = verify::verify(&targets, &opts(vec![base], 0.2)).await;
    assert_eq!(report.checks.len(), 4);
    // sorted by path: the .tar.gz checks first
    for c in &report.checks[..2] {
        assert!(c.ok, "{report:#?}");
        assert_eq!(c.seen.got.as_deref(), Some(sha256(&v2).as_str()));
    }
    for c in &report.checks[2..] {
        assert!(!c.ok);
        assert_eq!(c.seen.got.as_deref(), Some(sha256(&[1u8; 10]).as_str()));
        assert!(c.expected.starts_with("sha256 "));
    }
}

#[tokio::test]
async fn assert_status_and_contains() {
    let fake = Fake::new(Duration::ZERO);
    // "needle" straddles the two halves when hyper splits the body; a large body makes that likely
    let mut big = vec![b'x'; 300_000];
    big.extend_from_slice(b"needle");
    big.extend(vec![b'y'; 300_000]);
    fake.route("/", vec![Reply::ok("<h1>Welcome to v2</h1>")]);
    fake.route("/big", vec![Reply::ok(big)]);
    fake.route("/healthz", vec![Reply::ok("ok")]);
    fake.route(
        "/old",
        vec![Reply::ok("").status(301).header("location", "/new")],
    );
    let base = serve(fake).await;
    let a = |status: Option<u16>, contains: Option<&str>| Expect::Assert {
        status,
        contains: contains.map(String::from),
    };
    let cases = [
        ("/", a(Some(200), Some("Welcome to v2")), true),
        ("/", a(None, Some("Welcome to v3")), false),
        ("/big", a(None, Some("needle")), true),
        ("/healthz", a(None, None), true),
        ("/missing", a(Some(404), None), true),
        ("/missing", a(None, None), false),
        ("/old", a(Some(301), None), true),
    ];
    let targets: Vec<Target> = cases
        .iter()
        .map(|(p, e, _)| Target::new(*p, e.clone()))
        .collect();
    let report = verify::verify(&targets, &opts(vec![base.clone()], 0.2)).await;
    for (p, e, ok) in &cases {
        let checks: Vec<_> = report
            .checks
            .iter()
            .filter(|c| c.path == *p && c.expected == e.describe())
            .collect();
        // a body search once per encoding, a status-only check once (with the first encoding)
        let reads_body = matches!(
            e,
            Expect::Assert {
                contains: Some(_),
                ..
            }
        );
        let want: &[&str] = if reads_body {
            &[BROWSER, "identity"]
        } else {
            &[BROWSER]
        };
        let encodings: Vec<&str> = checks.iter().map(|c| c.encoding.as_str()).collect();
        assert_eq!(encodings, want, "{p} {e:?}");
        for c in checks {
            assert_eq!(c.ok, *ok, "{c:#?}");
        }
    }
    let misses: Vec<_> = report
        .checks
        .iter()
        .filter(|c| c.path == "/" && !c.ok)
        .collect();
    assert_eq!(misses.len(), 2);
    for miss in misses {
        assert_eq!(miss.expected, "status 2xx + contains \"Welcome to v3\"");
        assert_eq!(
            miss.seen.got.as_deref(),
            Some("status 200, body without \"Welcome to v3\"")
        );
    }

    // a hash check follows no redirect and says so
    let report = verify::verify(
        &[Target::new("/old", Expect::Blake3(b3(b"")))],
        &opts(vec![base], 0.1),
    )
    .await;
    assert_eq!(report.checks.len(), 2);
    for c in &report.checks {
        let e = c.error.as_deref().unwrap();
        assert!(e.contains("status 301") && e.contains("redirect"), "{e}");
    }
}

#[tokio::test]
async fn concurrency_is_bounded() {
    let fake = Fake::new(Duration::from_millis(40));
    let mut targets = Vec::new();
    for i in 0..12 {
        let p = format!("/p{i}.html");
        fake.route(&p, vec![Reply::ok(format!("page {i}"))]);
        targets.push(Target::new(
            p,
            Expect::Blake3(b3(format!("page {i}").as_bytes())),
        ));
    }
    let (a, b) = (serve(fake.clone()).await, serve(fake.clone()).await);
    let report = verify::verify(&targets, &opts(vec![a, b], 5.0).with_concurrency(3)).await;
    assert!(report.ok, "{report:#?}");
    assert_eq!(report.checks.len(), 12 * 2 * 2);
    let max = fake.max_inflight.load(Ordering::SeqCst);
    assert!((2..=3).contains(&max), "max in flight {max}");
}

#[tokio::test]
async fn a_big_body_is_hashed_while_streaming() {
    let fake = Fake::new(Duration::ZERO);
    let big: Vec<u8> = (0..12 * 1024 * 1024u32)
        .map(|i| (i.wrapping_mul(2_654_435_761) >> 13) as u8)
        .collect();
    let (want_b3, want_sha) = (b3(&big), sha256(&big));
    fake.route("/download/app-2.0.bin", vec![Reply::ok(big)]);
    let base = serve(fake).await;
    let targets = [
        Target::new("/download/app-2.0.bin", Expect::Blake3(want_b3.clone())),
        Target::new("/download/app-2.0.bin", Expect::Sha256(want_sha)),
    ];
    let report = verify::verify(&targets, &opts(vec![base], 10.0)).await;
    assert!(report.ok, "{report:#?}");
    assert!(report.checks.iter().all(|c| c.attempts == 1));
}

#[tokio::test]
async fn a_stale_brotli_variant_behind_a_fresh_identity_one() {
    // What Varnish does: one cached object per Accept-Encoding (Vary). The purge reached the identity
    // variant; browsers still get the old brotli one, for a while.
    struct Edge {
        /// Brotli answers that are stale before the variant converges.
        stale_br: usize,
        br_served: AtomicUsize,
        seen: Mutex<Vec<Option<String>>>,
    }
    async fn edge(State(e): State<Arc<Edge>>, headers: HeaderMap) -> Response {
        let accept = headers
            .get("accept-encoding")
            .and_then(|v| v.to_str().ok())
            .map(String::from);
        e.seen.lock().unwrap().push(accept.clone());
        let wants_br = accept
            .as_deref()
            .is_some_and(|a| a.split(',').any(|c| c.trim() == "br"));
        let b = Response::builder()
            .header("vary", "Accept-Encoding")
            .header("content-type", "text/css");
        if !wants_br {
            return b.header("x-cache", "MISS").body(Body::from(NEW)).unwrap();
        }
        let stale = e.br_served.fetch_add(1, Ordering::SeqCst) < e.stale_br;
        b.header("content-encoding", "br")
            .header("x-cache", if stale { "HIT" } else { "MISS" })
            .body(Body::from(br(if stale { OLD } else { NEW })))
            .unwrap()
    }
    let edge_of = |stale_br| {
        Arc::new(Edge {
            stale_br,
            br_served: AtomicUsize::new(0),
            seen: Mutex::new(Vec::new()),
        })
    };
    let (stale_edge, converging_edge) = (edge_of(usize::MAX), edge_of(3));
    let router = |e: &Arc<Edge>| Router::new().fallback(edge).with_state(e.clone());
    let (a, b) = (
        serve_router(router(&stale_edge)).await,
        serve_router(router(&converging_edge)).await,
    );
    let targets = [Target::new("/app.css", Expect::Blake3(b3(NEW))).with_label("app.css")];
    let report = verify::verify(&targets, &opts(vec![a.clone(), b.clone()], 0.8)).await;
    assert_eq!(report.checks.len(), 4);
    let check = |base: &str, enc: &str| {
        report
            .checks
            .iter()
            .find(|c| c.base == base && c.encoding == enc)
            .unwrap()
    };
    // the stale node: identity passes, brotli fails and the report says which variant
    let fresh = check(&a, "identity");
    assert!(fresh.ok && fresh.attempts == 1, "{fresh:#?}");
    assert_eq!(fresh.seen.content_encoding, None);
    let stale = check(&a, BROWSER);
    assert!(!stale.ok, "{stale:#?}");
    assert_eq!(stale.seen.content_encoding.as_deref(), Some("br"));
    assert_eq!(stale.seen.got.as_deref(), Some(b3(OLD).as_str()));
    assert_eq!(stale.seen.x_cache.as_deref(), Some("HIT"));
    assert_eq!(stale.error, None, "other content is not an error");
    assert!(stale.attempts > 2, "{stale:#?}");
    assert_eq!(
        report
            .stale_checks()
            .map(|c| (c.base.as_str(), c.encoding.as_str()))
            .collect::<Vec<_>>(),
        vec![(a.as_str(), BROWSER)]
    );
    assert_eq!(report.stale, 1);
    // the other node's brotli variant converged after 3 stale answers, decoded and hashed
    let converged = check(&b, BROWSER);
    assert!(converged.ok && converged.attempts == 4, "{converged:#?}");
    assert_eq!(converged.seen.content_encoding.as_deref(), Some("br"));
    assert_eq!(converged.seen.got.as_deref(), Some(b3(NEW).as_str()));
    assert!(check(&b, "identity").ok);
    // every request asked as a browser or as curl does
    for e in [&stale_edge, &converging_edge] {
        let seen = e.seen.lock().unwrap();
        assert!(seen.contains(&Some(BROWSER.into())));
        assert!(seen.contains(&Some("identity".into())));
        assert!(
            seen.iter()
                .all(|s| matches!(s.as_deref(), Some(BROWSER) | Some("identity")))
        );
    }
}

#[tokio::test]
async fn every_content_encoding_is_decoded() {
    let fake = Fake::new(Duration::ZERO);
    // large enough to come in many chunks; text-like so it compresses
    let page: Vec<u8> = (0..600_000u32)
        .map(|i| b"<p>staleguard decodes what users get</p>\n"[(i % 41) as usize])
        .collect();
    let mut page = page;
    page.extend_from_slice(b"<footer>build d42</footer>");
    let routes: [(&str, &str, Vec<u8>); 7] = [
        ("/gzip", "gzip", gzip(&page)),
        ("/x-gzip", "x-gzip", gzip(&page)),
        ("/zlib", "deflate", zlib(&page)),
        ("/raw-deflate", "deflate", raw_deflate(&page)),
        ("/br", "br", br(&page)),
        ("/zstd", "zstd", zst(&page)),
        ("/identity", "identity", page.clone()),
    ];
    for (p, enc, body) in &routes {
        assert!(*enc == "identity" || body.len() < page.len() / 10);
        fake.route(
            p,
            vec![Reply::ok(body.clone()).header("content-encoding", *enc)],
        );
    }
    let version = json!({"version": "d42"}).to_string();
    fake.route(
        "/version-gzip",
        vec![Reply::ok(gzip(version.as_bytes())).header("content-encoding", "gzip")],
    );
    fake.route(
        "/version-zstd",
        vec![Reply::ok(zst(version.as_bytes())).header("content-encoding", "zstd")],
    );
    let base = serve(fake).await;
    let mut targets = Vec::new();
    for (p, _, _) in &routes {
        targets.push(Target::new(*p, Expect::Blake3(b3(&page))));
        targets.push(Target::new(*p, Expect::Sha256(sha256(&page))));
        targets.push(Target::new(
            *p,
            Expect::Assert {
                status: Some(200),
                contains: Some("<footer>build d42</footer>".into()),
            },
        ));
    }
    for p in ["/version-gzip", "/version-zstd"] {
        targets.push(Target::new(p, Expect::Version("d42".into())));
    }
    // the fake serves the same coding whatever was asked: ask as a browser only
    let o = opts(vec![base], 5.0).with_encodings(only(BROWSER));
    let report = verify::verify(&targets, &o).await;
    assert!(report.ok, "{report:#?}");
    assert_eq!(report.checks.len(), 7 * 3 + 2);
    for c in &report.checks {
        assert_eq!(c.attempts, 1, "{c:#?}");
        assert_eq!(c.encoding, BROWSER);
        let served = routes
            .iter()
            .find(|(p, _, _)| *p == c.path)
            .map(|(_, e, _)| *e);
        if let Some(served) = served {
            assert_eq!(c.seen.content_encoding.as_deref(), Some(served));
        }
    }
    let b = report
        .checks
        .iter()
        .find(|c| c.path == "/zstd" && c.expected.starts_with("blake3"))
        .unwrap();
    assert_eq!(b.seen.got.as_deref(), Some(b3(&page).as_str()));
}

#[tokio::test]
async fn an_unoffered_or_unknown_encoding_fails_clearly() {
    let fake = Fake::new(Duration::ZERO);
    fake.route(
        "/app.js",
        vec![Reply::ok(br(NEW)).header("content-encoding", "br")],
    );
    fake.route(
        "/app.css",
        vec![Reply::ok(zst(NEW)).header("content-encoding", "zstd")],
    );
    fake.route(
        "/stacked",
        vec![Reply::ok(br(&gzip(NEW))).header("content-encoding", "gzip, br")],
    );
    fake.route(
        "/compress",
        vec![Reply::ok(NEW.to_vec()).header("content-encoding", "compress")],
    );
    let base = serve(fake).await;
    let run = |path: &'static str, encoding: &'static str| {
        let base = base.clone();
        async move {
            let o = opts(vec![base], 0.1).with_encodings(only(encoding));
            let report = verify::verify(&[Target::new(path, Expect::Blake3(b3(NEW)))], &o).await;
            let c = report.checks.into_iter().next().unwrap();
            assert!(!c.ok, "{c:#?}");
            assert_eq!(c.encoding, encoding);
            c.error.unwrap()
        }
    };
    assert_eq!(
        run("/app.js", "identity").await,
        "served Content-Encoding br to Accept-Encoding: identity"
    );
    assert_eq!(
        run("/app.css", "gzip, deflate, br").await,
        "served Content-Encoding zstd to Accept-Encoding: gzip, deflate, br"
    );
    assert_eq!(
        run("/app.js", "").await,
        "served Content-Encoding br to a request without Accept-Encoding"
    );
    assert_eq!(
        run("/stacked", "*").await,
        "served stacked Content-Encoding gzip, br; one coding at most is decoded"
    );
    let e = run("/compress", "*").await;
    assert!(
        e.contains("Content-Encoding compress") && e.contains("not decoded"),
        "{e}"
    );
    // and offered, it decodes
    let o = opts(vec![base], 0.5).with_encodings(only("br;q=1, zstd;q=0.5"));
    let report = verify::verify(
        &[
            Target::new("/app.js", Expect::Blake3(b3(NEW))),
            Target::new("/app.css", Expect::Blake3(b3(NEW))),
        ],
        &o,
    )
    .await;
    assert!(report.ok, "{report:#?}");
}

#[tokio::test]
async fn a_corrupt_encoded_body_names_its_encoding() {
    let fake = Fake::new(Duration::ZERO);
    let good = gzip(NEW);
    let truncated = good[..good.len() - 6].to_vec();
    fake.route(
        "/truncated.css",
        vec![Reply::ok(truncated).header("content-encoding", "gzip")],
    );
    fake.route(
        "/garbage.css",
        vec![Reply::ok(b"definitely not brotli".to_vec()).header("content-encoding", "br")],
    );
    let base = serve(fake).await;
    let o = opts(vec![base], 0.1).with_encodings(only(BROWSER));
    let report = verify::verify(
        &[
            Target::new("/truncated.css", Expect::Blake3(b3(NEW))),
            Target::new("/garbage.css", Expect::Blake3(b3(NEW))),
        ],
        &o,
    )
    .await;
    let error = |p: &str| {
        let c = report.checks.iter().find(|c| c.path == p).unwrap();
        assert!(!c.ok && c.seen.got.is_none(), "{c:#?}");
        c.error.clone().unwrap()
    };
    let e = error("/truncated.css");
    assert!(e.starts_with("the gzip body is corrupt"), "{e}");
    let e = error("/garbage.css");
    assert!(e.starts_with("the br body is corrupt"), "{e}");
}

#[tokio::test]
async fn a_decompression_bomb_is_cut_at_the_limit() {
    let fake = Fake::new(Duration::ZERO);
    let zeros = vec![0u8; 8 << 20];
    let (gz, zs) = (gzip(&zeros), zst(&zeros));
    assert!(gz.len() < 64 << 10 && zs.len() < 64 << 10);
    fake.route(
        "/bomb.gz",
        vec![Reply::ok(gz).header("content-encoding", "gzip")],
    );
    fake.route(
        "/bomb.zst",
        vec![Reply::ok(zs).header("content-encoding", "zstd")],
    );
    let base = serve(fake.clone()).await;
    let targets = [
        Target::new("/bomb.gz", Expect::Blake3(b3(&zeros))),
        Target::new(
            "/bomb.zst",
            Expect::Assert {
                status: None,
                contains: Some("never there".into()),
            },
        ),
    ];
    let o = opts(vec![base.clone()], 0.1)
        .with_encodings(only(BROWSER))
        .with_max_body(4 << 20);
    assert_eq!(
        VerifyOptions::new(vec![], Instant::now()).max_body,
        verify::MAX_BODY
    );
    let report = verify::verify(&targets, &o).await;
    assert_eq!(report.stale, 2, "{report:#?}");
    let error = |p: &str| {
        let c = report.checks.iter().find(|c| c.path == p).unwrap();
        c.error.clone().unwrap()
    };
    assert_eq!(
        error("/bomb.gz"),
        "the gzip body decodes to more than the 4194304 bytes checked"
    );
    assert_eq!(
        error("/bomb.zst"),
        "the zstd body decodes to more than the 4194304 bytes checked"
    );
    // within the limit it is only a large file
    let o = opts(vec![base], 5.0)
        .with_encodings(only(BROWSER))
        .with_max_body(8 << 20);
    let report = verify::verify(&targets[..1], &o).await;
    assert!(report.ok, "{report:#?}");
}

#[tokio::test]
async fn encodings_are_sent_as_configured() {
    let fake = Fake::new(Duration::ZERO);
    fake.route("/", vec![Reply::ok(NEW.to_vec())]);
    fake.route("/healthz", vec![Reply::ok("ok")]);
    let base = serve(fake.clone()).await;
    let o = opts(vec![base], 2.0)
        .with_encodings(vec![String::new(), "br".into(), String::new()])
        // replaced by each encoding
        .with_header("Accept-Encoding", "compress");
    let report = verify::verify(
        &[
            Target::new("/", Expect::Blake3(b3(NEW))),
            Target::new(
                "/healthz",
                Expect::Assert {
                    status: Some(200),
                    contains: None,
                },
            ),
        ],
        &o,
    )
    .await;
    assert!(report.ok, "{report:#?}");
    let keys: Vec<(&str, &str)> = report
        .checks
        .iter()
        .map(|c| (c.path.as_str(), c.encoding.as_str()))
        .collect();
    assert_eq!(keys, vec![("/", ""), ("/", "br"), ("/healthz", "")]);
    let mut sent: Vec<(String, Option<String>)> = fake
        .hits()
        .into_iter()
        .map(|h| (h.path, h.accept_encoding))
        .collect();
    sent.sort();
    assert_eq!(
        sent,
        vec![
            ("/".into(), None),
            ("/".into(), Some("br".into())),
            ("/healthz".into(), None)
        ]
    );
    // an empty list is one check without Accept-Encoding
    let report = verify::verify(
        &[Target::new("/", Expect::Blake3(b3(NEW)))],
        &opts(vec![report.checks[0].base.clone()], 1.0).with_encodings(Vec::new()),
    )
    .await;
    assert!(report.ok && report.checks.len() == 1 && report.checks[0].encoding.is_empty());
    let bad = verify::verify(
        &[Target::new("/", Expect::Blake3(b3(NEW)))],
        &opts(vec![report.checks[0].base.clone()], 1.0).with_encodings(only("br\n")),
    )
    .await;
    assert_eq!(bad.checks[0].attempts, 0);
    assert!(
        bad.checks[0]
            .error
            .as_deref()
            .unwrap()
            .contains("not a header value")
    );
}

#[tokio::test]
async fn host_override_headers_and_unreachable_bases() {
    let fake = Fake::new(Duration::ZERO);
    fake.route("/a%20b.css?v=1", vec![Reply::ok(NEW.to_vec())]);
    let base = serve(fake.clone()).await;
    // a port nobody listens on
    let dead = {
        let l = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
        format!("http://{}", l.local_addr().unwrap())
    };
    let o = opts(vec![base.clone(), dead.clone()], 0.3)
        .with_host("www.example.com")
        .with_header("authorization", "Bearer staging-s3cret");
    let report = verify::verify(
        &[Target::new("/a%20b.css?v=1", Expect::Blake3(b3(NEW)))],
        &o,
    )
    .await;
    let ok = report.checks.iter().find(|c| c.base == base).unwrap();
    assert!(ok.ok, "{ok:#?}");
    let h = &fake.hits()[0];
    assert_eq!(h.host.as_deref(), Some("www.example.com"));
    assert_eq!(h.path, "/a%20b.css?v=1");
    let bad = report.checks.iter().find(|c| c.base == dead).unwrap();
    assert!(!bad.ok && bad.attempts > 1, "{bad:#?}");
    assert_eq!(bad.seen.status, None);
    let e = bad.error.as_deref().unwrap();
    assert!(e.contains("connect"), "{e}");
    assert!(!format!("{o:?}").contains("s3cret"));

    // what no answer can meet is not requested, nor retried
    let before = fake.hits().len();
    let report = verify::verify(
        &[Target::new("/x", Expect::Blake3("not-hex".into()))],
        &opts(vec![base.clone()], 1.0),
    )
    .await;
    assert_eq!(report.checks[0].attempts, 0);
    assert!(report.checks[0].error.as_deref().unwrap().contains("hex"));
    let bad_base = verify::verify(
        &[Target::new("/x", Expect::Version("1".into()))],
        &opts(vec!["not a url".into()], 1.0),
    )
    .await;
    assert!(!bad_base.ok);
    assert!(
        bad_base.checks[0]
            .error
            .as_deref()
            .unwrap()
            .contains("not a URL")
    );
    assert_eq!(fake.hits().len(), before);
}

#[tokio::test]
async fn credentials_in_a_base_are_used_not_reported() {
    let fake = Fake::new(Duration::ZERO);
    fake.route("/", vec![Reply::ok("hi")]);
    let base = serve(fake).await;
    let with_auth = base.replace("http://", "http://staging:pa55@");
    let report = verify::verify(
        &[Target::new("/", Expect::Blake3(b3(b"hi")))],
        &opts(vec![with_auth.clone()], 0.5),
    )
    .await;
    assert!(report.ok, "{report:#?}");
    assert_eq!(
        report.checks[0].base,
        base.replace("http://", "http://staging:…@")
    );
    let w = warm::warm(
        &["/".to_string()],
        &WarmOptions::new(vec![with_auth], Instant::now() + Duration::from_secs(2)),
    )
    .await;
    assert!(
        w.iter().all(|r| r.ok() && !r.base.contains("pa55")),
        "{w:#?}"
    );
}

#[tokio::test]
async fn nothing_to_check_is_ok() {
    let report = verify::verify(&[], &opts(vec!["http://127.0.0.1:9".into()], 0.1)).await;
    assert!(report.ok && report.checks.is_empty());
}

// ---------------------------------------------------------------------------------------------------
// warm

#[tokio::test]
async fn warm_requests_every_base_path_and_encoding_once() {
    let fake = Fake::new(Duration::from_millis(30));
    let paths: Vec<String> = ["/", "/about/", "/app.3f2a9c1b7e4d.css"]
        .iter()
        .map(|p| p.to_string())
        .collect();
    for p in &paths {
        fake.route(
            p,
            vec![Reply::ok(vec![b'a'; 5000]).header("x-cache", "MISS")],
        );
    }
    let (a, b) = (serve(fake.clone()).await, serve(fake.clone()).await);
    let o = WarmOptions::new(
        vec![a.clone(), b.clone()],
        Instant::now() + Duration::from_secs(5),
    )
    .with_concurrency(2)
    .with_host("www.example.com");
    assert_eq!(o.encodings, warm::default_encodings());
    let results = warm::warm(&paths, &o).await;
    assert_eq!(results.len(), 2 * 3 * 2);
    let keys: Vec<(String, String, String)> = results
        .iter()
        .map(|r| (r.base.clone(), r.path.clone(), r.encoding.clone()))
        .collect();
    let mut sorted = keys.clone();
    sorted.sort();
    sorted.dedup();
    assert_eq!(keys, sorted, "sorted, each once");
    for r in &results {
        assert!(r.ok(), "{r:#?}");
        assert_eq!(r.bytes, 5000);
        assert_eq!(r.x_cache.as_deref(), Some("MISS"));
    }
    let hits = fake.hits();
    assert_eq!(hits.len(), 12);
    for p in &paths {
        for enc in warm::default_encodings() {
            let n = hits
                .iter()
                .filter(|h| &h.path == p && h.accept_encoding.as_deref() == Some(enc.as_str()))
                .count();
            assert_eq!(n, 2, "{p} {enc}: once per base");
        }
    }
    assert!(
        hits.iter()
            .all(|h| h.host.as_deref() == Some("www.example.com"))
    );
    let max = fake.max_inflight.load(Ordering::SeqCst);
    assert!((1..=2).contains(&max), "max in flight {max}");
}

#[tokio::test]
async fn warm_reports_failures_and_stops_at_the_deadline() {
    let fake = Fake::new(Duration::from_millis(300));
    fake.route("/slow", vec![Reply::ok("x")]);
    let base = serve(fake.clone()).await;
    let o = WarmOptions::new(vec![base], Instant::now() + Duration::from_millis(100))
        .with_encodings(vec![String::new()])
        .with_concurrency(1);
    let results = warm::warm(&["/slow".to_string(), "/missing".to_string()], &o).await;
    assert_eq!(results.len(), 2);
    assert!(results.iter().all(|r| !r.ok()));
    assert!(
        results
            .iter()
            .any(|r| r.error.as_deref().is_some_and(|e| e.contains("deadline"))),
        "{results:#?}"
    );
    assert!(fake.hits().iter().all(|h| h.accept_encoding.is_none()));
}

// ---------------------------------------------------------------------------------------------------
// notify

const HOOK: &str = "/services/T000/B000/s3cr3t-t0ken";

/// What the webhook receiver got: Content-Type and the JSON body.
type Received = Arc<Mutex<Vec<(Option<String>, Value)>>>;

#[tokio::test]
async fn notify_posts_json_to_the_webhook() {
    let got: Received = Arc::default();
    let app = Router::new()
        .route(
            HOOK,
            post(
                |State(got): State<Received>, headers: HeaderMap, body: Bytes| async move {
                    let ct = headers
                        .get("content-type")
                        .and_then(|v| v.to_str().ok())
                        .map(String::from);
                    let v: Value = serde_json::from_slice(&body).unwrap_or(Value::Null);
                    got.lock().unwrap().push((ct, v));
                    "ok"
                },
            ),
        )
        .with_state(got.clone());
    let base = serve_router(app).await;
    let fields = vec![
        ("Deploy".to_string(), "d42".to_string()),
        ("Stale".to_string(), "0".to_string()),
    ];
    let payload = notify::slack_payload(
        ":white_check_mark: deployed *d42*",
        &fields,
        &json!({"ok": true, "stale": 0}),
    );
    notify::post(&format!("{base}{HOOK}"), &payload, Duration::from_secs(2))
        .await
        .unwrap();
    let got = got.lock().unwrap();
    assert_eq!(got.len(), 1);
    let (ct, v) = &got[0];
    assert_eq!(ct.as_deref(), Some("application/json"));
    assert_eq!(v["text"], ":white_check_mark: deployed *d42*");
    assert_eq!(v["blocks"][0]["type"], "section");
    assert_eq!(v["blocks"][0]["text"]["type"], "mrkdwn");
    assert_eq!(v["blocks"][1]["fields"][0]["text"], "*Deploy*\nd42");
    assert_eq!(v["blocks"][1]["fields"].as_array().unwrap().len(), 2);
    assert_eq!(v["staleguard"]["stale"], 0);
}

#[tokio::test]
async fn notify_errors_name_the_status_never_the_token() {
    let app = Router::new().route(
        HOOK,
        post(|| async {
            (
                StatusCode::INTERNAL_SERVER_ERROR,
                format!("invalid_token for {HOOK} {}", "z".repeat(2000)),
            )
        }),
    );
    let base = serve_router(app).await;
    let e = notify::post(
        &format!("{base}{HOOK}"),
        &json!({"text": "x"}),
        Duration::from_secs(2),
    )
    .await
    .unwrap_err();
    assert!(e.contains("500"), "{e}");
    assert!(e.contains(&base), "shows scheme and host: {e}");
    assert!(!e.contains("s3cr3t") && !e.contains("/services"), "{e}");
    assert!(e.len() < 600, "body truncated: {}", e.len());

    let dead = {
        let l = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
        format!("http://{}", l.local_addr().unwrap())
    };
    let e = notify::post(
        &format!("{dead}{HOOK}"),
        &json!({"text": "x"}),
        Duration::from_secs(2),
    )
    .await
    .unwrap_err();
    assert!(e.contains(&dead), "{e}");
    assert!(!e.contains("s3cr3t") && !e.contains("services"), "{e}");
}

// ---------------------------------------------------------------------------------------------------
// probe

fn version(v: &str) -> Reply {
    Reply::ok(json!({ "version": v }).to_string()).header("content-type", "application/json")
}

#[tokio::test]
async fn probe_waits_until_the_origin_reports_the_version() {
    let fake = Fake::new(Duration::ZERO);
    fake.route(
        "/version.json",
        vec![version("v1"), Reply::ok("busy").status(503), version("v2")],
    );
    let url = format!("{}/version.json", serve(fake.clone()).await);
    let (observer, events) = recorded();
    let deadline = std::time::Instant::now() + Duration::from_secs(30);
    probe::wait_version_observed(&url, "v2", deadline, Some(&observer))
        .await
        .unwrap();
    assert_eq!(fake.requests_for("/version.json"), 3);
    let waits: Vec<(String, Duration)> = events
        .lock()
        .unwrap()
        .iter()
        .filter_map(|e| match e {
            Event::OriginWaiting {
                url: u,
                seen,
                after,
            } => {
                assert_eq!(u, &url);
                Some((seen.clone(), *after))
            }
            _ => None,
        })
        .collect();
    assert_eq!(
        waits,
        [
            ("version `v1`".to_string(), Duration::from_millis(100)),
            (
                "status 503 Service Unavailable".to_string(),
                Duration::from_millis(200)
            ),
        ]
    );
}

#[tokio::test]
async fn probe_fails_at_the_deadline_with_what_it_saw_and_a_hint() {
    let fake = Fake::new(Duration::ZERO);
    fake.route("/version.json", vec![version("v1")]);
    let base = serve(fake.clone()).await;
    let url = format!(
        "{}/version.json",
        base.replace("http://", "http://u:secret@")
    );
    let deadline = std::time::Instant::now() + Duration::from_millis(300);
    let e = probe::wait_version(&url, "v2", deadline).await.unwrap_err();
    assert_eq!(e.last, Ok("v1".to_string()));
    let shown = format!("{}/version.json", base.replace("http://", "http://u:…@"));
    assert_eq!(
        e.error.message(),
        format!(
            "`{shown}` still reports version `v1`, not the deployed version `v2`; the CDNs were not purged (they would re-cache the old content)"
        )
    );
    assert!(
        e.error
            .hint()
            .is_some_and(|h| h.contains("staleguard invalidate"))
    );
    assert!(fake.requests_for("/version.json") >= 2);
}
