//! The purge run, shared by `deploy`, `rollback`, `invalidate` and the service: for each selected CDN,
//! what it must drop (the pending changes since its last purge, one deploy's changes, or items handed
//! in), planned ([`crate::plan`]), sent through the retry, rate-limit and chunking wrappers, waited for,
//! and marked in `purged.json`: which deploy each CDN now serves fresh.
//!
//! Invariant (ARCHITECTURE.md, 13): **a retried purge is the same purge**: the reference (CloudFront's
//! `CallerReference`) is made from the deploy, the deploy it counts from and the CDN ([`reference`]), so
//! a re-run after a lost answer never creates a second billed invalidation.

use std::sync::Arc;
use std::time::{Duration, Instant};

use serde::Serialize;
use staleguard_cdn::wrap::{self, Observer, RunOptions};
use staleguard_cdn::{Batch, OpenContext, Provider};
use staleguard_core::config::{CdnConfig, OnFailure};
use staleguard_core::purge::{Item, PurgePlan};
use staleguard_store::{Pending, PurgeState, Reserved, month_of};

use crate::plan::{self, Policy, Wanted};
use crate::{Error, Failure};

/// What to purge.
#[derive(Debug, Clone)]
pub enum Source {
    /// What changed since each CDN's last purge (after a deploy, or to make up a failed purge).
    Pending,
    /// What one deploy changed compared with the deploy before it (`None`: the current deploy).
    Deploy(Option<String>),
    /// Items handed in; `paths` go through the planner, `items` are sent as given. `reference`: the
    /// caller's idempotency key for this purge (the service's scope and sequence number), made per CDN
    /// by [`reference`]; `None`: each run is its own purge.
    Explicit {
        paths: Vec<String>,
        items: Vec<Item>,
        reference: Option<String>,
    },
    /// A deploy's dry run: what it would change (planned, never sent).
    Preview(Pending),
}

/// How long to follow asynchronous purges (CloudFront) to completion.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum Wait {
    /// Each CDN's `wait` setting.
    #[default]
    AsConfigured,
    /// Wait even where the config says `wait = false` (`--wait`).
    Always,
    /// Never wait (`--no-wait`).
    Never,
}

/// The origin's version endpoint, polled until it serves the deployed version before anything is
/// purged (invariant 12: a CDN that refetches right after the purge gets the new content).
#[derive(Debug, Clone)]
pub struct OriginCheck {
    /// `[verify] origin-url` + the version path.
    pub url: String,
    /// `[verify] origin-timeout`.
    pub timeout: Duration,
}

/// Everything a purge run needs besides what to purge, resolved by the caller.
#[derive(Clone)]
pub struct PurgeSettings {
    /// The selected `[[cdn]]` entries, in config order (see [`select`]).
    pub cdns: Vec<CdnConfig>,
    /// The store's URL (`s3://bucket/prefix`), for providers that map keys to URLs themselves.
    pub store_url: String,
    /// `[build] url-prefix`: where keys are served when neither the CDN entry nor its provider says.
    pub build_url_prefix: String,
    /// `[serve] clean-urls`.
    pub clean_urls: bool,
    /// Plan and record every call, send none.
    pub dry_run: bool,
    pub wait: Wait,
    /// Wait for the origin to serve the new version first (`None`: do not).
    pub origin: Option<OriginCheck>,
    /// A fixed clock (`STALEGUARD_NOW`, Unix seconds) for the marks and references; `None`: the real one.
    pub now: Option<i64>,
    /// Receives every retry, split and throttle of the wrappers.
    pub observer: Option<Observer>,
    /// Providers kept open across runs (a long-running caller: the service), so their rate limiter,
    /// HTTP connections and CloudFront's discovery are shared by every purge; `None`: each run opens
    /// its own.
    pub opened: Option<Opened>,
    /// App caches bumped after the origin switched and before any CDN is purged (`None`: none).
    pub app_caches: Option<AppCacheStep>,
}

/// The `[[app-cache]]` targets a purge run bumps first, and what the bump did (read after the run).
#[derive(Clone, Debug, Default)]
pub struct AppCacheStep {
    pub targets: Arc<Vec<staleguard_appcache::Target>>,
    /// The namespaces to bump; `None`: each target's own (`[[app-cache]] namespaces`).
    pub namespaces: Option<Vec<String>>,
    /// Filled by the run: what was bumped, and the failure that stopped it.
    pub outcome: Arc<std::sync::Mutex<AppCacheOutcome>>,
}

/// What the app-cache step of a run did.
#[derive(Clone, Debug, Default, serde::Serialize)]
pub struct AppCacheOutcome {
    /// False when nothing was pending, so nothing was bumped.
    pub ran: bool,
    pub bumped: Vec<staleguard_appcache::Bumped>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub error: Option<String>,
}

impl AppCacheStep {
    /// The targets of `configs` (nothing connects yet); `None` when there are none.
    pub fn open(
        configs: &[staleguard_core::config::AppCacheConfig],
        namespaces: Option<Vec<String>>,
    ) -> Result<Option<AppCacheStep>, staleguard_appcache::AppCacheError> {
        if configs.is_empty() {
            return Ok(None);
        }
        Ok(Some(AppCacheStep {
            targets: Arc::new(staleguard_appcache::open_all(configs)?),
            namespaces,
            outcome: Arc::default(),
        }))
    }

    /// What the last run's bump did.
    pub fn outcome(&self) -> AppCacheOutcome {
        self.outcome
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .clone()
    }

    /// Bumps (a dry run: reads) every target, recording the outcome; the failure, if any.
    pub async fn run(&self, dry_run: bool) -> Option<Arc<staleguard_appcache::AppCacheError>> {
        let (bumped, error) =
            staleguard_appcache::bump_all(&self.targets, self.namespaces.as_deref(), dry_run).await;
        let error = error.map(Arc::new);
        *self.outcome.lock().unwrap_or_else(|p| p.into_inner()) = AppCacheOutcome {
            ran: true,
            bumped,
            error: error.as_ref().map(|e| e.to_string()),
        };
        error
    }
}

/// Providers opened for one `[[cdn]]` entry, by its label and `soft`.
type OpenedMap = std::collections::HashMap<(String, bool), Vec<Arc<dyn Provider>>>;

/// Opened providers by `[[cdn]]` entry (its label and `soft`), shared by the runs that hold a clone.
#[derive(Clone, Default)]
pub struct Opened(Arc<std::sync::Mutex<OpenedMap>>);

impl Opened {
    /// The entry's providers: the ones opened before, else opened now and kept.
    pub async fn get(
        &self,
        cfg: &CdnConfig,
        ctx: &OpenContext,
    ) -> Result<Vec<Arc<dyn Provider>>, staleguard_cdn::CdnError> {
        let key = (cfg.label().to_string(), cfg.soft);
        if let Some(p) = self.0.lock().unwrap_or_else(|p| p.into_inner()).get(&key) {
            return Ok(p.clone());
        }
        let p = staleguard_cdn::open(cfg, ctx).await?;
        self.0
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .entry(key)
            .or_insert(p.clone());
        Ok(p)
    }
}

impl std::fmt::Debug for PurgeSettings {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("PurgeSettings")
            .field(
                "cdns",
                &self.cdns.iter().map(|c| c.label()).collect::<Vec<_>>(),
            )
            .field(
                "store_url",
                &staleguard_core::secret::redact_url(&self.store_url),
            )
            .field("dry_run", &self.dry_run)
            .field("wait", &self.wait)
            .finish_non_exhaustive()
    }
}

/// How one CDN's purge ended.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "kebab-case")]
pub enum Outcome {
    /// Nothing to purge: the CDN already serves the current deploy fresh.
    UpToDate,
    /// A dry run: planned, nothing sent.
    DryRun,
    /// Accepted by the CDN; not waited for.
    Sent,
    /// Accepted and completed.
    Completed,
    Failed,
}

/// A provider target's free items this month, as the plan used them.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Usage {
    /// Where the free items are counted: `cloudfront-account:123456789012` (CloudFront's free paths
    /// are per account, shared by its distributions), else the provider target's name.
    pub counted_as: String,
    /// `2026-11` (UTC).
    pub month: String,
    /// The provider's free items a month (CloudFront: 1,000 paths).
    pub free_per_month: u64,
    /// Free items left before this purge (what the plan was made with).
    pub free_left: u64,
    /// Of this purge's billed items, the free ones.
    pub free_used: u64,
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
    /// Estimated cost in US dollars: billed items past the month's free ones, and the swept URLs'
    /// origin requests at `sweep-price` (the plan's `cost`).
    pub cost_usd: f64,
    /// The month's free items, for providers that have some (CloudFront).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub usage: Option<Usage>,
    pub calls: usize,
    /// Ids of the provider's purges (CloudFront invalidation ids).
    pub ids: Vec<String>,
    /// Why it failed, with the CDN's kind and retryability (shown as the message in JSON).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub error: Option<Failure>,
    pub on_failure: OnFailure,
    pub seconds: f64,
}

impl CdnReport {
    /// A CDN whose purge ended before any plan (opening it, reading the state, the origin check).
    fn early(
        cfg: &CdnConfig,
        provider: String,
        outcome: Outcome,
        error: Option<Error>,
    ) -> CdnReport {
        CdnReport {
            cdn: cfg.label().to_string(),
            provider,
            outcome,
            deploy: None,
            since: None,
            changed_keys: 0,
            url_prefix: String::new(),
            plan: None,
            cost_usd: 0.0,
            usage: None,
            calls: 0,
            ids: Vec::new(),
            error: error.map(Failure::from),
            on_failure: cfg.on_failure,
            seconds: 0.0,
        }
    }

    /// True when this failure must fail the command (`on-failure = "fail"`).
    pub fn fails(&self) -> bool {
        self.outcome == Outcome::Failed && self.on_failure == OnFailure::Fail
    }
}

/// The `[[cdn]]` entries named (all of them when `names` is empty), in config order. An unknown name is
/// an error listing the configured ones.
pub fn select<'a>(all: &'a [CdnConfig], names: &[String]) -> Result<Vec<&'a CdnConfig>, Error> {
    for n in names {
        if !all.iter().any(|c| c.label() == n) {
            let known: Vec<&str> = all.iter().map(|c| c.label()).collect();
            return Err(Error::UnknownCdn {
                name: n.clone(),
                known: if known.is_empty() {
                    "none".to_string()
                } else {
                    known.join(", ")
                },
            });
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

/// Where the store's keys are served: a configured `url-prefix` (already normalised when parsed), else
/// what a provider found (CloudFront's origin path), else the build's `url-prefix`.
pub fn served_prefix(configured: &str, resolved: Option<&str>, build: &str) -> String {
    if !configured.is_empty() {
        return configured.to_string();
    }
    if let Some(r) = resolved.filter(|r| !r.is_empty()) {
        return r.to_string();
    }
    build.to_string()
}

/// The idempotency reference of a purge (CloudFront `CallerReference`; the wrappers number the calls
/// of a split batch `-1`, `-2`, …): the same deploy, base and CDN give the same reference, so a re-run
/// after a lost answer is the same purge; so do the same caller key and CDN. Purges handed in without a
/// key are each their own.
pub fn reference(
    pending: Option<&Pending>,
    key: Option<&str>,
    cdn: &str,
    now: i64,
    pid: u32,
) -> String {
    match (pending, key) {
        (Some(pd), _) => format!(
            "sg-{}-{}-{cdn}",
            pd.deploy,
            pd.since.as_deref().unwrap_or("all"),
        ),
        (None, Some(key)) => format!("sg-{key}-{cdn}"),
        (None, None) => format!(
            "sg-manual-{}-{pid}",
            staleguard_core::manifest::format_rfc3339(now)
        ),
    }
}

impl PurgeSettings {
    fn now(&self) -> i64 {
        self.now.unwrap_or_else(|| {
            std::time::SystemTime::now()
                .duration_since(std::time::UNIX_EPOCH)
                .map_or(0, |d| d.as_secs() as i64)
        })
    }

    fn waits(&self, cfg: &CdnConfig) -> bool {
        match self.wait {
            Wait::AsConfigured => cfg.wait,
            Wait::Always => true,
            Wait::Never => false,
        }
    }
}

/// Purges every selected CDN. Failures are reported per CDN, not returned: the caller decides (fail or
/// warn) from [`CdnReport::fails`]. An `Err` is a failure shared by every CDN before any was tried (the
/// deploy's changes could not be read). `origin_version`: the build version just deployed, waited for
/// at [`PurgeSettings::origin`] first. `state` is the store's deploy state, loaded once by the caller
/// (and shared with the proof).
pub async fn run(
    settings: &PurgeSettings,
    source: &Source,
    origin_version: Option<&str>,
    state: &mut PurgeState,
) -> Result<Vec<CdnReport>, Error> {
    let cdns = &settings.cdns;
    if cdns.is_empty() && settings.app_caches.is_none() {
        return Ok(Vec::new());
    }
    if let (Some(want), Some(origin), false) = (
        origin_version.filter(|v| !v.is_empty()),
        &settings.origin,
        settings.dry_run,
    ) {
        let deadline = Instant::now() + origin.timeout.max(Duration::from_secs(1));
        if let Err(e) = staleguard_check::probe::wait_version(&origin.url, want, deadline).await {
            return Ok(cdns
                .iter()
                .map(|cfg| {
                    CdnReport::early(
                        cfg,
                        cfg.label().to_string(),
                        Outcome::Failed,
                        Some(e.error.clone().into()),
                    )
                })
                .collect());
        }
    }
    // What does not depend on the CDN: a deploy's own changes, or the inventory that bounds what a
    // prefix over paths handed in may sweep.
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
    // What each CDN must drop, read once (the app-cache step needs to know whether any must).
    let mut pendings: Vec<Option<Result<Option<Pending>, Error>>> = Vec::with_capacity(cdns.len());
    for cfg in cdns {
        pendings.push(match source {
            Source::Pending => Some(state.pending(cfg.label()).await.map_err(Error::from)),
            _ => None,
        });
    }
    // The app caches, after the origin switched and before any CDN: a CDN that refetches must not
    // get the old page back from the app's cache. A failed bump purges nothing (both stay pending).
    if let Some(step) = &settings.app_caches {
        let needed = match source {
            // Nothing pending for any CDN: the app caches were bumped with it (a deploy without a
            // CDN has no pending state: bumped).
            Source::Pending => {
                cdns.is_empty() || pendings.iter().any(|p| matches!(p, Some(Ok(Some(_)))))
            }
            _ => true,
        };
        if needed && let Some(e) = step.run(settings.dry_run).await {
            return Ok(cdns
                .iter()
                .map(|cfg| {
                    CdnReport::early(
                        cfg,
                        cfg.label().to_string(),
                        Outcome::Failed,
                        Some(Error::AppCache(e.clone())),
                    )
                })
                .collect());
        }
    }
    let ctx = open_context(&settings.store_url);
    let mut reports = Vec::new();
    for (cfg, pre) in cdns.iter().zip(pendings) {
        let started = Instant::now();
        let fail = |provider: String, error: Error| CdnReport {
            seconds: started.elapsed().as_secs_f64(),
            ..CdnReport::early(cfg, provider, Outcome::Failed, Some(error))
        };
        // What this CDN must drop.
        let pending: Option<Pending> = match pre {
            Some(Ok(p)) => p,
            Some(Err(e)) => {
                reports.push(fail(cfg.label().to_string(), e));
                continue;
            }
            None => shared.clone(),
        };
        if matches!(source, Source::Pending) && pending.is_none() {
            reports.push(CdnReport {
                deploy: state.current.clone(),
                seconds: started.elapsed().as_secs_f64(),
                ..CdnReport::early(cfg, cfg.label().to_string(), Outcome::UpToDate, None)
            });
            continue;
        }
        let opened = match &settings.opened {
            Some(o) => o.get(cfg, &ctx).await,
            None => staleguard_cdn::open(cfg, &ctx).await,
        };
        let providers = match opened {
            Ok(p) => p,
            Err(e) => {
                reports.push(fail(cfg.label().to_string(), e.into()));
                continue;
            }
        };
        let mut all_ok = true;
        let mut ids = Vec::new();
        let key = match source {
            Source::Explicit { reference, .. } => reference.as_deref(),
            _ => None,
        };
        let reference = reference(
            pending.as_ref(),
            key,
            cfg.label(),
            settings.now(),
            std::process::id(),
        );
        let month = month_of(settings.now());
        for p in providers {
            let caps = p.capabilities();
            // Free items a month (CloudFront's 1,000 paths): what this target has left, as last read.
            let free_per_month = if caps.pricing.per_item_usd > 0.0 {
                caps.pricing.free_items_per_month
            } else {
                0
            };
            // Counted where the provider's free items are: per CloudFront account, else per target.
            let scope = p.free_tier_scope().unwrap_or(p.name()).to_string();
            let mut free_left = state.free_left(&scope, &month, free_per_month);
            let mut policy = Policy {
                provider: cfg.provider.as_str().to_string(),
                purge_by: cfg.purge_by,
                options: cfg.plan_options(free_left),
                url_prefix: served_prefix(
                    &cfg.url_prefix,
                    p.url_prefix(),
                    &settings.build_url_prefix,
                ),
                clean_urls: settings.clean_urls,
            };
            let wanted = match (pending.as_ref(), source) {
                (Some(p), _) => Wanted::Changes(&p.changes),
                (None, Source::Explicit { paths, items, .. }) => Wanted::Explicit {
                    paths,
                    items,
                    inventory: inventory.as_ref(),
                },
                (None, _) => Wanted::Explicit {
                    paths: &[],
                    items: &[],
                    inventory: None,
                },
            };
            // Plan, then count the plan's items in the month before sending (not in a dry run): when
            // another purge took free items this plan counted on, plan again with what is left.
            let mut planned = None;
            for attempt in 0..8 {
                if attempt == 7 {
                    free_left = 0; // a plan using no free items is always counted
                }
                policy.options.free_items = free_left;
                let plan = match plan::plan(&policy, caps, wanted) {
                    Ok(plan) => plan,
                    Err(e) => {
                        planned = Some(Err(e));
                        break;
                    }
                };
                if free_per_month == 0 || settings.dry_run || plan.items.is_empty() {
                    planned = Some(Ok(plan));
                    break;
                }
                let reserved = state
                    .reserve(
                        &scope,
                        &month,
                        &reference,
                        free_per_month,
                        free_left,
                        plan.free_used,
                        plan.billed as u64,
                    )
                    .await;
                match reserved {
                    Ok(Reserved::Done) => {}
                    Ok(Reserved::Retry { free_left: was }) if was != free_left && attempt < 6 => {
                        free_left = was;
                        continue;
                    }
                    Ok(Reserved::Retry { .. }) => {}
                    Ok(Reserved::Short { free_left: left }) => {
                        free_left = left;
                        continue;
                    }
                    Err(e) => {
                        planned = Some(Err(e.into()));
                        break;
                    }
                }
                planned = Some(Ok(plan));
                break;
            }
            let plan = match planned {
                Some(Ok(plan)) => plan,
                Some(Err(e)) => {
                    all_ok = false;
                    reports.push(fail(p.name().to_string(), e));
                    continue;
                }
                // Not reached: the last attempt uses no free items, which is always counted.
                None => {
                    all_ok = false;
                    let e = staleguard_store::StoreError::State {
                        key: staleguard_store::purged::PURGED_KEY.to_string(),
                        reason: "other purges kept taking this month's free items; run again"
                            .into(),
                    };
                    reports.push(fail(p.name().to_string(), e.into()));
                    continue;
                }
            };
            let usage = (free_per_month > 0).then(|| Usage {
                counted_as: scope.clone(),
                month: month.clone(),
                free_per_month,
                free_left,
                free_used: plan.free_used,
            });
            let mut report = CdnReport {
                cdn: cfg.label().to_string(),
                provider: p.name().to_string(),
                outcome: Outcome::DryRun,
                deploy: pending.as_ref().map(|p| p.deploy.clone()),
                since: pending.as_ref().and_then(|p| p.since.clone()),
                changed_keys: pending.as_ref().map_or(0, |p| p.changes.changed.len()),
                url_prefix: policy.url_prefix,
                cost_usd: staleguard_core::purge::usd(plan.cost),
                usage,
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
                // A dry run goes through the same chunking and driver, into a recorder.
                let target: Arc<dyn Provider> = if settings.dry_run {
                    Arc::new(wrap::Recorder::like(p.as_ref()))
                } else {
                    p
                };
                match send(settings, cfg, target, plan, reference.clone()).await {
                    Ok(sent) => {
                        report.calls = sent.calls;
                        report.ids = if settings.dry_run {
                            Vec::new()
                        } else {
                            sent.ids
                        };
                        report.outcome = match (settings.dry_run, sent.completed) {
                            (true, _) => Outcome::DryRun,
                            (false, true) => Outcome::Completed,
                            (false, false) => Outcome::Sent,
                        };
                    }
                    Err(e) => {
                        report.outcome = Outcome::Failed;
                        report.error = Some(Error::from(e).into());
                    }
                }
            }
            all_ok &= report.outcome != Outcome::Failed;
            ids.extend(report.ids.iter().cloned());
            report.seconds = started.elapsed().as_secs_f64();
            reports.push(report);
        }
        // Every distribution of this entry took the purge: the CDN now serves the deploy fresh.
        if let (Source::Pending, Some(p), false, true) =
            (source, &pending, settings.dry_run, all_ok)
        {
            let at = staleguard_core::manifest::format_rfc3339(settings.now());
            state.mark(cfg.label(), &p.deploy, at, ids).await?;
        }
    }
    Ok(reports)
}

/// What [`send`] did.
struct Sent {
    calls: usize,
    ids: Vec<String>,
    completed: bool,
}

/// Sends a plan and, when the settings say so, waits for it.
async fn send(
    settings: &PurgeSettings,
    cfg: &CdnConfig,
    p: Arc<dyn Provider>,
    plan: &PurgePlan,
    reference: String,
) -> Result<Sent, staleguard_cdn::CdnError> {
    let timeout = cfg.timeout.get().max(Duration::from_secs(1));
    let mut opts = RunOptions::within(timeout);
    if let Some(o) = &settings.observer {
        opts = opts.with_observer(o.clone());
    }
    let p = wrap::retrying(p, &opts);
    let whole = Batch {
        items: plan.items.iter().map(|i| i.item.clone()).collect(),
        reference,
        soft: cfg.soft,
    };
    let calls = wrap::chunk(p.as_ref(), &whole)?;
    let report = wrap::purge_all(&p, calls, &opts).await?;
    let ids: Vec<String> = report
        .receipts
        .iter()
        .filter_map(|r| r.id.clone())
        .collect();
    let mut completed = report.in_progress().is_empty();
    if settings.waits(cfg) && !completed {
        wrap::wait_all(&p, &report.receipts, &opts).await?;
        completed = true;
    }
    Ok(Sent {
        calls: report.calls,
        ids,
        completed,
    })
}

#[cfg(test)]
mod tests {
    use staleguard_core::changes::Changes;

    use super::*;

    fn pending(deploy: &str, since: Option<&str>) -> Pending {
        Pending {
            deploy: deploy.into(),
            since: since.map(String::from),
            changes: Changes::default(),
        }
    }

    #[test]
    fn a_retried_purge_has_the_same_reference() {
        let p = pending("d7", Some("d6"));
        // Another run, another time, another process: the same deploy, base and CDN.
        assert_eq!(
            reference(Some(&p), None, "cloudfront", 1_700_000_000, 10),
            reference(Some(&p), None, "cloudfront", 1_800_000_000, 99)
        );
        assert_eq!(
            reference(Some(&p), None, "cloudfront", 0, 0),
            "sg-d7-d6-cloudfront"
        );
        let cases = [
            (
                reference(Some(&pending("d7", None)), None, "cloudfront", 0, 0),
                "sg-d7-all-cloudfront",
            ),
            (reference(Some(&p), None, "edge", 0, 0), "sg-d7-d6-edge"),
            (
                reference(Some(&pending("d8", Some("d6"))), None, "cloudfront", 0, 0),
                "sg-d8-d6-cloudfront",
            ),
        ];
        for (got, want) in cases {
            assert_eq!(got, want);
        }
        // A caller's key makes its purge idempotent too, per CDN.
        assert_eq!(
            reference(None, Some("ws:42-s1187"), "cloudfront", 1, 10),
            reference(None, Some("ws:42-s1187"), "cloudfront", 2, 11)
        );
        assert_ne!(
            reference(None, Some("ws:42-s1187"), "cloudfront", 1, 10),
            reference(None, Some("ws:42-s1187"), "fastly", 1, 10)
        );
        // Purges handed in without a key are each their own.
        assert_ne!(
            reference(None, None, "cloudfront", 1, 10),
            reference(None, None, "cloudfront", 1, 11)
        );
        assert_ne!(
            reference(None, None, "cloudfront", 1, 10),
            reference(None, None, "cloudfront", 2, 10)
        );
    }

    #[test]
    fn an_unknown_cdn_is_refused_naming_the_configured_ones() {
        let cfg: Vec<CdnConfig> = staleguard_core::Config::from_toml(
            "[[cdn]]\nprovider = \"varnish\"\nnodes = [\"http://127.0.0.1:1\"]\n[[cdn]]\nprovider = \"varnish\"\nname = \"eu\"\nnodes = [\"http://127.0.0.1:2\"]\n",
            "t.toml",
        )
        .unwrap()
        .cdn;
        assert_eq!(select(&cfg, &[]).unwrap().len(), 2);
        assert_eq!(select(&cfg, &["eu".into()]).unwrap()[0].label(), "eu");
        let e = select(&cfg, &["us".into()]).unwrap_err().to_string();
        assert_eq!(
            e,
            "no [[cdn]] named `us` in the config (configured: varnish, eu)"
        );
        let e = select(&[], &["us".into()]).unwrap_err().to_string();
        assert!(e.ends_with("(configured: none)"), "{e}");
    }

    #[test]
    fn keys_are_served_under_the_first_prefix_that_is_known() {
        let cases = [
            ("/cfg/", Some("/origin/"), "/build/", "/cfg/"),
            ("", Some("/origin/"), "/build/", "/origin/"),
            ("", Some(""), "/build/", "/build/"),
            ("", None, "/", "/"),
        ];
        for (configured, resolved, build, want) in cases {
            assert_eq!(served_prefix(configured, resolved, build), want);
        }
        let ctx = open_context("s3://bucket/site/");
        assert_eq!(ctx.bucket.as_deref(), Some("bucket"));
        assert_eq!(ctx.store_prefix, "site/");
        assert!(open_context("file:///tmp/x").bucket.is_none());
    }
}
