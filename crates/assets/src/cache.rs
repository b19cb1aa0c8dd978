//! The incremental cache: what the last build learned, so the next one redoes only what changed.
//!
//! `state.json` records, per source file, its size, mtime and content hash (so an untouched file is not
//! read again); the references found in each distinct content (so it is not scanned again); each file's
//! final hash for a given content and set of rewrites (so it is not rewritten again); and each output
//! file's hash, size and mtime (so an output already in place is not written again). Compressed sidecars
//! are content-addressed blobs under `blobs/`, named by the content hash and the codec with its level,
//! so the same bytes are never compressed twice, across builds and branches. Everything is checked
//! against the real files before it is trusted; a missing or corrupt cache only costs time.

use std::collections::{BTreeMap, BTreeSet, HashMap};
use std::path::{Path, PathBuf};

use serde::{Deserialize, Serialize};

use crate::refs::{FoundRef, RefKind, Syntax};

/// Bumped when the state's meaning changes; an older state is ignored.
pub const STATE_FORMAT: u32 = 4;

#[derive(Debug, Default, Serialize, Deserialize)]
pub struct State {
    pub format: u32,
    /// Fingerprint of the settings the scans and finals depend on.
    pub settings: String,
    pub sources: HashMap<String, SourceState>,
    /// Raw content hash → references found in it.
    pub scans: HashMap<String, CachedScan>,
    /// Logical path → final content for a raw content and rewrite set.
    pub finals: HashMap<String, FinalState>,
    /// Output path → what is there.
    pub outputs: BTreeMap<String, OutputState>,
    /// Blob name → (size, hash) of the compressed bytes; size 0 means "not worth keeping". A memo only:
    /// the blob file on disk is the truth (an empty blob file records "not worth keeping").
    pub blobs: BTreeMap<String, BlobState>,
    /// Blobs used by the previous build (kept one more build, so switching back is free).
    #[serde(default)]
    pub previous_blobs: BTreeSet<String>,
    /// `[build.images]`: a source image's content hash and the image settings' key → what its
    /// variants are (their bytes are blobs).
    #[serde(default)]
    pub images: BTreeMap<String, crate::images::ImageMemo>,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct SourceState {
    pub size: u64,
    pub mtime_ns: i128,
    pub hash: String,
}

/// What a scanner found in one content.
#[derive(Debug, Clone, Default, Serialize, Deserialize)]
pub struct CachedScan {
    pub refs: Vec<CachedRef>,
    /// HTML `<base href>`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub base_href: Option<String>,
    /// HTML `integrity=` attributes.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub integrity: Vec<crate::html::Integrity>,
    /// HTML `<img>` tags (`[build.images]`).
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub images: Vec<crate::html::ImgTag>,
    /// CSS declarations whose value is one image `url()` (`[build.images] css-image-set`).
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub css_images: Vec<crate::images::css::ImageDecl>,
}

#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct CachedRef {
    pub start: usize,
    pub end: usize,
    pub url: String,
    pub kind: RefKind,
    pub syntax: Syntax,
    /// The bytes at the span are exactly `url` (no host-language escapes).
    pub verbatim: bool,
}

impl CachedRef {
    pub fn new(r: &FoundRef, src: &[u8]) -> Self {
        CachedRef {
            start: r.span.start,
            end: r.span.end,
            url: r.url.clone(),
            kind: r.kind,
            syntax: r.syntax,
            verbatim: r.is_verbatim(src),
        }
    }
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct FinalState {
    /// Raw content hash.
    pub raw: String,
    /// Hash of the rewrites applied.
    pub edits: String,
    /// Final content hash and size.
    pub hash: String,
    pub size: u64,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct OutputState {
    pub hash: String,
    pub size: u64,
    pub mtime_ns: i128,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub struct BlobState {
    pub size: u64,
    #[serde(with = "hex32")]
    pub hash: [u8; 32],
}

mod hex32 {
    use serde::{Deserialize, Deserializer, Serializer};

    pub fn serialize<S: Serializer>(v: &[u8; 32], s: S) -> Result<S::Ok, S::Error> {
        s.serialize_str(&blake3::Hash::from_bytes(*v).to_hex())
    }

    pub fn deserialize<'de, D: Deserializer<'de>>(d: D) -> Result<[u8; 32], D::Error> {
        let s = String::deserialize(d)?;
        blake3::Hash::from_hex(&s)
            .map(|h| *h.as_bytes())
            .map_err(serde::de::Error::custom)
    }
}

/// The cache folder.
pub struct Cache {
    pub dir: PathBuf,
}

impl Cache {
    pub fn new(dir: PathBuf) -> Cache {
        Cache { dir }
    }

    fn state_path(&self) -> PathBuf {
        self.dir.join("state.json")
    }

    /// Loads the state, or an empty one when there is none, it is unreadable, or it was written for
    /// other settings (then only the settings-independent parts are kept).
    pub fn load(&self, settings: &str) -> State {
        let mut state: State = std::fs::read(self.state_path())
            .ok()
            .and_then(|b| serde_json::from_slice(&b).ok())
            .filter(|s: &State| s.format == STATE_FORMAT)
            .unwrap_or_default();
        if state.settings != settings {
            state.scans.clear();
            state.finals.clear();
            state.settings = settings.to_string();
        }
        state.format = STATE_FORMAT;
        state
    }

    /// Saves the state atomically.
    pub fn save(&self, state: &State) -> std::io::Result<()> {
        std::fs::create_dir_all(&self.dir)?;
        let bytes = serde_json::to_vec(state).map_err(std::io::Error::other)?;
        write_atomic(&self.state_path(), &bytes)
    }

    /// Path of a compressed blob.
    pub fn blob_path(&self, name: &str) -> PathBuf {
        self.dir.join("blobs").join(&name[..2]).join(name)
    }

    /// Reads a blob if it is there with the expected size.
    pub fn read_blob(&self, name: &str, size: u64) -> Option<Vec<u8>> {
        let b = std::fs::read(self.blob_path(name)).ok()?;
        (b.len() as u64 == size).then_some(b)
    }

    pub fn write_blob(&self, name: &str, bytes: &[u8]) -> std::io::Result<()> {
        let p = self.blob_path(name);
        if let Some(parent) = p.parent() {
            std::fs::create_dir_all(parent)?;
        }
        write_atomic(&p, bytes)
    }

    /// Deletes blobs not in `keep`. Best effort: a blob that cannot be removed is left.
    pub fn prune_blobs(&self, keep: &BTreeSet<String>) {
        let Ok(dirs) = std::fs::read_dir(self.dir.join("blobs")) else {
            return;
        };
        for d in dirs.flatten() {
            let Ok(files) = std::fs::read_dir(d.path()) else {
                continue;
            };
            for f in files.flatten() {
                let name = f.file_name();
                if !keep.contains(name.to_string_lossy().as_ref()) {
                    let _ = std::fs::remove_file(f.path());
                }
            }
        }
    }
}

/// Writes a file through a temporary name and a rename, so a reader never sees it half-written.
pub fn write_atomic(path: &Path, bytes: &[u8]) -> std::io::Result<()> {
    let tmp = tmp_name(path);
    std::fs::write(&tmp, bytes)?;
    std::fs::rename(&tmp, path).inspect_err(|_| {
        let _ = std::fs::remove_file(&tmp);
    })
}

/// Copies a file through a temporary name and a rename.
pub fn copy_atomic(from: &Path, to: &Path) -> std::io::Result<()> {
    let tmp = tmp_name(to);
    std::fs::copy(from, &tmp)?;
    std::fs::rename(&tmp, to).inspect_err(|_| {
        let _ = std::fs::remove_file(&tmp);
    })
}

fn tmp_name(path: &Path) -> PathBuf {
    let mut name = path
        .file_name()
        .map(|n| n.to_os_string())
        .unwrap_or_default();
    name.push(format!(".sgtmp{}", std::process::id()));
    path.with_file_name(name)
}

/// Size and mtime of a file, if it exists.
pub fn stat(path: &Path) -> Option<(u64, i128)> {
    let md = std::fs::metadata(path).ok()?;
    let mtime = md
        .modified()
        .ok()
        .and_then(|t| t.duration_since(std::time::UNIX_EPOCH).ok())
        .map_or(0, |d| d.as_nanos() as i128);
    Some((md.len(), mtime))
}
