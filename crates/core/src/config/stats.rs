//! The `[stats]` section: the targets `staleguard stats` holds a CDN's logs to, and how it reports.
//!
//! Ratios are written as a fraction (`0.8`) or a percentage (`"80%"`); the defaults are the targets of
//! the user's monitoring wish list (hit ratio above 80 %, origin requests below 20 %, errors below 1 %).

use serde::{Deserialize, Deserializer, Serialize};

use crate::duration::HumanDuration;

/// What a stale-content signal (an old or missing fingerprinted name, a page older than its
/// `s-maxage`) does to the exit code.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize, Serialize)]
#[serde(rename_all = "kebab-case")]
pub enum StaleSignals {
    /// Any signal crosses a threshold (exit 3).
    Fail,
    /// Reported, exit code unchanged.
    Warn,
}

/// The `[stats]` section.
#[derive(Debug, Clone, Deserialize, Serialize, PartialEq)]
#[serde(deny_unknown_fields, rename_all = "kebab-case", default)]
pub struct StatsConfig {
    /// Lowest acceptable cache hit ratio by requests (hits over cache lookups).
    #[serde(deserialize_with = "de_ratio")]
    pub min_hit_ratio: f64,
    /// Highest acceptable share of requests that went to the origin.
    #[serde(deserialize_with = "de_ratio")]
    pub max_origin_ratio: f64,
    /// Highest acceptable share of responses with a 5xx status.
    #[serde(deserialize_with = "de_ratio")]
    pub max_error_ratio: f64,
    /// Below this many requests the ratios are reported but not judged (a quiet hour says little).
    pub min_requests: u64,
    /// Whether stale-content signals fail the run (`fail`, exit 3) or are only reported (`warn`).
    pub stale_signals: StaleSignals,
    /// How many URLs each top list shows (top misses, each stale signal).
    pub top: usize,
    /// Width of the time buckets (`5m`, `1h`); empty: chosen from the log's time span (at most
    /// about 120 buckets).
    #[serde(deserialize_with = "de_bucket")]
    pub bucket: Option<HumanDuration>,
}

impl Default for StatsConfig {
    fn default() -> Self {
        StatsConfig {
            min_hit_ratio: 0.8,
            max_origin_ratio: 0.2,
            max_error_ratio: 0.01,
            min_requests: 0,
            stale_signals: StaleSignals::Fail,
            top: 20,
            bucket: None,
        }
    }
}

/// A ratio: a number between 0 and 1, or a percentage string (`"80%"`).
fn de_ratio<'de, D: Deserializer<'de>>(d: D) -> Result<f64, D::Error> {
    #[derive(Deserialize)]
    #[serde(untagged)]
    enum Ratio {
        Number(f64),
        Text(String),
    }
    let v = match Ratio::deserialize(d)? {
        Ratio::Number(n) => n,
        Ratio::Text(s) => match s.trim().strip_suffix('%') {
            Some(p) => p.trim().parse::<f64>().map(|p| p / 100.0).map_err(|_| {
                serde::de::Error::custom(format!("`{s}` is not a percentage like \"80%\""))
            })?,
            None => {
                return Err(serde::de::Error::custom(format!(
                    "`{s}` is not a ratio: write 0.8 or \"80%\""
                )));
            }
        },
    };
    if !(0.0..=1.0).contains(&v) {
        return Err(serde::de::Error::custom(format!(
            "a ratio must be between 0 and 1 (0 % and 100 %), got {v}"
        )));
    }
    Ok(v)
}

fn de_bucket<'de, D: Deserializer<'de>>(d: D) -> Result<Option<HumanDuration>, D::Error> {
    let s = String::deserialize(d)?;
    if s.trim().is_empty() {
        return Ok(None);
    }
    let h = HumanDuration::parse(&s).map_err(serde::de::Error::custom)?;
    if h.get().as_secs() == 0 {
        return Err(serde::de::Error::custom(format!(
            "bucket `{s}` must be at least one second"
        )));
    }
    Ok(Some(h))
}

#[cfg(test)]
mod tests {
    use crate::config::Config;

    use super::*;

    #[test]
    fn defaults_are_the_seed_targets() {
        let c = Config::from_toml("", "x.toml").unwrap();
        assert_eq!(c.stats.min_hit_ratio, 0.8);
        assert_eq!(c.stats.max_origin_ratio, 0.2);
        assert_eq!(c.stats.max_error_ratio, 0.01);
        assert_eq!(c.stats.stale_signals, StaleSignals::Fail);
    }

    #[test]
    fn values_and_errors_name_the_line() {
        let c = Config::from_toml(
            "[stats]\nmin-hit-ratio = \"95%\"\nmax-origin-ratio = 0.05\nstale-signals = \"warn\"\nbucket = \"5m\"\ntop = 5\n",
            "x.toml",
        )
        .unwrap();
        assert!((c.stats.min_hit_ratio - 0.95).abs() < 1e-9);
        assert_eq!(c.stats.max_origin_ratio, 0.05);
        assert_eq!(c.stats.stale_signals, StaleSignals::Warn);
        assert_eq!(c.stats.bucket.unwrap().get().as_secs(), 300);
        for (text, needles) in [
            (
                "[stats]\n\nmin-hit-ratio = 1.5\n",
                &["line 3", "between 0 and 1"][..],
            ),
            ("[stats]\nmax-error-ratio = \"a lot\"\n", &["line 2", "0.8"]),
            ("[stats]\nhit-ratio = 0.8\n", &["line 2", "hit-ratio"]),
            (
                "[stats]\nstale-signals = \"ignore\"\n",
                &["line 2", "ignore"],
            ),
            ("[stats]\nbucket = \"soon\"\n", &["line 2"]),
        ] {
            let e = Config::from_toml(text, "site/staleguard.toml")
                .unwrap_err()
                .to_string();
            for n in needles {
                assert!(e.contains(n), "error for {text:?} lacks {n:?}:\n{e}");
            }
        }
    }
}
