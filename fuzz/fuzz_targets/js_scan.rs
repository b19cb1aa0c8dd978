//! `scan_js` on arbitrary text (see `harness::js_scan`).
#![no_main]

#[path = "../harness/mod.rs"]
mod harness;

use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| harness::js_scan(data));
