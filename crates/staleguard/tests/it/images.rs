//! Responsive images (`[build.images]`) on a real photo corpus (`fixtures/photos/`, from Debian's
//! `gnome-backgrounds`; `regenerate.sh` there): every variant decodes at its declared size and format and
//! is never wider than its source; the page loads in headless Chromium from `staleguard serve` with no
//! 404 and the browser picks the variant its viewport calls for; rebuilds redo only changed images.

use std::collections::BTreeMap;
use std::path::Path;
use std::process::{Child, Command};
use std::time::Duration;

use serde_json::Value;

use crate::support::*;

const PHOTOS: [&str; 5] = [
    "wood.jpg",
    "licorice.jpg",
    "adwaita.webp",
    "truchet.png",
    "portrait.jpg",
];

const CONFIG: &str =
    "[build.images]\nenabled = true\nwidths = [320, 640, 1024]\nmin-bytes = 1000\n";

/// The page: the first image eager (above the fold), the rest lazy; an inline script writes what each
/// `<img>` shows (`currentSrc`, natural size) into the DOM once everything in view has loaded.
const PAGE: &str = r#"<!doctype html>
<html><head><meta charset="utf-8"><title>photos</title>
<style>body{margin:0} img{display:block;width:100%;height:auto}</style></head>
<body>
<img src="img/wood.jpg" alt="wood">
<pre id="out"></pre>
<img src="img/licorice.jpg" alt="licorice">
<img src="img/adwaita.webp" alt="adwaita" style="border:0">
<img src="img/truchet.png" alt="truchet">
<img src="img/portrait.jpg" alt="portrait">
<script>
addEventListener('load', () => {
  const seen = [...document.images].map(i => ({src: i.currentSrc, w: i.naturalWidth, h: i.naturalHeight}));
  document.getElementById('out').textContent = 'SEEN' + JSON.stringify(seen) + 'END';
});
</script>
</body></html>
"#;

fn photos() -> std::path::PathBuf {
    repo().join("crates/staleguard/tests/it/fixtures/photos")
}

/// A site of one page showing one photo of the corpus, `img/NAME`, with [`CONFIG`].
fn one_photo_site(name: &str) -> tempfile::TempDir {
    let t = tempfile::tempdir().unwrap();
    std::fs::create_dir_all(t.path().join("src/img")).unwrap();
    std::fs::copy(photos().join(name), t.path().join("src/img").join(name)).unwrap();
    write_files(
        t.path(),
        &[
            (
                "src/index.html",
                &format!("<img src=\"img/{name}\" alt=\"\">"),
            ),
            ("staleguard.toml", CONFIG),
        ],
    );
    t
}

fn site() -> tempfile::TempDir {
    let t = tempfile::tempdir().unwrap();
    let img = t.path().join("src/img");
    std::fs::create_dir_all(&img).unwrap();
    let photos = photos();
    for p in PHOTOS {
        std::fs::copy(photos.join(p), img.join(p)).unwrap();
    }
    write_files(
        t.path(),
        &[("src/index.html", PAGE), ("staleguard.toml", CONFIG)],
    );
    t
}

fn variants(m: &Value, logical: &str) -> Vec<Value> {
    m["images"][logical]
        .as_array()
        .unwrap_or_else(|| panic!("no variants of `{logical}` in the manifest"))
        .clone()
}

#[test]
fn every_variant_decodes_at_its_declared_size_and_format_never_wider_than_its_source() {
    let t = site();
    let report = build(t.path(), "src", "out", &[]);
    assert_eq!(report["images"], 5, "{report:#}");
    assert_eq!(report["images_processed"], 5);
    let out = t.path().join("out");
    let m = manifest(&out);
    // (source width, height) once oriented: the portrait is stored 1200x800, EXIF orientation 6.
    let sources: BTreeMap<&str, (u32, u32)> = [
        ("wood.jpg", (1600, 1000)),
        ("licorice.jpg", (1440, 960)),
        ("adwaita.webp", (1280, 720)),
        ("truchet.png", (720, 480)),
        ("portrait.jpg", (800, 1200)),
    ]
    .into();
    let mut total = 0;
    for (name, (sw, sh)) in &sources {
        let logical = format!("img/{name}");
        let vs = variants(&m, &logical);
        assert!(!vs.is_empty(), "{logical}");
        let mut formats: Vec<String> = Vec::new();
        for v in &vs {
            total += 1;
            let path = v["path"].as_str().unwrap();
            let (w, h) = (
                v["width"].as_u64().unwrap() as u32,
                v["height"].as_u64().unwrap() as u32,
            );
            let format = v["format"].as_str().unwrap();
            assert!(w <= *sw, "{path} is {w} wide, its source {sw}");
            assert!(
                (i64::from(h) - i64::from(*sh) * i64::from(w) / i64::from(*sw)).abs() <= 1,
                "{path}: {w}x{h} has not the aspect of {sw}x{sh}"
            );
            let bytes = std::fs::read(out.join(path)).unwrap();
            assert_eq!(bytes.len() as u64, v["bytes"].as_u64().unwrap(), "{path}");
            let want = match format {
                "webp" => image::ImageFormat::WebP,
                "jpeg" => image::ImageFormat::Jpeg,
                "png" => image::ImageFormat::Png,
                f => panic!("{path}: format {f}"),
            };
            assert_eq!(image::guess_format(&bytes).unwrap(), want, "{path}");
            let img = image::load_from_memory_with_format(&bytes, want)
                .unwrap_or_else(|e| panic!("{path} does not decode: {e}"));
            assert_eq!((img.width(), img.height()), (w, h), "{path}");
            // And it shows its source: thumbnails of both within a few levels (the build's decoder:
            // see `shown`).
            let d = thumb_diff(
                &shown(&bytes),
                &shown(&std::fs::read(t.path().join("src").join(&logical)).unwrap()),
            );
            assert!(d < 4.0, "{path} is {d:.2} levels from its source");
            // Named by its own content: `wood.640.<hash>.webp`.
            let hash = blake3::hash(&bytes).to_hex().to_string();
            assert!(
                path.contains(&hash[..12]),
                "{path} is not named by its hash"
            );
            assert_eq!(m["files"][path_logical(&logical, w, format)]["path"], path);
            formats.push(format.to_string());
        }
        assert!(
            formats.iter().any(|f| f == "webp"),
            "{logical}: {formats:?}"
        );
        // The original keeps its name in Django's manifest.
        let django: Value = serde_json::from_str(&read(&out, "staticfiles.json")).unwrap();
        assert_eq!(django["paths"][&logical], m["files"][&logical]["path"]);
    }
    assert_eq!(report["image_variants"], total);
    // The page offers them: a picture with a WebP source around each JPEG/PNG, dimensions, lazy after
    // the first.
    let page = read(&out, "index.html");
    assert_eq!(page.matches("<picture>").count(), 4, "{page}");
    assert!(page.contains(r#"width="800" height="1200""#), "{page}");
    assert_eq!(page.matches(r#"loading="lazy""#).count(), 4, "{page}");
    // The variants carry no metadata: the portrait's EXIF is gone, its pixels upright.
    let portrait = variants(&m, "img/portrait.jpg");
    let jpeg = portrait.iter().find(|v| v["format"] == "jpeg").unwrap();
    let bytes = std::fs::read(out.join(jpeg["path"].as_str().unwrap())).unwrap();
    assert!(
        !bytes.windows(6).any(|w| w == b"Exif\0\0"),
        "EXIF left in a variant"
    );
}

#[test]
fn a_png_original_is_replaced_by_its_lossless_optimisation_and_named_by_it() {
    let t = site();
    let report = build(t.path(), "src", "out", &[]);
    // Only the PNG: ImageMagick's JPEGs are already optimally coded, WebP has no lossless pass.
    assert_eq!(report["images_optimized"], 1, "{report:#}");
    let source = std::fs::read(t.path().join("src/img/truchet.png")).unwrap();
    let out = t.path().join("out");
    let m = manifest(&out);
    let entry = &m["files"]["img/truchet.png"];
    let path = entry["path"].as_str().unwrap();
    let bytes = std::fs::read(out.join(path)).unwrap();
    assert!(
        bytes.len() * 100 <= source.len() * 95,
        "{path}: {} bytes from {}, under 5 % saved",
        bytes.len(),
        source.len()
    );
    assert_eq!(
        report["image_bytes_saved"],
        (source.len() - bytes.len()) as u64
    );
    assert_eq!(entry["size"], bytes.len() as u64);
    let hash = blake3::hash(&bytes).to_hex().to_string();
    assert_eq!(entry["hash"], hash.as_str());
    assert!(
        path.contains(&hash[..12]),
        "{path} is not named by its bytes"
    );
    let pixels = |b: &[u8]| image::load_from_memory(b).unwrap().to_rgba8();
    assert!(
        pixels(&bytes) == pixels(&source),
        "{path} does not show the source's pixels"
    );
    // Off: the original's bytes as they are.
    write_files(
        t.path(),
        &[("staleguard.toml", &format!("{CONFIG}optimize = false\n"))],
    );
    let off = build(t.path(), "src", "out", &[]);
    assert_eq!(off["images_optimized"], 0, "{off:#}");
    let m = manifest(&out);
    let path = m["files"]["img/truchet.png"]["path"].as_str().unwrap();
    assert_eq!(std::fs::read(out.join(path)).unwrap(), source);
}

fn path_logical(logical: &str, width: u32, format: &str) -> String {
    let stem = logical.rsplit_once('.').unwrap().0;
    let ext = if format == "jpeg" { "jpg" } else { format };
    format!("{stem}.{width}.{ext}")
}

#[test]
fn a_rebuild_processes_no_image_and_one_changed_photo_only_its_own() {
    let t = site();
    let first = build(t.path(), "src", "out", &[]);
    assert_eq!(first["images_processed"], 5);
    // Tried on the PNG and the three JPEGs (worth it on the PNG only: ImageMagick's JPEGs are
    // already optimally coded); the WebP has no lossless pass.
    assert_eq!(first["images_optimized_now"], 4, "{first:#}");
    assert_eq!(first["images_optimized"], 1, "{first:#}");
    let m1 = manifest(&t.path().join("out"));
    let again = build(t.path(), "src", "out", &[]);
    assert_eq!(again["images_processed"], 0, "{again:#}");
    assert_eq!(again["images_from_cache"], 5);
    assert_eq!(again["images_optimized_now"], 0, "{again:#}");
    assert_eq!(again["images_optimized"], 1, "{again:#}");
    assert_eq!(again["written"], 0, "{again:#}");
    // Another photo's bytes under an old name: content-addressed, so nothing is made.
    std::fs::copy(
        t.path().join("src/img/wood.jpg"),
        t.path().join("src/img/portrait.jpg"),
    )
    .unwrap();
    let copied = build(t.path(), "src", "out", &[]);
    assert_eq!(copied["images_processed"], 0, "{copied:#}");
    // A new photo (one byte more after the JPEG's end): only its variants are made again.
    let mut bytes = std::fs::read(t.path().join("src/img/wood.jpg")).unwrap();
    bytes.push(0);
    std::fs::write(t.path().join("src/img/portrait.jpg"), bytes).unwrap();
    let changed = build(t.path(), "src", "out", &[]);
    assert_eq!(changed["images_processed"], 1, "{changed:#}");
    assert_eq!(changed["images_from_cache"], 4);
    let m2 = manifest(&t.path().join("out"));
    for p in PHOTOS {
        let logical = format!("img/{p}");
        let same = m1["images"][&logical] == m2["images"][&logical];
        assert_eq!(same, p != "portrait.jpg", "{logical}");
    }
}

struct Killed(Child);

impl Drop for Killed {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

/// `staleguard serve out` in `root`, its log in `log`: the running server (stopped when dropped) and
/// its base URL.
fn serve_out(root: &Path, log: &Path) -> (Killed, String) {
    let mut c = staleguard(root);
    c.args(["serve", "out", "--port", "0", "-vv"])
        .stderr(std::fs::File::create(log).unwrap());
    let (child, base) = spawn_listening(c);
    (Killed(child), base)
}

/// What the page's script wrote between `SEEN` and `END`, from a successful `--dump-dom`.
fn page_output(o: &std::process::Output) -> String {
    assert!(
        o.status.success(),
        "chromium failed: {}",
        String::from_utf8_lossy(&o.stderr)
    );
    let dom = String::from_utf8_lossy(&o.stdout);
    dom.split_once("SEEN")
        .and_then(|(_, r)| r.split_once("END"))
        .map(|(j, _)| j.replace("&quot;", "\""))
        .unwrap_or_else(|| panic!("the page's script did not run:\n{dom}"))
}

fn chromium(args: &[&str]) -> std::process::Output {
    let profile = tempfile::tempdir().unwrap();
    Command::new("/usr/bin/chromium")
        .args([
            "--headless",
            "--no-sandbox",
            "--disable-gpu",
            "--disable-quic",
            "--disable-background-networking",
            "--disable-component-update",
            "--disable-sync",
            "--no-first-run",
            "--hide-scrollbars",
            "--force-device-scale-factor=1",
            "--virtual-time-budget=5000",
        ])
        .arg(format!("--user-data-dir={}", profile.path().display()))
        .args(args)
        .output()
        .expect("cannot run /usr/bin/chromium")
}

#[test]
fn chromium_loads_the_page_with_no_404_and_picks_the_variant_for_its_viewport() {
    assert!(
        Path::new("/usr/bin/chromium").is_file(),
        "headless Chromium is missing: run `scripts/peers/chromium.sh install` (scripts/test.sh does)"
    );
    let t = site();
    build(t.path(), "src", "out", &["--no-originals"]);
    let m = manifest(&t.path().join("out"));
    let log = t.path().join("serve.log");
    let (_served, base) = serve_out(t.path(), &log);
    let wood = variants(&m, "img/wood.jpg");
    let webp = |w: u64| {
        let v = wood
            .iter()
            .find(|v| v["format"] == "webp" && v["width"] == w)
            .unwrap_or_else(|| panic!("no {w}w webp variant: {wood:?}"));
        v["path"].as_str().unwrap().to_string()
    };
    // (viewport width, the variant a 100vw image at 1 device pixel per CSS pixel needs)
    for (width, want) in [(500, webp(640)), (1300, webp(1600))] {
        let o = chromium(&[
            &format!("--window-size={width},900"),
            "--dump-dom",
            &format!("{base}/"),
        ]);
        let seen: Vec<Value> = serde_json::from_str(&page_output(&o)).unwrap();
        let first = seen[0]["src"].as_str().unwrap();
        assert!(
            first.ends_with(&format!("/{want}")),
            "at {width}px wide the browser shows {first}, not {want}: {seen:?}"
        );
    }
    // A screenshot, kept as an artifact.
    let shot = Path::new(env!("CARGO_TARGET_TMPDIR")).join("images-chromium-1300.png");
    let o = chromium(&[
        "--window-size=1300,900",
        &format!("--screenshot={}", shot.display()),
        &format!("{base}/"),
    ]);
    assert!(
        o.status.success() && shot.is_file(),
        "no screenshot: {}",
        String::from_utf8_lossy(&o.stderr)
    );
    std::thread::sleep(Duration::from_millis(300));
    let text = regex::Regex::new(r"\x1b\[[0-9;]*m")
        .unwrap()
        .replace_all(&std::fs::read_to_string(&log).unwrap(), "")
        .into_owned();
    let re = regex::Regex::new(r"path=(\S+) status=(\d+)").unwrap();
    let mut seen: BTreeMap<String, Vec<u16>> = BTreeMap::new();
    for c in re.captures_iter(&text) {
        seen.entry(c[1].to_string())
            .or_default()
            .push(c[2].parse().unwrap());
    }
    assert!(
        seen.keys().any(|p| p.ends_with(".webp")),
        "no variant was requested: {seen:?}"
    );
    for (path, statuses) in &seen {
        assert!(
            statuses.iter().all(|s| *s < 400 || path == "/favicon.ico"),
            "`{path}` answered {statuses:?}: {seen:?}"
        );
    }
}

/// `css-image-set`: a stylesheet's single-`url()` image declaration gets an `image-set()` after it
/// (insertion only; a shorthand is left alone), and Chromium, which reads `image-set()` with `type()`,
/// fetches the WebP and never the JPEG.
#[test]
fn a_stylesheet_image_gets_an_image_set_and_chromium_fetches_its_webp() {
    assert!(
        Path::new("/usr/bin/chromium").is_file(),
        "headless Chromium is missing: run `scripts/peers/chromium.sh install` (scripts/test.sh does)"
    );
    let css = ".hero { height: 300px; background-image: url(../img/wood.jpg) }\n.tile { height: 50px; background: url(\"../img/licorice.jpg\") no-repeat; }\n";
    let page = r#"<!doctype html><html><head><link rel="stylesheet" href="css/site.css"></head>
<body><div class="hero"></div><div class="tile"></div><pre id="out"></pre>
<script>addEventListener('load', () => { document.getElementById('out').textContent =
 'SEEN' + JSON.stringify(performance.getEntriesByType('resource').map(e => new URL(e.name).pathname)) + 'END'; });</script>
</body></html>"#;
    let t = tempfile::tempdir().unwrap();
    let photos = photos();
    std::fs::create_dir_all(t.path().join("src/img")).unwrap();
    for p in ["wood.jpg", "licorice.jpg"] {
        std::fs::copy(photos.join(p), t.path().join("src/img").join(p)).unwrap();
    }
    write_files(
        t.path(),
        &[
            ("src/css/site.css", css),
            ("src/index.html", page),
            ("staleguard.toml", CONFIG),
        ],
    );
    // Without the switch: the stylesheet's references rewritten, nothing added.
    build(t.path(), "src", "plain", &[]);
    let plain = manifest(&t.path().join("plain"));
    let plain_css = read(
        &t.path().join("plain"),
        plain["files"]["css/site.css"]["path"].as_str().unwrap(),
    );
    write_files(
        t.path(),
        &[(
            "staleguard.toml",
            &format!("{CONFIG}css-image-set = true\n"),
        )],
    );
    build(t.path(), "src", "out", &["--no-originals"]);
    let out = t.path().join("out");
    let m = manifest(&out);
    let sheet = read(&out, m["files"]["css/site.css"]["path"].as_str().unwrap());
    let wood = m["files"]["img/wood.jpg"]["path"].as_str().unwrap();
    let webp = variants(&m, "img/wood.jpg")
        .into_iter()
        .find(|v| v["format"] == "webp" && v["width"] == 1600)
        .unwrap();
    let webp = webp["path"].as_str().unwrap();
    let inserted = format!(
        ";background-image:image-set(url(\"../{webp}\") type(\"image/webp\"), url(\"../{wood}\") type(\"image/jpeg\"))"
    );
    assert!(sheet.contains(&inserted), "{sheet}");
    assert_eq!(sheet.matches("image-set(").count(), 1, "{sheet}");
    assert_eq!(sheet.replacen(&inserted, "", 1), plain_css);

    let log = t.path().join("serve.log");
    let (_served, base) = serve_out(t.path(), &log);
    let o = chromium(&["--window-size=1300,900", "--dump-dom", &format!("{base}/")]);
    let seen: Vec<String> = serde_json::from_str(&page_output(&o)).unwrap();
    assert!(seen.contains(&format!("/{webp}")), "{seen:?}");
    assert!(!seen.contains(&format!("/{wood}")), "{seen:?}");
    // The shorthand is left alone: its JPEG is what the browser takes.
    let licorice = m["files"]["img/licorice.jpg"]["path"].as_str().unwrap();
    assert!(seen.contains(&format!("/{licorice}")), "{seen:?}");
}

/// An image's pixels as the build decodes them (oriented; JPEGs with non-interleaved scans through
/// jpeg-decoder: zune-jpeg 0.5.15, the `image` crate's decoder, shows them in wrong colours).
fn shown(bytes: &[u8]) -> image::DynamicImage {
    let d = staleguard_assets::images::codec::decode(bytes).unwrap();
    if d.alpha {
        image::DynamicImage::ImageRgba8(
            image::RgbaImage::from_raw(d.width, d.height, d.pixels).unwrap(),
        )
    } else {
        image::DynamicImage::ImageRgb8(
            image::RgbImage::from_raw(d.width, d.height, d.pixels).unwrap(),
        )
    }
}

/// The mean difference of two images' 48x32 thumbnails, where encoders' noise averages out.
fn thumb_diff(a: &image::DynamicImage, b: &image::DynamicImage) -> f64 {
    let t = |i: &image::DynamicImage| {
        i.resize_exact(48, 32, image::imageops::FilterType::Triangle)
            .to_rgb8()
    };
    mean_diff(&t(a), &t(b))
}

/// Mean absolute difference per channel of two images of the same size, in levels.
fn mean_diff(a: &image::RgbImage, b: &image::RgbImage) -> f64 {
    assert_eq!(a.dimensions(), b.dimensions());
    let sum: u64 = a
        .as_raw()
        .iter()
        .zip(b.as_raw())
        .map(|(x, y)| u64::from(x.abs_diff(*y)))
        .sum();
    sum as f64 / a.as_raw().len() as f64
}

/// A photo in Adobe RGB (1998) (`adobergb.jpg`: `licorice.jpg` converted by LittleCMS, the profile
/// embedded): its variants are converted to sRGB and carry no profile, so they show what the sRGB
/// original shows; with `strip-metadata = false` the JPEG variants keep the pixels and the profile,
/// and the WebP ones (which carry none) are converted.
#[test]
fn a_wide_gamut_photo_is_converted_to_srgb_unless_its_profile_is_kept() {
    let photos = photos();
    let t = one_photo_site("adobergb.jpg");
    // The references: the sRGB original, and the Adobe RGB numbers taken as sRGB (what stripping the
    // profile without converting would show), compared as thumbnails.
    let srgb = shown(&std::fs::read(photos.join("licorice.jpg")).unwrap());
    let adobe = shown(&std::fs::read(photos.join("adobergb.jpg")).unwrap());
    let has_profile = |bytes: &[u8], format: &str| match format {
        "jpeg" => bytes.windows(12).any(|w| w == b"ICC_PROFILE\0"),
        "webp" => bytes.windows(4).any(|w| w == b"ICCP"),
        f => panic!("format {f}"),
    };
    for strip in [true, false] {
        if !strip {
            write_files(
                t.path(),
                &[(
                    "staleguard.toml",
                    &format!("{CONFIG}strip-metadata = false\n"),
                )],
            );
        }
        build(t.path(), "src", "out", &[]);
        let out = t.path().join("out");
        let m = manifest(&out);
        let vs = variants(&m, "img/adobergb.jpg");
        assert_eq!(vs.len(), 5, "{vs:?}");
        for v in &vs {
            let path = v["path"].as_str().unwrap();
            let format = v["format"].as_str().unwrap();
            let (w, h) = (
                v["width"].as_u64().unwrap() as u32,
                v["height"].as_u64().unwrap() as u32,
            );
            let bytes = std::fs::read(out.join(path)).unwrap();
            let shown = shown(&bytes);
            assert_eq!((shown.width(), shown.height()), (w, h), "{path}");
            let (to_srgb, to_raw) = (thumb_diff(&shown, &srgb), thumb_diff(&shown, &adobe));
            let converted = strip || format == "webp";
            assert_eq!(
                has_profile(&bytes, format),
                !converted,
                "{path} (strip {strip})"
            );
            if converted {
                assert!(
                    to_srgb * 2.0 < to_raw,
                    "{path} (strip {strip}) is not in sRGB: {to_srgb:.2} levels from the sRGB original, {to_raw:.2} from the Adobe RGB numbers"
                );
            } else {
                assert!(
                    to_raw * 2.0 < to_srgb,
                    "{path} (strip {strip}) did not keep the source's pixels: {to_raw:.2} levels from them, {to_srgb:.2} from the sRGB original"
                );
            }
        }
    }
}

/// A bundler-hashed image (Vite's `assets/name-<hash>.ext`) referenced from a page gets variants and
/// the page offers them; the image itself keeps its name and its bytes (no rename, no lossless pass).
#[test]
fn a_bundler_hashed_image_gets_variants_and_keeps_its_name_and_bytes() {
    let photos = photos();
    let t = tempfile::tempdir().unwrap();
    std::fs::create_dir_all(t.path().join("src/assets")).unwrap();
    for (from, to) in [
        ("wood.jpg", "wood-Bx3kL9aQ.jpg"),
        ("truchet.png", "truchet-D4fGh7Zx.png"),
    ] {
        std::fs::copy(photos.join(from), t.path().join("src/assets").join(to)).unwrap();
    }
    write_files(
        t.path(),
        &[
            (
                "src/index.html",
                "<img src=\"/assets/wood-Bx3kL9aQ.jpg\" alt=\"\"><img src=\"/assets/truchet-D4fGh7Zx.png\" alt=\"\">",
            ),
            ("staleguard.toml", CONFIG),
        ],
    );
    let report = build(t.path(), "src", "out", &[]);
    assert_eq!(report["images"], 2, "{report:#}");
    assert_eq!(report["prehashed"], 2, "{report:#}");
    assert_eq!(report["images_optimized"], 0, "{report:#}");
    let out = t.path().join("out");
    let m = manifest(&out);
    let page = read(&out, "index.html");
    for (logical, source) in [
        ("assets/wood-Bx3kL9aQ.jpg", "wood.jpg"),
        ("assets/truchet-D4fGh7Zx.png", "truchet.png"),
    ] {
        assert_eq!(m["files"][logical]["path"], logical);
        assert_eq!(
            std::fs::read(out.join(logical)).unwrap(),
            std::fs::read(photos.join(source)).unwrap(),
            "{logical} was rewritten"
        );
        let vs = variants(&m, logical);
        assert!(!vs.is_empty(), "{logical}");
        for v in &vs {
            let path = v["path"].as_str().unwrap();
            assert!(out.join(path).is_file(), "{path}");
            assert!(
                page.contains(&format!("/{path} ")),
                "{path} not offered:\n{page}"
            );
        }
    }
    assert_eq!(page.matches("<picture>").count(), 2, "{page}");
}

/// A JPEG original with the example Huffman tables (`camera.jpg`, as cameras write them) is re-coded
/// with optimal tables: the same pixels, more than 5 % smaller, named by its new bytes; its segments
/// (here the JFIF header) kept.
#[test]
fn a_camera_jpeg_original_is_recoded_losslessly_and_named_by_its_bytes() {
    let photos = photos();
    let t = one_photo_site("camera.jpg");
    let report = build(t.path(), "src", "out", &[]);
    assert_eq!(report["images_optimized"], 1, "{report:#}");
    let source = std::fs::read(photos.join("camera.jpg")).unwrap();
    let out = t.path().join("out");
    let m = manifest(&out);
    let path = m["files"]["img/camera.jpg"]["path"].as_str().unwrap();
    let bytes = std::fs::read(out.join(path)).unwrap();
    assert!(
        bytes.len() * 100 <= source.len() * 95,
        "{} -> {} bytes",
        source.len(),
        bytes.len()
    );
    assert!(
        path.contains(&blake3::hash(&bytes).to_hex()[..12]),
        "{path}"
    );
    assert_eq!(&bytes[..20], &source[..20], "the JFIF header moved");
    let d = |b: &[u8]| staleguard_assets::images::codec::decode(b).unwrap().pixels;
    assert!(
        d(&bytes) == d(&source),
        "{path} does not show the same pixels"
    );
    // A rebuild takes it from the cache.
    let again = build(t.path(), "src", "out", &[]);
    assert_eq!(again["images_optimized_now"], 0, "{again:#}");
    assert_eq!(again["written"], 0, "{again:#}");
}
