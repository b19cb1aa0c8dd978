//! One log line, normalised: what every format's parser produces and the aggregation reads.

use std::borrow::Cow;

use serde::Serialize;

/// What the cache did with a request, in one vocabulary for every CDN (each parser maps its own
/// words; the table is in the README and in each format's module).
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize)]
#[serde(rename_all = "kebab-case")]
pub enum Cache {
    /// Served from the cache, fresh.
    Hit = 0,
    /// Served from the cache, stale (while revalidating, or because the origin failed).
    Stale = 1,
    /// Served from the cache after a conditional request to the origin said it was still current.
    Revalidated = 2,
    /// Not in the cache (or expired and changed): fetched from the origin.
    Miss = 3,
    /// Not cacheable (or the cache was bypassed): fetched from the origin.
    Pass = 4,
    /// Made at the edge (a redirect, a purge answer, a generated response): no origin, no cache.
    Synth = 5,
    /// The edge failed the request (CloudFront `Error`, `LimitExceeded`, `CapacityExceeded`).
    Error = 6,
    /// The log says nothing about the cache (plain combined log, `-`).
    Unknown = 7,
}

impl Cache {
    pub const ALL: [Cache; 8] = [
        Cache::Hit,
        Cache::Stale,
        Cache::Revalidated,
        Cache::Miss,
        Cache::Pass,
        Cache::Synth,
        Cache::Error,
        Cache::Unknown,
    ];

    /// The response's body came from the cache.
    pub fn is_hit(self) -> bool {
        matches!(self, Cache::Hit | Cache::Stale | Cache::Revalidated)
    }

    /// A cache lookup: the denominator of the hit ratio (synthetic answers and edge errors are not).
    pub fn is_lookup(self) -> bool {
        self.is_hit() || matches!(self, Cache::Miss | Cache::Pass)
    }

    /// The origin was asked (a revalidation is a request to the origin too).
    pub fn is_origin(self) -> bool {
        matches!(self, Cache::Miss | Cache::Pass | Cache::Revalidated)
    }

    /// The origin sent the body (what origin bytes count).
    pub fn origin_body(self) -> bool {
        matches!(self, Cache::Miss | Cache::Pass)
    }

    pub fn name(self) -> &'static str {
        match self {
            Cache::Hit => "hit",
            Cache::Stale => "stale",
            Cache::Revalidated => "revalidated",
            Cache::Miss => "miss",
            Cache::Pass => "pass",
            Cache::Synth => "synth",
            Cache::Error => "error",
            Cache::Unknown => "unknown",
        }
    }

    /// The cache-status words of Varnish (`%{Varnish:handling}x`), nginx (`$upstream_cache_status`),
    /// Cloudflare (`CacheCacheStatus`) and Fastly (`fastly_info.state`), case-insensitively.
    pub fn from_word(word: &[u8]) -> Cache {
        let mut buf = [0u8; 16];
        if word.len() > buf.len() {
            return Cache::Unknown;
        }
        for (b, w) in buf.iter_mut().zip(word) {
            *b = w.to_ascii_lowercase();
        }
        match &buf[..word.len()] {
            b"hit" | b"stream_hit" | b"hit-clustered" | b"hit-wait" => Cache::Hit,
            b"stale" | b"updating" | b"hit-stale" | b"hit-stale-clustered" => Cache::Stale,
            b"revalidated" => Cache::Revalidated,
            b"miss" | b"expired" | b"miss-clustered" | b"miss-wait" => Cache::Miss,
            b"pass" | b"pipe" | b"bypass" | b"dynamic" | b"hitpass" | b"hit-for-pass"
            | b"pass-clustered" | b"ignored" => Cache::Pass,
            b"synth" | b"hit-synth" => Cache::Synth,
            b"error" => Cache::Error,
            _ => Cache::Unknown,
        }
    }
}

/// One request as a log line told it.
#[derive(Debug, Clone, PartialEq)]
pub struct Record<'a> {
    /// Unix seconds (UTC) of the request, when the line has a time.
    pub time: Option<i64>,
    /// The URL path as logged (percent-encoded as on the wire), without the query string.
    pub path: Cow<'a, [u8]>,
    pub status: u16,
    /// Bytes sent to the client (the body for combined logs and Cloudflare; the whole response,
    /// headers included, for CloudFront's `sc-bytes`).
    pub bytes: u64,
    pub cache: Cache,
    /// The response's `Age` header, in seconds, when the log has it.
    pub age: Option<u64>,
}

/// Strips `scheme://host` (Varnish's `%r` logs the absolute URL) and the query string.
pub fn path_of(target: &[u8]) -> &[u8] {
    let mut t = target;
    for scheme in [&b"http://"[..], b"https://"] {
        if t.len() > scheme.len() && t[..scheme.len()].eq_ignore_ascii_case(scheme) {
            let rest = &t[scheme.len()..];
            t = match memchr::memchr(b'/', rest) {
                Some(i) => &rest[i..],
                None => b"/",
            };
            break;
        }
    }
    match memchr::memchr2(b'?', b'#', t) {
        Some(i) => &t[..i],
        None => t,
    }
}

/// Unsigned decimal digits, `None` for anything else (empty, signs, spaces).
pub fn digits(b: &[u8]) -> Option<u64> {
    if b.is_empty() || b.len() > 19 {
        return None;
    }
    let mut n: u64 = 0;
    for &c in b {
        if !c.is_ascii_digit() {
            return None;
        }
        n = n * 10 + u64::from(c - b'0');
    }
    Some(n)
}

/// A status code: three digits.
pub fn status(b: &[u8]) -> Option<u16> {
    if b.len() != 3 {
        return None;
    }
    digits(b).and_then(|n| u16::try_from(n).ok())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn paths_lose_scheme_host_and_query() {
        for (target, want) in [
            ("/a.css", "/a.css"),
            ("/a.css?v=1", "/a.css"),
            ("http://example.com/a/b?x", "/a/b"),
            ("HTTPS://example.com", "/"),
            ("*", "*"),
        ] {
            assert_eq!(path_of(target.as_bytes()), want.as_bytes(), "{target}");
        }
    }

    #[test]
    fn cache_words_of_every_cdn() {
        for (w, want) in [
            ("hit", Cache::Hit),
            ("HIT", Cache::Hit),
            ("miss", Cache::Miss),
            ("EXPIRED", Cache::Miss),
            ("pass", Cache::Pass),
            ("BYPASS", Cache::Pass),
            ("dynamic", Cache::Pass),
            ("STALE", Cache::Stale),
            ("UPDATING", Cache::Stale),
            ("HIT-STALE", Cache::Stale),
            ("REVALIDATED", Cache::Revalidated),
            ("synth", Cache::Synth),
            ("-", Cache::Unknown),
            ("a-very-long-word-indeed", Cache::Unknown),
        ] {
            assert_eq!(Cache::from_word(w.as_bytes()), want, "{w}");
        }
    }
}
