//! Precompression: brotli, gzip and zstd sidecars, deterministic (gzip has no name and mtime 0).
//!
//! [`compress`] is the one place a codec and its level are applied; the pipeline schedules the work and
//! the cache stores the results.

use std::io::Write;

use staleguard_core::config::{BuildConfig, Codec};

/// Codec levels, taken from the build config.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Levels {
    pub brotli_quality: u32,
    pub brotli_window: u32,
    pub gzip_level: u32,
    pub zstd_level: i32,
}

impl Levels {
    pub fn from_config(c: &BuildConfig) -> Levels {
        Levels {
            brotli_quality: c.brotli_quality,
            brotli_window: c.brotli_window,
            gzip_level: c.gzip_level,
            zstd_level: c.zstd_level,
        }
    }

    /// The levels of `cheap-compress` files (source maps): the cheap ones, the brotli window unchanged.
    pub fn cheap_from_config(c: &BuildConfig) -> Levels {
        Levels {
            brotli_quality: c.cheap_brotli_quality,
            brotli_window: c.brotli_window,
            gzip_level: c.cheap_gzip_level,
            zstd_level: c.cheap_zstd_level,
        }
    }

    /// A short tag naming a codec with its level, used in cache keys (`br11w22`, `gz9`, `zst19`).
    pub fn tag(&self, codec: Codec) -> String {
        match codec {
            Codec::Br => format!("br{}w{}", self.brotli_quality, self.brotli_window),
            Codec::Gzip => format!("gz{}", self.gzip_level),
            Codec::Zstd => format!("zst{}", self.zstd_level),
        }
    }
}

/// An error from a compression library (only zstd reports any).
#[derive(Debug, thiserror::Error)]
#[error("{codec} compression failed: {message}")]
pub struct CompressError {
    pub codec: Codec,
    pub message: String,
}

/// True when `compressed` decodes with `codec` to exactly `expected` (a generator's own `sitemap.xml.gz`
/// next to `sitemap.xml`). Reads at most one byte more than `expected`, so a bomb costs nothing.
pub fn decodes_to(codec: Codec, compressed: &[u8], expected: &[u8]) -> bool {
    use std::io::Read;
    let limit = expected.len() as u64 + 1;
    let mut out = Vec::with_capacity(expected.len());
    let read = match codec {
        Codec::Gzip => flate2::read::MultiGzDecoder::new(compressed)
            .take(limit)
            .read_to_end(&mut out),
        Codec::Br => brotli::Decompressor::new(compressed, 4096)
            .take(limit)
            .read_to_end(&mut out),
        #[cfg(feature = "zstd")]
        Codec::Zstd => match zstd::stream::read::Decoder::new(compressed) {
            Ok(d) => d.take(limit).read_to_end(&mut out),
            Err(e) => Err(e),
        },
        #[cfg(not(feature = "zstd"))]
        Codec::Zstd => return false,
    };
    read.is_ok() && out == expected
}

/// Compresses `data` with `codec` at the configured level.
pub fn compress(codec: Codec, data: &[u8], levels: &Levels) -> Result<Vec<u8>, CompressError> {
    let fail = |e: std::io::Error| CompressError {
        codec,
        message: e.to_string(),
    };
    match codec {
        Codec::Br => {
            let params = brotli::enc::BrotliEncoderParams {
                quality: levels.brotli_quality as i32,
                lgwin: levels.brotli_window as i32,
                size_hint: data.len(),
                ..Default::default()
            };
            let mut out = Vec::with_capacity(data.len() / 3 + 64);
            brotli::BrotliCompress(&mut &data[..], &mut out, &params).map_err(fail)?;
            Ok(out)
        }
        Codec::Gzip => {
            let mut enc = flate2::GzBuilder::new().mtime(0).write(
                Vec::with_capacity(data.len() / 3 + 64),
                flate2::Compression::new(levels.gzip_level),
            );
            enc.write_all(data).map_err(fail)?;
            enc.finish().map_err(fail)
        }
        Codec::Zstd => zstd_compress(data, levels.zstd_level).map_err(fail),
    }
}

#[cfg(feature = "zstd")]
fn zstd_compress(data: &[u8], level: i32) -> std::io::Result<Vec<u8>> {
    zstd::bulk::compress(data, level)
}

#[cfg(not(feature = "zstd"))]
fn zstd_compress(_data: &[u8], _level: i32) -> std::io::Result<Vec<u8>> {
    Err(std::io::Error::other(
        "this staleguard was built without the `zstd` feature; remove \"zstd\" from build.compress",
    ))
}

/// True when a compressed size saves at least `min_saving_percent` of the original.
pub fn worth_keeping(original: usize, compressed: usize, min_saving_percent: f64) -> bool {
    original > 0 && (compressed as f64) <= (original as f64) * (1.0 - min_saving_percent / 100.0)
}

#[cfg(test)]
mod tests {
    use std::io::Read;

    use super::*;

    const LEVELS: Levels = Levels {
        brotli_quality: 5,
        brotli_window: 22,
        gzip_level: 9,
        zstd_level: 3,
    };

    #[test]
    fn round_trips_and_is_deterministic() {
        let data = "body { color: red; } ".repeat(500);
        for codec in [Codec::Br, Codec::Gzip, Codec::Zstd] {
            let a = compress(codec, data.as_bytes(), &LEVELS).unwrap();
            let b = compress(codec, data.as_bytes(), &LEVELS).unwrap();
            assert_eq!(a, b, "{codec} is not deterministic");
            assert!(a.len() < data.len() / 10);
            let mut back = Vec::new();
            match codec {
                Codec::Br => {
                    brotli::Decompressor::new(&a[..], 4096)
                        .read_to_end(&mut back)
                        .unwrap();
                }
                Codec::Gzip => {
                    flate2::read::GzDecoder::new(&a[..])
                        .read_to_end(&mut back)
                        .unwrap();
                }
                Codec::Zstd => back = zstd::bulk::decompress(&a, data.len()).unwrap(),
            }
            assert_eq!(back, data.as_bytes());
        }
    }

    #[test]
    fn worth() {
        assert!(worth_keeping(100, 95, 5.0));
        assert!(!worth_keeping(100, 96, 5.0));
        assert!(!worth_keeping(0, 0, 5.0));
    }
}
