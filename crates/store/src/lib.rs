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
pub use purged::{Pending, PurgeState, Reserved, month_of};
pub use store::Store;

/// Everything that can stop a deploy, with the key or file it concerns. What to do about it is data,
/// [`StoreError::hint`], printed last by whoever shows the error; `Display` is the message alone.
#[derive(Debug, thiserror::Error)]
pub enum StoreError {
    #[error("cannot open store `{url}`: {}", message(reason))]
    Open { url: String, reason: String },
    #[error("cannot read `{key}` from the store: {}", describe(error).0)]
    Read {
        key: String,
        error: object_store::Error,
    },
    #[error("cannot write `{key}` to the store: {}", describe(error).0)]
    Write {
        key: String,
        error: object_store::Error,
    },
    #[error("cannot delete `{key}` from the store: {}", describe(error).0)]
    Delete {
        key: String,
        error: object_store::Error,
    },
    #[error("`{key}` in the store is not valid JSON: {reason}")]
    State { key: String, reason: String },
    #[error("cannot read `{path}`: {source}")]
    Local {
        path: PathBuf,
        source: std::io::Error,
    },
    #[error("`{path}` differs from the build's manifest (hash {found}, manifest says {want})")]
    Changed {
        path: PathBuf,
        found: String,
        want: String,
    },
    /// A message, and after `\nhint: ` what to do ([`StoreError::hint`]).
    #[error("{}", message(.0))]
    Config(String),
    #[error(
        "GC would delete {count} objects, more than max-deletes ({max}); nothing was deleted (the deploy itself is complete)"
    )]
    TooManyDeletes { count: usize, max: u64 },
    /// A message, and after `\nhint: ` what to do ([`StoreError::hint`]).
    #[error("{}", message(.0))]
    Rollback(String),
    #[error(
        "`{url}` has no conditional writes ({what}): staleguard cannot keep two deploys from interleaving there"
    )]
    NoConditional { url: String, what: &'static str },
    #[error("`{url}` is locked by {holder}")]
    Locked {
        url: String,
        holder: String,
        hint: String,
    },
}

use staleguard_core::hint::{hint as hint_of, message};

impl StoreError {
    /// What to do about it, when there is something to say.
    pub fn hint(&self) -> Option<std::borrow::Cow<'_, str>> {
        use std::borrow::Cow;
        match self {
            StoreError::Open { reason, .. } => hint_of(reason).map(Cow::Borrowed),
            StoreError::Config(t) | StoreError::Rollback(t) => hint_of(t).map(Cow::Borrowed),
            StoreError::Read { error, .. }
            | StoreError::Write { error, .. }
            | StoreError::Delete { error, .. } => describe(error).1.map(Cow::Borrowed),
            StoreError::State { .. } => Some(Cow::Borrowed(
                "it is staleguard's state; restore it or remove the whole `.staleguard/` folder to start a new history",
            )),
            StoreError::Changed { .. } => Some(Cow::Borrowed(
                "the output was changed after the build; run `staleguard build` again",
            )),
            StoreError::TooManyDeletes { count, .. } => Some(Cow::Owned(format!(
                "check the plan with `staleguard deploy --dry-run`, then raise [deploy] max-deletes or pass --max-deletes {count}"
            ))),
            StoreError::NoConditional { .. } => Some(Cow::Borrowed(
                "use a store that has them (S3 and S3-compatible stores with If-None-Match/If-Match, a local folder), or set `[deploy] lock = false` to deploy without a lock (then never run two deploys at once)",
            )),
            StoreError::Locked { hint, .. } => Some(Cow::Borrowed(hint)),
            StoreError::Local { .. } => None,
        }
    }

    /// What a user is shown: the message, then the hint on a line of its own.
    pub fn shown(&self) -> String {
        staleguard_core::hint::shown(&self.to_string(), self.hint().as_deref())
    }
}

pub type Result<T, E = StoreError> = std::result::Result<T, E>;

/// A store error in one line, and a hint for the usual causes. S3-style XML error bodies are reduced to
/// their code and message; the full text is in the debug log.
pub fn describe(e: &object_store::Error) -> (String, Option<&'static str>) {
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
            let cut = staleguard_core::text::cut(first, 300).into_owned();
            (String::new(), cut)
        }
    };
    let hint = match code.as_str() {
        "NoSuchBucket" => {
            Some("create the bucket, or fix the bucket name in [deploy] store / --store")
        }
        "AccessDenied" | "InvalidAccessKeyId" | "SignatureDoesNotMatch" | "ExpiredToken" => Some(
            "check AWS_ACCESS_KEY_ID/AWS_SECRET_ACCESS_KEY (and AWS_SESSION_TOKEN), and that they may write this bucket",
        ),
        "PermanentRedirect" | "AuthorizationHeaderMalformed" => {
            Some("the bucket is in another region; set [deploy] region or AWS_REGION")
        }
        _ if full.contains("error sending request") || full.contains("Connection refused") => Some(
            "the store's endpoint is unreachable; check [deploy] endpoint / AWS_ENDPOINT_URL and the network",
        ),
        _ => None,
    };
    (text, hint)
}

#[cfg(test)]
mod hint_tests {
    use super::*;

    #[test]
    fn the_hint_is_data_and_never_part_of_the_message() {
        let cases: Vec<(StoreError, &str, Option<&str>)> = vec![
            (
                StoreError::Config(
                    "`out` has no files to deploy\nhint: run `staleguard build` first".into(),
                ),
                "`out` has no files to deploy",
                Some("run `staleguard build` first"),
            ),
            (
                StoreError::Rollback("no deploy to roll back to".into()),
                "no deploy to roll back to",
                None,
            ),
            (
                StoreError::TooManyDeletes { count: 12, max: 10 },
                "GC would delete 12 objects, more than max-deletes (10); nothing was deleted (the deploy itself is complete)",
                Some(
                    "check the plan with `staleguard deploy --dry-run`, then raise [deploy] max-deletes or pass --max-deletes 12",
                ),
            ),
            (
                StoreError::Locked {
                    url: "s3://b".into(),
                    holder: "ci@host".into(),
                    hint: "wait, or `staleguard deploys --unlock`".into(),
                },
                "`s3://b` is locked by ci@host",
                Some("wait, or `staleguard deploys --unlock`"),
            ),
        ];
        for (e, message, hint) in cases {
            assert_eq!(e.to_string(), message);
            assert_eq!(e.hint().as_deref(), hint);
            let shown = e.shown();
            assert!(shown.starts_with(message), "{shown}");
            if let Some(h) = hint {
                assert!(shown.ends_with(&format!("\nhint: {h}")), "{shown}");
            }
        }
    }
}
