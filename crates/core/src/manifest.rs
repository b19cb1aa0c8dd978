//! Build manifests: staleguard's own (`staleguard.manifest.json`), Django's `staticfiles.json`, and
//! `build-info.json`.
//!
//! Ours maps each logical path to its output path with the content hash, size, precompressed variants and
//! mutability; serve, deploy and invalidate read it. Django's is the `ManifestStaticFilesStorage` format
//! (version `1.1`), so `{% static %}` resolves our names unchanged.

use std::collections::BTreeMap;

use serde::{Deserialize, Serialize};

use crate::config::Codec;
use crate::naming::HASH_LEN;

/// Format version of [`Manifest`].
pub const MANIFEST_FORMAT: u32 = 1;

/// staleguard's manifest of one build.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Manifest {
    /// Format version ([`MANIFEST_FORMAT`]).
    pub format: u32,
    /// The build's version: a digest of every entry's logical path, output path, hash and mutability.
    pub digest: String,
    /// The URL prefix the output is served under.
    pub url_prefix: String,
    /// Logical path (as in the source) → entry, sorted.
    pub files: BTreeMap<String, ManifestEntry>,
    /// How many builds with a new version wrote this output folder: the clock of `keep-builds`.
    #[serde(default)]
    pub builds: u64,
    /// Fingerprinted files of earlier builds still in the output folder (`keep-builds`, `keep-age`), so
    /// pages rendered or cached before the rebuild keep working: output path → file. Not part of the
    /// version; served as immutable, never deployed as part of this build.
    #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
    pub retained: BTreeMap<String, RetainedFile>,
    /// Responsive variants (`[build.images]`): logical path of a source image → its variants, widest
    /// first, so templates can write `srcset` themselves. Each variant is also an entry of `files`
    /// (logical `img/hero.640.webp`), which is what serve and deploy read.
    #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
    pub images: BTreeMap<String, Vec<ImageVariant>>,
}

/// One responsive variant of a source image.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ImageVariant {
    pub width: u32,
    pub height: u32,
    /// `webp`, `avif`, `jpeg`, `png`.
    pub format: String,
    /// Size of the encoded bytes.
    pub bytes: u64,
    /// Output path (fingerprinted), relative to the output folder.
    pub path: String,
}

/// A fingerprinted file (or sidecar) an earlier build wrote and this one keeps.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RetainedFile {
    /// blake3 of its bytes.
    pub hash: String,
    pub size: u64,
    /// `builds` of the last build that had it.
    pub last_build: u64,
    /// When a build first left it out (Unix seconds).
    pub dropped_at: i64,
}

/// One file of the build.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ManifestEntry {
    /// Output path: the fingerprinted name, or the logical name for mutable files.
    pub path: String,
    /// blake3 of the output bytes (after reference rewriting), 64 hex characters.
    pub hash: String,
    /// Size of the output bytes.
    pub size: u64,
    /// The file keeps its name and may change under it (HTML, configured `mutable` globs). Mutable files
    /// are served with revalidation and are what a CDN purge targets.
    pub mutable: bool,
    /// The name already carried a bundler's hash (`chunk-BdtEMBbM.js`) and was not hashed again.
    #[serde(default, skip_serializing_if = "std::ops::Not::not")]
    pub prehashed: bool,
    /// A copy of a fingerprinted file's bytes is also written under its logical name (mutable).
    #[serde(default, skip_serializing_if = "std::ops::Not::not")]
    pub original: bool,
    /// Precompressed sidecars, at `path` + the codec's extension (and at the logical name + extension for
    /// originals).
    #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
    pub encodings: BTreeMap<Codec, Variant>,
}

/// A precompressed sidecar.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Variant {
    /// Size of the compressed bytes.
    pub size: u64,
    /// blake3 of the compressed bytes, 64 hex characters.
    pub hash: String,
}

impl Manifest {
    /// Builds a manifest and computes its digest.
    pub fn new(url_prefix: String, files: BTreeMap<String, ManifestEntry>) -> Manifest {
        let digest = digest_of(&files);
        Manifest {
            format: MANIFEST_FORMAT,
            digest,
            url_prefix,
            files,
            builds: 1,
            retained: BTreeMap::new(),
            images: BTreeMap::new(),
        }
    }

    /// The fingerprinted (immutable) output paths of this build, with the hash and size of their bytes:
    /// hashed names and their sidecars, not the mutable originals.
    pub fn immutable_paths(&self) -> impl Iterator<Item = (String, &str, u64)> {
        self.files.values().filter(|e| !e.mutable).flat_map(|e| {
            std::iter::once((e.path.clone(), e.hash.as_str(), e.size)).chain(
                e.encodings.iter().map(|(c, v)| {
                    (
                        format!("{}{}", e.path, c.extension()),
                        v.hash.as_str(),
                        v.size,
                    )
                }),
            )
        })
    }

    /// The short version string (first 12 hex characters of the digest).
    pub fn version(&self) -> &str {
        &self.digest[..HASH_LEN.min(self.digest.len())]
    }

    /// Django's `staticfiles.json` for this build.
    pub fn to_django(&self) -> DjangoManifest {
        DjangoManifest {
            paths: self
                .files
                .iter()
                .map(|(k, e)| (k.clone(), e.path.clone()))
                .collect(),
            version: "1.1".into(),
            hash: self.version().to_string(),
        }
    }

    /// Every output path this manifest describes, with the entry it belongs to: the fingerprinted name,
    /// the original copy when kept, and each compressed sidecar of both.
    pub fn output_paths(&self) -> impl Iterator<Item = (String, &str, &ManifestEntry)> {
        self.files.iter().flat_map(|(logical, e)| {
            let mut names: Vec<String> = vec![e.path.clone()];
            if e.original && e.path != *logical {
                names.push(logical.clone());
            }
            let mut out = Vec::with_capacity(names.len() * (1 + e.encodings.len()));
            for n in names {
                for codec in e.encodings.keys() {
                    out.push((format!("{n}{}", codec.extension()), logical.as_str(), e));
                }
                out.push((n, logical.as_str(), e));
            }
            out
        })
    }
}

/// Digest over the sorted entries; independent of compression settings and of JSON formatting.
pub fn digest_of(files: &BTreeMap<String, ManifestEntry>) -> String {
    let mut h = blake3::Hasher::new();
    for (logical, e) in files {
        for part in [
            logical.as_str(),
            e.path.as_str(),
            e.hash.as_str(),
            if e.mutable { "m" } else { "i" },
        ] {
            h.update(&(part.len() as u64).to_le_bytes());
            h.update(part.as_bytes());
        }
    }
    h.finalize().to_hex().to_string()
}

/// Django's `ManifestStaticFilesStorage` manifest (`staticfiles.json`, version 1.1).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct DjangoManifest {
    pub paths: BTreeMap<String, String>,
    pub version: String,
    pub hash: String,
}

/// `build-info.json`: what a version endpoint reports.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct BuildInfo {
    /// The manifest's short version.
    pub version: String,
    /// The manifest's full digest.
    pub digest: String,
    /// `git rev-parse HEAD` of the source, when it is in a git work tree.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub git_commit: Option<String>,
    /// True when the work tree had uncommitted changes.
    #[serde(default, skip_serializing_if = "std::ops::Not::not")]
    pub git_dirty: bool,
    /// RFC 3339 UTC time of the build that first produced this version.
    pub build_time: String,
    /// staleguard's version.
    pub builder: String,
}

/// Formats seconds since the Unix epoch as RFC 3339 UTC (`2026-11-21T13:22:12Z`).
pub fn format_rfc3339(unix_secs: i64) -> String {
    let days = unix_secs.div_euclid(86_400);
    let secs = unix_secs.rem_euclid(86_400);
    // Howard Hinnant's civil_from_days.
    let z = days + 719_468;
    let era = z.div_euclid(146_097);
    let doe = z.rem_euclid(146_097);
    let yoe = (doe - doe / 1_460 + doe / 36_524 - doe / 146_096) / 365;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let d = doy - (153 * mp + 2) / 5 + 1;
    let m = if mp < 10 { mp + 3 } else { mp - 9 };
    let y = yoe + era * 400 + i64::from(m <= 2);
    format!(
        "{y:04}-{m:02}-{d:02}T{:02}:{:02}:{:02}Z",
        secs / 3600,
        secs % 3600 / 60,
        secs % 60
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    fn entry(path: &str, hash: &str, mutable: bool) -> ManifestEntry {
        ManifestEntry {
            path: path.into(),
            hash: hash.into(),
            size: 1,
            mutable,
            prehashed: false,
            original: !mutable,
            encodings: BTreeMap::new(),
        }
    }

    #[test]
    fn digest_changes_with_any_entry() {
        let mut files = BTreeMap::new();
        files.insert(
            "a.css".to_string(),
            entry("a.0123456789ab.css", "h1", false),
        );
        let a = Manifest::new("/".into(), files.clone());
        files.insert("index.html".to_string(), entry("index.html", "h2", true));
        let b = Manifest::new("/".into(), files.clone());
        files.get_mut("index.html").unwrap().hash = "h3".into();
        let c = Manifest::new("/".into(), files);
        assert_ne!(a.digest, b.digest);
        assert_ne!(b.digest, c.digest);
        assert_eq!(a.version().len(), 12);
    }

    #[test]
    fn django_shape() {
        let mut files = BTreeMap::new();
        files.insert(
            "a.css".to_string(),
            entry("a.0123456789ab.css", "h1", false),
        );
        let m = Manifest::new("/".into(), files);
        let j = serde_json::to_value(m.to_django()).unwrap();
        assert_eq!(j["version"], "1.1");
        assert_eq!(j["paths"]["a.css"], "a.0123456789ab.css");
        assert_eq!(j["hash"].as_str().unwrap().len(), 12);
    }

    #[test]
    fn output_paths_cover_originals_and_sidecars() {
        let mut e = entry("a.0123456789ab.css", "h", false);
        e.encodings.insert(
            Codec::Br,
            Variant {
                size: 1,
                hash: "x".into(),
            },
        );
        let mut files = BTreeMap::new();
        files.insert("a.css".to_string(), e);
        let m = Manifest::new("/".into(), files);
        let mut names: Vec<String> = m.output_paths().map(|(n, _, _)| n).collect();
        names.sort();
        assert_eq!(
            names,
            [
                "a.0123456789ab.css",
                "a.0123456789ab.css.br",
                "a.css",
                "a.css.br"
            ]
        );
    }

    #[test]
    fn rfc3339() {
        assert_eq!(format_rfc3339(0), "1970-01-01T00:00:00Z");
        assert_eq!(format_rfc3339(1_795_267_332), "2026-11-21T13:22:12Z");
        assert_eq!(format_rfc3339(951_782_400), "2000-02-29T00:00:00Z");
    }
}
