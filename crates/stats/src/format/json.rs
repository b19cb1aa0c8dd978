//! JSON lines: Cloudflare Logpush (`http_requests` dataset) and Fastly (a JSON log format defined
//! here, documented in the README).
//!
//! Cloudflare keys: `EdgeStartTimestamp` (unixnano, unix seconds or RFC 3339: Logpush's
//! `timestamp_format`), `ClientRequestPath` (else `ClientRequestURI`), `EdgeResponseStatus`,
//! `EdgeResponseBytes`, `CacheCacheStatus` (`hit`, `stale`, `updating`, `revalidated`, `miss`,
//! `expired`, `bypass`, `dynamic`, `ignored`, …), `OriginResponseStatus` (0 when the origin was not
//! asked: a `miss` without an origin status is the edge's own answer), and `ResponseHeaders.age`
//! (a Logpush custom field, when configured).
//!
//! Fastly keys: `timestamp` (RFC 3339 or epoch seconds), `url` (path and query), `status`, `bytes`,
//! `cache_status` (`fastly_info.state`: `HIT`, `HIT-STALE`, `MISS`, `PASS`, `HITPASS`, `HIT-SYNTH`,
//! `ERROR`, …), `age` (the `Age` response header, empty or a number).

use std::borrow::Cow;
use std::collections::BTreeMap;

use serde::Deserialize;

use crate::record::{Cache, Record, path_of};

/// A JSON value that may be a number or a string holding one.
#[derive(Debug, Deserialize)]
#[serde(untagged)]
enum NumOrText<'a> {
    Num(i64),
    Float(f64),
    #[serde(borrow)]
    Text(Cow<'a, str>),
}

impl NumOrText<'_> {
    fn as_u64(&self) -> Option<u64> {
        match self {
            NumOrText::Num(n) => u64::try_from(*n).ok(),
            NumOrText::Float(f) if *f >= 0.0 => Some(*f as u64),
            NumOrText::Text(t) => t.trim().parse().ok(),
            _ => None,
        }
    }

    fn as_time(&self) -> Option<i64> {
        match self {
            NumOrText::Num(n) => Some(crate::time::epoch_int(*n)),
            NumOrText::Float(f) => Some(crate::time::epoch_int(*f as i64)),
            NumOrText::Text(t) => crate::time::rfc3339_parse(t.as_bytes())
                .or_else(|| crate::time::epoch(t.as_bytes())),
        }
    }
}

#[derive(Debug, Deserialize)]
struct Cloudflare<'a> {
    #[serde(rename = "EdgeStartTimestamp", borrow, default)]
    time: Option<NumOrText<'a>>,
    #[serde(rename = "ClientRequestPath", borrow, default)]
    path: Option<Cow<'a, str>>,
    #[serde(rename = "ClientRequestURI", borrow, default)]
    uri: Option<Cow<'a, str>>,
    #[serde(rename = "EdgeResponseStatus")]
    status: u16,
    #[serde(rename = "EdgeResponseBytes", default)]
    bytes: u64,
    #[serde(rename = "CacheCacheStatus", borrow, default)]
    cache: Option<Cow<'a, str>>,
    #[serde(rename = "OriginResponseStatus", default)]
    origin_status: Option<u16>,
    #[serde(rename = "ResponseHeaders", borrow, default)]
    headers: Option<BTreeMap<Cow<'a, str>, Cow<'a, str>>>,
}

#[derive(Debug, Deserialize)]
struct Fastly<'a> {
    #[serde(borrow, default)]
    timestamp: Option<NumOrText<'a>>,
    #[serde(borrow)]
    url: Cow<'a, str>,
    status: NumOrText<'a>,
    #[serde(borrow, default)]
    bytes: Option<NumOrText<'a>>,
    #[serde(borrow, default)]
    cache_status: Option<Cow<'a, str>>,
    #[serde(borrow, default)]
    age: Option<NumOrText<'a>>,
}

fn path_cow(s: Cow<'_, str>) -> Cow<'_, [u8]> {
    match s {
        Cow::Borrowed(b) => Cow::Borrowed(path_of(b.as_bytes())),
        Cow::Owned(o) => Cow::Owned(path_of(o.as_bytes()).to_vec()),
    }
}

/// One Cloudflare Logpush line.
pub fn cloudflare(line: &[u8]) -> Result<Record<'_>, &'static str> {
    let c: Cloudflare = serde_json::from_slice(line)
        .map_err(|_| "not a Logpush http_requests JSON object (EdgeResponseStatus is required)")?;
    let path = c
        .path
        .or(c.uri)
        .ok_or("no ClientRequestPath nor ClientRequestURI")?;
    let mut cache = c
        .cache
        .as_deref()
        .map_or(Cache::Unknown, |w| Cache::from_word(w.as_bytes()));
    if cache == Cache::Miss && c.origin_status == Some(0) {
        // Counted a miss, but no origin answered: the edge made the response.
        cache = Cache::Synth;
    }
    let age = c.headers.as_ref().and_then(|h| {
        h.iter()
            .find(|(k, _)| k.eq_ignore_ascii_case("age"))
            .and_then(|(_, v)| v.trim().parse().ok())
    });
    Ok(Record {
        time: c.time.as_ref().and_then(NumOrText::as_time),
        path: path_cow(path),
        status: c.status,
        bytes: c.bytes,
        cache,
        age,
    })
}

/// One line of the Fastly JSON format.
pub fn fastly(line: &[u8]) -> Result<Record<'_>, &'static str> {
    let f: Fastly = serde_json::from_slice(line)
        .map_err(|_| "not a JSON object with `url` and `status` (the Fastly format)")?;
    let status = f
        .status
        .as_u64()
        .and_then(|s| u16::try_from(s).ok())
        .filter(|s| (100..1000).contains(s))
        .ok_or("`status` is not an HTTP status")?;
    Ok(Record {
        time: f.timestamp.as_ref().and_then(NumOrText::as_time),
        path: path_cow(f.url),
        status,
        bytes: f.bytes.as_ref().and_then(NumOrText::as_u64).unwrap_or(0),
        cache: f
            .cache_status
            .as_deref()
            .map_or(Cache::Unknown, |w| Cache::from_word(w.as_bytes())),
        age: f.age.as_ref().and_then(NumOrText::as_u64),
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn cloudflare_lines() {
        let r = cloudflare(br#"{"EdgeStartTimestamp":1700000000123456789,"ClientRequestPath":"/a.0123456789ab.css","ClientRequestURI":"/a.0123456789ab.css?v=2","EdgeResponseStatus":200,"EdgeResponseBytes":512,"CacheCacheStatus":"hit","OriginResponseStatus":0,"ResponseHeaders":{"age":"30"}}"#).unwrap();
        assert_eq!(
            (r.time, &*r.path, r.status, r.bytes, r.cache, r.age),
            (
                Some(1_700_000_000),
                &b"/a.0123456789ab.css"[..],
                200,
                512,
                Cache::Hit,
                Some(30)
            )
        );
        let r = cloudflare(br#"{"EdgeStartTimestamp":"2023-11-14T22:13:20Z","ClientRequestURI":"/p?q","EdgeResponseStatus":301,"CacheCacheStatus":"miss","OriginResponseStatus":0}"#).unwrap();
        assert_eq!(
            (r.time, &*r.path, r.cache),
            (Some(1_700_000_000), &b"/p"[..], Cache::Synth)
        );
        assert!(cloudflare(br#"{"ClientRequestPath":"/"}"#).is_err());
        assert!(cloudflare(b"{").is_err());
    }

    #[test]
    fn fastly_lines() {
        let r = fastly(br#"{"timestamp":"2023-11-14T22:13:20Z","url":"/docs/?x=1","status":200,"bytes":"1024","cache_status":"HIT-STALE","age":"700"}"#).unwrap();
        assert_eq!(
            (r.time, &*r.path, r.bytes, r.cache, r.age),
            (
                Some(1_700_000_000),
                &b"/docs/"[..],
                1024,
                Cache::Stale,
                Some(700)
            )
        );
        let r = fastly(br#"{"url":"/","status":"503","cache_status":"ERROR","age":""}"#).unwrap();
        assert_eq!((r.status, r.cache, r.age), (503, Cache::Error, None));
        assert!(fastly(br#"{"url":"/","status":"oops"}"#).is_err());
    }

    proptest::proptest! {
        #[test]
        fn never_panics(line in proptest::collection::vec(proptest::prelude::any::<u8>(), 0..200)) {
            let _ = cloudflare(&line);
            let _ = fastly(&line);
        }
    }
}
