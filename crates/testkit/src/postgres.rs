//! A real PostgreSQL server from `scripts/peers/postgres.sh` (Debian's packages; initdb into a fresh
//! folder, trust authentication on loopback, fsync on): one per [`Postgres::start`], on a free loopback
//! port, stopped by PID when dropped. As root, the server runs as the system user `staleguard-pg`.

use crate::peer::{Kind, Peer};

/// The PostgreSQL peer's script and names.
pub static KIND: Kind = Kind {
    name: "PostgreSQL",
    script: "scripts/peers/postgres.sh",
    prefix: "POSTGRES",
    hint: "install it with `sudo scripts/peers/postgres.sh install` (Debian's postgresql)",
};

/// One postmaster with a database `staleguard`, stopped when dropped.
#[derive(Debug)]
pub struct Postgres {
    /// `postgres://staleguard@127.0.0.1:PORT/staleguard`.
    pub url: String,
    /// Held for its `Drop`, which stops the server.
    _peer: Peer,
}

impl Postgres {
    /// One server, stopped when dropped or, if this process dies first (SIGKILL, a shared server in a
    /// `static`), by the script's watchdog within a second.
    pub fn start() -> Postgres {
        let mut start = KIND.command();
        start
            .arg("start")
            .env("POSTGRES_WATCH_PID", std::process::id().to_string());
        let peer = Peer::start(&KIND, start);
        Postgres {
            url: peer.url.clone(),
            _peer: peer,
        }
    }
}
