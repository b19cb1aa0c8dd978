//! `staleguard cdn-config --target varnish`: the VCL generated from the route table compiles in the
//! real `varnishd` and, in a real Varnish in front of `staleguard serve`, behaves as the table says:
//! fingerprinted files are HITs with brotli kept apart from gzip, pages revalidate or live for their
//! `s-maxage`, purges are accepted from the ACL and refused from anywhere else. (The end-to-end
//! purge/verify tests also run against it: `purge::generated_vcl_*`, `prove::*generated_vcl*`.)

use std::path::Path;

use reqwest::blocking::Client;
use staleguard_testkit::varnish::Varnish;

use crate::serve::serve;
use crate::support::*;

const CONFIG: &str = r#"[build]
source = "site"
out = "out"
compress = ["br", "gzip"]

[serve]
reload-ms = 20

[[routes]]
match = "docs/**"
cache-control = "public, max-age=0, s-maxage=60"
"#;

fn generate(dir: &Path, origin: &str, extra: &[&str]) -> std::path::PathBuf {
    crate::nodes::generate_vcl(dir, origin, &format!("gen{}.vcl", extra.len()), extra)
}

/// `staleguard build` in `dir`, expecting success.
fn build_here(dir: &Path) {
    let mut c = staleguard(dir);
    c.arg("build");
    let o = run(c);
    assert!(o.status.success(), "build: {}", stderr(&o));
}

fn get(c: &Client, url: &str, ae: &str) -> (u16, String, String, Vec<u8>) {
    let mut rb = c.get(url);
    if !ae.is_empty() {
        rb = rb.header("Accept-Encoding", ae);
    }
    let r = rb.send().unwrap_or_else(|e| panic!("GET {url}: {e}"));
    let h = |n: &str| {
        r.headers()
            .get(n)
            .map(|v| v.to_str().unwrap().to_string())
            .unwrap_or_default()
    };
    let (status, x, enc) = (r.status().as_u16(), h("x-cache"), h("content-encoding"));
    (status, x, enc, r.bytes().unwrap().to_vec())
}

#[test]
fn the_generated_vcl_caches_as_the_route_table_says_and_guards_purges() {
    let t = tempfile::tempdir().unwrap();
    let dir = t.path();
    copy_dir(&repo().join("examples/site"), &dir.join("site"));
    write_files(dir, &[("staleguard.toml", CONFIG)]);
    build_here(dir);
    let out = dir.join("out");
    let m = manifest(&out);
    let origin = serve(dir, &["out"]);
    let vcl = generate(dir, &origin.base, &[]);
    let text = std::fs::read_to_string(&vcl).unwrap();
    assert!(text.contains("docs/"), "the route is in the VCL:\n{text}");
    let node = Varnish::start_with(&origin.base, Some(&vcl));
    let c = Client::new();

    // A fingerprinted file: MISS then HIT per coding; br, gzip and identity never mixed.
    let css = hashed(&m, "css/site.css");
    let url = format!("{}/{css}", node.url);
    for (ae, want_enc, file) in [
        ("gzip, deflate, br, zstd", "br", format!("{css}.br")),
        ("gzip", "gzip", format!("{css}.gz")),
        ("", "", css.clone()),
    ] {
        let want = std::fs::read(out.join(&file)).unwrap();
        let (st, x, enc, body) = get(&c, &url, ae);
        assert_eq!(
            (st, x.as_str(), enc.as_str()),
            (200, "MISS", want_enc),
            "{ae:?}"
        );
        assert_eq!(body, want, "{ae:?}");
        let (_, x, enc, body) = get(&c, &url, ae);
        assert_eq!((x.as_str(), enc.as_str()), ("HIT", want_enc), "{ae:?}");
        assert_eq!(body, want, "{ae:?}: its own variant");
    }
    // Safari's list shares Chrome's brotli variant only if the lists normalise alike: both take br.
    let (_, _, enc, _) = get(&c, &url, "gzip, deflate, br");
    assert_eq!(enc, "br");

    // A page under docs/ (s-maxage=60): cached. The home page (no-cache): revalidated every time.
    let docs = format!("{}/docs/getting-started.html", node.url);
    assert_eq!(get(&c, &docs, "").1, "MISS");
    assert_eq!(get(&c, &docs, "").1, "HIT");
    let home = format!("{}/", node.url);
    get(&c, &home, "");
    assert_ne!(get(&c, &home, "").1, "HIT", "no-cache pages are never HITs");
    // A new build shows at once on the home page, and on docs/ only after a purge.
    let page = dir.join("site/index.html");
    let mut html = std::fs::read_to_string(&page).unwrap();
    html.push_str("\n<!-- v2 -->\n");
    std::fs::write(&page, html).unwrap();
    let docs_page = dir.join("site/docs/getting-started.html");
    let mut d = std::fs::read_to_string(&docs_page).unwrap();
    d.push_str("\n<!-- docs v2 -->\n");
    std::fs::write(&docs_page, d).unwrap();
    build_here(dir);
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(10);
    while !String::from_utf8_lossy(&get(&c, &home, "").3).contains("<!-- v2 -->") {
        assert!(
            std::time::Instant::now() < deadline,
            "the home page stayed stale"
        );
        std::thread::sleep(std::time::Duration::from_millis(50));
    }
    let (_, x, _, body) = get(&c, &docs, "");
    assert!(
        x == "HIT" && !String::from_utf8_lossy(&body).contains("docs v2"),
        "docs/ pages live for their s-maxage: {x}"
    );
    let purge = c
        .request(reqwest::Method::from_bytes(b"PURGE").unwrap(), &docs)
        .send()
        .unwrap();
    assert_eq!(purge.status().as_u16(), 200, "loopback may purge");
    let (_, _, _, body) = get(&c, &docs, "");
    assert!(String::from_utf8_lossy(&body).contains("docs v2"), "purged");

    // The ACL set to a test range: loopback is refused (403) and nothing is dropped.
    let vcl2 = generate(dir, &origin.base, &["--purge-from", "198.51.100.0/24"]);
    let node2 = Varnish::start_with(&origin.base, Some(&vcl2));
    let docs2 = format!("{}/docs/getting-started.html", node2.url);
    get(&c, &docs2, "");
    for (method, header) in [("PURGE", None), ("BAN", Some(("x-ban-url", "^/")))] {
        let mut rb = c.request(
            reqwest::Method::from_bytes(method.as_bytes()).unwrap(),
            &docs2,
        );
        if let Some((k, v)) = header {
            rb = rb.header(k, v);
        }
        assert_eq!(rb.send().unwrap().status().as_u16(), 403, "{method}");
    }
    assert_eq!(get(&c, &docs2, "").1, "HIT", "nothing purged");
}

#[test]
fn cdn_config_refuses_what_it_cannot_do_with_a_hint() {
    let t = tempfile::tempdir().unwrap();
    let dir = t.path();
    write_files(dir, &[("staleguard.toml", CONFIG)]);
    // No build yet.
    let mut c = staleguard(dir);
    c.args(["cdn-config", "--target", "varnish"]);
    let o = run(c);
    assert_eq!(o.status.code(), Some(1));
    assert!(
        stderr(&o).contains("hint: run `staleguard build` first"),
        "{}",
        stderr(&o)
    );
    copy_dir(&repo().join("examples/site"), &dir.join("site"));
    build_here(dir);
    for (args, want) in [
        (vec!["--target", "akamai"], "unknown --target"),
        (
            vec!["--target", "varnish", "--origin", "https://x"],
            "http://",
        ),
        (
            vec!["--target", "varnish", "--purge-from", "10.0.0.0/99"],
            "--purge-from",
        ),
        (
            vec!["--target", "cloudflare", "--check", "live.json"],
            "--check does not read a live cloudflare configuration",
        ),
        (
            vec!["--target", "cloudflare", "--apply"],
            "--apply works with --target cloudfront only",
        ),
        (
            vec!["--target", "varnish", "--check"],
            "--check needs the varnish file",
        ),
    ] {
        let mut c = staleguard(dir);
        c.arg("cdn-config").args(&args);
        let o = run(c);
        assert_ne!(o.status.code(), Some(0), "{args:?}");
        assert!(stderr(&o).contains(want), "{args:?}: {}", stderr(&o));
    }
}

/// The headers that decide caching and decoding, as a comparable list (`ETag` and `Last-Modified`
/// by presence: nginx's ETag is size and mtime, staleguard's the content hash).
fn caching_headers(c: &Client, url: &str, ae: &str) -> Vec<(String, String)> {
    let mut rb = c.get(url);
    if !ae.is_empty() {
        rb = rb.header("Accept-Encoding", ae);
    }
    let r = rb.send().unwrap_or_else(|e| panic!("GET {url}: {e}"));
    let mut out = vec![("status".to_string(), r.status().as_u16().to_string())];
    for name in [
        "cache-control",
        "content-type",
        "content-encoding",
        "x-content-type-options",
        "access-control-allow-origin",
        "x-frame-options",
        "strict-transport-security",
        "x-robots-tag",
    ] {
        let v = r
            .headers()
            .get_all(name)
            .iter()
            .map(|v| v.to_str().unwrap().to_string())
            .collect::<Vec<_>>()
            .join(", ");
        out.push((name.to_string(), v));
    }
    let vary = r.headers().get_all("vary").iter().any(|v| {
        v.to_str()
            .unwrap()
            .to_ascii_lowercase()
            .contains("accept-encoding")
    });
    out.push(("vary accept-encoding".into(), vary.to_string()));
    // Validators on successful responses only (nginx drops Last-Modified from an error page).
    if r.status().is_success() {
        for name in ["etag", "last-modified"] {
            out.push((name.to_string(), r.headers().contains_key(name).to_string()));
        }
    }
    // And the same bytes (FNV-1a over the body as sent).
    let body = r.bytes().unwrap();
    let fnv = body.iter().fold(0xcbf29ce484222325u64, |h, b| {
        (h ^ u64::from(*b)).wrapping_mul(0x100000001b3)
    });
    out.push(("body".into(), format!("{} bytes, {fnv:016x}", body.len())));
    out
}

#[test]
fn the_generated_nginx_block_serves_what_staleguard_serve_serves() {
    let t = tempfile::tempdir().unwrap();
    let dir = t.path();
    copy_dir(&repo().join("examples/site"), &dir.join("site"));
    let config = format!(
        "{CONFIG}\n[serve.headers]\nX-Frame-Options = \"DENY\"\n\n[[routes]]\nmatch = \"robots.txt\"\ncache-control = \"public, max-age=300\"\nheaders = {{ X-Frame-Options = \"\" }}\n"
    );
    write_files(dir, &[("staleguard.toml", &config)]);
    build_here(dir);
    let out = dir.join("out");
    let m = manifest(&out);
    let origin = serve(dir, &["out"]);
    let port = staleguard_testkit::nginx::free_port();
    let snippet = dir.join("staleguard-nginx.conf");
    let mut c = staleguard(dir);
    c.args(["cdn-config", "--target", "nginx", "--listen"])
        .arg(format!("127.0.0.1:{port}"))
        .arg("-o")
        .arg(&snippet);
    let o = run(c);
    assert!(o.status.success(), "cdn-config nginx: {}", stderr(&o));
    let nginx = staleguard_testkit::nginx::Nginx::start(&snippet, port);
    let c = Client::new();
    let font = m["files"]
        .as_object()
        .unwrap()
        .values()
        .map(|e| e["path"].as_str().unwrap().to_string())
        .find(|p| p.ends_with(".woff2"))
        .expect("the example has a font");
    // One URL per route class: fingerprinted (each coding), its original copy, pages (no-cache, and
    // under the docs/ rule), a file with a rule of its own, a font (CORS), the 404 page.
    let css = hashed(&m, "css/site.css");
    let cases = [
        (format!("/{css}"), "gzip, deflate, br"),
        (format!("/{css}"), "gzip"),
        (format!("/{css}"), ""),
        ("/css/site.css".to_string(), "br"),
        ("/".to_string(), "br"),
        ("/index.html".to_string(), ""),
        ("/about/".to_string(), "gzip"),
        ("/docs/getting-started.html".to_string(), "br"),
        ("/robots.txt".to_string(), ""),
        (format!("/{font}"), ""),
        ("/no/such/page.html".to_string(), ""),
    ];
    for (path, ae) in &cases {
        let want = caching_headers(&c, &format!("{}{path}", origin.base), ae);
        let got = caching_headers(&c, &format!("{}{path}", nginx.url), ae);
        assert_eq!(
            got, want,
            "{path} (Accept-Encoding: {ae:?}): nginx vs staleguard serve"
        );
    }
}

/// Every kind of rule the table can hold, in one config: the VCL compiles in `varnishd -C` (through
/// the peer script, which checks it) and the nginx block passes `nginx -t` (the nginx peer checks it).
#[test]
fn every_kind_of_rule_compiles_in_varnish_and_nginx() {
    let t = tempfile::tempdir().unwrap();
    let dir = t.path();
    copy_dir(&repo().join("examples/site"), &dir.join("site"));
    let config = r#"[build]
source = "site"
out = "out"
compress = ["br", "gzip"]

[serve]
tag-header = "xkey"
clean-urls = true

[serve.headers]
Strict-Transport-Security = "max-age=63072000"

[[routes]]
match = "api/**"
cache-control = "no-store"

[[routes]]
match = "account/{settings,profile}.html"
cache-control = "private, max-age=600"

[[routes]]
match = "@fingerprinted"
headers = { Access-Control-Allow-Origin = "*" }

[[routes]]
match = "news/*.html"
cache-control = "public, max-age=60, stale-while-revalidate=300"

[[routes]]
match = "img/[!_]*.png"

[[routes]]
match = "@mutable"
cache-control = "public, max-age=0, s-maxage=120, must-revalidate"
headers = { X-Robots-Tag = "noindex" }

[[routes]]
match = "never/reached.txt"
cache-control = "public, max-age=1"
"#;
    write_files(dir, &[("staleguard.toml", config)]);
    build_here(dir);
    let origin = serve(dir, &["out"]);
    // Varnish: the peer script runs `varnishd -C` on it before starting.
    let vcl = generate(
        dir,
        &origin.base,
        &["--purge-from", "10.0.0.0/8", "--purge-from", "::1"],
    );
    let text = std::fs::read_to_string(&vcl).unwrap();
    for want in [
        "uncacheable",
        "beresp.grace = 300s",
        "\"10.0.0.0\"/8",
        "xkey.purge",
        "X-SG-Fp",
    ] {
        assert!(text.contains(want), "{want} in the VCL:\n{text}");
    }
    let node = Varnish::start_with(&origin.base, Some(&vcl));
    let c = Client::new();
    let m = manifest(&dir.join("out"));
    let css = hashed(&m, "css/site.css");
    let url = format!("{}/{css}", node.url);
    assert_eq!(get(&c, &url, "br").1, "MISS");
    assert_eq!(get(&c, &url, "br").1, "HIT");
    // A mutable page under `@mutable` (s-maxage=120): cached.
    let page = format!("{}/about/", node.url);
    get(&c, &page, "");
    assert_eq!(get(&c, &page, "").1, "HIT");
    // nginx: the peer script runs `nginx -t` before starting; headers as serve sends them.
    let port = staleguard_testkit::nginx::free_port();
    let snippet = dir.join("every-rule-nginx.conf");
    let mut cmd = staleguard(dir);
    cmd.args(["cdn-config", "--target", "nginx", "--listen"])
        .arg(format!("127.0.0.1:{port}"))
        .arg("-o")
        .arg(&snippet);
    let o = run(cmd);
    assert!(o.status.success(), "{}", stderr(&o));
    let nginx = staleguard_testkit::nginx::Nginx::start(&snippet, port);
    for (path, ae) in [
        (format!("/{css}"), "br"),
        ("/about/".to_string(), ""),
        ("/about".to_string(), ""),
        ("/index.html".to_string(), "gzip"),
        ("/robots.txt".to_string(), ""),
    ] {
        let want = caching_headers(&c, &format!("{}{path}", origin.base), ae);
        let got = caching_headers(&c, &format!("{}{path}", nginx.url), ae);
        assert_eq!(got, want, "{path}: nginx vs staleguard serve");
    }
}

/// `--check FILE`: the live VCL or nginx file against the route table. Unchanged → 0; a route's
/// lifetime edited by hand, or the table changed after the file was written → 3 naming the line;
/// another backend address → 1 (drift, no staleness risk).
#[test]
fn check_reports_what_can_serve_stale_content() {
    let t = tempfile::tempdir().unwrap();
    let dir = t.path();
    copy_dir(&repo().join("examples/site"), &dir.join("site"));
    write_files(dir, &[("staleguard.toml", CONFIG)]);
    build_here(dir);
    let origin = "http://10.0.0.5:8080";
    let vcl = generate(dir, origin, &[]);
    let check = |target: &str, file: &Path, extra: &[&str]| {
        let mut c = staleguard(dir);
        c.args([
            "cdn-config",
            "--target",
            target,
            "--origin",
            origin,
            "--check",
        ])
        .arg(file)
        .args(extra);
        let o = run(c);
        (
            o.status.code(),
            String::from_utf8_lossy(&o.stdout).to_string(),
        )
    };
    let (code, out) = check("varnish", &vcl, &[]);
    assert_eq!(code, Some(0), "{out}");
    // Comments do not count.
    let text = std::fs::read_to_string(&vcl).unwrap();
    std::fs::write(
        &vcl,
        text.replace("# Generated by", "# Edited, generated by"),
    )
    .unwrap();
    assert_eq!(check("varnish", &vcl, &[]).0, Some(0));
    // A day of TTL on the docs/ pages, by hand: stale risk, with its line.
    let long = text.replace("set beresp.ttl = 60s;", "set beresp.ttl = 86400s;");
    assert_ne!(long, text, "the docs/ rule has a 60 s TTL:\n{text}");
    std::fs::write(&vcl, &long).unwrap();
    let line = long.lines().position(|l| l.contains("86400s")).unwrap() + 1;
    let (code, out) = check("varnish", &vcl, &[]);
    assert_eq!(code, Some(3), "{out}");
    assert!(
        out.contains(&format!("STALE RISK: {}:{line}", vcl.display())),
        "{out}"
    );
    // Another backend: drift only.
    std::fs::write(&vcl, text.replace("10.0.0.5", "10.0.0.6")).unwrap();
    let (code, out) = check("varnish", &vcl, &[]);
    assert_eq!(code, Some(1), "{out}");
    assert!(
        out.contains("drift") && !out.contains("STALE RISK"),
        "{out}"
    );
    // The route table changes (docs/ now no-cache) and the file is not regenerated: 3.
    std::fs::write(&vcl, &text).unwrap();
    write_files(
        dir,
        &[(
            "staleguard.toml",
            &CONFIG.replace("public, max-age=0, s-maxage=60", "no-cache"),
        )],
    );
    let (code, out) = check("varnish", &vcl, &[]);
    assert_eq!(code, Some(3), "{out}");
    // nginx: a Cache-Control edited by hand is a stale risk; --json lists it.
    write_files(dir, &[("staleguard.toml", CONFIG)]);
    let conf = dir.join("site-nginx.conf");
    let mut c = staleguard(dir);
    c.args([
        "cdn-config",
        "--target",
        "nginx",
        "--listen",
        "127.0.0.1:8080",
        "-o",
    ])
    .arg(&conf);
    assert!(run(c).status.success());
    let n = std::fs::read_to_string(&conf).unwrap();
    assert_eq!(
        check("nginx", &conf, &["--listen", "127.0.0.1:8080"]).0,
        Some(0)
    );
    std::fs::write(
        &conf,
        n.replacen(
            "\"public, max-age=0, s-maxage=60\"",
            "\"public, max-age=86400\"",
            1,
        ),
    )
    .unwrap();
    let (code, out) = check("nginx", &conf, &["--listen", "127.0.0.1:8080", "--json"]);
    assert_eq!(code, Some(3), "{out}");
    let v: serde_json::Value = serde_json::from_str(&out).unwrap();
    assert!(v["stale_risk"].as_u64().unwrap() >= 1, "{v}");
}

/// `--target cloudflare` prints the body of the Rulesets API's `PUT …/phases/http_request_cache_settings/entrypoint`:
/// the route table in reverse (Cloudflare's last matching rule wins), every rule a cache rule that
/// takes the origin's lifetime, the table's first route last.
#[test]
fn the_cloudflare_target_is_a_cache_ruleset_with_the_first_route_last() {
    let t = tempfile::tempdir().unwrap();
    let dir = t.path();
    let config = format!("{CONFIG}\n[[routes]]\nmatch = \"api/*\"\ncache-control = \"no-store\"\n");
    write_files(dir, &[("staleguard.toml", &config)]);
    copy_dir(&repo().join("examples/site"), &dir.join("site"));
    build_here(dir);
    let mut c = staleguard(dir);
    c.args(["cdn-config", "--target", "cloudflare", "-o", "rules.json"]);
    let o = run(c);
    assert!(o.status.success(), "{}", stderr(&o));
    let v: serde_json::Value =
        serde_json::from_slice(&std::fs::read(dir.join("rules.json")).unwrap()).unwrap();
    let rules = v["rules"].as_array().expect("a `rules` array");
    assert_eq!(rules.len(), 3, "the defaults and two routes: {v:#}");
    for r in rules {
        assert_eq!(r["action"], "set_cache_settings", "{r:#}");
        assert_eq!(r["enabled"], true);
        assert!(r["expression"].as_str().is_some_and(|e| !e.is_empty()));
    }
    let (defaults, api, docs) = (&rules[0], &rules[1], &rules[2]);
    assert_eq!(defaults["expression"], "true");
    assert_eq!(
        defaults["action_parameters"]["edge_ttl"]["mode"],
        "respect_origin"
    );
    assert_eq!(
        api["action_parameters"]["cache"], false,
        "no-store bypasses: {api:#}"
    );
    assert!(
        api["expression"].as_str().unwrap().contains("/api/"),
        "{api:#}"
    );
    let d = docs["description"].as_str().unwrap();
    assert!(
        d.contains("#1") && d.contains("docs/**") && d.contains("60 s"),
        "{d}"
    );
    assert_eq!(
        docs["expression"],
        "starts_with(http.request.uri.path, \"/docs/\")"
    );
    assert_eq!(docs["action_parameters"]["cache"], true);
}
