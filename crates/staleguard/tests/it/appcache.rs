//! App caches (`[[app-cache]]`) on real parts:
//!
//! - **Django, for real**: the demo app (`examples/django/cache_demo`, with the shipped
//!   `examples/django/staleguard_cache.py` backends) caches its rendered page in Redis, and in
//!   memcached; the page's content changes in its database; without a bump it stays old, after
//!   `staleguard cache bump`, and after a `deploy` whose config has the target, it is new.
//! - **The order**: a real Varnish in front of that Django view: a CDN purge before the bump re-caches
//!   the stale page (Varnish refetches it from the app cache), while staleguard's order (bump, then
//!   purge) serves the new one.
//! - **deploy, rollback and the service** bump before they purge (a CDN stand-in reads the counter when
//!   each PURGE arrives); a failed bump purges nothing and exits 3; the service, killed with SIGKILL
//!   between its bump and its purge, does both again after a restart.

use std::io::{BufReader, Write};
use std::net::{TcpListener, TcpStream};
use std::path::Path;
use std::process::{Child, Command};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use staleguard_testkit::memcached::Memcached;
use staleguard_testkit::redis::Redis;
use staleguard_testkit::varnish::Varnish;

use crate::support::*;

fn free_port() -> u16 {
    TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port()
}

/// The demo Django app, on a free port (killed on drop).
struct Django {
    child: Child,
    url: String,
    db: std::path::PathBuf,
}

impl Drop for Django {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

impl Django {
    fn start(dir: &Path, cache: &str, location: &str) -> Django {
        let db = dir.join("content.sqlite3");
        let port = free_port();
        let mut c = Command::new(venv_bin("python"));
        c.arg(repo().join("examples/django/cache_demo/manage.py"))
            .args(["runserver", "--noreload", &format!("127.0.0.1:{port}")])
            .env("DEMO_CACHE", cache)
            .env("DEMO_CACHE_LOCATION", location)
            .env("DEMO_DB", &db)
            .stdout(std::process::Stdio::null())
            .stderr(std::process::Stdio::null());
        let d = Django {
            child: c
                .spawn()
                .expect("the test venv's python (scripts/pyenv.sh)"),
            url: format!("http://127.0.0.1:{port}"),
            db,
        };
        d.set_content("version 1");
        let deadline = Instant::now() + Duration::from_secs(60);
        while reqwest::blocking::get(&d.url).is_err() {
            assert!(Instant::now() < deadline, "Django did not start");
            std::thread::sleep(Duration::from_millis(100));
        }
        d
    }

    /// The database changes (a CMS save): the view's source of truth.
    fn set_content(&self, body: &str) {
        let o = Command::new(venv_bin("python"))
            .arg("-c")
            .arg(
                "import sqlite3, sys\nc = sqlite3.connect(sys.argv[1])\nc.execute('CREATE TABLE IF NOT EXISTS content (body TEXT)')\nc.execute('DELETE FROM content')\nc.execute('INSERT INTO content VALUES (?)', (sys.argv[2],))\nc.commit()",
            )
            .arg(&self.db)
            .arg(body)
            .output()
            .unwrap();
        assert!(o.status.success(), "{}", String::from_utf8_lossy(&o.stderr));
    }
}

fn page(url: &str) -> String {
    reqwest::blocking::Client::new()
        .get(url)
        .header("accept-encoding", "identity")
        .send()
        .unwrap_or_else(|e| panic!("GET {url}: {e}"))
        .text()
        .unwrap()
}

fn sg(dir: &Path, args: &[&str]) -> std::process::Output {
    let mut c = staleguard(dir);
    c.args(args);
    run(c)
}

fn django_cycle(cache: &str, location: &str, target: &str) {
    let t = tempfile::tempdir().unwrap();
    let dir = t.path();
    write_files(
        dir,
        &[
            ("site/index.html", "<p>static 1</p>\n"),
            (
                "staleguard.toml",
                &format!(
                    "[build]\nsource = \"site\"\nout = \"out\"\ncompress = []\n\n[deploy]\nstore = \"file://store\"\n\n{target}"
                ),
            ),
        ],
    );
    let app = Django::start(dir, cache, location);
    assert!(page(&app.url).contains("version 1"));
    // The database changes; the page comes from the app cache: still the old one.
    app.set_content("version 2");
    assert!(page(&app.url).contains("version 1"), "cached in {cache}");
    let o = sg(dir, &["cache", "bump"]);
    assert!(o.status.success(), "{}", stderr(&o));
    let said = String::from_utf8_lossy(&o.stdout);
    assert!(
        said.contains("app cache django: global → version "),
        "{said}"
    );
    assert!(page(&app.url).contains("version 2"), "fresh after the bump");

    // Without a bump it stays old …
    app.set_content("version 3");
    assert!(page(&app.url).contains("version 2"));
    // … and a deploy whose config has the target bumps it.
    write_files(dir, &[("site/index.html", "<p>static 2</p>\n")]);
    let o = sg(dir, &["deploy", "--json"]);
    assert!(o.status.success(), "{}", stderr(&o));
    let report: serde_json::Value = serde_json::from_slice(&o.stdout).unwrap();
    assert_eq!(report["app_caches"]["bumped"][0]["target"], "django");
    assert!(
        report["app_caches"]["bumped"][0]["version"]
            .as_u64()
            .is_some()
    );
    assert!(
        page(&app.url).contains("version 3"),
        "fresh after the deploy"
    );
    let st = sg(dir, &["cache", "status", "--json"]);
    let v: serde_json::Value = serde_json::from_slice(&st.stdout).unwrap();
    assert_eq!(v["versions"][0]["key"], "staleguard:ns:global");
}

#[test]
fn a_django_page_cached_in_redis_is_fresh_after_a_bump_or_a_deploy_and_stale_without() {
    let redis = Redis::start();
    django_cycle(
        "redis",
        &redis.url,
        &format!(
            "[[app-cache]]\nname = \"django\"\nkind = \"redis\"\nurl = \"{}\"\n",
            redis.url
        ),
    );
}

#[test]
fn a_django_page_cached_in_a_memcached_pool_is_fresh_after_a_bump_or_a_deploy_and_stale_without() {
    let (a, b) = (Memcached::start(), Memcached::start());
    django_cycle(
        "memcached",
        &format!("{},{}", a.addr, b.addr),
        &format!(
            "[[app-cache]]\nname = \"django\"\nkind = \"memcached\"\nservers = [\"{}\", \"{}\"]\n",
            a.url, b.url
        ),
    );
}

#[test]
fn through_varnish_a_purge_before_the_bump_re_caches_the_stale_page_and_staleguards_order_does_not()
{
    let t = tempfile::tempdir().unwrap();
    let dir = t.path();
    let redis = Redis::start();
    let app = Django::start(dir, "redis", &redis.url);
    let varnish = Varnish::start(&app.url);
    write_files(
        dir,
        &[(
            "staleguard.toml",
            &format!(
                "[deploy]\nstore = \"file://store\"\n\n[[app-cache]]\nname = \"django\"\nkind = \"redis\"\nurl = \"{}\"\n\n[[cdn]]\nprovider = \"varnish\"\nname = \"edge\"\nnodes = [\"{}\"]\n",
                redis.url, varnish.url
            ),
        )],
    );
    let edge = format!("{}/", varnish.url);
    assert!(page(&edge).contains("version 1"));
    app.set_content("version 2");
    // The wrong order: the CDN first. Varnish refetches from Django, which answers from its cache:
    // the old page, cached again at the edge for an hour.
    let o = sg(dir, &["invalidate", "--paths", "/", "--no-app-cache"]);
    assert!(o.status.success(), "{}", stderr(&o));
    assert!(page(&edge).contains("version 1"), "re-cached stale");
    // Bumping afterwards is too late: the edge holds the stale copy.
    assert!(sg(dir, &["cache", "bump"]).status.success());
    assert!(
        page(&edge).contains("version 1"),
        "the edge still serves it"
    );
    assert!(
        page(&app.url).contains("version 2"),
        "while the origin is fresh"
    );

    // staleguard's order: bump, then purge, in one command.
    app.set_content("version 3");
    let o = sg(
        dir,
        &["invalidate", "--paths", "/", "--namespace", "global"],
    );
    assert!(o.status.success(), "{}", stderr(&o));
    let said = String::from_utf8_lossy(&o.stdout);
    assert!(
        page(&edge).contains("version 3"),
        "fresh through the edge: {said}"
    );
}

/// A CDN stand-in speaking Varnish's purge protocol that reads the Redis counter as each PURGE
/// arrives (so the order of bump and purge is seen from the CDN's side), and can hold each purge.
struct Cdn {
    url: String,
    log: Arc<Mutex<Vec<Seen>>>,
}

/// A purge request the stand-in received: method, path, the counter when it arrived.
type Seen = (String, String, Option<u64>);

fn cdn(redis_url: String, counter: &'static str, hold: Duration) -> Cdn {
    let l = TcpListener::bind("127.0.0.1:0").unwrap();
    let url = format!("http://{}", l.local_addr().unwrap());
    let log: Arc<Mutex<Vec<Seen>>> = Arc::default();
    let sink = log.clone();
    std::thread::spawn(move || {
        for stream in l.incoming().flatten() {
            let (sink, redis_url) = (sink.clone(), redis_url.clone());
            std::thread::spawn(move || cdn_conn(stream, &sink, &redis_url, counter, hold));
        }
    });
    Cdn { url, log }
}

fn cdn_conn(
    stream: TcpStream,
    sink: &Mutex<Vec<Seen>>,
    redis_url: &str,
    counter: &str,
    hold: Duration,
) {
    let mut w = stream.try_clone().unwrap();
    let mut r = BufReader::new(stream);
    while let Some(req) = read_request(&mut r) {
        let seen = Command::new("redis-cli")
            .args(["-u", redis_url, "GET", counter])
            .output()
            .ok()
            .and_then(|o| String::from_utf8_lossy(&o.stdout).trim().parse().ok());
        sink.lock().unwrap().push((req.method, req.path, seen));
        std::thread::sleep(hold);
        let _ = w.write_all(b"HTTP/1.1 200 OK\r\ncontent-length: 0\r\n\r\n");
    }
}

fn counter(redis_url: &str, key: &str) -> Option<u64> {
    let o = Command::new("redis-cli")
        .args(["-u", redis_url, "GET", key])
        .output()
        .unwrap();
    String::from_utf8_lossy(&o.stdout).trim().parse().ok()
}

#[test]
fn deploy_and_rollback_bump_before_they_purge_and_a_failed_bump_purges_nothing() {
    let t = tempfile::tempdir().unwrap();
    let dir = t.path();
    let redis = Redis::start();
    let cdn = cdn(redis.url.clone(), "staleguard:ns:global", Duration::ZERO);
    let config = |url: &str| {
        format!(
            "[build]\nsource = \"site\"\nout = \"out\"\ncompress = []\n\n[deploy]\nstore = \"file://store\"\n\n[[app-cache]]\nname = \"pages\"\nkind = \"redis\"\nurl = \"{url}\"\ntimeout = \"2s\"\n\n[[cdn]]\nprovider = \"varnish\"\nname = \"edge\"\nnodes = [\"{}\"]\n",
            cdn.url
        )
    };
    write_files(
        dir,
        &[
            ("site/index.html", "<p>1</p>\n"),
            ("staleguard.toml", &config(&redis.url)),
        ],
    );
    let o = sg(dir, &["deploy"]);
    assert!(o.status.success(), "{}", stderr(&o));
    let after_first = counter(&redis.url, "staleguard:ns:global").expect("bumped");
    write_files(dir, &[("site/index.html", "<p>2</p>\n")]);
    let o = sg(dir, &["deploy"]);
    assert!(o.status.success(), "{}", stderr(&o));
    let out = String::from_utf8_lossy(&o.stdout);
    assert!(out.contains("app cache pages: global → version "), "{out}");
    let after_second = counter(&redis.url, "staleguard:ns:global").unwrap();
    assert_eq!(after_second, after_first + 1);
    // Each deploy's purge (PURGE or BAN) arrived once that deploy's bump was done.
    let log = cdn.log.lock().unwrap().clone();
    assert_eq!(log.len(), 2, "one purge per deploy: {log:?}");
    assert_eq!(
        (log[0].2, log[1].2),
        (Some(after_first), Some(after_second)),
        "the CDN saw the bumped counter: {log:?}"
    );
    let o = sg(dir, &["rollback"]);
    assert!(o.status.success(), "{}", stderr(&o));
    let after_rollback = counter(&redis.url, "staleguard:ns:global").unwrap();
    assert_eq!(after_rollback, after_second + 1);
    assert_eq!(
        cdn.log.lock().unwrap().last().unwrap().2,
        Some(after_rollback),
        "rollback: bumped before its purge"
    );

    // The app cache is down: deployed, but nothing purged, exit 3; it stays pending.
    let down = format!("redis://127.0.0.1:{}", free_port());
    write_files(
        dir,
        &[
            ("site/index.html", "<p>3</p>\n"),
            ("staleguard.toml", &config(&down)),
        ],
    );
    let purges_before = cdn.log.lock().unwrap().len();
    let o = sg(dir, &["deploy"]);
    assert_eq!(o.status.code(), Some(3), "{}", stderr(&o));
    let err = stderr(&o);
    assert!(err.contains("app cache `pages`"), "{err}");
    assert!(err.contains("no CDN was purged"), "{err}");
    assert_eq!(
        cdn.log.lock().unwrap().len(),
        purges_before,
        "nothing purged"
    );
    // Back up: `invalidate` bumps, then purges what is pending.
    write_files(dir, &[("staleguard.toml", &config(&redis.url))]);
    let o = sg(dir, &["invalidate"]);
    assert!(o.status.success(), "{}", stderr(&o));
    let bumped = counter(&redis.url, "staleguard:ns:global").unwrap();
    assert_eq!(bumped, after_rollback + 1);
    let log = cdn.log.lock().unwrap().clone();
    assert!(log.len() > purges_before, "purged now");
    assert!(
        log[purges_before..]
            .iter()
            .all(|(_, _, c)| *c == Some(bumped))
    );
}

#[test]
fn the_service_bumps_an_events_namespace_before_its_purge_and_again_after_a_kill_9_between() {
    let t = tempfile::tempdir().unwrap();
    let dir = t.path();
    let redis = Redis::start();
    // Each purge is held 3 s: the service is killed while it waits, after its bump.
    let cdn = cdn(
        redis.url.clone(),
        "staleguard:ns:ws:42",
        Duration::from_secs(3),
    );
    write_files(
        dir,
        &[(
            "staleguard.toml",
            &format!(
                "[deploy]\nstore = \"file://store\"\n\n[service]\ndb = \"svc/events.db\"\ndebounce = \"100ms\"\nmax-wait = \"1s\"\n\n[[app-cache]]\nname = \"pages\"\nkind = \"redis\"\nurl = \"{}\"\n\n[[cdn]]\nprovider = \"varnish\"\nname = \"edge\"\nnodes = [\"{}\"]\n",
                redis.url, cdn.url
            ),
        )],
    );
    let token = "appcache-test-token";
    let listen = format!("127.0.0.1:{}", free_port());
    let start = || {
        let mut c = staleguard(dir);
        c.args(["service", "--listen", &listen])
            .env("STALEGUARD_SERVICE_TOKEN", token);
        spawn_listening(c).0
    };
    let mut svc = start();
    let base = format!("http://{listen}");
    let c = reqwest::blocking::Client::new();
    let r = c
        .post(format!("{base}/v1/scopes/ws:42/invalidations"))
        .bearer_auth(token)
        .json(&serde_json::json!({"paths": ["/ws/42/"], "namespaces": ["ws:42"]}))
        .send()
        .unwrap();
    assert_eq!(r.status().as_u16(), 202);
    // The bump happens, then the PURGE arrives (and is held): kill -9 right then.
    let deadline = Instant::now() + Duration::from_secs(30);
    while cdn.log.lock().unwrap().is_empty() {
        assert!(Instant::now() < deadline, "no purge arrived");
        std::thread::sleep(Duration::from_millis(20));
    }
    let first = counter(&redis.url, "staleguard:ns:ws:42").expect("bumped before the purge");
    assert_eq!(cdn.log.lock().unwrap()[0].2, Some(first));
    svc.kill().unwrap();
    svc.wait().unwrap();
    // Restarted: the batch was not confirmed, so it runs again, bump then purge.
    let mut svc = start();
    let deadline = Instant::now() + Duration::from_secs(30);
    loop {
        let m = c
            .get(format!("{base}/metrics"))
            .bearer_auth(token)
            .send()
            .and_then(|r| r.text())
            .unwrap_or_default();
        if m.lines().any(|l| l == "staleguard_events_pending 0") {
            break;
        }
        assert!(Instant::now() < deadline, "not drained:\n{m}");
        std::thread::sleep(Duration::from_millis(50));
    }
    let second = counter(&redis.url, "staleguard:ns:ws:42").unwrap();
    assert_eq!(
        second,
        first + 1,
        "bumped again (at least once: an extra bump is harmless)"
    );
    let log = cdn.log.lock().unwrap().clone();
    assert!(log.len() >= 2, "purged again: {log:?}");
    assert_eq!(log.last().unwrap().2, Some(second), "after the second bump");
    // Only ws:42 moved; the global namespace was never touched.
    assert_eq!(counter(&redis.url, "staleguard:ns:global"), None);
    let _ = svc.kill();
    let _ = svc.wait();
}
