//! One request → one response: method check, path decoding and traversal refusal, version endpoint,
//! lookup (with `/dir/` → `dir/index.html` and `/dir` → redirect), negotiation, conditionals, ranges.

use std::net::SocketAddr;
use std::sync::Arc;

use bytes::Bytes;
use http_body_util::combinators::BoxBody;
use http_body_util::{BodyExt, Empty, Full};
use hyper::body::{Frame, Incoming};
use hyper::header::{self, HeaderMap, HeaderValue};
use hyper::{Method, Request, Response, StatusCode};
use tokio::io::{AsyncReadExt, AsyncSeekExt};

use crate::State;
use crate::conditional::{if_range_holds, none_match, not_modified_since};
use crate::index::{Body, Entry, Index, Variant};
use crate::negotiate::{Accept, Choice};
use crate::range::{RangeDecision, decide};

pub type ResBody = BoxBody<Bytes, std::io::Error>;

fn full(b: impl Into<Bytes>) -> ResBody {
    Full::new(b.into()).map_err(|never| match never {}).boxed()
}

fn empty() -> ResBody {
    Empty::new().map_err(|never| match never {}).boxed()
}

/// A plain-text response that is never cached.
fn plain(status: StatusCode, text: &str) -> Response<ResBody> {
    let mut r = Response::new(full(format!("{text}\n")));
    *r.status_mut() = status;
    let h = r.headers_mut();
    h.insert(
        header::CONTENT_TYPE,
        HeaderValue::from_static("text/plain; charset=utf-8"),
    );
    h.insert(
        header::CACHE_CONTROL,
        HeaderValue::from_static(staleguard_core::routes::ERROR),
    );
    r
}

pub async fn handle(
    state: &Arc<State>,
    req: Request<Incoming>,
    peer: SocketAddr,
) -> Response<ResBody> {
    let index = state.index.load();
    let res = respond(state, &index, &req).await;
    if tracing::enabled!(tracing::Level::DEBUG) {
        tracing::debug!(%peer, method = %req.method(), path = %req.uri().path(), status = res.status().as_u16(), "request");
    }
    res
}

async fn respond(state: &State, index: &Index, req: &Request<Incoming>) -> Response<ResBody> {
    let head = match *req.method() {
        Method::GET => false,
        Method::HEAD => true,
        _ => {
            let mut r = plain(StatusCode::METHOD_NOT_ALLOWED, "method not allowed");
            r.headers_mut()
                .insert(header::ALLOW, HeaderValue::from_static("GET, HEAD"));
            return r;
        }
    };
    let raw_path = req.uri().path();
    if raw_path == state.opts.config.version_path {
        return version(index, req.headers(), head);
    }
    let rel = match decode_path(raw_path, &index.prefix) {
        Ok(Some(rel)) => rel,
        Ok(None) => return not_found(index, req.headers(), head).await,
        Err(why) => return plain(StatusCode::BAD_REQUEST, why),
    };
    let (entry, redirect) = lookup(index, &rel, state.opts.config.clean_urls);
    if redirect {
        let mut location = format!("{raw_path}/");
        if let Some(q) = req.uri().query() {
            location.push('?');
            location.push_str(q);
        }
        let mut r = plain(StatusCode::MOVED_PERMANENTLY, "moved");
        if let Ok(v) = HeaderValue::from_str(&location) {
            r.headers_mut().insert(header::LOCATION, v);
        }
        r.headers_mut().insert(
            header::CACHE_CONTROL,
            HeaderValue::from_static("public, max-age=3600"),
        );
        return r;
    }
    match entry {
        Some(e) => {
            let res = serve_entry(&e, req.headers(), head, StatusCode::OK).await;
            match (&index.error, res.status()) {
                // The configured error page, never cached, in place of a plain-text 500.
                (Some(page), StatusCode::INTERNAL_SERVER_ERROR) => {
                    serve_entry(
                        page,
                        &HeaderMap::new(),
                        head,
                        StatusCode::INTERNAL_SERVER_ERROR,
                    )
                    .await
                }
                _ => res,
            }
        }
        None => not_found(index, req.headers(), head).await,
    }
}

/// Decodes the request path under the prefix into a relative path. `Ok(None)`: outside the prefix.
/// `Err`: a path that could escape the folder or is not valid (refused, never looked up).
pub fn decode_path<'a>(
    raw: &'a str,
    prefix: &str,
) -> Result<Option<std::borrow::Cow<'a, str>>, &'static str> {
    let Some(rest) = raw
        .strip_prefix(prefix)
        .or_else(|| (raw.len() + 1 == prefix.len() && prefix.starts_with(raw)).then_some(""))
    else {
        return Ok(None);
    };
    // Most paths have no escapes: no allocation, no second pass.
    let decoded = if rest.as_bytes().contains(&b'%') {
        percent_encoding::percent_decode_str(rest)
            .decode_utf8()
            .map_err(|_| "path is not valid UTF-8")?
    } else {
        std::borrow::Cow::Borrowed(rest)
    };
    check_segments(decoded.as_bytes())?;
    Ok(Some(decoded))
}

/// Refuses NUL, backslashes, `.` and `..` segments and empty segments (a trailing `/` is fine), in one
/// pass over the decoded path.
fn check_segments(p: &[u8]) -> Result<(), &'static str> {
    let mut start = 0;
    for (i, &b) in p.iter().enumerate() {
        match b {
            0 => return Err("path contains NUL"),
            b'\\' => return Err("path contains a backslash"),
            b'/' => {
                match &p[start..i] {
                    b"" => return Err("path contains an empty segment"),
                    b"." | b".." => return Err("path contains a `.` or `..` segment"),
                    _ => {}
                }
                start = i + 1;
            }
            _ => {}
        }
    }
    match &p[start..] {
        b"." | b".." => Err("path contains a `.` or `..` segment"),
        _ => Ok(()),
    }
}

/// Finds the entry for a relative path: `dir/` → `dir/index.html`; `dir` with a `dir/index.html` →
/// redirect (second value true); with `clean_urls`, an extensionless `about` → `about.html` when
/// neither of those takes it (`index` never: a folder's page is `dir/`).
fn lookup(index: &Index, rel: &str, clean_urls: bool) -> (Option<Arc<Entry>>, bool) {
    if rel.is_empty() || rel.ends_with('/') {
        return (index.files.get(&format!("{rel}index.html")).cloned(), false);
    }
    if let Some(e) = index.get(rel) {
        return (Some(e.clone()), false);
    }
    if index.files.contains_key(&format!("{rel}/index.html")) {
        return (None, true);
    }
    if clean_urls {
        let page = format!("{rel}.html");
        if staleguard_core::purge::clean_key(&page) == Some(rel) {
            return (index.get(&page).cloned(), false);
        }
    }
    (None, false)
}

async fn not_found(index: &Index, headers: &HeaderMap, head: bool) -> Response<ResBody> {
    match &index.not_found {
        // A non-200 status never turns into a 304 or 206 (see `serve_entry`).
        Some(page) => serve_entry(page, headers, head, StatusCode::NOT_FOUND).await,
        None => plain(StatusCode::NOT_FOUND, "not found"),
    }
}

fn version(index: &Index, headers: &HeaderMap, head: bool) -> Response<ResBody> {
    let seen = |name: &str| {
        headers
            .get(name)
            .and_then(|v| v.to_str().ok())
            .map(str::to_string)
    };
    let info = index.info.as_ref();
    let body = serde_json::json!({
        "version": info.map(|i| i.version.clone()).unwrap_or_else(|| index.digest.chars().take(12).collect()),
        "digest": index.digest,
        "git_commit": info.and_then(|i| i.git_commit.clone()),
        "build_time": info.map(|i| i.build_time.clone()),
        "builder": info.map(|i| i.builder.clone()),
        "request": { "x-cache": seen("x-cache"), "age": seen("age"), "via": seen("via") },
    });
    let text = serde_json::to_vec_pretty(&body).unwrap_or_default();
    let len = text.len();
    let mut r = Response::new(if head { empty() } else { full(text) });
    let h = r.headers_mut();
    h.insert(
        header::CONTENT_TYPE,
        HeaderValue::from_static("application/json"),
    );
    h.insert(header::CACHE_CONTROL, HeaderValue::from_static("no-store"));
    h.insert(header::CONTENT_LENGTH, HeaderValue::from(len));
    r
}

/// Serves a file with negotiation, conditionals and ranges. `status` is 200 for files, 404 for the
/// not-found page (which never turns into 304 or 206).
pub async fn serve_entry(
    e: &Entry,
    headers: &HeaderMap,
    head: bool,
    status: StatusCode,
) -> Response<ResBody> {
    let accept = Accept::parse(
        headers
            .get_all(header::ACCEPT_ENCODING)
            .iter()
            .map(HeaderValue::as_bytes),
    );
    let mut codecs = [staleguard_core::config::Codec::Br; 3];
    let mut n = 0;
    for c in e.encoded.iter().filter_map(|v| v.codec).take(3) {
        codecs[n] = c;
        n += 1;
    }
    let variant: &Variant = match accept.choose(&codecs[..n]) {
        Choice::Encoded(c) => e
            .encoded
            .iter()
            .find(|v| v.codec == Some(c))
            .unwrap_or(&e.identity),
        Choice::Identity | Choice::NothingAcceptable => &e.identity,
    };
    let ok = status == StatusCode::OK;
    // Conditionals: If-None-Match wins over If-Modified-Since.
    let etag = variant.etag.as_bytes();
    let not_modified = match headers.get(header::IF_NONE_MATCH) {
        Some(inm) => none_match(inm.as_bytes(), etag),
        None => match (
            headers
                .get(header::IF_MODIFIED_SINCE)
                .and_then(|v| v.to_str().ok()),
            &e.last_modified,
        ) {
            (Some(ims), Some((lm, _))) => not_modified_since(ims, *lm),
            _ => false,
        },
    };
    if ok && not_modified {
        let mut r = Response::new(empty());
        *r.status_mut() = StatusCode::NOT_MODIFIED;
        *r.headers_mut() = variant.common.clone();
        return r;
    }
    let mut h = if ok {
        variant.full.clone()
    } else {
        // An error page: no ranges, no Accept-Ranges.
        let mut h = variant.common.clone();
        h.insert(header::CONTENT_TYPE, e.content_type.clone());
        if let Some(c) = variant.codec {
            h.insert(
                header::CONTENT_ENCODING,
                HeaderValue::from_static(c.content_encoding()),
            );
        }
        h.insert(header::CONTENT_LENGTH, HeaderValue::from(variant.len));
        h
    };
    let len = variant.len;
    let mut range = None;
    if ok && let Some(r) = headers.get(header::RANGE).and_then(|v| v.to_str().ok()) {
        let applies = match headers.get(header::IF_RANGE).and_then(|v| v.to_str().ok()) {
            Some(ir) => if_range_holds(
                ir,
                variant.etag.to_str().unwrap_or(""),
                e.last_modified.as_ref().map(|(t, _)| *t),
            ),
            None => true,
        };
        if applies {
            match decide(r, len) {
                RangeDecision::Full => {}
                RangeDecision::Partial { start, end } => range = Some((start, end)),
                RangeDecision::Unsatisfiable => {
                    let mut r = Response::new(empty());
                    *r.status_mut() = StatusCode::RANGE_NOT_SATISFIABLE;
                    h.remove(header::CONTENT_TYPE);
                    h.insert(
                        header::CONTENT_RANGE,
                        HeaderValue::from_str(&format!("bytes */{len}"))
                            .unwrap_or(HeaderValue::from_static("bytes */0")),
                    );
                    h.insert(header::CONTENT_LENGTH, HeaderValue::from_static("0"));
                    *r.headers_mut() = h;
                    return r;
                }
            }
        }
    }
    let (status, start, count) = match range {
        Some((s, end)) => {
            h.insert(
                header::CONTENT_RANGE,
                HeaderValue::from_str(&format!("bytes {s}-{end}/{len}"))
                    .unwrap_or(HeaderValue::from_static("")),
            );
            (StatusCode::PARTIAL_CONTENT, s, end - s + 1)
        }
        None => (status, 0, len),
    };
    if range.is_some() {
        h.insert(header::CONTENT_LENGTH, HeaderValue::from(count));
    }
    let body = if head {
        empty()
    } else {
        match body(&variant.body, start, count).await {
            Ok(b) => b,
            Err(err) if err.kind() == std::io::ErrorKind::NotFound => {
                // A retired file streamed from disk that a build or deploy has since removed.
                return plain(StatusCode::NOT_FOUND, "not found");
            }
            Err(err) => {
                tracing::warn!(path = %e.path, error = %err, "cannot read file");
                return plain(StatusCode::INTERNAL_SERVER_ERROR, "cannot read the file");
            }
        }
    };
    let mut r = Response::new(body);
    *r.status_mut() = status;
    *r.headers_mut() = h;
    r
}

async fn body(b: &Body, start: u64, count: u64) -> std::io::Result<ResBody> {
    match b {
        Body::Memory(bytes) => Ok(full(bytes.slice(start as usize..(start + count) as usize))),
        Body::Disk(path) => {
            let mut f = tokio::fs::File::open(path).await?;
            f.seek(std::io::SeekFrom::Start(start)).await?;
            Ok(FileBody {
                file: f.take(count),
                buf: bytes::BytesMut::new(),
            }
            .boxed())
        }
    }
}

/// A large file streamed from disk in 64 KiB frames.
struct FileBody {
    file: tokio::io::Take<tokio::fs::File>,
    buf: bytes::BytesMut,
}

impl hyper::body::Body for FileBody {
    type Data = Bytes;
    type Error = std::io::Error;

    fn poll_frame(
        mut self: std::pin::Pin<&mut Self>,
        cx: &mut std::task::Context<'_>,
    ) -> std::task::Poll<Option<Result<Frame<Bytes>, std::io::Error>>> {
        use std::task::Poll;
        let this = &mut *self;
        this.buf.reserve(64 * 1024);
        match tokio_util::io::poll_read_buf(std::pin::Pin::new(&mut this.file), cx, &mut this.buf) {
            Poll::Ready(Ok(0)) => Poll::Ready(None),
            Poll::Ready(Ok(_)) => Poll::Ready(Some(Ok(Frame::data(this.buf.split().freeze())))),
            Poll::Ready(Err(e)) => Poll::Ready(Some(Err(e))),
            Poll::Pending => Poll::Pending,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn paths() {
        for (raw, prefix, want) in [
            ("/css/a.css", "/", Ok(Some("css/a.css"))),
            ("/", "/", Ok(Some(""))),
            ("/static/a.css", "/static/", Ok(Some("a.css"))),
            ("/static", "/static/", Ok(Some(""))),
            ("/other/a.css", "/static/", Ok(None)),
            ("/caf%C3%A9.svg", "/", Ok(Some("café.svg"))),
            (
                "/../etc/passwd",
                "/",
                Err("path contains a `.` or `..` segment"),
            ),
            (
                "/%2e%2e/etc/passwd",
                "/",
                Err("path contains a `.` or `..` segment"),
            ),
            (
                "/a/%2E%2E/b",
                "/",
                Err("path contains a `.` or `..` segment"),
            ),
            ("/a%5c..%5cb", "/", Err("path contains a backslash")),
            ("/a%00.css", "/", Err("path contains NUL")),
            ("/%ff", "/", Err("path is not valid UTF-8")),
            ("//etc/passwd", "/", Err("path contains an empty segment")),
            ("/a//b", "/", Err("path contains an empty segment")),
        ] {
            let got = decode_path(raw, prefix).map(|o| o.map(|c| c.into_owned()));
            assert_eq!(got, want.map(|o| o.map(String::from)), "{raw}");
        }
    }
}
