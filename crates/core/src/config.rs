//! `staleguard.toml`: typed configuration, validated while parsing so every error names the key and line.
//!
//! Unknown keys are rejected (`deny_unknown_fields`); values that need checking (globs, regexes, levels)
//! are checked inside their deserializers, so `toml` reports the failure with its line and column.

use std::fmt;

use serde::{Deserialize, Deserializer, Serialize};

/// The whole configuration file.
#[derive(Debug, Clone, Default, Deserialize, Serialize, PartialEq)]
#[serde(deny_unknown_fields, rename_all = "kebab-case")]
pub struct Config {
    #[serde(default)]
    pub build: BuildConfig,
    #[serde(default)]
    pub serve: ServeConfig,
    #[serde(default)]
    pub deploy: DeployConfig,
    /// The route-policy table (first match wins), see [`crate::routes`].
    #[serde(default)]
    pub routes: Vec<crate::routes::RouteRule>,
    /// CDNs to purge after a deploy (`[[cdn]]`, any number; all of them are purged).
    #[serde(default)]
    pub cdn: Vec<CdnConfig>,
    #[serde(default)]
    pub verify: VerifyConfig,
}

/// The `[verify]` section: how a deploy proves that users get what was deployed.
#[derive(Debug, Clone, Deserialize, Serialize, PartialEq)]
#[serde(deny_unknown_fields, rename_all = "kebab-case", default)]
pub struct VerifyConfig {
    /// The site as users reach it, through the CDN (`https://www.example.com`); several for several
    /// edges (each Varnish node). Empty: no warm-up or verification through a CDN.
    #[serde(deserialize_with = "de_http_urls")]
    pub cdn_url: Vec<String>,
    /// The origin the CDN pulls from (`http://127.0.0.1:8080`, `https://origin.example.com`). When set, a
    /// deploy waits until the origin's version endpoint reports the deployed version before purging (a
    /// purge that reaches the CDN before the origin switched would re-cache the old content), and verify
    /// compares the version seen through the CDN with the origin's.
    #[serde(deserialize_with = "de_http_url_or_empty")]
    pub origin_url: String,
    /// Path of the version endpoint; empty = `[serve] version-path`.
    pub version_path: String,
    /// How long to wait for the origin to switch, e.g. `60s`.
    #[serde(deserialize_with = "de_age")]
    pub origin_timeout: String,
    /// URL path the store's keys are served under through `cdn-url`; empty = a `[[cdn]]` `url-prefix`,
    /// else what the purge found (CloudFront's origin path), else `[build] url-prefix`.
    #[serde(deserialize_with = "de_prefix_or_empty")]
    pub url_prefix: String,
    /// `Host` header sent with requests to `cdn-url` (to reach an edge by address).
    pub host: String,
    /// Paths requested through the CDN after the purge so the first visitor hits a warm edge.
    pub warm: Vec<String>,
    /// Also warm every changed mutable URL.
    pub warm_changed: bool,
    /// Warm-up requests in flight.
    pub warm_concurrency: usize,
    /// `Accept-Encoding` values to warm with (one request each); empty = what browsers send.
    pub warm_encodings: Vec<String>,
    /// `Accept-Encoding` values each URL is checked with (each is its own cached variant); empty = what
    /// browsers send and `identity` (download tools). `""` checks the variant of requests without one.
    pub encodings: Vec<String>,
    /// Check at most this many changed URLs (aliases and index pages first, then a sample).
    pub max_checks: usize,
    /// Verification requests in flight.
    pub concurrency: usize,
    /// How long edges may take to converge before a URL counts as stale, e.g. `2m`.
    #[serde(deserialize_with = "de_age")]
    pub timeout: String,
    /// Smoke tests: `[[verify.assert]] path = "/", status = 200, contains = "Welcome"`.
    #[serde(rename = "assert")]
    pub asserts: Vec<AssertRule>,
    /// Environment variable holding a Slack-compatible webhook URL for the deploy summary (a webhook
    /// URL is a secret: it is never read from the config file). Unset variable: no notification.
    pub webhook_env: String,
    /// Run warm-up and verification at the end of `deploy` and `rollback` (when `cdn-url` is set).
    pub in_deploy: bool,
}

/// One smoke test of `[verify]`.
#[derive(Debug, Clone, Deserialize, Serialize, PartialEq)]
#[serde(deny_unknown_fields, rename_all = "kebab-case")]
pub struct AssertRule {
    #[serde(deserialize_with = "de_abs_path")]
    pub path: String,
    #[serde(default)]
    pub status: Option<u16>,
    #[serde(default)]
    pub contains: Option<String>,
}

impl Default for VerifyConfig {
    fn default() -> Self {
        VerifyConfig {
            cdn_url: Vec::new(),
            origin_url: String::new(),
            version_path: String::new(),
            origin_timeout: "60s".into(),
            url_prefix: String::new(),
            host: String::new(),
            warm: Vec::new(),
            warm_changed: false,
            warm_concurrency: 5,
            warm_encodings: Vec::new(),
            encodings: Vec::new(),
            max_checks: 500,
            concurrency: 8,
            timeout: "2m".into(),
            asserts: Vec::new(),
            webhook_env: "STALEGUARD_WEBHOOK_URL".into(),
            in_deploy: true,
        }
    }
}

impl VerifyConfig {
    /// The version endpoint's path.
    pub fn version_path<'a>(&'a self, serve: &'a ServeConfig) -> &'a str {
        if self.version_path.is_empty() {
            &serve.version_path
        } else {
            &self.version_path
        }
    }
}

fn de_http_urls<'de, D: Deserializer<'de>>(d: D) -> Result<Vec<String>, D::Error> {
    let v = de_one_or_many(d)?;
    v.into_iter()
        .map(|s| {
            if s.starts_with("http://") || s.starts_with("https://") {
                Ok(s.trim_end_matches('/').to_string())
            } else {
                Err(serde::de::Error::custom(format!(
                    "`{s}` must be an http:// or https:// URL"
                )))
            }
        })
        .collect()
}

fn de_http_url_or_empty<'de, D: Deserializer<'de>>(d: D) -> Result<String, D::Error> {
    let s = String::deserialize(d)?;
    if !(s.is_empty() || s.starts_with("http://") || s.starts_with("https://")) {
        return Err(serde::de::Error::custom(format!(
            "`{s}` must be an http:// or https:// URL"
        )));
    }
    Ok(s.trim_end_matches('/').to_string())
}

/// The `[deploy]` section: where and how the build output is uploaded.
#[derive(Debug, Clone, Deserialize, Serialize, PartialEq)]
#[serde(deny_unknown_fields, rename_all = "kebab-case", default)]
pub struct DeployConfig {
    /// The object store: `file://PATH` (relative paths are relative to the config file's folder),
    /// `s3://BUCKET/PREFIX`, `gs://…`, `az://…`.
    #[serde(deserialize_with = "de_store_url")]
    pub store: String,
    /// Folder to deploy; empty = the build's output folder.
    pub dir: String,
    /// GC keeps every object referenced by the last this-many deploys.
    #[serde(deserialize_with = "de_keep_deploys")]
    pub keep_deploys: u32,
    /// …and every object that left the site less than this long ago (`90s`, `30m`, `12h`, `1d`, `2w`).
    #[serde(deserialize_with = "de_age")]
    pub keep_age: String,
    /// GC refuses (and fails the deploy) when it would delete more objects than this.
    pub max_deletes: u64,
    /// Uploads in flight at once.
    #[serde(deserialize_with = "de_concurrency")]
    pub concurrency: u32,
    /// S3-compatible endpoint (MinIO, R2, moto…); empty = AWS, or `AWS_ENDPOINT_URL` from the environment.
    pub endpoint: String,
    /// Region; empty = `AWS_REGION`/`AWS_DEFAULT_REGION`, else us-east-1.
    pub region: String,
    /// Stable aliases for download channels: alias key → the key it copies (e.g.
    /// `"downloads/tool-latest.tar.gz" = "downloads/tool-1.4.2.tar.gz"`). Uploaded after their targets.
    pub aliases: std::collections::BTreeMap<String, String>,
    /// Key of a JSON file listing size and sha256 of every alias target and every `artifacts` match,
    /// written after them; empty = none.
    pub metadata: String,
    /// Globs (over keys) of artifacts to list in `metadata`, besides the alias targets.
    #[serde(deserialize_with = "de_globs")]
    pub artifacts: Vec<String>,
    /// Also publish the build's manifests and build info (`staleguard.manifest.json`, `staticfiles.json`,
    /// `build-info.json`) on the site. By default they are kept with the deploy state (`.staleguard/build/`),
    /// out of the site and of every purge; the build info is published when it is the version endpoint
    /// (`[verify] version-path = "/build-info.json"`).
    pub publish_manifests: bool,
    /// Where the deploy state (records, history, `current.json`, journal, rollback copies, purge marks,
    /// the manifests) is kept: empty = in the store under the site (`.staleguard/`), fine for a folder
    /// (`staleguard serve` never serves it) but public through a bucket the CDN serves; or a store URL of
    /// its own (`s3://private-bucket/staleguard/site`, `file://…`) that the CDN cannot reach.
    #[serde(deserialize_with = "de_store_url_or_empty")]
    pub state: String,
    /// One deploy or rollback at a time per store: a lease (an OS lock on a folder, a conditional
    /// `lock.json` on an object store). `false` deploys without one (never run two at once then).
    pub lock: bool,
    /// How long a deploy waits for another one's lease before failing, naming the holder (`0s`: fail
    /// at once).
    #[serde(deserialize_with = "de_age")]
    pub lock_timeout: String,
    /// How long an object store's lease lives without renewal (renewed every third of it): a deploy
    /// killed while holding it blocks the next one this long at most.
    #[serde(deserialize_with = "de_age")]
    pub lock_ttl: String,
}

impl Default for DeployConfig {
    fn default() -> Self {
        DeployConfig {
            store: "file://./.staleguard/public".into(),
            dir: String::new(),
            keep_deploys: 3,
            keep_age: "1d".into(),
            max_deletes: 1000,
            concurrency: 16,
            endpoint: String::new(),
            region: String::new(),
            aliases: Default::default(),
            metadata: String::new(),
            artifacts: Vec::new(),
            publish_manifests: false,
            state: String::new(),
            lock: true,
            lock_timeout: "10m".into(),
            lock_ttl: "2m".into(),
        }
    }
}

impl DeployConfig {
    /// Why the deploy state would be public, when it would: it sits under the site in a bucket.
    pub fn state_warning(&self) -> Option<String> {
        if !self.state.is_empty() || self.store.starts_with("file://") {
            return None;
        }
        Some(format!(
            "the deploy state is kept under the site in `{}/.staleguard/`: a CDN or bucket website in front of it serves `/.staleguard/current.json` and `history.json` to anyone\nhint: set `[deploy] state = \"s3://…\"` to a location the CDN does not serve (another bucket or a prefix outside the CDN's origin path), or deny `/.staleguard/*` at the CDN",
            self.store.trim_end_matches('/')
        ))
    }

    /// The lease settings, in seconds: (`lock-ttl`, `lock-timeout`), validated when parsed.
    pub fn lock_secs(&self) -> (i64, i64) {
        let age = |s: &str, d| crate::deploy::parse_age(s).unwrap_or(d);
        (
            age(&self.lock_ttl, 120).max(1),
            age(&self.lock_timeout, 600).max(0),
        )
    }

    /// `keep-age` in seconds (validated when parsed).
    pub fn keep_age_secs(&self) -> i64 {
        crate::deploy::parse_age(&self.keep_age).unwrap_or(86_400)
    }
}

fn de_store_url<'de, D: Deserializer<'de>>(d: D) -> Result<String, D::Error> {
    let s = String::deserialize(d)?;
    check_store_url(&s).map_err(serde::de::Error::custom)?;
    Ok(s)
}

fn de_store_url_or_empty<'de, D: Deserializer<'de>>(d: D) -> Result<String, D::Error> {
    let s = String::deserialize(d)?;
    if !s.is_empty() {
        check_store_url(&s).map_err(serde::de::Error::custom)?;
    }
    Ok(s)
}

/// Accepts the store URL schemes staleguard knows.
pub fn check_store_url(s: &str) -> Result<(), String> {
    let (scheme, rest) = match s.split_once("://") {
        Some((a, r)) => (Some(a), r),
        None => (None, ""),
    };
    match scheme {
        Some("file") if rest.is_empty() => Err(format!(
            "store `{s}` names no folder; use file://PATH (relative to the config file), e.g. file://./.staleguard/public"
        )),
        Some(k @ ("s3" | "s3a" | "gs" | "az" | "abfs" | "abfss" | "azure"))
            if rest.split('/').next().unwrap_or("").is_empty() =>
        {
            let what = if k.starts_with('s') || k == "gs" {
                "bucket"
            } else {
                "container"
            };
            Err(format!(
                "store `{s}` names no {what}; use {k}://{}/PREFIX (the {what} first, then an optional prefix)",
                what.to_ascii_uppercase()
            ))
        }
        Some("file" | "s3" | "s3a" | "gs" | "az" | "abfs" | "abfss" | "azure") => Ok(()),
        _ => Err(format!(
            "store `{s}` is not a store URL; use file://PATH, s3://BUCKET/PREFIX, gs://BUCKET/PREFIX or az://CONTAINER/PREFIX"
        )),
    }
}

fn de_keep_deploys<'de, D: Deserializer<'de>>(d: D) -> Result<u32, D::Error> {
    de_range(d, "keep-deploys", 1, 1000).map(|v| v as u32)
}

fn de_concurrency<'de, D: Deserializer<'de>>(d: D) -> Result<u32, D::Error> {
    de_range(d, "concurrency", 1, 256).map(|v| v as u32)
}

fn de_age<'de, D: Deserializer<'de>>(d: D) -> Result<String, D::Error> {
    let s = String::deserialize(d)?;
    crate::deploy::parse_age(&s).map_err(serde::de::Error::custom)?;
    Ok(s)
}

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
    #[serde(default = "default_cdn_timeout", deserialize_with = "de_age")]
    pub timeout: String,
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
fn default_cdn_timeout() -> String {
    "20m".into()
}

fn de_one_or_many<'de, D: Deserializer<'de>>(d: D) -> Result<Vec<String>, D::Error> {
    #[derive(Deserialize)]
    #[serde(untagged)]
    enum OneOrMany {
        One(String),
        Many(Vec<String>),
    }
    Ok(match OneOrMany::deserialize(d)? {
        OneOrMany::One(s) => vec![s],
        OneOrMany::Many(v) => v,
    })
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

    /// The wait deadline in seconds.
    pub fn timeout_secs(&self) -> i64 {
        crate::deploy::parse_age(&self.timeout).unwrap_or(1200)
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

/// The `[serve]` section: the origin server.
#[derive(Debug, Clone, Deserialize, Serialize, PartialEq)]
#[serde(deny_unknown_fields, rename_all = "kebab-case", default)]
pub struct ServeConfig {
    /// Folder to serve; empty = the build's output folder.
    pub dir: String,
    /// Address to listen on; loopback unless told otherwise.
    pub bind: String,
    /// Port; 0 picks a free one.
    pub port: u16,
    /// Path of the JSON version endpoint.
    #[serde(deserialize_with = "de_abs_path")]
    pub version_path: String,
    /// File (relative to the served folder) sent with status 404; empty for a plain-text 404.
    pub not_found_page: String,
    /// File (relative to the served folder) sent with status 500; empty for a plain-text 500.
    pub error_page: String,
    /// Headers sent with every file, in addition to [`DEFAULT_HEADERS`]; an empty value removes one
    /// (route rules can override or remove them too).
    pub headers: std::collections::BTreeMap<String, String>,
    /// Send `Access-Control-Allow-Origin: *` with fonts (browsers need it for cross-origin `@font-face`).
    pub cors_fonts: bool,
    /// Files up to this many bytes are held in memory; larger ones are streamed from disk.
    pub memory_limit: u64,
    /// How often the manifest is checked for a new version, in milliseconds.
    pub reload_ms: u64,
    /// A connection that sends nothing the server answers and receives no response bytes for this many
    /// seconds is closed: idle keep-alive connections, heads trickled in (slowloris), readers that stopped
    /// reading. Keep it above the keep-alive timeout of whatever sits in front (CloudFront 5-60 s, an
    /// AWS load balancer 60 s), or the CDN may reuse a connection the origin is closing.
    #[serde(deserialize_with = "de_idle_timeout")]
    pub idle_timeout_secs: u64,
    /// Send surrogate keys (cache tags) with every mutable file in this header: `xkey` (Varnish with
    /// vmod xkey), `Surrogate-Key` (Fastly), `Cache-Tag` (Cloudflare). Each file gets its own key, so a
    /// tag purge drops every URL of the file, query-string variants included. Empty: no tags.
    #[serde(deserialize_with = "de_header_name_or_empty")]
    pub tag_header: String,
    /// Answer an extensionless path from the page of that name (`/about` → `about.html`) when no file or
    /// folder index (`about/index.html`) takes it; purges and verification then cover `/about` too.
    pub clean_urls: bool,
}

fn de_header_name_or_empty<'de, D: Deserializer<'de>>(d: D) -> Result<String, D::Error> {
    let s = String::deserialize(d)?;
    if !s
        .bytes()
        .all(|b| b.is_ascii_alphanumeric() || b == b'-' || b == b'_')
    {
        return Err(serde::de::Error::custom(format!(
            "`{s}` is not a header name (letters, digits, `-`)"
        )));
    }
    Ok(s)
}

impl Default for ServeConfig {
    fn default() -> Self {
        ServeConfig {
            dir: String::new(),
            bind: "127.0.0.1".into(),
            port: 8080,
            version_path: "/health/static-version".into(),
            not_found_page: "404.html".into(),
            error_page: "500.html".into(),
            headers: Default::default(),
            cors_fonts: true,
            memory_limit: 1024 * 1024,
            reload_ms: 500,
            idle_timeout_secs: 75,
            tag_header: String::new(),
            clean_urls: false,
        }
    }
}

/// Headers the server always sends unless `[serve.headers]` or a route removes them with `""`.
pub const DEFAULT_HEADERS: &[(&str, &str)] = &[("X-Content-Type-Options", "nosniff")];

impl ServeConfig {
    /// [`DEFAULT_HEADERS`] with `[serve.headers]` applied over them.
    pub fn effective_headers(&self) -> std::collections::BTreeMap<String, String> {
        let mut h: std::collections::BTreeMap<String, String> = DEFAULT_HEADERS
            .iter()
            .map(|(k, v)| (k.to_string(), v.to_string()))
            .collect();
        for (k, v) in &self.headers {
            h.retain(|existing, _| !existing.eq_ignore_ascii_case(k));
            h.insert(k.clone(), v.clone());
        }
        h
    }
}

fn de_abs_path<'de, D: Deserializer<'de>>(d: D) -> Result<String, D::Error> {
    let s = String::deserialize(d)?;
    if !s.starts_with('/') || s.contains(['?', '#', ' ']) {
        return Err(serde::de::Error::custom(format!(
            "`{s}` must be a URL path starting with `/`"
        )));
    }
    Ok(s)
}

/// A precompression format written as a sidecar file next to each compressible output.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Deserialize, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum Codec {
    /// Brotli, sidecar `.br`, `Content-Encoding: br`.
    Br,
    /// gzip, sidecar `.gz`, `Content-Encoding: gzip`.
    Gzip,
    /// Zstandard, sidecar `.zst`, `Content-Encoding: zstd`.
    Zstd,
}

impl Codec {
    /// Every codec, in the order a server prefers them.
    pub const ALL: [Codec; 3] = [Codec::Br, Codec::Zstd, Codec::Gzip];

    /// `a.css.br` → (`a.css`, br): the base path and codec of a sidecar's name.
    pub fn split_sidecar(path: &str) -> Option<(&str, Codec)> {
        Codec::ALL
            .into_iter()
            .find_map(|c| path.strip_suffix(c.extension()).map(|b| (b, c)))
    }

    /// The sidecar file extension, with its dot.
    pub fn extension(self) -> &'static str {
        match self {
            Codec::Br => ".br",
            Codec::Gzip => ".gz",
            Codec::Zstd => ".zst",
        }
    }

    /// The HTTP `Content-Encoding` token.
    pub fn content_encoding(self) -> &'static str {
        match self {
            Codec::Br => "br",
            Codec::Gzip => "gzip",
            Codec::Zstd => "zstd",
        }
    }

    /// Parses a `Content-Encoding` token or config name.
    pub fn parse(name: &str) -> Option<Codec> {
        match name.trim().to_ascii_lowercase().as_str() {
            "br" | "brotli" => Some(Codec::Br),
            "gzip" | "gz" => Some(Codec::Gzip),
            "zstd" | "zst" => Some(Codec::Zstd),
            _ => None,
        }
    }
}

impl fmt::Display for Codec {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.content_encoding())
    }
}

/// The `[build]` section.
#[derive(Debug, Clone, Deserialize, Serialize, PartialEq)]
#[serde(deny_unknown_fields, rename_all = "kebab-case", default)]
pub struct BuildConfig {
    /// Source folder, relative to the config file's folder.
    pub source: String,
    /// Output folder, relative to the config file's folder.
    pub out: String,
    /// URL path under which the output is served; absolute references (`/static/x.png`) resolve against it.
    #[serde(deserialize_with = "de_prefix")]
    pub url_prefix: String,
    /// Precompression formats to write.
    pub compress: Vec<Codec>,
    /// Brotli quality, 0 to 11.
    #[serde(deserialize_with = "de_brotli_quality")]
    pub brotli_quality: u32,
    /// Brotli window (lgwin), 10 to 24.
    #[serde(deserialize_with = "de_brotli_window")]
    pub brotli_window: u32,
    /// gzip level, 1 to 9.
    #[serde(deserialize_with = "de_gzip_level")]
    pub gzip_level: u32,
    /// zstd level, 1 to 22.
    #[serde(deserialize_with = "de_zstd_level")]
    pub zstd_level: i32,
    /// Keep a compressed variant only if it saves at least this percentage of the original size.
    #[serde(deserialize_with = "de_percent")]
    pub compress_min_saving: f64,
    /// File extensions (without dot, case-insensitive) that are never compressed.
    pub skip_compress: Vec<String>,
    /// A referenced file that does not exist is an error (true) or a warning (false).
    pub strict: bool,
    /// Also write every fingerprinted file under its original (logical) name, as a mutable object.
    pub keep_originals: bool,
    /// Rewrite relative ES module imports (`import … from "./x.js"`, `import("./x.js")`) in JavaScript.
    pub js_imports: bool,
    /// The built-in rules apply: fixed-name files ([`DEFAULT_FIXED_NAMES`]), excludes
    /// ([`DEFAULT_EXCLUDE`]), bundler hash patterns and bundler folders ([`DEFAULT_PREHASHED_DIRS`]).
    /// `mutable`, `exclude`, `prehashed` and `prehashed-dirs` add to them; `false` keeps only those.
    pub builtin_rules: bool,
    /// Globs (relative to the source folder) of files that keep their name and are mutable, on top of the
    /// built-in fixed-name files.
    #[serde(deserialize_with = "de_globs")]
    pub mutable: Vec<String>,
    /// Globs (relative to the source folder) of files that are not part of the build at all, on top of
    /// the built-in excludes.
    #[serde(deserialize_with = "de_globs")]
    pub exclude: Vec<String>,
    /// Regex over a file name marking a bundler's already-hashed output (not hashed again), on top of the
    /// built-in bundler patterns; empty: none.
    #[serde(deserialize_with = "de_regex")]
    pub prehashed: String,
    /// Globs of folders whose files a framework serves as immutable whatever their names (`_next/static/**`),
    /// on top of the built-in ones.
    #[serde(deserialize_with = "de_globs")]
    pub prehashed_dirs: Vec<String>,
    /// Fingerprinted files of the last N builds stay in the output (pages rendered or cached before a
    /// rebuild keep working, as with `collectstatic`), at least 1.
    #[serde(deserialize_with = "de_keep_builds")]
    pub keep_builds: u32,
    /// …and every fingerprinted file dropped by a build less than this long ago (`0s`: none).
    #[serde(deserialize_with = "de_age")]
    pub keep_age: String,
    /// Folder for the incremental cache, relative to the config file's folder.
    pub cache_dir: String,
    /// File name of staleguard's manifest inside the output.
    #[serde(deserialize_with = "de_out_name")]
    pub manifest: String,
    /// File name of Django's manifest inside the output; empty to not write it.
    #[serde(deserialize_with = "de_out_name_or_empty")]
    pub django_manifest: String,
    /// File name of the build info (version, commit, time) inside the output; empty to not write it.
    #[serde(deserialize_with = "de_out_name_or_empty")]
    pub build_info: String,
    /// Worker threads; 0 uses every core.
    pub jobs: usize,
    /// A source file larger than this (bytes) is refused by name: a runaway file (a log, a dump) never
    /// fills memory.
    pub max_file_size: u64,
}

/// Extensions that are already compressed (images, fonts, archives, media): compressing them again wastes time.
pub const DEFAULT_SKIP_COMPRESS: &[&str] = &[
    "jpg", "jpeg", "png", "gif", "webp", "avif", "jxl", "heic", "ico", "zip", "gz", "tgz", "bz2",
    "tbz", "xz", "br", "zst", "7z", "rar", "swf", "flv", "woff", "woff2", "3gp", "3gpp", "asf",
    "avi", "m4v", "mov", "mp4", "mpeg", "mpg", "webm", "wmv", "mp3", "ogg", "oga", "opus", "m4a",
    "aac", "flac", "pdf", "dmg", "exe", "msi", "deb", "rpm", "apk", "jar", "wasm.gz",
];

/// Files fetched by a fixed name (by crawlers, feed readers, browsers or a service worker's scope), which
/// therefore keep their names and stay mutable: pages, feeds, sitemaps, robots and other well-known text
/// files, web manifests, service workers, `.well-known/`, favicons and touch icons, data fetched by name.
/// A name that carries a bundler's hash is never one of them (`manifest-3f2a9c1b.json` stays immutable).
pub const DEFAULT_FIXED_NAMES: &[&str] = &[
    "**/*.html",
    "**/*.htm",
    "**/*.xhtml",
    "**/*.xml",
    "**/*.xsl",
    "**/*.xslt",
    "**/*.rss",
    "**/*.atom",
    "**/*.ics",
    "**/*.opml",
    "**/*.txt",
    "**/*.webmanifest",
    "**/*.json",
    "**/sw.js",
    "**/service-worker.js",
    "**/serviceworker.js",
    "**/*-sw.js",
    "**/*.sw.js",
    ".well-known/**",
    "favicon.*",
    "apple-touch-icon*.png",
    "android-chrome-*.png",
    "mstile-*.png",
    "safari-pinned-tab.svg",
    "CNAME",
    "_redirects",
    "_headers",
    "_routes.json",
];

/// Files left out of the build by default: version control, OS litter, and bundlers' metadata (read by
/// backends from the bundler's own output, never fetched by browsers).
pub const DEFAULT_EXCLUDE: &[&str] = &[
    "**/.git/**",
    "**/.svn/**",
    "**/.hg/**",
    "**/.staleguard/**",
    "**/.DS_Store",
    "**/Thumbs.db",
    "**/*~",
    "**/.vite/**",
    "**/asset-manifest.json",
    "**/webpack-stats.json",
    "**/mix-manifest.json",
];

/// Folders whose files frameworks serve as immutable whatever their names: Next.js `_next/static/`,
/// SvelteKit `_app/immutable/`, Astro `_astro/`.
pub const DEFAULT_PREHASHED_DIRS: &[&str] =
    &["_next/static/**", "**/_app/immutable/**", "_astro/**"];

impl Default for BuildConfig {
    fn default() -> Self {
        BuildConfig {
            source: "static".into(),
            out: ".staleguard/dist".into(),
            url_prefix: "/".into(),
            compress: vec![Codec::Br, Codec::Gzip],
            brotli_quality: 11,
            brotli_window: 22,
            gzip_level: 9,
            zstd_level: 19,
            compress_min_saving: 5.0,
            skip_compress: DEFAULT_SKIP_COMPRESS
                .iter()
                .map(|s| s.to_string())
                .collect(),
            strict: false,
            keep_originals: true,
            js_imports: true,
            builtin_rules: true,
            mutable: Vec::new(),
            exclude: Vec::new(),
            prehashed: String::new(),
            prehashed_dirs: Vec::new(),
            keep_builds: 3,
            keep_age: "1d".into(),
            cache_dir: ".staleguard/cache".into(),
            manifest: "staleguard.manifest.json".into(),
            django_manifest: "staticfiles.json".into(),
            build_info: "build-info.json".into(),
            jobs: 0,
            max_file_size: 2 * 1024 * 1024 * 1024,
        }
    }
}

impl BuildConfig {
    fn with_builtin(&self, builtin: &[&str], own: &[String]) -> Vec<String> {
        let mut v: Vec<String> = if self.builtin_rules {
            builtin.iter().map(|s| s.to_string()).collect()
        } else {
            Vec::new()
        };
        v.extend(own.iter().cloned());
        v
    }

    /// The fixed-name globs in force (built-in ones first); a bundler-hashed name never matches them.
    pub fn fixed_name_globs(&self) -> Vec<String> {
        self.with_builtin(DEFAULT_FIXED_NAMES, &[])
    }

    /// The exclude globs in force: the built-in ones and `exclude`.
    pub fn exclude_globs(&self) -> Vec<String> {
        self.with_builtin(DEFAULT_EXCLUDE, &self.exclude)
    }

    /// The bundler-folder globs in force: the built-in ones and `prehashed-dirs`.
    pub fn prehashed_dir_globs(&self) -> Vec<String> {
        self.with_builtin(DEFAULT_PREHASHED_DIRS, &self.prehashed_dirs)
    }

    /// `keep-age` in seconds (validated when parsed).
    pub fn keep_age_secs(&self) -> i64 {
        crate::deploy::parse_age(&self.keep_age).unwrap_or(86_400)
    }
}

/// A configuration that could not be read or is invalid.
#[derive(Debug, thiserror::Error)]
pub enum ConfigError {
    /// The TOML is malformed, has an unknown key, or a value failed validation. The message carries the
    /// line and column.
    #[error("invalid config `{path}`:\n{message}")]
    Invalid { path: String, message: String },
}

impl Config {
    /// Parses and validates a config file's text. `path` is only used in error messages.
    pub fn from_toml(text: &str, path: &str) -> Result<Config, ConfigError> {
        let config: Config = toml::from_str(text).map_err(|e| ConfigError::Invalid {
            path: path.to_string(),
            message: e.to_string().trim_end().to_string(),
        })?;
        for (i, cdn) in config.cdn.iter().enumerate() {
            cdn.check().map_err(|message| ConfigError::Invalid {
                path: path.to_string(),
                message: format!("[[cdn]] #{} (`{}`): {message}", i + 1, cdn.label()),
            })?;
        }
        let mut seen = std::collections::BTreeSet::new();
        for cdn in &config.cdn {
            if !seen.insert(cdn.label()) {
                return Err(ConfigError::Invalid {
                    path: path.to_string(),
                    message: format!(
                        "two [[cdn]] entries are named `{}`: give each a distinct `name`",
                        cdn.label()
                    ),
                });
            }
        }
        Ok(config)
    }
}

/// Normalises a URL prefix to start and end with `/`.
pub fn normalize_prefix(prefix: &str) -> Result<String, String> {
    let p = prefix.trim();
    if p.contains("://") || p.starts_with("//") {
        return Err(format!(
            "url-prefix `{p}` must be a path like `/static/`, not a full URL; a CDN host belongs in the page's links, not in the build"
        ));
    }
    if p.split('/').any(|s| s == "..") {
        return Err(format!("url-prefix `{p}` must not contain `..`"));
    }
    let mut out = String::with_capacity(p.len() + 2);
    if !p.starts_with('/') {
        out.push('/');
    }
    out.push_str(p);
    if !out.ends_with('/') {
        out.push('/');
    }
    Ok(out)
}

fn de_prefix_or_empty<'de, D: Deserializer<'de>>(d: D) -> Result<String, D::Error> {
    let s = String::deserialize(d)?;
    if s.is_empty() {
        return Ok(s);
    }
    normalize_prefix(&s).map_err(serde::de::Error::custom)
}

fn de_prefix<'de, D: Deserializer<'de>>(d: D) -> Result<String, D::Error> {
    let s = String::deserialize(d)?;
    normalize_prefix(&s).map_err(serde::de::Error::custom)
}

fn de_range<'de, D: Deserializer<'de>>(d: D, key: &str, lo: i64, hi: i64) -> Result<i64, D::Error> {
    let v = i64::deserialize(d)?;
    if v < lo || v > hi {
        return Err(serde::de::Error::custom(format!(
            "{key} must be between {lo} and {hi}, got {v}"
        )));
    }
    Ok(v)
}

fn de_idle_timeout<'de, D: Deserializer<'de>>(d: D) -> Result<u64, D::Error> {
    de_range(d, "idle-timeout-secs", 1, 86_400).map(|v| v as u64)
}

fn de_brotli_quality<'de, D: Deserializer<'de>>(d: D) -> Result<u32, D::Error> {
    de_range(d, "brotli-quality", 0, 11).map(|v| v as u32)
}

fn de_brotli_window<'de, D: Deserializer<'de>>(d: D) -> Result<u32, D::Error> {
    de_range(d, "brotli-window", 10, 24).map(|v| v as u32)
}

fn de_gzip_level<'de, D: Deserializer<'de>>(d: D) -> Result<u32, D::Error> {
    de_range(d, "gzip-level", 1, 9).map(|v| v as u32)
}

fn de_zstd_level<'de, D: Deserializer<'de>>(d: D) -> Result<i32, D::Error> {
    de_range(d, "zstd-level", 1, 22).map(|v| v as i32)
}

fn de_percent<'de, D: Deserializer<'de>>(d: D) -> Result<f64, D::Error> {
    let v = f64::deserialize(d)?;
    if !(0.0..100.0).contains(&v) {
        return Err(serde::de::Error::custom(format!(
            "compress-min-saving is a percentage from 0 to 99.9, got {v}"
        )));
    }
    Ok(v)
}

fn de_globs<'de, D: Deserializer<'de>>(d: D) -> Result<Vec<String>, D::Error> {
    let v = Vec::<String>::deserialize(d)?;
    for g in &v {
        globset::GlobBuilder::new(g)
            .literal_separator(true)
            .build()
            .map_err(|e| serde::de::Error::custom(format!("invalid glob `{g}`: {}", e.kind())))?;
    }
    Ok(v)
}

fn de_keep_builds<'de, D: Deserializer<'de>>(d: D) -> Result<u32, D::Error> {
    let v = u32::deserialize(d)?;
    if v == 0 {
        return Err(serde::de::Error::custom(
            "keep-builds must be at least 1 (the current build)",
        ));
    }
    Ok(v)
}

fn de_regex<'de, D: Deserializer<'de>>(d: D) -> Result<String, D::Error> {
    let s = String::deserialize(d)?;
    regex::Regex::new(&s)
        .map_err(|e| serde::de::Error::custom(format!("invalid regex `{s}`: {e}")))?;
    Ok(s)
}

fn check_out_name(s: &str) -> Result<(), String> {
    if s.is_empty() || s.contains('/') || s.contains('\\') || s == "." || s == ".." {
        return Err(format!(
            "`{s}` must be a plain file name (it is written at the output's root)"
        ));
    }
    Ok(())
}

fn de_out_name<'de, D: Deserializer<'de>>(d: D) -> Result<String, D::Error> {
    let s = String::deserialize(d)?;
    check_out_name(&s).map_err(serde::de::Error::custom)?;
    Ok(s)
}

fn de_out_name_or_empty<'de, D: Deserializer<'de>>(d: D) -> Result<String, D::Error> {
    let s = String::deserialize(d)?;
    if !s.is_empty() {
        check_out_name(&s).map_err(serde::de::Error::custom)?;
    }
    Ok(s)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn empty_file_is_defaults() {
        let c = Config::from_toml("", "x.toml").unwrap();
        assert_eq!(c, Config::default());
    }

    #[test]
    fn values_are_read() {
        let c = Config::from_toml(
            "[build]\nsource = 'web'\nurl-prefix = 'static'\ncompress = ['br', 'zstd']\nstrict = true\n",
            "x.toml",
        )
        .unwrap();
        assert_eq!(c.build.source, "web");
        assert_eq!(c.build.url_prefix, "/static/");
        assert_eq!(c.build.compress, vec![Codec::Br, Codec::Zstd]);
        assert!(c.build.strict);
    }

    fn err(text: &str) -> String {
        Config::from_toml(text, "site/staleguard.toml")
            .unwrap_err()
            .to_string()
    }

    #[test]
    fn cdn_entries_are_checked_per_provider() {
        let ok = Config::from_toml(
            "[[cdn]]\nprovider = 'cloudfront'\ndistribution = 'auto'\ndomain = 'www.example.com'\n\n[[cdn]]\nprovider = 'varnish'\nname = 'edge'\nnodes = ['http://127.0.0.1:6081']\nmode = 'xkey'\npurge-by = 'tags'\nsoft = true\non-failure = 'warn'\n",
            "x.toml",
        )
        .unwrap();
        assert_eq!(ok.cdn.len(), 2);
        assert_eq!(ok.cdn[0].distribution, ["auto"]);
        assert_eq!(ok.cdn[0].sweep_ceiling_for(0.005), 50);
        assert_eq!(ok.cdn[1].sweep_ceiling_for(0.0), 0);
        assert_eq!(ok.cdn[1].label(), "edge");
        assert_eq!(ok.cdn[1].on_failure, OnFailure::Warn);
        for (text, needle) in [
            ("[[cdn]]\nprovider = 'akamai'", "unknown variant `akamai`"),
            ("[[cdn]]\nprovider = 'cloudfront'", "needs `distribution"),
            (
                "[[cdn]]\nprovider = 'cloudfront'\ndistribution = 'auto'",
                "needs `domain",
            ),
            (
                "[[cdn]]\nprovider = 'varnish'\nnodes = ['10.0.0.1:6081']",
                "http:// or https://",
            ),
            (
                "[[cdn]]\nprovider = 'varnish'\nnodes = ['http://a']\nzone = 'z'",
                "`zone` does not apply to provider `varnish`",
            ),
            (
                "[[cdn]]\nprovider = 'varnish'\nnodes = ['http://a']\nmode = 'xkey'",
                "purge-by = \"tags\"",
            ),
            ("[[cdn]]\nprovider = 'cloudflare'\nzone = 'z'", "domain"),
            ("[[cdn]]\nprovider = 'fastly'\ndomain = 'a.b'", "service"),
            (
                "[[cdn]]\nprovider = 'varnish'\nnodes = ['http://a']\ntimeout = 'soon'",
                "line",
            ),
            (
                "[[cdn]]\nprovider = 'varnish'\nnodes = ['http://a']\n[[cdn]]\nprovider = 'varnish'\nnodes = ['http://b']",
                "two [[cdn]] entries are named `varnish`",
            ),
            (
                "[verify]\norigin-url = 'localhost:8080'",
                "http:// or https://",
            ),
        ] {
            let e = err(text);
            assert!(e.contains(needle), "{text}: {e}");
            assert!(e.contains("site/staleguard.toml"), "{e}");
        }
    }

    #[test]
    fn errors_name_key_and_line() {
        for (text, needles) in [
            (
                "[build]\nsource = 'x'\nsorce = 'y'\n",
                &["`site/staleguard.toml`", "line 3", "sorce"][..],
            ),
            ("[biuld]\n", &["line 1", "biuld"]),
            (
                "[build]\n\nbrotli-quality = 12\n",
                &["line 3", "between 0 and 11"],
            ),
            ("[build]\ncompress = ['lzma']\n", &["line 2", "lzma"]),
            (
                "[build]\nmutable = ['a/**/[']\n",
                &["line 2", "invalid glob"],
            ),
            ("[build]\nprehashed = '('\n", &["line 2", "invalid regex"]),
            (
                "[build]\nmanifest = 'a/b.json'\n",
                &["line 2", "plain file name"],
            ),
            (
                "[build]\nurl-prefix = 'https://cdn.example.com/'\n",
                &["line 2", "not a full URL"],
            ),
            ("[build\n", &["line 1"]),
        ] {
            let e = err(text);
            for n in needles {
                assert!(e.contains(n), "error for {text:?} lacks {n:?}:\n{e}");
            }
        }
    }

    #[test]
    fn prefixes() {
        assert_eq!(normalize_prefix("").unwrap(), "/");
        assert_eq!(normalize_prefix("/").unwrap(), "/");
        assert_eq!(normalize_prefix("static").unwrap(), "/static/");
        assert_eq!(normalize_prefix("/static/").unwrap(), "/static/");
        assert!(normalize_prefix("/a/../b").is_err());
    }

    #[test]
    fn state_in_a_served_bucket_is_warned_about() {
        let mut d = DeployConfig {
            store: "s3://b/site".into(),
            ..Default::default()
        };
        assert!(
            d.state_warning()
                .unwrap()
                .contains("s3://b/site/.staleguard/")
        );
        d.state = "s3://private/state".into();
        assert!(d.state_warning().is_none());
        let local = DeployConfig::default();
        assert!(local.state_warning().is_none());
    }

    #[test]
    fn a_store_without_a_bucket_says_so() {
        for (url, needle) in [
            ("s3://", "names no bucket"),
            ("s3:///site", "names no bucket"),
            ("gs://", "names no bucket"),
            ("az://", "names no container"),
            ("file://", "names no folder"),
        ] {
            let e = check_store_url(url).unwrap_err();
            assert!(e.contains(needle), "{url}: {e}");
        }
        for ok in ["s3://b", "s3://b/site", "file://public", "gs://b/x"] {
            check_store_url(ok).unwrap();
        }
    }
}
