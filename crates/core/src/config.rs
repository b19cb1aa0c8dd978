//! `staleguard.toml`: typed configuration, validated while parsing so every error names the key and line.
//!
//! Unknown keys are rejected (`deny_unknown_fields`); values that need checking (globs, regexes, levels)
//! are checked inside their deserializers, so `toml` reports the failure with its line and column.

use std::fmt;

use serde::{Deserialize, Deserializer, Serialize};

/// The whole configuration file.
#[derive(Debug, Clone, Default, Deserialize, Serialize, PartialEq)]
#[serde(deny_unknown_fields, rename_all = "kebab-case")]
pub struct Config {
    #[serde(default)]
    pub build: BuildConfig,
    #[serde(default)]
    pub serve: ServeConfig,
    #[serde(default)]
    pub deploy: DeployConfig,
    /// The route-policy table (first match wins), see [`crate::routes`].
    #[serde(default)]
    pub routes: Vec<crate::routes::RouteRule>,
}

/// The `[deploy]` section: where and how the build output is uploaded.
#[derive(Debug, Clone, Deserialize, Serialize, PartialEq)]
#[serde(deny_unknown_fields, rename_all = "kebab-case", default)]
pub struct DeployConfig {
    /// The object store: `file://PATH` (relative paths are relative to the config file's folder),
    /// `s3://BUCKET/PREFIX`, `gs://…`, `az://…`.
    #[serde(deserialize_with = "de_store_url")]
    pub store: String,
    /// Folder to deploy; empty = the build's output folder.
    pub dir: String,
    /// GC keeps every object referenced by the last this-many deploys.
    #[serde(deserialize_with = "de_keep_deploys")]
    pub keep_deploys: u32,
    /// …and every object that left the site less than this long ago (`90s`, `30m`, `12h`, `1d`, `2w`).
    #[serde(deserialize_with = "de_age")]
    pub keep_age: String,
    /// GC refuses (and fails the deploy) when it would delete more objects than this.
    pub max_deletes: u64,
    /// Uploads in flight at once.
    #[serde(deserialize_with = "de_concurrency")]
    pub concurrency: u32,
    /// S3-compatible endpoint (MinIO, R2, moto…); empty = AWS, or `AWS_ENDPOINT_URL` from the environment.
    pub endpoint: String,
    /// Region; empty = `AWS_REGION`/`AWS_DEFAULT_REGION`, else us-east-1.
    pub region: String,
    /// Stable aliases for download channels: alias key → the key it copies (e.g.
    /// `"downloads/tool-latest.tar.gz" = "downloads/tool-1.4.2.tar.gz"`). Uploaded after their targets.
    pub aliases: std::collections::BTreeMap<String, String>,
    /// Key of a JSON file listing size and sha256 of every alias target and every `artifacts` match,
    /// written after them; empty = none.
    pub metadata: String,
    /// Globs (over keys) of artifacts to list in `metadata`, besides the alias targets.
    #[serde(deserialize_with = "de_globs")]
    pub artifacts: Vec<String>,
}

impl Default for DeployConfig {
    fn default() -> Self {
        DeployConfig {
            store: "file://./public".into(),
            dir: String::new(),
            keep_deploys: 3,
            keep_age: "1d".into(),
            max_deletes: 1000,
            concurrency: 16,
            endpoint: String::new(),
            region: String::new(),
            aliases: Default::default(),
            metadata: String::new(),
            artifacts: Vec::new(),
        }
    }
}

impl DeployConfig {
    /// `keep-age` in seconds (validated when parsed).
    pub fn keep_age_secs(&self) -> i64 {
        crate::deploy::parse_age(&self.keep_age).unwrap_or(86_400)
    }
}

fn de_store_url<'de, D: Deserializer<'de>>(d: D) -> Result<String, D::Error> {
    let s = String::deserialize(d)?;
    check_store_url(&s).map_err(serde::de::Error::custom)?;
    Ok(s)
}

/// Accepts the store URL schemes staleguard knows.
pub fn check_store_url(s: &str) -> Result<(), String> {
    let scheme = s.split_once("://").map(|(a, _)| a);
    match scheme {
        Some("file" | "s3" | "s3a" | "gs" | "az" | "abfs" | "abfss" | "azure") => Ok(()),
        _ => Err(format!(
            "store `{s}` is not a store URL; use file://PATH, s3://BUCKET/PREFIX, gs://BUCKET/PREFIX or az://CONTAINER/PREFIX"
        )),
    }
}

fn de_keep_deploys<'de, D: Deserializer<'de>>(d: D) -> Result<u32, D::Error> {
    de_range(d, "keep-deploys", 1, 1000).map(|v| v as u32)
}

fn de_concurrency<'de, D: Deserializer<'de>>(d: D) -> Result<u32, D::Error> {
    de_range(d, "concurrency", 1, 256).map(|v| v as u32)
}

fn de_age<'de, D: Deserializer<'de>>(d: D) -> Result<String, D::Error> {
    let s = String::deserialize(d)?;
    crate::deploy::parse_age(&s).map_err(serde::de::Error::custom)?;
    Ok(s)
}

/// The `[serve]` section: the origin server.
#[derive(Debug, Clone, Deserialize, Serialize, PartialEq)]
#[serde(deny_unknown_fields, rename_all = "kebab-case", default)]
pub struct ServeConfig {
    /// Folder to serve; empty = the build's output folder.
    pub dir: String,
    /// Address to listen on; loopback unless told otherwise.
    pub bind: String,
    /// Port; 0 picks a free one.
    pub port: u16,
    /// Path of the JSON version endpoint.
    #[serde(deserialize_with = "de_abs_path")]
    pub version_path: String,
    /// File (relative to the served folder) sent with status 404; empty for a plain-text 404.
    pub not_found_page: String,
    /// File (relative to the served folder) sent with status 500; empty for a plain-text 500.
    pub error_page: String,
    /// Headers sent with every file, in addition to [`DEFAULT_HEADERS`]; an empty value removes one
    /// (route rules can override or remove them too).
    pub headers: std::collections::BTreeMap<String, String>,
    /// Send `Access-Control-Allow-Origin: *` with fonts (browsers need it for cross-origin `@font-face`).
    pub cors_fonts: bool,
    /// Files up to this many bytes are held in memory; larger ones are streamed from disk.
    pub memory_limit: u64,
    /// How often the manifest is checked for a new version, in milliseconds.
    pub reload_ms: u64,
    /// A connection that sends nothing the server answers and receives no response bytes for this many
    /// seconds is closed: idle keep-alive connections, heads trickled in (slowloris), readers that stopped
    /// reading. Keep it above the keep-alive timeout of whatever sits in front (CloudFront 5-60 s, an
    /// AWS load balancer 60 s), or the CDN may reuse a connection the origin is closing.
    #[serde(deserialize_with = "de_idle_timeout")]
    pub idle_timeout_secs: u64,
}

impl Default for ServeConfig {
    fn default() -> Self {
        ServeConfig {
            dir: String::new(),
            bind: "127.0.0.1".into(),
            port: 8080,
            version_path: "/health/static-version".into(),
            not_found_page: "404.html".into(),
            error_page: "500.html".into(),
            headers: Default::default(),
            cors_fonts: true,
            memory_limit: 1024 * 1024,
            reload_ms: 500,
            idle_timeout_secs: 75,
        }
    }
}

/// Headers the server always sends unless `[serve.headers]` or a route removes them with `""`.
pub const DEFAULT_HEADERS: &[(&str, &str)] = &[("X-Content-Type-Options", "nosniff")];

impl ServeConfig {
    /// [`DEFAULT_HEADERS`] with `[serve.headers]` applied over them.
    pub fn effective_headers(&self) -> std::collections::BTreeMap<String, String> {
        let mut h: std::collections::BTreeMap<String, String> = DEFAULT_HEADERS
            .iter()
            .map(|(k, v)| (k.to_string(), v.to_string()))
            .collect();
        for (k, v) in &self.headers {
            h.retain(|existing, _| !existing.eq_ignore_ascii_case(k));
            h.insert(k.clone(), v.clone());
        }
        h
    }
}

fn de_abs_path<'de, D: Deserializer<'de>>(d: D) -> Result<String, D::Error> {
    let s = String::deserialize(d)?;
    if !s.starts_with('/') || s.contains(['?', '#', ' ']) {
        return Err(serde::de::Error::custom(format!(
            "`{s}` must be a URL path starting with `/`"
        )));
    }
    Ok(s)
}

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
    /// Globs (relative to the source folder) of files that keep their name and are mutable.
    #[serde(deserialize_with = "de_globs")]
    pub mutable: Vec<String>,
    /// Globs (relative to the source folder) of files that are not part of the build at all.
    #[serde(deserialize_with = "de_globs")]
    pub exclude: Vec<String>,
    /// Regex over a file name marking a bundler's already-hashed output (not hashed again).
    /// A named group `hash`, when present, must look random (a digit and a letter, or mixed case).
    #[serde(deserialize_with = "de_regex")]
    pub prehashed: String,
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
    /// Worker threads; 0 uses every core.
    pub jobs: usize,
}

/// Extensions that are already compressed (images, fonts, archives, media): compressing them again wastes time.
pub const DEFAULT_SKIP_COMPRESS: &[&str] = &[
    "jpg", "jpeg", "png", "gif", "webp", "avif", "jxl", "heic", "ico", "zip", "gz", "tgz", "bz2",
    "tbz", "xz", "br", "zst", "7z", "rar", "swf", "flv", "woff", "woff2", "3gp", "3gpp", "asf",
    "avi", "m4v", "mov", "mp4", "mpeg", "mpg", "webm", "wmv", "mp3", "ogg", "oga", "opus", "m4a",
    "aac", "flac", "pdf", "dmg", "exe", "msi", "deb", "rpm", "apk", "jar", "wasm.gz",
];

/// The default `prehashed` pattern: `name-BdtEMBbM.js` (Vite/Rollup, 8 base64url chars) or
/// `name.3f2a9c1b.js` / `name-3f2a9c1b7e4d.js` (hex, 8 to 64 chars).
pub const DEFAULT_PREHASHED: &str =
    r"[.-](?P<hash>[0-9a-fA-F]{8,64}|[A-Za-z0-9_-]{8})\.[A-Za-z0-9]+$";

impl Default for BuildConfig {
    fn default() -> Self {
        BuildConfig {
            source: "static".into(),
            out: "dist".into(),
            url_prefix: "/".into(),
            compress: vec![Codec::Br, Codec::Gzip],
            brotli_quality: 11,
            brotli_window: 22,
            gzip_level: 9,
            zstd_level: 19,
            compress_min_saving: 5.0,
            skip_compress: DEFAULT_SKIP_COMPRESS
                .iter()
                .map(|s| s.to_string())
                .collect(),
            strict: false,
            keep_originals: true,
            js_imports: true,
            mutable: vec!["**/*.html".into(), "**/*.htm".into()],
            exclude: vec![
                "**/.git/**".into(),
                "**/.svn/**".into(),
                "**/.DS_Store".into(),
                "**/Thumbs.db".into(),
                "**/*~".into(),
            ],
            prehashed: DEFAULT_PREHASHED.into(),
            cache_dir: ".staleguard/cache".into(),
            manifest: "staleguard.manifest.json".into(),
            django_manifest: "staticfiles.json".into(),
            build_info: "build-info.json".into(),
            jobs: 0,
        }
    }
}

/// A configuration that could not be read or is invalid.
#[derive(Debug, thiserror::Error)]
pub enum ConfigError {
    /// The TOML is malformed, has an unknown key, or a value failed validation. The message carries the
    /// line and column.
    #[error("invalid config `{path}`:\n{message}")]
    Invalid { path: String, message: String },
}

impl Config {
    /// Parses and validates a config file's text. `path` is only used in error messages.
    pub fn from_toml(text: &str, path: &str) -> Result<Config, ConfigError> {
        toml::from_str(text).map_err(|e| ConfigError::Invalid {
            path: path.to_string(),
            message: e.to_string().trim_end().to_string(),
        })
    }
}

/// Normalises a URL prefix to start and end with `/`.
pub fn normalize_prefix(prefix: &str) -> Result<String, String> {
    let p = prefix.trim();
    if p.contains("://") || p.starts_with("//") {
        return Err(format!(
            "url-prefix `{p}` must be a path like `/static/`, not a full URL; a CDN host belongs in the page's links, not in the build"
        ));
    }
    if p.split('/').any(|s| s == "..") {
        return Err(format!("url-prefix `{p}` must not contain `..`"));
    }
    let mut out = String::with_capacity(p.len() + 2);
    if !p.starts_with('/') {
        out.push('/');
    }
    out.push_str(p);
    if !out.ends_with('/') {
        out.push('/');
    }
    Ok(out)
}

fn de_prefix<'de, D: Deserializer<'de>>(d: D) -> Result<String, D::Error> {
    let s = String::deserialize(d)?;
    normalize_prefix(&s).map_err(serde::de::Error::custom)
}

fn de_range<'de, D: Deserializer<'de>>(d: D, key: &str, lo: i64, hi: i64) -> Result<i64, D::Error> {
    let v = i64::deserialize(d)?;
    if v < lo || v > hi {
        return Err(serde::de::Error::custom(format!(
            "{key} must be between {lo} and {hi}, got {v}"
        )));
    }
    Ok(v)
}

fn de_idle_timeout<'de, D: Deserializer<'de>>(d: D) -> Result<u64, D::Error> {
    de_range(d, "idle-timeout-secs", 1, 86_400).map(|v| v as u64)
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

fn de_globs<'de, D: Deserializer<'de>>(d: D) -> Result<Vec<String>, D::Error> {
    let v = Vec::<String>::deserialize(d)?;
    for g in &v {
        globset::GlobBuilder::new(g)
            .literal_separator(true)
            .build()
            .map_err(|e| serde::de::Error::custom(format!("invalid glob `{g}`: {}", e.kind())))?;
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

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn empty_file_is_defaults() {
        let c = Config::from_toml("", "x.toml").unwrap();
        assert_eq!(c, Config::default());
    }

    #[test]
    fn values_are_read() {
        let c = Config::from_toml(
            "[build]\nsource = 'web'\nurl-prefix = 'static'\ncompress = ['br', 'zstd']\nstrict = true\n",
            "x.toml",
        )
        .unwrap();
        assert_eq!(c.build.source, "web");
        assert_eq!(c.build.url_prefix, "/static/");
        assert_eq!(c.build.compress, vec![Codec::Br, Codec::Zstd]);
        assert!(c.build.strict);
    }

    fn err(text: &str) -> String {
        Config::from_toml(text, "site/staleguard.toml")
            .unwrap_err()
            .to_string()
    }

    #[test]
    fn errors_name_key_and_line() {
        for (text, needles) in [
            (
                "[build]\nsource = 'x'\nsorce = 'y'\n",
                &["`site/staleguard.toml`", "line 3", "sorce"][..],
            ),
            ("[biuld]\n", &["line 1", "biuld"]),
            (
                "[build]\n\nbrotli-quality = 12\n",
                &["line 3", "between 0 and 11"],
            ),
            ("[build]\ncompress = ['lzma']\n", &["line 2", "lzma"]),
            (
                "[build]\nmutable = ['a/**/[']\n",
                &["line 2", "invalid glob"],
            ),
            ("[build]\nprehashed = '('\n", &["line 2", "invalid regex"]),
            (
                "[build]\nmanifest = 'a/b.json'\n",
                &["line 2", "plain file name"],
            ),
            (
                "[build]\nurl-prefix = 'https://cdn.example.com/'\n",
                &["line 2", "not a full URL"],
            ),
            ("[build\n", &["line 1"]),
        ] {
            let e = err(text);
            for n in needles {
                assert!(e.contains(n), "error for {text:?} lacks {n:?}:\n{e}");
            }
        }
    }

    #[test]
    fn prefixes() {
        assert_eq!(normalize_prefix("").unwrap(), "/");
        assert_eq!(normalize_prefix("/").unwrap(), "/");
        assert_eq!(normalize_prefix("static").unwrap(), "/static/");
        assert_eq!(normalize_prefix("/static/").unwrap(), "/static/");
        assert!(normalize_prefix("/a/../b").is_err());
    }
}
