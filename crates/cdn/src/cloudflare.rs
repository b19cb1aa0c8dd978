//! Cloudflare: `POST {api}/zones/{zone}/purge_cache` with `Authorization: Bearer <token>`.
//!
//! One kind per call, as Cloudflare requires (the chunker keeps kinds apart):
//!
//! | items | body |
//! |---|---|
//! | paths | `{"files": ["https://www.example.com/a.html", …]}` (scheme and host from `domain`; the path percent-encoded, [`crate::provider::url_path`]) |
//! | prefixes | `{"prefixes": ["www.example.com/docs/", …]}` (no scheme) |
//! | tags | `{"tags": ["sg-…", …]}` (the origin's `Cache-Tag` header) |
//! | hosts | `{"hosts": ["www.example.com", …]}` |
//! | everything | `{"purge_everything": true}` |
//!
//! At most `max-items` (default 100) items per call. The answer is
//! `{"success": bool, "errors": [{"code", "message"}], "result": {"id"}}`; the purge is synchronous.
//! 429 is throttled (with `Retry-After`), 5xx transient, 401/403 unauthorized, `success: false`
//! invalid with Cloudflare's messages. The token comes from the environment and never appears in
//! `Debug` output or errors.

use async_trait::async_trait;
use serde::Deserialize;
use serde_json::json;
use staleguard_core::config::CdnConfig;
use staleguard_core::purge::{Capabilities, ItemKind, Pricing};

use crate::api::{api_base, http_client, site, snippet, token_from_env};
use crate::error::retry_after;
use crate::provider::url_path;
use crate::{Batch, CdnError, ErrorKind, Invalidation, Provider, Receipt, Status};

/// The public API root.
pub const API: &str = "https://api.cloudflare.com/client/v4";

/// Items per call unless the entry's `max-items` says otherwise.
pub const DEFAULT_MAX_ITEMS: usize = 100;

/// One Cloudflare zone.
pub struct Cloudflare {
    name: String,
    zone: String,
    scheme: String,
    host: String,
    api: String,
    token_var: String,
    token: String,
    caps: Capabilities,
    client: reqwest::Client,
}

impl std::fmt::Debug for Cloudflare {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Cloudflare")
            .field("name", &self.name)
            .field("zone", &self.zone)
            .field("host", &self.host)
            .field("api", &staleguard_check::client::redact_url(&self.api))
            .field("token", &format_args!("<redacted: ${}>", self.token_var))
            .finish_non_exhaustive()
    }
}

#[derive(Deserialize, Default)]
struct Answer {
    #[serde(default)]
    success: bool,
    #[serde(default)]
    errors: Vec<Message>,
    #[serde(default)]
    result: Option<PurgeResult>,
}

#[derive(Deserialize)]
struct Message {
    #[serde(default)]
    code: i64,
    #[serde(default)]
    message: String,
}

#[derive(Deserialize)]
struct PurgeResult {
    #[serde(default)]
    id: Option<String>,
}

impl Cloudflare {
    /// The zone of `cfg` with the token from the variable `cfg.token_var()` (`CLOUDFLARE_API_TOKEN`).
    pub fn from_env(cfg: &CdnConfig) -> Result<Cloudflare, CdnError> {
        Cloudflare::new(cfg, token_from_env(cfg)?)
    }

    /// The zone of `cfg` with this token.
    pub fn new(cfg: &CdnConfig, token: String) -> Result<Cloudflare, CdnError> {
        let name = cfg.label().to_string();
        if cfg.zone.is_empty() {
            return Err(CdnError::new(ErrorKind::Config, name, "no `zone` to purge"));
        }
        let (scheme, host) = site(&cfg.domain);
        let has_domain = !host.is_empty();
        Ok(Cloudflare {
            client: http_client(&name)?,
            zone: cfg.zone.clone(),
            scheme: scheme.to_string(),
            host: host.to_string(),
            api: api_base(cfg, API),
            token_var: cfg.token_var().to_string(),
            token,
            caps: Capabilities {
                paths: has_domain,
                prefixes: has_domain,
                tags: true,
                hosts: true,
                all: true,
                soft: false,
                max_items_per_call: cfg.max_items.unwrap_or(DEFAULT_MAX_ITEMS),
                max_paths_in_flight: None,
                max_prefixes_in_flight: None,
                asynchronous: false,
                pricing: Pricing::FREE,
            },
            name,
        })
    }

    /// The request body for one call (one kind of item).
    fn body(&self, batch: &Batch) -> Result<serde_json::Value, CdnError> {
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
                    "call `{}` mixes item kinds; Cloudflare takes one kind per call",
                    batch.reference
                ),
            ));
        }
        let values = |f: &dyn Fn(&str) -> String| -> Vec<String> {
            batch.items.iter().map(|i| f(&i.value)).collect()
        };
        Ok(match first.kind {
            ItemKind::Path => json!({
                "files": values(&|p| format!("{}://{}{}", self.scheme, self.host, url_path(p)))
            }),
            ItemKind::Prefix => {
                json!({ "prefixes": values(&|p| format!("{}{}", self.host, url_path(p))) })
            }
            ItemKind::Tag => json!({ "tags": values(&|t| t.to_string()) }),
            ItemKind::Host => json!({ "hosts": values(&|h| h.to_string()) }),
            ItemKind::All => json!({ "purge_everything": true }),
        })
    }

    fn url(&self) -> String {
        format!("{}/zones/{}/purge_cache", self.api, self.zone)
    }
}

fn messages(errors: &[Message]) -> String {
    errors
        .iter()
        .map(|e| format!("{} (code {})", e.message, e.code))
        .collect::<Vec<_>>()
        .join("; ")
}

#[async_trait]
impl Provider for Cloudflare {
    fn name(&self) -> &str {
        &self.name
    }

    fn capabilities(&self) -> &Capabilities {
        &self.caps
    }

    async fn purge(&self, batch: &Batch) -> Result<Receipt, CdnError> {
        let body = self.body(batch)?;
        let resp = self
            .client
            .post(self.url())
            .bearer_auth(&self.token)
            .json(&body)
            .send()
            .await
            .map_err(|e| CdnError::transport(&self.name, "the Cloudflare API", &e))?;
        let status = resp.status().as_u16();
        let after = retry_after(resp.headers());
        let text = resp.text().await.unwrap_or_default();
        let answer: Option<Answer> = serde_json::from_str(&text).ok();
        let said = match &answer {
            Some(a) if !a.errors.is_empty() => messages(&a.errors),
            _ => snippet(&text, 200),
        };
        let fail = |kind: ErrorKind, hint: Option<String>| {
            let e = CdnError::new(
                kind,
                &self.name,
                format!(
                    "purge of {} item{} (`{}`) failed: HTTP {status}{}",
                    batch.items.len(),
                    if batch.items.len() == 1 { "" } else { "s" },
                    batch.items[0],
                    if said.is_empty() {
                        String::new()
                    } else {
                        format!(": {said}")
                    }
                ),
            )
            .with_retry_after(after);
            e.with_hint_opt(hint)
        };
        let not_found = || {
            Some(format!(
                "check `zone = \"{}\"`: it must be the zone's id (Overview page of the domain in the dashboard)",
                self.zone
            ))
        };
        match status {
            200..=299 => {}
            401 | 403 => {
                return Err(fail(
                    ErrorKind::Unauthorized,
                    Some(format!(
                        "the token in `{}` needs the Zone > Cache Purge permission for zone `{}`",
                        self.token_var, self.zone
                    )),
                ));
            }
            404 => return Err(fail(ErrorKind::NotFound, not_found())),
            s => {
                let kind = ErrorKind::from_status(s);
                let zone_unknown = answer
                    .as_ref()
                    .is_some_and(|a| a.errors.iter().any(|e| e.code == 7003 || e.code == 7000));
                if zone_unknown {
                    return Err(fail(ErrorKind::NotFound, not_found()));
                }
                return Err(fail(kind, None));
            }
        }
        let Some(answer) = answer else {
            return Err(fail(
                ErrorKind::Other,
                Some("Cloudflare answered something that is not its JSON".into()),
            ));
        };
        if !answer.success {
            return Err(fail(ErrorKind::Invalid, None));
        }
        let id = answer.result.and_then(|r| r.id);
        Ok(Receipt {
            provider: self.name.clone(),
            detail: match &id {
                Some(id) => format!("purge id {id}"),
                None => "purged".into(),
            },
            id,
            status: Status::Completed,
            items: batch.items.len(),
        })
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
    use staleguard_core::purge::Item;

    use super::*;

    fn cf(domain: &str) -> Cloudflare {
        // Without a domain an entry must purge by tag (its checks say so).
        let purge_by = if domain.is_empty() { "tags" } else { "paths" };
        let cfg: CdnConfig = serde_json::from_value(json!({
            "provider": "cloudflare", "zone": "Z1", "domain": domain, "api": "http://127.0.0.1:9/v4/",
            "purge-by": purge_by,
        }))
        .unwrap();
        Cloudflare::new(&cfg, "s3cr3t-token".into()).unwrap()
    }

    #[test]
    fn bodies_follow_the_api() {
        let c = cf("www.example.com");
        let body = |items: Vec<Item>| {
            c.body(&Batch {
                items,
                reference: "r".into(),
                soft: false,
            })
            .unwrap()
        };
        assert_eq!(
            body(vec![
                Item::path("/a.html"),
                Item::path("/"),
                Item::path("/é b")
            ]),
            json!({"files": [
                "https://www.example.com/a.html",
                "https://www.example.com/",
                "https://www.example.com/%C3%A9%20b"
            ]})
        );
        assert_eq!(
            body(vec![Item::prefix("/docs/")]),
            json!({"prefixes": ["www.example.com/docs/"]})
        );
        assert_eq!(body(vec![Item::tag("t1")]), json!({"tags": ["t1"]}));
        assert_eq!(
            body(vec![Item::host("a.example.com")]),
            json!({"hosts": ["a.example.com"]})
        );
        assert_eq!(body(vec![Item::all()]), json!({"purge_everything": true}));
        assert!(
            c.body(&Batch {
                items: vec![Item::path("/a"), Item::tag("t")],
                reference: "r".into(),
                soft: false
            })
            .is_err()
        );
        assert_eq!(c.url(), "http://127.0.0.1:9/v4/zones/Z1/purge_cache");
        assert_eq!(
            cf("http://localhost:8080")
                .body(&Batch {
                    items: vec![Item::path("/x")],
                    reference: "r".into(),
                    soft: false
                })
                .unwrap(),
            json!({"files": ["http://localhost:8080/x"]})
        );
    }

    #[test]
    fn no_domain_means_tags_only() {
        let c = cf("");
        assert!(!c.capabilities().paths && !c.capabilities().prefixes && c.capabilities().tags);
    }

    #[test]
    fn debug_hides_the_token() {
        let text = format!("{:?}", cf("www.example.com"));
        assert!(!text.contains("s3cr3t"), "{text}");
        assert!(text.contains("CLOUDFLARE_API_TOKEN"), "{text}");
    }
}
