//! Proving a deploy reached the users: fetch URLs through one or more CDN bases (each edge node, or the
//! public domain) and compare what they serve with what was deployed — the decoded bytes' blake3 or
//! sha256, a version endpoint's `version`, or a smoke test's status and body. A check that fails is
//! tried again with backoff until it passes or the deadline passes, because edges converge over seconds
//! after a purge.
//!
//! A CDN caches one variant per `Accept-Encoding` (`Vary`), and a purge may reach one variant and not
//! another: an edge can serve fresh identity bytes to `curl` while browsers still get a stale brotli
//! variant. So every check that reads the body is made once per [`VerifyOptions::encodings`] value
//! (by default what browsers send, then `identity` as download tools send), and the body is decoded
//! before it is compared.
//!
//! ```no_run
//! # use std::time::Duration;
//! # use staleguard_check::verify::{self, Expect, Target, VerifyOptions};
//! # async fn f() {
//! let deadline = tokio::time::Instant::now() + Duration::from_secs(120);
//! let opts = VerifyOptions::new(vec!["https://www.example.com".into()], deadline);
//! let targets = vec![Target::new("/index.html", Expect::Blake3("1a2b…".into()))];
//! let report = verify::verify(&targets, &opts).await;
//! for c in report.stale_checks() {
//!     eprintln!(
//!         "{}{} (Accept-Encoding: {}): expected {}, got {:?}",
//!         c.base, c.path, c.encoding, c.expected, c.seen.got
//!     );
//! }
//! # }
//! ```
//!
//! Invariants:
//! - nothing is added to bust caches (no `Cache-Control: no-cache`, no query string): the check sees
//!   what a user sees;
//! - a check that reads the body (hash, version, `contains`) is made once per `encodings` value, which
//!   replaces any `Accept-Encoding` among the extra headers (an empty value sends none); a status-only
//!   smoke test is made once, with the first value;
//! - the body is decoded (`Content-Encoding` `br`, `gzip`/`x-gzip`, `deflate` with or without its zlib
//!   wrapper, `zstd`, `identity` or none) and the decoded bytes are hashed, searched or parsed; a
//!   coding the request did not offer, an unknown one, stacked ones (`gzip, br`) and a corrupt encoded
//!   body fail the check with a message saying so;
//! - no redirect is followed;
//! - bodies are decoded and hashed while streaming, never buffered whole, and cut at `max_body`
//!   (default [`MAX_BODY`]) bytes, encoded or decoded: a decompression bomb fails the check;
//! - at most `concurrency` requests are in flight at any time (a check waiting to retry holds no slot);
//! - every check gets one attempt even when the deadline already passed; no retry starts after it.
//!   An attempt that started before the deadline may end up to `request_timeout` after it.

use std::fmt::Write as _;
use std::net::{IpAddr, SocketAddr};
use std::sync::Arc;
use std::time::Duration;

use reqwest::header::{self, HeaderMap, HeaderName, HeaderValue};
use reqwest::{Client, Response, Url};
use serde::Serialize;
use sha2::Digest as _;
use staleguard_core::backoff::{Backoff, Jitter};
use staleguard_core::event::{Event, Observer, emit};
use tokio::sync::Semaphore;
use tokio::task::JoinSet;
use tokio::time::Instant;
use tracing::Instrument;

use crate::client::{client_builder, header_text, redact_url, transport_error};
use crate::decode::{Decoding, coding_of};

/// The largest body hashed or searched, encoded or decoded (the default [`VerifyOptions::max_body`]): a
/// larger one fails the check.
pub const MAX_BODY: u64 = 1 << 30;
/// The largest version-endpoint body read.
const MAX_VERSION_BODY: u64 = 1 << 20;

/// What a URL must serve.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Expect {
    /// The blake3 (lowercase or uppercase hex) of the decoded bytes (the file as deployed); status 200.
    Blake3(String),
    /// The sha256 (hex) of the decoded bytes (download aliases checked against `metadata.json`);
    /// status 200.
    Sha256(String),
    /// The JSON body's `"version"` field equals this (a version endpoint); status 200.
    Version(String),
    /// A smoke test: the status (any 2xx when `None`) and a substring of the body, if given.
    Assert {
        status: Option<u16>,
        contains: Option<String>,
    },
}

impl Expect {
    /// The expectation for people and `--json`: `blake3 1a2b…`, `version abc`,
    /// `status 200 + contains "x"`.
    pub fn describe(&self) -> String {
        match self {
            Expect::Blake3(h) => format!("blake3 {}", h.to_ascii_lowercase()),
            Expect::Sha256(h) => format!("sha256 {}", h.to_ascii_lowercase()),
            Expect::Version(v) => format!("version {v}"),
            Expect::Assert { status, contains } => {
                let mut s = match status {
                    Some(s) => format!("status {s}"),
                    None => "status 2xx".to_string(),
                };
                if let Some(c) = contains {
                    let _ = write!(s, " + contains {c:?}");
                }
                s
            }
        }
    }

    /// Whether the check reads the body (and so is made once per Accept-Encoding).
    fn reads_body(&self) -> bool {
        !matches!(self, Expect::Assert { contains: None, .. })
    }
}

/// One URL path to check through every base.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Target {
    /// The URL path, starting with `/`, already percent-encoded as it goes on the wire (a query string
    /// may follow).
    pub path: String,
    pub expect: Expect,
    /// What the path stands for (the store key), for reports.
    pub label: Option<String>,
}

impl Target {
    pub fn new(path: impl Into<String>, expect: Expect) -> Target {
        Target {
            path: path.into(),
            expect,
            label: None,
        }
    }

    pub fn with_label(mut self, label: impl Into<String>) -> Target {
        self.label = Some(label.into());
        self
    }
}

/// How [`verify`] fetches. [`VerifyOptions::new`] fills the defaults.
#[derive(Clone)]
pub struct VerifyOptions {
    /// CDN base URLs (`http://127.0.0.1:6081`, `https://www.example.com`); a path in a base is kept
    /// (`https://cdn.example.com/site` + `/a.css`).
    pub bases: Vec<String>,
    /// No retry starts after this instant.
    pub deadline: Instant,
    /// Requests in flight at most (default 8; 0 counts as 1).
    pub concurrency: usize,
    /// A `Host` override, for hitting an edge by IP. With an `https://IP` base the request goes to that
    /// IP with this name in the URL, so TLS (SNI, certificate) uses the name too.
    pub host: Option<String>,
    /// The first pause before a retry (default 250 ms); it doubles per attempt, plus up to 50% jitter.
    pub first_retry: Duration,
    /// The largest pause before a retry (default 5 s).
    pub max_retry: Duration,
    /// One request at most, connection and body included (default 15 s).
    pub request_timeout: Duration,
    /// Extra request headers (a staging site's `Authorization`); an `Accept-Encoding` here is replaced
    /// by each of `encodings`. Values are redacted in `Debug`.
    pub headers: Vec<(String, String)>,
    /// The `Accept-Encoding` values each target is checked with, one check each (default
    /// [`default_encodings`]: what browsers send, then `identity`); duplicates count once, an empty
    /// string sends no `Accept-Encoding`, an empty list counts as `[""]`. A status-only smoke test is
    /// made once, with the first.
    pub encodings: Vec<String>,
    /// The largest body read, encoded or decoded, in bytes (default [`MAX_BODY`]); a larger one fails
    /// the check. A version endpoint's body is cut at 1 MiB at most.
    pub max_body: u64,
    /// Told of every re-check ([`Event::Rechecking`]).
    pub observer: Option<Observer>,
}

impl VerifyOptions {
    pub fn new(bases: Vec<String>, deadline: Instant) -> VerifyOptions {
        VerifyOptions {
            bases,
            deadline,
            concurrency: 8,
            host: None,
            first_retry: Duration::from_millis(250),
            max_retry: Duration::from_secs(5),
            request_timeout: Duration::from_secs(15),
            headers: Vec::new(),
            encodings: default_encodings(),
            max_body: MAX_BODY,
            observer: None,
        }
    }

    pub fn with_observer(mut self, observer: Observer) -> VerifyOptions {
        self.observer = Some(observer);
        self
    }

    pub fn with_encodings(mut self, encodings: Vec<String>) -> VerifyOptions {
        self.encodings = encodings;
        self
    }

    pub fn with_max_body(mut self, bytes: u64) -> VerifyOptions {
        self.max_body = bytes;
        self
    }

    pub fn with_concurrency(mut self, n: usize) -> VerifyOptions {
        self.concurrency = n;
        self
    }

    pub fn with_host(mut self, host: impl Into<String>) -> VerifyOptions {
        self.host = Some(host.into());
        self
    }

    pub fn with_retry(mut self, first: Duration, max: Duration) -> VerifyOptions {
        self.first_retry = first;
        self.max_retry = max;
        self
    }

    pub fn with_request_timeout(mut self, timeout: Duration) -> VerifyOptions {
        self.request_timeout = timeout;
        self
    }

    pub fn with_header(
        mut self,
        name: impl Into<String>,
        value: impl Into<String>,
    ) -> VerifyOptions {
        self.headers.push((name.into(), value.into()));
        self
    }
}

impl std::fmt::Debug for VerifyOptions {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("VerifyOptions")
            .field("bases", &redacted_bases(&self.bases))
            .field("deadline", &self.deadline)
            .field("concurrency", &self.concurrency)
            .field("host", &self.host)
            .field("first_retry", &self.first_retry)
            .field("max_retry", &self.max_retry)
            .field("request_timeout", &self.request_timeout)
            .field("headers", &redacted_headers(&self.headers))
            .field("encodings", &self.encodings)
            .field("max_body", &self.max_body)
            .field("observer", &self.observer.is_some())
            .finish()
    }
}

/// The default [`VerifyOptions::encodings`]: what current browsers send (Chrome, Edge, Firefox), then
/// `identity` (what `curl`, `wget` and download tools get).
pub fn default_encodings() -> Vec<String> {
    vec!["gzip, deflate, br, zstd".into(), "identity".into()]
}

/// What the last attempt of a check saw.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize)]
pub struct Seen {
    pub status: Option<u16>,
    pub age: Option<String>,
    /// The cache status headers that exist: `X-Cache`, `CF-Cache-Status`, `X-Cache-Status`,
    /// `X-Served-By` (Fastly). One of them: its value (`HIT`); several: `name: value` joined by `; `.
    pub x_cache: Option<String>,
    pub cache_control: Option<String>,
    pub etag: Option<String>,
    /// The `Content-Encoding` served (`br`, `gzip`), as sent; `None` when there was none.
    pub content_encoding: Option<String>,
    /// The hash (lowercase hex) or version seen; for a smoke test, `status N` and whether the body held
    /// the text.
    pub got: Option<String>,
}

/// One (base, target, encoding) check.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct UrlCheck {
    /// The base as given, any password replaced by `…` (`http://user:…@host`).
    pub base: String,
    pub path: String,
    /// The `Accept-Encoding` sent (empty: none).
    pub encoding: String,
    pub label: Option<String>,
    /// [`Expect::describe`].
    pub expected: String,
    pub ok: bool,
    /// Requests made (0 when the check could not be sent at all: a bad base or header).
    pub attempts: u32,
    /// Of the last attempt.
    pub seen: Seen,
    /// Why the last attempt failed when it was not simply other content (compare `expected` and
    /// `seen.got` then): no answer, an unexpected status, a `Content-Encoding` not offered or not
    /// decoded, a corrupt encoded body, a body too large (encoded or decoded).
    pub error: Option<String>,
    /// From the first attempt to the last answer.
    pub seconds: f64,
}

/// The outcome of [`verify`].
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct VerifyReport {
    /// Sorted by base, then path, then encoding.
    pub checks: Vec<UrlCheck>,
    /// Every check passed (true when there was nothing to check).
    pub ok: bool,
    /// Checks that did not pass, for any reason.
    pub stale: usize,
    pub seconds: f64,
}

impl VerifyReport {
    /// The checks that did not pass.
    pub fn stale_checks(&self) -> impl Iterator<Item = &UrlCheck> {
        self.checks.iter().filter(|c| !c.ok)
    }
}

/// Checks every (base × target × encoding) — a status-only smoke test once per (base × target) — at
/// most `opts.concurrency` requests at a time, retrying failures with backoff until they pass or
/// `opts.deadline` passes. Never fails as a whole: problems are in the report.
pub async fn verify(targets: &[Target], opts: &VerifyOptions) -> VerifyReport {
    let started = Instant::now();
    let encodings = encodings_of(&opts.encodings);
    let span = tracing::info_span!(
        "cdn.verify",
        bases = opts.bases.len(),
        targets = targets.len(),
        encodings = encodings.len(),
        concurrency = opts.concurrency
    );
    async move {
        let headers = request_headers(&opts.headers);
        let semaphore = Arc::new(Semaphore::new(opts.concurrency.max(1)));
        let mut jobs = Vec::new();
        for (shown, endpoint) in endpoints(
            &opts.bases,
            &headers,
            opts.host.as_deref(),
            opts.request_timeout,
        ) {
            for target in targets {
                let encodings = if target.expect.reads_body() {
                    &encodings[..]
                } else {
                    &encodings[..1]
                };
                for encoding in encodings {
                    jobs.push((
                        shown.clone(),
                        endpoint.clone(),
                        target.clone(),
                        encoding.clone(),
                    ));
                }
            }
        }
        let headers = Arc::new(headers.unwrap_or_default());
        let mut checks: Vec<Option<UrlCheck>> = vec![None; jobs.len()];
        let mut set = JoinSet::new();
        let mut placeholders = Vec::with_capacity(jobs.len());
        for (i, (base, endpoint, target, encoding)) in jobs.into_iter().enumerate() {
            placeholders.push(blank(&base, &target, &encoding));
            let job = Job {
                base,
                target,
                encoding,
                headers: headers.clone(),
                semaphore: semaphore.clone(),
                deadline: opts.deadline,
                first_retry: opts.first_retry,
                max_retry: opts.max_retry,
                max_body: opts.max_body,
                observer: opts.observer.clone(),
            };
            set.spawn(
                async move {
                    let check = match endpoint {
                        Ok(ep) => job.run(&ep).await,
                        Err(e) => UrlCheck {
                            error: Some(e),
                            ..blank(&job.base, &job.target, &job.encoding)
                        },
                    };
                    (i, check)
                }
                .in_current_span(),
            );
        }
        while let Some(joined) = set.join_next().await {
            match joined {
                Ok((i, check)) => checks[i] = Some(check),
                Err(e) => tracing::error!(error = %e, "a verify task ended without a result"),
            }
        }
        let mut checks: Vec<UrlCheck> = checks
            .into_iter()
            .zip(placeholders)
            .map(|(c, p)| {
                c.unwrap_or(UrlCheck {
                    error: Some("internal error: the check ended without a result".into()),
                    ..p
                })
            })
            .collect();
        checks
            .sort_by(|a, b| (&a.base, &a.path, &a.encoding).cmp(&(&b.base, &b.path, &b.encoding)));
        let stale = checks.iter().filter(|c| !c.ok).count();
        tracing::info!(checks = checks.len(), stale, "verified");
        VerifyReport {
            ok: stale == 0,
            stale,
            checks,
            seconds: started.elapsed().as_secs_f64(),
        }
    }
    .instrument(span)
    .await
}

/// The encodings to check with: duplicates once, in order; none counts as `[""]` (no header).
pub(crate) fn encodings_of(encodings: &[String]) -> Vec<String> {
    let mut out: Vec<String> = Vec::with_capacity(encodings.len().max(1));
    for e in encodings {
        if !out.contains(e) {
            out.push(e.clone());
        }
    }
    if out.is_empty() {
        out.push(String::new());
    }
    out
}

fn blank(base: &str, target: &Target, encoding: &str) -> UrlCheck {
    UrlCheck {
        base: base.to_string(),
        path: target.path.clone(),
        encoding: encoding.to_string(),
        label: target.label.clone(),
        expected: target.expect.describe(),
        ok: false,
        attempts: 0,
        seen: Seen::default(),
        error: None,
        seconds: 0.0,
    }
}

/// One (base, target, encoding) check with its retry loop.
struct Job {
    base: String,
    target: Target,
    /// The `Accept-Encoding` sent; empty: none.
    encoding: String,
    /// Without `Accept-Encoding`.
    headers: Arc<HeaderMap>,
    semaphore: Arc<Semaphore>,
    deadline: Instant,
    first_retry: Duration,
    max_retry: Duration,
    max_body: u64,
    observer: Option<Observer>,
}

/// How one attempt ended.
enum Outcome {
    Pass,
    /// Other content than expected: `seen.got` says what.
    Stale,
    /// Another failure (no answer, an unexpected status, …), retried like other content.
    Failed(String),
}

impl Job {
    async fn run(self, ep: &Endpoint) -> UrlCheck {
        let mut check = blank(&self.base, &self.target, &self.encoding);
        if let Err(e) = validate(&self.target) {
            check.error = Some(e);
            return check;
        }
        let accept = if self.encoding.is_empty() {
            None
        } else {
            match HeaderValue::from_str(&self.encoding) {
                Ok(v) => Some(v),
                Err(_) => {
                    check.error = Some(format!(
                        "the Accept-Encoding `{}` is not a header value; nothing was requested",
                        self.encoding.escape_debug()
                    ));
                    return check;
                }
            }
        };
        let url = match ep.url(&self.target.path) {
            Ok(u) => u,
            Err(e) => {
                check.error = Some(e);
                return check;
            }
        };
        let started = Instant::now();
        let schedule = Backoff::new(self.first_retry, 2.0, self.max_retry.max(self.first_retry))
            .with_jitter(Jitter::Extra(0.5));
        loop {
            let outcome = {
                let Ok(_permit) = self.semaphore.acquire().await else {
                    check.error = Some("internal error: the request limiter closed".into());
                    return check;
                };
                check.attempts += 1;
                let (seen, outcome) = self.attempt(ep, &url, accept.as_ref()).await;
                check.seen = seen;
                outcome
            };
            check.seconds = started.elapsed().as_secs_f64();
            match outcome {
                Outcome::Pass => {
                    check.ok = true;
                    check.error = None;
                    if check.attempts > 1 {
                        tracing::info!(base = %self.base, path = %self.target.path, encoding = %self.encoding, attempts = check.attempts, "fresh after retries");
                    }
                    return check;
                }
                Outcome::Stale => check.error = None,
                Outcome::Failed(e) => check.error = Some(e),
            }
            let left = self.deadline.saturating_duration_since(Instant::now());
            let Some(wait) = schedule.until(check.attempts, rand::random(), left) else {
                tracing::info!(base = %self.base, path = %self.target.path, encoding = %self.encoding, attempts = check.attempts, got = ?check.seen.got, error = ?check.error, "still not as deployed at the deadline");
                return check;
            };
            tracing::debug!(base = %self.base, path = %self.target.path, encoding = %self.encoding, attempt = check.attempts, got = ?check.seen.got, error = ?check.error, "not yet as deployed; retrying");
            emit(
                self.observer.as_ref(),
                Event::Rechecking {
                    base: self.base.clone(),
                    path: self.target.path.clone(),
                    encoding: self.encoding.clone(),
                    attempt: check.attempts,
                    got: check.seen.got.clone(),
                    error: check.error.clone(),
                    after: wait,
                },
            );
            tokio::time::sleep(wait).await;
        }
    }
}

/// Refuses expectations no answer can meet.
fn validate(t: &Target) -> Result<(), String> {
    let hex = |h: &str, len: usize, name: &str| {
        if h.len() == len && h.bytes().all(|b| b.is_ascii_hexdigit()) {
            Ok(())
        } else {
            Err(format!(
                "the expected {name} `{h}` is not {len} hex digits; nothing was requested"
            ))
        }
    };
    match &t.expect {
        Expect::Blake3(h) => hex(h, 64, "blake3")?,
        Expect::Sha256(h) => hex(h, 64, "sha256")?,
        Expect::Version(_) | Expect::Assert { .. } => {}
    }
    if !t.path.starts_with('/') {
        return Err(format!(
            "the path `{}` does not start with `/`; nothing was requested",
            t.path
        ));
    }
    Ok(())
}

impl Job {
    /// One request and its verdict.
    async fn attempt(
        &self,
        ep: &Endpoint,
        url: &Url,
        accept: Option<&HeaderValue>,
    ) -> (Seen, Outcome) {
        let expect = &self.target.expect;
        let mut req = ep.client.get(url.clone()).headers((*self.headers).clone());
        if let Some(a) = accept {
            req = req.header(header::ACCEPT_ENCODING, a.clone());
        }
        if let Some(h) = &ep.host_header {
            req = req.header(header::HOST, h.clone());
        }
        let mut resp = match req.send().await {
            Ok(r) => r,
            Err(e) => return (Seen::default(), Outcome::Failed(transport_error(&e))),
        };
        let mut seen = seen_of(&resp);
        let status = resp.status().as_u16();
        if let Expect::Assert {
            status: want,
            contains,
        } = expect
        {
            let status_ok = match want {
                Some(w) => status == *w,
                None => resp.status().is_success(),
            };
            seen.got = Some(format!("status {status}"));
            let Some(needle) = contains else {
                return (
                    seen,
                    if status_ok {
                        Outcome::Pass
                    } else {
                        Outcome::Stale
                    },
                );
            };
            let mut finder = Finder::new(needle.as_bytes());
            if let Err(e) = self
                .read_decoded(&mut resp, self.max_body, |c| finder.feed(c))
                .await
            {
                return (seen, Outcome::Failed(e));
            }
            let found = finder.found;
            seen.got = Some(format!(
                "status {status}, body {} {needle:?}",
                if found { "contains" } else { "without" }
            ));
            return (
                seen,
                if status_ok && found {
                    Outcome::Pass
                } else {
                    Outcome::Stale
                },
            );
        }
        if status != 200 {
            let mut e = format!("status {status}");
            if resp.status().is_redirection() {
                let to = resp
                    .headers()
                    .get(header::LOCATION)
                    .and_then(|v| v.to_str().ok())
                    .unwrap_or("");
                let _ = write!(e, " (a redirect to `{to}`; redirects are not followed)");
            }
            return (seen, Outcome::Failed(e));
        }
        let (got, want) = match expect {
            Expect::Blake3(want) => {
                let mut h = blake3::Hasher::new();
                let read = self.read_decoded(&mut resp, self.max_body, |c| {
                    h.update(c);
                });
                if let Err(e) = read.await {
                    return (seen, Outcome::Failed(e));
                }
                (h.finalize().to_hex().to_string(), want)
            }
            Expect::Sha256(want) => {
                let mut h = sha2::Sha256::new();
                let read = self.read_decoded(&mut resp, self.max_body, |c| h.update(c));
                if let Err(e) = read.await {
                    return (seen, Outcome::Failed(e));
                }
                (hex(&h.finalize()), want)
            }
            Expect::Version(want) => {
                let mut body = Vec::new();
                let limit = MAX_VERSION_BODY.min(self.max_body);
                let read = self.read_decoded(&mut resp, limit, |c| body.extend_from_slice(c));
                if let Err(e) = read.await {
                    return (seen, Outcome::Failed(e));
                }
                let v = match serde_json::from_slice::<serde_json::Value>(&body) {
                    Ok(v) => v,
                    Err(e) => {
                        return (seen, Outcome::Failed(format!("the body is not JSON ({e})")));
                    }
                };
                match v.get("version") {
                    Some(serde_json::Value::String(s)) => (s.clone(), want),
                    Some(other) => (other.to_string(), want),
                    None => {
                        return (
                            seen,
                            Outcome::Failed("the JSON body has no `version` field".into()),
                        );
                    }
                }
            }
            Expect::Assert { .. } => unreachable!("handled above"),
        };
        let pass = if matches!(expect, Expect::Version(_)) {
            got == *want
        } else {
            got.eq_ignore_ascii_case(want)
        };
        seen.got = Some(got);
        (seen, if pass { Outcome::Pass } else { Outcome::Stale })
    }

    /// Feeds the decoded body to `each` chunk by chunk, failing past `limit` bytes, encoded or decoded,
    /// and on a `Content-Encoding` this request did not offer or that is not decoded.
    async fn read_decoded(
        &self,
        resp: &mut Response,
        limit: u64,
        each: impl FnMut(&[u8]),
    ) -> Result<(), String> {
        let coding = coding_of(resp.headers(), &self.encoding)?;
        let mut decoder = Decoding::new(coding, limit, each)?;
        stream(resp, limit, |c| decoder.write(c)).await?;
        decoder.finish()
    }
}

fn hex(bytes: &[u8]) -> String {
    let mut s = String::with_capacity(bytes.len() * 2);
    for b in bytes {
        let _ = write!(s, "{b:02x}");
    }
    s
}

/// Feeds the body as sent (encoded) to `each` chunk by chunk, failing past `limit` bytes.
async fn stream(
    resp: &mut Response,
    limit: u64,
    mut each: impl FnMut(&[u8]) -> Result<(), String>,
) -> Result<u64, String> {
    if let Some(len) = resp.content_length()
        && len > limit
    {
        return Err(format!(
            "the body is {len} bytes, more than the {limit} checked"
        ));
    }
    let mut total = 0u64;
    loop {
        match resp.chunk().await {
            Ok(Some(c)) => {
                total += c.len() as u64;
                if total > limit {
                    return Err(format!("the body is more than the {limit} bytes checked"));
                }
                each(&c)?;
            }
            Ok(None) => return Ok(total),
            Err(e) => {
                return Err(format!(
                    "the body broke off after {total} bytes: {}",
                    transport_error(&e)
                ));
            }
        }
    }
}

/// A substring search over chunks: keeps the last `needle.len() - 1` bytes so a match may straddle
/// chunks, and nothing more.
struct Finder<'a> {
    needle: &'a [u8],
    tail: Vec<u8>,
    found: bool,
}

impl<'a> Finder<'a> {
    fn new(needle: &'a [u8]) -> Finder<'a> {
        Finder {
            needle,
            tail: Vec::new(),
            found: needle.is_empty(),
        }
    }

    fn feed(&mut self, chunk: &[u8]) {
        if self.found {
            return;
        }
        let n = self.needle.len();
        // the straddling part: the tail plus the chunk's first n - 1 bytes
        let head = &chunk[..chunk.len().min(n - 1)];
        self.tail.extend_from_slice(head);
        if self.tail.windows(n).any(|w| w == self.needle)
            || chunk.windows(n).any(|w| w == self.needle)
        {
            self.found = true;
            self.tail = Vec::new();
            return;
        }
        if chunk.len() >= n - 1 {
            self.tail.clear();
            self.tail.extend_from_slice(&chunk[chunk.len() - (n - 1)..]);
        } else {
            let excess = self.tail.len().saturating_sub(n - 1);
            self.tail.drain(..excess);
        }
    }
}

// ---------------------------------------------------------------------------------------------------
// Shared with `warm`: one client per base, the Host override, what the cache said.

/// One CDN base: its client (no redirects, no decompression) and how URLs are made for it.
pub(crate) struct Endpoint {
    pub(crate) client: Client,
    /// `scheme://host[:port][/prefix]` without a trailing slash.
    prefix: String,
    /// The `Host` header to send (an override with an `http` base).
    pub(crate) host_header: Option<HeaderValue>,
}

impl Endpoint {
    pub(crate) fn new(
        base: &str,
        host: Option<&str>,
        timeout: Duration,
    ) -> Result<Endpoint, String> {
        let mut url = Url::parse(base)
            .map_err(|e| format!("the base URL `{}` is not a URL ({e})", redact_url(base)))?;
        if !matches!(url.scheme(), "http" | "https") || url.host_str().is_none() {
            return Err(format!(
                "the base URL `{}` is not an http(s) URL",
                redact_url(base)
            ));
        }
        let mut builder = client_builder(timeout)
            .redirect(reqwest::redirect::Policy::none())
            .no_gzip()
            .no_brotli()
            .no_deflate()
            .no_zstd();
        let mut host_header = None;
        if let Some(host) = host {
            if url.scheme() == "https" {
                // TLS must see the name: connect to the base's IP, but put the name in the URL.
                let ip: IpAddr = url
                    .host_str()
                    .unwrap_or("")
                    .trim_matches(|c| c == '[' || c == ']')
                    .parse()
                    .map_err(|_| {
                        format!(
                            "a Host override with an https base needs the base to be an IP address (`https://203.0.113.7`), not `{}`",
                            redact_url(base)
                        )
                    })?;
                let port = url.port_or_known_default().unwrap_or(443);
                let name = host.split(':').next().unwrap_or(host);
                url.set_host(Some(name))
                    .map_err(|e| format!("the Host override `{host}` is not a host name ({e})"))?;
                builder = builder.resolve(name, SocketAddr::new(ip, port));
            } else {
                host_header =
                    Some(HeaderValue::from_str(host).map_err(|_| {
                        format!("the Host override `{host}` is not a header value")
                    })?);
            }
        }
        let client = builder
            .build()
            .map_err(|e| format!("cannot make an HTTP client: {}", transport_error(&e)))?;
        let prefix = url.as_str().trim_end_matches('/').to_string();
        Ok(Endpoint {
            client,
            prefix,
            host_header,
        })
    }

    /// The URL of `path` (on the wire as given) through this base.
    pub(crate) fn url(&self, path: &str) -> Result<Url, String> {
        Url::parse(&format!("{}{path}", self.prefix))
            .map_err(|e| format!("`{path}` does not make a URL with this base ({e})"))
    }
}

/// The extra headers, checked once.
/// The caller's extra headers without `Accept-Encoding` (each request sets its own), or why they are
/// not valid headers.
pub(crate) fn request_headers(headers: &[(String, String)]) -> Result<HeaderMap, String> {
    extra_headers(headers).map(|mut h| {
        h.remove(header::ACCEPT_ENCODING);
        h
    })
}

/// One endpoint per base, with the base as shown in reports (credentials hidden); an error for every
/// base when the headers are not valid.
pub(crate) fn endpoints(
    bases: &[String],
    headers: &Result<HeaderMap, String>,
    host: Option<&str>,
    timeout: Duration,
) -> Vec<(String, Result<Arc<Endpoint>, String>)> {
    bases
        .iter()
        .map(|base| {
            let endpoint = match headers {
                Ok(_) => Endpoint::new(base, host, timeout).map(Arc::new),
                Err(e) => Err(e.clone()),
            };
            (redact_url(base), endpoint)
        })
        .collect()
}

pub(crate) fn extra_headers(headers: &[(String, String)]) -> Result<HeaderMap, String> {
    let mut map = HeaderMap::new();
    for (name, value) in headers {
        let n = HeaderName::from_bytes(name.as_bytes())
            .map_err(|_| format!("`{name}` is not a header name; nothing was requested"))?;
        let v = HeaderValue::from_str(value).map_err(|_| {
            format!("the value of header `{name}` is not a header value; nothing was requested")
        })?;
        map.append(n, v);
    }
    Ok(map)
}

/// The cache status headers that exist (see [`Seen::x_cache`]).
pub(crate) fn cache_status(headers: &HeaderMap) -> Option<String> {
    const NAMES: [(&str, &str); 4] = [
        ("x-cache", "X-Cache"),
        ("cf-cache-status", "CF-Cache-Status"),
        ("x-cache-status", "X-Cache-Status"),
        ("x-served-by", "X-Served-By"),
    ];
    let found: Vec<(&str, String)> = NAMES
        .iter()
        .filter_map(|(n, shown)| header_text(headers, n).map(|v| (*shown, v)))
        .collect();
    match found.len() {
        0 => None,
        1 => Some(found[0].1.clone()),
        _ => Some(
            found
                .iter()
                .map(|(n, v)| format!("{n}: {v}"))
                .collect::<Vec<_>>()
                .join("; "),
        ),
    }
}

fn seen_of(resp: &Response) -> Seen {
    let h = resp.headers();
    Seen {
        status: Some(resp.status().as_u16()),
        age: header_text(h, "age"),
        x_cache: cache_status(h),
        cache_control: header_text(h, "cache-control"),
        etag: header_text(h, "etag"),
        content_encoding: header_text(h, "content-encoding"),
        got: None,
    }
}

pub(crate) fn redacted_bases(bases: &[String]) -> Vec<String> {
    bases.iter().map(|b| redact_url(b)).collect()
}

pub(crate) fn redacted_headers(headers: &[(String, String)]) -> Vec<(String, &'static str)> {
    headers
        .iter()
        .map(|(n, _)| (n.clone(), "<redacted>"))
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn finder_matches_across_every_split() {
        let body = b"<html><h1>Welcome to v2</h1></html>";
        let cases: [(&[u8], bool); 5] = [
            (b"Welcome to v2", true),
            (b"Welcome to v3", false),
            (b"<", true),
            (b"</html>", true),
            (b"", true),
        ];
        for (needle, want) in cases {
            for chunk in 1..=body.len() {
                for first in 0..chunk.min(body.len()) {
                    let mut f = Finder::new(needle);
                    f.feed(&body[..first]);
                    for c in body[first..].chunks(chunk) {
                        f.feed(c);
                    }
                    assert_eq!(f.found, want, "{needle:?} first {first} chunk {chunk}");
                    assert!(f.tail.len() < needle.len().max(1));
                }
            }
        }
    }

    #[test]
    fn describe() {
        let cases = [
            (Expect::Blake3("AB".into()), "blake3 ab"),
            (Expect::Sha256("cd".into()), "sha256 cd"),
            (Expect::Version("abc".into()), "version abc"),
            (
                Expect::Assert {
                    status: Some(200),
                    contains: Some("x".into()),
                },
                "status 200 + contains \"x\"",
            ),
            (
                Expect::Assert {
                    status: None,
                    contains: None,
                },
                "status 2xx",
            ),
        ];
        for (e, want) in cases {
            assert_eq!(e.describe(), want);
        }
    }

    #[test]
    fn validate_refuses_what_no_answer_meets() {
        let h = "a".repeat(64);
        let cases = [
            (Target::new("/a", Expect::Blake3(h.clone())), true),
            (Target::new("/a", Expect::Sha256(h.to_uppercase())), true),
            (Target::new("/a", Expect::Blake3("abc".into())), false),
            (Target::new("/a", Expect::Sha256("z".repeat(64))), false),
            (Target::new("a", Expect::Version("1".into())), false),
        ];
        for (t, ok) in cases {
            assert_eq!(validate(&t).is_ok(), ok, "{t:?}");
        }
    }

    #[test]
    fn cache_status_collects_what_exists() {
        let mut h = HeaderMap::new();
        assert_eq!(cache_status(&h), None);
        h.append("x-cache", HeaderValue::from_static("MISS"));
        assert_eq!(cache_status(&h).as_deref(), Some("MISS"));
        h.append("x-cache", HeaderValue::from_static("HIT"));
        h.append(
            "x-served-by",
            HeaderValue::from_static("cache-fra1, cache-ams2"),
        );
        assert_eq!(
            cache_status(&h).as_deref(),
            Some("X-Cache: MISS, HIT; X-Served-By: cache-fra1, cache-ams2")
        );
    }

    #[test]
    fn endpoint_urls() {
        let t = Duration::from_secs(1);
        let cases = [
            (
                "http://127.0.0.1:6081",
                None,
                "/a%20b.css?v=1",
                "http://127.0.0.1:6081/a%20b.css?v=1",
            ),
            (
                "https://cdn.example.com/site/",
                None,
                "/a.css",
                "https://cdn.example.com/site/a.css",
            ),
            (
                "https://203.0.113.7",
                Some("www.example.com"),
                "/",
                "https://www.example.com/",
            ),
            (
                "http://203.0.113.7:8080",
                Some("www.example.com"),
                "/x",
                "http://203.0.113.7:8080/x",
            ),
        ];
        for (base, host, path, want) in cases {
            let ep = Endpoint::new(base, host, t).unwrap();
            assert_eq!(ep.url(path).unwrap().as_str(), want);
        }
        assert!(Endpoint::new("https://cdn.example.com", Some("www.example.com"), t).is_err());
        assert!(Endpoint::new("ftp://x", None, t).is_err());
        let e = Endpoint::new("nope://u:secret@", None, t).err().unwrap();
        assert!(!e.contains("secret"), "{e}");
    }

    #[test]
    fn encodings_once_each() {
        let s = |v: &[&str]| v.iter().map(|s| s.to_string()).collect::<Vec<_>>();
        assert_eq!(encodings_of(&[]), s(&[""]));
        assert_eq!(
            encodings_of(&s(&["identity", "br", "identity", ""])),
            s(&["identity", "br", ""])
        );
        assert_eq!(
            encodings_of(&default_encodings()),
            s(&["gzip, deflate, br, zstd", "identity"])
        );
    }

    #[test]
    fn debug_redacts() {
        let o = VerifyOptions::new(
            vec!["https://u:pw@staging.example.com".into()],
            Instant::now(),
        )
        .with_header("Authorization", "Bearer s3cret");
        let d = format!("{o:?}");
        assert!(!d.contains("s3cret") && !d.contains("pw@"), "{d}");
    }
}
