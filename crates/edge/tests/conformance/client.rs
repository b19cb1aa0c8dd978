//! The test's HTTP client in front of a node: blocking requests that return what a case asserts on
//! ([`Got`]: status, headers, body, how long the answer took). It never decompresses and never adds
//! an `Accept-Encoding` of its own, so the `Vary` cases send exactly the header they name.

use std::time::{Duration, Instant};

use reqwest::blocking::Client as Http;
use reqwest::header::HeaderMap;

/// One answer from the node.
#[derive(Debug)]
pub struct Got {
    pub status: u16,
    pub headers: HeaderMap,
    /// The body as text (lossy).
    pub body: String,
    /// The body's bytes as received (never decoded).
    pub bytes: Vec<u8>,
    /// From sending the request to the end of the body.
    pub took: Duration,
}

impl Got {
    /// A response header as text.
    pub fn header(&self, name: &str) -> Option<&str> {
        self.headers.get(name).and_then(|v| v.to_str().ok())
    }

    /// `X-Cache` (`HIT`, `MISS`, `STALE`, `REVALIDATED`), or `""`.
    pub fn x_cache(&self) -> &str {
        self.header("x-cache").unwrap_or("")
    }
}

/// A client of one node.
pub struct Client {
    base: String,
    http: Http,
}

impl Client {
    /// A client of the node at `base` (`http://127.0.0.1:PORT`).
    pub fn new(base: &str) -> Client {
        let http = Http::builder()
            .no_gzip()
            .no_brotli()
            .no_deflate()
            .no_zstd()
            .no_proxy()
            .timeout(Duration::from_secs(15))
            .build()
            .expect("http client");
        Client {
            base: base.trim_end_matches('/').to_string(),
            http,
        }
    }

    /// `GET path`.
    pub fn get(&self, path: &str) -> Got {
        self.send("GET", path, &[])
    }

    /// `method path` with these request headers; panics when the node does not answer.
    pub fn send(&self, method: &str, path: &str, headers: &[(&str, &str)]) -> Got {
        let method = reqwest::Method::from_bytes(method.as_bytes()).expect("a method");
        let mut req = self
            .http
            .request(method.clone(), format!("{}{path}", self.base));
        for (name, value) in headers {
            req = req.header(*name, *value);
        }
        let start = Instant::now();
        let res = req
            .send()
            .unwrap_or_else(|e| panic!("{method} {path}: no answer from the node: {e}"));
        let status = res.status().as_u16();
        let headers = res.headers().clone();
        let bytes = res
            .bytes()
            .unwrap_or_else(|e| panic!("{method} {path}: reading the body: {e:?}"))
            .to_vec();
        Got {
            status,
            headers,
            body: String::from_utf8_lossy(&bytes).into_owned(),
            bytes,
            took: start.elapsed(),
        }
    }
}
