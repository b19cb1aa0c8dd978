//! The proof run: warm the edges, then prove through the CDN that users get what was deployed.
//!
//! Every changed mutable URL of the deploy (capped and sampled, see `staleguard_core::verify`) is fetched
//! through each edge base and compared by digest with the deployed object (aliases: sha256 from
//! `metadata.json`); the version endpoint is read through the CDN and at the origin; the
//! `[[verify.assert]]` smoke tests run. A URL is stale only when it still differs at the deadline (edges
//! converge over seconds).
//!
//! Invariant (ARCHITECTURE.md, 14): nothing cache-busts the checks, and every common `Accept-Encoding`
//! is checked on its own (each is its own cached variant).

use std::collections::BTreeMap;
use std::time::Duration;

use serde::Serialize;
use staleguard_check::verify::{Expect, Target, VerifyOptions, VerifyReport};
use staleguard_check::warm::{WarmOptions, WarmResult};
use staleguard_core::changes::changes;
use staleguard_core::config::VerifyConfig;
use staleguard_core::secret::redact_url;
use staleguard_core::verify::Digest;
use staleguard_store::PurgeState;

use crate::Error;

/// Everything a proof run needs, resolved by the caller.
#[derive(Debug, Clone)]
pub struct ProveSettings {
    /// The `[verify]` section: what to warm, encodings, asserts, `Host`, concurrency, `max-checks`,
    /// `origin-url`.
    pub verify: VerifyConfig,
    /// The URL bases to check through (`[verify] cdn-url` or `--cdn-url`), without a trailing `/`.
    pub bases: Vec<String>,
    /// The deadline, from the start of the run.
    pub timeout: Duration,
    /// The version endpoint's path (`[verify] version-path`, else the build info's URL).
    pub version_path: String,
    /// `[serve] clean-urls`.
    pub clean_urls: bool,
    /// `[deploy] metadata`: the downloads' metadata key, whose sha256 sums check aliases.
    pub metadata_key: String,
    /// The URL prefix configured for the checks: `[verify] url-prefix`, else a `[[cdn]]` `url-prefix`
    /// (empty: none).
    pub url_prefix: String,
    /// `[build] url-prefix`, the last resort.
    pub build_url_prefix: String,
}

/// What to check.
#[derive(Debug, Clone, Default)]
pub struct Scope {
    /// The deploy (`None`: the current one).
    pub deploy: Option<String>,
    /// Every live mutable URL (capped), not only what the deploy changed.
    pub all: bool,
    /// Warm up before verifying.
    pub warm: bool,
    /// Verify (a warm-only run does not).
    pub verify: bool,
    /// Extra paths to warm.
    pub extra_warm: Vec<String>,
    /// The URL prefix a purge just resolved (CloudFront's origin path), used when the config names none.
    pub url_prefix: Option<String>,
}

/// The origin's and the CDN's version, where a version endpoint is known.
#[derive(Debug, Clone, Serialize)]
pub struct VersionCheck {
    pub deployed: String,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub origin_url: Option<String>,
    /// The origin's version, or the error reading it.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub origin: Option<String>,
    pub origin_ok: bool,
}

/// Everything the last steps did.
#[derive(Debug, Clone, Serialize)]
pub struct ProveReport {
    pub deploy: String,
    pub bases: Vec<String>,
    pub warm: Vec<WarmResult>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub verify: Option<VerifyReport>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub version: Option<VersionCheck>,
    /// Changed URLs left out by `max-checks`.
    pub skipped: usize,
    pub ok: bool,
}

impl ProveReport {
    /// Checks (URL × edge × Accept-Encoding) that still failed at the deadline.
    pub fn stale_checks(&self) -> usize {
        self.verify.as_ref().map_or(0, |v| v.stale)
    }

    /// The origin's version endpoint does not serve the deployed version.
    pub fn origin_stale(&self) -> bool {
        self.version.as_ref().is_some_and(|v| !v.origin_ok)
    }

    /// What failed at the deadline, one line each, for messages: every failed check once, as
    /// `edge+path (Accept-Encoding: …): expected …; got …, Age, X-Cache (N attempt(s))`, then the
    /// origin when it does not serve the deployed version.
    pub fn stale_lines(&self) -> Vec<String> {
        let mut out = Vec::new();
        if let Some(r) = &self.verify {
            for c in r.stale_checks() {
                let mut seen = Vec::new();
                if let Some(s) = c.seen.status {
                    seen.push(format!("status {s}"));
                }
                if let Some(g) = &c.seen.got {
                    seen.push(format!("got {}", short(g)));
                }
                if let Some(a) = &c.seen.age {
                    seen.push(format!("Age: {a}"));
                }
                if let Some(x) = &c.seen.x_cache {
                    seen.push(format!("X-Cache: {x}"));
                }
                if let Some(e) = &c.error {
                    seen.push(e.clone());
                }
                let expected = match c.expected.split_once(' ') {
                    Some((kind, hex)) if hex.len() == 64 => format!("{kind} {}", short(hex)),
                    _ => c.expected.clone(),
                };
                let encoding = if c.encoding.is_empty() {
                    "none"
                } else {
                    c.encoding.as_str()
                };
                out.push(format!(
                    "{}{} (Accept-Encoding: {encoding}): expected {expected}; {} ({} attempt(s))",
                    c.base,
                    c.path,
                    seen.join(", "),
                    c.attempts
                ));
            }
        }
        if let Some(v) = &self.version
            && !v.origin_ok
        {
            out.push(format!(
                "origin {} reports {}, deployed {}",
                v.origin_url.as_deref().unwrap_or_default(),
                v.origin.as_deref().unwrap_or("nothing"),
                v.deployed
            ));
        }
        out
    }
}

fn short(s: &str) -> &str {
    if s.len() > 16 { &s[..16] } else { s }
}

/// The URL bases to check through: `over` when given, else `[verify] cdn-url`, without trailing `/`.
pub fn bases(cfg: &VerifyConfig, over: &[String]) -> Vec<String> {
    let v = if over.is_empty() { &cfg.cdn_url } else { over };
    v.iter()
        .map(|b| b.trim_end_matches('/').to_string())
        .collect()
}

/// The bases as reports show them: credentials (`user:password@`) redacted, while requests still send
/// them.
pub fn shown_bases(bases: &[String]) -> Vec<String> {
    bases.iter().map(|b| redact_url(b).into_owned()).collect()
}

/// The sha256 of each download alias, from `[deploy] metadata` (empty without one).
pub async fn alias_sha256(
    settings: &ProveSettings,
    state: &PurgeState,
) -> Result<BTreeMap<String, String>, Error> {
    if settings.metadata_key.is_empty() {
        return Ok(BTreeMap::new());
    }
    Ok(state
        .store()
        .get_json::<staleguard_core::verify::DownloadMetadata>(&settings.metadata_key)
        .await?
        .map(|meta| staleguard_core::verify::alias_sha256(&meta))
        .unwrap_or_default())
}

/// What a planned check fetches and expects: the URL as it goes on the wire, the deployed object's
/// digest, the store key as the label. `staleguard watch` checks with the same targets.
pub fn check_targets(checks: &[staleguard_core::verify::Check]) -> Vec<Target> {
    checks
        .iter()
        .map(|c| Target {
            path: staleguard_cdn::provider::url_path(&c.url).into_owned(),
            expect: match &c.digest {
                Digest::Blake3(h) => Expect::Blake3(h.clone()),
                Digest::Sha256(h) => Expect::Sha256(h.clone()),
            },
            label: Some(c.key.clone()),
        })
        .collect()
}

/// Warms and verifies. `state` is the store's deploy state, loaded once by the caller (and shared
/// with the purge).
pub async fn prove(
    settings: &ProveSettings,
    scope: &Scope,
    state: &PurgeState,
) -> Result<ProveReport, Error> {
    let cfg = &settings.verify;
    let bases = settings.bases.clone();
    if bases.is_empty() {
        return Err(Error::NoBases);
    }
    let deadline = tokio::time::Instant::now() + settings.timeout.max(Duration::from_secs(1));
    let id = state.resolve(scope.deploy.as_deref())?;
    let Some(record) = state.record(&id).await? else {
        return Err(Error::RecordGone(id));
    };
    let changed = if scope.all {
        changes(None, &record.objects)
    } else {
        state.changes(&id, None).await?.changes
    };
    let alias_sha = alias_sha256(settings, state).await?;
    let prefix = crate::purge::served_prefix(
        &settings.url_prefix,
        scope.url_prefix.as_deref(),
        &settings.build_url_prefix,
    );
    let plan = staleguard_core::verify::plan(
        &changed,
        &record.objects,
        &alias_sha,
        &prefix,
        settings.clean_urls,
        cfg.max_checks,
        &id,
    );
    let host = (!cfg.host.is_empty()).then(|| cfg.host.clone());

    // Warm first: the first visitor (and the checks) hit an edge that already fetched the new copy.
    let mut warm_paths: Vec<String> = cfg.warm.clone();
    warm_paths.extend(scope.extra_warm.iter().cloned());
    if cfg.warm_changed {
        warm_paths.extend(plan.checks.iter().map(|c| c.url.clone()));
    }
    warm_paths.sort();
    warm_paths.dedup();
    let warm = if scope.warm && !warm_paths.is_empty() {
        let encoded: Vec<String> = warm_paths
            .iter()
            .map(|p| staleguard_cdn::provider::url_path(p).into_owned())
            .collect();
        let opts = WarmOptions {
            bases: bases.clone(),
            concurrency: cfg.warm_concurrency.max(1),
            encodings: if cfg.warm_encodings.is_empty() {
                staleguard_check::warm::default_encodings()
            } else {
                cfg.warm_encodings.clone()
            },
            request_timeout: Duration::from_secs(30),
            host: host.clone(),
            deadline,
            headers: Vec::new(),
        };
        staleguard_check::warm::warm(&encoded, &opts).await
    } else {
        Vec::new()
    };
    if !scope.verify {
        let ok = warm.iter().all(|w| w.ok());
        return Ok(ProveReport {
            deploy: id,
            bases: shown_bases(&bases),
            warm,
            verify: None,
            version: None,
            skipped: 0,
            ok,
        });
    }

    let mut targets = check_targets(&plan.checks);
    let version_path = settings.version_path.clone();
    let origin_url = (!cfg.origin_url.is_empty() && !record.version.is_empty())
        .then(|| format!("{}{version_path}", cfg.origin_url));
    if origin_url.is_some() {
        // The version endpoint through the CDN must report the deployed version, like the origin.
        targets.push(Target {
            path: version_path.clone(),
            expect: Expect::Version(record.version.clone()),
            label: Some("version endpoint".into()),
        });
    }
    for a in &cfg.asserts {
        targets.push(Target {
            path: a.path.clone(),
            expect: Expect::Assert {
                status: a.status,
                contains: a.contains.clone(),
            },
            label: Some("assert".into()),
        });
    }
    let mut opts = VerifyOptions::new(bases.clone(), deadline)
        .with_concurrency(cfg.concurrency.max(1))
        .with_retry(Duration::from_millis(250), Duration::from_secs(5))
        .with_request_timeout(Duration::from_secs(15));
    if !cfg.encodings.is_empty() {
        opts = opts.with_encodings(cfg.encodings.clone());
    }
    if let Some(h) = host {
        opts = opts.with_host(h);
    }
    // The origin must have switched too; it converges like the edges, until the same deadline.
    let origin_check = async {
        let url = origin_url.as_ref()?;
        let origin =
            match staleguard_check::probe::wait_version(url, &record.version, deadline.into_std())
                .await
            {
                Ok(()) => Ok(record.version.clone()),
                Err(e) => e.last,
            };
        Some(VersionCheck {
            deployed: record.version.clone(),
            origin_ok: origin.as_deref().ok() == Some(record.version.as_str()),
            origin: Some(origin.unwrap_or_else(|e| e)),
            origin_url: Some(redact_url(url).into_owned()),
        })
    };
    let (report, version) = tokio::join!(
        staleguard_check::verify::verify(&targets, &opts),
        origin_check
    );
    let ok = report.ok && version.as_ref().is_none_or(|v| v.origin_ok);
    Ok(ProveReport {
        deploy: id,
        bases: shown_bases(&bases),
        warm,
        verify: Some(report),
        version,
        skipped: plan.skipped,
        ok,
    })
}
