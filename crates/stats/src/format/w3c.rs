//! CloudFront's tab-separated logs: standard logs (W3C extended format: `#Version:` and a `#Fields:`
//! header naming the columns) and real-time logs (no header: the columns are the configuration's
//! field list, in its order, given with `--fields`).
//!
//! Columns read (by name, wherever they are): `date` + `time` (standard) or `timestamp` (real-time,
//! epoch seconds with milliseconds), `cs-uri-stem` (URL-encoded; decoded for matching), `sc-status`,
//! `sc-bytes` (all bytes sent to the viewer, headers included), `x-edge-result-type`, and as fallbacks
//! `x-edge-response-result-type` and `x-edge-detailed-result-type`. Result types: `Hit` → hit,
//! `RefreshHit` → revalidated, `Miss` → miss, `Redirect` and `FunctionGeneratedResponse` → synth,
//! `Error`, `LimitExceeded`, `CapacityExceeded` → error; `OriginShieldHit` (detailed) → hit.

use std::borrow::Cow;
use std::sync::Arc;

use crate::record::{Cache, Record, digits, path_of, status};

/// The documented field list of CloudFront standard logs, in order (the `#Fields:` header of a
/// distribution's files).
pub const STANDARD_FIELDS: &[&str] = &[
    "date",
    "time",
    "x-edge-location",
    "sc-bytes",
    "c-ip",
    "cs-method",
    "cs(Host)",
    "cs-uri-stem",
    "sc-status",
    "cs(Referer)",
    "cs(User-Agent)",
    "cs-uri-query",
    "cs(Cookie)",
    "x-edge-result-type",
    "x-edge-request-id",
    "x-host-header",
    "cs-protocol",
    "cs-bytes",
    "time-taken",
    "x-forwarded-for",
    "ssl-protocol",
    "ssl-cipher",
    "x-edge-response-result-type",
    "cs-protocol-version",
    "fle-status",
    "fle-encrypted-fields",
    "c-port",
    "time-to-first-byte",
    "x-edge-detailed-result-type",
    "sc-content-type",
    "sc-content-len",
    "sc-range-start",
    "sc-range-end",
];

/// The real-time log fields in the documentation's order: the default of `--fields` (a real-time
/// configuration sends the fields it selected, in this order).
pub const REALTIME_FIELDS: &[&str] = &[
    "timestamp",
    "c-ip",
    "time-to-first-byte",
    "sc-status",
    "sc-bytes",
    "cs-method",
    "cs-protocol",
    "cs-host",
    "cs-uri-stem",
    "cs-bytes",
    "x-edge-location",
    "x-edge-request-id",
    "x-host-header",
    "time-taken",
    "cs-protocol-version",
    "c-ip-version",
    "cs-user-agent",
    "cs-referer",
    "cs-cookie",
    "cs-uri-query",
    "x-edge-response-result-type",
    "x-forwarded-for",
    "ssl-protocol",
    "ssl-cipher",
    "x-edge-result-type",
    "fle-encrypted-fields",
    "fle-status",
    "sc-content-type",
    "sc-content-len",
    "sc-range-start",
    "sc-range-end",
    "c-port",
    "x-edge-detailed-result-type",
];

/// Where the columns this reader needs are.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Layout {
    date: Option<usize>,
    time: Option<usize>,
    timestamp: Option<usize>,
    path: usize,
    status: usize,
    bytes: usize,
    result: Option<usize>,
    response_result: Option<usize>,
    detailed: Option<usize>,
    width: usize,
}

impl Layout {
    /// The layout of a field list; an error names what is missing.
    pub fn new<S: AsRef<str>>(fields: &[S]) -> Result<Layout, String> {
        let at = |name: &str| fields.iter().position(|f| f.as_ref() == name);
        let need = |name: &str| {
            at(name).ok_or_else(|| {
                format!(
                    "the field list lacks `{name}` (it has: {})",
                    fields
                        .iter()
                        .map(|f| f.as_ref())
                        .collect::<Vec<_>>()
                        .join(" ")
                )
            })
        };
        let l = Layout {
            date: at("date"),
            time: at("time"),
            timestamp: at("timestamp"),
            path: need("cs-uri-stem")?,
            status: need("sc-status")?,
            bytes: need("sc-bytes")?,
            result: at("x-edge-result-type"),
            response_result: at("x-edge-response-result-type"),
            detailed: at("x-edge-detailed-result-type"),
            width: fields.len(),
        };
        Ok(l)
    }

    /// The layout of a `#Fields: a b c` header line.
    pub fn from_header(line: &[u8]) -> Result<Layout, String> {
        let text = String::from_utf8_lossy(line);
        let rest = text
            .strip_prefix("#Fields:")
            .ok_or("not a `#Fields:` line")?;
        let fields: Vec<&str> = rest.split_whitespace().collect();
        Layout::new(&fields)
    }
}

/// A CloudFront parser, with the layout in effect (replaced by each `#Fields:` line it reads).
#[derive(Debug, Clone)]
pub struct W3c {
    pub layout: Option<Arc<Layout>>,
    /// The problem with the last `#Fields:` header, reported for each line it leaves unreadable.
    header_error: Option<&'static str>,
}

/// CloudFront's result-type words.
fn result_type(w: &[u8]) -> Cache {
    match w {
        b"Hit" | b"OriginShieldHit" => Cache::Hit,
        b"RefreshHit" => Cache::Revalidated,
        b"Miss" => Cache::Miss,
        b"Redirect" | b"FunctionGeneratedResponse" => Cache::Synth,
        b"Error"
        | b"LimitExceeded"
        | b"CapacityExceeded"
        | b"FunctionExecutionError"
        | b"FunctionThrottledError" => Cache::Error,
        _ => Cache::Unknown,
    }
}

impl W3c {
    pub fn new(layout: Option<Arc<Layout>>) -> W3c {
        W3c {
            layout,
            header_error: None,
        }
    }

    /// `Ok(None)` for a comment or header line.
    pub fn line<'a>(&mut self, line: &'a [u8]) -> Result<Option<Record<'a>>, &'static str> {
        if line.first() == Some(&b'#') {
            if line.starts_with(b"#Fields:") {
                match Layout::from_header(line) {
                    Ok(l) => {
                        self.layout = Some(Arc::new(l));
                        self.header_error = None;
                    }
                    Err(_) => {
                        self.layout = None;
                        self.header_error = Some(
                            "the `#Fields:` header above lacks cs-uri-stem, sc-status or sc-bytes",
                        );
                    }
                }
            }
            return Ok(None);
        }
        let Some(l) = self.layout.as_deref() else {
            return Err(self
                .header_error
                .unwrap_or("no `#Fields:` header before this line (pass --format and --fields)"));
        };
        let mut cols: [&[u8]; 64] = [&[]; 64];
        let mut n = 0;
        for f in line.split(|&b| b == b'\t') {
            if n < cols.len() {
                cols[n] = f;
            }
            n += 1;
        }
        if n != l.width {
            return Err(if n < l.width {
                "fewer tab-separated fields than the field list names"
            } else {
                "more tab-separated fields than the field list names"
            });
        }
        let get = |i: usize| cols.get(i).copied().unwrap_or_default();
        let time = match (l.date, l.time, l.timestamp) {
            (Some(d), Some(t), _) => Some(
                crate::time::date_time(get(d), get(t)).ok_or("`date time` is not a UTC date")?,
            ),
            (_, _, Some(ts)) => {
                Some(crate::time::epoch(get(ts)).ok_or("`timestamp` is not epoch seconds")?)
            }
            _ => None,
        };
        let status = status(get(l.status)).ok_or("`sc-status` is not three digits")?;
        let bytes = match get(l.bytes) {
            b"-" => 0,
            b => digits(b).ok_or("`sc-bytes` is not a number")?,
        };
        let mut cache = Cache::Unknown;
        for i in [l.result, l.response_result, l.detailed]
            .into_iter()
            .flatten()
        {
            cache = result_type(get(i));
            if cache != Cache::Unknown {
                break;
            }
        }
        Ok(Some(Record {
            time,
            path: Cow::Borrowed(path_of(get(l.path))),
            status,
            bytes,
            cache,
            age: None,
        }))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn standard_line(fields: &[(&str, &str)]) -> String {
        STANDARD_FIELDS
            .iter()
            .map(|f| fields.iter().find(|(k, _)| k == f).map_or("-", |(_, v)| *v))
            .collect::<Vec<_>>()
            .join("\t")
    }

    #[test]
    fn standard_logs_are_read_by_their_header() {
        let mut p = W3c::new(None);
        assert_eq!(p.line(b"#Version: 1.0"), Ok(None));
        let header = format!("#Fields: {}", STANDARD_FIELDS.join(" "));
        assert_eq!(p.line(header.as_bytes()), Ok(None));
        let line = standard_line(&[
            ("date", "2019-12-04"),
            ("time", "21:02:31"),
            ("sc-bytes", "392"),
            ("cs-uri-stem", "/caf%C3%A9.html"),
            ("sc-status", "200"),
            ("x-edge-result-type", "RefreshHit"),
        ]);
        let r = p.line(line.as_bytes()).unwrap().unwrap();
        assert_eq!(
            (&*r.path, r.status, r.bytes, r.cache, r.time),
            (
                &b"/caf%C3%A9.html"[..],
                200,
                392,
                Cache::Revalidated,
                Some(1_575_493_351)
            )
        );
        // A header with the columns in another order (or fewer) is followed.
        p.line(b"#Fields: sc-status cs-uri-stem sc-bytes").unwrap();
        let r = p.line(b"404\t/x\t10").unwrap().unwrap();
        assert_eq!((r.status, &*r.path, r.time), (404, &b"/x"[..], None));
        assert!(p.line(b"404\t/x").unwrap_err().contains("fewer"));
        p.line(b"#Fields: date time").unwrap();
        assert!(p.line(b"a\tb").unwrap_err().contains("lacks"));
    }

    #[test]
    fn realtime_logs_follow_the_field_list() {
        let l = Layout::new(REALTIME_FIELDS).unwrap();
        let mut p = W3c::new(Some(Arc::new(l)));
        let mut cols = vec!["-"; REALTIME_FIELDS.len()];
        cols[0] = "1607643233.123";
        cols[3] = "200";
        cols[4] = "1000";
        cols[8] = "/a.0123456789ab.js";
        cols[24] = "Hit";
        let line = cols.join("\t");
        let r = p.line(line.as_bytes()).unwrap().unwrap();
        assert_eq!(
            (r.time, r.bytes, r.cache),
            (Some(1_607_643_233), 1000, Cache::Hit)
        );
        assert!(
            W3c::new(None)
                .line(b"1\t2\t3")
                .unwrap_err()
                .contains("--fields")
        );
        assert!(
            Layout::new(&["timestamp", "sc-status"])
                .unwrap_err()
                .contains("cs-uri-stem")
        );
    }

    proptest::proptest! {
        #[test]
        fn never_panics(line in proptest::collection::vec(proptest::prelude::any::<u8>(), 0..300)) {
            let mut p = W3c::new(Some(Arc::new(Layout::new(STANDARD_FIELDS).unwrap())));
            let _ = p.line(&line);
        }
    }
}
