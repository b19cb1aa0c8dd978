//! A fault-injecting front for any HTTP peer (the Fastly and Cloudflare mocks, a real Varnish node):
//! a TCP listener that reads each request, then either answers it with a fault or forwards it to the
//! peer and relays the answer. Faults come from a script (the conformance suite's [`Fault`]s, one per
//! request) or from a deterministic schedule: every `every`th request fails, cycling through
//! `429` with `Retry-After: 1`, `500` and a connection closed without an answer.
//!
//! Every connection carries one request (`Connection: close` both ways), so a client never reuses a
//! connection the front closed. The front rewrites `Host: <front>` to the peer's address (a Varnish
//! node keys its cache and scopes its bans by Host); any other Host is kept. It counts what a retry
//! policy is judged by: requests, faults, re-sends (a request identical to an earlier one: same
//! method, path, purge headers and body) and re-sends of a request the peer had already acknowledged
//! with a 2xx.

use std::collections::{HashMap, VecDeque};
use std::sync::{Arc, Mutex};

use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::{TcpListener, TcpStream};

use crate::conformance::Fault;

/// What the front does instead of forwarding one request.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Injected {
    /// One of the conformance suite's faults (401, 429 with `Retry-After`, 500).
    Fault(Fault),
    /// The connection is closed after the request is read, without an answer.
    Dropped,
}

/// What the front counted.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Counts {
    pub requests: usize,
    pub faults: usize,
    /// Requests identical to an earlier one.
    pub resent: usize,
    /// Requests identical to an earlier one the peer answered with a 2xx.
    pub resent_acknowledged: usize,
}

#[derive(Default)]
struct State {
    counts: Counts,
    every: Option<usize>,
    /// Requests since `every` was set.
    scheduled: usize,
    scripted: VecDeque<Injected>,
    /// Request key → acknowledged (the peer answered 2xx).
    seen: HashMap<Vec<u8>, bool>,
}

/// A running front; the listener stops when this is dropped.
pub struct Front {
    /// `http://127.0.0.1:PORT`: give it to the provider instead of the peer's URL.
    pub url: String,
    state: Arc<Mutex<State>>,
    task: tokio::task::JoinHandle<()>,
}

impl Drop for Front {
    fn drop(&mut self) {
        self.task.abort();
    }
}

impl Front {
    /// A front for the peer at `peer` (`http://127.0.0.1:PORT`), with no faults until told.
    pub async fn start(peer: &str) -> Front {
        let backend = peer
            .strip_prefix("http://")
            .unwrap_or(peer)
            .trim_end_matches('/')
            .to_string();
        let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
        let own = listener.local_addr().unwrap().to_string();
        let url = format!("http://{own}");
        let state: Arc<Mutex<State>> = Arc::default();
        let s = state.clone();
        let task = tokio::spawn(async move {
            while let Ok((sock, _)) = listener.accept().await {
                tokio::spawn(handle(sock, own.clone(), backend.clone(), s.clone()));
            }
        });
        Front { url, state, task }
    }

    /// From now on every `every`th request fails: 429 with `Retry-After: 1`, then 500, then a dropped
    /// connection, in turn.
    pub fn fail_every(&self, every: usize) {
        let mut s = self.state.lock().unwrap();
        s.every = Some(every.max(1));
        s.scheduled = 0;
    }

    /// The next request fails with `fault`.
    pub fn inject(&self, fault: Injected) {
        self.state.lock().unwrap().scripted.push_back(fault);
    }

    pub fn counts(&self) -> Counts {
        self.state.lock().unwrap().counts
    }

    /// No more faults, and counting starts afresh (what was acknowledged before is forgotten).
    pub fn reset(&self) {
        let mut s = self.state.lock().unwrap();
        s.every = None;
        s.scripted.clear();
        s.counts = Counts::default();
        s.seen.clear();
        s.scheduled = 0;
    }
}

/// One request as read: the head's lines and the body.
struct Request {
    lines: Vec<String>,
    body: Vec<u8>,
}

impl Request {
    fn header(&self, name: &str) -> Option<&str> {
        self.lines[1..].iter().find_map(|l| {
            let (k, v) = l.split_once(':')?;
            k.trim().eq_ignore_ascii_case(name).then(|| v.trim())
        })
    }

    /// What makes two requests the same purge.
    fn key(&self) -> Vec<u8> {
        let mut k = self.lines[0].clone().into_bytes();
        for h in ["x-ban-url", "xkey-purge", "xkey-softpurge", "surrogate-key"] {
            if let Some(v) = self.header(h) {
                k.extend_from_slice(format!("\n{h}: {v}").as_bytes());
            }
        }
        k.push(b'\n');
        k.extend_from_slice(&self.body);
        k
    }
}

async fn read_request(sock: &mut TcpStream) -> Option<Request> {
    let mut buf = Vec::new();
    let mut chunk = [0u8; 8192];
    let end = loop {
        if let Some(i) = buf.windows(4).position(|w| w == b"\r\n\r\n") {
            break i;
        }
        let n = sock.read(&mut chunk).await.ok()?;
        if n == 0 {
            return None;
        }
        buf.extend_from_slice(&chunk[..n]);
    };
    let head = String::from_utf8_lossy(&buf[..end]).into_owned();
    let lines: Vec<String> = head.split("\r\n").map(String::from).collect();
    let mut req = Request {
        lines,
        body: buf[end + 4..].to_vec(),
    };
    let len: usize = req
        .header("content-length")
        .and_then(|v| v.parse().ok())
        .unwrap_or(0);
    while req.body.len() < len {
        let n = sock.read(&mut chunk).await.ok()?;
        if n == 0 {
            return None;
        }
        req.body.extend_from_slice(&chunk[..n]);
    }
    Some(req)
}

fn answer(status: &str, extra: &str, body: &str) -> Vec<u8> {
    format!(
        "HTTP/1.1 {status}\r\n{extra}content-type: application/json\r\ncontent-length: {}\r\nconnection: close\r\n\r\n{body}",
        body.len()
    )
    .into_bytes()
}

/// The answer to a scripted fault. The bodies say the same in Fastly's (`msg`) and Cloudflare's
/// (`success`, `errors`) words; Varnish shows either as text.
fn fault_answer(fault: Fault) -> Vec<u8> {
    match fault {
        Fault::Unauthorized => answer(
            "401 Unauthorized",
            "",
            r#"{"msg":"Provided credentials are missing or invalid","success":false,"errors":[{"code":10000,"message":"Authentication error"}]}"#,
        ),
        Fault::Throttled { retry_after_secs } => answer(
            "429 Too Many Requests",
            &format!("retry-after: {retry_after_secs}\r\n"),
            r#"{"msg":"Rate limit exceeded","success":false,"errors":[{"code":10000,"message":"Rate limited. Please wait and try again."}]}"#,
        ),
        Fault::ServerError => answer(
            "500 Internal Server Error",
            "",
            r#"{"msg":"internal error","success":false,"errors":[{"code":10000,"message":"internal error"}]}"#,
        ),
    }
}

async fn handle(mut sock: TcpStream, own: String, backend: String, state: Arc<Mutex<State>>) {
    let Some(req) = read_request(&mut sock).await else {
        return;
    };
    let key = req.key();
    let fault = {
        let mut guard = state.lock().unwrap();
        let s = &mut *guard;
        s.counts.requests += 1;
        match s.seen.get(&key) {
            Some(acked) => {
                s.counts.resent += 1;
                if *acked {
                    s.counts.resent_acknowledged += 1;
                }
            }
            None => {
                s.seen.insert(key.clone(), false);
            }
        }
        let scheduled = s.every.and_then(|every| {
            s.scheduled += 1;
            s.scheduled
                .is_multiple_of(every)
                .then(|| match (s.scheduled / every) % 3 {
                    1 => Injected::Fault(Fault::Throttled {
                        retry_after_secs: 1,
                    }),
                    2 => Injected::Fault(Fault::ServerError),
                    _ => Injected::Dropped,
                })
        });
        let fault = s.scripted.pop_front().or(scheduled);
        if fault.is_some() {
            s.counts.faults += 1;
        }
        fault
    };
    match fault {
        Some(Injected::Dropped) => {
            // Closed without a word: the client sees the connection end before any answer.
            drop(sock);
        }
        Some(Injected::Fault(f)) => {
            let _ = sock.write_all(&fault_answer(f)).await;
            let _ = sock.shutdown().await;
        }
        None => {
            let Some(answer) = forward(&req, &own, &backend).await else {
                drop(sock);
                return;
            };
            let ok = answer.starts_with(b"HTTP/1.1 2") || answer.starts_with(b"HTTP/1.0 2");
            if ok {
                state.lock().unwrap().seen.insert(key, true);
            }
            let _ = sock.write_all(&answer).await;
            let _ = sock.shutdown().await;
        }
    }
}

/// Sends the request to the peer on a new connection (`Connection: close`) and reads the whole answer.
async fn forward(req: &Request, own: &str, backend: &str) -> Option<Vec<u8>> {
    let mut head = format!("{}\r\n", req.lines[0]);
    for l in &req.lines[1..] {
        let name = l.split_once(':').map_or("", |(k, _)| k.trim());
        if name.eq_ignore_ascii_case("connection") || name.eq_ignore_ascii_case("keep-alive") {
            continue;
        }
        if name.eq_ignore_ascii_case("host") && req.header("host") == Some(own) {
            head.push_str(&format!("host: {backend}\r\n"));
            continue;
        }
        head.push_str(l);
        head.push_str("\r\n");
    }
    head.push_str("connection: close\r\n\r\n");
    let mut peer = TcpStream::connect(backend).await.ok()?;
    peer.write_all(head.as_bytes()).await.ok()?;
    peer.write_all(&req.body).await.ok()?;
    let mut answer = Vec::new();
    peer.read_to_end(&mut answer).await.ok()?;
    Some(answer)
}
