//! The incremental cache: nothing redone when nothing changed; only dependants redone after a change;
//! stale outputs pruned; a lost cache costs time, never correctness.

use crate::support::*;

fn site() -> tempfile::TempDir {
    let t = tempfile::tempdir().unwrap();
    copy_dir(&repo().join("examples/site"), &t.path().join("site"));
    t
}

#[test]
fn a_no_change_rebuild_reads_compresses_and_writes_nothing() {
    let t = site();
    let first = build(t.path(), "site", "out", &[]);
    assert!(first["compressed_now"].as_u64().unwrap() > 20);
    let before = tree(&t.path().join("out"));
    let again = build(t.path(), "site", "out", &[]);
    assert_eq!(again["sources_read"], 0);
    assert_eq!(again["compressed_now"], 0);
    assert_eq!(again["written"], 0);
    assert_eq!(again["removed"], 0);
    assert_eq!(again["version"], first["version"]);
    assert_eq!(
        tree(&t.path().join("out")),
        before,
        "a no-change rebuild changed the output"
    );
}

#[test]
fn a_changed_dependency_renames_its_dependants_only() {
    let t = site();
    build(t.path(), "site", "out", &[]);
    let out = t.path().join("out");
    let m1 = manifest(&out);
    let greet = t.path().join("site/js/lib/greet.js");
    let mut text = std::fs::read_to_string(&greet).unwrap();
    text.push_str("\n// changed\n");
    std::fs::write(&greet, text).unwrap();
    let r = build(t.path(), "site", "out", &[]);
    let m2 = manifest(&out);
    for changed in ["js/lib/greet.js", "js/lib/lazy.js", "js/app.js"] {
        assert_ne!(
            hashed(&m1, changed),
            hashed(&m2, changed),
            "{changed} kept its name"
        );
        // The old name stays for pages rendered before the rebuild (keep-builds), listed as retained.
        assert!(
            out.join(hashed(&m1, changed)).exists()
                && m2["retained"][hashed(&m1, changed)].is_object(),
            "old {changed} not retained"
        );
    }
    for same in [
        "js/theme.js",
        "css/site.css",
        "img/logo.svg",
        "js/vendor/chunk-BdtEMBbM.js",
    ] {
        assert_eq!(hashed(&m1, same), hashed(&m2, same), "{same} was renamed");
    }
    assert_ne!(
        m1["files"]["index.html"]["hash"],
        m2["files"]["index.html"]["hash"]
    );
    // Only what changed was compressed: 3 JS files + 5 HTML pages referencing them, 2 codecs each, at most.
    let now = r["compressed_now"].as_u64().unwrap();
    assert!((6..=16).contains(&now), "compressed {now}");
    assert_eq!(r["sources_read"], 1);
}

#[test]
fn removed_sources_are_pruned_from_the_output() {
    let t = site();
    build(t.path(), "site", "out", &[]);
    let m1 = manifest(&t.path().join("out"));
    std::fs::remove_file(t.path().join("site/robots.txt")).unwrap();
    let r = build(t.path(), "site", "out", &[]);
    assert!(r["removed"].as_u64().unwrap() >= 2);
    assert!(!t.path().join("out/robots.txt").exists());
    assert!(
        !t.path()
            .join("out")
            .join(hashed(&m1, "robots.txt"))
            .exists()
    );
}

#[test]
fn a_lost_cache_gives_the_same_output_without_rewriting_it() {
    let t = site();
    build(t.path(), "site", "out", &[]);
    let before = tree(&t.path().join("out"));
    std::fs::remove_dir_all(t.path().join("out.cache")).unwrap();
    let r = build(t.path(), "site", "out", &[]);
    assert_eq!(r["written"], 0, "outputs already in place were rewritten");
    assert_eq!(tree(&t.path().join("out")), before);
    // An output edited by hand is repaired.
    let m = manifest(&t.path().join("out"));
    let css = hashed(&m, "css/site.css");
    std::fs::write(t.path().join("out").join(&css), "tampered").unwrap();
    let r = build(t.path(), "site", "out", &[]);
    assert_eq!(r["written"], 1);
    assert_eq!(tree(&t.path().join("out")), before);
}
