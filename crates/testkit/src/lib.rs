//! Test support shared by the workspace's integration tests, and used only as a dev-dependency: the
//! real peers the tests talk to, each started by its script under `scripts/peers/` and stopped when
//! dropped ([`moto`], [`varnish`], [`postgres`], [`redis`], [`memcached`], [`nginx`]; a new peer is one more module on [`peer::Peer`]), the repository
//! root, and a builder for running the real `staleguard` binary ([`cli`]).
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

/// The repository root (where `scripts/` and `examples/` are).
pub fn repo() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("../..")
        .canonicalize()
        .expect("the testkit crate lives two folders below the repository root")
}
