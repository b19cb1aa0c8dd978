//! A fresh CI runner (no cache, a new checkout: every mtime new) deploying after a change: `deploy`'s
//! build reuses the sidecars the store's current deploy holds (compress jobs counted from the build
//! report), compresses and uploads what changed, and the store ends up as a full build's deploy; an older
//! record without levels is compressed again and upgraded. On a folder store and on S3 (moto).

use std::io::{Read, Write};
use std::path::Path;
use std::process::Output;

use serde_json::Value;
use staleguard_testkit::moto::Moto;

use crate::deploy::{T0, ok_json, project, sg, sg_s3};
use crate::support::*;

/// A fresh runner in `dir`: the sources checked out again (new mtimes, `extra_css` appended to the
/// stylesheet), no build output, no cache.
fn fresh_runner(dir: &Path, extra_css: &str) {
    for d in [
        "site",
        "out",
        "out.cache",
        ".staleguard/cache",
        "full",
        "full.cache",
    ] {
        let _ = std::fs::remove_dir_all(dir.join(d));
    }
    copy_dir(&repo().join("examples/site"), &dir.join("site"));
    if !extra_css.is_empty() {
        let css = dir.join("site/css/site.css");
        let mut text = std::fs::read_to_string(&css).unwrap();
        text.push_str(extra_css);
        std::fs::write(css, text).unwrap();
    }
}

fn keys(report: &Value) -> Vec<String> {
    report["plan"]["uploads"]
        .as_array()
        .unwrap()
        .iter()
        .map(|u| u["key"].as_str().unwrap().to_string())
        .collect()
}

fn n(v: &Value) -> u64 {
    v.as_u64().unwrap_or_else(|| panic!("not a count: {v}"))
}

/// Sidecar output paths of the manifest whose content (hash) the other manifest does not have.
fn sidecars_of_new_contents(new: &Value, old: &Value) -> Vec<String> {
    let old_hashes: std::collections::BTreeSet<&str> = old["files"]
        .as_object()
        .unwrap()
        .values()
        .map(|e| e["hash"].as_str().unwrap())
        .collect();
    let mut out = Vec::new();
    for (logical, e) in new["files"].as_object().unwrap() {
        if old_hashes.contains(e["hash"].as_str().unwrap()) {
            continue;
        }
        for codec in e["encodings"].as_object().unwrap().keys() {
            let ext = if codec == "br" { ".br" } else { ".gz" };
            out.push(format!("{}{ext}", e["path"].as_str().unwrap()));
            if e["original"] == true {
                out.push(format!("{logical}{ext}"));
            }
        }
    }
    out.sort();
    out
}

/// A full build of the same sources (no reuse, no cache) into `full/`.
fn full_build(dir: &Path) -> Value {
    build(dir, "site", "full", &[])
}

#[test]
fn a_fresh_runner_compresses_nothing_deployed_and_uploads_only_the_change() {
    let t = project("");
    let dir = t.path();
    let first = ok_json(sg(dir, T0, &["deploy", "--json"]));
    let all = n(&first["build"]["compressed_now"]) + n(&first["build"]["compressed_from_cache"]);
    assert!(all > 20, "{all}");
    let m0 = manifest(&dir.join("out"));

    // Same sources on a fresh runner: nothing compressed, nothing uploaded.
    fresh_runner(dir, "");
    let again = ok_json(sg(dir, T0 + 60, &["deploy", "--json"]));
    assert_eq!(n(&again["build"]["compressed_now"]), 0);
    assert_eq!(n(&again["build"]["compressed_from_cache"]), 0);
    assert_eq!(n(&again["build"]["reused"]), all);
    assert_eq!(again["build"]["reused_from"], first["id"]);
    assert_eq!(again["up_to_date"], true, "{again}");
    let full = full_build(dir);
    assert_eq!(
        std::fs::read(dir.join("out/staleguard.manifest.json")).unwrap(),
        std::fs::read(dir.join("full/staleguard.manifest.json")).unwrap(),
        "the reusing build's manifest is a full build's"
    );
    assert_eq!(n(&full["compressed_now"]), all);
    let css = hashed(&m0, "css/site.css");
    assert!(!dir.join("out").join(format!("{css}.br")).exists());

    // A local `serve` of that output negotiates only the sidecars it has: identity for the others.
    {
        let s = crate::serve::serve(dir, &["out"]);
        let res = reqwest::blocking::Client::new()
            .get(format!("{}/{css}", s.base))
            .header("accept-encoding", "br, gzip")
            .send()
            .unwrap();
        assert_eq!(res.status(), 200);
        assert!(res.headers().get("content-encoding").is_none());
        assert_eq!(
            res.bytes().unwrap().to_vec(),
            std::fs::read(dir.join("out").join(&css)).unwrap()
        );
    }

    // One changed stylesheet on a fresh runner: its content and its dependants' are compressed and
    // uploaded, nothing else.
    fresh_runner(dir, "\n.changed { color: #abcdef; }\n");
    let changed = ok_json(sg(dir, T0 + 120, &["deploy", "--json"]));
    let m1 = manifest(&dir.join("out"));
    let new_sidecars = sidecars_of_new_contents(&m1, &m0);
    assert!(!new_sidecars.is_empty());
    let compressed = n(&changed["build"]["compressed_now"]);
    assert!(
        compressed > 0 && compressed <= all / 2,
        "{compressed} of {all}"
    );
    let uploaded = keys(&changed);
    let css1 = hashed(&m1, "css/site.css");
    for k in [css1.clone(), format!("{css1}.br"), format!("{css1}.gz")] {
        assert!(uploaded.contains(&k), "{k} not uploaded: {uploaded:?}");
    }
    for k in &new_sidecars {
        assert!(
            dir.join("out").join(k).is_file(),
            "{k} compressed and written"
        );
    }
    // No sidecar of unchanged content is uploaded.
    for k in &uploaded {
        if k.ends_with(".br") || k.ends_with(".gz") {
            assert!(
                new_sidecars.contains(k),
                "{k} uploaded although its content was deployed"
            );
        }
    }
    // The store now serves exactly what a full build of the change would deploy.
    full_build(dir);
    assert_eq!(
        std::fs::read(dir.join("out/staleguard.manifest.json")).unwrap(),
        std::fs::read(dir.join("full/staleguard.manifest.json")).unwrap()
    );
    let store = tree(&dir.join("store"));
    for (k, bytes) in tree(&dir.join("full")) {
        if k.starts_with('.') {
            continue;
        }
        assert!(
            store.get(&store_key(&k)) == Some(&bytes),
            "the store lacks or differs at {k}"
        );
    }
}

#[test]
fn build_reuse_from_names_the_store_and_an_unreadable_one_is_an_error() {
    let t = project("");
    let dir = t.path();
    ok_json(sg(dir, T0, &["deploy", "--json"]));
    fresh_runner(dir, "");
    let r = build(dir, "site", "out", &["--reuse-from", "file://store"]);
    assert_eq!(n(&r["compressed_now"]), 0);
    assert!(n(&r["reused"]) > 20);
    // A store without deploys: nothing to reuse, everything compressed.
    fresh_runner(dir, "");
    let r = build(dir, "site", "out", &["--reuse-from", "file://empty"]);
    assert_eq!(n(&r["reused"]), 0);
    assert!(
        !dir.join("empty").exists(),
        "reading does not create the folder"
    );
    // A deploy with --no-reuse compresses everything the cache lacks.
    fresh_runner(dir, "");
    let r = ok_json(sg(dir, T0 + 60, &["deploy", "--json", "--no-reuse"]));
    assert_eq!(n(&r["build"]["reused"]), 0);
    assert!(n(&r["build"]["compressed_now"]) > 20);
    // A bad URL is refused by name.
    let mut c = staleguard(dir);
    c.args(["build", "site", "-o", "out", "--reuse-from", "ftp://x"]);
    let o = run(c);
    assert!(!o.status.success());
    assert!(stderr(&o).contains("--reuse-from"), "{}", stderr(&o));
}

/// Rewrites the store's current record as an older staleguard wrote it: no levels.
fn strip_levels(dir: &Path) {
    let current: Value =
        serde_json::from_slice(&std::fs::read(dir.join("store/.staleguard/current.json")).unwrap())
            .unwrap();
    let path = dir.join(format!(
        "store/.staleguard/deploys/{}.json.gz",
        current["id"].as_str().unwrap()
    ));
    let mut json = Vec::new();
    flate2::read::GzDecoder::new(std::fs::File::open(&path).unwrap())
        .read_to_end(&mut json)
        .unwrap();
    let mut record: Value = serde_json::from_slice(&json).unwrap();
    let o = record.as_object_mut().unwrap();
    assert!(o.remove("encodings").is_some());
    o.remove("not_kept");
    let mut gz = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::default());
    gz.write_all(&serde_json::to_vec(&record).unwrap()).unwrap();
    std::fs::write(&path, gz.finish().unwrap()).unwrap();
}

#[test]
fn an_older_record_is_compressed_again_then_upgraded() {
    let t = project("");
    let dir = t.path();
    let first = ok_json(sg(dir, T0, &["deploy", "--json"]));
    let all = n(&first["build"]["compressed_now"]) + n(&first["build"]["compressed_from_cache"]);
    strip_levels(dir);

    fresh_runner(dir, "");
    let o = run(sg(dir, T0 + 60, &["deploy"]));
    assert!(o.status.success(), "{}", stderr(&o));
    assert!(
        stderr(&o).contains("records no compression levels"),
        "{}",
        stderr(&o)
    );
    // Nothing uploaded (the bytes are the same), but a record with the levels is committed.
    let history = ok_json(sg(dir, T0 + 61, &["deploys", "--json"]));
    let deploys = history["deploys"].as_array().unwrap();
    assert_eq!(deploys.len(), 2);
    assert_eq!(deploys[1]["uploaded"], 0);

    fresh_runner(dir, "");
    let r = ok_json(sg(dir, T0 + 120, &["deploy", "--json"]));
    assert_eq!(n(&r["build"]["compressed_now"]), 0);
    assert_eq!(n(&r["build"]["reused"]), all);
    assert_eq!(r["up_to_date"], true);
}

#[test]
fn on_s3_a_fresh_runner_compresses_and_uploads_only_the_change() {
    let moto = Moto::start();
    moto.create_bucket("site");
    let t = project("");
    let dir = t.path();
    let json = |o: Output| -> Value {
        assert!(o.status.success(), "{}", stderr(&o));
        serde_json::from_slice(&o.stdout).unwrap()
    };
    let deploy = |now| {
        json(sg_s3(
            &moto,
            dir,
            now,
            &["deploy", "--json", "--store", "s3://site/www"],
        ))
    };
    let first = deploy(T0);
    let all = n(&first["build"]["compressed_now"]) + n(&first["build"]["compressed_from_cache"]);
    let m0 = manifest(&dir.join("out"));

    fresh_runner(dir, "");
    let again = deploy(T0 + 60);
    assert_eq!(n(&again["build"]["compressed_now"]), 0);
    assert_eq!(n(&again["build"]["reused"]), all);
    assert_eq!(again["up_to_date"], true);

    fresh_runner(dir, "\n.changed { color: #abcdef; }\n");
    let changed = deploy(T0 + 120);
    let m1 = manifest(&dir.join("out"));
    let new_sidecars = sidecars_of_new_contents(&m1, &m0);
    let compressed = n(&changed["build"]["compressed_now"]);
    assert!(
        compressed > 0 && compressed <= all / 2,
        "{compressed} of {all}"
    );
    let uploaded = keys(&changed);
    for k in &new_sidecars {
        assert!(uploaded.contains(k), "{k} not uploaded: {uploaded:?}");
    }
    // Every reused sidecar is still in the bucket, byte for byte a full build's.
    full_build(dir);
    let js = hashed(&m0, "js/app.js");
    assert_eq!(js, hashed(&m1, "js/app.js"));
    let key = format!("{js}.br");
    assert!(!dir.join("out").join(&key).exists());
    let get = moto.aws(&["s3", "cp", &format!("s3://site/www/{key}"), "-"]);
    assert!(get.status.success());
    assert_eq!(
        get.stdout,
        std::fs::read(dir.join("full").join(&key)).unwrap()
    );
    let head = moto.aws_json(&[
        "s3api",
        "head-object",
        "--bucket",
        "site",
        "--key",
        &format!("www/{key}"),
    ]);
    assert_eq!(head["ContentEncoding"], "br");
}
