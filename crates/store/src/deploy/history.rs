//! The deploy history: its entries, and reading it back for `staleguard deploys`.

use std::path::Path;

use staleguard_core::DeployConfig;
use staleguard_core::deploy::{self as d, Current, DeployRecord, History, HistoryEntry, Plan};

use crate::Result;
use crate::store::Store;

pub(super) fn entry_of(record: &DeployRecord, plan: &Plan) -> HistoryEntry {
    HistoryEntry {
        id: record.id.clone(),
        time: record.time.clone(),
        unix: record.unix,
        kind: record.kind,
        restores: record.restores.clone(),
        git_commit: record.git_commit.clone(),
        version: record.version.clone(),
        objects: record.objects.len(),
        bytes: record.bytes(),
        uploaded: plan.uploads.len(),
        uploaded_bytes: plan.upload_bytes(),
        collected: false,
    }
}

/// The record of the store's current deploy (what `build --reuse-from` proves sidecars by); `None`
/// for a store without deploys, or a local folder that does not exist (it is not created).
pub async fn current_record(
    url: &str,
    config: &DeployConfig,
    base: &Path,
) -> Result<Option<DeployRecord>> {
    let local = |u: &str| u.strip_prefix("file://").map(|rest| base.join(rest));
    let state_url = if config.state.is_empty() {
        url
    } else {
        &config.state
    };
    if local(state_url).is_some_and(|p| !p.is_dir()) {
        return Ok(None);
    }
    let store = Store::open(url, config, base)?;
    let Some(c) = store.get_json::<Current>(d::CURRENT_KEY).await? else {
        return Ok(None);
    };
    let key = d::record_key(&c.id);
    store
        .get_json::<DeployRecord>(&key)
        .await?
        .map(Some)
        .ok_or_else(|| crate::StoreError::State {
            key,
            reason: format!("missing, but {} names deploy {}", d::CURRENT_KEY, c.id),
        })
}

/// The deploy history, oldest first, and the current deploy's id.
pub async fn history(
    url: &str,
    config: &DeployConfig,
    base: &Path,
) -> Result<(History, Option<String>)> {
    let store = Store::open(url, config, base)?;
    let mut h = store
        .get_json::<History>(d::HISTORY_KEY)
        .await?
        .unwrap_or_default();
    let c = store.get_json::<Current>(d::CURRENT_KEY).await?;
    // Entries after the current deploy's were written by a commit that never reached its pointer: not
    // deploys (the next deploy removes them).
    h.deploys
        .truncate(h.committed(c.as_ref().map(|c| c.id.as_str())));
    Ok((h, c.map(|c| c.id)))
}
