//! The crate's one error type. Whether an error is worth retrying, and after how long, is data on the
//! error ([`CdnError::retryable`], [`CdnError::retry_after`]), read by the retry wrapper.

use std::time::Duration;

/// What went wrong, in terms a caller can act on.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ErrorKind {
    /// Rate limited (HTTP 429, CloudFront `Throttling`): retry after a pause.
    Throttled,
    /// Too many purges in flight (CloudFront `TooManyInvalidationsInProgress`): retry when some finish.
    TooManyInProgress,
    /// The call held more items than the provider takes (CloudFront `BatchTooLarge`): split and retry.
    BatchTooLarge,
    /// A network error, a timeout or a 5xx: retry.
    Transient,
    /// Credentials missing or refused (401/403): not retried.
    Unauthorized,
    /// The distribution, zone, service or invalidation does not exist: not retried.
    NotFound,
    /// The provider refused the request as malformed (bad path, bad tag): not retried.
    Invalid,
    /// A configuration problem found before any request (missing token, unknown distribution alias).
    Config,
    /// Waiting for completion passed its deadline.
    Timeout,
    /// Anything else: not retried.
    Other,
}

/// A failed CDN operation. The message names the provider and, where there is one, the URL, item,
/// distribution or invalidation id; `hint` says what to do.
#[derive(Debug, Clone, thiserror::Error)]
#[error("{provider}: {message}{}", hint.as_ref().map(|h| format!("\nhint: {h}")).unwrap_or_default())]
pub struct CdnError {
    pub kind: ErrorKind,
    /// The provider's label (`cloudfront:E2ABC…`, `varnish`, `cloudflare`).
    pub provider: String,
    pub message: String,
    pub hint: Option<String>,
    /// A pause the provider asked for (`Retry-After`).
    pub retry_after: Option<Duration>,
}

impl CdnError {
    pub fn new(kind: ErrorKind, provider: impl Into<String>, message: impl Into<String>) -> CdnError {
        CdnError {
            kind,
            provider: provider.into(),
            message: message.into(),
            hint: None,
            retry_after: None,
        }
    }

    pub fn with_hint(mut self, hint: impl Into<String>) -> CdnError {
        self.hint = Some(hint.into());
        self
    }

    pub fn with_retry_after(mut self, after: Option<Duration>) -> CdnError {
        self.retry_after = after;
        self
    }

    /// True when trying again later may succeed.
    pub fn retryable(&self) -> bool {
        matches!(
            self.kind,
            ErrorKind::Throttled | ErrorKind::TooManyInProgress | ErrorKind::Transient
        )
    }
}
