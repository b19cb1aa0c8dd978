//! A real Varnish node (with vmod_xkey) in front of a backend, from `scripts/peers/varnish.sh`
//! (VCL `scripts/peers/staleguard.vcl`), which `scripts/test.sh` installs: one per
//! [`Varnish::start`], on free loopback ports, stopped by PID when dropped.

use std::path::Path;

use crate::peer::{Kind, Peer};

/// The Varnish peer's script and names.
pub static KIND: Kind = Kind {
    name: "Varnish",
    script: "scripts/peers/varnish.sh",
    prefix: "VARNISH",
    hint: "install it with `sudo scripts/peers/varnish.sh install` (Debian's varnish and \
           varnish-modules; scripts/test.sh does it)",
};

/// One varnishd, stopped (with its cache process) when dropped.
#[derive(Debug)]
pub struct Varnish {
    /// `http://127.0.0.1:PORT`.
    pub url: String,
    /// Held for its `Drop`, which stops the node.
    _peer: Peer,
}

impl Varnish {
    /// A node caching `backend` (`HOST:PORT`, or a URL `http://HOST:PORT`) with the project's VCL.
    pub fn start(backend: &str) -> Varnish {
        Varnish::start_with(backend, None)
    }

    /// A node rendered from another VCL template (`scripts/peers/varnish.sh` reads `VARNISH_VCL`).
    pub fn start_with(backend: &str, vcl: Option<&Path>) -> Varnish {
        let mut start = KIND.command();
        if let Some(v) = vcl {
            start.env("VARNISH_VCL", v);
        }
        start.args(["start", backend.trim_start_matches("http://")]);
        let peer = Peer::start(&KIND, start);
        Varnish {
            url: peer.url.clone(),
            _peer: peer,
        }
    }
}
