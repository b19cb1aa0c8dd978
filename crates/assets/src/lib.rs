//! staleguard's asset build: fingerprint files, rewrite references, write manifests, precompress.
//!
//! Scanners ([`css`], [`html`], [`js`]) find references with real tokenizers; [`pipeline`] resolves them,
//! orders files so dependencies are hashed before dependants, writes the output tree and the manifests;
//! [`compress`] writes sidecars; [`cache`] makes unchanged content free on the next build.

pub mod cache;
pub mod compress;
pub mod css;
pub mod error;
pub mod graph;
pub mod html;
pub mod images;
pub mod js;
pub mod pipeline;
pub mod prehashed;
pub mod refs;
pub mod reuse;
pub mod source;

pub use error::{BuildError, MissingRef};
pub use pipeline::{
    BuildOptions, BuildReport, GitInfo, NoProgress, Phase, Progress, Warning, build, build_reusing,
};
pub use reuse::Reuse;
