//! Rollback copies (each mutable content findable in a bundle) and the rollback that restores an earlier
//! deploy from them.

use std::collections::BTreeMap;
use std::sync::Arc;
use std::time::Instant;

use staleguard_core::deploy::{
    self as d, DeployKind, DeployRecord, GcPlan, HistoryEntry, ObjectRecord, Rank, Upload,
};

use crate::lease::Lease;
use crate::store::Store;
use crate::wanted::{Source, Wanted};
use crate::{Result, StoreError};

use super::upload::{commit, upload_all};
use super::{
    DeployOptions, DeployReport, Progress, State, base_of, leased, load_state, new_record,
    persist_tidy, tidy,
};

/// Rollback copies: every mutable content without an immutable twin must be findable in a bundle. Contents
/// the current deploy already keeps stay where they are; new ones go into this deploy's bundle, which is
/// added to `wanted` (uploaded with the immutable objects, before any page). Bundles still referenced are
/// carried into the new record's objects, so GC keeps them.
pub(super) fn add_copies(
    wanted: &mut BTreeMap<String, Wanted>,
    current: Option<&DeployRecord>,
    bundle: &str,
) -> Result<BTreeMap<String, d::CopyLoc>> {
    let twins: std::collections::HashSet<&str> = wanted
        .values()
        .filter(|w| !w.record.mutable)
        .map(|w| w.record.hash.as_str())
        .collect();
    let mut copies = BTreeMap::new();
    let mut buf: Vec<u8> = Vec::new();
    for w in wanted.values() {
        let h = &w.record.hash;
        if !w.record.mutable || twins.contains(h.as_str()) || copies.contains_key(h) {
            continue;
        }
        if let Some(loc) = current.and_then(|r| r.copies.get(h))
            && current.is_some_and(|r| r.objects.contains_key(&loc.bundle))
        {
            copies.insert(h.clone(), loc.clone());
            continue;
        }
        let bytes = match &w.source {
            Source::File(p) => std::fs::read(p).map_err(|e| StoreError::Local {
                path: p.clone(),
                source: e,
            })?,
            Source::Bytes(b) => b.to_vec(),
            // Fetched by the deploy first when no earlier copy covers it (see `fetch_reused`).
            Source::Stored | Source::InStore => continue,
        };
        copies.insert(
            h.clone(),
            d::CopyLoc {
                bundle: bundle.to_string(),
                offset: buf.len() as u64,
                size: bytes.len() as u64,
            },
        );
        buf.extend_from_slice(&bytes);
    }
    let bundles: std::collections::BTreeSet<String> =
        copies.values().map(|c| c.bundle.clone()).collect();
    for key in bundles {
        if key == bundle {
            let bytes = bytes::Bytes::from(std::mem::take(&mut buf));
            let record = ObjectRecord {
                hash: blake3::hash(&bytes).to_hex().to_string(),
                size: bytes.len() as u64,
                mutable: false,
                headers: BTreeMap::from([
                    (
                        "content-type".to_string(),
                        "application/octet-stream".to_string(),
                    ),
                    ("cache-control".to_string(), "private, no-store".to_string()),
                ]),
                rank: Rank::Immutable,
                etag: None,
            };
            wanted.insert(
                key,
                Wanted {
                    record,
                    source: Source::Bytes(bytes),
                },
            );
        } else if let Some(o) = current.and_then(|r| r.objects.get(&key)) {
            wanted.insert(
                key,
                Wanted {
                    record: o.clone(),
                    source: Source::Stored,
                },
            );
        }
    }
    Ok(copies)
}

/// Makes an earlier deploy current again: its immutable objects are still in the store (GC keeps them),
/// its mutable ones are restored from their rollback copies, in the same order as a deploy. Recorded as a
/// new deploy. `target`: an id (or a unique prefix of one); `None` = the deploy before the current one.
pub async fn rollback(
    opts: &DeployOptions,
    target: Option<&str>,
    progress: Arc<dyn Progress>,
) -> Result<DeployReport> {
    let store = Store::open(&opts.config.store, &opts.config, &opts.base)?;
    leased(&store, opts, "rollback", async |lease| {
        rollback_leased(&store, opts, target, progress, lease).await
    })
    .await
}

async fn rollback_leased(
    store: &Store,
    opts: &DeployOptions,
    target: Option<&str>,
    progress: Arc<dyn Progress>,
    lease: Option<&Lease>,
) -> Result<DeployReport> {
    let started = Instant::now();
    let store = store.clone();
    let mut state = load_state(&store).await?;
    let mut tidied = tidy(&mut state);
    if !opts.dry_run {
        persist_tidy(&store, &state, &mut tidied).await?;
    }
    let current = state
        .current
        .as_ref()
        .map(|c| c.id.clone())
        .ok_or_else(|| {
            StoreError::Rollback(format!(
                "`{}` has no deploy yet; nothing to roll back",
                store.url
            ))
        })?;
    let mut skipped = Vec::new();
    let entry = match target {
        Some(t) => state
            .history
            .find(t)
            .map_err(|e| StoreError::Rollback(format!("in `{}`: {e}", store.url)))?
            .clone(),
        None => previous_different(&store, &state, &current, &mut skipped).await?,
    };
    if entry.collected {
        return Err(StoreError::Rollback(format!(
            "deploy {} was garbage-collected (older than the last {} deploys and {}); its files are gone\nhint: rebuild that version and deploy it",
            entry.id, opts.config.keep_deploys, opts.config.keep_age
        )));
    }
    let old = store
        .get_json::<DeployRecord>(&d::record_key(&entry.id))
        .await?
        .ok_or_else(|| StoreError::State {
            key: d::record_key(&entry.id),
            reason: "missing".into(),
        })?;
    let base = base_of(&state);
    let next = old.objects.clone();
    let plan = d::diff(&base, &next);
    let id = d::deploy_id(opts.now, &next, &current);
    let mut report = DeployReport {
        id: id.clone(),
        store: store.url.clone(),
        dry_run: opts.dry_run,
        kind: DeployKind::Rollback,
        restores: Some(old.id.clone()),
        previous: Some(current.clone()),
        version: old.version.clone(),
        objects: next.len(),
        bytes: next.values().map(|o| o.size).sum(),
        plan: plan.clone(),
        resumed: 0,
        tidied,
        skipped,
        gc: GcPlan::default(),
        seconds: 0.0,
        up_to_date: false,
        changes: None,
    };
    // Immutable objects must still be there; mutable ones come back from their copies.
    let mut wanted = BTreeMap::new();
    let mut missing = Vec::new();
    for u in &plan.uploads {
        let o = &next[&u.key];
        if !o.mutable {
            if store.head(&u.key).await?.is_none() {
                missing.push(u.key.clone());
            }
            continue;
        }
        // The same bytes under an immutable key of that deploy, or its bundle.
        let twin = old
            .objects
            .iter()
            .find(|(k, c)| !c.mutable && c.hash == o.hash && !d::is_state_key(k))
            .map(|(k, _)| k.clone());
        let fetched = match (&twin, old.copies.get(&o.hash)) {
            (Some(k), _) => store.get(k).await?,
            (None, Some(loc)) => {
                store
                    .get_range(&loc.bundle, loc.offset..loc.offset + loc.size)
                    .await?
            }
            (None, None) => None,
        };
        let copy = twin.unwrap_or_else(|| {
            old.copies
                .get(&o.hash)
                .map_or_else(|| "(no copy recorded)".to_string(), |l| l.bundle.clone())
        });
        let bytes = fetched.ok_or_else(|| {
            StoreError::Rollback(format!(
                "the rollback copy `{copy}` of `{}` is missing; deploy {} cannot be restored from the store\nhint: rebuild that version and deploy it",
                u.key, old.id
            ))
        })?;
        wanted.insert(
            u.key.clone(),
            Wanted {
                record: o.clone(),
                source: Source::Bytes(bytes),
            },
        );
    }
    if !missing.is_empty() {
        return Err(StoreError::Rollback(format!(
            "{} immutable object(s) of deploy {} are gone from the store (first: `{}`)\nhint: rebuild that version and deploy it",
            missing.len(),
            old.id,
            missing[0]
        )));
    }
    // Immutable objects of the target are already in the store (checked above): they count as kept; the
    // report's uploads are what is really restored.
    let restore: Vec<Upload> = plan
        .uploads
        .iter()
        .filter(|u| wanted.contains_key(&u.key))
        .cloned()
        .collect();
    let present: Vec<&Upload> = plan
        .uploads
        .iter()
        .filter(|u| !wanted.contains_key(&u.key))
        .collect();
    report.plan.kept += present.len();
    report.plan.kept_bytes += present.iter().map(|u| u.size).sum::<u64>();
    report.plan.uploads = restore.clone();
    if opts.dry_run {
        // What the rollback would make a CDN drop (the current deploy → the restored one), for the plan.
        report.changes = Some(staleguard_core::changes::changes(
            state.record.as_ref().map(|r| &r.objects),
            &next,
        ));
        report.seconds = started.elapsed().as_secs_f64();
        return Ok(report);
    }
    upload_all(
        &store,
        &restore,
        &wanted,
        &mut state,
        opts.config.concurrency as usize,
        progress.as_ref(),
    )
    .await?;
    let mut record = new_record(
        &id,
        opts,
        DeployKind::Rollback,
        Some(old.id.clone()),
        old.version.clone(),
        next,
        old.copies.clone(),
    );
    record.git_commit = old.git_commit.clone();
    // The restored objects are the old deploy's, with the levels it recorded.
    record.encodings = old
        .encodings
        .iter()
        .filter(|(k, _)| record.objects.contains_key(*k))
        .map(|(k, v)| (k.clone(), v.clone()))
        .collect();
    record.not_kept = old.not_kept.clone();
    if let Some(l) = lease {
        l.check()?;
    }
    commit(&store, &mut state, &record, &report.plan).await?;
    report.seconds = started.elapsed().as_secs_f64();
    Ok(report)
}

/// The last deploy before the current one that serves something else: a deploy re-run after an
/// interrupted one, or the same build deployed again, is skipped (and named in `skipped`). Same version
/// means the same manifest digest; without a manifest, the same objects.
async fn previous_different(
    store: &Store,
    state: &State,
    current: &str,
    skipped: &mut Vec<String>,
) -> Result<HistoryEntry> {
    let deploys = &state.history.deploys;
    let pos = deploys
        .iter()
        .rposition(|e| e.id == current)
        .unwrap_or(deploys.len());
    let now = state.record.as_ref();
    let version = now.map_or("", |r| r.version.as_str());
    for e in deploys[..pos].iter().rev() {
        let same = if !version.is_empty() || !e.version.is_empty() {
            e.version == version
        } else if e.collected {
            false
        } else {
            let r = store
                .get_json::<DeployRecord>(&d::record_key(&e.id))
                .await?;
            match (r, now) {
                (Some(r), Some(n)) => {
                    r.objects.len() == n.objects.len()
                        && r.objects
                            .iter()
                            .all(|(k, o)| n.objects.get(k).is_some_and(|c| c.same_as(o)))
                }
                _ => false,
            }
        };
        if !same {
            return Ok(e.clone());
        }
        skipped.push(e.id.clone());
    }
    Err(StoreError::Rollback(if skipped.is_empty() {
        "there is no deploy before the current one".into()
    } else {
        format!(
            "every deploy before the current one serves the same version ({}: {})\nhint: `staleguard deploys` lists them; deploy the build you want",
            if version.is_empty() {
                "same objects"
            } else {
                version
            },
            skipped.join(", ")
        )
    }))
}
