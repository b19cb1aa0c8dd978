//! The Varnish provider against real Varnish nodes (`scripts/peers/varnish.sh`, VCL
//! `scripts/peers/staleguard.vcl`) in front of an in-process origin whose bodies change on every fetch
//! (`/a.html v1`, `v2`, …), cached for an hour and tagged with `xkey: <tag_of(path)> all`. A purge is
//! real when the next fetch through every node is a MISS with a new body. The provider talks to each
//! node through a fault-injecting [`Front`], so the suite's error cases (401, 429 with `Retry-After`,
//! 500, a `Retry-After` past the deadline) run against real nodes too. The conformance suite runs in
//! each mode and with two nodes, and the fault case (600 URLs, every 50th request failing, on two
//! nodes); then the failures: a node down, a node without the VCL.
//! A machine without varnishd fails these tests with the install command; they are never skipped.

use std::collections::HashMap;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};

use async_trait::async_trait;
use axum::Router;
use axum::extract::State;
use axum::http::{Method, StatusCode, Uri};
use axum::response::{IntoResponse, Response};
use serde_json::json;
use staleguard_cdn::varnish::Varnish;
use staleguard_cdn::{Batch, ErrorKind, Item, Provider, RetryUnit};
use staleguard_core::config::CdnConfig;
use staleguard_testkit::varnish::Varnish as Node;

use crate::conformance::{Fault, Fixture, run_fault_case, run_suite, tag_of};
use crate::faulty::{Front, Injected};

/// The origin: GET answers `<path> v<n>` (n counts this path's fetches), cacheable for an hour, tagged.
/// Anything else is 405, like a server that knows nothing of PURGE or BAN.
async fn origin(
    State(count): State<Arc<Mutex<HashMap<String, u64>>>>,
    method: Method,
    uri: Uri,
) -> Response {
    if method != Method::GET && method != Method::HEAD {
        return (StatusCode::METHOD_NOT_ALLOWED, "method not allowed").into_response();
    }
    let path = uri.path_and_query().map_or("/", |p| p.as_str()).to_string();
    let n = {
        let mut c = count.lock().unwrap();
        let n = c.entry(path.clone()).or_default();
        *n += 1;
        *n
    };
    (
        [
            ("cache-control", "public, max-age=3600".to_string()),
            ("xkey", format!("{} all", tag_of(&path))),
        ],
        format!("{path} v{n}"),
    )
        .into_response()
}

/// Starts the origin; returns `127.0.0.1:PORT`.
async fn start_origin() -> String {
    let app = Router::new().fallback(origin).with_state(Arc::default());
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    tokio::spawn(async move { axum::serve(listener, app).await.unwrap() });
    addr.to_string()
}

fn provider(nodes: &[&str], mode: &str, domain: &str) -> Varnish {
    provider_with(nodes, mode, domain, Some(3))
}

fn provider_with(nodes: &[&str], mode: &str, domain: &str, max_items: Option<usize>) -> Varnish {
    let cfg: CdnConfig = serde_json::from_value(json!({
        "provider": "varnish",
        "nodes": nodes,
        "mode": mode,
        "purge-by": if mode == "xkey" { "tags" } else { "paths" },
        "max-items": max_items,
        "domain": domain,
    }))
    .unwrap();
    cfg.check().unwrap();
    Varnish::new(&cfg).unwrap()
}

/// Fetches through every node; remembers the last body each node served for each URL. Faults are
/// injected on the first node's front, when there are fronts.
struct Through {
    nodes: Vec<String>,
    fronts: Vec<Front>,
    host: Option<String>,
    client: reqwest::Client,
    last: Mutex<HashMap<(usize, String), String>>,
    fetches: AtomicU64,
}

impl Through {
    fn new(nodes: &[&str], host: Option<&str>) -> Through {
        Through {
            nodes: nodes.iter().map(|s| s.to_string()).collect(),
            fronts: Vec::new(),
            host: host.map(String::from),
            client: reqwest::Client::new(),
            last: Mutex::default(),
            fetches: AtomicU64::new(0),
        }
    }

    /// (X-Cache, body) of a GET through node `i`.
    async fn get(&self, i: usize, url: &str) -> (String, String) {
        self.fetches.fetch_add(1, Ordering::SeqCst);
        let mut rb = self.client.get(format!("{}{url}", self.nodes[i]));
        if let Some(h) = &self.host {
            rb = rb.header("host", h);
        }
        let r = rb
            .send()
            .await
            .unwrap_or_else(|e| panic!("GET {url} through {}: {e}", self.nodes[i]));
        assert!(
            r.status().is_success(),
            "GET {url} through {}: {}",
            self.nodes[i],
            r.status()
        );
        let x = r
            .headers()
            .get("x-cache")
            .map(|v| v.to_str().unwrap().to_string())
            .unwrap_or_default();
        (x, r.text().await.unwrap())
    }
}

#[async_trait]
impl Fixture for Through {
    async fn prime(&self, urls: &[&str]) {
        for u in urls {
            for i in 0..self.nodes.len() {
                let (_, body) = self.get(i, u).await;
                let (x, again) = self.get(i, u).await;
                assert_eq!(
                    (x.as_str(), &again),
                    ("HIT", &body),
                    "{u} is not cached by {}",
                    self.nodes[i]
                );
                self.last.lock().unwrap().insert((i, u.to_string()), body);
            }
        }
    }

    async fn purged(&self, url: &str) -> bool {
        let mut all = true;
        for i in 0..self.nodes.len() {
            let (x, body) = self.get(i, url).await;
            let before = self
                .last
                .lock()
                .unwrap()
                .insert((i, url.to_string()), body.clone());
            if x != "MISS" || before.as_deref() == Some(body.as_str()) {
                eprintln!(
                    "{url} through {}: {x}, body {body:?} (was {before:?})",
                    self.nodes[i]
                );
                all = false;
            }
        }
        all
    }

    async fn kept(&self, url: &str) -> bool {
        let mut all = true;
        for i in 0..self.nodes.len() {
            let (x, body) = self.get(i, url).await;
            let before = self
                .last
                .lock()
                .unwrap()
                .get(&(i, url.to_string()))
                .cloned();
            if x != "HIT" || before.as_deref() != Some(body.as_str()) {
                eprintln!(
                    "{url} through {}: {x}, body {body:?} (was {before:?})",
                    self.nodes[i]
                );
                all = false;
            }
        }
        all
    }

    fn inject(&self, fault: Fault) -> bool {
        let Some(f) = self.fronts.first() else {
            return false;
        };
        f.inject(Injected::Fault(fault));
        true
    }
}

/// `nodes` Varnish nodes, each behind a front; the provider talks to the fronts, the fixture to the
/// nodes.
async fn behind_fronts(
    nodes: usize,
    mode: &str,
    domain: &str,
    max_items: Option<usize>,
) -> (Vec<Node>, Varnish, Through) {
    let origin = start_origin().await;
    let started: Vec<Node> = (0..nodes).map(|_| Node::start(&origin)).collect();
    let urls: Vec<&str> = started.iter().map(|n| n.url.as_str()).collect();
    let mut fronts = Vec::new();
    for u in &urls {
        fronts.push(Front::start(u).await);
    }
    let via: Vec<&str> = fronts.iter().map(|f| f.url.as_str()).collect();
    let p = provider_with(&via, mode, domain, max_items);
    let mut fx = Through::new(&urls, (!domain.is_empty()).then_some(domain));
    fx.fronts = fronts;
    (started, p, fx)
}

async fn suite(mode: &str, nodes: usize, domain: &str) -> Vec<&'static str> {
    let (_nodes, p, fx) = behind_fronts(nodes, mode, domain, Some(3)).await;
    assert_eq!(
        p.retry_unit(),
        RetryUnit::Request,
        "one request per item and node"
    );
    run_suite(Arc::new(p), &fx).await
}

const ERROR_CASES: [&str; 4] = [
    "unauthorized",
    "throttled",
    "server error",
    "retry-after past the deadline",
];

const PATH_CASES: [&str; 9] = [
    "one path",
    "many paths",
    "prefix",
    "all",
    "refused",
    ERROR_CASES[0],
    ERROR_CASES[1],
    ERROR_CASES[2],
    ERROR_CASES[3],
];

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn varnish_purge_mode_passes_the_conformance_suite() {
    assert_eq!(suite("purge", 1, "").await, PATH_CASES);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn varnish_ban_mode_passes_the_conformance_suite() {
    assert_eq!(suite("ban", 1, "").await, PATH_CASES);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn varnish_xkey_mode_passes_the_conformance_suite() {
    let mut want = vec!["one path", "many paths", "prefix", "tag", "all", "refused"];
    want.extend(ERROR_CASES);
    assert_eq!(suite("xkey", 1, "").await, want);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn two_varnish_nodes_acknowledge_600_urls_with_2_percent_faults() {
    // Default limits: one call of 600 PURGEs per node, 1,200 (node, URL) pairs.
    let (_nodes, p, fx) = behind_fronts(2, "purge", "", None).await;
    let fronts: Vec<&Front> = fx.fronts.iter().collect();
    let run = run_fault_case(Arc::new(p), &fx, &fronts, 600).await;
    assert_eq!(run.calls, 1);
    assert_eq!(
        run.counts.requests,
        2 * 600 + run.counts.faults,
        "one request per (node, URL) pair, and one more per fault"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn two_varnish_nodes_are_both_purged_with_the_site_host() {
    assert_eq!(suite("purge", 2, "www.example.test").await, PATH_CASES);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn encoded_paths_are_purged_and_banned_as_clients_request_them() {
    let origin = start_origin().await;
    let node = Node::start(&origin);
    let fx = Through::new(&[&node.url], None);
    for mode in ["purge", "ban"] {
        let p = provider(&[&node.url], mode, "");
        // What a browser requests for the file `caf\u{e9} (1)+.html`.
        let wire = "/caf%C3%A9%20(1)+.html";
        fx.prime(&[wire, "/caf.html"]).await;
        let b = Batch {
            items: vec![Item::path("/caf\u{e9} (1)+.html")],
            reference: "r".into(),
            soft: false,
        };
        let r = p.purge(&b).await.unwrap();
        assert!(fx.purged(wire).await, "{mode}: {r:?}");
        assert!(fx.kept("/caf.html").await, "{mode}");
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn answers_go_to_the_receipt_and_soft_purge_uses_xkey_softpurge() {
    let origin = start_origin().await;
    let node = Node::start(&origin);
    let fx = Through::new(&[&node.url], None);
    fx.prime(&["/r/a.html", "/r/b.html"]).await;
    let p = provider(&[&node.url], "purge", "");
    let one = |items: Vec<Item>, soft: bool| Batch {
        items,
        reference: "r".into(),
        soft,
    };
    let r = p
        .purge(&one(vec![Item::path("/r/a.html")], false))
        .await
        .unwrap();
    assert_eq!(r.detail, "1 node: Purged /r/a.html");
    let r = p
        .purge(&one(vec![Item::prefix("/r/")], false))
        .await
        .unwrap();
    assert_eq!(r.detail, "1 node: Ban added");

    let x = provider(&[&node.url], "xkey", "");
    fx.prime(&["/r/c.html"]).await;
    let r = x
        .purge(&one(vec![Item::tag(tag_of("/r/c.html"))], true))
        .await
        .unwrap();
    assert_eq!(r.detail, "1 node: Softpurged 1 objects");
    let r = x
        .purge(&one(vec![Item::tag(tag_of("/r/nothing.html"))], false))
        .await
        .unwrap();
    assert_eq!(r.detail, "1 node: Invalidated 0 objects");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_node_down_fails_the_purge_naming_it() {
    let origin = start_origin().await;
    let up = Node::start(&origin);
    let down = Node::start(&origin);
    let down_url = down.url.clone();
    let p = provider(&[&up.url, &down_url], "purge", "");
    drop(down);
    let b = Batch {
        items: vec![Item::path("/x.html"), Item::prefix("/y/")],
        reference: "r".into(),
        soft: false,
    };
    let e = p.purge(&b).await.unwrap_err();
    assert_eq!(e.kind, ErrorKind::Transient, "{e}");
    let text = e.shown();
    assert!(text.contains(&format!("node `{down_url}`")), "{text}");
    assert!(text.contains("cannot reach the node"), "{text}");
    assert!(text.contains("2 of 4 requests failed"), "{text}");
    assert!(
        !text.contains(&format!("`{}`", up.url)),
        "the node that is up is not blamed: {text}"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_node_without_the_vcl_is_refused_with_a_hint() {
    // The origin itself as a "node": it answers 405 to PURGE and BAN.
    let origin = start_origin().await;
    let url = format!("http://{origin}");
    let p = provider(&[&url], "purge", "");
    for item in [Item::path("/a.html"), Item::prefix("/d/")] {
        let b = Batch {
            items: vec![item],
            reference: "r".into(),
            soft: false,
        };
        let e = p.purge(&b).await.unwrap_err();
        assert_eq!(e.kind, ErrorKind::Invalid, "{e}");
        let text = e.shown();
        assert!(text.contains("405 Method Not Allowed"), "{text}");
        assert!(text.contains("scripts/peers/staleguard.vcl"), "{text}");
        assert!(text.contains(&url), "{text}");
    }
}
