//! The crate's one error type, for what fails a check as a whole (a single URL that serves other
//! content is not an error: it is in the report). [`CheckError::hint`] says what to do.

/// A check that could not be made or did not pass by its deadline.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum CheckError {
    /// No HTTP client could be made (TLS roots, proxy settings): nothing was requested. `target` names
    /// what was to be asked (`origin`).
    Client { target: String, message: String },
    /// The origin's version endpoint `url` did not report the deployed version `want` by the deadline;
    /// `seen` is what it reported last (`version `v1``, `status 503 Service Unavailable`, `no answer (…)`).
    NotSwitched {
        url: String,
        seen: String,
        want: String,
    },
}

impl CheckError {
    /// What to do about it, when there is something to say.
    pub fn hint(&self) -> Option<&str> {
        match self {
            CheckError::Client { .. } => None,
            CheckError::NotSwitched { .. } => Some(
                "check that the origin serves the store this deploy wrote to (for `staleguard serve`: its folder), then run `staleguard invalidate`",
            ),
        }
    }

    /// The message without the target's label (`origin: `): what a report's field holds.
    pub fn message(&self) -> String {
        match self {
            CheckError::Client { message, .. } => message.clone(),
            CheckError::NotSwitched { url, seen, want } => format!(
                "`{url}` still reports {seen}, not the deployed version `{want}`; the CDNs were not purged (they would re-cache the old content)"
            ),
        }
    }

    fn target(&self) -> &str {
        match self {
            CheckError::Client { target, .. } => target,
            CheckError::NotSwitched { .. } => "origin",
        }
    }
}

impl std::fmt::Display for CheckError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        // The hint is data ([`CheckError::hint`]), printed last by whoever shows the error.
        write!(f, "{}: {}", self.target(), self.message())
    }
}

impl std::error::Error for CheckError {}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn message_hint_and_text() {
        let client = CheckError::Client {
            target: "origin".into(),
            message: "no TLS roots".into(),
        };
        let stale = CheckError::NotSwitched {
            url: "http://o/v.json".into(),
            seen: "version `v1`".into(),
            want: "v2".into(),
        };
        let cases: [(&CheckError, &str, bool); 2] = [
            (&client, "origin: no TLS roots", false),
            (
                &stale,
                "origin: `http://o/v.json` still reports version `v1`, not the deployed version `v2`; the CDNs were not purged (they would re-cache the old content)",
                true,
            ),
        ];
        for (e, first_line, hinted) in cases {
            let text = e.to_string();
            assert_eq!(text.lines().next(), Some(first_line));
            assert_eq!(e.hint().is_some(), hinted, "{e:?}");
            assert_eq!(text, first_line, "the hint is not part of the message");
            assert!(first_line.ends_with(&e.message()));
        }
    }
}
