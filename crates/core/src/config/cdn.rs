//! The `[[cdn]]` entries: which CDNs a deploy purges, and how.

use serde::{Deserialize, Serialize};

use super::{de_one_or_many, de_prefix_or_empty};
use crate::duration::HumanDuration;

/// A CDN provider.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum CdnProvider {
    Cloudfront,
    Varnish,
    Cloudflare,
    Fastly,
}

impl CdnProvider {
    pub fn as_str(self) -> &'static str {
        match self {
            CdnProvider::Cloudfront => "cloudfront",
            CdnProvider::Varnish => "varnish",
            CdnProvider::Cloudflare => "cloudflare",
            CdnProvider::Fastly => "fastly",
        }
    }
}

/// What to do when a CDN's purge fails after its retries.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize, Serialize, Default)]
#[serde(rename_all = "lowercase")]
pub enum OnFailure {
    /// The deploy fails (the objects stay deployed; re-run `staleguard invalidate`).
    #[default]
    Fail,
    /// Print a warning and go on.
    Warn,
}

/// How changed objects are addressed in a purge.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize, Serialize, Default)]
#[serde(rename_all = "lowercase")]
pub enum PurgeBy {
    /// URL paths (and prefixes where the planner finds them cheaper).
    #[default]
    Paths,
    /// Surrogate keys: one tag per object ([`crate::purge::key_tag`]), sent by the origin.
    Tags,
}

/// How a Varnish node is told to drop URLs.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize, Serialize, Default)]
#[serde(rename_all = "lowercase")]
pub enum VarnishMode {
    /// `PURGE <url>` per URL; prefixes become bans.
    #[default]
    Purge,
    /// `BAN` with `x-ban-url: <regex>` (one per URL, or `^prefix` for prefixes).
    Ban,
    /// `PURGE` with `xkey-purge: k1 k2 …` (or `xkey-softpurge` when `soft`).
    Xkey,
}

/// One `[[cdn]]` entry. Keys that do not apply to the provider are rejected by [`CdnConfig::check`].
#[derive(Debug, Clone, Deserialize, Serialize, PartialEq)]
#[serde(deny_unknown_fields, rename_all = "kebab-case")]
pub struct CdnConfig {
    pub provider: CdnProvider,
    /// A label for messages and `--cdn NAME`; default: the provider's name.
    #[serde(default)]
    pub name: String,
    #[serde(default)]
    pub on_failure: OnFailure,
    /// Wait for the purge to complete (asynchronous CDNs such as CloudFront).
    #[serde(default = "yes")]
    pub wait: bool,
    /// How long to wait, e.g. `15m`.
    #[serde(default = "default_cdn_timeout")]
    pub timeout: HumanDuration,
    /// URL path under which the store's keys are served (`/` or `/site/`); empty = `/`, or for
    /// CloudFront derived from the distribution's origin path.
    #[serde(default, deserialize_with = "de_prefix_or_empty")]
    pub url_prefix: String,
    /// A prefix item may drop at most this many unchanged mutable URLs. Default: 50 where items are
    /// billed (CloudFront: a wildcard that saves paths is worth a few needless origin fetches), 0 where
    /// they are free (Varnish, Cloudflare, Fastly: a prefix only where it covers exactly what changed).
    #[serde(default)]
    pub sweep_ceiling: Option<usize>,
    /// …or this many times the changed URLs the prefix covers, whichever is larger. Default: 2 where
    /// items are billed (a wildcard over a folder where at least a third of the pages changed is worth it:
    /// a template-wide change is one `/docs/*`, not 40,000 billed paths), 0 where they are free.
    #[serde(default)]
    pub sweep_ratio: Option<f64>,
    #[serde(default)]
    pub purge_by: PurgeBy,
    /// Soft purge (Fastly, Varnish xkey): mark stale and revalidate instead of dropping.
    #[serde(default)]
    pub soft: bool,
    /// Items per API call (Cloudflare: 100 by default, 30 for prefixes on some plans).
    #[serde(default)]
    pub max_items: Option<usize>,
    /// API calls per second at most; 0 = the provider's default.
    #[serde(default)]
    pub max_rate: f64,
    /// API base URL override (tests, proxies): CloudFront endpoint, Cloudflare or Fastly API root.
    #[serde(default)]
    pub api: String,
    // CloudFront
    /// Distribution ids, or `auto` to find them by `domain` (ListDistributions).
    #[serde(default, deserialize_with = "de_one_or_many")]
    pub distribution: Vec<String>,
    /// The site's domain (a CNAME alias of the distribution, or the zone's host for full URLs).
    #[serde(default)]
    pub domain: String,
    /// Allow `#tag` invalidation items (CloudFront accounts with tag invalidation).
    #[serde(default)]
    pub tags: bool,
    // Varnish
    /// Varnish nodes (`http://10.0.0.5:6081`); every one must accept the purge.
    #[serde(default)]
    pub nodes: Vec<String>,
    #[serde(default)]
    pub mode: Option<VarnishMode>,
    // Cloudflare
    #[serde(default)]
    pub zone: String,
    // Fastly
    #[serde(default)]
    pub service: String,
    /// Environment variable holding the API token (Cloudflare: `CLOUDFLARE_API_TOKEN`, Fastly:
    /// `FASTLY_API_TOKEN`). Tokens are never read from the config file.
    #[serde(default)]
    pub token_env: String,
}

fn yes() -> bool {
    true
}
fn default_cdn_timeout() -> HumanDuration {
    HumanDuration::from_secs(1200)
}

impl CdnConfig {
    /// The label used in messages.
    pub fn label(&self) -> &str {
        if self.name.is_empty() {
            self.provider.as_str()
        } else {
            &self.name
        }
    }

    /// The sweep ratio for a provider whose items cost `per_item_usd`.
    pub fn sweep_ratio_for(&self, per_item_usd: f64) -> f64 {
        self.sweep_ratio
            .unwrap_or(if per_item_usd > 0.0 { 2.0 } else { 0.0 })
    }

    /// The sweep ceiling for a provider whose items cost `per_item_usd`.
    pub fn sweep_ceiling_for(&self, per_item_usd: f64) -> usize {
        self.sweep_ceiling
            .unwrap_or(if per_item_usd > 0.0 { 50 } else { 0 })
    }

    /// The token variable, defaulted per provider.
    pub fn token_var(&self) -> &str {
        match (self.token_env.is_empty(), self.provider) {
            (false, _) => &self.token_env,
            (true, CdnProvider::Cloudflare) => "CLOUDFLARE_API_TOKEN",
            (true, CdnProvider::Fastly) => "FASTLY_API_TOKEN",
            (true, _) => "",
        }
    }

    /// Cross-field checks: required keys present, keys of other providers absent.
    pub fn check(&self) -> Result<(), String> {
        let p = self.provider.as_str();
        let misplaced = |key: &str, set: bool, ok_for: &[CdnProvider]| -> Result<(), String> {
            if set && !ok_for.contains(&self.provider) {
                let names: Vec<&str> = ok_for.iter().map(|p| p.as_str()).collect();
                return Err(format!(
                    "`{key}` does not apply to provider `{p}` (only to {}); remove it",
                    names.join(", ")
                ));
            }
            Ok(())
        };
        use CdnProvider::*;
        misplaced("distribution", !self.distribution.is_empty(), &[Cloudfront])?;
        misplaced("tags", self.tags, &[Cloudfront])?;
        misplaced("nodes", !self.nodes.is_empty(), &[Varnish])?;
        misplaced("mode", self.mode.is_some(), &[Varnish])?;
        misplaced("zone", !self.zone.is_empty(), &[Cloudflare])?;
        misplaced("service", !self.service.is_empty(), &[Fastly])?;
        misplaced(
            "token-env",
            !self.token_env.is_empty(),
            &[Cloudflare, Fastly],
        )?;
        misplaced("soft", self.soft, &[Varnish, Fastly])?;
        if self.max_rate < 0.0 || !self.max_rate.is_finite() {
            return Err(format!(
                "max-rate must be a positive number, got {}",
                self.max_rate
            ));
        }
        if let Some(r) = self.sweep_ratio
            && (!r.is_finite() || r < 0.0)
        {
            return Err(format!("sweep-ratio must be a number ≥ 0, got {r}"));
        }
        if self.max_items == Some(0) {
            return Err("max-items must be at least 1".into());
        }
        match self.provider {
            Cloudfront => {
                if self.distribution.is_empty() {
                    return Err(
                        "cloudfront needs `distribution = \"E…\"` (or `\"auto\"` with `domain`)"
                            .into(),
                    );
                }
                if self.distribution.iter().any(|d| d == "auto") && self.domain.is_empty() {
                    return Err(
                        "`distribution = \"auto\"` needs `domain = \"www.example.com\"` to find it"
                            .into(),
                    );
                }
            }
            Varnish => {
                if self.nodes.is_empty() {
                    return Err("varnish needs `nodes = [\"http://HOST:PORT\"]`".into());
                }
                for n in &self.nodes {
                    if !(n.starts_with("http://") || n.starts_with("https://")) {
                        return Err(format!(
                            "varnish node `{n}` must be an http:// or https:// URL"
                        ));
                    }
                }
                if self.mode == Some(VarnishMode::Xkey) && self.purge_by != PurgeBy::Tags {
                    return Err(
                        "varnish `mode = \"xkey\"` purges by tag: also set `purge-by = \"tags\"`"
                            .into(),
                    );
                }
                if self.soft && self.mode != Some(VarnishMode::Xkey) {
                    return Err(
                        "varnish `soft = true` needs `mode = \"xkey\"` (xkey-softpurge)".into(),
                    );
                }
            }
            Cloudflare => {
                if self.zone.is_empty() {
                    return Err("cloudflare needs `zone = \"ZONE_ID\"`".into());
                }
                if self.domain.is_empty() && self.purge_by == PurgeBy::Paths {
                    return Err(
                        "cloudflare purges full URLs: set `domain = \"www.example.com\"`".into(),
                    );
                }
            }
            Fastly => {
                if self.service.is_empty() {
                    return Err("fastly needs `service = \"SERVICE_ID\"`".into());
                }
                if self.domain.is_empty() && self.purge_by == PurgeBy::Paths {
                    return Err(
                        "fastly purges full URLs: set `domain = \"www.example.com\"`".into(),
                    );
                }
            }
        }
        Ok(())
    }
}
