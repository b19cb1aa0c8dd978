//! The `[verify]` section: warm-up, verification through the CDN, smoke tests and the deploy notification.

use serde::{Deserialize, Deserializer, Serialize};

use super::{ServeConfig, de_abs_path, de_one_or_many, de_prefix_or_empty};
use crate::duration::HumanDuration;

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
    pub origin_timeout: HumanDuration,
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
    pub timeout: HumanDuration,
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
            origin_timeout: HumanDuration::from_secs(60),
            url_prefix: String::new(),
            host: String::new(),
            warm: Vec::new(),
            warm_changed: false,
            warm_concurrency: 5,
            warm_encodings: Vec::new(),
            encodings: Vec::new(),
            max_checks: 500,
            concurrency: 8,
            timeout: HumanDuration::from_secs(120),
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
