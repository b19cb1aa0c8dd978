//! `scan_js` on arbitrary text, with imports on and off: spans in bounds, on char boundaries and in
//! order; string specifiers sit between their quotes; source maps are verbatim; with imports off the
//! result is exactly the source-map subset of the imports-on result.
#![no_main]

use libfuzzer_sys::fuzz_target;
use staleguard_assets::js::{JsRef, JsRefKind, scan_js};

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

fuzz_target!(|data: &[u8]| {
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
});
