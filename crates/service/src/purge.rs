//! The [`Sender`] that purges for real: one batch is one run of `staleguard-invalidate`'s purge (the
//! same planner, chunking, retry and rate-limit wrappers, free-tier accounting and idempotent
//! references as `deploy` and `invalidate`), for the batch's one `[[cdn]]` entry, with the batch's
//! reference as the idempotency key: a retry of a batch whose answer was lost is the same purge
//! (CloudFront's `CallerReference`).
//!
//! Then, when configured: a second "rebound" purge after a delay (two-tier caches: a shield refills
//! an edge from what it still holds), and a warm-up of the batch's paths through `[verify] cdn-url`.
//! A batch counts as done only when its purge (and its rebound) was confirmed.

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
}

impl PurgeSender {
    async fn purge_once(&self, batch: &Batch, reference: String) -> Sent {
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
    async fn send(&self, batch: &Batch) -> Sent {
        let mut sent = self.purge_once(batch, batch.reference.clone()).await;
        if sent.outcome != Outcome::Done {
            return sent;
        }
        if let Some(delay) = self.rebound.get(&batch.provider) {
            tokio::time::sleep(*delay).await;
            let again = self
                .purge_once(batch, format!("{}-rebound", batch.reference))
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
        sent
    }
}
