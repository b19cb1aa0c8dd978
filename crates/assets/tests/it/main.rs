//! Integration tests of the build library, run in-process on temporary folders.

mod props;
mod reuse;
