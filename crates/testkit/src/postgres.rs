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

    /// A new, empty database `name` on this server (tests that must not see each other's rows);
    /// its URL. Made with Debian's `createdb` next to the server's `initdb`.
    pub fn database(&self, name: &str) -> String {
        let bin = std::fs::read_dir("/usr/lib/postgresql")
            .ok()
            .and_then(|d| {
                d.filter_map(Result::ok)
                    .map(|e| e.path().join("bin/createdb"))
                    .find(|p| p.exists())
            })
            .unwrap_or_else(|| panic!("PostgreSQL: no createdb under /usr/lib/postgresql/*/bin"));
        let (base, _) = self.url.rsplit_once('/').expect("a URL with a database");
        let port = base.rsplit_once(':').expect("a URL with a port").1;
        let out = std::process::Command::new(&bin)
            .args(["-h", "127.0.0.1", "-p", port, "-U", "staleguard", name])
            .output()
            .unwrap_or_else(|e| panic!("PostgreSQL: cannot run {}: {e}", bin.display()));
        assert!(
            out.status.success(),
            "PostgreSQL: createdb {name}: {}",
            String::from_utf8_lossy(&out.stderr)
        );
        format!("{base}/{name}")
    }
}
