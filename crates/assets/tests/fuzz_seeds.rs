//! Every committed fuzz seed and regression input (`fuzz/seeds/<target>/`) replayed through the fuzz
//! targets' own bodies (`fuzz/harness/`), in strict mode: deterministic, part of the ordinary test run.
//! Exploration with libFuzzer is `scripts/fuzz.sh`; a crash input it finds is committed as a seed and
//! from then on checked here.

#[path = "../../../fuzz/harness/mod.rs"]
mod harness;

use std::path::Path;

type Target = (&'static str, fn(&[u8]));

const TARGETS: [Target; 4] = [
    ("css_rewrite", |d| harness::css_rewrite(d, true)),
    ("html_rewrite", |d| harness::html_rewrite(d, true)),
    ("js_scan", harness::js_scan),
    ("jpeg_recode", harness::jpeg_recode),
];

#[test]
fn every_committed_fuzz_seed_passes_its_target_strictly() {
    let seeds = Path::new(env!("CARGO_MANIFEST_DIR")).join("../../fuzz/seeds");
    let mut failed = Vec::new();
    for (target, run) in TARGETS {
        let dir = seeds.join(target);
        let mut files: Vec<_> = std::fs::read_dir(&dir)
            .unwrap_or_else(|e| panic!("{}: {e}", dir.display()))
            .map(|e| e.unwrap().path())
            .filter(|p| p.is_file())
            .collect();
        files.sort();
        assert!(!files.is_empty(), "no seeds in {}", dir.display());
        for f in files {
            let data = std::fs::read(&f).unwrap();
            if std::panic::catch_unwind(|| run(&data)).is_err() {
                failed.push(format!("{target}: {}", f.display()));
            }
        }
    }
    assert!(
        failed.is_empty(),
        "seeds failing their fuzz target (reproduce: cd fuzz && RUSTC_BOOTSTRAP=1 cargo fuzz run --features strict TARGET FILE):\n{}",
        failed.join("\n")
    );
}
