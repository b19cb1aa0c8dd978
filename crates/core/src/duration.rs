//! Durations as people write them: `250ms`, `90s`, `30m`, `12h`, `1d`, `2w`, or plain seconds (`"90"`).
//!
//! Parsed once, where they are read (a config key, a command-line flag), so a bad value fails there with
//! the key's line or the flag's name; callers get a [`std::time::Duration`] and never re-parse. The
//! spelling is kept for messages and serialisation (`keep-age 1d`, not `86400s`).

use std::fmt;
use std::str::FromStr;
use std::time::Duration;

use serde::{Deserialize, Deserializer, Serialize, Serializer};

/// A duration as written in `staleguard.toml` or on the command line.
#[derive(Debug, Clone)]
pub struct HumanDuration {
    millis: u64,
    text: String,
}

impl HumanDuration {
    /// Parses `250ms`, `90s`, `30m`, `12h`, `1d`, `2w` or plain seconds; the error says what to write
    /// instead.
    pub fn parse(s: &str) -> Result<HumanDuration, String> {
        if let Some(num) = s.trim().strip_suffix("ms") {
            let millis: u64 = num.trim().parse().map_err(|_| {
                format!("`{s}` is not a duration; write e.g. 250ms, 90s, 30m, 12h, 1d or 2w")
            })?;
            return Ok(HumanDuration {
                millis,
                text: s.to_string(),
            });
        }
        let secs = crate::deploy::parse_age(s)?;
        Ok(HumanDuration {
            // `parse_age` reads digits only: never negative.
            millis: secs
                .unsigned_abs()
                .checked_mul(1000)
                .ok_or_else(|| format!("`{s}` is too large"))?,
            text: s.to_string(),
        })
    }

    /// A duration of whole seconds, spelled in the largest unit that divides it (`120` → `2m`).
    pub fn from_secs(secs: u64) -> HumanDuration {
        let (n, unit) = [(7 * 86_400, "w"), (86_400, "d"), (3600, "h"), (60, "m")]
            .into_iter()
            .find(|&(u, _)| secs != 0 && secs.is_multiple_of(u))
            .map_or((secs, "s"), |(u, name)| (secs / u, name));
        HumanDuration {
            millis: secs.saturating_mul(1000),
            text: format!("{n}{unit}"),
        }
    }

    /// The duration.
    pub fn get(&self) -> Duration {
        Duration::from_millis(self.millis)
    }

    /// Whole seconds, signed, for arithmetic on Unix times (retention, GC).
    pub fn as_secs_i64(&self) -> i64 {
        // A parsed duration fits (it was an `i64`); only `from_secs` past `i64::MAX` saturates, and
        // that is still "forever".
        i64::try_from(self.millis / 1000).unwrap_or(i64::MAX)
    }

    /// The duration as written (`"1d"`).
    pub fn as_str(&self) -> &str {
        &self.text
    }
}

impl PartialEq for HumanDuration {
    /// Equal when they last as long, however spelled (`60s` = `1m`).
    fn eq(&self, other: &HumanDuration) -> bool {
        self.millis == other.millis
    }
}

impl Eq for HumanDuration {}

impl FromStr for HumanDuration {
    type Err = String;

    fn from_str(s: &str) -> Result<HumanDuration, String> {
        HumanDuration::parse(s)
    }
}

impl fmt::Display for HumanDuration {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.text)
    }
}

impl Serialize for HumanDuration {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        s.serialize_str(&self.text)
    }
}

impl<'de> Deserialize<'de> for HumanDuration {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<HumanDuration, D::Error> {
        let s = String::deserialize(d)?;
        HumanDuration::parse(&s).map_err(serde::de::Error::custom)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_units_and_keeps_the_spelling() {
        for (text, secs) in [
            ("0s", 0),
            ("90", 90),
            ("90s", 90),
            ("30m", 1800),
            ("12h", 43_200),
            ("1d", 86_400),
            ("2w", 1_209_600),
        ] {
            let d = HumanDuration::parse(text).unwrap();
            assert_eq!(d.get(), Duration::from_secs(secs), "{text}");
            assert_eq!(d.to_string(), text);
        }
        let d = HumanDuration::parse("250ms").unwrap();
        assert_eq!(d.get(), Duration::from_millis(250));
        assert_eq!(d.as_secs_i64(), 0);
        assert_eq!(
            HumanDuration::parse("1500ms").unwrap(),
            HumanDuration::parse("1500ms").unwrap()
        );
        assert!(HumanDuration::parse("ms").unwrap_err().contains("250ms"));
    }

    #[test]
    fn bad_values_say_what_to_write() {
        for (text, needle) in [
            ("soon", "is not an age; write e.g. 90s"),
            ("1y", "unknown unit `y`"),
            ("99999999999999999999s", "is not an age"),
            ("9999999999999999w", "too large"),
        ] {
            let e = HumanDuration::parse(text).unwrap_err();
            assert!(e.contains(needle), "{text}: {e}");
        }
    }

    #[test]
    fn from_secs_picks_the_largest_whole_unit() {
        for (secs, text) in [
            (0, "0s"),
            (45, "45s"),
            (120, "2m"),
            (3600, "1h"),
            (86_400, "1d"),
        ] {
            assert_eq!(HumanDuration::from_secs(secs).as_str(), text);
        }
        assert_eq!(
            HumanDuration::from_secs(60),
            HumanDuration::parse("60s").unwrap()
        );
    }

    #[test]
    fn reads_from_toml_strings_only() {
        #[derive(Deserialize)]
        struct T {
            t: HumanDuration,
        }
        let t = toml::from_str::<T>("t = '2m'").unwrap().t;
        assert_eq!(t.get(), Duration::from_secs(120));
        let e = toml::from_str::<T>("\nt = 'soon'")
            .err()
            .unwrap()
            .to_string();
        assert!(e.contains("line 2") && e.contains("not an age"), "{e}");
        assert!(toml::from_str::<T>("t = 30").is_err());
    }
}
