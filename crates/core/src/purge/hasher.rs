//! A fast hash for paths: std's SipHash resists flooding, which a planner of our own URLs does not
//! need, and costs several times more per lookup.

use std::collections::HashMap;
use std::hash::{BuildHasherDefault, Hasher};

pub(super) type PathMap<'a> = HashMap<&'a str, u32, BuildHasherDefault<PathHasher>>;

/// Multiply-rotate over 8-byte words (as rustc's FxHash), with a final avalanche so that every bit of
/// the input reaches the bits the table uses.
#[derive(Default, Clone, Copy)]
pub(super) struct PathHasher(pub(super) u64);

const SEED: u64 = 0x51_7c_c1_b7_27_22_0a_95;

impl PathHasher {
    pub(super) fn word(&mut self, w: u64) {
        self.0 = (self.0.rotate_left(5) ^ w).wrapping_mul(SEED);
    }
}

impl Hasher for PathHasher {
    fn write(&mut self, bytes: &[u8]) {
        self.word(bytes.len() as u64);
        let mut chunks = bytes.chunks_exact(8);
        for c in &mut chunks {
            self.word(u64::from_le_bytes(c.try_into().expect("8 bytes")));
        }
        let rest = chunks.remainder();
        if !rest.is_empty() {
            let mut buf = [0u8; 8];
            buf[..rest.len()].copy_from_slice(rest);
            self.word(u64::from_le_bytes(buf));
        }
    }

    fn write_u8(&mut self, i: u8) {
        self.word(i as u64);
    }

    fn finish(&self) -> u64 {
        // murmur3's fmix64
        let mut h = self.0;
        h ^= h >> 33;
        h = h.wrapping_mul(0xff51_afd7_ed55_8ccd);
        h ^= h >> 33;
        h = h.wrapping_mul(0xc4ce_b9fe_1a85_ec53);
        h ^ (h >> 33)
    }
}
