//! Property tests of the whole pipeline: bytes outside rewritten references never change, and every
//! reference in plain surroundings is rewritten.

use std::path::Path;

use proptest::prelude::*;
use regex::Regex;
use staleguard_assets::{BuildOptions, NoProgress, build};
use staleguard_core::config::BuildConfig;

/// Pieces of a generated file: free text from a decoy-rich alphabet without `.` or hex digits (so a
/// `.<12 hex>` can only come from the build), or a reference to an existing file.
#[derive(Debug, Clone)]
enum Piece {
    Text(String),
    Ref(usize),
}

fn pieces(alphabet: &'static str) -> impl Strategy<Value = Vec<Piece>> {
    let text = proptest::collection::vec(
        proptest::sample::select(alphabet.chars().collect::<Vec<_>>()),
        0..12,
    )
    .prop_map(|cs| Piece::Text(cs.into_iter().collect()));
    let r = (0usize..4).prop_map(Piece::Ref);
    proptest::collection::vec(prop_oneof![3 => text, 2 => r], 0..24)
}

const CSS_DECOYS: &str = "ghijklmnopqrstuvwxyz {}:;()/*'\"\n@,\\!";
const HTML_DECOYS: &str = "ghijklmnopqrstuvwxyz <>/=\"'!-\n&;";
const JS_DECOYS: &str = "ghijklmnopqrstuvwxyz ;(){}[]'\"`/\n*+=$\\";

fn css_ref(k: usize) -> String {
    match k {
        0 => "url(p0.png)".into(),
        1 => "url('p1.png')".into(),
        2 => "@import \"c2.css\";".into(),
        _ => "image-set(\"p3.png\" 1x)".into(),
    }
}

fn html_ref(k: usize) -> String {
    match k {
        0 => "<img src=\"p0.png\">".into(),
        1 => "<img srcset='p1.png 1x, p3.png 2x'>".into(),
        2 => "<link rel=stylesheet href=c2.css>".into(),
        _ => "<div style=\"background:url(p3.png)\"></div>".into(),
    }
}

fn js_ref(k: usize) -> String {
    match k {
        0 => "import a from './m0.js';".into(),
        1 => "import('./m1.js');".into(),
        2 => "export * from \"./m2.js\";".into(),
        _ => "new URL('./p3.png', import.meta.url);".into(),
    }
}

fn render(pieces: &[Piece], r: fn(usize) -> String) -> String {
    pieces
        .iter()
        .map(|p| match p {
            Piece::Text(t) => t.clone(),
            Piece::Ref(k) => r(*k),
        })
        .collect()
}

/// Builds `name` with `content` next to the referenced files; returns the output bytes of `name`.
fn build_one(name: &str, content: &str) -> String {
    let t = tempfile::tempdir().unwrap();
    let src = t.path().join("src");
    std::fs::create_dir_all(&src).unwrap();
    for (f, c) in [
        ("p0.png", "0"),
        ("p1.png", "1"),
        ("p3.png", "3"),
        ("c2.css", "x{}"),
        ("m0.js", "0"),
        ("m1.js", "1"),
        ("m2.js", "2"),
    ] {
        std::fs::write(src.join(f), c).unwrap();
    }
    std::fs::write(src.join(name), content).unwrap();
    let opts = BuildOptions {
        source: src,
        out: t.path().join("out"),
        cache_dir: t.path().join("cache"),
        config: BuildConfig {
            compress: vec![],
            ..BuildConfig::default()
        },
        git: None,
        now_unix: 0,
        clock_unix: 0,
        builder: "test".into(),
    };
    build(&opts, &NoProgress).unwrap();
    let manifest: serde_json::Value = serde_json::from_slice(
        &std::fs::read(t.path().join("out/staleguard.manifest.json")).unwrap(),
    )
    .unwrap();
    let path = manifest["files"][name]["path"]
        .as_str()
        .unwrap()
        .to_string();
    read_string(&t.path().join("out").join(path))
}

fn read_string(p: &Path) -> String {
    String::from_utf8(std::fs::read(p).unwrap()).unwrap()
}

fn unhash(s: &str) -> (String, usize) {
    let re = Regex::new(r"\.[0-9a-f]{12}\.(png|css|js)").unwrap();
    let n = re.find_iter(s).count();
    (re.replace_all(s, ".$1").into_owned(), n)
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 48, ..ProptestConfig::default() })]

    #[test]
    fn css_bytes_outside_references_are_unchanged(p in pieces(CSS_DECOYS)) {
        let src = render(&p, css_ref);
        let (restored, _) = unhash(&build_one("a.css", &src));
        prop_assert_eq!(restored, src);
    }

    #[test]
    fn html_bytes_outside_references_are_unchanged(p in pieces(HTML_DECOYS)) {
        let src = render(&p, html_ref);
        let (restored, _) = unhash(&build_one("index.html", &src));
        prop_assert_eq!(restored, src);
    }

    #[test]
    fn js_bytes_outside_references_are_unchanged(p in pieces(JS_DECOYS)) {
        let src = render(&p, js_ref);
        let (restored, _) = unhash(&build_one("a.js", &src));
        prop_assert_eq!(restored, src);
    }

    /// With plain separators every reference is found and rewritten.
    #[test]
    fn every_plain_reference_is_rewritten(refs in proptest::collection::vec(0usize..4, 1..10)) {
        for (name, r, sep) in [("a.css", css_ref as fn(usize) -> String, "\n"), ("index.html", html_ref, "\n"), ("a.js", js_ref, "\n")] {
            let src: String = refs.iter().map(|&k| r(k) + sep).collect();
            let expected: usize = refs.iter().map(|&k| if name == "index.html" && k == 1 { 2 } else { 1 }).sum();
            let (restored, n) = unhash(&build_one(name, &src));
            prop_assert_eq!(&restored, &src);
            prop_assert_eq!(n, expected, "{}: {}", name, src);
        }
    }
}
