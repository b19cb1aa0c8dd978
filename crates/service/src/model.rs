//! Scopes, committed events, cursors and batches: what to purge when, as a pure state machine. Time is
//! handed in (milliseconds of one monotonic clock), and so is randomness (the jitter draw), so a test
//! can drive any interleaving.
//!
//! - An event is accepted only once committed, and gets the next sequence number: `seq` orders everything.
//! - Each (scope, provider) has a cursor, `purged_through`: every event of the scope with a `seq` at or
//!   below it was covered by a purge sent to that provider after the event was committed (or ended in a
//!   dead letter, which is kept and shown).
//! - A (scope, provider) with events above its cursor is due at `min(last event + debounce, first
//!   pending event + max_wait)`: computed from the events, never pushed out and clamped, so max-wait is
//!   never overshot.
//! - A batch covers `(cursor, through]`, with `through` fixed when it starts; an event arriving while it
//!   runs has a larger `seq` and forms the next batch (the follow-up). Nothing changes a running batch.
//! - A failed batch waits (backoff with full jitter, at least `Retry-After`) and is sent again whole, with
//!   the same reference; a new event does not reset its backoff; after `max_attempts` it becomes a dead
//!   letter and the cursor moves past it. Attempts start from one again for the next batch.
//! - A finish can only move a cursor forward (fenced by `through`): a late worker whose batch was taken
//!   over after a restart cannot move it back.
//! - A batch's items are the union of its events' items, capped at `max_items`: past the cap, paths
//!   collapse into their folders' prefixes, level by level, and then into everything; the set never grows
//!   without bound.

use std::collections::{BTreeMap, BTreeSet};
use std::time::Duration;

use staleguard_core::backoff::{Backoff, Jitter};
use staleguard_core::purge::{Item, ItemKind};

/// A committed event's sequence number (global, increasing from 1).
pub type Seq = u64;

/// How a scope is debounced and retried.
#[derive(Debug, Clone, PartialEq)]
pub struct Policy {
    /// A batch is due this long after the scope's last event…
    pub debounce: Duration,
    /// …but never later than this after its first pending event.
    pub max_wait: Duration,
    /// Items in one batch before it collapses (paths into prefixes, then everything).
    pub max_items: usize,
    /// Sends of one batch before it becomes a dead letter.
    pub max_attempts: u32,
    /// The pause between sends of a failed batch (full jitter).
    pub backoff: Backoff,
}

impl Default for Policy {
    fn default() -> Policy {
        Policy {
            debounce: Duration::from_secs(5),
            max_wait: Duration::from_secs(60),
            max_items: 1000,
            max_attempts: 8,
            backoff: Backoff::new(Duration::from_secs(1), 2.0, Duration::from_secs(300))
                .with_jitter(Jitter::Full),
        }
    }
}

impl Policy {
    /// `max-wait` below `debounce` would make the debounce meaningless: a config error.
    pub fn check(&self) -> Result<(), String> {
        if self.max_wait < self.debounce {
            return Err(format!(
                "max-wait ({:?}) is shorter than debounce ({:?}): a batch would always be due at max-wait",
                self.max_wait, self.debounce
            ));
        }
        if self.max_items == 0 || self.max_attempts == 0 {
            return Err("max-items and max-attempts must be at least 1".into());
        }
        Ok(())
    }
}

/// One batch to send: the union of the scope's events in `(from, through]`, for one provider.
#[derive(Debug, Clone, PartialEq)]
pub struct Batch {
    pub scope: String,
    pub provider: String,
    /// The cursor it starts from (exclusive).
    pub from: Seq,
    /// The last event it covers.
    pub through: Seq,
    pub items: Vec<Item>,
    /// Stable across retries of this batch: the provider's idempotency key.
    pub reference: String,
    /// 1 for the first send.
    pub attempt: u32,
    /// When each of its events was committed (ms), for the invalidation lag.
    pub events_at: Vec<u64>,
    /// It follows a batch of the same scope and provider that ran while its events arrived.
    pub follow_up: bool,
    /// Every event in it asked for a soft purge (mark stale); one hard event makes it hard.
    pub soft: bool,
    /// The app-cache namespaces its events named (`ws:42`), sorted: bumped before its purge.
    pub namespaces: Vec<String>,
}

/// A batch that used up its attempts: the cursor moved past it; it stays here until retried.
#[derive(Debug, Clone, PartialEq, serde::Serialize, serde::Deserialize)]
pub struct Dead {
    /// Its number, from 1 (kept by the durable log across restarts).
    pub id: u64,
    pub scope: String,
    pub provider: String,
    pub from: Seq,
    pub through: Seq,
    pub items: Vec<Item>,
    pub reason: String,
    /// The app-cache namespaces its events named (bumped again when it is retried).
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub namespaces: Vec<String>,
    /// The events it covered (so an event's status can say `dead`).
    pub seqs: Vec<Seq>,
    /// When it was given up (ms).
    pub at_ms: u64,
}

/// Where an event is, for one provider.
#[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Serialize)]
#[serde(rename_all = "lowercase")]
pub enum EventState {
    /// Waiting for its batch (debounce, or behind a running batch).
    Pending,
    /// In a batch being sent, or waiting to be retried.
    Purging,
    /// Covered by a purge the provider confirmed.
    Purged,
    /// Its batch used up its attempts: see the dead letters.
    Dead,
}

/// An event's status for one provider, with the provider's ids of the purge that covered it when
/// still known (the last few purges of each scope are remembered).
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize)]
pub struct ProviderState {
    pub provider: String,
    pub state: EventState,
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub ids: Vec<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub dead_letter: Option<u64>,
}

impl EventState {
    /// The least advanced state over `providers` (pending, then purging, then dead, then purged);
    /// purged when there is none.
    pub fn least(providers: &[ProviderState]) -> EventState {
        let rank = |s: EventState| match s {
            EventState::Pending => 0,
            EventState::Purging => 1,
            EventState::Dead => 2,
            EventState::Purged => 3,
        };
        providers
            .iter()
            .map(|p| p.state)
            .min_by_key(|s| rank(*s))
            .unwrap_or(EventState::Purged)
    }
}

/// An event's status: its scope and each provider's state (`scope` is `None` and `providers` empty
/// for an event every provider passed long ago: its row is compacted, it was purged).
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize)]
pub struct EventStatus {
    pub seq: Seq,
    pub scope: Option<String>,
    /// The least advanced state over the providers.
    pub state: EventState,
    pub providers: Vec<ProviderState>,
}

/// Purges remembered per scope and provider for [`Service::event_status`]'s ids.
const HISTORY: usize = 16;

/// Purged events whose scope is remembered after their log entry is dropped, for
/// [`Service::event_status`] (older ones are reported purged, without their scope).
const RECENT: usize = 16_384;

/// A summary for the metrics ([`Service::stats`]).
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Stats {
    pub scopes_pending: usize,
    pub events_pending: usize,
    /// Age of the oldest event some provider has not purged (the alert: above the scope's max-wait).
    pub oldest_pending_ms: Option<u64>,
    pub dead_letters: usize,
}

/// How a send ended.
#[derive(Debug, Clone, PartialEq)]
pub enum Outcome {
    /// The provider confirmed the purge.
    Done,
    /// It failed; retry after the backoff (at least `retry_after` when the provider asked for it).
    Failed {
        reason: String,
        retry_after: Option<Duration>,
    },
}

#[derive(Debug, Clone, PartialEq)]
enum State {
    Idle,
    /// Made due at `at` by a flush, whatever the debounce.
    Flushed {
        at: u64,
    },
    Running {
        through: Seq,
        attempt: u32,
    },
    Waiting {
        through: Seq,
        attempt: u32,
        until: u64,
    },
}

#[derive(Debug, Clone)]
struct Cursor {
    purged_through: Seq,
    state: State,
    /// The last purges confirmed: `(through, provider ids)`, oldest first.
    history: Vec<(Seq, Vec<String>)>,
    /// Events arrived while a batch ran: the next batch is their follow-up.
    follow_up: bool,
}

impl Cursor {
    fn at(purged_through: Seq) -> Cursor {
        Cursor {
            purged_through,
            state: State::Idle,
            history: Vec::new(),
            follow_up: false,
        }
    }
}

#[derive(Debug, Clone)]
struct Logged {
    seq: Seq,
    at: u64,
    items: Vec<Item>,
    soft: bool,
    namespaces: Vec<String>,
}

#[derive(Debug, Clone, Default)]
struct Scope {
    /// Committed events above the lowest cursor, in `seq` order.
    log: Vec<Logged>,
    cursors: BTreeMap<String, Cursor>,
    /// Its rule in [`Routing::rules`] (the default when past the end), found once.
    rule: usize,
}

/// How scopes are debounced and which providers they purge: rules by scope pattern, first match
/// wins, then a default.
#[derive(Debug, Clone, PartialEq)]
pub struct Routing {
    pub rules: Vec<Rule>,
    pub default: Rule,
}

/// One scope rule: the policy and the providers of the scopes it matches.
#[derive(Debug, Clone, PartialEq)]
pub struct Rule {
    /// `ws:*` (see [`staleguard_core::config::scope_matches`]); unused on the default rule.
    pub pattern: String,
    pub policy: Policy,
    pub providers: Vec<String>,
}

impl Routing {
    /// Every scope with `policy`, purged through `providers`.
    pub fn single(providers: Vec<String>, policy: Policy) -> Routing {
        Routing {
            rules: Vec::new(),
            default: Rule {
                pattern: "*".into(),
                policy,
                providers,
            },
        }
    }

    /// The index of the first rule matching `scope` (`rules.len()`: the default).
    pub fn find(&self, scope: &str) -> usize {
        self.rules
            .iter()
            .position(|r| staleguard_core::config::scope_matches(&r.pattern, scope))
            .unwrap_or(self.rules.len())
    }

    pub fn rule(&self, i: usize) -> &Rule {
        self.rules.get(i).unwrap_or(&self.default)
    }

    /// Every provider some rule purges, each once.
    pub fn providers(&self) -> Vec<String> {
        let mut out: Vec<String> = Vec::new();
        for r in self.rules.iter().chain([&self.default]) {
            for p in &r.providers {
                if !out.contains(p) {
                    out.push(p.clone());
                }
            }
        }
        out
    }
}

/// The service's state: every scope's log above its cursors, and the cursors.
#[derive(Debug, Clone)]
pub struct Service {
    routing: Routing,
    scopes: BTreeMap<String, Scope>,
    last_seq: Seq,
    dead: Vec<Dead>,
    /// The last dead letter's id.
    last_dead: u64,
    /// The newest [`RECENT`] events dropped from the log, with their scope.
    recent: BTreeMap<Seq, String>,
}

impl Service {
    /// A service purging through `providers` (names), every scope with `policy`.
    pub fn new(providers: Vec<String>, policy: Policy) -> Service {
        Service::with_routing(Routing::single(providers, policy))
    }

    /// A service whose scopes follow `routing`'s rules.
    pub fn with_routing(routing: Routing) -> Service {
        Service {
            routing,
            scopes: BTreeMap::new(),
            last_seq: 0,
            dead: Vec::new(),
            last_dead: 0,
            recent: BTreeMap::new(),
        }
    }

    /// The scope's record, created with its rule found.
    fn scope_mut(&mut self, scope: &str) -> &mut Scope {
        if !self.scopes.contains_key(scope) {
            let rule = self.routing.find(scope);
            self.scopes.insert(
                scope.to_string(),
                Scope {
                    rule,
                    ..Scope::default()
                },
            );
        }
        self.scopes.get_mut(scope).expect("just inserted")
    }

    fn policy_of(&self, s: &Scope) -> &Policy {
        &self.routing.rule(s.rule).policy
    }

    /// The providers `scope` purges (its rule's).
    pub fn providers_of(&self, scope: &str) -> &[String] {
        &self.routing.rule(self.routing.find(scope)).providers
    }

    /// The rules this service runs with.
    pub fn routing(&self) -> &Routing {
        &self.routing
    }

    /// The state a restart rebuilds from the durable log: its events above the cursors (`(seq, scope,
    /// committed at, items)`, in `seq` order), the cursors, and the last `seq` ever committed. A
    /// provider without a cursor row in a scope has purged none of the scope's events still held.
    pub fn restore(
        routing: Routing,
        events: impl IntoIterator<Item = (Seq, String, u64, Vec<Item>, bool)>,
        cursors: &[(String, String, Seq)],
        last_seq: Seq,
        dead: Vec<Dead>,
    ) -> Service {
        let mut svc = Service::with_routing(routing);
        svc.last_dead = dead.iter().map(|d| d.id).max().unwrap_or(0);
        svc.dead = dead;
        for (seq, scope, at, items, soft) in events {
            let providers = svc.providers_of(&scope).to_vec();
            let s = svc.scope_mut(&scope);
            for p in &providers {
                s.cursors.entry(p.clone()).or_insert_with(|| {
                    Cursor::at(
                        cursors
                            .iter()
                            .find(|(cs, cp, _)| cs == &scope && cp == p)
                            .map_or(seq - 1, |c| c.2),
                    )
                });
            }
            s.log.push(Logged {
                seq,
                at,
                items,
                soft,
                namespaces: Vec::new(),
            });
            svc.last_seq = svc.last_seq.max(seq);
        }
        svc.last_seq = svc.last_seq.max(last_seq);
        let names: Vec<String> = svc.scopes.keys().cloned().collect();
        for n in names {
            svc.compact(&n);
        }
        svc
    }

    /// Records a committed event at time `now` (ms); returns its `seq` (the next one).
    pub fn accept(&mut self, scope: &str, items: Vec<Item>, now: u64) -> Seq {
        let seq = self.last_seq + 1;
        self.accept_committed(seq, scope, items, now);
        seq
    }

    /// Records a hard event the durable log committed as `seq` (greater than every `seq` before it).
    pub fn accept_committed(&mut self, seq: Seq, scope: &str, items: Vec<Item>, now: u64) {
        self.accept_event(seq, scope, items, false, now);
    }

    /// Records an event the durable log committed as `seq`; `soft`: mark stale rather than drop,
    /// where the provider can (a batch is soft only if every event in it is).
    pub fn accept_event(&mut self, seq: Seq, scope: &str, items: Vec<Item>, soft: bool, now: u64) {
        self.accept_event_with(seq, scope, items, soft, now, Vec::new());
    }

    /// [`Service::accept_event`] with the app-cache namespaces the event names.
    pub fn accept_event_with(
        &mut self,
        seq: Seq,
        scope: &str,
        items: Vec<Item>,
        soft: bool,
        now: u64,
        namespaces: Vec<String>,
    ) {
        debug_assert!(seq > self.last_seq, "seq {seq} after {}", self.last_seq);
        self.last_seq = self.last_seq.max(seq);
        let providers = self.providers_of(scope).to_vec();
        let s = self.scope_mut(scope);
        for p in providers {
            s.cursors.entry(p).or_insert_with(|| Cursor::at(seq - 1));
        }
        s.log.push(Logged {
            seq,
            at: now,
            items,
            soft,
            namespaces,
        });
    }

    /// Sets the namespaces of a held event (after [`Service::restore`], which reads no namespaces).
    pub fn set_namespaces(&mut self, scope: &str, seq: Seq, namespaces: Vec<String>) {
        if let Some(s) = self.scopes.get_mut(scope)
            && let Ok(i) = s.log.binary_search_by_key(&seq, |e| e.seq)
        {
            s.log[i].namespaces = namespaces;
        }
    }

    fn pending<'a>(s: &'a Scope, c: &Cursor) -> impl Iterator<Item = &'a Logged> {
        let from = c.purged_through;
        s.log.iter().filter(move |e| e.seq > from)
    }

    fn due_of(&self, s: &Scope, c: &Cursor) -> Option<u64> {
        match c.state {
            State::Running { .. } => None,
            State::Waiting { until, .. } => Some(until),
            State::Flushed { at } => Some(at),
            State::Idle => {
                let mut pending = Service::pending(s, c);
                let first = pending.next()?;
                let last = pending.last().unwrap_or(first);
                let ms = |d: Duration| d.as_millis() as u64;
                let policy = self.policy_of(s);
                Some((last.at + ms(policy.debounce)).min(first.at + ms(policy.max_wait)))
            }
        }
    }

    /// When `scope`'s batch for `provider` is due (`None`: nothing pending, or a batch running).
    pub fn due_at(&self, scope: &str, provider: &str) -> Option<u64> {
        let s = self.scopes.get(scope)?;
        self.due_of(s, s.cursors.get(provider)?)
    }

    /// The earliest due time of any scope and provider: when to wake next.
    pub fn next_due(&self) -> Option<u64> {
        self.scopes
            .values()
            .flat_map(|s| s.cursors.values().filter_map(|c| self.due_of(s, c)))
            .min()
    }

    /// Makes `scope` due now (`flush`): its idle cursors' pending events go at the next
    /// [`Service::start_due`] whatever the debounce. A waiting retry keeps its backoff.
    pub fn flush(&mut self, scope: &str, now: u64) -> bool {
        let Some(s) = self.scopes.get_mut(scope) else {
            return false;
        };
        let mut any = false;
        for c in s.cursors.values_mut() {
            if c.state == State::Idle && s.log.iter().any(|e| e.seq > c.purged_through) {
                c.state = State::Flushed { at: now };
                any = true;
            }
        }
        any
    }

    /// Starts every batch due at `now`; the caller sends each and reports with [`Service::finish`].
    pub fn start_due(&mut self, now: u64) -> Vec<Batch> {
        let mut out = Vec::new();
        let names: Vec<String> = self.scopes.keys().cloned().collect();
        for name in names {
            let providers: Vec<String> = self.scopes[&name].cursors.keys().cloned().collect();
            for p in providers {
                let s = &self.scopes[&name];
                let c = &s.cursors[&p];
                if self.due_of(s, c).is_none_or(|d| d > now) {
                    continue;
                }
                let last = s.log.last().map_or(0, |e| e.seq);
                let (through, attempt) = match c.state {
                    // A retry: the same batch.
                    State::Waiting {
                        through, attempt, ..
                    } => (through, attempt + 1),
                    _ => (last, 1),
                };
                let from = c.purged_through;
                let items = batch_items(&s.log, from, through, self.policy_of(s).max_items);
                let events_at = s
                    .log
                    .iter()
                    .filter(|e| e.seq > from && e.seq <= through)
                    .map(|e| e.at)
                    .collect();
                let follow_up = c.follow_up;
                let soft = s
                    .log
                    .iter()
                    .filter(|e| e.seq > from && e.seq <= through)
                    .all(|e| e.soft);
                let namespaces = batch_namespaces(&s.log, from, through);
                out.push(Batch {
                    namespaces,
                    soft,
                    events_at,
                    follow_up,
                    reference: format!("{name}:{p}:{through}"),
                    scope: name.clone(),
                    provider: p.clone(),
                    from,
                    through,
                    items,
                    attempt,
                });
                let c = self
                    .scopes
                    .get_mut(&name)
                    .and_then(|s| s.cursors.get_mut(&p))
                    .expect("the cursor just read");
                c.state = State::Running { through, attempt };
                c.follow_up = false;
            }
        }
        out
    }

    /// Reports how the send of `scope`'s batch through `through` to `provider` ended. `draw` is a
    /// uniform number in `[0, 1)` for the jitter. A finish for a batch that is not the running one (a
    /// late worker) can still move the cursor forward on success, never back, and changes nothing else.
    pub fn finish(
        &mut self,
        scope: &str,
        provider: &str,
        through: Seq,
        outcome: Outcome,
        now: u64,
        draw: f64,
    ) -> Option<Dead> {
        let rule = self.scopes.get(scope).map(|s| s.rule)?;
        let policy = self.routing.rule(rule).policy.clone();
        let s = self.scopes.get_mut(scope)?;
        let c = s.cursors.get_mut(provider)?;
        let mut gave_up = None;
        let running = matches!(c.state, State::Running { through: t, .. } if t == through);
        match outcome {
            Outcome::Done => {
                c.purged_through = c.purged_through.max(through);
                if running {
                    c.state = State::Idle;
                    c.follow_up = s.log.last().is_some_and(|e| e.seq > through);
                }
            }
            Outcome::Failed {
                reason,
                retry_after,
            } => {
                let State::Running { attempt, .. } = c.state else {
                    return None;
                };
                if !running {
                    return None;
                }
                if attempt >= policy.max_attempts {
                    let from = c.purged_through;
                    let items = batch_items(&s.log, from, through, policy.max_items);
                    self.last_dead += 1;
                    let dead = Dead {
                        id: self.last_dead,
                        scope: scope.to_string(),
                        provider: provider.to_string(),
                        from,
                        through,
                        items,
                        reason,
                        namespaces: batch_namespaces(&s.log, from, through),
                        seqs: s
                            .log
                            .iter()
                            .filter(|e| e.seq > from && e.seq <= through)
                            .map(|e| e.seq)
                            .collect(),
                        at_ms: now,
                    };
                    self.dead.push(dead.clone());
                    gave_up = Some(dead);
                    c.purged_through = c.purged_through.max(through);
                    c.state = State::Idle;
                } else {
                    let pause = policy
                        .backoff
                        .delay(attempt, draw)
                        .max(retry_after.unwrap_or_default());
                    c.state = State::Waiting {
                        through,
                        attempt,
                        until: now + pause.as_millis() as u64,
                    };
                }
            }
        }
        self.compact(scope);
        gave_up
    }

    /// Remembers the provider's ids of the purge that covered `scope` through `through` (shown by
    /// [`Service::event_status`]).
    pub fn note_ids(&mut self, scope: &str, provider: &str, through: Seq, ids: Vec<String>) {
        if let Some(c) = self
            .scopes
            .get_mut(scope)
            .and_then(|s| s.cursors.get_mut(provider))
        {
            if c.history.len() == HISTORY {
                c.history.remove(0);
            }
            c.history.push((through, ids));
        }
    }

    /// Takes dead letter `id` out, to be sent again as a new event (its items) by the caller.
    pub fn take_dead(&mut self, id: u64) -> Option<Dead> {
        let i = self.dead.iter().position(|d| d.id == id)?;
        Some(self.dead.remove(i))
    }

    /// Puts back a dead letter taken by [`Service::take_dead`] whose retry could not be committed.
    pub fn restore_dead(&mut self, dead: Dead) {
        self.dead.push(dead);
        self.dead.sort_by_key(|d| d.id);
    }

    /// The highest `seq` committed so far.
    pub fn last_seq(&self) -> Seq {
        self.last_seq
    }

    /// Where event `seq` is, per provider (`None`: no such event was ever committed).
    pub fn event_status(&self, seq: Seq) -> Option<EventStatus> {
        if seq == 0 || seq > self.last_seq {
            return None;
        }
        let dead_for = |scope: &str, provider: &str| {
            self.dead
                .iter()
                .find(|d| d.scope == scope && d.provider == provider && d.seqs.contains(&seq))
                .map(|d| d.id)
        };
        let held = self
            .scopes
            .iter()
            .find(|(_, s)| s.log.binary_search_by_key(&seq, |e| e.seq).is_ok());
        let scope_name = match held {
            Some((name, _)) => Some(name.clone()),
            None => self
                .dead
                .iter()
                .find(|d| d.seqs.contains(&seq))
                .map(|d| d.scope.clone())
                .or_else(|| self.recent.get(&seq).cloned()),
        };
        let Some(name) = scope_name else {
            return Some(EventStatus {
                seq,
                scope: None,
                state: EventState::Purged,
                providers: Vec::new(),
            });
        };
        let mut providers = Vec::new();
        if let Some(s) = self.scopes.get(&name) {
            for (p, c) in &s.cursors {
                let dead = dead_for(&name, p);
                let state = if dead.is_some() {
                    EventState::Dead
                } else if seq <= c.purged_through {
                    EventState::Purged
                } else {
                    match c.state {
                        State::Running { through, .. } | State::Waiting { through, .. }
                            if seq <= through =>
                        {
                            EventState::Purging
                        }
                        _ => EventState::Pending,
                    }
                };
                let ids = if state == EventState::Purged {
                    c.history
                        .iter()
                        .find(|(t, _)| *t >= seq)
                        .map(|(_, ids)| ids.clone())
                        .unwrap_or_default()
                } else {
                    Vec::new()
                };
                providers.push(ProviderState {
                    provider: p.clone(),
                    state,
                    ids,
                    dead_letter: dead,
                });
            }
        }
        let state = EventState::least(&providers);
        Some(EventStatus {
            seq,
            scope: Some(name),
            state,
            providers,
        })
    }

    /// Drops the log entries every cursor of `scope` has passed.
    fn compact(&mut self, scope: &str) {
        if let Some(s) = self.scopes.get_mut(scope) {
            let low = s
                .cursors
                .values()
                .map(|c| c.purged_through)
                .min()
                .unwrap_or(0);
            let passed = s.log.partition_point(|e| e.seq <= low);
            for e in s.log.drain(..passed) {
                self.recent.insert(e.seq, scope.to_string());
                if self.recent.len() > RECENT {
                    self.recent.pop_first();
                }
            }
        }
    }

    /// What a restart keeps: the committed log and the cursors (both durable); batches in flight and
    /// waiting retries are forgotten, so their events are pending again and go in the next batch.
    pub fn restart(&mut self) {
        for s in self.scopes.values_mut() {
            for c in s.cursors.values_mut() {
                c.state = State::Idle;
            }
        }
    }

    /// What the metrics show: scopes with events some provider has not purged, those events (counted
    /// once per scope, for the provider furthest behind), and the age of the oldest one at `now`.
    pub fn stats(&self, now: u64) -> Stats {
        let mut st = Stats {
            dead_letters: self.dead.len(),
            ..Stats::default()
        };
        for s in self.scopes.values() {
            let Some(low) = s.cursors.values().map(|c| c.purged_through).min() else {
                continue;
            };
            let pending: Vec<&Logged> = s.log.iter().filter(|e| e.seq > low).collect();
            if let Some(first) = pending.first() {
                st.scopes_pending += 1;
                st.events_pending += pending.len();
                let age = now.saturating_sub(first.at);
                st.oldest_pending_ms = Some(st.oldest_pending_ms.map_or(age, |a| a.max(age)));
            }
        }
        st
    }

    /// The dead letters.
    pub fn dead(&self) -> &[Dead] {
        &self.dead
    }

    /// Pending events of `scope` for `provider` (above its cursor).
    pub fn pending_count(&self, scope: &str, provider: &str) -> usize {
        self.scopes.get(scope).map_or(0, |s| {
            s.cursors
                .get(provider)
                .map_or(0, |c| Service::pending(s, c).count())
        })
    }

    /// Log entries held in memory (all scopes): bounded by what some cursor has not passed.
    pub fn held(&self) -> usize {
        self.scopes.values().map(|s| s.log.len()).sum()
    }
}

/// The app-cache namespaces of a scope's logged events in `(from, through]`, sorted, once each.
fn batch_namespaces(log: &[Logged], from: Seq, through: Seq) -> Vec<String> {
    union(
        log.iter()
            .filter(|e| e.seq > from && e.seq <= through)
            .flat_map(|e| e.namespaces.iter().cloned()),
    )
}

/// `names` sorted, once each.
pub fn union(names: impl Iterator<Item = String>) -> Vec<String> {
    let mut v: Vec<String> = names.collect();
    v.sort_unstable();
    v.dedup();
    v
}

/// The items of a scope's logged events in `(from, through]`, coalesced to at most `max`.
fn batch_items(log: &[Logged], from: Seq, through: Seq, max: usize) -> Vec<Item> {
    coalesce(
        log.iter()
            .filter(|e| e.seq > from && e.seq <= through)
            .flat_map(|e| e.items.iter().cloned()),
        max,
    )
}

/// The union of `items`, at most `max` of them: everything absorbs all; past the cap, paths collapse
/// into their folders (`/a/b/c.html` → `/a/b/`, then `/a/`, …) and prefixes into their parents, dropping
/// what a prefix covers; if still too many (tags, or one folder per item), everything.
pub fn coalesce(items: impl Iterator<Item = Item>, max: usize) -> Vec<Item> {
    let mut set: BTreeSet<Item> = BTreeSet::new();
    for it in items {
        if it.kind == ItemKind::All {
            return vec![Item::all()];
        }
        set.insert(it);
    }
    let max = max.max(1);
    while set.len() > max {
        let deepest = set
            .iter()
            .filter(|i| matches!(i.kind, ItemKind::Path | ItemKind::Prefix))
            .map(|i| depth(&i.value))
            .max();
        let Some(d) = deepest.filter(|&d| d > 0) else {
            return vec![Item::all()];
        };
        let lifted: BTreeSet<Item> = set
            .into_iter()
            .map(|i| match i.kind {
                ItemKind::Path | ItemKind::Prefix if depth(&i.value) == d => {
                    Item::prefix(parent(&i.value))
                }
                _ => i,
            })
            .collect();
        let prefixes: Vec<String> = lifted
            .iter()
            .filter(|i| i.kind == ItemKind::Prefix)
            .map(|i| i.value.clone())
            .collect();
        set = lifted
            .into_iter()
            .filter(|i| {
                !matches!(i.kind, ItemKind::Path | ItemKind::Prefix)
                    || !prefixes
                        .iter()
                        .any(|p| p != &i.value && i.value.starts_with(p.as_str()))
            })
            .collect();
        if set
            .iter()
            .any(|i| i.kind == ItemKind::Prefix && i.value == "/")
        {
            return vec![Item::all()];
        }
    }
    set.into_iter().collect()
}

/// Folder depth of a path or prefix: `/a/b/c.html` and `/a/b/c/` are 3 and 3, `/a/` 1, `/` 0.
fn depth(v: &str) -> usize {
    v.trim_end_matches('/').matches('/').count()
}

/// The folder above a path or prefix, as a prefix: `/a/b/c.html` and `/a/b/c/` → `/a/b/`.
fn parent(v: &str) -> String {
    let t = v.trim_end_matches('/');
    match t.rfind('/') {
        Some(i) => t[..=i].to_string(),
        None => "/".into(),
    }
}

/// Whether `batch` drops everything `event` asked for.
pub fn covers(batch: &[Item], event: &[Item]) -> bool {
    if batch.iter().any(|b| b.kind == ItemKind::All) {
        return true;
    }
    event.iter().all(|e| match e.kind {
        ItemKind::All => false,
        ItemKind::Path => batch.iter().any(|b| b.covers(&e.value)),
        ItemKind::Prefix => batch
            .iter()
            .any(|b| b.kind == ItemKind::Prefix && e.value.starts_with(&b.value)),
        ItemKind::Tag | ItemKind::Host => batch.contains(e),
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn svc(providers: &[&str]) -> Service {
        Service::new(
            providers.iter().map(|p| p.to_string()).collect(),
            Policy {
                backoff: Backoff::new(Duration::from_secs(1), 2.0, Duration::from_secs(60)),
                max_attempts: 3,
                ..Policy::default()
            },
        )
    }

    #[test]
    fn scopes_follow_their_rule_for_debounce_and_providers() {
        let fast = Policy {
            debounce: Duration::from_millis(10),
            max_wait: Duration::from_millis(20),
            ..Policy::default()
        };
        let mut svc = Service::with_routing(Routing {
            rules: vec![Rule {
                pattern: "ws:*".into(),
                policy: fast,
                providers: vec!["edge".into()],
            }],
            default: Rule {
                pattern: "*".into(),
                policy: Policy::default(),
                providers: vec!["edge".into(), "cf".into()],
            },
        });
        svc.accept_committed(1, "ws:1", vec![Item::path("/a")], 0);
        svc.accept_committed(2, "shop", vec![Item::path("/b")], 0);
        assert_eq!(svc.due_at("ws:1", "edge"), Some(10));
        assert_eq!(svc.due_at("ws:1", "cf"), None, "ws:* purges edge only");
        assert_eq!(svc.due_at("shop", "cf"), Some(5000));
        let started = svc.start_due(10);
        assert_eq!(started.len(), 1);
        assert_eq!(
            (started[0].scope.as_str(), started[0].provider.as_str()),
            ("ws:1", "edge")
        );
        // Purged: its status says so, with the ids, also once its log entry is dropped.
        svc.finish("ws:1", "edge", 1, Outcome::Done, 11, 0.0);
        svc.note_ids("ws:1", "edge", 1, vec!["I1".into()]);
        assert_eq!(svc.held(), 1, "ws:1's entry is dropped, shop's kept");
        let st = svc.event_status(1).unwrap();
        assert_eq!(st.scope.as_deref(), Some("ws:1"));
        assert_eq!(st.state, EventState::Purged);
        assert_eq!(st.providers[0].ids, vec!["I1".to_string()]);
        let st = svc.event_status(2).unwrap();
        assert_eq!(st.state, EventState::Pending);
        assert_eq!(st.providers.len(), 2);
        assert!(svc.event_status(3).is_none());
    }

    #[test]
    fn an_event_during_a_running_batch_forms_a_follow_up_batch() {
        let mut s = svc(&["cf"]);
        s.accept("ws:1", vec![Item::path("/a")], 0);
        let b = s.start_due(5_000);
        assert_eq!((b.len(), b[0].through), (1, 1));
        // While it runs: a new event, not merged into the running batch, not refused.
        s.accept("ws:1", vec![Item::path("/b")], 5_100);
        assert_eq!(s.due_at("ws:1", "cf"), None, "running: nothing else starts");
        s.finish("ws:1", "cf", 1, Outcome::Done, 5_200, 0.0);
        assert_eq!(s.pending_count("ws:1", "cf"), 1);
        let f = s.start_due(10_100);
        assert_eq!(f.len(), 1);
        assert_eq!((f[0].from, f[0].through), (1, 2));
        assert_eq!(f[0].items, vec![Item::path("/b")]);
    }

    #[test]
    fn max_wait_is_never_overshot() {
        let mut s = svc(&["cf"]);
        // An event every 4 s (under the 5 s debounce) for two minutes.
        let mut t = 0;
        while t < 120_000 {
            s.accept("ws:1", vec![Item::path(format!("/p{t}"))], t);
            assert!(s.due_at("ws:1", "cf").unwrap() <= 60_000, "at {t}");
            if !s.start_due(t).is_empty() {
                assert_eq!(t, 60_000, "due exactly at first + max-wait");
                break;
            }
            t += 4_000;
        }
        assert_eq!(t, 60_000);
    }

    #[test]
    fn a_retrying_batch_is_not_reset_by_new_events_and_attempts_reset_on_success() {
        let mut s = svc(&["cf"]);
        s.accept("ws:1", vec![Item::path("/a")], 0);
        let b = s.start_due(5_000);
        let fail = Outcome::Failed {
            reason: "503".into(),
            retry_after: Some(Duration::from_secs(10)),
        };
        s.finish("ws:1", "cf", b[0].through, fail.clone(), 5_000, 0.5);
        assert_eq!(
            s.due_at("ws:1", "cf"),
            Some(15_000),
            "Retry-After over the backoff"
        );
        s.accept("ws:1", vec![Item::path("/b")], 6_000);
        assert_eq!(
            s.due_at("ws:1", "cf"),
            Some(15_000),
            "a new event does not reset the backoff"
        );
        let r = s.start_due(15_000);
        assert_eq!(
            (r[0].through, r[0].attempt, &r[0].reference),
            (1, 2, &b[0].reference)
        );
        s.finish("ws:1", "cf", 1, Outcome::Done, 15_100, 0.0);
        let next = s.start_due(20_000);
        assert_eq!(
            (next[0].through, next[0].attempt),
            (2, 1),
            "attempts start again"
        );
    }

    #[test]
    fn a_batch_out_of_attempts_is_a_dead_letter_and_the_rest_goes_on() {
        let mut s = svc(&["cf", "varnish"]);
        s.accept("ws:1", vec![Item::tag("t")], 0);
        let mut now = 5_000;
        for _ in 0..3 {
            for b in s.start_due(now) {
                let o = if b.provider == "cf" {
                    Outcome::Failed {
                        reason: "denied".into(),
                        retry_after: None,
                    }
                } else {
                    Outcome::Done
                };
                s.finish(&b.scope, &b.provider, b.through, o, now, 0.99);
            }
            now += 120_000;
        }
        assert_eq!(s.dead().len(), 1);
        assert_eq!(
            (s.dead()[0].provider.as_str(), s.dead()[0].through),
            ("cf", 1)
        );
        assert_eq!(s.pending_count("ws:1", "cf"), 0);
        assert_eq!(s.held(), 0, "the log is compacted below every cursor");
    }

    #[test]
    fn a_late_worker_cannot_move_a_cursor_back() {
        let mut s = svc(&["cf"]);
        s.accept("ws:1", vec![Item::path("/a")], 0);
        let old = s.start_due(5_000);
        s.restart(); // the worker's lease expired; another took the scope over
        s.accept("ws:1", vec![Item::path("/b")], 5_500);
        let new = s.start_due(10_500);
        assert_eq!(new[0].through, 2);
        s.finish("ws:1", "cf", 2, Outcome::Done, 10_600, 0.0);
        // The old worker finishes last.
        s.finish("ws:1", "cf", old[0].through, Outcome::Done, 11_000, 0.0);
        s.finish(
            "ws:1",
            "cf",
            old[0].through,
            Outcome::Failed {
                reason: "late".into(),
                retry_after: None,
            },
            11_000,
            0.0,
        );
        assert_eq!(s.pending_count("ws:1", "cf"), 0, "the cursor stayed at 2");
        assert_eq!(s.next_due(), None);
    }

    #[test]
    fn payload_growth_is_collapsed() {
        let paths = (0..500).map(|i| Item::path(format!("/ws/42/page{i}.html")));
        assert_eq!(coalesce(paths, 100), vec![Item::prefix("/ws/42/")]);
        let mixed = (0..50)
            .map(|i| Item::path(format!("/a/{i}/x.html")))
            .chain((0..50).map(|i| Item::path(format!("/b/{i}.html"))));
        assert_eq!(
            coalesce(mixed, 10),
            vec![Item::prefix("/a/"), Item::prefix("/b/")]
        );
        let tags = (0..20).map(|i| Item::tag(format!("t{i}")));
        assert_eq!(coalesce(tags, 10), vec![Item::all()]);
        let few = vec![Item::path("/x"), Item::path("/x"), Item::tag("t")];
        assert_eq!(coalesce(few.into_iter(), 10).len(), 2);
        for (batch, event, want) in [
            (vec![Item::prefix("/ws/")], vec![Item::path("/ws/1")], true),
            (
                vec![Item::prefix("/ws/")],
                vec![Item::prefix("/ws/1/")],
                true,
            ),
            (vec![Item::path("/ws/1")], vec![Item::prefix("/ws/")], false),
            (vec![Item::tag("a")], vec![Item::tag("b")], false),
            (vec![Item::all()], vec![Item::tag("b")], true),
        ] {
            assert_eq!(covers(&batch, &event), want, "{batch:?} ⊇ {event:?}");
        }
    }

    #[test]
    fn flush_makes_a_scope_due_now() {
        let mut s = svc(&["cf"]);
        s.accept("ws:1", vec![Item::path("/a")], 0);
        assert!(s.flush("ws:1", 100));
        assert_eq!(s.start_due(100).len(), 1);
        assert!(!s.flush("ws:2", 100));
        assert!(
            Policy {
                max_wait: Duration::from_secs(1),
                ..Policy::default()
            }
            .check()
            .is_err()
        );
    }
}
