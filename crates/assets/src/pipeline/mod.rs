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

mod name;
mod precompress;
mod prune;
mod resolve;
mod scan;
mod variants;
mod write;

use std::collections::{BTreeMap, BTreeSet, HashMap};
use std::ops::Range;
use std::path::PathBuf;
use std::sync::Mutex;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::Instant;

use percent_encoding::{AsciiSet, CONTROLS};
use rayon::prelude::*;
use serde::Serialize;
use staleguard_core::config::BuildConfig;
use staleguard_core::manifest::{Manifest, ManifestEntry};

use crate::cache::{
    BlobState, Cache, CachedRef, CachedScan, FinalState, OutputState, SourceState, State,
};
use crate::compress::Levels;
use crate::error::BuildError;
use crate::graph;
use crate::html;
use crate::prehashed::Prehashed;
use crate::reuse::{ENCODINGS_FILE, EncodingsFile, Reuse};
use crate::source::{Lang, SourceFile, glob_set, walk};

use name::final_key;
use precompress::source_sidecars;
use prune::remove_empty_parents;
use resolve::url_prefix_hint;
use scan::NameRules;
use write::{From, Output};

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
    /// Compressions not run because the store's current deploy already holds the sidecar
    /// (`--reuse-from`); those sidecars are listed in the manifest but not written to the output.
    pub reused: usize,
    /// The deploy whose record the build reused sidecars from (`--reuse-from`).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub reused_from: Option<String>,
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
    /// `[build.images]`: source images with variants, those whose variants this build made (the rest
    /// came from the cache), and the variants in the output.
    pub images: usize,
    pub images_processed: usize,
    pub images_from_cache: usize,
    pub image_variants: usize,
    /// Originals replaced by their lossless optimisation, and the bytes that saved.
    pub images_optimized: usize,
    pub image_bytes_saved: u64,
    /// Originals whose optimisation this build tried (the rest were known from the cache).
    pub images_optimized_now: usize,
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
    /// HTML `<img>` tags.
    images: Vec<html::ImgTag>,
    /// CSS declarations whose value is one image `url()`.
    css_images: Vec<crate::images::css::ImageDecl>,
    /// This image's responsive variants (`[build.images]`).
    variants: Option<crate::images::ImageSet>,
    /// The blob holding this image's losslessly optimised bytes, which replace its raw bytes in the
    /// output (`[build.images] optimize`).
    optimized: Option<(String, BlobState)>,
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
    build_reusing(opts, progress, None)
}

/// Runs a build that takes the sidecars `reuse` proves from the store instead of compressing them.
pub fn build_reusing(
    opts: &BuildOptions,
    progress: &dyn Progress,
    reuse: Option<&Reuse>,
) -> Result<BuildReport, BuildError> {
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
    pool.install(|| Builder::new(opts, threads, reuse)?.run(progress, started))
}

struct Builder<'a> {
    opts: &'a BuildOptions,
    cfg: &'a BuildConfig,
    source: PathBuf,
    out: PathBuf,
    cache: Cache,
    threads: usize,
    levels: Levels,
    /// Levels of `cheap-compress` files, and those files.
    cheap_levels: Levels,
    cheap: globset::GlobSet,
    reuse: Option<&'a Reuse>,
    /// `skip-compress` as lower-case suffixes with their dot (`.png`, `.wasm.gz`).
    skip_compress: Vec<String>,
    reserved: Vec<String>,
    /// `[build.images]`, when on.
    images: Option<crate::images::Settings<'a>>,
}

impl<'a> Builder<'a> {
    fn new(
        opts: &'a BuildOptions,
        threads: usize,
        reuse: Option<&'a Reuse>,
    ) -> Result<Builder<'a>, BuildError> {
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
        let mut reserved: Vec<String> = [&cfg.manifest, &cfg.django_manifest, &cfg.build_info]
            .into_iter()
            .filter(|n| !n.is_empty())
            .cloned()
            .collect();
        reserved.push(ENCODINGS_FILE.to_string());
        Ok(Builder {
            opts,
            cfg,
            source,
            out,
            cache: Cache::new(opts.cache_dir.clone()),
            threads,
            levels: Levels::from_config(cfg),
            cheap_levels: Levels::cheap_from_config(cfg),
            cheap: glob_set(&cfg.cheap_compress)?,
            reuse,
            skip_compress: cfg
                .skip_compress
                .iter()
                .map(|e| format!(".{}", e.trim_start_matches('.').to_ascii_lowercase()))
                .collect(),
            reserved,
            images: crate::images::Settings::new(&cfg.images)?,
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
            // Stylesheets are scanned for image declarations only with the switch on.
            "css_image_set": c.images.enabled && c.images.css_image_set,
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
                // Both hints, the prefix one last (`h` is `hint: …`).
                return Err(BuildError::Config(format!(
                    "{}\n{h}",
                    BuildError::Missing(missing).shown()
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

        // Phase 2b: responsive image variants (`[build.images]`), before the pages that offer them.
        let mut blobs_used: BTreeSet<String> = BTreeSet::new();
        let mut new_blobs: BTreeMap<String, BlobState> = BTreeMap::new();
        let mut image_memos = BTreeMap::new();
        self.make_variants(
            &mut nodes,
            &index,
            &old,
            &mut report,
            &mut blobs_used,
            &mut new_blobs,
            &mut image_memos,
        )?;

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

        // Every output name of each file: its final path, and its logical one when the original is kept.
        let out_names: Vec<Vec<(String, bool)>> = nodes
            .iter()
            .enumerate()
            .map(|(i, n)| {
                let f = &finals[i];
                let fingerprinted = f.path != n.file.logical;
                let original =
                    fingerprinted && (cfg.keep_originals || needs_original.contains_key(&i));
                let mut names = vec![(f.path.clone(), !n.mutable)];
                if original {
                    names.push((n.file.logical.clone(), false));
                }
                names
            })
            .collect();

        // Phase 4: compress (what the store does not already prove it holds, `--reuse-from`).
        let precompress::Compressed {
            encodings,
            reused,
            not_kept,
        } = self.compress_all(
            &nodes,
            &mut finals,
            &out_names,
            &old,
            &sidecars,
            progress,
            &mut report,
            &mut blobs_used,
            &mut new_blobs,
        )?;
        report.reused_from = self.reuse.map(|r| r.deploy.clone());
        let mut levels_file = EncodingsFile {
            format: 1,
            ..Default::default()
        };

        // Phase 5: plan and write outputs.
        let mut entries: BTreeMap<String, ManifestEntry> = BTreeMap::new();
        let mut image_lists = BTreeMap::new();
        // Output path → (content hash, size, source of bytes, immutable?)
        let mut outputs: BTreeMap<String, Output> = BTreeMap::new();
        for (i, n) in nodes.iter().enumerate() {
            let f = &finals[i];
            let original = out_names[i].len() > 1;
            let names = &out_names[i];
            for (name, immutable) in names {
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
                for (codec, tag) in &not_kept[i] {
                    levels_file
                        .not_kept
                        .insert(format!("{name}{}", codec.extension()), tag.clone());
                }
                for (codec, (blob, v)) in &encodings[i] {
                    let sidecar = format!("{name}{}", codec.extension());
                    if let Some((_, tag)) = blob.split_once('.') {
                        levels_file
                            .sidecars
                            .insert(sidecar.clone(), tag.to_string());
                    }
                    self.add_output(
                        &mut outputs,
                        &sidecar,
                        Output {
                            hash: v.hash.clone(),
                            size: v.size,
                            from: if reused.contains(blob) {
                                From::Stored
                            } else {
                                From::Blob(blob.clone())
                            },
                            immutable: *immutable,
                        },
                    )?;
                }
            }
            if let Some(set) = &n.variants {
                self.add_variants(n, set, &mut outputs, &mut entries, &mut image_lists)?;
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
        manifest.images = image_lists;
        report.version = manifest.version().to_string();
        let old_manifest = self.read_old_manifest();
        let expired = self.retain(&mut manifest, old_manifest.as_ref(), &outputs);
        report.retained = manifest.retained.len();

        let mut new_outputs: BTreeMap<String, OutputState> = BTreeMap::new();
        let new_outputs_lock = Mutex::new(&mut new_outputs);
        let written = AtomicUsize::new(0);
        // Reused sidecars left to the store.
        let absent = AtomicUsize::new(0);
        progress.start(Phase::Write, outputs.len() as u64);
        // Immutable files first, so that no mutable file written after them references a missing one.
        for immutable_pass in [true, false] {
            outputs
                .par_iter()
                .filter(|(_, o)| o.immutable == immutable_pass)
                .try_for_each(|(path, o)| {
                    let Some(state) = self.write_output(path, o, &old, &nodes, &finals)? else {
                        absent.fetch_add(1, Ordering::Relaxed);
                        progress.advance(1);
                        return Ok(());
                    };
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
        report.unchanged = outputs.len() - report.written - absent.into_inner();
        report.bytes_out = outputs.values().map(|o| o.size).sum();

        // The level of every sidecar the manifest lists, for the deploy's record (hidden: never served
        // nor deployed).
        report.bytes_out += self.write_json_if_changed(ENCODINGS_FILE, &levels_file)?;
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
            images: image_memos,
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
                        images: n.images.clone(),
                        css_images: n.css_images.clone(),
                    },
                );
            }
            state.finals.insert(
                n.file.logical.clone(),
                FinalState {
                    raw: n.raw_hash.clone(),
                    edits: final_key(n, &finals[i].edits),
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
}
