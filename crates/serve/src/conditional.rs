//! Conditional requests (RFC 9110 §13): `If-None-Match` (weak comparison), `If-Modified-Since` (only when
//! there is no `If-None-Match`), and `If-Range` (strong comparison, or an exact date).

use std::time::SystemTime;

/// True when an `If-None-Match` value matches `etag` (a quoted strong tag): `*`, or any listed tag equal
/// to it ignoring a `W/` prefix.
pub fn none_match(header: &[u8], etag: &[u8]) -> bool {
    fn strong(t: &[u8]) -> &[u8] {
        t.strip_prefix(b"W/").unwrap_or(t)
    }
    let want = strong(etag);
    header
        .split(|&b| b == b',')
        .map(<[u8]>::trim_ascii)
        .any(|t| t == b"*" || strong(t) == want)
}

/// True when the resource was not modified since the `If-Modified-Since` date (one-second precision).
pub fn not_modified_since(header: &str, last_modified: SystemTime) -> bool {
    match httpdate::parse_http_date(header.trim()) {
        Ok(since) => secs(last_modified) <= secs(since),
        Err(_) => false,
    }
}

/// True when an `If-Range` value still designates this representation, so the range may be served.
pub fn if_range_holds(header: &str, etag: &str, last_modified: Option<SystemTime>) -> bool {
    let h = header.trim();
    if h.starts_with('"') {
        return h == etag;
    }
    if h.starts_with("W/") {
        return false;
    }
    match (httpdate::parse_http_date(h), last_modified) {
        (Ok(d), Some(lm)) => secs(d) == secs(lm),
        _ => false,
    }
}

fn secs(t: SystemTime) -> u64 {
    t.duration_since(SystemTime::UNIX_EPOCH)
        .map_or(0, |d| d.as_secs())
}

#[cfg(test)]
mod tests {
    use std::time::Duration;

    use super::*;

    #[test]
    fn none_match_table() {
        let tag = "\"abc\"";
        for (h, want) in [
            ("\"abc\"", true),
            ("W/\"abc\"", true),
            ("\"x\", \"abc\"", true),
            ("*", true),
            ("\"abcd\"", false),
            ("abc", false),
            ("", false),
        ] {
            assert_eq!(none_match(h.as_bytes(), tag.as_bytes()), want, "{h}");
        }
    }

    #[test]
    fn dates() {
        let lm = SystemTime::UNIX_EPOCH + Duration::from_secs(1_700_000_000);
        let at = httpdate::fmt_http_date(lm);
        let later = httpdate::fmt_http_date(lm + Duration::from_secs(10));
        let earlier = httpdate::fmt_http_date(lm - Duration::from_secs(10));
        assert!(not_modified_since(&at, lm + Duration::from_millis(300)));
        assert!(not_modified_since(&later, lm));
        assert!(!not_modified_since(&earlier, lm));
        assert!(!not_modified_since("garbage", lm));
        assert!(if_range_holds("\"abc\"", "\"abc\"", None));
        assert!(!if_range_holds("W/\"abc\"", "\"abc\"", None));
        assert!(if_range_holds(&at, "\"x\"", Some(lm)));
        assert!(!if_range_holds(&later, "\"x\"", Some(lm)));
    }
}
