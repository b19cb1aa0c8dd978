//! `staleguard.toml`: typed configuration, validated while parsing so every error names the key and line.
//!
//! Unknown keys are rejected (`deny_unknown_fields`); values that need checking (globs, regexes, levels)
//! are checked inside their deserializers, so `toml` reports the failure with its line and column.
//! Durations are [`HumanDuration`](crate::duration::HumanDuration)s, parsed once here. One file per
//! section (`build.rs`, `serve.rs`, `deploy.rs`, `cdn.rs`, `verify.rs`, `service.rs`); the value checks shared by
//! several sections are here.

mod appcache;
mod build;
mod cdn;
mod deploy;
mod serve;
mod service;
mod stats;
mod verify;
mod watch;

pub use appcache::{AppCacheConfig, AppCacheKind, AppCacheStrategy, check_namespace};
pub use build::{
    BuildConfig, Codec, DEFAULT_EXCLUDE, DEFAULT_FIXED_NAMES, DEFAULT_PREHASHED_DIRS,
    DEFAULT_SKIP_COMPRESS, ImageFormat, ImageQuality, ImagesConfig,
};
pub use cdn::{CdnConfig, CdnProvider, OnFailure, PurgeBy, VarnishMode};
pub use deploy::{DeployConfig, check_store_url};
pub use serve::{DEFAULT_HEADERS, ServeConfig};
pub use service::{ScopeRule, ScopeSettings, ServiceConfig, scope_matches};
pub use stats::{StaleSignals, StatsConfig};
pub use verify::{AssertRule, VerifyConfig};
pub use watch::WatchConfig;

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
    /// `staleguard service`: the invalidation service for runtime edits.
    #[serde(default)]
    pub service: ServiceConfig,
    /// Application caches bumped before the CDNs are purged (`[[app-cache]]`, any number).
    #[serde(default, rename = "app-cache")]
    pub app_cache: Vec<AppCacheConfig>,
    /// `staleguard stats`: the targets a CDN's logs are held to.
    #[serde(default)]
    pub stats: StatsConfig,
    /// `staleguard watch`: the drift monitor.
    #[serde(default)]
    pub watch: WatchConfig,
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
        let mut caches = std::collections::BTreeSet::new();
        for a in &config.app_cache {
            let invalid = |message: String| ConfigError::Invalid {
                path: path.to_string(),
                message,
            };
            a.check().map_err(invalid)?;
            if !caches.insert(a.label()) {
                return Err(invalid(format!(
                    "two [[app-cache]] entries are named `{}`: give each a distinct `name`",
                    a.label()
                )));
            }
        }
        let names: Vec<&str> = config.cdn.iter().map(|c| c.label()).collect();
        config
            .service
            .check(&names)
            .map_err(|message| ConfigError::Invalid {
                path: path.to_string(),
                message,
            })?;
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

fn de_abs_path<'de, D: Deserializer<'de>>(d: D) -> Result<String, D::Error> {
    let s = String::deserialize(d)?;
    if !s.starts_with('/') || s.contains(['?', '#', ' ']) {
        return Err(serde::de::Error::custom(format!(
            "`{s}` must be a URL path starting with `/`"
        )));
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
        // No cap by default; a swept URL at an S3 GET's price.
        let o = ok.cdn[0].plan_options(7);
        assert_eq!(
            (o.sweep_ceiling, o.sweep_ratio, o.sweep_price, o.free_items),
            (None, None, 400, 7)
        );
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
}
