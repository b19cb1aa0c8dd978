//! The HTTP API (first part): accept events, show a scope, flush it; health. Every route but
//! `/healthz` needs a bearer token (compared in constant time). An event is answered 202 only once
//! the log committed it; a full log queue is 429 with `Retry-After`; a bad event is 400 and a too large
//! one 413, both naming the field.
//!
//! - `POST /v1/scopes/{scope}/invalidations` with an [`EventBody`] → 202 `{seq, scope, due_at_ms}`
//! - `POST /v1/invalidations:batch` with `{"events": [{"scope": …, …}]}` (at most [`MAX_BATCH`]) → 202
//!   `{seqs}`; all or nothing: one bad event refuses the batch, naming `events[i].field`
//! - `GET /v1/scopes/{scope}` → `{scope, pending: {provider: n}, due_at_ms}`
//! - `POST /v1/scopes/{scope}:flush` → 200 `{flushed}`: the scope is due now
//! - `GET /metrics` → the Prometheus text exposition ([`crate::metrics`]; token required, as everywhere)
//! - `GET /healthz` → 200 `ok`
//!
//! The workers that send due batches, metrics, the event-status and dead-letter routes come next.

// The helpers' error is the handler's early answer, an axum `Response`, built at most once per request.
#![allow(clippy::result_large_err)]

use std::sync::{Arc, Mutex};
use std::time::{SystemTime, UNIX_EPOCH};

use axum::Router;
use axum::extract::{DefaultBodyLimit, Path, State};
use axum::http::{HeaderMap, StatusCode, header};
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};
use serde::Deserialize;
use serde_json::{Value, json};

use crate::event::{EventBody, Limits, Refused, check_scope, validate};
use crate::log::{Log, LogError, NewEvent};
use crate::model::Service;

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
            axum::Json(json!({"error": "a bearer token is required (Authorization: Bearer …)"})),
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
    let m = api.model.lock().unwrap_or_else(|p| p.into_inner());
    api.providers
        .iter()
        .filter_map(|p| m.due_at(scope, p))
        .min()
}

/// Commits `events` (blocking the caller's task only); their seqs, counted as accepted.
async fn commit(api: &Api, events: Vec<NewEvent>) -> Result<Vec<u64>, Response> {
    let log = api.log.clone();
    let seqs = tokio::task::spawn_blocking(move || log.append(events, now_ms(), false))
        .await
        .map_err(|e| log_error(LogError::Closed(e.to_string())))?
        .map_err(log_error)?;
    api.metrics.accepted.inc_by(seqs.len() as u64);
    Ok(seqs)
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

async fn get_metrics(State(api): State<Api>, headers: HeaderMap) -> Response {
    if let Err(r) = authorised(&api, &headers) {
        return r;
    }
    let stats = api
        .model
        .lock()
        .unwrap_or_else(|p| p.into_inner())
        .stats(now_ms());
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
    headers: HeaderMap,
    body: axum::body::Bytes,
) -> Response {
    if let Err(r) = authorised(&api, &headers) {
        return r;
    }
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

async fn post_batch(
    State(api): State<Api>,
    headers: HeaderMap,
    body: axum::body::Bytes,
) -> Response {
    if let Err(r) = authorised(&api, &headers) {
        return r;
    }
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
            Ok(items) => events.push(NewEvent { scope, items }),
            Err(r) => return refused(at(r)),
        }
    }
    match commit(&api, events).await {
        Ok(seqs) => (StatusCode::ACCEPTED, axum::Json(json!({"seqs": seqs}))).into_response(),
        Err(r) => r,
    }
}

async fn get_scope(
    State(api): State<Api>,
    Path(scope): Path<String>,
    headers: HeaderMap,
) -> Response {
    if let Err(r) = authorised(&api, &headers) {
        return r;
    }
    let pending: serde_json::Map<String, Value> = {
        let m = api.model.lock().unwrap_or_else(|p| p.into_inner());
        api.providers
            .iter()
            .map(|p| (p.clone(), json!(m.pending_count(&scope, p))))
            .collect()
    };
    axum::Json(json!({"scope": scope, "pending": pending, "due_at_ms": due(&api, &scope)}))
        .into_response()
}

/// `POST /v1/scopes/{scope}:flush` (the action is the segment's suffix).
async fn post_scope_action(
    State(api): State<Api>,
    Path(segment): Path<String>,
    headers: HeaderMap,
) -> Response {
    if let Err(r) = authorised(&api, &headers) {
        return r;
    }
    let Some(scope) = segment.strip_suffix(":flush") else {
        return (
            StatusCode::NOT_FOUND,
            axum::Json(json!({"error": "unknown action; POST /v1/scopes/{scope}:flush"})),
        )
            .into_response();
    };
    let flushed = api
        .model
        .lock()
        .unwrap_or_else(|p| p.into_inner())
        .flush(scope, now_ms());
    axum::Json(json!({"scope": scope, "flushed": flushed})).into_response()
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
    Router::new()
        .route("/healthz", get(|| async { "ok" }))
        .route("/metrics", get(get_metrics))
        .route("/v1/scopes/{scope}", get(get_scope).post(post_scope_action))
        .merge(events)
        .layer(DefaultBodyLimit::max(MAX_BODY))
        .with_state(api)
}

/// Opens the log at `path`, rebuilds the model from it, and wires the two: every committed group is
/// applied to the model by the log's writer, in `seq` order, before the requests are answered.
pub fn open(
    path: &std::path::Path,
    providers: Vec<String>,
    policy: crate::Policy,
    tokens: Vec<String>,
    queue: usize,
) -> Result<Api, LogError> {
    let model = Arc::new(Mutex::new(Service::new(providers.clone(), policy.clone())));
    let sink = model.clone();
    let (log, rec) = Log::open_with(
        path,
        queue,
        providers.len(),
        Box::new(move |events| {
            let mut m = sink.lock().unwrap_or_else(|p| p.into_inner());
            for e in events {
                m.accept_committed(e.seq, &e.scope, e.items.clone(), e.at_ms);
            }
        }),
    )?;
    {
        let mut m = model.lock().unwrap_or_else(|p| p.into_inner());
        *m = Service::restore(
            providers.clone(),
            policy,
            rec.events
                .into_iter()
                .map(|e| (e.seq, e.scope, e.at_ms, e.items)),
            &rec.cursors,
            rec.last_seq,
        );
    }
    Ok(Api {
        log: Arc::new(log),
        model,
        providers: Arc::new(providers),
        tokens: Arc::new(tokens),
        limits: Limits::default(),
        metrics: Arc::default(),
    })
}
