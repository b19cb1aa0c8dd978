//! In-process mocks of the Cloudflare and Fastly purge APIs (no local peer exists for either). Each
//! checks the documented request shape — method, path, the exact auth header, the JSON body's fields,
//! one kind per Cloudflare call, at most the limit of items per call — answers like the real API, and
//! can be scripted to fail the next request (429 with `Retry-After`, 500, 401). A request that breaks
//! the documented shape is answered 400 and recorded in `violations`, which every test checks is empty.
//! The conformance suite runs against both, then provider-specific checks.

use std::collections::VecDeque;
use std::sync::{Arc, Mutex};

use async_trait::async_trait;
use axum::Router;
use axum::body::Bytes;
use axum::extract::{Path, State};
use axum::http::{HeaderMap, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::routing::post;
use serde_json::{Value, json};
use staleguard_cdn::cloudflare::Cloudflare;
use staleguard_cdn::fastly::Fastly;
use staleguard_cdn::wrap::{self, RunOptions};
use staleguard_cdn::{Batch, ErrorKind, Item, OpenContext, Provider, RetryUnit};
use staleguard_core::config::CdnConfig;

use crate::conformance::{Fault, Fixture, run_fault_case, run_suite, tag_of};
use crate::faulty::Front;

const TOKEN: &str = "tok-5ecret-do-not-print";
const DOMAIN: &str = "www.example.com";

/// One purge request the mock accepted.
#[derive(Debug, Clone, PartialEq)]
pub enum Purged {
    /// Full URLs (Cloudflare `files`) or host+path (Fastly URL purge), normalised to `https://host/path`.
    Urls(Vec<String>),
    /// `host/prefix` (Cloudflare `prefixes`).
    Prefixes(Vec<String>),
    Tags(Vec<String>),
    Hosts(Vec<String>),
    Everything,
}

#[derive(Debug, Default)]
pub struct Record {
    /// Accepted purges, with their soft flag.
    pub purges: Vec<(Purged, bool)>,
    /// Index into `purges` at the last `prime`.
    pub mark: usize,
    /// Requests received (accepted or not).
    pub requests: usize,
    pub faults: VecDeque<Fault>,
    /// Requests that broke the documented shape.
    pub violations: Vec<String>,
}

/// A running mock: its base URL, its record, and what it expects.
#[derive(Clone)]
pub struct Mock {
    pub base: String,
    pub record: Arc<Mutex<Record>>,
    /// Items per request at most.
    pub limit: usize,
    pub token: String,
}

impl Mock {
    pub fn violations(&self) -> Vec<String> {
        self.record.lock().unwrap().violations.clone()
    }
    pub fn purges(&self) -> Vec<(Purged, bool)> {
        self.record.lock().unwrap().purges.clone()
    }
    pub fn requests(&self) -> usize {
        self.record.lock().unwrap().requests
    }
    fn covered(&self, url: &str) -> bool {
        let r = self.record.lock().unwrap();
        let full = format!("https://{DOMAIN}{url}");
        let tag = tag_of(url);
        r.purges[r.mark..].iter().any(|(p, _)| match p {
            Purged::Urls(v) => v.contains(&full),
            Purged::Prefixes(v) => v
                .iter()
                .any(|pre| format!("{DOMAIN}{url}").starts_with(pre.as_str())),
            Purged::Tags(v) => v.contains(&tag),
            Purged::Hosts(v) => v.iter().any(|h| h == DOMAIN),
            Purged::Everything => true,
        })
    }
}

/// Takes the scripted fault for this request, if any, as the response the API would give.
fn fault_response(m: &Mock, fastly: bool) -> Option<Response> {
    let fault = {
        let mut r = m.record.lock().unwrap();
        r.requests += 1;
        r.faults.pop_front()?
    };
    Some(match fault {
        Fault::Unauthorized => unauthorized(fastly),
        Fault::Throttled { retry_after_secs } => {
            let body = if fastly {
                json!({"msg": "Rate limit exceeded"})
            } else {
                json!({"success": false, "errors": [{"code": 10000, "message": "Rate limited. Please wait and try again."}], "messages": [], "result": null})
            };
            (
                StatusCode::TOO_MANY_REQUESTS,
                [("retry-after", retry_after_secs.to_string())],
                axum::Json(body),
            )
                .into_response()
        }
        Fault::ServerError => (StatusCode::INTERNAL_SERVER_ERROR, "internal error").into_response(),
    })
}

fn unauthorized(fastly: bool) -> Response {
    let body = if fastly {
        json!({"msg": "Provided credentials are missing or invalid"})
    } else {
        json!({"success": false, "errors": [{"code": 10000, "message": "Authentication error"}], "messages": [], "result": null})
    };
    (StatusCode::UNAUTHORIZED, axum::Json(body)).into_response()
}

fn violation(m: &Mock, fastly: bool, what: String) -> Response {
    m.record.lock().unwrap().violations.push(what.clone());
    let body = if fastly {
        json!({"msg": "Bad request", "detail": format!("mock: {what}")})
    } else {
        json!({"success": false, "errors": [{"code": 1012, "message": format!("mock: {what}")}], "messages": [], "result": null})
    };
    (StatusCode::BAD_REQUEST, axum::Json(body)).into_response()
}

fn accept(m: &Mock, p: Purged, soft: bool) {
    m.record.lock().unwrap().purges.push((p, soft));
}

fn string_array(v: &Value, limit: usize) -> Result<Vec<String>, String> {
    let a = v.as_array().ok_or("not an array")?;
    if a.is_empty() || a.len() > limit {
        return Err(format!("{} items (1 to {limit} allowed)", a.len()));
    }
    a.iter()
        .map(|x| {
            x.as_str()
                .map(String::from)
                .ok_or_else(|| format!("{x} is not a string"))
        })
        .collect()
}

async fn start(app: Router) -> String {
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    tokio::spawn(async move { axum::serve(listener, app).await.unwrap() });
    format!("http://{addr}")
}

// ---------------------------------------------------------------------------------------------------
// Cloudflare

const ZONE: &str = "023e105f4ecef8ad9ca31a8372d0c353";

/// `POST /client/v4/zones/{zone}/purge_cache`.
async fn cloudflare_purge(
    State(m): State<Mock>,
    Path(zone): Path<String>,
    headers: HeaderMap,
    body: Bytes,
) -> Response {
    if let Some(r) = fault_response(&m, false) {
        return r;
    }
    let auth = headers
        .get("authorization")
        .and_then(|v| v.to_str().ok())
        .unwrap_or("");
    if auth != format!("Bearer {}", m.token) {
        return unauthorized(false);
    }
    if zone != ZONE {
        let body = json!({"success": false, "errors": [{"code": 7003, "message": format!("Could not route to /zones/{zone}/purge_cache, perhaps your object identifier is invalid?")}], "messages": [], "result": null});
        return (StatusCode::BAD_REQUEST, axum::Json(body)).into_response();
    }
    let ct = headers
        .get("content-type")
        .and_then(|v| v.to_str().ok())
        .unwrap_or("");
    if !ct.starts_with("application/json") {
        return violation(&m, false, format!("content-type `{ct}`"));
    }
    let Ok(Value::Object(obj)) = serde_json::from_slice::<Value>(&body) else {
        return violation(&m, false, "body is not a JSON object".into());
    };
    let keys: Vec<&String> = obj.keys().collect();
    if keys.len() != 1 {
        return violation(&m, false, format!("one kind per call, got {keys:?}"));
    }
    let (key, value) = obj.iter().next().unwrap();
    let purged = match key.as_str() {
        "purge_everything" if value == &Value::Bool(true) => Purged::Everything,
        "files" | "prefixes" | "tags" | "hosts" => {
            let items = match string_array(value, m.limit) {
                Ok(v) => v,
                Err(e) => return violation(&m, false, format!("`{key}`: {e}")),
            };
            let bad = items.iter().find(|i| match key.as_str() {
                "files" => !i.starts_with(&format!("https://{DOMAIN}/")),
                "prefixes" => i.contains("://") || !i.starts_with(&format!("{DOMAIN}/")),
                _ => i.is_empty() || i.contains(' '),
            });
            if let Some(b) = bad {
                return violation(&m, false, format!("`{key}`: bad entry `{b}`"));
            }
            match key.as_str() {
                "files" => Purged::Urls(items),
                "prefixes" => Purged::Prefixes(items),
                "tags" => Purged::Tags(items),
                _ => Purged::Hosts(items),
            }
        }
        other => return violation(&m, false, format!("unknown field `{other}`: {value}")),
    };
    accept(&m, purged, false);
    let id = format!("{:032x}", rand_id());
    axum::Json(json!({"success": true, "errors": [], "messages": [], "result": {"id": id}}))
        .into_response()
}

fn rand_id() -> u128 {
    use std::sync::atomic::{AtomicU64, Ordering};
    static N: AtomicU64 = AtomicU64::new(1);
    0x5ca1_ab1e_0000_0000_0000_0000_0000_0000 + N.fetch_add(1, Ordering::SeqCst) as u128
}

pub async fn cloudflare_mock(limit: usize) -> Mock {
    cloudflare_mock_with(limit, TOKEN).await
}

pub async fn cloudflare_mock_with(limit: usize, token: &str) -> Mock {
    let record = Arc::new(Mutex::new(Record::default()));
    let mut m = Mock {
        base: String::new(),
        record,
        limit,
        token: token.into(),
    };
    let app = Router::new()
        .route(
            "/client/v4/zones/{zone}/purge_cache",
            post(cloudflare_purge),
        )
        .with_state(m.clone());
    m.base = start(app).await;
    m
}

fn cloudflare_cfg(m: &Mock, max_items: Option<usize>) -> CdnConfig {
    serde_json::from_value(json!({
        "provider": "cloudflare",
        "zone": ZONE,
        "domain": DOMAIN,
        "api": format!("{}/client/v4", m.base),
        "max-items": max_items,
    }))
    .unwrap()
}

// ---------------------------------------------------------------------------------------------------
// Fastly

const SERVICE: &str = "SU1Z0isxPaozGVKXdv0eY";

fn fastly_auth(m: &Mock, headers: &HeaderMap) -> Option<Response> {
    if let Some(r) = fault_response(m, true) {
        return Some(r);
    }
    let key = headers
        .get("fastly-key")
        .and_then(|v| v.to_str().ok())
        .unwrap_or("");
    (key != m.token).then(|| unauthorized(true))
}

fn soft(headers: &HeaderMap) -> bool {
    headers
        .get("fastly-soft-purge")
        .and_then(|v| v.to_str().ok())
        == Some("1")
}

/// `POST /purge/{host}{path}`.
async fn fastly_purge_url(
    State(m): State<Mock>,
    Path(rest): Path<String>,
    headers: HeaderMap,
) -> Response {
    if let Some(r) = fastly_auth(&m, &headers) {
        return r;
    }
    let Some(path) = rest.strip_prefix(DOMAIN).filter(|p| p.starts_with('/')) else {
        return violation(&m, true, format!("URL purge of `{rest}`: not {DOMAIN}/…"));
    };
    accept(
        &m,
        Purged::Urls(vec![format!("https://{DOMAIN}{path}")]),
        soft(&headers),
    );
    axum::Json(json!({"status": "ok", "id": format!("{}-{}", SERVICE, rand_id())})).into_response()
}

/// `POST /service/{service}/purge` with `{"surrogate_keys": [...]}` or a `Surrogate-Key` header.
async fn fastly_purge_keys(
    State(m): State<Mock>,
    Path(service): Path<String>,
    headers: HeaderMap,
    body: Bytes,
) -> Response {
    if let Some(r) = fastly_auth(&m, &headers) {
        return r;
    }
    if service != SERVICE {
        return (
            StatusCode::NOT_FOUND,
            axum::Json(json!({"msg": "Record not found", "detail": "Cannot find service"})),
        )
            .into_response();
    }
    let keys = if let Some(h) = headers.get("surrogate-key") {
        h.to_str()
            .unwrap_or("")
            .split_whitespace()
            .map(String::from)
            .collect::<Vec<_>>()
    } else {
        let ct = headers
            .get("content-type")
            .and_then(|v| v.to_str().ok())
            .unwrap_or("");
        if !ct.starts_with("application/json") {
            return violation(&m, true, format!("content-type `{ct}`"));
        }
        let Ok(v) = serde_json::from_slice::<Value>(&body) else {
            return violation(&m, true, "body is not JSON".into());
        };
        match string_array(&v["surrogate_keys"], m.limit) {
            Ok(k) => k,
            Err(e) => return violation(&m, true, format!("`surrogate_keys`: {e}")),
        }
    };
    if keys.is_empty() || keys.len() > m.limit {
        return violation(
            &m,
            true,
            format!("{} surrogate keys (1 to {} allowed)", keys.len(), m.limit),
        );
    }
    let answer: serde_json::Map<String, Value> = keys
        .iter()
        .map(|k| (k.clone(), json!(format!("{}", rand_id()))))
        .collect();
    accept(&m, Purged::Tags(keys), soft(&headers));
    axum::Json(Value::Object(answer)).into_response()
}

/// `POST /service/{service}/purge_all`.
async fn fastly_purge_all(
    State(m): State<Mock>,
    Path(service): Path<String>,
    headers: HeaderMap,
) -> Response {
    if let Some(r) = fastly_auth(&m, &headers) {
        return r;
    }
    if service != SERVICE {
        return (
            StatusCode::NOT_FOUND,
            axum::Json(json!({"msg": "Record not found"})),
        )
            .into_response();
    }
    accept(&m, Purged::Everything, soft(&headers));
    axum::Json(json!({"status": "ok"})).into_response()
}

pub async fn fastly_mock(limit: usize) -> Mock {
    let record = Arc::new(Mutex::new(Record::default()));
    let mut m = Mock {
        base: String::new(),
        record,
        limit,
        token: TOKEN.into(),
    };
    let app = Router::new()
        .route("/purge/{*rest}", post(fastly_purge_url))
        .route("/service/{service}/purge", post(fastly_purge_keys))
        .route("/service/{service}/purge_all", post(fastly_purge_all))
        .with_state(m.clone());
    m.base = start(app).await;
    m
}

fn fastly_cfg(m: &Mock, max_items: Option<usize>) -> CdnConfig {
    serde_json::from_value(json!({
        "provider": "fastly",
        "service": SERVICE,
        "domain": DOMAIN,
        "api": m.base,
        "max-items": max_items,
    }))
    .unwrap()
}

// ---------------------------------------------------------------------------------------------------
// The fixture and the tests

struct MockFixture {
    mock: Mock,
    host: Option<String>,
}

#[async_trait]
impl Fixture for MockFixture {
    async fn prime(&self, _urls: &[&str]) {
        let mut r = self.mock.record.lock().unwrap();
        r.mark = r.purges.len();
    }
    async fn purged(&self, url: &str) -> bool {
        self.mock.covered(url)
    }
    async fn kept(&self, url: &str) -> bool {
        !self.mock.covered(url)
    }
    fn inject(&self, fault: Fault) -> bool {
        self.mock.record.lock().unwrap().faults.push_back(fault);
        true
    }
    fn host(&self) -> Option<String> {
        self.host.clone()
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn cloudflare_passes_the_conformance_suite() {
    let mock = cloudflare_mock(3).await;
    let p: Arc<dyn Provider> =
        Arc::new(Cloudflare::new(&cloudflare_cfg(&mock, Some(3)), TOKEN.into()).unwrap());
    let fx = MockFixture {
        mock: mock.clone(),
        host: Some(DOMAIN.into()),
    };
    assert_eq!(p.retry_unit(), RetryUnit::Call, "one request per call");
    let ran = run_suite(p, &fx).await;
    assert_eq!(
        ran,
        [
            "one path",
            "many paths",
            "prefix",
            "tag",
            "host",
            "all",
            "refused",
            "unauthorized",
            "throttled",
            "server error",
            "retry-after past the deadline"
        ]
    );
    assert_eq!(mock.violations(), Vec::<String>::new());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn fastly_passes_the_conformance_suite() {
    let mock = fastly_mock(3).await;
    let p: Arc<dyn Provider> =
        Arc::new(Fastly::new(&fastly_cfg(&mock, Some(3)), TOKEN.into()).unwrap());
    let fx = MockFixture {
        mock: mock.clone(),
        host: None,
    };
    assert_eq!(p.retry_unit(), RetryUnit::Request, "one request per URL");
    let ran = run_suite(p, &fx).await;
    assert_eq!(
        ran,
        [
            "one path",
            "many paths",
            "tag",
            "all",
            "refused",
            "unauthorized",
            "throttled",
            "server error",
            "retry-after past the deadline"
        ]
    );
    assert_eq!(mock.violations(), Vec::<String>::new());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn fastly_acknowledges_600_urls_with_2_percent_faults() {
    // Default limits: calls of 256 URLs, one request each.
    let mock = fastly_mock(staleguard_cdn::fastly::MAX_KEYS).await;
    let front = Front::start(&mock.base).await;
    let mut cfg = fastly_cfg(&mock, None);
    cfg.api = front.url.clone();
    let p: Arc<dyn Provider> = Arc::new(Fastly::new(&cfg, TOKEN.into()).unwrap());
    let fx = MockFixture {
        mock: mock.clone(),
        host: None,
    };
    let run = run_fault_case(p, &fx, &[&front], 600).await;
    assert_eq!(run.calls, 3, "600 URLs at 256 per call");
    assert_eq!(
        run.counts.requests,
        600 + run.counts.faults,
        "one request per URL, and one more per fault"
    );
    assert_eq!(mock.violations(), Vec::<String>::new());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn cloudflare_acknowledges_600_urls_with_2_percent_faults() {
    // Cloudflare's unit is the call: with 3 URLs per call, a fault re-sends one call of 3 URLs none
    // of which was acknowledged.
    let mock = cloudflare_mock(3).await;
    let front = Front::start(&mock.base).await;
    let mut cfg = cloudflare_cfg(&mock, Some(3));
    cfg.api = format!("{}/client/v4", front.url);
    let p: Arc<dyn Provider> = Arc::new(Cloudflare::new(&cfg, TOKEN.into()).unwrap());
    let fx = MockFixture {
        mock: mock.clone(),
        host: Some(DOMAIN.into()),
    };
    let run = run_fault_case(p, &fx, &[&front], 600).await;
    assert_eq!(run.calls, 200);
    assert_eq!(
        run.counts.requests,
        200 + run.counts.faults,
        "one request per call, and one more per fault"
    );
    assert_eq!(mock.violations(), Vec::<String>::new());
}

async fn send_all(p: &dyn Provider, items: Vec<Item>, soft: bool) -> wrap::PurgeReport {
    let opts = RunOptions::within(std::time::Duration::from_secs(30));
    let calls = wrap::chunk(
        p,
        &Batch {
            items,
            reference: "t".into(),
            soft,
        },
    )
    .unwrap();
    wrap::purge_all(p, calls, &opts).await.unwrap()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn cloudflare_keeps_one_kind_and_at_most_100_items_per_call() {
    let mock = cloudflare_mock(100).await;
    let p = Cloudflare::new(&cloudflare_cfg(&mock, None), TOKEN.into()).unwrap();
    assert_eq!(p.capabilities().max_items_per_call, 100);
    let mut items: Vec<Item> = (0..250)
        .map(|i| Item::path(format!("/p/{i}.html")))
        .collect();
    items.push(Item::prefix("/docs/"));
    items.push(Item::tag("t1"));
    items.push(Item::path("/caf\u{e9} menu.html"));
    let report = send_all(&p, items, false).await;
    assert_eq!(
        report.calls, 5,
        "3 calls of paths (100, 100, 51), 1 prefix, 1 tag"
    );
    assert_eq!(mock.violations(), Vec::<String>::new());
    let purges = mock.purges();
    let sizes: Vec<usize> = purges
        .iter()
        .map(|(p, _)| match p {
            Purged::Urls(v) | Purged::Prefixes(v) | Purged::Tags(v) | Purged::Hosts(v) => v.len(),
            Purged::Everything => 1,
        })
        .collect();
    assert_eq!(sizes, [100, 100, 51, 1, 1]);
    assert_eq!(
        purges[3].0,
        Purged::Prefixes(vec![format!("{DOMAIN}/docs/")])
    );
    let Purged::Urls(last) = &purges[2].0 else {
        panic!()
    };
    assert!(
        last.contains(&format!("https://{DOMAIN}/caf%C3%A9%20menu.html")),
        "{last:?}"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn cloudflare_errors_are_mapped_and_never_show_the_token() {
    let mock = cloudflare_mock(100).await;
    // A wrong token: Unauthorized with a hint naming the variable, not the token.
    let p = Cloudflare::new(&cloudflare_cfg(&mock, None), "wrong-token".into()).unwrap();
    let e = p
        .purge(&Batch {
            items: vec![Item::tag("t")],
            reference: "r".into(),
            soft: false,
        })
        .await
        .unwrap_err();
    assert_eq!(e.kind, ErrorKind::Unauthorized);
    let text = e.shown();
    assert!(
        text.contains("Authentication error") && text.contains("CLOUDFLARE_API_TOKEN"),
        "{text}"
    );
    assert!(!text.contains("wrong-token"), "{text}");
    assert!(!format!("{p:?}").contains("wrong-token"));
    // An unknown zone: NotFound with a hint about `zone`.
    let mut cfg = cloudflare_cfg(&mock, None);
    cfg.zone = "nope".into();
    let p = Cloudflare::new(&cfg, TOKEN.into()).unwrap();
    let e = p
        .purge(&Batch {
            items: vec![Item::tag("t")],
            reference: "r".into(),
            soft: false,
        })
        .await
        .unwrap_err();
    assert_eq!(e.kind, ErrorKind::NotFound, "{e}");
    assert!(e.shown().contains("zone = \"nope\""), "{}", e.shown());
    assert!(!format!("{p:?}").contains(TOKEN));
    assert!(!e.shown().contains(TOKEN));
    // 429 carries the pause; 500 is transient.
    let p = Cloudflare::new(&cloudflare_cfg(&mock, None), TOKEN.into()).unwrap();
    mock.record.lock().unwrap().faults.extend([
        Fault::Throttled {
            retry_after_secs: 7,
        },
        Fault::ServerError,
    ]);
    let b = Batch {
        items: vec![Item::tag("t")],
        reference: "r".into(),
        soft: false,
    };
    let e = p.purge(&b).await.unwrap_err();
    assert_eq!(
        (e.kind, e.retry_after),
        (
            ErrorKind::Throttled,
            Some(std::time::Duration::from_secs(7))
        )
    );
    assert_eq!(p.purge(&b).await.unwrap_err().kind, ErrorKind::Transient);
    // Nothing listening: transient, naming the API.
    let mut cfg = cloudflare_cfg(&mock, None);
    cfg.api = "http://127.0.0.1:9/client/v4".into();
    let e = Cloudflare::new(&cfg, TOKEN.into())
        .unwrap()
        .purge(&b)
        .await
        .unwrap_err();
    assert_eq!(e.kind, ErrorKind::Transient, "{e}");
    assert!(
        e.to_string().contains("cannot reach the Cloudflare API"),
        "{e}"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn fastly_sends_soft_purges_and_batches_keys_by_256() {
    let mock = fastly_mock(256).await;
    let p = Fastly::new(&fastly_cfg(&mock, None), TOKEN.into()).unwrap();
    let mut items: Vec<Item> = (0..300).map(|i| Item::tag(format!("k{i}"))).collect();
    items.push(Item::path("/a.html"));
    let report = send_all(&p, items, true).await;
    assert_eq!(report.calls, 3);
    assert_eq!(mock.violations(), Vec::<String>::new());
    let purges = mock.purges();
    assert_eq!(purges.len(), 3);
    assert!(
        purges.iter().all(|(_, soft)| *soft),
        "Fastly-Soft-Purge: 1 on every request"
    );
    assert_eq!(
        purges[0].0,
        Purged::Urls(vec![format!("https://{DOMAIN}/a.html")])
    );
    let sizes: Vec<usize> = purges[1..]
        .iter()
        .map(|(p, _)| match p {
            Purged::Tags(v) => v.len(),
            other => panic!("{other:?}"),
        })
        .collect();
    assert_eq!(sizes, [256, 44]);
    // Purge-all is never soft.
    send_all(&p, vec![Item::all()], true).await;
    assert_eq!(mock.purges().last().unwrap(), &(Purged::Everything, false));
    // Prefixes are refused before any request.
    let before = mock.requests();
    let e = wrap::chunk(
        &p,
        &Batch {
            items: vec![Item::prefix("/d/")],
            reference: "r".into(),
            soft: false,
        },
    )
    .unwrap_err();
    assert_eq!(e.kind, ErrorKind::Invalid);
    assert_eq!(mock.requests(), before);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn fastly_errors_are_mapped_and_never_show_the_token() {
    let mock = fastly_mock(256).await;
    let p = Fastly::new(&fastly_cfg(&mock, None), "wrong-key".into()).unwrap();
    let b = Batch {
        items: vec![Item::path("/a"), Item::path("/b")],
        reference: "r".into(),
        soft: false,
    };
    let e = p.purge(&b).await.unwrap_err();
    assert_eq!(e.kind, ErrorKind::Unauthorized);
    let text = e.shown();
    assert!(
        text.contains("Provided credentials are missing or invalid"),
        "{text}"
    );
    assert!(
        text.contains("FASTLY_API_TOKEN") && text.contains("2 of 2 requests failed"),
        "{text}"
    );
    assert!(!text.contains("wrong-key") && !format!("{p:?}").contains("wrong-key"));
    let mut cfg = fastly_cfg(&mock, None);
    cfg.service = "nope".into();
    let e = Fastly::new(&cfg, TOKEN.into())
        .unwrap()
        .purge(&Batch {
            items: vec![Item::tag("t")],
            reference: "r".into(),
            soft: false,
        })
        .await
        .unwrap_err();
    assert_eq!(e.kind, ErrorKind::NotFound, "{e}");
    assert!(e.shown().contains("service = \"nope\""), "{}", e.shown());
    let p = Fastly::new(&fastly_cfg(&mock, None), TOKEN.into()).unwrap();
    mock.record
        .lock()
        .unwrap()
        .faults
        .push_back(Fault::Throttled {
            retry_after_secs: 3,
        });
    let e = p
        .purge(&Batch {
            items: vec![Item::all()],
            reference: "r".into(),
            soft: false,
        })
        .await
        .unwrap_err();
    assert_eq!(
        (e.kind, e.retry_after),
        (
            ErrorKind::Throttled,
            Some(std::time::Duration::from_secs(3))
        )
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn open_builds_rate_limited_providers_and_needs_the_token_variable() {
    let mock = cloudflare_mock(100).await;
    let ctx = OpenContext::default();
    // A variable that is not set: a config error naming it.
    let mut cfg = cloudflare_cfg(&mock, None);
    cfg.token_env = "STALEGUARD_TEST_SURELY_UNSET_TOKEN".into();
    let e = staleguard_cdn::open(&cfg, &ctx).await.unwrap_err();
    assert_eq!(e.kind, ErrorKind::Config);
    assert!(
        e.to_string()
            .contains("`STALEGUARD_TEST_SURELY_UNSET_TOKEN` is not set"),
        "{e}"
    );
    // A set variable (cargo sets CARGO_PKG_NAME for tests; tests may not set variables themselves).
    let token = std::env::var("CARGO_PKG_NAME").expect("cargo sets CARGO_PKG_NAME");
    cfg.token_env = "CARGO_PKG_NAME".into();
    let mock = cloudflare_mock_with(100, &token).await;
    cfg.api = format!("{}/client/v4", mock.base);
    cfg.max_rate = 5.0;
    let ps = staleguard_cdn::open(&cfg, &ctx).await.unwrap();
    assert_eq!(ps.len(), 1);
    let p = &ps[0];
    assert_eq!(p.name(), "cloudflare");
    assert!(format!("{p:?}").contains("RateLimited"), "{p:?}");
    assert!(!format!("{p:?}").contains(&token));
    let t = std::time::Instant::now();
    let items: Vec<Item> = (0..3).map(|i| Item::path(format!("/{i}"))).collect();
    let b = |i: usize| Batch {
        items: vec![items[i].clone()],
        reference: format!("r{i}"),
        soft: false,
    };
    for i in 0..3 {
        p.purge(&b(i)).await.unwrap();
    }
    assert!(
        t.elapsed() >= std::time::Duration::from_millis(390),
        "5 calls/s: {:?}",
        t.elapsed()
    );
    assert_eq!(mock.violations(), Vec::<String>::new());
    // An entry that fails its own checks.
    let mut bad = cfg.clone();
    bad.zone.clear();
    assert_eq!(
        staleguard_cdn::open(&bad, &ctx).await.unwrap_err().kind,
        ErrorKind::Config
    );
}
