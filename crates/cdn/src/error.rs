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
/// distribution or invalidation id; `hint` says what to do. The hint is data, not part of `Display`:
/// whoever shows the error to a user prints it last ([`CdnError::hint`]).
#[derive(Debug, Clone, thiserror::Error)]
#[error("{provider}: {message}")]
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
    pub fn new(
        kind: ErrorKind,
        provider: impl Into<String>,
        message: impl Into<String>,
    ) -> CdnError {
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

    /// The hint, when there is one.
    pub fn with_hint_opt(mut self, hint: Option<String>) -> CdnError {
        if hint.is_some() {
            self.hint = hint;
        }
        self
    }

    pub fn with_retry_after(mut self, after: Option<Duration>) -> CdnError {
        self.retry_after = after;
        self
    }

    /// What to do about it, when there is something to say (the `hint: …` line front ends print last).
    pub fn hint(&self) -> Option<&str> {
        self.hint.as_deref()
    }

    /// What a user is shown: the message, then the hint on a line of its own.
    pub fn shown(&self) -> String {
        staleguard_core::hint::shown(&self.to_string(), self.hint())
    }

    /// True when trying again later may succeed.
    pub fn retryable(&self) -> bool {
        matches!(
            self.kind,
            ErrorKind::Throttled | ErrorKind::TooManyInProgress | ErrorKind::Transient
        )
    }
}

impl ErrorKind {
    /// The kind for an HTTP error status: 429 throttled, 408 and 5xx transient, 401/403 unauthorized,
    /// 404 not found, other 4xx invalid.
    pub fn from_status(status: u16) -> ErrorKind {
        match status {
            429 => ErrorKind::Throttled,
            408 | 500..=599 => ErrorKind::Transient,
            401 | 403 => ErrorKind::Unauthorized,
            404 => ErrorKind::NotFound,
            400..=499 => ErrorKind::Invalid,
            _ => ErrorKind::Other,
        }
    }

    /// Which of two kinds to report when several requests of one call failed differently: the one a
    /// retry cannot fix wins (retrying would only repeat it).
    pub fn worst(self, other: ErrorKind) -> ErrorKind {
        let rank = |k: ErrorKind| match k {
            ErrorKind::Unauthorized => 0,
            ErrorKind::Config => 1,
            ErrorKind::NotFound => 2,
            ErrorKind::Invalid => 3,
            ErrorKind::BatchTooLarge => 4,
            ErrorKind::Other => 5,
            ErrorKind::Timeout => 6,
            ErrorKind::TooManyInProgress => 7,
            ErrorKind::Throttled => 8,
            ErrorKind::Transient => 9,
        };
        if rank(other) < rank(self) {
            other
        } else {
            self
        }
    }
}

impl CdnError {
    /// A request that got no HTTP answer (connection refused, DNS, TLS, timeout): transient. `what`
    /// names the target (`node `http://10.0.0.5:6081``, `the Cloudflare API`); the message keeps the
    /// cause chain, which never holds credentials (they travel in headers only).
    pub fn transport(provider: impl Into<String>, what: &str, err: &reqwest::Error) -> CdnError {
        let mut msg = format!("cannot reach {what}");
        for text in staleguard_core::cause::cause_chain(err, &[]) {
            msg.push_str(": ");
            msg.push_str(&text);
        }
        let kind = if err.is_builder() {
            ErrorKind::Config
        } else {
            ErrorKind::Transient
        };
        CdnError::new(kind, provider, msg)
    }
}

/// The pause a `Retry-After: SECONDS` header asks for (HTTP dates are not used by CDN APIs).
pub fn retry_after(headers: &reqwest::header::HeaderMap) -> Option<Duration> {
    let v = headers
        .get(reqwest::header::RETRY_AFTER)?
        .to_str()
        .ok()?
        .trim();
    v.parse::<f64>()
        .ok()
        .filter(|s| s.is_finite() && *s >= 0.0)
        .map(|s| Duration::from_secs_f64(s.min(86_400.0)))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_hint_is_data_and_its_own_line() {
        let bare = CdnError::new(ErrorKind::Invalid, "varnish", "bad ban");
        let hinted = bare.clone().with_hint("fix `nodes`");
        let kept = hinted.clone().with_hint_opt(None);
        let cases: [(&CdnError, Option<&str>, &str); 3] = [
            (&bare, None, "varnish: bad ban"),
            (&hinted, Some("fix `nodes`"), "varnish: bad ban"),
            (&kept, Some("fix `nodes`"), "varnish: bad ban"),
        ];
        for (e, hint, shown) in cases {
            assert_eq!(e.hint(), hint, "{e:?}");
            assert_eq!(e.to_string(), shown);
        }
    }
}
