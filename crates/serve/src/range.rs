//! `Range: bytes=…` (RFC 9110 §14): one range is served as 206; several are answered with the whole
//! representation (allowed, and simpler for caches); an unsatisfiable one is 416.

/// What to do with a `Range` header for a representation of `len` bytes.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum RangeDecision {
    /// Ignore it and send everything (not a bytes range, malformed, or several ranges).
    Full,
    /// Send `start..=end`.
    Partial { start: u64, end: u64 },
    /// 416 with `Content-Range: bytes */len`.
    Unsatisfiable,
}

pub fn decide(header: &str, len: u64) -> RangeDecision {
    let Some(spec) = header.trim().strip_prefix("bytes=") else {
        return RangeDecision::Full;
    };
    let ranges: Vec<&str> = spec
        .split(',')
        .map(str::trim)
        .filter(|r| !r.is_empty())
        .collect();
    if ranges.len() != 1 {
        return RangeDecision::Full;
    }
    let Some((a, b)) = ranges[0].split_once('-') else {
        return RangeDecision::Full;
    };
    let (a, b) = (a.trim(), b.trim());
    let num = |s: &str| {
        if s.bytes().all(|c| c.is_ascii_digit()) && !s.is_empty() {
            s.parse::<u64>().ok()
        } else {
            None
        }
    };
    match (a.is_empty(), b.is_empty()) {
        // bytes=-N: the last N bytes
        (true, false) => match num(b) {
            Some(n) if n > 0 && len > 0 => RangeDecision::Partial {
                start: len.saturating_sub(n),
                end: len - 1,
            },
            Some(_) => RangeDecision::Unsatisfiable,
            None => RangeDecision::Full,
        },
        // bytes=A-
        (false, true) => match num(a) {
            Some(s) if s < len => RangeDecision::Partial {
                start: s,
                end: len - 1,
            },
            Some(_) => RangeDecision::Unsatisfiable,
            None => RangeDecision::Full,
        },
        // bytes=A-B
        (false, false) => match (num(a), num(b)) {
            (Some(s), Some(e)) if s > e => RangeDecision::Full,
            (Some(s), Some(_)) if s >= len => RangeDecision::Unsatisfiable,
            (Some(s), Some(e)) => RangeDecision::Partial {
                start: s,
                end: e.min(len - 1),
            },
            _ => RangeDecision::Full,
        },
        (true, true) => RangeDecision::Full,
    }
}

#[cfg(test)]
mod tests {
    use super::RangeDecision::*;
    use super::*;

    #[test]
    fn table() {
        for (h, len, want) in [
            ("bytes=0-9", 100, Partial { start: 0, end: 9 }),
            ("bytes=90-", 100, Partial { start: 90, end: 99 }),
            ("bytes=-10", 100, Partial { start: 90, end: 99 }),
            ("bytes=-200", 100, Partial { start: 0, end: 99 }),
            ("bytes=50-500", 100, Partial { start: 50, end: 99 }),
            ("bytes=100-", 100, Unsatisfiable),
            ("bytes=100-200", 100, Unsatisfiable),
            ("bytes=-0", 100, Unsatisfiable),
            ("bytes=0-0", 0, Unsatisfiable),
            ("bytes=-5", 0, Unsatisfiable),
            ("bytes=0-1,5-6", 100, Full),
            ("bytes=9-1", 100, Full),
            ("items=0-1", 100, Full),
            ("bytes=a-b", 100, Full),
            ("bytes=+1-2", 100, Full),
            ("bytes=-", 100, Full),
            (
                "bytes=0-18446744073709551615",
                100,
                Partial { start: 0, end: 99 },
            ),
            ("bytes=99999999999999999999-", 100, Full),
        ] {
            assert_eq!(decide(h, len), want, "{h} of {len}");
        }
    }
}
