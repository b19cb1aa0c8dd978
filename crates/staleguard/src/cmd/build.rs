//! `staleguard build`: runs the asset build and prints its summary, warnings, or JSON report.

use std::process::ExitCode;

use anyhow::{Context, Result};

use crate::cli::{BuildArgs, Global};
use crate::output::{Bars, size};
use crate::settings;

/// How many warnings the human output lists before summarising the rest.
const MAX_LISTED_WARNINGS: usize = 20;

pub fn run(global: &Global, args: &BuildArgs) -> Result<ExitCode> {
    let loaded = settings::load(global)?;
    let opts = settings::build_options(&loaded, args)?;
    let reuse = settings::build_reuse(&loaded, args)?;
    let report = build(global, &loaded, &opts, reuse.as_ref())?;
    if global.json {
        println!("{}", serde_json::to_string_pretty(&report)?);
    }
    Ok(ExitCode::SUCCESS)
}

/// What the store's current deploy proves (`--reuse-from`), read before the build.
fn read_reuse(
    loaded: &settings::Loaded,
    from: &settings::ReuseFrom,
) -> Result<Option<staleguard_assets::Reuse>> {
    let rt = super::runtime()?;
    let record = rt
        .block_on(staleguard_store::deploy::current_record(
            &from.url,
            &from.config,
            &loaded.base,
        ))
        .with_context(|| {
            format!(
                "cannot read the current deploy of `{}` to reuse its sidecars\nhint: fix the store's access, or build without reuse (`deploy --no-reuse`, no --reuse-from)",
                from.url
            )
        })?;
    Ok(record.map(|r| staleguard_assets::Reuse::from_record(&r)))
}

/// Runs the build with progress bars and, unless `--json` or `--quiet`, prints its warnings and
/// summary line; shared by `staleguard build` and `staleguard deploy` (which builds first).
pub fn build(
    global: &Global,
    loaded: &settings::Loaded,
    opts: &staleguard_assets::BuildOptions,
    reuse_from: Option<&settings::ReuseFrom>,
) -> Result<staleguard_assets::BuildReport> {
    match &loaded.path {
        Some(p) => tracing::info!(config = %p.display(), "using config"),
        None => tracing::info!("no {} found; using defaults", settings::CONFIG_NAME),
    }
    let reuse = match reuse_from {
        Some(f) => read_reuse(loaded, f)?,
        None => None,
    };
    let bars = Bars::new(!global.json && !global.quiet);
    let report = staleguard_assets::build_reusing(opts, &bars, reuse.as_ref())
        .with_context(|| format!("build of `{}` failed", opts.source.display()))?;
    if global.json || global.quiet {
        return Ok(report);
    }
    if let (Some(r), Some(f)) = (&reuse, reuse_from)
        && r.unproven > 0
    {
        eprintln!(
            "note: deploy {} of {} records no compression levels (deployed by an older staleguard): its {} sidecar(s) were not reused; the next deploy records them",
            r.deploy, f.url, r.unproven
        );
    }
    for w in report.warnings.iter().take(MAX_LISTED_WARNINGS) {
        eprintln!("warning: {w}");
    }
    if report.warnings.len() > MAX_LISTED_WARNINGS {
        eprintln!(
            "warning: … and {} more (run with --json to see every one)",
            report.warnings.len() - MAX_LISTED_WARNINGS
        );
    }
    println!(
        "built {} files ({} → {} with sidecars) in {:.2} s: {} fingerprinted, {} prehashed, {} mutable; {} references rewritten; {} sidecars ({} compressed now, {} from cache{}); {} written, {} unchanged, {} removed; {} warning(s) → {} (version {})",
        report.files,
        size(report.bytes_in),
        size(report.bytes_out),
        report.elapsed_ms as f64 / 1000.0,
        report.fingerprinted,
        report.prehashed,
        report.mutable,
        report.references_rewritten,
        report.sidecars,
        report.compressed_now,
        report.compressed_from_cache,
        match &report.reused_from {
            Some(id) => format!(", {} reused from deploy {id}", report.reused),
            None => String::new(),
        },
        report.written,
        report.unchanged,
        report.removed,
        report.warnings.len(),
        opts.out.display(),
        report.version,
    );
    if report.images > 0 {
        println!(
            "images: {} with {} variants ({} made now, {} from cache); {} originals optimised losslessly, {} saved",
            report.images,
            report.image_variants,
            report.images_processed,
            report.images_from_cache,
            report.images_optimized,
            size(report.image_bytes_saved),
        );
    }
    Ok(report)
}
