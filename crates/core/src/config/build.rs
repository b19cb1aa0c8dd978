//! The `[build]` section: sources, fingerprinting rules, compression, retention and the output's files.

use std::fmt;

use serde::{Deserialize, Deserializer, Serialize};

use super::{de_globs, de_prefix, de_range};
use crate::duration::HumanDuration;

/// A precompression format written as a sidecar file next to each compressible output.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Deserialize, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum Codec {
    /// Brotli, sidecar `.br`, `Content-Encoding: br`.
    Br,
    /// gzip, sidecar `.gz`, `Content-Encoding: gzip`.
    Gzip,
    /// Zstandard, sidecar `.zst`, `Content-Encoding: zstd`.
    Zstd,
}

impl Codec {
    /// Every codec, in the order a server prefers them.
    pub const ALL: [Codec; 3] = [Codec::Br, Codec::Zstd, Codec::Gzip];

    /// `a.css.br` → (`a.css`, br): the base path and codec of a sidecar's name.
    pub fn split_sidecar(path: &str) -> Option<(&str, Codec)> {
        Codec::ALL
            .into_iter()
            .find_map(|c| path.strip_suffix(c.extension()).map(|b| (b, c)))
    }

    /// The sidecar file extension, with its dot.
    pub fn extension(self) -> &'static str {
        match self {
            Codec::Br => ".br",
            Codec::Gzip => ".gz",
            Codec::Zstd => ".zst",
        }
    }

    /// The HTTP `Content-Encoding` token.
    pub fn content_encoding(self) -> &'static str {
        match self {
            Codec::Br => "br",
            Codec::Gzip => "gzip",
            Codec::Zstd => "zstd",
        }
    }

    /// Parses a `Content-Encoding` token or config name.
    pub fn parse(name: &str) -> Option<Codec> {
        match name.trim().to_ascii_lowercase().as_str() {
            "br" | "brotli" => Some(Codec::Br),
            "gzip" | "gz" => Some(Codec::Gzip),
            "zstd" | "zst" => Some(Codec::Zstd),
            _ => None,
        }
    }
}

impl fmt::Display for Codec {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.content_encoding())
    }
}

/// The `[build]` section.
#[derive(Debug, Clone, Deserialize, Serialize, PartialEq)]
#[serde(deny_unknown_fields, rename_all = "kebab-case", default)]
pub struct BuildConfig {
    /// Source folder, relative to the config file's folder.
    pub source: String,
    /// Output folder, relative to the config file's folder.
    pub out: String,
    /// URL path under which the output is served; absolute references (`/static/x.png`) resolve against it.
    #[serde(deserialize_with = "de_prefix")]
    pub url_prefix: String,
    /// Precompression formats to write.
    pub compress: Vec<Codec>,
    /// Brotli quality, 0 to 11.
    #[serde(deserialize_with = "de_brotli_quality")]
    pub brotli_quality: u32,
    /// Brotli window (lgwin), 10 to 24.
    #[serde(deserialize_with = "de_brotli_window")]
    pub brotli_window: u32,
    /// gzip level, 1 to 9.
    #[serde(deserialize_with = "de_gzip_level")]
    pub gzip_level: u32,
    /// zstd level, 1 to 22.
    #[serde(deserialize_with = "de_zstd_level")]
    pub zstd_level: i32,
    /// Globs (relative to the source folder) of files fetched only by developer tools (source maps): their
    /// sidecars are compressed at the `cheap-*` levels, a fraction of the time at a few percent more bytes.
    #[serde(deserialize_with = "de_globs")]
    pub cheap_compress: Vec<String>,
    /// Brotli quality for `cheap-compress` files, 0 to 11.
    #[serde(deserialize_with = "de_brotli_quality")]
    pub cheap_brotli_quality: u32,
    /// gzip level for `cheap-compress` files, 1 to 9.
    #[serde(deserialize_with = "de_gzip_level")]
    pub cheap_gzip_level: u32,
    /// zstd level for `cheap-compress` files, 1 to 22.
    #[serde(deserialize_with = "de_zstd_level")]
    pub cheap_zstd_level: i32,
    /// Keep a compressed variant only if it saves at least this percentage of the original size.
    #[serde(deserialize_with = "de_percent")]
    pub compress_min_saving: f64,
    /// File extensions (without dot, case-insensitive) that are never compressed.
    pub skip_compress: Vec<String>,
    /// A referenced file that does not exist is an error (true) or a warning (false).
    pub strict: bool,
    /// Also write every fingerprinted file under its original (logical) name, as a mutable object.
    pub keep_originals: bool,
    /// Rewrite relative ES module imports (`import … from "./x.js"`, `import("./x.js")`) in JavaScript.
    pub js_imports: bool,
    /// The built-in rules apply: fixed-name files ([`DEFAULT_FIXED_NAMES`]), excludes
    /// ([`DEFAULT_EXCLUDE`]), bundler hash patterns and bundler folders ([`DEFAULT_PREHASHED_DIRS`]).
    /// `mutable`, `exclude`, `prehashed` and `prehashed-dirs` add to them; `false` keeps only those.
    pub builtin_rules: bool,
    /// Globs (relative to the source folder) of files that keep their name and are mutable, on top of the
    /// built-in fixed-name files.
    #[serde(deserialize_with = "de_globs")]
    pub mutable: Vec<String>,
    /// Globs (relative to the source folder) of files that are not part of the build at all, on top of
    /// the built-in excludes.
    #[serde(deserialize_with = "de_globs")]
    pub exclude: Vec<String>,
    /// Regex over a file name marking a bundler's already-hashed output (not hashed again), on top of the
    /// built-in bundler patterns; empty: none.
    #[serde(deserialize_with = "de_regex")]
    pub prehashed: String,
    /// Globs of folders whose files a framework serves as immutable whatever their names (`_next/static/**`),
    /// on top of the built-in ones.
    #[serde(deserialize_with = "de_globs")]
    pub prehashed_dirs: Vec<String>,
    /// Fingerprinted files of the last N builds stay in the output (pages rendered or cached before a
    /// rebuild keep working, as with `collectstatic`), at least 1.
    #[serde(deserialize_with = "de_keep_builds")]
    pub keep_builds: u32,
    /// …and every fingerprinted file dropped by a build less than this long ago (`0s`: none).
    pub keep_age: HumanDuration,
    /// Folder for the incremental cache, relative to the config file's folder.
    pub cache_dir: String,
    /// File name of staleguard's manifest inside the output.
    #[serde(deserialize_with = "de_out_name")]
    pub manifest: String,
    /// File name of Django's manifest inside the output; empty to not write it.
    #[serde(deserialize_with = "de_out_name_or_empty")]
    pub django_manifest: String,
    /// File name of the build info (version, commit, time) inside the output; empty to not write it.
    #[serde(deserialize_with = "de_out_name_or_empty")]
    pub build_info: String,
    /// A store (`file://…`, `s3://…`, as `[deploy] store`) whose current deploy's sidecars `build`
    /// reuses instead of compressing them again; empty: none. `deploy` reuses its own store's unless
    /// `[deploy] reuse = false`.
    #[serde(deserialize_with = "super::deploy::de_store_url_or_empty")]
    pub reuse_from: String,
    /// Worker threads; 0 uses every core.
    pub jobs: usize,
    /// A source file larger than this (bytes) is refused by name: a runaway file (a log, a dump) never
    /// fills memory.
    pub max_file_size: u64,
    /// `[build.images]`: responsive variants of raster images and the `<img>` markup that uses them.
    pub images: ImagesConfig,
}

/// Extensions that are already compressed (images, fonts, archives, media): compressing them again wastes time.
pub const DEFAULT_SKIP_COMPRESS: &[&str] = &[
    "jpg", "jpeg", "png", "gif", "webp", "avif", "jxl", "heic", "ico", "zip", "gz", "tgz", "bz2",
    "tbz", "xz", "br", "zst", "7z", "rar", "swf", "flv", "woff", "woff2", "3gp", "3gpp", "asf",
    "avi", "m4v", "mov", "mp4", "mpeg", "mpg", "webm", "wmv", "mp3", "ogg", "oga", "opus", "m4a",
    "aac", "flac", "pdf", "dmg", "exe", "msi", "deb", "rpm", "apk", "jar", "wasm.gz",
];

/// Files fetched only by developer tools, compressed at the cheap levels by default: source maps.
pub const DEFAULT_CHEAP_COMPRESS: &[&str] = &["**/*.map"];

/// Files fetched by a fixed name (by crawlers, feed readers, browsers or a service worker's scope), which
/// therefore keep their names and stay mutable: pages, feeds, sitemaps, robots and other well-known text
/// files, web manifests, service workers, `.well-known/`, favicons and touch icons, data fetched by name.
/// A name that carries a bundler's hash is never one of them (`manifest-3f2a9c1b.json` stays immutable).
pub const DEFAULT_FIXED_NAMES: &[&str] = &[
    "**/*.html",
    "**/*.htm",
    "**/*.xhtml",
    "**/*.xml",
    "**/*.xsl",
    "**/*.xslt",
    "**/*.rss",
    "**/*.atom",
    "**/*.ics",
    "**/*.opml",
    "**/*.txt",
    "**/*.webmanifest",
    "**/*.json",
    "**/sw.js",
    "**/service-worker.js",
    "**/serviceworker.js",
    "**/*-sw.js",
    "**/*.sw.js",
    ".well-known/**",
    "favicon.*",
    "apple-touch-icon*.png",
    "android-chrome-*.png",
    "mstile-*.png",
    "safari-pinned-tab.svg",
    "CNAME",
    "_redirects",
    "_headers",
    "_routes.json",
];

/// Files left out of the build by default: version control, OS litter, and bundlers' metadata (read by
/// backends from the bundler's own output, never fetched by browsers).
pub const DEFAULT_EXCLUDE: &[&str] = &[
    "**/.git/**",
    "**/.svn/**",
    "**/.hg/**",
    "**/.staleguard/**",
    "**/.DS_Store",
    "**/Thumbs.db",
    "**/*~",
    "**/.vite/**",
    "**/asset-manifest.json",
    "**/webpack-stats.json",
    "**/mix-manifest.json",
];

/// Folders whose files frameworks serve as immutable whatever their names: Next.js `_next/static/`,
/// SvelteKit `_app/immutable/`, Astro `_astro/`.
pub const DEFAULT_PREHASHED_DIRS: &[&str] =
    &["_next/static/**", "**/_app/immutable/**", "_astro/**"];

impl Default for BuildConfig {
    fn default() -> Self {
        BuildConfig {
            source: "static".into(),
            out: ".staleguard/dist".into(),
            url_prefix: "/".into(),
            compress: vec![Codec::Br, Codec::Gzip],
            brotli_quality: 11,
            brotli_window: 22,
            gzip_level: 9,
            zstd_level: 19,
            cheap_compress: DEFAULT_CHEAP_COMPRESS
                .iter()
                .map(|s| s.to_string())
                .collect(),
            cheap_brotli_quality: 5,
            cheap_gzip_level: 6,
            cheap_zstd_level: 9,
            compress_min_saving: 5.0,
            skip_compress: DEFAULT_SKIP_COMPRESS
                .iter()
                .map(|s| s.to_string())
                .collect(),
            strict: false,
            keep_originals: true,
            js_imports: true,
            builtin_rules: true,
            mutable: Vec::new(),
            exclude: Vec::new(),
            prehashed: String::new(),
            prehashed_dirs: Vec::new(),
            keep_builds: 3,
            keep_age: HumanDuration::from_secs(86_400),
            cache_dir: ".staleguard/cache".into(),
            manifest: "staleguard.manifest.json".into(),
            django_manifest: "staticfiles.json".into(),
            build_info: "build-info.json".into(),
            reuse_from: String::new(),
            jobs: 0,
            max_file_size: 2 * 1024 * 1024 * 1024,
            images: ImagesConfig::default(),
        }
    }
}

impl BuildConfig {
    fn with_builtin(&self, builtin: &[&str], own: &[String]) -> Vec<String> {
        let mut v: Vec<String> = if self.builtin_rules {
            builtin.iter().map(|s| s.to_string()).collect()
        } else {
            Vec::new()
        };
        v.extend(own.iter().cloned());
        v
    }

    /// The fixed-name globs in force (built-in ones first); a bundler-hashed name never matches them.
    pub fn fixed_name_globs(&self) -> Vec<String> {
        self.with_builtin(DEFAULT_FIXED_NAMES, &[])
    }

    /// The exclude globs in force: the built-in ones and `exclude`.
    pub fn exclude_globs(&self) -> Vec<String> {
        self.with_builtin(DEFAULT_EXCLUDE, &self.exclude)
    }

    /// The bundler-folder globs in force: the built-in ones and `prehashed-dirs`.
    pub fn prehashed_dir_globs(&self) -> Vec<String> {
        self.with_builtin(DEFAULT_PREHASHED_DIRS, &self.prehashed_dirs)
    }
}

fn de_brotli_quality<'de, D: Deserializer<'de>>(d: D) -> Result<u32, D::Error> {
    de_range(d, "brotli-quality", 0, 11).map(|v| v as u32)
}

fn de_brotli_window<'de, D: Deserializer<'de>>(d: D) -> Result<u32, D::Error> {
    de_range(d, "brotli-window", 10, 24).map(|v| v as u32)
}

fn de_gzip_level<'de, D: Deserializer<'de>>(d: D) -> Result<u32, D::Error> {
    de_range(d, "gzip-level", 1, 9).map(|v| v as u32)
}

fn de_zstd_level<'de, D: Deserializer<'de>>(d: D) -> Result<i32, D::Error> {
    de_range(d, "zstd-level", 1, 22).map(|v| v as i32)
}

fn de_percent<'de, D: Deserializer<'de>>(d: D) -> Result<f64, D::Error> {
    let v = f64::deserialize(d)?;
    if !(0.0..100.0).contains(&v) {
        return Err(serde::de::Error::custom(format!(
            "compress-min-saving is a percentage from 0 to 99.9, got {v}"
        )));
    }
    Ok(v)
}

fn de_keep_builds<'de, D: Deserializer<'de>>(d: D) -> Result<u32, D::Error> {
    let v = u32::deserialize(d)?;
    if v == 0 {
        return Err(serde::de::Error::custom(
            "keep-builds must be at least 1 (the current build)",
        ));
    }
    Ok(v)
}

fn de_regex<'de, D: Deserializer<'de>>(d: D) -> Result<String, D::Error> {
    let s = String::deserialize(d)?;
    regex::Regex::new(&s)
        .map_err(|e| serde::de::Error::custom(format!("invalid regex `{s}`: {e}")))?;
    Ok(s)
}

fn check_out_name(s: &str) -> Result<(), String> {
    if s.is_empty() || s.contains('/') || s.contains('\\') || s == "." || s == ".." {
        return Err(format!(
            "`{s}` must be a plain file name (it is written at the output's root)"
        ));
    }
    Ok(())
}

fn de_out_name<'de, D: Deserializer<'de>>(d: D) -> Result<String, D::Error> {
    let s = String::deserialize(d)?;
    check_out_name(&s).map_err(serde::de::Error::custom)?;
    Ok(s)
}

fn de_out_name_or_empty<'de, D: Deserializer<'de>>(d: D) -> Result<String, D::Error> {
    let s = String::deserialize(d)?;
    if !s.is_empty() {
        check_out_name(&s).map_err(serde::de::Error::custom)?;
    }
    Ok(s)
}

/// A format responsive variants are encoded in, besides the source's own (always kept as the fallback).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Deserialize, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum ImageFormat {
    /// AVIF (needs staleguard built with the `avif` feature).
    Avif,
    /// Lossy WebP.
    Webp,
}

impl ImageFormat {
    /// The MIME type, for `<source type>`.
    pub fn mime(self) -> &'static str {
        match self {
            ImageFormat::Avif => "image/avif",
            ImageFormat::Webp => "image/webp",
        }
    }

    /// The file extension, without its dot.
    pub fn extension(self) -> &'static str {
        match self {
            ImageFormat::Avif => "avif",
            ImageFormat::Webp => "webp",
        }
    }
}

/// `[build.images] quality`: the lossy encoders' quality, 1 to 100, per format.
#[derive(Debug, Clone, Copy, Deserialize, Serialize, PartialEq, Eq, Hash)]
#[serde(deny_unknown_fields, rename_all = "kebab-case", default)]
pub struct ImageQuality {
    #[serde(deserialize_with = "de_quality")]
    pub webp: u8,
    #[serde(deserialize_with = "de_quality")]
    pub avif: u8,
    /// JPEG variants of JPEG sources.
    #[serde(deserialize_with = "de_quality")]
    pub jpeg: u8,
}

impl Default for ImageQuality {
    fn default() -> Self {
        ImageQuality {
            webp: 80,
            avif: 80,
            jpeg: 80,
        }
    }
}

/// The `[build.images]` section (off by default).
#[derive(Debug, Clone, Deserialize, Serialize, PartialEq)]
#[serde(deny_unknown_fields, rename_all = "kebab-case", default)]
pub struct ImagesConfig {
    /// Make variants and rewrite `<img>` tags.
    pub enabled: bool,
    /// Variant widths in pixels; a width at or above the source's is not made (never upscaled); the
    /// source's own width is always a candidate.
    #[serde(deserialize_with = "de_widths")]
    pub widths: Vec<u32>,
    /// Extra formats, in the browser's order of preference (`avif` before `webp`).
    #[serde(deserialize_with = "de_formats")]
    pub formats: Vec<ImageFormat>,
    pub quality: ImageQuality,
    /// Images smaller than this (bytes) are left alone.
    pub min_bytes: u64,
    /// Globs of the images to process (relative to the source folder); empty: every JPEG, PNG, WebP
    /// and static GIF.
    #[serde(deserialize_with = "de_globs")]
    pub include: Vec<String>,
    /// Globs of images never processed.
    #[serde(deserialize_with = "de_globs")]
    pub exclude: Vec<String>,
    /// The `sizes` attribute written when an `<img>` has none.
    pub sizes: String,
    /// The first N `<img>` of a page (above the fold) are not lazy-loaded.
    pub eager: u32,
    /// With more than one format, wrap an `<img>` in a `<picture>` with one `<source>` per format; off:
    /// the `<img>`'s `srcset` lists the first format's variants.
    pub picture: bool,
    /// Variants carry no metadata (EXIF, XMP: camera, location); off: the colour profile is kept in
    /// JPEG and PNG variants. Orientation is applied to the pixels either way.
    pub strip_metadata: bool,
    /// PNG originals re-encoded losslessly (oxipng: same pixels) when that saves at least 5 %; their
    /// fingerprint covers the optimised bytes. Metadata follows `strip-metadata`.
    pub optimize: bool,
    /// A stylesheet's `url()` of an image with variants (the whole value of `background-image`,
    /// `mask-image`, `border-image-source`, `list-style-image` or `content`) gets a second declaration
    /// with an `image-set()` of its formats, after the first (which stays, for older browsers).
    pub css_image_set: bool,
}

impl Default for ImagesConfig {
    fn default() -> Self {
        ImagesConfig {
            enabled: false,
            widths: vec![320, 640, 1024, 1920],
            formats: vec![ImageFormat::Webp],
            quality: ImageQuality::default(),
            min_bytes: 4096,
            include: Vec::new(),
            exclude: Vec::new(),
            sizes: "100vw".into(),
            eager: 1,
            picture: true,
            strip_metadata: true,
            optimize: true,
            css_image_set: false,
        }
    }
}

fn de_quality<'de, D: Deserializer<'de>>(d: D) -> Result<u8, D::Error> {
    de_range(d, "quality", 1, 100).map(|v| v as u8)
}

fn de_widths<'de, D: Deserializer<'de>>(d: D) -> Result<Vec<u32>, D::Error> {
    let mut v = Vec::<u32>::deserialize(d)?;
    if let Some(w) = v.iter().find(|w| !(16..=16384).contains(*w)) {
        return Err(serde::de::Error::custom(format!(
            "widths must be between 16 and 16384 pixels, got {w}"
        )));
    }
    v.sort_unstable();
    v.dedup();
    Ok(v)
}

fn de_formats<'de, D: Deserializer<'de>>(d: D) -> Result<Vec<ImageFormat>, D::Error> {
    let mut v = Vec::<ImageFormat>::deserialize(d)?;
    v.sort_unstable();
    v.dedup();
    Ok(v)
}

#[cfg(test)]
mod images_tests {
    use super::*;
    use crate::config::Config;

    #[test]
    fn images_defaults_and_values() {
        let c = Config::from_toml("", "x.toml").unwrap();
        assert!(!c.build.images.enabled);
        assert_eq!(c.build.images.widths, [320, 640, 1024, 1920]);
        assert_eq!(c.build.images.formats, [ImageFormat::Webp]);
        assert!(c.build.images.optimize && c.build.images.strip_metadata);
        assert!(!c.build.images.css_image_set);
        let c = Config::from_toml(
            "[build.images]\nenabled = true\nwidths = [800, 400, 400]\nformats = ['webp', 'avif']\nquality = { webp = 70 }\nmin-bytes = 0\nsizes = '50vw'\neager = 2\nstrip-metadata = false\noptimize = false\ncss-image-set = true\n",
            "x.toml",
        )
        .unwrap();
        let i = &c.build.images;
        assert!(i.enabled && !i.strip_metadata && !i.optimize && i.css_image_set);
        assert_eq!(i.widths, [400, 800]);
        assert_eq!(i.formats, [ImageFormat::Avif, ImageFormat::Webp]);
        assert_eq!(i.quality.webp, 70);
        assert_eq!(i.quality.jpeg, 80);
        assert_eq!((i.min_bytes, i.sizes.as_str(), i.eager), (0, "50vw", 2));
    }

    #[test]
    fn images_errors_name_key_and_line() {
        for (text, needles) in [
            (
                "[build.images]\nenabled = true\nwidht = [1]\n",
                &["line 3", "widht"][..],
            ),
            (
                "[build.images]\nwidths = [8]\n",
                &["line 2", "between 16 and 16384"],
            ),
            ("[build.images]\nformats = ['jxl']\n", &["line 2", "jxl"]),
            (
                "[build.images]\nquality = { webp = 0 }\n",
                &["line 2", "between 1 and 100"],
            ),
            (
                "[build.images]\nquality = { png = 9 }\n",
                &["line 2", "png"],
            ),
            (
                "[build.images]\ninclude = ['a/[']\n",
                &["line 2", "invalid glob"],
            ),
        ] {
            let e = format!("{:#}", Config::from_toml(text, "x.toml").unwrap_err());
            for n in needles {
                assert!(e.contains(n), "error for {text:?} lacks {n:?}:\n{e}");
            }
        }
    }
}
