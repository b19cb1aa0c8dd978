//! `Accept-Encoding` negotiation over precompressed variants (RFC 9110 §12.5.3).
//!
//! Preference among acceptable encodings: the client's q-value first, then br > zstd > gzip, then identity.
//! `q=0` refuses a coding, `*` covers codings not named, and identity is acceptable unless refused
//! explicitly (`identity;q=0`) or through `*;q=0` without an identity entry.

use staleguard_core::config::Codec;

/// The outcome of negotiation.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Choice {
    Encoded(Codec),
    Identity,
    /// The client refused identity and every available coding; the caller sends identity anyway
    /// (RFC 9110 allows it, and a 406 helps nobody).
    NothingAcceptable,
}

/// The client's weight for each coding and for identity, in thousandths.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Accept {
    br: Option<u16>,
    zstd: Option<u16>,
    gzip: Option<u16>,
    identity: Option<u16>,
    star: Option<u16>,
}

/// The q-value among an item's parameters (`;q=0.5;x=y`), in thousandths; `None` when it is not a
/// number in 0..=1 (the item is then ignored).
fn parse_q(params: &[u8]) -> Option<u16> {
    for p in params.split(|&b| b == b';') {
        let p = p.trim_ascii();
        if let [b'q' | b'Q', b'=', v @ ..] = p {
            let f: f64 = std::str::from_utf8(v.trim_ascii()).ok()?.parse().ok()?;
            if !(0.0..=1.0).contains(&f) {
                return None;
            }
            return Some((f * 1000.0).round() as u16);
        }
    }
    Some(1000)
}

impl Accept {
    /// Parses the header values (several headers are joined by the caller or passed one by one).
    /// Works on bytes: a request pays a few comparisons, no allocation and no string searching.
    pub fn parse<'a>(values: impl IntoIterator<Item = &'a [u8]>) -> Accept {
        let mut a = Accept {
            br: None,
            zstd: None,
            gzip: None,
            identity: None,
            star: None,
        };
        for value in values {
            for item in value.split(|&b| b == b',') {
                let (name, q) = match item.iter().position(|&b| b == b';') {
                    Some(i) => (&item[..i], parse_q(&item[i + 1..])),
                    None => (item, Some(1000)),
                };
                let Some(q) = q else { continue };
                let name = name.trim_ascii();
                let is = |n: &[u8]| name.eq_ignore_ascii_case(n);
                let slot = if is(b"br") {
                    &mut a.br
                } else if is(b"zstd") {
                    &mut a.zstd
                } else if is(b"gzip") || is(b"x-gzip") {
                    &mut a.gzip
                } else if is(b"identity") {
                    &mut a.identity
                } else if name == b"*" {
                    &mut a.star
                } else {
                    continue;
                };
                *slot = Some(slot.map_or(q, |old: u16| old.max(q)));
            }
        }
        a
    }

    fn weight(&self, codec: Codec) -> u16 {
        let named = match codec {
            Codec::Br => self.br,
            Codec::Zstd => self.zstd,
            Codec::Gzip => self.gzip,
        };
        named.or(self.star).unwrap_or(0)
    }

    /// Identity's weight: explicit, else `*`'s when `*` refuses, else acceptable.
    fn identity_weight(&self) -> u16 {
        match (self.identity, self.star) {
            (Some(q), _) => q,
            (None, Some(0)) => 0,
            _ => 1,
        }
    }

    /// Picks among the available codings.
    pub fn choose(&self, available: &[Codec]) -> Choice {
        let rank = |c: Codec| match c {
            Codec::Br => 3,
            Codec::Zstd => 2,
            Codec::Gzip => 1,
        };
        let best = available
            .iter()
            .copied()
            .filter(|&c| self.weight(c) > 0)
            .max_by_key(|&c| (self.weight(c), rank(c)));
        let identity = self.identity_weight();
        match best {
            Some(c) if self.weight(c) >= identity => Choice::Encoded(c),
            _ if identity > 0 => Choice::Identity,
            Some(c) => Choice::Encoded(c),
            None => Choice::NothingAcceptable,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn table() {
        use Codec::*;
        let all = [Br, Zstd, Gzip];
        for (header, available, want) in [
            ("", &all[..], Choice::Identity),
            ("gzip, deflate, br", &all[..], Choice::Encoded(Br)),
            ("gzip, deflate, br, zstd", &all[..], Choice::Encoded(Br)),
            ("gzip;q=1.0, br;q=0.5", &all[..], Choice::Encoded(Gzip)),
            ("br;q=0, gzip", &all[..], Choice::Encoded(Gzip)),
            ("br", &[Gzip][..], Choice::Identity),
            ("*", &all[..], Choice::Encoded(Br)),
            (
                "*;q=0.5, gzip;q=0",
                &[Gzip, Zstd][..],
                Choice::Encoded(Zstd),
            ),
            ("identity", &all[..], Choice::Identity),
            ("br;q=0.5, identity;q=1", &all[..], Choice::Identity),
            ("identity;q=0", &[][..], Choice::NothingAcceptable),
            ("*;q=0", &[Br][..], Choice::NothingAcceptable),
            ("*;q=0, identity", &[Br][..], Choice::Identity),
            ("identity;q=0, gzip", &[Gzip][..], Choice::Encoded(Gzip)),
            ("GZIP", &[Gzip][..], Choice::Encoded(Gzip)),
            ("br;q=2, gzip", &[Br, Gzip][..], Choice::Encoded(Gzip)),
            (
                "br;q=abc, gzip;q=0.1",
                &[Br, Gzip][..],
                Choice::Encoded(Gzip),
            ),
            ("x-gzip", &[Gzip][..], Choice::Encoded(Gzip)),
        ] {
            assert_eq!(
                Accept::parse([header.as_bytes()]).choose(available),
                want,
                "{header:?} of {available:?}"
            );
        }
    }
}
