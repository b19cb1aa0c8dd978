//! Uploading a deploy: the HEAD check of `--verify-remote`, rank-by-rank uploads recorded in the
//! journal, and the commit (record, history, then `current.json`).

use std::collections::BTreeMap;
use std::time::Instant;

use futures::StreamExt;
use staleguard_core::deploy::{
    self as d, Current, DeployRecord, Journal, ObjectRecord, Plan, RECORD_FORMAT, Rank, Reason,
    Upload,
};

use crate::store::Store;
use crate::wanted::{Source, Wanted};
use crate::{Result, StoreError};

use super::history::entry_of;
use super::{Progress, State};

/// The journal is written after this many completed uploads or this much time, whichever comes first,
/// and at the end of every rank: a killed deploy re-sends at most that much.
const JOURNAL_EVERY: usize = 256;
const JOURNAL_INTERVAL: std::time::Duration = std::time::Duration::from_secs(1);
const JOURNAL_STEP_MIN: usize = 64;

/// HEADs every wanted object; adds the missing, resized, re-tagged (changed by hand) or re-headered ones
/// to the plan as drift.
pub(super) async fn verify_remote(
    store: &Store,
    next: &BTreeMap<String, ObjectRecord>,
    plan: &mut Plan,
    concurrency: usize,
) -> Result<()> {
    let planned: std::collections::BTreeSet<String> =
        plan.uploads.iter().map(|u| u.key.clone()).collect();
    let checks = futures::stream::iter(next.iter().filter(|(k, _)| !planned.contains(*k)))
        .map(|(k, want)| async move {
            let head = store.head(k).await?;
            let drift = match head {
                None => true,
                Some(h) => {
                    h.size != want.size
                        || matches!((&h.etag, &want.etag), (Some(a), Some(b)) if a != b)
                        || (store.keeps_headers && h.headers != want.headers)
                }
            };
            Ok::<_, StoreError>(drift.then(|| (k.clone(), want.rank, want.size)))
        })
        .buffer_unordered(concurrency.max(1))
        .collect::<Vec<_>>()
        .await;
    let mut found = 0;
    for c in checks {
        if let Some((key, rank, size)) = c? {
            found += 1;
            plan.uploads.push(Upload {
                key,
                reason: Reason::Drift,
                rank,
                size,
            });
        }
    }
    if found > 0 {
        plan.kept -= found;
        d::sort_uploads(&mut plan.uploads);
    }
    Ok(())
}

/// Uploads rank by rank; returns each uploaded key's ETag.
pub(super) async fn upload_all(
    store: &Store,
    uploads: &[Upload],
    wanted: &BTreeMap<String, Wanted>,
    state: &mut State,
    concurrency: usize,
    progress: &dyn Progress,
) -> Result<Vec<(String, Option<String>)>> {
    let mut journal = state.journal.take().unwrap_or(Journal {
        format: RECORD_FORMAT,
        objects: BTreeMap::new(),
    });
    let mut etags = Vec::with_capacity(uploads.len());
    // Within a rank, new keys are complete before changed ones start: a changed page may link a new one.
    let steps = [Rank::Immutable, Rank::Mutable, Rank::Alias, Rank::Pointer]
        .into_iter()
        .flat_map(|r| [(r, true), (r, false)]);
    for (rank, new) in steps {
        let batch: Vec<&Upload> = uploads
            .iter()
            .filter(|u| u.rank == rank && (u.reason == Reason::New) == new)
            .collect();
        if batch.is_empty() {
            continue;
        }
        progress.phase(
            rank_name(rank),
            batch.len(),
            batch.iter().map(|u| u.size).sum(),
        );
        let mut done = futures::stream::iter(batch)
            .map(|u| async move {
                let w = &wanted[&u.key];
                crate::fault::point("put", &u.key);
                let etag = match &w.source {
                    Source::File(p) => {
                        store
                            .put_file(&u.key, p, w.record.size, &w.record.headers)
                            .await?
                    }
                    Source::Bytes(b) => store.put(&u.key, b.clone(), &w.record.headers).await?,
                    Source::InStore => {
                        let bytes = store.get(&u.key).await?.ok_or_else(|| {
                            StoreError::Config(format!(
                                "`{}` is not in the folder (the build reused it from the store) and no longer in the store either\nhint: rebuild without --reuse-from (`deploy --no-reuse`) and deploy again",
                                u.key
                            ))
                        })?;
                        if bytes.len() as u64 != w.record.size
                            || blake3::hash(&bytes).to_hex().as_str() != w.record.hash
                        {
                            return Err(StoreError::Config(format!(
                                "`{}` is not in the folder (the build reused it from the store), and the store's copy was changed since\nhint: rebuild without --reuse-from (`deploy --no-reuse`) and deploy again",
                                u.key
                            )));
                        }
                        store.put(&u.key, bytes, &w.record.headers).await?
                    }
                    Source::Stored => {
                        return Err(StoreError::Rollback(format!(
                            "`{}` (rollback copies kept by an earlier deploy) is missing from the store; the site is fine, but earlier deploys cannot be rolled back to\nhint: remove `.staleguard/` from the store to start a new history",
                            u.key
                        )));
                    }
                };
                crate::fault::point("put-done", &u.key);
                Ok::<_, StoreError>((u, etag))
            })
            .buffer_unordered(concurrency.max(1));
        let mut since_flush = 0;
        let mut flushed_at = Instant::now();
        while let Some(r) = done.next().await {
            let (u, etag) = r?;
            progress.uploaded(&u.key, u.size);
            let mut rec = wanted[&u.key].record.clone();
            rec.etag = etag.clone();
            journal.objects.insert(u.key.clone(), rec);
            etags.push((u.key.clone(), etag));
            since_flush += 1;
            if since_flush >= JOURNAL_EVERY || flushed_at.elapsed() >= JOURNAL_INTERVAL {
                store.put_json(d::JOURNAL_KEY, &journal).await?;
                since_flush = 0;
                flushed_at = Instant::now();
            }
        }
        // A step is complete before the next one starts; a large one is journaled (a small deploy that is
        // killed re-sends little, and every request counts on a redeploy).
        if since_flush >= JOURNAL_STEP_MIN {
            store.put_json(d::JOURNAL_KEY, &journal).await?;
        }
    }
    state.journal = Some(journal);
    Ok(etags)
}

fn rank_name(r: Rank) -> &'static str {
    match r {
        Rank::Immutable => "immutable",
        Rank::Mutable => "mutable",
        Rank::Alias => "aliases",
        Rank::Pointer => "pointers",
    }
}

/// Record, history, then the `current` pointer: the commit point. The journal goes after.
pub(super) async fn commit(
    store: &Store,
    state: &mut State,
    record: &DeployRecord,
    plan: &Plan,
) -> Result<()> {
    store.put_json(&d::record_key(&record.id), record).await?;
    crate::fault::point("commit-record", &record.id);
    state.history.format = RECORD_FORMAT;
    state.history.deploys.push(entry_of(record, plan));
    store.put_json(d::HISTORY_KEY, &state.history).await?;
    crate::fault::point("commit-history", &record.id);
    let current = Current {
        format: RECORD_FORMAT,
        id: record.id.clone(),
    };
    store.put_json(d::CURRENT_KEY, &current).await?;
    crate::fault::point("commit-current", &record.id);
    state.current = Some(current);
    state.record = Some(record.clone());
    if state.journal.take().is_some() {
        store.delete(d::JOURNAL_KEY).await?;
    }
    Ok(())
}
