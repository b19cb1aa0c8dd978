//! The PostgreSQL store, for several service instances on one database (SERVICE.md §6): the same
//! semantics as the SQLite log and the in-memory model, with the state in the database so that any
//! instance may accept events and any may purge them.
//!
//! - `sg_events`: append-only rows, `bigserial` seq, committed with `synchronous_commit = on` before
//!   the acknowledgement. A scope's seqs are assigned under a transaction-scoped advisory lock of the
//!   scope, taken before the insert: so when a scope's `max_seq` is visible, every seq of the scope at or
//!   below it is committed (a batch never skips an event that was still in flight).
//! - `sg_cursors`: one row per (scope, provider): `purged_through`, `max_seq`, the due time computed
//!   from the database clock (`least(last event + debounce, first pending + max-wait)`, or the retry's
//!   time), the attempt, and the lease (`lease_owner`, `lease_until`, `lease_through`).
//! - A claim takes due rows `FOR UPDATE SKIP LOCKED`, sets a lease and fixes the batch's `through`
//!   (kept across retries of one batch, so a retry is the same batch and reference). A finish moves the
//!   cursor only `WHERE lease_owner = me AND lease_through = through`; a late worker whose lease was
//!   taken over can still move the cursor forward on success (`greatest`), never back, and changes
//!   nothing else. Events above `through` keep the row due: the follow-up batch.
//! - A batch that used up its attempts becomes a row of `sg_dead` in the same transaction that moves
//!   the cursor past it. Event rows at or below every cursor of their scope are deleted.
//!
//! `tokio-postgres` with our own SQL (no ORM): the queries are few and the locking must be exactly
//! what is written here.

use std::collections::BTreeMap;
use std::sync::Arc;
use std::time::Duration;

use serde_json::Value;
use staleguard_core::purge::Item;
use tokio_postgres::{Client, NoTls};

use crate::model::{Batch, Outcome, Routing, Seq, coalesce};
use crate::worker::Sender;

const SCHEMA: &str = "
CREATE TABLE IF NOT EXISTS sg_events (
  seq bigserial PRIMARY KEY,
  scope text NOT NULL,
  items jsonb NOT NULL,
  soft boolean NOT NULL DEFAULT false,
  committed_at timestamptz NOT NULL DEFAULT now()
);
CREATE INDEX IF NOT EXISTS sg_events_scope ON sg_events (scope, seq);
CREATE TABLE IF NOT EXISTS sg_cursors (
  scope text NOT NULL,
  provider text NOT NULL,
  purged_through bigint NOT NULL,
  max_seq bigint NOT NULL,
  first_pending timestamptz,
  last_event timestamptz,
  due_at timestamptz,
  attempt integer NOT NULL DEFAULT 0,
  retry_at timestamptz,
  lease_owner text,
  lease_until timestamptz,
  lease_through bigint,
  debounce_ms double precision NOT NULL DEFAULT 0,
  max_wait_ms double precision NOT NULL DEFAULT 0,
  PRIMARY KEY (scope, provider)
);
CREATE INDEX IF NOT EXISTS sg_cursors_due ON sg_cursors (due_at);
CREATE TABLE IF NOT EXISTS sg_dead (
  id bigserial PRIMARY KEY,
  scope text NOT NULL,
  provider text NOT NULL,
  from_seq bigint NOT NULL,
  through_seq bigint NOT NULL,
  items jsonb NOT NULL,
  reason text NOT NULL,
  at timestamptz NOT NULL DEFAULT now()
);
";

/// A database error, with what was being done.
#[derive(Debug)]
pub struct PgError(pub String);

impl std::fmt::Display for PgError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(&self.0)
    }
}

impl std::error::Error for PgError {}

fn err(what: &str) -> impl Fn(tokio_postgres::Error) -> PgError + '_ {
    move |e| match e.as_db_error() {
        Some(db) => PgError(format!(
            "PostgreSQL: {what}: {}: {}",
            db.code().code(),
            db.message()
        )),
        None => PgError(format!("PostgreSQL: {what}: {e}")),
    }
}

/// A batch claimed by one owner, under a lease.
#[derive(Debug, Clone, PartialEq)]
pub struct Claim {
    pub owner: String,
    pub batch: Batch,
}

/// One connection to the store, for one owner (an instance, or one worker of it).
pub struct PgQueue {
    client: Client,
    routing: Routing,
    owner: String,
}

impl std::fmt::Debug for PgQueue {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("PgQueue")
            .field("owner", &self.owner)
            .finish_non_exhaustive()
    }
}

fn ms(d: Duration) -> f64 {
    d.as_secs_f64() * 1000.0
}

impl PgQueue {
    /// Connects (`postgres://user@host:port/db`), creates the tables when missing, and acts as `owner`.
    pub async fn connect(url: &str, routing: Routing, owner: &str) -> Result<PgQueue, PgError> {
        let (client, conn) = tokio_postgres::connect(url, NoTls).await.map_err(|e| {
            PgError(format!(
                "cannot connect to PostgreSQL at {}: {e}",
                staleguard_core::secret::redact_url(url)
            ))
        })?;
        tokio::spawn(async move {
            let _ = conn.await;
        });
        // No DDL once the tables exist: even `CREATE INDEX IF NOT EXISTS` locks its table, which would
        // stall (or deadlock with) other instances' appends. Two instances creating the tables at once
        // are serialised by a lock held until the commit.
        let ready: bool = client
            .query_one("SELECT to_regclass('sg_dead') IS NOT NULL", &[])
            .await
            .map_err(err("looking for the tables"))?
            .get(0);
        if !ready {
            client
                .batch_execute(&format!(
                    "BEGIN; SELECT pg_advisory_xact_lock(815001); {SCHEMA} COMMIT;"
                ))
                .await
                .map_err(err("creating the tables"))?;
        }
        Ok(PgQueue {
            client,
            routing,
            owner: owner.to_string(),
        })
    }

    /// Commits `events` (`(scope, items, soft)`) in one transaction and returns their seqs, in order,
    /// once committed.
    pub async fn append(
        &mut self,
        events: &[(String, Vec<Item>, bool)],
    ) -> Result<Vec<Seq>, PgError> {
        if events.is_empty() {
            return Ok(Vec::new());
        }
        let tx = self
            .client
            .transaction()
            .await
            .map_err(err("starting a transaction"))?;
        // The scopes' locks first, in one order (no deadlock between instances).
        let mut scopes: Vec<&str> = events.iter().map(|e| e.0.as_str()).collect();
        scopes.sort_unstable();
        scopes.dedup();
        tx.execute(
            "SELECT pg_advisory_xact_lock(hashtextextended(s, 15)) FROM unnest($1::text[]) AS s ORDER BY s",
            &[&scopes],
        )
        .await
        .map_err(err("locking the scopes"))?;
        let names: Vec<&str> = events.iter().map(|e| e.0.as_str()).collect();
        let items: Vec<Value> = events
            .iter()
            .map(|e| serde_json::to_value(&e.1).unwrap_or(Value::Array(Vec::new())))
            .collect();
        let soft: Vec<bool> = events.iter().map(|e| e.2).collect();
        // Rows are inserted in the input's order, so their seqs ascend with it.
        let rows = tx
            .query(
                "INSERT INTO sg_events (scope, items, soft)
                 SELECT s, i, f FROM unnest($1::text[], $2::jsonb[], $3::bool[]) WITH ORDINALITY AS u(s, i, f, o)
                 ORDER BY o RETURNING seq",
                &[&names, &items, &soft],
            )
            .await
            .map_err(err("inserting events"))?;
        let mut seqs: Vec<i64> = rows.iter().map(|r| r.get(0)).collect();
        seqs.sort_unstable();
        // Per scope: its lowest and highest new seq, then one upsert per provider of the scope.
        let mut span: BTreeMap<&str, (i64, i64)> = BTreeMap::new();
        for (e, s) in events.iter().zip(&seqs) {
            let r = span.entry(e.0.as_str()).or_insert((*s, *s));
            r.0 = r.0.min(*s);
            r.1 = r.1.max(*s);
        }
        // One upsert for every (scope, provider) of the group.
        let (mut cs, mut cp, mut clo, mut chi, mut cdeb, mut cmax) = (
            Vec::new(),
            Vec::new(),
            Vec::new(),
            Vec::new(),
            Vec::new(),
            Vec::new(),
        );
        for (scope, (lo, hi)) in span {
            let rule = self.routing.rule(self.routing.find(scope));
            for p in &rule.providers {
                cs.push(scope);
                cp.push(p.as_str());
                clo.push(lo);
                chi.push(hi);
                cdeb.push(ms(rule.policy.debounce));
                cmax.push(ms(rule.policy.max_wait));
            }
        }
        tx.execute(
            "INSERT INTO sg_cursors AS c (scope, provider, purged_through, max_seq, first_pending, last_event,
                                           due_at, debounce_ms, max_wait_ms)
             SELECT s, p, lo - 1, hi, now(), now(), now() + make_interval(secs => least(d, m) / 1000.0), d, m
             FROM unnest($1::text[], $2::text[], $3::bigint[], $4::bigint[], $5::float8[], $6::float8[])
                  AS u(s, p, lo, hi, d, m)
             ON CONFLICT (scope, provider) DO UPDATE SET
               max_seq = greatest(c.max_seq, excluded.max_seq),
               first_pending = CASE WHEN c.max_seq <= c.purged_through OR c.first_pending IS NULL
                               THEN now() ELSE c.first_pending END,
               last_event = now(),
               debounce_ms = excluded.debounce_ms,
               max_wait_ms = excluded.max_wait_ms,
               due_at = CASE WHEN c.retry_at IS NOT NULL THEN c.retry_at
                        ELSE least(now() + make_interval(secs => excluded.debounce_ms / 1000.0),
                                   (CASE WHEN c.max_seq <= c.purged_through OR c.first_pending IS NULL
                                         THEN now() ELSE c.first_pending END)
                                   + make_interval(secs => excluded.max_wait_ms / 1000.0)) END",
            &[&cs, &cp, &clo, &chi, &cdeb, &cmax],
        )
        .await
        .map_err(err("updating the scopes' cursors"))?;
        tx.execute("NOTIFY sg_due", &[])
            .await
            .map_err(err("notifying"))?;
        tx.commit().await.map_err(err("committing events"))?;
        Ok(seqs.into_iter().map(|s| s as Seq).collect())
    }

    /// Claims at most `max` due batches under a lease of `lease`: each (scope, provider) is held by one
    /// owner at a time; a retry keeps its batch's `through`.
    pub async fn claim(&mut self, lease: Duration, max: i64) -> Result<Vec<Claim>, PgError> {
        let tx = self
            .client
            .transaction()
            .await
            .map_err(err("starting a transaction"))?;
        let rows = tx
            .query(
                "WITH due AS (
                   SELECT scope, provider FROM sg_cursors
                   WHERE due_at <= now() AND max_seq > purged_through
                     AND (lease_until IS NULL OR lease_until < now())
                   ORDER BY due_at LIMIT $3 FOR UPDATE SKIP LOCKED)
                 UPDATE sg_cursors c SET
                   lease_owner = $1,
                   lease_until = now() + make_interval(secs => $2::float8 / 1000.0),
                   lease_through = CASE WHEN c.retry_at IS NOT NULL AND c.lease_through IS NOT NULL
                                        THEN c.lease_through ELSE c.max_seq END,
                   attempt = c.attempt + 1
                 FROM due WHERE c.scope = due.scope AND c.provider = due.provider
                 RETURNING c.scope, c.provider, c.purged_through, c.lease_through, c.attempt",
                &[&self.owner, &ms(lease), &max],
            )
            .await
            .map_err(err("claiming due batches"))?;
        let mut claims = Vec::new();
        for r in rows {
            let (scope, provider): (String, String) = (r.get(0), r.get(1));
            let (from, through, attempt): (i64, i64, i32) = (r.get(2), r.get(3), r.get(4));
            let events = tx
                .query(
                    "SELECT items, soft, (extract(epoch FROM committed_at) * 1000)::bigint
                     FROM sg_events WHERE scope = $1 AND seq > $2 AND seq <= $3 ORDER BY seq",
                    &[&scope, &from, &through],
                )
                .await
                .map_err(err("reading a batch's events"))?;
            let max_items = self
                .routing
                .rule(self.routing.find(&scope))
                .policy
                .max_items;
            let soft = events.iter().all(|e| e.get::<_, bool>(1));
            let events_at = events.iter().map(|e| e.get::<_, i64>(2) as u64).collect();
            let items = coalesce(
                events.iter().flat_map(|e| {
                    serde_json::from_value::<Vec<Item>>(e.get(0))
                        // A row this version cannot read is purged as everything: never dropped.
                        .unwrap_or_else(|_| vec![Item::all()])
                }),
                max_items,
            );
            claims.push(Claim {
                owner: self.owner.clone(),
                batch: Batch {
                    reference: format!("{scope}:{provider}:{through}"),
                    scope,
                    provider,
                    from: from as Seq,
                    through: through as Seq,
                    items,
                    attempt: attempt as u32,
                    events_at,
                    follow_up: false,
                    soft,
                },
            });
        }
        tx.commit().await.map_err(err("committing a claim"))?;
        Ok(claims)
    }

    /// Extends a claim's lease while its batch is being sent; false when it was lost (taken over).
    pub async fn renew(&mut self, c: &Claim, lease: Duration) -> Result<bool, PgError> {
        let n = self
            .client
            .execute(
                "UPDATE sg_cursors SET lease_until = now() + make_interval(secs => $5::float8 / 1000.0)
                 WHERE scope = $1 AND provider = $2 AND lease_owner = $3 AND lease_through = $4",
                &[
                    &c.batch.scope,
                    &c.batch.provider,
                    &c.owner,
                    &(c.batch.through as i64),
                    &ms(lease),
                ],
            )
            .await
            .map_err(err("renewing a lease"))?;
        Ok(n == 1)
    }

    /// Records how a claimed batch's send ended. Fenced: only the holder of the lease for this
    /// `through` changes the row; a late success still moves the cursor forward (never back).
    /// `draw` in `[0, 1)` is the retry's jitter.
    pub async fn finish(&mut self, c: &Claim, outcome: &Outcome, draw: f64) -> Result<(), PgError> {
        let b = &c.batch;
        let policy = self
            .routing
            .rule(self.routing.find(&b.scope))
            .policy
            .clone();
        let (debounce, max_wait) = (ms(policy.debounce), ms(policy.max_wait));
        let through = b.through as i64;
        let tx = self
            .client
            .transaction()
            .await
            .map_err(err("starting a transaction"))?;
        let held = tx
            .query_opt(
                "SELECT attempt FROM sg_cursors WHERE scope = $1 AND provider = $2
                   AND lease_owner = $3 AND lease_through = $4 FOR UPDATE",
                &[&b.scope, &b.provider, &c.owner, &through],
            )
            .await
            .map_err(err("reading a claim"))?
            .map(|r| r.get::<_, i32>(0));
        // Moves the cursor past `through` and schedules what is above it (the follow-up).
        let advance = "UPDATE sg_cursors SET
               purged_through = greatest(purged_through, $3),
               lease_owner = NULL, lease_until = NULL, lease_through = NULL,
               attempt = 0, retry_at = NULL,
               first_pending = (SELECT min(committed_at) FROM sg_events
                                WHERE scope = $1 AND seq > greatest(sg_cursors.purged_through, $3)),
               due_at = least(last_event + make_interval(secs => $4::float8 / 1000.0),
                              (SELECT min(committed_at) FROM sg_events
                               WHERE scope = $1 AND seq > greatest(sg_cursors.purged_through, $3))
                              + make_interval(secs => $5::float8 / 1000.0))
             WHERE scope = $1 AND provider = $2";
        match (outcome, held) {
            (Outcome::Done, Some(_)) => {
                tx.execute(
                    advance,
                    &[&b.scope, &b.provider, &through, &debounce, &max_wait],
                )
                .await
                .map_err(err("moving a cursor"))?;
            }
            // A late success: the cursor may move forward; the new holder's lease is untouched.
            (Outcome::Done, None) => {
                tx.execute(
                    "UPDATE sg_cursors SET purged_through = greatest(purged_through, $3)
                     WHERE scope = $1 AND provider = $2",
                    &[&b.scope, &b.provider, &through],
                )
                .await
                .map_err(err("moving a cursor"))?;
            }
            (Outcome::Failed { .. }, None) => {}
            (
                Outcome::Failed {
                    reason,
                    retry_after,
                },
                Some(attempt),
            ) => {
                if attempt as u32 >= policy.max_attempts {
                    tx.execute(
                        "INSERT INTO sg_dead (scope, provider, from_seq, through_seq, items, reason)
                         VALUES ($1, $2, $3, $4, $5, $6)",
                        &[
                            &b.scope,
                            &b.provider,
                            &(b.from as i64),
                            &through,
                            &serde_json::to_value(&b.items).unwrap_or(Value::Null),
                            reason,
                        ],
                    )
                    .await
                    .map_err(err("recording a dead letter"))?;
                    tx.execute(
                        advance,
                        &[&b.scope, &b.provider, &through, &debounce, &max_wait],
                    )
                    .await
                    .map_err(err("moving a cursor"))?;
                } else {
                    let pause = policy
                        .backoff
                        .delay(attempt as u32, draw)
                        .max(retry_after.unwrap_or_default());
                    tx.execute(
                        "UPDATE sg_cursors SET
                           retry_at = now() + make_interval(secs => $3::float8 / 1000.0),
                           due_at = now() + make_interval(secs => $3::float8 / 1000.0),
                           lease_owner = NULL, lease_until = NULL
                         WHERE scope = $1 AND provider = $2",
                        &[&b.scope, &b.provider, &ms(pause)],
                    )
                    .await
                    .map_err(err("scheduling a retry"))?;
                }
            }
        }
        // Rows every cursor of the scope has passed.
        tx.execute(
            "DELETE FROM sg_events WHERE scope = $1
               AND seq <= (SELECT min(purged_through) FROM sg_cursors WHERE scope = $1)",
            &[&b.scope],
        )
        .await
        .map_err(err("compacting events"))?;
        tx.commit().await.map_err(err("committing a finish"))?;
        Ok(())
    }

    /// Hands back every lease this owner holds (graceful shutdown): the batches are due again at once
    /// for the other instances.
    pub async fn release(&mut self) -> Result<(), PgError> {
        self.client
            .execute(
                "UPDATE sg_cursors SET lease_owner = NULL, lease_until = NULL, attempt = greatest(attempt - 1, 0)
                 WHERE lease_owner = $1",
                &[&self.owner],
            )
            .await
            .map_err(err("releasing leases"))?;
        Ok(())
    }

    /// A scope's cursor per provider: `(provider, purged_through, max_seq)`.
    pub async fn cursors(&self, scope: &str) -> Result<Vec<(String, Seq, Seq)>, PgError> {
        let rows = self
            .client
            .query(
                "SELECT provider, purged_through, max_seq FROM sg_cursors WHERE scope = $1 ORDER BY provider",
                &[&scope],
            )
            .await
            .map_err(err("reading cursors"))?;
        Ok(rows
            .iter()
            .map(|r| {
                (
                    r.get(0),
                    r.get::<_, i64>(1) as Seq,
                    r.get::<_, i64>(2) as Seq,
                )
            })
            .collect())
    }

    /// The dead letters: `(id, scope, provider, from, through, reason)`.
    pub async fn dead(&self) -> Result<Vec<(i64, String, String, Seq, Seq, String)>, PgError> {
        let rows = self
            .client
            .query(
                "SELECT id, scope, provider, from_seq, through_seq, reason FROM sg_dead ORDER BY id",
                &[],
            )
            .await
            .map_err(err("reading dead letters"))?;
        Ok(rows
            .iter()
            .map(|r| {
                (
                    r.get(0),
                    r.get(1),
                    r.get(2),
                    r.get::<_, i64>(3) as Seq,
                    r.get::<_, i64>(4) as Seq,
                    r.get(5),
                )
            })
            .collect())
    }

    /// Event rows still held (not yet passed by every cursor of their scope).
    pub async fn held(&self) -> Result<i64, PgError> {
        let r = self
            .client
            .query_one("SELECT count(*) FROM sg_events", &[])
            .await
            .map_err(err("counting events"))?;
        Ok(r.get(0))
    }
}

/// Claims due batches as `queue`'s owner, sends each with `sender` (renewing the lease while it is
/// sent), finishes it, and polls every `poll` until `stop` resolves; then releases its leases.
pub async fn run_worker(
    mut queue: PgQueue,
    sender: Arc<dyn Sender>,
    lease: Duration,
    poll: Duration,
    stop: impl std::future::Future<Output = ()>,
) -> Result<(), PgError> {
    tokio::pin!(stop);
    let mut draws = 0u64;
    loop {
        let claims = queue.claim(lease, 16).await?;
        for c in claims {
            let send = sender.send(&c.batch);
            tokio::pin!(send);
            let sent = loop {
                tokio::select! {
                    s = &mut send => break s,
                    _ = tokio::time::sleep(lease / 3) => {
                        // Lost: another owner took it over; finishing is fenced anyway.
                        let _ = queue.renew(&c, lease).await;
                    }
                }
            };
            draws = draws
                .wrapping_mul(6364136223846793005)
                .wrapping_add(1442695040888963407);
            let draw = (draws >> 11) as f64 / (1u64 << 53) as f64;
            queue.finish(&c, &sent.outcome, draw).await?;
        }
        tokio::select! {
            _ = &mut stop => break,
            _ = tokio::time::sleep(poll) => {}
        }
    }
    queue.release().await
}

/// Group commit for one instance: callers hand their events to one writer task, which appends
/// whatever is queued (up to [`GROUP_MAX`] events) in one transaction and answers each caller with
/// its seqs once it is committed. A full queue is `Busy` (the API's 429), never an early ack.
#[derive(Clone, Debug)]
pub struct PgWriter {
    tx: tokio::sync::mpsc::Sender<Job>,
}

type Job = (
    Vec<(String, Vec<Item>, bool)>,
    tokio::sync::oneshot::Sender<Result<Vec<Seq>, PgError>>,
);

/// Events committed in one transaction at most.
pub const GROUP_MAX: usize = 4096;

/// Why an append through [`PgWriter`] was not acknowledged.
#[derive(Debug)]
pub enum AppendError {
    /// The queue is full: retry shortly.
    Busy,
    /// The writer stopped, or the database refused the transaction.
    Failed(PgError),
}

impl PgWriter {
    /// Starts the writer on `queue`'s connection, with room for `depth` waiting calls.
    pub fn spawn(mut queue: PgQueue, depth: usize) -> PgWriter {
        let (tx, mut rx) = tokio::sync::mpsc::channel::<Job>(depth.max(1));
        tokio::spawn(async move {
            while let Some(first) = rx.recv().await {
                let mut jobs = vec![first];
                let mut n = jobs[0].0.len();
                while n < GROUP_MAX {
                    match rx.try_recv() {
                        Ok(j) => {
                            n += j.0.len();
                            jobs.push(j);
                        }
                        Err(_) => break,
                    }
                }
                let all: Vec<(String, Vec<Item>, bool)> =
                    jobs.iter().flat_map(|j| j.0.iter().cloned()).collect();
                match queue.append(&all).await {
                    Ok(seqs) => {
                        let mut it = seqs.into_iter();
                        for (events, reply) in jobs {
                            let mine: Vec<Seq> = it.by_ref().take(events.len()).collect();
                            let _ = reply.send(Ok(mine));
                        }
                    }
                    Err(e) => {
                        for (_, reply) in jobs {
                            let _ = reply.send(Err(PgError(e.0.clone())));
                        }
                    }
                }
            }
        });
        PgWriter { tx }
    }

    /// Commits `events` (in a group with whatever else is queued); their seqs once committed.
    pub async fn append(
        &self,
        events: Vec<(String, Vec<Item>, bool)>,
    ) -> Result<Vec<Seq>, AppendError> {
        let (reply, answer) = tokio::sync::oneshot::channel();
        self.tx.try_send((events, reply)).map_err(|e| match e {
            tokio::sync::mpsc::error::TrySendError::Full(_) => AppendError::Busy,
            tokio::sync::mpsc::error::TrySendError::Closed(_) => {
                AppendError::Failed(PgError("the PostgreSQL writer stopped".into()))
            }
        })?;
        answer
            .await
            .map_err(|_| {
                AppendError::Failed(PgError(
                    "the PostgreSQL writer stopped before answering".into(),
                ))
            })?
            .map_err(AppendError::Failed)
    }
}
