//! `--reuse-from`: a build without a cache takes the sidecars a deploy record proves instead of
//! compressing them, writes the same manifest as a full build, and compresses what changed; the cheap
//! levels of `cheap-compress` files.

use std::collections::BTreeMap;
use std::path::Path;

use staleguard_assets::{BuildOptions, BuildReport, NoProgress, Reuse, build, build_reusing};
use staleguard_core::config::{BuildConfig, Codec};
use staleguard_core::deploy::{
    DeployKind, DeployRecord, ENCODINGS_FILE, EncodingsFile, ObjectRecord, Rank,
};

fn write(root: &Path, files: &[(&str, String)]) {
    for (p, c) in files {
        let f = root.join(p);
        std::fs::create_dir_all(f.parent().unwrap()).unwrap();
        std::fs::write(f, c).unwrap();
    }
}

/// A small site: pages, a stylesheet, a script with its source map, and a file too small to be worth
/// compressing.
fn site(root: &Path, css_rule: &str) {
    let css = format!(
        "body {{ color: #123456; margin: 0 auto; }}\n{}",
        css_rule.repeat(40)
    );
    let js = "export function hello(name) { return 'hello, ' + name + '!'; }\n".repeat(60)
        + "//# sourceMappingURL=app.js.map\n";
    let map = format!(
        "{{\"version\":3,\"sources\":[\"app.ts\"],\"mappings\":\"{}\"}}",
        "AAAA,SAAS,IAAI,CAAC;".repeat(400)
    );
    write(
        root,
        &[
            (
                "index.html",
                format!(
                    "<!doctype html><link rel=stylesheet href=css/site.css><script type=module src=js/app.js></script>{}",
                    "<p>hello world</p>\n".repeat(50)
                ),
            ),
            (
                "about/index.html",
                format!(
                    "<!doctype html><link rel=stylesheet href=../css/site.css>{}",
                    "<p>about us</p>\n".repeat(50)
                ),
            ),
            ("css/site.css", css),
            ("js/app.js", js),
            ("js/app.js.map", map),
            ("tiny.txt", "x".into()),
            (
                "img/logo.svg",
                format!(
                    "<svg xmlns=\"http://www.w3.org/2000/svg\">{}</svg>",
                    "<rect width=\"1\" height=\"1\"/>".repeat(30)
                ),
            ),
        ],
    );
}

fn opts(root: &Path, out: &str, cache: &str, config: BuildConfig) -> BuildOptions {
    BuildOptions {
        source: root.join("site"),
        out: root.join(out),
        cache_dir: root.join(cache),
        config,
        git: None,
        now_unix: 0,
        clock_unix: 0,
        builder: "test".into(),
    }
}

fn config() -> BuildConfig {
    BuildConfig {
        compress: vec![Codec::Br, Codec::Gzip],
        brotli_quality: 9,
        ..BuildConfig::default()
    }
}

/// The record a deploy of `out` writes, as far as reuse reads it: every file with its hash and size,
/// sidecars with their `Content-Encoding`, and the build's levels.
fn record_of(out: &Path, with_levels: bool) -> DeployRecord {
    let mut objects = BTreeMap::new();
    for e in walkdir(out) {
        let rel = e
            .strip_prefix(out)
            .unwrap()
            .to_string_lossy()
            .replace('\\', "/");
        if rel.starts_with('.') {
            continue;
        }
        let bytes = std::fs::read(&e).unwrap();
        let mut headers = BTreeMap::new();
        if let Some((base, codec)) = Codec::split_sidecar(&rel)
            && out.join(base).is_file()
        {
            headers.insert(
                "content-encoding".to_string(),
                codec.content_encoding().to_string(),
            );
        }
        objects.insert(
            rel,
            ObjectRecord {
                hash: blake3::hash(&bytes).to_hex().to_string(),
                size: bytes.len() as u64,
                mutable: false,
                headers,
                rank: Rank::Immutable,
                etag: None,
            },
        );
    }
    let levels: EncodingsFile =
        serde_json::from_slice(&std::fs::read(out.join(ENCODINGS_FILE)).unwrap()).unwrap();
    DeployRecord {
        format: 1,
        id: "20261201T000000Z-000000000001".into(),
        time: String::new(),
        unix: 0,
        kind: DeployKind::Deploy,
        restores: None,
        git_commit: None,
        version: String::new(),
        objects,
        copies: BTreeMap::new(),
        encodings: if with_levels {
            levels.sidecars
        } else {
            BTreeMap::new()
        },
        not_kept: if with_levels {
            levels.not_kept
        } else {
            BTreeMap::new()
        },
    }
}

fn walkdir(dir: &Path) -> Vec<std::path::PathBuf> {
    let mut out = Vec::new();
    let mut stack = vec![dir.to_path_buf()];
    while let Some(d) = stack.pop() {
        for e in std::fs::read_dir(&d).unwrap() {
            let p = e.unwrap().path();
            if p.is_dir() {
                stack.push(p);
            } else {
                out.push(p);
            }
        }
    }
    out
}

fn manifest_bytes(out: &Path) -> Vec<u8> {
    std::fs::read(out.join("staleguard.manifest.json")).unwrap()
}

fn compress_jobs(r: &BuildReport) -> usize {
    r.compressed_now
}

#[test]
fn a_fresh_build_reusing_a_record_compresses_nothing_and_writes_the_same_manifest() {
    let t = tempfile::tempdir().unwrap();
    let root = t.path();
    site(&root.join("site"), "a { color: red; }\n");
    let first = build(&opts(root, "out1", "cache1", config()), &NoProgress).unwrap();
    assert!(compress_jobs(&first) > 0);
    let record = record_of(&root.join("out1"), true);
    let reuse = Reuse::from_record(&record);
    assert_eq!(reuse.unproven, 0);

    // A fresh runner: no cache, no output, every source rewritten (new mtimes).
    std::fs::remove_dir_all(root.join("site")).unwrap();
    site(&root.join("site"), "a { color: red; }\n");
    let again = build_reusing(
        &opts(root, "out2", "cache2", config()),
        &NoProgress,
        Some(&reuse),
    )
    .unwrap();
    assert_eq!(
        compress_jobs(&again),
        0,
        "nothing changed, nothing to compress"
    );
    assert_eq!(again.compressed_from_cache, 0);
    assert_eq!(again.reused, first.compressed_now);
    assert_eq!(again.reused_from.as_deref(), Some(record.id.as_str()));
    assert_eq!(
        manifest_bytes(&root.join("out1")),
        manifest_bytes(&root.join("out2")),
        "the manifest is a full build's"
    );
    // The sidecars are the store's: listed, not written; everything else is.
    let m: serde_json::Value = serde_json::from_slice(&manifest_bytes(&root.join("out2"))).unwrap();
    let css = m["files"]["css/site.css"]["path"].as_str().unwrap();
    assert!(m["files"]["css/site.css"]["encodings"]["br"].is_object());
    assert!(!root.join("out2").join(format!("{css}.br")).exists());
    assert!(root.join("out2").join(css).is_file());
    assert!(root.join("out2/index.html").is_file());
    assert_eq!(
        std::fs::read(root.join("out1").join(ENCODINGS_FILE)).unwrap(),
        std::fs::read(root.join("out2").join(ENCODINGS_FILE)).unwrap()
    );

    // One changed stylesheet: it and the pages that reference it (renamed) are compressed, nothing else.
    std::fs::remove_dir_all(root.join("site")).unwrap();
    site(&root.join("site"), "a { color: blue; }\n");
    let changed = build_reusing(
        &opts(root, "out3", "cache3", config()),
        &NoProgress,
        Some(&reuse),
    )
    .unwrap();
    // site.css, index.html and about/index.html in br and gzip.
    assert_eq!(compress_jobs(&changed), 6);
    let full = build(&opts(root, "out4", "cache4", config()), &NoProgress).unwrap();
    assert_eq!(
        changed.reused + compress_jobs(&changed),
        compress_jobs(&full)
    );
    assert_eq!(
        manifest_bytes(&root.join("out3")),
        manifest_bytes(&root.join("out4"))
    );
    let m: serde_json::Value = serde_json::from_slice(&manifest_bytes(&root.join("out3"))).unwrap();
    let css = m["files"]["css/site.css"]["path"].as_str().unwrap();
    assert_eq!(
        std::fs::read(root.join("out3").join(format!("{css}.br"))).unwrap(),
        std::fs::read(root.join("out4").join(format!("{css}.br"))).unwrap(),
        "the changed file's sidecar is written"
    );
}

#[test]
fn another_level_or_a_moved_file_is_compressed_again() {
    let t = tempfile::tempdir().unwrap();
    let root = t.path();
    site(&root.join("site"), "a { color: red; }\n");
    build(&opts(root, "out1", "cache1", config()), &NoProgress).unwrap();
    let reuse = Reuse::from_record(&record_of(&root.join("out1"), true));
    // brotli 11 instead of 9: the record's br sidecars are at another level; gzip ones are reused.
    let q11 = BuildConfig {
        brotli_quality: 11,
        ..config()
    };
    let r = build_reusing(
        &opts(root, "out2", "cache2", q11.clone()),
        &NoProgress,
        Some(&reuse),
    )
    .unwrap();
    let full = build(&opts(root, "out3", "cache3", q11), &NoProgress).unwrap();
    assert!(r.compressed_now > 0 && r.reused > 0);
    assert_eq!(r.compressed_now + r.reused, full.compressed_now);
    assert_eq!(
        manifest_bytes(&root.join("out2")),
        manifest_bytes(&root.join("out3"))
    );
    // A stale sidecar left in the output under a reused name is removed, never kept beside the
    // manifest.
    let m: serde_json::Value = serde_json::from_slice(&manifest_bytes(&root.join("out1"))).unwrap();
    let css = m["files"]["css/site.css"]["path"]
        .as_str()
        .unwrap()
        .to_string();
    std::fs::write(root.join("out1").join(format!("{css}.gz")), "stale").unwrap();
    let r = build_reusing(
        &opts(root, "out1", "cache4", config()),
        &NoProgress,
        Some(&reuse),
    )
    .unwrap();
    assert_eq!(r.compressed_now, 0);
    assert!(!root.join("out1").join(format!("{css}.gz")).exists());
}

#[test]
fn a_record_from_before_levels_proves_no_sidecar() {
    // The deploy record of the example site as committed before records named their levels.
    let json = std::fs::read(
        Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/it/fixtures/record-before-levels.json"),
    )
    .unwrap();
    let old: DeployRecord = serde_json::from_slice(&json).expect("an older record still reads");
    assert!(old.encodings.is_empty() && old.not_kept.is_empty());
    let reuse = Reuse::from_record(&old);
    assert!(reuse.unproven > 50, "{}", reuse.unproven);

    // Built on a fresh runner with that record (and with an equivalent one of our own): everything is
    // compressed, the manifest is a full build's.
    let t = tempfile::tempdir().unwrap();
    let root = t.path();
    site(&root.join("site"), "a { color: red; }\n");
    let full = build(&opts(root, "out1", "cache1", config()), &NoProgress).unwrap();
    let ours = Reuse::from_record(&record_of(&root.join("out1"), false));
    for reuse in [&reuse, &ours] {
        std::fs::remove_dir_all(root.join("out2")).ok();
        std::fs::remove_dir_all(root.join("cache2")).ok();
        let r = build_reusing(
            &opts(root, "out2", "cache2", config()),
            &NoProgress,
            Some(reuse),
        )
        .unwrap();
        assert_eq!((r.reused, r.compressed_now), (0, full.compressed_now));
        assert_eq!(
            manifest_bytes(&root.join("out1")),
            manifest_bytes(&root.join("out2"))
        );
    }
}

#[test]
fn source_maps_are_compressed_at_the_cheap_levels_and_nothing_else_changes() {
    let t = tempfile::tempdir().unwrap();
    let root = t.path();
    site(&root.join("site"), "a { color: red; }\n");
    let default = BuildConfig::default();
    assert_eq!(default.cheap_compress, ["**/*.map"]);
    build(&opts(root, "cheap", "c1", default.clone()), &NoProgress).unwrap();
    let all_q11 = BuildConfig {
        cheap_compress: Vec::new(),
        ..default
    };
    build(&opts(root, "q11", "c2", all_q11), &NoProgress).unwrap();
    let levels: EncodingsFile =
        serde_json::from_slice(&std::fs::read(root.join("cheap").join(ENCODINGS_FILE)).unwrap())
            .unwrap();
    for (path, tag) in &levels.sidecars {
        let want = if path.contains(".map.") {
            if path.ends_with(".br") {
                "br5w22"
            } else {
                "gz6"
            }
        } else if path.ends_with(".br") {
            "br11w22"
        } else {
            "gz9"
        };
        assert_eq!(tag, want, "{path}");
    }
    assert!(levels.sidecars.keys().any(|p| p.contains(".map.")));
    // What browsers fetch (everything but the maps) is byte for byte the same.
    for p in walkdir(&root.join("q11")) {
        let rel = p
            .strip_prefix(root.join("q11"))
            .unwrap()
            .to_string_lossy()
            .to_string();
        if rel.contains(".map") || rel.starts_with('.') || rel.ends_with(".json") {
            continue;
        }
        assert_eq!(
            std::fs::read(&p).unwrap(),
            std::fs::read(root.join("cheap").join(&rel)).unwrap(),
            "{rel}"
        );
    }
}
