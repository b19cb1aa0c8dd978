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
