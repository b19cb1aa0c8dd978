//! The caching proxy: one [`Edge`] per listening node, a request handler that asks [`crate::policy`]
//! and [`crate::vary`] what to do, a store ([`crate::store`]), request collapsing and the purge API.
//!
//! Request flow for GET and HEAD:
//! - **hit**: the variant the request selects is fresh → served from memory (`X-Cache: HIT`), with
//!   `If-None-Match`/`If-Modified-Since` answered 304 and one `Range` answered 206;
//! - **stale within `stale-while-revalidate`** → served (`STALE`) and refreshed in the background;
//! - **stale otherwise** → revalidated with the stored validators (304 refreshes the entry:
//!   `REVALIDATED`); when the origin fails (no answer, 500/502/503/504) within `stale-if-error`, the
//!   stale entry is served (`STALE`);
//! - **miss** → fetched (`MISS`) and stored when [`crate::policy::storable`] says so.
//!
//! Fetches are collapsed per key: concurrent misses (or revalidations) of one variant make one origin
//! request in a task of its own (it finishes even when its client goes away) and the others wait for
//! it, at most `collapse_wait`, then go to the origin themselves. A response that cannot be stored
//! marks its URL as pass-through for a while (Varnish's hit-for-miss), so requests for an
//! uncacheable URL are never serialised behind each other.
//!
//! A purge or a ban also forgets the fetches in flight, and a fetch that was started before any hard
//! invalidation is served to its waiters but not stored: a response fetched before a purge can never
//! outlive it.

use std::collections::HashMap;
use std::net::{IpAddr, SocketAddr};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, SystemTime};

use bytes::{Bytes, BytesMut};
use http_body_util::{BodyExt, Either, Empty};
use hyper::body::Incoming;
use hyper::header::{self, HeaderMap, HeaderName, HeaderValue};
use hyper::{Method, Request, Response, StatusCode};
use hyper_util::client::legacy::Client;
use hyper_util::client::legacy::connect::HttpConnector;
use hyper_util::rt::TokioExecutor;
use tokio::sync::watch;

use crate::body::EdgeBody;
use crate::policy::{self, Decision, Directives, Entry, MS, RequestFacts};
use crate::store::{self, Store, Stored};
use crate::vary;

/// What the origin client sends: nothing (cache fills) or the client's body (pass-through).
type OutBody = Either<Empty<Bytes>, Incoming>;

/// An address range allowed to purge (the workspace's one CIDR type).
pub use staleguard_core::net::Cidr as Net;

/// The edge's clock (ms since the epoch): the system's, or one a test moves by hand.
#[derive(Debug, Clone, Default)]
pub enum Clock {
    #[default]
    System,
    Manual(Arc<AtomicU64>),
}

impl Clock {
    pub fn now_ms(&self) -> u64 {
        match self {
            Clock::System => SystemTime::now()
                .duration_since(SystemTime::UNIX_EPOCH)
                .map_or(0, |d| d.as_millis() as u64),
            Clock::Manual(t) => t.load(Ordering::SeqCst),
        }
    }
}

/// How an edge node behaves.
#[derive(Debug, Clone)]
pub struct EdgeOptions {
    /// The origin, `http://HOST:PORT` (a path prefix is not supported).
    pub origin: String,
    /// Bytes of responses kept at most.
    pub memory: u64,
    /// Largest body stored; larger ones are streamed through.
    pub max_object: u64,
    /// How long a request waits for another's fetch of the same object before fetching itself.
    pub collapse_wait: Duration,
    /// Connect timeout to the origin.
    pub connect_timeout: Duration,
    /// Time to the origin's response head.
    pub origin_timeout: Duration,
    /// Addresses allowed to PURGE and BAN.
    pub purgers: Vec<Net>,
    /// How long a URL whose response could not be stored skips collapsing.
    pub pass_ttl: Duration,
    /// `Via` pseudonym.
    pub name: String,
    /// Where "now" comes from.
    pub clock: Clock,
    /// Cache responses without an explicit lifetime for 10 % of their age (RFC 9111 §4.2.2, at most
    /// a day); off by default, as a CDN in front of a staleguard origin never needs it.
    pub heuristic: bool,
}

impl EdgeOptions {
    /// The `Via` entry: `1.1 <name>`.
    pub fn name_via(&self) -> String {
        format!("1.1 {}", self.name)
    }

    pub fn new(origin: impl Into<String>) -> EdgeOptions {
        EdgeOptions {
            origin: origin.into(),
            memory: 256 << 20,
            max_object: 32 << 20,
            collapse_wait: Duration::from_secs(10),
            connect_timeout: Duration::from_secs(5),
            origin_timeout: Duration::from_secs(30),
            purgers: Net::loopback(),
            pass_ttl: Duration::from_secs(30),
            name: "staleguard-edge".into(),
            clock: Clock::System,
            heuristic: false,
        }
    }
}

/// What a node did (the CLI prints them on shutdown; tests read them).
#[derive(Debug, Default)]
pub struct Counters {
    pub hits: AtomicU64,
    pub misses: AtomicU64,
    pub stale: AtomicU64,
    pub revalidated: AtomicU64,
    pub passes: AtomicU64,
    pub origin_requests: AtomicU64,
    pub origin_errors: AtomicU64,
    pub purges: AtomicU64,
}

/// What a fetch ended with, as its waiters see it.
#[derive(Clone)]
enum Shared {
    /// An object they may serve (stored, unless an invalidation raced the fetch).
    Object(Arc<Stored>, Cache),
    /// The response could not be stored: each waiter fetches for itself.
    NotStored,
    /// The origin failed (no answer or a 5xx): each waiter answers with its stale copy (within
    /// `stale-if-error`) or this status.
    Failed(StatusCode),
}

/// The `X-Cache` value.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Cache {
    Hit,
    Miss,
    Stale,
    Revalidated,
}

impl Cache {
    fn header(self) -> HeaderValue {
        HeaderValue::from_static(match self {
            Cache::Hit => "HIT",
            Cache::Miss => "MISS",
            Cache::Stale => "STALE",
            Cache::Revalidated => "REVALIDATED",
        })
    }
}

/// A fetch's result for the request that made it.
enum Fetched {
    Shared(Shared),
    /// Not stored: the origin's response, streamed to this one client.
    Own(Response<EdgeBody>),
}

/// The request facts a fetch needs (the request itself belongs to hyper).
#[derive(Clone)]
struct Ask {
    /// The primary key: Host (lower case), then path and query.
    key: String,
    /// Where the Host ends in `key`.
    host_len: usize,
    headers: HeaderMap,
    peer: IpAddr,
}

impl Ask {
    fn host(&self) -> &str {
        &self.key[..self.host_len]
    }

    fn path_and_query(&self) -> &str {
        &self.key[self.host_len..]
    }

    fn header(&self, name: &str) -> Option<String> {
        joined(&self.headers, name)
    }
}

/// One header's value, borrowed when it is a single line.
fn header_str<'a>(h: &'a HeaderMap, name: &str) -> Option<std::borrow::Cow<'a, str>> {
    let mut it = h.get_all(name).iter();
    let first = it.next()?;
    if it.next().is_none() {
        return first.to_str().ok().map(std::borrow::Cow::Borrowed);
    }
    joined(h, name).map(std::borrow::Cow::Owned)
}

fn joined(h: &HeaderMap, name: &str) -> Option<String> {
    let mut it = h.get_all(name).iter();
    let first = it.next()?;
    let mut s = String::from_utf8_lossy(first.as_bytes()).into_owned();
    for v in it {
        s.push_str(", ");
        s.push_str(&String::from_utf8_lossy(v.as_bytes()));
    }
    Some(s)
}

/// One edge node.
pub struct Edge {
    opts: EdgeOptions,
    origin_authority: String,
    store: Store,
    client: Client<HttpConnector, OutBody>,
    flights: Mutex<HashMap<String, watch::Receiver<Option<Shared>>>>,
    passes: moka::sync::Cache<String, ()>,
    /// Bumped by every hard invalidation (purge, ban, xkey purge).
    hard: AtomicU64,
    /// Bumped by every soft purge.
    soft: AtomicU64,
    /// `Via: 1.1 <name>`.
    via: HeaderValue,
    pub counters: Counters,
}

static X_CACHE: HeaderName = HeaderName::from_static("x-cache");

/// Hop-by-hop fields (RFC 9110 §7.6.1), never forwarded nor stored.
const HOP: [&str; 8] = [
    "connection",
    "keep-alive",
    "proxy-connection",
    "te",
    "trailer",
    "transfer-encoding",
    "upgrade",
    "proxy-authorization",
];

fn strip_hop_by_hop(h: &mut HeaderMap) {
    let named: Vec<String> = h
        .get_all(header::CONNECTION)
        .iter()
        .filter_map(|v| v.to_str().ok())
        .flat_map(|v| v.split(','))
        .map(|t| t.trim().to_ascii_lowercase())
        .filter(|t| !t.is_empty())
        .collect();
    for n in HOP.iter().copied().chain(named.iter().map(String::as_str)) {
        h.remove(n);
    }
}

/// Surrogate keys of a response: `xkey` and `Surrogate-Key` (space-separated), `Cache-Tag` (commas).
fn tags_of(h: &HeaderMap) -> Vec<String> {
    let mut out = Vec::new();
    for (name, sep) in [("xkey", ' '), ("surrogate-key", ' '), ("cache-tag", ',')] {
        for v in h.get_all(name) {
            if let Ok(v) = v.to_str() {
                out.extend(
                    v.split(|c: char| c == sep || c.is_whitespace())
                        .map(str::trim)
                        .filter(|t| !t.is_empty())
                        .map(str::to_string),
                );
            }
        }
    }
    out
}

fn secs_header(h: &HeaderMap, name: header::HeaderName) -> Option<u64> {
    h.get(name)?.to_str().ok()?.trim().parse().ok()
}

fn date_header(h: &HeaderMap, name: header::HeaderName) -> Option<Result<u64, ()>> {
    let v = h.get(name)?;
    Some(
        v.to_str()
            .ok()
            .and_then(|s| httpdate::parse_http_date(s.trim()).ok())
            .and_then(|t| t.duration_since(SystemTime::UNIX_EPOCH).ok())
            .map(|d| d.as_secs())
            .ok_or(()),
    )
}

/// The timing of a response received at `response_time` for a request sent at `request_time` (ms);
/// `None` when it has no explicit lifetime.
fn timing_of(h: &HeaderMap, request_time: u64, response_time: u64) -> (Directives, Option<Entry>) {
    let d = Directives::parse(
        h.get_all(header::CACHE_CONTROL)
            .iter()
            .filter_map(|v| v.to_str().ok()),
    );
    let date = date_header(h, header::DATE).and_then(Result::ok);
    let lifetime = d.lifetime(date, date_header(h, header::EXPIRES));
    let entry = lifetime.map(|l| Entry {
        directives: d.clone(),
        lifetime: l.saturating_mul(MS),
        request_time,
        response_time,
        date: date.map(|d| d.saturating_mul(MS)),
        age_header: secs_header(h, header::AGE).unwrap_or(0).saturating_mul(MS),
        invalidated: false,
    });
    (d, entry)
}

fn plain(status: StatusCode, text: impl Into<String>) -> Response<EdgeBody> {
    let mut r = Response::new(EdgeBody::text(text));
    *r.status_mut() = status;
    r.headers_mut().insert(
        header::CONTENT_TYPE,
        HeaderValue::from_static("text/plain; charset=utf-8"),
    );
    r
}

impl Edge {
    pub fn new(opts: EdgeOptions) -> Result<Edge, String> {
        let authority = opts
            .origin
            .trim_end_matches('/')
            .strip_prefix("http://")
            .ok_or_else(|| {
                format!(
                    "origin `{}` must be an http:// URL (the edge speaks plain HTTP/1.1 to its origin)",
                    opts.origin
                )
            })?
            .to_string();
        if authority.is_empty() || authority.contains('/') {
            return Err(format!(
                "origin `{}` must be http://HOST:PORT, without a path",
                opts.origin
            ));
        }
        let mut http = HttpConnector::new();
        http.set_nodelay(true);
        http.set_connect_timeout(Some(opts.connect_timeout));
        let client = Client::builder(TokioExecutor::new())
            .pool_idle_timeout(Duration::from_secs(30))
            .pool_max_idle_per_host(256)
            .build(http);
        Ok(Edge {
            store: Store::new(opts.memory),
            passes: moka::sync::Cache::builder()
                .max_capacity(100_000)
                .time_to_live(opts.pass_ttl)
                .build(),
            origin_authority: authority,
            client,
            flights: Mutex::new(HashMap::new()),
            hard: AtomicU64::new(0),
            via: HeaderValue::from_str(&opts.name_via()).map_err(|_| {
                format!(
                    "`{}` cannot be a Via pseudonym (visible ASCII only)",
                    opts.name
                )
            })?,
            soft: AtomicU64::new(0),
            counters: Counters::default(),
            opts,
        })
    }

    /// Objects and bytes held.
    pub fn usage(&self) -> (u64, u64) {
        self.store.usage()
    }

    /// Answers one request.
    pub async fn handle(
        self: &Arc<Self>,
        req: Request<Incoming>,
        peer: SocketAddr,
    ) -> Response<EdgeBody> {
        let method = req.method().clone();
        let mut resp = match method.as_str() {
            "PURGE" | "BAN" => self.invalidate(&req, peer),
            "GET" | "HEAD" => self.cached(req, peer).await,
            _ => self.pass_unsafe(req, peer).await,
        };
        let h = resp.headers_mut();
        match h.get(header::VIA).and_then(|v| v.to_str().ok()) {
            Some(old) => {
                if let Ok(v) = HeaderValue::from_str(&format!("{old}, {}", self.opts.name_via())) {
                    h.insert(header::VIA, v);
                }
            }
            None => {
                h.insert(header::VIA, self.via.clone());
            }
        }
        resp
    }

    /// The primary key of a request (Host, lower case, then path and query) and the Host's length.
    fn primary(&self, req: &Request<Incoming>) -> (String, usize) {
        let host = req
            .headers()
            .get(header::HOST)
            .and_then(|v| v.to_str().ok())
            .unwrap_or(&self.origin_authority);
        let pq = req.uri().path_and_query().map_or("/", |p| p.as_str());
        let mut key = String::with_capacity(host.len() + pq.len());
        key.push_str(host);
        key.make_ascii_lowercase();
        key.push_str(pq);
        (key, host.len())
    }

    fn ask(&self, req: &Request<Incoming>, peer: SocketAddr) -> Ask {
        let (key, host_len) = self.primary(req);
        self.ask_with(req, peer, key, host_len)
    }

    fn ask_with(
        &self,
        req: &Request<Incoming>,
        peer: SocketAddr,
        key: String,
        host_len: usize,
    ) -> Ask {
        Ask {
            key,
            host_len,
            headers: req.headers().clone(),
            peer: peer.ip(),
        }
    }

    async fn cached(
        self: &Arc<Self>,
        req: Request<Incoming>,
        peer: SocketAddr,
    ) -> Response<EdgeBody> {
        let head = req.method() == Method::HEAD;
        let (key, host_len) = self.primary(&req);
        let now = self.opts.clock.now_ms();
        let ranked = vary::ranked_codings(header_str(req.headers(), "accept-encoding").as_deref());
        let look = self
            .store
            .lookup(&key, |n| joined(req.headers(), n), &ranked);
        let found = look.found.map(|obj| {
            let decision = obj.timing().decide(now);
            (obj, decision)
        });
        // The hit path reads the request in place; the rest works on a copy of its facts.
        if let Some((obj, Decision::Fresh)) = &found {
            self.counters.hits.fetch_add(1, Ordering::Relaxed);
            return self.deliver(req.headers(), obj, Cache::Hit, now, head);
        }
        let ask = self.ask_with(&req, peer, key, host_len);
        drop(req);
        match found {
            Some((obj, Decision::StaleWhileRevalidate)) => {
                self.counters.stale.fetch_add(1, Ordering::Relaxed);
                self.refresh_in_background(&ask, &obj);
                return self.deliver(&ask.headers, &obj, Cache::Stale, now, head);
            }
            Some((obj, Decision::Revalidate { stale_if_error })) => {
                let flight = format!("{}\n{}", ask.key, obj.variant);
                let got = self
                    .fetch(&ask, flight, Some(obj.clone()), coding_asked(&obj))
                    .await;
                return self.answer(&ask, got, stale_if_error.then_some(&obj), head);
            }
            Some((_, Decision::Fresh)) | None => {}
        }
        let flight = match &look.variant {
            Some(v) => format!("{}\n{v}", ask.key),
            None => format!("{}\n* {}", ask.key, look.ask.join(",")),
        };
        let got = self.fetch(&ask, flight, None, look.ask).await;
        self.answer(&ask, got, None, head)
    }

    /// Turns a fetch's result into this request's response.
    fn answer(
        self: &Arc<Self>,
        ask: &Ask,
        got: Fetched,
        stale: Option<&Arc<Stored>>,
        head: bool,
    ) -> Response<EdgeBody> {
        let now = self.opts.clock.now_ms();
        match got {
            Fetched::Own(resp) => {
                let s = resp.status().as_u16();
                if let Some(obj) = stale
                    && matches!(s, 500 | 502 | 503 | 504)
                {
                    self.counters.stale.fetch_add(1, Ordering::Relaxed);
                    return self.deliver(&ask.headers, obj, Cache::Stale, now, head);
                }
                resp
            }
            Fetched::Shared(Shared::Object(obj, how)) => {
                match how {
                    Cache::Revalidated => self.counters.revalidated.fetch_add(1, Ordering::Relaxed),
                    _ => self.counters.misses.fetch_add(1, Ordering::Relaxed),
                };
                self.deliver(&ask.headers, &obj, how, now, head)
            }
            Fetched::Shared(Shared::Failed(status)) => {
                if let Some(obj) = stale {
                    self.counters.stale.fetch_add(1, Ordering::Relaxed);
                    return self.deliver(&ask.headers, obj, Cache::Stale, now, head);
                }
                plain(
                    status,
                    format!(
                        "the origin {} did not answer {} in time or failed\n",
                        self.opts.origin,
                        ask.path_and_query()
                    ),
                )
            }
            Fetched::Shared(Shared::NotStored) => {
                unreachable!("fetch() turns NotStored into a fetch of its own")
            }
        }
    }

    /// Fetches (or joins the fetch in flight for `flight`); `stale` is the entry being revalidated.
    async fn fetch(
        self: &Arc<Self>,
        ask: &Ask,
        mut flight: String,
        stale: Option<Arc<Stored>>,
        asked: Vec<&'static str>,
    ) -> Fetched {
        if self.passes.contains_key(&ask.key) {
            return self.fetch_alone(ask, stale, &asked).await;
        }
        for _ in 0..4 {
            let joined = {
                let mut f = self.flights.lock().expect("flights lock");
                match f.get(&flight) {
                    Some(rx) => Err(rx.clone()),
                    None => {
                        let (tx, rx) = watch::channel(None);
                        f.insert(flight.clone(), rx);
                        Ok(tx)
                    }
                }
            };
            match joined {
                Ok(tx) => {
                    // The leader: the fetch runs in a task of its own, so it completes (and its
                    // waiters get their answer) even if this client goes away.
                    let edge = self.clone();
                    let (ask2, flight2, asked2) = (ask.clone(), flight.clone(), asked.clone());
                    let task = tokio::spawn(async move {
                        let got = edge.fetch_and_store(&ask2, stale, &asked2).await;
                        let shared = match &got {
                            Fetched::Shared(s) => s.clone(),
                            Fetched::Own(_) => Shared::NotStored,
                        };
                        edge.forget_flight(&flight2, &tx);
                        let _ = tx.send(Some(shared));
                        got
                    });
                    return match task.await {
                        Ok(got) => got,
                        Err(e) => {
                            tracing::warn!(error = %e, url = %ask.path_and_query(), "a fetch task failed");
                            Fetched::Shared(Shared::Failed(StatusCode::BAD_GATEWAY))
                        }
                    };
                }
                Err(mut rx) => {
                    let waited =
                        tokio::time::timeout(self.opts.collapse_wait, rx.wait_for(Option::is_some))
                            .await;
                    let waited = waited.map(|r| r.map(|v| v.clone()));
                    match waited {
                        Ok(Ok(v)) => {
                            let shared = v.expect("waited for Some");
                            return match shared {
                                Shared::NotStored => self.fetch_alone(ask, stale, &asked).await,
                                Shared::Object(obj, how) => {
                                    // A waiter of a first miss may select another variant than
                                    // the one fetched (another value of a field the response
                                    // varies on): it joins (or leads) that variant's fetch.
                                    let fields = fields_of(&obj.headers);
                                    let mine =
                                        vary::variant_key(&fields, |n| ask.header(n), &obj.coding);
                                    let takes = !fields.iter().any(|f| f == "accept-encoding")
                                        || obj.coding == "identity"
                                        || vary::ranked_codings(
                                            ask.header("accept-encoding").as_deref(),
                                        )
                                        .contains(&obj.coding.as_str());
                                    if mine != obj.variant || !takes {
                                        flight = format!("{}\n{mine}", ask.key);
                                        continue;
                                    }
                                    Fetched::Shared(Shared::Object(obj, how))
                                }
                                s => Fetched::Shared(s),
                            };
                        }
                        // The leader's task ended without an answer (it panicked): try again.
                        Ok(Err(_)) => continue,
                        // Waited long enough: go to the origin alone.
                        Err(_) => return self.fetch_alone(ask, stale, &asked).await,
                    }
                }
            }
        }
        self.fetch_alone(ask, stale, &asked).await
    }

    fn forget_flight(&self, flight: &str, tx: &watch::Sender<Option<Shared>>) {
        let mut f = self.flights.lock().expect("flights lock");
        // Only if it is still ours (a purge may have cleared it and another fetch taken its place).
        if f.get(flight)
            .is_some_and(|rx| rx.same_channel(&tx.subscribe()))
        {
            f.remove(flight);
        }
    }

    async fn fetch_alone(
        self: &Arc<Self>,
        ask: &Ask,
        stale: Option<Arc<Stored>>,
        asked: &[&'static str],
    ) -> Fetched {
        match self.fetch_and_store(ask, stale, asked).await {
            Fetched::Shared(Shared::NotStored) => {
                unreachable!("fetch_and_store hands a not-stored response back as Own")
            }
            f => f,
        }
    }

    fn refresh_in_background(self: &Arc<Self>, ask: &Ask, obj: &Arc<Stored>) {
        let flight = format!("{}\n{}", ask.key, obj.variant);
        if self
            .flights
            .lock()
            .expect("flights lock")
            .contains_key(&flight)
        {
            return;
        }
        let (edge, ask, obj) = (self.clone(), ask.clone(), obj.clone());
        tokio::spawn(async move {
            let asked = coding_asked(&obj);
            let _ = edge.fetch(&ask, flight, Some(obj), asked).await;
        });
    }

    /// The origin request for `ask` (a cache fill: GET, the client's end-to-end headers without its
    /// own conditionals and range, `Accept-Encoding` asking for the codings `asked`, the stored
    /// validators when revalidating).
    fn origin_request(
        &self,
        ask: &Ask,
        stale: Option<&Stored>,
        asked: &[&str],
    ) -> Request<OutBody> {
        let mut h = ask.headers.clone();
        strip_hop_by_hop(&mut h);
        for n in [
            header::IF_NONE_MATCH,
            header::IF_MODIFIED_SINCE,
            header::IF_MATCH,
            header::IF_UNMODIFIED_SINCE,
            header::IF_RANGE,
            header::RANGE,
        ] {
            h.remove(n);
        }
        match vary::forwarded_accept_encoding(asked).and_then(|v| HeaderValue::from_str(&v).ok()) {
            Some(v) => {
                h.insert(header::ACCEPT_ENCODING, v);
            }
            None => {
                h.remove(header::ACCEPT_ENCODING);
            }
        }
        if let Some(s) = stale {
            if let Some(e) = s.etag() {
                h.insert(header::IF_NONE_MATCH, e.clone());
            }
            if let Some(lm) = s.last_modified() {
                h.insert(header::IF_MODIFIED_SINCE, lm.clone());
            }
        }
        forwarded_for(&mut h, ask.peer);
        let uri = format!("http://{}{}", self.origin_authority, ask.path_and_query());
        let mut r = Request::new(Either::Left(Empty::new()));
        *r.uri_mut() = uri.parse().unwrap_or_else(|_| {
            format!("http://{}/", self.origin_authority)
                .parse()
                .expect("valid")
        });
        *r.headers_mut() = h;
        if !r.headers().contains_key(header::HOST) {
            r.headers_mut().insert(
                header::HOST,
                HeaderValue::from_str(ask.host()).unwrap_or(HeaderValue::from_static("localhost")),
            );
        }
        r
    }

    async fn send(&self, req: Request<OutBody>) -> Result<Response<Incoming>, StatusCode> {
        self.counters
            .origin_requests
            .fetch_add(1, Ordering::Relaxed);
        match tokio::time::timeout(self.opts.origin_timeout, self.client.request(req)).await {
            Ok(Ok(r)) => Ok(r),
            Ok(Err(e)) => {
                self.counters.origin_errors.fetch_add(1, Ordering::Relaxed);
                tracing::warn!(origin = %self.opts.origin, error = %e, "origin request failed");
                Err(StatusCode::BAD_GATEWAY)
            }
            Err(_) => {
                self.counters.origin_errors.fetch_add(1, Ordering::Relaxed);
                tracing::warn!(origin = %self.opts.origin, timeout_secs = self.opts.origin_timeout.as_secs(), "origin did not answer in time");
                Err(StatusCode::GATEWAY_TIMEOUT)
            }
        }
    }

    /// One origin fetch for a cache fill, stored when allowed. A response that is not stored comes
    /// back as `Own` (streamed); a 5xx or no answer as `Failed` when a stale copy could stand in.
    async fn fetch_and_store(
        self: &Arc<Self>,
        ask: &Ask,
        stale: Option<Arc<Stored>>,
        asked: &[&'static str],
    ) -> Fetched {
        let generation = (
            self.hard.load(Ordering::SeqCst),
            self.soft.load(Ordering::SeqCst),
        );
        let request_time = self.opts.clock.now_ms();
        let resp = match self
            .send(self.origin_request(ask, stale.as_deref(), asked))
            .await
        {
            Ok(r) => r,
            Err(status) => return Fetched::Shared(Shared::Failed(status)),
        };
        let response_time = self.opts.clock.now_ms();
        let (mut parts, body) = resp.into_parts();
        strip_hop_by_hop(&mut parts.headers);

        // A 304 to our revalidation refreshes the stored entry.
        if parts.status == StatusCode::NOT_MODIFIED
            && let Some(old) = &stale
        {
            let new_tags = {
                let t = tags_of(&parts.headers);
                (!t.is_empty()).then_some(t)
            };
            let fresh = Arc::new(old.refreshed(&parts.headers, new_tags, |merged| {
                let (d, timing) = timing_of(merged, request_time, response_time);
                timing.unwrap_or(Entry {
                    directives: d,
                    lifetime: 0,
                    request_time,
                    response_time,
                    date: None,
                    age_header: 0,
                    invalidated: false,
                })
            }));
            if self.keep(generation, &fresh) {
                self.store
                    .insert(&ask.key, fields_of(&fresh.headers), fresh.clone(), asked);
            }
            return Fetched::Shared(Shared::Object(fresh, Cache::Revalidated));
        }
        if stale.is_some() && matches!(parts.status.as_u16(), 500 | 502 | 503 | 504) {
            // Keep the stale copy; the caller decides (stale-if-error) or streams this error.
            return Fetched::Own(self.pass_response(parts, body, Cache::Miss));
        }

        let (d, mut timing) = timing_of(&parts.headers, request_time, response_time);
        if timing.is_none() && self.opts.heuristic {
            let secs = |h| date_header(&parts.headers, h).and_then(Result::ok);
            timing = policy::heuristic_lifetime(
                parts.status.as_u16(),
                secs(header::DATE),
                secs(header::LAST_MODIFIED),
                response_time / MS,
            )
            .map(|l| Entry {
                directives: d.clone(),
                lifetime: l.saturating_mul(MS),
                request_time,
                response_time,
                date: secs(header::DATE).map(|d| d.saturating_mul(MS)),
                age_header: secs_header(&parts.headers, header::AGE)
                    .unwrap_or(0)
                    .saturating_mul(MS),
                invalidated: false,
            });
        }
        let fields = vary::vary_fields(
            parts
                .headers
                .get_all(header::VARY)
                .iter()
                .filter_map(|v| v.to_str().ok()),
        )
        .map(|f| with_coding_field(f, &parts.headers));
        let facts = RequestFacts {
            method_get_or_head: true,
            has_authorization: ask.headers.contains_key(header::AUTHORIZATION),
        };
        let too_big = parts
            .headers
            .get(header::CONTENT_LENGTH)
            .and_then(|v| v.to_str().ok()?.parse::<u64>().ok())
            .is_some_and(|n| n > self.opts.max_object);
        let storable = policy::storable(facts, parts.status.as_u16(), &d, timing.is_some())
            && fields.is_some()
            && !parts.headers.contains_key(header::SET_COOKIE)
            && !too_big;
        if let Some(old) = &stale {
            // The origin answered with something else: the old copy is no longer current.
            self.store.remove_variant(&ask.key, old);
        }
        let (Some(timing), Some(fields), true) = (timing, fields, storable) else {
            self.passes.insert(ask.key.clone(), ());
            return Fetched::Own(self.pass_response(parts, body, Cache::Miss));
        };
        // Read the body, up to the object cap; past it, stream the rest through.
        let mut body = body;
        let mut buf = BytesMut::new();
        loop {
            match body.frame().await {
                None => break,
                Some(Ok(frame)) => {
                    if let Ok(data) = frame.into_data() {
                        buf.extend_from_slice(&data);
                        if buf.len() as u64 > self.opts.max_object {
                            self.passes.insert(ask.key.clone(), ());
                            let mut r = Response::from_parts(
                                parts,
                                EdgeBody::Stream {
                                    prefix: Some(buf.freeze()),
                                    rest: body,
                                },
                            );
                            r.headers_mut()
                                .insert(X_CACHE.clone(), Cache::Miss.header());
                            self.counters.passes.fetch_add(1, Ordering::Relaxed);
                            return Fetched::Own(r);
                        }
                    }
                }
                Some(Err(e)) => {
                    tracing::warn!(url = %ask.path_and_query(), error = %e, "origin body failed");
                    self.counters.origin_errors.fetch_add(1, Ordering::Relaxed);
                    return Fetched::Shared(Shared::Failed(StatusCode::BAD_GATEWAY));
                }
            }
        }
        parts.headers.remove(header::CONTENT_LENGTH);
        parts.headers.remove(header::AGE);
        let variant = vary::variant_key(
            &fields,
            |n| ask.header(n),
            &store::coding_of(&parts.headers),
        );
        let tags = tags_of(&parts.headers);
        let obj = Arc::new(Stored::new(
            ask.host().to_string(),
            ask.path_and_query().to_string(),
            variant,
            parts.status,
            parts.headers,
            buf.freeze(),
            timing,
            tags,
        ));
        if self.keep(generation, &obj) {
            self.store.insert(&ask.key, fields, obj.clone(), asked);
            self.passes.invalidate(&ask.key);
        }
        Fetched::Shared(Shared::Object(obj, Cache::Miss))
    }

    /// Whether a fetch that began at `generation` may be stored: not after a hard invalidation
    /// (it may predate the purge); after a soft purge, stored as soft-purged.
    fn keep(&self, generation: (u64, u64), obj: &Arc<Stored>) -> bool {
        if self.hard.load(Ordering::SeqCst) != generation.0 {
            return false;
        }
        if self.soft.load(Ordering::SeqCst) != generation.1 {
            obj.soft_purge();
        }
        true
    }

    fn pass_response(
        &self,
        parts: hyper::http::response::Parts,
        body: Incoming,
        how: Cache,
    ) -> Response<EdgeBody> {
        self.counters.passes.fetch_add(1, Ordering::Relaxed);
        let mut r = Response::from_parts(
            parts,
            EdgeBody::Stream {
                prefix: None,
                rest: body,
            },
        );
        r.headers_mut().insert(X_CACHE.clone(), how.header());
        r
    }

    /// Anything but GET, HEAD, PURGE and BAN: straight to the origin, body streamed both ways; a
    /// successful unsafe method invalidates its URL (RFC 9111 §4.4).
    async fn pass_unsafe(
        self: &Arc<Self>,
        req: Request<Incoming>,
        peer: SocketAddr,
    ) -> Response<EdgeBody> {
        let ask = self.ask(&req, peer);
        let (parts, body) = req.into_parts();
        let mut h = parts.headers;
        strip_hop_by_hop(&mut h);
        forwarded_for(&mut h, ask.peer);
        let mut out = Request::new(Either::Right(body));
        *out.method_mut() = parts.method.clone();
        *out.headers_mut() = h;
        *out.uri_mut() =
            match format!("http://{}{}", self.origin_authority, ask.path_and_query()).parse() {
                Ok(u) => u,
                Err(_) => return plain(StatusCode::BAD_REQUEST, "bad request target\n"),
            };
        match self.send(out).await {
            Ok(resp) => {
                let unsafe_method = !matches!(parts.method, Method::OPTIONS | Method::TRACE);
                if unsafe_method && (resp.status().is_success() || resp.status().is_redirection()) {
                    self.store.purge_url(&ask.key);
                    self.hard.fetch_add(1, Ordering::SeqCst);
                }
                let (mut p, b) = resp.into_parts();
                strip_hop_by_hop(&mut p.headers);
                self.pass_response(p, b, Cache::Miss)
            }
            Err(status) => plain(status, format!("the origin {} failed\n", self.opts.origin)),
        }
    }

    /// A stored object as this request's response.
    fn deliver(
        &self,
        req: &HeaderMap,
        obj: &Stored,
        how: Cache,
        now: u64,
        head: bool,
    ) -> Response<EdgeBody> {
        let mut h = obj.headers.clone();
        let age = obj.timing.age(now) / MS;
        h.insert(header::AGE, HeaderValue::from(age));
        h.insert(X_CACHE.clone(), how.header());
        let status = obj.status;
        // Conditionals: If-None-Match (weak comparison), else If-Modified-Since.
        if status == StatusCode::OK {
            let not_modified = match (req.get(header::IF_NONE_MATCH), obj.etag()) {
                (Some(inm), Some(tag)) => {
                    staleguard_serve::conditional::none_match(inm.as_bytes(), tag.as_bytes())
                }
                (Some(_), None) => false,
                (None, _) => match (
                    req.get(header::IF_MODIFIED_SINCE)
                        .and_then(|v| v.to_str().ok()),
                    date_header(&obj.headers, header::LAST_MODIFIED).and_then(Result::ok),
                ) {
                    (Some(ims), Some(lm)) => staleguard_serve::conditional::not_modified_since(
                        ims,
                        SystemTime::UNIX_EPOCH + Duration::from_secs(lm),
                    ),
                    _ => false,
                },
            };
            if not_modified {
                for n in [header::CONTENT_LENGTH, header::CONTENT_RANGE] {
                    h.remove(n);
                }
                let mut r = Response::new(EdgeBody::empty());
                *r.status_mut() = StatusCode::NOT_MODIFIED;
                *r.headers_mut() = h;
                return r;
            }
            // One range of the stored representation.
            if let Some(range) = req.get(header::RANGE).and_then(|v| v.to_str().ok()) {
                let if_range_ok = match req.get(header::IF_RANGE).and_then(|v| v.to_str().ok()) {
                    None => true,
                    Some(ir) => staleguard_serve::conditional::if_range_holds(
                        ir,
                        obj.etag().and_then(|e| e.to_str().ok()).unwrap_or(""),
                        date_header(&obj.headers, header::LAST_MODIFIED)
                            .and_then(Result::ok)
                            .map(|s| SystemTime::UNIX_EPOCH + Duration::from_secs(s)),
                    ),
                };
                let len = obj.body.len() as u64;
                if if_range_ok {
                    use staleguard_serve::range::{RangeDecision, decide};
                    match decide(range, len) {
                        RangeDecision::Full => {}
                        RangeDecision::Partial { start, end } => {
                            h.insert(
                                header::CONTENT_RANGE,
                                HeaderValue::from_str(&format!("bytes {start}-{end}/{len}"))
                                    .expect("ascii"),
                            );
                            let body = if head {
                                EdgeBody::empty()
                            } else {
                                EdgeBody::full(obj.body.slice(start as usize..=end as usize))
                            };
                            let mut r = Response::new(body);
                            *r.status_mut() = StatusCode::PARTIAL_CONTENT;
                            *r.headers_mut() = h;
                            return r;
                        }
                        RangeDecision::Unsatisfiable => {
                            h.insert(
                                header::CONTENT_RANGE,
                                HeaderValue::from_str(&format!("bytes */{len}")).expect("ascii"),
                            );
                            let mut r = Response::new(EdgeBody::empty());
                            *r.status_mut() = StatusCode::RANGE_NOT_SATISFIABLE;
                            *r.headers_mut() = h;
                            return r;
                        }
                    }
                }
            }
        }
        let mut r = Response::new(EdgeBody::full(obj.body.clone()));
        *r.status_mut() = status;
        *r.headers_mut() = h;
        r
    }

    /// PURGE and BAN, the wire protocol of `scripts/peers/staleguard.vcl`.
    fn invalidate(&self, req: &Request<Incoming>, peer: SocketAddr) -> Response<EdgeBody> {
        if !self.opts.purgers.iter().any(|n| n.contains(peer.ip())) {
            tracing::warn!(peer = %peer.ip(), method = %req.method(), "refused an invalidation from an address not allowed to purge");
            return plain(
                StatusCode::FORBIDDEN,
                format!(
                    "Forbidden: {} may not purge this edge (allowed: --allow-purge)\n",
                    peer.ip()
                ),
            );
        }
        let ask = self.ask(req, peer);
        let header = |n: &str| {
            req.headers()
                .get(n)
                .and_then(|v| v.to_str().ok())
                .map(str::to_string)
        };
        let resp = if req.method().as_str() == "PURGE" {
            if let Some(keys) = header("xkey-purge") {
                let keys: Vec<&str> = keys.split_whitespace().collect();
                self.hard.fetch_add(1, Ordering::SeqCst);
                self.forget_flights();
                let n = self
                    .store
                    .purge_where(|o| o.tags.iter().any(|t| keys.contains(&t.as_str())));
                plain(StatusCode::OK, format!("Invalidated {n} objects\n"))
            } else if let Some(keys) = header("xkey-softpurge") {
                let keys: Vec<&str> = keys.split_whitespace().collect();
                self.soft.fetch_add(1, Ordering::SeqCst);
                self.forget_flights();
                let n = self
                    .store
                    .soft_purge_where(|o| o.tags.iter().any(|t| keys.contains(&t.as_str())));
                plain(StatusCode::OK, format!("Softpurged {n} objects\n"))
            } else {
                self.hard.fetch_add(1, Ordering::SeqCst);
                self.forget_flights();
                self.store.purge_url(&ask.key);
                plain(StatusCode::OK, format!("Purged {}\n", ask.path_and_query()))
            }
        } else {
            let Some(pattern) = header("x-ban-url") else {
                return plain(StatusCode::BAD_REQUEST, "Missing x-ban-url header\n");
            };
            let re = match regex::RegexBuilder::new(&pattern)
                .size_limit(1 << 20)
                .dfa_size_limit(1 << 20)
                .build()
            {
                Ok(re) => re,
                Err(e) => return plain(StatusCode::BAD_REQUEST, format!("Bad ban: {e}\n")),
            };
            self.hard.fetch_add(1, Ordering::SeqCst);
            self.forget_flights();
            let host = ask.host().to_string();
            let n = self
                .store
                .purge_where(|o| o.host == host && re.is_match(&o.url));
            tracing::debug!(pattern, n, "ban");
            plain(StatusCode::OK, "Ban added\n")
        };
        self.counters.purges.fetch_add(1, Ordering::Relaxed);
        resp
    }

    fn forget_flights(&self) {
        self.flights.lock().expect("flights lock").clear();
    }
}

/// The variant fields of stored headers: `Vary`'s, and `Accept-Encoding` for an encoded body.
fn fields_of(h: &HeaderMap) -> Vec<String> {
    let f = vary::vary_fields(
        h.get_all(header::VARY)
            .iter()
            .filter_map(|v| v.to_str().ok()),
    )
    .unwrap_or_default();
    with_coding_field(f, h)
}

/// An encoded body varies on `Accept-Encoding` whether or not the origin said so: a client that does
/// not take brotli never gets a brotli body.
fn with_coding_field(mut fields: Vec<String>, h: &HeaderMap) -> Vec<String> {
    if h.contains_key(header::CONTENT_ENCODING)
        && store::coding_of(h) != "identity"
        && !fields.iter().any(|f| f == "accept-encoding")
    {
        fields.push("accept-encoding".into());
    }
    fields
}

/// What to ask the origin for when revalidating `obj`: its own coding.
fn coding_asked(obj: &Stored) -> Vec<&'static str> {
    vary::CODINGS
        .iter()
        .copied()
        .filter(|c| *c == obj.coding)
        .collect()
}

fn forwarded_for(h: &mut HeaderMap, peer: IpAddr) {
    let xff = match h.get("x-forwarded-for").and_then(|v| v.to_str().ok()) {
        Some(old) => format!("{old}, {peer}"),
        None => peer.to_string(),
    };
    if let Ok(v) = HeaderValue::from_str(&xff) {
        h.insert(HeaderName::from_static("x-forwarded-for"), v);
    }
}
