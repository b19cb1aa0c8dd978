//! Phase 4, compress: each distinct content compressed once per codec (parallel, largest first,
//! cached as blobs), or taken from a precompressed sidecar in the source.

use std::collections::{BTreeMap, BTreeSet, HashMap, HashSet};
use std::path::Path;
use std::sync::Mutex;
use std::sync::atomic::{AtomicUsize, Ordering};

use rayon::prelude::*;
use staleguard_core::config::Codec;
use staleguard_core::manifest::Variant;

use crate::cache::{BlobState, State};
use crate::compress::{Levels, compress, worth_keeping};
use crate::error::BuildError;
use crate::source::SourceFile;

use super::{BuildReport, Builder, Final, Node, Phase, Progress};

impl<'a> Builder<'a> {
    fn compressible(&self, logical: &str, size: u64) -> bool {
        if size == 0 {
            return false;
        }
        let name = logical
            .rsplit('/')
            .next()
            .unwrap_or(logical)
            .to_ascii_lowercase();
        !self
            .skip_compress
            .iter()
            .any(|suffix| name.ends_with(suffix.as_str()))
    }

    /// The levels a file is compressed at: the cheap ones for `cheap-compress` files (source maps).
    fn levels_for(&self, logical: &str) -> &Levels {
        if self.cheap.is_match(logical) {
            &self.cheap_levels
        } else {
            &self.levels
        }
    }

    /// Phase 4: every distinct (content, codec) compressed once, largest first, on every core; what the
    /// local cache has is taken from it, and what the store's current deploy proves it holds
    /// (`--reuse-from`) is not compressed at all: its blob names are returned as reused.
    #[allow(clippy::too_many_arguments)]
    pub(super) fn compress_all(
        &self,
        nodes: &[Node],
        finals: &mut [Final],
        out_names: &[Vec<(String, bool)>],
        old: &State,
        sidecars: &SourceSidecars,
        progress: &dyn Progress,
        report: &mut BuildReport,
        blobs_used: &mut BTreeSet<String>,
        new_blobs: &mut BTreeMap<String, BlobState>,
    ) -> Result<Compressed, BuildError> {
        let mut codecs = self.cfg.compress.clone();
        codecs.sort();
        codecs.dedup();
        // Blob name → (node that has the content, codec).
        let mut jobs: BTreeMap<String, (usize, Codec)> = BTreeMap::new();
        let mut reused: HashSet<String> = HashSet::new();
        let mut known: HashMap<String, BlobState> = HashMap::new();
        let mut forced: HashSet<String> = HashSet::new();
        // Per node: the (codec, blob name) it wants, empty when it is not compressed.
        let wanted: Vec<Vec<(Codec, String)>> = nodes
            .iter()
            .enumerate()
            .map(|(i, n)| {
                if !self.compressible(&n.file.logical, finals[i].size) {
                    return Vec::new();
                }
                codecs
                    .iter()
                    .filter(|&&c| !sidecars.skipped.contains(&(n.file.logical.clone(), c)))
                    .map(|&c| {
                        let tag = self.levels_for(&n.file.logical).tag(c);
                        (c, format!("{}.{}", finals[i].hash, tag))
                    })
                    .collect()
            })
            .collect();
        for (i, want) in wanted.iter().enumerate() {
            for (codec, blob) in want {
                blobs_used.insert(blob.clone());
                let force = sidecars
                    .forced
                    .contains(&(nodes[i].file.logical.clone(), *codec));
                if force {
                    forced.insert(blob.clone());
                }
                if known.get(blob).is_some_and(|s| !force || s.size > 0) || jobs.contains_key(blob)
                {
                    continue;
                }
                // A sidecar the source had must exist again: an empty ("not worth it") blob is redone.
                match self
                    .blob_on_disk(blob, old)
                    .filter(|s| !force || s.size > 0)
                {
                    Some(s) => {
                        known.insert(blob.clone(), s);
                        report.compressed_from_cache += 1;
                    }
                    None => match self.stored_sidecar(i, *codec, blob, force, finals, out_names) {
                        Some(s) => {
                            known.insert(blob.clone(), s);
                            reused.insert(blob.clone());
                            report.reused += 1;
                        }
                        None => {
                            jobs.insert(blob.clone(), (i, *codec));
                        }
                    },
                }
            }
        }
        // Largest first, so the longest job never starts last.
        let mut queue: Vec<(String, usize, Codec)> =
            jobs.into_iter().map(|(b, (i, c))| (b, i, c)).collect();
        queue.sort_by(|a, b| {
            finals[b.1]
                .size
                .cmp(&finals[a.1].size)
                .then_with(|| a.0.cmp(&b.0))
        });
        let total: u64 = queue.iter().map(|(_, i, _)| finals[*i].size).sum();
        progress.start(Phase::Compress, total);
        // Load the bytes of files whose compression is needed but whose final bytes were cached away.
        let need: BTreeSet<usize> = queue
            .iter()
            .map(|(_, i, _)| *i)
            .filter(|&i| finals[i].bytes.is_none())
            .collect();
        let loaded: Vec<(usize, Vec<u8>)> = need
            .into_par_iter()
            .map(|i| self.final_bytes(i, nodes, finals).map(|b| (i, b)))
            .collect::<Result<_, _>>()?;
        for (i, b) in loaded {
            finals[i].bytes = Some(b);
        }
        let next = AtomicUsize::new(0);
        let results: Mutex<Vec<(String, BlobState)>> = Mutex::new(Vec::with_capacity(queue.len()));
        let failure: Mutex<Option<BuildError>> = Mutex::new(None);
        let finals_ref: &[Final] = finals;
        std::thread::scope(|s| {
            for _ in 0..self.threads.min(queue.len().max(1)) {
                s.spawn(|| {
                    loop {
                        let k = next.fetch_add(1, Ordering::Relaxed);
                        let Some((blob, i, codec)) = queue.get(k) else {
                            break;
                        };
                        let data = finals_ref[*i].bytes.as_deref().unwrap_or_default();
                        let levels = self.levels_for(&nodes[*i].file.logical);
                        let result = compress(*codec, data, levels)
                            .map_err(|e| BuildError::Compress {
                                path: nodes[*i].file.logical.clone(),
                                source: e,
                            })
                            .and_then(|z| {
                                let keep = forced.contains(blob)
                                    || worth_keeping(
                                        data.len(),
                                        z.len(),
                                        self.cfg.compress_min_saving,
                                    );
                                let stored: &[u8] = if keep { &z } else { &[] };
                                self.cache
                                    .write_blob(blob, stored)
                                    .map_err(|e| BuildError::io(&self.cache.blob_path(blob), e))?;
                                let hash = if keep {
                                    *blake3::hash(&z).as_bytes()
                                } else {
                                    [0; 32]
                                };
                                Ok(BlobState {
                                    size: stored.len() as u64,
                                    hash,
                                })
                            });
                        progress.advance(data.len() as u64);
                        match result {
                            Ok(state) => results
                                .lock()
                                .unwrap_or_else(|e| e.into_inner())
                                .push((blob.clone(), state)),
                            Err(e) => {
                                *failure.lock().unwrap_or_else(|e| e.into_inner()) = Some(e);
                                next.store(usize::MAX / 2, Ordering::Relaxed);
                                break;
                            }
                        }
                    }
                });
            }
        });
        progress.finish(Phase::Compress);
        if let Some(e) = failure.into_inner().unwrap_or_else(|e| e.into_inner()) {
            return Err(e);
        }
        report.compressed_now = queue.len();
        for (b, s) in results.into_inner().unwrap_or_else(|e| e.into_inner()) {
            known.insert(b, s);
        }
        let mut out: Vec<Encodings> = vec![BTreeMap::new(); nodes.len()];
        let mut not_kept: Vec<Vec<(Codec, String)>> = vec![Vec::new(); nodes.len()];
        for (i, want) in wanted.into_iter().enumerate() {
            for (codec, blob) in want {
                if let Some(s) = known.get(&blob) {
                    if !reused.contains(&blob) {
                        new_blobs.insert(blob.clone(), *s);
                    }
                    if s.size > 0 {
                        let hash = blake3::Hash::from_bytes(s.hash).to_hex().to_string();
                        out[i].insert(codec, (blob, Variant { size: s.size, hash }));
                    } else if let Some((_, tag)) = blob.split_once('.') {
                        not_kept[i].push((codec, tag.to_string()));
                    }
                }
            }
        }
        Ok(Compressed {
            encodings: out,
            reused,
            not_kept,
        })
    }

    /// The sidecar of node `i` in `codec` as the store's current deploy holds it, when its record proves
    /// it for every output name of the file (see [`crate::reuse`]). A sidecar a full build would drop as
    /// not worth keeping is "not worth keeping" here too (an empty blob state), so the manifest is the
    /// same either way.
    fn stored_sidecar(
        &self,
        i: usize,
        codec: Codec,
        blob: &str,
        force: bool,
        finals: &[Final],
        out_names: &[Vec<(String, bool)>],
    ) -> Option<BlobState> {
        let reuse = self.reuse?;
        let (_, tag) = blob.split_once('.')?;
        let names: Vec<String> = out_names[i].iter().map(|(n, _)| n.clone()).collect();
        let f = &finals[i];
        let not_kept = BlobState {
            size: 0,
            hash: [0; 32],
        };
        let Some(v) = reuse.sidecar(&names, &f.hash, f.size, codec, tag)? else {
            // A sidecar the source had is written whatever it saves: compressed again.
            return (!force).then_some(not_kept);
        };
        let hash = blake3::Hash::from_hex(&v.hash).ok()?;
        let keep = force
            || worth_keeping(
                f.size as usize,
                v.size as usize,
                self.cfg.compress_min_saving,
            );
        Some(if keep {
            BlobState {
                size: v.size,
                hash: *hash.as_bytes(),
            }
        } else {
            not_kept
        })
    }

    /// A blob already in the cache: the memo when the file is there with its size, else the file itself.
    fn blob_on_disk(&self, blob: &str, old: &State) -> Option<BlobState> {
        let path = self.cache.blob_path(blob);
        let (size, _) = crate::cache::stat(&path)?;
        if let Some(s) = old.blobs.get(blob).filter(|s| s.size == size) {
            return Some(*s);
        }
        let bytes = std::fs::read(&path).ok()?;
        let hash = if bytes.is_empty() {
            [0; 32]
        } else {
            *blake3::hash(&bytes).as_bytes()
        };
        Some(BlobState {
            size: bytes.len() as u64,
            hash,
        })
    }
}

/// Compressed copies the source already has (`sitemap.xml.gz` next to `sitemap.xml`, as MkDocs writes).
#[derive(Default)]
pub(super) struct SourceSidecars {
    /// Source files that are exactly a codec's encoding of their base file: left out, and the build
    /// writes that sidecar itself (from the base's final bytes), even where it saves little.
    pub(super) dropped: HashSet<String>,
    /// (base, codec) whose sidecar must be written because the source had it.
    pub(super) forced: HashSet<(String, Codec)>,
    /// (base, codec) whose sidecar name is taken by another source file: the user's file is kept as is
    /// and the build writes no sidecar of that codec for the base.
    pub(super) skipped: HashSet<(String, Codec)>,
}

pub(super) fn source_sidecars(
    files: &[SourceFile],
    codecs: &[Codec],
) -> Result<SourceSidecars, BuildError> {
    let by_name: HashMap<&str, &SourceFile> =
        files.iter().map(|f| (f.logical.as_str(), f)).collect();
    let mut out = SourceSidecars::default();
    for f in files {
        let Some((base, codec)) = Codec::split_sidecar(&f.logical) else {
            continue;
        };
        let Some(b) = by_name.get(base) else { continue };
        let read = |p: &Path| std::fs::read(p).map_err(|e| BuildError::io(p, e));
        let is_encoding = f.size <= b.size.saturating_mul(2) + 1024
            && crate::compress::decodes_to(codec, &read(&f.abs)?, &read(&b.abs)?);
        if is_encoding && codecs.contains(&codec) {
            out.dropped.insert(f.logical.clone());
            out.forced.insert((base.to_string(), codec));
        } else {
            out.skipped.insert((base.to_string(), codec));
        }
    }
    Ok(out)
}

/// A file's compressed sidecars: codec → (blob name, variant).
pub(super) type Encodings = BTreeMap<Codec, (String, Variant)>;

/// What phase 4 produced.
pub(super) struct Compressed {
    /// Per node, its sidecars.
    pub(super) encodings: Vec<Encodings>,
    /// Blob names the store holds (`--reuse-from`): listed, not written.
    pub(super) reused: HashSet<String>,
    /// Per node, the codecs (with their level tags) compressed and not kept, saving too little.
    pub(super) not_kept: Vec<Vec<(Codec, String)>>,
}
