//! Responsive images (`[build.images]`): which source images get variants, which variants (widths ×
//! formats, never wider than the source), making them ([`codec`]) and the `<img>` markup that offers
//! them ([`markup`]).
//!
//! A variant is a function of the source's bytes and the image settings ([`Settings::key`]): its bytes
//! are a blob of the build cache named by both, so an unchanged image is never decoded again, and its
//! name carries its own content hash (`hero.640.<hash>.webp`) like every immutable output.

pub mod codec;
pub mod css;
pub mod jpeg_huffman;
pub mod markup;
pub mod optimize;

use rayon::prelude::*;
use serde::{Deserialize, Serialize};

use crate::error::BuildError;
use crate::source::glob_set;

pub use codec::SkipReason;
pub use staleguard_core::config::{ImageFormat, ImagesConfig};

/// An encoded variant's format.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum OutFormat {
    Avif,
    Webp,
    Jpeg,
    Png,
}

impl OutFormat {
    /// The file extension, without its dot.
    pub fn extension(self) -> &'static str {
        match self {
            OutFormat::Avif => "avif",
            OutFormat::Webp => "webp",
            OutFormat::Jpeg => "jpg",
            OutFormat::Png => "png",
        }
    }

    /// The name in the manifest (`webp`, `jpeg`, `png`).
    pub fn name(self) -> &'static str {
        match self {
            OutFormat::Avif => "avif",
            OutFormat::Webp => "webp",
            OutFormat::Jpeg => "jpeg",
            OutFormat::Png => "png",
        }
    }

    pub fn mime(self) -> &'static str {
        match self {
            OutFormat::Avif => "image/avif",
            OutFormat::Webp => "image/webp",
            OutFormat::Jpeg => "image/jpeg",
            OutFormat::Png => "image/png",
        }
    }

    /// The format a source of this extension falls back to (its own; PNG for a static GIF).
    pub fn fallback_for(logical: &str) -> Option<OutFormat> {
        let ext = logical.rsplit_once('.')?.1.to_ascii_lowercase();
        match ext.as_str() {
            "jpg" | "jpeg" => Some(OutFormat::Jpeg),
            "png" | "gif" => Some(OutFormat::Png),
            "webp" => Some(OutFormat::Webp),
            _ => None,
        }
    }
}

/// The image settings in force for one build.
pub struct Settings<'a> {
    pub cfg: &'a ImagesConfig,
    include: Option<globset::GlobSet>,
    exclude: globset::GlobSet,
    key: String,
}

impl<'a> Settings<'a> {
    /// `None` when `[build.images]` is off.
    pub fn new(cfg: &'a ImagesConfig) -> Result<Option<Settings<'a>>, BuildError> {
        if !cfg.enabled {
            return Ok(None);
        }
        if cfg.formats.contains(&ImageFormat::Avif) && !cfg!(feature = "avif") {
            return Err(BuildError::Config(
                "`build.images.formats` lists `avif`, and this staleguard was built without AVIF; build it with `--features avif` (needs `nasm`), or use `formats = [\"webp\"]`".into(),
            ));
        }
        // `v`: bumped when the same settings make other bytes (2: sources with a profile converted to
        // sRGB; 3: AVIF at rav1e speed 6).
        let key = serde_json::json!({
            "v": 3,
            "widths": cfg.widths,
            "formats": cfg.formats,
            "quality": cfg.quality,
            "picture": cfg.picture,
            "strip": cfg.strip_metadata,
        });
        Ok(Some(Settings {
            cfg,
            include: (!cfg.include.is_empty())
                .then(|| glob_set(&cfg.include))
                .transpose()?,
            exclude: glob_set(&cfg.exclude)?,
            key: blake3::hash(key.to_string().as_bytes()).to_hex()[..16].to_string(),
        }))
    }

    /// What the variants' bytes depend on besides the source's.
    pub fn key(&self) -> &str {
        &self.key
    }

    /// The fallback format of a source image this build makes variants of, if it does.
    pub fn wants(&self, logical: &str, size: u64) -> Option<OutFormat> {
        let fallback = OutFormat::fallback_for(logical)?;
        if size < self.cfg.min_bytes
            || self.exclude.is_match(logical)
            || self.include.as_ref().is_some_and(|g| !g.is_match(logical))
        {
            return None;
        }
        Some(fallback)
    }

    /// The formats offered besides the fallback, in the browser's order of preference.
    pub fn extras(&self, fallback: OutFormat) -> Vec<OutFormat> {
        self.cfg
            .formats
            .iter()
            .map(|f| match f {
                ImageFormat::Webp => OutFormat::Webp,
                ImageFormat::Avif => OutFormat::Avif,
            })
            .filter(|f| *f != fallback)
            .collect()
    }

    /// The format of the `<img srcset>`: the fallback with `picture` (the `<source>`s offer the rest),
    /// else the first extra format.
    pub fn img_format(&self, fallback: OutFormat) -> OutFormat {
        if self.cfg.picture {
            fallback
        } else {
            self.extras(fallback).first().copied().unwrap_or(fallback)
        }
    }

    /// The variants of a `width`-pixel-wide source, widest first: each configured width below the
    /// source's, per format, plus the source's own width in every format but the fallback (whose
    /// full-size candidate is the original file).
    pub fn plan(&self, width: u32, fallback: OutFormat) -> Vec<(u32, OutFormat)> {
        let mut formats = if self.cfg.picture {
            self.extras(fallback)
        } else {
            Vec::new()
        };
        let img = self.img_format(fallback);
        if !formats.contains(&img) {
            formats.push(img);
        }
        let mut out = Vec::new();
        for &f in &formats {
            if f != fallback {
                out.push((width, f));
            }
            for &w in self.cfg.widths.iter().rev().filter(|&&w| w < width) {
                out.push((w, f));
            }
        }
        out.sort_by(|a, b| b.0.cmp(&a.0).then(a.1.cmp(&b.1)));
        out
    }

    fn quality(&self, f: OutFormat) -> u8 {
        match f {
            OutFormat::Avif => self.cfg.quality.avif,
            OutFormat::Webp => self.cfg.quality.webp,
            OutFormat::Jpeg => self.cfg.quality.jpeg,
            OutFormat::Png => 100,
        }
    }
}

/// The cache's memo of one source image's variants under one settings key.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ImageMemo {
    /// The source's size, oriented.
    pub width: u32,
    pub height: u32,
    pub variants: Vec<VariantMemo>,
}

/// One variant in the cache: its size and format, and the blob that holds its bytes.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct VariantMemo {
    pub width: u32,
    pub height: u32,
    pub format: OutFormat,
    pub blob: String,
}

/// One variant as the build outputs it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Variant {
    pub width: u32,
    pub height: u32,
    pub format: OutFormat,
    pub blob: String,
    /// blake3 hex of its bytes.
    pub hash: String,
    pub size: u64,
    /// `img/hero.640.webp`.
    pub logical: String,
    /// `img/hero.640.<hash>.webp`.
    pub path: String,
}

/// A source image's variants, and its own size (oriented).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ImageSet {
    pub width: u32,
    pub height: u32,
    pub fallback: OutFormat,
    pub variants: Vec<Variant>,
}

/// `img/hero.jpg`, 640, webp → `img/hero.640.webp`.
pub fn variant_logical(logical: &str, width: u32, format: OutFormat) -> String {
    let stem = logical.rsplit_once('.').map_or(logical, |(s, _)| s);
    format!("{stem}.{width}.{}", format.extension())
}

/// A source image's variants, made now.
pub struct Processed {
    pub memo: ImageMemo,
    /// The bytes of each of `memo.variants`, in order.
    pub bytes: Vec<Vec<u8>>,
}

/// The blob name of a variant: the source's content hash, the settings key, the width and format.
pub fn blob_name(raw_hash: &str, key: &str, width: u32, format: OutFormat) -> String {
    format!("{raw_hash}.i{key}w{width}.{}", format.extension())
}

/// Decodes a source once and makes each planned variant (in parallel, widest first).
pub fn process(
    bytes: &[u8],
    raw_hash: &str,
    fallback: OutFormat,
    s: &Settings<'_>,
) -> Result<Processed, SkipReason> {
    let src = codec::decode(bytes)?;
    // Colour: with `strip-metadata` every variant is sRGB without a profile (converted when the
    // source's profile is another RGB space; the profile kept only if it cannot be converted from).
    // Without, JPEG and PNG variants keep the source's pixels and profile, and WebP variants (which
    // carry no profile here) are converted.
    let colour = match &src.icc {
        Some(_) => codec::to_srgb(&src),
        None => codec::Colour::Srgb,
    };
    let keep = matches!(colour, codec::Colour::Keep);
    let converted = match colour {
        codec::Colour::Converted(pixels) => Some(codec::Decoded {
            pixels,
            ..src.clone_header()
        }),
        _ => None,
    };
    let strip = s.cfg.strip_metadata;
    // For a format: whether its pixels are the converted ones, and the profile it embeds.
    let source_for = |f: OutFormat| -> (bool, Option<&[u8]>) {
        let profile = src.icc.as_deref();
        match (strip, f) {
            _ if keep => (false, profile),
            (true, _) | (false, OutFormat::Webp | OutFormat::Avif) => (converted.is_some(), None),
            (false, _) => (false, profile),
        }
    };
    let plan = s.plan(src.width, fallback);
    // Resize once per width, encode once per format.
    let mut widths: Vec<u32> = plan.iter().map(|(w, _)| *w).collect();
    widths.dedup();
    /// One width's variants (every format), or why they could not be made.
    type Made = Result<Vec<(VariantMemo, Vec<u8>)>, String>;
    let made: Vec<Made> = widths
        .par_iter()
        .map(|&w| {
            let h = codec::scaled_height(src.width, src.height, w);
            // Resized once per pixel buffer (two only when JPEG/PNG keep a profile WebP cannot).
            let mut resized: [Option<Vec<u8>>; 2] = [None, None];
            plan.iter()
                .filter(|(pw, _)| *pw == w)
                .map(|&(_, f)| {
                    let (use_converted, icc) = source_for(f);
                    let slot = &mut resized[usize::from(use_converted)];
                    if slot.is_none() {
                        let from = if use_converted {
                            converted.as_ref().unwrap_or(&src)
                        } else {
                            &src
                        };
                        *slot = Some(codec::resize(from, w)?);
                    }
                    let px = slot.as_deref().unwrap_or_default();
                    let out = codec::encode(px, w, h, src.alpha, f, s.quality(f), icc)?;
                    Ok((
                        VariantMemo {
                            width: w,
                            height: h,
                            format: f,
                            blob: blob_name(raw_hash, s.key(), w, f),
                        },
                        out,
                    ))
                })
                .collect()
        })
        .collect();
    let mut memo = ImageMemo {
        width: src.width,
        height: src.height,
        variants: Vec::new(),
    };
    let mut all = Vec::new();
    for m in made {
        for (v, b) in m.map_err(SkipReason::Decode)? {
            memo.variants.push(v);
            all.push(b);
        }
    }
    Ok(Processed { memo, bytes: all })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn settings(cfg: &ImagesConfig) -> Settings<'_> {
        Settings::new(cfg).unwrap().unwrap()
    }

    #[test]
    fn avif_is_offered_first_with_the_feature_and_refused_with_a_hint_without() {
        let cfg = ImagesConfig {
            enabled: true,
            widths: vec![320],
            formats: vec![ImageFormat::Avif, ImageFormat::Webp],
            ..Default::default()
        };
        let made = Settings::new(&cfg);
        if cfg!(feature = "avif") {
            let s = made.unwrap().unwrap();
            assert_eq!(
                s.extras(OutFormat::Jpeg),
                [OutFormat::Avif, OutFormat::Webp]
            );
            assert_eq!(
                s.plan(640, OutFormat::Jpeg),
                [
                    (640, OutFormat::Avif),
                    (640, OutFormat::Webp),
                    (320, OutFormat::Avif),
                    (320, OutFormat::Webp),
                    (320, OutFormat::Jpeg)
                ]
            );
        } else {
            let e = made.err().expect("avif refused without the feature");
            assert!(e.to_string().contains("--features avif"), "{e}");
        }
    }

    #[test]
    fn plans_never_upscale_and_list_widest_first() {
        let cfg = ImagesConfig {
            enabled: true,
            ..Default::default()
        };
        let s = settings(&cfg);
        use OutFormat::{Jpeg as J, Webp as W};
        for (width, fallback, want) in [
            (
                1200,
                J,
                &[
                    (1200, W),
                    (1024, W),
                    (1024, J),
                    (640, W),
                    (640, J),
                    (320, W),
                    (320, J),
                ][..],
            ),
            (640, J, &[(640, W), (320, W), (320, J)]),
            (300, J, &[(300, W)]),
            // A WebP source: its own format is the fallback, the original the full-size candidate.
            (700, W, &[(640, W), (320, W)]),
        ] {
            assert_eq!(s.plan(width, fallback), want, "{width} {fallback:?}");
        }
        let cfg = ImagesConfig {
            enabled: true,
            picture: false,
            widths: vec![500],
            ..Default::default()
        };
        assert_eq!(settings(&cfg).plan(800, J), [(800, W), (500, W)]);
    }

    #[test]
    fn which_images() {
        let cfg = ImagesConfig {
            enabled: true,
            min_bytes: 100,
            exclude: vec!["icons/**".into()],
            ..Default::default()
        };
        let s = settings(&cfg);
        assert_eq!(s.wants("a/b.JPG", 100), Some(OutFormat::Jpeg));
        assert_eq!(s.wants("a/b.gif", 1000), Some(OutFormat::Png));
        assert_eq!(s.wants("a/b.jpg", 99), None);
        assert_eq!(s.wants("icons/b.png", 1000), None);
        assert_eq!(s.wants("a/b.svg", 1000), None);
        let off = ImagesConfig::default();
        assert!(Settings::new(&off).unwrap().is_none());
        let avif = ImagesConfig {
            enabled: true,
            formats: vec![ImageFormat::Avif],
            ..Default::default()
        };
        // Refused without the feature (and the hint checked in `avif_is_offered_first…`).
        assert_eq!(Settings::new(&avif).is_err(), !cfg!(feature = "avif"));
    }
}
