//! The HTTP API. Every route but `/healthz` and `/readyz` needs a bearer token (compared in constant
//! time). An event is answered 202 only once the log committed it; a full log queue is 429 with
//! `Retry-After`; a bad event is 400 and a too large one 413, both naming the field. The OpenAPI
//! document is `crates/service/openapi.yaml` (tested against this router).
//!
//! - `POST /v1/scopes/{scope}/invalidations` with an [`EventBody`] → 202 `{seq, scope, due_at_ms}`
//! - `POST /v1/invalidations:batch` with `{"events": [{"scope": …, …}]}` (at most [`MAX_BATCH`]) → 202
//!   `{seqs}`; all or nothing: one bad event refuses the batch, naming `events[i].field`
//! - `GET /v1/scopes/{scope}` → `{scope, pending: {provider: n}, due_at_ms}`
//! - `POST /v1/scopes/{scope}:flush` → 200 `{flushed}`: the scope is due now
//! - `GET /v1/events/{seq}[?wait=30s]` → `{seq, scope, state, providers: [{provider, state, ids}]}`;
//!   with `wait`, answers when the event is purged or dead everywhere, or when the wait is over
//! - `GET /v1/dead-letters` → `{dead_letters: [...]}`; `POST /v1/dead-letters/{id}:retry` → 202
//!   `{seq}`: its items are committed again as a new event of its scope, then the letter is deleted
//! - `GET /metrics` → the Prometheus text exposition ([`crate::metrics`]; token required)
//! - `GET /healthz` → 200 `ok` (the process answers); `GET /readyz` → 200 once the workers run, 503
//!   while starting or shutting down

// The helpers' error is the handler's early answer, an axum `Response`, built at most once per request.
#![allow(clippy::result_large_err)]

use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use axum::Router;
use axum::extract::{DefaultBodyLimit, Path, Query, State};
use axum::http::{HeaderMap, StatusCode, header};
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};
use serde::Deserialize;
use serde_json::{Value, json};

use crate::event::{EventBody, Limits, Refused, check_scope, validate};
use crate::log::{Log, LogError, NewEvent};
use crate::model::{Dead, EventState, EventStatus, Routing, Service, Stats};
use crate::pg::{AppendError, PgError, PgQueue, PgWriter};

/// Events in one batch request at most.
pub const MAX_BATCH: usize = 1000;
/// Request bodies larger than this are refused (413).
pub const MAX_BODY: usize = 4 << 20;

/// Where events are kept: one process's SQLite log and in-memory model, or PostgreSQL shared by
/// any number of instances.
#[derive(Clone)]
pub enum Store {
    Local(Local),
    Pg(Arc<PgStore>),
}

/// The SQLite log and the model it feeds (one instance).
#[derive(Clone)]
pub struct Local {
    pub log: Arc<Log>,
    pub model: Arc<Mutex<Service>>,
}

impl Local {
    /// The model, locked (a panic elsewhere while it was held leaves it usable: every change to it is
    /// one method call that leaves it consistent).
    pub fn model(&self) -> std::sync::MutexGuard<'_, Service> {
        self.model.lock().unwrap_or_else(|p| p.into_inner())
    }
}

/// PostgreSQL: this instance's group-commit writer and a connection for reads, flushes and retries;
/// the workers connect on their own ([`crate::pg::run_worker`]).
pub struct PgStore {
    pub writer: PgWriter,
    pub reader: tokio::sync::Mutex<PgQueue>,
    /// The database's URL (may hold a password: never shown).
    pub url: String,
    pub routing: Routing,
    /// This instance's name in leases (host, pid and start time).
    pub owner: String,
    /// A claim's lease (renewed while its batch runs; a killed instance's claims are taken over
    /// this long after its last renewal).
    pub lease: Duration,
}

/// What the routes share.
#[derive(Clone)]
pub struct Api {
    pub store: Store,
    pub providers: Arc<Vec<String>>,
    pub tokens: Arc<Vec<String>>,
    pub limits: Limits,
    pub metrics: Arc<crate::metrics::Metrics>,
    /// Woken whenever a batch finishes (the event long-polls wait on it).
    pub changed: Arc<tokio::sync::Notify>,
    /// The workers run (`/readyz`).
    pub ready: Arc<AtomicBool>,
}

impl std::fmt::Debug for Api {
    // Tokens are secrets: never shown.
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Api")
            .field("providers", &self.providers)
            .field("tokens", &self.tokens.len())
            .finish_non_exhaustive()
    }
}

impl Api {
    /// The SQLite log and model, when that is the store.
    pub fn local(&self) -> Option<&Local> {
        match &self.store {
            Store::Local(l) => Some(l),
            Store::Pg(_) => None,
        }
    }
}

/// Milliseconds since the Unix epoch: the one clock of events and due times (it survives restarts).
pub fn now_ms() -> u64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0, |d| d.as_millis() as u64)
}

/// Constant-time equality of two secrets (the time depends on the length only).
fn same(a: &[u8], b: &[u8]) -> bool {
    if a.len() != b.len() {
        return false;
    }
    a.iter().zip(b).fold(0u8, |acc, (x, y)| acc | (x ^ y)) == 0
}

fn authorised(api: &Api, headers: &HeaderMap) -> Result<(), Response> {
    let given = headers
        .get(header::AUTHORIZATION)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.strip_prefix("Bearer "))
        .map(str::trim);
    let ok = given.is_some_and(|g| {
        // Every token is compared, so the time does not tell which one matched.
        api.tokens
            .iter()
            .fold(false, |hit, t| same(g.as_bytes(), t.as_bytes()) | hit)
    });
    if ok {
        Ok(())
    } else {
        Err((
            StatusCode::UNAUTHORIZED,
            [(header::WWW_AUTHENTICATE, "Bearer")],
            axum::Json(json!({"error": "a bearer token is required: an Authorization header with one of the service's tokens"})),
        )
            .into_response())
    }
}

fn refused(r: Refused) -> Response {
    let status = StatusCode::from_u16(r.status).unwrap_or(StatusCode::BAD_REQUEST);
    (
        status,
        axum::Json(json!({"error": r.reason, "field": r.field})),
    )
        .into_response()
}

fn log_error(e: LogError) -> Response {
    match e {
        LogError::Busy => (
            StatusCode::TOO_MANY_REQUESTS,
            [(header::RETRY_AFTER, "1")],
            axum::Json(json!({"error": e.to_string()})),
        )
            .into_response(),
        other => (
            StatusCode::SERVICE_UNAVAILABLE,
            axum::Json(json!({"error": other.to_string()})),
        )
            .into_response(),
    }
}

fn parse<T: for<'de> Deserialize<'de>>(body: &[u8]) -> Result<T, Response> {
    serde_json::from_slice(body).map_err(|e| {
        (
            StatusCode::BAD_REQUEST,
            axum::Json(json!({"error": format!("not a valid request body: {e}"), "field": "body"})),
        )
            .into_response()
    })
}

fn pg_error(e: PgError) -> Response {
    (
        StatusCode::SERVICE_UNAVAILABLE,
        [(header::RETRY_AFTER, "1")],
        axum::Json(json!({"error": e.to_string()})),
    )
        .into_response()
}

/// A scope's pending events per provider and its earliest due time over its providers.
async fn scope_state(
    api: &Api,
    scope: &str,
) -> Result<(Vec<(String, usize)>, Option<u64>), Response> {
    match &api.store {
        Store::Local(l) => {
            let m = l.model();
            let providers = m.providers_of(scope);
            Ok((
                providers
                    .iter()
                    .map(|p| (p.clone(), m.pending_count(scope, p)))
                    .collect(),
                providers.iter().filter_map(|p| m.due_at(scope, p)).min(),
            ))
        }
        Store::Pg(pg) => pg.reader.lock().await.scope(scope).await.map_err(pg_error),
    }
}

/// The earliest due time of `scope` (none when it cannot be read: the event is committed anyway).
async fn due(api: &Api, scope: &str) -> Option<u64> {
    scope_state(api, scope).await.ok().and_then(|s| s.1)
}

/// Commits `events` (blocking the caller's task only); their seqs, counted as accepted.
async fn commit(api: &Api, events: Vec<NewEvent>) -> Result<Vec<u64>, Response> {
    Ok(crate::pg::seqs_only(commit_due(api, events).await?))
}

/// [`commit`], with each event's scope's due time where the store answers it with the commit
/// (PostgreSQL); `None`: ask [`due`].
async fn commit_due(api: &Api, events: Vec<NewEvent>) -> Result<Vec<(u64, Option<u64>)>, Response> {
    let started = Instant::now();
    let seqs: Vec<(u64, Option<u64>)> = match &api.store {
        Store::Local(l) => {
            let log = l.log.clone();
            tokio::task::spawn_blocking(move || log.append(events, now_ms(), false))
                .await
                .map_err(|e| log_error(LogError::Closed(e.to_string())))?
                .map_err(log_error)?
                .into_iter()
                .map(|s| (s, None))
                .collect()
        }
        Store::Pg(pg) => pg.writer.append_due(events).await.map_err(|e| match e {
            AppendError::Busy => log_error(LogError::Busy),
            AppendError::Failed(e) => pg_error(e),
        })?,
    };
    api.metrics.accepted.inc_by(seqs.len() as u64);
    api.metrics
        .accept_latency
        .observe(started.elapsed().as_secs_f64());
    Ok(seqs)
}

/// Every route but `/healthz` and `/readyz`: no token, no access (401 before anything else runs).
async fn require_token(
    State(api): State<Api>,
    req: axum::extract::Request,
    next: axum::middleware::Next,
) -> Response {
    if let Err(r) = authorised(&api, req.headers()) {
        return r;
    }
    next.run(req).await
}

/// Counts the event routes' refusals by status (401 is not an event's fault: not counted).
async fn count_refusals(
    State(api): State<Api>,
    req: axum::extract::Request,
    next: axum::middleware::Next,
) -> Response {
    let r = next.run(req).await;
    let status = r.status().as_u16();
    if status >= 400 && status != 401 {
        api.metrics.reject(status);
    }
    r
}

async fn stats(api: &Api) -> Result<Stats, Response> {
    match &api.store {
        Store::Local(l) => Ok(l.model().stats(now_ms())),
        Store::Pg(pg) => pg.reader.lock().await.stats().await.map_err(pg_error),
    }
}

async fn get_metrics(State(api): State<Api>) -> Response {
    let stats = match stats(&api).await {
        Ok(s) => s,
        Err(r) => return r,
    };
    (
        [(
            header::CONTENT_TYPE,
            "application/openmetrics-text; version=1.0.0; charset=utf-8",
        )],
        api.metrics.render(&stats),
    )
        .into_response()
}

async fn post_event(
    State(api): State<Api>,
    Path(scope): Path<String>,
    body: axum::body::Bytes,
) -> Response {
    if let Err(r) = check_scope(&scope) {
        return refused(r);
    }
    let ev: EventBody = match parse(&body) {
        Ok(e) => e,
        Err(r) => return r,
    };
    let items = match validate(&ev, &api.limits) {
        Ok(i) => i,
        Err(r) => return refused(r),
    };
    match commit_due(
        &api,
        vec![NewEvent {
            scope: scope.clone(),
            items,
            soft: ev.mode == crate::Mode::Soft,
            key: ev.key.clone(),
            namespaces: ev.namespaces.clone(),
        }],
    )
    .await
    {
        Ok(seqs) => {
            let due_at = match seqs[0].1 {
                Some(d) => Some(d),
                None => due(&api, &scope).await,
            };
            (
                StatusCode::ACCEPTED,
                axum::Json(json!({"seq": seqs[0].0, "scope": scope, "due_at_ms": due_at})),
            )
                .into_response()
        }
        Err(r) => r,
    }
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct BatchBody {
    events: Vec<Value>,
}

#[derive(Deserialize)]
struct Scoped {
    scope: String,
}

async fn post_batch(State(api): State<Api>, body: axum::body::Bytes) -> Response {
    let b: BatchBody = match parse(&body) {
        Ok(b) => b,
        Err(r) => return r,
    };
    if b.events.len() > MAX_BATCH {
        return refused(Refused {
            status: 413,
            field: "events".into(),
            reason: format!(
                "{} events, at most {MAX_BATCH} per batch: split it",
                b.events.len()
            ),
        });
    }
    let mut events = Vec::with_capacity(b.events.len());
    for (i, mut v) in b.events.into_iter().enumerate() {
        let at = |r: Refused| Refused {
            field: format!("events[{i}].{}", r.field),
            ..r
        };
        let scope = match serde_json::from_value::<Scoped>(v.clone()) {
            Ok(s) => s.scope,
            Err(e) => {
                return refused(at(Refused {
                    status: 400,
                    field: "scope".into(),
                    reason: e.to_string(),
                }));
            }
        };
        if let Err(r) = check_scope(&scope) {
            return refused(at(r));
        }
        if let Some(o) = v.as_object_mut() {
            o.remove("scope");
        }
        let ev: EventBody = match serde_json::from_value(v) {
            Ok(e) => e,
            Err(e) => {
                return refused(at(Refused {
                    status: 400,
                    field: "body".into(),
                    reason: e.to_string(),
                }));
            }
        };
        match validate(&ev, &api.limits) {
            Ok(items) => events.push(NewEvent {
                scope,
                items,
                soft: ev.mode == crate::Mode::Soft,
                key: ev.key,
                namespaces: ev.namespaces,
            }),
            Err(r) => return refused(at(r)),
        }
    }
    match commit(&api, events).await {
        Ok(seqs) => (StatusCode::ACCEPTED, axum::Json(json!({"seqs": seqs}))).into_response(),
        Err(r) => r,
    }
}

async fn get_scope(State(api): State<Api>, Path(scope): Path<String>) -> Response {
    let (pending, due) = match scope_state(&api, &scope).await {
        Ok(s) => s,
        Err(r) => return r,
    };
    let pending: serde_json::Map<String, Value> =
        pending.into_iter().map(|(p, n)| (p, json!(n))).collect();
    axum::Json(json!({"scope": scope, "pending": pending, "due_at_ms": due})).into_response()
}

/// `POST /v1/scopes/{scope}:flush` (the action is the segment's suffix).
async fn post_scope_action(State(api): State<Api>, Path(segment): Path<String>) -> Response {
    let Some(scope) = segment.strip_suffix(":flush") else {
        return (
            StatusCode::NOT_FOUND,
            axum::Json(json!({"error": "unknown action; POST /v1/scopes/{scope}:flush"})),
        )
            .into_response();
    };
    let flushed = match &api.store {
        Store::Local(l) => l.model().flush(scope, now_ms()),
        Store::Pg(pg) => match pg.reader.lock().await.flush(scope).await {
            Ok(f) => f,
            Err(e) => return pg_error(e),
        },
    };
    axum::Json(json!({"scope": scope, "flushed": flushed})).into_response()
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct WaitQuery {
    /// `30s`, `500ms`: how long to wait for the event to be purged (at most [`MAX_WAIT`]).
    wait: Option<String>,
}

/// The longest `?wait=` of an event's status.
pub const MAX_WAIT: Duration = Duration::from_secs(300);

fn not_found(what: String) -> Response {
    (StatusCode::NOT_FOUND, axum::Json(json!({"error": what}))).into_response()
}

async fn get_event(
    State(api): State<Api>,
    Path(seq): Path<String>,
    Query(q): Query<WaitQuery>,
) -> Response {
    let Ok(seq) = seq.parse::<u64>() else {
        return refused(Refused {
            status: 400,
            field: "seq".into(),
            reason: format!("`{seq}` is not an event's sequence number (the `seq` of a 202)"),
        });
    };
    let wait = match q
        .wait
        .as_deref()
        .map(staleguard_core::duration::HumanDuration::parse)
    {
        None => Duration::ZERO,
        Some(Ok(d)) => d.get().min(MAX_WAIT),
        Some(Err(e)) => {
            return refused(Refused {
                status: 400,
                field: "wait".into(),
                reason: e,
            });
        }
    };
    let deadline = tokio::time::Instant::now() + wait;
    loop {
        // Registered before the state is read, so a finish in between is not missed.
        let changed = api.changed.notified();
        tokio::pin!(changed);
        changed.as_mut().enable();
        let status = match event_status(&api, seq).await {
            Ok(s) => s,
            Err(r) => return r,
        };
        let Some(status) = status else {
            return not_found(format!("no event {seq} was ever acknowledged here"));
        };
        let settled = matches!(status.state, EventState::Purged | EventState::Dead);
        if settled || tokio::time::Instant::now() >= deadline {
            return axum::Json(status).into_response();
        }
        // Another instance may purge it: PostgreSQL is asked again at least every 200 ms.
        let poll = match api.store {
            Store::Local(_) => deadline,
            Store::Pg(_) => {
                (tokio::time::Instant::now() + Duration::from_millis(200)).min(deadline)
            }
        };
        tokio::select! {
            _ = changed => {}
            _ = tokio::time::sleep_until(poll) => {}
        }
    }
}

async fn event_status(api: &Api, seq: u64) -> Result<Option<EventStatus>, Response> {
    match &api.store {
        Store::Local(l) => Ok(l.model().event_status(seq)),
        Store::Pg(pg) => pg
            .reader
            .lock()
            .await
            .event_status(seq)
            .await
            .map_err(pg_error),
    }
}

async fn dead_letters(api: &Api) -> Result<Vec<Dead>, Response> {
    match &api.store {
        Store::Local(l) => Ok(l.model().dead().to_vec()),
        Store::Pg(pg) => pg
            .reader
            .lock()
            .await
            .dead_letters()
            .await
            .map_err(pg_error),
    }
}

async fn get_dead(State(api): State<Api>) -> Response {
    let dead = match dead_letters(&api).await {
        Ok(d) => d,
        Err(r) => return r,
    };
    axum::Json(json!({"dead_letters": dead})).into_response()
}

/// `POST /v1/dead-letters/{id}:retry`: the letter's items are committed again as a new event (so the
/// guarantee covers them like any event), then the letter is deleted. A crash in between leaves the
/// letter listed and the new event committed: retried twice at worst, never lost.
async fn post_dead_action(State(api): State<Api>, Path(segment): Path<String>) -> Response {
    let Some(id) = segment
        .strip_suffix(":retry")
        .and_then(|i| i.parse::<u64>().ok())
    else {
        return not_found("unknown action; POST /v1/dead-letters/{id}:retry".into());
    };
    let local = match &api.store {
        Store::Local(l) => l.clone(),
        // One transaction: the letter deleted and its items committed as a new event, or neither.
        Store::Pg(pg) => {
            let retried = pg.reader.lock().await.retry_dead(id).await;
            return match retried {
                Ok(Some((seq, scope))) => {
                    api.metrics.accepted.inc();
                    (
                        StatusCode::ACCEPTED,
                        axum::Json(json!({"seq": seq, "scope": scope, "due_at_ms": due(&api, &scope).await})),
                    )
                        .into_response()
                }
                Ok(None) => not_found(format!(
                    "no dead letter {id}; GET /v1/dead-letters lists them"
                )),
                Err(e) => pg_error(e),
            };
        }
    };
    let dead = local.model().take_dead(id);
    let Some(dead) = dead else {
        return not_found(format!(
            "no dead letter {id}; GET /v1/dead-letters lists them"
        ));
    };
    let event = NewEvent {
        scope: dead.scope.clone(),
        items: dead.items.clone(),
        namespaces: dead.namespaces.clone(),
        ..NewEvent::default()
    };
    let seqs = match commit(&api, vec![event]).await {
        Ok(s) => s,
        Err(r) => {
            // Not committed: the letter stays.
            local.model().restore_dead(dead);
            return r;
        }
    };
    let log = local.log.clone();
    let dropped = tokio::task::spawn_blocking(move || log.drop_dead(id)).await;
    if !matches!(dropped, Ok(Ok(()))) {
        return (
            StatusCode::ACCEPTED,
            axum::Json(json!({"seq": seqs[0], "scope": dead.scope, "warning": "the dead letter could not be deleted from the log; it may be listed again after a restart"})),
        )
            .into_response();
    }
    (
        StatusCode::ACCEPTED,
        axum::Json(
            json!({"seq": seqs[0], "scope": dead.scope, "due_at_ms": due(&api, &dead.scope).await}),
        ),
    )
        .into_response()
}

async fn get_ready(State(api): State<Api>) -> Response {
    if api.ready.load(Ordering::SeqCst) {
        "ready".into_response()
    } else {
        (StatusCode::SERVICE_UNAVAILABLE, "not ready").into_response()
    }
}

/// The routes.
pub fn router(api: Api) -> Router {
    let events = Router::new()
        .route("/v1/scopes/{scope}/invalidations", post(post_event))
        .route("/v1/invalidations:batch", post(post_batch))
        .route_layer(axum::middleware::from_fn_with_state(
            api.clone(),
            count_refusals,
        ));
    let tokened = Router::new()
        .route("/metrics", get(get_metrics))
        .route("/v1/events/{seq}", get(get_event))
        .route("/v1/dead-letters", get(get_dead))
        .route("/v1/dead-letters/{id}", post(post_dead_action))
        .route("/v1/scopes/{scope}", get(get_scope).post(post_scope_action))
        .merge(events)
        .route_layer(axum::middleware::from_fn_with_state(
            api.clone(),
            require_token,
        ));
    Router::new()
        .route("/healthz", get(|| async { "ok" }))
        .route("/readyz", get(get_ready))
        .merge(tokened)
        .layer(DefaultBodyLimit::max(MAX_BODY))
        .with_state(api)
}

/// Opens the log at `path`, every scope purged through `providers` with `policy` (see [`open_routed`]).
pub fn open(
    path: &std::path::Path,
    providers: Vec<String>,
    policy: crate::Policy,
    tokens: Vec<String>,
    queue: usize,
) -> Result<Api, LogError> {
    open_routed(path, Routing::single(providers, policy), tokens, queue)
}

/// Opens the log at `path`, rebuilds the model from it, and wires the two: every committed group is
/// applied to the model by the log's writer, in `seq` order, before the requests are answered.
pub fn open_routed(
    path: &std::path::Path,
    routing: Routing,
    tokens: Vec<String>,
    queue: usize,
) -> Result<Api, LogError> {
    let providers = routing.providers();
    let model = Arc::new(Mutex::new(Service::with_routing(routing.clone())));
    let metrics: Arc<crate::metrics::Metrics> = Arc::default();
    let sink = model.clone();
    let counted = metrics.clone();
    let counts = routing.clone();
    let (log, rec) = Log::open_with(
        path,
        queue,
        Box::new(move |scope| counts.rule(counts.find(scope)).providers.len()),
        Box::new(move |events| {
            counted.commit_events.observe(events.len() as f64);
            let mut m = sink.lock().unwrap_or_else(|p| p.into_inner());
            for e in events {
                m.accept_event_with(
                    e.seq,
                    &e.scope,
                    e.items.clone(),
                    e.soft,
                    e.at_ms,
                    e.namespaces.clone(),
                );
            }
        }),
    )?;
    {
        let mut m = model.lock().unwrap_or_else(|p| p.into_inner());
        let named: Vec<(String, u64, Vec<String>)> = rec
            .events
            .iter()
            .filter(|e| !e.namespaces.is_empty())
            .map(|e| (e.scope.clone(), e.seq, e.namespaces.clone()))
            .collect();
        *m = Service::restore(
            routing,
            rec.events
                .into_iter()
                .map(|e| (e.seq, e.scope, e.at_ms, e.items, e.soft)),
            &rec.cursors,
            rec.last_seq,
            rec.dead,
        );
        for (scope, seq, ns) in named {
            m.set_namespaces(&scope, seq, ns);
        }
    }
    Ok(Api {
        store: Store::Local(Local {
            log: Arc::new(log),
            model,
        }),
        providers: Arc::new(providers),
        tokens: Arc::new(tokens),
        limits: Limits::default(),
        metrics,
        changed: Arc::default(),
        ready: Arc::default(),
    })
}

/// Transactions of events one instance has in flight on PostgreSQL at most (one connection each).
pub const WRITERS: usize = 4;

/// Connects to PostgreSQL at `url` (creating the tables when missing) as instance `owner`: the API
/// appends through one group-commit writer and reads through one more connection; the workers are
/// started by [`crate::server::run`].
pub async fn open_pg(
    url: &str,
    routing: Routing,
    tokens: Vec<String>,
    queue: usize,
    owner: &str,
    lease: Duration,
) -> Result<Api, PgError> {
    let providers = routing.providers();
    let metrics: Arc<crate::metrics::Metrics> = Arc::default();
    let mut writes = Vec::with_capacity(WRITERS);
    for _ in 0..WRITERS {
        writes.push(PgQueue::connect(url, routing.clone(), owner).await?);
    }
    let reads = PgQueue::connect(url, routing.clone(), owner).await?;
    let counted = metrics.clone();
    let writer = PgWriter::spawn_observed(
        writes,
        queue,
        Arc::new(move |n| counted.commit_events.observe(n as f64)),
    );
    Ok(Api {
        store: Store::Pg(Arc::new(PgStore {
            writer,
            reader: tokio::sync::Mutex::new(reads),
            url: url.to_string(),
            routing,
            owner: owner.to_string(),
            lease,
        })),
        providers: Arc::new(providers),
        tokens: Arc::new(tokens),
        limits: Limits::default(),
        metrics,
        changed: Arc::default(),
        ready: Arc::default(),
    })
}
