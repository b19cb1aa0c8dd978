//! The build: source tree in, fingerprinted and precompressed output tree plus manifests out.
//!
//! Phases: walk → hash and scan (parallel, cached by content) → resolve references into a dependency graph
//! → name files in dependency order (strongly connected components, so cycles are grouped, not looped on)
//! → compress each distinct content once (parallel, largest first, cached as blobs) → write outputs
//! (immutable first, then mutable, then manifests; unchanged outputs are left alone) → prune what the
//! previous build wrote and this one did not.
//!
//! Invariants: a fingerprinted name's hash covers the file's final bytes (after rewriting), so a changed
//! dependency renames every dependant; bytes outside rewritten references are unchanged; the output is a
//! pure function of the source tree and the settings, whatever the thread count or the cache's state.

use std::collections::{BTreeMap, BTreeSet, HashMap, HashSet};
use std::ops::Range;
use std::path::{Path, PathBuf};
use std::sync::Mutex;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::Instant;

use percent_encoding::{AsciiSet, CONTROLS, utf8_percent_encode};
use rayon::prelude::*;
use serde::Serialize;
use staleguard_core::config::{BuildConfig, Codec};
use staleguard_core::manifest::{
    BuildInfo, Manifest, ManifestEntry, RetainedFile, Variant, format_rfc3339,
};
use staleguard_core::naming::{HASH_LEN, hash_raw_segment, hashed_path};
use staleguard_core::url::{Resolution, parent_dir, resolve};

use crate::cache::{
    BlobState, Cache, CachedRef, CachedScan, FinalState, OutputState, SourceState, State,
};
use crate::compress::{Levels, compress, worth_keeping};
use crate::error::{BuildError, MissingRef};
use crate::graph;
use crate::html::is_relative_specifier;
use crate::prehashed::Prehashed;
use crate::refs::{FoundRef, LineIndex, RefKind, splice};
use crate::source::{Lang, SourceFile, glob_set, walk};
use crate::{css, html, js};

/// Where the source comes from, as far as `git` knows.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct GitInfo {
    pub commit: String,
    pub dirty: bool,
}

/// Everything a build needs; paths are absolute or relative to the current folder.
#[derive(Debug, Clone)]
pub struct BuildOptions {
    pub source: PathBuf,
    pub out: PathBuf,
    pub cache_dir: PathBuf,
    pub config: BuildConfig,
    pub git: Option<GitInfo>,
    /// Build time (seconds since the epoch) recorded in build-info.json when the version is new.
    pub now_unix: i64,
    /// The builder's name and version, recorded in build-info.json and part of the cache key.
    pub builder: String,
    /// The wall clock (Unix seconds) that `keep-age` is measured with.
    pub clock_unix: i64,
}

/// The build's phases, for progress display.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Phase {
    /// Reading and scanning sources; total = files.
    Scan,
    /// Compressing; total = bytes to compress.
    Compress,
    /// Writing outputs; total = files.
    Write,
}

/// Receives progress; every method has a no-op default.
pub trait Progress: Sync {
    fn start(&self, _phase: Phase, _total: u64) {}
    fn advance(&self, _n: u64) {}
    fn finish(&self, _phase: Phase) {}
}

/// Progress that goes nowhere.
pub struct NoProgress;
impl Progress for NoProgress {}

/// A non-fatal problem, with its location.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Warning {
    /// `file:line:col`, or the file alone.
    pub location: String,
    pub message: String,
}

impl std::fmt::Display for Warning {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{}: {}", self.location, self.message)
    }
}

/// What a build did.
#[derive(Debug, Clone, Default, Serialize)]
pub struct BuildReport {
    /// The manifest's short version.
    pub version: String,
    pub out: PathBuf,
    /// Source files in the build.
    pub files: usize,
    pub bytes_in: u64,
    /// Bytes of every output file (assets, originals, sidecars, manifests).
    pub bytes_out: u64,
    /// Files renamed with their content hash.
    pub fingerprinted: usize,
    /// Files that already carried a bundler's hash.
    pub prehashed: usize,
    /// Files that keep their name (HTML and `mutable` globs).
    pub mutable: usize,
    /// References rewritten across all files.
    pub references_rewritten: usize,
    /// Sidecar files in the output.
    pub sidecars: usize,
    /// Compressions run by this build (the rest came from the cache).
    pub compressed_now: usize,
    pub compressed_from_cache: usize,
    /// Sources read from disk (the rest were known by size and mtime).
    pub sources_read: usize,
    /// Output files written; the rest were already in place.
    pub written: usize,
    pub unchanged: usize,
    /// Output files of an earlier build removed because this build does not produce them.
    pub removed: usize,
    /// Fingerprinted files of earlier builds kept in the output (`keep-builds`, `keep-age`).
    pub retained: usize,
    pub warnings: Vec<Warning>,
    /// Reference cycles, as lists of logical paths.
    pub cycles: Vec<Vec<String>>,
    pub elapsed_ms: u64,
}

/// A reference resolved to another file of the build.
#[derive(Debug, Clone)]
struct Link {
    /// Index into the file's refs.
    r: usize,
    target: usize,
    /// Range of the last path segment inside the ref's URL.
    segment: Range<usize>,
}

/// One source file as it moves through the build.
struct Node {
    file: SourceFile,
    lang: Lang,
    raw_hash: String,
    /// Raw bytes, when they were read.
    raw: Option<Vec<u8>>,
    refs: Vec<CachedRef>,
    base_href: Option<String>,
    integrity: Vec<html::Integrity>,
    links: Vec<Link>,
    mutable: bool,
    /// The name already carries a bundler's hash: never renamed, never rewritten.
    prehashed: bool,
}

/// A file's result.
#[derive(Debug, Clone, Default)]
struct Final {
    /// Output path (hashed, or the logical path).
    path: String,
    /// blake3 hex of the final bytes.
    hash: String,
    size: u64,
    prehashed: bool,
    /// The rewrites applied to the raw bytes.
    edits: Vec<(Range<usize>, String)>,
    /// The final bytes, when computed in this build.
    bytes: Option<Vec<u8>>,
}

/// Characters escaped when a new file name must be written into a URL.
const URL_UNSAFE: &AsciiSet = &CONTROLS
    .add(b' ')
    .add(b'"')
    .add(b'#')
    .add(b'%')
    .add(b'<')
    .add(b'>')
    .add(b'?')
    .add(b'`')
    .add(b'{')
    .add(b'}');

fn hex(bytes: &[u8]) -> String {
    blake3::hash(bytes).to_hex().to_string()
}

/// Runs a build.
pub fn build(opts: &BuildOptions, progress: &dyn Progress) -> Result<BuildReport, BuildError> {
    let started = Instant::now();
    let cfg = &opts.config;
    let threads = if cfg.jobs == 0 {
        std::thread::available_parallelism().map_or(1, |n| n.get())
    } else {
        cfg.jobs
    };
    let pool = rayon::ThreadPoolBuilder::new()
        .num_threads(threads)
        .build()
        .map_err(|e| BuildError::Config(format!("cannot start {threads} worker threads: {e}")))?;
    pool.install(|| Builder::new(opts, threads)?.run(progress, started))
}

struct Builder<'a> {
    opts: &'a BuildOptions,
    cfg: &'a BuildConfig,
    source: PathBuf,
    out: PathBuf,
    cache: Cache,
    threads: usize,
    levels: Levels,
    /// `skip-compress` as lower-case suffixes with their dot (`.png`, `.wasm.gz`).
    skip_compress: Vec<String>,
    reserved: Vec<String>,
}

impl<'a> Builder<'a> {
    fn new(opts: &'a BuildOptions, threads: usize) -> Result<Builder<'a>, BuildError> {
        let source = std::fs::canonicalize(&opts.source).map_err(|e| {
            BuildError::Config(format!(
                "source folder `{}` cannot be read: {e}\nhint: pass the folder to build (`staleguard build SRC`) or set `build.source`",
                opts.source.display()
            ))
        })?;
        std::fs::create_dir_all(&opts.out).map_err(|e| BuildError::io(&opts.out, e))?;
        let out = std::fs::canonicalize(&opts.out).map_err(|e| BuildError::io(&opts.out, e))?;
        if out == source || source.starts_with(&out) {
            return Err(BuildError::Config(format!(
                "output folder `{}` must not be the source folder or contain it; choose another with -o",
                out.display()
            )));
        }
        let cfg = &opts.config;
        let reserved: Vec<String> = [&cfg.manifest, &cfg.django_manifest, &cfg.build_info]
            .into_iter()
            .filter(|n| !n.is_empty())
            .cloned()
            .collect();
        Ok(Builder {
            opts,
            cfg,
            source,
            out,
            cache: Cache::new(opts.cache_dir.clone()),
            threads,
            levels: Levels::from_config(cfg),
            skip_compress: cfg
                .skip_compress
                .iter()
                .map(|e| format!(".{}", e.trim_start_matches('.').to_ascii_lowercase()))
                .collect(),
            reserved,
        })
    }

    /// The cache key of the settings that scans and names depend on.
    fn settings_key(&self) -> String {
        let c = self.cfg;
        let key = serde_json::json!({
            "builder": self.opts.builder,
            "js_imports": c.js_imports,
            "url_prefix": c.url_prefix,
            "builtin_rules": c.builtin_rules,
            "mutable": c.mutable,
            "prehashed": c.prehashed,
            "prehashed_dirs": c.prehashed_dirs,
        });
        hex(key.to_string().as_bytes())
    }

    fn run(&self, progress: &dyn Progress, started: Instant) -> Result<BuildReport, BuildError> {
        let cfg = self.cfg;
        let exclude = glob_set(&cfg.exclude_globs())?;
        let mut prehashed = Prehashed::new(
            cfg.builtin_rules,
            &cfg.prehashed,
            &cfg.prehashed_dir_globs(),
        )?;
        let mut skip_dirs = vec![self.out.clone()];
        if let Ok(c) = std::fs::canonicalize(&self.opts.cache_dir) {
            skip_dirs.push(c);
        }
        let walked = walk(&self.source, &exclude, &skip_dirs)?;
        let special_warnings = self.special_files(&walked.special)?;
        let files = walked.files;
        if let Some(f) = files.iter().find(|f| f.size > cfg.max_file_size) {
            return Err(BuildError::Config(format!(
                "source file `{}` is {} bytes, over `build.max-file-size` ({} bytes); leave it out with `build.exclude`, or raise the limit",
                f.abs.display(),
                f.size,
                cfg.max_file_size
            )));
        }
        prehashed.learn(files.iter().map(|f| f.logical.as_str()));
        let rules = NameRules {
            mutable: glob_set(&cfg.mutable)?,
            fixed: glob_set(&cfg.fixed_name_globs())?,
            prehashed,
        };
        let sidecars = source_sidecars(&files, &self.cfg.compress)?;
        let files: Vec<SourceFile> = files
            .into_iter()
            .filter(|f| !sidecars.dropped.contains(&f.logical))
            .collect();
        for f in &files {
            if self.reserved.contains(&f.logical) {
                return Err(BuildError::Config(format!(
                    "source file `{}` has the name of a manifest the build writes at the output's root; rename it, or set `build.manifest`, `build.django-manifest` or `build.build-info` to another name",
                    f.abs.display()
                )));
            }
        }

        let old = self.cache.load(&self.settings_key());
        let mut report = BuildReport {
            out: self.out.clone(),
            files: files.len(),
            warnings: special_warnings,
            ..Default::default()
        };

        // Phase 1: hash and scan.
        progress.start(Phase::Scan, files.len() as u64);
        let mut nodes: Vec<Node> = files
            .into_par_iter()
            .map(|file| {
                let node = self.scan(file, &old, &rules);
                progress.advance(1);
                node
            })
            .collect::<Result<_, _>>()?;
        progress.finish(Phase::Scan);
        report.sources_read = nodes.iter().filter(|n| n.raw.is_some()).count();
        report.bytes_in = nodes.iter().map(|n| n.file.size).sum();

        // Phase 2: resolve references.
        let index: HashMap<String, usize> = nodes
            .iter()
            .enumerate()
            .map(|(i, n)| (n.file.logical.clone(), i))
            .collect();
        let mut missing = Vec::new();
        for i in 0..nodes.len() {
            self.resolve_links(i, &mut nodes, &index, &mut missing)?;
        }
        let prefix_hint = url_prefix_hint(&missing, &index, &cfg.url_prefix);
        if cfg.strict && !missing.is_empty() {
            if let Some(h) = prefix_hint {
                return Err(BuildError::Config(format!(
                    "{}\n{h}",
                    BuildError::Missing(missing)
                )));
            }
            return Err(BuildError::Missing(missing));
        }
        if let Some(h) = prefix_hint {
            report.warnings.push(Warning {
                location: self.opts.source.display().to_string(),
                message: h,
            });
        }
        report.warnings.extend(missing.into_iter().map(|m| Warning {
            location: m.location,
            message: format!(
                "`{}` ({}) points to `{}`, which is not in the source; left as is",
                m.url, m.kind, m.resolved
            ),
        }));

        // Phase 3: name and rewrite, dependencies first.
        // A prehashed file is never rewritten, so its name depends on nothing: no edges out of it (a
        // bundler's entry and lazy chunks import each other; that is no reason to rename either).
        let edges: Vec<Vec<usize>> = nodes
            .iter()
            .map(|n| {
                if n.prehashed {
                    Vec::new()
                } else {
                    n.links.iter().map(|l| l.target).collect()
                }
            })
            .collect();
        let comps = graph::components(&edges);
        let mut finals: Vec<Final> = vec![Final::default(); nodes.len()];
        for comp in &comps {
            let cyclic = comp.len() > 1 || edges[comp[0]].contains(&comp[0]);
            if cyclic {
                let names: Vec<String> = comp
                    .iter()
                    .map(|&i| nodes[i].file.logical.clone())
                    .collect();
                report.warnings.push(Warning {
                    location: names[0].clone(),
                    message: format!(
                        "reference cycle: {} → {}; their names are derived from the whole cycle's content",
                        names.join(" → "),
                        names[0]
                    ),
                });
                report.cycles.push(names);
                self.finish_cycle(comp, &mut nodes, &mut finals)?;
            } else {
                let i = comp[0];
                finals[i] = self.finish_one(i, &mut nodes, &finals, &old)?;
            }
        }
        // A prehashed file names its dependencies as the bundler wrote them: those that we fingerprint
        // must also exist under their own names, even without `keep-originals`.
        let mut needs_original: BTreeMap<usize, usize> = BTreeMap::new();
        for (i, n) in nodes.iter().enumerate().filter(|(_, n)| n.prehashed) {
            for l in &n.links {
                if finals[l.target].path != nodes[l.target].file.logical {
                    needs_original.entry(l.target).or_insert(i);
                }
            }
        }
        if !cfg.keep_originals {
            for (&t, &by) in &needs_original {
                report.warnings.push(Warning {
                    location: nodes[by].file.logical.clone(),
                    message: format!(
                        "this bundler-hashed file references `{}` by its own name and is kept as the bundler wrote it; `{}` is also written under that name although `keep-originals` is off",
                        nodes[t].file.logical, nodes[t].file.logical
                    ),
                });
            }
        }
        report.references_rewritten = finals.iter().map(|f| f.edits.len()).sum();

        // Phase 4: compress.
        let mut blobs_used: BTreeSet<String> = BTreeSet::new();
        let mut new_blobs: BTreeMap<String, BlobState> = BTreeMap::new();
        let encodings = self.compress_all(
            &nodes,
            &mut finals,
            &old,
            &sidecars,
            progress,
            &mut report,
            &mut blobs_used,
            &mut new_blobs,
        )?;

        // Phase 5: plan and write outputs.
        let mut entries: BTreeMap<String, ManifestEntry> = BTreeMap::new();
        // Output path → (content hash, size, source of bytes, immutable?)
        let mut outputs: BTreeMap<String, Output> = BTreeMap::new();
        for (i, n) in nodes.iter().enumerate() {
            let f = &finals[i];
            let fingerprinted = f.path != n.file.logical;
            let original = fingerprinted && (cfg.keep_originals || needs_original.contains_key(&i));
            let mut names = vec![(f.path.clone(), !n.mutable)];
            if original {
                names.push((n.file.logical.clone(), false));
            }
            for (name, immutable) in &names {
                self.add_output(
                    &mut outputs,
                    name,
                    Output {
                        hash: f.hash.clone(),
                        size: f.size,
                        from: From::Final(i),
                        immutable: *immutable,
                    },
                )?;
                for (codec, (blob, v)) in &encodings[i] {
                    let sidecar = format!("{name}{}", codec.extension());
                    self.add_output(
                        &mut outputs,
                        &sidecar,
                        Output {
                            hash: v.hash.clone(),
                            size: v.size,
                            from: From::Blob(blob.clone()),
                            immutable: *immutable,
                        },
                    )?;
                }
            }
            if n.mutable {
                report.mutable += 1;
            } else if f.prehashed {
                report.prehashed += 1;
            } else {
                report.fingerprinted += 1;
            }
            report.sidecars += encodings[i].len() * names.len();
            entries.insert(
                n.file.logical.clone(),
                ManifestEntry {
                    path: f.path.clone(),
                    hash: f.hash.clone(),
                    size: f.size,
                    mutable: n.mutable,
                    prehashed: f.prehashed,
                    original,
                    encodings: encodings[i]
                        .iter()
                        .map(|(c, (_, v))| (*c, v.clone()))
                        .collect(),
                },
            );
        }
        let mut manifest = Manifest::new(cfg.url_prefix.clone(), entries);
        report.version = manifest.version().to_string();
        let old_manifest = self.read_old_manifest();
        let expired = self.retain(&mut manifest, old_manifest.as_ref(), &outputs);
        report.retained = manifest.retained.len();

        let mut new_outputs: BTreeMap<String, OutputState> = BTreeMap::new();
        let new_outputs_lock = Mutex::new(&mut new_outputs);
        let written = AtomicUsize::new(0);
        progress.start(Phase::Write, outputs.len() as u64);
        // Immutable files first, so that no mutable file written after them references a missing one.
        for immutable_pass in [true, false] {
            outputs
                .par_iter()
                .filter(|(_, o)| o.immutable == immutable_pass)
                .try_for_each(|(path, o)| {
                    let state = self.write_output(path, o, &old, &nodes, &finals)?;
                    if state.1 {
                        written.fetch_add(1, Ordering::Relaxed);
                    }
                    new_outputs_lock
                        .lock()
                        .unwrap_or_else(|e| e.into_inner())
                        .insert(path.clone(), state.0);
                    progress.advance(1);
                    Ok::<(), BuildError>(())
                })?;
        }
        progress.finish(Phase::Write);
        report.written = written.into_inner();
        report.unchanged = outputs.len() - report.written;
        report.bytes_out = outputs.values().map(|o| o.size).sum();

        // Manifests last: ours is what a server watches to switch versions.
        if !cfg.build_info.is_empty() {
            let info = self.build_info(&manifest);
            report.bytes_out += self.write_json_if_changed(&cfg.build_info, &info)?;
        }
        if !cfg.django_manifest.is_empty() {
            report.bytes_out +=
                self.write_json_if_changed(&cfg.django_manifest, &manifest.to_django())?;
        }
        report.bytes_out += self.write_json_if_changed(&cfg.manifest, &manifest)?;

        // Prune what an earlier build wrote and this one neither writes nor retains: mutable files at once,
        // fingerprinted ones once no kept build has them (`expired`).
        let mut stale: BTreeSet<String> = old.outputs.keys().cloned().collect();
        if let Some(m) = &old_manifest {
            stale.extend(m.output_paths().map(|(p, _, _)| p));
        }
        stale.extend(expired);
        for p in stale {
            if outputs.contains_key(&p)
                || self.reserved.contains(&p)
                || manifest.retained.contains_key(&p)
            {
                continue;
            }
            let abs = self.out_path(&p)?;
            if std::fs::remove_file(&abs).is_ok() {
                report.removed += 1;
                remove_empty_parents(&abs, &self.out);
            }
        }

        // Save the cache. Blobs kept: those this build used, and those the previous build used (so
        // switching back one version is free); older ones are deleted.
        let old_used: BTreeSet<&String> = old
            .blobs
            .keys()
            .filter(|b| !old.previous_blobs.contains(*b))
            .collect();
        let mut blobs = new_blobs;
        for b in old_used {
            if let Some(s) = old.blobs.get(b) {
                blobs.entry(b.clone()).or_insert(*s);
            }
        }
        let previous_blobs: BTreeSet<String> = blobs
            .keys()
            .filter(|b| !blobs_used.contains(*b))
            .cloned()
            .collect();
        self.cache.prune_blobs(&blobs.keys().cloned().collect());
        let mut state = State {
            format: crate::cache::STATE_FORMAT,
            settings: self.settings_key(),
            sources: HashMap::new(),
            scans: HashMap::new(),
            finals: HashMap::new(),
            outputs: new_outputs,
            blobs,
            previous_blobs,
        };
        for (i, n) in nodes.iter().enumerate() {
            state.sources.insert(
                n.file.logical.clone(),
                SourceState {
                    size: n.file.size,
                    mtime_ns: n.file.mtime_ns,
                    hash: n.raw_hash.clone(),
                },
            );
            if n.lang != Lang::Other {
                state.scans.insert(
                    n.raw_hash.clone(),
                    CachedScan {
                        refs: n.refs.clone(),
                        base_href: n.base_href.clone(),
                        integrity: n.integrity.clone(),
                    },
                );
            }
            state.finals.insert(
                n.file.logical.clone(),
                FinalState {
                    raw: n.raw_hash.clone(),
                    edits: edits_key(&finals[i].edits),
                    hash: finals[i].hash.clone(),
                    size: finals[i].size,
                },
            );
        }
        if let Err(e) = self.cache.save(&state) {
            report.warnings.push(Warning {
                location: self.cache.dir.display().to_string(),
                message: format!(
                    "cannot save the build cache ({e}); the next build will redo the work"
                ),
            });
        }
        report.elapsed_ms = started.elapsed().as_millis() as u64;
        Ok(report)
    }

    /// FIFOs, sockets and devices in the source are skipped with a warning (an error with `strict`).
    fn special_files(&self, special: &[String]) -> Result<Vec<Warning>, BuildError> {
        if special.is_empty() {
            return Ok(Vec::new());
        }
        let shown = |l: &String| self.opts.source.join(l).display().to_string();
        if self.cfg.strict {
            return Err(BuildError::Config(format!(
                "the source has files that are not regular files (FIFOs, sockets, devices, or symlinks to them): {}\nhint: remove them, or leave them out with `build.exclude`",
                special.iter().map(shown).collect::<Vec<_>>().join(", ")
            )));
        }
        Ok(special
            .iter()
            .map(|l| Warning {
                location: shown(l),
                message:
                    "not a regular file (a FIFO, socket, device, or a symlink to one): skipped"
                        .into(),
            })
            .collect())
    }

    /// Phase 1 for one file: its raw hash (from the cache when size and mtime match) and its references.
    fn scan(&self, file: SourceFile, old: &State, rules: &NameRules) -> Result<Node, BuildError> {
        let lang = Lang::of(&file.logical);
        let known = old
            .sources
            .get(&file.logical)
            .filter(|s| s.size == file.size && s.mtime_ns == file.mtime_ns && file.mtime_ns != 0);
        let mut raw = None;
        let raw_hash = match known {
            Some(s) => s.hash.clone(),
            None => {
                let bytes = std::fs::read(&file.abs).map_err(|e| BuildError::io(&file.abs, e))?;
                let h = hex(&bytes);
                raw = Some(bytes);
                h
            }
        };
        let scan = match (lang, old.scans.get(&raw_hash)) {
            (Lang::Other, _) => CachedScan::default(),
            (_, Some(s)) => s.clone(),
            _ => {
                if raw.is_none() {
                    raw = Some(std::fs::read(&file.abs).map_err(|e| BuildError::io(&file.abs, e))?);
                }
                let bytes = raw.as_deref().unwrap_or_default();
                self.scan_bytes(lang, bytes, &file.logical)?
            }
        };
        let hashed_name = rules.prehashed.is_prehashed(&file.logical);
        let is_mutable = lang == Lang::Html
            || rules.mutable.is_match(&file.logical)
            || (!hashed_name && rules.fixed.is_match(&file.logical));
        Ok(Node {
            file,
            lang,
            raw_hash,
            raw,
            refs: scan.refs,
            base_href: scan.base_href,
            integrity: scan.integrity,
            links: Vec::new(),
            mutable: is_mutable,
            prehashed: hashed_name && !is_mutable,
        })
    }

    fn scan_bytes(
        &self,
        lang: Lang,
        bytes: &[u8],
        logical: &str,
    ) -> Result<CachedScan, BuildError> {
        let text = || std::str::from_utf8(bytes).ok();
        let mut integrity = Vec::new();
        let (found, base_href): (Vec<FoundRef>, Option<String>) = match lang {
            Lang::Css => (
                text().map(|t| css::scan_css(t, 0)).unwrap_or_default(),
                None,
            ),
            Lang::Js => (
                text()
                    .map(|t| js_file_refs(t, self.cfg.js_imports))
                    .unwrap_or_default(),
                None,
            ),
            Lang::Html => {
                let s =
                    html::scan_html(bytes, self.cfg.js_imports).map_err(|e| BuildError::Html {
                        path: logical.to_string(),
                        message: e.to_string(),
                    })?;
                integrity = s.integrity;
                (s.refs, s.base_href)
            }
            Lang::Other => (Vec::new(), None),
        };
        Ok(CachedScan {
            refs: found.iter().map(|r| CachedRef::new(r, bytes)).collect(),
            base_href,
            integrity,
        })
    }

    /// Phase 2 for one file: which references point to files of the build.
    fn resolve_links(
        &self,
        i: usize,
        nodes: &mut [Node],
        index: &HashMap<String, usize>,
        missing: &mut Vec<MissingRef>,
    ) -> Result<(), BuildError> {
        let logical = nodes[i].file.logical.clone();
        let mut from_dir = parent_dir(&logical).to_string();
        if let Some(base) = &nodes[i].base_href {
            match resolve(base.trim(), &from_dir, &self.cfg.url_prefix) {
                Resolution::Local(l) => from_dir = parent_dir(&l.path).to_string(),
                // A base outside the build: relative references are not ours.
                _ => return Ok(()),
            }
        }
        let mut links = Vec::new();
        let mut lines: Option<(Vec<u8>, LineIndex)> = None;
        for (r_idx, r) in nodes[i].refs.iter().enumerate() {
            let is_js_specifier = matches!(
                r.kind,
                RefKind::JsImport | RefKind::JsDynamicImport | RefKind::JsNewUrl
            );
            if is_js_specifier && !is_relative_specifier(&r.url) && r.kind != RefKind::JsNewUrl {
                continue;
            }
            let url = r.url.trim();
            let lead = r.url.len() - r.url.trim_start().len();
            let Resolution::Local(local) = resolve(url, &from_dir, &self.cfg.url_prefix) else {
                continue;
            };
            if local.path.ends_with('/') || local.path.is_empty() {
                continue;
            }
            if let Some(&target) = index.get(&local.path) {
                // A mutable file keeps its name: nothing to rewrite, and no ordering constraint.
                if nodes[target].mutable {
                    continue;
                }
                links.push(Link {
                    r: r_idx,
                    target,
                    segment: local.segment.start + lead..local.segment.end + lead,
                });
            } else if r.kind != RefKind::HtmlLink {
                let (bytes, idx) = match &mut lines {
                    Some((b, x)) => (&*b, &*x),
                    slot => {
                        let bytes = match &nodes[i].raw {
                            Some(b) => b.clone(),
                            None => std::fs::read(&nodes[i].file.abs)
                                .map_err(|e| BuildError::io(&nodes[i].file.abs, e))?,
                        };
                        let idx = LineIndex::new(&bytes);
                        let (b, x) = slot.insert((bytes, idx));
                        (&*b, &*x)
                    }
                };
                let (line, col) = idx.line_col(bytes, r.start);
                missing.push(MissingRef {
                    location: format!("{}:{line}:{col}", self.display_path(&nodes[i].file)),
                    url: r.url.clone(),
                    resolved: local.path,
                    kind: r.kind.describe().to_string(),
                });
            }
        }
        nodes[i].links = links;
        Ok(())
    }

    fn display_path(&self, f: &SourceFile) -> String {
        let rel = self.opts.source.join(&f.logical);
        rel.display().to_string()
    }

    /// The rewrite of one link, given the target's output path.
    fn edit_for(
        &self,
        r: &CachedRef,
        link: &Link,
        target_logical: &str,
        target_path: &str,
    ) -> Option<(Range<usize>, String)> {
        if target_path == target_logical {
            return None;
        }
        let hash = target_path.rsplit('/').next().and_then(|name| {
            let (stem, _) = staleguard_core::naming::split_ext(name);
            stem.rsplit('.').next().filter(|h| h.len() == HASH_LEN)
        })?;
        let decoded_name = target_logical.rsplit('/').next().unwrap_or(target_logical);
        let url_segment = r.url.get(link.segment.clone())?;
        let new_segment = hash_raw_segment(url_segment, decoded_name, hash).unwrap_or_else(|| {
            let new_name = target_path.rsplit('/').next().unwrap_or(target_path);
            utf8_percent_encode(new_name, URL_UNSAFE).to_string()
        });
        if r.verbatim {
            Some((
                r.start + link.segment.start..r.start + link.segment.end,
                new_segment,
            ))
        } else {
            let new_url = format!(
                "{}{}{}",
                &r.url[..link.segment.start],
                new_segment,
                &r.url[link.segment.end..]
            );
            Some((r.start..r.end, r.syntax.encode(&new_url)))
        }
    }

    fn edits_of(
        &self,
        i: usize,
        nodes: &[Node],
        finals: &[Final],
        skip: &dyn Fn(usize) -> bool,
    ) -> Vec<(Range<usize>, String)> {
        let n = &nodes[i];
        let mut edits: Vec<(Range<usize>, String)> = n
            .links
            .iter()
            .filter(|l| !skip(l.target))
            .filter_map(|l| {
                self.edit_for(
                    &n.refs[l.r],
                    l,
                    &nodes[l.target].file.logical,
                    &finals[l.target].path,
                )
            })
            .collect();
        // Subresource integrity: a pinned file whose bytes the build changed gets its digests anew.
        for sri in &n.integrity {
            let Some(l) = n.links.iter().find(|l| n.refs[l.r].start == sri.ref_start) else {
                continue;
            };
            if skip(l.target) || finals[l.target].hash == nodes[l.target].raw_hash {
                continue;
            }
            let Ok(bytes) = self.final_bytes(l.target, nodes, finals) else {
                continue;
            };
            let value = integrity_value(&sri.value, &bytes);
            if value != sri.value {
                edits.push((sri.start..sri.end, value));
            }
        }
        edits.sort_by_key(|(r, _)| r.start);
        edits.dedup_by_key(|(r, _)| r.start);
        edits
    }

    fn raw_bytes(&self, n: &Node) -> Result<Vec<u8>, BuildError> {
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

    /// Phase 3 for a file outside any cycle.
    fn finish_one(
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
        let key = edits_key(&edits);
        let n = &nodes[i];
        let cached = old
            .finals
            .get(&n.file.logical)
            .filter(|f| f.raw == n.raw_hash && f.edits == key);
        let (hash, size, bytes) = match cached {
            Some(f) => (f.hash.clone(), f.size, None),
            None => {
                let raw = self.raw_bytes(n)?;
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
    fn name(&self, n: &Node, name_hash: &str) -> (String, bool) {
        if n.mutable {
            return (n.file.logical.clone(), false);
        }
        if n.prehashed {
            return (n.file.logical.clone(), true);
        }
        (hashed_path(&n.file.logical, name_hash), false)
    }

    /// Phase 3 for a reference cycle: every member's name hash covers the whole cycle's content.
    fn finish_cycle(
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
            let raw = self.raw_bytes(&nodes[i])?;
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
    fn final_bytes(
        &self,
        i: usize,
        nodes: &[Node],
        finals: &[Final],
    ) -> Result<Vec<u8>, BuildError> {
        if let Some(b) = &finals[i].bytes {
            return Ok(b.clone());
        }
        let raw = self.raw_bytes(&nodes[i])?;
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

    /// Phase 4: every distinct (content, codec) compressed once, largest first, on every core.
    #[allow(clippy::too_many_arguments)]
    fn compress_all(
        &self,
        nodes: &[Node],
        finals: &mut [Final],
        old: &State,
        sidecars: &SourceSidecars,
        progress: &dyn Progress,
        report: &mut BuildReport,
        blobs_used: &mut BTreeSet<String>,
        new_blobs: &mut BTreeMap<String, BlobState>,
    ) -> Result<Vec<Encodings>, BuildError> {
        let mut codecs = self.cfg.compress.clone();
        codecs.sort();
        codecs.dedup();
        // Blob name → (node that has the content, codec).
        let mut jobs: BTreeMap<String, (usize, Codec)> = BTreeMap::new();
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
                    .map(|&c| (c, format!("{}.{}", finals[i].hash, self.levels.tag(c))))
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
                    None => {
                        jobs.insert(blob.clone(), (i, *codec));
                    }
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
                        let result = compress(*codec, data, &self.levels)
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
        for (i, want) in wanted.into_iter().enumerate() {
            for (codec, blob) in want {
                if let Some(s) = known.get(&blob) {
                    new_blobs.insert(blob.clone(), *s);
                    if s.size > 0 {
                        let hash = blake3::Hash::from_bytes(s.hash).to_hex().to_string();
                        out[i].insert(codec, (blob, Variant { size: s.size, hash }));
                    }
                }
            }
        }
        Ok(out)
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

    fn add_output(
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

    fn out_path(&self, rel: &str) -> Result<PathBuf, BuildError> {
        if rel.split('/').any(|s| s == ".." || s.is_empty()) {
            return Err(BuildError::Config(format!(
                "refusing to write outside the output folder: `{rel}`"
            )));
        }
        Ok(self.out.join(rel))
    }

    /// Writes one output unless it is already in place. Returns its state and whether it was written.
    fn write_output(
        &self,
        rel: &str,
        o: &Output,
        old: &State,
        nodes: &[Node],
        finals: &[Final],
    ) -> Result<(OutputState, bool), BuildError> {
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
                return Ok((
                    OutputState {
                        hash: o.hash.clone(),
                        size,
                        mtime_ns,
                    },
                    false,
                ));
            }
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
        }
        let (size, mtime_ns) = crate::cache::stat(&abs).unwrap_or((o.size, 0));
        Ok((
            OutputState {
                hash: o.hash.clone(),
                size,
                mtime_ns,
            },
            true,
        ))
    }

    /// Which fingerprinted files of earlier builds stay: those of the last `keep-builds` builds, and those
    /// dropped less than `keep-age` ago. Fills `manifest.builds` and `manifest.retained`; returns the
    /// paths whose time is up.
    fn retain(
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

    fn read_old_manifest(&self) -> Option<Manifest> {
        let bytes = std::fs::read(self.out.join(&self.cfg.manifest)).ok()?;
        serde_json::from_slice(&bytes).ok()
    }

    /// build-info.json; the build time of an existing one is kept when nothing it describes changed, so a
    /// rebuild of the same source is byte-identical.
    fn build_info(&self, manifest: &Manifest) -> BuildInfo {
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
    fn write_json_if_changed<T: Serialize>(
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

/// An `integrity` value with each `sha256-`/`sha384-`/`sha512-` digest computed over `bytes` (options after
/// `?` and unknown algorithms kept as written).
fn integrity_value(value: &str, bytes: &[u8]) -> String {
    use base64::Engine;
    use sha2::Digest;
    let b64 = |d: &[u8]| base64::engine::general_purpose::STANDARD.encode(d);
    value
        .split_ascii_whitespace()
        .map(|token| {
            let (alg, rest) = token.split_once('-').unwrap_or((token, ""));
            let opts = rest.find('?').map_or("", |i| &rest[i..]);
            let digest = match alg.to_ascii_lowercase().as_str() {
                "sha256" => b64(&sha2::Sha256::digest(bytes)),
                "sha384" => b64(&sha2::Sha384::digest(bytes)),
                "sha512" => b64(&sha2::Sha512::digest(bytes)),
                _ => return token.to_string(),
            };
            format!("{alg}-{digest}{opts}")
        })
        .collect::<Vec<_>>()
        .join(" ")
}

/// When many missing references share a first path segment that, removed, makes them resolve, the site
/// is served under that prefix (Vite's `base: '/app/'`): say so.
fn url_prefix_hint(
    missing: &[MissingRef],
    index: &HashMap<String, usize>,
    prefix: &str,
) -> Option<String> {
    let mut by_segment: BTreeMap<&str, usize> = BTreeMap::new();
    for m in missing
        .iter()
        .filter(|m| m.url.trim_start().starts_with('/'))
    {
        if let Some((first, rest)) = m.resolved.split_once('/')
            && index.contains_key(rest)
        {
            *by_segment.entry(first).or_default() += 1;
        }
    }
    let (seg, n) = by_segment.into_iter().max_by_key(|(_, n)| *n)?;
    if n < 2 && missing.len() > 1 {
        return None;
    }
    let suggested = format!("{}{seg}/", prefix);
    Some(format!(
        "hint: {n} of {} missing references start with `{suggested}` and exist without it: the site is probably served under `{suggested}`; set `build.url-prefix = \"{suggested}\"` (or pass `--url-prefix {suggested}`)",
        missing.len()
    ))
}

/// Compressed copies the source already has (`sitemap.xml.gz` next to `sitemap.xml`, as MkDocs writes).
#[derive(Default)]
struct SourceSidecars {
    /// Source files that are exactly a codec's encoding of their base file: left out, and the build
    /// writes that sidecar itself (from the base's final bytes), even where it saves little.
    dropped: HashSet<String>,
    /// (base, codec) whose sidecar must be written because the source had it.
    forced: HashSet<(String, Codec)>,
    /// (base, codec) whose sidecar name is taken by another source file: the user's file is kept as is
    /// and the build writes no sidecar of that codec for the base.
    skipped: HashSet<(String, Codec)>,
}

fn source_sidecars(files: &[SourceFile], codecs: &[Codec]) -> Result<SourceSidecars, BuildError> {
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

/// What decides a file's name: the user's `mutable` globs, the fixed-name globs (which never apply to a
/// bundler-hashed name), and the prehashed detector.
struct NameRules {
    mutable: globset::GlobSet,
    fixed: globset::GlobSet,
    prehashed: Prehashed,
}

/// A file's compressed sidecars: codec → (blob name, variant).
type Encodings = BTreeMap<Codec, (String, Variant)>;

/// Where an output's bytes come from.
#[derive(Debug, Clone)]
enum From {
    Final(usize),
    Blob(String),
}

#[derive(Debug, Clone)]
struct Output {
    hash: String,
    size: u64,
    from: From,
    immutable: bool,
}

/// References of a JS file: source maps always, relative module specifiers when `imports`.
fn js_file_refs(text: &str, imports: bool) -> Vec<FoundRef> {
    use crate::refs::Syntax;
    js::scan_js(text, imports)
        .into_iter()
        .map(|r| {
            let (kind, syntax) = match r.kind {
                js::JsRefKind::SourceMap => (RefKind::SourceMap, Syntax::Plain),
                js::JsRefKind::StaticImport | js::JsRefKind::ExportFrom => {
                    (RefKind::JsImport, Syntax::JsString(r.quote.unwrap_or('"')))
                }
                js::JsRefKind::DynamicImport => (
                    RefKind::JsDynamicImport,
                    Syntax::JsString(r.quote.unwrap_or('"')),
                ),
                js::JsRefKind::NewUrl => {
                    (RefKind::JsNewUrl, Syntax::JsString(r.quote.unwrap_or('"')))
                }
            };
            FoundRef {
                span: r.span,
                url: r.value,
                kind,
                syntax,
            }
        })
        .collect()
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

fn remove_empty_parents(file: &Path, root: &Path) {
    let mut dir = file.parent();
    while let Some(d) = dir {
        if d == root || !d.starts_with(root) || std::fs::remove_dir(d).is_err() {
            break;
        }
        dir = d.parent();
    }
}
