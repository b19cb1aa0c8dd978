//! The served folder as an immutable snapshot: URL path → file with precomputed headers and, for small
//! files, the bytes in memory. A new version is a new snapshot, swapped in atomically by the server.
//!
//! Built from staleguard's manifest when there is one (hashes are the ETags, fingerprinted files are
//! immutable, sidecars are the encodings); a folder without a manifest is served with ETags hashed at load
//! time and every file treated as mutable.

use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::SystemTime;

use bytes::Bytes;
use hyper::header::{HeaderName, HeaderValue};
use staleguard_core::config::{Codec, ServeConfig};
use staleguard_core::manifest::{BuildInfo, Manifest};
use staleguard_core::mime::content_type;
use staleguard_core::routes::{ERROR, RoutePolicy, object_policy};
use staleguard_core::url::is_hidden;

use crate::ServeError;

/// Path → value maps of a snapshot. foldhash rather than SipHash: a lookup per request, keys are the
/// build's own file names (a client only chooses what it looks up), and the seed is still random.
pub type Map<V> = std::collections::HashMap<String, V, foldhash::fast::RandomState>;

/// One representation of a file: identity or one encoding.
#[derive(Debug)]
pub struct Variant {
    pub codec: Option<Codec>,
    /// Quoted strong ETag.
    pub etag: HeaderValue,
    pub len: u64,
    pub body: Body,
    /// The headers a 200 and a 304 of this representation share (Cache-Control, ETag, Vary,
    /// Last-Modified, policy headers), built once at load.
    pub common: hyper::HeaderMap,
    /// `common` plus what a full 200 adds (Content-Type, Content-Encoding, Accept-Ranges,
    /// Content-Length): most responses are one clone of this.
    pub full: hyper::HeaderMap,
}

/// Where a representation's bytes are.
#[derive(Debug, Clone)]
pub enum Body {
    Memory(Bytes),
    Disk(PathBuf),
}

/// A servable file.
#[derive(Debug)]
pub struct Entry {
    /// Output path relative to the served folder.
    pub path: String,
    /// Named by its content (immutable): safe to keep serving after it left the current version.
    pub fingerprinted: bool,
    pub content_type: HeaderValue,
    pub cache_control: HeaderValue,
    pub headers: Vec<(HeaderName, HeaderValue)>,
    pub last_modified: Option<(SystemTime, HeaderValue)>,
    pub identity: Variant,
    /// Encoded variants, best first (br, zstd, gzip).
    pub encoded: Vec<Variant>,
}

/// A snapshot of the served folder.
#[derive(Debug)]
pub struct Index {
    /// Path under the URL prefix (no leading `/`) → entry.
    pub files: Map<Arc<Entry>>,
    /// Fingerprinted files of the previous versions that this one no longer has, with how many versions
    /// ago they were current: pages of an old version still in caches and browsers keep working.
    pub retired: Map<(Arc<Entry>, u8)>,
    /// URL prefix, starting and ending with `/`.
    pub prefix: String,
    pub info: Option<BuildInfo>,
    /// The manifest's digest; empty without a manifest.
    pub digest: String,
    pub not_found: Option<Arc<Entry>>,
    pub error: Option<Arc<Entry>>,
}

fn header_value(v: &str, what: &str) -> Result<HeaderValue, ServeError> {
    HeaderValue::from_str(v)
        .map_err(|_| ServeError::Config(format!("{what} `{v}` is not a valid HTTP header value")))
}

fn etag(hash: &str) -> HeaderValue {
    // 128 bits of the content hash: unique enough, shorter on the wire.
    HeaderValue::from_str(&format!("\"{}\"", &hash[..hash.len().min(32)]))
        .unwrap_or(HeaderValue::from_static("\"\""))
}

struct Loader<'a> {
    dir: &'a Path,
    config: &'a ServeConfig,
    policy: &'a RoutePolicy,
}

impl Loader<'_> {
    fn body(&self, rel: &str, len: u64) -> Result<Body, ServeError> {
        let abs = self.dir.join(rel);
        if len <= self.config.memory_limit {
            let bytes = std::fs::read(&abs).map_err(|e| ServeError::Io {
                path: abs.clone(),
                source: e,
            })?;
            Ok(Body::Memory(Bytes::from(bytes)))
        } else {
            Ok(Body::Disk(abs))
        }
    }

    fn entry(
        &self,
        rel: &str,
        fingerprinted: bool,
        identity: (String, u64),
        encoded: Vec<(Codec, String, u64)>,
    ) -> Result<Entry, ServeError> {
        let policy = object_policy(self.policy, rel, fingerprinted, self.config.cors_fonts);
        let mut headers = Vec::with_capacity(policy.headers.len());
        for (k, v) in &policy.headers {
            let name = HeaderName::from_bytes(k.as_bytes()).map_err(|_| {
                ServeError::Config(format!("header name `{k}` is not a valid HTTP header name"))
            })?;
            headers.push((name, header_value(v, &format!("header `{k}`"))?));
        }
        let last_modified = std::fs::metadata(self.dir.join(rel))
            .and_then(|m| m.modified())
            .ok()
            .map(|t| {
                (
                    t,
                    HeaderValue::from_str(&httpdate::fmt_http_date(t))
                        .unwrap_or(HeaderValue::from_static("")),
                )
            });
        let mut variants = Vec::new();
        for (codec, hash, len) in encoded {
            let side = format!("{rel}{}", codec.extension());
            // A sidecar the manifest lists but the folder lacks (a build that reused it from a store,
            // `--reuse-from`) is not negotiated: only what exists is served.
            if !self.dir.join(&side).is_file() {
                continue;
            }
            variants.push(Variant {
                codec: Some(codec),
                etag: etag(&hash),
                len,
                body: self.body(&side, len)?,
                common: Default::default(),
                full: Default::default(),
            });
        }
        variants.sort_by_key(|v| match v.codec {
            Some(Codec::Br) => 0,
            Some(Codec::Zstd) => 1,
            _ => 2,
        });
        Ok(Entry {
            path: rel.to_string(),
            fingerprinted,
            content_type: header_value(&content_type(rel), "content type")?,
            cache_control: header_value(
                &policy.cache_control,
                &format!("cache-control for `{rel}`"),
            )?,
            headers,
            last_modified,
            identity: Variant {
                codec: None,
                etag: etag(&identity.0),
                len: identity.1,
                body: self.body(rel, identity.1)?,
                common: Default::default(),
                full: Default::default(),
            },
            encoded: variants,
        }
        .with_common_headers())
    }
}

impl Entry {
    /// This file as an error page: identity only (an error is never negotiated), never cached.
    fn as_error_page(&self) -> Entry {
        Entry {
            path: self.path.clone(),
            fingerprinted: false,
            content_type: self.content_type.clone(),
            cache_control: HeaderValue::from_static(ERROR),
            headers: self.headers.clone(),
            last_modified: self.last_modified.clone(),
            identity: Variant {
                codec: None,
                etag: self.identity.etag.clone(),
                len: self.identity.len,
                body: self.identity.body.clone(),
                common: Default::default(),
                full: Default::default(),
            },
            encoded: Vec::new(),
        }
        .with_common_headers()
    }

    /// A precompressed sidecar fetched by its own name (`/sitemap.xml.gz`, which crawlers are pointed at):
    /// the compressed bytes as a file of their own (`application/gzip`, no `Content-Encoding`), as a bucket
    /// or nginx serves it; the body is shared with the variant, not loaded twice.
    fn sidecar_as_file(&self, v: &Variant) -> Option<Entry> {
        let codec = v.codec?;
        let path = format!("{}{}", self.path, codec.extension());
        Some(
            Entry {
                content_type: header_value(&content_type(&path), "content type").ok()?,
                path,
                fingerprinted: self.fingerprinted,
                cache_control: self.cache_control.clone(),
                headers: self.headers.clone(),
                last_modified: self.last_modified.clone(),
                identity: Variant {
                    codec: None,
                    etag: v.etag.clone(),
                    len: v.len,
                    body: v.body.clone(),
                    common: Default::default(),
                    full: Default::default(),
                },
                encoded: Vec::new(),
            }
            .with_common_headers(),
        )
    }

    /// Fills each variant's shared headers from the entry's policy.
    fn with_common_headers(mut self) -> Entry {
        let has_variants = !self.encoded.is_empty();
        let build = |etag: &HeaderValue, e: &Entry| {
            let mut h = hyper::HeaderMap::with_capacity(8 + e.headers.len());
            h.insert(hyper::header::CACHE_CONTROL, e.cache_control.clone());
            h.insert(hyper::header::ETAG, etag.clone());
            if has_variants {
                h.insert(
                    hyper::header::VARY,
                    HeaderValue::from_static("Accept-Encoding"),
                );
            }
            if let Some((_, lm)) = &e.last_modified {
                h.insert(hyper::header::LAST_MODIFIED, lm.clone());
            }
            for (k, v) in &e.headers {
                h.insert(k.clone(), v.clone());
            }
            h
        };
        let full = |v: &Variant, e: &Entry, common: &hyper::HeaderMap| {
            let mut h = common.clone();
            h.insert(hyper::header::CONTENT_TYPE, e.content_type.clone());
            if let Some(c) = v.codec {
                h.insert(
                    hyper::header::CONTENT_ENCODING,
                    HeaderValue::from_static(c.content_encoding()),
                );
            }
            h.insert(
                hyper::header::ACCEPT_RANGES,
                HeaderValue::from_static("bytes"),
            );
            h.insert(hyper::header::CONTENT_LENGTH, HeaderValue::from(v.len));
            h
        };
        let common = build(&self.identity.etag, &self);
        self.identity.full = full(&self.identity, &self, &common);
        self.identity.common = common;
        let built: Vec<(hyper::HeaderMap, hyper::HeaderMap)> = self
            .encoded
            .iter()
            .map(|v| {
                let common = build(&v.etag, &self);
                (full(v, &self, &common), common)
            })
            .collect();
        for (v, (f, c)) in self.encoded.iter_mut().zip(built) {
            v.full = f;
            v.common = c;
        }
        self
    }
}

/// Where a folder's manifest (or build info) is: at its root (a build output), or where `deploy` keeps it
/// in a store (`.staleguard/build/`, out of the public site).
pub fn manifest_path(dir: &Path, manifest_name: &str) -> std::path::PathBuf {
    let root = dir.join(manifest_name);
    if root.exists() {
        return root;
    }
    let stored = dir.join(".staleguard/build").join(manifest_name);
    if stored.exists() { stored } else { root }
}

/// Loads a snapshot of `dir`. `manifest_name` and `build_info_name` are the build's file names.
pub fn load(
    dir: &Path,
    config: &ServeConfig,
    policy: &RoutePolicy,
    manifest_name: &str,
    build_info_name: &str,
) -> Result<Index, ServeError> {
    let loader = Loader {
        dir,
        config,
        policy,
    };
    let mut files: Map<Arc<Entry>> = Map::default();
    let manifest_path = manifest_path(dir, manifest_name);
    let (prefix, digest) = match std::fs::read(&manifest_path) {
        Ok(bytes) => {
            let m: Manifest = serde_json::from_slice(&bytes).map_err(|e| {
                ServeError::Config(format!(
                    "`{}` is not a staleguard manifest: {e}",
                    manifest_path.display()
                ))
            })?;
            for (logical, e) in &m.files {
                let encoded: Vec<(Codec, String, u64)> = e
                    .encodings
                    .iter()
                    .map(|(c, v)| (*c, v.hash.clone(), v.size))
                    .collect();
                let fingerprinted = !e.mutable;
                let main = Arc::new(loader.entry(
                    &e.path,
                    fingerprinted,
                    (e.hash.clone(), e.size),
                    encoded.clone(),
                )?);
                files.insert(e.path.clone(), main);
                if e.original && e.path != *logical {
                    // The original name is mutable: same bytes, revalidated.
                    let orig = Arc::new(loader.entry(
                        logical,
                        false,
                        (e.hash.clone(), e.size),
                        encoded,
                    )?);
                    files.insert(logical.clone(), orig);
                }
            }
            // Sidecars of fixed-name files are reachable by their own names too (a generator's
            // `sitemap.xml.gz`, now written by the build from `sitemap.xml`).
            let sidecars: Vec<Entry> = files
                .values()
                .filter(|e| !e.fingerprinted)
                .flat_map(|e| e.encoded.iter().filter_map(|v| e.sidecar_as_file(v)))
                .collect();
            for side in sidecars {
                if !files.contains_key(&side.path) {
                    files.insert(side.path.clone(), Arc::new(side));
                }
            }
            // Fingerprinted files of earlier builds (pages rendered or cached before the rebuild still
            // name them): immutable, with their sidecars.
            for (path, r) in &m.retained {
                if let Some((base, _)) = Codec::split_sidecar(path)
                    && m.retained.contains_key(base)
                {
                    continue;
                }
                let encoded: Vec<(Codec, String, u64)> = Codec::ALL
                    .into_iter()
                    .filter_map(|c| {
                        m.retained
                            .get(&format!("{path}{}", c.extension()))
                            .map(|v| (c, v.hash.clone(), v.size))
                    })
                    .collect();
                if files.contains_key(path) {
                    continue;
                }
                let entry = loader.entry(path, true, (r.hash.clone(), r.size), encoded)?;
                files.insert(path.clone(), Arc::new(entry));
            }
            (m.url_prefix.clone(), m.digest.clone())
        }
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => ("/".to_string(), String::new()),
        Err(e) => {
            return Err(ServeError::Io {
                path: manifest_path,
                source: e,
            });
        }
    };
    // Files the manifest does not describe (the manifests themselves, build-info, or a folder that was
    // not built by staleguard): mutable, hashed now.
    for entry in walkdir::WalkDir::new(dir)
        .follow_links(true)
        .sort_by_file_name()
    {
        let entry = entry
            .map_err(|e| ServeError::Config(format!("cannot walk `{}`: {e}", dir.display())))?;
        if !entry.file_type().is_file() {
            continue;
        }
        let Some(rel) = entry
            .path()
            .strip_prefix(dir)
            .ok()
            .and_then(|p| p.to_str())
            .map(|s| s.replace('\\', "/"))
        else {
            continue;
        };
        if files.contains_key(&rel)
            || [".br", ".gz", ".zst"].iter().any(|x| rel.ends_with(x))
                && files.contains_key(rel.rsplit_once('.').map_or("", |(a, _)| a))
        {
            continue;
        }
        if rel.contains(".sgtmp") || staleguard_core::deploy::is_staging_name(&rel) {
            continue; // a build's or a deploy's file in the middle of being written (or left by a kill)
        }
        if is_hidden(&rel) {
            continue; // `.git/`, `.env`, editor files: never served (`.well-known/` is)
        }
        let bytes = std::fs::read(entry.path()).map_err(|e| ServeError::Io {
            path: entry.path().to_path_buf(),
            source: e,
        })?;
        let hash = blake3::hash(&bytes).to_hex().to_string();
        let mut encoded = Vec::new();
        for codec in [Codec::Br, Codec::Zstd, Codec::Gzip] {
            let side = dir.join(format!("{rel}{}", codec.extension()));
            if let Ok(z) = std::fs::read(&side) {
                encoded.push((codec, blake3::hash(&z).to_hex().to_string(), z.len() as u64));
            }
        }
        files.insert(
            rel.clone(),
            Arc::new(loader.entry(&rel, false, (hash, bytes.len() as u64), encoded)?),
        );
    }
    let info: Option<BuildInfo> = std::fs::read(self::manifest_path(dir, build_info_name))
        .ok()
        .and_then(|b| serde_json::from_slice(&b).ok());
    let page = |name: &str| {
        files
            .get(name)
            .filter(|_| !name.is_empty())
            .map(|e| Arc::new(e.as_error_page()))
    };
    let not_found = page(&config.not_found_page);
    let error = page(&config.error_page);
    Ok(Index {
        files,
        retired: Map::default(),
        prefix,
        info,
        digest,
        not_found,
        error,
    })
}

/// How many versions back a fingerprinted file stays servable after it left the current version.
pub const RETIRED_VERSIONS: u8 = 2;

impl Index {
    /// Keeps the fingerprinted files of `previous` (and of the versions before it, up to
    /// [`RETIRED_VERSIONS`]) that this version does not have.
    pub fn retire_from(&mut self, previous: &Index) {
        for (path, e) in &previous.files {
            if e.fingerprinted && !self.files.contains_key(path) {
                self.retired.insert(path.clone(), (e.clone(), 1));
            }
        }
        for (path, (e, age)) in &previous.retired {
            if *age < RETIRED_VERSIONS && !self.files.contains_key(path) {
                self.retired
                    .entry(path.clone())
                    .or_insert_with(|| (e.clone(), age + 1));
            }
        }
    }

    /// The current file at `path`, else a retired fingerprinted one.
    pub fn get(&self, path: &str) -> Option<&Arc<Entry>> {
        self.files
            .get(path)
            .or_else(|| self.retired.get(path).map(|(e, _)| e))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn hidden_paths() {
        for (p, want) in [
            (".git/config", true),
            ("a/.env", true),
            (".well-known/security.txt", false),
            ("css/a.css", false),
            ("a..b.css", false),
        ] {
            assert_eq!(is_hidden(p), want, "{p}");
        }
    }
}
