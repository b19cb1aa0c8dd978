//! The NCSA combined log (`varnishncsa`'s default, nginx's and Apache's `combined`), with optional
//! fields appended after the user agent: a cache status and an `Age`.
//!
//! ```text
//! host ident user [10/Oct/2000:13:55:36 -0700] "GET /a.css HTTP/1.1" 200 2326 "referer" "agent" [CACHE [AGE]]
//! ```
//!
//! - Varnish: `varnishncsa -F '%h %l %u %t "%r" %s %b "%{Referer}i" "%{User-agent}i" %{Varnish:handling}x %{Age}o'`
//!   (`hit`, `miss`, `pass`, `pipe`, `synth`; `%r` logs the absolute URL, whose host is dropped).
//! - nginx: `log_format staleguard '$remote_addr - $remote_user [$time_local] "$request" $status
//!   $body_bytes_sent "$http_referer" "$http_user_agent" $upstream_cache_status';` (`HIT`, `MISS`,
//!   `EXPIRED`, `STALE`, `UPDATING`, `REVALIDATED`, `BYPASS`; `-` when the cache was not involved).
//! - Without the extra fields (the plain `combined` format), the cache status is unknown: requests,
//!   bytes and statuses are counted, the hit ratio is not.
//!
//! Fields are found by their delimiters (`[`…`]`, quotes with `\"` escapes), not by counting spaces,
//! so a user name or agent with spaces does not shift the rest.

use std::borrow::Cow;

use crate::record::{Cache, Record, digits, path_of, status};

/// A combined-log parser; it remembers the last timestamp text it converted.
#[derive(Debug, Default)]
pub struct Combined {
    last_time: Vec<u8>,
    last_unix: Option<i64>,
}

/// The index of the next `"` not escaped by a backslash, from `from`.
fn closing_quote(line: &[u8], from: usize) -> Option<usize> {
    let mut at = from;
    loop {
        let i = at + memchr::memchr(b'"', &line[at..])?;
        let mut backslashes = 0;
        while i > from + backslashes && line[i - 1 - backslashes] == b'\\' {
            backslashes += 1;
        }
        if backslashes % 2 == 0 {
            return Some(i);
        }
        at = i + 1;
    }
}

fn skip_spaces(line: &[u8], mut i: usize) -> usize {
    while i < line.len() && line[i] == b' ' {
        i += 1;
    }
    i
}

/// The next space-separated token from `i`: (token, index after it).
fn token(line: &[u8], i: usize) -> (&[u8], usize) {
    let i = skip_spaces(line, i);
    let end = memchr::memchr(b' ', &line[i..]).map_or(line.len(), |n| i + n);
    (&line[i..end], end)
}

impl Combined {
    /// Parses one line (without its newline).
    pub fn line<'a>(&mut self, line: &'a [u8]) -> Result<Record<'a>, &'static str> {
        let open = memchr::memchr(b'[', line).ok_or("no `[time]` field")?;
        let close = open + memchr::memchr(b']', &line[open..]).ok_or("unclosed `[time`")?;
        let when = &line[open + 1..close];
        let time = if when == self.last_time.as_slice() {
            self.last_unix
        } else {
            let t = crate::time::clf(when).ok_or("the time is not `dd/Mon/yyyy:hh:mm:ss +zzzz`")?;
            self.last_time.clear();
            self.last_time.extend_from_slice(when);
            self.last_unix = Some(t);
            Some(t)
        };
        let q = skip_spaces(line, close + 1);
        if line.get(q) != Some(&b'"') {
            return Err("no quoted request after the time");
        }
        let q_end = closing_quote(line, q + 1).ok_or("unclosed request quote")?;
        let request = &line[q + 1..q_end];
        // `METHOD TARGET PROTOCOL`; a bare `-` (nginx: a request it could not read) has no target.
        let mut parts = request.split(|&b| b == b' ').filter(|p| !p.is_empty());
        let _method = parts.next();
        let target = parts.next().unwrap_or(b"-");
        let (st, i) = token(line, q_end + 1);
        let status = status(st).ok_or("the status is not three digits")?;
        let (b, mut i) = token(line, i);
        let bytes = match b {
            b"-" => 0,
            b => digits(b).ok_or("the size is not a number or `-`")?,
        };
        // Referer and user agent, when present.
        for _ in 0..2 {
            let j = skip_spaces(line, i);
            if line.get(j) == Some(&b'"') {
                i = closing_quote(line, j + 1).ok_or("unclosed quote after the size")? + 1;
            }
        }
        let (c, i) = token(line, i);
        let cache = if c.is_empty() {
            Cache::Unknown
        } else {
            Cache::from_word(c)
        };
        let (a, _) = token(line, i);
        let age = digits(a);
        Ok(Record {
            time,
            path: Cow::Borrowed(path_of(target)),
            status,
            bytes,
            cache,
            age,
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn check(line: &str) -> Result<Record<'_>, &'static str> {
        Combined::default().line(line.as_bytes())
    }

    #[test]
    fn lines_of_each_server() {
        let r = check(r#"127.0.0.1 - - [10/Oct/2000:13:55:36 -0700] "GET http://localhost:6081/css/a.0123456789ab.css?x=1 HTTP/1.1" 200 2326 "-" "curl/8" hit 12"#).unwrap();
        assert_eq!(
            (&*r.path, r.status, r.bytes, r.cache, r.age, r.time),
            (
                &b"/css/a.0123456789ab.css"[..],
                200,
                2326,
                Cache::Hit,
                Some(12),
                Some(971_211_336)
            )
        );
        let r = check(r#"::1 - bob smith [10/Oct/2000:13:55:36 +0000] "GET /a \"b\" HTTP/1.1" 404 - "http://x/\"q\"" "Mozilla/5.0 (X11)" MISS"#).unwrap();
        assert_eq!(
            (&*r.path, r.status, r.bytes, r.cache, r.age),
            (&b"/a"[..], 404, 0, Cache::Miss, None)
        );
        // Plain combined, and the common log format without referer and agent.
        let r = check(r#"1.2.3.4 - - [10/Oct/2000:13:55:36 +0000] "GET / HTTP/1.0" 200 5 "-" "-""#)
            .unwrap();
        assert_eq!(r.cache, Cache::Unknown);
        let r =
            check(r#"1.2.3.4 - - [10/Oct/2000:13:55:36 +0000] "GET / HTTP/1.0" 304 0"#).unwrap();
        assert_eq!((r.status, r.cache), (304, Cache::Unknown));
        // nginx's line for a request it could not parse.
        let r = check(r#"1.2.3.4 - - [10/Oct/2000:13:55:36 +0000] "-" 400 0 "-" "-" -"#).unwrap();
        assert_eq!((r.status, &*r.path), (400, &b"-"[..]));
    }

    #[test]
    fn malformed_lines_say_why() {
        for (line, why) in [
            ("", "no `[time]`"),
            ("garbage", "no `[time]`"),
            ("a - - [10/Oct/2000:13:55:36 +0000 \"GET", "unclosed"),
            ("a - - [yesterday] \"GET / HTTP/1.1\" 200 1", "the time"),
            (
                "a - - [10/Oct/2000:13:55:36 +0000] GET / 200 1",
                "no quoted request",
            ),
            (
                "a - - [10/Oct/2000:13:55:36 +0000] \"GET / HTTP/1.1",
                "unclosed request",
            ),
            (
                "a - - [10/Oct/2000:13:55:36 +0000] \"GET /\" 20x 1",
                "status",
            ),
            (
                "a - - [10/Oct/2000:13:55:36 +0000] \"GET /\" 200 lots",
                "size",
            ),
        ] {
            let e = check(line).unwrap_err();
            assert!(e.contains(why), "{line:?}: {e}");
        }
    }

    proptest::proptest! {
        /// Any bytes: an answer, never a panic.
        #[test]
        fn never_panics(line in proptest::collection::vec(proptest::prelude::any::<u8>(), 0..200)) {
            let _ = Combined::default().line(&line);
        }

        /// Any path and agent survive the round trip through a line.
        #[test]
        fn fields_round_trip(path in "/[a-z0-9./_-]{0,40}", agent in "[ -~]{0,40}", size in 0u64..1u64 << 40) {
            let agent = agent.replace('\\', "\\\\").replace('"', "\\\"");
            let line = format!("10.0.0.1 - - [01/Jan/2024:00:00:00 +0000] \"GET {path} HTTP/1.1\" 200 {size} \"-\" \"{agent}\" hit 3");
            let r = Combined::default().line(line.as_bytes()).unwrap();
            proptest::prop_assert_eq!(&*r.path, path.as_bytes());
            proptest::prop_assert_eq!((r.bytes, r.cache, r.age), (size, Cache::Hit, Some(3)));
        }
    }
}
