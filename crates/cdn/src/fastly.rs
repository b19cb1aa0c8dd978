//! Fastly: the purge API at `https://api.fastly.com`, authenticated with `Fastly-Key: <token>`.
//!
//! | items | request |
//! |---|---|
//! | paths | `POST /purge/{host}{path}` per URL (the path percent-encoded, [`crate::provider::url_path`]) (Fastly purges one URL per request; a call's URLs go out together, at most [`CONCURRENCY`] at a time) |
//! | tags | `POST /service/{service}/purge` with `{"surrogate_keys": [...]}` (at most 256 keys) |
//! | everything | `POST /service/{service}/purge_all` |
//!
//! `Fastly-Soft-Purge: 1` marks objects stale instead of dropping them when the entry sets `soft`
//! (purge-all is never soft: Fastly has no soft purge-all). Prefixes are not supported. Every purge is
//! synchronous. 429 is throttled (`Retry-After`, or `Fastly-RateLimit-Reset` as a Unix time), 5xx
//! transient, 401/403 unauthorized, 404 not found (the service). The token never appears in `Debug`
//! output or errors.
//!
//! The unit of retry is the request ([`RetryUnit::Request`]): under [`crate::wrap::Retry`], a URL
//! whose purge failed is sent again on its own ([`Retrier::each`]) while the call's other URLs go
//! on, and a URL Fastly acknowledged is never sent again; the call fails only with the URLs that
//! failed for good. [`Provider::purge`] alone sends each request once.

use std::time::{Duration, SystemTime};

use async_trait::async_trait;
use serde_json::json;
use staleguard_core::config::CdnConfig;
use staleguard_core::purge::{Capabilities, ItemKind, Pricing};

use crate::api::{api_base, http_client, site, snippet, token_from_env};
use crate::error::retry_after;
use crate::provider::url_path;
use crate::wrap::Retrier;
use crate::{Batch, CdnError, ErrorKind, Invalidation, Provider, Receipt, RetryUnit, Status};

/// The public API root.
pub const API: &str = "https://api.fastly.com";

/// Surrogate keys per batch purge (Fastly's limit), and items per call by default.
pub const MAX_KEYS: usize = 256;

/// URL purges in flight at once within one call.
pub const CONCURRENCY: usize = 16;

/// One Fastly service.
pub struct Fastly {
    name: String,
    service: String,
    host: String,
    api: String,
    token_var: String,
    token: String,
    caps: Capabilities,
    client: reqwest::Client,
}

impl std::fmt::Debug for Fastly {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Fastly")
            .field("name", &self.name)
            .field("service", &self.service)
            .field("host", &self.host)
            .field("api", &staleguard_check::client::redact_url(&self.api))
            .field("token", &format_args!("<redacted: ${}>", self.token_var))
            .finish_non_exhaustive()
    }
}

/// One request's failure.
struct Failure {
    what: String,
    status: Option<u16>,
    kind: ErrorKind,
    text: String,
    retry_after: Option<Duration>,
}

impl Fastly {
    /// The service of `cfg` with the token from the variable `cfg.token_var()` (`FASTLY_API_TOKEN`).
    pub fn from_env(cfg: &CdnConfig) -> Result<Fastly, CdnError> {
        Fastly::new(cfg, token_from_env(cfg)?)
    }

    /// The service of `cfg` with this token.
    pub fn new(cfg: &CdnConfig, token: String) -> Result<Fastly, CdnError> {
        let name = cfg.label().to_string();
        if cfg.service.is_empty() {
            return Err(CdnError::new(
                ErrorKind::Config,
                name,
                "no `service` to purge",
            ));
        }
        let (_, host) = site(&cfg.domain);
        Ok(Fastly {
            client: http_client(&name)?,
            service: cfg.service.clone(),
            host: host.to_string(),
            api: api_base(cfg, API),
            token_var: cfg.token_var().to_string(),
            token,
            caps: Capabilities {
                paths: !host.is_empty(),
                prefixes: false,
                tags: true,
                hosts: false,
                all: true,
                soft: true,
                max_items_per_call: cfg.max_items.unwrap_or(MAX_KEYS).min(MAX_KEYS),
                max_paths_in_flight: None,
                max_prefixes_in_flight: None,
                asynchronous: false,
                pricing: Pricing::FREE,
            },
            name,
        })
    }

    /// Sends one POST; the answer's JSON on success.
    async fn post(
        &self,
        path: &str,
        body: Option<serde_json::Value>,
        soft: bool,
        what: &str,
    ) -> Result<serde_json::Value, Failure> {
        let mut rb = self
            .client
            .post(format!("{}{path}", self.api))
            .header("Fastly-Key", &self.token)
            .header(reqwest::header::ACCEPT, "application/json");
        if soft {
            rb = rb.header("Fastly-Soft-Purge", "1");
        }
        if let Some(b) = body {
            rb = rb.json(&b);
        }
        let resp = rb.send().await.map_err(|e| {
            let e = CdnError::transport(&self.name, "the Fastly API", &e);
            Failure {
                what: what.to_string(),
                status: None,
                kind: e.kind,
                text: e.message,
                retry_after: None,
            }
        })?;
        let status = resp.status().as_u16();
        let after = retry_after(resp.headers()).or_else(|| rate_limit_reset(resp.headers()));
        let text = resp.text().await.unwrap_or_default();
        let value: Option<serde_json::Value> = serde_json::from_str(&text).ok();
        if (200..300).contains(&status) {
            return Ok(value.unwrap_or(serde_json::Value::Null));
        }
        // Fastly's errors: {"msg": "...", "detail": "..."}.
        let said = value
            .as_ref()
            .map(|v| {
                [v.get("msg"), v.get("detail")]
                    .into_iter()
                    .flatten()
                    .filter_map(|s| s.as_str())
                    .filter(|s| !s.is_empty())
                    .collect::<Vec<_>>()
                    .join(": ")
            })
            .filter(|s| !s.is_empty())
            .unwrap_or_else(|| snippet(&text, 200));
        Err(Failure {
            what: what.to_string(),
            status: Some(status),
            kind: ErrorKind::from_status(status),
            text: said,
            retry_after: after,
        })
    }

    /// One request's failure as an error: what it purged, the status, what Fastly said.
    fn request_error(&self, f: Failure) -> CdnError {
        let mut msg = format!("purge of `{}` failed", f.what);
        if let Some(s) = f.status {
            msg.push_str(&format!(": HTTP {s}"));
        }
        if !f.text.is_empty() {
            msg.push_str(&format!(": {}", f.text));
        }
        CdnError::new(f.kind, &self.name, msg).with_retry_after(f.retry_after)
    }

    /// The error of a call whose requests `failed` for good (of `requests`): the first of the kind a
    /// retry cannot fix ([`ErrorKind::worst`]), how many failed, and a hint.
    fn error(&self, mut failed: Vec<CdnError>, requests: usize) -> CdnError {
        let kind = failed
            .iter()
            .map(|e| e.kind)
            .reduce(ErrorKind::worst)
            .unwrap_or(ErrorKind::Other);
        let after = failed.iter().filter_map(|e| e.retry_after).max();
        let n = failed.len();
        let at = failed.iter().position(|e| e.kind == kind).unwrap_or(0);
        let mut e = failed.swap_remove(at);
        if n > 1 {
            e.message
                .push_str(&format!(" ({n} of {requests} requests failed)"));
        }
        let hint = match kind {
            ErrorKind::Unauthorized => Some(format!(
                "the token in `{}` needs the `purge_select` scope (`purge_all` for everything) on service `{}`",
                self.token_var, self.service
            )),
            ErrorKind::NotFound => Some(format!(
                "check `service = \"{}\"` (the service id)",
                self.service
            )),
            _ => None,
        };
        e.retry_after = after;
        e.with_hint_opt(hint)
    }

    /// One request (a key purge, purge-all) through `retry`.
    async fn one(
        &self,
        retry: &Retrier,
        items: usize,
        path: &str,
        body: Option<serde_json::Value>,
        soft: bool,
        what: &str,
    ) -> Result<serde_json::Value, CdnError> {
        let mut out = retry
            .each(&[items], 1, |_, _| {
                let body = body.clone();
                async move {
                    self.post(path, body, soft, what)
                        .await
                        .map_err(|f| self.request_error(f))
                }
            })
            .await;
        match out.pop() {
            Some(r) => r.map_err(|e| self.error(vec![e], 1)),
            None => Err(CdnError::new(
                ErrorKind::Other,
                &self.name,
                "no request was sent",
            )),
        }
    }
}

/// `Fastly-RateLimit-Reset: <unix time>` as a pause from now.
fn rate_limit_reset(headers: &reqwest::header::HeaderMap) -> Option<Duration> {
    let at: u64 = headers
        .get("fastly-ratelimit-reset")?
        .to_str()
        .ok()?
        .trim()
        .parse()
        .ok()?;
    let now = SystemTime::now()
        .duration_since(SystemTime::UNIX_EPOCH)
        .ok()?
        .as_secs();
    Some(Duration::from_secs(at.saturating_sub(now).min(3600)))
}

#[async_trait]
impl Provider for Fastly {
    fn name(&self) -> &str {
        &self.name
    }

    fn capabilities(&self) -> &Capabilities {
        &self.caps
    }

    /// A URL: Fastly purges one URL per request, and those of a call are independent.
    fn retry_unit(&self) -> RetryUnit {
        RetryUnit::Request
    }

    async fn purge(&self, batch: &Batch) -> Result<Receipt, CdnError> {
        self.purge_each(batch, &Retrier::once(&self.name)).await
    }

    async fn purge_each(&self, batch: &Batch, retry: &Retrier) -> Result<Receipt, CdnError> {
        let Some(first) = batch.items.first() else {
            return Err(CdnError::new(
                ErrorKind::Invalid,
                &self.name,
                "an empty purge call",
            ));
        };
        if batch.items.iter().any(|i| i.kind != first.kind) {
            return Err(CdnError::new(
                ErrorKind::Invalid,
                &self.name,
                format!(
                    "call `{}` mixes item kinds (one kind per call)",
                    batch.reference
                ),
            ));
        }
        let done = |id: Option<String>, detail: String| Receipt {
            provider: self.name.clone(),
            id,
            status: Status::Completed,
            items: batch.items.len(),
            detail,
        };
        match first.kind {
            ItemKind::Path => {
                if self.host.is_empty() {
                    return Err(CdnError::new(
                        ErrorKind::Config,
                        &self.name,
                        "URL purges need `domain` in the [[cdn]] entry",
                    ));
                }
                let paths: Vec<String> = batch
                    .items
                    .iter()
                    .map(|i| format!("/purge/{}{}", self.host, url_path(&i.value)))
                    .collect();
                let n = batch.items.len();
                let results = retry
                    .each(&vec![1; n], CONCURRENCY, |i, _| {
                        let (path, what) = (&paths[i], &batch.items[i].value);
                        async move {
                            self.post(path, None, batch.soft, what)
                                .await
                                .map_err(|f| self.request_error(f))
                        }
                    })
                    .await;
                let mut ids = Vec::new();
                let mut failed = Vec::new();
                for r in results {
                    match r {
                        Ok(v) => ids.extend(v.get("id").and_then(|i| i.as_str()).map(String::from)),
                        Err(e) => failed.push(e),
                    }
                }
                if !failed.is_empty() {
                    return Err(self.error(failed, n));
                }
                let id = if n == 1 { ids.pop() } else { None };
                Ok(done(
                    id,
                    format!("{n} URL{} purged", if n == 1 { "" } else { "s" }),
                ))
            }
            ItemKind::Tag => {
                let keys: Vec<&str> = batch.items.iter().map(|i| i.value.as_str()).collect();
                let what = if keys.len() == 1 {
                    format!("#{}", keys[0])
                } else {
                    format!("#{} and {} more keys", keys[0], keys.len() - 1)
                };
                let path = format!("/service/{}/purge", self.service);
                let body = json!({ "surrogate_keys": keys });
                let v = self
                    .one(retry, keys.len(), &path, Some(body), batch.soft, &what)
                    .await?;
                let ids = v.as_object().map_or(0, |m| m.len());
                Ok(done(
                    None,
                    format!("{} surrogate keys purged ({ids} purge ids)", keys.len()),
                ))
            }
            ItemKind::All => {
                let path = format!("/service/{}/purge_all", self.service);
                self.one(retry, 1, &path, None, false, "everything").await?;
                Ok(done(None, "everything purged".into()))
            }
            ItemKind::Prefix | ItemKind::Host => Err(CdnError::new(
                ErrorKind::Invalid,
                &self.name,
                format!("cannot purge `{first}`: Fastly purges URLs, surrogate keys or everything"),
            )),
        }
    }

    async fn status(&self, _id: &str) -> Result<Status, CdnError> {
        Ok(Status::Completed)
    }

    async fn list(&self, _max: usize) -> Result<Vec<Invalidation>, CdnError> {
        Ok(Vec::new())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn fastly(max: Option<usize>) -> Fastly {
        let cfg: CdnConfig = serde_json::from_value(json!({
            "provider": "fastly", "service": "SVC", "domain": "www.example.com", "max-items": max,
        }))
        .unwrap();
        Fastly::new(&cfg, "s3cr3t-key".into()).unwrap()
    }

    #[test]
    fn capabilities_and_limits() {
        let f = fastly(None);
        let c = f.capabilities();
        assert!(c.paths && c.tags && c.all && c.soft && !c.prefixes && !c.hosts);
        assert_eq!(c.max_items_per_call, 256);
        assert_eq!(fastly(Some(1000)).capabilities().max_items_per_call, 256);
        assert_eq!(fastly(Some(10)).capabilities().max_items_per_call, 10);
        assert_eq!(f.api, API);
    }

    #[test]
    fn debug_hides_the_token() {
        let text = format!("{:?}", fastly(None));
        assert!(!text.contains("s3cr3t"), "{text}");
        assert!(text.contains("FASTLY_API_TOKEN"));
    }

    #[test]
    fn rate_limit_reset_is_a_pause_from_now() {
        let mut h = reqwest::header::HeaderMap::new();
        let now = SystemTime::now()
            .duration_since(SystemTime::UNIX_EPOCH)
            .unwrap()
            .as_secs();
        h.insert(
            "fastly-ratelimit-reset",
            (now + 30).to_string().parse().unwrap(),
        );
        let d = rate_limit_reset(&h).unwrap();
        assert!(
            d <= Duration::from_secs(30) && d >= Duration::from_secs(28),
            "{d:?}"
        );
    }
}
