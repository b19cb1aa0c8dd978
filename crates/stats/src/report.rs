//! The report: the counts turned into ratios, the time series re-bucketed for reading, the top lists
//! cut, and the thresholds judged. Serialised as the `--json` output; the terminal table and the HTML
//! page are views of it.

use std::collections::BTreeMap;

use serde::Serialize;
use staleguard_core::config::{StaleSignals, StatsConfig};

use crate::aggregate::{Aggregate, Counters, LADDER, Malformed};
use crate::read::Opened;
use crate::record::Cache;
use crate::routes::RouteClass;
use crate::topk::{TopK, TopUrl};

/// The ratios and counts of a set of requests.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Summary {
    pub requests: u64,
    /// Bytes sent to clients (bandwidth).
    pub bytes: u64,
    /// Cache lookups (hits, stale, revalidated, misses, passes): the hit ratio's denominator.
    pub lookups: u64,
    pub hits: u64,
    /// Hits over lookups; `None` when the log has no cache status.
    pub hit_ratio: Option<f64>,
    /// Bytes served from the cache over the bytes of lookups.
    pub byte_hit_ratio: Option<f64>,
    /// Requests the origin was asked (misses, passes, revalidations).
    pub origin_requests: u64,
    /// Bytes the origin sent (the bodies of misses and passes).
    pub origin_bytes: u64,
    /// Origin requests over the requests whose cache status is known.
    pub origin_ratio: Option<f64>,
    /// 5xx responses.
    pub errors: u64,
    pub error_ratio: Option<f64>,
    /// `1xx` … `5xx`, `other`.
    pub status: BTreeMap<&'static str, u64>,
    /// Requests per cache status (`hit`, `stale`, `revalidated`, `miss`, `pass`, `synth`, `error`,
    /// `unknown`).
    pub cache: BTreeMap<&'static str, u64>,
}

fn ratio(a: u64, b: u64) -> Option<f64> {
    (b > 0).then(|| a as f64 / b as f64)
}

impl Summary {
    pub fn of(c: &Counters) -> Summary {
        let names = ["other", "1xx", "2xx", "3xx", "4xx", "5xx"];
        Summary {
            requests: c.requests,
            bytes: c.bytes,
            lookups: c.lookups(),
            hits: c.hits(),
            hit_ratio: ratio(c.hits(), c.lookups()),
            byte_hit_ratio: ratio(c.hit_bytes(), c.lookup_bytes()),
            origin_requests: c.origin_requests(),
            origin_bytes: c.origin_bytes(),
            origin_ratio: ratio(c.origin_requests(), c.known()),
            errors: c.status[5],
            error_ratio: ratio(c.status[5], c.requests),
            status: names
                .iter()
                .zip(c.status)
                .filter(|(_, n)| *n > 0)
                .map(|(k, n)| (*k, n))
                .collect(),
            cache: Cache::ALL
                .iter()
                .map(|k| (k.name(), c.cache[*k as usize]))
                .filter(|(_, n)| *n > 0)
                .collect(),
        }
    }
}

/// One input file.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct FileReport {
    pub path: String,
    pub format: &'static str,
    pub gzip: bool,
    pub lines: u64,
    pub records: u64,
    pub malformed: u64,
}

/// One time bucket.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Bucket {
    /// RFC 3339, UTC.
    pub start: String,
    pub unix: i64,
    #[serde(flatten)]
    pub summary: Summary,
}

/// A top list.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct TopList {
    /// Requests counted in all (not only those listed).
    pub total: u64,
    /// How much each listed count may be low by (0: exact).
    pub max_error: u64,
    pub urls: Vec<TopUrl>,
}

impl TopList {
    fn of(t: &TopK, n: usize, max: bool) -> TopList {
        TopList {
            total: t.total(),
            max_error: t.error(),
            urls: t.top(n, max),
        }
    }
}

/// The signals of stale content no CDN console shows.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Stale {
    /// Whether fingerprinted URLs were checked against the kept deploys (a store was reachable).
    pub deploys_checked: bool,
    /// Requests for fingerprinted names no kept deploy (nor the build) has: a page cached somewhere
    /// still references old assets.
    pub unknown_fingerprinted: TopList,
    /// 404s on fingerprinted names: a page went out before its assets (a deploy-order bug), or
    /// references were lost.
    pub fingerprinted_404: TopList,
    /// Mutable URLs served from the cache with an `Age` beyond their `s-maxage` (plus grace).
    pub mutable_over_age: TopList,
}

/// One threshold and how the logs fared.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Check {
    pub name: &'static str,
    /// `>= 80%`, `<= 20%`, `= 0`.
    pub target: String,
    pub value: Option<f64>,
    /// `None`: not judged (no data, or fewer requests than `min-requests`).
    pub ok: Option<bool>,
}

/// The whole report.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Report {
    pub files: Vec<FileReport>,
    pub total: Summary,
    pub classes: BTreeMap<&'static str, Summary>,
    /// First and last request (RFC 3339) and the bucket width in seconds.
    pub first: Option<String>,
    pub last: Option<String>,
    pub bucket_seconds: i64,
    pub buckets: Vec<Bucket>,
    /// Requests whose line had no time (not in any bucket).
    pub untimed: u64,
    /// URLs whose body came from the origin most often (misses and passes).
    pub top_misses: TopList,
    pub stale: Stale,
    pub malformed: u64,
    pub malformed_samples: Vec<Malformed>,
    pub checks: Vec<Check>,
    /// Some threshold was crossed (the command exits 3).
    pub crossed: bool,
}

/// The bucket width to show: the configured one, else the smallest ladder width (a multiple of the
/// counted width) giving at most 120 buckets.
fn shown_width(agg: &Aggregate, configured: Option<i64>) -> i64 {
    if let Some(w) = configured {
        return w.max(agg.width);
    }
    let span = match (agg.first, agg.last) {
        (Some(f), Some(l)) => l - f + 1,
        _ => return agg.width,
    };
    LADDER
        .into_iter()
        .filter(|w| *w >= agg.width && w % agg.width == 0)
        .find(|w| span / w <= 120)
        .unwrap_or_else(|| agg.width.max(span / 120 + 1))
}

impl Report {
    /// The report of an aggregate, judged against `cfg`.
    pub fn new(agg: &Aggregate, opened: &[Opened], cfg: &StatsConfig, checked: bool) -> Report {
        let configured = cfg.bucket.as_ref().map(|b| b.get().as_secs() as i64);
        let width = shown_width(agg, configured);
        let mut buckets: BTreeMap<i64, Counters> = BTreeMap::new();
        for (k, c) in &agg.buckets {
            buckets.entry(k - k.rem_euclid(width)).or_default().merge(c);
        }
        let top = cfg.top;
        let mut r = Report {
            files: opened
                .iter()
                .enumerate()
                .map(|(i, o)| {
                    let f = agg.files.get(i).cloned().unwrap_or_default();
                    FileReport {
                        path: o.path.clone(),
                        format: o.format.name(),
                        gzip: o.gzip,
                        lines: f.lines,
                        records: f.records,
                        malformed: f.malformed,
                    }
                })
                .collect(),
            total: Summary::of(&agg.total),
            classes: RouteClass::ALL
                .iter()
                .map(|c| (c.name(), Summary::of(&agg.classes[*c as usize])))
                .collect(),
            first: agg.first.map(crate::time::rfc3339),
            last: agg.last.map(crate::time::rfc3339),
            bucket_seconds: width,
            buckets: buckets
                .into_iter()
                .map(|(k, c)| Bucket {
                    start: crate::time::rfc3339(k),
                    unix: k,
                    summary: Summary::of(&c),
                })
                .collect(),
            untimed: agg.untimed,
            top_misses: TopList::of(&agg.misses, top, false),
            stale: Stale {
                deploys_checked: checked,
                unknown_fingerprinted: TopList::of(&agg.unknown_fingerprinted, top, false),
                fingerprinted_404: TopList::of(&agg.fingerprinted_404, top, false),
                mutable_over_age: TopList::of(&agg.over_age, top, true),
            },
            malformed: agg.malformed,
            malformed_samples: agg.samples.clone(),
            checks: Vec::new(),
            crossed: false,
        };
        r.judge(cfg);
        r
    }

    fn judge(&mut self, cfg: &StatsConfig) {
        let enough = self.total.requests >= cfg.min_requests.max(1);
        let pct = |v: f64| format!("{}%", (v * 1000.0).round() / 10.0);
        let mut checks = vec![
            Check {
                name: "hit-ratio",
                target: format!(">= {}", pct(cfg.min_hit_ratio)),
                value: self.total.hit_ratio,
                ok: self
                    .total
                    .hit_ratio
                    .filter(|_| enough)
                    .map(|v| v >= cfg.min_hit_ratio),
            },
            Check {
                name: "origin-ratio",
                target: format!("<= {}", pct(cfg.max_origin_ratio)),
                value: self.total.origin_ratio,
                ok: self
                    .total
                    .origin_ratio
                    .filter(|_| enough)
                    .map(|v| v <= cfg.max_origin_ratio),
            },
            Check {
                name: "error-ratio",
                target: format!("<= {}", pct(cfg.max_error_ratio)),
                value: self.total.error_ratio,
                ok: self
                    .total
                    .error_ratio
                    .filter(|_| enough)
                    .map(|v| v <= cfg.max_error_ratio),
            },
        ];
        let fail = cfg.stale_signals == StaleSignals::Fail;
        for (name, list, judged) in [
            (
                "unknown-fingerprinted",
                &self.stale.unknown_fingerprinted,
                self.stale.deploys_checked,
            ),
            ("fingerprinted-404", &self.stale.fingerprinted_404, true),
            ("mutable-over-age", &self.stale.mutable_over_age, true),
        ] {
            checks.push(Check {
                name,
                target: if fail { "= 0" } else { "reported" }.to_string(),
                value: judged.then_some(list.total as f64),
                ok: (judged && fail).then_some(list.total == 0),
            });
        }
        self.crossed = checks.iter().any(|c| c.ok == Some(false));
        self.checks = checks;
    }
}
