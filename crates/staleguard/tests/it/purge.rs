//! `staleguard deploy` and `staleguard invalidate` against a real Varnish in front of `staleguard serve`
//! (the origin serves the local store): without a purge, Varnish keeps serving the old page; with one,
//! the changed pages are fresh at once and the unchanged ones stay cached. For each way of purging:
//! PURGE per URL, BAN by URL regex, and xkey (surrogate keys sent by the origin); and the same against
//! `staleguard edge` in Varnish's place.

use std::path::Path;
use std::time::{Duration, Instant};

use reqwest::blocking::Client;
use serde_json::Value;
use staleguard_testkit::varnish::Varnish;

use crate::nodes::{self, Kind};

use crate::serve::serve;
use crate::support::*;

const BASE_CONFIG: &str = r#"[build]
source = "site"
out = "out"
compress = ["br"]

[deploy]
store = "file://store"

[serve]
reload-ms = 20
tag-header = "xkey"

[[routes]]
match = "**/*.html"
cache-control = "public, max-age=0, s-maxage=3600"
"#;

fn page(title: &str, body: &str) -> String {
    format!(
        "<!doctype html><html><head><title>{title}</title><link rel=\"stylesheet\" href=\"/style.css\"></head><body>{body}</body></html>\n"
    )
}

/// GET through the cache: (status, X-Cache, body).
fn fetch(c: &Client, url: &str) -> (u16, String, String) {
    let r = c
        .get(url)
        .header("Accept-Encoding", "identity")
        .send()
        .unwrap_or_else(|e| panic!("GET {url}: {e}"));
    let status = r.status().as_u16();
    let x = r
        .headers()
        .get("x-cache")
        .map(|v| v.to_str().unwrap().to_string())
        .unwrap_or_default();
    (status, x, r.text().unwrap())
}

fn sg_ok(dir: &Path, args: &[&str]) -> String {
    let mut c = staleguard(dir);
    c.args(args);
    let o = run(c);
    assert!(
        o.status.success(),
        "staleguard {args:?} failed: {}",
        stderr(&o)
    );
    String::from_utf8_lossy(&o.stdout).into_owned()
}

/// Waits until the origin's version endpoint reports the version of the build in `out`.
fn wait_origin(c: &Client, origin: &str, dir: &Path) {
    let want = manifest(&dir.join("out"))["digest"].clone();
    let deadline = Instant::now() + Duration::from_secs(10);
    loop {
        let v: Value = c
            .get(format!("{origin}/health/static-version"))
            .send()
            .ok()
            .and_then(|r| r.bytes().ok())
            .and_then(|b| serde_json::from_slice(&b).ok())
            .unwrap_or_default();
        if v["digest"] == want {
            return;
        }
        assert!(
            Instant::now() < deadline,
            "the origin did not switch to the new build"
        );
        std::thread::sleep(Duration::from_millis(20));
    }
}

fn edit(dir: &Path, rel: &str, title: &str, body: &str) {
    write_files(dir, &[(rel, &page(title, body))]);
}

fn stale_then_fresh(mode: &str, kind: Kind) {
    let t = tempfile::tempdir().unwrap();
    let dir = t.path();
    edit(dir, "site/index.html", "home", "home v1");
    edit(dir, "site/docs/a.html", "a", "a v1");
    edit(dir, "site/docs/b.html", "b", "b v1");
    write_files(dir, &[("site/style.css", "body { color: black }\n")]);
    write_files(dir, &[("staleguard.toml", BASE_CONFIG)]);
    sg_ok(dir, &["build"]);
    sg_ok(dir, &["deploy"]);

    let origin = serve(dir, &["store"]);
    let varnish = nodes::start(kind, &origin.base, dir);
    let purge_by = if mode == "xkey" {
        "purge-by = \"tags\"\n"
    } else {
        ""
    };
    let config = format!(
        "{BASE_CONFIG}\n[[cdn]]\nprovider = \"{}\"\nnodes = [\"{}\"]\nmode = \"{mode}\"\n{purge_by}\n[verify]\norigin-url = \"{}\"\n",
        kind.provider(),
        varnish.url,
        origin.base
    );
    write_files(dir, &[("staleguard.toml", &config)]);
    // The first purge through staleguard: the CDN's state is unknown, every mutable URL is purged.
    let first = sg_ok(dir, &["invalidate", "--explain"]);
    assert!(first.contains("purge varnish"), "{first}");

    let c = Client::new();
    let url = |p: &str| format!("{}{p}", varnish.url);
    for p in ["/", "/docs/a.html", "/docs/b.html"] {
        assert_eq!(fetch(&c, &url(p)).0, 200, "{p}");
        assert_eq!(fetch(&c, &url(p)).1, "HIT", "{p} is cached");
    }

    // v2 deployed without a purge: Varnish still serves v1. This is the stale window.
    edit(dir, "site/docs/a.html", "a", "a v2");
    sg_ok(dir, &["build"]);
    sg_ok(dir, &["deploy", "--no-purge"]);
    wait_origin(&c, &origin.base, dir);
    let (_, x, body) = fetch(&c, &url("/docs/a.html"));
    assert!(
        body.contains("a v1") && x == "HIT",
        "stale without a purge: {x} {body}"
    );

    // `invalidate` purges what is pending since the last purge: a.html only.
    let out = sg_ok(dir, &["invalidate", "--explain"]);
    assert!(out.contains("purge varnish"), "{out}");
    let (_, x, body) = fetch(&c, &url("/docs/a.html"));
    assert!(
        body.contains("a v2") && x == "MISS",
        "fresh after the purge: {x} {body}"
    );
    let (_, x, body) = fetch(&c, &url("/docs/b.html"));
    assert!(
        body.contains("b v1") && x == "HIT",
        "unchanged page stays cached: {x}"
    );
    assert_eq!(fetch(&c, &url("/")).1, "HIT", "unchanged home stays cached");

    // v3 with the purge in the deploy: fresh at once, unchanged pages still cached.
    edit(dir, "site/docs/a.html", "a", "a v3");
    edit(dir, "site/index.html", "home", "home v3");
    sg_ok(dir, &["build"]);
    // A dry run shows what the deploy would purge, and sends nothing.
    let out = sg_ok(dir, &["deploy", "--dry-run"]);
    assert!(out.contains("dry run: nothing sent"), "{out}");
    if mode != "xkey" {
        assert!(
            out.contains("/docs/a.html") && !out.contains("/docs/b.html"),
            "{out}"
        );
    }
    assert!(
        fetch(&c, &url("/docs/a.html")).2.contains("a v2"),
        "nothing purged by the dry run"
    );
    let out = sg_ok(dir, &["deploy"]);
    assert!(out.contains("purge varnish"), "{out}");
    let (_, _, body) = fetch(&c, &url("/docs/a.html"));
    assert!(body.contains("a v3"), "{body}");
    let (_, _, body) = fetch(&c, &url("/"));
    assert!(
        body.contains("home v3"),
        "the index variant `/` was purged too: {body}"
    );
    assert_eq!(fetch(&c, &url("/docs/b.html")).1, "HIT");

    // Nothing pending any more.
    let out = sg_ok(dir, &["invalidate"]);
    assert!(out.contains("nothing to purge"), "{out}");
}

#[test]
fn varnish_purge_per_url() {
    stale_then_fresh("purge", Kind::Varnish);
}

#[test]
fn varnish_ban_by_url_regex() {
    stale_then_fresh("ban", Kind::Varnish);
}

#[test]
fn varnish_xkey_surrogate_keys() {
    stale_then_fresh("xkey", Kind::Varnish);
}

#[test]
fn generated_vcl_purge_per_url() {
    stale_then_fresh("purge", Kind::GeneratedVcl);
}

#[test]
fn generated_vcl_ban_by_url_regex() {
    stale_then_fresh("ban", Kind::GeneratedVcl);
}

#[test]
fn generated_vcl_xkey_surrogate_keys() {
    stale_then_fresh("xkey", Kind::GeneratedVcl);
}

#[test]
fn edge_purge_per_url() {
    stale_then_fresh("purge", Kind::Edge);
}

#[test]
fn edge_ban_by_url_regex() {
    stale_then_fresh("ban", Kind::Edge);
}

#[test]
fn edge_xkey_surrogate_keys() {
    stale_then_fresh("xkey", Kind::Edge);
}

/// A CDN that cannot be reached: `on-failure = "fail"` makes the deploy exit 3 (deployed, maybe stale)
/// and `"warn"` exits 0 with a warning; either way the purge stays pending, and the next `invalidate`
/// against the reachable node purges everything changed since the last successful purge.
#[test]
fn failed_purge_stays_pending_and_is_made_up() {
    let t = tempfile::tempdir().unwrap();
    let dir = t.path();
    edit(dir, "site/index.html", "home", "home v1");
    edit(dir, "site/docs/a.html", "a", "a v1");
    write_files(dir, &[("site/style.css", "body { color: black }\n")]);
    write_files(dir, &[("staleguard.toml", BASE_CONFIG)]);
    sg_ok(dir, &["build"]);
    sg_ok(dir, &["deploy"]);
    let origin = serve(dir, &["store"]);
    let varnish = Varnish::start(&origin.base);
    let cdn = |node: &str, policy: &str| {
        format!(
            "{BASE_CONFIG}\n[[cdn]]\nprovider = \"varnish\"\nnodes = [\"{node}\"]\non-failure = \"{policy}\"\ntimeout = \"3s\"\n\n[verify]\norigin-url = \"{}\"\n",
            origin.base
        )
    };
    write_files(dir, &[("staleguard.toml", &cdn(&varnish.url, "fail"))]);
    sg_ok(dir, &["invalidate"]);
    let c = Client::new();
    let url = |p: &str| format!("{}{p}", varnish.url);
    fetch(&c, &url("/docs/a.html"));
    assert_eq!(fetch(&c, &url("/docs/a.html")).1, "HIT");

    // A dead node, policy fail: exit 3, the message names the node.
    let dead = "http://127.0.0.1:9";
    write_files(dir, &[("staleguard.toml", &cdn(dead, "fail"))]);
    edit(dir, "site/docs/a.html", "a", "a v2");
    sg_ok(dir, &["build"]);
    let mut cmd = staleguard(dir);
    cmd.arg("deploy");
    let o = run(cmd);
    assert_eq!(o.status.code(), Some(3), "{}", stderr(&o));
    let err = stderr(&o);
    assert!(
        err.contains("127.0.0.1:9") && err.contains("staleguard invalidate"),
        "{err}"
    );

    // Policy warn: exit 0 with a warning; still pending.
    write_files(dir, &[("staleguard.toml", &cdn(dead, "warn"))]);
    edit(dir, "site/index.html", "home", "home v3");
    sg_ok(dir, &["build"]);
    let mut cmd = staleguard(dir);
    cmd.arg("deploy");
    let o = run(cmd);
    assert!(o.status.success(), "{}", stderr(&o));
    assert!(
        stderr(&o).contains("warning: the purge of varnish failed"),
        "{}",
        stderr(&o)
    );
    wait_origin(&c, &origin.base, dir);
    assert!(
        fetch(&c, &url("/docs/a.html")).2.contains("a v1"),
        "still stale"
    );

    // The node is back: one `invalidate` makes up both deploys' changes.
    write_files(dir, &[("staleguard.toml", &cdn(&varnish.url, "fail"))]);
    let out = sg_ok(dir, &["--json", "invalidate"]);
    let v: Value = serde_json::from_str(&out).unwrap();
    let purge = &v["purges"][0];
    assert_eq!(purge["outcome"], "completed", "{v}");
    assert_eq!(
        purge["changed_keys"], 2,
        "a.html and index.html (the manifests are not on the site): {v}"
    );
    assert!(fetch(&c, &url("/docs/a.html")).2.contains("a v2"));
    assert!(fetch(&c, &url("/")).2.contains("home v3"));
}

/// S3 and CloudFront on moto: the distribution is found by its alias, its origin path (`/site`) maps the
/// store's `site/` prefix to `/`, a deploy creates one invalidation with exactly the changed mutable
/// URLs (index variants included, fingerprinted files never), and `invalidations list|status` see it.
#[test]
fn cloudfront_on_moto_deploy_purges_exact_paths() {
    use staleguard_testkit::moto::Moto;
    let moto = Moto::start();
    moto.create_bucket("web");
    let id = moto.create_distribution("web", "/site", "www.example.test");

    let t = tempfile::tempdir().unwrap();
    let dir = t.path();
    edit(dir, "site/index.html", "home", "home v1");
    edit(dir, "site/docs/index.html", "docs", "docs v1");
    edit(dir, "site/docs/a.html", "a", "a v1");
    write_files(dir, &[("site/style.css", "body { color: black }\n")]);
    let config = "[build]\nsource = \"site\"\nout = \"out\"\ncompress = [\"br\"]\n\n[deploy]\nstore = \"s3://web/site\"\n\n[[cdn]]\nprovider = \"cloudfront\"\ndistribution = \"auto\"\ndomain = \"www.example.test\"\n";
    write_files(dir, &[("staleguard.toml", config)]);
    sg_ok(dir, &["build"]);
    // The last day of November 2026, UTC.
    const NOV: &str = "1796040000";
    let deploy = |dir: &Path| {
        let mut c = staleguard(dir);
        moto.apply(&mut c)
            .env("STALEGUARD_NOW", NOV)
            .args(["--json", "deploy"]);
        let o = run(c);
        assert!(o.status.success(), "{}", stderr(&o));
        serde_json::from_slice::<Value>(&o.stdout).unwrap()
    };
    let first = deploy(dir);
    let p = &first["purges"][0];
    assert_eq!(p["provider"], format!("cloudfront:{id}"), "{first}");
    assert_eq!(p["outcome"], "completed", "{first}");
    assert_eq!(
        p["url_prefix"], "/",
        "origin path /site maps site/ to /: {first}"
    );
    // The month's free paths: all 1,000 left, this purge's paths free, nothing swept, $0.
    let first_billed = p["plan"]["billed"].as_u64().unwrap();
    assert_eq!(p["usage"]["month"], "2026-11", "{first}");
    // Counted per AWS account (CloudFront's free paths are), not per distribution.
    assert_eq!(
        p["usage"]["counted_as"], "cloudfront-account:123456789012",
        "{first}"
    );
    assert_eq!(p["usage"]["free_left"], 1000, "{first}");
    assert_eq!(p["usage"]["free_used"], first_billed, "{first}");
    assert_eq!(
        (p["plan"]["swept"].as_u64(), p["cost_usd"].as_f64()),
        (Some(0), Some(0.0))
    );

    // v2: one page and the stylesheet change; the CSS gets a new name and is not purged, but its
    // unhashed original `style.css` is a mutable URL that changed.
    edit(dir, "site/docs/index.html", "docs", "docs v2");
    write_files(dir, &[("site/style.css", "body { color: red }\n")]);
    sg_ok(dir, &["build"]);
    let second = deploy(dir);
    let p = &second["purges"][0];
    assert_eq!(p["outcome"], "completed", "{second}");
    // Counted in the store: the second purge had 1,000 − the first's paths left.
    assert_eq!(p["usage"]["free_left"], 1000 - first_billed, "{second}");
    let second_billed = p["plan"]["billed"].as_u64().unwrap();
    let inv = p["ids"][0].as_str().unwrap().to_string();
    let got = moto.aws_json(&[
        "cloudfront",
        "get-invalidation",
        "--distribution-id",
        &id,
        "--id",
        &inv,
    ]);
    let mut paths: Vec<String> = got["Invalidation"]["InvalidationBatch"]["Paths"]["Items"]
        .as_array()
        .unwrap()
        .iter()
        .map(|v| v.as_str().unwrap().to_string())
        .collect();
    paths.sort();
    // The html pages that reference the new CSS name changed too (index.html, docs/a.html).
    let mut want = vec![
        "/",
        "/docs/",
        "/docs/a.html",
        "/docs/index.html",
        "/index.html",
        "/style.css",
    ];
    // The manifests and the build info (not the version endpoint here) are not on the site: never purged.
    for ours in [
        "/staleguard.manifest.json",
        "/staticfiles.json",
        "/build-info.json",
    ] {
        assert!(!paths.iter().any(|p| p == ours), "{ours} purged: {paths:?}");
    }
    want.sort();
    let items: Vec<String> = p["plan"]["items"]
        .as_array()
        .unwrap()
        .iter()
        .map(|i| i["item"]["value"].as_str().unwrap().to_string())
        .collect();
    // Either listed one by one or (when cheaper, within the sweep ceiling) as a wildcard: every wanted
    // URL is covered, and no fingerprinted URL is ever listed.
    for w in &want {
        assert!(
            paths
                .iter()
                .any(|p| p == w || (p.ends_with('*') && w.starts_with(p.trim_end_matches('*')))),
            "{w} not covered by {paths:?} (plan {items:?})"
        );
    }
    assert!(
        paths
            .iter()
            .all(|p| !p.contains(".br")
                && !regex::Regex::new(r"\.[0-9a-f]{12}\.").unwrap().is_match(p)),
        "no sidecar or fingerprinted URL: {paths:?}"
    );
    assert!(p["plan"]["billed"].as_u64().unwrap() <= want.len() as u64);

    // `--explain` shows the month's usage and why each wildcard was chosen; a dry run counts nothing.
    let explain = |now: &str| {
        let mut c = staleguard(dir);
        moto.apply(&mut c).env("STALEGUARD_NOW", now).args([
            "invalidate",
            "--deploy",
            "--dry-run",
            "--explain",
        ]);
        let o = run(c);
        assert!(o.status.success(), "{}", stderr(&o));
        String::from_utf8_lossy(&o.stdout).into_owned()
    };
    let used = first_billed + second_billed;
    let out = explain(NOV);
    let want = format!(
        "cloudfront-account:123456789012 this month (2026-11 UTC): {used} of 1000 free item(s) used before this purge, {} left",
        1000 - used
    );
    assert!(out.contains(&want), "{want}\nnot in:\n{out}");
    assert!(
        !out.contains("URL(s) swept"),
        "free paths: nothing swept\n{out}"
    );
    for line in out.lines().filter(|l| l.contains("* ")) {
        // a wildcard here sweeps nothing: as cheap as its paths, and fewer items
        assert!(
            out.contains("why: $0 (1 item at $0 + 0 swept"),
            "{line}\n{out}"
        );
    }
    // December: a new month starts at zero.
    let out = explain("1796083200");
    assert!(
        out.contains(
            "cloudfront-account:123456789012 this month (2026-12 UTC): 0 of 1000 free item(s) used before this purge, 1000 left"
        ),
        "{out}"
    );
    // The invalidation is listed, and its status read back.
    let mut c = staleguard(dir);
    moto.apply(&mut c).args(["--json", "invalidations", "list"]);
    let o = run(c);
    assert!(o.status.success(), "{}", stderr(&o));
    let listed: Value = serde_json::from_slice(&o.stdout).unwrap();
    assert!(
        listed["invalidations"]
            .as_array()
            .unwrap()
            .iter()
            .any(|i| i["id"] == inv.as_str()),
        "{listed}"
    );
    let mut c = staleguard(dir);
    moto.apply(&mut c).args(["invalidations", "status", &inv]);
    let o = run(c);
    assert!(o.status.success(), "{}", stderr(&o));
    assert!(String::from_utf8_lossy(&o.stdout).contains("completed"));

    // Nothing changed: nothing pending, no new invalidation.
    let mut c = staleguard(dir);
    moto.apply(&mut c).args(["invalidate"]);
    let o = run(c);
    assert!(
        String::from_utf8_lossy(&o.stdout).contains("nothing to purge"),
        "{}",
        stderr(&o)
    );
}

/// A Varnish `[[cdn]]` on a port where nothing listens: only dry runs use it, and they send nothing.
const DEAD_CDN: &str = "\n[[cdn]]\nprovider = \"varnish\"\nnodes = [\"http://127.0.0.1:9\"]\n";

/// The planned items of the first CDN of a `--json` report with `purges`, as `kind value`.
fn planned(v: &Value) -> Vec<String> {
    let p = &v["purges"][0];
    assert_eq!(p["outcome"], "dry-run", "{v}");
    p["plan"]["items"]
        .as_array()
        .unwrap_or_else(|| panic!("no plan: {v}"))
        .iter()
        .map(|i| {
            format!(
                "{} {}",
                i["item"]["kind"].as_str().unwrap(),
                i["item"]["value"].as_str().unwrap()
            )
        })
        .collect()
}

/// With `[serve] clean-urls`, a changed `about.html` is purged as `/about` as well as `/about.html`
/// (and not without the key); an index page is not given a clean URL.
#[test]
fn clean_urls_are_in_the_purge_plan() {
    let t = tempfile::tempdir().unwrap();
    let dir = t.path();
    edit(
        dir,
        "site/index.html",
        "home",
        "<a href=\"/about\">about</a>",
    );
    edit(dir, "site/about.html", "about", "about v1");
    edit(dir, "site/docs/index.html", "docs", "docs v1");
    write_files(dir, &[("site/style.css", "body { color: black }\n")]);
    let config = |clean: bool| {
        format!("{BASE_CONFIG}{DEAD_CDN}")
            .replace("[serve]\n", &format!("[serve]\nclean-urls = {clean}\n"))
    };
    write_files(dir, &[("staleguard.toml", &config(true))]);
    sg_ok(dir, &["build"]);
    sg_ok(dir, &["deploy", "--no-purge"]);
    edit(dir, "site/about.html", "about", "about v2");
    edit(dir, "site/docs/index.html", "docs", "docs v2");
    sg_ok(dir, &["build"]);
    let v: Value = serde_json::from_str(&sg_ok(dir, &["--json", "deploy", "--dry-run"])).unwrap();
    let items = planned(&v);
    for want in ["path /about", "path /about.html"] {
        assert!(items.iter().any(|i| i == want), "{want} not in {items:?}");
    }
    // The changed docs page is covered as `/docs/` (here by a prefix), never as `/docs/index`.
    assert!(items.iter().any(|i| i.ends_with(" /docs/")), "{items:?}");
    assert!(!items.iter().any(|i| i == "path /docs/index"), "{items:?}");
    // `invalidate --dry-run` plans from the store: the same URLs for the deployed pages.
    sg_ok(dir, &["build"]);
    sg_ok(dir, &["deploy", "--no-purge"]);
    let v: Value =
        serde_json::from_str(&sg_ok(dir, &["--json", "invalidate", "--dry-run"])).unwrap();
    let items = planned(&v);
    assert!(items.iter().any(|i| i == "path /about"), "{items:?}");
    // Without the key: no clean URL.
    write_files(dir, &[("staleguard.toml", &config(false))]);
    let v: Value =
        serde_json::from_str(&sg_ok(dir, &["--json", "invalidate", "--dry-run"])).unwrap();
    let items = planned(&v);
    assert!(items.iter().any(|i| i == "path /about.html"), "{items:?}");
    assert!(!items.iter().any(|i| i == "path /about"), "{items:?}");
}

/// `rollback --dry-run` shows each CDN's purge plan, as `deploy --dry-run` does, and sends nothing.
#[test]
fn rollback_dry_run_shows_the_purge_plan() {
    let t = tempfile::tempdir().unwrap();
    let dir = t.path();
    edit(dir, "site/index.html", "home", "home v1");
    edit(dir, "site/docs/a.html", "a", "a v1");
    edit(dir, "site/docs/b.html", "b", "b v1");
    write_files(dir, &[("site/style.css", "body { color: black }\n")]);
    write_files(
        dir,
        &[("staleguard.toml", &format!("{BASE_CONFIG}{DEAD_CDN}"))],
    );
    sg_ok(dir, &["build"]);
    sg_ok(dir, &["deploy", "--no-purge"]);
    edit(dir, "site/docs/a.html", "a", "a v2");
    sg_ok(dir, &["build"]);
    sg_ok(dir, &["deploy", "--no-purge"]);
    let v: Value = serde_json::from_str(&sg_ok(dir, &["--json", "rollback", "--dry-run"])).unwrap();
    let items = planned(&v);
    assert!(items.iter().any(|i| i == "path /docs/a.html"), "{items:?}");
    assert!(
        !items.iter().any(|i| i.contains("/docs/b.html")),
        "{items:?}"
    );
    let out = sg_ok(dir, &["rollback", "--dry-run"]);
    assert!(
        out.contains("purge varnish")
            && out.contains("dry run: nothing sent")
            && out.contains("/docs/a.html"),
        "{out}"
    );
    assert!(
        read(&dir.join("store"), "docs/a.html").contains("a v2"),
        "the dry run changed nothing"
    );
}
