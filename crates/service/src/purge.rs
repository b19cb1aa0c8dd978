//! The [`Sender`] that purges for real: one batch is one run of `staleguard-invalidate`'s purge (the
//! same planner, chunking, retry and rate-limit wrappers, free-tier accounting and idempotent
//! references as `deploy` and `invalidate`), for the batch's one `[[cdn]]` entry, with the batch's
//! reference as the idempotency key: a retry of a batch whose answer was lost is the same purge
//! (CloudFront's `CallerReference`).
//!
//! Then, when configured: a second "rebound" purge after a delay (two-tier caches: a shield refills
//! an edge from what it still holds), a warm-up of the batch's paths through `[verify] cdn-url`, and a
//! proof on a sample of them: each page fetched through the CDN must be the origin's current bytes
//! (`staleguard-check`'s verify, retried until its deadline). A batch counts as done only when its
//! purge (and its rebound) was confirmed and, with the proof on, the sample matched: a page still
//! stale through the CDN fails the batch, which is purged again with backoff.

use std::collections::BTreeMap;
use std::path::PathBuf;
use std::time::Duration;

use async_trait::async_trait;
use staleguard_core::DeployConfig;
use staleguard_core::purge::{Item, ItemKind};
use staleguard_invalidate::{Outcome as PurgeOutcome, PurgeSettings, Source, purge};
use staleguard_store::PurgeState;

use crate::model::{Batch, Outcome};
use crate::worker::{Sender, Sent};

/// Warm-up after a purge: the bases and how.
#[derive(Debug, Clone)]
pub struct Warm {
    pub bases: Vec<String>,
    pub concurrency: usize,
    pub encodings: Vec<String>,
    pub host: Option<String>,
}

/// The proof after a purge: a sample of the batch's paths, through `bases`, against `origin`.
#[derive(Debug, Clone)]
pub struct Prove {
    pub bases: Vec<String>,
    /// The origin the CDN pulls from (`[verify] origin-url`).
    pub origin: String,
    /// Paths checked per batch at most.
    pub sample: usize,
    /// How long edges may take to converge.
    pub timeout: Duration,
    pub host: Option<String>,
}

/// Purges batches through the `[[cdn]]` entries of `settings`.
#[derive(Debug)]
pub struct PurgeSender {
    /// Every `[[cdn]]` entry the service may purge; a batch uses the one named by its provider.
    pub settings: PurgeSettings,
    /// The store holding the deploy state (free-tier accounting, the inventory a prefix may sweep).
    pub store: DeployConfig,
    /// The config's folder (relative store paths).
    pub base: PathBuf,
    /// A second purge this long after the first, per `[[cdn]]` name.
    pub rebound: BTreeMap<String, Duration>,
    pub warm: Option<Warm>,
    pub prove: Option<Prove>,
    /// The `[[app-cache]]` targets: a batch's namespaces are bumped on each before its purge.
    pub app_caches: Option<std::sync::Arc<Vec<staleguard_appcache::Target>>>,
}

impl PurgeSender {
    /// One purge run for the batch; with `bump`, the batch's app-cache namespaces first (in the same
    /// run: a failed bump purges nothing and fails the batch, which is retried whole: bump, then
    /// purge, again).
    async fn purge_once(&self, batch: &Batch, reference: String, bump: bool) -> Sent {
        let app_caches = match &self.app_caches {
            Some(targets) if bump && !batch.namespaces.is_empty() => {
                Some(staleguard_invalidate::purge::AppCacheStep {
                    targets: targets.clone(),
                    namespaces: Some(batch.namespaces.clone()),
                    outcome: Default::default(),
                })
            }
            _ => None,
        };
        // An event may name only namespaces: then there is no CDN item to purge.
        if batch.items.is_empty() {
            let Some(step) = app_caches else {
                return Outcome::Done.into();
            };
            return match step.run(false).await {
                None => Outcome::Done.into(),
                Some(e) => Outcome::Failed {
                    reason: e.to_string(),
                    retry_after: None,
                }
                .into(),
            };
        }
        let Some(cfg) = self
            .settings
            .cdns
            .iter()
            .find(|c| c.label() == batch.provider)
        else {
            return Outcome::Failed {
                reason: format!(
                    "no [[cdn]] named `{}` in the config any more; add it back, or retry the dead letter after changing the scope's cdns",
                    batch.provider
                ),
                retry_after: None,
            }
            .into();
        };
        let mut cfg = cfg.clone();
        // A batch of soft events marks stale where the provider can (Fastly; Varnish in xkey mode);
        // elsewhere, and for any batch with a hard event, the entry's own `soft` setting holds.
        if batch.soft && soft_capable(&cfg) {
            cfg.soft = true;
        }
        let settings = PurgeSettings {
            cdns: vec![cfg],
            app_caches,
            ..self.settings.clone()
        };
        let (paths, items): (Vec<&Item>, Vec<&Item>) =
            batch.items.iter().partition(|i| i.kind == ItemKind::Path);
        let source = Source::Explicit {
            paths: paths.into_iter().map(|i| i.value.clone()).collect(),
            items: items.into_iter().cloned().collect(),
            reference: Some(reference),
        };
        let mut state = match PurgeState::load(&self.store.store, &self.store, &self.base).await {
            Ok(s) => s,
            Err(e) => {
                return Outcome::Failed {
                    reason: format!("cannot read the deploy state: {e}"),
                    retry_after: None,
                }
                .into();
            }
        };
        let reports = match purge::run(&settings, &source, None, &mut state).await {
            Ok(r) => r,
            Err(e) => {
                return Outcome::Failed {
                    reason: e.shown(),
                    retry_after: None,
                }
                .into();
            }
        };
        let mut ids = Vec::new();
        for r in reports {
            ids.extend(r.ids.iter().cloned());
            if r.outcome == PurgeOutcome::Failed {
                let retry_after = r.error.as_ref().and_then(|f| match f.error() {
                    staleguard_invalidate::Error::Cdn(c) => c.retry_after,
                    _ => None,
                });
                let reason = r
                    .error
                    .as_ref()
                    .map_or_else(|| "the purge failed".to_string(), |f| f.error().shown());
                return Sent {
                    outcome: Outcome::Failed {
                        reason,
                        retry_after,
                    },
                    ids,
                };
            }
        }
        Sent {
            outcome: Outcome::Done,
            ids,
        }
    }
}

/// Whether a `[[cdn]]` entry can purge softly (mark stale rather than drop).
pub fn soft_capable(cfg: &staleguard_core::config::CdnConfig) -> bool {
    use staleguard_core::config::{CdnProvider, VarnishMode};
    match cfg.provider {
        CdnProvider::Fastly => true,
        CdnProvider::Varnish => cfg.mode == Some(VarnishMode::Xkey),
        _ => false,
    }
}

#[async_trait]
impl Sender for PurgeSender {
    /// Several scopes due together for one `[[cdn]]` entry are one purge run: one planned purge (one
    /// CloudFront invalidation, one Cloudflare call where it fits) instead of one per scope, so the
    /// provider's budget is spent per moment, not per scope. Its reference is made from the batches'
    /// references, so a retry of the same group is the same purge.
    async fn send_group(&self, batches: &[Batch]) -> Vec<Sent> {
        let Some(first) = batches.first() else {
            return Vec::new();
        };
        let refs: Vec<&str> = batches.iter().map(|b| b.reference.as_str()).collect();
        let reference = format!(
            "{}:group-{}",
            first.provider,
            &blake3::hash(refs.join("\n").as_bytes()).to_hex()[..16]
        );
        let mut items: Vec<Item> = Vec::new();
        for b in batches {
            for i in &b.items {
                if !items.contains(i) {
                    items.push(i.clone());
                }
            }
        }
        let namespaces =
            crate::model::union(batches.iter().flat_map(|b| b.namespaces.iter().cloned()));
        let merged = Batch {
            scope: format!("{} scopes", batches.len()),
            namespaces,
            items,
            reference,
            soft: batches.iter().all(|b| b.soft),
            events_at: Vec::new(),
            ..first.clone()
        };
        let sent = self.send(&merged).await;
        vec![sent; batches.len()]
    }

    async fn send(&self, batch: &Batch) -> Sent {
        let mut sent = self.purge_once(batch, batch.reference.clone(), true).await;
        if sent.outcome != Outcome::Done {
            return sent;
        }
        if let Some(delay) = self.rebound.get(&batch.provider) {
            tokio::time::sleep(*delay).await;
            let again = self
                .purge_once(batch, format!("{}-rebound", batch.reference), false)
                .await;
            sent.ids.extend(again.ids);
            if again.outcome != Outcome::Done {
                return Sent {
                    outcome: again.outcome,
                    ids: sent.ids,
                };
            }
        }
        if let Some(w) = &self.warm {
            let paths: Vec<String> = batch
                .items
                .iter()
                .filter(|i| i.kind == ItemKind::Path)
                .map(|i| i.value.clone())
                .collect();
            if !paths.is_empty() && !w.bases.is_empty() {
                let deadline = tokio::time::Instant::now() + Duration::from_secs(60);
                let mut opts = staleguard_check::warm::WarmOptions::new(w.bases.clone(), deadline)
                    .with_concurrency(w.concurrency);
                if !w.encodings.is_empty() {
                    opts = opts.with_encodings(w.encodings.clone());
                }
                if let Some(h) = &w.host {
                    opts = opts.with_host(h.clone());
                }
                // A failed warm-up costs one slow request later, not correctness: not a failure.
                staleguard_check::warm::warm(&paths, &opts).await;
            }
        }
        if let Some(p) = &self.prove
            && let Err(reason) = prove(p, batch).await
        {
            return Sent {
                outcome: Outcome::Failed {
                    reason,
                    retry_after: None,
                },
                ids: sent.ids,
            };
        }
        sent
    }
}

/// Fetches a sample of the batch's paths at the origin, then checks that the CDN serves the same
/// bytes. `Err`: what is still stale (or could not be read at the origin), for the batch's reason.
async fn prove(p: &Prove, batch: &Batch) -> Result<(), String> {
    use staleguard_check::verify::{Expect, Target, VerifyOptions, verify};
    let paths: Vec<&str> = batch
        .items
        .iter()
        .filter(|i| i.kind == ItemKind::Path)
        .map(|i| i.value.as_str())
        .take(p.sample)
        .collect();
    if paths.is_empty() {
        return Ok(());
    }
    let client = staleguard_check::client::client_builder(Duration::from_secs(15))
        .build()
        .map_err(|e| format!("cannot make an HTTP client: {e}"))?;
    let mut targets = Vec::new();
    for path in paths {
        let url = format!("{}{path}", p.origin.trim_end_matches('/'));
        let body = client
            .get(&url)
            .header("accept-encoding", "identity")
            .send()
            .await
            .and_then(|r| r.error_for_status())
            .map_err(|e| {
                format!(
                    "the proof could not read {} at the origin: {}",
                    staleguard_check::client::redact_url(&url),
                    staleguard_check::client::transport_error(&e)
                )
            })?
            .bytes()
            .await
            .map_err(|e| format!("the proof could not read {url} at the origin: {e}"))?;
        targets.push(Target::new(
            path,
            Expect::Blake3(blake3::hash(&body).to_hex().to_string()),
        ));
    }
    let deadline = tokio::time::Instant::now() + p.timeout;
    let mut opts =
        VerifyOptions::new(p.bases.clone(), deadline).with_encodings(vec!["identity".into()]);
    if let Some(h) = &p.host {
        opts = opts.with_host(h.clone());
    }
    let report = verify(&targets, &opts).await;
    if report.ok {
        return Ok(());
    }
    let stale: Vec<String> = report
        .stale_checks()
        .take(5)
        .map(|c| {
            format!(
                "{}{} ({})",
                c.base,
                c.path,
                c.error
                    .clone()
                    .unwrap_or_else(|| "other content than the origin's".into())
            )
        })
        .collect();
    Err(format!(
        "purged, but still stale through the CDN after {} s: {}",
        p.timeout.as_secs(),
        stale.join(", ")
    ))
}
