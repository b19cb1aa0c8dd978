//! A fake CloudFront of our own: an in-process axum server speaking enough of the REST/XML API
//! (2020-05-31) for the provider's REST client: GetDistribution, GetDistributionConfig, ListDistributions,
//! CreateInvalidation, GetInvalidation, ListInvalidations.
//!
//! It models what moto does not (see `../shared/peers/README.md`): invalidations start `InProgress`
//! and turn `Completed` after some `GetInvalidation` polls (or some time); 3,000 paths per batch
//! (`BatchTooLarge`); 3,000 paths and 15 wildcards in progress per distribution
//! (`TooManyInvalidationsInProgress`); `Throttling` beyond a burst of creates; CallerReference
//! idempotency (same reference and paths: the existing invalidation; other paths:
//! `InvalidationBatchAlreadyExists`); path validation (`InvalidArgument`). Every request is recorded.
//! Scripted failures ([`FakeCloudFront::fail_next`]) and a lost response
//! ([`FakeCloudFront::lose_next_create_response`]) cover the rest.

use std::collections::VecDeque;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant, SystemTime};

use axum::Router;
use axum::body::Bytes;
use axum::extract::State;
use axum::http::{HeaderMap, Method, StatusCode, Uri, header};
use axum::response::{IntoResponse, Response};

const NS: &str = "http://cloudfront.amazonaws.com/doc/2020-05-31/";
const API: &str = "/2020-05-31/";

/// How the fake behaves. `Default` is CloudFront's quotas, completion after two polls, no throttling.
#[derive(Debug, Clone)]
pub struct FakeOptions {
    /// An invalidation is `Completed` once it was polled (GetInvalidation) this many times.
    pub complete_after_polls: u32,
    /// …or once it is this old, whichever comes first.
    pub complete_after: Option<Duration>,
    pub max_paths_per_batch: usize,
    pub max_paths_in_flight: usize,
    pub max_wildcards_in_flight: usize,
    /// CreateInvalidation calls allowed in a burst, refilled at `per_second`; beyond: `Throttling`.
    pub throttle: Option<Throttle>,
    /// Items per ListDistributions / ListInvalidations page at most (CloudFront: the request's MaxItems).
    pub max_page: usize,
    /// Accept `#tag` invalidation paths.
    pub tags: bool,
    /// List invalidations oldest first, as moto does (CloudFront: newest first).
    pub oldest_first: bool,
}

#[derive(Debug, Clone, Copy)]
pub struct Throttle {
    pub burst: u32,
    pub per_second: f64,
}

impl Default for FakeOptions {
    fn default() -> Self {
        FakeOptions {
            complete_after_polls: 2,
            complete_after: None,
            max_paths_per_batch: 3000,
            max_paths_in_flight: 3000,
            max_wildcards_in_flight: 15,
            throttle: None,
            max_page: 100,
            tags: false,
            oldest_first: false,
        }
    }
}

/// A distribution the fake serves.
#[derive(Debug, Clone)]
pub struct FakeDistribution {
    pub id: String,
    pub domain_name: String,
    pub aliases: Vec<String>,
    /// (origin id, domain name, origin path)
    pub origins: Vec<(String, String, String)>,
    /// The default cache behaviour's target origin id.
    pub default_origin: String,
}

impl FakeDistribution {
    /// A distribution with one S3 origin for `bucket` (origin path `origin_path`, may be empty).
    pub fn s3(id: &str, bucket: &str, origin_path: &str) -> FakeDistribution {
        FakeDistribution {
            id: id.into(),
            domain_name: format!("d{}.cloudfront.net", id.to_ascii_lowercase()),
            aliases: Vec::new(),
            origins: vec![(
                "s3".into(),
                format!("{bucket}.s3.amazonaws.com"),
                origin_path.into(),
            )],
            default_origin: "s3".into(),
        }
    }

    pub fn with_alias(mut self, alias: &str) -> FakeDistribution {
        self.aliases.push(alias.into());
        self
    }
}

/// One invalidation as the fake holds it.
#[derive(Debug, Clone)]
pub struct FakeInvalidation {
    pub id: String,
    pub distribution: String,
    pub reference: String,
    pub paths: Vec<String>,
    pub completed: bool,
    pub polls: u32,
    created: Instant,
    created_at: SystemTime,
}

impl FakeInvalidation {
    fn wildcards(&self) -> usize {
        self.paths.iter().filter(|p| p.ends_with('*')).count()
    }
}

/// One request the fake answered.
#[derive(Debug, Clone)]
pub struct Recorded {
    /// The operation (`CreateInvalidation`, `GetInvalidation`, …, or `Unknown`).
    pub op: &'static str,
    pub method: String,
    pub path: String,
    pub query: String,
    pub body: String,
    /// The answer's HTTP status and error code (empty on success).
    pub status: u16,
    pub code: String,
    /// Whether the request carried a SigV4 `Authorization` header (its value is not kept).
    pub signed: bool,
}

struct Failure {
    op: &'static str,
    status: u16,
    code: String,
    retry_after: Option<u64>,
}

#[derive(Default)]
struct State_ {
    opts: FakeOptions,
    distributions: Vec<FakeDistribution>,
    invalidations: Vec<FakeInvalidation>,
    requests: Vec<Recorded>,
    failures: VecDeque<Failure>,
    lose_creates: u32,
    lose_for: Duration,
    tokens: f64,
    refilled: Option<Instant>,
    deny: bool,
    next_id: u64,
}

type Shared = Arc<Mutex<State_>>;

/// A running fake; the server stops when this is dropped.
pub struct FakeCloudFront {
    /// `http://127.0.0.1:PORT`: pass as the `api` of a `[[cdn]]` entry.
    pub url: String,
    state: Shared,
    server: tokio::task::JoinHandle<()>,
}

impl Drop for FakeCloudFront {
    fn drop(&mut self) {
        self.server.abort();
    }
}

impl FakeCloudFront {
    /// Starts a fake on a free loopback port.
    pub async fn start(opts: FakeOptions) -> FakeCloudFront {
        let state: Shared = Arc::new(Mutex::new(State_ {
            tokens: opts.throttle.map_or(0.0, |t| t.burst as f64),
            opts,
            ..Default::default()
        }));
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0")
            .await
            .expect("bind 127.0.0.1:0");
        let url = format!("http://{}", listener.local_addr().unwrap());
        let app = Router::new().fallback(handle).with_state(state.clone());
        let server = tokio::spawn(async move {
            axum::serve(listener, app)
                .await
                .expect("fake cloudfront server");
        });
        FakeCloudFront { url, state, server }
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, State_> {
        self.state.lock().unwrap_or_else(|e| e.into_inner())
    }

    pub fn add_distribution(&self, d: FakeDistribution) {
        self.lock().distributions.push(d);
    }

    /// Every request so far.
    pub fn requests(&self) -> Vec<Recorded> {
        self.lock().requests.clone()
    }

    /// Requests of one operation so far.
    pub fn calls(&self, op: &str) -> Vec<Recorded> {
        self.requests().into_iter().filter(|r| r.op == op).collect()
    }

    /// The invalidations of a distribution, oldest first.
    pub fn invalidations(&self, distribution: &str) -> Vec<FakeInvalidation> {
        self.lock()
            .invalidations
            .iter()
            .filter(|i| i.distribution == distribution)
            .cloned()
            .collect()
    }

    /// The next `times` requests of `op` fail with `status` and error `code`.
    pub fn fail_next(&self, op: &'static str, status: u16, code: &str, times: u32) {
        let mut s = self.lock();
        for _ in 0..times {
            s.failures.push_back(Failure {
                op,
                status,
                code: code.into(),
                retry_after: None,
            });
        }
    }

    /// The next request of `op` fails with `status`, `code` and `Retry-After: secs`.
    pub fn fail_next_retry_after(&self, op: &'static str, status: u16, code: &str, secs: u64) {
        self.lock().failures.push_back(Failure {
            op,
            status,
            code: code.into(),
            retry_after: Some(secs),
        });
    }

    /// The next CreateInvalidation is carried out, but its answer is held back for `hold` (longer than
    /// the client's timeout: the response is lost as far as the client knows).
    pub fn lose_next_create_response(&self, hold: Duration) {
        let mut s = self.lock();
        s.lose_creates += 1;
        s.lose_for = hold;
    }

    /// Answer every request with 403 `AccessDenied` (or stop doing so).
    pub fn deny_access(&self, deny: bool) {
        self.lock().deny = deny;
    }
}

fn rfc3339(t: SystemTime) -> String {
    chrono::DateTime::<chrono::Utc>::from(t).to_rfc3339_opts(chrono::SecondsFormat::AutoSi, true)
}

fn esc(s: &str) -> String {
    let mut o = String::with_capacity(s.len());
    for c in s.chars() {
        match c {
            '&' => o.push_str("&amp;"),
            '<' => o.push_str("&lt;"),
            '>' => o.push_str("&gt;"),
            '"' => o.push_str("&quot;"),
            '\'' => o.push_str("&apos;"),
            c if (c as u32) < 0x20 => o.push_str(&format!("&#x{:X};", c as u32)),
            c => o.push(c),
        }
    }
    o
}

fn unesc(s: &str) -> String {
    let mut o = String::with_capacity(s.len());
    let mut rest = s;
    while let Some(i) = rest.find('&') {
        o.push_str(&rest[..i]);
        rest = &rest[i..];
        let Some(end) = rest.find(';') else { break };
        let ent = &rest[1..end];
        let c = match ent {
            "amp" => Some('&'),
            "lt" => Some('<'),
            "gt" => Some('>'),
            "quot" => Some('"'),
            "apos" => Some('\''),
            _ => ent
                .strip_prefix("#x")
                .or_else(|| ent.strip_prefix("#X"))
                .and_then(|h| u32::from_str_radix(h, 16).ok())
                .or_else(|| ent.strip_prefix('#').and_then(|d| d.parse().ok()))
                .and_then(char::from_u32),
        };
        match c {
            Some(c) => {
                o.push(c);
                rest = &rest[end + 1..];
            }
            None => {
                o.push('&');
                rest = &rest[1..];
            }
        }
    }
    o.push_str(rest);
    o
}

/// Text of every `<tag>…</tag>` in `xml` (no nesting of the same tag).
fn all_text(xml: &str, tag: &str) -> Vec<String> {
    let (open, close) = (format!("<{tag}>"), format!("</{tag}>"));
    let mut out = Vec::new();
    let mut rest = xml;
    while let Some(i) = rest.find(&open) {
        rest = &rest[i + open.len()..];
        let Some(j) = rest.find(&close) else { break };
        out.push(unesc(&rest[..j]));
        rest = &rest[j + close.len()..];
    }
    out
}

fn query_param(query: &str, key: &str) -> Option<String> {
    query.split('&').find_map(|kv| {
        let (k, v) = kv.split_once('=').unwrap_or((kv, ""));
        (k == key).then(|| v.replace("%2F", "/").replace("%3D", "="))
    })
}

fn xml(status: StatusCode, body: String) -> Response {
    (
        status,
        [
            (header::CONTENT_TYPE, "text/xml"),
            (
                header::HeaderName::from_static("x-amz-request-id"),
                "fake-req",
            ),
        ],
        body,
    )
        .into_response()
}

fn error(status: u16, code: &str, message: &str) -> Response {
    let body = format!(
        "<?xml version=\"1.0\"?>\n<ErrorResponse xmlns=\"{NS}\"><Error><Type>Sender</Type><Code>{}</Code><Message>{}</Message></Error><RequestId>fake-req</RequestId></ErrorResponse>",
        esc(code),
        esc(message)
    );
    xml(
        StatusCode::from_u16(status).unwrap_or(StatusCode::BAD_REQUEST),
        body,
    )
}

fn aliases_xml(aliases: &[String]) -> String {
    let items: String = aliases
        .iter()
        .map(|a| format!("<CNAME>{}</CNAME>", esc(a)))
        .collect();
    if aliases.is_empty() {
        "<Aliases><Quantity>0</Quantity></Aliases>".into()
    } else {
        format!(
            "<Aliases><Quantity>{}</Quantity><Items>{items}</Items></Aliases>",
            aliases.len()
        )
    }
}

fn origins_xml(d: &FakeDistribution) -> String {
    let items: String = d
        .origins
        .iter()
        .map(|(id, dn, path)| {
            format!(
                "<Origin><Id>{}</Id><DomainName>{}</DomainName><OriginPath>{}</OriginPath><CustomHeaders><Quantity>0</Quantity></CustomHeaders><S3OriginConfig><OriginAccessIdentity></OriginAccessIdentity></S3OriginConfig><ConnectionAttempts>3</ConnectionAttempts><ConnectionTimeout>10</ConnectionTimeout></Origin>",
                esc(id),
                esc(dn),
                esc(path)
            )
        })
        .collect();
    format!(
        "<Origins><Quantity>{}</Quantity><Items>{items}</Items></Origins>",
        d.origins.len()
    )
}

fn behavior_xml(d: &FakeDistribution) -> String {
    format!(
        "<DefaultCacheBehavior><TargetOriginId>{}</TargetOriginId><ViewerProtocolPolicy>redirect-to-https</ViewerProtocolPolicy><CachePolicyId>658327ea-f89d-4fab-a63d-7e88639e58f6</CachePolicyId></DefaultCacheBehavior>",
        esc(&d.default_origin)
    )
}

fn config_xml(d: &FakeDistribution) -> String {
    format!(
        "<CallerReference>fake-{}</CallerReference>{}<DefaultRootObject>index.html</DefaultRootObject>{}{}<CacheBehaviors><Quantity>0</Quantity></CacheBehaviors><Comment></Comment><PriceClass>PriceClass_All</PriceClass><Enabled>true</Enabled><HttpVersion>http2</HttpVersion><IsIPV6Enabled>true</IsIPV6Enabled>",
        esc(&d.id),
        aliases_xml(&d.aliases),
        origins_xml(d),
        behavior_xml(d)
    )
}

fn invalidation_xml(i: &FakeInvalidation) -> String {
    let items: String = i
        .paths
        .iter()
        .map(|p| format!("<Path>{}</Path>", esc(p)))
        .collect();
    format!(
        "<?xml version=\"1.0\"?>\n<Invalidation xmlns=\"{NS}\"><Id>{}</Id><Status>{}</Status><CreateTime>{}</CreateTime><InvalidationBatch><Paths><Quantity>{}</Quantity><Items>{items}</Items></Paths><CallerReference>{}</CallerReference></InvalidationBatch></Invalidation>",
        i.id,
        if i.completed {
            "Completed"
        } else {
            "InProgress"
        },
        rfc3339(i.created_at),
        i.paths.len(),
        esc(&i.reference)
    )
}

/// Applies the time rule: old enough invalidations are completed.
fn age_out(s: &mut State_) {
    if let Some(after) = s.opts.complete_after {
        for i in &mut s.invalidations {
            if i.created.elapsed() >= after {
                i.completed = true;
            }
        }
    }
}

/// Why a path is not a valid CloudFront invalidation path, if it is not.
fn invalid_path(p: &str, tags: bool) -> Option<&'static str> {
    if tags && p.starts_with('#') {
        return (p.len() < 2).then_some("empty tag");
    }
    if !p.starts_with('/') {
        return Some("does not start with /");
    }
    if p.find('*').is_some_and(|i| i != p.len() - 1) {
        return Some("wildcard not at the end");
    }
    if p.bytes().any(|b| b <= 0x20 || b >= 0x7f) {
        return Some("unencoded space, control or non-ASCII character");
    }
    if p.len() > 4000 {
        return Some("longer than 4000 characters");
    }
    None
}

enum Outcome {
    Now(Response),
    /// The work is done; answer after a pause (a response lost in transit).
    Later(Response, Duration),
}

async fn handle(
    State(state): State<Shared>,
    method: Method,
    uri: Uri,
    headers: HeaderMap,
    body: Bytes,
) -> Response {
    let body = String::from_utf8_lossy(&body).to_string();
    let path = uri.path().to_string();
    let query = uri.query().unwrap_or_default().to_string();
    let signed = headers
        .get(header::AUTHORIZATION)
        .and_then(|v| v.to_str().ok())
        .is_some_and(|v| v.starts_with("AWS4-HMAC-SHA256"));
    let outcome = {
        let mut s = state.lock().unwrap_or_else(|e| e.into_inner());
        let op = operation(&method, &path);
        let outcome = answer(&mut s, op, &method, &path, &query, &body, signed);
        let resp = match &outcome {
            Outcome::Now(r) | Outcome::Later(r, _) => r,
        };
        let status = resp.status().as_u16();
        let code = resp
            .headers()
            .get("x-fake-error-code")
            .and_then(|v| v.to_str().ok())
            .unwrap_or_default()
            .to_string();
        s.requests.push(Recorded {
            op,
            method: method.to_string(),
            path: path.clone(),
            query,
            body,
            status,
            code,
            signed,
        });
        outcome
    };
    match outcome {
        Outcome::Now(r) => r,
        Outcome::Later(r, d) => {
            tokio::time::sleep(d).await;
            r
        }
    }
}

fn operation(method: &Method, path: &str) -> &'static str {
    let Some(rest) = path.strip_prefix(API) else {
        return "Unknown";
    };
    let parts: Vec<&str> = rest.split('/').collect();
    match (method.as_str(), parts.as_slice()) {
        ("GET", ["distribution"]) => "ListDistributions",
        ("GET", ["distribution", _]) => "GetDistribution",
        ("GET", ["distribution", _, "config"]) => "GetDistributionConfig",
        ("POST", ["distribution", _, "invalidation"]) => "CreateInvalidation",
        ("GET", ["distribution", _, "invalidation"]) => "ListInvalidations",
        ("GET", ["distribution", _, "invalidation", _]) => "GetInvalidation",
        _ => "Unknown",
    }
}

/// An error response that also says its code in a header, for the request log.
fn err(status: u16, code: &str, message: &str) -> Outcome {
    let mut r = error(status, code, message);
    r.headers_mut()
        .insert("x-fake-error-code", code.parse().unwrap());
    Outcome::Now(r)
}

fn answer(
    s: &mut State_,
    op: &'static str,
    method: &Method,
    path: &str,
    query: &str,
    body: &str,
    signed: bool,
) -> Outcome {
    age_out(s);
    if op == "Unknown" {
        return err(
            404,
            "NotImplemented",
            &format!("the fake does not serve {method} {path}"),
        );
    }
    if !signed {
        return err(
            403,
            "MissingAuthenticationToken",
            "Request is missing Authentication Token",
        );
    }
    if s.deny {
        return err(
            403,
            "AccessDenied",
            "User is not authorized to perform this action",
        );
    }
    if let Some(i) = s.failures.iter().position(|f| f.op == op) {
        let f = s.failures.remove(i).unwrap();
        let mut out = err(f.status, &f.code, "scripted failure");
        if let (Some(secs), Outcome::Now(r)) = (f.retry_after, &mut out) {
            r.headers_mut()
                .insert(header::RETRY_AFTER, secs.to_string().parse().unwrap());
        }
        return out;
    }
    let parts: Vec<&str> = path[API.len()..].split('/').collect();
    if op == "ListDistributions" {
        return list_distributions(s, query);
    }
    let dist_id = parts[1];
    let Some(d) = s.distributions.iter().find(|d| d.id == dist_id).cloned() else {
        return err(
            404,
            "NoSuchDistribution",
            "The specified distribution does not exist.",
        );
    };
    match op {
        "GetDistribution" => {
            let in_progress = s
                .invalidations
                .iter()
                .filter(|i| i.distribution == d.id && !i.completed)
                .count();
            let body = format!(
                "<?xml version=\"1.0\"?>\n<Distribution xmlns=\"{NS}\"><Id>{}</Id><ARN>arn:aws:cloudfront::123456789012:distribution/{}</ARN><Status>Deployed</Status><LastModifiedTime>2026-01-01T00:00:00.000Z</LastModifiedTime><InProgressInvalidationBatches>{in_progress}</InProgressInvalidationBatches><DomainName>{}</DomainName><DistributionConfig>{}</DistributionConfig></Distribution>",
                d.id,
                d.id,
                esc(&d.domain_name),
                config_xml(&d)
            );
            let mut r = xml(StatusCode::OK, body);
            r.headers_mut()
                .insert(header::ETAG, "E1FAKEETAG".parse().unwrap());
            Outcome::Now(r)
        }
        "GetDistributionConfig" => {
            let body = format!(
                "<?xml version=\"1.0\"?>\n<DistributionConfig xmlns=\"{NS}\">{}</DistributionConfig>",
                config_xml(&d)
            );
            let mut r = xml(StatusCode::OK, body);
            r.headers_mut()
                .insert(header::ETAG, "E1FAKEETAG".parse().unwrap());
            Outcome::Now(r)
        }
        "CreateInvalidation" => create_invalidation(s, &d, body),
        "GetInvalidation" => {
            let after = s.opts.complete_after_polls;
            let Some(i) = s
                .invalidations
                .iter_mut()
                .find(|i| i.distribution == d.id && i.id == parts[3])
            else {
                return err(
                    404,
                    "NoSuchInvalidation",
                    "The specified invalidation does not exist.",
                );
            };
            i.polls += 1;
            if i.polls >= after {
                i.completed = true;
            }
            Outcome::Now(xml(StatusCode::OK, invalidation_xml(i)))
        }
        "ListInvalidations" => list_invalidations(s, &d, query),
        _ => err(404, "NotImplemented", op),
    }
}

fn page_size(s: &State_, query: &str) -> usize {
    query_param(query, "MaxItems")
        .and_then(|m| m.parse().ok())
        .unwrap_or(100usize)
        .clamp(1, s.opts.max_page)
}

fn list_distributions(s: &State_, query: &str) -> Outcome {
    let max = page_size(s, query);
    let marker = query_param(query, "Marker").unwrap_or_default();
    let start = if marker.is_empty() {
        0
    } else {
        s.distributions
            .iter()
            .position(|d| d.id == marker)
            .map_or(s.distributions.len(), |i| i + 1)
    };
    let page: Vec<&FakeDistribution> = s.distributions.iter().skip(start).take(max).collect();
    let truncated = start + page.len() < s.distributions.len();
    let items: String = page
        .iter()
        .map(|d| {
            format!(
                "<DistributionSummary><Id>{}</Id><ARN>arn:aws:cloudfront::123456789012:distribution/{}</ARN><ETag>E1FAKEETAG</ETag><Status>Deployed</Status><LastModifiedTime>2026-01-01T00:00:00.000Z</LastModifiedTime><DomainName>{}</DomainName>{}{}<OriginGroups><Quantity>0</Quantity></OriginGroups>{}<CacheBehaviors><Quantity>0</Quantity></CacheBehaviors><CustomErrorResponses><Quantity>0</Quantity></CustomErrorResponses><Comment></Comment><PriceClass>PriceClass_All</PriceClass><Enabled>true</Enabled><HttpVersion>http2</HttpVersion><IsIPV6Enabled>true</IsIPV6Enabled><Staging>false</Staging></DistributionSummary>",
                d.id,
                d.id,
                esc(&d.domain_name),
                aliases_xml(&d.aliases),
                origins_xml(d),
                behavior_xml(d)
            )
        })
        .collect();
    let next = match (truncated, page.last()) {
        (true, Some(d)) => format!("<NextMarker>{}</NextMarker>", d.id),
        _ => String::new(),
    };
    let body = format!(
        "<?xml version=\"1.0\"?>\n<DistributionList xmlns=\"{NS}\"><Marker>{}</Marker>{next}<MaxItems>{max}</MaxItems><IsTruncated>{truncated}</IsTruncated><Quantity>{}</Quantity><Items>{items}</Items></DistributionList>",
        esc(&marker),
        page.len()
    );
    Outcome::Now(xml(StatusCode::OK, body))
}

fn list_invalidations(s: &State_, d: &FakeDistribution, query: &str) -> Outcome {
    let max = page_size(s, query);
    let marker = query_param(query, "Marker").unwrap_or_default();
    // Newest first, as CloudFront lists them (or oldest first, as moto does).
    let mut all: Vec<&FakeInvalidation> = s
        .invalidations
        .iter()
        .filter(|i| i.distribution == d.id)
        .collect();
    if !s.opts.oldest_first {
        all.reverse();
    }
    let start = if marker.is_empty() {
        0
    } else {
        all.iter()
            .position(|i| i.id == marker)
            .map_or(all.len(), |i| i + 1)
    };
    let page: Vec<&&FakeInvalidation> = all.iter().skip(start).take(max).collect();
    let truncated = start + page.len() < all.len();
    let items: String = page
        .iter()
        .map(|i| {
            format!(
                "<InvalidationSummary><Id>{}</Id><CreateTime>{}</CreateTime><Status>{}</Status></InvalidationSummary>",
                i.id,
                rfc3339(i.created_at),
                if i.completed { "Completed" } else { "InProgress" }
            )
        })
        .collect();
    let next = match (truncated, page.last()) {
        (true, Some(i)) => format!("<NextMarker>{}</NextMarker>", i.id),
        _ => String::new(),
    };
    let body = format!(
        "<?xml version=\"1.0\"?>\n<InvalidationList xmlns=\"{NS}\"><Marker>{}</Marker>{next}<MaxItems>{max}</MaxItems><IsTruncated>{truncated}</IsTruncated><Quantity>{}</Quantity><Items>{items}</Items></InvalidationList>",
        esc(&marker),
        page.len()
    );
    Outcome::Now(xml(StatusCode::OK, body))
}

fn created(i: &FakeInvalidation, d: &FakeDistribution) -> Response {
    let mut r = xml(StatusCode::CREATED, invalidation_xml(i));
    let loc = format!(
        "https://cloudfront.amazonaws.com/2020-05-31/distribution/{}/invalidation/{}",
        d.id, i.id
    );
    r.headers_mut()
        .insert(header::LOCATION, loc.parse().unwrap());
    r
}

fn create_invalidation(s: &mut State_, d: &FakeDistribution, body: &str) -> Outcome {
    if body.trim().is_empty() {
        return err(400, "MissingBody", "This operation requires a body.");
    }
    let paths = all_text(body, "Path");
    let quantity: Option<usize> = all_text(body, "Quantity")
        .first()
        .and_then(|q| q.trim().parse().ok());
    let reference = all_text(body, "CallerReference")
        .into_iter()
        .next()
        .unwrap_or_default();
    if reference.is_empty() {
        return err(400, "InvalidArgument", "CallerReference is required.");
    }
    if quantity != Some(paths.len()) {
        return err(
            400,
            "InconsistentQuantities",
            "The value of Quantity and the size of Items don't match.",
        );
    }
    // Idempotency before limits: a retry of an accepted batch must find it, not trip a quota.
    if let Some(existing) = s
        .invalidations
        .iter()
        .find(|i| i.distribution == d.id && i.reference == reference)
    {
        let (mut a, mut b) = (existing.paths.clone(), paths.clone());
        a.sort();
        b.sort();
        if a == b {
            return Outcome::Now(created(existing, d));
        }
        return err(
            409,
            "InvalidationBatchAlreadyExists",
            "The CallerReference you specified is already in use by another invalidation batch.",
        );
    }
    if let Some(t) = s.opts.throttle {
        let now = Instant::now();
        let since = s
            .refilled
            .map_or(0.0, |r| now.duration_since(r).as_secs_f64());
        s.tokens = (s.tokens + since * t.per_second).min(t.burst as f64);
        s.refilled = Some(now);
        if s.tokens < 1.0 {
            return err(400, "Throttling", "Rate exceeded");
        }
        s.tokens -= 1.0;
    }
    if paths.is_empty() {
        return err(
            400,
            "InvalidArgument",
            "Your request contains no invalidation paths.",
        );
    }
    if let Some((p, why)) = paths
        .iter()
        .find_map(|p| invalid_path(p, s.opts.tags).map(|w| (p, w)))
    {
        return err(
            400,
            "InvalidArgument",
            &format!("Your request contains one or more invalid invalidation paths: {p} ({why})."),
        );
    }
    if paths.len() > s.opts.max_paths_per_batch {
        return err(
            413,
            "BatchTooLarge",
            "Invalidation batch specified is too large.",
        );
    }
    let in_flight: Vec<&FakeInvalidation> = s
        .invalidations
        .iter()
        .filter(|i| i.distribution == d.id && !i.completed)
        .collect();
    let wild_now: usize = in_flight.iter().map(|i| i.wildcards()).sum();
    let paths_now: usize = in_flight
        .iter()
        .map(|i| i.paths.len() - i.wildcards())
        .sum();
    let wild_new = paths.iter().filter(|p| p.ends_with('*')).count();
    let paths_new = paths.len() - wild_new;
    if wild_now + wild_new > s.opts.max_wildcards_in_flight
        || paths_now + paths_new > s.opts.max_paths_in_flight
    {
        return err(
            400,
            "TooManyInvalidationsInProgress",
            "Processing your request would cause the maximum number of in-progress wildcard invalidations to be exceeded.",
        );
    }
    s.next_id += 1;
    let inv = FakeInvalidation {
        id: format!("I{:012}", s.next_id),
        distribution: d.id.clone(),
        reference,
        paths,
        completed: false,
        polls: 0,
        created: Instant::now(),
        created_at: SystemTime::now(),
    };
    let resp = created(&inv, d);
    s.invalidations.push(inv);
    if s.lose_creates > 0 {
        s.lose_creates -= 1;
        return Outcome::Later(resp, s.lose_for);
    }
    Outcome::Now(resp)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn xml_text_and_entities() {
        let body = "<InvalidationBatch><Paths><Quantity>2</Quantity><Items><Path>/a&amp;b</Path><Path>/x&#xA;&lt;</Path></Items></Paths><CallerReference>r&apos;1</CallerReference></InvalidationBatch>";
        assert_eq!(
            all_text(body, "Path"),
            vec!["/a&b".to_string(), "/x\n<".to_string()]
        );
        assert_eq!(all_text(body, "CallerReference"), vec!["r'1".to_string()]);
        assert_eq!(unesc(&esc("a<b>&\"'\u{1}")), "a<b>&\"'\u{1}");
    }

    #[test]
    fn path_rules() {
        assert_eq!(invalid_path("/a", false), None);
        assert_eq!(invalid_path("/a/*", false), None);
        assert!(invalid_path("a", false).is_some());
        assert!(invalid_path("/a/*/b", false).is_some());
        assert!(invalid_path("/a b", false).is_some());
        assert!(invalid_path("#tag", false).is_some());
        assert_eq!(invalid_path("#tag", true), None);
    }
}
