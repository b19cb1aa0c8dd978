//! The `[[app-cache]]` entries: application caches (Redis, memcached) that staleguard bumps before it
//! purges a CDN, so that a CDN refetch never gets an old rendered page back from the app's cache.

use serde::{Deserialize, Serialize};

use crate::duration::HumanDuration;

/// Which server an entry talks to.
#[derive(Debug, Clone, Copy, Deserialize, Serialize, PartialEq, Eq)]
#[serde(rename_all = "kebab-case")]
pub enum AppCacheKind {
    Redis,
    Memcached,
}

/// How an entry is made to forget.
#[derive(Debug, Clone, Copy, Default, Deserialize, Serialize, PartialEq, Eq)]
#[serde(rename_all = "kebab-case")]
pub enum AppCacheStrategy {
    /// A version counter per namespace, bumped atomically; the app puts the version in its keys.
    #[default]
    Namespace,
    /// Redis only: `SCAN MATCH key-prefix…*` and `UNLINK` in batches (best effort).
    DeletePrefix,
    /// Everything: `FLUSHDB` / `flush_all`.
    Flush,
}

/// One `[[app-cache]]` entry.
#[derive(Debug, Clone, Deserialize, Serialize, PartialEq)]
#[serde(deny_unknown_fields, rename_all = "kebab-case")]
pub struct AppCacheConfig {
    /// Its name in reports and `--target` (default: the kind).
    #[serde(default)]
    pub name: String,
    pub kind: AppCacheKind,
    /// `redis://[USER@]HOST:PORT[/DB]` or `redis+unix:///PATH`; memcached: `memcached://HOST:PORT`.
    /// A password never goes here: see `password-env`.
    #[serde(default)]
    pub url: String,
    /// memcached: every server of the pool (the app's client spreads keys over them; a namespace's
    /// counter is bumped on each, so whichever server the app's hash picks has moved). Instead of `url`.
    #[serde(default)]
    pub servers: Vec<String>,
    #[serde(default)]
    pub strategy: AppCacheStrategy,
    /// `namespace`: the counters' key prefix (`staleguard:ns:global`, `staleguard:ns:ws:42`).
    #[serde(default = "default_counter_prefix")]
    pub counter_prefix: String,
    /// `delete-prefix`: the app's key prefix; namespace `global` deletes `PREFIX*`, namespace `ws:42`
    /// deletes `PREFIXws:42:*`.
    #[serde(default)]
    pub key_prefix: String,
    /// The namespaces a `deploy` or `rollback` bumps (the service bumps those its events name).
    #[serde(default = "default_namespaces")]
    pub namespaces: Vec<String>,
    /// Redis: the variable holding the password (AUTH / ACL); unset variable: no password.
    #[serde(default)]
    pub password_env: String,
    /// Each command's deadline (connect included).
    #[serde(default = "default_timeout")]
    pub timeout: HumanDuration,
    /// `delete-prefix`: keys per `SCAN` step.
    #[serde(default = "default_scan_count")]
    pub scan_count: u32,
}

fn default_counter_prefix() -> String {
    "staleguard:ns:".into()
}
fn default_namespaces() -> Vec<String> {
    vec!["global".into()]
}
fn default_timeout() -> HumanDuration {
    HumanDuration::from_secs(5)
}
fn default_scan_count() -> u32 {
    1000
}

/// A namespace: `global`, or a scope-like name (`ws:42`, `site:blog`): letters, digits and `:_-.`.
pub fn check_namespace(ns: &str) -> Result<(), String> {
    if ns.is_empty() || ns.len() > 200 {
        return Err(format!("namespace `{ns}` must be 1 to 200 characters long"));
    }
    if let Some(c) = ns
        .chars()
        .find(|c| !(c.is_ascii_alphanumeric() || matches!(c, ':' | '_' | '-' | '.')))
    {
        return Err(format!(
            "namespace `{ns}` has `{c}`: only letters, digits and `:_-.` (memcached keys allow no spaces or control characters)"
        ));
    }
    Ok(())
}

impl AppCacheConfig {
    /// Its name: `name`, else the kind.
    pub fn label(&self) -> &str {
        if !self.name.is_empty() {
            return &self.name;
        }
        match self.kind {
            AppCacheKind::Redis => "redis",
            AppCacheKind::Memcached => "memcached",
        }
    }

    /// The memcached servers, or the Redis URL, as given.
    pub fn addresses(&self) -> Vec<String> {
        if self.servers.is_empty() {
            vec![self.url.clone()]
        } else {
            self.servers.clone()
        }
    }

    /// The checks `serde` cannot do, each naming the entry.
    pub fn check(&self) -> Result<(), String> {
        let at = format!("[[app-cache]] `{}`", self.label());
        let schemes: &[&str] = match self.kind {
            AppCacheKind::Redis => &["redis://", "redis+unix://", "unix://"],
            AppCacheKind::Memcached => &["memcached://", "memcache://"],
        };
        if !self.url.is_empty() && !self.servers.is_empty() {
            return Err(format!("{at}: give `url` or `servers`, not both"));
        }
        if self.kind == AppCacheKind::Redis && !self.servers.is_empty() {
            return Err(format!(
                "{at}: `servers` is for memcached pools; a Redis entry has one `url`"
            ));
        }
        let addrs = self.addresses();
        for a in &addrs {
            if a.is_empty() {
                return Err(format!(
                    "{at}: no `url`\nhint: url = \"{}\"",
                    schemes[0].to_string()
                        + if self.kind == AppCacheKind::Redis {
                            "127.0.0.1:6379"
                        } else {
                            "127.0.0.1:11211"
                        }
                ));
            }
            if a.starts_with("rediss://") {
                return Err(format!(
                    "{at}: `{}`: TLS to Redis is not built in\nhint: reach it over a private network or a local TLS tunnel (stunnel, spiped)",
                    crate::secret::redact_url(a)
                ));
            }
            if !schemes.iter().any(|s| a.starts_with(s)) {
                return Err(format!(
                    "{at}: `{}` is not a {:?} URL: it starts with one of {}",
                    crate::secret::redact_url(a),
                    self.kind,
                    schemes.join(", ")
                ));
            }
            let authority = a
                .split_once("://")
                .map_or("", |(_, rest)| rest.split('/').next().unwrap_or(""));
            if authority
                .rsplit_once('@')
                .is_some_and(|(user, _)| user.contains(':'))
            {
                return Err(format!(
                    "{at}: the URL holds a password; put it in an environment variable and name that in `password-env`"
                ));
            }
        }
        if self.strategy == AppCacheStrategy::DeletePrefix {
            if self.kind == AppCacheKind::Memcached {
                return Err(format!(
                    "{at}: strategy = \"delete-prefix\" needs Redis: memcached cannot list its keys\nhint: use strategy = \"namespace\" (a version in the app's keys) or \"flush\""
                ));
            }
            if self.key_prefix.is_empty() {
                return Err(format!(
                    "{at}: strategy = \"delete-prefix\" needs `key-prefix`, the app's key prefix (Django's KEY_PREFIX, e.g. \"myapp:\")\nhint: an empty prefix would delete every key: that is strategy = \"flush\""
                ));
            }
        }
        if self.strategy == AppCacheStrategy::Namespace && self.counter_prefix.is_empty() {
            return Err(format!("{at}: `counter-prefix` must not be empty"));
        }
        if self.namespaces.is_empty() {
            return Err(format!(
                "{at}: `namespaces` is empty: a deploy would bump nothing (the default is [\"global\"])"
            ));
        }
        for ns in &self.namespaces {
            check_namespace(ns).map_err(|e| format!("{at}: {e}"))?;
        }
        if self.timeout.get().is_zero() || self.scan_count == 0 {
            return Err(format!("{at}: `timeout` and `scan-count` must be above 0"));
        }
        Ok(())
    }
}
