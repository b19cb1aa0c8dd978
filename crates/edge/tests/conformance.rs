//! The caching-semantics conformance suite: the same cases against every kind of HTTP cache node in
//! front of a scripted origin ([`origin`]). A case is a plain `fn(&Kind)` that starts its own origin
//! and node (cases run in parallel); [`suite!`] makes one `#[test]` per case for a node kind.
//!
//! Node kinds: real Varnish with the project's VCL (`scripts/peers/staleguard.vcl`, through
//! `staleguard_testkit::varnish`, which panics with the install hint when Varnish is missing), and
//! `staleguard edge` (in process, on its own runtime). A kind is added with one `suite!` line.
//!
//! Cases assert mostly on what the origin saw (request counts, conditional headers) and the bodies
//! served; `X-Cache` only where it means something for every node (Varnish's VCL says HIT or MISS,
//! the edge also STALE and REVALIDATED). Where a node legitimately differs, the case branches on
//! [`Kind::name`] with a comment saying why; the one recurring difference, Varnish's grace, is
//! [`after_expiry`].
//!
//! (A test crate root's modules resolve beside it, hence the `#[path]`s into `conformance/`.)

#[path = "conformance/client.rs"]
mod client;
#[path = "conformance/collapsing.rs"]
mod collapsing;
#[path = "conformance/freshness.rs"]
mod freshness;
#[path = "conformance/invalidation.rs"]
mod invalidation;
#[path = "conformance/origin.rs"]
mod origin;
#[path = "conformance/responses.rs"]
mod responses;
#[path = "conformance/revalidation.rs"]
mod revalidation;
#[path = "conformance/stale.rs"]
mod stale;
#[path = "conformance/vary.rs"]
mod vary;

use std::time::Duration;

use client::{Client, Got};
use origin::Origin;
use staleguard_testkit::varnish::Varnish;

/// A running cache node, stopped when dropped.
pub trait Node {
    /// The node's base URL, `http://127.0.0.1:PORT`.
    fn url(&self) -> &str;
}

/// A kind of node: its name (what cases branch on) and how to start one in front of an origin
/// (`127.0.0.1:PORT`).
pub struct Kind {
    pub name: &'static str,
    pub start: fn(origin: &str) -> Box<dyn Node>,
}

impl Node for Varnish {
    fn url(&self) -> &str {
        &self.url
    }
}

fn start_varnish(origin: &str) -> Box<dyn Node> {
    Box::new(Varnish::start(origin))
}

/// Varnish 7 with `scripts/peers/staleguard.vcl` (`http_gzip_support` off).
pub static VARNISH: Kind = Kind {
    name: "varnish",
    start: start_varnish,
};

/// `staleguard edge` in this process: its own runtime on a thread, stopped (and the thread joined)
/// when dropped.
struct EdgeNode {
    url: String,
    stop: Option<tokio::sync::oneshot::Sender<()>>,
    thread: Option<std::thread::JoinHandle<()>>,
}

impl Node for EdgeNode {
    fn url(&self) -> &str {
        &self.url
    }
}

impl Drop for EdgeNode {
    fn drop(&mut self) {
        if let Some(s) = self.stop.take() {
            let _ = s.send(());
        }
        if let Some(t) = self.thread.take() {
            let _ = t.join();
        }
    }
}

fn start_edge(origin: &str) -> Box<dyn Node> {
    let origin = format!("http://{origin}");
    let (url_tx, url_rx) = std::sync::mpsc::channel();
    let (stop, stopped) = tokio::sync::oneshot::channel::<()>();
    let thread = std::thread::spawn(move || {
        let rt = tokio::runtime::Builder::new_multi_thread()
            .worker_threads(2)
            .enable_all()
            .build()
            .expect("a runtime");
        rt.block_on(async move {
            let server = staleguard_edge::EdgeServer::bind(
                "127.0.0.1:0",
                staleguard_edge::EdgeOptions::new(origin),
            )
            .await
            .expect("the edge binds a free port");
            url_tx
                .send(format!("http://{}", server.local_addr().unwrap()))
                .unwrap();
            server
                .run(Duration::from_secs(30), async move {
                    let _ = stopped.await;
                })
                .await;
        });
    });
    let url = url_rx.recv().expect("the edge started");
    Box::new(EdgeNode {
        url,
        stop: Some(stop),
        thread: Some(thread),
    })
}

/// `staleguard edge` with its defaults.
pub static EDGE: Kind = Kind {
    name: "edge",
    start: start_edge,
};

/// One case's world: an origin, a node in front of it and a client of the node (dropped in this
/// order: client, node, origin).
pub struct Rig {
    pub client: Client,
    pub node: Box<dyn Node>,
    pub origin: Origin,
}

impl Rig {
    pub fn start(kind: &Kind) -> Rig {
        let origin = Origin::start();
        let node = (kind.start)(origin.host_port());
        Rig {
            client: Client::new(node.url()),
            node,
            origin,
        }
    }

    /// `GET path` through the node.
    pub fn get(&self, path: &str) -> Got {
        self.client.get(path)
    }
}

/// The answer that shows the origin's current state once `path`'s stored object (body `stale`)
/// expired; for objects without `stale-while-revalidate`.
///
/// This is where the nodes differ at expiry. The edge follows RFC 9111 §4.2.4 (no stale response
/// without revalidating unless the response allows it): the first request after expiry reaches
/// the origin before it is answered. Varnish keeps every object `default_grace` (10 s) past its
/// TTL (the VCL leaves `beresp.grace` alone; `stale-while-revalidate` only replaces the value) and
/// serves it from grace while it refreshes it in the background: the first request after expiry
/// gets the stale body and starts the fetch, and the answer is the request after that fetch.
pub fn after_expiry(kind: &Kind, rig: &Rig, path: &str, stale: &str) -> Got {
    let before = rig.origin.count(path);
    let first = rig.get(path);
    if kind.name != "varnish" {
        assert!(
            rig.origin.count(path) > before,
            "{path} expired but was answered without the origin: {first:?}"
        );
        return first;
    }
    // Varnish: served from grace, refreshed in the background.
    assert_eq!(
        (first.status, first.body.as_str()),
        (200, stale),
        "varnish serves {path} from grace after its TTL"
    );
    rig.origin
        .wait_answered(path, before, Duration::from_secs(5));
    // The origin answered the background fetch; let Varnish store it.
    std::thread::sleep(Duration::from_millis(150));
    rig.get(path)
}

/// Sleeps until `since + d`.
pub fn sleep_until(since: std::time::Instant, d: Duration) {
    if let Some(left) = (since + d).checked_duration_since(std::time::Instant::now()) {
        std::thread::sleep(left);
    }
}

/// One `#[test]` per case for the node kind `$kind`, in module `$mod`.
macro_rules! suite {
    ($mod:ident, $kind:expr) => {
        mod $mod {
            use super::*;

            #[test]
            fn ttl() {
                freshness::ttl(&$kind)
            }
            #[test]
            fn s_maxage() {
                freshness::s_maxage(&$kind)
            }
            #[test]
            fn no_store_and_private() {
                freshness::no_store_and_private(&$kind)
            }
            #[test]
            fn revalidate_etag() {
                revalidation::etag(&$kind)
            }
            #[test]
            fn revalidate_last_modified() {
                revalidation::last_modified(&$kind)
            }
            #[test]
            fn stale_while_revalidate() {
                stale::while_revalidate(&$kind)
            }
            #[test]
            fn stale_if_error_closed() {
                stale::if_error_closed(&$kind)
            }
            #[test]
            fn stale_if_error_503() {
                stale::if_error_503(&$kind)
            }
            #[test]
            fn vary_encoding() {
                vary::encoding(&$kind)
            }
            #[test]
            fn purge() {
                invalidation::purge(&$kind)
            }
            #[test]
            fn ban() {
                invalidation::ban(&$kind)
            }
            #[test]
            fn xkey_purge() {
                invalidation::xkey_purge(&$kind)
            }
            #[test]
            fn xkey_softpurge() {
                invalidation::xkey_softpurge(&$kind)
            }
            #[test]
            fn collapsing() {
                collapsing::thousand_misses(&$kind)
            }
            #[test]
            fn head_after_get() {
                responses::head_after_get(&$kind)
            }
            #[test]
            fn not_found_cached() {
                responses::not_found_cached(&$kind)
            }
        }
    };
}

suite!(varnish, VARNISH);
suite!(edge, EDGE);
