//! Content decoding for the edge checks: which `Content-Encoding` a response was served with, whether
//! the request offered it, and a streaming decoder (`br`, `gzip`/`x-gzip`, `deflate` with or without its
//! zlib wrapper, `zstd`, `identity`) that cuts the decoded body at a limit, so a decompression bomb fails
//! the check instead of filling memory.

use std::io;

use reqwest::header::{self, HeaderMap};

use crate::client::header_text;

/// A `Content-Encoding` that is decoded.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Coding {
    Identity,
    /// `gzip` or `x-gzip`, one member or several.
    Gzip,
    /// zlib-wrapped deflate (RFC 9110), or raw deflate when the zlib header is absent (as browsers
    /// accept).
    Deflate,
    Br,
    Zstd,
}

impl Coding {
    fn parse(token: &str) -> Option<Coding> {
        Some(match token.to_ascii_lowercase().as_str() {
            "identity" => Coding::Identity,
            "gzip" | "x-gzip" => Coding::Gzip,
            "deflate" => Coding::Deflate,
            "br" => Coding::Br,
            "zstd" => Coding::Zstd,
            _ => return None,
        })
    }

    fn name(self) -> &'static str {
        match self {
            Coding::Identity => "identity",
            Coding::Gzip => "gzip",
            Coding::Deflate => "deflate",
            Coding::Br => "br",
            Coding::Zstd => "zstd",
        }
    }
}

/// The coding of a response to a request that sent `accept` (empty: no `Accept-Encoding`), or why
/// its body cannot be checked: a coding the request did not offer, stacked codings, an unknown one.
pub(crate) fn coding_of(headers: &HeaderMap, accept: &str) -> Result<Coding, String> {
    let values = headers.get_all(header::CONTENT_ENCODING);
    if values.iter().any(|v| v.to_str().is_err()) {
        return Err("served a Content-Encoding that is not text".into());
    }
    let served = header_text(headers, header::CONTENT_ENCODING.as_str()).unwrap_or_default();
    let codings: Vec<&str> = served
        .split(',')
        .map(str::trim)
        .filter(|c| !c.is_empty() && !c.eq_ignore_ascii_case("identity"))
        .collect();
    let shown = codings.join(", ");
    match codings[..] {
        [] => Ok(Coding::Identity),
        _ if !codings.iter().all(|c| offered(accept, c)) => Err(if accept.trim().is_empty() {
            format!("served Content-Encoding {shown} to a request without Accept-Encoding")
        } else {
            format!(
                "served Content-Encoding {shown} to Accept-Encoding: {}",
                accept.trim()
            )
        }),
        [one] => Coding::parse(one).ok_or_else(|| {
            format!("served Content-Encoding {one}, which is not decoded (br, gzip, deflate and zstd are)")
        }),
        _ => Err(format!(
            "served stacked Content-Encoding {shown}; one coding at most is decoded"
        )),
    }
}

/// Whether the `Accept-Encoding` value `accept` offers `coding`: listed with q > 0, or not listed and
/// `*` with q > 0 (RFC 9110 §12.5.3); `x-gzip` is `gzip`. An empty value offers nothing.
fn offered(accept: &str, coding: &str) -> bool {
    let norm = |c: &str| {
        let c = c.trim().to_ascii_lowercase();
        if c == "x-gzip" { "gzip".to_string() } else { c }
    };
    let coding = norm(coding);
    let mut star = false;
    for item in accept.split(',') {
        let mut parts = item.split(';');
        let name = norm(parts.next().unwrap_or(""));
        let q = parts
            .find_map(|p| {
                let (k, v) = p.split_once('=')?;
                k.trim()
                    .eq_ignore_ascii_case("q")
                    .then(|| v.trim().parse::<f64>().unwrap_or(0.0))
            })
            .unwrap_or(1.0);
        if name == coding {
            return q > 0.0;
        }
        if name == "*" {
            star = q > 0.0;
        }
    }
    star
}

/// Where decoded bytes go: counts them, fails past the limit, hands the rest to `each`.
struct Sink<F> {
    each: F,
    total: u64,
    limit: u64,
    over: bool,
}

impl<F: FnMut(&[u8])> io::Write for Sink<F> {
    fn write(&mut self, buf: &[u8]) -> io::Result<usize> {
        self.total += buf.len() as u64;
        if self.total > self.limit {
            self.over = true;
            return Err(io::Error::other("the decoded body is too large"));
        }
        (self.each)(buf);
        Ok(buf.len())
    }

    fn flush(&mut self) -> io::Result<()> {
        Ok(())
    }
}

/// A writer-style decoder per coding, writing into a [`Sink`].
enum Decoder<F: FnMut(&[u8])> {
    Identity(Sink<F>),
    Gzip(flate2::write::MultiGzDecoder<Sink<F>>),
    /// `deflate` until its first two bytes tell a zlib header from raw deflate.
    DeflateHead(Sink<F>, Vec<u8>),
    Zlib(flate2::write::ZlibDecoder<Sink<F>>),
    RawDeflate(flate2::write::DeflateDecoder<Sink<F>>),
    Br(Box<brotli::DecompressorWriter<Sink<F>>>),
    Zstd(Box<zstd::stream::write::Decoder<'static, Sink<F>>>),
    /// Only while switching from `DeflateHead`.
    Switching,
}

/// A body being decoded: encoded chunks in, decoded chunks out to `each`, at most `limit` of them.
pub(crate) struct Decoding<F: FnMut(&[u8])> {
    coding: Coding,
    limit: u64,
    /// Whether any encoded byte came: an empty body decodes to nothing, whatever its coding.
    fed: bool,
    state: Decoder<F>,
}

impl<F: FnMut(&[u8])> Decoding<F> {
    pub(crate) fn new(coding: Coding, limit: u64, each: F) -> Result<Decoding<F>, String> {
        let sink = Sink {
            each,
            total: 0,
            limit,
            over: false,
        };
        let state = match coding {
            Coding::Identity => Decoder::Identity(sink),
            Coding::Gzip => Decoder::Gzip(flate2::write::MultiGzDecoder::new(sink)),
            Coding::Deflate => Decoder::DeflateHead(sink, Vec::with_capacity(2)),
            Coding::Br => Decoder::Br(Box::new(brotli::DecompressorWriter::new(sink, 16 * 1024))),
            Coding::Zstd => Decoder::Zstd(Box::new(
                zstd::stream::write::Decoder::new(sink)
                    .map_err(|e| format!("cannot start a zstd decoder ({e})"))?,
            )),
        };
        Ok(Decoding {
            coding,
            limit,
            fed: false,
            state,
        })
    }

    /// Decodes one chunk of the body as sent.
    pub(crate) fn write(&mut self, mut chunk: &[u8]) -> Result<(), String> {
        if chunk.is_empty() {
            return Ok(());
        }
        self.fed = true;
        if let Decoder::DeflateHead(_, head) = &mut self.state {
            let take = (2 - head.len().min(2)).min(chunk.len());
            head.extend_from_slice(&chunk[..take]);
            chunk = &chunk[take..];
            if head.len() < 2 {
                return Ok(());
            }
            if let Decoder::DeflateHead(sink, head) =
                std::mem::replace(&mut self.state, Decoder::Switching)
            {
                self.state = if is_zlib_header(head[0], head[1]) {
                    Decoder::Zlib(flate2::write::ZlibDecoder::new(sink))
                } else {
                    Decoder::RawDeflate(flate2::write::DeflateDecoder::new(sink))
                };
                self.feed(&head)?;
            }
        }
        self.feed(chunk)
    }

    fn feed(&mut self, chunk: &[u8]) -> Result<(), String> {
        let done = match &mut self.state {
            Decoder::Identity(w) => write_all(w, chunk),
            Decoder::Gzip(w) => write_all(w, chunk),
            Decoder::Zlib(w) => write_all(w, chunk),
            Decoder::RawDeflate(w) => write_all(w, chunk),
            Decoder::Br(w) => write_all(w.as_mut(), chunk),
            Decoder::Zstd(w) => write_all(w.as_mut(), chunk),
            Decoder::DeflateHead(..) | Decoder::Switching => {
                Err(io::Error::other("internal error: no decoder"))
            }
        };
        done.map_err(|e| self.error(e))
    }

    /// Ends the body: a stream cut short is corrupt.
    pub(crate) fn finish(mut self) -> Result<(), String> {
        if !self.fed {
            return Ok(());
        }
        let done = match &mut self.state {
            Decoder::Identity(_) => Ok(()),
            Decoder::Gzip(w) => w.try_finish(),
            Decoder::Zlib(w) => w.try_finish(),
            Decoder::RawDeflate(w) => w.try_finish(),
            Decoder::Br(w) => w.close(),
            Decoder::Zstd(w) => w.do_finish(),
            Decoder::DeflateHead(..) => Err(io::Error::new(
                io::ErrorKind::UnexpectedEof,
                "the body is one byte",
            )),
            Decoder::Switching => Err(io::Error::other("internal error: no decoder")),
        };
        done.map_err(|e| self.error(e))
    }

    fn error(&self, e: io::Error) -> String {
        let over = match &self.state {
            Decoder::Identity(s) | Decoder::DeflateHead(s, _) => s.over,
            Decoder::Gzip(w) => w.get_ref().over,
            Decoder::Zlib(w) => w.get_ref().over,
            Decoder::RawDeflate(w) => w.get_ref().over,
            Decoder::Br(w) => w.get_ref().over,
            Decoder::Zstd(w) => w.get_ref().over,
            Decoder::Switching => false,
        };
        match (over, self.coding) {
            (true, Coding::Identity) => {
                format!("the body is more than the {} bytes checked", self.limit)
            }
            (true, c) => format!(
                "the {} body decodes to more than the {} bytes checked",
                c.name(),
                self.limit
            ),
            (false, c) => format!("the {} body is corrupt ({e})", c.name()),
        }
    }
}

/// RFC 1950: compression method 8 with a window of at most 32 KiB, and a check sum over both bytes.
fn is_zlib_header(cmf: u8, flg: u8) -> bool {
    cmf & 0x0f == 8 && cmf >> 4 <= 7 && (u16::from(cmf) << 8 | u16::from(flg)) % 31 == 0
}

/// `write_all` that calls a decoder refusing more input (the stream ended) corrupt.
fn write_all(w: &mut impl io::Write, mut buf: &[u8]) -> io::Result<()> {
    while !buf.is_empty() {
        match w.write(buf) {
            Ok(0) => {
                return Err(io::Error::new(
                    io::ErrorKind::InvalidData,
                    "data after the end of the stream",
                ));
            }
            Ok(n) => buf = &buf[n..],
            Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
            Err(e) => return Err(e),
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use reqwest::header::HeaderValue;

    use crate::verify::MAX_BODY;

    #[test]
    fn offered_follows_accept_encoding() {
        let browser = "gzip, deflate, br, zstd";
        let cases = [
            (browser, "br", true),
            (browser, "BR", true),
            (browser, "x-gzip", true),
            ("gzip, deflate, br", "zstd", false),
            ("identity", "br", false),
            ("", "gzip", false),
            ("x-gzip", "gzip", true),
            ("br;q=0, gzip", "br", false),
            ("br;q=0.5, gzip", "br", true),
            ("*", "zstd", true),
            ("*;q=0", "zstd", false),
            ("*, zstd;q=0", "zstd", false),
            ("gzip;q=nope", "gzip", false),
        ];
        for (accept, coding, want) in cases {
            assert_eq!(offered(accept, coding), want, "{accept:?} {coding}");
        }
    }

    #[test]
    fn coding_of_refuses_what_was_not_offered() {
        let h = |v: &[&'static str]| {
            let mut m = HeaderMap::new();
            for v in v {
                m.append(header::CONTENT_ENCODING, HeaderValue::from_static(v));
            }
            m
        };
        let browser = "gzip, deflate, br, zstd";
        assert_eq!(coding_of(&h(&[]), ""), Ok(Coding::Identity));
        assert_eq!(
            coding_of(&h(&["identity"]), "identity"),
            Ok(Coding::Identity)
        );
        assert_eq!(coding_of(&h(&["br"]), browser), Ok(Coding::Br));
        assert_eq!(coding_of(&h(&["x-gzip"]), browser), Ok(Coding::Gzip));
        assert_eq!(coding_of(&h(&["Deflate"]), browser), Ok(Coding::Deflate));
        assert_eq!(coding_of(&h(&["zstd"]), "*"), Ok(Coding::Zstd));
        assert_eq!(
            coding_of(&h(&["zstd"]), "gzip, deflate, br"),
            Err("served Content-Encoding zstd to Accept-Encoding: gzip, deflate, br".into())
        );
        assert_eq!(
            coding_of(&h(&["gzip"]), ""),
            Err("served Content-Encoding gzip to a request without Accept-Encoding".into())
        );
        let stacked = "served stacked Content-Encoding gzip, br; one coding at most is decoded";
        assert_eq!(coding_of(&h(&["gzip, br"]), browser), Err(stacked.into()));
        assert_eq!(coding_of(&h(&["gzip", "br"]), browser), Err(stacked.into()));
        let e = coding_of(&h(&["compress"]), "*").unwrap_err();
        assert!(e.contains("compress") && e.contains("not decoded"), "{e}");
        let e = coding_of(&h(&["compress"]), browser).unwrap_err();
        assert_eq!(
            e,
            format!("served Content-Encoding compress to Accept-Encoding: {browser}")
        );
    }

    fn encode(coding: Coding, body: &[u8]) -> Vec<u8> {
        use std::io::Write as _;
        match coding {
            Coding::Identity => body.to_vec(),
            Coding::Gzip => {
                let mut e = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::fast());
                e.write_all(body).unwrap();
                e.finish().unwrap()
            }
            Coding::Deflate => {
                let mut e =
                    flate2::write::ZlibEncoder::new(Vec::new(), flate2::Compression::fast());
                e.write_all(body).unwrap();
                e.finish().unwrap()
            }
            Coding::Br => {
                let mut out = Vec::new();
                {
                    let mut e = brotli::CompressorWriter::new(&mut out, 4096, 5, 22);
                    e.write_all(body).unwrap();
                }
                out
            }
            Coding::Zstd => zstd::stream::encode_all(body, 3).unwrap(),
        }
    }

    fn raw_deflate(body: &[u8]) -> Vec<u8> {
        use std::io::Write as _;
        let mut e = flate2::write::DeflateEncoder::new(Vec::new(), flate2::Compression::fast());
        e.write_all(body).unwrap();
        e.finish().unwrap()
    }

    /// Decodes `encoded` fed in `chunk`-byte pieces.
    fn decode(coding: Coding, encoded: &[u8], chunk: usize, limit: u64) -> Result<Vec<u8>, String> {
        let mut out = Vec::new();
        let mut d = Decoding::new(coding, limit, |c: &[u8]| out.extend_from_slice(c))?;
        for c in encoded.chunks(chunk) {
            d.write(c)?;
        }
        d.finish()?;
        Ok(out)
    }

    #[test]
    fn every_coding_decodes_in_any_chunking() {
        let body: Vec<u8> = (0..200_000u32)
            .map(|i| (i.wrapping_mul(2_654_435_761) >> 27) as u8)
            .collect();
        let codings = [
            Coding::Identity,
            Coding::Gzip,
            Coding::Deflate,
            Coding::Br,
            Coding::Zstd,
        ];
        for coding in codings {
            let encoded = encode(coding, &body);
            for chunk in [1, 2, 3, 1000, usize::MAX] {
                let chunk = chunk.min(encoded.len());
                assert_eq!(
                    decode(coding, &encoded, chunk, MAX_BODY).as_deref(),
                    Ok(&body[..]),
                    "{coding:?} in {chunk}-byte chunks"
                );
            }
            // an empty body is empty, whatever its coding
            assert_eq!(decode(coding, b"", 1, MAX_BODY), Ok(Vec::new()));
        }
        // deflate without its zlib wrapper, as some servers send it
        let raw = raw_deflate(&body);
        assert!(!is_zlib_header(raw[0], raw[1]));
        for chunk in [1, 2, 4096] {
            assert_eq!(
                decode(Coding::Deflate, &raw, chunk, MAX_BODY).as_deref(),
                Ok(&body[..])
            );
        }
        // several gzip members are one body
        let mut two = encode(Coding::Gzip, b"hello ");
        two.extend(encode(Coding::Gzip, b"world"));
        assert_eq!(
            decode(Coding::Gzip, &two, 3, MAX_BODY).as_deref(),
            Ok(&b"hello world"[..])
        );
    }

    #[test]
    fn corrupt_truncated_and_oversized_bodies_fail() {
        let body = vec![b'a'; 100_000];
        for coding in [Coding::Gzip, Coding::Deflate, Coding::Br, Coding::Zstd] {
            let name = coding.name();
            let encoded = encode(coding, &body);
            let cut = &encoded[..encoded.len() / 2];
            let e = decode(coding, cut, 7, MAX_BODY).unwrap_err();
            assert!(e.starts_with(&format!("the {name} body is corrupt")), "{e}");
            let e = decode(coding, b"this is not compressed at all", 4, MAX_BODY).unwrap_err();
            assert!(e.starts_with(&format!("the {name} body is corrupt")), "{e}");
            let mut trailing = encoded.clone();
            trailing.extend_from_slice(b"junk after the end");
            let e = decode(coding, &trailing, 1000, MAX_BODY).unwrap_err();
            assert!(e.starts_with(&format!("the {name} body is corrupt")), "{e}");
            // a bomb: small encoded, large decoded
            assert!(encoded.len() < 10_000);
            let e = decode(coding, &encoded, 1000, 50_000).unwrap_err();
            assert_eq!(
                e,
                format!("the {name} body decodes to more than the 50000 bytes checked")
            );
            assert_eq!(
                decode(coding, &encoded, 1000, 100_000).map(|b| b.len()),
                Ok(100_000)
            );
        }
        let e = decode(Coding::Identity, &body, 1000, 50_000).unwrap_err();
        assert_eq!(e, "the body is more than the 50000 bytes checked");
        let e = decode(Coding::Deflate, &[0x78], 1, MAX_BODY).unwrap_err();
        assert!(e.starts_with("the deflate body is corrupt"), "{e}");
    }
}
