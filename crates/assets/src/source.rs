//! The source tree: walking it in a stable order, logical paths, and what kind of file each is.

use std::path::{Path, PathBuf};
use std::time::UNIX_EPOCH;

use globset::{GlobBuilder, GlobSet, GlobSetBuilder};

use crate::error::BuildError;

/// Which scanner reads a file.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Lang {
    Css,
    Js,
    Html,
    /// Not scanned (images, fonts, source maps, anything else).
    Other,
}

impl Lang {
    pub fn of(logical: &str) -> Lang {
        let ext = logical
            .rsplit_once('.')
            .map(|(_, e)| e.to_ascii_lowercase())
            .unwrap_or_default();
        match ext.as_str() {
            "css" => Lang::Css,
            "js" | "mjs" | "cjs" => Lang::Js,
            "html" | "htm" | "xhtml" => Lang::Html,
            _ => Lang::Other,
        }
    }
}

/// One file of the source tree.
#[derive(Debug, Clone)]
pub struct SourceFile {
    /// `/`-separated path relative to the source root.
    pub logical: String,
    pub abs: PathBuf,
    pub size: u64,
    /// Modification time in nanoseconds since the epoch (0 when unknown).
    pub mtime_ns: i128,
}

/// Compiles globs matched against logical paths (`*` does not cross `/`; `**` does).
pub fn glob_set(globs: &[String]) -> Result<GlobSet, BuildError> {
    let mut b = GlobSetBuilder::new();
    for g in globs {
        let glob = GlobBuilder::new(g)
            .literal_separator(true)
            .build()
            .map_err(|e| BuildError::Config(format!("invalid glob `{g}`: {}", e.kind())))?;
        b.add(glob);
    }
    b.build().map_err(|e| BuildError::Config(e.to_string()))
}

/// Walks `root` (following symlinks, in byte order of logical paths), skipping excluded files and the
/// folders in `skip_dirs` (the output and cache when they sit inside the source).
/// What a walk found: the regular files, and the logical paths of everything else that is not a folder
/// (FIFOs, sockets, devices, symlinks to them): reading those could block or never end.
#[derive(Debug, Default)]
pub struct Walked {
    pub files: Vec<SourceFile>,
    pub special: Vec<String>,
}

/// Walks the source; never opens a file, so a FIFO or a device cannot block it.
pub fn walk(root: &Path, exclude: &GlobSet, skip_dirs: &[PathBuf]) -> Result<Walked, BuildError> {
    let meta = std::fs::metadata(root).map_err(|e| BuildError::io(root, e))?;
    if !meta.is_dir() {
        return Err(BuildError::Config(format!(
            "source `{}` is not a folder",
            root.display()
        )));
    }
    let mut files = Vec::new();
    let mut special = Vec::new();
    let walker = walkdir::WalkDir::new(root)
        .follow_links(true)
        .sort_by_file_name()
        .into_iter();
    let mut it = walker.filter_entry(|e| !skip_dirs.iter().any(|d| e.path() == d));
    while let Some(entry) = it.next() {
        let entry = entry.map_err(|e| {
            let path = e
                .path()
                .map(Path::to_path_buf)
                .unwrap_or_else(|| root.to_path_buf());
            match e.into_io_error() {
                Some(io) => BuildError::io(&path, io),
                None => BuildError::Config(format!("symlink loop at `{}`", path.display())),
            }
        })?;
        let rel = entry.path().strip_prefix(root).unwrap_or(entry.path());
        if rel.as_os_str().is_empty() {
            continue;
        }
        let Some(rel_str) = rel.to_str() else {
            return Err(BuildError::Config(format!(
                "file name `{}` is not valid UTF-8; rename it (URLs and manifests need UTF-8 names)",
                entry.path().display()
            )));
        };
        let logical = rel_str.replace(std::path::MAIN_SEPARATOR, "/");
        if entry.file_type().is_dir() {
            if exclude.is_match(format!("{logical}/")) || exclude.is_match(format!("{logical}/x")) {
                it.skip_current_dir();
            }
            continue;
        }
        if exclude.is_match(&logical) {
            continue;
        }
        let md = entry
            .metadata()
            .map_err(|e| BuildError::io(entry.path(), e.into()))?;
        if !md.is_file() {
            special.push(logical);
            continue;
        }
        let mtime_ns = md
            .modified()
            .ok()
            .and_then(|t| t.duration_since(UNIX_EPOCH).ok())
            .map_or(0, |d| d.as_nanos() as i128);
        files.push(SourceFile {
            logical,
            abs: entry.into_path(),
            size: md.len(),
            mtime_ns,
        });
    }
    files.sort_by(|a, b| a.logical.cmp(&b.logical));
    Ok(Walked { files, special })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn langs() {
        for (p, l) in [
            ("a.css", Lang::Css),
            ("a/B.CSS", Lang::Css),
            ("a.mjs", Lang::Js),
            ("x.html", Lang::Html),
            ("a.js.map", Lang::Other),
            ("LICENSE", Lang::Other),
        ] {
            assert_eq!(Lang::of(p), l, "{p}");
        }
    }

    #[test]
    fn walks_sorted_and_excludes() {
        let d = tempfile::tempdir().unwrap();
        for p in ["b.css", "a/z.js", "a/.git/x", "a/y~", "c/d/e.png"] {
            let f = d.path().join(p);
            std::fs::create_dir_all(f.parent().unwrap()).unwrap();
            std::fs::write(f, p).unwrap();
        }
        let ex = glob_set(&["**/.git/**".into(), "**/*~".into()]).unwrap();
        let files = walk(d.path(), &ex, &[d.path().join("c")]).unwrap().files;
        let names: Vec<&str> = files.iter().map(|f| f.logical.as_str()).collect();
        assert_eq!(names, ["a/z.js", "b.css"]);
    }
}
