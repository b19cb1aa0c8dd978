//! Phase 6, prune: which fingerprinted files of earlier builds stay (`keep-builds`, `keep-age`), and
//! removing what no build keeps.

use std::collections::BTreeMap;
use std::path::Path;

use staleguard_core::manifest::{Manifest, RetainedFile};

use super::Builder;
use super::write::Output;

impl<'a> Builder<'a> {
    /// Which fingerprinted files of earlier builds stay: those of the last `keep-builds` builds, and those
    /// dropped less than `keep-age` ago. Fills `manifest.builds` and `manifest.retained`; returns the
    /// paths whose time is up.
    pub(super) fn retain(
        &self,
        manifest: &mut Manifest,
        old: Option<&Manifest>,
        outputs: &BTreeMap<String, Output>,
    ) -> Vec<String> {
        let Some(old) = old else {
            return Vec::new();
        };
        let new_version = old.digest != manifest.digest;
        manifest.builds = if new_version {
            old.builds + 1
        } else {
            old.builds.max(1)
        };
        let now = self.opts.clock_unix;
        let mut candidates: BTreeMap<String, RetainedFile> = old.retained.clone();
        for (p, hash, size) in old.immutable_paths() {
            candidates.insert(
                p,
                RetainedFile {
                    hash: hash.to_string(),
                    size,
                    last_build: old.builds,
                    dropped_at: now,
                },
            );
        }
        let keep_builds = u64::from(self.cfg.keep_builds.max(1));
        let keep_age = self.cfg.keep_age.as_secs_i64();
        let mut expired = Vec::new();
        for (p, r) in candidates {
            if outputs.contains_key(&p) {
                continue; // back in this build
            }
            let recent = manifest.builds.saturating_sub(r.last_build) < keep_builds;
            let young = now.saturating_sub(r.dropped_at) < keep_age;
            // Only what is still on disk, as the build wrote it, is kept.
            let on_disk = self
                .out_path(&p)
                .ok()
                .and_then(|a| crate::cache::stat(&a))
                .is_some_and(|(size, _)| size == r.size);
            if (recent || young) && on_disk {
                manifest.retained.insert(p, r);
            } else {
                expired.push(p);
            }
        }
        expired
    }

    pub(super) fn read_old_manifest(&self) -> Option<Manifest> {
        let bytes = std::fs::read(self.out.join(&self.cfg.manifest)).ok()?;
        serde_json::from_slice(&bytes).ok()
    }
}

pub(super) fn remove_empty_parents(file: &Path, root: &Path) {
    let mut dir = file.parent();
    while let Some(d) = dir {
        if d == root || !d.starts_with(root) || std::fs::remove_dir(d).is_err() {
            break;
        }
        dir = d.parent();
    }
}
