//! staleguard's deploy: puts a build output into an object store so that at no instant does anything
//! served reference a missing object.
//!
//! - [`store`]: opening a store from its URL (`file://`, `s3://`, and `gs://`/`az://` behind features) on
//!   the `object_store` crate, and the few operations a deploy needs (JSON state, uploads with headers).
//! - [`wanted`]: what the build output asks for: every key with hash, size, headers, mutability, rank.
//! - [`deploy`]: diff against the current deploy record (no LIST), ordered upload with a journal, commit,
//!   GC, rollback, history.
//! - [`purged`]: which deploy each CDN was last purged up to, and the purge set still pending.

pub mod deploy;
pub mod fault;
pub mod lease;
pub mod purged;
pub mod store;
pub mod wanted;

use std::path::PathBuf;

pub use deploy::{DeployOptions, DeployReport, Progress, deploy, history, rollback};
pub use purged::{Pending, PurgeState};
pub use store::Store;

/// Everything that can stop a deploy, with the key or file it concerns.
#[derive(Debug, thiserror::Error)]
pub enum StoreError {
    #[error("cannot open store `{url}`: {reason}")]
    Open { url: String, reason: String },
    #[error("cannot read `{key}` from the store: {}", describe(error))]
    Read {
        key: String,
        error: object_store::Error,
    },
    #[error("cannot write `{key}` to the store: {}", describe(error))]
    Write {
        key: String,
        error: object_store::Error,
    },
    #[error("cannot delete `{key}` from the store: {}", describe(error))]
    Delete {
        key: String,
        error: object_store::Error,
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
    #[error(
        "`{url}` has no conditional writes ({what}): staleguard cannot keep two deploys from interleaving there\nhint: use a store that has them (S3 and S3-compatible stores with If-None-Match/If-Match, a local folder), or set `[deploy] lock = false` to deploy without a lock (then never run two deploys at once)"
    )]
    NoConditional { url: String, what: &'static str },
    #[error("`{url}` is locked by {holder}\nhint: {hint}")]
    Locked {
        url: String,
        holder: String,
        hint: String,
    },
}

pub type Result<T, E = StoreError> = std::result::Result<T, E>;

/// A store error in one line, with a hint for the usual causes. S3-style XML error bodies are reduced to
/// their code and message; the full text is in the debug log.
pub fn describe(e: &object_store::Error) -> String {
    let full = e.to_string();
    tracing::debug!(error = %full, "store error");
    let tag = |name: &str| {
        let open = format!("<{name}>");
        let start = full.find(&open)? + open.len();
        let end = full[start..].find(&format!("</{name}>"))? + start;
        Some(full[start..end].to_string())
    };
    let (code, text) = match (tag("Code"), tag("Message")) {
        (Some(c), Some(m)) => (c.clone(), format!("{c}: {m}")),
        (Some(c), None) => (c.clone(), c),
        _ => {
            let first = full.lines().next().unwrap_or("").trim();
            let cut: String = first.chars().take(300).collect();
            (String::new(), cut)
        }
    };
    let hint = match code.as_str() {
        "NoSuchBucket" => {
            "\nhint: create the bucket, or fix the bucket name in [deploy] store / --store"
        }
        "AccessDenied" | "InvalidAccessKeyId" | "SignatureDoesNotMatch" | "ExpiredToken" => {
            "\nhint: check AWS_ACCESS_KEY_ID/AWS_SECRET_ACCESS_KEY (and AWS_SESSION_TOKEN), and that they may write this bucket"
        }
        "PermanentRedirect" | "AuthorizationHeaderMalformed" => {
            "\nhint: the bucket is in another region; set [deploy] region or AWS_REGION"
        }
        _ if full.contains("error sending request") || full.contains("Connection refused") => {
            "\nhint: the store's endpoint is unreachable; check [deploy] endpoint / AWS_ENDPOINT_URL and the network"
        }
        _ => "",
    };
    format!("{text}{hint}")
}
