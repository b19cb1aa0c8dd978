//! A real memcached server from `scripts/peers/memcached.sh` (Debian's memcached, 64 MB): one per
//! [`Memcached::start`], on a free loopback port, stopped by PID when dropped (or by the script's
//! watchdog once this process exits).

use crate::peer::{Kind, Peer};

/// The memcached peer's script and names.
pub static KIND: Kind = Kind {
    name: "memcached",
    script: "scripts/peers/memcached.sh",
    prefix: "MEMCACHED",
    hint: "install it with `sudo scripts/peers/memcached.sh install` (Debian's memcached)",
};

/// One memcached, stopped when dropped.
#[derive(Debug)]
pub struct Memcached {
    /// `memcached://127.0.0.1:PORT`.
    pub url: String,
    /// `127.0.0.1:PORT`.
    pub addr: String,
    /// Held for its `Drop`, which stops the server.
    _peer: Peer,
}

impl Memcached {
    pub fn start() -> Memcached {
        let mut start = KIND.command();
        start
            .arg("start")
            .env("MEMCACHED_WATCH_PID", std::process::id().to_string());
        let peer = Peer::start(&KIND, start);
        Memcached {
            addr: peer.url.trim_start_matches("memcached://").to_string(),
            url: peer.url.clone(),
            _peer: peer,
        }
    }
}
