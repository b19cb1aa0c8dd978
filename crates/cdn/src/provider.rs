//! The provider trait every CDN module implements, and the values that cross it.

use std::time::Duration;

use async_trait::async_trait;
use serde::{Deserialize, Serialize};
use staleguard_core::purge::{Capabilities, Item};

use crate::CdnError;

/// One purge call's worth of items (the wrappers split bigger batches by the provider's limits).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Batch {
    pub items: Vec<Item>,
    /// Idempotency key, unique per deploy and batch (`<deploy id>-<cdn>-<n>`): a retry of the same batch
    /// after a timeout must not create a second purge (CloudFront `CallerReference`).
    pub reference: String,
    /// Soft purge where the provider supports it (mark stale instead of dropping).
    pub soft: bool,
}

/// Where an asynchronous purge stands.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum Status {
    InProgress,
    Completed,
}

/// What a provider answered to one purge call.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Receipt {
    /// The provider's label (`cloudfront:E2ABC`, `varnish`).
    pub provider: String,
    /// The purge's id where the provider gives one (CloudFront invalidation id, Cloudflare/Fastly
    /// request id); needed by [`Provider::status`] when `status` is `InProgress`.
    pub id: Option<String>,
    pub status: Status,
    /// Items sent in this call.
    pub items: usize,
    /// A short human note from the provider (`Purged /a.html`, `Invalidated 3 objects`, node names).
    pub detail: String,
}

/// An invalidation as listed by `staleguard invalidations list`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Invalidation {
    pub provider: String,
    pub id: String,
    pub status: Status,
    /// RFC 3339 creation time where known.
    pub created: Option<String>,
    /// The items, where the provider returns them (CloudFront GetInvalidation).
    pub items: Vec<String>,
    /// The caller reference, where there is one.
    pub reference: Option<String>,
}

/// Something worth reporting: the CLI prints them, tests count them, `tracing` logs them.
#[derive(Debug, Clone, PartialEq)]
pub enum Event {
    /// A call is about to be sent.
    Sending { provider: String, items: usize, attempt: u32 },
    /// A call succeeded.
    Sent { provider: String, items: usize, elapsed: Duration, id: Option<String> },
    /// A call failed and will be retried after `after`.
    Retrying { provider: String, error: String, after: Duration, attempt: u32 },
    /// A status poll answered.
    Polled { provider: String, id: String, status: Status },
}

/// A CDN that can drop cached URLs. Implementations make one call per [`Provider::purge`] and do not
/// retry, split or sleep: the wrappers in [`crate::wrap`] do that for every provider alike.
#[async_trait]
pub trait Provider: Send + Sync + std::fmt::Debug {
    /// A label for messages: the provider and its target (`cloudfront:E2ABC`, `varnish`, `fastly:SVC`).
    fn name(&self) -> &str;

    /// What this provider can purge and its limits.
    fn capabilities(&self) -> &Capabilities;

    /// The URL path under which the store's keys are served when the provider knows it better than the
    /// config (CloudFront: derived from the distribution's origin path and the store's prefix).
    fn url_prefix(&self) -> Option<&str> {
        None
    }

    /// Sends one purge call. `batch` holds only item kinds the capabilities allow, and no more items
    /// than `max_items_per_call`.
    async fn purge(&self, batch: &Batch) -> Result<Receipt, CdnError>;

    /// The status of an asynchronous purge. Synchronous providers answer `Completed`.
    async fn status(&self, id: &str) -> Result<Status, CdnError>;

    /// Recent purges, newest first, at most `max`. Providers with no purge history return an empty list.
    async fn list(&self, max: usize) -> Result<Vec<Invalidation>, CdnError>;
}
