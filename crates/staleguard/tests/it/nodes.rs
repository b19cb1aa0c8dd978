//! A CDN node for the end-to-end tests: real Varnish with the project's VCL, or `staleguard edge` (the
//! real binary), in front of an origin. The same tests run against both: the edge speaks the VCL's
//! purge protocol, so `[[cdn]] provider = "edge"` (an alias of `varnish`) purges it unchanged.

use std::process::Child;

use staleguard_testkit::varnish::Varnish;

use crate::support::{spawn_listening, staleguard};

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Kind {
    Varnish,
    Edge,
}

impl Kind {
    /// The `[[cdn]] provider` value for this node.
    pub fn provider(self) -> &'static str {
        match self {
            Kind::Varnish => "varnish",
            Kind::Edge => "edge",
        }
    }
}

/// A running node, stopped when dropped.
pub struct Node {
    pub url: String,
    _guard: Guard,
}

enum Guard {
    Varnish(#[allow(dead_code)] Varnish),
    Edge(Child),
}

impl Drop for Node {
    fn drop(&mut self) {
        if let Guard::Edge(child) = &mut self._guard {
            let _ = child.kill();
            let _ = child.wait();
        }
    }
}

/// A node of `kind` caching `origin` (`http://HOST:PORT`).
pub fn start(kind: Kind, origin: &str) -> Node {
    match kind {
        Kind::Varnish => {
            let v = Varnish::start(origin);
            Node {
                url: v.url.clone(),
                _guard: Guard::Varnish(v),
            }
        }
        Kind::Edge => {
            let mut c = staleguard(&std::env::temp_dir());
            c.args(["edge", "--origin", origin, "--listen", "127.0.0.1:0"]);
            let (child, url) = spawn_listening(c);
            Node {
                url,
                _guard: Guard::Edge(child),
            }
        }
    }
}
