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

impl Decoded {
    /// Its size and layout, with no pixels and no profile.
    pub fn clone_header(&self) -> Decoded {
        Decoded {
            width: self.width,
            height: self.height,
            alpha: self.alpha,
            pixels: Vec::new(),
            icc: None,
        }
    }
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

/// Whether a JPEG has a non-interleaved scan other than a progressive AC one (one component while the
/// frame has several: `cjpeg -scans`, `jpeg-encoder` with optimised tables). zune-jpeg 0.5.15, the
/// `image` crate's decoder, decodes those to wrong colours without an error (zune-image issues 419,
/// 422, 430); they go to `jpeg-decoder`, which decodes them right. `None`: not a JPEG we can read.
pub fn jpeg_non_interleaved(bytes: &[u8]) -> Option<bool> {
    if !bytes.starts_with(&[0xFF, 0xD8]) {
        return None;
    }
    let mut at = 2;
    let mut components = 0u8;
    let mut progressive = false;
    loop {
        // Next marker (fill bytes allowed).
        while *bytes.get(at)? != 0xFF {
            at += 1;
        }
        while *bytes.get(at)? == 0xFF {
            at += 1;
        }
        let marker = *bytes.get(at)?;
        at += 1;
        match marker {
            0xD9 => return Some(false),
            0x01 | 0xD0..=0xD7 => continue,
            _ => {}
        }
        let len = usize::from(u16::from_be_bytes([*bytes.get(at)?, *bytes.get(at + 1)?]));
        let seg = bytes.get(at + 2..at + len)?;
        match marker {
            0xC0..=0xCF if !matches!(marker, 0xC4 | 0xC8 | 0xCC) => {
                components = *seg.get(5)?;
                progressive = matches!(marker, 0xC2 | 0xC6 | 0xCA | 0xCE);
            }
            0xDA => {
                let ns = *seg.first()?;
                let ss = *seg.get(1 + 2 * usize::from(ns))?;
                if ns < components && (!progressive || ss == 0) {
                    return Some(true);
                }
                // Skip the entropy-coded data: up to a marker that is not a stuffed 0 or a restart.
                at += len;
                loop {
                    if *bytes.get(at)? == 0xFF {
                        let next = *bytes.get(at + 1)?;
                        if next != 0 && !(0xD0..=0xD7).contains(&next) {
                            break;
                        }
                    }
                    at += 1;
                }
                continue;
            }
            _ => {}
        }
        at += len;
    }
}

/// A JPEG through `jpeg-decoder` (see [`jpeg_non_interleaved`]): 8-bit grey or RGB, its profile and
/// EXIF orientation.
fn decode_jpeg_decoder(bytes: &[u8]) -> Result<Decoded, SkipReason> {
    let err = |e: jpeg_decoder::Error| SkipReason::Decode(format!("jpeg: {e}"));
    let mut d = jpeg_decoder::Decoder::new(Cursor::new(bytes));
    d.read_info().map_err(err)?;
    let info = d
        .info()
        .ok_or_else(|| SkipReason::Decode("jpeg: no frame".into()))?;
    let (w, h) = (u32::from(info.width), u32::from(info.height));
    if u64::from(w) * u64::from(h) > 100_000_000 {
        return Err(SkipReason::TooLarge(w, h));
    }
    let raw = d.decode().map_err(err)?;
    let icc = d.icc_profile();
    let orientation = d
        .exif_data()
        .and_then(image::metadata::Orientation::from_exif_chunk)
        .unwrap_or(image::metadata::Orientation::NoTransforms);
    let bad = || SkipReason::Decode("jpeg: the pixel data does not match the frame".into());
    let img = match info.pixel_format {
        jpeg_decoder::PixelFormat::RGB24 => {
            DynamicImage::ImageRgb8(image::RgbImage::from_raw(w, h, raw).ok_or_else(bad)?)
        }
        jpeg_decoder::PixelFormat::L8 => {
            DynamicImage::ImageLuma8(image::GrayImage::from_raw(w, h, raw).ok_or_else(bad)?)
        }
        f => {
            return Err(SkipReason::Decode(format!(
                "jpeg: {f:?} pixels in a non-interleaved JPEG are not handled"
            )));
        }
    };
    Ok(oriented(img, orientation, icc))
}

/// Decodes `bytes` and applies the EXIF orientation.
pub fn decode(bytes: &[u8]) -> Result<Decoded, SkipReason> {
    if jpeg_non_interleaved(bytes) == Some(true) {
        return decode_jpeg_decoder(bytes);
    }
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
    let img = DynamicImage::from_decoder(decoder).map_err(err)?;
    Ok(oriented(img, orientation, icc))
}

/// A decoded image turned upright, as 8-bit RGB or RGBA.
fn oriented(
    mut img: DynamicImage,
    orientation: image::metadata::Orientation,
    icc: Option<Vec<u8>>,
) -> Decoded {
    img.apply_orientation(orientation);
    let alpha = img.color().has_alpha();
    let (width, height) = (img.width(), img.height());
    let pixels = if alpha {
        img.into_rgba8().into_raw()
    } else {
        img.into_rgb8().into_raw()
    };
    Decoded {
        width,
        height,
        alpha,
        pixels,
        icc,
    }
}

/// What a source's colour profile means for its variants.
#[derive(Debug)]
pub enum Colour {
    /// No profile, an sRGB one (converting changes no pixel by more than one level), or one that is
    /// not an RGB profile or does not parse (browsers take the pixels as sRGB then): the pixels are
    /// sRGB as they are.
    Srgb,
    /// Another RGB profile (Adobe RGB, Display P3, ProPhoto…): the pixels converted to sRGB.
    Converted(Vec<u8>),
    /// An RGB profile the colour engine cannot convert from: it must travel with the pixels.
    Keep,
}

/// The source's pixels in sRGB (moxcms, a pure-Rust ICC engine; relative colorimetric intent, out of
/// gamut colours clipped), per its profile.
pub fn to_srgb(src: &Decoded) -> Colour {
    let Some(icc) = src.icc.as_deref() else {
        return Colour::Srgb;
    };
    let Ok(profile) = moxcms::ColorProfile::new_from_slice(icc) else {
        return Colour::Srgb;
    };
    if profile.color_space != moxcms::DataColorSpace::Rgb {
        return Colour::Srgb;
    }
    let layout = if src.alpha {
        moxcms::Layout::Rgba
    } else {
        moxcms::Layout::Rgb
    };
    let options = moxcms::TransformOptions {
        rendering_intent: moxcms::RenderingIntent::RelativeColorimetric,
        ..Default::default()
    };
    let Ok(t) =
        profile.create_transform_8bit(layout, &moxcms::ColorProfile::new_srgb(), layout, options)
    else {
        return Colour::Keep;
    };
    // Already sRGB? A grid of 17 levels per channel through the transform.
    let channels = if src.alpha { 4 } else { 3 };
    let mut probe = Vec::with_capacity(17 * 17 * 17 * channels);
    for r in 0..17u32 {
        for g in 0..17u32 {
            for b in 0..17u32 {
                let level = |v: u32| (v * 16).min(255) as u8;
                probe.extend_from_slice(&[level(r), level(g), level(b)]);
                if src.alpha {
                    probe.push(255);
                }
            }
        }
    }
    let mut out = vec![0; probe.len()];
    if t.transform(&probe, &mut out).is_err() {
        return Colour::Keep;
    }
    if probe.iter().zip(&out).all(|(a, b)| a.abs_diff(*b) <= 1) {
        return Colour::Srgb;
    }
    let mut pixels = vec![0; src.pixels.len()];
    match t.transform(&src.pixels, &mut pixels) {
        Ok(()) => Colour::Converted(pixels),
        Err(_) => Colour::Keep,
    }
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
        OutFormat::Avif => encode_avif(pixels, width, height, alpha, quality),
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
        #[cfg(feature = "mozjpeg")]
        OutFormat::Jpeg => encode_mozjpeg(pixels, width, height, alpha, quality, icc),
        #[cfg(not(feature = "mozjpeg"))]
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

/// JPEG through mozjpeg (feature `mozjpeg`): its defaults (progressive scans chosen per image,
/// trellis quantisation, optimised Huffman tables), 4:2:0, the profile when given; alpha dropped.
#[cfg(feature = "mozjpeg")]
fn encode_mozjpeg(
    pixels: &[u8],
    width: u32,
    height: u32,
    alpha: bool,
    quality: u8,
    icc: Option<&[u8]>,
) -> Result<Vec<u8>, String> {
    // mozjpeg reports libjpeg's fatal errors by unwinding.
    std::panic::catch_unwind(|| -> std::io::Result<Vec<u8>> {
        let mut c = mozjpeg::Compress::new(mozjpeg::ColorSpace::JCS_RGB);
        c.set_size(width as usize, height as usize);
        c.set_quality(f32::from(quality));
        c.set_chroma_sampling_pixel_sizes((2, 2), (2, 2));
        let mut c = c.start_compress(Vec::new())?;
        if let Some(p) = icc {
            c.write_icc_profile(p);
        }
        if alpha {
            let rgb: Vec<u8> = pixels
                .chunks_exact(4)
                .flat_map(|p| [p[0], p[1], p[2]])
                .collect();
            c.write_scanlines(&rgb)?;
        } else {
            c.write_scanlines(pixels)?;
        }
        c.finish()
    })
    .map_err(|_| "jpeg: mozjpeg failed".to_string())?
    .map_err(|e| format!("jpeg: {e}"))
}

/// AVIF through rav1e (ravif): 8-bit 4:4:4 YCbCr, encoder speed 6 (of 1–10; measured against sharp in
/// BENCHMARKS.md: 7 needs more bytes than libaom for the same SSIM, 4 is half sharp's speed), alpha
/// kept. `quality` is ravif's scale (cavif's `--quality`).
#[cfg(feature = "avif")]
fn encode_avif(
    pixels: &[u8],
    width: u32,
    height: u32,
    alpha: bool,
    quality: u8,
) -> Result<Vec<u8>, String> {
    use rgb::FromSlice;
    let (w, h) = (width as usize, height as usize);
    let enc = ravif::Encoder::new()
        .with_quality(f32::from(quality))
        .with_alpha_quality(f32::from(quality))
        .with_speed(6)
        .with_alpha_color_mode(ravif::AlphaColorMode::UnassociatedClean);
    let out = if alpha {
        enc.encode_rgba(imgref::Img::new(pixels.as_rgba(), w, h))
    } else {
        enc.encode_rgb(imgref::Img::new(pixels.as_rgb(), w, h))
    };
    out.map(|e| e.avif_file).map_err(|e| format!("avif: {e}"))
}

#[cfg(not(feature = "avif"))]
fn encode_avif(_: &[u8], _: u32, _: u32, _: bool, _: u8) -> Result<Vec<u8>, String> {
    Err("avif: this staleguard was built without the `avif` feature".into())
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
                OutFormat::Avif => unreachable!("not in the list"),
            };
            assert_eq!(image::guess_format(&bytes).unwrap(), want);
        }
    }

    #[cfg(feature = "avif")]
    #[test]
    fn avif_variants_are_avif_files_of_their_size() {
        let src = gradient(200, 100);
        let px = resize(&src, 64).unwrap();
        let bytes = encode(&px, 64, 32, false, OutFormat::Avif, 60, None).unwrap();
        // An ISO-BMFF file of brand `avif` whose image spatial extent (`ispe`) is 64x32.
        assert_eq!(&bytes[4..12], b"ftypavif");
        let at = bytes.windows(4).position(|w| w == b"ispe").unwrap();
        let dim = |o: usize| u32::from_be_bytes(bytes[at + o..at + o + 4].try_into().unwrap());
        assert_eq!((dim(8), dim(12)), (64, 32));
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

    /// Mean absolute difference per byte.
    fn mean_diff(a: &[u8], b: &[u8]) -> f64 {
        assert_eq!(a.len(), b.len());
        let sum: u64 = a
            .iter()
            .zip(b)
            .map(|(x, y)| u64::from(x.abs_diff(*y)))
            .sum();
        sum as f64 / a.len() as f64
    }

    #[test]
    fn our_own_jpegs_are_non_interleaved_and_decode_to_their_pixels() {
        // jpeg-encoder with optimised tables writes one scan per component, 4:2:0: what zune-jpeg
        // 0.5.15 decodes to wrong colours (on this photo: green bands). Decoded here, they come back
        // as they went in.
        let photo = include_bytes!("../../../staleguard/tests/it/fixtures/photos/licorice.jpg");
        let src = decode(photo).unwrap();
        let px = resize(&src, 640).unwrap();
        // What the default encoder writes (`encode` without the `mozjpeg` feature).
        let mut jpeg = Vec::new();
        let mut enc = jpeg_encoder::Encoder::new(&mut jpeg, 80);
        enc.set_optimized_huffman_tables(true);
        enc.encode(&px, 640, 427, jpeg_encoder::ColorType::Rgb)
            .unwrap();
        assert_eq!(jpeg_non_interleaved(&jpeg), Some(true));
        let back = decode(&jpeg).unwrap();
        assert_eq!((back.width, back.height), (640, 427));
        let d = mean_diff(&back.pixels, &px);
        assert!(d < 8.0, "{d:.2} levels off");
        // An interleaved one is not.
        let mut interleaved = Vec::new();
        let mut enc = jpeg_encoder::Encoder::new(&mut interleaved, 90);
        enc.set_optimized_huffman_tables(false);
        enc.encode(&px, 640, 427, jpeg_encoder::ColorType::Rgb)
            .unwrap();
        assert_eq!(jpeg_non_interleaved(&interleaved), Some(false));
        assert!(mean_diff(&decode(&interleaved).unwrap().pixels, &px) < 8.0);
        // Cut before its first scan, or not a JPEG: no answer, no panic.
        assert_eq!(jpeg_non_interleaved(&jpeg[..40]), None);
        assert_eq!(jpeg_non_interleaved(b"\xff\xd8\xff"), None);
        assert_eq!(jpeg_non_interleaved(b"GIF89a"), None);
    }

    #[test]
    fn an_srgb_profile_changes_nothing_and_another_rgb_one_is_converted() {
        let mut src = gradient(64, 32);
        src.icc = Some(moxcms::ColorProfile::new_srgb().encode().unwrap());
        assert!(matches!(to_srgb(&src), Colour::Srgb));
        src.icc = Some(b"not a profile".to_vec());
        assert!(matches!(to_srgb(&src), Colour::Srgb));
        src.icc = Some(moxcms::ColorProfile::new_adobe_rgb().encode().unwrap());
        let Colour::Converted(px) = to_srgb(&src) else {
            panic!("an Adobe RGB source is not converted")
        };
        // Saturation grows out of Adobe RGB into sRGB: the red ramp's red rises, its green falls.
        let (r0, g0) = (src.pixels[3 * 60], src.pixels[3 * 60 + 1]);
        let (r1, g1) = (px[3 * 60], px[3 * 60 + 1]);
        assert!(r1 > r0 && g1 <= g0, "({r0}, {g0}) became ({r1}, {g1})");
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
