//! `staleguard serve` through a real HTTP client (and raw sockets for requests a client would refuse
//! to send): headers, negotiation, 304s, ranges, methods, directories, traversal, errors, reload.

use std::io::{Read, Write};
use std::net::TcpStream;
use std::path::Path;
use std::process::Child;
use std::time::{Duration, Instant};

use reqwest::blocking::Client;
use reqwest::header::HeaderMap;

use crate::support::*;

/// A running `staleguard serve`, killed when dropped.
pub struct Served {
    child: Child,
    pub base: String,
}

impl Drop for Served {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

pub fn serve(cwd: &Path, args: &[&str]) -> Served {
    let mut c = staleguard(cwd);
    c.args(["serve", "--port", "0"]).args(args);
    let (child, base) = spawn_listening(c);
    Served { child, base }
}

fn client() -> Client {
    Client::builder()
        .redirect(reqwest::redirect::Policy::none())
        .build()
        .unwrap()
}

fn get(c: &Client, url: &str, headers: &[(&str, &str)]) -> (u16, HeaderMap, Vec<u8>) {
    let mut r = c.get(url);
    for (k, v) in headers {
        r = r.header(*k, *v);
    }
    let res = r.send().unwrap();
    let status = res.status().as_u16();
    let h = res.headers().clone();
    (status, h, res.bytes().unwrap().to_vec())
}

fn h<'a>(headers: &'a HeaderMap, name: &str) -> &'a str {
    headers.get(name).map(|v| v.to_str().unwrap()).unwrap_or("")
}

/// Sends raw request bytes and returns the status code.
fn raw_status(base: &str, request_line: &str) -> u16 {
    let mut s = TcpStream::connect(base.trim_start_matches("http://")).unwrap();
    write!(s, "{request_line}\r\nHost: x\r\nConnection: close\r\n\r\n").unwrap();
    let mut out = String::new();
    let _ = s.read_to_string(&mut out);
    out.split_whitespace()
        .nth(1)
        .and_then(|c| c.parse().ok())
        .unwrap_or(0)
}

fn site() -> (tempfile::TempDir, serde_json::Value) {
    let t = tempfile::tempdir().unwrap();
    copy_dir(&repo().join("examples/site"), &t.path().join("site"));
    build(t.path(), "site", "out", &[]);
    let m = manifest(&t.path().join("out"));
    (t, m)
}

#[test]
fn headers_for_immutable_mutable_and_missing_files() {
    let (t, m) = site();
    let s = serve(t.path(), &["out"]);
    let c = client();
    let css = hashed(&m, "css/site.css");
    let (st, hd, body) = get(&c, &format!("{}/{css}", s.base), &[]);
    assert_eq!(st, 200);
    assert_eq!(
        h(&hd, "cache-control"),
        "public, max-age=31536000, immutable"
    );
    assert_eq!(h(&hd, "content-type"), "text/css; charset=utf-8");
    assert_eq!(
        h(&hd, "etag"),
        format!(
            "\"{}\"",
            &m["files"]["css/site.css"]["hash"].as_str().unwrap()[..32]
        )
    );
    assert_eq!(h(&hd, "x-content-type-options"), "nosniff");
    assert_eq!(h(&hd, "vary"), "Accept-Encoding");
    assert_eq!(h(&hd, "content-length"), body.len().to_string());
    assert_eq!(
        body,
        std::fs::read(t.path().join("out").join(&css)).unwrap()
    );
    // The original name and HTML revalidate.
    for p in ["css/site.css", "index.html", ""] {
        let (st, hd, _) = get(&c, &format!("{}/{p}", s.base), &[]);
        assert_eq!((st, h(&hd, "cache-control")), (200, "no-cache"), "/{p}");
    }
    // Fonts get CORS.
    let (_, hd, _) = get(
        &c,
        &format!("{}/{}", s.base, hashed(&m, "fonts/acme.woff2")),
        &[],
    );
    assert_eq!(h(&hd, "access-control-allow-origin"), "*");
    assert_eq!(h(&hd, "content-type"), "font/woff2");
    // A missing file: the 404 page, never cached.
    let (st, hd, body) = get(&c, &format!("{}/css/site.000000000000.css", s.base), &[]);
    assert_eq!(st, 404);
    assert_eq!(h(&hd, "cache-control"), "no-store");
    assert_eq!(body, std::fs::read(t.path().join("out/404.html")).unwrap());
    let (st, _, _) = get(
        &c,
        &format!("{}/nope.html", s.base),
        &[("If-None-Match", "*")],
    );
    assert_eq!(st, 404, "an error page never turns into a 304");
}

#[test]
fn negotiation_and_304_for_each_encoding() {
    let (t, m) = site();
    let s = serve(t.path(), &["out"]);
    let c = client();
    let css = hashed(&m, "css/site.css");
    let url = format!("{}/{css}", s.base);
    let identity = std::fs::read(t.path().join("out").join(&css)).unwrap();
    let mut etags = Vec::new();
    for (accept, encoding, sidecar) in [
        ("gzip, deflate, br", "br", Some(".br")),
        ("gzip", "gzip", Some(".gz")),
        ("br;q=0, gzip;q=0.5", "gzip", Some(".gz")),
        ("", "", None),
        ("identity", "", None),
        ("zstd", "", None),
    ] {
        let (st, hd, body) = get(&c, &url, &[("Accept-Encoding", accept)]);
        assert_eq!(st, 200, "{accept}");
        assert_eq!(h(&hd, "content-encoding"), encoding, "{accept}");
        let want = match sidecar {
            Some(ext) => std::fs::read(t.path().join("out").join(format!("{css}{ext}"))).unwrap(),
            None => identity.clone(),
        };
        assert_eq!(body, want, "{accept}");
        let etag = h(&hd, "etag").to_string();
        etags.push(etag.clone());
        // The same ETag gives a 304 with the headers a 304 must carry, and no body.
        let (st, hd304, body) = get(
            &c,
            &url,
            &[("Accept-Encoding", accept), ("If-None-Match", &etag)],
        );
        assert_eq!(st, 304, "{accept}");
        assert!(body.is_empty());
        assert_eq!(h(&hd304, "etag"), etag);
        assert_eq!(
            h(&hd304, "cache-control"),
            "public, max-age=31536000, immutable"
        );
        assert_eq!(h(&hd304, "vary"), "Accept-Encoding");
        let (st, _, _) = get(
            &c,
            &url,
            &[
                ("Accept-Encoding", accept),
                ("If-None-Match", &format!("\"x\", W/{etag}")),
            ],
        );
        assert_eq!(st, 304, "weak comparison in a list");
        // If-Modified-Since alone.
        let lm = h(&hd, "last-modified").to_string();
        let (st, _, _) = get(
            &c,
            &url,
            &[("Accept-Encoding", accept), ("If-Modified-Since", &lm)],
        );
        assert_eq!(st, 304);
    }
    etags.sort();
    etags.dedup();
    assert_eq!(
        etags.len(),
        3,
        "identity, br and gzip each have their own ETag"
    );
    // The identity ETag does not validate the br variant.
    let (_, hd, _) = get(&c, &url, &[]);
    let (st, _, _) = get(
        &c,
        &url,
        &[("Accept-Encoding", "br"), ("If-None-Match", h(&hd, "etag"))],
    );
    assert_eq!(st, 200);
}

/// `[serve] clean-urls`: `/about` is answered from `about.html` (same body, same ETag, same headers);
/// `/about.html` still works, a folder still redirects, and a page that does not exist is still a 404.
/// Without the key, `/about` is a 404.
#[test]
fn clean_urls_serve_extensionless_pages() {
    let t = tempfile::tempdir().unwrap();
    let dir = t.path();
    write_files(
        dir,
        &[
            ("site/index.html", "<a href=\"/about\">about</a>\n"),
            ("site/about.html", "<h1>About</h1>\n"),
            ("site/docs/index.html", "<h1>Docs</h1>\n"),
            ("site/docs/intro.html", "<h1>Intro</h1>\n"),
            ("site/404.html", "not here\n"),
        ],
    );
    build(dir, "site", "out", &[]);
    let c = client();
    let plain = serve(dir, &["out"]);
    assert_eq!(get(&c, &format!("{}/about", plain.base), &[]).0, 404);
    drop(plain);

    write_files(dir, &[("staleguard.toml", "[serve]\nclean-urls = true\n")]);
    let s = serve(dir, &["out"]);
    let about = std::fs::read(dir.join("out/about.html")).unwrap();
    for enc in ["identity", "gzip, deflate, br"] {
        let accept = [("Accept-Encoding", enc)];
        let (st, clean, body) = get(&c, &format!("{}/about", s.base), &accept);
        let (st_html, html, body_html) = get(&c, &format!("{}/about.html", s.base), &accept);
        assert_eq!((st, st_html), (200, 200), "{enc}");
        assert_eq!(body, body_html, "{enc}");
        for name in [
            "etag",
            "content-type",
            "cache-control",
            "content-encoding",
            "vary",
        ] {
            assert_eq!(h(&clean, name), h(&html, name), "{name} ({enc})");
        }
        if enc == "identity" {
            assert_eq!(body, about);
        }
    }
    let (st, hd, _) = get(&c, &format!("{}/docs/intro", s.base), &[]);
    assert_eq!(
        (st, h(&hd, "content-type")),
        (200, "text/html; charset=utf-8")
    );
    let (st, hd, _) = get(&c, &format!("{}/docs", s.base), &[]);
    assert_eq!(
        (st, h(&hd, "location")),
        (301, "/docs/"),
        "a folder still redirects"
    );
    // A page that does not exist, and a folder's index under its file name, are not found.
    for p in ["/missing", "/docs/index", "/about/"] {
        let (st, _, body) = get(&c, &format!("{}{p}", s.base), &[]);
        assert_eq!((st, body.as_slice()), (404, &b"not here\n"[..]), "{p}");
    }
}

/// Logs go to stderr without colour codes when stderr is not a terminal (a file here): `serve -vv`
/// logs each request as plain text.
#[test]
fn logs_to_a_file_have_no_colour_codes() {
    let (t, _) = site();
    let log = t.path().join("serve.log");
    let mut c = staleguard(t.path());
    c.args(["-vv", "serve", "--port", "0", "out"])
        .stderr(std::fs::File::create(&log).unwrap());
    let (mut child, base) = spawn_listening(c);
    // The request's log line is written before its response.
    assert_eq!(get(&client(), &format!("{base}/index.html"), &[]).0, 200);
    let _ = child.kill();
    let _ = child.wait();
    let text = std::fs::read_to_string(&log).unwrap();
    assert!(
        text.contains("request") && text.contains("/index.html"),
        "{text}"
    );
    assert!(
        !text.contains('\x1b'),
        "ANSI escapes in a log file: {text:?}"
    );
}

#[test]
fn ranges_head_and_methods() {
    let (t, m) = site();
    let s = serve(t.path(), &["out"]);
    let c = client();
    let js = hashed(&m, "js/app.js");
    let url = format!("{}/{js}", s.base);
    let identity = std::fs::read(t.path().join("out").join(&js)).unwrap();
    let br = std::fs::read(t.path().join("out").join(format!("{js}.br"))).unwrap();
    let (st, hd, body) = get(&c, &url, &[("Range", "bytes=0-9")]);
    assert_eq!(st, 206);
    assert_eq!(
        h(&hd, "content-range"),
        format!("bytes 0-9/{}", identity.len())
    );
    assert_eq!(body, identity[..10]);
    // A range inside the compressed variant.
    let (st, hd, body) = get(
        &c,
        &url,
        &[("Range", "bytes=-20"), ("Accept-Encoding", "br")],
    );
    assert_eq!(st, 206);
    assert_eq!(h(&hd, "content-encoding"), "br");
    assert_eq!(
        h(&hd, "content-range"),
        format!("bytes {}-{}/{}", br.len() - 20, br.len() - 1, br.len())
    );
    assert_eq!(body, br[br.len() - 20..]);
    let (st, hd, _) = get(&c, &url, &[("Range", "bytes=999999-")]);
    assert_eq!(st, 416);
    assert_eq!(
        h(&hd, "content-range"),
        format!("bytes */{}", identity.len())
    );
    // If-Range: a matching ETag keeps the range, another one gives the whole file.
    let (_, hd, _) = get(&c, &url, &[]);
    let (st, _, _) = get(
        &c,
        &url,
        &[("Range", "bytes=0-1"), ("If-Range", h(&hd, "etag"))],
    );
    assert_eq!(st, 206);
    let (st, _, body) = get(&c, &url, &[("Range", "bytes=0-1"), ("If-Range", "\"old\"")]);
    assert_eq!((st, body.len()), (200, identity.len()));
    // HEAD: the same headers, no body.
    let res = c.head(&url).send().unwrap();
    assert_eq!(res.status().as_u16(), 200);
    assert_eq!(
        h(res.headers(), "content-length"),
        identity.len().to_string()
    );
    assert!(res.bytes().unwrap().is_empty());
    // Other methods: 405 with Allow.
    let res = c.post(&url).body("x").send().unwrap();
    assert_eq!(res.status().as_u16(), 405);
    assert_eq!(h(res.headers(), "allow"), "GET, HEAD");
}

#[test]
fn directories_and_traversal() {
    let (t, _) = site();
    let s = serve(t.path(), &["out"]);
    let c = client();
    let (st, hd, body) = get(&c, &format!("{}/about/", s.base), &[]);
    assert_eq!(st, 200);
    assert_eq!(h(&hd, "content-type"), "text/html; charset=utf-8");
    assert_eq!(
        body,
        std::fs::read(t.path().join("out/about/index.html")).unwrap()
    );
    let (st, hd, _) = get(&c, &format!("{}/about?x=1", s.base), &[]);
    assert_eq!((st, h(&hd, "location")), (301, "/about/?x=1"));
    for bad in [
        "GET /../Cargo.toml HTTP/1.1",
        "GET /%2e%2e/%2e%2e/etc/passwd HTTP/1.1",
        "GET /css/%2E%2E/%2E%2E/x HTTP/1.1",
        "GET /css%5c..%5c..%5cx HTTP/1.1",
        "GET /index.html%00.css HTTP/1.1",
        "GET //etc/passwd HTTP/1.1",
    ] {
        assert_eq!(raw_status(&s.base, bad), 400, "{bad}");
    }
    // Hidden files in the served folder are never served; `.well-known` is.
    write_files(
        &t.path().join("out"),
        &[
            (".git/config", "secret"),
            (".env", "KEY=1"),
            (".well-known/security.txt", "Contact: x"),
        ],
    );
    let s = serve(t.path(), &["out"]);
    assert_eq!(raw_status(&s.base, "GET /.git/config HTTP/1.1"), 404);
    assert_eq!(raw_status(&s.base, "GET /.env HTTP/1.1"), 404);
    assert_eq!(
        raw_status(&s.base, "GET /.well-known/security.txt HTTP/1.1"),
        200
    );
    // The source and the cache outside the served folder are unreachable.
    assert_eq!(
        raw_status(&s.base, "GET /out.cache/state.json HTTP/1.1"),
        404
    );
}

#[test]
fn version_endpoint_reports_the_build_and_echoes_cache_headers() {
    let (t, m) = site();
    let s = serve(t.path(), &["out"]);
    let c = client();
    let (st, hd, body) = get(
        &c,
        &format!("{}/health/static-version", s.base),
        &[("X-Cache", "HIT"), ("Age", "12")],
    );
    assert_eq!(st, 200);
    assert_eq!(h(&hd, "cache-control"), "no-store");
    let v: serde_json::Value = serde_json::from_slice(&body).unwrap();
    assert_eq!(v["digest"], m["digest"]);
    assert_eq!(v["version"], &m["digest"].as_str().unwrap()[..12]);
    assert_eq!(v["request"]["x-cache"], "HIT");
    assert_eq!(v["request"]["age"], "12");
    assert!(v["build_time"].as_str().unwrap().ends_with('Z'));
}

#[test]
fn routes_from_the_config_set_headers() {
    let (t, m) = site();
    write_files(
        t.path(),
        &[(
            "staleguard.toml",
            "[serve.headers]\nStrict-Transport-Security = \"max-age=63072000\"\n\n[[routes]]\nmatch = \"**/*.html\"\ncache-control = \"public, max-age=0, s-maxage=300, stale-while-revalidate=60\"\nheaders = { X-Frame-Options = \"DENY\" }\n\n[[routes]]\nmatch = \"@fingerprinted\"\nheaders = { Strict-Transport-Security = \"\" }\n",
        )],
    );
    let s = serve(t.path(), &["out"]);
    let c = client();
    let (_, hd, _) = get(&c, &format!("{}/about/", s.base), &[]);
    assert_eq!(
        h(&hd, "cache-control"),
        "public, max-age=0, s-maxage=300, stale-while-revalidate=60"
    );
    assert_eq!(h(&hd, "x-frame-options"), "DENY");
    assert_eq!(h(&hd, "strict-transport-security"), "max-age=63072000");
    let (_, hd, _) = get(
        &c,
        &format!("{}/{}", s.base, hashed(&m, "css/site.css")),
        &[],
    );
    assert_eq!(
        h(&hd, "cache-control"),
        "public, max-age=31536000, immutable"
    );
    assert_eq!(h(&hd, "strict-transport-security"), "");
    assert_eq!(h(&hd, "x-content-type-options"), "nosniff");
}

/// Rebuilding into the served folder switches versions without a restart; under load, every page
/// fetched references assets that exist (no 404, no page of one version with assets of another missing).
#[test]
fn version_switch_under_load_never_serves_a_dangling_page() {
    let (t, m) = site();
    let s = serve(t.path(), &["out"]);
    let base = s.base.clone();
    let stop = std::sync::Arc::new(std::sync::atomic::AtomicBool::new(false));
    let asset = regex::Regex::new(
        r#"(?:href|src)="(css/site\.[0-9a-f]{12}\.css|js/app\.[0-9a-f]{12}\.js)""#,
    )
    .unwrap();
    let workers: Vec<_> = (0..3)
        .map(|_| {
            let (base, stop, asset) = (base.clone(), stop.clone(), asset.clone());
            std::thread::spawn(move || {
                let c = client();
                let mut pages = 0;
                let mut versions = std::collections::BTreeSet::new();
                while !stop.load(std::sync::atomic::Ordering::Relaxed) {
                    let (st, _, body) = get(
                        &c,
                        &format!("{base}/index.html"),
                        &[("Accept-Encoding", "identity")],
                    );
                    assert_eq!(st, 200);
                    let html = String::from_utf8(body).unwrap();
                    for cap in asset.captures_iter(&html) {
                        versions.insert(cap[1].to_string());
                        let (st, _, _) = get(&c, &format!("{base}/{}", &cap[1]), &[]);
                        assert_eq!(
                            st, 200,
                            "page references `{}`, which is not served",
                            &cap[1]
                        );
                    }
                    pages += 1;
                }
                (pages, versions)
            })
        })
        .collect();
    let css = t.path().join("site/css/base.css");
    let c = client();
    for round in 0..4 {
        let mut text = std::fs::read_to_string(&css).unwrap();
        text.push_str(&format!("\n/* round {round} */\n"));
        std::fs::write(&css, text).unwrap();
        build(t.path(), "site", "out", &[]);
        let want = manifest(&t.path().join("out"))["digest"].clone();
        let deadline = Instant::now() + Duration::from_secs(10);
        loop {
            let (_, _, body) = get(&c, &format!("{base}/health/static-version"), &[]);
            let v: serde_json::Value = serde_json::from_slice(&body).unwrap();
            if v["digest"] == want {
                break;
            }
            assert!(
                Instant::now() < deadline,
                "the server did not switch to the new version"
            );
            std::thread::sleep(Duration::from_millis(50));
        }
    }
    stop.store(true, std::sync::atomic::Ordering::Relaxed);
    let mut seen = std::collections::BTreeSet::new();
    for w in workers {
        let (pages, versions) = w.join().expect("a worker saw a broken page");
        assert!(pages > 5);
        seen.extend(versions);
    }
    assert!(
        seen.len() >= 2,
        "the load never saw a version switch: {seen:?}"
    );
    assert_ne!(manifest(&t.path().join("out"))["digest"], m["digest"]);
}

#[test]
fn sigterm_stops_gracefully() {
    let (t, _) = site();
    let mut s = serve(t.path(), &["out"]);
    let status = sigterm_and_wait(&mut s.child, "server");
    assert!(status.success(), "exit status {status}");
}

#[test]
fn serve_refuses_a_missing_folder_with_a_hint() {
    let t = tempfile::tempdir().unwrap();
    let mut c = staleguard(t.path());
    c.args(["serve", "nope", "--port", "0"]);
    let o = run(c);
    assert_eq!(o.status.code(), Some(1));
    assert!(stderr(&o).contains("hint: build first"), "{}", stderr(&o));
}

/// Reads one response head (up to the blank line) from a keep-alive connection; `None` when the server
/// closed the connection first.
fn read_head(s: &mut TcpStream) -> Option<String> {
    let mut head = Vec::new();
    let mut byte = [0u8; 1];
    while !head.ends_with(b"\r\n\r\n") {
        match s.read(&mut byte) {
            Ok(1) => head.push(byte[0]),
            _ => return None,
        }
    }
    Some(String::from_utf8_lossy(&head).into_owned())
}

/// `idle-timeout-secs`: a head trickled in byte by byte and an idle keep-alive connection are closed;
/// a connection that keeps asking is not, however long it lives.
#[test]
fn stalled_connections_are_closed_busy_ones_kept() {
    let (t, _) = site();
    write_files(
        t.path(),
        &[("staleguard.toml", "[serve]\nidle-timeout-secs = 1\n")],
    );
    let s = serve(t.path(), &["out"]);
    let addr = s.base.trim_start_matches("http://").to_string();

    // Slowloris: a header byte every 200 ms never completes a head; reading is not progress.
    let slow = std::thread::spawn({
        let addr = addr.clone();
        move || {
            let mut c = TcpStream::connect(&addr).unwrap();
            let start = Instant::now();
            c.write_all(b"GET / HTTP/1.1\r\nHost: x\r\nX-Slow: ")
                .unwrap();
            while start.elapsed() < Duration::from_secs(10) {
                std::thread::sleep(Duration::from_millis(200));
                if c.write_all(b"a").is_err() {
                    break;
                }
                c.set_read_timeout(Some(Duration::from_millis(1))).unwrap();
                let mut b = [0u8; 64];
                match c.read(&mut b) {
                    Ok(0) => break,
                    Err(e) if e.kind() == std::io::ErrorKind::WouldBlock => {}
                    Err(e) if e.kind() == std::io::ErrorKind::TimedOut => {}
                    Err(_) => break,
                    Ok(n) => panic!("a response to an unfinished head: {:?}", &b[..n]),
                }
            }
            start.elapsed()
        }
    });

    // Idle keep-alive: one request, then silence.
    let mut idle = TcpStream::connect(&addr).unwrap();
    idle.set_read_timeout(Some(Duration::from_secs(10)))
        .unwrap();
    idle.write_all(b"HEAD / HTTP/1.1\r\nHost: x\r\n\r\n")
        .unwrap();
    assert!(read_head(&mut idle).unwrap().starts_with("HTTP/1.1 200"));
    let start = Instant::now();
    let mut b = [0u8; 16];
    let closed = match idle.read(&mut b) {
        Ok(0) => true,
        Err(e) => !matches!(
            e.kind(),
            std::io::ErrorKind::WouldBlock | std::io::ErrorKind::TimedOut
        ),
        Ok(n) => panic!("unexpected bytes on an idle connection: {:?}", &b[..n]),
    };
    let waited = start.elapsed();
    assert!(closed, "idle connection still open");
    assert!(
        waited >= Duration::from_millis(900) && waited < Duration::from_secs(8),
        "idle connection closed after {waited:?}"
    );

    // Busy: a request every 300 ms for 3 s (three timeouts) on one connection, all answered.
    let mut busy = TcpStream::connect(&addr).unwrap();
    busy.set_read_timeout(Some(Duration::from_secs(5))).unwrap();
    let start = Instant::now();
    let mut n = 0;
    while start.elapsed() < Duration::from_secs(3) {
        busy.write_all(b"HEAD / HTTP/1.1\r\nHost: x\r\n\r\n")
            .unwrap();
        let head = read_head(&mut busy).unwrap_or_else(|| panic!("closed after {n} requests"));
        assert!(head.starts_with("HTTP/1.1 200"), "{head}");
        n += 1;
        std::thread::sleep(Duration::from_millis(300));
    }

    let slow_for = slow.join().unwrap();
    assert!(
        slow_for >= Duration::from_millis(900) && slow_for < Duration::from_secs(8),
        "trickled head cut after {slow_for:?}"
    );
}
