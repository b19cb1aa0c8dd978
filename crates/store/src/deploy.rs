//! Deploy, rollback, GC and history over a [`Store`].
//!
//! A deploy: read `current.json` and its record (plus the journal of an unfinished deploy); diff with the
//! wanted set; upload rank by rank (immutable, mutable, pointers), each rank concurrently and complete
//! before the next starts, recording progress in the journal; then commit: the new record, the history,
//! and `current.json` last. GC runs after the commit. Killed at any point, the previous deploy stays
//! whole (nothing it uses is overwritten by anything but its own successor's complete ranks, nothing is
//! deleted before a commit), and the next run uploads only what the journal does not show as arrived.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::Instant;

use futures::StreamExt;
use serde::Serialize;
use staleguard_core::DeployConfig;
use staleguard_core::deploy::{
    self as d, Current, DeployKind, DeployRecord, GcPlan, History, HistoryEntry, Journal,
    ObjectRecord, Plan, RECORD_FORMAT, Rank, Reason, Upload,
};
use staleguard_core::routes::RouteRule;

use crate::lease::{Lease, LeaseOptions};
use crate::store::Store;
use crate::wanted::{Inputs, Source, Wanted, collect};
use crate::{Result, StoreError};

/// The journal is written after this many completed uploads or this much time, whichever comes first,
/// and at the end of every rank: a killed deploy re-sends at most that much.
const JOURNAL_EVERY: usize = 256;
const JOURNAL_INTERVAL: std::time::Duration = std::time::Duration::from_secs(1);
const JOURNAL_STEP_MIN: usize = 64;

/// What the caller shows while a deploy runs. Every method has a no-op default.
pub trait Progress: Send + Sync {
    fn phase(&self, _name: &str, _objects: usize, _bytes: u64) {}
    fn uploaded(&self, _key: &str, _bytes: u64) {}
    fn deleted(&self, _key: &str) {}
}

/// Everything a deploy needs.
#[derive(Debug, Clone)]
pub struct DeployOptions {
    pub dir: PathBuf,
    /// The config file's folder: relative `file://` stores are relative to it.
    pub base: PathBuf,
    pub config: DeployConfig,
    pub routes: Vec<RouteRule>,
    pub default_headers: BTreeMap<String, String>,
    pub cors_fonts: bool,
    /// `[serve] tag-header`: surrogate keys stored with mutable objects (empty: none).
    pub tag_header: String,
    pub manifest_name: String,
    pub pointers: Vec<String>,
    /// Pointers not published on the site (see `wanted::Inputs::private`).
    pub private: Vec<String>,
    pub git_commit: Option<String>,
    pub dry_run: bool,
    pub verify_remote: bool,
    pub gc: bool,
    /// Unix time of the deploy (tests pass their own clock).
    pub now: i64,
}

/// What happened (or, for a dry run, would happen).
#[derive(Debug, Clone, Serialize)]
pub struct DeployReport {
    pub id: String,
    pub store: String,
    pub dry_run: bool,
    pub kind: DeployKind,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub restores: Option<String>,
    pub previous: Option<String>,
    pub version: String,
    pub objects: usize,
    pub bytes: u64,
    pub plan: Plan,
    /// Uploads the journal of an interrupted deploy showed as already done.
    pub resumed: usize,
    /// What an interrupted deploy left and this one cleaned: history entries never committed, a journal
    /// of a deploy already committed, staging files of a local store.
    #[serde(skip_serializing_if = "Tidied::is_empty")]
    pub tidied: Tidied,
    /// For a rollback without an id: the deploys skipped because they serve the current version.
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub skipped: Vec<String>,
    pub gc: GcPlan,
    pub seconds: f64,
    /// The store already held exactly this build: no new deploy was recorded.
    pub up_to_date: bool,
    /// For a dry run: what the deploy would change for a CDN (the current deploy → this build).
    #[serde(skip)]
    pub changes: Option<staleguard_core::changes::Changes>,
}

struct State {
    current: Option<Current>,
    record: Option<DeployRecord>,
    history: History,
    journal: Option<Journal>,
}

/// What a deploy killed at its commit point (or while writing) left, found and cleaned by the next run.
#[derive(Debug, Clone, Default, Serialize)]
pub struct Tidied {
    /// History entries written by a commit that never reached the `current` pointer.
    pub uncommitted: Vec<String>,
    /// A journal whose every object is already in the current deploy (killed after the pointer).
    pub stale_journal: bool,
    /// Partial files a local store was writing when the process died (`page.html#1`).
    pub staging: Vec<String>,
}

impl Tidied {
    pub fn is_empty(&self) -> bool {
        self.uncommitted.is_empty() && !self.stale_journal && self.staging.is_empty()
    }
}

/// Repairs the state an interrupted commit left, in memory; [`persist_tidy`] writes it back. The commit
/// writes the record, then the history, then `current`, then removes the journal: history entries after
/// the current deploy's were never committed, and a journal the current record fully contains belongs
/// to a deploy that did commit.
fn tidy(state: &mut State) -> Tidied {
    let mut t = Tidied::default();
    let keep = state
        .history
        .committed(state.current.as_ref().map(|c| c.id.as_str()));
    t.uncommitted = state.history.deploys.drain(keep..).map(|e| e.id).collect();
    if let (Some(j), Some(r)) = (&state.journal, &state.record)
        && j.objects
            .iter()
            .all(|(k, o)| r.objects.get(k).is_some_and(|c| c.same_as(o)))
    {
        state.journal = None;
        t.stale_journal = true;
    }
    t
}

/// Writes what [`tidy`] repaired, and removes the staging files of a local store.
async fn persist_tidy(store: &Store, state: &State, t: &mut Tidied) -> Result<()> {
    if !t.uncommitted.is_empty() {
        store.put_json(d::HISTORY_KEY, &state.history).await?;
        for id in &t.uncommitted {
            if state.current.as_ref().is_none_or(|c| &c.id != id) {
                store.delete(&d::record_key(id)).await?;
            }
        }
    }
    if t.stale_journal {
        store.delete(d::JOURNAL_KEY).await?;
    }
    let known = |k: &str| {
        state
            .record
            .as_ref()
            .is_some_and(|r| r.objects.contains_key(k))
            || state
                .journal
                .as_ref()
                .is_some_and(|j| j.objects.contains_key(k))
    };
    t.staging = store.remove_staging(&known).await?;
    Ok(())
}

async fn load_state(store: &Store) -> Result<State> {
    let current: Option<Current> = store.get_json(d::CURRENT_KEY).await?;
    let record = match &current {
        Some(c) => Some(
            store
                .get_json::<DeployRecord>(&d::record_key(&c.id))
                .await?
                .ok_or_else(|| StoreError::State {
                    key: d::record_key(&c.id),
                    reason: format!("missing, but {} names deploy {}", d::CURRENT_KEY, c.id),
                })?,
        ),
        None => None,
    };
    let history = store
        .get_json::<History>(d::HISTORY_KEY)
        .await?
        .unwrap_or(History {
            format: RECORD_FORMAT,
            deploys: Vec::new(),
        });
    let journal = store.get_json::<Journal>(d::JOURNAL_KEY).await?;
    Ok(State {
        current,
        record,
        history,
        journal,
    })
}

/// The store's content as far as the records know: the current deploy, overlaid with what an
/// unfinished deploy uploaded.
fn base_of(state: &State) -> BTreeMap<String, ObjectRecord> {
    let mut base = state
        .record
        .as_ref()
        .map(|r| r.objects.clone())
        .unwrap_or_default();
    if let Some(j) = &state.journal {
        for (k, o) in &j.objects {
            base.insert(k.clone(), o.clone());
        }
    }
    base
}

/// Runs `f` under the store's lease (unless a dry run or `[deploy] lock = false`), released after, whatever
/// `f` returned.
async fn leased<T>(
    store: &Store,
    opts: &DeployOptions,
    op: &str,
    f: impl AsyncFnOnce(Option<&Lease>) -> Result<T>,
) -> Result<T> {
    if opts.dry_run || !opts.config.lock {
        return f(None).await;
    }
    let lease = crate::lease::acquire(
        store,
        op,
        &LeaseOptions {
            ttl: opts
                .config
                .lock_ttl
                .get()
                .max(std::time::Duration::from_secs(1)),
            wait: opts.config.lock_timeout.get(),
        },
    )
    .await?;
    let out = f(Some(&lease)).await;
    let released = lease.release().await;
    let out = out?;
    released?;
    Ok(out)
}

/// Deploys `opts.dir` to the store.
pub async fn deploy(opts: &DeployOptions, progress: Arc<dyn Progress>) -> Result<DeployReport> {
    let store = Store::open(&opts.config.store, &opts.config, &opts.base)?;
    leased(&store, opts, "deploy", async |lease| {
        deploy_leased(&store, opts, progress, lease).await
    })
    .await
}

async fn deploy_leased(
    store: &Store,
    opts: &DeployOptions,
    progress: Arc<dyn Progress>,
    lease: Option<&Lease>,
) -> Result<DeployReport> {
    let started = Instant::now();
    let store = store.clone();
    let dir = opts.dir.clone();
    let inputs = opts.clone();
    let (mut wanted, manifest) = tokio::task::spawn_blocking(move || {
        collect(&Inputs {
            dir: &dir,
            routes: &inputs.routes,
            default_headers: &inputs.default_headers,
            cors_fonts: inputs.cors_fonts,
            tag_header: &inputs.tag_header,
            pointers: &inputs.pointers,
            private: &inputs.private,
            manifest_name: &inputs.manifest_name,
            aliases: &inputs.config.aliases,
            metadata: &inputs.config.metadata,
            artifacts: &inputs.config.artifacts,
        })
    })
    .await
    .map_err(|e| StoreError::Config(format!("hashing the output failed: {e}")))??;
    if wanted.is_empty() {
        return Err(StoreError::Config(format!(
            "`{}` has no files to deploy\nhint: run `staleguard build` first, or pass the folder to deploy",
            opts.dir.display()
        )));
    }
    let version = manifest
        .as_ref()
        .map(|m| m.version().to_string())
        .unwrap_or_default();
    let mut state = load_state(&store).await?;
    let mut tidied = tidy(&mut state);
    if !opts.dry_run {
        persist_tidy(&store, &state, &mut tidied).await?;
    }
    let base = base_of(&state);
    let site: BTreeMap<String, ObjectRecord> = wanted
        .iter()
        .map(|(k, w)| (k.clone(), w.record.clone()))
        .collect();
    let id = d::deploy_id(
        opts.now,
        &site,
        state.current.as_ref().map_or("", |c| &c.id),
    );
    let copies = add_copies(&mut wanted, state.record.as_ref(), &d::bundle_key(&id))?;
    let next: BTreeMap<String, ObjectRecord> = wanted
        .iter()
        .map(|(k, w)| (k.clone(), w.record.clone()))
        .collect();
    let mut plan = d::diff(&base, &next);
    if opts.verify_remote {
        verify_remote(&store, &next, &mut plan, opts.config.concurrency as usize).await?;
    }
    let resumed = state.journal.as_ref().map_or(0, |j| {
        let committed = state.record.as_ref().map(|r| &r.objects);
        j.objects
            .iter()
            .filter(|(k, o)| {
                next.get(*k).is_some_and(|w| w.same_as(o))
                    && committed
                        .and_then(|c| c.get(*k))
                        .is_none_or(|c| !c.same_as(o))
            })
            .count()
    });
    let mut report = DeployReport {
        id: id.clone(),
        store: store.url.clone(),
        dry_run: opts.dry_run,
        kind: DeployKind::Deploy,
        restores: None,
        previous: state.current.as_ref().map(|c| c.id.clone()),
        version: version.clone(),
        objects: next.len(),
        bytes: next.values().map(|o| o.size).sum(),
        plan: plan.clone(),
        resumed,
        tidied,
        skipped: Vec::new(),
        gc: GcPlan::default(),
        seconds: 0.0,
        up_to_date: false,
        changes: None,
    };
    // Nothing to upload and the current record already says exactly this: no new deploy, only GC
    // (objects may have aged past keep-age since the last run).
    let up_to_date = plan.uploads.is_empty()
        && state.journal.is_none()
        && state.record.as_ref().is_some_and(|r| {
            r.objects.len() == next.len()
                && r.objects
                    .iter()
                    .all(|(k, o)| next.get(k).is_some_and(|n| n.same_as(o)))
        });
    if up_to_date {
        report.id = state
            .current
            .as_ref()
            .map(|c| c.id.clone())
            .unwrap_or_default();
        report.up_to_date = true;
        if opts.gc {
            report.gc = if opts.dry_run {
                let record = state.record.clone().unwrap_or_else(|| {
                    new_record(
                        &id,
                        opts,
                        DeployKind::Deploy,
                        None,
                        version.clone(),
                        next.clone(),
                        copies.clone(),
                    )
                });
                preview_gc_of(&store, &state.history, &record, opts).await?
            } else {
                run_gc(&store, &mut state, opts, progress.as_ref()).await?
            };
        }
        report.seconds = started.elapsed().as_secs_f64();
        return Ok(report);
    }
    if opts.dry_run {
        report.changes = Some(staleguard_core::changes::changes(
            state.record.as_ref().map(|r| &r.objects),
            &next,
        ));
        let record = new_record(&id, opts, DeployKind::Deploy, None, version, next, copies);
        let mut history = state.history.clone();
        history.deploys.push(entry_of(&record, &Plan::default()));
        report.gc = preview_gc_of(&store, &history, &record, opts).await?;
        report.seconds = started.elapsed().as_secs_f64();
        return Ok(report);
    }
    let uploaded = upload_all(
        &store,
        &plan.uploads,
        &wanted,
        &mut state,
        opts.config.concurrency as usize,
        progress.as_ref(),
    )
    .await?;
    let mut record = new_record(&id, opts, DeployKind::Deploy, None, version, next, copies);
    for (k, etag) in uploaded {
        if let Some(o) = record.objects.get_mut(&k) {
            o.etag = etag;
        }
    }
    // Unchanged objects keep the ETag recorded when they were uploaded.
    for (k, o) in record.objects.iter_mut() {
        if o.etag.is_none()
            && let Some(b) = base.get(k)
            && b.same_as(o)
        {
            o.etag = b.etag.clone();
        }
    }
    if let Some(l) = lease {
        l.check()?;
    }
    commit(&store, &mut state, &record, &plan).await?;
    if opts.gc {
        report.gc = run_gc(&store, &mut state, opts, progress.as_ref()).await?;
    }
    report.seconds = started.elapsed().as_secs_f64();
    Ok(report)
}

/// Rollback copies: every mutable content without an immutable twin must be findable in a bundle. Contents
/// the current deploy already keeps stay where they are; new ones go into this deploy's bundle, which is
/// added to `wanted` (uploaded with the immutable objects, before any page). Bundles still referenced are
/// carried into the new record's objects, so GC keeps them.
fn add_copies(
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
            Source::Stored => continue,
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

fn new_record(
    id: &str,
    opts: &DeployOptions,
    kind: DeployKind,
    restores: Option<String>,
    version: String,
    objects: BTreeMap<String, ObjectRecord>,
    copies: BTreeMap<String, d::CopyLoc>,
) -> DeployRecord {
    DeployRecord {
        copies,
        format: RECORD_FORMAT,
        id: id.to_string(),
        time: staleguard_core::manifest::format_rfc3339(opts.now),
        unix: opts.now,
        kind,
        restores,
        git_commit: opts.git_commit.clone(),
        version,
        objects,
    }
}

/// HEADs every wanted object; adds the missing, resized, re-tagged (changed by hand) or re-headered ones
/// to the plan as drift.
async fn verify_remote(
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
async fn upload_all(
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
async fn commit(
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
async fn preview_gc_of(
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

fn entry_of(record: &DeployRecord, plan: &Plan) -> HistoryEntry {
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

/// Deletes what no recent deploy references, within `max-deletes`; marks collected deploys.
async fn run_gc(
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
