//! A CDN node for the end-to-end tests: real Varnish with the project's VCL, real Varnish with the VCL
//! `staleguard cdn-config --target varnish` generates from the test's own config, or `staleguard edge`
//! (the real binary), in front of an origin. The same tests run against all three: they speak one
//! purge protocol, so `[[cdn]] provider = "varnish"` (or its alias `edge`) purges each unchanged.

use std::path::Path;
use std::process::Child;

use staleguard_testkit::varnish::Varnish;

use crate::support::{spawn_listening, staleguard};

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Kind {
    Varnish,
    /// Varnish with the VCL generated from the config in the test's folder.
    GeneratedVcl,
    Edge,
}

impl Kind {
    /// The `[[cdn]] provider` value for this node.
    pub fn provider(self) -> &'static str {
        match self {
            Kind::Varnish | Kind::GeneratedVcl => "varnish",
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

/// A node of `kind` caching `origin` (`http://HOST:PORT`), for the project in `dir` (whose config
/// and build a generated VCL comes from).
pub fn start(kind: Kind, origin: &str, dir: &Path) -> Node {
    match kind {
        Kind::GeneratedVcl => {
            let vcl = generate_vcl(dir, origin, "generated.vcl", &[]);
            let v = Varnish::start_with(origin, Some(&vcl));
            Node {
                url: v.url.clone(),
                _guard: Guard::Varnish(v),
            }
        }
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

/// `staleguard cdn-config --target varnish --origin ORIGIN -o DIR/NAME EXTRA…` in `dir`; the VCL's path.
pub fn generate_vcl(dir: &Path, origin: &str, name: &str, extra: &[&str]) -> std::path::PathBuf {
    let vcl = dir.join(name);
    let mut c = staleguard(dir);
    c.args([
        "cdn-config",
        "--target",
        "varnish",
        "--origin",
        origin,
        "-o",
    ])
    .arg(&vcl)
    .args(extra);
    let o = crate::support::run(c);
    assert!(
        o.status.success(),
        "cdn-config --target varnish failed: {}",
        crate::support::stderr(&o)
    );
    vcl
}
