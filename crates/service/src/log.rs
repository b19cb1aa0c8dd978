//! The durable log on SQLite: committed events and cursors, written by one thread with group commit.
//!
//! - WAL, `synchronous=FULL`: a commit is on disk before anyone hears of it, power loss included.
//! - One writer thread owns the connection. Callers hand it jobs over a bounded channel and wait for the
//!   reply; the writer blocks for the first job, takes whatever else is queued (up to [`GROUP_MAX`]
//!   events), commits them in one transaction and then answers them all. No timer: the next group
//!   forms while the fsync runs. A full queue is back-pressure ([`LogError::Busy`]: the API's 429),
//!   never an acknowledgement before the commit.
//! - Events are append-only rows; a cursor only moves forward (`max`); rows every provider's cursor has
//!   passed are deleted.
//! - [`Log::open`] returns what a restart needs to rebuild the model: the events above the cursors and
//!   the cursors ([`Recovered`], [`crate::Service::restore`]).

use std::path::Path;
use std::sync::mpsc::{self, Receiver, SyncSender, TrySendError};
use std::thread::JoinHandle;

use rusqlite::{Connection, params};
use staleguard_core::purge::Item;

use crate::Seq;
use crate::model::Dead;

/// Events committed in one transaction at most.
pub const GROUP_MAX: usize = 4096;

/// An event to commit.
#[derive(Debug, Clone, PartialEq, Default)]
pub struct NewEvent {
    pub scope: String,
    pub items: Vec<Item>,
    /// Soft purge (mark stale) where the provider can; a batch is soft only if all its events are.
    pub soft: bool,
    /// The client's idempotency key: an event whose (scope, key) was committed in the last
    /// [`KEY_TTL_MS`] is not committed again; its first `seq` is answered.
    pub key: Option<String>,
    /// App-cache namespaces to bump before the event's batch is purged (`ws:42`).
    pub namespaces: Vec<String>,
}

/// The `items` column: the items as a JSON array, or, when the event names app-cache namespaces,
/// `{"items": […], "namespaces": […]}` (rows without namespaces read as before).
pub fn encode_items(items: &[Item], namespaces: &[String]) -> serde_json::Value {
    let list = serde_json::to_value(items).unwrap_or(serde_json::Value::Array(Vec::new()));
    if namespaces.is_empty() {
        list
    } else {
        serde_json::json!({"items": list, "namespaces": namespaces})
    }
}

/// Reads [`encode_items`]' value; a value this version cannot read is "everything" (never dropped).
pub fn decode_items(v: serde_json::Value) -> (Vec<Item>, Vec<String>) {
    #[derive(serde::Deserialize)]
    struct Both {
        items: Vec<Item>,
        #[serde(default)]
        namespaces: Vec<String>,
    }
    if v.is_array() {
        return (
            serde_json::from_value(v).unwrap_or_else(|_| vec![Item::all()]),
            Vec::new(),
        );
    }
    match serde_json::from_value::<Both>(v) {
        Ok(b) => (b.items, b.namespaces),
        Err(_) => (vec![Item::all()], Vec::new()),
    }
}

/// How long an idempotency key is remembered (24 h, as payment APIs do).
pub const KEY_TTL_MS: u64 = 24 * 3600 * 1000;

/// A committed event as read back.
#[derive(Debug, Clone, PartialEq)]
pub struct Stored {
    pub seq: Seq,
    pub scope: String,
    pub at_ms: u64,
    pub items: Vec<Item>,
    pub soft: bool,
    pub namespaces: Vec<String>,
}

/// What a restart rebuilds the model from.
#[derive(Debug, Default)]
pub struct Recovered {
    /// Events some cursor has not passed, in `seq` order.
    pub events: Vec<Stored>,
    /// `(scope, provider, purged_through)`.
    pub cursors: Vec<(String, String, Seq)>,
    /// The highest `seq` ever committed (0: none).
    pub last_seq: Seq,
    /// Dead letters not retried yet, by id.
    pub dead: Vec<Dead>,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub enum LogError {
    /// The writer's queue is full: try again shortly (429 with `Retry-After`).
    Busy,
    /// The writer stopped (the service is shutting down, or the disk failed: see the message).
    Closed(String),
    /// The database could not be opened or read.
    Open(String),
}

impl std::fmt::Display for LogError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            LogError::Busy => f.write_str("the event log's queue is full; retry shortly"),
            LogError::Closed(m) => write!(f, "the event log is closed: {m}"),
            LogError::Open(m) => f.write_str(m),
        }
    }
}

impl std::error::Error for LogError {}

type Reply<T> = mpsc::Sender<Result<T, String>>;

enum Job {
    Append {
        events: Vec<NewEvent>,
        at_ms: u64,
        reply: Reply<Vec<Seq>>,
    },
    Cursor {
        scope: String,
        provider: String,
        through: Seq,
        reply: Reply<()>,
    },
    /// A batch given up: its dead letter, and the cursor moved past it, in one transaction.
    Dead { dead: Box<Dead>, reply: Reply<()> },
    /// A dead letter retried (its items were appended as a new event first).
    Undead { id: u64, reply: Reply<()> },
}

impl Job {
    fn weight(&self) -> usize {
        match self {
            Job::Append { events, .. } => events.len().max(1),
            _ => 1,
        }
    }
}

/// How many providers a scope has (its rows are deleted once that many cursors passed them).
pub type ProviderCount = Box<dyn Fn(&str) -> usize + Send>;

/// Called by the writer with each group's committed events, in `seq` order, before anyone is answered:
/// the service applies them to its model there, so the model sees events in commit order.
pub type OnCommit = Box<dyn FnMut(&[Stored]) + Send>;

/// The log: a handle to the writer thread. Dropping it stops the writer after the queued jobs.
#[derive(Debug)]
pub struct Log {
    tx: Option<SyncSender<Job>>,
    writer: Option<JoinHandle<()>>,
}

const SCHEMA: &str = "
CREATE TABLE IF NOT EXISTS events (
  seq INTEGER PRIMARY KEY AUTOINCREMENT,
  scope TEXT NOT NULL,
  at_ms INTEGER NOT NULL,
  items TEXT NOT NULL,
  soft INTEGER NOT NULL DEFAULT 0
);
CREATE INDEX IF NOT EXISTS events_scope ON events (scope, seq);
CREATE TABLE IF NOT EXISTS cursors (
  scope TEXT NOT NULL,
  provider TEXT NOT NULL,
  purged_through INTEGER NOT NULL,
  PRIMARY KEY (scope, provider)
);
CREATE TABLE IF NOT EXISTS keys (
  scope TEXT NOT NULL,
  key TEXT NOT NULL,
  seq INTEGER NOT NULL,
  at_ms INTEGER NOT NULL,
  PRIMARY KEY (scope, key)
);
CREATE INDEX IF NOT EXISTS keys_at ON keys (at_ms);
CREATE TABLE IF NOT EXISTS dead_letters (
  id INTEGER PRIMARY KEY,
  body TEXT NOT NULL
);
";

fn open_db(path: &Path) -> Result<Connection, LogError> {
    let shown = path.display();
    let conn = Connection::open(path)
        .map_err(|e| LogError::Open(format!("cannot open the event log {shown}: {e}")))?;
    conn.execute_batch(
        "PRAGMA journal_mode=WAL; PRAGMA synchronous=FULL; PRAGMA busy_timeout=5000;",
    )
    .and_then(|_| conn.execute_batch(SCHEMA))
    .map_err(|e| LogError::Open(format!("cannot set up the event log {shown}: {e}")))?;
    Ok(conn)
}

fn recover(conn: &Connection) -> rusqlite::Result<Recovered> {
    let mut out = Recovered::default();
    let mut q = conn.prepare("SELECT scope, provider, purged_through FROM cursors")?;
    for r in q.query_map([], |r| {
        Ok((r.get(0)?, r.get(1)?, r.get::<_, i64>(2)? as Seq))
    })? {
        out.cursors.push(r?);
    }
    let mut q = conn.prepare("SELECT seq, scope, at_ms, items, soft FROM events ORDER BY seq")?;
    let rows = q.query_map([], |r| {
        Ok((
            r.get::<_, i64>(0)? as Seq,
            r.get::<_, String>(1)?,
            r.get::<_, i64>(2)? as u64,
            r.get::<_, String>(3)?,
            r.get::<_, i64>(4)? != 0,
        ))
    })?;
    for r in rows {
        let (seq, scope, at_ms, items, soft) = r?;
        // A row this version cannot read is kept pending as "everything": never dropped.
        let (items, namespaces) =
            decode_items(serde_json::from_str(&items).unwrap_or(serde_json::Value::Null));
        out.events.push(Stored {
            seq,
            scope,
            at_ms,
            items,
            soft,
            namespaces,
        });
    }
    let mut q = conn.prepare("SELECT id, body FROM dead_letters ORDER BY id")?;
    for r in q.query_map([], |r| Ok((r.get::<_, i64>(0)?, r.get::<_, String>(1)?)))? {
        let (id, body) = r?;
        match serde_json::from_str::<Dead>(&body) {
            Ok(d) => out.dead.push(Dead { id: id as u64, ..d }),
            // Unreadable by this version: shown as such, never dropped.
            Err(e) => out.dead.push(Dead {
                id: id as u64,
                scope: String::new(),
                provider: String::new(),
                from: 0,
                through: 0,
                items: Vec::new(),
                reason: format!("this version cannot read the dead letter: {e}"),
                namespaces: Vec::new(),
                seqs: Vec::new(),
                at_ms: 0,
            }),
        }
    }
    out.last_seq = conn
        .query_row(
            "SELECT seq FROM sqlite_sequence WHERE name = 'events'",
            [],
            |r| r.get::<_, i64>(0),
        )
        .map(|s| s as Seq)
        .unwrap_or(0)
        .max(out.events.last().map_or(0, |e| e.seq));
    Ok(out)
}

impl Log {
    /// Opens (or creates) the log at `path`; `queue` is the number of jobs that may wait for the
    /// writer. `providers` is how many cursors a scope has: rows are deleted only once all of them
    /// passed them.
    pub fn open(path: &Path, queue: usize, providers: usize) -> Result<(Log, Recovered), LogError> {
        Log::open_with(path, queue, Box::new(move |_| providers), Box::new(|_| {}))
    }

    /// [`Log::open`] with each scope's number of providers ([`ProviderCount`]) and a callback that
    /// sees every group's committed events ([`OnCommit`]).
    pub fn open_with(
        path: &Path,
        queue: usize,
        providers: ProviderCount,
        on_commit: OnCommit,
    ) -> Result<(Log, Recovered), LogError> {
        let conn = open_db(path)?;
        let recovered = recover(&conn).map_err(|e| {
            LogError::Open(format!("cannot read the event log {}: {e}", path.display()))
        })?;
        let (tx, rx) = mpsc::sync_channel(queue.max(1));
        let writer = std::thread::Builder::new()
            .name("staleguard-log".into())
            .spawn(move || writer(conn, rx, providers, on_commit))
            .map_err(|e| LogError::Open(format!("cannot start the log writer: {e}")))?;
        Ok((
            Log {
                tx: Some(tx),
                writer: Some(writer),
            },
            recovered,
        ))
    }

    fn send<T>(
        &self,
        job: Job,
        wait: bool,
        rx: mpsc::Receiver<Result<T, String>>,
    ) -> Result<T, LogError> {
        let tx = self
            .tx
            .as_ref()
            .ok_or_else(|| LogError::Closed("shut down".into()))?;
        if wait {
            tx.send(job)
                .map_err(|_| LogError::Closed("the writer stopped".into()))?;
        } else {
            tx.try_send(job).map_err(|e| match e {
                TrySendError::Full(_) => LogError::Busy,
                TrySendError::Disconnected(_) => LogError::Closed("the writer stopped".into()),
            })?;
        }
        rx.recv()
            .map_err(|_| LogError::Closed("the writer stopped before answering".into()))?
            .map_err(LogError::Closed)
    }

    /// Commits `events` (stamped `at_ms`); returns their `seq`s once they are on disk. With
    /// `wait = false` a full queue is [`LogError::Busy`] instead of a wait.
    pub fn append(
        &self,
        events: Vec<NewEvent>,
        at_ms: u64,
        wait: bool,
    ) -> Result<Vec<Seq>, LogError> {
        let (reply, rx) = mpsc::channel();
        self.send(
            Job::Append {
                events,
                at_ms,
                reply,
            },
            wait,
            rx,
        )
    }

    /// Moves `scope`'s cursor for `provider` to `through` (never back), durably.
    pub fn set_cursor(&self, scope: &str, provider: &str, through: Seq) -> Result<(), LogError> {
        let (reply, rx) = mpsc::channel();
        let job = Job::Cursor {
            scope: scope.into(),
            provider: provider.into(),
            through,
            reply,
        };
        self.send(job, true, rx)
    }

    /// Records a dead letter and moves its scope's cursor past it, durably.
    pub fn dead_letter(&self, dead: &Dead) -> Result<(), LogError> {
        let (reply, rx) = mpsc::channel();
        let job = Job::Dead {
            dead: Box::new(dead.clone()),
            reply,
        };
        self.send(job, true, rx)
    }

    /// Deletes dead letter `id` (once its items were appended again).
    pub fn drop_dead(&self, id: u64) -> Result<(), LogError> {
        let (reply, rx) = mpsc::channel();
        self.send(Job::Undead { id, reply }, true, rx)
    }
}

impl Drop for Log {
    fn drop(&mut self) {
        drop(self.tx.take());
        if let Some(w) = self.writer.take() {
            let _ = w.join();
        }
    }
}

fn writer(
    mut conn: Connection,
    rx: Receiver<Job>,
    providers: ProviderCount,
    mut on_commit: OnCommit,
) {
    while let Ok(first) = rx.recv() {
        let mut jobs = vec![first];
        let mut weight = jobs[0].weight();
        while weight < GROUP_MAX {
            match rx.try_recv() {
                Ok(j) => {
                    weight += j.weight();
                    jobs.push(j);
                }
                Err(_) => break,
            }
        }
        let result =
            commit(&mut conn, &jobs, &providers).map_err(|e| format!("commit failed: {e}"));
        if let Ok(seqs) = &result {
            let stored = committed(&jobs, seqs);
            if !stored.is_empty() {
                on_commit(&stored);
            }
        }
        let mut seqs = result.map(|groups| {
            groups
                .into_iter()
                .map(|g| g.into_iter().map(|(seq, _)| seq).collect::<Vec<_>>())
                .collect::<Vec<_>>()
                .into_iter()
        });
        for j in jobs {
            match j {
                Job::Append { reply, .. } => {
                    let r = match &mut seqs {
                        Ok(it) => Ok(it.next().unwrap_or_default()),
                        Err(m) => Err(m.clone()),
                    };
                    let _ = reply.send(r);
                }
                Job::Cursor { reply, .. } | Job::Dead { reply, .. } | Job::Undead { reply, .. } => {
                    let _ = reply.send(seqs.as_ref().map(|_| ()).map_err(Clone::clone));
                }
            }
        }
    }
}

/// The events a group committed, in `seq` order: each append job's new events (not those an
/// idempotency key answered with an earlier seq) with their seqs.
fn committed(jobs: &[Job], seqs: &[Vec<(Seq, bool)>]) -> Vec<Stored> {
    let appends = jobs.iter().filter_map(|j| match j {
        Job::Append { events, at_ms, .. } => Some((events, *at_ms)),
        _ => None,
    });
    appends
        .zip(seqs)
        .flat_map(|((events, at_ms), seqs)| {
            events
                .iter()
                .zip(seqs)
                .filter(|(_, (_, new))| *new)
                .map(move |(e, (seq, _))| Stored {
                    seq: *seq,
                    scope: e.scope.clone(),
                    at_ms,
                    items: e.items.clone(),
                    soft: e.soft,
                    namespaces: e.namespaces.clone(),
                })
        })
        .collect()
}

/// One transaction for a group: the appends' rows (their seqs, per append job, in order) and the
/// cursor moves, then the rows every cursor of a moved scope has passed.
fn commit(
    conn: &mut Connection,
    jobs: &[Job],
    providers: &ProviderCount,
) -> rusqlite::Result<Vec<Vec<(Seq, bool)>>> {
    let tx = conn.transaction_with_behavior(rusqlite::TransactionBehavior::Immediate)?;
    let mut out = Vec::new();
    {
        let mut insert = tx.prepare_cached(
            "INSERT INTO events (scope, at_ms, items, soft) VALUES (?1, ?2, ?3, ?4)",
        )?;
        let mut known = tx
            .prepare_cached("SELECT seq FROM keys WHERE scope = ?1 AND key = ?2 AND at_ms >= ?3")?;
        let mut remember = tx.prepare_cached(
            "INSERT OR REPLACE INTO keys (scope, key, seq, at_ms) VALUES (?1, ?2, ?3, ?4)",
        )?;
        let mut cursor = tx.prepare_cached(
            "INSERT INTO cursors (scope, provider, purged_through) VALUES (?1, ?2, ?3)
             ON CONFLICT (scope, provider) DO UPDATE SET purged_through = max(purged_through, excluded.purged_through)",
        )?;
        let mut compact = tx.prepare_cached(
            "DELETE FROM events WHERE scope = ?1 AND (SELECT count(*) FROM cursors WHERE scope = ?1) >= ?2
               AND seq <= (SELECT min(purged_through) FROM cursors WHERE scope = ?1)",
        )?;
        for j in jobs {
            match j {
                Job::Append { events, at_ms, .. } => {
                    let mut seqs = Vec::with_capacity(events.len());
                    for e in events {
                        if let Some(k) = &e.key {
                            let since = at_ms.saturating_sub(KEY_TTL_MS) as i64;
                            let earlier: Option<i64> = known
                                .query_row(params![e.scope, k, since], |r| r.get(0))
                                .map(Some)
                                .or_else(|e| match e {
                                    rusqlite::Error::QueryReturnedNoRows => Ok(None),
                                    other => Err(other),
                                })?;
                            if let Some(seq) = earlier {
                                seqs.push((seq as Seq, false));
                                continue;
                            }
                        }
                        let items = encode_items(&e.items, &e.namespaces).to_string();
                        insert.execute(params![e.scope, *at_ms as i64, items, e.soft as i64])?;
                        let seq = tx.last_insert_rowid();
                        if let Some(k) = &e.key {
                            remember.execute(params![e.scope, k, seq, *at_ms as i64])?;
                        }
                        seqs.push((seq as Seq, true));
                    }
                    if events.iter().any(|e| e.key.is_some()) {
                        tx.execute(
                            "DELETE FROM keys WHERE at_ms < ?1",
                            params![at_ms.saturating_sub(KEY_TTL_MS) as i64],
                        )?;
                    }
                    out.push(seqs);
                }
                Job::Cursor {
                    scope,
                    provider,
                    through,
                    ..
                } => {
                    cursor.execute(params![scope, provider, *through as i64])?;
                    compact.execute(params![scope, providers(scope) as i64])?;
                }
                Job::Dead { dead, .. } => {
                    let body = serde_json::to_string(dead.as_ref()).unwrap_or_default();
                    tx.execute(
                        "INSERT OR REPLACE INTO dead_letters (id, body) VALUES (?1, ?2)",
                        params![dead.id as i64, body],
                    )?;
                    cursor.execute(params![dead.scope, dead.provider, dead.through as i64])?;
                    compact.execute(params![dead.scope, providers(&dead.scope) as i64])?;
                }
                Job::Undead { id, .. } => {
                    tx.execute(
                        "DELETE FROM dead_letters WHERE id = ?1",
                        params![*id as i64],
                    )?;
                }
            }
        }
    }
    tx.commit()?;
    Ok(out)
}
