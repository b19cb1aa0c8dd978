//! The build's error type: each variant says what failed and where, and what to do about it.

use std::path::{Path, PathBuf};

/// A reference to a file that is not in the build.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize)]
pub struct MissingRef {
    /// `file:line:col` of the reference.
    pub location: String,
    /// The reference as written.
    pub url: String,
    /// The logical path it resolves to.
    pub resolved: String,
    /// What kind of reference (`css url()`, `html attribute` …).
    pub kind: String,
}

impl std::fmt::Display for MissingRef {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(
            f,
            "{}: `{}` ({}) points to `{}`, which is not in the source",
            self.location, self.url, self.kind, self.resolved
        )
    }
}

/// A failed build. What to do about it is data ([`BuildError::hint`]), printed last by whoever shows
/// the error; `Display` is the message alone.
#[derive(Debug, thiserror::Error)]
pub enum BuildError {
    #[error("cannot access `{path}`: {source}")]
    Io {
        path: PathBuf,
        source: std::io::Error,
    },
    /// A message, and after `\nhint: ` what to do.
    #[error("{}", staleguard_core::hint::message(.0))]
    Config(String),
    #[error(
        "{} missing referenced file(s) (strict mode):\n{}",
        .0.len(),
        .0.iter().map(|m| format!("  {m}")).collect::<Vec<_>>().join("\n")
    )]
    Missing(Vec<MissingRef>),
    #[error("cannot parse `{path}` as HTML: {message}")]
    Html { path: String, message: String },
    #[error("cannot compress `{path}`: {source}")]
    Compress {
        path: String,
        source: crate::compress::CompressError,
    },
}

impl BuildError {
    /// What to do about it, when there is something to say.
    pub fn hint(&self) -> Option<&str> {
        match self {
            BuildError::Config(t) => staleguard_core::hint::hint(t),
            BuildError::Missing(_) => Some(
                "add the files, fix the references, or build without --strict to keep them as they are",
            ),
            _ => None,
        }
    }

    /// What a user is shown: the message, then the hint on a line of its own.
    pub fn shown(&self) -> String {
        staleguard_core::hint::shown(&self.to_string(), self.hint())
    }

    pub fn io(path: &Path, source: std::io::Error) -> BuildError {
        BuildError::Io {
            path: path.to_path_buf(),
            source,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn hints_are_data_shown_last() {
        let missing = BuildError::Missing(vec![MissingRef {
            location: "index.html:3:10".into(),
            url: "a.css".into(),
            resolved: "a.css".into(),
            kind: "html attribute".into(),
        }]);
        let config = BuildError::Config("source folder `x` cannot be read\nhint: pass it".into());
        let cases: [(&BuildError, &str, Option<&str>); 2] = [
            (
                &missing,
                "1 missing referenced file(s) (strict mode):\n  index.html:3:10: `a.css` (html attribute) points to `a.css`, which is not in the source",
                Some(
                    "add the files, fix the references, or build without --strict to keep them as they are",
                ),
            ),
            (&config, "source folder `x` cannot be read", Some("pass it")),
        ];
        for (e, message, hint) in cases {
            assert_eq!(e.to_string(), message);
            assert_eq!(e.hint(), hint);
            assert_eq!(e.shown(), staleguard_core::hint::shown(message, hint));
        }
    }
}
