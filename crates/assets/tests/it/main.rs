//! Integration tests of the build library, run in-process on temporary folders.

#[cfg(feature = "avif")]
mod avif;
mod props;
mod reuse;
