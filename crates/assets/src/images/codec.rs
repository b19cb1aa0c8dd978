//! Pixels: decode a JPEG, PNG, WebP or static GIF (EXIF orientation applied), resize with Lanczos3
//! (`fast_image_resize`, SIMD), encode lossy WebP (libwebp), JPEG (`jpeg-encoder`, optimised Huffman
//! tables, 4:2:0 averaged chroma, as libjpeg-turbo) or PNG (`png`, adaptive filters). Encoders write no
//! metadata: only the colour profile is carried over, and only when asked.

use std::io::Cursor;

use fast_image_resize::images::{Image, ImageRef};
use fast_image_resize::{FilterType, PixelType, ResizeAlg, ResizeOptions, Resizer};
use image::{DynamicImage, ImageDecoder, ImageReader};

use super::OutFormat;

/// A decoded source image, oriented, 8 bits per channel.
pub struct Decoded {
    pub width: u32,
    pub height: u32,
    /// RGBA when the source has alpha, else RGB.
    pub alpha: bool,
    pub pixels: Vec<u8>,
    /// The source's ICC profile, if any.
    pub icc: Option<Vec<u8>>,
}

/// Why an image is left alone.
#[derive(Debug, thiserror::Error)]
pub enum SkipReason {
    #[error("cannot decode: {0}")]
    Decode(String),
    #[error("animated images are left as they are")]
    Animated,
    #[error("{0}x{1} pixels is over the 100-megapixel limit")]
    TooLarge(u32, u32),
}

/// Decodes `bytes` and applies the EXIF orientation.
pub fn decode(bytes: &[u8]) -> Result<Decoded, SkipReason> {
    let err = |e: image::ImageError| SkipReason::Decode(e.to_string());
    let reader = ImageReader::new(Cursor::new(bytes))
        .with_guessed_format()
        .map_err(|e| SkipReason::Decode(e.to_string()))?;
    match reader.format() {
        Some(image::ImageFormat::Gif) => {
            use image::AnimationDecoder;
            let frames = image::codecs::gif::GifDecoder::new(Cursor::new(bytes))
                .map_err(err)?
                .into_frames()
                .take(2)
                .count();
            if frames > 1 {
                return Err(SkipReason::Animated);
            }
        }
        Some(image::ImageFormat::WebP) => {
            let d = image::codecs::webp::WebPDecoder::new(Cursor::new(bytes)).map_err(err)?;
            if d.has_animation() {
                return Err(SkipReason::Animated);
            }
        }
        _ => {}
    }
    let mut decoder = reader.into_decoder().map_err(err)?;
    let (w, h) = decoder.dimensions();
    if u64::from(w) * u64::from(h) > 100_000_000 {
        return Err(SkipReason::TooLarge(w, h));
    }
    let orientation = decoder.orientation().map_err(err)?;
    let icc = decoder.icc_profile().ok().flatten();
    let mut img = DynamicImage::from_decoder(decoder).map_err(err)?;
    img.apply_orientation(orientation);
    let alpha = img.color().has_alpha();
    let (width, height) = (img.width(), img.height());
    let pixels = if alpha {
        img.into_rgba8().into_raw()
    } else {
        img.into_rgb8().into_raw()
    };
    Ok(Decoded {
        width,
        height,
        alpha,
        pixels,
        icc,
    })
}

/// The height of a variant `width` pixels wide (aspect kept, at least 1).
pub fn scaled_height(src_w: u32, src_h: u32, width: u32) -> u32 {
    ((u64::from(src_h) * u64::from(width) + u64::from(src_w) / 2) / u64::from(src_w)).max(1) as u32
}

/// Resizes to `width` (Lanczos3, alpha premultiplied while filtering); the source itself at its width.
pub fn resize(src: &Decoded, width: u32) -> Result<Vec<u8>, String> {
    if width == src.width {
        return Ok(src.pixels.clone());
    }
    let pt = if src.alpha {
        PixelType::U8x4
    } else {
        PixelType::U8x3
    };
    let height = scaled_height(src.width, src.height, width);
    let from = ImageRef::new(src.width, src.height, &src.pixels, pt).map_err(|e| e.to_string())?;
    let mut to = Image::new(width, height, pt);
    Resizer::new()
        .resize(
            &from,
            &mut to,
            &ResizeOptions::new().resize_alg(ResizeAlg::Convolution(FilterType::Lanczos3)),
        )
        .map_err(|e| e.to_string())?;
    Ok(to.into_vec())
}

/// Encodes pixels of `width`×`height` (RGBA when `alpha`) as `format` at `quality` (lossy formats).
pub fn encode(
    pixels: &[u8],
    width: u32,
    height: u32,
    alpha: bool,
    format: OutFormat,
    quality: u8,
    icc: Option<&[u8]>,
) -> Result<Vec<u8>, String> {
    match format {
        OutFormat::Webp => {
            let enc = if alpha {
                webp::Encoder::from_rgba(pixels, width, height)
            } else {
                webp::Encoder::from_rgb(pixels, width, height)
            };
            let mem = enc
                .encode_simple(false, f32::from(quality))
                .map_err(|e| format!("webp: {e:?}"))?;
            Ok(mem.to_vec())
        }
        OutFormat::Jpeg => {
            let (w, h) = (
                u16::try_from(width).map_err(|_| "jpeg: wider than 65535 pixels")?,
                u16::try_from(height).map_err(|_| "jpeg: taller than 65535 pixels")?,
            );
            let mut out = Vec::with_capacity(pixels.len() / 8);
            let mut enc = jpeg_encoder::Encoder::new(&mut out, quality);
            enc.set_optimized_huffman_tables(true);
            enc.set_chroma_subsampling_method(jpeg_encoder::ChromaSubsamplingMethod::Average);
            if let Some(p) = icc {
                enc.add_icc_profile(p).map_err(|e| format!("jpeg: {e}"))?;
            }
            let ct = if alpha {
                jpeg_encoder::ColorType::Rgba
            } else {
                jpeg_encoder::ColorType::Rgb
            };
            enc.encode(pixels, w, h, ct)
                .map_err(|e| format!("jpeg: {e}"))?;
            Ok(out)
        }
        OutFormat::Png => {
            use image::ImageEncoder;
            use image::codecs::png::{CompressionType, FilterType, PngEncoder};
            let mut out = Vec::new();
            // A quick first encoding: oxipng re-filters and re-compresses it (below).
            let mut enc =
                PngEncoder::new_with_quality(&mut out, CompressionType::Fast, FilterType::NoFilter);
            if let Some(p) = icc {
                // A profile the encoder refuses is dropped, not fatal.
                let _ = enc.set_icc_profile(p.to_vec());
            }
            let ct = if alpha {
                image::ExtendedColorType::Rgba8
            } else {
                image::ExtendedColorType::Rgb8
            };
            enc.write_image(pixels, width, height, ct)
                .map_err(|e| format!("png: {e}"))?;
            optimize_png(&out)
        }
    }
}

/// A PNG re-encoded losslessly at its smallest: oxipng's preset 2 (the reductions it proves lossless:
/// bit depth, palette, colour type; every filter strategy tried; libdeflate at its highest level).
/// Every chunk but the image's own is kept (the caller wrote no metadata but the colour profile).
pub fn optimize_png(png: &[u8]) -> Result<Vec<u8>, String> {
    let opts = oxipng::Options::from_preset(2);
    oxipng::optimize_from_memory(png, &opts).map_err(|e| format!("png: {e}"))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn gradient(w: u32, h: u32) -> Decoded {
        let mut pixels = Vec::with_capacity((w * h * 3) as usize);
        for y in 0..h {
            for x in 0..w {
                pixels.extend_from_slice(&[(x * 255 / w) as u8, (y * 255 / h) as u8, 128]);
            }
        }
        Decoded {
            width: w,
            height: h,
            alpha: false,
            pixels,
            icc: None,
        }
    }

    #[test]
    fn heights_keep_the_aspect() {
        for (w, h, to, want) in [
            (1600, 1200, 640, 480),
            (1600, 900, 320, 180),
            (1000, 1, 16, 1),
            (3, 1000, 1, 333),
        ] {
            assert_eq!(scaled_height(w, h, to), want, "{w}x{h} → {to}");
        }
    }

    #[test]
    fn every_format_round_trips_at_its_size() {
        let src = gradient(200, 100);
        let px = resize(&src, 64).unwrap();
        assert_eq!(px.len(), 64 * 32 * 3);
        for f in [OutFormat::Webp, OutFormat::Jpeg, OutFormat::Png] {
            let bytes = encode(&px, 64, 32, false, f, 80, None).unwrap();
            let back = decode(&bytes).unwrap();
            assert_eq!((back.width, back.height), (64, 32), "{f:?}");
            let want = match f {
                OutFormat::Webp => image::ImageFormat::WebP,
                OutFormat::Jpeg => image::ImageFormat::Jpeg,
                OutFormat::Png => image::ImageFormat::Png,
            };
            assert_eq!(image::guess_format(&bytes).unwrap(), want);
        }
    }

    #[test]
    fn exif_orientation_is_applied() {
        // A 4x2 JPEG whose EXIF says "rotate 90° clockwise" (orientation 6) decodes as 2x4.
        let px = gradient(4, 2).pixels;
        let jpeg = encode(&px, 4, 2, false, OutFormat::Jpeg, 90, None).unwrap();
        let mut exif = b"Exif\0\0MM\0\x2a\0\0\0\x08\0\x01".to_vec();
        exif.extend_from_slice(&[0x01, 0x12, 0, 3, 0, 0, 0, 1, 0, 6, 0, 0, 0, 0, 0, 0]);
        let mut with = jpeg[..2].to_vec();
        with.extend_from_slice(&[0xff, 0xe1]);
        with.extend_from_slice(&((exif.len() + 2) as u16).to_be_bytes());
        with.extend_from_slice(&exif);
        with.extend_from_slice(&jpeg[2..]);
        let d = decode(&with).unwrap();
        assert_eq!((d.width, d.height), (2, 4));
    }

    #[test]
    fn png_variants_are_lossless_and_no_larger_than_the_png_encoders_best() {
        // Noise in a few colours over a gradient: something to filter and to reduce.
        let mut src = gradient(300, 200);
        for (i, p) in src.pixels.chunks_mut(3).enumerate() {
            if i % 7 == 0 {
                p[2] = (i % 251) as u8;
            }
        }
        for alpha in [false, true] {
            let px: Vec<u8> = if alpha {
                src.pixels
                    .chunks(3)
                    .enumerate()
                    .flat_map(|(i, p)| [p[0], p[1], p[2], (i % 256) as u8])
                    .collect()
            } else {
                src.pixels.clone()
            };
            let ours = encode(&px, 300, 200, alpha, OutFormat::Png, 80, None).unwrap();
            let back = image::load_from_memory(&ours).unwrap();
            let same = if alpha {
                back.to_rgba8().into_raw()
            } else {
                back.to_rgb8().into_raw()
            };
            assert!(same == px, "alpha {alpha}: the pixels changed");
            let mut best = Vec::new();
            image::ImageEncoder::write_image(
                image::codecs::png::PngEncoder::new_with_quality(
                    &mut best,
                    image::codecs::png::CompressionType::Best,
                    image::codecs::png::FilterType::Adaptive,
                ),
                &px,
                300,
                200,
                if alpha {
                    image::ExtendedColorType::Rgba8
                } else {
                    image::ExtendedColorType::Rgb8
                },
            )
            .unwrap();
            assert!(
                ours.len() <= best.len(),
                "alpha {alpha}: {} > {} bytes",
                ours.len(),
                best.len()
            );
        }
        assert!(optimize_png(b"not a png").is_err());
    }

    #[test]
    fn garbage_is_a_reason_not_a_panic() {
        assert!(matches!(
            decode(b"not an image"),
            Err(SkipReason::Decode(_))
        ));
        assert!(decode(&[0xff, 0xd8, 0xff, 0xe0, 0, 0x10]).is_err());
    }
}
