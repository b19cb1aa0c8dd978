//! Hostile and odd input: huge request heads, a response varying on an unbounded field, purges from an
//! address not allowed, origin responses without a length (chunked, or delimited by closing the
//! connection), slow and dead origins, bodies past the object cap, a memory cap under pressure, bad
//! ban patterns. Each gets a clear answer, the edge keeps serving, and memory stays under its cap.
//!
//! The origins here are raw sockets, so the tests control every byte (framing, timing, closing).

use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::Duration;

use staleguard_edge::{EdgeOptions, EdgeServer, Net};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpListener;

/// What a raw origin sends for a request head: after a delay, these bytes, then maybe close.
struct Reply {
    delay: Duration,
    bytes: Vec<u8>,
    close: bool,
}

fn reply(bytes: impl Into<Vec<u8>>) -> Reply {
    Reply {
        delay: Duration::ZERO,
        bytes: bytes.into(),
        close: false,
    }
}

/// A raw origin on a free port; counts the requests it read.
async fn origin<F>(answer: F) -> (String, Arc<AtomicUsize>)
where
    F: Fn(&str) -> Reply + Send + Sync + 'static,
{
    let l = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = l.local_addr().unwrap();
    let count = Arc::new(AtomicUsize::new(0));
    let (answer, c2) = (Arc::new(answer), count.clone());
    tokio::spawn(async move {
        loop {
            let Ok((mut s, _)) = l.accept().await else {
                return;
            };
            let (answer, count) = (answer.clone(), c2.clone());
            tokio::spawn(async move {
                let mut buf = Vec::new();
                loop {
                    // Read one request head (these tests send no request bodies to the origin).
                    let mut chunk = [0u8; 4096];
                    while !buf.windows(4).any(|w| w == b"\r\n\r\n") {
                        match s.read(&mut chunk).await {
                            Ok(0) | Err(_) => return,
                            Ok(n) => buf.extend_from_slice(&chunk[..n]),
                        }
                    }
                    let end = buf.windows(4).position(|w| w == b"\r\n\r\n").unwrap() + 4;
                    let head = String::from_utf8_lossy(&buf[..end]).into_owned();
                    buf.drain(..end);
                    count.fetch_add(1, Ordering::SeqCst);
                    let r = answer(&head);
                    tokio::time::sleep(r.delay).await;
                    if s.write_all(&r.bytes).await.is_err() {
                        return;
                    }
                    if r.close {
                        let _ = s.shutdown().await;
                        return;
                    }
                }
            });
        }
    });
    (format!("http://{addr}"), count)
}

async fn edge(opts: EdgeOptions) -> (String, Arc<staleguard_edge::Edge>) {
    let server = EdgeServer::bind("127.0.0.1:0", opts).await.unwrap();
    let url = format!("http://{}", server.local_addr().unwrap());
    let e = server.edge();
    tokio::spawn(server.run(Duration::from_secs(30), std::future::pending()));
    (url, e)
}

fn ok(cc: &str, extra: &str, body: &str) -> Vec<u8> {
    format!(
        "HTTP/1.1 200 OK\r\ncache-control: {cc}\r\n{extra}content-length: {}\r\n\r\n{body}",
        body.len()
    )
    .into_bytes()
}

async fn get(c: &reqwest::Client, url: &str, headers: &[(&str, &str)]) -> (u16, String, Vec<u8>) {
    let mut rb = c.get(url);
    for (k, v) in headers {
        rb = rb.header(*k, *v);
    }
    let r = rb.send().await.unwrap();
    let status = r.status().as_u16();
    let x = r
        .headers()
        .get("x-cache")
        .map(|v| v.to_str().unwrap().to_string())
        .unwrap_or_default();
    (status, x, r.bytes().await.unwrap().to_vec())
}

/// Raw request to the edge; the status code of the answer.
async fn raw_status(base: &str, request: &[u8]) -> u16 {
    let mut s = tokio::net::TcpStream::connect(base.trim_start_matches("http://"))
        .await
        .unwrap();
    let _ = s.write_all(request).await;
    let mut out = Vec::new();
    let _ = tokio::time::timeout(Duration::from_secs(10), s.read_to_end(&mut out)).await;
    let text = String::from_utf8_lossy(&out);
    text.split(' ')
        .nth(1)
        .and_then(|c| c.parse().ok())
        .unwrap_or(0)
}

#[tokio::test]
async fn huge_request_heads_are_refused_and_the_edge_keeps_serving() {
    let (o, _) = origin(|_| reply(ok("max-age=60", "", "fine"))).await;
    let (e, _) = edge(EdgeOptions::new(o)).await;
    let big = format!(
        "GET / HTTP/1.1\r\nhost: x\r\nx-big: {}\r\n\r\n",
        "a".repeat(1 << 20)
    );
    let st = raw_status(&e, big.as_bytes()).await;
    assert!(st == 431 || st == 400 || st == 0, "a 1 MiB header: {st}");
    let many: String = (0..500).map(|i| format!("x-h{i}: v\r\n")).collect();
    let st = raw_status(
        &e,
        format!("GET / HTTP/1.1\r\nhost: x\r\n{many}\r\n").as_bytes(),
    )
    .await;
    assert!(st == 431 || st == 400, "500 header lines: {st}");
    let c = reqwest::Client::new();
    assert_eq!(get(&c, &format!("{e}/"), &[]).await.0, 200, "still serving");
}

#[tokio::test]
async fn variants_of_an_unbounded_field_are_capped() {
    let (o, count) = origin(|head| {
        let ua = head
            .lines()
            .find_map(|l| l.strip_prefix("user-agent: "))
            .unwrap_or("none")
            .to_string();
        reply(ok("max-age=60", "vary: User-Agent\r\n", &ua))
    })
    .await;
    let (e, edge) = edge(EdgeOptions::new(o)).await;
    let c = reqwest::Client::new();
    let url = format!("{e}/page");
    for i in 0..100 {
        let ua = format!("agent-{i}");
        let (st, _, body) = get(&c, &url, &[("user-agent", &ua)]).await;
        assert_eq!((st, body), (200, ua.into_bytes()));
    }
    assert_eq!(count.load(Ordering::SeqCst), 100);
    // The newest variants are kept, the oldest dropped: at most MAX_VARIANTS per URL.
    let cap = staleguard_edge::vary::MAX_VARIANTS;
    for i in (100 - cap)..100 {
        let (_, x, body) = get(&c, &url, &[("user-agent", &format!("agent-{i}"))]).await;
        assert_eq!(x, "HIT", "agent-{i}");
        assert_eq!(body, format!("agent-{i}").into_bytes());
    }
    let (_, x, _) = get(&c, &url, &[("user-agent", "agent-0")]).await;
    assert_eq!(x, "MISS", "the oldest variant was dropped");
    assert_eq!(edge.usage().0, 1, "one URL entry");
}

#[tokio::test]
async fn purges_from_an_address_not_allowed_are_refused() {
    let (o, _) = origin(|_| reply(ok("max-age=60", "xkey: k1\r\n", "kept"))).await;
    let mut opts = EdgeOptions::new(o);
    opts.purgers = vec![Net::parse("10.0.0.0/8").unwrap()];
    let (e, _) = edge(opts).await;
    let c = reqwest::Client::new();
    get(&c, &format!("{e}/a"), &[]).await;
    for (method, header) in [
        ("PURGE", None),
        ("PURGE", Some(("xkey-purge", "k1"))),
        ("PURGE", Some(("xkey-softpurge", "k1"))),
        ("BAN", Some(("x-ban-url", "^/"))),
    ] {
        let mut rb = c.request(
            reqwest::Method::from_bytes(method.as_bytes()).unwrap(),
            format!("{e}/a"),
        );
        if let Some((k, v)) = header {
            rb = rb.header(k, v);
        }
        let r = rb.send().await.unwrap();
        assert_eq!(r.status().as_u16(), 403, "{method} {header:?}");
        assert!(
            r.text().await.unwrap().contains("127.0.0.1"),
            "names the address"
        );
    }
    assert_eq!(
        get(&c, &format!("{e}/a"), &[]).await.1,
        "HIT",
        "nothing dropped"
    );
    // CIDR parsing and matching.
    let n = Net::parse("10.1.0.0/16").unwrap();
    assert!(n.contains("10.1.2.3".parse().unwrap()));
    assert!(!n.contains("10.2.0.1".parse().unwrap()));
    assert!(
        n.contains("::ffff:10.1.0.9".parse().unwrap()),
        "IPv4-mapped"
    );
    assert!(Net::parse("10.0.0.0/33").is_err());
    assert!(Net::parse("example.com").is_err());
}

#[tokio::test]
async fn responses_without_a_length_are_cached_whole() {
    let (o, count) = origin(|head| {
        if head.starts_with("GET /chunked") {
            reply(
                "HTTP/1.1 200 OK\r\ncache-control: max-age=60\r\ntransfer-encoding: chunked\r\n\r\n5\r\nhello\r\n6\r\n world\r\n0\r\n\r\n",
            )
        } else {
            Reply {
                delay: Duration::ZERO,
                bytes: b"HTTP/1.1 200 OK\r\ncache-control: max-age=60\r\nconnection: close\r\n\r\nuntil the end".to_vec(),
                close: true,
            }
        }
    })
    .await;
    let (e, _) = edge(EdgeOptions::new(o)).await;
    let c = reqwest::Client::new();
    for path in ["/chunked", "/close"] {
        let want: &[u8] = if path == "/chunked" {
            b"hello world"
        } else {
            b"until the end"
        };
        let (st, x, body) = get(&c, &format!("{e}{path}"), &[]).await;
        assert_eq!((st, x.as_str(), &body[..]), (200, "MISS", want), "{path}");
        let (_, x, body) = get(&c, &format!("{e}{path}"), &[]).await;
        assert_eq!((x.as_str(), &body[..]), ("HIT", want), "{path}");
    }
    assert_eq!(count.load(Ordering::SeqCst), 2);
}

#[tokio::test]
async fn slow_and_dead_origins_get_a_gateway_error_or_the_stale_copy() {
    let (o, _) = origin(|head| {
        if head.starts_with("GET /slow") {
            Reply {
                delay: Duration::from_secs(5),
                bytes: ok("max-age=60", "", "late"),
                close: false,
            }
        } else {
            reply(ok("max-age=1, stale-if-error=60", "", "kept"))
        }
    })
    .await;
    let mut opts = EdgeOptions::new(o.clone());
    opts.origin_timeout = Duration::from_millis(300);
    let (e, _) = edge(opts).await;
    let c = reqwest::Client::new();
    let (st, _, body) = get(&c, &format!("{e}/slow"), &[]).await;
    assert_eq!(st, 504, "{}", String::from_utf8_lossy(&body));
    assert!(
        String::from_utf8_lossy(&body).contains("/slow"),
        "names the URL"
    );

    // A dead origin: 502, or the stale copy within stale-if-error.
    let dead = {
        let l = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
        format!("http://{}", l.local_addr().unwrap())
    };
    let (e2, _) = edge(EdgeOptions::new(dead)).await;
    assert_eq!(get(&c, &format!("{e2}/x"), &[]).await.0, 502);

    // The stale copy, served within stale-if-error when the origin fails with a 5xx; past the
    // window (here: for a response without one), the error.
    let down = Arc::new(std::sync::atomic::AtomicBool::new(false));
    let d2 = down.clone();
    let (o3, _) = origin(move |head| {
        if d2.load(Ordering::SeqCst) {
            reply("HTTP/1.1 503 Service Unavailable\r\ncontent-length: 4\r\n\r\ndown")
        } else if head.starts_with("GET /strict") {
            reply(ok("max-age=1", "", "strict"))
        } else {
            reply(ok("max-age=1, stale-if-error=60", "", "kept"))
        }
    })
    .await;
    let (e3, _) = edge(EdgeOptions::new(o3)).await;
    assert_eq!(get(&c, &format!("{e3}/s"), &[]).await.1, "MISS");
    assert_eq!(get(&c, &format!("{e3}/strict"), &[]).await.1, "MISS");
    down.store(true, Ordering::SeqCst);
    tokio::time::sleep(Duration::from_millis(1100)).await;
    let (st, x, body) = get(&c, &format!("{e3}/s"), &[]).await;
    assert_eq!((st, x.as_str(), &body[..]), (200, "STALE", &b"kept"[..]));
    let (st, _, body) = get(&c, &format!("{e3}/strict"), &[]).await;
    assert_eq!(
        (st, &body[..]),
        (503, &b"down"[..]),
        "no stale-if-error: the origin's error"
    );
}

#[tokio::test]
async fn big_bodies_stream_through_and_memory_stays_under_the_cap() {
    let big = "b".repeat(3 << 20);
    let small = "s".repeat(20_000);
    let (big2, small2) = (big.clone(), small.clone());
    let (o, count) = origin(move |head| {
        if head.starts_with("GET /big-chunked") {
            let mut bytes = b"HTTP/1.1 200 OK\r\ncache-control: max-age=60\r\ntransfer-encoding: chunked\r\n\r\n".to_vec();
            for chunk in big2.as_bytes().chunks(64 << 10) {
                bytes.extend_from_slice(format!("{:x}\r\n", chunk.len()).as_bytes());
                bytes.extend_from_slice(chunk);
                bytes.extend_from_slice(b"\r\n");
            }
            bytes.extend_from_slice(b"0\r\n\r\n");
            reply(bytes)
        } else if head.starts_with("GET /big") {
            reply(ok("max-age=60", "", &big2))
        } else {
            reply(ok("max-age=60", "", &small2))
        }
    })
    .await;
    let mut opts = EdgeOptions::new(o);
    opts.memory = 1 << 20;
    opts.max_object = 1 << 20;
    let (e, edge) = edge(opts).await;
    let c = reqwest::Client::new();
    for path in ["/big", "/big-chunked"] {
        for _ in 0..2 {
            let (st, x, body) = get(&c, &format!("{e}{path}"), &[]).await;
            assert_eq!((st, x.as_str()), (200, "MISS"), "{path}: too big to cache");
            assert_eq!(body.len(), big.len(), "{path}: streamed whole");
        }
    }
    assert_eq!(count.load(Ordering::SeqCst), 4);
    for i in 0..300 {
        let (st, _, body) = get(&c, &format!("{e}/s{i}"), &[]).await;
        assert_eq!((st, body.len()), (200, small.len()));
    }
    let (objects, bytes) = edge.usage();
    assert!(bytes <= 1 << 20, "{bytes} bytes held");
    assert!(
        objects > 10 && objects < 300,
        "evicted some, kept some: {objects}"
    );
}

#[tokio::test]
async fn bad_ban_patterns_are_400_with_the_reason() {
    let (o, _) = origin(|_| reply(ok("max-age=60", "", "x"))).await;
    let (e, _) = edge(EdgeOptions::new(o)).await;
    let c = reqwest::Client::new();
    let ban = |v: Option<String>| {
        let mut rb = c.request(
            reqwest::Method::from_bytes(b"BAN").unwrap(),
            format!("{e}/"),
        );
        if let Some(v) = v {
            rb = rb.header("x-ban-url", v);
        }
        rb.send()
    };
    let r = ban(None).await.unwrap();
    assert_eq!(r.status().as_u16(), 400);
    assert!(r.text().await.unwrap().contains("x-ban-url"));
    let r = ban(Some("^/(unclosed".into())).await.unwrap();
    assert_eq!(r.status().as_u16(), 400);
    assert!(r.text().await.unwrap().starts_with("Bad ban"));
    let r = ban(Some(format!("^/{}", "(a|b){1000}".repeat(20))))
        .await
        .unwrap();
    assert_eq!(r.status().as_u16(), 400, "a pattern too big to compile");
    assert_eq!(
        ban(Some("^/docs/".into())).await.unwrap().status().as_u16(),
        200
    );
}

#[tokio::test]
async fn accept_encoding_is_normalised_to_what_the_origin_offers() {
    // An origin with gzip only (nginx with gzip_static, no brotli): asked for br, it answers gzip.
    let (o, count) = origin(|head| {
        let ae = head
            .lines()
            .find_map(|l| l.strip_prefix("accept-encoding: "))
            .unwrap_or("")
            .to_string();
        if ae.contains("gzip") {
            reply(ok(
                "max-age=60",
                "vary: Accept-Encoding\r\ncontent-encoding: gzip\r\n",
                "gzip body",
            ))
        } else {
            reply(ok("max-age=60", "vary: Accept-Encoding\r\n", "plain body"))
        }
    })
    .await;
    let (e, _) = edge(EdgeOptions::new(o)).await;
    let c = reqwest::Client::new();
    let url = format!("{e}/app.js");
    let chrome = [("accept-encoding", "gzip, deflate, br, zstd")];
    let safari = [("accept-encoding", "gzip, deflate, br")];
    let old = [("accept-encoding", "gzip")];
    let (_, x, body) = get(&c, &url, &chrome).await;
    assert_eq!((x.as_str(), &body[..]), ("MISS", &b"gzip body"[..]));
    for h in [&safari[..], &old[..], &chrome[..]] {
        let (_, x, body) = get(&c, &url, h).await;
        assert_eq!((x.as_str(), &body[..]), ("HIT", &b"gzip body"[..]), "{h:?}");
    }
    assert_eq!(
        count.load(Ordering::SeqCst),
        1,
        "one variant for every browser"
    );
    // A client without gzip never gets it.
    let (_, x, body) = get(&c, &url, &[("accept-encoding", "identity")]).await;
    assert_eq!((x.as_str(), &body[..]), ("MISS", &b"plain body"[..]));
    let (_, x, body) = get(&c, &url, &[]).await;
    assert_eq!((x.as_str(), &body[..]), ("HIT", &b"plain body"[..]));
    // An encoded body without `Vary: Accept-Encoding` (an origin bug) still varies on it.
    let (o2, _) = origin(|head| {
        if head.contains("accept-encoding: br") {
            reply(ok("max-age=60", "content-encoding: br\r\n", "br body"))
        } else {
            reply(ok("max-age=60", "", "plain"))
        }
    })
    .await;
    let (e2, _) = edge(EdgeOptions::new(o2)).await;
    let url = format!("{e2}/x");
    assert_eq!(get(&c, &url, &chrome).await.2, b"br body");
    assert_eq!(
        get(&c, &url, &[]).await.2,
        b"plain",
        "no brotli for a client without it"
    );
}

#[tokio::test]
async fn heuristic_freshness_is_off_unless_asked_for() {
    let lm = httpdate::fmt_http_date(std::time::SystemTime::now() - Duration::from_secs(36_000));
    let (o, count) = origin(move |_| {
        reply(format!(
            "HTTP/1.1 200 OK\r\nlast-modified: {lm}\r\ncontent-length: 2\r\n\r\nok"
        ))
    })
    .await;
    let c = reqwest::Client::new();
    // Off (the default): a response without a lifetime is not stored.
    let (e, _) = edge(EdgeOptions::new(o.clone())).await;
    for _ in 0..2 {
        assert_eq!(get(&c, &format!("{e}/h"), &[]).await.1, "MISS");
    }
    assert_eq!(count.load(Ordering::SeqCst), 2);
    // On: fresh for a tenth of its age (an hour here).
    let mut opts = EdgeOptions::new(o);
    opts.heuristic = true;
    let (e2, _) = edge(opts).await;
    assert_eq!(get(&c, &format!("{e2}/h"), &[]).await.1, "MISS");
    assert_eq!(get(&c, &format!("{e2}/h"), &[]).await.1, "HIT");
    assert_eq!(count.load(Ordering::SeqCst), 3);
}

#[tokio::test]
async fn personal_responses_are_never_shared() {
    // Set-Cookie (a session), a request with Authorization (unless the response says public), and
    // Vary: * are never served from the cache to another request.
    let (o, count) = origin(|head| {
        let path = head.split(' ').nth(1).unwrap_or("/").to_string();
        match path.as_str() {
            "/login" => reply(ok("max-age=60", "set-cookie: session=alice\r\n", "alice")),
            "/star" => reply(ok("max-age=60", "vary: *\r\n", "star")),
            "/public-auth" => reply(ok("public, max-age=60", "", "shared")),
            _ => reply(ok("max-age=60", "", "mine")),
        }
    })
    .await;
    let (e, _) = edge(EdgeOptions::new(o)).await;
    let c = reqwest::Client::new();
    for _ in 0..2 {
        assert_eq!(get(&c, &format!("{e}/login"), &[]).await.1, "MISS");
        assert_eq!(get(&c, &format!("{e}/star"), &[]).await.1, "MISS");
        let auth = [("authorization", "Bearer alice")];
        assert_eq!(get(&c, &format!("{e}/private"), &auth).await.1, "MISS");
    }
    assert_eq!(count.load(Ordering::SeqCst), 6);
    // `public` lets a shared cache store an authorized response.
    let auth = [("authorization", "Bearer bob")];
    assert_eq!(get(&c, &format!("{e}/public-auth"), &auth).await.1, "MISS");
    assert_eq!(get(&c, &format!("{e}/public-auth"), &auth).await.1, "HIT");
}
