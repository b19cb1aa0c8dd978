//! Deploy, rollback, GC and history over a [`Store`].
//!
//! A deploy: read `current.json` and its record (plus the journal of an unfinished deploy); diff with the
//! wanted set; upload rank by rank (immutable, mutable, pointers), each rank concurrently and complete
//! before the next starts, recording progress in the journal; then commit: the new record, the history,
//! and `current.json` last. GC runs after the commit. Killed at any point, the previous deploy stays
//! whole (nothing it uses is overwritten by anything but its own successor's complete ranks, nothing is
//! deleted before a commit), and the next run uploads only what the journal does not show as arrived.

mod gc;
mod history;
mod rollback;
mod upload;

pub use history::{current_record, history};
pub use rollback::rollback;

use std::collections::BTreeMap;
use std::path::PathBuf;
use std::sync::Arc;
use std::time::Instant;

use serde::Serialize;
use staleguard_core::DeployConfig;
use staleguard_core::deploy::{
    self as d, Current, DeployKind, DeployRecord, GcPlan, History, Journal, ObjectRecord, Plan,
    RECORD_FORMAT,
};
use staleguard_core::routes::RouteRule;

use crate::lease::{Lease, LeaseOptions};
use crate::store::Store;
use crate::wanted::{Inputs, collect};
use crate::{Result, StoreError};

use gc::{preview_gc_of, run_gc};
use history::entry_of;
use rollback::add_copies;
use upload::{commit, upload_all, verify_remote};

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
    let mut state = load_state(&store).await?;
    let mut tidied = tidy(&mut state);
    if !opts.dry_run {
        persist_tidy(&store, &state, &mut tidied).await?;
    }
    let base = base_of(&state);
    let dir = opts.dir.clone();
    let inputs = opts.clone();
    let stored = base.clone();
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
            stored: &stored,
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
    fetch_reused(&store, &mut wanted, state.record.as_ref()).await?;
    let (encodings, not_kept) = encodings_of(&opts.dir, &wanted);
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
    let new_record = |id: &str, version: String, next, copies| {
        let mut r = new_record(id, opts, DeployKind::Deploy, None, version, next, copies);
        r.encodings = encodings.clone();
        r.not_kept = not_kept.clone();
        r
    };
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
            // A record without the build's levels (an older one) is written again, so that the next
            // build can reuse what it holds.
            r.encodings == encodings
                && r.not_kept == not_kept
                && r.objects.len() == next.len()
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
                    new_record(&id, version.clone(), next.clone(), copies.clone())
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
        let record = new_record(&id, version, next, copies);
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
    let mut record = new_record(&id, version, next, copies);
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

/// The codec and level of every sidecar the build listed (its encodings file), for the record: what a
/// later `build --reuse-from` proves stored sidecars by. Without the file (a folder built by an older
/// staleguard, or by another tool) the record names none, and nothing is reused from it.
fn encodings_of(
    dir: &std::path::Path,
    wanted: &BTreeMap<String, crate::wanted::Wanted>,
) -> (BTreeMap<String, String>, BTreeMap<String, String>) {
    let Some(file) = std::fs::read(dir.join(d::ENCODINGS_FILE))
        .ok()
        .and_then(|b| serde_json::from_slice::<d::EncodingsFile>(&b).ok())
    else {
        return Default::default();
    };
    let kept = file
        .sidecars
        .into_iter()
        .filter(|(k, _)| {
            wanted
                .get(k)
                .is_some_and(|w| w.record.headers.contains_key("content-encoding"))
        })
        .collect();
    let not_kept = file
        .not_kept
        .into_iter()
        .filter(|(k, _)| {
            !wanted.contains_key(k)
                && staleguard_core::config::Codec::split_sidecar(k)
                    .is_some_and(|(base, _)| wanted.contains_key(base))
        })
        .collect();
    (kept, not_kept)
}

/// Reused sidecars that are mutable (an HTML page's `.br`) need a rollback copy of their bytes unless
/// the current deploy already keeps one (it does for every content it deployed): those few are read
/// from the store, since the folder does not have them.
async fn fetch_reused(
    store: &Store,
    wanted: &mut BTreeMap<String, crate::wanted::Wanted>,
    current: Option<&DeployRecord>,
) -> Result<()> {
    use crate::wanted::Source;
    let twins: std::collections::HashSet<String> = wanted
        .values()
        .filter(|w| !w.record.mutable)
        .map(|w| w.record.hash.clone())
        .collect();
    for (key, w) in wanted.iter_mut() {
        let covered = twins.contains(&w.record.hash)
            || current.is_some_and(|r| {
                r.copies
                    .get(&w.record.hash)
                    .is_some_and(|l| r.objects.contains_key(&l.bundle))
            });
        if !matches!(w.source, Source::InStore) || !w.record.mutable || covered {
            continue;
        }
        let bytes = store.get(key).await?.ok_or_else(|| {
            StoreError::Config(format!(
                "`{key}` is not in the folder (the build reused it from the store) and no longer in the store either\nhint: rebuild without --reuse-from (`deploy --no-reuse`) and deploy again"
            ))
        })?;
        w.source = Source::Bytes(bytes);
    }
    Ok(())
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
        encodings: BTreeMap::new(),
        not_kept: BTreeMap::new(),
    }
}
