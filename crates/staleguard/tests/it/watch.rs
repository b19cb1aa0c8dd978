//! `staleguard watch` end to end on real parts: `staleguard serve` as the origin of a local store,
//! a real Varnish (and `staleguard edge`) in front. Fresh rounds; a deploy without a purge turns the
//! gauges stale within two rounds and one webhook message arrives (and no second one while it stays
//! stale); `invalidate` brings it back to fresh with one "cleared" message. The metrics parse with
//! the official Prometheus client's OpenMetrics parser; `--once` exits 0 fresh, 3 stale.

use std::io::{BufRead, BufReader, Read, Write};
use std::path::Path;
use std::process::{Child, Stdio};
use std::sync::mpsc;
use std::time::{Duration, Instant};

use serde_json::Value;

use crate::nodes::{self, Kind};
use crate::serve::serve;
use crate::support::*;

const SITE: &str = r#"[build]
source = "site"
out = "out"
compress = ["br"]

[deploy]
store = "file://store"

[serve]
reload-ms = 20

[[routes]]
match = "**/*.html"
cache-control = "public, max-age=0, s-maxage=3600"

[watch]
interval = "300ms"
sample = 2
stale-rounds = 2
"#;

fn page(body: &str) -> String {
    format!("<!doctype html><html><body>{body}</body></html>\n")
}

fn sg(dir: &Path, args: &[&str]) -> std::process::Output {
    let mut c = staleguard(dir);
    c.args(args);
    run(c)
}

/// A webhook receiver for any number of messages: each body is sent on the channel.
fn receiver() -> (String, mpsc::Receiver<Value>) {
    let l = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let url = format!("http://{}/services/T0/B0/token", l.local_addr().unwrap());
    let (tx, rx) = mpsc::channel();
    std::thread::spawn(move || {
        for s in l.incoming() {
            let Ok(s) = s else { return };
            let mut r = BufReader::new(s.try_clone().unwrap());
            let mut len = 0usize;
            let mut line = String::new();
            loop {
                line.clear();
                if r.read_line(&mut line).unwrap_or(0) == 0 || line == "\r\n" {
                    break;
                }
                if let Some(v) = line.to_ascii_lowercase().strip_prefix("content-length:") {
                    len = v.trim().parse().unwrap();
                }
            }
            let mut body = vec![0; len];
            r.read_exact(&mut body).unwrap();
            let mut s = s;
            let _ = write!(
                s,
                "HTTP/1.1 200 OK\r\nContent-Length: 2\r\nConnection: close\r\n\r\nok"
            );
            if tx.send(serde_json::from_slice(&body).unwrap()).is_err() {
                return;
            }
        }
    });
    (url, rx)
}

struct Watch {
    child: Child,
    lines: mpsc::Receiver<Value>,
    metrics: String,
}

impl Drop for Watch {
    /// A failed assertion must not leave the monitor running.
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

impl Watch {
    fn start(dir: &Path, webhook: &str) -> Watch {
        let mut c = staleguard(dir);
        c.args(["--json", "watch", "--listen", "127.0.0.1:0"])
            .env("STALEGUARD_WEBHOOK_URL", webhook)
            .stdout(Stdio::piped())
            .stderr(Stdio::inherit());
        let mut child = c.spawn().unwrap();
        let out = BufReader::new(child.stdout.take().unwrap());
        let (tx, lines) = mpsc::channel();
        std::thread::spawn(move || {
            for l in out.lines() {
                let Ok(l) = l else { return };
                let v: Value =
                    serde_json::from_str(&l).unwrap_or_else(|e| panic!("not JSON ({e}): {l}"));
                if tx.send(v).is_err() {
                    return;
                }
            }
        });
        let first = lines.recv_timeout(Duration::from_secs(30)).unwrap();
        let metrics = first["metrics"].as_str().unwrap().to_string();
        Watch {
            child,
            lines,
            metrics,
        }
    }

    /// The next round's report.
    fn round(&self) -> Value {
        self.lines
            .recv_timeout(Duration::from_secs(30))
            .expect("a round within 30 s")
    }

    /// Forgets the rounds reported so far (they ran before what the test just did).
    fn drain(&self) {
        while self.lines.try_recv().is_ok() {}
    }

    /// The rounds until one satisfies `ok`, at most `n`; panics with them otherwise.
    fn until(&self, n: usize, ok: impl Fn(&Value) -> bool) -> (usize, Value) {
        let mut seen = Vec::new();
        for i in 1..=n {
            let r = self.round();
            if ok(&r) {
                return (i, r);
            }
            seen.push(r);
        }
        panic!("no such round in {n}: {seen:#?}");
    }

    fn scrape(&self) -> String {
        reqwest::blocking::get(&self.metrics)
            .unwrap()
            .text()
            .unwrap()
    }
}

/// The value of a sample `name{labels}` in a text exposition.
fn sample(text: &str, name: &str) -> f64 {
    text.lines()
        .find(|l| l.starts_with(name) && !l.starts_with('#'))
        .and_then(|l| l.rsplit(' ').next())
        .and_then(|v| v.parse().ok())
        .unwrap_or_else(|| panic!("no `{name}` in:\n{text}"))
}

/// Parses the exposition with the official Prometheus client's OpenMetrics parser (strict: a syntax
/// error, a missing `# EOF`, a bad label or value fails), and checks every family has help text.
fn parse_metrics(text: &str) -> usize {
    let python = staleguard_testkit::venv_python();
    let script = r#"
import sys
from prometheus_client.openmetrics.parser import text_string_to_metric_families
fams = list(text_string_to_metric_families(sys.stdin.read()))
assert fams, "no metric families"
for f in fams:
    assert f.documentation, f"{f.name} has no help text"
    assert f.name.startswith("staleguard_"), f.name
print(len(fams))
"#;
    let mut c = std::process::Command::new(&python)
        .args(["-c", script])
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap_or_else(|e| {
            panic!(
                "cannot run {}: {e}\nhint: scripts/pyenv.sh installs the test venv (scripts/test.sh does)",
                python.display()
            )
        });
    c.stdin.take().unwrap().write_all(text.as_bytes()).unwrap();
    let o = c.wait_with_output().unwrap();
    assert!(
        o.status.success(),
        "the OpenMetrics parser refused the metrics:\n{}\n{text}",
        String::from_utf8_lossy(&o.stderr)
    );
    String::from_utf8_lossy(&o.stdout).trim().parse().unwrap()
}

fn watch_goes_stale_and_back_with_one_message_each(kind: Kind) {
    let t = tempfile::tempdir().unwrap();
    let dir = t.path();
    write_files(
        dir,
        &[
            ("site/index.html", &page("home v1")),
            ("site/docs/a.html", &page("a v1")),
            ("site/docs/b.html", &page("b v1")),
            ("site/docs/c.html", &page("c v1")),
            ("site/style.css", "body { color: black }\n"),
            ("staleguard.toml", SITE),
        ],
    );
    assert!(sg(dir, &["build"]).status.success());
    assert!(sg(dir, &["deploy"]).status.success());
    let origin = serve(dir, &["store"]);
    let node = nodes::start(kind, &origin.base, dir);
    let config = format!(
        "{SITE}\n[[cdn]]\nprovider = \"varnish\"\nnodes = [\"{n}\"]\n\n[verify]\ncdn-url = [\"{n}\"]\norigin-url = \"{o}\"\ntimeout = \"2s\"\n",
        n = node.url,
        o = origin.base
    );
    write_files(dir, &[("staleguard.toml", &config)]);
    assert!(sg(dir, &["invalidate"]).status.success());
    assert_eq!(sg(dir, &["watch", "--once"]).status.code(), Some(0));

    let (hook, messages) = receiver();
    let w = Watch::start(dir, &hook);
    // Fresh rounds first; every page gets into the edge's cache along the way.
    let (_, r) = w.until(10, |r| r["fresh"] == true);
    assert!(r["live"].as_u64().unwrap() >= 4, "{r}");
    for p in ["/", "/docs/a.html", "/docs/b.html", "/docs/c.html"] {
        reqwest::blocking::get(format!("{}{p}", node.url)).unwrap();
    }
    let metrics = w.scrape();
    assert_eq!(parse_metrics(&metrics), 6, "{metrics}");
    assert_eq!(sample(&metrics, "staleguard_edge_stale_urls{"), 0.0);
    assert_eq!(sample(&metrics, "staleguard_edge_version_match{"), 1.0);

    // A deploy without a purge: the edge keeps the old page for its s-maxage.
    write_files(dir, &[("site/docs/a.html", &page("a v2"))]);
    assert!(sg(dir, &["build"]).status.success());
    let o = sg(dir, &["deploy", "--no-purge", "--no-verify"]);
    assert!(o.status.success(), "{}", stderr(&o));
    w.drain();
    let (n, r) = w.until(3, |r| r["fresh"] == false);
    // The round running while the deploy finished may still have been fresh: within two rounds after.
    assert!(n <= 2, "stale after {n} rounds");
    let stale: Vec<&str> = r["edges"][0]["stale"]
        .as_array()
        .unwrap()
        .iter()
        .map(|s| s["path"].as_str().unwrap())
        .collect();
    assert!(stale.contains(&"/docs/a.html"), "{r}");
    let metrics = w.scrape();
    assert_eq!(parse_metrics(&metrics), 6, "{metrics}");
    assert!(
        sample(&metrics, "staleguard_edge_stale_urls{") >= 1.0,
        "{metrics}"
    );
    assert!(sample(&metrics, "staleguard_watch_rounds_total{outcome=\"stale\"}") >= 1.0);
    assert!(sample(&metrics, "staleguard_deploy_age_seconds") >= 0.0);
    assert_eq!(sg(dir, &["watch", "--once"]).status.code(), Some(3));

    // One message once it has been stale two rounds, naming the URL, Age and X-Cache.
    let m = messages
        .recv_timeout(Duration::from_secs(30))
        .expect("a stale notification");
    let text = m["text"].as_str().unwrap();
    assert!(
        text.contains("stale") && text.contains("/docs/a.html"),
        "{m}"
    );
    assert!(text.contains("X-Cache HIT"), "{m}");
    assert_eq!(m["staleguard"]["kind"], "stale");
    // Still stale for more rounds: no second message.
    for _ in 0..3 {
        assert_eq!(w.round()["fresh"], false);
    }
    assert!(messages.try_recv().is_err(), "one message per incident");

    // The pending purge: fresh again, one "cleared" message.
    assert!(sg(dir, &["invalidate"]).status.success());
    w.drain();
    let (n, _) = w.until(4, |r| r["fresh"] == true);
    assert!(n <= 2, "fresh after {n} rounds");
    let m = messages
        .recv_timeout(Duration::from_secs(30))
        .expect("a cleared notification");
    assert_eq!(m["staleguard"]["kind"], "cleared", "{m}");
    let t0 = Instant::now();
    while t0.elapsed() < Duration::from_secs(1) {
        assert_eq!(w.round()["fresh"], true);
    }
    assert!(messages.try_recv().is_err(), "one cleared message");
    let metrics = w.scrape();
    assert_eq!(parse_metrics(&metrics), 6, "{metrics}");
    assert_eq!(sample(&metrics, "staleguard_edge_stale_urls{"), 0.0);
    assert_eq!(sample(&metrics, "staleguard_watch_incidents{"), 0.0);

    let mut w = w;
    let status = sigterm_and_wait(&mut w.child, "watch");
    assert!(status.success(), "{status}");
}

#[test]
fn watch_through_varnish_goes_stale_and_back_with_one_message_each() {
    watch_goes_stale_and_back_with_one_message_each(Kind::Varnish);
}

#[test]
fn watch_through_the_edge_goes_stale_and_back_with_one_message_each() {
    watch_goes_stale_and_back_with_one_message_each(Kind::Edge);
}

#[test]
fn watch_without_a_cdn_url_says_what_to_set() {
    let t = tempfile::tempdir().unwrap();
    std::fs::write(t.path().join("staleguard.toml"), SITE).unwrap();
    let o = sg(t.path(), &["watch", "--once"]);
    assert_eq!(o.status.code(), Some(1), "{}", stderr(&o));
    assert!(stderr(&o).contains("cdn-url"), "{}", stderr(&o));
}

/// `[service] watch = true`: the same rounds inside `staleguard service`, the watch metrics on the
/// service's `/metrics` (one exposition: it still parses), stale after a deploy without a purge and
/// fresh again after `invalidate`.
#[test]
fn the_service_watches_too_and_serves_the_watch_metrics() {
    let t = tempfile::tempdir().unwrap();
    let dir = t.path();
    write_files(
        dir,
        &[
            ("site/index.html", &page("home v1")),
            ("site/docs/a.html", &page("a v1")),
            ("staleguard.toml", SITE),
        ],
    );
    assert!(sg(dir, &["build"]).status.success());
    assert!(sg(dir, &["deploy"]).status.success());
    let origin = serve(dir, &["store"]);
    let node = nodes::start(Kind::Varnish, &origin.base, dir);
    let config = format!(
        "{SITE}\n[service]\ndb = \"svc/events.db\"\nwatch = true\n\n[[cdn]]\nprovider = \"varnish\"\nnodes = [\"{n}\"]\n\n[verify]\ncdn-url = [\"{n}\"]\norigin-url = \"{o}\"\ntimeout = \"2s\"\n",
        n = node.url,
        o = origin.base
    );
    write_files(dir, &[("staleguard.toml", &config)]);
    assert!(sg(dir, &["invalidate"]).status.success());
    for p in ["/", "/docs/a.html"] {
        reqwest::blocking::get(format!("{}{p}", node.url)).unwrap();
    }
    let mut c = staleguard(dir);
    c.args(["service", "--listen", "127.0.0.1:0"])
        .env("STALEGUARD_SERVICE_TOKEN", "watch-token-1");
    let (child, base) = spawn_listening(c);
    struct Kill(Child);
    impl Drop for Kill {
        fn drop(&mut self) {
            let _ = self.0.kill();
            let _ = self.0.wait();
        }
    }
    let _svc = Kill(child);
    let http = reqwest::blocking::Client::new();
    let scrape = || {
        http.get(format!("{base}/metrics"))
            .bearer_auth("watch-token-1")
            .send()
            .unwrap()
            .text()
            .unwrap()
    };
    let wait_for = |what: &str, ok: &dyn Fn(&str) -> bool| {
        let deadline = Instant::now() + Duration::from_secs(30);
        loop {
            let m = scrape();
            if ok(&m) {
                return m;
            }
            assert!(Instant::now() < deadline, "{what}:\n{m}");
            std::thread::sleep(Duration::from_millis(100));
        }
    };
    let fresh = |m: &str| {
        m.contains("staleguard_watch_rounds_total{outcome=\"fresh\"} ")
            && sample(m, "staleguard_watch_rounds_total{outcome=\"fresh\"}") >= 1.0
            && sample(m, "staleguard_edge_stale_urls{") == 0.0
    };
    let m = wait_for("a fresh round", &fresh);
    let families = parse_metrics(&m);
    assert!(
        families > 6,
        "the service's metrics and the watch's: {families}\n{m}"
    );
    assert!(m.contains("staleguard_events_pending"), "{m}");

    write_files(dir, &[("site/docs/a.html", &page("a v2"))]);
    assert!(sg(dir, &["build"]).status.success());
    let o = sg(dir, &["deploy", "--no-purge", "--no-verify"]);
    assert!(o.status.success(), "{}", stderr(&o));
    wait_for("stale after a deploy without a purge", &|m| {
        sample(m, "staleguard_edge_stale_urls{") >= 1.0
    });
    assert!(sg(dir, &["invalidate"]).status.success());
    let m = wait_for("fresh after invalidate", &|m| {
        sample(m, "staleguard_edge_stale_urls{") == 0.0
    });
    parse_metrics(&m);
}
