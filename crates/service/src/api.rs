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
use crate::model::{EventState, Routing, Service};

/// Events in one batch request at most.
pub const MAX_BATCH: usize = 1000;
/// Request bodies larger than this are refused (413).
pub const MAX_BODY: usize = 4 << 20;

/// What the routes share.
#[derive(Clone)]
pub struct Api {
    pub log: Arc<Log>,
    pub model: Arc<Mutex<Service>>,
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
    /// The model, locked (a panic elsewhere while it was held leaves it usable: every change to it is
    /// one method call that leaves it consistent).
    pub fn model(&self) -> std::sync::MutexGuard<'_, Service> {
        self.model.lock().unwrap_or_else(|p| p.into_inner())
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

/// The earliest due time of `scope` over its providers.
fn due(api: &Api, scope: &str) -> Option<u64> {
    let m = api.model();
    m.providers_of(scope)
        .iter()
        .filter_map(|p| m.due_at(scope, p))
        .min()
}

/// Commits `events` (blocking the caller's task only); their seqs, counted as accepted.
async fn commit(api: &Api, events: Vec<NewEvent>) -> Result<Vec<u64>, Response> {
    let started = Instant::now();
    let log = api.log.clone();
    let seqs = tokio::task::spawn_blocking(move || log.append(events, now_ms(), false))
        .await
        .map_err(|e| log_error(LogError::Closed(e.to_string())))?
        .map_err(log_error)?;
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

async fn get_metrics(State(api): State<Api>) -> Response {
    let stats = api.model().stats(now_ms());
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
    match commit(
        &api,
        vec![NewEvent {
            scope: scope.clone(),
            items,
            soft: ev.mode == crate::Mode::Soft,
            key: ev.key.clone(),
        }],
    )
    .await
    {
        Ok(seqs) => (
            StatusCode::ACCEPTED,
            axum::Json(json!({"seq": seqs[0], "scope": scope, "due_at_ms": due(&api, &scope)})),
        )
            .into_response(),
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
    let pending: serde_json::Map<String, Value> = {
        let m = api.model();
        m.providers_of(&scope)
            .iter()
            .map(|p| (p.clone(), json!(m.pending_count(&scope, p))))
            .collect()
    };
    axum::Json(json!({"scope": scope, "pending": pending, "due_at_ms": due(&api, &scope)}))
        .into_response()
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
    let flushed = api.model().flush(scope, now_ms());
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
        let status = api.model().event_status(seq);
        let Some(status) = status else {
            return not_found(format!("no event {seq} was ever acknowledged here"));
        };
        let settled = matches!(status.state, EventState::Purged | EventState::Dead);
        if settled || tokio::time::Instant::now() >= deadline {
            return axum::Json(status).into_response();
        }
        tokio::select! {
            _ = changed => {}
            _ = tokio::time::sleep_until(deadline) => {}
        }
    }
}

async fn get_dead(State(api): State<Api>) -> Response {
    let dead = api.model().dead().to_vec();
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
    let dead = api.model().take_dead(id);
    let Some(dead) = dead else {
        return not_found(format!(
            "no dead letter {id}; GET /v1/dead-letters lists them"
        ));
    };
    let event = NewEvent {
        scope: dead.scope.clone(),
        items: dead.items.clone(),
        ..NewEvent::default()
    };
    let seqs = match commit(&api, vec![event]).await {
        Ok(s) => s,
        Err(r) => {
            // Not committed: the letter stays.
            let mut m = api.model();
            m.restore_dead(dead);
            return r;
        }
    };
    let log = api.log.clone();
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
            json!({"seq": seqs[0], "scope": dead.scope, "due_at_ms": due(&api, &dead.scope)}),
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
                m.accept_event(e.seq, &e.scope, e.items.clone(), e.soft, e.at_ms);
            }
        }),
    )?;
    {
        let mut m = model.lock().unwrap_or_else(|p| p.into_inner());
        *m = Service::restore(
            routing,
            rec.events
                .into_iter()
                .map(|e| (e.seq, e.scope, e.at_ms, e.items, e.soft)),
            &rec.cursors,
            rec.last_seq,
            rec.dead,
        );
    }
    Ok(Api {
        log: Arc::new(log),
        model,
        providers: Arc::new(providers),
        tokens: Arc::new(tokens),
        limits: Limits::default(),
        metrics,
        changed: Arc::default(),
        ready: Arc::default(),
    })
}
