//! The log formats: one module per family, one [`Parser`] over them, and detection from a file's
//! first lines.

pub mod combined;
pub mod json;
pub mod w3c;

use std::sync::Arc;

use serde::Serialize;

use crate::record::Record;

/// A log format `staleguard stats` reads.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize)]
#[serde(rename_all = "kebab-case")]
pub enum Format {
    /// CloudFront standard logs (W3C, `#Fields:` header, tab-separated).
    Cloudfront,
    /// CloudFront real-time logs (tab-separated, the configuration's fields in order).
    CloudfrontRealtime,
    /// `varnishncsa`: combined, optionally with `%{Varnish:handling}x %{Age}o` appended.
    Varnish,
    /// nginx combined with `$upstream_cache_status` appended.
    Nginx,
    /// The plain combined (or common) log format: no cache status.
    Combined,
    /// Cloudflare Logpush `http_requests`, JSON lines.
    Cloudflare,
    /// Fastly, JSON lines with the keys documented in the README.
    Fastly,
}

impl Format {
    pub const ALL: [Format; 7] = [
        Format::Cloudfront,
        Format::CloudfrontRealtime,
        Format::Varnish,
        Format::Nginx,
        Format::Combined,
        Format::Cloudflare,
        Format::Fastly,
    ];

    pub fn name(self) -> &'static str {
        match self {
            Format::Cloudfront => "cloudfront",
            Format::CloudfrontRealtime => "cloudfront-realtime",
            Format::Varnish => "varnish",
            Format::Nginx => "nginx",
            Format::Combined => "combined",
            Format::Cloudflare => "cloudflare",
            Format::Fastly => "fastly",
        }
    }

    /// A format by its name (`--format`).
    pub fn parse(name: &str) -> Result<Format, String> {
        Format::ALL
            .into_iter()
            .find(|f| f.name() == name)
            .ok_or_else(|| {
                format!(
                    "unknown log format `{name}`; one of: {}",
                    Format::ALL.map(Format::name).join(", ")
                )
            })
    }

    /// Formats whose lines may carry a `#Fields:` header that changes the columns.
    pub fn has_header(self) -> bool {
        matches!(self, Format::Cloudfront | Format::CloudfrontRealtime)
    }
}

/// The format of a file from its first lines (comments skipped), or `None`.
pub fn detect(sample: &[u8]) -> Option<Format> {
    let mut lines = sample
        .split(|&b| b == b'\n')
        .map(|l| l.strip_suffix(b"\r").unwrap_or(l))
        .filter(|l| !l.is_empty())
        .take(20)
        .peekable();
    let first = *lines.peek()?;
    if first.starts_with(b"#Version:") || first.starts_with(b"#Fields:") {
        return Some(Format::Cloudfront);
    }
    let lines: Vec<&[u8]> = lines.filter(|l| !l.starts_with(b"#")).collect();
    let line = *lines.first()?;
    if line.first() == Some(&b'{') {
        let has = |k: &[u8]| memchr::memmem::find(line, k).is_some();
        if has(b"\"EdgeResponseStatus\"") || has(b"\"CacheCacheStatus\"") {
            return Some(Format::Cloudflare);
        }
        if has(b"\"cache_status\"") || (has(b"\"url\"") && has(b"\"status\"")) {
            return Some(Format::Fastly);
        }
        return None;
    }
    if memchr::memchr_iter(b'\t', line).count() >= 4 {
        let first_field = line.split(|&b| b == b'\t').next().unwrap_or_default();
        if crate::time::epoch(first_field).is_some() {
            return Some(Format::CloudfrontRealtime);
        }
        return None;
    }
    // Combined: the extra fields' words tell Varnish (lower case) from nginx (upper case).
    let mut parser = combined::Combined::default();
    let mut kind = None;
    for l in &lines {
        let Ok(r) = parser.line(l) else { continue };
        let word = last_word(l);
        let k = match r.cache {
            crate::record::Cache::Unknown if word == b"-" => Format::Nginx,
            crate::record::Cache::Unknown => Format::Combined,
            _ if word.iter().any(u8::is_ascii_uppercase) => Format::Nginx,
            _ => Format::Varnish,
        };
        // A cache word anywhere decides; `-` alone (nginx without a cache hit yet) only if nothing else.
        match (kind, k) {
            (None, k) => kind = Some(k),
            (Some(Format::Combined), k) | (Some(Format::Nginx), k @ Format::Varnish) => {
                kind = Some(k)
            }
            _ => {}
        }
        if kind == Some(Format::Varnish) {
            break;
        }
    }
    kind
}

/// The cache word of a combined line: the first token after the user agent's closing quote.
fn last_word(line: &[u8]) -> &[u8] {
    let after = memchr::memrchr(b'"', line).map_or(line.len(), |i| i + 1);
    line[after..]
        .split(|&b| b == b' ')
        .find(|w| !w.is_empty())
        .unwrap_or_default()
}

/// A parser for one format, with its state (the last timestamp, CloudFront's field layout).
#[derive(Debug)]
pub enum Parser {
    Combined(combined::Combined),
    W3c(w3c::W3c),
    Cloudflare,
    Fastly,
}

impl Parser {
    /// A parser for `format`; `layout` is the column layout in effect (CloudFront).
    pub fn new(format: Format, layout: Option<Arc<w3c::Layout>>) -> Parser {
        match format {
            Format::Cloudfront | Format::CloudfrontRealtime => Parser::W3c(w3c::W3c::new(layout)),
            Format::Varnish | Format::Nginx | Format::Combined => {
                Parser::Combined(combined::Combined::default())
            }
            Format::Cloudflare => Parser::Cloudflare,
            Format::Fastly => Parser::Fastly,
        }
    }

    /// One line (no newline): `Ok(None)` for blank, comment and header lines.
    pub fn line<'a>(&mut self, line: &'a [u8]) -> Result<Option<Record<'a>>, &'static str> {
        let line = line.strip_suffix(b"\r").unwrap_or(line);
        if line.iter().all(|b| b.is_ascii_whitespace()) {
            return Ok(None);
        }
        match self {
            Parser::W3c(p) => p.line(line),
            Parser::Combined(p) => p.line(line).map(Some),
            Parser::Cloudflare => json::cloudflare(line).map(Some),
            Parser::Fastly => json::fastly(line).map(Some),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn formats_are_told_from_their_first_lines() {
        let header = format!(
            "#Version: 1.0\n#Fields: {}\n",
            w3c::STANDARD_FIELDS.join(" ")
        );
        let realtime =
            "1607643233.123\t1.2.3.4\t0.1\t200\t100\tGET\thttps\td.cloudfront.net\t/\t10\n";
        let combined =
            "1.2.3.4 - - [10/Oct/2000:13:55:36 +0000] \"GET / HTTP/1.1\" 200 5 \"-\" \"ua\"";
        for (sample, want) in [
            (header.as_str(), Some(Format::Cloudfront)),
            (realtime, Some(Format::CloudfrontRealtime)),
            (&format!("{combined} hit 0\n"), Some(Format::Varnish)),
            (&format!("{combined} MISS\n"), Some(Format::Nginx)),
            (
                &format!("{combined} -\n{combined} HIT\n"),
                Some(Format::Nginx),
            ),
            (&format!("{combined}\n"), Some(Format::Combined)),
            (
                r#"{"EdgeStartTimestamp":1,"EdgeResponseStatus":200,"ClientRequestPath":"/"}"#,
                Some(Format::Cloudflare),
            ),
            (
                r#"{"url":"/","status":200,"cache_status":"HIT"}"#,
                Some(Format::Fastly),
            ),
            ("hello world\n", None),
            ("", None),
            ("{\"a\":1}", None),
        ] {
            assert_eq!(detect(sample.as_bytes()), want, "{sample}");
        }
    }

    #[test]
    fn names_round_trip() {
        for f in Format::ALL {
            assert_eq!(Format::parse(f.name()), Ok(f));
        }
        assert!(Format::parse("apache").unwrap_err().contains("cloudfront"));
    }
}
