//! A peer process started and stopped by its script under `scripts/peers/`, the one way every peer
//! here is run. The script's contract:
//!
//! - `SCRIPT start ARGS...` starts one instance on a free 127.0.0.1 port, waits until it answers and
//!   prints `PREFIX_URL=...`, `PREFIX_PID=...` and `PREFIX_STATE=DIR` lines on stdout (more
//!   `PREFIX_*` lines are allowed); it exits non-zero, saying why on stderr, when the peer is not
//!   installed or does not come up;
//! - `SCRIPT stop DIR` stops the process whose PID it recorded in DIR (and nothing else) and removes
//!   what `start` made.
//!
//! A peer is then a [`Kind`] (script, prefix, hint) and a module with a typed wrapper around
//! [`Peer`]; Redis, PostgreSQL or memcached are added the same way as [`crate::moto`] and
//! [`crate::varnish`].

use std::path::PathBuf;
use std::process::Command;

/// What a peer is: its script and the names it prints.
#[derive(Debug)]
pub struct Kind {
    /// The name in messages (`moto`, `Varnish`).
    pub name: &'static str,
    /// The script, relative to the repository root.
    pub script: &'static str,
    /// The prefix of the `KEY=VALUE` lines `start` prints (`MOTO`, `VARNISH`).
    pub prefix: &'static str,
    /// What to do when the peer is missing or does not start (the panic's `hint:` line).
    pub hint: &'static str,
}

impl Kind {
    /// The script's absolute path.
    pub fn script(&self) -> PathBuf {
        crate::repo().join(self.script)
    }

    /// A command running the script (add `start ARGS...` and any environment).
    pub fn command(&self) -> Command {
        Command::new(self.script())
    }
}

/// One running instance, stopped (by the PID its script recorded) when dropped.
#[derive(Debug)]
pub struct Peer {
    kind: &'static Kind,
    /// `http://127.0.0.1:PORT`.
    pub url: String,
    /// The peer's main process.
    pub pid: u32,
    /// The state folder `start` printed; `stop` takes it.
    pub state: String,
}

impl Peer {
    /// Runs `start` (a command from [`Kind::command`] with its arguments set) and reads what it
    /// printed. Panics with the script's stderr and the install hint when the peer does not start.
    pub fn start(kind: &'static Kind, mut start: Command) -> Peer {
        let o = start
            .output()
            .unwrap_or_else(|e| panic!("cannot run {}: {e}", kind.script().display()));
        let out = String::from_utf8_lossy(&o.stdout);
        assert!(
            o.status.success(),
            "cannot start {}: {}\nhint: {}",
            kind.name,
            String::from_utf8_lossy(&o.stderr).trim_end(),
            kind.hint
        );
        let get = |suffix: &str| {
            let key = format!("{}_{suffix}=", kind.prefix);
            out.lines()
                .find_map(|l| l.strip_prefix(&key))
                .unwrap_or_else(|| panic!("{} start printed no {key}: {out}", kind.script))
                .to_string()
        };
        let (url, pid, state) = (get("URL"), get("PID"), get("STATE"));
        Peer {
            kind,
            url,
            pid: pid
                .parse()
                .unwrap_or_else(|e| panic!("{}_PID={pid}: {e}", kind.prefix)),
            state,
        }
    }
}

impl Drop for Peer {
    fn drop(&mut self) {
        // No panic here: this also runs while a failed test unwinds.
        match self.kind.command().args(["stop", &self.state]).output() {
            Ok(o) if o.status.success() => {}
            Ok(o) => eprintln!(
                "{} stop {}: {}",
                self.kind.script,
                self.state,
                String::from_utf8_lossy(&o.stderr)
            ),
            Err(e) => eprintln!("cannot run {} stop {}: {e}", self.kind.script, self.state),
        }
    }
}
