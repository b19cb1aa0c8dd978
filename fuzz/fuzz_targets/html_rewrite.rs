//! `scan_html` on arbitrary bytes (see `harness::html_rewrite`).
#![no_main]

#[path = "../harness/mod.rs"]
mod harness;

use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| harness::html_rewrite(data, cfg!(feature = "strict")));
