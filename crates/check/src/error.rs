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
    pub fn hint(&self) -> Option<String> {
        match self {
            CheckError::Client { .. } => None,
            CheckError::NotSwitched { .. } => Some(
                "check that the origin serves the store this deploy wrote to (for `staleguard serve`: its folder), then run `staleguard invalidate`"
                    .into(),
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
        write!(f, "{}: {}", self.target(), self.message())?;
        if let Some(h) = self.hint() {
            write!(f, "\nhint: {h}")?;
        }
        Ok(())
    }
}

impl std::error::Error for CheckError {}
