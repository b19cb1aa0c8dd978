#![cfg_attr(not(any(feature = "redis", feature = "memcached")), allow(dead_code))]
//! Application caches as staleguard targets (issue 16): a CDN purge is useless if the origin answers the
//! refetch from a stale Redis or memcached entry, so these are bumped first, in the order new origin
//! content live → app caches bumped → CDNs purged → warm → verify.
//!
//! Strategies ([`AppCacheStrategy`]), and what is atomic:
//! - `namespace` (default): a counter per namespace (`staleguard:ns:global`, `staleguard:ns:ws:42`).
//!   A bump is one atomic step on the server: Redis `SET key SEED NX` + `INCR key` in one `MULTI`;
//!   memcached `add key SEED` then `incr key 1` (each atomic; a concurrent bump only adds one more).
//!   The seed, used only when the counter is missing, is the current time in milliseconds, so a
//!   counter lost to a restart or an eviction comes back *above* every version used before: an old key
//!   can never become current again. Apps build keys as `prefix:VERSION:key` and read the version once
//!   per request; old keys age out by TTL or LRU. No delete races: nothing is deleted. Bumping twice
//!   (a retried step, a restarted service) only costs one more round of misses.
//! - `delete-prefix` (Redis): `SCAN MATCH prefix* COUNT n` and `UNLINK` per page, never `KEYS`. Best
//!   effort: a key written during the scan behind the cursor survives; the count is reported.
//! - `flush`: `FLUSHDB` / `flush_all` on every server; everything else in that database goes too.
//!
//! memcached has no replication: a pool's client hashes keys over its servers, so a namespace counter is
//! bumped on every server listed (`servers`), whichever one the app's hash picks.
//!
//! Not the CDN provider trait: a provider purges URL items (paths, prefixes, tags) planned by cost;
//! an app cache has namespaces and versions, no URLs, no cost and no plan, and must run before every
//! provider rather than beside them. A small trait of its own ([`Backend`]) keeps both simple.

use std::time::Duration;

use serde::Serialize;
pub use staleguard_core::config::{AppCacheConfig, AppCacheKind, AppCacheStrategy};
use staleguard_core::secret::redact_url;

#[cfg(feature = "memcached")]
mod memcached;
#[cfg(feature = "redis")]
mod redis;

/// The namespace every app key is under (what a deploy bumps by default).
pub const GLOBAL: &str = "global";

/// A failure, with the target, its server, what was done and what to do.
#[derive(Debug, thiserror::Error)]
#[error("app cache `{target}` ({server}): {what}: {cause}{}", hint.as_ref().map(|h| format!("\nhint: {h}")).unwrap_or_default())]
pub struct AppCacheError {
    pub target: String,
    /// The server's URL, without a password.
    pub server: String,
    pub what: String,
    pub cause: String,
    pub hint: Option<String>,
}

/// One server's answer to a step, before it is tied to its target.
#[derive(Debug)]
pub(crate) enum Fault {
    /// Could not connect, or the connection broke.
    Unreachable(String),
    /// The server refused the credentials (or wants some).
    Auth(String),
    /// Anything else the server said.
    Other(String),
}

/// What a server does for the strategies (one per server of a target).
#[async_trait::async_trait]
pub(crate) trait Backend: Send + Sync {
    /// Creates `key` with `seed` when missing, then adds 1; the new value.
    async fn bump(&self, key: &str, seed: u64) -> Result<u64, Fault>;
    /// The counter's value, if any.
    async fn read(&self, key: &str) -> Result<Option<u64>, Fault>;
    /// Deletes the keys matching the glob `pattern`, `count` per step; how many.
    async fn delete_matching(&self, pattern: &str, count: u32) -> Result<u64, Fault>;
    /// Empties the database.
    async fn flush(&self) -> Result<(), Fault>;
}

/// One `[[app-cache]]` entry, ready to use (connections are made on first use and kept).
pub struct Target {
    pub config: AppCacheConfig,
    servers: Vec<(String, Box<dyn Backend>)>,
}

impl std::fmt::Debug for Target {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Target")
            .field("name", &self.config.label())
            .field(
                "servers",
                &self.servers.iter().map(|s| &s.0).collect::<Vec<_>>(),
            )
            .finish_non_exhaustive()
    }
}

/// What one target did (or, in a dry run, would do) for one namespace.
#[derive(Debug, Clone, Serialize, PartialEq, Eq)]
pub struct Bumped {
    pub target: String,
    pub strategy: AppCacheStrategy,
    /// The namespace (`global`, `ws:42`); `*` for a flush.
    pub namespace: String,
    /// `namespace`: the counter's new value (the highest over the servers); in a dry run, the value
    /// now (`None`: not set yet).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub version: Option<u64>,
    /// `delete-prefix`: the keys deleted (a dry run: none).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub deleted: Option<u64>,
    pub dry_run: bool,
}

impl Bumped {
    /// `global → version 1733250000124`, `ws:42: 2,500 key(s) deleted`, `flushed` (dry run: what
    /// would be done).
    pub fn describe(&self) -> String {
        match (self.strategy, self.dry_run) {
            (AppCacheStrategy::Namespace, false) => format!(
                "{} → version {}",
                self.namespace,
                self.version.map_or("?".into(), |v| v.to_string())
            ),
            (AppCacheStrategy::Namespace, true) => format!(
                "{}: would bump version {}",
                self.namespace,
                self.version
                    .map_or("(not set yet)".into(), |v| v.to_string())
            ),
            (AppCacheStrategy::DeletePrefix, false) => format!(
                "{}: {} key(s) deleted",
                self.namespace,
                self.deleted.unwrap_or(0)
            ),
            (AppCacheStrategy::DeletePrefix, true) => {
                format!("{}: would delete its keys", self.namespace)
            }
            (AppCacheStrategy::Flush, false) => "flushed (every key)".into(),
            (AppCacheStrategy::Flush, true) => "would flush every key".into(),
        }
    }
}

/// A namespace's counter on one target.
#[derive(Debug, Clone, Serialize, PartialEq, Eq)]
pub struct Version {
    pub target: String,
    pub namespace: String,
    /// The key the app reads.
    pub key: String,
    /// Per server (memcached pools: each has its own; Redis: one).
    pub versions: Vec<(String, Option<u64>)>,
}

fn now_ms() -> u64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| d.as_millis() as u64)
}

/// `s` with the glob characters of Redis `MATCH` escaped.
pub fn escape_glob(s: &str) -> String {
    let mut out = String::with_capacity(s.len());
    for c in s.chars() {
        if matches!(c, '*' | '?' | '[' | ']' | '\\') {
            out.push('\\');
        }
        out.push(c);
    }
    out
}

impl Target {
    /// Opens the entry (no connection yet). `password` is the value of its `password-env`, if any.
    pub fn open(
        config: &AppCacheConfig,
        password: Option<String>,
    ) -> Result<Target, AppCacheError> {
        let timeout = config.timeout.get();
        let mut servers: Vec<(String, Box<dyn Backend>)> = Vec::new();
        for url in config.addresses() {
            let shown = redact_url(&url).into_owned();
            let fail = |cause: String| AppCacheError {
                target: config.label().to_string(),
                server: shown.clone(),
                what: "cannot use this server".into(),
                cause,
                hint: None,
            };
            let backend = backend(config.kind, &url, password.clone(), timeout).map_err(
                |(cause, hint)| AppCacheError {
                    hint,
                    ..fail(cause)
                },
            )?;
            servers.push((shown, backend));
        }
        Ok(Target {
            config: config.clone(),
            servers,
        })
    }

    pub fn name(&self) -> &str {
        self.config.label()
    }

    fn error(&self, server: &str, what: String, fault: Fault) -> AppCacheError {
        let (cause, hint) = match fault {
            Fault::Unreachable(c) => (
                c,
                Some(format!(
                    "is the server running and reachable from here? check [[app-cache]] `{}` url{}",
                    self.name(),
                    if self.config.kind == AppCacheKind::Memcached {
                        "/servers"
                    } else {
                        ""
                    }
                )),
            ),
            Fault::Auth(c) => (
                c,
                Some(if self.config.password_env.is_empty() {
                    format!(
                        "the server wants a password: put it in an environment variable and set password-env in [[app-cache]] `{}`",
                        self.name()
                    )
                } else {
                    format!(
                        "check the password in ${} (and the user in the URL, for an ACL user)",
                        self.config.password_env
                    )
                }),
            ),
            Fault::Other(c) => (c, None),
        };
        AppCacheError {
            target: self.name().to_string(),
            server: server.to_string(),
            what,
            cause,
            hint,
        }
    }

    /// The key of a namespace's counter.
    pub fn counter_key(&self, namespace: &str) -> String {
        format!("{}{namespace}", self.config.counter_prefix)
    }

    /// The `delete-prefix` pattern of a namespace.
    pub fn pattern(&self, namespace: &str) -> String {
        let p = escape_glob(&self.config.key_prefix);
        if namespace == GLOBAL {
            format!("{p}*")
        } else {
            format!("{p}{}:*", escape_glob(namespace))
        }
    }

    /// Makes the app forget `namespaces` by the entry's strategy (a flush once, whatever they are).
    /// In a dry run nothing changes: the counters are read and reported.
    pub async fn bump(
        &self,
        namespaces: &[String],
        dry_run: bool,
    ) -> Result<Vec<Bumped>, AppCacheError> {
        let strategy = self.config.strategy;
        let mut out = Vec::new();
        let row = |namespace: &str, version, deleted| Bumped {
            target: self.name().to_string(),
            strategy,
            namespace: namespace.to_string(),
            version,
            deleted,
            dry_run,
        };
        match strategy {
            AppCacheStrategy::Namespace => {
                for ns in namespaces {
                    let key = self.counter_key(ns);
                    let mut top: Option<u64> = None;
                    for (server, b) in &self.servers {
                        let v = if dry_run {
                            b.read(&key).await
                        } else {
                            b.bump(&key, now_ms()).await.map(Some)
                        }
                        .map_err(|f| self.error(server, format!("bumping `{key}`"), f))?;
                        top = top.max(v);
                    }
                    out.push(row(ns, top, None));
                }
            }
            AppCacheStrategy::DeletePrefix => {
                for ns in namespaces {
                    let pattern = self.pattern(ns);
                    let mut n = 0;
                    if !dry_run {
                        for (server, b) in &self.servers {
                            n += b
                                .delete_matching(&pattern, self.config.scan_count)
                                .await
                                .map_err(|f| {
                                    self.error(server, format!("deleting `{pattern}`"), f)
                                })?;
                        }
                    }
                    out.push(row(ns, None, (!dry_run).then_some(n)));
                }
            }
            AppCacheStrategy::Flush => {
                if !dry_run {
                    for (server, b) in &self.servers {
                        b.flush()
                            .await
                            .map_err(|f| self.error(server, "flushing".into(), f))?;
                    }
                }
                out.push(row("*", None, None));
            }
        }
        Ok(out)
    }

    /// The counters of `namespaces` on every server (`namespace` strategy; others have none).
    pub async fn status(&self, namespaces: &[String]) -> Result<Vec<Version>, AppCacheError> {
        let mut out = Vec::new();
        for ns in namespaces {
            let key = self.counter_key(ns);
            let mut versions = Vec::new();
            for (server, b) in &self.servers {
                let v = b
                    .read(&key)
                    .await
                    .map_err(|f| self.error(server, format!("reading `{key}`"), f))?;
                versions.push((server.clone(), v));
            }
            out.push(Version {
                target: self.name().to_string(),
                namespace: ns.clone(),
                key,
                versions,
            });
        }
        Ok(out)
    }
}

/// The server's backend, if this build has its kind (else the cause and the feature to enable).
#[allow(unused_variables)]
fn backend(
    kind: AppCacheKind,
    url: &str,
    password: Option<String>,
    timeout: Duration,
) -> Result<Box<dyn Backend>, (String, Option<String>)> {
    match kind {
        #[cfg(feature = "redis")]
        AppCacheKind::Redis => Ok(Box::new(
            redis::Redis::open(url, password, timeout).map_err(|e| (e, None))?,
        )),
        #[cfg(feature = "memcached")]
        AppCacheKind::Memcached => Ok(Box::new(
            memcached::Memcached::open(url, timeout).map_err(|e| (e, None))?,
        )),
        #[allow(unreachable_patterns)]
        other => {
            let feature = if other == AppCacheKind::Redis {
                "redis"
            } else {
                "memcached"
            };
            Err((
                format!("this staleguard was built without {feature} support"),
                Some(format!("build it with the `{feature}` feature")),
            ))
        }
    }
}

/// Opens every entry of `configs` (passwords from their `password-env`), in order.
pub fn open_all(configs: &[AppCacheConfig]) -> Result<Vec<Target>, AppCacheError> {
    configs
        .iter()
        .map(|c| {
            let password = (!c.password_env.is_empty())
                .then(|| std::env::var(&c.password_env).ok())
                .flatten()
                .filter(|p| !p.is_empty());
            Target::open(c, password)
        })
        .collect()
}

/// Bumps `namespaces` (or each target's own, when `None`) on every target, in order, stopping at the
/// first failure: the reports so far, and the error.
pub async fn bump_all(
    targets: &[Target],
    namespaces: Option<&[String]>,
    dry_run: bool,
) -> (Vec<Bumped>, Option<AppCacheError>) {
    let mut done = Vec::new();
    for t in targets {
        let ns = namespaces.unwrap_or(&t.config.namespaces);
        match t.bump(ns, dry_run).await {
            Ok(b) => done.extend(b),
            Err(e) => return (done, Some(e)),
        }
    }
    (done, None)
}

/// Deadline of one step on a server.
pub(crate) async fn within<T>(
    timeout: Duration,
    f: impl std::future::Future<Output = Result<T, Fault>>,
) -> Result<T, Fault> {
    match tokio::time::timeout(timeout, f).await {
        Ok(r) => r,
        Err(_) => Err(Fault::Unreachable(format!(
            "no answer within {} ms ([[app-cache]] timeout)",
            timeout.as_millis()
        ))),
    }
}
