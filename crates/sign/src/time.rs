//! Policy times: Unix seconds, as `AWS:EpochTime` holds them. [`parse_moment`] reads the ways a person
//! gives one on a command line; [`rfc3339`] shows one.

use chrono::{DateTime, SecondsFormat, Utc};
use staleguard_core::HumanDuration;

/// A moment as written on the command line, in Unix seconds:
/// - a duration from `now` with its unit: `90s`, `30m`, `1h`, `7d`, `2w` (`staleguard_core::HumanDuration`),
/// - an RFC 3339 time: `2026-12-31T23:59:59Z`, `2026-12-31T23:59:59+01:00`,
/// - Unix seconds: `1798761599` (all digits: an absolute time, never a duration).
///
/// Sub-second parts are dropped, as botocore's `int(datetime2timestamp(…))` drops them.
pub fn parse_moment(text: &str, now: i64) -> Result<i64, String> {
    let t = text.trim();
    if !t.is_empty() && t.bytes().all(|b| b.is_ascii_digit()) {
        return t
            .parse::<i64>()
            .map_err(|_| format!("`{text}` is too large for a Unix time"));
    }
    let b = t.as_bytes();
    if b.len() > 4 && b[..4].iter().all(u8::is_ascii_digit) && b[4] == b'-' {
        return DateTime::parse_from_rfc3339(t)
            .map(|d| d.timestamp())
            .map_err(|e| {
                format!("`{text}` is not an RFC 3339 time ({e}); write e.g. `2026-12-31T23:59:59Z`")
            });
    }
    let d = HumanDuration::parse(t).map_err(|_| {
        format!(
            "`{text}` is not a time; write a duration from now (`90s`, `1h`, `7d`), an RFC 3339 time (`2026-12-31T23:59:59Z`) or Unix seconds (`1798761599`)"
        )
    })?;
    now.checked_add(d.as_secs_i64())
        .ok_or_else(|| format!("`{text}` is too far in the future"))
}

/// `2026-12-31T23:59:59Z` (or the number itself, for a time chrono cannot show).
pub fn rfc3339(epoch: i64) -> String {
    DateTime::<Utc>::from_timestamp(epoch, 0).map_or_else(
        || epoch.to_string(),
        |d| d.to_rfc3339_opts(SecondsFormat::Secs, true),
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn durations_times_and_epochs() {
        let now = 1_798_761_599 - 3600;
        let cases: &[(&str, Result<i64, &str>)] = &[
            ("1h", Ok(1_798_761_599)),
            ("90s", Ok(now + 90)),
            ("7d", Ok(now + 7 * 86_400)),
            ("1500ms", Ok(now + 1)),
            ("1798761599", Ok(1_798_761_599)),
            ("2026-12-31T23:59:59Z", Ok(1_798_761_599)),
            ("2027-01-01T00:59:59+01:00", Ok(1_798_761_599)),
            ("2026-12-31T23:59:59.999Z", Ok(1_798_761_599)),
            ("2026-12-31", Err("not an RFC 3339 time")),
            ("2026-12-31 23:59:59", Err("not an RFC 3339 time")),
            ("tomorrow", Err("not a time; write a duration")),
            ("-5m", Err("not a time")),
            ("", Err("not a time")),
            ("99999999999999999999", Err("too large")),
        ];
        for (text, want) in cases {
            match (parse_moment(text, now), want) {
                (Ok(got), Ok(w)) => assert_eq!(got, *w, "{text}"),
                (Err(e), Err(w)) => assert!(e.contains(w), "{text}: {e}"),
                (got, want) => panic!("{text}: got {got:?}, want {want:?}"),
            }
        }
    }

    #[test]
    fn shows_utc_seconds() {
        assert_eq!(rfc3339(1_798_761_599), "2026-12-31T23:59:59Z");
        assert_eq!(rfc3339(0), "1970-01-01T00:00:00Z");
    }
}
