//! The lossless JPEG re-coder on arbitrary bytes (see `harness::jpeg_recode`).
#![no_main]

#[path = "../harness/mod.rs"]
mod harness;

use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| harness::jpeg_recode(data));
