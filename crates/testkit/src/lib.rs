//! Test support shared by the workspace's integration tests, and used only as a dev-dependency: the
//! real peers the tests talk to, each started by its script under `scripts/peers/` and stopped when
//! dropped ([`moto`], [`varnish`], [`postgres`], [`redis`], [`memcached`], [`nginx`]; a new peer is one more module on [`peer::Peer`]), the repository
//! root, the test venv's Python ([`venv_python`]), and a builder for running the real `staleguard`
//! binary ([`cli`]).
//!
//! A peer the machine lacks fails the test with a panic that says how to install it: nothing here
//! skips a test.

pub mod cli;
pub mod cloudfront_policies;
pub mod memcached;
pub mod moto;
pub mod nginx;
pub mod peer;
pub mod postgres;
pub mod redis;
pub mod varnish;

use std::path::{Path, PathBuf};

/// The Python of the project's test venv (`scripts/pyenv.sh`: `$STALEGUARD_VENV`, default
/// `~/.cache/staleguard/venv`), where `scripts/requirements-test.txt` is installed (moto, awscli,
/// python-hcl2, ...). Panics with the install hint when there is none.
pub fn venv_python() -> PathBuf {
    let venv = match std::env::var_os("STALEGUARD_VENV") {
        Some(v) if !v.is_empty() => PathBuf::from(v),
        _ => {
            let home = std::env::var_os("HOME").expect("HOME is set (the venv lives under it)");
            Path::new(&home).join(".cache/staleguard/venv")
        }
    };
    let python = venv.join("bin/python");
    assert!(
        python.exists(),
        "no test venv at {}: install it with `scripts/peers/moto.sh install` (scripts/test.sh does)",
        venv.display()
    );
    python
}

/// The repository root (where `scripts/` and `examples/` are).
pub fn repo() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("../..")
        .canonicalize()
        .expect("the testkit crate lives two folders below the repository root")
}
