//! `staleguard deploy`, `deploys` and `rollback` on the real binary: a local store (a folder) and S3 on moto.

use std::collections::{BTreeMap, BTreeSet};
use std::path::Path;
use std::process::{Command, Output, Stdio};
use std::time::Duration;

use serde_json::Value;
use staleguard_testkit::moto::Moto;

use crate::support::*;

pub(crate) const T0: i64 = 1_795_000_000;
const DAY: i64 = 86_400;

/// `staleguard deploy …` in `dir` with the deploy clock at `now`.
pub(crate) fn sg(dir: &Path, now: i64, args: &[&str]) -> Command {
    let mut c = staleguard(dir);
    c.env("STALEGUARD_NOW", now.to_string()).args(args);
    c
}

pub(crate) fn ok_json(c: Command) -> Value {
    let o = run(c);
    assert!(o.status.success(), "command failed");
    serde_json::from_slice(&o.stdout).expect("--json prints JSON")
}

fn uploads(report: &Value) -> BTreeMap<String, String> {
    report["plan"]["uploads"]
        .as_array()
        .unwrap()
        .iter()
        .map(|u| {
            (
                u["key"].as_str().unwrap().to_string(),
                u["reason"].as_str().unwrap().to_string(),
            )
        })
        .collect()
}

/// A project: the example site, a config deploying `out` to `file://store`.
pub(crate) fn project(extra_config: &str) -> tempfile::TempDir {
    let t = tempfile::tempdir().unwrap();
    copy_dir(&repo().join("examples/site"), &t.path().join("site"));
    write_files(
        t.path(),
        &[(
            "staleguard.toml",
            &format!(
                "[build]\nsource = \"site\"\nout = \"out\"\n\n[deploy]\nstore = \"file://store\"\n{extra_config}"
            ),
        )],
    );
    build(t.path(), "site", "out", &[]);
    t
}

/// Every file of the build output is in the store with the same bytes.
pub(crate) fn assert_store_has_output(t: &Path) {
    let out = tree(&t.join("out"));
    let store = tree(&t.join("store"));
    let retained = manifest(&t.join("out"))["retained"].clone();
    for (k, v) in &out {
        if k.starts_with(".staleguard") || k.starts_with("out.cache") || retained[k].is_object() {
            continue;
        }
        let key = store_key(k);
        assert!(
            store.get(&key) == Some(v),
            "store lacks or differs at {key}"
        );
    }
}

/// Keys whose bytes differ between two trees (or exist only in `new`).
fn changed(old: &BTreeMap<String, Vec<u8>>, new: &BTreeMap<String, Vec<u8>>) -> BTreeSet<String> {
    new.iter()
        .filter(|(k, v)| old.get(*k) != Some(*v))
        .map(|(k, _)| k.clone())
        .collect()
}

#[test]
fn local_store_first_deploy_redeploy_headers_rollback() {
    let t = project("");
    let dir = t.path();
    let first = ok_json(sg(dir, T0, &["deploy", "--json"]));
    let out1 = tree(&dir.join("out"));
    // (hidden files, the build's encodings file, are not deployed)
    let n_out = out1.keys().filter(|k| !k.starts_with('.')).count();
    assert_eq!(first["plan"]["kept"], 0);
    let up = uploads(&first);
    assert!(up.values().all(|r| r == "new"));
    // Every output file, plus a rollback copy per distinct mutable content.
    assert!(up.len() > n_out, "{} uploads for {n_out} files", up.len());
    assert_store_has_output(dir);
    assert!(dir.join("store/.staleguard/current.json").is_file());

    // Unchanged: nothing uploaded, no new deploy.
    let same = ok_json(sg(dir, T0 + 10, &["deploy", "--json"]));
    assert_eq!(same["up_to_date"], true);
    assert_eq!(same["id"], first["id"]);

    // One CSS change: exactly the changed output files (and rollback copies of changed mutable files).
    let css = dir.join("site/css/site.css");
    let mut text = std::fs::read_to_string(&css).unwrap();
    text.push_str("\n.changed { color: red }\n");
    std::fs::write(&css, text).unwrap();
    build(dir, "site", "out", &[]);
    let out2 = tree(&dir.join("out"));
    let want = changed(&out1, &out2);
    let second = ok_json(sg(dir, T0 + 20, &["deploy", "--json"]));
    let up = uploads(&second);
    let site_keys: BTreeSet<String> = up
        .keys()
        .filter(|k| !k.starts_with(".staleguard/bundles/"))
        .map(|k| k.trim_start_matches(".staleguard/build/").to_string())
        .collect();
    let want: BTreeSet<String> = want
        .into_iter()
        .filter(|k| !k.starts_with("out.cache") && !k.starts_with('.'))
        .collect();
    assert_eq!(site_keys, want);
    // The manifests are kept with the deploy state, never at the site's root.
    assert!(
        up.keys()
            .any(|k| k == ".staleguard/build/staleguard.manifest.json")
    );
    assert!(!up.contains_key("staleguard.manifest.json") && !up.contains_key("staticfiles.json"));
    let bundles: Vec<&String> = up
        .keys()
        .filter(|k| k.starts_with(".staleguard/bundles/"))
        .collect();
    assert_eq!(bundles.len(), 1, "one bundle of rollback copies: {up:?}");
    assert!(second["plan"]["kept"].as_u64().unwrap() > 100);
    assert_store_has_output(dir);
    let index_v2 = std::fs::read(dir.join("store/index.html")).unwrap();

    // Header-only change: HTML gets a new Cache-Control; same bytes, re-stored for that reason only.
    let cfg = std::fs::read_to_string(dir.join("staleguard.toml")).unwrap();
    std::fs::write(
        dir.join("staleguard.toml"),
        format!("{cfg}\n[[routes]]\nmatch = \"**/*.html\"\ncache-control = \"public, max-age=0, s-maxage=60\"\n"),
    )
    .unwrap();
    let third = ok_json(sg(dir, T0 + 30, &["deploy", "--json"]));
    let up = uploads(&third);
    assert!(!up.is_empty());
    for (k, reason) in &up {
        assert_eq!(reason, "headers", "{k}");
        let base = k.trim_end_matches(".br").trim_end_matches(".gz");
        assert!(base.ends_with(".html"), "{k}");
    }
    // The record: gzipped JSON, objects referring to shared header sets.
    let gz = std::fs::read(dir.join(format!(
        "store/.staleguard/deploys/{}.json.gz",
        third["id"].as_str().unwrap()
    )))
    .unwrap();
    let mut json = Vec::new();
    std::io::Read::read_to_end(&mut flate2::read::GzDecoder::new(&gz[..]), &mut json).unwrap();
    let record: Value = serde_json::from_slice(&json).unwrap();
    let headers_of = |key: &str| {
        let h = record["objects"]["objects"][key]["h"].as_u64().unwrap() as usize;
        record["objects"]["header_sets"][h].clone()
    };
    let index = headers_of("index.html");
    assert_eq!(index["cache-control"], "public, max-age=0, s-maxage=60");
    assert_eq!(index["content-type"], "text/html; charset=utf-8");
    assert_eq!(index["x-content-type-options"], "nosniff");
    let br = headers_of("index.html.br");
    assert_eq!(br["content-encoding"], "br");
    assert_eq!(br["content-type"], "text/html; charset=utf-8");

    // History lists the three deploys, the last one current.
    let list = ok_json(sg(dir, T0 + 40, &["deploys", "--json"]));
    let ids: Vec<&str> = list["deploys"]
        .as_array()
        .unwrap()
        .iter()
        .map(|d| d["id"].as_str().unwrap())
        .collect();
    assert_eq!(ids.len(), 3);
    assert_eq!(list["current"], third["id"]);
    let text = run(sg(dir, T0 + 40, &["deploys"]));
    assert!(String::from_utf8_lossy(&text.stdout).contains(&format!("* {}", ids[2])));

    // Roll back to the first deploy: its pages come back from the store's copies; recorded as a deploy.
    let rb = ok_json(sg(dir, T0 + 50, &["rollback", ids[0], "--json"]));
    assert_eq!(rb["kind"], "rollback");
    assert_eq!(rb["restores"], ids[0]);
    // Only mutable objects are restored; the old fingerprinted files were never deleted.
    let hashed_name = regex::Regex::new(r"\.[0-9a-f]{12}\.").unwrap();
    let restored = uploads(&rb);
    assert!(!restored.is_empty());
    for k in restored.keys() {
        assert!(!hashed_name.is_match(k), "a rollback re-uploaded {k}");
    }
    let index_v1 = &out1["index.html"];
    assert_eq!(
        &std::fs::read(dir.join("store/index.html")).unwrap(),
        index_v1
    );
    assert_ne!(index_v1, &index_v2);
    for (k, v) in &out1 {
        if !k.starts_with("out.cache") && !k.starts_with('.') {
            let k = store_key(k);
            assert_eq!(
                std::fs::read(dir.join("store").join(&k)).ok().as_ref(),
                Some(v),
                "{k}"
            );
        }
    }
    // And forward again with a plain rollback (to the deploy before the current one).
    let back = ok_json(sg(dir, T0 + 60, &["rollback", "--json"]));
    assert_eq!(back["restores"], third["id"]);
    assert_eq!(
        std::fs::read(dir.join("store/index.html")).unwrap(),
        index_v2
    );
    // An unknown id names the way out.
    let o = run(sg(dir, T0 + 70, &["rollback", "nope"]));
    assert!(!o.status.success());
    assert!(stderr(&o).contains("staleguard deploys"), "{}", stderr(&o));
}

/// Writes a version of the CSS, rebuilds, deploys at `now`; returns the deploy report.
fn deploy_version(dir: &Path, v: u32, now: i64, args: &[&str]) -> Value {
    std::fs::write(
        dir.join("site/css/extra.css"),
        format!(".v{v} {{ content: \"{v}\" }}\n"),
    )
    .unwrap();
    build(dir, "site", "out", &[]);
    let mut a = vec!["deploy", "--json"];
    a.extend_from_slice(args);
    ok_json(sg(dir, now, &a))
}

#[test]
fn gc_deletes_in_order_and_max_deletes_fails_loudly() {
    let t = project("keep-deploys = 2\nkeep-age = \"1d\"\n");
    let dir = t.path();
    deploy_version(dir, 1, T0, &[]);
    let css1 = hashed(&manifest(&dir.join("out")), "css/extra.css");
    deploy_version(dir, 2, T0 + DAY, &[]);
    let css2 = hashed(&manifest(&dir.join("out")), "css/extra.css");
    // v3 a few minutes before day 2: v1 is out of the last two deploys, but its CSS left the site at v2,
    // less than a day ago: kept.
    let r3 = deploy_version(dir, 3, T0 + 2 * DAY - 600, &[]);
    assert_eq!(r3["gc"]["delete"], serde_json::json!([]));
    assert!(dir.join("store").join(&css1).is_file());
    // v4 just after day 2, with --max-deletes 0: GC must delete v1's CSS (it left at v2, a day ago), so
    // it refuses, loudly, after committing the deploy, and deletes nothing.
    std::fs::write(dir.join("site/css/extra.css"), ".v4 { content: \"4\" }\n").unwrap();
    build(dir, "site", "out", &[]);
    let o = run(sg(
        dir,
        T0 + 2 * DAY + 100,
        &["deploy", "--max-deletes", "0"],
    ));
    assert!(!o.status.success(), "max-deletes 0 must fail");
    let err = stderr(&o);
    assert!(
        err.contains("more than max-deletes (0)") && err.contains("--max-deletes"),
        "{err}"
    );
    assert!(dir.join("store").join(&css1).is_file(), "nothing deleted");
    // The deploy itself is committed: the next run has nothing to upload and runs GC.
    let r = ok_json(sg(dir, T0 + 2 * DAY + 200, &["deploy", "--json"]));
    assert_eq!(r["up_to_date"], true);
    let deleted: Vec<String> = r["gc"]["delete"]
        .as_array()
        .unwrap()
        .iter()
        .map(|k| k.as_str().unwrap().to_string())
        .collect();
    assert!(deleted.contains(&css1), "{deleted:?}");
    // v2 is out of the last two deploys too, but its CSS left the site (at v3) minutes ago.
    assert!(!deleted.contains(&css2), "{deleted:?}");
    assert!(!dir.join("store").join(&css1).exists());
    assert!(dir.join("store").join(&css2).is_file());
    // Nothing the current deploy uses was deleted.
    assert_store_has_output(dir);
    // The collected deploy cannot be rolled back to.
    let list = ok_json(sg(dir, T0 + 2 * DAY + 300, &["deploys", "--json"]));
    let first = &list["deploys"][0];
    assert_eq!(first["collected"], true);
    let o = run(sg(
        dir,
        T0 + 2 * DAY + 400,
        &["rollback", first["id"].as_str().unwrap()],
    ));
    assert!(!o.status.success());
    assert!(stderr(&o).contains("garbage-collected"), "{}", stderr(&o));
}

#[test]
fn dry_run_lists_the_plan_and_changes_nothing() {
    let t = tempfile::tempdir().unwrap();
    let dir = t.path();
    write_files(
        dir,
        &[
            (
                "staleguard.toml",
                "[build]\nsource = \"site\"\nout = \"out\"\ncompress = [\"gzip\"]\n\n[deploy]\nstore = \"file://store\"\n",
            ),
            (
                "site/index.html",
                "<!doctype html><link rel=stylesheet href=\"app.css\"><h1>Hello</h1>\n",
            ),
            ("site/app.css", "body { background: url(logo.svg) }\n"),
            (
                "site/logo.svg",
                "<svg xmlns=\"http://www.w3.org/2000/svg\"/>\n",
            ),
        ],
    );
    build(dir, "site", "out", &[]);
    // The timing in the summary varies; everything else is a snapshot.
    let timing = regex::Regex::new(r"in [0-9.]+ s").unwrap();
    let o = run(sg(
        dir,
        T0,
        &["deploy", "--dry-run", "--no-build", "--explain"],
    ));
    assert!(o.status.success());
    let text = String::from_utf8_lossy(&o.stdout);
    let text = timing.replace(&text, "in T s").to_string();
    assert_eq!(text, DRY_RUN_SNAPSHOT, "got:\n{text}");
    // Without --explain: the summary alone, saying how to see each object.
    let o = run(sg(dir, T0, &["deploy", "--dry-run", "--no-build"]));
    let text = String::from_utf8_lossy(&o.stdout);
    let text = timing.replace(&text, "in T s").to_string();
    assert_eq!(
        text,
        "dry run: would upload 9 object(s) (9 new, 2.6 kB), kept 0 (0 B), 0 left for GC; nothing changed in T s (--explain lists each object)\n"
    );
    // --json stays complete.
    let r = ok_json(sg(
        dir,
        T0,
        &["deploy", "--dry-run", "--no-build", "--json"],
    ));
    assert_eq!(uploads(&r).len(), 9);
    assert!(
        !dir.join("store/.staleguard").exists(),
        "dry run wrote state"
    );
    assert!(!dir.join("store/index.html").exists(), "dry run uploaded");
}

/// The summary first; then immutable objects (the bundle of rollback copies of the mutable contents that
/// have no fingerprinted twin, then fingerprinted files), then mutable pages and originals, then the
/// pointers (manifests, build info), kept with the deploy state, out of the site.
const DRY_RUN_SNAPSHOT: &str = "\
dry run: would upload 9 object(s) (9 new, 2.6 kB), kept 0 (0 B), 0 left for GC; nothing changed in T s
upload  new          1.2 kB  .staleguard/bundles/20261118T110640Z-5ba575457bbf.bin
upload  new            48 B  app.494e7a530822.css
upload  new            42 B  logo.e5009587fb98.svg
upload  new            48 B  app.css
upload  new            79 B  index.html
upload  new            42 B  logo.svg
upload  new           185 B  .staleguard/build/build-info.json
upload  new           748 B  .staleguard/build/staleguard.manifest.json
upload  new           178 B  .staleguard/build/staticfiles.json
";

#[test]
fn alias_channel_and_metadata_follow_their_artifacts() {
    let t = tempfile::tempdir().unwrap();
    let dir = t.path();
    write_files(
        dir,
        &[
            (
                "staleguard.toml",
                "[build]\nsource = \"site\"\nout = \"out\"\nmutable = [\"downloads/**\"]\n\n[deploy]\nstore = \"file://store\"\nmetadata = \"downloads/metadata.json\"\nartifacts = [\"downloads/*.tar.gz\"]\n\n[deploy.aliases]\n\"downloads/tool-latest.tar.gz\" = \"downloads/tool-1.4.2.tar.gz\"\n",
            ),
            (
                "site/index.html",
                "<a href=\"downloads/tool-latest.tar.gz\">get it</a>\n",
            ),
            ("site/downloads/tool-1.4.1.tar.gz", "old release bytes\n"),
            ("site/downloads/tool-1.4.2.tar.gz", "new release bytes\n"),
        ],
    );
    let _ = build(dir, "site", "out", &["--no-strict"]);
    let o = run(sg(dir, T0, &["deploy", "--dry-run", "--json"]));
    assert!(o.status.success());
    let r: Value = serde_json::from_slice(&o.stdout).unwrap();
    let order: Vec<String> = r["plan"]["uploads"]
        .as_array()
        .unwrap()
        .iter()
        .map(|u| u["key"].as_str().unwrap().to_string())
        .collect();
    let pos = |k: &str| {
        order
            .iter()
            .position(|x| x == k)
            .unwrap_or_else(|| panic!("{k} not in {order:?}"))
    };
    assert!(pos("downloads/tool-1.4.2.tar.gz") < pos("downloads/tool-latest.tar.gz"));
    assert!(pos("downloads/tool-latest.tar.gz") < pos("downloads/metadata.json"));
    ok_json(sg(dir, T0, &["deploy", "--json"]));
    let store = dir.join("store/downloads");
    assert_eq!(
        std::fs::read(store.join("tool-latest.tar.gz")).unwrap(),
        b"new release bytes\n"
    );
    let meta: Value =
        serde_json::from_slice(&std::fs::read(store.join("metadata.json")).unwrap()).unwrap();
    assert_eq!(
        meta["aliases"]["downloads/tool-latest.tar.gz"],
        "downloads/tool-1.4.2.tar.gz"
    );
    let a = &meta["artifacts"]["downloads/tool-1.4.2.tar.gz"];
    assert_eq!(a["size"], 18);
    // sha256("new release bytes\n")
    let want = {
        let o = Command::new("sha256sum")
            .arg(dir.join("out/downloads/tool-1.4.2.tar.gz"))
            .output()
            .unwrap();
        String::from_utf8_lossy(&o.stdout)
            .split_whitespace()
            .next()
            .unwrap()
            .to_string()
    };
    assert_eq!(a["sha256"], want.as_str());
    assert!(meta["artifacts"]["downloads/tool-1.4.1.tar.gz"].is_object());
    // An alias to a file that is not there is refused with the key.
    let cfg = std::fs::read_to_string(dir.join("staleguard.toml")).unwrap();
    std::fs::write(
        dir.join("staleguard.toml"),
        cfg.replace("tool-1.4.2.tar.gz\"\n", "tool-9.tar.gz\"\n"),
    )
    .unwrap();
    let o = run(sg(dir, T0 + 1, &["deploy"]));
    assert!(!o.status.success());
    assert!(
        stderr(&o).contains("downloads/tool-9.tar.gz"),
        "{}",
        stderr(&o)
    );
}

/// HTML pages in the store and the local references they make that are missing from the store.
pub(crate) fn dangling(store: &Path) -> Vec<String> {
    let re = regex::Regex::new(r##"<[a-zA-Z][^<>]*?\s(?:href|src)="([^"#?:]+)""##).unwrap();
    let mut out = Vec::new();
    for (k, bytes) in tree(store) {
        if k.starts_with(".staleguard") || !k.ends_with(".html") {
            continue;
        }
        let page = String::from_utf8_lossy(&bytes);
        let dir = Path::new(&k).parent().unwrap_or(Path::new(""));
        for c in re.captures_iter(&page) {
            let r = &c[1];
            if r.starts_with("//") {
                continue; // another host
            }
            let target = if let Some(abs) = r.strip_prefix('/') {
                abs.to_string()
            } else {
                dir.join(r).to_string_lossy().to_string()
            };
            let mut parts: Vec<&str> = Vec::new();
            for seg in target.split('/') {
                match seg {
                    ".." => {
                        parts.pop();
                    }
                    "." | "" => {}
                    s => parts.push(s),
                }
            }
            let mut key = parts.join("/");
            if target.ends_with('/') || key.is_empty() {
                key = format!("{key}{}index.html", if key.is_empty() { "" } else { "/" });
            }
            if !store.join(&key).is_file() && !store.join(&key).join("index.html").is_file() {
                out.push(format!("{k} -> {r}"));
            }
        }
    }
    out
}

/// Kills deploys at many points; after each, every page in the store references only objects that
/// exist; then a re-run completes without re-uploading what arrived.
#[test]
fn a_deploy_killed_anywhere_leaves_the_site_whole_and_the_next_run_finishes() {
    let t = project("concurrency = 2\n");
    let dir = t.path();
    // Many pages and images, so a deploy takes long enough to be killed in the middle.
    let mut files = Vec::new();
    for i in 0..150 {
        files.push((
            format!("site/gallery/p{i}.html"),
            format!(
                "<!doctype html><link rel=stylesheet href=\"../css/site.css\"><img src=\"img{i}.svg\"><p>page {i}</p>\n"
            ),
        ));
        files.push((
            format!("site/gallery/img{i}.svg"),
            format!("<svg xmlns=\"http://www.w3.org/2000/svg\"><text>{i}</text></svg>\n"),
        ));
    }
    let refs: Vec<(&str, &str)> = files
        .iter()
        .map(|(a, b)| (a.as_str(), b.as_str()))
        .collect();
    write_files(dir, &refs);
    build(dir, "site", "out", &[]);
    let started = std::time::Instant::now();
    ok_json(sg(dir, T0, &["deploy", "--json"]));
    // Kill points are spread over the time a deploy takes on this machine, however loaded it is.
    let full = started.elapsed();
    let bad = dangling(&dir.join("store"));
    assert!(bad.is_empty(), "after the first deploy: {bad:?}");
    let mut resumed_total = 0;
    let mut killed_midway = 0;
    for trial in 1..=12u64 {
        // A new version: every page and image changes, so every page references new names.
        let mut files = Vec::new();
        for i in 0..150 {
            files.push((
                format!("site/gallery/img{i}.svg"),
                format!(
                    "<svg xmlns=\"http://www.w3.org/2000/svg\"><text>{i} v{trial}</text></svg>\n"
                ),
            ));
        }
        let refs: Vec<(&str, &str)> = files
            .iter()
            .map(|(a, b)| (a.as_str(), b.as_str()))
            .collect();
        write_files(dir, &refs);
        build(dir, "site", "out", &[]);
        // Kill twice in a row: once at a pseudo-random fraction (deterministic per trial) of the time a
        // whole deploy took, once right after the journal shows a finished upload step.
        for attempt in 0..2u64 {
            let journal = dir.join("store/.staleguard/journal.json.gz");
            let before = std::fs::metadata(&journal).and_then(|m| m.modified()).ok();
            let mut child = sg(
                dir,
                T0 + trial as i64 * 100 + attempt as i64,
                &["deploy", "-q"],
            )
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .unwrap();
            let when = if attempt == 0 {
                let frac = ((trial * 7919) % 19 + 1) as u32; // 1..=19 twentieths
                std::thread::sleep(full * frac / 20);
                format!("{frac}/20 of {full:?}")
            } else {
                let start = std::time::Instant::now();
                while start.elapsed() < full * 2
                    && std::fs::metadata(&journal).and_then(|m| m.modified()).ok() == before
                    && child.try_wait().unwrap().is_none()
                {
                    std::thread::sleep(Duration::from_millis(1));
                }
                "a journal write".to_string()
            };
            let finished = child.try_wait().unwrap().is_some();
            let _ = child.kill();
            let _ = child.wait();
            if !finished {
                killed_midway += 1;
            }
            let bad = dangling(&dir.join("store"));
            assert!(
                bad.is_empty(),
                "trial {trial}: dangling references after a kill at {when}: {bad:?}"
            );
        }
        let r = ok_json(sg(dir, T0 + trial as i64 * 100 + 50, &["deploy", "--json"]));
        resumed_total += r["resumed"].as_u64().unwrap_or(0);
        assert!(dangling(&dir.join("store")).is_empty());
        assert_store_has_output(dir);
    }
    assert!(
        killed_midway >= 6,
        "only {killed_midway} kills landed in the middle of a deploy"
    );
    assert!(
        resumed_total > 0,
        "no re-run reused an interrupted deploy's uploads"
    );
}

/// Runs staleguard with moto's environment.
pub(crate) fn sg_s3(moto: &Moto, dir: &Path, now: i64, args: &[&str]) -> Output {
    let mut c = sg(dir, now, args);
    moto.apply(&mut c);
    run(c)
}

#[test]
fn s3_on_moto_metadata_changes_drift_and_rollback() {
    let moto = Moto::start();
    moto.create_bucket("site");
    let t = project("");
    let dir = t.path();
    let store = ["--store", "s3://site/www"];
    let json = |o: Output| -> Value {
        assert!(o.status.success(), "{}", stderr(&o));
        serde_json::from_slice(&o.stdout).unwrap()
    };
    let first = json(sg_s3(
        &moto,
        dir,
        T0,
        &[&["deploy", "--json"][..], &store].concat(),
    ));
    let n = uploads(&first).len();
    assert!(n > 100);
    let m = manifest(&dir.join("out"));
    let css = hashed(&m, "css/site.css");
    let head = |key: &str| {
        moto.aws_json(&[
            "s3api",
            "head-object",
            "--bucket",
            "site",
            "--key",
            &format!("www/{key}"),
        ])
    };
    let h = head(&css);
    assert_eq!(h["CacheControl"], "public, max-age=31536000, immutable");
    assert_eq!(h["ContentType"], "text/css; charset=utf-8");
    assert_eq!(h["Metadata"]["x-content-type-options"], "nosniff");
    let h = head(&format!("{css}.br"));
    assert_eq!(h["ContentEncoding"], "br");
    assert_eq!(h["ContentType"], "text/css; charset=utf-8");
    let h = head("index.html");
    assert_eq!(h["CacheControl"], "no-cache");
    assert_eq!(h["ContentType"], "text/html; charset=utf-8");
    let h = head(&hashed(&m, "fonts/acme.woff2"));
    assert_eq!(h["Metadata"]["access-control-allow-origin"], "*", "{h}");

    // A change: only the changed objects go up.
    let page = dir.join("site/about/index.html");
    let text = std::fs::read_to_string(&page)
        .unwrap()
        .replace("</body>", "<p>new</p></body>");
    std::fs::write(&page, text).unwrap();
    build(dir, "site", "out", &[]);
    let second = json(sg_s3(
        &moto,
        dir,
        T0 + 10,
        &[&["deploy", "--json"][..], &store].concat(),
    ));
    let up = uploads(&second);
    let site: BTreeSet<&str> = up
        .keys()
        .map(String::as_str)
        .filter(|k| !k.starts_with(".staleguard/"))
        .collect();
    assert!(site.contains("about/index.html"), "{site:?}");
    assert!(site.len() <= 8, "a one-page change uploaded {site:?}");

    // Drift: an object removed and one overwritten by hand are found and repaired by --verify-remote.
    let rm = moto.aws(&["s3", "rm", &format!("s3://site/www/{css}")]);
    assert!(rm.status.success());
    let scratch = dir.join("scratch.txt");
    std::fs::write(&scratch, "tampered").unwrap();
    let cp = moto.aws(&[
        "s3",
        "cp",
        scratch.to_str().unwrap(),
        "s3://site/www/index.html",
    ]);
    assert!(cp.status.success());
    let plain = json(sg_s3(
        &moto,
        dir,
        T0 + 20,
        &[&["deploy", "--json"][..], &store].concat(),
    ));
    assert_eq!(
        plain["up_to_date"], true,
        "without --verify-remote the record is trusted"
    );
    let fixed = json(sg_s3(
        &moto,
        dir,
        T0 + 30,
        &[&["deploy", "--json", "--verify-remote"][..], &store].concat(),
    ));
    let up = uploads(&fixed);
    assert_eq!(up.get(&css).map(String::as_str), Some("drift"), "{up:?}");
    assert_eq!(
        up.get("index.html").map(String::as_str),
        Some("drift"),
        "{up:?}"
    );
    assert_eq!(
        head("index.html")["ContentLength"],
        std::fs::metadata(dir.join("out/index.html")).unwrap().len()
    );

    // Rollback on S3: the first version of the page returns.
    let rb = json(sg_s3(
        &moto,
        dir,
        T0 + 40,
        &[
            &["rollback", first["id"].as_str().unwrap(), "--json"][..],
            &store,
        ]
        .concat(),
    ));
    assert_eq!(rb["kind"], "rollback");
    let get = moto.aws(&["s3", "cp", "s3://site/www/about/index.html", "-"]);
    assert!(get.status.success());
    assert!(!String::from_utf8_lossy(&get.stdout).contains("<p>new</p>"));
    let h = head("about/index.html");
    assert_eq!(h["CacheControl"], "no-cache");
}

/// A file changed after the build is refused (it would be recorded under the manifest's hash), and nothing
/// is uploaded.
#[test]
fn an_output_edited_after_the_build_is_refused() {
    let t = project("");
    let dir = t.path();
    let m = manifest(&dir.join("out"));
    let css = hashed(&m, "css/site.css");
    std::thread::sleep(Duration::from_millis(20));
    let path = dir.join("out").join(&css);
    let mut bytes = std::fs::read(&path).unwrap();
    bytes[0] ^= 1; // same size, other content
    std::fs::write(&path, bytes).unwrap();
    // Without the build first (which would repair the file).
    let o = run(sg(dir, T0, &["deploy", "--no-build"]));
    assert!(!o.status.success());
    let err = stderr(&o);
    assert!(
        err.contains("differs from the build's manifest") && err.contains(&css),
        "{err}"
    );
    assert!(err.contains("staleguard build"), "{err}");
    assert!(!dir.join("store/index.html").exists());
}

/// `deploy` runs the incremental build first: a source edited after the last `staleguard build` is what
/// gets deployed, with the build's summary line (and its report under `build` in --json). `--no-build`,
/// a folder other than the build output, and `rollback` never build.
#[test]
fn deploy_builds_first_unless_told_otherwise() {
    let t = project("");
    let dir = t.path();
    let page = |body: &str| format!("<!doctype html><title>t</title><p>{body}</p>\n");
    write_files(dir, &[("site/index.html", &page("v2"))]);
    let r = ok_json(sg(dir, T0, &["deploy", "--json"]));
    assert_eq!(r["build"]["version"], r["version"], "{r}");
    assert!(read(&dir.join("store"), "index.html").contains("v2"));

    // Human output: the build's summary line first, then the deploy's.
    write_files(dir, &[("site/index.html", &page("v3"))]);
    let o = run(sg(dir, T0 + 10, &["deploy"]));
    assert!(o.status.success());
    let text = String::from_utf8_lossy(&o.stdout);
    let lines: Vec<&str> = text.lines().collect();
    assert!(lines[0].starts_with("built "), "{text}");
    assert!(lines[1].starts_with("deployed "), "{text}");
    assert!(read(&dir.join("store"), "index.html").contains("v3"));

    // --no-build ships the output as it is (here: stale, on purpose).
    write_files(dir, &[("site/index.html", &page("v4"))]);
    let r = ok_json(sg(dir, T0 + 20, &["deploy", "--no-build", "--json"]));
    assert!(r.get("build").is_none(), "{r}");
    assert_eq!(r["up_to_date"], true);
    assert!(read(&dir.join("out"), "index.html").contains("v3"));

    // A folder that is not the build output is deployed as it is; the build output is left alone.
    copy_dir(&dir.join("out"), &dir.join("other"));
    let r = ok_json(sg(dir, T0 + 30, &["deploy", "other", "--json"]));
    assert!(r.get("build").is_none(), "{r}");
    assert!(read(&dir.join("out"), "index.html").contains("v3"));

    // Naming the build output explicitly is the same as the default: it builds.
    let r = ok_json(sg(dir, T0 + 40, &["deploy", "./out", "--json"]));
    assert!(r["build"].is_object(), "{r}");
    assert!(read(&dir.join("store"), "index.html").contains("v4"));

    // Rollback restores from the store and never builds.
    write_files(dir, &[("site/index.html", &page("v5"))]);
    let r = ok_json(sg(dir, T0 + 50, &["rollback", "--json"]));
    assert!(r.get("build").is_none(), "{r}");
    assert!(read(&dir.join("out"), "index.html").contains("v4"));
    assert!(read(&dir.join("store"), "index.html").contains("v3"));
}

/// `deploys` sizes its columns to their content: a rollback's kind names the whole id it restored,
/// and every column starts where its header does.
#[test]
fn deploys_columns_fit_their_content() {
    let t = project("");
    let dir = t.path();
    ok_json(sg(dir, T0, &["deploy", "--json"]));
    write_files(dir, &[("site/index.html", "<p>v2</p>\n")]);
    build(dir, "site", "out", &[]);
    ok_json(sg(dir, T0 + 10, &["deploy", "--json"]));
    let r = ok_json(sg(dir, T0 + 20, &["rollback", "--json"]));
    let restored = r["restores"].as_str().unwrap().to_string();
    let o = run(sg(dir, T0 + 30, &["deploys"]));
    assert!(o.status.success());
    let text = String::from_utf8_lossy(&o.stdout).to_string();
    let lines: Vec<&str> = text.lines().collect();
    assert_eq!(lines.len(), 4, "{text}");
    let rollback = format!("rollback→{restored}");
    assert!(lines[3].contains(&rollback), "{text}");
    assert!(lines[3].starts_with('*'), "{text}");
    // Column starts, in characters: every row has a cell starting at each header's start.
    let starts = |l: &str| -> Vec<usize> {
        let chars: Vec<char> = l.chars().collect();
        (0..chars.len())
            .filter(|&i| chars[i] != ' ' && (i == 0 || chars[i - 1] == ' '))
            .collect()
    };
    let head = starts(lines[0]);
    let kind = lines[0].find("kind").unwrap();
    for l in &lines[1..] {
        let cells = starts(l);
        // Left-aligned columns (id, time, commit, kind) start exactly at their header.
        for h in head.iter().filter(|&&h| h <= kind) {
            assert!(cells.contains(h), "{l:?} has no cell at {h}:\n{text}");
        }
        assert_eq!(l.chars().count(), lines[0].chars().count(), "{text}");
    }
}

/// On a terminal (a pty made by util-linux `script`, 80 columns), the upload shows a progress bar per
/// step that fits the terminal's width (a wider one wraps, and each redraw then leaves a line behind);
/// off a terminal (stderr captured) nothing but the summary is written.
#[test]
fn upload_progress_on_a_terminal_only() {
    let t = project("");
    let dir = t.path();
    let cmd = format!(
        "stty cols 80 rows 24; STALEGUARD_NOW={T0} exec '{}' deploy --no-build",
        env!("CARGO_BIN_EXE_staleguard")
    );
    let mut c = Command::new("script");
    c.current_dir(dir)
        .args(["-qfec", &cmd, "/dev/null"])
        .env_remove("STALEGUARD_CONFIG")
        .env_remove("RUST_LOG");
    let o = run(c);
    assert!(o.status.success(), "script(1) from util-linux is needed");
    let raw = String::from_utf8_lossy(&o.stdout).to_string();
    let escapes = regex::Regex::new(r"\x1b\[[0-9;?]*[A-Za-z]").unwrap();
    let text = escapes.replace_all(&raw, "").to_string();
    assert!(
        text.contains(" immutable [") && text.contains("   mutable ["),
        "{text:?}"
    );
    let bar = regex::Regex::new(r"^ *[a-z]+ \[").unwrap();
    for line in text.split(['\r', '\n']).filter(|l| bar.is_match(l)) {
        assert!(
            line.chars().count() <= 80,
            "wider than the terminal: {line:?}"
        );
    }
    assert!(text.contains("deployed "), "{text:?}");

    write_files(dir, &[("site/index.html", "<p>v2</p>\n")]);
    let o = run(sg(dir, T0 + 10, &["deploy"]));
    assert!(o.status.success());
    let err = stderr(&o);
    assert!(!err.contains('\r') && !err.contains('\x1b'), "{err:?}");
}
