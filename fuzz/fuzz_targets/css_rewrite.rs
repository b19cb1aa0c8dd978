//! `scan_css` on arbitrary text: spans in bounds, on char boundaries, sorted and non-overlapping;
//! a fingerprint-style rewrite touches only the references and keeps them all findable.
#![no_main]

mod common;

use libfuzzer_sys::fuzz_target;
use staleguard_assets::css::scan_css;
use staleguard_assets::refs::splice;

fuzz_target!(|data: &[u8]| {
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
    common::check_rescan(&refs, &again, &rw, out.as_bytes());
});
