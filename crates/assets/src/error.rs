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

#[derive(Debug, thiserror::Error)]
pub enum BuildError {
    #[error("cannot access `{path}`: {source}")]
    Io {
        path: PathBuf,
        source: std::io::Error,
    },
    #[error("{0}")]
    Config(String),
    #[error(
        "{} missing referenced file(s) (strict mode):\n{}\nhint: add the files, fix the references, or build without --strict to keep them as they are",
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
    pub fn io(path: &Path, source: std::io::Error) -> BuildError {
        BuildError::Io {
            path: path.to_path_buf(),
            source,
        }
    }
}
