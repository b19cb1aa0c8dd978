//! The fuzz targets' bodies, shared by the cargo-fuzz targets (`fuzz_targets/`, exploration with
//! libFuzzer: `scripts/fuzz.sh`) and by `crates/assets/tests/fuzz_seeds.rs`, which replays every committed
//! seed and regression input (`fuzz/seeds/<target>/`) through them in the ordinary test run, strict, so
//! CI needs neither cargo-fuzz nor a second build of the crate. Each function panics on a violated
//! invariant, which is what libFuzzer and the replay test both report.

#![allow(dead_code)] // each fuzz target uses one of these functions

pub mod common;

use staleguard_assets::css::scan_css;
use staleguard_assets::html::scan_html;
use staleguard_assets::images::css::declarations;
use staleguard_assets::js::{JsRef, JsRefKind, scan_js};
use staleguard_assets::refs::splice;

/// `scan_css` on arbitrary text: spans in bounds, on char boundaries, sorted and non-overlapping; a
/// fingerprint-style rewrite touches only the references and keeps them all findable (with `strict`,
/// each reads back as written).
pub fn css_rewrite(data: &[u8], strict: bool) {
    let text = String::from_utf8_lossy(data);
    let src: &str = &text;
    let refs = scan_css(src, 0);
    common::check_spans(src.as_bytes(), &refs);
    for r in &refs {
        assert!(
            src.is_char_boundary(r.span.start) && src.is_char_boundary(r.span.end),
            "span not on char boundaries: {r:?}"
        );
    }

    // `base` only shifts the spans.
    let shifted = scan_css(src, 7);
    assert_eq!(shifted.len(), refs.len());
    for (a, b) in refs.iter().zip(&shifted) {
        assert_eq!(
            (a.span.start + 7, a.span.end + 7),
            (b.span.start, b.span.end)
        );
        assert_eq!((&a.url, a.kind, a.syntax), (&b.url, b.kind, b.syntax));
    }

    let mut rw = common::plan(src.as_bytes(), &refs);
    common::verbatim_round_trip(src.as_bytes(), &rw.inserts);

    let out = splice(src.as_bytes(), &mut rw.edits);
    let out = String::from_utf8(out).expect("rewrite produced invalid UTF-8");
    let again = scan_css(&out, 0);
    common::check_spans(out.as_bytes(), &again);
    common::check_rescan(&refs, &again, &rw, out.as_bytes(), strict);

    // `css-image-set`: each image declaration is at one of the references, and its insertion point
    // is after that reference, on a char boundary, in order.
    let mut last = 0;
    for d in declarations(src) {
        let r = refs
            .iter()
            .find(|r| r.span.start == d.url)
            .unwrap_or_else(|| panic!("{d:?} is not at a reference"));
        assert!(
            d.insert_at >= r.span.end
                && d.insert_at <= src.len()
                && src.is_char_boundary(d.insert_at),
            "{d:?} inserts at a bad place"
        );
        assert!(d.insert_at > last || last == 0, "{d:?} out of order");
        last = d.insert_at;
    }
}

/// `scan_html` on arbitrary bytes: errors are fine, panics are not; spans in bounds, sorted and
/// non-overlapping; a fingerprint-style rewrite touches only the references and keeps them all
/// findable (with `strict`, each reads back as written).
pub fn html_rewrite(data: &[u8], strict: bool) {
    let Ok(scan) = scan_html(data, true) else {
        return;
    };
    let refs = scan.refs;
    common::check_spans(data, &refs);

    let mut rw = common::plan(data, &refs);
    common::verbatim_round_trip(data, &rw.inserts);

    let out = splice(data, &mut rw.edits);
    let Ok(again) = scan_html(&out, true) else {
        return; // e.g. the tokenizer's memory limit on the longer text
    };
    common::check_spans(&out, &again.refs);
    common::check_rescan(&refs, &again.refs, &rw, &out, strict);
    img_rewrite(data, &scan.images);
}

/// The responsive-image rewrite of every `<img>` with a `src`, as if each were a processed image: only
/// insertions, at the tag's edges or before its `>`, so the page is a subsequence of the output, and the
/// output has the same `<img>` tags.
fn img_rewrite(data: &[u8], images: &[staleguard_assets::html::ImgTag]) {
    use staleguard_assets::images::markup::{Urls, img_edits, merge_insertions};
    use staleguard_assets::images::{ImageSet, ImagesConfig, OutFormat, Settings, Variant};
    let cfg = ImagesConfig {
        enabled: true,
        ..Default::default()
    };
    let settings = Settings::new(&cfg).unwrap().unwrap();
    let v = |width: u32, format: OutFormat| Variant {
        width,
        height: width / 2,
        format,
        blob: String::new(),
        hash: String::new(),
        size: 1,
        logical: String::new(),
        path: format!("a.{width}.h.{}", format.extension()),
    };
    let set = ImageSet {
        width: 800,
        height: 400,
        fallback: OutFormat::Jpeg,
        variants: vec![
            v(800, OutFormat::Webp),
            v(320, OutFormat::Jpeg),
            v(320, OutFormat::Webp),
        ],
    };
    let encode = |n: &str| n.to_string();
    let urls = Urls {
        base: "img/",
        original: "a.h.jpg",
        encode: &encode,
    };
    let mut edits: Vec<_> = images
        .iter()
        .filter(|t| t.src.is_some())
        .flat_map(|t| img_edits(t, &set, &settings, &urls))
        .collect();
    for (r, _) in &edits {
        assert!(
            r.start == r.end && r.end <= data.len(),
            "not an insertion: {r:?}"
        );
    }
    merge_insertions(&mut edits);
    let out = splice(data, &mut edits.clone());
    // The page is the output minus the insertions.
    let mut back = Vec::with_capacity(data.len());
    let mut at = 0;
    let mut shift = 0;
    for (r, text) in &edits {
        let pos = r.start + shift;
        back.extend_from_slice(&out[at..pos]);
        assert_eq!(&out[pos..pos + text.len()], text.as_bytes());
        at = pos + text.len();
        shift += text.len();
    }
    back.extend_from_slice(&out[at..]);
    assert_eq!(back, data, "bytes outside the inserted text changed");
    if let Ok(again) = scan_html(&out, true) {
        assert_eq!(
            again.images.len(),
            images.len(),
            "the rewrite changed the <img> tags"
        );
    }
}

/// `scan_js` on arbitrary text, with imports on and off: spans in bounds, on char boundaries and in
/// order; string specifiers sit between their quotes; source maps are verbatim; with imports off the
/// result is exactly the source-map subset of the imports-on result.
pub fn js_scan(data: &[u8]) {
    let text = String::from_utf8_lossy(data);
    let src: &str = &text;
    let all = scan_js(src, true);
    check(src, &all);
    let maps = scan_js(src, false);
    check(src, &maps);
    let subset: Vec<&JsRef> = all
        .iter()
        .filter(|r| r.kind == JsRefKind::SourceMap)
        .collect();
    let maps: Vec<&JsRef> = maps.iter().collect();
    assert_eq!(maps, subset, "imports=false is not the source-map subset");
}

fn check(src: &str, refs: &[JsRef]) {
    let b = src.as_bytes();
    for r in refs {
        assert!(
            r.span.start <= r.span.end && r.span.end <= src.len(),
            "span out of bounds (len {}): {r:?}",
            src.len()
        );
        assert!(
            src.is_char_boundary(r.span.start) && src.is_char_boundary(r.span.end),
            "span not on char boundaries: {r:?}"
        );
        let raw = &src[r.span.clone()];
        match (r.kind, r.quote) {
            (JsRefKind::SourceMap, None) => {
                assert!(!raw.is_empty(), "empty source map URL: {r:?}");
                assert_eq!(raw, r.value, "source map value is not the text: {r:?}");
            }
            (JsRefKind::SourceMap, Some(_)) => panic!("source map with a quote: {r:?}"),
            (_, None) => panic!("string reference without a quote: {r:?}"),
            (_, Some(q)) => {
                assert!(q.is_ascii(), "odd quote: {r:?}");
                let q = q as u8;
                assert!(
                    r.span.start >= 1 && b[r.span.start - 1] == q,
                    "byte before the span is not the quote: {r:?}"
                );
                assert!(
                    b.get(r.span.end) == Some(&q),
                    "byte after the span is not the quote: {r:?}"
                );
                if !raw.contains(['\\', '\r']) {
                    assert_eq!(
                        raw, r.value,
                        "escape-free specifier decoded differently: {r:?}"
                    );
                }
            }
        }
    }
    assert!(
        refs.windows(2).all(|w| w[0].span.start <= w[1].span.start),
        "references not in source order: {refs:?}"
    );
}

/// The lossless JPEG re-coder on arbitrary bytes: no panic, and what it returns re-codes to itself
/// (the same symbols give the same tables). Whether it shows the same pixels is checked by the build
/// before it keeps a re-coded original (on damaged inputs, jpeg-decoder's error recovery can differ
/// between two codings of the same symbols; libjpeg's does not).
pub fn jpeg_recode(data: &[u8]) {
    use staleguard_assets::images::jpeg_huffman::optimize;
    let Some(out) = optimize(data) else {
        return;
    };
    assert_eq!(
        optimize(&out).as_deref(),
        Some(&out[..]),
        "the re-coded JPEG does not re-code to itself"
    );
}
