//! `scan_html` on arbitrary bytes: errors are fine, panics are not; spans in bounds, sorted and
//! non-overlapping; a fingerprint-style rewrite touches only the references and keeps them all
//! findable.
#![no_main]

mod common;

use libfuzzer_sys::fuzz_target;
use staleguard_assets::html::scan_html;
use staleguard_assets::refs::splice;

fuzz_target!(|data: &[u8]| {
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
    common::check_rescan(&refs, &again.refs, &rw, &out);
});
