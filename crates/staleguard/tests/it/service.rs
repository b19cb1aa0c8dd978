//! `staleguard service` as a process, on real parts:
//!
//! - **kill -9 under load**: clients send events for 100 scopes while the service is killed with
//!   SIGKILL at random moments and restarted (12 times); afterwards every acknowledged event has a
//!   purge covering it that the provider received after the acknowledgement. The provider is a
//!   recorder speaking the Varnish wire protocol (PURGE, BAN `x-ban-url`), so the check sees exactly
//!   what was sent and when.
//! - **end to end**: `staleguard serve` as origin, a real Varnish in front caching pages for an hour,
//!   the service purging it; pages change in rounds, each change announced by an event once the
//!   origin serves it; after the load stops and the service drains, every page through Varnish is
//!   the newest version, while a page changed without an event is still stale (the cache holds).
//! - the CLI around it: `invalidate --scope … --wait`, `service status`, `dead`, `retry`, tokens.

use std::collections::BTreeMap;
use std::io::{BufReader, Write};
use std::net::{TcpListener, TcpStream};
use std::path::Path;
use std::process::Child;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use reqwest::blocking::Client;
use serde_json::{Value, json};
use staleguard_testkit::varnish::Varnish;

use crate::serve::serve;
use crate::support::*;

const TOKEN: &str = "test-token-3f9a";

/// A running `staleguard service` (killed with SIGKILL on drop).
struct Service {
    child: Child,
    base: String,
}

impl Drop for Service {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

fn start_service(dir: &Path, listen: &str) -> Service {
    start_service_on(dir, listen, None)
}

/// `staleguard service` on `db` (a PostgreSQL URL) instead of the config's SQLite file.
fn start_service_on(dir: &Path, listen: &str, db: Option<&str>) -> Service {
    let mut c = staleguard(dir);
    c.args(["service", "--listen", listen])
        .env("STALEGUARD_SERVICE_TOKEN", TOKEN);
    if let Some(db) = db {
        c.env("STALEGUARD_SERVICE_DB", db);
    }
    let (child, base) = spawn_listening(c);
    Service { child, base }
}

/// One PostgreSQL server for this test binary (stopped by its watchdog when the binary exits).
fn postgres() -> &'static staleguard_testkit::postgres::Postgres {
    static PG: std::sync::OnceLock<staleguard_testkit::postgres::Postgres> =
        std::sync::OnceLock::new();
    PG.get_or_init(staleguard_testkit::postgres::Postgres::start)
}

/// One request received by the recorder: when, the method, the path, the `x-ban-url` regex.
#[derive(Debug, Clone)]
struct Received {
    at: Instant,
    method: String,
    path: String,
    ban: Option<String>,
}

/// A provider stand-in speaking Varnish's purge protocol, keeping every request with its time.
struct Recorder {
    url: String,
    log: Arc<Mutex<Vec<Received>>>,
}

fn recorder() -> Recorder {
    let l = TcpListener::bind("127.0.0.1:0").unwrap();
    let url = format!("http://{}", l.local_addr().unwrap());
    let log: Arc<Mutex<Vec<Received>>> = Arc::default();
    let sink = log.clone();
    std::thread::spawn(move || {
        for stream in l.incoming().flatten() {
            let sink = sink.clone();
            std::thread::spawn(move || recorder_conn(stream, &sink));
        }
    });
    Recorder { url, log }
}

fn recorder_conn(stream: TcpStream, sink: &Mutex<Vec<Received>>) {
    let mut w = stream.try_clone().unwrap();
    let mut r = BufReader::new(stream);
    while let Some(req) = read_request(&mut r) {
        sink.lock().unwrap().push(Received {
            at: Instant::now(),
            ban: req.header("x-ban-url").map(str::to_string),
            method: req.method,
            path: req.path,
        });
        if w.write_all(b"HTTP/1.1 200 OK\r\ncontent-length: 0\r\n\r\n")
            .is_err()
        {
            return;
        }
    }
}

/// Does `r` purge URL path `path`? A PURGE of it, or a ban whose regex (`^/a\.html$`, `^/ws/1/`)
/// matches it.
fn covers(r: &Received, path: &str) -> bool {
    match (r.method.as_str(), &r.ban) {
        ("PURGE", _) => r.path == path,
        ("BAN", Some(re)) => {
            let re = re.strip_prefix('^').unwrap_or(re);
            let (body, exact) = match re.strip_suffix('$') {
                Some(b) => (b, true),
                None => (re, false),
            };
            let literal = body.replace('\\', "");
            if exact {
                literal == path
            } else {
                path.starts_with(&literal)
            }
        }
        _ => false,
    }
}

/// A small seeded generator (xorshift): the test's random moments and scopes, repeatable.
struct Rng(u64);

impl Rng {
    fn next(&mut self) -> u64 {
        self.0 ^= self.0 << 13;
        self.0 ^= self.0 >> 7;
        self.0 ^= self.0 << 17;
        self.0
    }
    fn below(&mut self, n: u64) -> u64 {
        self.next() % n
    }
}

fn free_port() -> u16 {
    TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port()
}

fn authed(c: &Client, method: reqwest::Method, url: &str) -> reqwest::blocking::RequestBuilder {
    c.request(method, url).bearer_auth(TOKEN)
}

/// Waits until the service reports nothing pending (every scope's events purged or dead).
fn drained(c: &Client, base: &str, timeout: Duration) {
    let deadline = Instant::now() + timeout;
    loop {
        let text = authed(c, reqwest::Method::GET, &format!("{base}/metrics"))
            .send()
            .and_then(|r| r.text())
            .unwrap_or_default();
        if text.lines().any(|l| l == "staleguard_events_pending 0") {
            return;
        }
        assert!(
            Instant::now() < deadline,
            "the service did not drain:\n{text}"
        );
        std::thread::sleep(Duration::from_millis(50));
    }
}

fn service_config(dir: &Path, cdn_url: &str, extra: &str) {
    write_files(
        dir,
        &[(
            "staleguard.toml",
            &format!(
                "[deploy]\nstore = \"file://store\"\n\n[service]\ndb = \"svc/events.db\"\ndebounce = \"200ms\"\nmax-wait = \"1s\"\nretry-base = \"100ms\"\nretry-max = \"1s\"\n{extra}\n[[cdn]]\nprovider = \"varnish\"\nname = \"edge\"\nnodes = [\"{cdn_url}\"]\n"
            ),
        )],
    );
}

#[test]
fn acknowledged_events_are_purged_after_their_ack_through_twelve_kill_9s() {
    kill_9_under_load(None);
}

#[test]
fn on_postgresql_acknowledged_events_are_purged_after_their_ack_through_twelve_kill_9s() {
    let db = postgres().database("sg_kill9");
    kill_9_under_load(Some(&db));
}

/// Clients send events for 100 scopes while the service (on its SQLite log, or on `db`) is killed
/// with SIGKILL twelve times and restarted; then every acknowledged event has a purge after its ack.
fn kill_9_under_load(db: Option<&str>) {
    let t = tempfile::tempdir().unwrap();
    let dir = t.path();
    let rec = recorder();
    // On PostgreSQL a killed instance's claims are taken over once their lease expires.
    service_config(dir, &rec.url, "lease = \"1s\"\n");
    let listen = format!("127.0.0.1:{}", free_port());
    let service = Arc::new(Mutex::new(Some(start_service_on(dir, &listen, db))));
    let base = format!("http://{listen}");

    // Clients: 4 threads, each sending events (single and batches of 5) for random scopes of 100, each
    // event a path of its own; an event counts once answered 202.
    let stop = Arc::new(AtomicBool::new(false));
    // (path, when its request was sent, when its 202 was read).
    let acked: Arc<Mutex<Vec<(String, Instant, Instant)>>> = Arc::default();
    let refused = Arc::new(std::sync::atomic::AtomicUsize::new(0));
    let mut clients = Vec::new();
    for k in 0..4u64 {
        let (stop, acked, refused, base) =
            (stop.clone(), acked.clone(), refused.clone(), base.clone());
        clients.push(std::thread::spawn(move || {
            let c = Client::builder()
                .timeout(Duration::from_secs(5))
                .build()
                .unwrap();
            let mut rng = Rng(0x9E37_79B9_7F4A_7C15 ^ (k + 1));
            let mut n = 0u64;
            while !stop.load(Ordering::SeqCst) {
                n += 1;
                let batch = rng.below(3) == 0;
                let events: Vec<(String, String)> = (0..if batch { 5 } else { 1 })
                    .map(|i| {
                        let s = rng.below(100);
                        (format!("ws:{s}"), format!("/ws/{s}/c{k}-{n}-{i}.html"))
                    })
                    .collect();
                let sent = Instant::now();
                let r = if batch {
                    let body = json!({"events": events.iter().map(|(s, p)| json!({"scope": s, "paths": [p]})).collect::<Vec<_>>()});
                    authed(&c, reqwest::Method::POST, &format!("{base}/v1/invalidations:batch"))
                        .json(&body)
                        .send()
                } else {
                    let (s, p) = &events[0];
                    authed(
                        &c,
                        reqwest::Method::POST,
                        &format!("{base}/v1/scopes/{s}/invalidations"),
                    )
                    .json(&json!({"paths": [p]}))
                    .send()
                };
                match r {
                    Ok(r) if r.status().as_u16() == 202 => {
                        let at = Instant::now();
                        let mut a = acked.lock().unwrap();
                        a.extend(events.into_iter().map(|(_, p)| (p, sent, at)));
                    }
                    // Killed mid-request, restarting, or busy: not acknowledged, not counted.
                    _ => {
                        refused.fetch_add(1, Ordering::Relaxed);
                        std::thread::sleep(Duration::from_millis(5));
                    }
                }
            }
        }));
    }

    // Twelve SIGKILLs at random moments, each followed by a restart on the same address.
    let mut rng = Rng(0xD1B5_4A32_D192_ED03);
    for _ in 0..12 {
        std::thread::sleep(Duration::from_millis(150 + rng.below(450)));
        let mut s = service.lock().unwrap();
        drop(s.take()); // SIGKILL
        *s = Some(start_service_on(dir, &listen, db));
    }
    std::thread::sleep(Duration::from_millis(300));
    stop.store(true, Ordering::SeqCst);
    for c in clients {
        c.join().unwrap();
    }
    let c = Client::new();
    drained(&c, &base, Duration::from_secs(60));

    let acked = acked.lock().unwrap().clone();
    let log = rec.log.lock().unwrap().clone();
    assert!(
        acked.len() > 200,
        "the load was too light to mean anything: {} acknowledged",
        acked.len()
    );
    // Index the PURGEs by path; bans are few.
    let mut purged_at: BTreeMap<&str, Vec<Instant>> = BTreeMap::new();
    let bans: Vec<&Received> = log.iter().filter(|r| r.method == "BAN").collect();
    for r in log.iter().filter(|r| r.method == "PURGE") {
        purged_at.entry(r.path.as_str()).or_default().push(r.at);
    }
    // The guarantee is a purge after the event's commit, which lies between its request being sent
    // and its 202 being read. A purge before the request never counts. Counting only purges after
    // the 202 fails falsely on a loaded machine, whose client can read a 202 later than the debounce
    // (seen once in CI: 1 of 10,350, the purge came first); counting from the request is lenient only
    // for the commit's own milliseconds, and for PURGEs not at all: each event's path is its own,
    // known to the service only through that request, so a PURGE of it follows the commit.
    let mut lost = Vec::new();
    let mut before_ack = 0usize;
    for (path, sent, acked_at) in &acked {
        let after = |t: &Instant, since: &Instant| t >= since;
        let times = purged_at.get(path.as_str());
        let by_purge = times.is_some_and(|ts| ts.iter().any(|t| after(t, sent)));
        let by_ban = bans.iter().any(|b| after(&b.at, sent) && covers(b, path));
        let after_ack = times.is_some_and(|ts| ts.iter().any(|t| after(t, acked_at)))
            || bans
                .iter()
                .any(|b| after(&b.at, acked_at) && covers(b, path));
        if !(by_purge || by_ban) {
            lost.push(path.clone());
        } else if !after_ack {
            before_ack += 1;
        }
    }
    assert!(
        lost.is_empty(),
        "{} of {} acknowledged events have no purge after their commit, e.g. {:?}",
        lost.len(),
        acked.len(),
        &lost[..lost.len().min(5)]
    );
    eprintln!(
        "kill -9 under load ({}): {} acknowledged ({} purged before the client read its 202), {} not acknowledged (killed or busy), {} purge requests, 0 lost",
        if db.is_some() { "PostgreSQL" } else { "SQLite" },
        acked.len(),
        before_ack,
        refused.load(Ordering::Relaxed),
        log.len()
    );
}

const SITE_CONFIG: &str = r#"[build]
source = "site"
out = "out"
compress = []

[deploy]
store = "file://store"

[serve]
reload-ms = 20

[[routes]]
match = "**/*.html"
cache-control = "public, max-age=0, s-maxage=3600"
"#;

fn page(scope: usize, version: usize) -> String {
    format!(
        "<!doctype html><html><head><title>ws {scope}</title></head><body>ws {scope} version {version}</body></html>\n"
    )
}

fn fetch_body(c: &Client, url: &str) -> (String, String) {
    let r = c
        .get(url)
        .header("Accept-Encoding", "identity")
        .send()
        .unwrap_or_else(|e| panic!("GET {url}: {e}"));
    let x = r
        .headers()
        .get("x-cache")
        .map(|v| v.to_str().unwrap().to_string())
        .unwrap_or_default();
    (x, r.text().unwrap())
}

#[test]
fn through_real_varnish_every_page_is_the_newest_once_the_service_drains() {
    through_varnish(None);
}

#[test]
fn two_instances_on_one_postgresql_one_killed_mid_run_leave_no_page_stale_through_varnish() {
    let db = postgres().database("sg_two");
    through_varnish(Some(&db));
}

/// Pages edited in rounds and announced to the service, purging a real Varnish; then every page
/// through Varnish is the newest. With `pg`, two instances share that database, events go to both,
/// and the first is killed with SIGKILL halfway (its claims taken over by the second).
fn through_varnish(pg: Option<&str>) {
    let t = tempfile::tempdir().unwrap();
    let dir = t.path();
    const SCOPES: usize = 40;
    let mut version = vec![1usize; SCOPES + 1];
    for s in 0..=SCOPES {
        write_files(dir, &[(&format!("site/ws/{s}/index.html"), &page(s, 1))]);
    }
    write_files(dir, &[("staleguard.toml", SITE_CONFIG)]);
    let mut b = staleguard(dir);
    b.args(["build"]);
    assert!(run(b).status.success());
    let origin = serve(dir, &["out"]);
    let varnish = Varnish::start(&origin.base);
    write_files(
        dir,
        &[(
            "staleguard.toml",
            &format!(
                "{SITE_CONFIG}\n[service]\ndb = \"svc/events.db\"\ndebounce = \"300ms\"\nmax-wait = \"2s\"\nverify-sample = 2\nlease = \"1s\"\n\n[verify]\ncdn-url = \"{}\"\norigin-url = \"{}\"\ntimeout = \"10s\"\n\n[[cdn]]\nprovider = \"varnish\"\nname = \"edge\"\nnodes = [\"{}\"]\n",
                varnish.url, origin.base, varnish.url
            ),
        )],
    );
    let svc = start_service_on(dir, "127.0.0.1:0", pg);
    let mut first = pg.map(|db| start_service_on(dir, "127.0.0.1:0", Some(db)));
    let c = Client::new();
    let url = |s: usize| format!("{}/ws/{s}/index.html", varnish.url);
    // Every page cached at the edge.
    for s in 0..=SCOPES {
        fetch_body(&c, &url(s));
        assert_eq!(fetch_body(&c, &url(s)).0, "HIT", "ws {s} is cached");
    }

    // Ten rounds: a third of the scopes edited, built, served by the origin, then announced in a burst
    // of several events per scope (a CMS saving repeatedly). Scope SCOPES changes without an event.
    let mut rng = Rng(0xA076_1D64_78BD_642F);
    let mut sent = 0usize;
    for round in 2..12 {
        if round == 7 {
            // SIGKILL: whatever it claimed is taken over by the other once the lease expires.
            drop(first.take());
        }
        let mut edited = Vec::new();
        for (s, v) in version.iter_mut().enumerate().take(SCOPES) {
            if rng.below(3) == 0 {
                *v = round;
                write_files(
                    dir,
                    &[(&format!("site/ws/{s}/index.html"), &page(s, round))],
                );
                edited.push(s);
            }
        }
        version[SCOPES] = round;
        write_files(
            dir,
            &[(
                &format!("site/ws/{SCOPES}/index.html"),
                &page(SCOPES, round),
            )],
        );
        let mut b = staleguard(dir);
        b.args(["build"]);
        assert!(run(b).status.success());
        // The origin serves the edit before the event is sent (the CMS commits, then announces).
        let probe = edited.first().copied().unwrap_or(SCOPES);
        let deadline = Instant::now() + Duration::from_secs(10);
        while !fetch_body(&c, &format!("{}/ws/{probe}/index.html", origin.base))
            .1
            .contains(&format!("version {round}<"))
        {
            assert!(Instant::now() < deadline, "the origin did not switch");
            std::thread::sleep(Duration::from_millis(20));
        }
        for s in &edited {
            for _ in 0..3 {
                // With two instances, every other event goes to the first while it lives.
                sent += 1;
                let to = match &first {
                    Some(f) if sent.is_multiple_of(2) => &f.base,
                    _ => &svc.base,
                };
                let r = authed(
                    &c,
                    reqwest::Method::POST,
                    &format!("{to}/v1/scopes/ws:{s}/invalidations"),
                )
                .json(&json!({"paths": [format!("/ws/{s}/index.html"), format!("/ws/{s}/")]}))
                .send()
                .unwrap();
                assert_eq!(r.status().as_u16(), 202);
            }
        }
        std::thread::sleep(Duration::from_millis(rng.below(400)));
    }
    drained(&c, &svc.base, Duration::from_secs(30));

    let mut stale = Vec::new();
    for (s, v) in version.iter().enumerate().take(SCOPES) {
        let (_, body) = fetch_body(&c, &url(s));
        if !body.contains(&format!("version {v}<")) {
            stale.push(format!("ws {s}: want version {v}, got {body}"));
        }
    }
    assert!(stale.is_empty(), "stale through Varnish: {stale:#?}");
    // The control page changed at the origin without an event: Varnish still serves version 1.
    let (x, body) = fetch_body(&c, &url(SCOPES));
    assert!(
        body.contains("version 1<") && x == "HIT",
        "the cache holds what nobody purged: {x} {body}"
    );
    // Purges went to Varnish as coalesced batches, fewer than the events.
    let m = authed(&c, reqwest::Method::GET, &format!("{}/metrics", svc.base))
        .send()
        .unwrap()
        .text()
        .unwrap();
    let value = |name: &str| -> f64 {
        m.lines()
            .find(|l| l.starts_with(name))
            .and_then(|l| l.rsplit(' ').next())
            .and_then(|v| v.parse().ok())
            .unwrap_or(0.0)
    };
    let accepted = value("staleguard_events_accepted_total");
    let purges = value("staleguard_purges_total{provider=\"edge\",outcome=\"done\"}");
    if pg.is_none() {
        assert!(
            purges > 0.0 && purges < accepted,
            "{purges} purges for {accepted} events"
        );
    } else {
        // The survivor's own counters: it took events and purged batches, its own and the
        // killed one's.
        assert!(
            purges > 0.0 && accepted > 0.0,
            "{purges} purges, {accepted} events"
        );
    }
}

#[test]
fn the_cli_sends_waits_reports_dead_letters_and_retries_them() {
    let t = tempfile::tempdir().unwrap();
    let dir = t.path();
    let rec = recorder();
    // Two CDNs: the recorder, and a node nobody listens on (its batches end as dead letters).
    let dead_port = free_port();
    service_config(
        dir,
        &rec.url,
        &format!(
            "max-attempts = 2\n\n[service.rebound]\nedge = \"300ms\"\n\n[[service.scope]]\nmatch = \"slow:*\"\ndebounce = \"5s\"\nmax-wait = \"10s\"\n\n[[cdn]]\nprovider = \"varnish\"\nname = \"gone\"\nnodes = [\"http://127.0.0.1:{dead_port}\"]\ntimeout = \"2s\"\n"
        ),
    );
    let svc = start_service(dir, "127.0.0.1:0");
    let sg = |args: &[&str]| {
        let mut c = staleguard(dir);
        c.args(args)
            .env("STALEGUARD_SERVICE_TOKEN", TOKEN)
            .env("STALEGUARD_SERVICE_URL", &svc.base);
        run(c)
    };

    // Without a token, the service refuses and the CLI says what to do.
    let mut c = staleguard(dir);
    c.args(["invalidate", "--scope", "ws:1", "--paths", "/a.html"])
        .env("STALEGUARD_SERVICE_TOKEN", "wrong")
        .env("STALEGUARD_SERVICE_URL", &svc.base);
    let o = run(c);
    assert!(!o.status.success());
    assert!(stderr(&o).contains("401") && stderr(&o).contains("STALEGUARD_SERVICE_TOKEN"));
    // A bad path is refused before any request, naming the field.
    let o = sg(&["invalidate", "--scope", "ws:1", "--paths", "a.html"]);
    assert!(
        stderr(&o).contains("paths[0]: must start with `/`"),
        "{}",
        stderr(&o)
    );

    // --wait: until every CDN of the scope purged it or gave up; one gives up here: exit 1, dead.
    let o = sg(&[
        "--json",
        "invalidate",
        "--scope",
        "ws:1",
        "--paths",
        "/a.html",
        "--wait",
    ]);
    let v: Value = serde_json::from_slice(&o.stdout).unwrap();
    assert_eq!(o.status.code(), Some(1), "{v}");
    assert_eq!(v["state"], "dead", "{v}");
    let by: BTreeMap<String, String> = v["providers"]
        .as_array()
        .unwrap()
        .iter()
        .map(|p| {
            (
                p["provider"].as_str().unwrap().into(),
                p["state"].as_str().unwrap().into(),
            )
        })
        .collect();
    assert_eq!(by["edge"], "purged");
    assert_eq!(by["gone"], "dead");
    assert!(rec.log.lock().unwrap().iter().any(|r| r.path == "/a.html"));

    // The dead letter is listed, with its reason; a retry commits its items again as a new event.
    let o = sg(&["--json", "service", "dead"]);
    let v: Value = serde_json::from_slice(&o.stdout).unwrap();
    let letters = v["dead_letters"].as_array().unwrap();
    assert_eq!(letters.len(), 1, "{v}");
    assert_eq!(letters[0]["provider"], "gone");
    assert!(
        letters[0]["reason"]
            .as_str()
            .unwrap()
            .contains(&dead_port.to_string()),
        "{v}"
    );
    let id = letters[0]["id"].as_u64().unwrap().to_string();
    let o = sg(&["--json", "service", "retry", &id]);
    assert!(o.status.success(), "{}", stderr(&o));
    let v: Value = serde_json::from_slice(&o.stdout).unwrap();
    assert_eq!(v["scope"], "ws:1");
    let o = sg(&["--json", "service", "dead"]);
    let v: Value = serde_json::from_slice(&o.stdout).unwrap();
    assert_eq!(v["dead_letters"].as_array().unwrap().len(), 0, "{v}");

    // A scope rule: `slow:*` waits 5 s; status shows it pending, flush makes it due now.
    let o = sg(&[
        "--json",
        "invalidate",
        "--scope",
        "slow:1",
        "--paths",
        "/s.html",
    ]);
    let v: Value = serde_json::from_slice(&o.stdout).unwrap();
    let seq = v["seq"].as_u64().unwrap();
    let o = sg(&["--json", "service", "status", "--scope", "slow:1"]);
    let v: Value = serde_json::from_slice(&o.stdout).unwrap();
    assert_eq!(v["pending"]["edge"], 1, "{v}");
    let o = sg(&["service", "flush", "slow:1"]);
    assert!(String::from_utf8_lossy(&o.stdout).contains("due now"));
    let deadline = Instant::now() + Duration::from_secs(5);
    while !rec.log.lock().unwrap().iter().any(|r| r.path == "/s.html") {
        assert!(Instant::now() < deadline, "flush did not send the batch");
        std::thread::sleep(Duration::from_millis(20));
    }
    // The rebound purge: the same batch again, 300 ms later.
    let deadline = Instant::now() + Duration::from_secs(5);
    let times = loop {
        let t: Vec<Instant> = rec
            .log
            .lock()
            .unwrap()
            .iter()
            .filter(|r| r.path == "/s.html")
            .map(|r| r.at)
            .collect();
        if t.len() >= 2 {
            break t;
        }
        assert!(Instant::now() < deadline, "no rebound purge");
        std::thread::sleep(Duration::from_millis(20));
    };
    assert!(times[1] - times[0] >= Duration::from_millis(300));
    let o = sg(&["--json", "service", "status", "--seq", &seq.to_string()]);
    let v: Value = serde_json::from_slice(&o.stdout).unwrap();
    assert_eq!(v["scope"], "slow:1", "{v}");
    let edge = v["providers"]
        .as_array()
        .unwrap()
        .iter()
        .find(|p| p["provider"] == "edge")
        .unwrap()
        .clone();
    assert_eq!(edge["state"], "purged", "{v}");
}

#[test]
fn the_service_refuses_to_start_without_a_token_or_with_a_bad_scope_rule() {
    let t = tempfile::tempdir().unwrap();
    let dir = t.path();
    service_config(dir, "http://127.0.0.1:9", "");
    let mut c = staleguard(dir);
    c.args(["service", "--listen", "127.0.0.1:0"])
        .env_remove("STALEGUARD_SERVICE_TOKEN");
    let o = run(c);
    assert!(!o.status.success());
    assert!(
        stderr(&o).contains("needs a bearer token") && stderr(&o).contains("openssl rand"),
        "{}",
        stderr(&o)
    );
    service_config(
        dir,
        "http://127.0.0.1:9",
        "\n[[service.scope]]\nmatch = \"ws:*\"\ndebounce = \"2m\"\n",
    );
    let mut c = staleguard(dir);
    c.args(["service"]).env("STALEGUARD_SERVICE_TOKEN", TOKEN);
    let o = run(c);
    assert!(
        stderr(&o).contains("match = \"ws:*\": max-wait (1s) is shorter than debounce (2m)"),
        "{}",
        stderr(&o)
    );
}

#[test]
fn a_page_still_stale_through_the_cdn_fails_its_batch() {
    let t = tempfile::tempdir().unwrap();
    let dir = t.path();
    write_files(dir, &[("out/p.html", "<p>new</p>\n")]);
    let origin = serve(dir, &["out"]);
    // The "CDN" answers every GET with an empty body: never the origin's page.
    let rec = recorder();
    service_config(
        dir,
        &rec.url,
        &format!(
            "max-attempts = 1\nverify-sample = 1\n\n[verify]\ncdn-url = \"{}\"\norigin-url = \"{}\"\ntimeout = \"1s\"\n",
            rec.url, origin.base
        ),
    );
    let svc = start_service(dir, "127.0.0.1:0");
    let mut c = staleguard(dir);
    c.args([
        "--json",
        "invalidate",
        "--scope",
        "ws:1",
        "--paths",
        "/p.html",
        "--wait",
    ])
    .env("STALEGUARD_SERVICE_TOKEN", TOKEN)
    .env("STALEGUARD_SERVICE_URL", &svc.base);
    let o = run(c);
    let v: Value = serde_json::from_slice(&o.stdout).unwrap();
    assert_eq!(v["state"], "dead", "{v}");
    let dead: Value = authed(
        &Client::new(),
        reqwest::Method::GET,
        &format!("{}/v1/dead-letters", svc.base),
    )
    .send()
    .unwrap()
    .json()
    .unwrap();
    let reason = dead["dead_letters"][0]["reason"]
        .as_str()
        .unwrap()
        .to_string();
    assert!(
        reason.contains("still stale through the CDN") && reason.contains("/p.html"),
        "{reason}"
    );
    assert!(
        rec.log.lock().unwrap().iter().any(|r| r.method == "PURGE"),
        "it was purged first"
    );
}
