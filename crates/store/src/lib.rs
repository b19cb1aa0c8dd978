//! staleguard's deploy: puts a build output into an object store so that at no instant does anything
//! served reference a missing object.
//!
//! - [`store`]: opening a store from its URL (`file://`, `s3://`, and `gs://`/`az://` behind features) on
//!   the `object_store` crate, and the few operations a deploy needs (JSON state, uploads with headers).
//! - [`wanted`]: what the build output asks for: every key with hash, size, headers, mutability, rank.
//! - [`deploy`]: diff against the current deploy record (no LIST), ordered upload with a journal, commit,
//!   GC, rollback, history.

pub mod deploy;
pub mod store;
pub mod wanted;

use std::path::PathBuf;

pub use deploy::{DeployOptions, DeployReport, Progress, deploy, history, rollback};
pub use store::Store;

/// Everything that can stop a deploy, with the key or file it concerns.
#[derive(Debug, thiserror::Error)]
pub enum StoreError {
    #[error("cannot open store `{url}`: {reason}")]
    Open { url: String, reason: String },
    #[error("cannot read `{key}` from the store: {source}")]
    Read {
        key: String,
        source: object_store::Error,
    },
    #[error("cannot write `{key}` to the store: {source}")]
    Write {
        key: String,
        source: object_store::Error,
    },
    #[error("cannot delete `{key}` from the store: {source}")]
    Delete {
        key: String,
        source: object_store::Error,
    },
    #[error(
        "`{key}` in the store is not valid JSON: {reason}\nhint: it is staleguard's state; restore it or remove the whole `.staleguard/` folder to start a new history"
    )]
    State { key: String, reason: String },
    #[error("cannot read `{path}`: {source}")]
    Local {
        path: PathBuf,
        source: std::io::Error,
    },
    #[error(
        "`{path}` differs from the build's manifest (hash {found}, manifest says {want})\nhint: the output was changed after the build; run `staleguard build` again"
    )]
    Changed {
        path: PathBuf,
        found: String,
        want: String,
    },
    #[error("{0}")]
    Config(String),
    #[error(
        "GC would delete {count} objects, more than max-deletes ({max}); nothing was deleted (the deploy itself is complete)\nhint: check the plan with `staleguard deploy --dry-run`, then raise [deploy] max-deletes or pass --max-deletes {count}"
    )]
    TooManyDeletes { count: usize, max: u64 },
    #[error("{0}")]
    Rollback(String),
}

pub type Result<T, E = StoreError> = std::result::Result<T, E>;
