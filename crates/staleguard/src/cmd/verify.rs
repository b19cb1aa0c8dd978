//! `staleguard warm`, `staleguard verify`, and the last steps of `deploy`/`rollback`: warm the edges,
//! then prove through the CDN that users get what was deployed, then tell a webhook.
//!
//! Verification fetches every changed mutable URL of the deploy (capped and sampled, see
//! `staleguard_core::verify`) through each `[verify] cdn-url` and compares the body's blake3 with the
//! deployed object's (aliases: sha256 with `metadata.json`), reads the version endpoint through the CDN
//! and at the origin, and runs the `[[verify.assert]]` smoke tests; a URL is stale only when it still
//! differs at the deadline (edges converge over seconds).

use std::collections::BTreeMap;
use std::time::Duration;

use anyhow::{Result, bail};
use serde::Serialize;
use staleguard_cdn::verify::{Expect, Target, VerifyOptions, VerifyReport};
use staleguard_cdn::warm::{WarmOptions, WarmResult};
use staleguard_core::changes::changes;
use staleguard_core::config::VerifyConfig;
use staleguard_core::secret::redact_url;
use staleguard_core::verify::Digest;
use staleguard_store::PurgeState;

use crate::cli::{Global, VerifyArgs, WarmArgs};
use crate::cmd::runtime;
use crate::settings::{self, Loaded};

pub fn run_verify(global: &Global, args: &VerifyArgs) -> Result<std::process::ExitCode> {
    let loaded = settings::load(global)?;
    let store = settings::store_config(&loaded, &args.store)?;
    let scope = Scope {
        deploy: args.deploy.clone(),
        all: args.all,
        bases: args.cdn_urls.clone(),
        warm: args.warm,
        verify: true,
        extra_warm: Vec::new(),
        timeout: args.timeout.clone(),
        url_prefix: None,
    };
    let report = runtime()?.block_on(async {
        let state = PurgeState::load(&store.store, &store, &loaded.base).await?;
        prove(&loaded, &store, &scope, &state).await
    })?;
    if global.json {
        println!("{}", serde_json::to_string(&report).unwrap_or_default());
    } else if !global.quiet || !report.ok {
        print(&report);
    }
    Ok(if report.ok {
        std::process::ExitCode::SUCCESS
    } else {
        std::process::ExitCode::from(crate::exit::ExitStatus::Stale)
    })
}

pub fn run_warm(global: &Global, args: &WarmArgs) -> Result<std::process::ExitCode> {
    let loaded = settings::load(global)?;
    let store = settings::store_config(&loaded, &args.store)?;
    for p in &args.paths {
        if !p.starts_with('/') {
            bail!("`{p}`: a URL path must start with `/`");
        }
    }
    let mut loaded_warm = loaded;
    if args.changed {
        loaded_warm.config.verify.warm_changed = true;
    }
    let scope = Scope {
        bases: args.cdn_urls.clone(),
        warm: true,
        verify: false,
        extra_warm: args.paths.clone(),
        ..Scope::default()
    };
    let report = runtime()?.block_on(async {
        let state = PurgeState::load(&store.store, &store, &loaded_warm.base).await?;
        prove(&loaded_warm, &store, &scope, &state).await
    })?;
    if global.json {
        println!("{}", serde_json::to_string(&report).unwrap_or_default());
    } else if !global.quiet {
        print(&report);
        if report.warm.is_empty() {
            println!("warm: nothing to warm (set [verify] warm, pass paths, or --changed)");
        }
    }
    Ok(if report.ok {
        std::process::ExitCode::SUCCESS
    } else {
        std::process::ExitCode::from(crate::exit::ExitStatus::Failed)
    })
}

/// What to check.
#[derive(Debug, Clone, Default)]
pub struct Scope {
    /// The deploy (`None`: the current one).
    pub deploy: Option<String>,
    /// Every live mutable URL (capped), not only what the deploy changed.
    pub all: bool,
    /// `cdn-url` override.
    pub bases: Vec<String>,
    /// Warm up before verifying.
    pub warm: bool,
    /// Verify (a `warm` run does not).
    pub verify: bool,
    /// Extra paths to warm (the `warm` subcommand's arguments).
    pub extra_warm: Vec<String>,
    /// Deadline override, e.g. `30s`.
    pub timeout: Option<staleguard_core::HumanDuration>,
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

/// The URL bases to check through.
pub fn bases(cfg: &VerifyConfig, over: &[String]) -> Vec<String> {
    let v = if over.is_empty() { &cfg.cdn_url } else { over };
    v.iter()
        .map(|b| b.trim_end_matches('/').to_string())
        .collect()
}

/// The bases as reports show them: credentials (`user:password@`) redacted, while requests still send
/// them.
fn shown_bases(bases: &[String]) -> Vec<String> {
    bases.iter().map(|b| redact_url(b).into_owned()).collect()
}

/// The URL prefix the store's keys are served under: `[verify] url-prefix`, else a `[[cdn]]`
/// `url-prefix`, else what a purge just resolved (CloudFront's origin path), else the build's.
fn url_prefix(loaded: &Loaded, resolved: Option<&str>) -> String {
    let cfg = &loaded.config;
    let configured = if cfg.verify.url_prefix.is_empty() {
        cfg.cdn
            .iter()
            .map(|c| c.url_prefix.as_str())
            .find(|p| !p.is_empty())
            .unwrap_or_default()
    } else {
        cfg.verify.url_prefix.as_str()
    };
    crate::cmd::purge::served_prefix(loaded, configured, resolved)
}

/// Warms and verifies.
/// `state` is the store's deploy state, loaded once by the caller (and shared with the purge).
pub async fn prove(
    loaded: &Loaded,
    store: &staleguard_core::DeployConfig,
    scope: &Scope,
    state: &PurgeState,
) -> Result<ProveReport> {
    let cfg = &loaded.config.verify;
    let bases = bases(cfg, &scope.bases);
    if bases.is_empty() {
        bail!(
            "nothing to check through: set [verify] cdn-url (the site as users reach it), or pass --cdn-url"
        );
    }
    let timeout = scope.timeout.as_ref().unwrap_or(&cfg.timeout).get();
    let deadline = tokio::time::Instant::now() + timeout.max(Duration::from_secs(1));
    let id = state.resolve(scope.deploy.as_deref())?;
    let Some(record) = state.record(&id).await? else {
        bail!("the record of deploy {id} is gone (collected by GC); verify a newer deploy");
    };
    let changed = if scope.all {
        changes(None, &record.objects)
    } else {
        state.changes(&id, None).await?.changes
    };
    let mut alias_sha = BTreeMap::new();
    if !store.metadata.is_empty()
        && let Some(meta) = state
            .store()
            .get_json::<staleguard_core::verify::DownloadMetadata>(&store.metadata)
            .await?
    {
        alias_sha = staleguard_core::verify::alias_sha256(&meta);
    }
    let prefix = url_prefix(loaded, scope.url_prefix.as_deref());
    let plan = staleguard_core::verify::plan(
        &changed,
        &record.objects,
        &alias_sha,
        &prefix,
        loaded.config.serve.clean_urls,
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
                staleguard_cdn::warm::default_encodings()
            } else {
                cfg.warm_encodings.clone()
            },
            request_timeout: Duration::from_secs(30),
            host: host.clone(),
            deadline,
            headers: Vec::new(),
        };
        staleguard_cdn::warm::warm(&encoded, &opts).await
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

    let mut targets: Vec<Target> = plan
        .checks
        .iter()
        .map(|c| Target {
            path: staleguard_cdn::provider::url_path(&c.url).into_owned(),
            expect: match &c.digest {
                Digest::Blake3(h) => Expect::Blake3(h.clone()),
                Digest::Sha256(h) => Expect::Sha256(h.clone()),
            },
            label: Some(c.key.clone()),
        })
        .collect();
    let version_path = cfg.version_path(&loaded.config.serve).to_string();
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
            match staleguard_cdn::probe::wait_version(url, &record.version, deadline.into_std())
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
        staleguard_cdn::verify::verify(&targets, &opts),
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

/// Prints a report for humans.
pub fn print(r: &ProveReport) {
    if !r.warm.is_empty() {
        let failed: Vec<&WarmResult> = r.warm.iter().filter(|w| !w.ok()).collect();
        println!(
            "warm: {} request(s) through {} edge(s), {} failed",
            r.warm.len(),
            r.bases.len(),
            failed.len()
        );
        for w in failed {
            println!(
                "  {}{} ({}): {}",
                w.base,
                w.path,
                w.encoding,
                w.error
                    .clone()
                    .unwrap_or_else(|| format!("status {}", w.status.unwrap_or_default()))
            );
        }
    }
    let Some(v) = &r.verify else { return };
    let checked = v.checks.len();
    let skipped = if r.skipped > 0 {
        format!(" ({} more changed URL(s) not sampled)", r.skipped)
    } else {
        String::new()
    };
    if r.ok {
        println!(
            "verify: deploy {} is what users get: {checked} check(s) through {} passed{skipped} in {:.1} s",
            r.deploy,
            r.bases.join(", "),
            v.seconds
        );
        return;
    }
    let origin = if r.origin_stale() {
        " and the origin does not serve it"
    } else {
        ""
    };
    println!(
        "verify: STALE: {} of {checked} check(s) still differ from deploy {} at the deadline{origin}{skipped}:",
        r.stale_checks(),
        r.deploy
    );
    for l in r.stale_lines() {
        println!("  {l}");
    }
}

/// Posts the deploy summary to the webhook named by `[verify] webhook-env`, if that variable is set.
/// Failures are warnings: a notification never fails a deploy.
pub async fn notify(
    cfg: &VerifyConfig,
    text: &str,
    fields: &[(String, String)],
    report: &serde_json::Value,
) {
    if cfg.webhook_env.is_empty() {
        return;
    }
    let Ok(url) = std::env::var(&cfg.webhook_env) else {
        return;
    };
    if url.trim().is_empty() {
        return;
    }
    let payload = staleguard_cdn::notify::slack_payload(text, fields, report);
    if let Err(e) =
        staleguard_cdn::notify::post(url.trim(), &payload, Duration::from_secs(10)).await
    {
        eprintln!(
            "warning: the webhook (${}) was not notified: {e}",
            cfg.webhook_env
        );
    }
}
