//! Running the real `staleguard` binary as a user would. Only the binary's own tests get
//! `CARGO_BIN_EXE_staleguard`, so the builder takes the binary's path:
//!
//! ```ignore
//! let out = Cli::new(env!("CARGO_BIN_EXE_staleguard")).current_dir(dir).args(["build", "site"]).output();
//! ```

use std::ffi::OsStr;
use std::path::Path;
use std::process::{Command, Output};

/// The build time every run gets (`SOURCE_DATE_EPOCH`), so outputs that record it are reproducible.
pub const SOURCE_DATE_EPOCH: &str = "1795000000";

/// The variables the binary reads that a developer's shell may have set: a test sets its own.
const INHERITED: [&str; 7] = [
    "RUST_LOG",
    "STALEGUARD_CONFIG",
    "STALEGUARD_STORE",
    "STALEGUARD_NOW",
    "STALEGUARD_FAULT",
    "STALEGUARD_PAUSE",
    "STALEGUARD_WEBHOOK_URL",
];

/// A run of the binary: a fixed build time, and none of the variables it reads inherited from the
/// caller (a developer's `STALEGUARD_CONFIG` or `STALEGUARD_STORE` would change what runs, and clap
/// shows a variable's value in `--help`).
#[derive(Debug)]
pub struct Cli {
    command: Command,
}

impl Cli {
    /// The binary at `bin`.
    pub fn new(bin: impl AsRef<OsStr>) -> Cli {
        let mut command = Command::new(bin);
        for k in INHERITED {
            command.env_remove(k);
        }
        command.env("SOURCE_DATE_EPOCH", SOURCE_DATE_EPOCH);
        Cli { command }
    }

    /// Runs in `dir`.
    pub fn current_dir(mut self, dir: &Path) -> Cli {
        self.command.current_dir(dir);
        self
    }

    /// Adds arguments.
    pub fn args<I, S>(mut self, args: I) -> Cli
    where
        I: IntoIterator<Item = S>,
        S: AsRef<OsStr>,
    {
        self.command.args(args);
        self
    }

    /// The command as built, for whatever else a test sets.
    pub fn command(self) -> Command {
        self.command
    }

    /// Runs it to the end; see [`run`].
    pub fn output(self) -> Output {
        run(self.command)
    }
}

/// Runs a command to the end and returns its output, printing stdout and stderr when it fails so the
/// test's own assertion comes with them.
pub fn run(mut c: Command) -> Output {
    let out = c
        .output()
        .unwrap_or_else(|e| panic!("cannot run {:?}: {e}", c.get_program()));
    if !out.status.success() {
        eprintln!(
            "stdout:\n{}\nstderr:\n{}",
            String::from_utf8_lossy(&out.stdout),
            String::from_utf8_lossy(&out.stderr)
        );
    }
    out
}
