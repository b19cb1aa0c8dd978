//! A real Redis server from `scripts/peers/redis.sh` (Debian's redis-server, no persistence): one per
//! [`Redis::start`], on a free loopback port, stopped by PID when dropped (or by the script's watchdog
//! once this process exits).

use crate::peer::{Kind, Peer};

/// The Redis peer's script and names.
pub static KIND: Kind = Kind {
    name: "Redis",
    script: "scripts/peers/redis.sh",
    prefix: "REDIS",
    hint: "install it with `sudo scripts/peers/redis.sh install` (Debian's redis-server)",
};

/// One redis-server, stopped when dropped.
#[derive(Debug)]
pub struct Redis {
    /// `redis://127.0.0.1:PORT`.
    pub url: String,
    /// Held for its `Drop`, which stops the server.
    _peer: Peer,
}

impl Redis {
    /// A server without a password.
    pub fn start() -> Redis {
        Redis::start_with(None)
    }

    /// A server that requires `password` (`requirepass`), when given.
    pub fn start_with(password: Option<&str>) -> Redis {
        let mut start = KIND.command();
        start
            .arg("start")
            .env("REDIS_WATCH_PID", std::process::id().to_string());
        match password {
            Some(p) => start.env("REDIS_PASSWORD", p),
            None => start.env_remove("REDIS_PASSWORD"),
        };
        let peer = Peer::start(&KIND, start);
        Redis {
            url: peer.url.clone(),
            _peer: peer,
        }
    }
}
