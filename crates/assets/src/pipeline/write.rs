//! Phase 5, write outputs: each output written where it changed (immutable first, then mutable, then
//! the manifests), and the JSON files of the output.

use std::collections::BTreeMap;
use std::path::PathBuf;

use serde::Serialize;
use staleguard_core::manifest::{BuildInfo, Manifest, format_rfc3339};

use crate::cache::{OutputState, State};
use crate::error::BuildError;

use super::{Builder, Final, Node, hex};

impl<'a> Builder<'a> {
    pub(super) fn add_output(
        &self,
        outputs: &mut BTreeMap<String, Output>,
        path: &str,
        o: Output,
    ) -> Result<(), BuildError> {
        if self.reserved.iter().any(|r| r == path) {
            return Err(BuildError::Config(format!(
                "the build would write `{path}`, which is the name of a manifest; rename the source file or the manifest"
            )));
        }
        if let Some(prev) = outputs.get(path)
            && prev.hash != o.hash
        {
            return Err(BuildError::Config(format!(
                "two different contents would be written to `{path}`: a source file has the name of another file's fingerprinted or compressed output; rename that source file, or leave it out with `build.exclude`"
            )));
        }
        outputs.insert(path.to_string(), o);
        Ok(())
    }

    pub(super) fn out_path(&self, rel: &str) -> Result<PathBuf, BuildError> {
        if rel.split('/').any(|s| s == ".." || s.is_empty()) {
            return Err(BuildError::Config(format!(
                "refusing to write outside the output folder: `{rel}`"
            )));
        }
        Ok(self.out.join(rel))
    }

    /// Writes one output unless it is already in place. Returns its state and whether it was written;
    /// `None` for a reused sidecar the output does not have (the store has it): a stale file under its
    /// name is removed, so the folder never holds bytes the manifest does not list.
    pub(super) fn write_output(
        &self,
        rel: &str,
        o: &Output,
        old: &State,
        nodes: &[Node],
        finals: &[Final],
    ) -> Result<Option<(OutputState, bool)>, BuildError> {
        let abs = self.out_path(rel)?;
        if let Some((size, mtime_ns)) = crate::cache::stat(&abs)
            && size == o.size
        {
            let same = match old.outputs.get(rel) {
                Some(s) => s.hash == o.hash && s.size == size && s.mtime_ns == mtime_ns,
                // No memo (cache lost): compare the bytes.
                None => std::fs::read(&abs)
                    .map(|b| hex(&b) == o.hash)
                    .unwrap_or(false),
            };
            if same {
                return Ok(Some((
                    OutputState {
                        hash: o.hash.clone(),
                        size,
                        mtime_ns,
                    },
                    false,
                )));
            }
        }
        if let From::Stored = o.from {
            match std::fs::remove_file(&abs) {
                Ok(()) => super::prune::remove_empty_parents(&abs, &self.out),
                Err(e) if e.kind() == std::io::ErrorKind::NotFound => {}
                Err(e) => return Err(BuildError::io(&abs, e)),
            }
            return Ok(None);
        }
        if let Some(parent) = abs.parent() {
            std::fs::create_dir_all(parent).map_err(|e| BuildError::io(parent, e))?;
        }
        match &o.from {
            From::Final(i) => {
                let bytes = match &finals[*i].bytes {
                    Some(b) => std::borrow::Cow::Borrowed(b.as_slice()),
                    None => std::borrow::Cow::Owned(self.final_bytes(*i, nodes, finals)?),
                };
                crate::cache::write_atomic(&abs, &bytes).map_err(|e| BuildError::io(&abs, e))?;
            }
            From::Blob(name) => {
                crate::cache::copy_atomic(&self.cache.blob_path(name), &abs)
                    .map_err(|e| BuildError::io(&abs, e))?;
            }
            From::Stored => return Ok(None),
        }
        let (size, mtime_ns) = crate::cache::stat(&abs).unwrap_or((o.size, 0));
        Ok(Some((
            OutputState {
                hash: o.hash.clone(),
                size,
                mtime_ns,
            },
            true,
        )))
    }

    /// build-info.json; the build time of an existing one is kept when nothing it describes changed, so a
    /// rebuild of the same source is byte-identical.
    pub(super) fn build_info(&self, manifest: &Manifest) -> BuildInfo {
        let git_commit = self.opts.git.as_ref().map(|g| g.commit.clone());
        let git_dirty = self.opts.git.as_ref().is_some_and(|g| g.dirty);
        let existing: Option<BuildInfo> = std::fs::read(self.out.join(&self.cfg.build_info))
            .ok()
            .and_then(|b| serde_json::from_slice(&b).ok());
        let build_time = match existing {
            Some(e)
                if e.digest == manifest.digest
                    && e.git_commit == git_commit
                    && e.git_dirty == git_dirty =>
            {
                e.build_time
            }
            _ => format_rfc3339(self.opts.now_unix),
        };
        BuildInfo {
            version: manifest.version().to_string(),
            digest: manifest.digest.clone(),
            git_commit,
            git_dirty,
            build_time,
            builder: self.opts.builder.clone(),
        }
    }

    /// Writes pretty JSON at the output root unless the file already holds exactly that. Returns its size.
    pub(super) fn write_json_if_changed<T: Serialize>(
        &self,
        name: &str,
        value: &T,
    ) -> Result<u64, BuildError> {
        let mut bytes =
            serde_json::to_vec_pretty(value).map_err(|e| BuildError::Config(e.to_string()))?;
        bytes.push(b'\n');
        let path = self.out.join(name);
        if std::fs::read(&path).ok().as_deref() != Some(bytes.as_slice()) {
            crate::cache::write_atomic(&path, &bytes).map_err(|e| BuildError::io(&path, e))?;
        }
        Ok(bytes.len() as u64)
    }
}

#[derive(Debug, Clone)]
pub(super) struct Output {
    pub(super) hash: String,
    pub(super) size: u64,
    pub(super) from: From,
    pub(super) immutable: bool,
}

/// Where an output's bytes come from.
#[derive(Debug, Clone)]
pub(super) enum From {
    Final(usize),
    Blob(String),
    /// A reused sidecar: the store's current deploy holds it; not written here (`--reuse-from`).
    Stored,
}
