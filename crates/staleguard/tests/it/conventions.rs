//! Generators' and bundlers' conventions on small trees: builds kept across rebuilds, bundler chunks that
//! import each other, fixed-name files, a generator's own `.gz` files, bundler hash formats, a site
//! served under a prefix. Each case is a general rule; the real generators' output is in `stacks.rs`.

use std::io::Write;
use std::path::Path;

use crate::support::*;

fn gzip(bytes: &[u8]) -> Vec<u8> {
    let mut e = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::best());
    e.write_all(bytes).unwrap();
    e.finish().unwrap()
}

fn gunzip(bytes: &[u8]) -> Vec<u8> {
    use std::io::Read;
    let mut out = Vec::new();
    flate2::read::GzDecoder::new(bytes)
        .read_to_end(&mut out)
        .unwrap();
    out
}

fn build_at(dir: &Path, now: i64, extra: &[&str]) -> serde_json::Value {
    let mut c = staleguard(dir);
    c.env("STALEGUARD_NOW", now.to_string())
        .args(["build", "--json"])
        .args(extra);
    let o = run(c);
    assert!(o.status.success(), "build failed: {}", stderr(&o));
    serde_json::from_slice(&o.stdout).unwrap()
}

#[test]
fn a_rebuild_keeps_the_fingerprinted_files_of_recent_builds() {
    let t = tempfile::tempdir().unwrap();
    write_files(
        t.path(),
        &[
            (
                "staleguard.toml",
                "[build]\nsource = 'src'\nout = 'out'\nkeep-builds = 2\nkeep-age = '1h'\n",
            ),
            ("src/index.html", "<link rel=stylesheet href=app.css>\n"),
            ("src/app.css", "body{color:red}\n"),
        ],
    );
    let out = t.path().join("out");
    let t0 = 1_800_000_000;
    build_at(t.path(), t0, &[]);
    let v1 = hashed(&manifest(&out), "app.css");
    std::fs::write(t.path().join("src/app.css"), "body{color:green}\n").unwrap();
    build_at(t.path(), t0 + 10, &[]);
    let v2 = hashed(&manifest(&out), "app.css");
    std::fs::write(t.path().join("src/app.css"), "body{color:blue}\n").unwrap();
    let r = build_at(t.path(), t0 + 20, &[]);
    let v3 = hashed(&manifest(&out), "app.css");
    assert!(v1 != v2 && v2 != v3);
    // v1 is older than the last 2 builds but was dropped 10 s ago (< keep-age): still there.
    for v in [&v1, &v2, &v3] {
        assert!(out.join(v).is_file(), "{v} was deleted by a rebuild");
    }
    assert_eq!(r["retained"], 2, "{r}");
    let m = manifest(&out);
    assert!(
        m["retained"][&v1].is_object() && m["retained"][&v2].is_object(),
        "{m}"
    );
    // Their sidecars too (the CSS is too small to compress: none), and the original is the newest.
    assert_eq!(read(&out, "app.css"), "body{color:blue}\n");
    // A rebuild with nothing changed ages nothing.
    build_at(t.path(), t0 + 30, &[]);
    assert!(out.join(&v1).is_file());
    // Hours later: v1 and v2 are past keep-age, v2 is no longer among the last 2 builds; v3 is.
    std::fs::write(t.path().join("src/app.css"), "body{color:black}\n").unwrap();
    let r = build_at(t.path(), t0 + 10_000, &[]);
    let v4 = hashed(&manifest(&out), "app.css");
    assert!(!out.join(&v1).exists() && !out.join(&v2).exists(), "{r}");
    assert!(out.join(&v3).is_file() && out.join(&v4).is_file());
    assert_eq!(r["retained"], 1, "{r}");
    // The deploy takes only the current build: retained files are the store's business (deploy GC).
    let mut c = staleguard(t.path());
    c.args(["deploy", "--dry-run", "--json", "--no-purge", "--no-verify"]);
    let o = run(c);
    let text = String::from_utf8_lossy(&o.stdout);
    assert!(text.contains(&v4) && !text.contains(&v3), "{text}");
}

#[test]
fn bundler_chunks_that_import_each_other_keep_their_names_and_bytes() {
    let t = tempfile::tempdir().unwrap();
    let entry = "const __vite__mapDeps=(i,m=__vite__mapDeps,d=(m.f||(m.f=[\"assets/About-Cq2lMnOp.js\",\"assets/About-kRbEfWhY.css\"])))=>i.map(i=>d[i]);\nexport const shared = 1;\nconst About = () => import(\"./About-Cq2lMnOp.js\").then(m => m);\nconst logo = new URL(\"../img/logo.svg\", import.meta.url);\n";
    let lazy = "import { shared } from \"./index-B7x9aZ3q.js\";\nexport default shared;\n";
    write_files(
        t.path(),
        &[
            (
                "src/index.html",
                "<script type=module src=\"/assets/index-B7x9aZ3q.js\"></script>\n<link rel=stylesheet href=\"/assets/index-D1p2Q3rS.css\">\n",
            ),
            ("src/assets/index-B7x9aZ3q.js", entry),
            ("src/assets/About-Cq2lMnOp.js", lazy),
            ("src/assets/About-kRbEfWhY.css", ".about{color:red}\n"),
            (
                "src/assets/index-D1p2Q3rS.css",
                "body{background:url(../img/bg.png)}\n",
            ),
            ("src/img/logo.svg", "<svg/>"),
            ("src/img/bg.png", "png"),
            (
                "src/.vite/manifest.json",
                "{\"index.html\":{\"file\":\"assets/index-B7x9aZ3q.js\"}}",
            ),
        ],
    );
    let r = build(t.path(), "src", "out", &["--no-originals"]);
    let out = t.path().join("out");
    assert_eq!(r["cycles"].as_array().unwrap().len(), 0, "{r}");
    for (name, bytes) in [
        ("assets/index-B7x9aZ3q.js", entry),
        ("assets/About-Cq2lMnOp.js", lazy),
        (
            "assets/index-D1p2Q3rS.css",
            "body{background:url(../img/bg.png)}\n",
        ),
    ] {
        assert_eq!(read(&out, name), bytes, "{name} was rewritten");
        let m = manifest(&out);
        assert_eq!(hashed(&m, name), name);
        assert_eq!(m["files"][name]["prehashed"], true);
    }
    // The chunks name `img/logo.svg` and `img/bg.png` as the bundler wrote them: those exist under their
    // own names even with --no-originals, and the build says why.
    assert!(out.join("img/logo.svg").is_file() && out.join("img/bg.png").is_file());
    let warnings = r["warnings"].to_string();
    assert!(
        warnings.contains("img/bg.png") && warnings.contains("keep-originals"),
        "{warnings}"
    );
    // Bundler metadata is for backends, not for the site.
    assert!(!out.join(".vite").exists());
    // The page names the chunks the bundler named.
    assert!(read(&out, "index.html").contains("/assets/index-B7x9aZ3q.js"));
}

#[test]
fn fixed_name_files_keep_their_names_and_links_to_them_are_left_alone() {
    let t = tempfile::tempdir().unwrap();
    let page = "<link rel=\"alternate\" type=\"application/rss+xml\" href=\"/index.xml\">\n<link rel=manifest href=/site.webmanifest>\n<link rel=\"canonical\" href=\"/posts/\">\n<link rel=\"alternate stylesheet\" href=\"/css/dark.css\">\n<link rel=stylesheet href=/css/a.css>\n<link rel=\"shortcut icon\" href=\"/img/icon.png\">\n";
    write_files(
        t.path(),
        &[
            (
                "staleguard.toml",
                "[build]\nsource = 'src'\nout = 'out'\nmutable = ['extra/*.js']\n",
            ),
            ("src/index.html", page),
            ("src/index.xml", "<rss/>"),
            ("src/sitemap.xml", "<urlset/>"),
            ("src/robots.txt", "Sitemap: /sitemap.xml\n"),
            ("src/site.webmanifest", "{\"name\":\"x\"}"),
            ("src/sw.js", "self.addEventListener('fetch', () => {});\n"),
            ("src/.well-known/security.txt", "Contact: x\n"),
            ("src/favicon.ico", "ico"),
            ("src/search/search_index.json", "{\"docs\":[]}"),
            ("src/extra/tool.js", "x()\n"),
            ("src/css/a.css", "a{}"),
            ("src/css/dark.css", "b{}"),
            ("src/img/icon.png", "png"),
            ("src/data/manifest-3f2a9c1b.json", "{}"),
        ],
    );
    let mut c = staleguard(t.path());
    c.args(["build", "--json"]);
    let o = run(c);
    assert!(o.status.success());
    let out = t.path().join("out");
    let m = manifest(&out);
    for fixed in [
        "index.xml",
        "sitemap.xml",
        "robots.txt",
        "site.webmanifest",
        "sw.js",
        ".well-known/security.txt",
        "favicon.ico",
        "search/search_index.json",
        "extra/tool.js",
    ] {
        assert_eq!(hashed(&m, fixed), fixed, "{fixed} was renamed");
        assert_eq!(m["files"][fixed]["mutable"], true, "{fixed}");
    }
    // A bundler-hashed JSON is immutable under its own name.
    assert_eq!(m["files"]["data/manifest-3f2a9c1b.json"]["mutable"], false);
    let html = read(&out, "index.html");
    for kept in [
        "href=\"/index.xml\"",
        "href=/site.webmanifest",
        "href=\"/posts/\"",
    ] {
        assert!(html.contains(kept), "{kept} rewritten:\n{html}");
    }
    // Resources the page loads are fingerprinted (an alternate stylesheet is a stylesheet).
    for res in ["css/a.css", "css/dark.css", "img/icon.png"] {
        assert!(
            html.contains(&hashed(&m, res)),
            "{res} not rewritten:\n{html}"
        );
    }
}

#[test]
fn a_generators_own_gz_file_is_the_sidecar_or_is_kept() {
    let t = tempfile::tempdir().unwrap();
    let sitemap =
        "<urlset>".to_string() + &"<url><loc>https://x/</loc></url>".repeat(50) + "</urlset>";
    write_files(
        t.path(),
        &[
            ("src/sitemap.xml", &sitemap),
            ("src/notes.txt", "plain notes, not what the archive holds\n"),
        ],
    );
    std::fs::write(
        t.path().join("src/sitemap.xml.gz"),
        gzip(sitemap.as_bytes()),
    )
    .unwrap();
    let other = gzip(b"an unrelated archive");
    std::fs::write(t.path().join("src/notes.txt.gz"), &other).unwrap();
    let r = build(t.path(), "src", "out", &[]);
    let out = t.path().join("out");
    // sitemap.xml.gz is the gzip of sitemap.xml: the build's own sidecar takes its place.
    let side = std::fs::read(out.join("sitemap.xml.gz")).unwrap();
    assert_eq!(gunzip(&side), sitemap.as_bytes());
    let m = manifest(&out);
    assert!(
        m["files"]["sitemap.xml"]["encodings"]["gzip"].is_object(),
        "{m}"
    );
    assert!(m["files"]["sitemap.xml.gz"].is_null());
    // notes.txt.gz is something else: the user's file is kept byte for byte, and no sidecar is written
    // for notes.txt under that name.
    assert_eq!(std::fs::read(out.join("notes.txt.gz")).unwrap(), other);
    assert!(
        m["files"]["notes.txt"]["encodings"]["gzip"].is_null(),
        "{m}"
    );
    assert!(r["warnings"].as_array().unwrap().is_empty(), "{r}");
    // And again, incrementally: the same output.
    let before = tree(&out);
    build(t.path(), "src", "out", &[]);
    assert_eq!(before, tree(&out));
}

#[test]
fn common_bundler_hash_formats_are_not_hashed_again() {
    let t = tempfile::tempdir().unwrap();
    let names = [
        "assets/stylesheets/main.57a0d79d.min.css",
        "assets/javascripts/bundle.f1ef2b3c.min.js",
        "static/js/main.57301982.js",
        "static/js/453.8ab44547.chunk.js",
        "chunk-ZXKPQJAN.js",
        "css/style.min.a3f5b1e5c6d7e8f90123456789abcdef0123456789abcdef0123456789abcdef.css",
        "_app/immutable/entry/start.BN_rJ-G6.js",
        "_next/static/chunks/webpack.js",
    ];
    let files: Vec<(String, String)> = names
        .iter()
        .map(|n| (format!("src/{n}"), format!("/* {n} */\n")))
        .collect();
    let refs: Vec<(&str, &str)> = files
        .iter()
        .map(|(a, b)| (a.as_str(), b.as_str()))
        .collect();
    write_files(t.path(), &refs);
    build(t.path(), "src", "out", &[]);
    let m = manifest(&t.path().join("out"));
    for n in names {
        assert_eq!(hashed(&m, n), n, "{n} hashed again");
        assert_eq!(m["files"][n]["prehashed"], true, "{n}");
    }
}

#[test]
fn many_misses_under_one_prefix_suggest_the_url_prefix() {
    let t = tempfile::tempdir().unwrap();
    write_files(
        t.path(),
        &[
            (
                "src/index.html",
                "<script type=module src=\"/app/assets/index-B7x9aZ3q.js\"></script>\n<link rel=stylesheet href=\"/app/assets/index-D1p2Q3rS.css\">\n<img src=\"/app/vite.svg\">\n",
            ),
            ("src/assets/index-B7x9aZ3q.js", "x"),
            ("src/assets/index-D1p2Q3rS.css", "y"),
            ("src/vite.svg", "<svg/>"),
        ],
    );
    let r = build(t.path(), "src", "out", &[]);
    let w = r["warnings"].to_string();
    assert!(w.contains("url-prefix") && w.contains("/app/"), "{w}");
    let r = build(t.path(), "src", "out2", &["--url-prefix", "/app/"]);
    assert!(r["warnings"].as_array().unwrap().is_empty(), "{r}");
}

#[test]
fn the_deploy_state_can_live_apart_from_the_site() {
    let t = tempfile::tempdir().unwrap();
    let dir = t.path();
    write_files(
        dir,
        &[
            (
                "staleguard.toml",
                "[build]\nsource = 'src'\nout = 'out'\n\n[deploy]\nstore = 'file://site-bucket'\nstate = 'file://private/state'\n",
            ),
            ("src/index.html", "<link rel=stylesheet href=app.css>v1\n"),
            ("src/app.css", "body{color:red}\n"),
        ],
    );
    let deploy = |now: i64| {
        let mut c = staleguard(dir);
        c.env("STALEGUARD_NOW", now.to_string()).args([
            "deploy",
            "--json",
            "--no-purge",
            "--no-verify",
        ]);
        let o = run(c);
        assert!(o.status.success(), "{}", stderr(&o));
        assert!(!stderr(&o).contains("deploy state is kept under the site"));
        serde_json::from_slice::<serde_json::Value>(&o.stdout).unwrap()
    };
    deploy(1_800_000_000);
    let site = dir.join("site-bucket");
    let state = dir.join("private/state");
    assert!(site.join("index.html").is_file());
    assert!(
        !site.join(".staleguard").exists(),
        "state written under the site"
    );
    assert!(state.join("current.json").is_file() && state.join("history.json").is_file());
    assert!(state.join("build/staleguard.manifest.json").is_file());
    // The next deploy diffs against the state it finds there: only the change is uploaded.
    std::fs::write(
        dir.join("src/index.html"),
        "<link rel=stylesheet href=app.css>v2\n",
    )
    .unwrap();
    let second = deploy(1_800_000_100);
    let keys: Vec<String> = second["plan"]["uploads"]
        .as_array()
        .unwrap()
        .iter()
        .map(|u| u["key"].as_str().unwrap().to_string())
        .filter(|k| !k.starts_with(".staleguard/") && !k.ends_with(".br") && !k.ends_with(".gz"))
        .collect();
    assert_eq!(keys, ["index.html"], "{second}");
    let mut c = staleguard(dir);
    c.arg("deploys");
    let o = run(c);
    assert!(o.status.success());
    assert!(String::from_utf8_lossy(&o.stdout).matches("Z-").count() >= 2);
    let mut c = staleguard(dir);
    c.args(["rollback", "--no-purge", "--no-verify"]);
    assert!(run(c).status.success());
    assert!(read(&site, "index.html").contains("v1"));
    assert!(!site.join(".staleguard").exists());
}

#[test]
fn a_fixed_name_sidecar_is_served_by_its_own_name() {
    let t = tempfile::tempdir().unwrap();
    let sitemap =
        "<urlset>".to_string() + &"<url><loc>https://x/a</loc></url>".repeat(40) + "</urlset>";
    write_files(
        t.path(),
        &[
            ("src/sitemap.xml", &sitemap),
            ("src/robots.txt", "Sitemap: https://x/sitemap.xml.gz\n"),
        ],
    );
    std::fs::write(
        t.path().join("src/sitemap.xml.gz"),
        gzip(sitemap.as_bytes()),
    )
    .unwrap();
    build(t.path(), "src", "out", &[]);
    let served = crate::serve::serve(t.path(), &["out"]);
    let c = reqwest::blocking::Client::builder()
        .no_gzip()
        .build()
        .unwrap();
    // A crawler told to fetch the .gz gets the gzip file itself, not an encoding of the XML.
    let res = c
        .get(format!("{}/sitemap.xml.gz", served.base))
        .send()
        .unwrap();
    assert_eq!(res.status().as_u16(), 200);
    assert!(
        res.headers().get("content-encoding").is_none(),
        "{:?}",
        res.headers()
    );
    assert_eq!(gunzip(&res.bytes().unwrap()), sitemap.as_bytes());
    // And the XML still negotiates its gzip variant.
    let res = c
        .get(format!("{}/sitemap.xml", served.base))
        .header("accept-encoding", "gzip")
        .send()
        .unwrap();
    assert_eq!(res.headers()["content-encoding"], "gzip");
}

fn sri(alg: &str, bytes: &[u8]) -> String {
    use base64::Engine;
    use sha2::Digest;
    let d = match alg {
        "sha256" => sha2::Sha256::digest(bytes).to_vec(),
        _ => sha2::Sha384::digest(bytes).to_vec(),
    };
    format!(
        "{alg}-{}",
        base64::engine::general_purpose::STANDARD.encode(d)
    )
}

#[test]
fn subresource_integrity_follows_the_bytes_the_build_changed() {
    let t = tempfile::tempdir().unwrap();
    let css = "body{background:url(../img/bg.png)}\n";
    let js = "console.log('unchanged')\n";
    let page = format!(
        "<link rel=stylesheet href=\"css/a.css\" integrity=\"{}\" crossorigin>\n<script src=\"js/b.js\" integrity=\"{}\"></script>\n",
        sri("sha384", css.as_bytes()),
        sri("sha256", js.as_bytes())
    );
    write_files(
        t.path(),
        &[
            ("src/index.html", &page),
            ("src/css/a.css", css),
            ("src/js/b.js", js),
            ("src/img/bg.png", "png"),
        ],
    );
    build(t.path(), "src", "out", &[]);
    let out = t.path().join("out");
    let m = manifest(&out);
    let css_out = std::fs::read(out.join(hashed(&m, "css/a.css"))).unwrap();
    assert_ne!(css_out, css.as_bytes(), "the CSS reference was rewritten");
    let html = read(&out, "index.html");
    // The rewritten CSS is pinned by its new digest; the untouched JS keeps the author's.
    assert!(html.contains(&sri("sha384", &css_out)), "{html}");
    assert!(html.contains(&sri("sha256", js.as_bytes())), "{html}");
    assert!(!html.contains(&sri("sha384", css.as_bytes())), "{html}");
}

#[test]
fn serve_never_serves_a_staging_file_a_killed_deploy_left() {
    let t = tempfile::tempdir().unwrap();
    write_files(
        t.path(),
        &[("store/index.html", "<p>ok</p>"), ("store/page.html#1", "")],
    );
    let served = crate::serve::serve(t.path(), &["store"]);
    let c = reqwest::blocking::Client::new();
    let status = |p: &str| {
        c.get(format!("{}{p}", served.base))
            .send()
            .unwrap()
            .status()
            .as_u16()
    };
    assert_eq!(status("/index.html"), 200);
    assert_eq!(status("/page.html%231"), 404);
}

#[test]
fn invalidate_refuses_encoded_dot_dot_and_huge_paths() {
    let t = tempfile::tempdir().unwrap();
    write_files(
        t.path(),
        &[(
            "staleguard.toml",
            "[[cdn]]\nprovider = 'varnish'\nnodes = ['http://127.0.0.1:9']\n",
        )],
    );
    let long = format!("/{}", "a".repeat(100_000));
    for (args, needle) in [
        (vec!["--paths", "/a/%2e%2e/b"], "`..`"),
        (vec!["--paths", "/a/.%2E/b"], "`..`"),
        (vec!["--paths", "/a/%2fetc"], "`..`"),
        (vec!["--prefix", "/x/%2e%2e/"], "`..`"),
        (vec!["--paths", long.as_str()], "longer than 4000"),
        (vec!["--paths", "/a/../b"], "`..`"),
    ] {
        let mut c = staleguard(t.path());
        c.args(["invalidate", "--dry-run"]).args(&args);
        let o = run(c);
        assert_eq!(o.status.code(), Some(1), "{args:?} was accepted");
        let err = stderr(&o);
        assert!(err.contains(needle), "{args:?}: {err}");
        assert!(
            err.len() < 2_000,
            "the error repeats a huge path: {} bytes",
            err.len()
        );
    }
    let mut c = staleguard(t.path());
    c.args([
        "invalidate",
        "--dry-run",
        "--paths",
        "/ok%20name.html",
        "/docs/*",
    ]);
    let o = run(c);
    assert!(o.status.success(), "{}", stderr(&o));
}
