//! The site the cases deploy: a few pages, a stylesheet imported by another, a script, an image,
//! built with the real pipeline (`staleguard_assets::build`) so the output has fingerprinted
//! immutable files, mutable pages, sidecars and the manifests, as a real deploy does.

use std::path::Path;

use staleguard_assets::{BuildOptions, NoProgress};
use staleguard_core::config::BuildConfig;

/// The build time of every build here (the deploy clock is passed per deploy).
pub const T0: i64 = 1_795_000_000;

/// Writes the site's sources into `work/site`.
pub fn write(work: &Path) {
    let files: [(&str, &[u8]); 6] = [
        (
            "index.html",
            b"<!doctype html><html><head><link rel=\"stylesheet\" href=\"css/site.css\">\
              <script src=\"js/app.js\"></script></head><body><h1>Home</h1>\
              <img src=\"img/logo.svg\" alt=\"\"><a href=\"about.html\">about</a></body></html>\n",
        ),
        (
            "about.html",
            b"<!doctype html><html><head><link rel=\"stylesheet\" href=\"css/site.css\"></head>\
              <body><h1>About</h1></body></html>\n",
        ),
        (
            "css/site.css",
            b"@import \"base.css\";\nbody { background: url(../img/logo.svg) }\n",
        ),
        ("css/base.css", b"html { color: #222 }\n"),
        ("js/app.js", b"console.log('hello');\n"),
        (
            "img/logo.svg",
            b"<svg xmlns=\"http://www.w3.org/2000/svg\" width=\"1\" height=\"1\"/>\n",
        ),
    ];
    for (rel, bytes) in files {
        let p = work.join("site").join(rel);
        std::fs::create_dir_all(p.parent().unwrap()).unwrap();
        std::fs::write(p, bytes).unwrap();
    }
}

/// Appends a rule to `css/site.css`: a new version of it and of every page that references it.
pub fn edit_css(work: &Path, rule: &str) {
    let p = work.join("site/css/site.css");
    let mut text = std::fs::read_to_string(&p).unwrap();
    text.push_str(rule);
    text.push('\n');
    std::fs::write(p, text).unwrap();
}

/// Builds `work/site` into `work/out`.
pub fn build(work: &Path) {
    let opts = BuildOptions {
        source: work.join("site"),
        out: work.join("out"),
        cache_dir: work.join("cache"),
        config: BuildConfig::default(),
        git: None,
        now_unix: T0,
        builder: "staleguard-store-tests".into(),
        clock_unix: T0,
    };
    let report = staleguard_assets::build(&opts, &NoProgress)
        .unwrap_or_else(|e| panic!("building the test site: {e}"));
    assert!(report.warnings.is_empty(), "{:?}", report.warnings);
}

/// Builds `work/site` into `work/out` with a fresh cache, reusing what `reuse` proves; returns the
/// report.
pub fn build_reusing(
    work: &Path,
    reuse: &staleguard_assets::Reuse,
) -> staleguard_assets::BuildReport {
    let _ = std::fs::remove_dir_all(work.join("cache"));
    let opts = BuildOptions {
        source: work.join("site"),
        out: work.join("out"),
        cache_dir: work.join("cache"),
        config: BuildConfig::default(),
        git: None,
        now_unix: T0,
        builder: "staleguard-store-tests".into(),
        clock_unix: T0,
    };
    staleguard_assets::build_reusing(&opts, &NoProgress, Some(reuse))
        .unwrap_or_else(|e| panic!("building the test site: {e}"))
}

/// The logical path's output path in the build's manifest (`css/site.css` → `css/site.1a2b….css`).
pub fn hashed(work: &Path, logical: &str) -> String {
    let m: serde_json::Value =
        serde_json::from_slice(&std::fs::read(work.join("out/staleguard.manifest.json")).unwrap())
            .unwrap();
    m["files"][logical]["path"]
        .as_str()
        .unwrap_or_else(|| panic!("`{logical}` not in the manifest"))
        .to_string()
}
