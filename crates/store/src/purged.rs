//! Which deploy each CDN last saw purged, so a purge that failed or never ran (a deploy killed after its
//! commit, a CDN that timed out) is made up by the next `staleguard deploy` or `staleguard invalidate
//! --pending`: the purge set is always "what changed since the edge was last made consistent", not only
//! what the latest deploy changed.
//!
//! Kept in the store at `.staleguard/purged.json`: CDN label → the deploy it was purged up to; and per
//! provider target (`cloudfront:E123`) the month's billed items, so the planner knows how many of the
//! provider's free items a month are left ([`PurgeState::reserve`]).

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
    /// Provider target (`cloudfront:E123`) → its billed items this month.
    #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
    pub usage: BTreeMap<String, MonthUsage>,
}

/// One provider target's billed items in one month (UTC).
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct MonthUsage {
    /// `2026-11`.
    pub month: String,
    /// Items billed (reserved before sending) this month, free or not.
    pub billed: u64,
    /// The latest purges reserved this month (at most [`KEPT_RESERVATIONS`]), so that a retried purge
    /// (the same reference) is planned with the same free items and counted once.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub purges: Vec<Reservation>,
}

/// One purge's reservation.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Reservation {
    /// The purge's reference (CloudFront `CallerReference`).
    pub reference: String,
    /// The free items the plan was made with.
    pub free_left: u64,
    /// The items it bills.
    pub billed: u64,
}

/// Reservations kept per target and month.
pub const KEPT_RESERVATIONS: usize = 256;

/// The month (UTC) of a Unix time: `2026-11`.
pub fn month_of(unix: i64) -> String {
    staleguard_core::manifest::format_rfc3339(unix)[..7].to_string()
}

impl MonthUsage {
    /// Billed items in `month` (0 when this record is of an earlier month: a new month starts at zero).
    pub fn billed_in(&self, month: &str) -> u64 {
        if self.month == month { self.billed } else { 0 }
    }
}

/// What [`PurgeState::reserve`] found.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Reserved {
    /// Counted: the plan's billed items are the month's now.
    Done,
    /// This purge (its reference) was reserved before this month, planned with `free_left` free
    /// items: plan it again with those (a retry must send the same items) and send; counted once.
    Retry { free_left: u64 },
    /// Fewer free items are left than the plan uses (another purge took them meanwhile): plan again
    /// with `free_left`. Nothing was counted.
    Short { free_left: u64 },
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

    /// Free items left this month for `target`, as last read (see [`PurgeState::reserve`] for the
    /// check that counts).
    pub fn free_left(&self, target: &str, month: &str, free_per_month: u64) -> u64 {
        let used = self
            .purged
            .usage
            .get(target)
            .map_or(0, |u| u.billed_in(month));
        free_per_month.saturating_sub(used)
    }

    /// Before a purge is sent: counts its `billed` items in `target`'s month, atomically (a lock on
    /// a folder store, a conditional write on an object store), if the free items it was planned with
    /// are still there: `free_used` of them (at most `free_left`, what the plan assumed). Two purges
    /// running at once never both spend the same free items: the second one finds fewer left and is
    /// told to plan again ([`Reserved::Short`]). A purge with the same `reference` reserved before in
    /// the month is counted once ([`Reserved::Retry`]).
    #[allow(clippy::too_many_arguments)]
    pub async fn reserve(
        &mut self,
        target: &str,
        month: &str,
        reference: &str,
        free_per_month: u64,
        free_left: u64,
        free_used: u64,
        billed: u64,
    ) -> Result<Reserved> {
        let mut outcome = Reserved::Done;
        let fresh = crate::lease::update_json(&self.store, PURGED_KEY, |mut p: Purged| {
            let u = p.usage.entry(target.to_string()).or_default();
            if u.month != month {
                *u = MonthUsage {
                    month: month.to_string(),
                    ..MonthUsage::default()
                };
            }
            if let Some(r) = u.purges.iter().find(|r| r.reference == reference) {
                outcome = Reserved::Retry {
                    free_left: r.free_left,
                };
                return p;
            }
            let left = free_per_month.saturating_sub(u.billed);
            if free_used > left {
                outcome = Reserved::Short { free_left: left };
                return p;
            }
            outcome = Reserved::Done;
            u.billed = u.billed.saturating_add(billed);
            u.purges.push(Reservation {
                reference: reference.to_string(),
                free_left,
                billed,
            });
            if u.purges.len() > KEPT_RESERVATIONS {
                let extra = u.purges.len() - KEPT_RESERVATIONS;
                u.purges.drain(..extra);
            }
            p
        })
        .await?;
        self.purged = fresh;
        Ok(outcome)
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
