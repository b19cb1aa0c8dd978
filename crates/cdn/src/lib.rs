//! CDN invalidation for staleguard: one small async [`Provider`] trait, one module per CDN behind a Cargo
//! feature, and wrappers written once for all providers (retry with backoff under a deadline, rate limit,
//! chunking by the provider's limits, dry-run recording, events).
//!
//! What to purge is decided elsewhere (`staleguard_core::purge` plans the items); this crate only sends
//! them, follows asynchronous purges to completion and reports what happened.

#[cfg(any(feature = "varnish", feature = "cloudflare", feature = "fastly"))]
mod api;
pub mod error;
mod open;
pub mod provider;
pub mod wrap;

#[cfg(feature = "cloudflare")]
pub mod cloudflare;
#[cfg(feature = "cloudfront")]
pub mod cloudfront;
#[cfg(feature = "fastly")]
pub mod fastly;
#[cfg(feature = "varnish")]
pub mod varnish;

pub use error::{CdnError, ErrorKind};
pub use open::{default_rate, open};
pub use provider::{Batch, Event, Invalidation, Provider, Receipt, RetryUnit, Status};
pub use staleguard_core::purge::{Capabilities, Item, ItemKind};

/// What the opener knows about the deploy target, for providers that map store keys to URLs themselves.
#[derive(Debug, Clone, Default)]
pub struct OpenContext {
    /// The store's bucket (`s3://BUCKET/…`), when it is a bucket.
    pub bucket: Option<String>,
    /// The store's key prefix inside the bucket (`site/` or empty).
    pub store_prefix: String,
}
