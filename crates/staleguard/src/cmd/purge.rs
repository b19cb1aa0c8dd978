//! Purging the configured CDNs, shared by `deploy`, `rollback` and `invalidate`: pick the CDNs, work out
//! what each must drop (the pending changes since its last purge, a deploy's changes, or items given on
//! the command line), plan the items, send them through the retry and rate-limit wrappers, wait for
//! completion, and record which deploy each CDN now serves fresh.

use std::collections::BTreeSet;
use std::sync::Arc;
use std::time::{Duration, Instant};

use anyhow::{Result, bail};
use serde::Serialize;
use staleguard_cdn::wrap::{self, RunOptions};
use staleguard_cdn::{Batch, Event, OpenContext, Provider};
use staleguard_core::config::{CdnConfig, OnFailure, PurgeBy};
use staleguard_core::purge::{self, Capabilities, Item, PlanOptions, PurgePlan};
use staleguard_store::{Pending, PurgeState};

use crate::cli::PurgeArgs;
use crate::settings::Loaded;

/// What to purge.
#[derive(Debug, Clone)]
pub enum Source {
    /// What changed since each CDN's last purge (after a deploy, or to make up a failed purge).
    Pending,
    /// What one deploy changed compared with the deploy before it (`None`: the current deploy).
    Deploy(Option<String>),
    /// Items from the command line; `paths` go through the planner, `items` are sent as given.
    Explicit {
        paths: Vec<String>,
        items: Vec<Item>,
    },
    /// A deploy's dry run: what it would change (planned, never sent).
    Preview(Pending),
}

/// How one CDN's purge ended.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "kebab-case")]
pub enum Outcome {
    /// Nothing to purge: the CDN already serves the current deploy fresh.
    UpToDate,
    /// `--dry-run`: planned, nothing sent.
    DryRun,
    /// Accepted by the CDN; not waited for.
    Sent,
    /// Accepted and completed.
    Completed,
    Failed,
}

/// One provider's purge, for the report.
#[derive(Debug, Clone, Serialize)]
pub struct CdnReport {
    /// The `[[cdn]]` entry's label.
    pub cdn: String,
    /// The provider (`cloudfront:E2ABC`, `varnish`).
    pub provider: String,
    pub outcome: Outcome,
    /// The deploy this purge makes fresh, and the deploy its changes are counted from.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub deploy: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub since: Option<String>,
    /// Changed keys and the URLs they stand for.
    pub changed_keys: usize,
    pub url_prefix: String,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub plan: Option<PurgePlan>,
    /// Estimated cost in US dollars once the month's free allowance is used up.
    pub cost_usd: f64,
    pub calls: usize,
    /// Ids of the provider's purges (CloudFront invalidation ids).
    pub ids: Vec<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub error: Option<String>,
    pub on_failure: OnFailure,
    pub seconds: f64,
}

impl CdnReport {
    /// A CDN whose purge failed before any plan (opening it, reading the state, the origin check).
    fn failed(cfg: &CdnConfig, provider: String, error: String, seconds: f64) -> CdnReport {
        CdnReport {
            cdn: cfg.label().to_string(),
            provider,
            outcome: Outcome::Failed,
            deploy: None,
            since: None,
            changed_keys: 0,
            url_prefix: String::new(),
            plan: None,
            cost_usd: 0.0,
            calls: 0,
            ids: Vec::new(),
            error: Some(error),
            on_failure: cfg.on_failure,
            seconds,
        }
    }

    /// True when this failure must fail the command (`on-failure = "fail"`).
    pub fn fails(&self) -> bool {
        self.outcome == Outcome::Failed && self.on_failure == OnFailure::Fail
    }
}

/// Everything a purge run needs besides the source.
pub struct Run<'a> {
    pub loaded: &'a Loaded,
    pub store: &'a staleguard_core::DeployConfig,
    pub args: &'a PurgeArgs,
    pub dry_run: bool,
    /// Print retries and waits on stderr.
    pub progress: bool,
    /// The build version just deployed: wait until `[verify] origin-url` serves it before purging.
    pub origin_version: Option<String>,
}

/// The `[[cdn]]` entries selected by `--cdn` (all without it). An unknown name is an error listing the
/// configured ones.
pub fn selected<'a>(loaded: &'a Loaded, names: &[String]) -> Result<Vec<&'a CdnConfig>> {
    let all = &loaded.config.cdn;
    for n in names {
        if !all.iter().any(|c| c.label() == n) {
            let known: Vec<&str> = all.iter().map(|c| c.label()).collect();
            bail!(
                "no [[cdn]] named `{n}` in the config (configured: {})",
                if known.is_empty() {
                    "none".to_string()
                } else {
                    known.join(", ")
                }
            );
        }
    }
    Ok(all
        .iter()
        .filter(|c| names.is_empty() || names.iter().any(|n| n == c.label()))
        .collect())
}

/// `s3://bucket/prefix` → what a provider needs to map keys to URLs.
pub fn open_context(store_url: &str) -> OpenContext {
    let Some((scheme, rest)) = store_url.split_once("://") else {
        return OpenContext::default();
    };
    if scheme == "file" {
        return OpenContext::default();
    }
    let (bucket, prefix) = rest.split_once('/').unwrap_or((rest, ""));
    let prefix = prefix.trim_matches('/');
    OpenContext {
        bucket: Some(bucket.to_string()),
        store_prefix: if prefix.is_empty() {
            String::new()
        } else {
            format!("{prefix}/")
        },
    }
}

fn observer() -> wrap::Observer {
    Arc::new(|e: &Event| match e {
        Event::Retrying {
            error,
            after,
            attempt,
            ..
        } => eprintln!(
            "{}; retrying in {} (attempt {})",
            error.lines().next().unwrap_or_default(),
            wrap::human(*after),
            attempt + 1
        ),
        Event::Split {
            provider, items, ..
        } => eprintln!("{provider}: a call of {items} item(s) was too large; sending it in halves"),
        _ => {}
    })
}

/// Purges every selected CDN. Failures are reported per CDN, not returned: the caller decides (fail
/// or warn) from [`CdnReport::fails`].
/// `state` is the store's deploy state, loaded once by the caller (and shared with verification).
pub async fn run(run: &Run<'_>, source: &Source, state: &mut PurgeState) -> Result<Vec<CdnReport>> {
    let cdns = selected(run.loaded, &run.args.cdns)?;
    if cdns.is_empty() {
        return Ok(Vec::new());
    }
    if let (Some(want), false, false) = (
        run.origin_version.as_deref().filter(|v| !v.is_empty()),
        run.loaded.config.verify.origin_url.is_empty(),
        run.dry_run,
    ) {
        let v = &run.loaded.config.verify;
        let url = format!(
            "{}{}",
            v.origin_url,
            v.version_path(&run.loaded.config.serve)
        );
        let deadline = Instant::now() + v.origin_timeout.get().max(Duration::from_secs(1));
        if let Err(e) = staleguard_cdn::probe::wait_version(&url, want, deadline).await {
            return Ok(cdns
                .iter()
                .map(|cfg| {
                    CdnReport::failed(cfg, cfg.label().to_string(), e.error.to_string(), 0.0)
                })
                .collect());
        }
    }
    // What does not depend on the CDN: a deploy's own changes, or the inventory that bounds what a
    // prefix over command-line paths may sweep.
    let shared: Option<Pending> = match source {
        Source::Deploy(id) => {
            let id = state.resolve(id.as_deref().filter(|s| !s.is_empty()))?;
            Some(state.changes(&id, None).await?)
        }
        Source::Preview(p) => Some(p.clone()),
        Source::Pending | Source::Explicit { .. } => None,
    };
    let inventory = match (source, &state.current) {
        (Source::Explicit { paths, .. }, Some(current)) if !paths.is_empty() => {
            Some(state.inventory(current).await?)
        }
        _ => None,
    };
    let ctx = open_context(&run.store.store);
    let mut reports = Vec::new();
    for cfg in cdns {
        let started = Instant::now();
        let fail = |provider: String, error: String| {
            CdnReport::failed(cfg, provider, error, started.elapsed().as_secs_f64())
        };
        // What this CDN must drop.
        let pending: Option<Pending> = match source {
            Source::Pending => match state.pending(cfg.label()).await {
                Ok(p) => p,
                Err(e) => {
                    reports.push(fail(cfg.label().to_string(), e.to_string()));
                    continue;
                }
            },
            _ => shared.clone(),
        };
        if matches!(source, Source::Pending) && pending.is_none() {
            reports.push(CdnReport {
                outcome: Outcome::UpToDate,
                error: None,
                deploy: state.current.clone(),
                ..fail(cfg.label().to_string(), String::new())
            });
            continue;
        }
        let providers = match staleguard_cdn::open(cfg, &ctx).await {
            Ok(p) => p,
            Err(e) => {
                reports.push(fail(cfg.label().to_string(), e.to_string()));
                continue;
            }
        };
        let mut all_ok = true;
        let mut ids = Vec::new();
        for p in providers {
            let url_prefix = served_prefix(run.loaded, &cfg.url_prefix, p.url_prefix());
            let plan = match plan_for(
                cfg,
                p.capabilities(),
                &url_prefix,
                run.loaded.config.serve.clean_urls,
                source,
                pending.as_ref(),
                inventory.as_ref(),
            ) {
                Ok(plan) => plan,
                Err(e) => {
                    all_ok = false;
                    reports.push(fail(p.name().to_string(), e));
                    continue;
                }
            };
            let mut report = CdnReport {
                cdn: cfg.label().to_string(),
                provider: p.name().to_string(),
                outcome: Outcome::DryRun,
                deploy: pending.as_ref().map(|p| p.deploy.clone()),
                since: pending.as_ref().and_then(|p| p.since.clone()),
                changed_keys: pending.as_ref().map_or(0, |p| p.changes.changed.len()),
                url_prefix,
                cost_usd: plan.cost_usd(&p.capabilities().pricing, u64::MAX),
                plan: Some(plan),
                calls: 0,
                ids: Vec::new(),
                error: None,
                on_failure: cfg.on_failure,
                seconds: 0.0,
            };
            let plan = report.plan.as_ref().expect("set above");
            if plan.items.is_empty() {
                report.outcome = Outcome::UpToDate;
            } else {
                let wait = if run.args.no_wait {
                    false
                } else {
                    run.args.wait || cfg.wait
                };
                // A dry run goes through the same chunking and driver, into a recorder.
                let target: Arc<dyn Provider> = if run.dry_run {
                    Arc::new(wrap::Recorder::like(p.as_ref()))
                } else {
                    p
                };
                match send(run, cfg, target, plan, pending.as_ref(), wait).await {
                    Ok((calls, sent_ids, completed)) => {
                        report.calls = calls;
                        report.ids = if run.dry_run { Vec::new() } else { sent_ids };
                        report.outcome = match (run.dry_run, completed) {
                            (true, _) => Outcome::DryRun,
                            (false, true) => Outcome::Completed,
                            (false, false) => Outcome::Sent,
                        };
                    }
                    Err(e) => {
                        report.outcome = Outcome::Failed;
                        report.error = Some(e);
                    }
                }
            }
            all_ok &= report.outcome != Outcome::Failed;
            ids.extend(report.ids.iter().cloned());
            report.seconds = started.elapsed().as_secs_f64();
            reports.push(report);
        }
        // Every distribution of this entry took the purge: the CDN now serves the deploy fresh.
        if let (Source::Pending, Some(p), false, true) = (source, &pending, run.dry_run, all_ok) {
            state
                .mark(cfg.label(), &p.deploy, now_rfc3339(), ids)
                .await?;
        }
    }
    Ok(reports)
}

/// Where the store's keys are served: a configured `url-prefix` (already normalised when parsed), else
/// what a provider found (CloudFront's origin path), else the build's `url-prefix`.
pub fn served_prefix(loaded: &Loaded, configured: &str, resolved: Option<&str>) -> String {
    if !configured.is_empty() {
        return configured.to_string();
    }
    if let Some(r) = resolved.filter(|r| !r.is_empty()) {
        return r.to_string();
    }
    loaded.config.build.url_prefix.clone()
}

/// The purge items for one provider.
fn plan_for(
    cfg: &CdnConfig,
    caps: &Capabilities,
    url_prefix: &str,
    clean_urls: bool,
    source: &Source,
    pending: Option<&Pending>,
    inventory: Option<&staleguard_core::changes::Changes>,
) -> std::result::Result<PurgePlan, String> {
    let opts = PlanOptions {
        sweep_ceiling: cfg.sweep_ceiling_for(caps.pricing.per_item_usd),
        sweep_ratio: cfg.sweep_ratio_for(caps.pricing.per_item_usd),
    };
    if let Some(p) = pending {
        if cfg.purge_by == PurgeBy::Tags {
            if !caps.tags {
                return Err(format!(
                    "`purge-by = \"tags\"` but {} cannot purge by tag",
                    cfg.provider.as_str()
                ));
            }
            return Ok(purge::tag_plan(&p.changes.tags(), caps));
        }
        let (changed, live) = p.changes.urls(url_prefix, clean_urls);
        return Ok(purge::plan(&changed, &live, caps, &opts));
    }
    let Source::Explicit { paths, items } = source else {
        return Ok(purge::plan(&[], &[], caps, &opts));
    };
    for it in items {
        if !caps.supports(it.kind) {
            return Err(format!(
                "cannot purge `{it}`: {} does not support {:?} items",
                cfg.provider.as_str(),
                it.kind
            ));
        }
    }
    let mut plan = if paths.is_empty() {
        purge::plan(&[], &[], caps, &opts)
    } else {
        let full: Vec<String> = paths
            .iter()
            .map(|p| {
                if url_prefix == "/" || p.starts_with(url_prefix) {
                    p.clone()
                } else {
                    format!("{}{}", url_prefix.trim_end_matches('/'), p)
                }
            })
            .collect();
        match inventory {
            // The live URLs bound what a prefix may sweep.
            Some(inv) => {
                let (_, live) = inv.urls(url_prefix, clean_urls);
                purge::plan(&full, &live, caps, &opts)
            }
            // No inventory: nothing tells what a prefix would sweep, so list the paths as given.
            None => {
                let caps = Capabilities {
                    prefixes: false,
                    all: false,
                    ..caps.clone()
                };
                purge::plan(&full, &[], &caps, &opts)
            }
        }
    };
    // Items given as such go in as they are.
    let extra: BTreeSet<Item> = items.iter().cloned().collect();
    for it in extra {
        plan.items.push(purge::PlannedItem {
            item: it,
            covers: 0,
            examples: Vec::new(),
            swept: 0,
        });
        plan.billed += 1;
    }
    Ok(plan)
}

/// Sends a plan and, when `wait`, waits for it. Returns calls sent, ids, and whether it completed.
async fn send(
    run: &Run<'_>,
    cfg: &CdnConfig,
    p: Arc<dyn Provider>,
    plan: &PurgePlan,
    pending: Option<&Pending>,
    wait: bool,
) -> std::result::Result<(usize, Vec<String>, bool), String> {
    let timeout = cfg.timeout.get().max(Duration::from_secs(1));
    let mut opts = RunOptions::within(timeout);
    if run.progress {
        opts = opts.with_observer(observer());
    }
    let p = wrap::retrying(p, &opts);
    // The reference is the idempotency key (CloudFront CallerReference): the same deploy and CDN give the
    // same reference, so a re-run after a lost answer does not create a second invalidation.
    let reference = match pending {
        Some(pd) => format!(
            "sg-{}-{}-{}",
            pd.deploy,
            pd.since.as_deref().unwrap_or("all"),
            cfg.label()
        ),
        None => format!("sg-manual-{}-{}", now_rfc3339(), std::process::id()),
    };
    let whole = Batch {
        items: plan.items.iter().map(|i| i.item.clone()).collect(),
        reference,
        soft: cfg.soft,
    };
    let calls = wrap::chunk(p.as_ref(), &whole).map_err(|e| e.to_string())?;
    let report = wrap::purge_all(&p, calls, &opts)
        .await
        .map_err(|e| e.to_string())?;
    let ids: Vec<String> = report
        .receipts
        .iter()
        .filter_map(|r| r.id.clone())
        .collect();
    let mut completed = report.in_progress().is_empty();
    if wait && !completed {
        wrap::wait_all(&p, &report.receipts, &opts)
            .await
            .map_err(|e| e.to_string())?;
        completed = true;
    }
    Ok((report.calls, ids, completed))
}

fn now_rfc3339() -> String {
    let secs = crate::settings::deploy_now().unwrap_or_default();
    staleguard_core::manifest::format_rfc3339(secs)
}

/// Prints the reports for humans.
pub fn print(reports: &[CdnReport], explain: bool) {
    for r in reports {
        let head = if r.cdn == r.provider || r.provider.starts_with(&format!("{}:", r.cdn)) {
            r.provider.clone()
        } else {
            format!("{} ({})", r.provider, r.cdn)
        };
        match r.outcome {
            Outcome::UpToDate => {
                println!(
                    "purge {head}: nothing to purge{}",
                    r.deploy
                        .as_deref()
                        .map(|d| format!(" (serves deploy {d})"))
                        .unwrap_or_default()
                );
                continue;
            }
            Outcome::Failed if r.plan.is_none() => {
                println!(
                    "purge {head}: FAILED: {}",
                    r.error.as_deref().unwrap_or_default()
                );
                continue;
            }
            _ => {}
        }
        let Some(plan) = &r.plan else { continue };
        let since = match (&r.deploy, &r.since) {
            (Some(d), Some(s)) => format!(" (deploy {d} since {s})"),
            (Some(d), None) => format!(" (deploy {d})"),
            _ => String::new(),
        };
        let cost = if r.cost_usd > 0.0 {
            format!(
                ", est. ${:.3} once the month's free allowance is used",
                r.cost_usd
            )
        } else {
            String::new()
        };
        let swept = if plan.swept > 0 {
            format!(", {} unchanged URL(s) swept", plan.swept)
        } else {
            String::new()
        };
        let tail = match r.outcome {
            Outcome::DryRun => format!("dry run: nothing sent ({} call(s) planned)", r.calls),
            Outcome::Sent => format!(
                "sent in {} call(s){}; not waited for",
                r.calls,
                ids_text(&r.ids)
            ),
            Outcome::Completed => format!(
                "completed in {:.1} s ({} call(s){})",
                r.seconds,
                r.calls,
                ids_text(&r.ids)
            ),
            Outcome::Failed => format!("FAILED: {}", r.error.as_deref().unwrap_or_default()),
            Outcome::UpToDate => "nothing to purge".into(),
        };
        println!(
            "purge {head}{since}: {} changed URL(s) → {} item(s){swept}{cost}; {tail}",
            plan.changed,
            plan.items.len(),
        );
        if explain {
            for it in &plan.items {
                let what = if it.covers == 0 {
                    "as given".to_string()
                } else {
                    let more = it.covers.saturating_sub(it.examples.len());
                    format!(
                        "covers {} changed: {}{}",
                        it.covers,
                        it.examples.join(" "),
                        if more > 0 {
                            format!(" … and {more} more")
                        } else {
                            String::new()
                        }
                    )
                };
                let swept = if it.swept > 0 {
                    format!("; sweeps {} unchanged", it.swept)
                } else {
                    String::new()
                };
                println!("  {:<40} {what}{swept}", it.item.to_string());
            }
        }
    }
}

fn ids_text(ids: &[String]) -> String {
    if ids.is_empty() {
        String::new()
    } else {
        format!(", id {}", ids.join(", "))
    }
}

/// The longest URL path accepted on the command line (CloudFront's limit for an invalidation path).
pub const MAX_URL_PATH: usize = 4000;

/// A URL path given on the command line: starts with `/`, no `..` segment (also percent-encoded, `%2e%2e`),
/// no spaces or control characters, at most [`MAX_URL_PATH`] bytes.
pub fn check_url_path(flag: &str, p: &str) -> Result<()> {
    let shown: String = p.chars().take(80).collect();
    let more = if p.len() > shown.len() { "…" } else { "" };
    if p.len() > MAX_URL_PATH {
        bail!(
            "{flag} `{shown}{more}`: a URL path of {} bytes is longer than {MAX_URL_PATH}",
            p.len()
        );
    }
    if !p.starts_with('/') {
        bail!("{flag} `{shown}{more}`: a URL path must start with `/`");
    }
    let dot_dot = p.split('/').any(|seg| {
        let decoded = percent_encoding::percent_decode_str(seg).decode_utf8_lossy();
        decoded == ".." || decoded.contains('/') || decoded.contains('\\')
    });
    if dot_dot {
        bail!(
            "{flag} `{shown}{more}`: `..` (or an encoded `/`, `\\` or `..`: `%2e%2e`, `%2f`) is not allowed in a URL path"
        );
    }
    if p.chars().any(|c| c.is_control() || c == ' ') {
        bail!(
            "{flag} `{shown}{more}`: spaces and control characters must be percent-encoded (`%20`)"
        );
    }
    Ok(())
}

/// Parses `--paths`: `/a.html` is a path, `/docs/*` a prefix; anything else is refused with the reason.
pub fn parse_paths(raw: &[String]) -> Result<(Vec<String>, Vec<Item>)> {
    let mut paths = Vec::new();
    let mut items = Vec::new();
    for p in raw {
        check_url_path("--paths", p)?;
        match p.find('*') {
            None => paths.push(p.clone()),
            Some(i) if i == p.len() - 1 => items.push(Item::prefix(&p[..i])),
            Some(_) => bail!("--paths `{p}`: `*` may only come last (`/docs/*`)"),
        }
    }
    Ok((paths, items))
}
