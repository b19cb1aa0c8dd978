//! The asset build with `[build.images]` on, as `staleguard build` runs it, for `bench/images.sh`: builds
//! SRC into OUT with a fresh CACHE and prints the build report as JSON. Widths, formats and qualities
//! are the bench's (320, 640, 1024 px; WebP and the source's format at quality 80).
//!
//!   cargo run --release -p staleguard-assets --example images_build -- SRC OUT CACHE [FORMATS]
//!
//! FORMATS: `webp` (default) or `avif,webp` (needs `--features avif`).

use staleguard_assets::{BuildOptions, NoProgress, build};
use staleguard_core::config::{BuildConfig, ImageFormat, ImageQuality, ImagesConfig};

fn main() {
    let args: Vec<String> = std::env::args().skip(1).collect();
    let (src, out, cache, formats) = match args.as_slice() {
        [src, out, cache] => (src, out, cache, "webp"),
        [src, out, cache, formats] => (src, out, cache, formats.as_str()),
        _ => {
            eprintln!(
                "usage: images_build SRC OUT CACHE [FORMATS]   (FORMATS: webp (default), avif,webp)"
            );
            std::process::exit(2);
        }
    };
    let formats = formats
        .split(',')
        .map(|f| match f {
            "webp" => ImageFormat::Webp,
            "avif" => ImageFormat::Avif,
            f => {
                eprintln!("unknown format `{f}`: webp or avif");
                std::process::exit(2);
            }
        })
        .collect();
    let config = BuildConfig {
        images: ImagesConfig {
            enabled: true,
            widths: vec![320, 640, 1024],
            formats,
            quality: ImageQuality {
                // `bench/images.sh` sets it to compare at equal SSIM (see BENCHMARKS.md).
                avif: std::env::var("BENCH_AVIF_QUALITY")
                    .ok()
                    .and_then(|q| q.parse().ok())
                    .unwrap_or(ImageQuality::default().avif),
                ..ImageQuality::default()
            },
            min_bytes: 0,
            // sharp makes the variants only: the lossless pass over originals is left out of the
            // side-by-side measure.
            optimize: false,
            ..Default::default()
        },
        ..Default::default()
    };
    let opts = BuildOptions {
        source: src.into(),
        out: out.into(),
        cache_dir: cache.into(),
        config,
        git: None,
        now_unix: 0,
        builder: "images_build".into(),
        clock_unix: 0,
    };
    match build(&opts, &NoProgress) {
        Ok(r) => println!("{}", serde_json::to_string_pretty(&r).unwrap()),
        Err(e) => {
            eprintln!("error: {e}");
            std::process::exit(1);
        }
    }
}
