//! `staleguard stats` (issue 19): what a CDN did, from its own logs.
//!
//! [`analyze`] streams log files (plain or gzip; CloudFront standard and real-time, `varnishncsa`,
//! nginx, combined, Cloudflare and Fastly JSON lines: [`format`]), in chunks of whole lines parsed on
//! worker threads, and counts requests, bytes, cache outcomes and statuses in total, per route class
//! ([`routes`]: fingerprinted, mutable, other, as the CDN configuration sees them) and per time
//! bucket; the URLs most often fetched from the origin and the stale-content signals are kept in
//! bounded top lists ([`topk`]). The [`report::Report`] judges the `[stats]` thresholds; [`html`]
//! renders it as one self-contained page. Memory is bounded by the chunks in flight, the buckets
//! (at most 4,096 per worker), the top lists and a path-class cache, never by the file's size.
//!
//! The library prints nothing; malformed lines are counted and sampled with `file:line`.

pub mod aggregate;
pub mod format;
pub mod html;
pub mod read;
pub mod record;
pub mod report;
pub mod routes;
pub mod time;
pub mod topk;

use std::borrow::Cow;
use std::path::PathBuf;
use std::sync::Arc;

pub use format::Format;
pub use record::{Cache, Record};
pub use report::Report;
pub use routes::{AgeRule, RouteClass, Routes};
use staleguard_core::config::StatsConfig;

/// What went wrong; a malformed line is not an error (it is counted and reported).
#[derive(Debug, thiserror::Error)]
pub enum StatsError {
    #[error("cannot read `{path}`: {source}")]
    Io {
        path: String,
        #[source]
        source: std::io::Error,
    },
    #[error("cannot tell the log format of `{path}` from its first lines (the first: `{sample}`)")]
    Undetected { path: String, sample: String },
    #[error("--fields: {0}")]
    Fields(String),
    #[error("{0}")]
    Routes(String),
}

impl StatsError {
    /// What to do about it.
    pub fn hint(&self) -> Option<Cow<'_, str>> {
        Some(match self {
            StatsError::Io { .. } => "check the path and its permissions".into(),
            StatsError::Undetected { .. } => format!(
                "pass --format ({}); the README's `staleguard stats` section shows each format",
                Format::ALL.map(Format::name).join(", ")
            )
            .into(),
            StatsError::Fields(_) => {
                "list your real-time log configuration's fields in its order, comma-separated: \
                 --fields timestamp,c-ip,sc-status,sc-bytes,cs-uri-stem,x-edge-result-type"
                    .into()
            }
            StatsError::Routes(_) => return None,
        })
    }
}

/// How to read and judge.
#[derive(Debug, Clone)]
pub struct Options {
    /// Every file in this format instead of detecting each.
    pub format: Option<Format>,
    /// CloudFront real-time logs' field list (default: [`format::w3c::REALTIME_FIELDS`]).
    pub fields: Option<Vec<String>>,
    pub routes: Routes,
    /// Worker threads (default: the available cores).
    pub workers: Option<usize>,
    /// The `[stats]` thresholds, top-list length and bucket width.
    pub config: StatsConfig,
    /// Counters per top list (memory and accuracy; see [`topk`]).
    pub sketch: usize,
}

impl Options {
    pub fn new(routes: Routes, config: StatsConfig) -> Options {
        Options {
            format: None,
            fields: None,
            routes,
            workers: None,
            config,
            sketch: 1024,
        }
    }
}

/// Reads `paths` (`-`: standard input) and reports.
pub fn analyze(paths: &[PathBuf], opts: &Options) -> Result<Report, StatsError> {
    let fields = match &opts.fields {
        Some(f) => format::w3c::Layout::new(f),
        None => format::w3c::Layout::new(format::w3c::REALTIME_FIELDS),
    }
    .map_err(StatsError::Fields)?;
    let workers = opts.workers.unwrap_or_else(|| {
        std::thread::available_parallelism()
            .map(|n| n.get())
            .unwrap_or(1)
    });
    let ro = read::ReadOptions {
        format: opts.format,
        fields: Some(Arc::new(fields)),
        routes: &opts.routes,
        workers,
        width: opts
            .config
            .bucket
            .as_ref()
            .map(|b| b.get().as_secs().max(1) as i64),
        sketch: opts.sketch.max(opts.config.top),
    };
    let (agg, opened) = read::read_all(paths, &ro)?;
    Ok(Report::new(
        &agg,
        &opened,
        &opts.config,
        opts.routes.checks_deploys(),
    ))
}
