//! The last steps of a deploy on real parts: `staleguard serve` as the origin (serving the local store),
//! real Varnish nodes in front, `[verify]` warming and checking through them. A deploy whose purge ran
//! verifies; one without a purge fails naming the stale URLs; a node that ignores purges is named; an
//! old `-latest` download fails on the checksum `metadata.json` lists. The first node is also run as
//! `staleguard edge` (beside a Varnish node that ignores purges): the same proofs hold.

use std::path::Path;
use std::process::Output;

use reqwest::blocking::Client;
use serde_json::Value;
use staleguard_testkit::varnish::Varnish;

use crate::nodes::{self, Kind};

use crate::serve::serve;
use crate::support::*;

const SITE_CONFIG: &str = r#"[build]
source = "site"
out = "out"
compress = ["br"]
mutable = ["downloads/**"]

[deploy]
store = "file://store"

[serve]
reload-ms = 20

[[routes]]
match = "**/*.html"
cache-control = "public, max-age=0, s-maxage=3600"

[[routes]]
match = "downloads/**"
cache-control = "public, max-age=0, s-maxage=3600"
"#;

fn page(body: &str) -> String {
    format!(
        "<!doctype html><html><head><link rel=\"stylesheet\" href=\"/style.css\"></head><body>{body}</body></html>\n"
    )
}

fn sg(dir: &Path, args: &[&str]) -> Output {
    let mut c = staleguard(dir);
    c.args(args);
    run(c)
}

fn sg_json(dir: &Path, args: &[&str]) -> (Option<i32>, Value, String) {
    let mut all = vec!["--json"];
    all.extend_from_slice(args);
    let o = sg(dir, &all);
    let v = serde_json::from_slice(&o.stdout).unwrap_or_else(|e| {
        panic!(
            "{args:?}: not JSON ({e}): {}\n{}",
            String::from_utf8_lossy(&o.stdout),
            stderr(&o)
        )
    });
    (o.status.code(), v, stderr(&o))
}

/// Stale URLs (each is checked once per Accept-Encoding; listed once).
fn stale_urls(v: &Value) -> Vec<String> {
    let mut out: Vec<String> = v["verify"]["checks"]
        .as_array()
        .map(|a| {
            a.iter()
                .filter(|c| c["ok"] == false)
                .map(|c| {
                    format!(
                        "{}{}",
                        c["base"].as_str().unwrap(),
                        c["path"].as_str().unwrap()
                    )
                })
                .collect()
        })
        .unwrap_or_default();
    out.sort();
    out.dedup();
    out
}

fn config(nodes: &[&str], origin: &str, extra: &str) -> String {
    let list = |v: Vec<String>| {
        v.iter()
            .map(|u| format!("\"{u}\""))
            .collect::<Vec<_>>()
            .join(", ")
    };
    let urls = list(nodes.iter().map(|n| n.to_string()).collect());
    format!(
        "{SITE_CONFIG}\n[[cdn]]\nprovider = \"varnish\"\nnodes = [{urls}]\n\n[verify]\ncdn-url = [{urls}]\norigin-url = \"{origin}\"\nwarm = [\"/\", \"/docs/a.html\", \"/docs/b.html\"]\ntimeout = \"3s\"\n{extra}"
    )
}

#[test]
fn deploy_verifies_through_varnish_and_names_stale_urls_and_nodes() {
    verifies_and_names_stale_urls_and_nodes(Kind::Varnish);
}

#[test]
fn deploy_verifies_through_the_generated_vcl_and_names_stale_urls_and_nodes() {
    verifies_and_names_stale_urls_and_nodes(Kind::GeneratedVcl);
}

#[test]
fn deploy_verifies_through_the_edge_and_names_stale_urls_and_nodes() {
    verifies_and_names_stale_urls_and_nodes(Kind::Edge);
}

fn verifies_and_names_stale_urls_and_nodes(kind: Kind) {
    let t = tempfile::tempdir().unwrap();
    let dir = t.path();
    write_files(
        dir,
        &[
            ("site/index.html", &page("home v1")),
            ("site/docs/a.html", &page("a v1")),
            ("site/docs/b.html", &page("b v1")),
            ("site/style.css", "body { color: black }\n"),
            ("staleguard.toml", SITE_CONFIG),
        ],
    );
    assert!(sg(dir, &["build"]).status.success());
    assert!(sg(dir, &["deploy"]).status.success());
    let origin = serve(dir, &["store"]);
    let node1 = nodes::start(kind, &origin.base, dir);
    write_files(
        dir,
        &[(
            "staleguard.toml",
            &config(
                &[&node1.url],
                &origin.base,
                "[[verify.assert]]\npath = \"/\"\nstatus = 200\ncontains = \"home\"\n",
            ),
        )],
    );

    // v1 (first purge through staleguard) and v2: purged, warmed, verified.
    assert!(sg(dir, &["invalidate"]).status.success());
    let (code, v, err) = sg_json(dir, &["verify", "--warm"]);
    assert_eq!(code, Some(0), "{v} {err}");
    write_files(dir, &[("site/docs/a.html", &page("a v2"))]);
    assert!(sg(dir, &["build"]).status.success());
    let (code, v, err) = sg_json(dir, &["deploy"]);
    assert_eq!(code, Some(0), "{v} {err}");
    assert_eq!(v["verify"]["ok"], true, "{v}");
    let checks = v["verify"]["verify"]["checks"].as_array().unwrap();
    let paths: Vec<&str> = checks.iter().map(|c| c["path"].as_str().unwrap()).collect();
    assert!(paths.contains(&"/docs/a.html"), "{paths:?}");
    assert!(
        paths.contains(&"/health/static-version"),
        "version endpoint checked: {paths:?}"
    );
    assert!(
        !paths.contains(&"/docs/b.html"),
        "only what changed: {paths:?}"
    );
    assert!(
        !v["verify"]["warm"].as_array().unwrap().is_empty(),
        "warmed: {v}"
    );

    // v3 with the purge switched off: verify fails at the deadline, naming the stale URL and what the
    // cache said; the exit code says "deployed but stale".
    write_files(dir, &[("site/docs/a.html", &page("a v3"))]);
    assert!(sg(dir, &["build"]).status.success());
    let (code, v, _) = sg_json(dir, &["deploy", "--no-purge"]);
    assert_eq!(code, Some(3), "{v}");
    assert_eq!(v["verify"]["ok"], false);
    let stale = stale_urls(&v["verify"]);
    assert_eq!(stale, [format!("{}/docs/a.html", node1.url)], "{v}");
    let bad = v["verify"]["verify"]["checks"]
        .as_array()
        .unwrap()
        .iter()
        .find(|c| c["ok"] == false)
        .unwrap();
    assert_eq!(bad["seen"]["x_cache"], "HIT", "{bad}");
    assert!(
        bad["attempts"].as_u64().unwrap() > 1,
        "retried until the deadline: {bad}"
    );
    let o = sg(dir, &["verify"]);
    assert_eq!(o.status.code(), Some(3));
    let text = String::from_utf8_lossy(&o.stdout);
    assert!(
        text.contains("STALE") && text.contains("/docs/a.html") && text.contains("X-Cache: HIT"),
        "{text}"
    );
    // The pending purge fixes it.
    assert!(sg(dir, &["invalidate"]).status.success());
    assert_eq!(sg(dir, &["verify"]).status.code(), Some(0));

    // A second node that answers purges but ignores them: only its URLs are named.
    let fixture = repo().join("crates/staleguard/tests/it/fixtures/ignore-purges.vcl");
    let node2 = Varnish::start_with(&origin.base, Some(&fixture));
    write_files(
        dir,
        &[(
            "staleguard.toml",
            &config(&[&node1.url, &node2.url], &origin.base, ""),
        )],
    );
    // Visitors fill both nodes: browsers (the warm-up sends their Accept-Encoding) and download tools.
    assert_eq!(sg(dir, &["warm"]).status.code(), Some(0));
    let c = Client::new();
    for n in [&node1.url, &node2.url] {
        c.get(format!("{n}/docs/a.html"))
            .header("Accept-Encoding", "identity")
            .send()
            .unwrap();
    }
    write_files(dir, &[("site/docs/a.html", &page("a v4"))]);
    assert!(sg(dir, &["build"]).status.success());
    let (code, v, _) = sg_json(dir, &["deploy"]);
    assert_eq!(code, Some(3), "{v}");
    let stale = stale_urls(&v["verify"]);
    assert!(!stale.is_empty(), "{v}");
    assert!(
        stale.iter().all(|u| u.starts_with(&node2.url)),
        "only the node that ignores purges: {stale:?}"
    );
    assert!(
        stale.contains(&format!("{}/docs/a.html", node2.url)),
        "{stale:?}"
    );
}

#[test]
fn an_old_latest_download_fails_on_the_metadata_checksum() {
    old_latest_download_fails(Kind::Varnish);
}

#[test]
fn an_old_latest_download_fails_on_the_metadata_checksum_through_the_generated_vcl() {
    old_latest_download_fails(Kind::GeneratedVcl);
}

#[test]
fn an_old_latest_download_fails_on_the_metadata_checksum_through_the_edge() {
    old_latest_download_fails(Kind::Edge);
}

fn old_latest_download_fails(kind: Kind) {
    let t = tempfile::tempdir().unwrap();
    let dir = t.path();
    let aliases = |target: &str| {
        format!("[deploy.aliases]\n\"downloads/tool-latest.tar.gz\" = \"downloads/{target}\"\n")
    };
    let base = SITE_CONFIG.replace(
        "[deploy]\nstore = \"file://store\"\n",
        "[deploy]\nstore = \"file://store\"\nmetadata = \"downloads/metadata.json\"\nartifacts = [\"downloads/tool-*.tar.gz\"]\n",
    );
    write_files(
        dir,
        &[
            (
                "site/index.html",
                &page("<a href=\"/downloads/tool-latest.tar.gz\">get</a>"),
            ),
            ("site/style.css", "body { color: black }\n"),
            ("site/downloads/tool-1.0.tar.gz", "release 1.0 bytes\n"),
            (
                "staleguard.toml",
                &format!("{base}\n{}", aliases("tool-1.0.tar.gz")),
            ),
        ],
    );
    assert!(sg(dir, &["build", "--no-strict"]).status.success());
    assert!(sg(dir, &["deploy"]).status.success());
    let origin = serve(dir, &["store"]);
    let node = nodes::start(kind, &origin.base, dir);
    let with_cdn = |target: &str| {
        format!(
            "{base}\n[[cdn]]\nprovider = \"{3}\"\nnodes = [\"{0}\"]\n\n[verify]\ncdn-url = \"{0}\"\norigin-url = \"{1}\"\nwarm = [\"/downloads/tool-latest.tar.gz\"]\ntimeout = \"3s\"\n\n{2}",
            node.url,
            origin.base,
            aliases(target),
            kind.provider()
        )
    };
    write_files(dir, &[("staleguard.toml", &with_cdn("tool-1.0.tar.gz"))]);
    assert!(sg(dir, &["invalidate"]).status.success());
    assert_eq!(sg(dir, &["warm"]).status.code(), Some(0));

    // 1.1 is released and `-latest` moves, but the CDN is not purged: it keeps serving 1.0's bytes.
    write_files(
        dir,
        &[
            ("site/downloads/tool-1.1.tar.gz", "release 1.1 bytes\n"),
            ("staleguard.toml", &with_cdn("tool-1.1.tar.gz")),
        ],
    );
    assert!(sg(dir, &["build", "--no-strict"]).status.success());
    let (code, v, err) = sg_json(dir, &["deploy", "--no-purge"]);
    assert_eq!(code, Some(3), "{v} {err}");
    let checks = v["verify"]["verify"]["checks"].as_array().unwrap();
    let latest = checks
        .iter()
        .find(|c| c["path"] == "/downloads/tool-latest.tar.gz")
        .unwrap_or_else(|| panic!("the alias is checked: {v}"));
    assert_eq!(latest["ok"], false, "{latest}");
    let meta: Value =
        serde_json::from_slice(&std::fs::read(dir.join("store/downloads/metadata.json")).unwrap())
            .unwrap();
    let want = meta["artifacts"]["downloads/tool-1.1.tar.gz"]["sha256"]
        .as_str()
        .unwrap();
    assert!(
        latest["expected"].as_str().unwrap().contains(&want[..12]),
        "{latest}"
    );
    // After the purge the alias verifies.
    assert!(sg(dir, &["invalidate"]).status.success());
    let (code, v, _) = sg_json(dir, &["verify"]);
    assert_eq!(code, Some(0), "{v}");
}

/// A one-shot webhook receiver: answers `status` to the first request and hands back its body.
fn receiver(status: u16) -> (String, std::thread::JoinHandle<String>) {
    use std::io::{BufRead, BufReader, Read, Write};
    let l = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let url = format!(
        "http://{}/services/T000/B000/secret-token",
        l.local_addr().unwrap()
    );
    let h = std::thread::spawn(move || {
        let (s, _) = l.accept().unwrap();
        let mut r = BufReader::new(s.try_clone().unwrap());
        let mut len = 0usize;
        let mut line = String::new();
        loop {
            line.clear();
            r.read_line(&mut line).unwrap();
            if line == "\r\n" || line.is_empty() {
                break;
            }
            if let Some(v) = line.to_ascii_lowercase().strip_prefix("content-length:") {
                len = v.trim().parse().unwrap();
            }
        }
        let mut body = vec![0; len];
        r.read_exact(&mut body).unwrap();
        let mut s = s;
        write!(
            s,
            "HTTP/1.1 {status} X\r\nContent-Length: 2\r\nConnection: close\r\n\r\nok"
        )
        .unwrap();
        String::from_utf8(body).unwrap()
    });
    (url, h)
}

/// The deploy summary goes to a Slack-compatible webhook; a webhook that fails never fails the deploy and
/// its secret path is never printed.
#[test]
fn webhook_gets_the_summary_and_never_fails_the_deploy() {
    let t = tempfile::tempdir().unwrap();
    let dir = t.path();
    write_files(
        dir,
        &[
            ("site/index.html", &page("home v1")),
            ("site/style.css", "body { color: black }\n"),
            ("staleguard.toml", SITE_CONFIG),
        ],
    );
    assert!(sg(dir, &["build"]).status.success());
    assert!(sg(dir, &["deploy"]).status.success());
    let origin = serve(dir, &["store"]);
    // No CDN here: the origin stands in for it.
    let config = format!(
        "{SITE_CONFIG}\n[verify]\ncdn-url = \"{0}\"\norigin-url = \"{0}\"\ntimeout = \"5s\"\n",
        origin.base
    );
    write_files(dir, &[("staleguard.toml", &config)]);

    write_files(dir, &[("site/index.html", &page("home v2"))]);
    assert!(sg(dir, &["build"]).status.success());
    let (url, got) = receiver(200);
    let mut c = staleguard(dir);
    c.env("STALEGUARD_WEBHOOK_URL", &url).arg("deploy");
    let o = run(c);
    assert!(o.status.success(), "{}", stderr(&o));
    let body: Value = serde_json::from_str(&got.join().unwrap()).unwrap();
    let text = body["text"].as_str().unwrap();
    assert!(
        text.contains("deployed") && text.contains("verified fresh"),
        "{text}"
    );
    assert_eq!(body["staleguard"]["verify"]["ok"], true, "{body}");
    assert!(body["blocks"].is_array(), "{body}");

    // A webhook answering 500: the deploy still succeeds, with a warning that hides the token.
    write_files(dir, &[("site/index.html", &page("home v3"))]);
    assert!(sg(dir, &["build"]).status.success());
    let (url, got) = receiver(500);
    let mut c = staleguard(dir);
    c.env("STALEGUARD_WEBHOOK_URL", &url).arg("deploy");
    let o = run(c);
    got.join().unwrap();
    assert!(o.status.success(), "{}", stderr(&o));
    let err = stderr(&o);
    assert!(
        err.contains("was not notified") && err.contains("500"),
        "{err}"
    );
    assert!(!err.contains("secret-token"), "{err}");
}

/// An edge that still serves an older copy of the store (a `staleguard serve` on it; it is the origin
/// too): `verify` lists each failed check once, naming the edge's URL and the Accept-Encoding, counts
/// "M of N check(s)" over the checks alone, and names the origin on its own line.
#[test]
fn verify_lists_each_failure_once_with_its_encoding() {
    let t = tempfile::tempdir().unwrap();
    let dir = t.path();
    write_files(
        dir,
        &[
            ("site/index.html", &page("home v1")),
            ("site/docs/a.html", &page("a v1")),
            ("site/style.css", "body { color: black }\n"),
            ("staleguard.toml", SITE_CONFIG),
        ],
    );
    assert!(sg(dir, &["build"]).status.success());
    assert!(sg(dir, &["deploy"]).status.success());
    copy_dir(&dir.join("store"), &dir.join("old"));
    write_files(dir, &[("site/docs/a.html", &page("a v2"))]);
    assert!(sg(dir, &["build"]).status.success());
    assert!(sg(dir, &["deploy"]).status.success());
    let edge = serve(dir, &["old"]);
    write_files(
        dir,
        &[(
            "staleguard.toml",
            &format!(
                "{SITE_CONFIG}\n[verify]\ncdn-url = \"{0}\"\norigin-url = \"{0}\"\ntimeout = \"1s\"\nencodings = [\"gzip, br\", \"identity\"]\n",
                edge.base
            ),
        )],
    );
    let (code, v, _) = sg_json(dir, &["verify"]);
    assert_eq!(code, Some(3), "{v}");
    let checks = v["verify"]["checks"].as_array().unwrap();
    let stale = checks.iter().filter(|c| c["ok"] == false).count();
    assert_eq!(v["verify"]["stale"], stale);
    assert!(stale >= 2, "{v}");

    let o = sg(dir, &["verify"]);
    assert_eq!(o.status.code(), Some(3));
    let text = String::from_utf8_lossy(&o.stdout).to_string();
    let head = format!("verify: STALE: {stale} of {} check(s)", checks.len());
    assert!(text.starts_with(&head), "want {head:?}:\n{text}");
    let lines: Vec<&str> = text.lines().skip(1).map(str::trim).collect();
    let failures: Vec<&&str> = lines.iter().filter(|l| !l.starts_with("origin ")).collect();
    assert_eq!(failures.len(), stale, "{text}");
    let unique: std::collections::BTreeSet<&&&str> = failures.iter().collect();
    assert_eq!(unique.len(), stale, "a failure listed twice:\n{text}");
    let a = format!("{}/docs/a.html", edge.base);
    for enc in ["gzip, br", "identity"] {
        let want = format!("{a} (Accept-Encoding: {enc}): expected blake3 ");
        assert!(
            failures.iter().filter(|l| l.starts_with(&want)).count() == 1,
            "{want:?} once:\n{text}"
        );
    }
    assert_eq!(
        lines.iter().filter(|l| l.starts_with("origin ")).count(),
        1,
        "{text}"
    );
}

/// A deploy with neither `[[cdn]]` nor `cdn-url` still posts its summary when the webhook is set.
#[test]
fn webhook_gets_a_deploy_without_cdn_or_verification() {
    let t = tempfile::tempdir().unwrap();
    let dir = t.path();
    write_files(
        dir,
        &[
            ("site/index.html", &page("home v1")),
            ("site/style.css", "body { color: black }\n"),
            ("staleguard.toml", SITE_CONFIG),
        ],
    );
    let (url, got) = receiver(200);
    let mut c = staleguard(dir);
    c.env("STALEGUARD_WEBHOOK_URL", &url).arg("deploy");
    let o = run(c);
    assert!(o.status.success(), "{}", stderr(&o));
    // The post happens inside the deploy: by now the receiver has its request (or never will).
    let waited = std::time::Instant::now();
    while !got.is_finished() && waited.elapsed() < std::time::Duration::from_secs(5) {
        std::thread::sleep(std::time::Duration::from_millis(20));
    }
    assert!(got.is_finished(), "the webhook was never called");
    let body: Value = serde_json::from_str(&got.join().unwrap()).unwrap();
    let text = body["text"].as_str().unwrap();
    assert!(
        text.contains("deployed") && text.contains("not verified"),
        "{text}"
    );
    assert!(!stderr(&o).contains("secret-token"));
}
