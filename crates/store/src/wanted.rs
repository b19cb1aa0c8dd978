//! What a build output asks the store to hold: every key with its hash, size, headers, mutability and
//! upload rank, and where its bytes come from.
//!
//! - Files the manifest lists: fingerprinted names (and their sidecars) are immutable; originals kept
//!   under their logical names are mutable. A listed file with the manifest's size and not newer than the
//!   manifest (which the build writes last) takes the manifest's hash; any other is read, hashed and
//!   checked, so a file edited after the build is refused rather than recorded under the wrong hash.
//! - The manifests and build info are pointers, uploaded last: a client that reads them finds everything.
//! - Other files in the folder (not hidden) are mutable; a folder without a manifest is all mutable.
//!   Fingerprinted files that earlier builds left in the folder (the manifest's `retained`) are not part
//!   of the deploy: the store keeps earlier deploys' objects itself.
//! - Precompressed sidecars are separate keys (`app.1a2b.css.br`) with `Content-Encoding` and the original's
//!   `Content-Type`: a bucket has no negotiation, so a CDN rule or edge function picks the sidecar from
//!   `Accept-Encoding` (or the CDN compresses the identity object itself); `staleguard serve` on a local
//!   store negotiates them.
//! - Aliases (`tool-latest` → `tool-1.4.2`) are copies of their target, mutable, uploaded after it; the
//!   metadata file (size, sha256 of each artifact) is generated and uploaded last.
//! - Rollback copies of mutable contents (bundles) are added by `deploy`, which knows what the store has.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

use bytes::Bytes;
use rayon::prelude::*;
use staleguard_core::config::Codec;
use staleguard_core::deploy::{ObjectRecord, Rank};
use staleguard_core::manifest::Manifest;
use staleguard_core::routes::{RoutePolicy, RouteRule, object_policy};
use staleguard_core::url::is_hidden;
use staleguard_core::verify::{Artifact, DownloadMetadata};

use crate::{Result, StoreError};

/// Where an object's bytes come from.
#[derive(Debug, Clone)]
pub enum Source {
    File(PathBuf),
    Bytes(Bytes),
    /// Already in the store (a bundle of an earlier deploy); never uploaded from here.
    Stored,
    /// A sidecar the build reused from the store (`build --reuse-from`): listed in the manifest, not in
    /// the folder, and held by the store's current deploy with these bytes. Re-uploaded (with new
    /// headers, or after `--verify-remote` found it changed) from the store's own copy.
    InStore,
}

/// One wanted object.
#[derive(Debug, Clone)]
pub struct Wanted {
    pub record: ObjectRecord,
    pub source: Source,
}

/// What shapes the wanted set besides the folder.
pub struct Inputs<'a> {
    pub dir: &'a Path,
    pub routes: &'a [RouteRule],
    pub default_headers: &'a BTreeMap<String, String>,
    pub cors_fonts: bool,
    /// `[serve] tag-header` (empty: none), so stored objects carry the same surrogate keys.
    pub tag_header: &'a str,
    /// File names of the build's manifest, Django manifest and build info.
    pub pointers: &'a [String],
    /// Of those, the ones not published on the site (the manifests unless `publish-manifests`, the build
    /// info unless it is the version endpoint): kept at [`STORED_MANIFEST_DIR`] with the deploy state,
    /// where `staleguard serve` on the store finds them and no purge ever lists them.
    pub private: &'a [String],
    pub manifest_name: &'a str,
    pub aliases: &'a BTreeMap<String, String>,
    pub metadata: &'a str,
    pub artifacts: &'a [String],
    /// What the store holds (the current deploy, overlaid with an unfinished one's journal): a sidecar
    /// the manifest lists and the folder lacks (`build --reuse-from`) is deployed from it when it holds
    /// exactly the manifest's bytes.
    pub stored: &'a BTreeMap<String, ObjectRecord>,
}

/// Where the build's manifest is kept in a store when it is not published: out of the site, with the
/// deploy state (never purged, never served by `staleguard serve`).
pub const STORED_MANIFEST_DIR: &str = ".staleguard/build";

/// A file to hash, with what the manifest says it should be.
struct Candidate {
    key: String,
    /// The file in the folder (the key, but for a manifest kept out of the site).
    file: String,
    /// The key whose policy and content type apply (the base of a sidecar).
    base: String,
    codec: Option<Codec>,
    fingerprinted: bool,
    rank: Rank,
    /// The manifest's hash and size for this file.
    expect: Option<(String, u64)>,
}

/// Builds the wanted set for `dir`.
pub fn collect(inp: &Inputs<'_>) -> Result<(BTreeMap<String, Wanted>, Option<Manifest>)> {
    let table = RoutePolicy::new(inp.routes, inp.default_headers)
        .map_err(StoreError::Config)?
        .with_tag_header(inp.tag_header);
    let manifest_path = inp.dir.join(inp.manifest_name);
    let manifest: Option<Manifest> = match std::fs::read(&manifest_path) {
        Ok(b) => Some(serde_json::from_slice(&b).map_err(|e| {
            StoreError::Config(format!(
                "`{}` is not a staleguard manifest: {e}\nhint: run `staleguard build` again",
                manifest_path.display()
            ))
        })?),
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => None,
        Err(e) => {
            return Err(StoreError::Local {
                path: manifest_path,
                source: e,
            });
        }
    };
    let mut cands: BTreeMap<String, Candidate> = BTreeMap::new();
    if let Some(m) = &manifest {
        for (out, _logical, e) in m.output_paths() {
            let (base, codec) = split_sidecar(&out, e.encodings.keys());
            let fingerprinted = !e.mutable && base == e.path;
            let expect = match codec {
                Some(c) => e.encodings.get(&c).map(|v| (v.hash.clone(), v.size)),
                None => Some((e.hash.clone(), e.size)),
            };
            cands.insert(
                out.clone(),
                Candidate {
                    key: out.clone(),
                    file: out.clone(),
                    base: base.to_string(),
                    codec,
                    fingerprinted,
                    rank: if fingerprinted {
                        Rank::Immutable
                    } else {
                        Rank::Mutable
                    },
                    expect,
                },
            );
        }
    }
    // Everything else in the folder: pointers (manifests, build info) and files the build did not list.
    for entry in walkdir::WalkDir::new(inp.dir)
        .min_depth(1)
        .sort_by_file_name()
    {
        let entry = entry.map_err(|e| StoreError::Local {
            path: e.path().map(Path::to_path_buf).unwrap_or_default(),
            source: e.into(),
        })?;
        if !entry.file_type().is_file() {
            continue;
        }
        let rel = entry
            .path()
            .strip_prefix(inp.dir)
            .unwrap_or(entry.path())
            .to_string_lossy()
            .replace('\\', "/");
        if cands.contains_key(&rel) || is_hidden(&rel) {
            continue;
        }
        // Fingerprinted files earlier builds left for pages still rendered elsewhere: the store keeps
        // its own (deploy GC), so they are not part of this deploy.
        if manifest
            .as_ref()
            .is_some_and(|m| m.retained.contains_key(&rel))
        {
            continue;
        }
        let pointer = inp.pointers.iter().any(|p| p == &rel);
        let key = if inp.private.iter().any(|p| p == &rel) {
            format!("{STORED_MANIFEST_DIR}/{rel}")
        } else {
            rel.clone()
        };
        cands.insert(
            key.clone(),
            Candidate {
                key: key.clone(),
                file: rel.clone(),
                base: rel,
                codec: None,
                fingerprinted: false,
                rank: if pointer {
                    Rank::Pointer
                } else {
                    Rank::Mutable
                },
                expect: None,
            },
        );
    }
    // The build writes the manifest last: a listed file of the manifest's size and not newer than it is
    // what the build wrote, and its hash is the manifest's (a stat, not a read). Anything else is read
    // and hashed, and a listed file that differs from the manifest is refused.
    let manifest_time = std::fs::metadata(&manifest_path)
        .and_then(|m| m.modified())
        .ok();
    let hashed: Vec<Result<(String, Wanted)>> = cands
        .into_par_iter()
        .map(|(_, c)| {
            let path = inp.dir.join(&c.file);
            let local = |e| StoreError::Local {
                path: path.clone(),
                source: e,
            };
            if let (Some(codec), Some((hash, size))) = (c.codec, &c.expect)
                && std::fs::symlink_metadata(&path)
                    .is_err_and(|e| e.kind() == std::io::ErrorKind::NotFound)
            {
                return reused_sidecar(inp, &table, &c, codec, hash, *size, &path);
            }
            let trusted = match (&c.expect, manifest_time) {
                (Some((hash, size)), Some(mt)) => {
                    let meta = std::fs::metadata(&path).map_err(local)?;
                    let fresh = meta.modified().is_ok_and(|t| t <= mt);
                    (meta.len() == *size && fresh).then(|| (hash.clone(), *size))
                }
                _ => None,
            };
            let (hash, size) = match trusted {
                Some(t) => t,
                None => {
                    let bytes = std::fs::read(&path).map_err(local)?;
                    let hash = blake3::hash(&bytes).to_hex().to_string();
                    if let Some((want, _)) = &c.expect
                        && *want != hash
                    {
                        return Err(StoreError::Changed {
                            path,
                            found: hash,
                            want: want.clone(),
                        });
                    }
                    (hash, bytes.len() as u64)
                }
            };
            let headers = headers_for(&table, inp.cors_fonts, &c.base, c.fingerprinted, c.codec);
            Ok((
                c.key,
                Wanted {
                    record: ObjectRecord {
                        hash,
                        size,
                        mutable: !c.fingerprinted,
                        headers,
                        rank: c.rank,
                        etag: None,
                    },
                    source: Source::File(path),
                },
            ))
        })
        .collect();
    let mut wanted = BTreeMap::new();
    for r in hashed {
        let (k, w) = r?;
        wanted.insert(k, w);
    }
    add_aliases(inp, &table, &mut wanted)?;
    Ok((wanted, manifest))
}

/// A sidecar the manifest lists but the folder lacks: the build reused it from a store. Deployed only
/// when this store holds exactly those bytes under that key; anything else is refused by name.
fn reused_sidecar(
    inp: &Inputs<'_>,
    table: &RoutePolicy,
    c: &Candidate,
    codec: Codec,
    hash: &str,
    size: u64,
    path: &Path,
) -> Result<(String, Wanted)> {
    match inp.stored.get(&c.key) {
        Some(o) if o.hash == hash && o.size == size => Ok((
            c.key.clone(),
            Wanted {
                record: ObjectRecord {
                    hash: hash.to_string(),
                    size,
                    mutable: !c.fingerprinted,
                    headers: headers_for(
                        table,
                        inp.cors_fonts,
                        &c.base,
                        c.fingerprinted,
                        Some(codec),
                    ),
                    rank: c.rank,
                    etag: None,
                },
                source: Source::InStore,
            },
        )),
        _ => Err(StoreError::Config(format!(
            "`{}` is listed in the build's manifest but missing from the folder, and this store's current deploy does not hold it{}\nhint: a build with --reuse-from leaves out the sidecars that store already has: deploy to that store, or rebuild without --reuse-from (`[build] reuse-from = \"\"`, `deploy --no-reuse`)",
            path.display(),
            match inp.stored.get(&c.key) {
                Some(_) => " with these bytes",
                None => "",
            }
        ))),
    }
}

/// Splits `app.css.br` into (`app.css`, br) when br is one of the entry's encodings.
fn split_sidecar<'a>(
    out: &'a str,
    mut codecs: impl Iterator<Item = &'a Codec>,
) -> (&'a str, Option<Codec>) {
    codecs
        .find_map(|c| out.strip_suffix(c.extension()).map(|b| (b, Some(*c))))
        .unwrap_or((out, None))
}

/// Headers stored with an object: content type (of the base file for a sidecar), content encoding,
/// and the route table's cache-control and extra headers.
pub fn headers_for(
    table: &RoutePolicy,
    cors_fonts: bool,
    base: &str,
    fingerprinted: bool,
    codec: Option<Codec>,
) -> BTreeMap<String, String> {
    let p = object_policy(table, base, fingerprinted, cors_fonts);
    let mut h = BTreeMap::new();
    for (k, v) in p.headers {
        h.insert(k.to_ascii_lowercase(), v);
    }
    h.insert(
        "content-type".into(),
        staleguard_core::mime::content_type(base),
    );
    h.insert("cache-control".into(), p.cache_control);
    if let Some(c) = codec {
        h.insert("content-encoding".into(), c.content_encoding().into());
    }
    h
}

fn add_aliases(
    inp: &Inputs<'_>,
    table: &RoutePolicy,
    wanted: &mut BTreeMap<String, Wanted>,
) -> Result<()> {
    let mut artifacts: BTreeMap<String, Artifact> = BTreeMap::new();
    let globs = {
        let mut b = globset::GlobSetBuilder::new();
        for g in inp.artifacts {
            b.add(
                globset::GlobBuilder::new(g)
                    .literal_separator(true)
                    .build()
                    .map_err(|e| {
                        StoreError::Config(format!("invalid artifacts glob `{g}`: {e}"))
                    })?,
            );
        }
        b.build()
            .map_err(|e| StoreError::Config(format!("invalid artifacts globs: {e}")))?
    };
    for (alias, target) in inp.aliases {
        let t = wanted.get(target).cloned().ok_or_else(|| {
            StoreError::Config(format!(
                "alias `{alias}` points to `{target}`, which is not in the deployed folder\nhint: [deploy.aliases] maps an alias key to the key of a file in `{}`",
                inp.dir.display()
            ))
        })?;
        let mut record = t.record.clone();
        record.mutable = true;
        record.rank = Rank::Alias;
        record.headers = headers_for(table, inp.cors_fonts, alias, false, None);
        if let Some(enc) = t.record.headers.get("content-encoding") {
            record
                .headers
                .insert("content-encoding".into(), enc.clone());
        }
        wanted.insert(
            alias.clone(),
            Wanted {
                record,
                source: t.source.clone(),
            },
        );
    }
    if inp.metadata.is_empty() {
        return Ok(());
    }
    for (key, w) in wanted.iter() {
        let listed = inp.aliases.values().any(|t| t == key) || globs.is_match(key);
        if !listed {
            continue;
        }
        let sha256 = match &w.source {
            Source::File(p) => {
                let bytes = std::fs::read(p).map_err(|e| StoreError::Local {
                    path: p.clone(),
                    source: e,
                })?;
                sha256_hex(&bytes)
            }
            Source::Bytes(b) => sha256_hex(b),
            Source::Stored | Source::InStore => continue,
        };
        artifacts.insert(
            key.clone(),
            Artifact {
                blake3: w.record.hash.clone(),
                sha256,
                size: w.record.size,
            },
        );
    }
    let doc = DownloadMetadata {
        aliases: inp.aliases.clone(),
        artifacts,
        format: 1,
    };
    let mut bytes = serde_json::to_vec_pretty(&doc).unwrap_or_default();
    bytes.push(b'\n');
    let record = ObjectRecord {
        hash: blake3::hash(&bytes).to_hex().to_string(),
        size: bytes.len() as u64,
        mutable: true,
        headers: headers_for(table, inp.cors_fonts, inp.metadata, false, None),
        rank: Rank::Pointer,
        etag: None,
    };
    wanted.insert(
        inp.metadata.to_string(),
        Wanted {
            record,
            source: Source::Bytes(Bytes::from(bytes)),
        },
    );
    Ok(())
}

fn sha256_hex(b: &[u8]) -> String {
    use sha2::Digest;
    let d = sha2::Sha256::digest(b);
    d.iter().map(|x| format!("{x:02x}")).collect()
}
