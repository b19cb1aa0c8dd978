//! The worker: hands the model's due batches to a [`Sender`] (one task per batch, at most
//! `concurrency` in flight per provider across all scopes: a CDN's budget is per account or
//! distribution), records a success durably (the log's cursor first, then the model), a failure in
//! the model (which schedules the retry) and a batch given up as a durable dead letter, and sleeps
//! until the next due time or a short poll, whichever is first.
//!
//! The sender is a trait so that the purge path ([`crate::purge::PurgeSender`]: `staleguard-invalidate`'s
//! run, with the batch's reference as the idempotency key) and a scripted one in tests plug in the same
//! way.

use std::collections::BTreeMap;
use std::sync::Arc;
use std::sync::atomic::Ordering;
use std::time::{Duration, Instant};

use async_trait::async_trait;
use tokio::sync::Semaphore;

use crate::api::{Api, Local, Store, now_ms};
use crate::model::{Batch, Outcome};

/// How one send ended, with the provider's ids of what it created (CloudFront invalidation ids).
#[derive(Debug, Clone, PartialEq)]
pub struct Sent {
    pub outcome: Outcome,
    pub ids: Vec<String>,
}

impl From<Outcome> for Sent {
    fn from(outcome: Outcome) -> Sent {
        Sent {
            outcome,
            ids: Vec::new(),
        }
    }
}

/// Sends one batch to its provider; one attempt, the model decides about retries.
#[async_trait]
pub trait Sender: Send + Sync + 'static {
    async fn send(&self, batch: &Batch) -> Sent;

    /// Sends batches of several scopes that are due together for one provider, one answer per
    /// batch in order. The default sends them one by one; a sender whose provider bills or limits
    /// calls (CloudFront's invalidations in flight, Cloudflare's token bucket) sends them as one.
    async fn send_group(&self, batches: &[Batch]) -> Vec<Sent> {
        let mut out = Vec::with_capacity(batches.len());
        for b in batches {
            out.push(self.send(b).await);
        }
        out
    }
}

/// Items in one group of batches sent together at most (a group of one batch may hold more: its own
/// cap applies).
pub const GROUP_ITEMS: usize = 1000;

/// Batches due together, grouped per provider, each group under [`GROUP_ITEMS`] items.
pub fn groups(batches: Vec<Batch>) -> Vec<Vec<Batch>> {
    let mut by: BTreeMap<String, Vec<Vec<Batch>>> = BTreeMap::new();
    for b in batches {
        let gs = by.entry(b.provider.clone()).or_default();
        let fits = gs.last().is_some_and(|g| {
            g.iter().map(|x| x.items.len()).sum::<usize>() + b.items.len() <= GROUP_ITEMS
        });
        if fits {
            gs.last_mut().expect("just checked").push(b);
        } else {
            gs.push(vec![b]);
        }
    }
    by.into_values().flatten().collect()
}

/// How often the worker looks for due work when nothing is due sooner (new events make work due no
/// earlier than their debounce, so this bounds the extra delay of a flush).
pub const POLL: Duration = Duration::from_millis(100);

/// Runs until `stop` resolves, with at most `concurrency` batches in flight per provider. On stop,
/// no new batch starts; batches already sent are finished (and recorded) before it returns.
pub async fn run(
    api: Api,
    sender: Arc<dyn Sender>,
    concurrency: usize,
    stop: impl std::future::Future<Output = ()>,
) {
    let local = match &api.store {
        Store::Local(l) => l.clone(),
        Store::Pg(pg) => return run_pg(&api, pg, sender, concurrency, stop).await,
    };
    let mut tasks = tokio::task::JoinSet::new();
    let permits: BTreeMap<String, Arc<Semaphore>> = api
        .providers
        .iter()
        .map(|p| (p.clone(), Arc::new(Semaphore::new(concurrency.max(1)))))
        .collect();
    api.ready.store(true, Ordering::SeqCst);
    tokio::pin!(stop);
    loop {
        let now = now_ms();
        let (batches, next) = {
            let mut m = local.model();
            let b = m.start_due(now);
            (b, m.next_due())
        };
        for b in batches.iter().filter(|b| b.attempt == 1) {
            if b.events_at.len() > 1 {
                api.metrics.coalesced.inc_by(b.events_at.len() as u64);
            }
            if b.follow_up {
                api.metrics.follow_ups.inc();
            }
        }
        for group in groups(batches) {
            let (api, local) = (api.clone(), local.clone());
            let sender = sender.clone();
            let permit = permits.get(&group[0].provider).cloned();
            tasks.spawn(async move {
                let _held = match permit {
                    Some(s) => s.acquire_owned().await.ok(),
                    None => None,
                };
                let started = Instant::now();
                let sent = if group.len() == 1 {
                    vec![sender.send(&group[0]).await]
                } else {
                    sender.send_group(&group).await
                };
                let seconds = started.elapsed().as_secs_f64();
                for (b, s) in group.into_iter().zip(sent) {
                    record(&api, &local, b, s, seconds).await;
                }
                api.changed.notify_waiters();
            });
        }
        for (p, sem) in &permits {
            api.metrics.set_budget(p, sem.available_permits());
        }
        let wait = next
            .map(|d| Duration::from_millis(d.saturating_sub(now_ms())))
            .unwrap_or(POLL)
            .min(POLL);
        tokio::select! {
            _ = &mut stop => break,
            _ = tokio::time::sleep(wait) => {}
            Some(_) = tasks.join_next(), if !tasks.is_empty() => {}
        }
    }
    api.ready.store(false, Ordering::SeqCst);
    while tasks.join_next().await.is_some() {}
}

/// Records how one batch's send ended: durably first, then in the model and the metrics.
async fn record(api: &Api, local: &Local, b: Batch, sent: Sent, seconds: f64) {
    let outcome = match sent.outcome {
        Outcome::Done => {
            let log = local.log.clone();
            let (s, p, t) = (b.scope.clone(), b.provider.clone(), b.through);
            match blocking(move || log.set_cursor(&s, &p, t)).await {
                Ok(()) => Outcome::Done,
                // Purged but not recorded: retried (the provider sees the same reference).
                Err(e) => Outcome::Failed {
                    reason: format!("cursor not saved: {e}"),
                    retry_after: None,
                },
            }
        }
        failed => failed,
    };
    let label = if outcome == Outcome::Done {
        "done"
    } else {
        "failed"
    };
    let draw = (now_ms() % 1000) as f64 / 1000.0;
    let dead = {
        let mut m = local.model();
        let done = outcome == Outcome::Done;
        let dead = m.finish(&b.scope, &b.provider, b.through, outcome, now_ms(), draw);
        if done {
            m.note_ids(&b.scope, &b.provider, b.through, sent.ids);
        }
        dead
    };
    api.metrics.purged(&b, label, seconds, now_ms());
    if let Some(d) = dead {
        api.metrics.purged(&b, "dead", 0.0, now_ms());
        let log = local.log.clone();
        // Not recorded (the disk failed): the durable cursor did not move, so a restart sends the
        // events again; the dead letter is shown until then.
        let _ = blocking(move || log.dead_letter(&d)).await;
    }
}

/// The workers on PostgreSQL: connects (retrying every second until the database answers or `stop`),
/// then [`crate::pg::run_worker`] with the API's metrics, long-polls and readiness.
async fn run_pg(
    api: &Api,
    pg: &crate::api::PgStore,
    sender: Arc<dyn Sender>,
    concurrency: usize,
    stop: impl std::future::Future<Output = ()>,
) {
    use crate::pg::{Hooks, PgQueue, WorkerSettings, listen, run_worker};
    tokio::pin!(stop);
    let mut reported = false;
    let (queue, (_listening, wake)) = loop {
        let connected = async {
            let q = PgQueue::connect(&pg.url, pg.routing.clone(), &pg.owner).await?;
            Ok::<_, crate::pg::PgError>((q, listen(&pg.url).await?))
        };
        match connected.await {
            Ok(c) => break c,
            Err(e) => {
                if !reported {
                    eprintln!("staleguard service: {e} (retrying every second)");
                    reported = true;
                }
                tokio::select! {
                    _ = &mut stop => return,
                    _ = tokio::time::sleep(Duration::from_secs(1)) => {}
                }
            }
        }
    };
    let hooks = Hooks {
        metrics: api.metrics.clone(),
        changed: api.changed.clone(),
        ready: api.ready.clone(),
    };
    let settings = WorkerSettings {
        lease: pg.lease,
        concurrency,
        ..WorkerSettings::default()
    };
    if let Err(e) = run_worker(queue, wake, sender, settings, hooks, stop).await {
        // The leases not released expire on their own: other instances take them over.
        eprintln!("staleguard service: {e} (leases not released; they expire)");
    }
}

async fn blocking(
    f: impl FnOnce() -> Result<(), crate::log::LogError> + Send + 'static,
) -> Result<(), String> {
    tokio::task::spawn_blocking(f)
        .await
        .map_err(|e| e.to_string())
        .and_then(|r| r.map_err(|e| e.to_string()))
}
