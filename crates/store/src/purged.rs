//! Which deploy each CDN last saw purged, so a purge that failed or never ran (a deploy killed after its
//! commit, a CDN that timed out) is made up by the next `staleguard deploy` or `staleguard invalidate
//! --pending`: the purge set is always "what changed since the edge was last made consistent", not only
//! what the latest deploy changed.
//!
//! Kept in the store at `.staleguard/purged.json`: CDN label → the deploy it was purged up to.

use std::collections::BTreeMap;
use std::path::Path;
use std::sync::Arc;

use serde::{Deserialize, Serialize};
use staleguard_core::DeployConfig;
use staleguard_core::changes::{Changes, changes};
use staleguard_core::deploy::{self as d, Current, DeployRecord, History};

use crate::{Result, Store, StoreError};

/// The state file's key.
pub const PURGED_KEY: &str = ".staleguard/purged.json";

/// One CDN's last completed purge.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct PurgedMark {
    /// The deploy whose content the CDN serves fresh.
    pub deploy: String,
    /// RFC 3339 time of the purge's completion.
    pub time: String,
    /// Invalidation ids, where the provider gave any.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub ids: Vec<String>,
}

/// The whole state file.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct Purged {
    #[serde(default)]
    pub cdns: BTreeMap<String, PurgedMark>,
}

/// What a CDN must drop to serve `deploy`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Pending {
    /// The deploy to make fresh (the current one, or the one asked for).
    pub deploy: String,
    /// The deploy the changes are counted from (`None`: unknown; every live mutable key is listed).
    pub since: Option<String>,
    pub changes: Changes,
}

/// Reads the deploy state needed to compute purge sets. One is loaded per command and shared by the
/// purge and the verification; records are read once each (they are a few MB for large sites).
pub struct PurgeState {
    store: Store,
    pub history: History,
    pub current: Option<String>,
    pub purged: Purged,
    records: std::sync::Mutex<std::collections::HashMap<String, Option<Arc<DeployRecord>>>>,
}

impl PurgeState {
    pub async fn load(url: &str, config: &DeployConfig, base: &Path) -> Result<PurgeState> {
        let store = Store::open(url, config, base)?;
        let history = store
            .get_json::<History>(d::HISTORY_KEY)
            .await?
            .unwrap_or_default();
        let current = store
            .get_json::<Current>(d::CURRENT_KEY)
            .await?
            .map(|c| c.id);
        let purged = store
            .get_json::<Purged>(PURGED_KEY)
            .await?
            .unwrap_or_default();
        Ok(PurgeState {
            store,
            history,
            current,
            purged,
            records: Default::default(),
        })
    }

    /// A deploy id from an id or a unique prefix of one; `None` = the current deploy.
    pub fn resolve(&self, id: Option<&str>) -> Result<String> {
        let Some(want) = id else {
            return self.current.clone().ok_or_else(|| {
                StoreError::Config(
                    "the store has no deploy yet\nhint: run `staleguard deploy` first".into(),
                )
            });
        };
        self.history
            .find(want)
            .map(|e| e.id.clone())
            .map_err(StoreError::Config)
    }

    /// The store the state was read from.
    pub fn store(&self) -> &Store {
        &self.store
    }

    /// A deploy's record (`None` when GC collected it), read from the store once.
    pub async fn record(&self, id: &str) -> Result<Option<Arc<DeployRecord>>> {
        if let Some(r) = self.cached(id) {
            return Ok(r);
        }
        let r = self
            .store
            .get_json::<DeployRecord>(&d::record_key(id))
            .await?
            .map(Arc::new);
        if let Ok(mut m) = self.records.lock() {
            m.insert(id.to_string(), r.clone());
        }
        Ok(r)
    }

    fn cached(&self, id: &str) -> Option<Option<Arc<DeployRecord>>> {
        self.records.lock().ok()?.get(id).cloned()
    }

    /// Every live mutable key of a deploy (what a prefix purge would also drop).
    pub async fn inventory(&self, id: &str) -> Result<Changes> {
        let rec = self.require(id).await?;
        Ok(changes(None, &rec.objects))
    }

    async fn require(&self, id: &str) -> Result<Arc<DeployRecord>> {
        self.record(id).await?.ok_or_else(|| StoreError::State {
            key: d::record_key(id),
            reason: "missing: the deploy was collected or never finished".into(),
        })
    }

    /// The deploy recorded just before `id`.
    pub fn predecessor(&self, id: &str) -> Option<String> {
        self.history.before(id).map(|e| e.id.clone())
    }

    /// The changes from `since` (`None`: the deploy before `deploy`) to `deploy`. A record that is gone
    /// (collected by GC) or unknown counts as "nothing known": every live mutable key is listed.
    pub async fn changes(&self, deploy: &str, since: Option<&str>) -> Result<Pending> {
        let next = self.require(deploy).await?;
        let since = match since {
            Some(s) => Some(s.to_string()),
            None => self.predecessor(deploy),
        };
        let prev = match &since {
            Some(s) => self.record(s).await?,
            None => None,
        };
        Ok(Pending {
            deploy: deploy.to_string(),
            since: prev.as_ref().map(|p| p.id.clone()),
            changes: changes(prev.as_ref().map(|p| &p.objects), &next.objects),
        })
    }

    /// What `label` must still drop to serve the current deploy: changes since its last completed
    /// purge; for a CDN never purged through staleguard, the current deploy's own changes.
    /// `None` when it is up to date.
    pub async fn pending(&self, label: &str) -> Result<Option<Pending>> {
        let Some(current) = self.current.clone() else {
            return Ok(None);
        };
        match self.purged.cdns.get(label) {
            Some(m) if m.deploy == current => Ok(None),
            Some(m) => {
                // The mark may name a deploy GC collected: then its record is gone and `changes` lists
                // every live mutable key, which is safe.
                self.changes(&current, Some(&m.deploy)).await.map(Some)
            }
            None => self.changes(&current, None).await.map(Some),
        }
    }

    /// Records that `label` now serves `deploy` fresh.
    pub async fn mark(
        &mut self,
        label: &str,
        deploy: &str,
        time: String,
        ids: Vec<String>,
    ) -> Result<()> {
        // Read-modify-write without lost updates: another run may be marking another CDN right now.
        let mark = PurgedMark {
            deploy: deploy.to_string(),
            time,
            // Ids come from a CDN's answers: nothing secret that one echoed goes into the store.
            ids: ids
                .iter()
                .map(|id| staleguard_core::secret::scrub(id).into_owned())
                .collect(),
        };
        let fresh = crate::lease::update_json(&self.store, PURGED_KEY, |mut p: Purged| {
            p.cdns.insert(label.to_string(), mark.clone());
            p
        })
        .await?;
        self.purged = fresh;
        Ok(())
    }
}
