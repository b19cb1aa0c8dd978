//! Property test of the edge through HTTP, on a clock moved by hand: random sequences of requests
//! (four URLs, five `Accept-Encoding` values), clock moves, origin edits, changes of `Cache-Control`,
//! purges and origin outages. Every response is checked against what the origin did:
//!
//! - a `HIT` is an entry the origin sent (or revalidated) less than its lifetime ago, and after the
//!   URL's last purge;
//! - a `STALE` is within the lifetime plus `stale-while-revalidate` (or, while the origin fails, plus
//!   `stale-if-error`), never for a response that forbids stale, never after a purge;
//! - the body is always the variant of the request's own `Accept-Encoding` (never another's);
//! - every other answer (`MISS`, `REVALIDATED`) reached the origin.

use std::collections::HashMap;
use std::convert::Infallible;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, Mutex};

use bytes::Bytes;
use http_body_util::Full;
use hyper::server::conn::http1;
use hyper::service::service_fn;
use hyper::{Request, Response};
use hyper_util::rt::TokioIo;
use proptest::prelude::*;
use staleguard_edge::{Clock, EdgeOptions, EdgeServer, vary};

const SPECS: [&str; 8] = [
    "max-age=1",
    "max-age=2, stale-while-revalidate=2",
    "no-cache",
    "max-age=0, s-maxage=3",
    "max-age=1, stale-if-error=5",
    "no-store",
    "private, max-age=5",
    "max-age=3, must-revalidate, stale-while-revalidate=9",
];
const ENCODINGS: [&str; 5] = [
    "br, gzip",
    "gzip, deflate",
    "",
    "zstd, gzip",
    "gzip;q=0.5, br",
];

#[derive(Debug, Clone)]
enum Op {
    Get(usize, usize),
    Advance(u64),
    Edit(usize),
    Spec(usize, usize),
    Purge(usize),
    Down(bool),
}

fn op() -> impl Strategy<Value = Op> {
    prop_oneof![
        6 => (0..4usize, 0..5usize).prop_map(|(p, e)| Op::Get(p, e)),
        3 => (0..2500u64).prop_map(Op::Advance),
        1 => (0..4usize).prop_map(Op::Edit),
        1 => (0..4usize, 0..SPECS.len()).prop_map(|(p, s)| Op::Spec(p, s)),
        1 => (0..4usize).prop_map(Op::Purge),
        1 => any::<bool>().prop_map(Op::Down),
    ]
}

/// One sending (or revalidation): time, `Cache-Control` spec, the origin's request number.
type Sent = (u64, usize, u64);

/// What the origin did: per (path, coding, version), the times it sent or revalidated that
/// representation and with which `Cache-Control`.
#[derive(Default)]
struct Origin {
    version: [u64; 4],
    spec: [usize; 4],
    sent: HashMap<(usize, String, u64), Vec<Sent>>,
    requests: u64,
}

struct World {
    clock: Arc<AtomicU64>,
    down: AtomicBool,
    origin: Mutex<Origin>,
}

fn coding_for(ae: Option<&str>) -> &'static str {
    vary::normalise_accept_encoding(ae)
}

async fn origin_answer(
    w: Arc<World>,
    req: Request<hyper::body::Incoming>,
) -> Response<Full<Bytes>> {
    let path: usize = req
        .uri()
        .path()
        .trim_start_matches("/p")
        .parse()
        .unwrap_or(0);
    let ae = req
        .headers()
        .get("accept-encoding")
        .and_then(|v| v.to_str().ok());
    let coding = coding_for(ae).to_string();
    let now = w.clock.load(Ordering::SeqCst);
    let mut o = w.origin.lock().unwrap();
    o.requests += 1;
    if w.down.load(Ordering::SeqCst) {
        return Response::builder()
            .status(503)
            .body(Full::new(Bytes::from_static(b"down")))
            .unwrap();
    }
    let (version, spec) = (o.version[path], o.spec[path]);
    let etag = format!("\"{path}-{version}-{coding}\"");
    let n = o.requests;
    o.sent
        .entry((path, coding.clone(), version))
        .or_default()
        .push((now, spec, n));
    let inm = req
        .headers()
        .get("if-none-match")
        .and_then(|v| v.to_str().ok());
    let mut b = Response::builder()
        .header("cache-control", SPECS[spec])
        .header("etag", &etag)
        .header("vary", "Accept-Encoding");
    // The body names its coding and is labelled with it (not really compressed: nothing decodes it).
    if coding != "identity" {
        b = b.header("content-encoding", &coding);
    }
    if inm == Some(etag.as_str()) {
        return b.status(304).body(Full::new(Bytes::new())).unwrap();
    }
    b.body(Full::new(Bytes::from(format!(
        "p{path} v{version} {coding}"
    ))))
    .unwrap()
}

/// Lifetime, stale-while-revalidate, stale-if-error (ms) and whether stale is forbidden.
fn windows(spec: usize) -> (u64, u64, u64, bool) {
    let d = staleguard_edge::policy::Directives::parse([SPECS[spec]]);
    let l = d.lifetime(None, None).unwrap_or(0) * 1000;
    let forbid = d.forbids_stale() || d.no_cache;
    (
        l,
        d.stale_while_revalidate.unwrap_or(0) * 1000,
        d.stale_if_error.unwrap_or(0) * 1000,
        forbid,
    )
}

fn run(ops: Vec<Op>) -> Result<(), TestCaseError> {
    let rt = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .unwrap();
    rt.block_on(async move {
        let start = std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .unwrap()
            .as_millis() as u64;
        let w = Arc::new(World {
            clock: Arc::new(AtomicU64::new(start)),
            down: AtomicBool::new(false),
            origin: Mutex::new(Origin::default()),
        });
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let origin_addr = listener.local_addr().unwrap();
        let w2 = w.clone();
        tokio::spawn(async move {
            loop {
                let Ok((s, _)) = listener.accept().await else {
                    return;
                };
                let w = w2.clone();
                tokio::spawn(async move {
                    let svc = service_fn(move |req| {
                        let w = w.clone();
                        async move { Ok::<_, Infallible>(origin_answer(w, req).await) }
                    });
                    let _ = http1::Builder::new()
                        .serve_connection(TokioIo::new(s), svc)
                        .await;
                });
            }
        });
        let mut opts = EdgeOptions::new(format!("http://{origin_addr}"));
        opts.clock = Clock::Manual(w.clock.clone());
        let server = EdgeServer::bind("127.0.0.1:0", opts).await.unwrap();
        let edge_url = format!("http://{}", server.local_addr().unwrap());
        let (stop_tx, stop_rx) = tokio::sync::oneshot::channel::<()>();
        tokio::spawn(server.run(std::time::Duration::from_secs(30), async move {
            let _ = stop_rx.await;
        }));
        let client = reqwest::Client::new();
        let mut purged_at = [0u64; 4];
        for op in ops {
            match op {
                Op::Advance(ms) => {
                    w.clock.fetch_add(ms, Ordering::SeqCst);
                }
                Op::Edit(p) => w.origin.lock().unwrap().version[p] += 1,
                Op::Spec(p, s) => w.origin.lock().unwrap().spec[p] = s,
                Op::Down(d) => w.down.store(d, Ordering::SeqCst),
                Op::Purge(p) => {
                    let r = client
                        .request(
                            reqwest::Method::from_bytes(b"PURGE").unwrap(),
                            format!("{edge_url}/p{p}"),
                        )
                        .send()
                        .await
                        .unwrap();
                    prop_assert_eq!(r.status().as_u16(), 200);
                    purged_at[p] = w.clock.load(Ordering::SeqCst);
                }
                Op::Get(p, e) => {
                    let ae = ENCODINGS[e];
                    let before = w.origin.lock().unwrap().requests;
                    let mut rb = client.get(format!("{edge_url}/p{p}"));
                    if !ae.is_empty() {
                        rb = rb.header("accept-encoding", ae);
                    }
                    let r = rb.send().await.unwrap();
                    let now = w.clock.load(Ordering::SeqCst);
                    let status = r.status().as_u16();
                    let x = r
                        .headers()
                        .get("x-cache")
                        .map(|v| v.to_str().unwrap().to_string())
                        .unwrap_or_default();
                    let body = String::from_utf8(r.bytes().await.unwrap().to_vec()).unwrap();
                    let after = w.origin.lock().unwrap().requests;
                    let want = coding_for((!ae.is_empty()).then_some(ae));
                    if status == 503 {
                        prop_assert!(w.down.load(Ordering::SeqCst), "503 only while down");
                        continue;
                    }
                    prop_assert_eq!(status, 200, "{} {}", x, body);
                    let mut parts = body.split(' ');
                    let (bp, bv, bc) = (
                        parts.next().unwrap(),
                        parts.next().unwrap(),
                        parts.next().unwrap(),
                    );
                    prop_assert_eq!(bp, format!("p{p}"));
                    prop_assert_eq!(bc, want, "another request's variant: {}", body);
                    let version: u64 = bv.trim_start_matches('v').parse().unwrap();
                    match x.as_str() {
                        // (Whether a HIT reached the origin is not checked: an earlier STALE's
                        // background refresh may be counted meanwhile.)
                        "HIT" | "STALE" => {
                            let o = w.origin.lock().unwrap();
                            let events = &o.sent[&(p, want.to_string(), version)];
                            // The entry served predates this request (a background refresh it
                            // started may already be logged).
                            let &(t, spec, _) = events
                                .iter()
                                .rfind(|(t, _, n)| *t <= now && *n <= before)
                                .unwrap();
                            let (life, swr, sie, forbid) = windows(spec);
                            prop_assert!(
                                t >= purged_at[p],
                                "served an entry fetched before its purge"
                            );
                            if x == "HIT" {
                                prop_assert!(
                                    now - t < life,
                                    "HIT past freshness: age {} ≥ {}",
                                    now - t,
                                    life
                                );
                            } else {
                                prop_assert!(!forbid, "stale served for {}", SPECS[spec]);
                                let window = if w.down.load(Ordering::SeqCst) {
                                    swr.max(sie)
                                } else {
                                    swr
                                };
                                prop_assert!(
                                    now - t <= life + window,
                                    "STALE past its window: age {} > {} + {}",
                                    now - t,
                                    life,
                                    window
                                );
                            }
                        }
                        "MISS" | "REVALIDATED" => {
                            prop_assert!(after > before, "{} without an origin request", x);
                        }
                        other => prop_assert!(false, "X-Cache {:?}", other),
                    }
                }
            }
        }
        let _ = stop_tx.send(());
        Ok(())
    })
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 48, ..ProptestConfig::default() })]
    #[test]
    fn never_past_freshness_never_another_variant(ops in proptest::collection::vec(op(), 1..60)) {
        run(ops)?;
    }
}
