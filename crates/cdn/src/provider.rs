//! The provider trait every CDN module implements, and the values that cross it.
use async_trait::async_trait;
use serde::{Deserialize, Serialize};
pub use staleguard_core::event::{Event, Status};
use staleguard_core::purge::{Capabilities, Item};

use crate::CdnError;
use crate::wrap::Retrier;

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

/// What a retry re-sends when part of a purge call fails: the provider's unit of work.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum RetryUnit {
    /// The whole call: one API request per call (CloudFront `CreateInvalidation`, Cloudflare
    /// `purge_cache`), which the CDN takes or refuses as a whole.
    Call,
    /// Each request of the call on its own: a call is many independent requests (Fastly: one per URL;
    /// Varnish: one per item and node), and a retry re-sends only those that failed
    /// ([`Provider::purge_each`]).
    Request,
}

/// A CDN that can drop cached URLs. Implementations make one call per [`Provider::purge`] and do not
/// retry, split or sleep: the wrappers in [`crate::wrap`] do that for every provider alike. A provider
/// whose call is many requests ([`RetryUnit::Request`]) also implements [`Provider::purge_each`],
/// where it retries only through the [`Retrier`] it is handed.
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

    /// The name under which the provider's free items a month are counted, when it is not the
    /// provider's own [`Provider::name`]: CloudFront's 1,000 free paths are per AWS account, so every
    /// distribution of one account shares one count (`cloudfront-account:123456789012`).
    fn free_tier_scope(&self) -> Option<&str> {
        None
    }

    /// Sends one purge call. `batch` holds only item kinds the capabilities allow, items of one kind
    /// only, and no more items than `max_items_per_call` ([`crate::wrap::chunk`] makes such batches).
    async fn purge(&self, batch: &Batch) -> Result<Receipt, CdnError>;

    /// What [`crate::wrap::Retry`] re-sends after a failure: the call (the default) or each failed
    /// request ([`RetryUnit::Request`], through [`Provider::purge_each`]).
    fn retry_unit(&self) -> RetryUnit {
        RetryUnit::Call
    }

    /// Sends one purge call like [`Provider::purge`], with its requests sent through
    /// [`Retrier::each`]: a request that fails is retried on its own, one that succeeded is not sent
    /// again, and the call fails only with the requests that failed for good. What
    /// [`crate::wrap::Retry`] calls for a provider whose unit is [`RetryUnit::Request`]. The default,
    /// for a provider whose unit is the call, retries the whole call.
    async fn purge_each(&self, batch: &Batch, retry: &Retrier) -> Result<Receipt, CdnError> {
        retry
            .run("purge", batch.items.len(), |_| self.purge(batch))
            .await
    }

    /// The status of an asynchronous purge. Synchronous providers answer `Completed`.
    async fn status(&self, id: &str) -> Result<Status, CdnError>;

    /// Recent purges, newest first, at most `max`. Providers with no purge history return an empty list.
    async fn list(&self, max: usize) -> Result<Vec<Invalidation>, CdnError>;
}

/// A path item's value (a decoded URL path, as store keys and the planner's URLs are) as it appears in
/// a request line: bytes a browser would percent-encode in a path are encoded (controls, space, `"`,
/// `#`, `<`, `>`, backtick, `{`, `}`, non-ASCII), and so are `%` (the value is decoded, so a `%` is a
/// literal percent sign), `|`, `\`, `^`, `[` and `]`. `?` is kept: it starts the query string.
pub fn url_path(value: &str) -> std::borrow::Cow<'_, str> {
    let encode = |b: u8| !b.is_ascii_graphic() || b"\"#<>`{}%|\\^[]".contains(&b);
    if !value.bytes().any(encode) {
        return std::borrow::Cow::Borrowed(value);
    }
    let mut out = String::with_capacity(value.len() + 16);
    for b in value.bytes() {
        if encode(b) {
            out.push_str(&format!("%{b:02X}"));
        } else {
            out.push(b as char);
        }
    }
    std::borrow::Cow::Owned(out)
}

/// A shared provider is a provider: `Arc<dyn Provider>` can be wrapped like a concrete one.
#[async_trait]
impl<T: Provider + ?Sized> Provider for std::sync::Arc<T> {
    fn name(&self) -> &str {
        (**self).name()
    }
    fn capabilities(&self) -> &Capabilities {
        (**self).capabilities()
    }
    fn url_prefix(&self) -> Option<&str> {
        (**self).url_prefix()
    }
    fn free_tier_scope(&self) -> Option<&str> {
        (**self).free_tier_scope()
    }
    fn retry_unit(&self) -> RetryUnit {
        (**self).retry_unit()
    }
    async fn purge(&self, batch: &Batch) -> Result<Receipt, CdnError> {
        (**self).purge(batch).await
    }
    async fn purge_each(&self, batch: &Batch, retry: &Retrier) -> Result<Receipt, CdnError> {
        (**self).purge_each(batch, retry).await
    }
    async fn status(&self, id: &str) -> Result<Status, CdnError> {
        (**self).status(id).await
    }
    async fn list(&self, max: usize) -> Result<Vec<Invalidation>, CdnError> {
        (**self).list(max).await
    }
}

/// A borrowed provider is a provider (wrap one without giving it away).
#[async_trait]
impl<T: Provider + ?Sized> Provider for &T {
    fn name(&self) -> &str {
        (**self).name()
    }
    fn capabilities(&self) -> &Capabilities {
        (**self).capabilities()
    }
    fn url_prefix(&self) -> Option<&str> {
        (**self).url_prefix()
    }
    fn free_tier_scope(&self) -> Option<&str> {
        (**self).free_tier_scope()
    }
    fn retry_unit(&self) -> RetryUnit {
        (**self).retry_unit()
    }
    async fn purge(&self, batch: &Batch) -> Result<Receipt, CdnError> {
        (**self).purge(batch).await
    }
    async fn purge_each(&self, batch: &Batch, retry: &Retrier) -> Result<Receipt, CdnError> {
        (**self).purge_each(batch, retry).await
    }
    async fn status(&self, id: &str) -> Result<Status, CdnError> {
        (**self).status(id).await
    }
    async fn list(&self, max: usize) -> Result<Vec<Invalidation>, CdnError> {
        (**self).list(max).await
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn url_path_encodes_what_browsers_encode() {
        let check = |v: &str, want: &str| assert_eq!(url_path(v), want, "{v}");
        check("/a/b.html", "/a/b.html");
        check("/my file.html", "/my%20file.html");
        check("/café", "/caf%C3%A9");
        check("/100%.html", "/100%25.html");
        check("/a\"b<c>#d", "/a%22b%3Cc%3E%23d");
        check("/x?q=1&r=~", "/x?q=1&r=~");
    }
}
