//! The crate's one error type. A CDN's or the store's error is kept whole (kind, retryability, hint),
//! never flattened to text, so a caller (the CLI's exit code, the service's retry and dead-letter
//! decision) can act on it.

use std::sync::Arc;

use serde::Serialize;
use staleguard_cdn::{CdnError, ErrorKind};
use staleguard_check::CheckError;
use staleguard_store::StoreError;

/// What went wrong in a purge or proof run.
#[derive(Debug, thiserror::Error)]
pub enum Error {
    /// A CDN refused or failed (opening it, planning for it, a call, waiting, the origin's switch).
    #[error(transparent)]
    Cdn(#[from] CdnError),
    /// A check through the edges or at the origin could not be made, or the origin did not switch.
    #[error(transparent)]
    Check(#[from] CheckError),
    /// The store's deploy state could not be read or written.
    #[error(transparent)]
    Store(#[from] StoreError),
    /// `--cdn NAME` (or a service scope) names no `[[cdn]]` entry.
    #[error("no [[cdn]] named `{name}` in the config (configured: {known})")]
    UnknownCdn { name: String, known: String },
    /// `purge-by = "tags"` on a provider without tags.
    #[error("`purge-by = \"tags\"` but {provider} cannot purge by tag")]
    TagsUnsupported { provider: String },
    /// An item the provider has no way to purge (a tag on CloudFront, a prefix on Fastly).
    #[error("cannot purge `{item}`: {provider} does not support {kind:?} items")]
    ItemUnsupported {
        item: String,
        provider: String,
        kind: staleguard_core::purge::ItemKind,
    },
    /// A URL path given to purge is not one (see [`crate::paths`]).
    #[error("{0}")]
    Path(String),
    /// Nothing to verify through.
    #[error(
        "nothing to check through: set [verify] cdn-url (the site as users reach it), or pass --cdn-url"
    )]
    NoBases,
    /// An app cache could not be bumped, so the CDN was not purged (a purge first would let the CDN
    /// refetch the old page from the app cache and keep it): both stay pending.
    #[error("not purged: the app caches must be bumped first, and {0}")]
    AppCache(Arc<staleguard_appcache::AppCacheError>),
    /// The deploy to verify has no record any more.
    #[error("the record of deploy {0} is gone (collected by GC); verify a newer deploy")]
    RecordGone(String),
}

impl Error {
    /// The CDN's kind of failure, when a CDN failed.
    pub fn kind(&self) -> Option<ErrorKind> {
        match self {
            Error::Cdn(e) => Some(e.kind),
            _ => None,
        }
    }

    /// True when the same run later may succeed (throttled, too many in progress, a network error, a
    /// 5xx, or a store that could not be reached).
    pub fn retryable(&self) -> bool {
        match self {
            Error::Cdn(e) => e.retryable(),
            Error::Store(StoreError::Read { .. } | StoreError::Write { .. }) => true,
            _ => false,
        }
    }
}

/// A failure inside a report: the error, shared (reports are cloned), shown as its message in JSON.
#[derive(Debug, Clone)]
pub struct Failure(pub Arc<Error>);

impl Failure {
    pub fn error(&self) -> &Error {
        &self.0
    }
}

impl Error {
    /// What to do about it, when the failing crate says (a CDN's or a check's hint): data, printed last
    /// by whoever shows the error, never part of its `Display`.
    pub fn hint(&self) -> Option<std::borrow::Cow<'_, str>> {
        use std::borrow::Cow;
        match self {
            Error::Cdn(e) => e.hint().map(Cow::Borrowed),
            Error::Check(e) => e.hint().map(Cow::Borrowed),
            Error::Store(e) => e.hint(),
            _ => None,
        }
    }

    /// The message, then its hint on a line of its own: what a report shows.
    pub fn shown(&self) -> String {
        staleguard_core::hint::shown(&self.to_string(), self.hint().as_deref())
    }

    /// The message and every cause below it, joined by `: ` (what `{:#}` shows for an `anyhow` error),
    /// then the hint on a line of its own.
    pub fn full(&self) -> String {
        let mut out = self.to_string();
        let mut cur = std::error::Error::source(self);
        while let Some(e) = cur {
            out.push_str(": ");
            out.push_str(&e.to_string());
            cur = e.source();
        }
        staleguard_core::hint::shown(&out, self.hint().as_deref())
    }
}

impl From<Error> for Failure {
    fn from(e: Error) -> Failure {
        Failure(Arc::new(e))
    }
}

impl std::fmt::Display for Failure {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        self.0.fmt(f)
    }
}

/// In JSON, the message with its hint (the hint is also its own line in the text).
impl Serialize for Failure {
    fn serialize<S: serde::Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        s.serialize_str(&self.0.shown())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_cdn_error_keeps_its_kind_and_retryability_through_a_report() {
        let cases = [
            (ErrorKind::Throttled, true),
            (ErrorKind::Transient, true),
            (ErrorKind::TooManyInProgress, true),
            (ErrorKind::Unauthorized, false),
            (ErrorKind::Invalid, false),
        ];
        for (kind, retryable) in cases {
            let f: Failure = Error::from(CdnError::new(kind, "cloudfront:E1", "refused")).into();
            assert_eq!(f.error().kind(), Some(kind));
            assert_eq!(f.error().retryable(), retryable, "{kind:?}");
            assert_eq!(
                serde_json::to_value(&f).unwrap(),
                serde_json::json!(f.to_string())
            );
        }
        let hinted: Failure = Error::from(
            CdnError::new(ErrorKind::Unauthorized, "fastly", "token refused").with_hint("set it"),
        )
        .into();
        assert_eq!(hinted.to_string(), "fastly: token refused");
        assert_eq!(hinted.error().hint().as_deref(), Some("set it"));
        assert_eq!(
            hinted.error().shown(),
            "fastly: token refused\nhint: set it"
        );
        assert_eq!(
            serde_json::to_value(&hinted).unwrap(),
            serde_json::json!("fastly: token refused\nhint: set it")
        );
        assert!(!Error::NoBases.retryable());
        assert_eq!(Error::RecordGone("d1".into()).kind(), None);
    }
}
