//! A real nginx (Debian's, with the brotli_static module) serving a configuration snippet, from
//! `scripts/peers/nginx.sh`, which `scripts/test.sh` installs: one per [`Nginx::start`], stopped by
//! PID when dropped (or by the script's watchdog once this process exits).

use std::path::Path;

use crate::peer::{Kind, Peer};

/// The nginx peer's script and names.
pub static KIND: Kind = Kind {
    name: "nginx",
    script: "scripts/peers/nginx.sh",
    prefix: "NGINX",
    hint: "install it with `sudo scripts/peers/nginx.sh install` (Debian's nginx and \
           libnginx-mod-http-brotli-static; scripts/test.sh does it)",
};

/// One nginx, stopped when dropped.
#[derive(Debug)]
pub struct Nginx {
    /// `http://127.0.0.1:PORT`.
    pub url: String,
    /// Held for its `Drop`, which stops the server.
    _peer: Peer,
}

impl Nginx {
    /// nginx with `snippet` included in its `http {}` block; the snippet listens on `port`
    /// (pick one with [`free_port`]).
    pub fn start(snippet: &Path, port: u16) -> Nginx {
        let mut start = KIND.command();
        start
            .arg("start")
            .arg(snippet)
            .arg(port.to_string())
            .env("NGINX_WATCH_PID", std::process::id().to_string());
        let peer = Peer::start(&KIND, start);
        Nginx {
            url: peer.url.clone(),
            _peer: peer,
        }
    }
}

/// A free port on 127.0.0.1 (free when this returns; the caller binds it soon after).
pub fn free_port() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0")
        .and_then(|l| l.local_addr())
        .map(|a| a.port())
        .expect("a free loopback port")
}
