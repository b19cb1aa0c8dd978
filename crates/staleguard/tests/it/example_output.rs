//! The bundled example's output, byte for byte: `staleguard build` on `examples/` gives the same tree
//! (every path with the blake3 of its bytes) and `staleguard deploy` the same deploy record as the
//! committed snapshots, so a restructuring that changes any output byte fails here. Update them
//! (`INSTA_UPDATE=always` or `cargo insta review`) only for a change meant to alter the output.
//!
//! Only the objects' `etag`s are redacted: a local folder's ETag is the file's inode, mtime and size
//! (object_store's `LocalFileSystem`), so it changes on every run. Nothing else depends on when or where
//! the test runs: the build's only time is `build_time` in `build-info.json`, taken from
//! `SOURCE_DATE_EPOCH` (fixed by `staleguard()`), and the deploy's `time`, `unix` and id (the time plus
//! a hash of every key and content hash) come from the deploy clock, fixed with `STALEGUARD_NOW`; the
//! output holds no absolute path and no randomness (the temp folder differs on every run, so a path
//! would show as a diff here).

use std::io::Read;

use serde_json::Value;

use crate::deploy::{T0, sg};
use crate::support::*;

/// `path  blake3` for every file below `dir`, sorted by path.
fn digests(dir: &std::path::Path) -> String {
    tree(dir)
        .iter()
        .map(|(path, bytes)| format!("{path}  {}\n", blake3::hash(bytes).to_hex()))
        .collect()
}

/// Replaces every `"etag"` value (see the module doc) by a placeholder, keeping whether there is one.
fn redact_etags(v: &mut Value) {
    match v {
        Value::Object(m) => {
            for (k, x) in m.iter_mut() {
                if k == "etag" && x.is_string() {
                    *x = Value::from("[inode-mtime-size]");
                } else {
                    redact_etags(x);
                }
            }
        }
        Value::Array(a) => a.iter_mut().for_each(redact_etags),
        _ => {}
    }
}

#[test]
fn the_example_builds_and_deploys_to_the_same_bytes() {
    let t = example_project();
    let dir = t.path();
    let o = run(sg(dir, T0, &["build"]));
    assert!(o.status.success(), "build failed");
    insta::assert_snapshot!("example_dist", digests(&dir.join("dist")));

    let o = run(sg(dir, T0, &["deploy", "--json"]));
    assert!(o.status.success(), "deploy failed");
    let report: Value = serde_json::from_slice(&o.stdout).expect("--json prints JSON");
    let id = report["id"].as_str().expect("the report names the deploy");
    let gz = std::fs::read(dir.join(format!("public/.staleguard/deploys/{id}.json.gz"))).unwrap();
    let mut json = Vec::new();
    flate2::read::GzDecoder::new(&gz[..])
        .read_to_end(&mut json)
        .unwrap();
    let mut record: Value = serde_json::from_slice(&json).unwrap();
    redact_etags(&mut record);
    insta::assert_snapshot!(
        "example_deploy_record",
        serde_json::to_string_pretty(&record).unwrap()
    );
}
