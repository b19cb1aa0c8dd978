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
    let report = build(global, &loaded, &opts)?;
    if global.json {
        println!("{}", serde_json::to_string_pretty(&report)?);
    }
    Ok(ExitCode::SUCCESS)
}

/// Runs the build with progress bars and, unless `--json` or `--quiet`, prints its warnings and
/// summary line; shared by `staleguard build` and `staleguard deploy` (which builds first).
pub fn build(
    global: &Global,
    loaded: &settings::Loaded,
    opts: &staleguard_assets::BuildOptions,
) -> Result<staleguard_assets::BuildReport> {
    match &loaded.path {
        Some(p) => tracing::info!(config = %p.display(), "using config"),
        None => tracing::info!("no {} found; using defaults", settings::CONFIG_NAME),
    }
    let bars = Bars::new(!global.json && !global.quiet);
    let report = staleguard_assets::build(opts, &bars)
        .with_context(|| format!("build of `{}` failed", opts.source.display()))?;
    if global.json || global.quiet {
        return Ok(report);
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
        "built {} files ({} → {} with sidecars) in {:.2} s: {} fingerprinted, {} prehashed, {} mutable; {} references rewritten; {} sidecars ({} compressed now, {} from cache); {} written, {} unchanged, {} removed; {} warning(s) → {} (version {})",
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
        report.written,
        report.unchanged,
        report.removed,
        report.warnings.len(),
        opts.out.display(),
        report.version,
    );
    Ok(report)
}
