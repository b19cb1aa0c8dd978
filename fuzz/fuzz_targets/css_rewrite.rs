//! `scan_css` on arbitrary text (see `harness::css_rewrite`).
#![no_main]

#[path = "../harness/mod.rs"]
mod harness;

use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| harness::css_rewrite(data, cfg!(feature = "strict")));
