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
//!   the cursor past it. Event rows at or below every cursor of their scope are deleted once older
//!   than the queue's `keep` (10 minutes by default: an event's status stays answerable for that long).
//! - `sg_keys`: idempotency keys per (scope, key), 24 h, checked and written under the scope's lock,
//!   so a retried request is one event whichever instance answers it.
//! - `sg_purges`: each confirmed batch's provider ids (CloudFront invalidation ids), one hour, for an
//!   event's status.
//! - Every commit of events and every flush sends `NOTIFY sg_due`; the workers `LISTEN` and, woken
//!   or not, sleep until the next due time in the database (at most [`POLL`]).
//!
//! `tokio-postgres` with our own SQL (no ORM): the queries are few and the locking must be exactly
//! what is written here.

use std::collections::{BTreeMap, HashMap};
use std::sync::Arc;
use std::time::{Duration, Instant};

use futures::StreamExt as _;
use serde_json::Value;
use staleguard_core::purge::Item;
use tokio_postgres::{AsyncMessage, Client, NoTls, Transaction};

use crate::log::NewEvent;
use crate::model::{
    Batch, Dead, EventState, EventStatus, Outcome, ProviderState, Routing, Seq, Stats, coalesce,
};
use crate::worker::{Sender, Sent};

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
  seqs bigint[] NOT NULL DEFAULT '{}',
  namespaces text[] NOT NULL DEFAULT '{}',
  at timestamptz NOT NULL DEFAULT now()
);
CREATE TABLE IF NOT EXISTS sg_keys (
  scope text NOT NULL,
  key text NOT NULL,
  seq bigint NOT NULL,
  at timestamptz NOT NULL DEFAULT now(),
  PRIMARY KEY (scope, key)
);
CREATE INDEX IF NOT EXISTS sg_keys_at ON sg_keys (at);
CREATE TABLE IF NOT EXISTS sg_purges (
  scope text NOT NULL,
  provider text NOT NULL,
  from_seq bigint NOT NULL,
  through bigint NOT NULL,
  ids jsonb NOT NULL,
  at timestamptz NOT NULL DEFAULT now(),
  PRIMARY KEY (scope, provider, through)
);
";

/// The table created last: once it exists, the schema is complete (no DDL runs again).
const LAST_TABLE: &str = "sg_purges";

/// How long event rows every cursor passed are kept by default (for their status).
pub const KEEP: Duration = Duration::from_secs(600);

/// How long a worker sleeps at most when nothing is due sooner and nobody notified it (a lease
/// another instance lost expires without a notification).
pub const POLL: Duration = Duration::from_secs(1);

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
    /// May hold a password: never shown.
    url: String,
    routing: Routing,
    owner: String,
    keep: Duration,
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

/// Whether `db` names PostgreSQL rather than a SQLite file.
pub fn is_url(db: &str) -> bool {
    db.starts_with("postgres://") || db.starts_with("postgresql://")
}

/// Connects to `url`; a URL without a password takes `$PGPASSWORD` (libpq's convention, so the
/// password stays out of config files). Plain TCP or a Unix socket: TLS is not built in (use a
/// private network, or a local pooler that speaks TLS upstream).
async fn open(
    url: &str,
) -> Result<
    (
        Client,
        tokio_postgres::Connection<tokio_postgres::Socket, tokio_postgres::tls::NoTlsStream>,
    ),
    PgError,
> {
    let shown = staleguard_core::secret::redact_url(url);
    let mut config: tokio_postgres::Config = url.parse().map_err(|e| {
        PgError(format!(
            "`{shown}` is not a PostgreSQL URL: {e}\nhint: postgres://USER@HOST:PORT/DATABASE"
        ))
    })?;
    if config.get_password().is_none()
        && let Ok(p) = std::env::var("PGPASSWORD")
    {
        config.password(p);
    }
    config.connect(NoTls).await.map_err(|e| {
        PgError(format!(
            "cannot connect to PostgreSQL at {shown}: {e}\nhint: is the server running and does it accept this user (pg_hba.conf)? a password goes in $PGPASSWORD"
        ))
    })
}

impl PgQueue {
    /// Connects (`postgres://user@host:port/db`), creates the tables when missing, and acts as `owner`.
    pub async fn connect(url: &str, routing: Routing, owner: &str) -> Result<PgQueue, PgError> {
        let (client, conn) = open(url).await?;
        tokio::spawn(async move {
            let _ = conn.await;
        });
        // No DDL once the tables exist: even `CREATE INDEX IF NOT EXISTS` locks its table, which would
        // stall (or deadlock with) other instances' appends. Two instances creating the tables at once
        // are serialised by a lock held until the commit.
        let ready: bool = client
            .query_one(
                &format!("SELECT to_regclass('{LAST_TABLE}') IS NOT NULL"),
                &[],
            )
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
            url: url.to_string(),
            routing,
            owner: owner.to_string(),
            keep: KEEP,
        })
    }

    /// Keeps event rows every cursor passed for `keep` (their status answerable), instead of [`KEEP`].
    pub fn keep(mut self, keep: Duration) -> PgQueue {
        self.keep = keep;
        self
    }

    /// The owner this queue claims as.
    pub fn owner(&self) -> &str {
        &self.owner
    }

    /// The connection was closed (the server went away): see [`PgQueue::reconnect`].
    pub fn is_closed(&self) -> bool {
        self.client.is_closed()
    }

    /// Connects again (same URL, routing, owner and `keep`).
    pub async fn reconnect(&mut self) -> Result<(), PgError> {
        let fresh = PgQueue::connect(&self.url, self.routing.clone(), &self.owner).await?;
        self.client = fresh.client;
        Ok(())
    }

    /// Commits `events` in one transaction and returns their seqs, in order, once committed. An
    /// event whose (scope, key) was committed in the last 24 hours is answered with its first seq.
    pub async fn append(&mut self, events: &[NewEvent]) -> Result<Vec<Seq>, PgError> {
        Ok(seqs_only(self.append_due(events).await?))
    }

    /// [`PgQueue::append`], with each event's scope's due time (ms since the epoch; `None` for an
    /// event answered by its idempotency key).
    pub async fn append_due(
        &mut self,
        events: &[NewEvent],
    ) -> Result<Vec<(Seq, Option<u64>)>, PgError> {
        if events.is_empty() {
            return Ok(Vec::new());
        }
        let tx = self
            .client
            .transaction()
            .await
            .map_err(err("starting a transaction"))?;
        let seqs = append_in(&tx, &self.routing, events).await?;
        tx.commit().await.map_err(err("committing events"))?;
        Ok(seqs)
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
            // A row this version cannot read is purged as everything: never dropped.
            let decoded: Vec<(Vec<Item>, Vec<String>)> = events
                .iter()
                .map(|e| crate::log::decode_items(e.get(0)))
                .collect();
            let namespaces = crate::model::union(decoded.iter().flat_map(|d| d.1.iter().cloned()));
            let items = coalesce(decoded.into_iter().flat_map(|d| d.0), max_items);
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
                    namespaces,
                },
            });
        }
        tx.commit().await.map_err(err("committing a claim"))?;
        Ok(claims)
    }

    /// Extends a claim's lease while its batch is being sent; false when it was lost (taken over).
    pub async fn renew(&self, c: &Claim, lease: Duration) -> Result<bool, PgError> {
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
    pub async fn finish(
        &mut self,
        c: &Claim,
        outcome: &Outcome,
        draw: f64,
    ) -> Result<bool, PgError> {
        self.finish_sent(
            c,
            &Sent {
                outcome: outcome.clone(),
                ids: Vec::new(),
            },
            draw,
        )
        .await
    }

    /// [`PgQueue::finish`] with the provider's ids of a success (kept an hour for events' status).
    /// True when the batch became a dead letter.
    pub async fn finish_sent(
        &mut self,
        c: &Claim,
        sent: &Sent,
        draw: f64,
    ) -> Result<bool, PgError> {
        let outcome = &sent.outcome;
        let b = &c.batch;
        let keep = ms(self.keep);
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
        let mut dead = false;
        if *outcome == Outcome::Done {
            tx.execute(
                "INSERT INTO sg_purges (scope, provider, from_seq, through, ids) VALUES ($1, $2, $3, $4, $5)
                 ON CONFLICT (scope, provider, through) DO UPDATE SET ids = excluded.ids, at = now()",
                &[
                    &b.scope,
                    &b.provider,
                    &(b.from as i64),
                    &through,
                    &serde_json::to_value(&sent.ids).unwrap_or(Value::Null),
                ],
            )
            .await
            .map_err(err("recording a purge's ids"))?;
            tx.execute(
                "DELETE FROM sg_purges WHERE scope = $1 AND provider = $2 AND at < now() - interval '1 hour'",
                &[&b.scope, &b.provider],
            )
            .await
            .map_err(err("dropping old purge ids"))?;
        }
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
                    dead = true;
                    tx.execute(
                        "INSERT INTO sg_dead (scope, provider, from_seq, through_seq, items, reason, seqs, namespaces)
                         VALUES ($1, $2, $3, $4, $5, $6,
                                 ARRAY(SELECT seq FROM sg_events WHERE scope = $1 AND seq > $3 AND seq <= $4 ORDER BY seq),
                                 $7)",
                        &[
                            &b.scope,
                            &b.provider,
                            &(b.from as i64),
                            &through,
                            &serde_json::to_value(&b.items).unwrap_or(Value::Null),
                            reason,
                            &b.namespaces,
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
        // Rows every cursor of the scope has passed, once older than `keep`.
        tx.execute(
            "DELETE FROM sg_events WHERE scope = $1
               AND seq <= (SELECT min(purged_through) FROM sg_cursors WHERE scope = $1)
               AND committed_at <= now() - make_interval(secs => $2::float8 / 1000.0)",
            &[&b.scope, &keep],
        )
        .await
        .map_err(err("compacting events"))?;
        tx.commit().await.map_err(err("committing a finish"))?;
        Ok(dead)
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

    /// Events not yet passed by every cursor of their scope.
    pub async fn held(&self) -> Result<i64, PgError> {
        Ok(self.stats().await?.events_pending as i64)
    }

    /// What the metrics show at scrape time: pending scopes and events, the oldest pending event's
    /// age (from the database clock), dead letters.
    pub async fn stats(&self) -> Result<Stats, PgError> {
        let r = self
            .client
            .query_one(
                "SELECT count(*), count(DISTINCT e.scope),
                        (extract(epoch FROM now() - min(e.committed_at)) * 1000)::bigint,
                        (SELECT count(*) FROM sg_dead)
                 FROM sg_events e
                 JOIN (SELECT scope, min(purged_through) AS low FROM sg_cursors GROUP BY scope) c
                   ON c.scope = e.scope
                 WHERE e.seq > c.low",
                &[],
            )
            .await
            .map_err(err("reading the queue's state"))?;
        Ok(Stats {
            events_pending: r.get::<_, i64>(0) as usize,
            scopes_pending: r.get::<_, i64>(1) as usize,
            oldest_pending_ms: r.get::<_, Option<i64>>(2).map(|m| m.max(0) as u64),
            dead_letters: r.get::<_, i64>(3) as usize,
        })
    }

    /// A scope's pending events per provider of its rule, and its earliest due time (ms since the
    /// epoch), for `GET /v1/scopes/{scope}`.
    pub async fn scope(&self, scope: &str) -> Result<(Vec<(String, usize)>, Option<u64>), PgError> {
        let rows = self
            .client
            .query(
                "SELECT c.provider,
                        (SELECT count(*) FROM sg_events e WHERE e.scope = c.scope AND e.seq > c.purged_through),
                        CASE WHEN c.max_seq > c.purged_through
                             THEN (extract(epoch FROM c.due_at) * 1000)::bigint END
                 FROM sg_cursors c WHERE c.scope = $1",
                &[&scope],
            )
            .await
            .map_err(err("reading a scope"))?;
        let found: HashMap<String, (i64, Option<i64>)> = rows
            .iter()
            .map(|r| (r.get(0), (r.get(1), r.get(2))))
            .collect();
        let rule = self.routing.rule(self.routing.find(scope));
        let pending = rule
            .providers
            .iter()
            .map(|p| (p.clone(), found.get(p).map_or(0, |f| f.0 as usize)))
            .collect();
        let due = found.values().filter_map(|f| f.1).min().map(|d| d as u64);
        Ok((pending, due))
    }

    /// Makes `scope` due now (its idle cursors with pending events; a waiting retry keeps its
    /// backoff, a running batch its lease). True when something became due.
    pub async fn flush(&self, scope: &str) -> Result<bool, PgError> {
        let n = self
            .client
            .execute(
                "WITH f AS (UPDATE sg_cursors SET due_at = now()
                   WHERE scope = $1 AND max_seq > purged_through AND retry_at IS NULL
                     AND (lease_until IS NULL OR lease_until < now())
                   RETURNING 1)
                 SELECT pg_notify('sg_due', '') FROM f LIMIT 1",
                &[&scope],
            )
            .await
            .map_err(err("flushing a scope"))?;
        Ok(n > 0)
    }

    /// An event's status (see [`crate::model::Service::event_status`]): `None` for a seq never
    /// committed; purged without its scope once its row was compacted (after `keep`).
    pub async fn event_status(&self, seq: Seq) -> Result<Option<EventStatus>, PgError> {
        let q = seq as i64;
        let row = self
            .client
            .query_opt("SELECT scope FROM sg_events WHERE seq = $1", &[&q])
            .await
            .map_err(err("reading an event"))?;
        let Some(row) = row else {
            // Compacted, or a dead letter's, or never committed.
            let dead = self
                .client
                .query_opt(
                    "SELECT scope FROM sg_dead WHERE $1 = ANY(seqs) LIMIT 1",
                    &[&q],
                )
                .await
                .map_err(err("reading dead letters"))?;
            let last: i64 = self
                .client
                .query_one(
                    "SELECT CASE WHEN is_called THEN last_value ELSE 0 END FROM sg_events_seq_seq",
                    &[],
                )
                .await
                .map_err(err("reading the last seq"))?
                .get(0);
            return match dead {
                Some(d) => self.status_in(seq, d.get(0)).await.map(Some),
                None if seq >= 1 && q <= last => Ok(Some(EventStatus {
                    seq,
                    scope: None,
                    state: EventState::Purged,
                    providers: Vec::new(),
                })),
                None => Ok(None),
            };
        };
        self.status_in(seq, row.get(0)).await.map(Some)
    }

    async fn status_in(&self, seq: Seq, scope: String) -> Result<EventStatus, PgError> {
        let q = seq as i64;
        let rows = self
            .client
            .query(
                "SELECT c.provider, c.purged_through >= $2,
                        c.lease_through >= $2 AND (c.retry_at IS NOT NULL OR c.lease_until > now()),
                        (SELECT p.ids FROM sg_purges p WHERE p.scope = c.scope AND p.provider = c.provider
                           AND p.from_seq < $2 AND p.through >= $2 ORDER BY p.through LIMIT 1),
                        (SELECT d.id FROM sg_dead d WHERE d.scope = c.scope AND d.provider = c.provider
                           AND $2 = ANY(d.seqs) LIMIT 1)
                 FROM sg_cursors c WHERE c.scope = $1 ORDER BY c.provider",
                &[&scope, &q],
            )
            .await
            .map_err(err("reading an event's cursors"))?;
        let providers: Vec<ProviderState> = rows
            .iter()
            .map(|r| {
                let (purged, purging): (bool, Option<bool>) = (r.get(1), r.get(2));
                let dead: Option<i64> = r.get(4);
                let state = if dead.is_some() {
                    EventState::Dead
                } else if purged {
                    EventState::Purged
                } else if purging == Some(true) {
                    EventState::Purging
                } else {
                    EventState::Pending
                };
                let ids = if state == EventState::Purged {
                    r.get::<_, Option<Value>>(3)
                        .and_then(|v| serde_json::from_value(v).ok())
                        .unwrap_or_default()
                } else {
                    Vec::new()
                };
                ProviderState {
                    provider: r.get(0),
                    state,
                    ids,
                    dead_letter: dead.map(|d| d as u64),
                }
            })
            .collect();
        Ok(EventStatus {
            seq,
            scope: Some(scope),
            state: EventState::least(&providers),
            providers,
        })
    }

    /// The dead letters, oldest first.
    pub async fn dead_letters(&self) -> Result<Vec<Dead>, PgError> {
        let rows = self
            .client
            .query(
                "SELECT id, scope, provider, from_seq, through_seq, items, reason, seqs,
                        (extract(epoch FROM at) * 1000)::bigint, namespaces
                 FROM sg_dead ORDER BY id",
                &[],
            )
            .await
            .map_err(err("reading dead letters"))?;
        Ok(rows
            .iter()
            .map(|r| Dead {
                id: r.get::<_, i64>(0) as u64,
                scope: r.get(1),
                provider: r.get(2),
                from: r.get::<_, i64>(3) as Seq,
                through: r.get::<_, i64>(4) as Seq,
                items: serde_json::from_value(r.get(5)).unwrap_or_else(|_| vec![Item::all()]),
                reason: r.get(6),
                seqs: r
                    .get::<_, Vec<i64>>(7)
                    .into_iter()
                    .map(|s| s as Seq)
                    .collect(),
                at_ms: r.get::<_, i64>(8) as u64,
                namespaces: r.get(9),
            })
            .collect())
    }

    /// Sends a dead letter again: its items become a new event of its scope and the letter is
    /// deleted, in one transaction. `(seq, scope)` of the new event; `None` when there is no such
    /// letter (another instance retried it first).
    pub async fn retry_dead(&mut self, id: u64) -> Result<Option<(Seq, String)>, PgError> {
        let tx = self
            .client
            .transaction()
            .await
            .map_err(err("starting a transaction"))?;
        let row = tx
            .query_opt(
                "DELETE FROM sg_dead WHERE id = $1 RETURNING scope, items, namespaces",
                &[&(id as i64)],
            )
            .await
            .map_err(err("taking a dead letter"))?;
        let Some(row) = row else {
            return Ok(None);
        };
        let scope: String = row.get(0);
        let event = NewEvent {
            scope: scope.clone(),
            items: serde_json::from_value(row.get(1)).unwrap_or_else(|_| vec![Item::all()]),
            namespaces: row.get(2),
            ..NewEvent::default()
        };
        let seqs = append_in(&tx, &self.routing, &[event]).await?;
        tx.commit().await.map_err(err("committing a retry"))?;
        Ok(seqs.first().map(|s| (s.0, scope)))
    }

    /// Milliseconds until the earliest batch is due (0 when one is due now), `None` when nothing is
    /// pending; a held lease counts from its expiry.
    pub async fn next_due_ms(&self) -> Result<Option<u64>, PgError> {
        let r = self
            .client
            .query_one(
                "SELECT (extract(epoch FROM min(greatest(due_at, coalesce(lease_until, due_at))) - now()) * 1000)::bigint
                 FROM sg_cursors WHERE max_seq > purged_through",
                &[],
            )
            .await
            .map_err(err("reading the next due time"))?;
        Ok(r.get::<_, Option<i64>>(0).map(|m| m.max(0) as u64))
    }

    /// Drops idempotency keys older than 24 hours.
    pub async fn expire_keys(&self) -> Result<u64, PgError> {
        self.client
            .execute(
                "DELETE FROM sg_keys WHERE at < now() - interval '24 hours'",
                &[],
            )
            .await
            .map_err(err("dropping old idempotency keys"))
    }
}

/// Appends `events` inside `tx` (the caller commits): the scopes' locks, the idempotency keys, the
/// rows, the cursors, the notification.
async fn append_in(
    tx: &Transaction<'_>,
    routing: &Routing,
    events: &[NewEvent],
) -> Result<Vec<(Seq, Option<u64>)>, PgError> {
    // The scopes' locks first, in one order (no deadlock between instances).
    let mut scopes: Vec<&str> = events.iter().map(|e| e.scope.as_str()).collect();
    scopes.sort_unstable();
    scopes.dedup();
    tx.execute(
        "SELECT pg_advisory_xact_lock(hashtextextended(s, 15)) FROM unnest($1::text[]) AS s ORDER BY s",
        &[&scopes],
    )
    .await
    .map_err(err("locking the scopes"))?;
    // Keys already committed (under the locks: no other instance commits them meanwhile).
    let (ks, kk): (Vec<&str>, Vec<&str>) = events
        .iter()
        .filter_map(|e| e.key.as_deref().map(|k| (e.scope.as_str(), k)))
        .unzip();
    let mut known: HashMap<(String, String), i64> = HashMap::new();
    if !ks.is_empty() {
        for r in tx
            .query(
                "SELECT k.scope, k.key, k.seq FROM sg_keys k
                 JOIN unnest($1::text[], $2::text[]) AS u(s, k) ON k.scope = u.s AND k.key = u.k
                 WHERE k.at > now() - interval '24 hours'",
                &[&ks, &kk],
            )
            .await
            .map_err(err("reading idempotency keys"))?
        {
            known.insert((r.get(0), r.get(1)), r.get(2));
        }
    }
    // Which events are new: not keyed, or keyed with a key neither committed nor earlier in `events`.
    enum Slot {
        Known(i64),
        New(usize),
        SameAs(usize),
    }
    let mut slots = Vec::with_capacity(events.len());
    let mut fresh: Vec<&NewEvent> = Vec::new();
    let mut in_group: HashMap<(&str, &str), usize> = HashMap::new();
    for e in events {
        let slot = match e.key.as_deref() {
            Some(k) => {
                if let Some(seq) = known.get(&(e.scope.clone(), k.to_string())) {
                    Slot::Known(*seq)
                } else if let Some(i) = in_group.get(&(e.scope.as_str(), k)) {
                    Slot::SameAs(*i)
                } else {
                    in_group.insert((e.scope.as_str(), k), fresh.len());
                    fresh.push(e);
                    Slot::New(fresh.len() - 1)
                }
            }
            None => {
                fresh.push(e);
                Slot::New(fresh.len() - 1)
            }
        };
        slots.push(slot);
    }
    let mut new_seqs: Vec<i64> = Vec::new();
    // Each scope's earliest due time after this append (ms), for the acknowledgement.
    let mut due: HashMap<String, u64> = HashMap::new();
    if !fresh.is_empty() {
        let names: Vec<&str> = fresh.iter().map(|e| e.scope.as_str()).collect();
        let items: Vec<Value> = fresh
            .iter()
            .map(|e| crate::log::encode_items(&e.items, &e.namespaces))
            .collect();
        let soft: Vec<bool> = fresh.iter().map(|e| e.soft).collect();
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
        new_seqs = rows.iter().map(|r| r.get(0)).collect();
        new_seqs.sort_unstable();
        let (mut ks, mut kk, mut kq) = (Vec::new(), Vec::new(), Vec::new());
        for (e, s) in fresh.iter().zip(&new_seqs) {
            if let Some(k) = e.key.as_deref() {
                ks.push(e.scope.as_str());
                kk.push(k);
                kq.push(*s);
            }
        }
        if !ks.is_empty() {
            // A conflict is an expired key of the same (scope, key): replaced.
            tx.execute(
                "INSERT INTO sg_keys (scope, key, seq)
                 SELECT * FROM unnest($1::text[], $2::text[], $3::bigint[])
                 ON CONFLICT (scope, key) DO UPDATE SET seq = excluded.seq, at = now()",
                &[&ks, &kk, &kq],
            )
            .await
            .map_err(err("recording idempotency keys"))?;
        }
        // Per scope: its lowest and highest new seq, then one upsert per provider of the scope.
        let mut span: BTreeMap<&str, (i64, i64)> = BTreeMap::new();
        for (e, s) in fresh.iter().zip(&new_seqs) {
            let r = span.entry(e.scope.as_str()).or_insert((*s, *s));
            r.0 = r.0.min(*s);
            r.1 = r.1.max(*s);
        }
        let (mut cs, mut cp, mut clo, mut chi, mut cdeb, mut cmax) = (
            Vec::new(),
            Vec::new(),
            Vec::new(),
            Vec::new(),
            Vec::new(),
            Vec::new(),
        );
        for (scope, (lo, hi)) in span {
            let rule = routing.rule(routing.find(scope));
            for p in &rule.providers {
                cs.push(scope);
                cp.push(p.as_str());
                clo.push(lo);
                chi.push(hi);
                cdeb.push(ms(rule.policy.debounce));
                cmax.push(ms(rule.policy.max_wait));
            }
        }
        let rows = tx.query(
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
                                   + make_interval(secs => excluded.max_wait_ms / 1000.0)) END
             RETURNING c.scope, (extract(epoch FROM c.due_at) * 1000)::bigint",
            &[&cs, &cp, &clo, &chi, &cdeb, &cmax],
        )
        .await
        .map_err(err("updating the scopes' cursors"))?;
        for r in rows {
            let (scope, at): (String, Option<i64>) = (r.get(0), r.get(1));
            if let Some(at) = at {
                let d = due.entry(scope).or_insert(at as u64);
                *d = (*d).min(at as u64);
            }
        }
        tx.execute("NOTIFY sg_due", &[])
            .await
            .map_err(err("notifying"))?;
    }
    Ok(slots
        .iter()
        .zip(events)
        .map(|(s, e)| {
            let seq = match s {
                Slot::Known(q) => *q as Seq,
                Slot::New(i) | Slot::SameAs(i) => new_seqs[*i] as Seq,
            };
            (seq, due.get(&e.scope).copied())
        })
        .collect())
}

/// The seqs of `(seq, due)` pairs.
pub fn seqs_only(v: Vec<(Seq, Option<u64>)>) -> Vec<Seq> {
    v.into_iter().map(|(s, _)| s).collect()
}

/// A connection that `LISTEN`s to `sg_due`: the returned [`tokio::sync::Notify`] is woken on every
/// notification (and once more if the connection drops, so the waiter notices).
pub async fn listen(url: &str) -> Result<(Client, Arc<tokio::sync::Notify>), PgError> {
    let (client, mut conn) = open(url).await?;
    let wake = Arc::new(tokio::sync::Notify::new());
    let woken = wake.clone();
    tokio::spawn(async move {
        let mut messages = futures::stream::poll_fn(move |cx| conn.poll_message(cx));
        while let Some(m) = messages.next().await {
            match m {
                Ok(AsyncMessage::Notification(_)) => woken.notify_one(),
                Ok(_) => {}
                Err(_) => break,
            }
        }
        woken.notify_one();
    });
    client
        .batch_execute("LISTEN sg_due")
        .await
        .map_err(err("listening for due work"))?;
    Ok((client, wake))
}

/// How one instance's PostgreSQL worker runs.
#[derive(Debug, Clone)]
pub struct WorkerSettings {
    /// A claim's lease: renewed every third of it while its batch is sent; a killed instance's
    /// batches are taken over this long after its last renewal.
    pub lease: Duration,
    /// Batches in flight per provider at most (across scopes).
    pub concurrency: usize,
    /// The longest sleep when nothing is due sooner and no notification came ([`POLL`]).
    pub poll: Duration,
}

impl Default for WorkerSettings {
    fn default() -> WorkerSettings {
        WorkerSettings {
            lease: Duration::from_secs(30),
            concurrency: 4,
            poll: POLL,
        }
    }
}

/// What a worker reports to the instance it runs in (the API's metrics, long-polls, `/readyz`).
#[derive(Debug, Clone, Default)]
pub struct Hooks {
    pub metrics: Arc<crate::metrics::Metrics>,
    pub changed: Arc<tokio::sync::Notify>,
    pub ready: Arc<std::sync::atomic::AtomicBool>,
}

fn draw() -> f64 {
    // Jitter only: the clock's sub-second nanoseconds are uniform enough.
    let n = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| d.subsec_nanos());
    f64::from(n % 1_000_000) / 1_000_000.0
}

/// Claims due batches as `queue`'s owner, sends them with `sender` grouped per provider (at most
/// `concurrency` groups in flight per provider; each claim's lease renewed while it waits and while
/// it is sent), finishes each (fenced), and sleeps until the next due time, a notification on
/// `wake` ([`listen`]) or `poll`, whichever is first. A database error is reported and retried
/// (reconnecting); nothing acknowledged depends on this process. When `stop` resolves: no new
/// claim, the batches in flight are finished, the rest of its leases released.
pub async fn run_worker(
    queue: PgQueue,
    wake: Arc<tokio::sync::Notify>,
    sender: Arc<dyn Sender>,
    settings: WorkerSettings,
    hooks: Hooks,
    stop: impl std::future::Future<Output = ()>,
) -> Result<(), PgError> {
    use std::sync::atomic::Ordering;
    tokio::pin!(stop);
    let providers = queue.routing.providers();
    let permits: BTreeMap<String, Arc<tokio::sync::Semaphore>> = providers
        .iter()
        .map(|p| {
            (
                p.clone(),
                Arc::new(tokio::sync::Semaphore::new(settings.concurrency.max(1))),
            )
        })
        .collect();
    let most = (settings.concurrency.max(1) * providers.len().max(1) * 4) as i64;
    let queue = Arc::new(tokio::sync::Mutex::new(queue));
    let mut tasks: tokio::task::JoinSet<()> = tokio::task::JoinSet::new();
    hooks.ready.store(true, Ordering::SeqCst);
    let mut last_error: Option<String> = None;
    loop {
        let room = most - tasks.len() as i64;
        let claimed = if room > 0 {
            let mut q = queue.lock().await;
            if q.is_closed() {
                q.reconnect().await.map(|()| Vec::new())
            } else {
                q.claim(settings.lease, room.min(64)).await
            }
        } else {
            Ok(Vec::new())
        };
        let (claims, failed) = match claimed {
            Ok(c) => (c, false),
            Err(e) => {
                if last_error.as_deref() != Some(e.0.as_str()) {
                    eprintln!("staleguard service: {e} (retrying)");
                    last_error = Some(e.0);
                }
                (Vec::new(), true)
            }
        };
        if !failed {
            last_error = None;
        }
        let owner = queue.lock().await.owner.clone();
        for c in claims.iter().filter(|c| c.batch.attempt == 1) {
            if c.batch.events_at.len() > 1 {
                hooks
                    .metrics
                    .coalesced
                    .inc_by(c.batch.events_at.len() as u64);
            }
        }
        for group in crate::worker::groups(claims.into_iter().map(|c| c.batch).collect()) {
            let group: Vec<Claim> = group
                .into_iter()
                .map(|batch| Claim {
                    owner: owner.clone(),
                    batch,
                })
                .collect();
            let (queue, sender, hooks, lease) =
                (queue.clone(), sender.clone(), hooks.clone(), settings.lease);
            let permit = permits.get(&group[0].batch.provider).cloned();
            tasks.spawn(async move {
                let renew = |group: &[Claim]| {
                    let queue = queue.clone();
                    let group = group.to_vec();
                    async move {
                        let q = queue.lock().await;
                        for c in &group {
                            // Lost (taken over): finishing is fenced anyway.
                            let _ = q.renew(c, lease).await;
                        }
                    }
                };
                let _held = match permit {
                    Some(s) => {
                        let acquire = s.acquire_owned();
                        tokio::pin!(acquire);
                        loop {
                            tokio::select! {
                                p = &mut acquire => break p.ok(),
                                _ = tokio::time::sleep(lease / 3) => renew(&group).await,
                            }
                        }
                    }
                    None => None,
                };
                let started = Instant::now();
                let batches: Vec<Batch> = group.iter().map(|c| c.batch.clone()).collect();
                let send = async {
                    if batches.len() == 1 {
                        vec![sender.send(&batches[0]).await]
                    } else {
                        sender.send_group(&batches).await
                    }
                };
                tokio::pin!(send);
                let sent = loop {
                    tokio::select! {
                        s = &mut send => break s,
                        _ = tokio::time::sleep(lease / 3) => renew(&group).await,
                    }
                };
                let seconds = started.elapsed().as_secs_f64();
                for (c, s) in group.iter().zip(sent) {
                    let label = if s.outcome == Outcome::Done {
                        "done"
                    } else {
                        "failed"
                    };
                    let finished = queue.lock().await.finish_sent(c, &s, draw()).await;
                    let now = crate::api::now_ms();
                    match finished {
                        Ok(dead) => {
                            hooks.metrics.purged(&c.batch, label, seconds, now);
                            if dead {
                                hooks.metrics.purged(&c.batch, "dead", 0.0, now);
                            }
                        }
                        // Not recorded: the lease expires and the batch is sent again.
                        Err(e) => eprintln!(
                            "staleguard service: {e}; batch {} will be sent again",
                            c.batch.reference
                        ),
                    }
                }
                hooks.changed.notify_waiters();
            });
        }
        for (p, sem) in &permits {
            hooks.metrics.set_budget(p, sem.available_permits());
        }
        let next = if failed {
            None
        } else {
            queue.lock().await.next_due_ms().await.ok().flatten()
        };
        let wait = if failed {
            Duration::from_secs(1)
        } else {
            next.map_or(settings.poll, Duration::from_millis)
                .min(settings.poll)
        };
        tokio::select! {
            _ = &mut stop => break,
            _ = tokio::time::sleep(wait) => {}
            _ = wake.notified() => {}
            Some(_) = tasks.join_next(), if !tasks.is_empty() => {}
        }
    }
    hooks.ready.store(false, Ordering::SeqCst);
    while tasks.join_next().await.is_some() {}
    queue.lock().await.release().await
}

/// Group commit for one instance: callers hand their events to one writer task, which appends
/// whatever is queued (up to [`GROUP_MAX`] events) in one transaction and answers each caller with
/// its seqs once it is committed. A full queue is `Busy` (the API's 429), never an early ack.
#[derive(Clone, Debug)]
pub struct PgWriter {
    tx: tokio::sync::mpsc::Sender<Job>,
}

type Job = (
    Vec<NewEvent>,
    tokio::sync::oneshot::Sender<Result<Vec<(Seq, Option<u64>)>, PgError>>,
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
    pub fn spawn(queue: PgQueue, depth: usize) -> PgWriter {
        PgWriter::spawn_observed(vec![queue], depth, Arc::new(|_| {}))
    }

    /// Starts one writer per connection of `queues`, all taking groups from one queue with room for
    /// `depth` waiting calls (several transactions in flight: a commit's round trips and fsync
    /// overlap; scopes shared by two groups are serialised by their advisory locks), calling
    /// `committed` with the size of each group committed.
    pub fn spawn_observed(
        queues: Vec<PgQueue>,
        depth: usize,
        committed: Arc<dyn Fn(usize) + Send + Sync>,
    ) -> PgWriter {
        let (tx, rx) = tokio::sync::mpsc::channel::<Job>(depth.max(1));
        let rx = Arc::new(tokio::sync::Mutex::new(rx));
        for mut queue in queues {
            let (rx, committed) = (rx.clone(), committed.clone());
            tokio::spawn(async move {
                loop {
                    let jobs = {
                        let mut rx = rx.lock().await;
                        let Some(first) = rx.recv().await else {
                            return;
                        };
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
                        jobs
                    };
                    let all: Vec<NewEvent> =
                        jobs.iter().flat_map(|j| j.0.iter().cloned()).collect();
                    if queue.is_closed() {
                        // The server went away: one attempt to reconnect, else this group fails.
                        let _ = queue.reconnect().await;
                    }
                    match queue.append_due(&all).await {
                        Ok(seqs) => {
                            committed(all.len());
                            let mut it = seqs.into_iter();
                            for (events, reply) in jobs {
                                let mine: Vec<(Seq, Option<u64>)> =
                                    it.by_ref().take(events.len()).collect();
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
        }
        PgWriter { tx }
    }

    /// Commits `events` (in a group with whatever else is queued); their seqs once committed.
    pub async fn append(&self, events: Vec<NewEvent>) -> Result<Vec<Seq>, AppendError> {
        Ok(seqs_only(self.append_due(events).await?))
    }

    /// [`PgWriter::append`], with each event's scope's due time (see [`PgQueue::append_due`]).
    pub async fn append_due(
        &self,
        events: Vec<NewEvent>,
    ) -> Result<Vec<(Seq, Option<u64>)>, AppendError> {
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
