//! The purge and proof runs, as a library the CLI and the invalidation service share.
//!
//! - [`purge::run`]: for each selected `[[cdn]]`, what it must drop (the changes since its last purge, one
//!   deploy's changes, or items given by the caller), planned for its capabilities and prices
//!   ([`plan`]), sent through the retry, rate-limit and chunking wrappers, waited for, and marked in
//!   `purged.json` so a failed or killed purge is made up by the next run.
//! - [`prove::prove`]: warm the edges, then fetch the deploy's changed mutable URLs through every edge and
//!   compare them with the deploy record, with the version endpoint at the origin and through the CDN.
//! - [`conclude::conclude`]: what follows a deploy's or rollback's commit: purge, then prove; [`notify`]
//!   tells a webhook.
//!
//! Entry points take resolved settings ([`purge::PurgeSettings`], [`prove::ProveSettings`]), never
//! command-line types, and return typed reports; failures are [`Error`]s that keep the CDN's
//! [`ErrorKind`](staleguard_cdn::ErrorKind) and retryability. Nothing here prints: progress goes to the
//! caller's observer, results come back as data.

pub mod conclude;
pub mod error;
pub mod notify;
pub mod paths;
pub mod plan;
pub mod prove;
pub mod purge;

pub use error::{Error, Failure};
pub use prove::{ProveReport, ProveSettings, Scope};
pub use purge::{CdnReport, Outcome, PurgeSettings, Source};
