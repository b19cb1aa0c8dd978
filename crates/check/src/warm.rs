//! Warming the CDN after a purge: request each URL through each base, once per `Accept-Encoding` a
//! browser sends (edges cache one variant per encoding), and read the body to the end so the edge
//! stores it. The first visitor then hits a warm edge.
//!
//! Invariants: no retries (a failed warm-up costs one slow request later, not correctness); at most
//! `concurrency` requests in flight; no redirect followed and nothing decoded; nothing runs past the
//! deadline (requests not started by then are reported as such).

use std::sync::Arc;
use std::time::Duration;

use futures::StreamExt as _;
use reqwest::header;
use serde::Serialize;
use tokio::time::Instant;
use tracing::Instrument;

use crate::verify::{
    Endpoint, cache_status, encodings_of, endpoints, redacted_bases, redacted_headers,
    request_headers,
};

/// How [`warm`] fetches. [`WarmOptions::new`] fills the defaults.
#[derive(Clone)]
pub struct WarmOptions {
    /// CDN base URLs, as for [`crate::verify::VerifyOptions::bases`].
    pub bases: Vec<String>,
    /// Requests in flight at most (default 5; 0 counts as 1).
    pub concurrency: usize,
    /// The `Accept-Encoding` values sent, one request each (default [`default_encodings`]); an empty
    /// string sends no `Accept-Encoding`; an empty list counts as `[""]`.
    pub encodings: Vec<String>,
    /// One request at most, body included (default 30 s).
    pub request_timeout: Duration,
    /// A `Host` override, as for [`crate::verify::VerifyOptions::host`].
    pub host: Option<String>,
    /// No request starts after this instant, and none runs past it.
    pub deadline: Instant,
    /// Extra request headers (values redacted in `Debug`); `Accept-Encoding` here is replaced.
    pub headers: Vec<(String, String)>,
}

impl WarmOptions {
    pub fn new(bases: Vec<String>, deadline: Instant) -> WarmOptions {
        WarmOptions {
            bases,
            concurrency: 5,
            encodings: default_encodings(),
            request_timeout: Duration::from_secs(30),
            host: None,
            deadline,
            headers: Vec::new(),
        }
    }

    pub fn with_concurrency(mut self, n: usize) -> WarmOptions {
        self.concurrency = n;
        self
    }

    pub fn with_encodings(mut self, encodings: Vec<String>) -> WarmOptions {
        self.encodings = encodings;
        self
    }

    pub fn with_host(mut self, host: impl Into<String>) -> WarmOptions {
        self.host = Some(host.into());
        self
    }

    pub fn with_request_timeout(mut self, timeout: Duration) -> WarmOptions {
        self.request_timeout = timeout;
        self
    }

    pub fn with_header(mut self, name: impl Into<String>, value: impl Into<String>) -> WarmOptions {
        self.headers.push((name.into(), value.into()));
        self
    }
}

impl std::fmt::Debug for WarmOptions {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("WarmOptions")
            .field("bases", &redacted_bases(&self.bases))
            .field("concurrency", &self.concurrency)
            .field("encodings", &self.encodings)
            .field("request_timeout", &self.request_timeout)
            .field("host", &self.host)
            .field("deadline", &self.deadline)
            .field("headers", &redacted_headers(&self.headers))
            .finish()
    }
}

/// What current browsers send: Chrome/Edge/Firefox (with zstd), then Safari and older browsers.
pub fn default_encodings() -> Vec<String> {
    vec!["gzip, deflate, br, zstd".into(), "gzip, deflate, br".into()]
}

/// One warm-up request.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct WarmResult {
    /// The base as given, any password replaced by `…` (`http://user:…@host`).
    pub base: String,
    pub path: String,
    /// The `Accept-Encoding` sent (empty: none).
    pub encoding: String,
    pub status: Option<u16>,
    /// As [`crate::verify::Seen::x_cache`].
    pub x_cache: Option<String>,
    /// Body bytes read (as sent, encoded).
    pub bytes: u64,
    pub seconds: f64,
    /// No answer, a body that broke off, the deadline.
    pub error: Option<String>,
}

impl WarmResult {
    /// Answered 2xx and the body was read to the end.
    pub fn ok(&self) -> bool {
        self.error.is_none() && self.status.is_some_and(|s| (200..300).contains(&s))
    }
}

/// GETs every (base, path, encoding) once, at most `opts.concurrency` at a time, reading and discarding
/// each body. Results are sorted by base, path, encoding. Paths are URL paths as on the wire (`/`,
/// `/a%20b.html`).
pub async fn warm(paths: &[String], opts: &WarmOptions) -> Vec<WarmResult> {
    let span = tracing::info_span!(
        "cdn.warm",
        bases = opts.bases.len(),
        paths = paths.len(),
        encodings = opts.encodings.len(),
        concurrency = opts.concurrency
    );
    async move {
        let encodings = encodings_of(&opts.encodings);
        let headers = request_headers(&opts.headers);
        let mut jobs = Vec::new();
        for (shown, endpoint) in endpoints(&opts.bases, &headers, opts.host.as_deref(), opts.request_timeout) {
            for path in paths {
                for enc in &encodings {
                    jobs.push((shown.clone(), endpoint.clone(), path.clone(), enc.clone()));
                }
            }
        }
        let headers = Arc::new(headers.unwrap_or_default());
        let deadline = opts.deadline;
        let mut results: Vec<WarmResult> = futures::stream::iter(jobs)
            .map(|(base, endpoint, path, encoding)| {
                let headers = headers.clone();
                async move {
                    let mut r = WarmResult {
                        base,
                        path,
                        encoding,
                        status: None,
                        x_cache: None,
                        bytes: 0,
                        seconds: 0.0,
                        error: None,
                    };
                    let ep = match endpoint {
                        Ok(ep) => ep,
                        Err(e) => {
                            r.error = Some(e);
                            return r;
                        }
                    };
                    if Instant::now() >= deadline {
                        r.error = Some("not requested: the deadline passed".into());
                        return r;
                    }
                    let started = Instant::now();
                    match tokio::time::timeout_at(deadline, fetch(&ep, &headers, &mut r)).await {
                        Ok(()) => {}
                        Err(_) => {
                            r.error = Some(format!(
                                "cut at the deadline after {} bytes",
                                r.bytes
                            ))
                        }
                    }
                    r.seconds = started.elapsed().as_secs_f64();
                    if let Some(e) = &r.error {
                        tracing::debug!(base = %r.base, path = %r.path, encoding = %r.encoding, error = %e, "warm-up failed");
                    }
                    r
                }
            })
            .buffer_unordered(opts.concurrency.max(1))
            .collect()
            .await;
        results.sort_by(|a, b| {
            (&a.base, &a.path, &a.encoding).cmp(&(&b.base, &b.path, &b.encoding))
        });
        let failed = results.iter().filter(|r| !r.ok()).count();
        tracing::info!(requests = results.len(), failed, "warmed");
        results
    }
    .instrument(span)
    .await
}

/// One request, filling `r` as it goes (so a deadline cut keeps what was seen).
async fn fetch(ep: &Endpoint, headers: &header::HeaderMap, r: &mut WarmResult) {
    let url = match ep.url(&r.path) {
        Ok(u) => u,
        Err(e) => {
            r.error = Some(e);
            return;
        }
    };
    let mut req = ep.client.get(url).headers(headers.clone());
    if !r.encoding.is_empty() {
        req = req.header(header::ACCEPT_ENCODING, r.encoding.as_str());
    }
    if let Some(h) = &ep.host_header {
        req = req.header(header::HOST, h.clone());
    }
    let mut resp = match req.send().await {
        Ok(resp) => resp,
        Err(e) => {
            r.error = Some(crate::client::transport_error(&e));
            return;
        }
    };
    r.status = Some(resp.status().as_u16());
    r.x_cache = cache_status(resp.headers());
    loop {
        match resp.chunk().await {
            Ok(Some(c)) => r.bytes += c.len() as u64,
            Ok(None) => return,
            Err(e) => {
                r.error = Some(format!(
                    "the body broke off after {} bytes: {}",
                    r.bytes,
                    crate::client::transport_error(&e)
                ));
                return;
            }
        }
    }
}
