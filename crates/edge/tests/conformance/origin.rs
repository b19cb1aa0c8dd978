//! The scripted origin every conformance case puts behind the cache node: an HTTP/1.1 server on a free
//! loopback port whose answer per path is set at run time ([`Reply`]: status, headers, body, delay,
//! or a function of the request), which records every request it reads ([`Seen`]: method, headers,
//! the status it answered), answers conditional requests with 304 when the validator matches, and
//! can be switched [`Down`] to test `stale-if-error`.

use std::collections::HashMap;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use bytes::Bytes;
use http_body_util::Full;
use hyper::body::Incoming;
use hyper::server::conn::http1;
use hyper::service::service_fn;
use hyper::{HeaderMap, Request, Response};
use hyper_util::rt::TokioIo;
use tokio::net::TcpListener;
use tokio::runtime::Runtime;

/// What the origin answers on one path.
#[derive(Clone, Debug)]
pub struct Reply {
    status: u16,
    headers: Vec<(String, String)>,
    body: Bytes,
    delay: Duration,
    conditional: bool,
}

impl Reply {
    /// `status` with `body`, no headers, no delay; a 200 answers a matching conditional request
    /// with 304.
    pub fn new(status: u16, body: impl AsRef<[u8]>) -> Reply {
        Reply {
            status,
            headers: Vec::new(),
            body: Bytes::copy_from_slice(body.as_ref()),
            delay: Duration::ZERO,
            conditional: true,
        }
    }

    /// A 200 with `body`.
    pub fn ok(body: impl AsRef<[u8]>) -> Reply {
        Reply::new(200, body)
    }

    /// Adds a response header.
    pub fn header(mut self, name: &str, value: &str) -> Reply {
        self.headers.push((name.to_string(), value.to_string()));
        self
    }

    /// Shorthand for the `Cache-Control` header.
    pub fn cc(self, value: &str) -> Reply {
        self.header("cache-control", value)
    }

    /// Waits `delay` after reading the request before answering (200 and 304 alike).
    pub fn with_delay(mut self, delay: Duration) -> Reply {
        self.delay = delay;
        self
    }

    /// Answers conditional requests in full, as if the validators never matched.
    #[allow(dead_code)] // no case needs it yet: an origin that ignores validators
    pub fn without_304(mut self) -> Reply {
        self.conditional = false;
        self
    }

    fn get(&self, name: &str) -> Option<&str> {
        self.headers
            .iter()
            .find(|(n, _)| n.eq_ignore_ascii_case(name))
            .map(|(_, v)| v.as_str())
    }

    /// Whether `req`'s validators match this reply (RFC 9110 §13.2.2: `If-None-Match` first, with
    /// the weak comparison; `If-Modified-Since` only without it).
    fn not_modified(&self, req: &HeaderMap) -> bool {
        if !self.conditional || self.status != 200 {
            return false;
        }
        let weak = |t: &str| t.trim().trim_start_matches("W/").to_string();
        if let Some(inm) = header(req, "if-none-match") {
            let Some(etag) = self.get("etag") else {
                return false;
            };
            return inm
                .split(',')
                .any(|t| t.trim() == "*" || weak(t) == weak(etag));
        }
        match (header(req, "if-modified-since"), self.get("last-modified")) {
            (Some(ims), Some(lm)) => match (
                httpdate::parse_http_date(ims),
                httpdate::parse_http_date(lm),
            ) {
                (Ok(ims), Ok(lm)) => lm <= ims,
                _ => false,
            },
            _ => false,
        }
    }
}

/// One request the origin read.
#[derive(Clone, Debug)]
pub struct Seen {
    /// `GET`, `HEAD`, …
    pub method: String,
    /// The request's header fields.
    pub headers: HeaderMap,
    /// The status it answered: 0 while the answer is pending (a delay) or when it closed the
    /// connection instead.
    pub status: u16,
}

impl Seen {
    /// A request header as text.
    pub fn header(&self, name: &str) -> Option<&str> {
        header(&self.headers, name)
    }
}

fn header<'a>(h: &'a HeaderMap, name: &str) -> Option<&'a str> {
    h.get(name).and_then(|v| v.to_str().ok())
}

/// How the origin fails while down.
#[derive(Clone, Copy, Debug)]
pub enum Down {
    /// Reads the request, then closes the connection without answering.
    Close,
    /// Answers this status (no cache headers, body `down`).
    Status(u16),
}

type Script = Arc<dyn Fn(&Seen) -> Reply + Send + Sync>;

#[derive(Default)]
struct State {
    routes: HashMap<String, Script>,
    seen: HashMap<String, Vec<Seen>>,
    down: Option<Down>,
}

/// A running origin; stops when dropped.
pub struct Origin {
    addr: String,
    state: Arc<Mutex<State>>,
    rt: Option<Runtime>,
}

impl Origin {
    /// Starts an origin on `127.0.0.1:0`; every path answers 404 (`no-store`) until set.
    pub fn start() -> Origin {
        let rt = tokio::runtime::Builder::new_multi_thread()
            .worker_threads(2)
            .thread_name("origin")
            .enable_all()
            .build()
            .expect("origin runtime");
        let listener = rt
            .block_on(TcpListener::bind("127.0.0.1:0"))
            .expect("bind the origin");
        let addr = listener.local_addr().expect("origin address").to_string();
        let state = Arc::new(Mutex::new(State::default()));
        rt.spawn(accept(listener, state.clone()));
        Origin {
            addr,
            state,
            rt: Some(rt),
        }
    }

    /// `127.0.0.1:PORT`, what a node is started with.
    pub fn host_port(&self) -> &str {
        &self.addr
    }

    /// `path` (with its query) answers `reply` from now on.
    pub fn set(&self, path: &str, reply: Reply) {
        self.set_fn(path, move |_| reply.clone());
    }

    /// `path` answers what `script` makes of each request.
    pub fn set_fn(&self, path: &str, script: impl Fn(&Seen) -> Reply + Send + Sync + 'static) {
        self.lock()
            .routes
            .insert(path.to_string(), Arc::new(script));
    }

    /// Fails every request from now on (`Some`), or answers again (`None`).
    pub fn set_down(&self, down: Option<Down>) {
        self.lock().down = down;
    }

    /// How many requests for `path` the origin read.
    pub fn count(&self, path: &str) -> usize {
        self.lock().seen.get(path).map_or(0, Vec::len)
    }

    /// The requests for `path`, oldest first.
    pub fn seen(&self, path: &str) -> Vec<Seen> {
        self.lock().seen.get(path).cloned().unwrap_or_default()
    }

    /// The `n`th request (0-based) for `path`; panics, listing what was seen, when there is none.
    pub fn request(&self, path: &str, n: usize) -> Seen {
        let seen = self.seen(path);
        seen.get(n).cloned().unwrap_or_else(|| {
            panic!(
                "the origin read {} requests for {path}, not {}: {seen:?}",
                seen.len(),
                n + 1
            )
        })
    }

    /// Waits until the origin read at least `n` requests for `path`; panics after `timeout`.
    pub fn wait_count(&self, path: &str, n: usize, timeout: Duration) {
        let deadline = Instant::now() + timeout;
        while self.count(path) < n {
            assert!(
                Instant::now() < deadline,
                "the origin read {} requests for {path} within {timeout:?}, expected {n}",
                self.count(path)
            );
            std::thread::sleep(Duration::from_millis(20));
        }
    }

    /// Waits until the origin answered (200, 304, …) its `n`th request (0-based) for `path`; panics
    /// after `timeout`.
    pub fn wait_answered(&self, path: &str, n: usize, timeout: Duration) {
        let deadline = Instant::now() + timeout;
        while self.seen(path).get(n).is_none_or(|s| s.status == 0) {
            assert!(
                Instant::now() < deadline,
                "the origin did not answer request {} for {path} within {timeout:?}: {:?}",
                n + 1,
                self.seen(path)
            );
            std::thread::sleep(Duration::from_millis(20));
        }
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, State> {
        self.state.lock().unwrap_or_else(|e| e.into_inner())
    }
}

impl Drop for Origin {
    fn drop(&mut self) {
        if let Some(rt) = self.rt.take() {
            rt.shutdown_background();
        }
    }
}

async fn accept(listener: TcpListener, state: Arc<Mutex<State>>) {
    loop {
        let Ok((socket, _)) = listener.accept().await else {
            continue;
        };
        let state = state.clone();
        tokio::spawn(async move {
            let svc = service_fn(move |req| answer(state.clone(), req));
            // An error here is a connection the origin closed on purpose (`Down::Close`) or one
            // the node dropped.
            let _ = http1::Builder::new()
                .serve_connection(TokioIo::new(socket), svc)
                .await;
        });
    }
}

/// The error that makes hyper close the connection without answering.
#[derive(Debug)]
struct Closed;

impl std::fmt::Display for Closed {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("origin down: connection closed")
    }
}

impl std::error::Error for Closed {}

async fn answer(
    state: Arc<Mutex<State>>,
    req: Request<Incoming>,
) -> Result<Response<Full<Bytes>>, Closed> {
    let path = req
        .uri()
        .path_and_query()
        .map_or("/", |p| p.as_str())
        .to_string();
    let seen = Seen {
        method: req.method().to_string(),
        headers: req.headers().clone(),
        status: 0,
    };
    let (script, down, index) = {
        let mut s = state.lock().unwrap_or_else(|e| e.into_inner());
        let list = s.seen.entry(path.clone()).or_default();
        list.push(seen.clone());
        let index = list.len() - 1;
        (s.routes.get(&path).cloned(), s.down, index)
    };
    let answered = |status: u16| {
        let mut s = state.lock().unwrap_or_else(|e| e.into_inner());
        s.seen.get_mut(&path).expect("recorded above")[index].status = status;
    };
    match down {
        Some(Down::Close) => return Err(Closed),
        Some(Down::Status(status)) => {
            answered(status);
            return Ok(response(status, &[], Bytes::from_static(b"down")));
        }
        None => {}
    }
    let reply = match script {
        Some(script) => script(&seen),
        None => Reply::new(404, "no route").cc("no-store"),
    };
    if !reply.delay.is_zero() {
        tokio::time::sleep(reply.delay).await;
    }
    let (status, body) = if reply.not_modified(&seen.headers) {
        (304, Bytes::new())
    } else {
        (reply.status, reply.body.clone())
    };
    answered(status);
    Ok(response(status, &reply.headers, body))
}

fn response(status: u16, headers: &[(String, String)], body: Bytes) -> Response<Full<Bytes>> {
    let mut b = Response::builder().status(status);
    for (name, value) in headers {
        b = b.header(name, value);
    }
    b.body(Full::new(body)).expect("a valid scripted response")
}
