//! Garbage collection after a commit: which deploys' objects may go, previewed for `--dry-run`, and
//! deleted in waves that never leave a page without what it references.

use std::collections::BTreeMap;

use futures::StreamExt;
use staleguard_core::deploy::{self as d, DeployRecord, GcPlan, History};

use crate::store::Store;
use crate::{Result, StoreError};

use super::{DeployOptions, Progress, State};

/// True when some deploy outside the last `keep` is not collected yet: only then does GC read records.
fn gc_needed(history: &History, keep: usize) -> bool {
    let n = history.deploys.len();
    history.deploys[..n.saturating_sub(keep.max(1))]
        .iter()
        .any(|e| !e.collected)
}

/// Records GC needs: the last K and every older one not yet collected.
async fn gc_records(
    store: &Store,
    history: &History,
    keep: usize,
    extra: Option<&DeployRecord>,
) -> Result<BTreeMap<String, DeployRecord>> {
    let n = history.deploys.len();
    let mut out = BTreeMap::new();
    if let Some(r) = extra {
        out.insert(r.id.clone(), r.clone());
    }
    for (i, e) in history.deploys.iter().enumerate() {
        if out.contains_key(&e.id) || (e.collected && i + keep < n) {
            continue;
        }
        if let Some(r) = store
            .get_json::<DeployRecord>(&d::record_key(&e.id))
            .await?
        {
            out.insert(e.id.clone(), r);
        }
    }
    Ok(out)
}

/// What GC would do with `history` (which ends with `record`): dry runs.
pub(super) async fn preview_gc_of(
    store: &Store,
    history: &History,
    record: &DeployRecord,
    opts: &DeployOptions,
) -> Result<GcPlan> {
    let keep = opts.config.keep_deploys as usize;
    if !gc_needed(history, keep) {
        return Ok(GcPlan::default());
    }
    let records = gc_records(store, history, keep, Some(record)).await?;
    Ok(d::gc_plan(
        history,
        &records,
        None,
        keep,
        opts.config.keep_age.as_secs_i64(),
        opts.now,
    ))
}

/// Deletes what no recent deploy references, within `max-deletes`; marks collected deploys.
pub(super) async fn run_gc(
    store: &Store,
    state: &mut State,
    opts: &DeployOptions,
    progress: &dyn Progress,
) -> Result<GcPlan> {
    let keep = opts.config.keep_deploys as usize;
    if !gc_needed(&state.history, keep) {
        return Ok(GcPlan::default());
    }
    let records = gc_records(store, &state.history, keep, state.record.as_ref()).await?;
    let plan = d::gc_plan(
        &state.history,
        &records,
        state.journal.as_ref(),
        keep,
        opts.config.keep_age.as_secs_i64(),
        opts.now,
    );
    if plan.delete.len() as u64 > opts.config.max_deletes {
        return Err(StoreError::TooManyDeletes {
            count: plan.delete.len(),
            max: opts.config.max_deletes,
        });
    }
    if plan.delete.is_empty() && plan.collect.is_empty() {
        return Ok(plan);
    }
    progress.phase("gc", plan.delete.len(), plan.delete_bytes);
    // Wave by wave, each complete before the next starts (the reverse of upload order): wherever GC
    // stops, no object left in the store references one already deleted.
    for wave in plan.waves() {
        let mut done = futures::stream::iter(wave.iter())
            .map(|k| async move {
                crate::fault::point("gc-delete", k);
                store.delete(k).await.map(|()| k)
            })
            .buffer_unordered(opts.config.concurrency.max(1) as usize);
        while let Some(r) = done.next().await {
            progress.deleted(r?);
        }
    }
    for e in state.history.deploys.iter_mut() {
        if plan.collect.contains(&e.id) {
            e.collected = true;
        }
    }
    store.put_json(d::HISTORY_KEY, &state.history).await?;
    Ok(plan)
}
