//! Lossless optimisation of source originals (`[build.images]`): a PNG original re-encoded by oxipng
//! (re-filtered, recompressed with libdeflate, bit depth, colour type and palette reduced where that is
//! exact) replaces the original's bytes only when it saves at least [`MIN_SAVING_PERCENT`] % and
//! decodes to exactly the same pixels (checked here, not assumed).
//!
//! Metadata: with `strip-metadata` the chunks that change how the image is shown stay (`iCCP`, `sRGB`,
//! `cICP`, `gAMA`, `cHRM`, `sBIT`, `pHYs`; oxipng may write an sRGB-equivalent `iCCP` as the `sRGB`
//! chunk with the same rendering intent), and `eXIf` stays when it carries an orientation, since
//! browsers rotate by it; text, time and other chunks go. Without it every chunk stays. Animated PNGs
//! (`acTL`) and anything that does not parse are left as they are: the result is `None`, never an
//! error.
//!
//! A baseline JPEG original is re-coded with optimal Huffman tables ([`super::jpeg_huffman`]: the DCT
//! coefficients untouched, as `jpegtran -optimize`), kept under the same rule, its pixels compared as
//! jpeg-decoder decodes both. Its segments (EXIF, ICC profile, trailers) stay as they are, whatever
//! `strip-metadata` says: only its entropy coding changes.

use std::io::Cursor;

use image::{ImageDecoder, ImageReader};

/// The smallest saving, in per cent of the original's size, worth replacing an original for.
pub const MIN_SAVING_PERCENT: u64 = 5;

const PNG_SIGNATURE: &[u8] = b"\x89PNG\r\n\x1a\n";

/// Chunks kept when stripping: those that change the displayed image.
const DISPLAY_CHUNKS: [&[u8; 4]; 7] = [
    b"iCCP", b"sRGB", b"cICP", b"gAMA", b"cHRM", b"sBIT", b"pHYs",
];

/// What an optimisation's output depends on besides the original's bytes (part of its blob name).
pub fn settings_key(strip_metadata: bool) -> String {
    let key = serde_json::json!({ "v": 2, "oxipng": "10", "preset": 2, "strip": strip_metadata, "jpeg": 1 });
    blake3::hash(key.to_string().as_bytes()).to_hex()[..16].to_string()
}

/// Whether a source file is of a format this module optimises (by its name; [`original`] checks the
/// bytes).
pub fn handles(logical: &str) -> bool {
    logical.rsplit_once('.').is_some_and(|(_, ext)| {
        ["png", "jpg", "jpeg"]
            .iter()
            .any(|e| ext.eq_ignore_ascii_case(e))
    })
}

/// The blob name of a source's optimisation: its content hash and the settings key.
pub fn blob_name(raw_hash: &str, strip_metadata: bool) -> String {
    format!("{raw_hash}.o{}", settings_key(strip_metadata))
}

/// Whether `after` bytes are worth replacing `before` bytes for (at least 5 % smaller).
pub fn worth(before: usize, after: usize) -> bool {
    (after as u64) * 100 <= (before as u64) * (100 - MIN_SAVING_PERCENT)
}

/// The optimised bytes of a PNG original, when they save at least 5 % and show the same image; `None`
/// for anything else (another format, an animated or corrupt PNG, too small a saving).
pub fn original(bytes: &[u8], strip_metadata: bool) -> Option<Vec<u8>> {
    if bytes.starts_with(&[0xFF, 0xD8, 0xFF]) {
        let out = super::jpeg_huffman::optimize(bytes)?;
        return (worth(bytes.len(), out.len()) && same_jpeg_pixels(bytes, &out)).then_some(out);
    }
    if !bytes.starts_with(PNG_SIGNATURE) {
        return None;
    }
    let chunks = chunk_names(bytes)?;
    if chunks.iter().any(|c| c == b"acTL") {
        return None;
    }
    let mut opts = oxipng::Options::from_preset(2);
    opts.strip = if strip_metadata {
        let mut keep: oxipng::IndexSet<[u8; 4]> = DISPLAY_CHUNKS.iter().map(|c| **c).collect();
        if chunks.iter().any(|c| c == b"eXIf") && has_orientation(bytes) {
            keep.insert(*b"eXIf");
        }
        oxipng::StripChunks::Keep(keep)
    } else {
        oxipng::StripChunks::None
    };
    let out = oxipng::optimize_from_memory(bytes, &opts).ok()?;
    (worth(bytes.len(), out.len()) && same_pixels(bytes, &out)).then_some(out)
}

/// The chunk names of a PNG, in order; `None` when its chunk structure is broken.
fn chunk_names(bytes: &[u8]) -> Option<Vec<[u8; 4]>> {
    let mut at = PNG_SIGNATURE.len();
    let mut names = Vec::new();
    while at < bytes.len() {
        let len = u32::from_be_bytes(bytes.get(at..at + 4)?.try_into().ok()?) as usize;
        let name: [u8; 4] = bytes.get(at + 4..at + 8)?.try_into().ok()?;
        at = at.checked_add(12)?.checked_add(len)?;
        if at > bytes.len() {
            return None;
        }
        names.push(name);
        if &name == b"IEND" {
            break;
        }
    }
    Some(names)
}

/// The PNG's EXIF says to rotate or flip it.
fn has_orientation(bytes: &[u8]) -> bool {
    let Ok(reader) = ImageReader::new(Cursor::new(bytes)).with_guessed_format() else {
        return false;
    };
    let Ok(mut decoder) = reader.into_decoder() else {
        return false;
    };
    decoder
        .orientation()
        .is_ok_and(|o| o != image::metadata::Orientation::NoTransforms)
}

/// Both decode to the same pixels (compared at 16 bits per channel, RGBA, which holds any PNG exactly).
/// Two JPEGs decode to the same samples (jpeg-decoder: the same decoder for both, so the same
/// coefficients give the same bytes).
fn same_jpeg_pixels(a: &[u8], b: &[u8]) -> bool {
    let decode = |bytes: &[u8]| {
        let mut d = jpeg_decoder::Decoder::new(Cursor::new(bytes));
        d.decode()
            .ok()
            .map(|px| (px, d.info().map(|i| (i.width, i.height))))
    };
    match (decode(a), decode(b)) {
        (Some(a), Some(b)) => a == b,
        _ => false,
    }
}

fn same_pixels(a: &[u8], b: &[u8]) -> bool {
    let decode = |bytes: &[u8]| {
        image::load_from_memory_with_format(bytes, image::ImageFormat::Png)
            .ok()
            .map(|i| i.to_rgba16())
    };
    match (decode(a), decode(b)) {
        (Some(a), Some(b)) => a.dimensions() == b.dimensions() && a.as_raw() == b.as_raw(),
        _ => false,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A 96×64 gradient written quickly (no filter, fast deflate): plenty for oxipng to save.
    fn quick_png(chunks: &[(&[u8; 4], &[u8])]) -> Vec<u8> {
        use image::ImageEncoder;
        use image::codecs::png::{CompressionType, FilterType, PngEncoder};
        let (w, h) = (96u32, 64u32);
        let mut px = Vec::new();
        for y in 0..h {
            for x in 0..w {
                px.extend_from_slice(&[(x * 2) as u8, (y * 3) as u8, ((x + y) / 2) as u8]);
            }
        }
        let mut out = Vec::new();
        PngEncoder::new_with_quality(&mut out, CompressionType::Fast, FilterType::NoFilter)
            .write_image(&px, w, h, image::ExtendedColorType::Rgb8)
            .unwrap();
        // Insert the extra chunks right after IHDR (8 + 25 bytes).
        let mut with = out[..33].to_vec();
        for (name, data) in chunks {
            with.extend_from_slice(&(data.len() as u32).to_be_bytes());
            let mut crc = flate2::Crc::new();
            crc.update(&name[..]);
            crc.update(data);
            with.extend_from_slice(&name[..]);
            with.extend_from_slice(data);
            with.extend_from_slice(&crc.sum().to_be_bytes());
        }
        with.extend_from_slice(&out[33..]);
        with
    }

    fn names(png: &[u8]) -> Vec<String> {
        chunk_names(png)
            .unwrap()
            .iter()
            .map(|n| String::from_utf8_lossy(n).into_owned())
            .filter(|n| n != "IDAT")
            .collect()
    }

    #[test]
    fn smaller_same_pixels_and_deterministic() {
        let src = quick_png(&[]);
        let a = original(&src, true).expect("worth optimising");
        assert!(worth(src.len(), a.len()), "{} → {}", src.len(), a.len());
        assert!(same_pixels(&src, &a));
        assert_eq!(original(&src, true).unwrap(), a, "same input, same bytes");
        // An optimised PNG has nothing left to save: left as it is.
        assert_eq!(original(&a, true), None);
    }

    #[test]
    fn the_five_per_cent_rule() {
        for (before, after, want) in [
            (100, 95, true),
            (100, 96, false),
            (1000, 950, true),
            (1000, 951, false),
            (0, 0, true),
            (10, 11, false),
        ] {
            assert_eq!(worth(before, after), want, "{before} → {after}");
        }
    }

    #[test]
    fn metadata_policy() {
        let text: (&[u8; 4], &[u8]) = (b"tEXt", b"Comment\0made by hand");
        let gamma: (&[u8; 4], &[u8]) = (b"gAMA", &45455u32.to_be_bytes());
        // EXIF (big-endian TIFF) with orientation 6, and one with orientation 1.
        let mut rotated = b"MM\0\x2a\0\0\0\x08\0\x01".to_vec();
        rotated.extend_from_slice(&[0x01, 0x12, 0, 3, 0, 0, 0, 1, 0, 6, 0, 0, 0, 0, 0, 0]);
        let mut upright = rotated.clone();
        upright[19] = 1;
        for (chunks, strip, want) in [
            (vec![text, gamma], true, vec!["IHDR", "gAMA", "IEND"]),
            (
                vec![text, gamma],
                false,
                vec!["IHDR", "gAMA", "tEXt", "IEND"],
            ),
            (
                vec![(b"eXIf", &rotated[..])],
                true,
                vec!["IHDR", "eXIf", "IEND"],
            ),
            (vec![(b"eXIf", &upright[..])], true, vec!["IHDR", "IEND"]),
        ] {
            let src = quick_png(&chunks);
            let out = original(&src, strip).expect("worth optimising");
            let mut got = names(&out);
            got.sort_by_key(|n| (n != "IHDR", n == "IEND", n.clone()));
            assert_eq!(got, want, "{:?} strip {strip}", names(&src));
            assert!(same_pixels(&src, &out));
        }
    }

    #[test]
    fn the_colour_profile_stays() {
        // A (non-sRGB) ICC profile written by the encoder: kept, byte for byte after decoding.
        use image::ImageEncoder;
        use image::codecs::png::{CompressionType, FilterType, PngEncoder};
        let icc: Vec<u8> = (0..600u32).map(|i| (i * 7 % 251) as u8).collect();
        let px: Vec<u8> = (0..64 * 64 * 3).map(|i| (i % 7) as u8 * 30).collect();
        let mut src = Vec::new();
        let mut enc =
            PngEncoder::new_with_quality(&mut src, CompressionType::Fast, FilterType::NoFilter);
        enc.set_icc_profile(icc.clone()).unwrap();
        enc.write_image(&px, 64, 64, image::ExtendedColorType::Rgb8)
            .unwrap();
        let out = original(&src, true).expect("worth optimising");
        let mut d = ImageReader::new(Cursor::new(&out))
            .with_guessed_format()
            .unwrap()
            .into_decoder()
            .unwrap();
        assert_eq!(d.icc_profile().unwrap(), Some(icc));
    }

    #[test]
    fn a_jpeg_with_the_example_tables_is_recoded_with_the_same_pixels() {
        // A photo as a camera writes it: the example Huffman tables of T.81 Annex K, quality 95.
        let photo = include_bytes!("../../../staleguard/tests/it/fixtures/photos/licorice.jpg");
        let d = super::super::codec::decode(photo).unwrap();
        let mut camera = Vec::new();
        jpeg_encoder::Encoder::new(&mut camera, 95)
            .encode(
                &d.pixels,
                d.width as u16,
                d.height as u16,
                jpeg_encoder::ColorType::Rgb,
            )
            .unwrap();
        let out = original(&camera, true).expect("no saving on a camera-style JPEG");
        assert!(worth(camera.len(), out.len()));
        assert!(same_jpeg_pixels(&camera, &out));
        // An already optimised one (ImageMagick's) saves next to nothing: left alone.
        assert!(original(photo, true).is_none());
    }

    #[test]
    fn left_alone_never_a_panic() {
        let src = quick_png(&[]);
        let mut actl = quick_png(&[(b"acTL", &[0, 0, 0, 1, 0, 0, 0, 0])]);
        assert_eq!(original(&actl, true), None, "animated");
        actl.truncate(actl.len() / 2);
        for bad in [
            &b"not an image"[..],
            &src[..40],
            &src[..src.len() - 20],
            &actl,
            PNG_SIGNATURE,
            &[0xff, 0xd8, 0xff, 0xe0, 0, 0x10][..],
        ] {
            assert_eq!(original(bad, true), None);
        }
        let mut flipped = src.clone();
        let mid = flipped.len() / 2;
        flipped[mid] ^= 0x55;
        assert_eq!(original(&flipped, true), None, "a corrupt IDAT");
    }
}
