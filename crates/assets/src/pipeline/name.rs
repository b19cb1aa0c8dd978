//! Phase 3, name and rewrite: each file's final bytes (references rewritten to their dependencies'
//! fingerprinted names) and its name, dependencies first, cycles named together.

use std::collections::HashSet;
use std::ops::Range;

use staleguard_core::naming::hashed_path;

use crate::cache::State;
use crate::error::BuildError;
use crate::refs::splice;

use super::{Builder, Final, Node, hex};

impl<'a> Builder<'a> {
    pub(super) fn raw_bytes(&self, n: &Node) -> Result<Vec<u8>, BuildError> {
        match &n.raw {
            Some(b) => Ok(b.clone()),
            None => {
                let b = std::fs::read(&n.file.abs).map_err(|e| BuildError::io(&n.file.abs, e))?;
                if hex(&b) != n.raw_hash {
                    return Err(BuildError::Config(format!(
                        "`{}` changed while the build was running; run the build again",
                        n.file.abs.display()
                    )));
                }
                Ok(b)
            }
        }
    }

    /// The bytes a file's output starts from: its losslessly optimised bytes when it has them (checked
    /// against their recorded hash), else its raw bytes.
    pub(super) fn content_bytes(&self, n: &Node) -> Result<Vec<u8>, BuildError> {
        let Some((blob, st)) = &n.optimized else {
            return self.raw_bytes(n);
        };
        let path = self.cache.blob_path(blob);
        let b = std::fs::read(&path).map_err(|e| BuildError::io(&path, e))?;
        if blake3::hash(&b).as_bytes() != &st.hash {
            return Err(BuildError::Config(format!(
                "the build cache's optimised copy of `{}` (`{}`) changed while the build was running; run the build again",
                n.file.logical,
                path.display()
            )));
        }
        Ok(b)
    }

    /// Phase 3 for a file outside any cycle.
    pub(super) fn finish_one(
        &self,
        i: usize,
        nodes: &mut [Node],
        finals: &[Final],
        old: &State,
    ) -> Result<Final, BuildError> {
        let edits = if nodes[i].prehashed {
            Vec::new()
        } else {
            self.edits_of(i, nodes, finals, &|_| false)
        };
        let n = &nodes[i];
        let key = final_key(n, &edits);
        let cached = old
            .finals
            .get(&n.file.logical)
            .filter(|f| f.raw == n.raw_hash && f.edits == key);
        let (hash, size, bytes) = match cached {
            Some(f) => (f.hash.clone(), f.size, None),
            None => {
                let raw = self.content_bytes(n)?;
                let out = if edits.is_empty() {
                    raw
                } else {
                    splice(&raw, &mut edits.clone())
                };
                (hex(&out), out.len() as u64, Some(out))
            }
        };
        let (path, is_prehashed) = self.name(n, &hash);
        Ok(Final {
            path,
            hash,
            size,
            prehashed: is_prehashed,
            edits,
            bytes,
        })
    }

    /// The output path of a file: its logical path when mutable or already hashed by a bundler (whose
    /// bytes are never rewritten), else the logical path with `.<hash>` before the extension.
    pub(super) fn name(&self, n: &Node, name_hash: &str) -> (String, bool) {
        if n.mutable {
            return (n.file.logical.clone(), false);
        }
        if n.prehashed {
            return (n.file.logical.clone(), true);
        }
        (hashed_path(&n.file.logical, name_hash), false)
    }

    /// Phase 3 for a reference cycle: every member's name hash covers the whole cycle's content.
    pub(super) fn finish_cycle(
        &self,
        comp: &[usize],
        nodes: &mut [Node],
        finals: &mut [Final],
    ) -> Result<(), BuildError> {
        let members: HashSet<usize> = comp.iter().copied().collect();
        let mut combined = blake3::Hasher::new();
        let mut partials = Vec::with_capacity(comp.len());
        for &i in comp {
            let mut outside = self.edits_of(i, nodes, finals, &|t| members.contains(&t));
            let raw = self.content_bytes(&nodes[i])?;
            let partial = splice(&raw, &mut outside);
            combined.update(nodes[i].file.logical.as_bytes());
            combined.update(&[0]);
            combined.update(&(partial.len() as u64).to_le_bytes());
            combined.update(&partial);
            partials.push(raw);
        }
        let combined = combined.finalize();
        for &i in comp {
            let mut h = blake3::Hasher::new();
            h.update(combined.as_bytes());
            h.update(nodes[i].file.logical.as_bytes());
            let name_hash = h.finalize().to_hex().to_string();
            // Prehashed files have no edges, so they are never members of a cycle.
            let (path, _) = self.name(&nodes[i], &name_hash);
            finals[i].path = path;
        }
        for (k, &i) in comp.iter().enumerate() {
            let edits = self.edits_of(i, nodes, finals, &|_| false);
            let out = splice(&partials[k], &mut edits.clone());
            finals[i].hash = hex(&out);
            finals[i].size = out.len() as u64;
            finals[i].edits = edits;
            finals[i].bytes = Some(out);
        }
        Ok(())
    }

    /// The final bytes of a file (recomputed from the source when the cache made them unnecessary so far).
    pub(super) fn final_bytes(
        &self,
        i: usize,
        nodes: &[Node],
        finals: &[Final],
    ) -> Result<Vec<u8>, BuildError> {
        if let Some(b) = &finals[i].bytes {
            return Ok(b.clone());
        }
        let raw = self.content_bytes(&nodes[i])?;
        let out = if finals[i].edits.is_empty() {
            raw
        } else {
            splice(&raw, &mut finals[i].edits.clone())
        };
        if hex(&out) != finals[i].hash {
            return Err(BuildError::Config(format!(
                "`{}` changed while the build was running; run the build again",
                nodes[i].file.abs.display()
            )));
        }
        Ok(out)
    }
}

/// What a file's final bytes depend on besides its raw bytes (the cache's `FinalState::edits`): its
/// rewrites, and the optimised copy it starts from.
pub(super) fn final_key(n: &Node, edits: &[(Range<usize>, String)]) -> String {
    let key = edits_key(edits);
    match &n.optimized {
        Some((blob, _)) => format!("{key}.{blob}"),
        None => key,
    }
}

fn edits_key(edits: &[(Range<usize>, String)]) -> String {
    let mut h = blake3::Hasher::new();
    for (r, s) in edits {
        h.update(&(r.start as u64).to_le_bytes());
        h.update(&(r.end as u64).to_le_bytes());
        h.update(&(s.len() as u64).to_le_bytes());
        h.update(s.as_bytes());
    }
    h.finalize().to_hex().to_string()
}
