//! Checks shared by the rewrite targets: span invariants, and the fingerprint-style rewrite
//! (`a.png` → `a.0123456789ab.png`) with its round trip.

use std::ops::Range;

use staleguard_assets::refs::{FoundRef, splice};

/// What a rewrite inserts before the last `.` of a verbatim reference (like a content hash would).
pub const TAG: &str = ".0123456789ab";

/// Every span is in bounds, and the spans are sorted and do not overlap.
pub fn check_spans(src: &[u8], refs: &[FoundRef]) {
    for r in refs {
        assert!(
            r.span.start <= r.span.end && r.span.end <= src.len(),
            "span out of bounds (len {}): {r:?}",
            src.len()
        );
    }
    for w in refs.windows(2) {
        assert!(
            w[0].span.end <= w[1].span.start,
            "spans unsorted or overlapping: {:?} then {:?}",
            w[0],
            w[1]
        );
    }
}

/// The rewrite of one document.
pub struct Rewrite {
    /// Insert positions of [`TAG`] (original coordinates, ascending), one per verbatim reference
    /// whose last path segment has a `.`.
    pub inserts: Vec<usize>,
    /// The insertions plus, for each non-verbatim reference, the whole span re-encoded.
    pub edits: Vec<(Range<usize>, String)>,
    /// The URL each reference should read back as after `edits` are applied.
    pub expected: Vec<String>,
}

pub fn plan(src: &[u8], refs: &[FoundRef]) -> Rewrite {
    let mut rw = Rewrite {
        inserts: Vec::new(),
        edits: Vec::new(),
        expected: Vec::new(),
    };
    for r in refs {
        if r.is_verbatim(src) {
            match last_segment_dot(&r.url) {
                Some(dot) => {
                    let at = r.span.start + dot;
                    rw.inserts.push(at);
                    rw.edits.push((at..at, TAG.to_string()));
                    let mut url = r.url.clone();
                    url.insert_str(dot, TAG);
                    rw.expected.push(url);
                }
                None => rw.expected.push(r.url.clone()),
            }
        } else {
            rw.edits.push((r.span.clone(), r.syntax.encode(&r.url)));
            rw.expected.push(r.url.clone());
        }
    }
    rw
}

/// The last `.` of the URL's last path segment (before any `?` or `#`), where a build inserts the
/// content hash: `../img/a.b.png?v=1` → before `.png`. A `.` elsewhere (`./x`) would change what the
/// URL is (a relative specifier would stop being one), which no build does.
fn last_segment_dot(url: &str) -> Option<usize> {
    let path_end = url.find(['?', '#']).unwrap_or(url.len());
    let seg_start = url[..path_end].rfind('/').map_or(0, |p| p + 1);
    url[seg_start..path_end].rfind('.').map(|d| seg_start + d)
}

/// Splices only the verbatim insertions, then removes exactly the inserted strings again: the
/// result must be the original bytes (so nothing outside the references was touched).
/// Returns the rewritten bytes.
pub fn verbatim_round_trip(src: &[u8], inserts: &[usize]) -> Vec<u8> {
    let mut edits: Vec<(Range<usize>, String)> =
        inserts.iter().map(|&p| (p..p, TAG.to_string())).collect();
    let out = splice(src, &mut edits);
    assert_eq!(out.len(), src.len() + inserts.len() * TAG.len());
    let mut restored = Vec::with_capacity(src.len());
    let mut at = 0;
    for (i, &p) in inserts.iter().enumerate() {
        let q = p + i * TAG.len();
        assert_eq!(
            &out[q..q + TAG.len()],
            TAG.as_bytes(),
            "inserted text not where expected"
        );
        restored.extend_from_slice(&out[at..q]);
        at = q + TAG.len();
    }
    restored.extend_from_slice(&out[at..]);
    assert!(
        restored == src,
        "round trip changed bytes outside references"
    );
    out
}

/// Compares the references found in the rewritten text with the plan.
/// With `strict`, every re-scanned reference must also read back as the URL written and keep its kind.
pub fn check_rescan(
    before: &[FoundRef],
    after: &[FoundRef],
    rw: &Rewrite,
    rewritten: &[u8],
    strict: bool,
) {
    assert_eq!(
        before.len(),
        after.len(),
        "rewrite changed the number of references\nbefore: {before:?}\nafter: {after:?}\nrewritten: {:?}",
        String::from_utf8_lossy(rewritten)
    );
    if strict {
        let got: Vec<&str> = after.iter().map(|r| r.url.as_str()).collect();
        assert_eq!(
            got,
            rw.expected,
            "rewritten references do not read back as written\nbefore: {before:?}\nafter: {after:?}\nrewritten: {:?}",
            String::from_utf8_lossy(rewritten)
        );
        for (b, a) in before.iter().zip(after) {
            assert_eq!(b.kind, a.kind, "kind changed: {b:?} -> {a:?}");
        }
    }
}
