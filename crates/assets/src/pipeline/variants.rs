//! Phase 2b, responsive images (`[build.images]`): the variants of every source image the settings
//! select, taken from the blob cache when this content was processed under these settings before (each
//! blob checked by size), else decoded once and made now, largest images first, in parallel; then
//! named by their own content hash. Phase 3 offers them in the pages' `<img>` tags; phase 5 writes them
//! as immutable outputs and lists them in the manifest.

use std::collections::{BTreeMap, BTreeSet, HashMap};

use rayon::prelude::*;
use staleguard_core::manifest::{ImageVariant, ManifestEntry};
use staleguard_core::naming::hashed_path;

use crate::cache::{BlobState, State};
use crate::error::BuildError;
use crate::images::{self, ImageMemo, ImageSet, Variant};

use super::write::{From, Output};
use super::{BuildReport, Builder, Node, Warning};

impl<'a> Builder<'a> {
    #[allow(clippy::too_many_arguments)]
    pub(super) fn make_variants(
        &self,
        nodes: &mut [Node],
        index: &HashMap<String, usize>,
        old: &State,
        report: &mut BuildReport,
        blobs_used: &mut BTreeSet<String>,
        new_blobs: &mut BTreeMap<String, BlobState>,
        memos: &mut BTreeMap<String, ImageMemo>,
    ) -> Result<(), BuildError> {
        let Some(s) = &self.images else {
            return Ok(());
        };
        // (node, fallback format, memo key), largest first.
        let mut wanted: Vec<(usize, images::OutFormat, String)> = nodes
            .iter()
            .enumerate()
            // A bundler-hashed image (Vite's `assets/hero-Bx3kL9aQ.jpg`, Astro's `_astro/…`) gets
            // variants too: they are new files, and the image itself keeps its name and bytes.
            .filter(|(_, n)| !n.mutable)
            .filter_map(|(i, n)| {
                let f = s.wants(&n.file.logical, n.file.size)?;
                Some((i, f, format!("{}.{}", n.raw_hash, s.key())))
            })
            .collect();
        wanted.sort_by_key(|(i, _, _)| std::cmp::Reverse(nodes[*i].file.size));
        let cached = |key: &str| -> Option<(ImageMemo, Vec<BlobState>)> {
            let memo = old.images.get(key)?;
            let states = memo
                .variants
                .iter()
                .map(|v| {
                    let st = old.blobs.get(&v.blob)?;
                    let on_disk = crate::cache::stat(&self.cache.blob_path(&v.blob))?.0;
                    (on_disk == st.size && st.size > 0).then_some(*st)
                })
                .collect::<Option<Vec<_>>>()?;
            Some((memo.clone(), states))
        };
        /// The variants (memo, blob states, made now?), and the optimised original when worth it.
        type Made = (
            Result<(ImageMemo, Vec<BlobState>, bool), String>,
            Option<(String, BlobState, bool)>,
        );
        let nodes_ro: &[Node] = nodes;
        let made: Vec<Made> = wanted
            .par_iter()
            .map(|(i, fallback, key)| {
                let n = &nodes_ro[*i];
                let optimized = self.optimize_original(n, old, s);
                if let Some((memo, states)) = cached(key) {
                    return (Ok((memo, states, false)), optimized);
                }
                let variants = (|| {
                    let raw = self.raw_bytes(n).map_err(|e| e.to_string())?;
                    let p = images::process(&raw, &n.raw_hash, *fallback, s)
                        .map_err(|e| e.to_string())?;
                    let mut states = Vec::with_capacity(p.bytes.len());
                    for (v, bytes) in p.memo.variants.iter().zip(&p.bytes) {
                        self.cache
                            .write_blob(&v.blob, bytes)
                            .map_err(|e| format!("cannot write the build cache: {e}"))?;
                        states.push(BlobState {
                            size: bytes.len() as u64,
                            hash: *blake3::hash(bytes).as_bytes(),
                        });
                    }
                    Ok((p.memo, states, true))
                })();
                (variants, optimized)
            })
            .collect();
        for ((i, fallback, key), (m, optimized)) in wanted.into_iter().zip(made) {
            if let Some((blob, st, now)) = optimized {
                blobs_used.insert(blob.clone());
                new_blobs.insert(blob.clone(), st);
                // An empty blob records that optimising this content is not worth it.
                if st.size > 0 {
                    report.images_optimized += 1;
                    report.image_bytes_saved += nodes[i].file.size.saturating_sub(st.size);
                    nodes[i].optimized = Some((blob, st));
                }
                if now {
                    report.images_optimized_now += 1;
                }
            }
            let (memo, states, now) = match m {
                Ok(x) => x,
                Err(e) => {
                    report.warnings.push(Warning {
                        location: nodes[i].file.logical.clone(),
                        message: format!("no responsive variants: {e}; the image is left as it is"),
                    });
                    continue;
                }
            };
            let logical = &nodes[i].file.logical;
            let mut variants = Vec::with_capacity(memo.variants.len());
            for (v, st) in memo.variants.iter().zip(&states) {
                let hash = blake3::Hash::from_bytes(st.hash).to_hex().to_string();
                let vlogical = images::variant_logical(logical, v.width, v.format);
                if index.contains_key(&vlogical) {
                    return Err(BuildError::Config(format!(
                        "source file `{vlogical}` has the name of a responsive variant of `{logical}`; rename it, or leave `{logical}` out with `build.images.exclude`"
                    )));
                }
                blobs_used.insert(v.blob.clone());
                new_blobs.insert(v.blob.clone(), *st);
                variants.push(Variant {
                    width: v.width,
                    height: v.height,
                    format: v.format,
                    blob: v.blob.clone(),
                    path: hashed_path(&vlogical, &hash),
                    hash,
                    size: st.size,
                    logical: vlogical,
                });
            }
            report.images += 1;
            report.image_variants += variants.len();
            if now {
                report.images_processed += 1;
            } else {
                report.images_from_cache += 1;
            }
            nodes[i].variants = Some(ImageSet {
                width: memo.width,
                height: memo.height,
                fallback,
                variants,
            });
            memos.insert(key, memo);
        }
        Ok(())
    }

    /// A source image's lossless optimisation (`[build.images] optimize`): its blob, state and whether
    /// it was made now; an empty blob when it is not worth it (so the next build does not try again).
    /// `None` when it is off, the format has no lossless optimiser, or the cache cannot be written (the
    /// original is then output as it is).
    fn optimize_original(
        &self,
        n: &Node,
        old: &State,
        s: &images::Settings<'_>,
    ) -> Option<(String, BlobState, bool)> {
        // A bundler-hashed file is never rewritten (its name, and any `integrity` the bundler wrote,
        // are for those bytes).
        if !s.cfg.optimize || n.prehashed || !images::optimize::handles(&n.file.logical) {
            return None;
        }
        let blob = images::optimize::blob_name(&n.raw_hash, s.cfg.strip_metadata);
        if let Some(st) = old.blobs.get(&blob)
            && crate::cache::stat(&self.cache.blob_path(&blob)).map(|s| s.0) == Some(st.size)
        {
            return Some((blob, *st, false));
        }
        let raw = self.raw_bytes(n).ok()?;
        let out = images::optimize::original(&raw, s.cfg.strip_metadata).unwrap_or_default();
        self.cache.write_blob(&blob, &out).ok()?;
        let st = BlobState {
            size: out.len() as u64,
            hash: *blake3::hash(&out).as_bytes(),
        };
        Some((blob, st, true))
    }

    /// Phase 5 for an image's variants: immutable outputs (from their blobs) and manifest entries.
    pub(super) fn add_variants(
        &self,
        n: &Node,
        set: &ImageSet,
        outputs: &mut BTreeMap<String, Output>,
        entries: &mut BTreeMap<String, ManifestEntry>,
        lists: &mut BTreeMap<String, Vec<ImageVariant>>,
    ) -> Result<(), BuildError> {
        let mut list = Vec::with_capacity(set.variants.len());
        for v in &set.variants {
            self.add_output(
                outputs,
                &v.path,
                Output {
                    hash: v.hash.clone(),
                    size: v.size,
                    from: From::Blob(v.blob.clone()),
                    immutable: true,
                },
            )?;
            entries.insert(
                v.logical.clone(),
                ManifestEntry {
                    path: v.path.clone(),
                    hash: v.hash.clone(),
                    size: v.size,
                    mutable: false,
                    prehashed: false,
                    original: false,
                    encodings: BTreeMap::new(),
                },
            );
            list.push(ImageVariant {
                width: v.width,
                height: v.height,
                format: v.format.name().to_string(),
                bytes: v.size,
                path: v.path.clone(),
            });
        }
        lists.insert(n.file.logical.clone(), list);
        Ok(())
    }
}
