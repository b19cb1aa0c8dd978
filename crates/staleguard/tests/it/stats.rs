//! `staleguard stats` on logs written by real software: `varnishncsa` reading a real Varnish in front
//! of `staleguard serve`, nginx's access log with `proxy_cache` and `$upstream_cache_status`, both
//! from traffic the test drives (known hits, misses and bytes, asserted exactly), and a CloudFront
//! standard log in the documented format (a committed fixture, plain and gzipped) against totals
//! computed by hand. The HTML report is opened in headless Chromium: it renders, its SVG charts are
//! there, nothing is logged to the console; the screenshot is kept under
//! `target/tmp/artifacts/stats/`.

use std::path::{Path, PathBuf};
use std::process::Command;

use reqwest::blocking::Client;
use serde_json::Value;
use staleguard_testkit::peer::Peer;

use crate::serve::serve;
use crate::support::*;

const CONFIG: &str = r#"[build]
source = "site"
out = "out"
compress = ["gzip"]

[serve]
reload-ms = 20

[deploy]
store = "file://store"

[[routes]]
match = "docs/**"
cache-control = "public, max-age=0, s-maxage=1"
"#;

/// The varnishncsa format the README documents: combined + handling + Age.
const VARNISH_FORMAT: &str =
    r#"%h %l %u %t "%r" %s %b "%{Referer}i" "%{User-agent}i" %{Varnish:handling}x %{Age}o"#;

fn fixture(name: &str) -> PathBuf {
    repo()
        .join("crates/staleguard/tests/it/fixtures/stats")
        .join(name)
}

/// A folder under target/tmp kept after the test (screenshots, reports).
fn artifacts() -> PathBuf {
    let d = PathBuf::from(env!("CARGO_TARGET_TMPDIR")).join("artifacts/stats");
    std::fs::create_dir_all(&d).unwrap();
    d
}

/// The example site built with [`CONFIG`], in a temp folder.
fn site() -> (tempfile::TempDir, Value) {
    let t = tempfile::tempdir().unwrap();
    let dir = t.path();
    copy_dir(&repo().join("examples/site"), &dir.join("site"));
    write_files(dir, &[("staleguard.toml", CONFIG)]);
    let mut c = staleguard(dir);
    c.arg("build");
    let o = run(c);
    assert!(o.status.success(), "build: {}", stderr(&o));
    let m = manifest(&dir.join("out"));
    (t, m)
}

/// GETs `url` without compression; (status, body length, `Age`).
fn get(c: &Client, url: &str) -> (u16, u64, u64) {
    let r = c
        .get(url)
        .header("Accept-Encoding", "identity")
        .send()
        .unwrap_or_else(|e| panic!("GET {url}: {e}"));
    let status = r.status().as_u16();
    let age = r
        .headers()
        .get("age")
        .and_then(|v| v.to_str().ok()?.parse().ok())
        .unwrap_or(0);
    (status, r.bytes().unwrap().len() as u64, age)
}

/// `staleguard stats ARGS --json` in `dir`: the report and the exit code.
fn stats(dir: &Path, args: &[&str]) -> (Value, i32) {
    let mut c = staleguard(dir);
    c.arg("stats").args(args).arg("--json");
    let o = c.output().unwrap();
    let code = o.status.code().unwrap_or(-1);
    assert!(
        code == 0 || code == 3,
        "stats {args:?} exited {code}: {}",
        stderr(&o)
    );
    let v: Value = serde_json::from_slice(&o.stdout)
        .unwrap_or_else(|e| panic!("stats --json: {e}: {}", String::from_utf8_lossy(&o.stdout)));
    (v, code)
}

fn n(v: &Value, path: &str) -> u64 {
    v.pointer(path)
        .and_then(Value::as_u64)
        .unwrap_or_else(|| panic!("no number at {path} in {v}"))
}

fn f(v: &Value, path: &str) -> f64 {
    v.pointer(path)
        .and_then(Value::as_f64)
        .unwrap_or_else(|| panic!("no number at {path} in {v}"))
}

/// Equal within JSON's float round trip (serde_json may read the last digit one ulp off).
#[track_caller]
fn close(a: f64, b: f64) {
    assert!((a - b).abs() < 1e-12, "{a} != {b}");
}

fn urls(list: &Value) -> Vec<(String, u64)> {
    list["urls"]
        .as_array()
        .unwrap()
        .iter()
        .map(|u| {
            (
                u["url"].as_str().unwrap().to_string(),
                u["count"].as_u64().unwrap(),
            )
        })
        .collect()
}

/// What the test sent, by cache outcome: requests and body bytes.
#[derive(Default)]
struct Sent {
    hits: (u64, u64),
    misses: (u64, u64),
}

impl Sent {
    fn hit(&mut self, bytes: u64) {
        self.hits.0 += 1;
        self.hits.1 += bytes;
    }
    fn miss(&mut self, bytes: u64) {
        self.misses.0 += 1;
        self.misses.1 += bytes;
    }
}

#[test]
fn varnishncsa_log_of_traffic_through_varnish_is_counted_exactly() {
    let varnishncsa = Path::new("/usr/bin/varnishncsa");
    assert!(
        varnishncsa.is_file(),
        "varnishncsa is missing\nhint: install it with `sudo scripts/peers/varnish.sh install` (Debian's varnish; scripts/test.sh does it)"
    );
    let (t, m) = site();
    let dir = t.path();
    let origin = serve(dir, &["out"]);
    let mut start = staleguard_testkit::varnish::KIND.command();
    start.args(["start", origin.base.trim_start_matches("http://")]);
    // The peer itself (not the testkit's wrapper): its state folder holds the `-n` work dir.
    let node = Peer::start(&staleguard_testkit::varnish::KIND, start);
    let c = Client::new();
    let css = format!("/{}", hashed(&m, "css/site.css"));
    let gone = "/css/site.0123456789ab.css";
    let mut sent = Sent::default();
    // A fingerprinted file: a miss, then hits.
    for i in 0..3 {
        let (status, len, _) = get(&c, &format!("{}{css}", node.url));
        assert_eq!(status, 200);
        if i == 0 {
            sent.miss(len)
        } else {
            sent.hit(len)
        }
    }
    // A page (no-cache: Varnish makes it a hit-for-miss) twice, and a fingerprinted name no build has.
    for _ in 0..2 {
        let (status, len, _) = get(&c, &format!("{}/", node.url));
        assert_eq!(status, 200);
        sent.miss(len);
    }
    let (status, gone_len, _) = get(&c, &format!("{}{gone}", node.url));
    assert_eq!(status, 404);
    sent.miss(gone_len);
    // A docs page (s-maxage=1): a miss, a hit, then, once its second is over, a hit from grace with an
    // Age beyond its s-maxage: what a stale edge serves.
    let docs = format!("{}/docs/getting-started.html", node.url);
    let (_, len, _) = get(&c, &docs);
    sent.miss(len);
    let (_, len, _) = get(&c, &docs);
    sent.hit(len);
    std::thread::sleep(std::time::Duration::from_millis(2500));
    let (status, len, age) = get(&c, &docs);
    assert_eq!(status, 200);
    assert!(age >= 2, "a grace hit carries the object's age, got {age}");
    sent.hit(len);

    // varnishncsa -d: every transaction in the shared log (the readiness PURGE probe left out), then exit.
    let log = dir.join("varnish.log");
    let o = Command::new(varnishncsa)
        .args(["-d", "-n"])
        .arg(Path::new(&node.state).join("work"))
        .args(["-q", r#"ReqMethod ne "PURGE""#, "-F", VARNISH_FORMAT, "-w"])
        .arg(&log)
        .output()
        .unwrap();
    assert!(
        o.status.success(),
        "varnishncsa: {}",
        String::from_utf8_lossy(&o.stderr)
    );
    let text = std::fs::read_to_string(&log).unwrap();
    std::fs::copy(&log, artifacts().join("varnish.log")).unwrap();
    assert_eq!(text.lines().count(), 9, "one line per request:\n{text}");

    let (r, code) = stats(dir, &["varnish.log"]);
    assert_eq!(r["files"][0]["format"], "varnish", "detected");
    assert_eq!(n(&r, "/total/requests"), 9);
    assert_eq!(n(&r, "/total/hits"), sent.hits.0, "{text}");
    assert_eq!(n(&r, "/total/cache/hit"), sent.hits.0);
    assert_eq!(n(&r, "/total/cache/miss"), sent.misses.0);
    assert_eq!(n(&r, "/total/bytes"), sent.hits.1 + sent.misses.1);
    assert_eq!(n(&r, "/total/origin_bytes"), sent.misses.1);
    assert_eq!(n(&r, "/total/origin_requests"), sent.misses.0);
    close(f(&r, "/total/hit_ratio"), sent.hits.0 as f64 / 9.0);
    assert_eq!(n(&r, "/classes/fingerprinted/requests"), 4);
    assert_eq!(n(&r, "/classes/mutable/requests"), 5);
    assert_eq!(n(&r, "/total/status/4xx"), 1);
    assert_eq!(n(&r, "/malformed"), 0);
    assert_eq!(
        urls(&r["stale"]["fingerprinted_404"]),
        [(gone.to_string(), 1)]
    );
    let over = &r["stale"]["mutable_over_age"];
    assert_eq!(urls(over), [("/docs/getting-started.html".to_string(), 1)]);
    assert_eq!(over["urls"][0]["max_age"].as_u64(), Some(age));
    let misses = urls(&r["top_misses"]);
    assert_eq!(misses[0], ("/".to_string(), 2), "{misses:?}");
    assert_eq!(code, 3, "4 hits in 9 is below the 80 % target");
}

#[test]
fn nginx_cache_log_is_counted_exactly_and_old_names_are_found_against_the_deploys() {
    let (t, m) = site();
    let dir = t.path();
    // A deploy to the folder store: its record lists the fingerprinted names that exist.
    let mut c = staleguard(dir);
    c.args(["deploy", "--no-build", "--no-verify", "--no-purge"]);
    let o = run(c);
    assert!(o.status.success(), "deploy: {}", stderr(&o));
    let origin = serve(dir, &["out"]);
    let port = staleguard_testkit::nginx::free_port();
    let log = dir.join("nginx-access.log");
    let snippet = dir.join("nginx-stats.conf");
    std::fs::write(
        &snippet,
        format!(
            r#"proxy_cache_path {cache} levels=1:2 keys_zone=sg:1m max_size=16m inactive=1h use_temp_path=off;
log_format staleguard '$remote_addr - $remote_user [$time_local] "$request" '
                      '$status $body_bytes_sent "$http_referer" "$http_user_agent" $upstream_cache_status';
server {{
    listen 127.0.0.1:{port};
    access_log {log} staleguard;
    location / {{
        proxy_pass {origin};
        proxy_cache sg;
    }}
}}
"#,
            cache = dir.join("nginx-cache").display(),
            log = log.display(),
            origin = origin.base,
        ),
    )
    .unwrap();
    let nginx = staleguard_testkit::nginx::Nginx::start(&snippet, port);
    let c = Client::new();
    let css = format!("/{}", hashed(&m, "css/site.css"));
    let old = "/css/site.000000000000.css";
    let mut sent = Sent::default();
    for i in 0..3 {
        let (status, len, _) = get(&c, &format!("{}{css}", nginx.url));
        assert_eq!(status, 200);
        if i == 0 {
            sent.miss(len)
        } else {
            sent.hit(len)
        }
    }
    for _ in 0..2 {
        let (_, len, _) = get(&c, &format!("{}/about/", nginx.url));
        sent.miss(len);
    }
    let (status, len, _) = get(&c, &format!("{}{old}", nginx.url));
    assert_eq!(status, 404);
    sent.miss(len);
    drop(nginx); // stopped: every line written and closed
    let text = std::fs::read_to_string(&log).unwrap();
    std::fs::copy(&log, artifacts().join("nginx-access.log")).unwrap();
    assert_eq!(text.lines().count(), 6, "{text}");

    let (r, code) = stats(dir, &["nginx-access.log"]);
    assert_eq!(r["files"][0]["format"], "nginx");
    assert_eq!(n(&r, "/total/requests"), 6);
    assert_eq!(
        (n(&r, "/total/cache/hit"), n(&r, "/total/cache/miss")),
        (2, 4),
        "{text}"
    );
    assert_eq!(n(&r, "/total/bytes"), sent.hits.1 + sent.misses.1);
    assert_eq!(n(&r, "/total/origin_bytes"), sent.misses.1);
    // The css twice from the cache, the old name never.
    close(f(&r, "/classes/fingerprinted/hit_ratio"), 2.0 / 4.0);
    assert_eq!(n(&r, "/classes/mutable/requests"), 2);
    assert_eq!(r["stale"]["deploys_checked"], true);
    assert_eq!(
        urls(&r["stale"]["unknown_fingerprinted"]),
        [(old.to_string(), 1)]
    );
    assert_eq!(
        urls(&r["stale"]["fingerprinted_404"]),
        [(old.to_string(), 1)]
    );
    assert_eq!(code, 3);
    // Without the store, the old name is only a 404.
    let (r, _) = stats(dir, &["nginx-access.log", "--no-store"]);
    assert_eq!(r["stale"]["deploys_checked"], false);
    assert_eq!(n(&r, "/stale/unknown_fingerprinted/total"), 0);
}

/// The fixture's 11 requests and one truncated line, counted by hand (see the fixture's lines).
fn check_cloudfront_totals(r: &Value, file: &str) {
    assert_eq!(r["files"][0]["format"], "cloudfront");
    assert_eq!(n(r, "/files/0/lines"), 14);
    assert_eq!(n(r, "/total/requests"), 11);
    assert_eq!(n(r, "/total/bytes"), 11_250);
    for (k, want) in [
        ("hit", 4),
        ("revalidated", 1),
        ("miss", 3),
        ("error", 2),
        ("synth", 1),
    ] {
        assert_eq!(n(r, &format!("/total/cache/{k}")), want, "{k}");
    }
    // Lookups: 4 hits + 1 refresh hit + 3 misses; the two errors and the redirect are not.
    assert_eq!(n(r, "/total/lookups"), 8);
    close(f(r, "/total/hit_ratio"), 5.0 / 8.0);
    close(f(r, "/total/byte_hit_ratio"), 3_700.0 / 10_600.0);
    assert_eq!(n(r, "/total/origin_requests"), 4);
    close(f(r, "/total/origin_ratio"), 4.0 / 11.0);
    assert_eq!(n(r, "/total/origin_bytes"), 6_900);
    close(f(r, "/total/error_ratio"), 1.0 / 11.0);
    for (k, want) in [("2xx", 8), ("3xx", 1), ("4xx", 1), ("5xx", 1)] {
        assert_eq!(n(r, &format!("/total/status/{k}")), want, "{k}");
    }
    assert_eq!(n(r, "/classes/fingerprinted/requests"), 5);
    assert_eq!(n(r, "/classes/mutable/requests"), 6);
    assert_eq!(r["first"], "2024-05-01T10:00:01Z");
    assert_eq!(r["last"], "2024-05-01T11:20:00Z");
    // URL-encoded names are decoded.
    let misses = urls(&r["top_misses"]);
    assert!(
        misses.contains(&("/docs/café.html".to_string(), 1)),
        "{misses:?}"
    );
    assert_eq!(
        urls(&r["stale"]["fingerprinted_404"]),
        [("/js/app.abcdef012345.js".to_string(), 1)]
    );
    assert_eq!(n(r, "/malformed"), 1);
    let s = &r["malformed_samples"][0];
    assert_eq!(s["line"], 9);
    assert!(s["file"].as_str().unwrap().ends_with(file), "{s}");
    assert!(s["reason"].as_str().unwrap().contains("fewer"), "{s}");
}

#[test]
fn cloudfront_standard_log_matches_the_hand_computed_totals_plain_and_gzipped() {
    let t = tempfile::tempdir().unwrap();
    for name in ["cloudfront-standard.log", "cloudfront-standard.log.gz"] {
        let p = fixture(name);
        let (r, code) = stats(t.path(), &[p.to_str().unwrap(), "--bucket", "1h"]);
        check_cloudfront_totals(&r, name);
        assert_eq!(r["files"][0]["gzip"], name.ends_with(".gz"));
        assert_eq!(code, 3, "62.5 % hits is below the target");
        // Hourly buckets: 3 of 5 lookups hit at 10:00, 2 of 3 at 11:00.
        let b = r["buckets"].as_array().unwrap();
        assert_eq!(b.len(), 2);
        assert_eq!(b[0]["start"], "2024-05-01T10:00:00Z");
        close(b[0]["hit_ratio"].as_f64().unwrap(), 3.0 / 5.0);
        close(b[1]["hit_ratio"].as_f64().unwrap(), 2.0 / 3.0);
    }
    // Both files at once: twice the counts; and thresholds from the config decide the exit code.
    write_files(
        t.path(),
        &[(
            "staleguard.toml",
            "[stats]\nmin-hit-ratio = \"50%\"\nmax-origin-ratio = 0.5\nmax-error-ratio = 0.1\nstale-signals = \"warn\"\n",
        )],
    );
    let a = fixture("cloudfront-standard.log");
    let b = fixture("cloudfront-standard.log.gz");
    let (r, code) = stats(
        t.path(),
        &[a.to_str().unwrap(), b.to_str().unwrap(), "-j", "2"],
    );
    assert_eq!(n(&r, "/total/requests"), 22);
    assert_eq!(n(&r, "/malformed"), 2);
    assert_eq!(
        code, 0,
        "every target of the config is met: {}",
        r["checks"]
    );
    // An unknown key in [stats] is refused at its line.
    write_files(t.path(), &[("staleguard.toml", "[stats]\nmin-hit = 0.5\n")]);
    let mut c = staleguard(t.path());
    c.arg("stats").arg(&a);
    let o = c.output().unwrap();
    assert_eq!(o.status.code(), Some(1));
    let e = stderr(&o);
    assert!(e.contains("line 2") && e.contains("min-hit"), "{e}");
}

#[test]
fn a_log_in_no_known_format_is_refused_with_the_formats_to_pick() {
    let t = tempfile::tempdir().unwrap();
    write_files(t.path(), &[("x.log", "hello\nworld\n")]);
    let mut c = staleguard(t.path());
    c.args(["stats", "x.log"]);
    let o = c.output().unwrap();
    assert_eq!(o.status.code(), Some(1));
    let e = stderr(&o);
    assert!(e.contains("x.log") && e.contains("--format"), "{e}");
    // Forced, every line is malformed, reported with file:line, and the run still ends.
    let (r, _) = stats(t.path(), &["x.log", "--format", "combined"]);
    assert_eq!(n(&r, "/malformed"), 2);
    assert_eq!(r["malformed_samples"][1]["line"], 2);
}

#[test]
fn the_html_report_renders_in_chromium_with_its_charts_and_no_console_error() {
    let chromium = Path::new("/usr/bin/chromium");
    assert!(
        chromium.is_file(),
        "headless Chromium is missing: run `scripts/peers/chromium.sh install` (scripts/test.sh does)"
    );
    let t = tempfile::tempdir().unwrap();
    let out = artifacts();
    let html = out.join("report.html");
    let fx = fixture("cloudfront-standard.log.gz");
    let mut c = staleguard(t.path());
    c.arg("stats")
        .arg(&fx)
        .args(["--bucket", "15m", "--html"])
        .arg(&html);
    let o = c.output().unwrap();
    assert_eq!(o.status.code(), Some(3), "{}", stderr(&o));
    let page = std::fs::read_to_string(&html).unwrap();
    for banned in ["<script", "http://", "https://", "@import", "url("] {
        let hits: Vec<_> = page
            .match_indices(banned)
            .filter(|(i, _)| !page[..*i].ends_with("xmlns=\""))
            .collect();
        assert!(hits.is_empty(), "the page must not load anything: {banned}");
    }
    let shot = out.join("report.png");
    let _ = std::fs::remove_file(&shot);
    let chrome = |extra: &[&str]| {
        let profile = tempfile::tempdir().unwrap();
        let o = Command::new(chromium)
            .args([
                "--headless",
                "--no-sandbox",
                "--disable-gpu",
                "--disable-background-networking",
                "--disable-component-update",
                "--disable-sync",
                "--no-first-run",
                "--enable-logging=stderr",
                "--v=0",
                "--window-size=1100,1600",
            ])
            .arg(format!("--user-data-dir={}", profile.path().display()))
            .args(extra)
            .arg(format!("file://{}", html.display()))
            .output()
            .unwrap();
        assert!(
            o.status.success(),
            "chromium: {}",
            String::from_utf8_lossy(&o.stderr)
        );
        o
    };
    let dom = chrome(&["--dump-dom"]);
    let shot_run = chrome(&[&format!("--screenshot={}", shot.display())]);
    let dom_text = String::from_utf8_lossy(&dom.stdout);
    for id in ["chart-hit-ratio", "chart-origin-ratio", "chart-top-misses"] {
        assert!(
            dom_text.contains(&format!("<svg id=\"{id}\"")),
            "{id} in the rendered DOM"
        );
    }
    assert!(
        dom_text.contains("<path d=\"M"),
        "the hit-ratio line is drawn"
    );
    assert!(dom_text.contains("/docs/café.html"), "decoded URLs");
    for o in [&dom, &shot_run] {
        let log = String::from_utf8_lossy(&o.stderr);
        for bad in [
            "Uncaught",
            "CONSOLE",
            "console",
            "ERR_FILE_NOT_FOUND",
            "Refused to load",
        ] {
            assert!(!log.contains(bad), "chromium logged {bad}:\n{log}");
        }
    }
    let png = std::fs::read(&shot).unwrap();
    assert!(
        png.starts_with(b"\x89PNG") && png.len() > 10_000,
        "a screenshot of a page with content"
    );
}
