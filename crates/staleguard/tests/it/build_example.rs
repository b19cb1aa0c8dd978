//! The bundled example site: every reference rewritten, every decoy left alone, hashes honest,
//! no dangling reference anywhere in the output.

use std::io::Read;
use std::path::Path;

use staleguard_assets::refs::RefKind;
use staleguard_assets::source::Lang;
use staleguard_core::url::{Resolution, parent_dir, resolve};

use crate::support::*;

fn built_example() -> (tempfile::TempDir, serde_json::Value) {
    let t = tempfile::tempdir().unwrap();
    copy_dir(&repo().join("examples/site"), &t.path().join("site"));
    let report = build(t.path(), "site", "out", &["--strict"]);
    (t, report)
}

#[test]
fn every_reference_kind_is_rewritten() {
    let (t, report) = built_example();
    let out = t.path().join("out");
    let m = manifest(&out);
    assert_eq!(report["warnings"].as_array().unwrap().len(), 0, "{report}");
    let h = |l: &str| hashed(&m, l);
    let name = |l: &str| h(l).rsplit('/').next().unwrap().to_string();
    let index = read(&out, "index.html");
    for needle in [
        format!(r#"href="{}""#, h("css/site.css")),
        format!(r#"<script type="module" src="{}""#, h("js/app.js")),
        format!(r#"src="{}""#, h("js/theme.js")),
        format!(r#"href="{}""#, h("js/lib/greet.js")),
        format!(r#"href="{}""#, h("fonts/acme.woff2")),
        format!(r#"href="/{}""#, h("img/logo.svg")),
        format!(
            r#"srcset="{} 1x, {} 2x""#,
            h("img/photo.png"),
            h("img/photo@2x.png")
        ),
        format!(r#"poster="{}""#, h("img/poster.png")),
        format!("url(\"{}\")", h("img/hero-bg.svg")),
        format!("background-image:url({})", h("img/hero-bg.svg")),
        format!(r#"src="{}""#, h("img/café.svg")),
    ] {
        assert!(index.contains(&needle), "index.html lacks {needle}");
    }
    let css = read(&out, &h("css/site.css"));
    for needle in [
        format!(r#"@import "{}";"#, name("css/base.css")),
        format!(
            r#"@import url("components/{}");"#,
            name("css/components/buttons.css")
        ),
        format!(r#"url("../{}?#iefix")"#, h("fonts/acme.eot")),
        format!(r#"url('../{}')"#, h("fonts/acme.woff")),
        format!(r#"url(../{})"#, h("img/hero-bg.svg")),
        format!(r#"url("../{}?v=2")"#, h("img/hero-bg.svg")),
        format!(r#""../{}" 1x"#, h("img/photo.png")),
        format!(r#"url(/{})"#, h("img/logo.svg")),
        format!("/*# sourceMappingURL={} */", name("css/site.css.map")),
        // A percent-encoded name stays percent-encoded.
        format!(
            r#"url("../img/caf%C3%A9.{}.svg")"#,
            &m["files"]["img/café.svg"]["hash"].as_str().unwrap()[..12]
        ),
        // Decoys stay exactly as written.
        "url(missing-in-comment.png)".to_string(),
        r#""url(not-a-ref.png)""#.to_string(),
    ] {
        assert!(css.contains(&needle), "site.css lacks {needle}");
    }
    let app = read(&out, &h("js/app.js"));
    for needle in [
        format!("from './lib/{}'", name("js/lib/greet.js")),
        format!("import('./lib/{}')", name("js/lib/lazy.js")),
        format!("new URL('../{}', import.meta.url)", h("img/logo.svg")),
        format!("//# sourceMappingURL={}", name("js/app.js.map")),
        "./vendor/chunk-BdtEMBbM.js".to_string(),
    ] {
        assert!(app.contains(&needle), "app.js lacks {needle}");
    }
    // The bundler-hashed chunk keeps its name and is immutable.
    assert_eq!(
        h("js/vendor/chunk-BdtEMBbM.js"),
        "js/vendor/chunk-BdtEMBbM.js"
    );
    assert_eq!(m["files"]["js/vendor/chunk-BdtEMBbM.js"]["prehashed"], true);
    assert_eq!(m["files"]["js/vendor/chunk-BdtEMBbM.js"]["mutable"], false);
    // HTML keeps its name and is mutable.
    assert_eq!(h("about/index.html"), "about/index.html");
    assert_eq!(m["files"]["about/index.html"]["mutable"], true);
    // External, data:, fragment and mailto references are untouched.
    let src_index = std::fs::read_to_string(t.path().join("site/index.html")).unwrap();
    for keep in [
        "https://",
        "data:image/gif",
        "href=\"#main\"",
        "mailto:",
        "//media.acme-widgets.example",
    ] {
        assert_eq!(
            src_index.matches(keep).count(),
            index.matches(keep).count(),
            "{keep} changed"
        );
    }
}

/// Every local reference in every output HTML, CSS and JS file points to a file in the output.
#[test]
fn no_dangling_references_in_the_output() {
    let (t, _) = built_example();
    let out = t.path().join("out");
    let m = manifest(&out);
    let mut checked = 0;
    for (rel, bytes) in tree(&out) {
        let lang = Lang::of(&rel);
        let refs = match lang {
            Lang::Css => staleguard_assets::css::scan_css(std::str::from_utf8(&bytes).unwrap(), 0),
            Lang::Html => {
                staleguard_assets::html::scan_html(&bytes, true)
                    .unwrap()
                    .refs
            }
            Lang::Js => staleguard_assets::js::scan_js(std::str::from_utf8(&bytes).unwrap(), true)
                .into_iter()
                .filter(|r| {
                    r.value.starts_with('.')
                        || r.kind == staleguard_assets::js::JsRefKind::SourceMap
                })
                .map(|r| staleguard_assets::refs::FoundRef {
                    span: r.span,
                    url: r.value,
                    kind: RefKind::JsImport,
                    syntax: staleguard_assets::refs::Syntax::Plain,
                })
                .collect(),
            Lang::Other => continue,
        };
        for r in refs {
            if let Resolution::Local(l) = resolve(r.url.trim(), parent_dir(&rel), "/") {
                if l.path.ends_with('/') || r.kind == RefKind::HtmlLink {
                    continue;
                }
                assert!(
                    out.join(&l.path).is_file(),
                    "{rel}: `{}` → `{}` does not exist in the output",
                    r.url,
                    l.path
                );
                // Immutable files reference only immutable (fingerprinted or prehashed) files.
                let target_is_hashed = m["files"]
                    .as_object()
                    .unwrap()
                    .values()
                    .any(|e| e["path"] == l.path.as_str() && e["mutable"] == false);
                let source_is_hashed = m["files"]
                    .as_object()
                    .unwrap()
                    .values()
                    .any(|e| e["path"] == rel.as_str() && e["mutable"] == false);
                if source_is_hashed {
                    assert!(
                        target_is_hashed,
                        "{rel} (immutable) references mutable `{}`",
                        l.path
                    );
                }
                checked += 1;
            }
        }
    }
    assert!(checked > 80, "only {checked} references checked");
}

fn decompress(codec: &str, bytes: &[u8]) -> Vec<u8> {
    let mut out = Vec::new();
    match codec {
        "br" => brotli::Decompressor::new(bytes, 4096)
            .read_to_end(&mut out)
            .unwrap(),
        "gz" => flate2::read::GzDecoder::new(bytes)
            .read_to_end(&mut out)
            .unwrap(),
        _ => unreachable!(),
    };
    out
}

#[test]
fn names_hashes_and_sidecars_are_honest() {
    let (t, _) = built_example();
    let out = t.path().join("out");
    let m = manifest(&out);
    let mut sidecars = 0;
    for (logical, e) in m["files"].as_object().unwrap() {
        let path = e["path"].as_str().unwrap();
        let bytes = std::fs::read(out.join(path)).unwrap();
        let hash = blake3::hash(&bytes).to_hex().to_string();
        assert_eq!(e["hash"], hash.as_str(), "{logical}");
        assert_eq!(e["size"], bytes.len() as u64);
        if e["mutable"] == false && e["prehashed"].is_null() {
            assert!(
                path.contains(&format!(".{}", &hash[..12])),
                "{path} does not carry its content hash"
            );
            // The original copy has the same bytes.
            assert_eq!(
                std::fs::read(out.join(logical)).unwrap(),
                bytes,
                "{logical}"
            );
        }
        for (codec, ext) in [("br", "br"), ("gzip", "gz")] {
            if let Some(v) = e["encodings"].get(codec) {
                let z = std::fs::read(out.join(format!("{path}.{ext}"))).unwrap();
                assert_eq!(v["size"], z.len() as u64);
                assert_eq!(decompress(ext, &z), bytes, "{path}.{ext}");
                assert!(
                    (z.len() as f64) <= bytes.len() as f64 * 0.95,
                    "{path}.{ext} saves < 5%"
                );
                sidecars += 1;
            }
        }
        let ext = Path::new(path)
            .extension()
            .and_then(|x| x.to_str())
            .unwrap_or("");
        if ["png", "woff2", "woff", "webp", "ico"].contains(&ext) {
            assert!(
                e["encodings"].as_object().is_none_or(|o| o.is_empty()),
                "{path} should not be compressed"
            );
            assert!(!out.join(format!("{path}.br")).exists());
        }
    }
    assert!(sidecars > 20);
}

#[test]
fn output_is_deterministic_whatever_the_thread_count() {
    let t = tempfile::tempdir().unwrap();
    copy_dir(&repo().join("examples/site"), &t.path().join("site"));
    build(t.path(), "site", "one", &["-j", "1"]);
    build(t.path(), "site", "many", &["-j", "4"]);
    let a = tree(&t.path().join("one"));
    let b = tree(&t.path().join("many"));
    assert_eq!(a.keys().collect::<Vec<_>>(), b.keys().collect::<Vec<_>>());
    for (k, v) in &a {
        assert!(b[k] == *v, "{k} differs between -j1 and -j4");
    }
}
