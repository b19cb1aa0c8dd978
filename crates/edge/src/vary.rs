//! The variant part of a cache key (RFC 9111 §4.1): the request's values of the header fields the
//! response's `Vary` names. `Accept-Encoding` is normalised to the one content coding the cache would
//! want for that client (`br`, `zstd`, `gzip`, else `identity`), so two browsers that differ only in
//! the order or weights of their list share one variant, and brotli is kept apart from gzip (stock
//! Varnish rewrites every list to `gzip` and never asks for brotli). Other fields are compared with
//! their whitespace collapsed. `Vary: *` cannot be matched: such a response is not stored.

/// Variants kept per URL at most; past it the least recently used variant is dropped (a response that
/// varies on a field with unbounded values, such as `User-Agent`, cannot fill the cache).
pub const MAX_VARIANTS: usize = 16;

/// The codings the cache distinguishes, best first.
pub const CODINGS: [&str; 4] = ["br", "zstd", "gzip", "identity"];

/// The coding a client accepting `value` (an `Accept-Encoding` field, `None` when absent) should get,
/// of `CODINGS` (RFC 9110 §12.5.3: weights, `*`, `identity` acceptable unless excluded).
pub fn normalise_accept_encoding(value: Option<&str>) -> &'static str {
    let Some(value) = value else {
        return "identity";
    };
    let mut weights: Vec<(String, f32)> = Vec::new();
    for item in value.split(',') {
        let mut parts = item.split(';');
        let name = parts.next().unwrap_or("").trim().to_ascii_lowercase();
        if name.is_empty() {
            continue;
        }
        let mut q = 1.0f32;
        for p in parts {
            if let Some(v) = p
                .trim()
                .strip_prefix("q=")
                .or_else(|| p.trim().strip_prefix("Q="))
            {
                q = v.trim().parse().unwrap_or(0.0);
            }
        }
        weights.push((
            if name == "x-gzip" {
                "gzip".into()
            } else {
                name
            },
            q,
        ));
    }
    let weight = |coding: &str| -> Option<f32> {
        weights
            .iter()
            .find(|(n, _)| n == coding)
            .or_else(|| weights.iter().find(|(n, _)| n == "*"))
            .map(|(_, q)| *q)
    };
    let mut best: Option<(&'static str, f32)> = None;
    for c in CODINGS {
        let q = match (c, weight(c)) {
            (_, Some(q)) => q,
            // identity is acceptable unless excluded (`identity;q=0`, or `*;q=0` without it).
            ("identity", None) => 0.001,
            _ => 0.0,
        };
        if q > 0.0 && best.is_none_or(|(_, bq)| q > bq) {
            best = Some((c, q));
        }
    }
    best.map_or("identity", |(c, _)| c)
}

/// The field names of `Vary` values, lower-cased, in order, once each; `None` for `Vary: *`.
pub fn vary_fields<'a>(values: impl IntoIterator<Item = &'a str>) -> Option<Vec<String>> {
    let mut out: Vec<String> = Vec::new();
    for v in values {
        for f in v.split(',') {
            let f = f.trim().to_ascii_lowercase();
            if f == "*" {
                return None;
            }
            if !f.is_empty() && !out.contains(&f) {
                out.push(f);
            }
        }
    }
    Some(out)
}

/// The variant key of a request for a response that varies on `fields`; `header(name)` gives the
/// request's field value (lower-case name; several lines joined with `, `).
pub fn variant_key(fields: &[String], header: impl Fn(&str) -> Option<String>) -> String {
    let mut key = String::new();
    for f in fields {
        key.push_str(f);
        key.push('=');
        if f == "accept-encoding" {
            key.push_str(normalise_accept_encoding(header(f).as_deref()));
        } else if let Some(v) = header(f) {
            key.push_str(&v.split_whitespace().collect::<Vec<_>>().join(" "));
        }
        key.push('\n');
    }
    key
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn accept_encoding_becomes_the_coding_to_serve() {
        let table = [
            (None, "identity"),
            (Some(""), "identity"),
            (Some("gzip, deflate, br, zstd"), "br"),
            (Some("gzip, deflate, br"), "br"),
            (Some("br;q=0.5, gzip;q=0.9"), "gzip"),
            (Some("zstd, gzip"), "zstd"),
            (Some("gzip"), "gzip"),
            (Some("x-gzip"), "gzip"),
            (Some("GZIP;Q=0.8"), "gzip"),
            (Some("*"), "br"),
            (Some("*;q=0, identity"), "identity"),
            (Some("br;q=0, gzip;q=0"), "identity"),
            (Some("identity;q=0, gzip;q=0.1"), "gzip"),
            (Some("deflate"), "identity"),
            (Some("br;q=banana, gzip"), "gzip"),
        ];
        for (v, want) in table {
            assert_eq!(normalise_accept_encoding(v), want, "{v:?}");
        }
    }

    #[test]
    fn vary_fields_and_keys() {
        assert_eq!(
            vary_fields(["Accept-Encoding, Accept-Language", "accept-encoding"]),
            Some(vec!["accept-encoding".into(), "accept-language".into()])
        );
        assert_eq!(vary_fields(["Accept-Encoding, *"]), None);
        assert_eq!(vary_fields(std::iter::empty::<&str>()), Some(vec![]));
        let fields = vec!["accept-encoding".to_string(), "accept-language".to_string()];
        let chrome = variant_key(&fields, |h| match h {
            "accept-encoding" => Some("gzip, deflate, br, zstd".into()),
            "accept-language" => Some("en-GB,  en".into()),
            _ => None,
        });
        let firefox = variant_key(&fields, |h| match h {
            "accept-encoding" => Some("br, gzip".into()),
            "accept-language" => Some("en-GB, en".into()),
            _ => None,
        });
        let curl = variant_key(&fields, |_| None);
        assert_eq!(chrome, firefox, "same coding, same language: one variant");
        assert_ne!(chrome, curl);
        assert_eq!(curl, "accept-encoding=identity\naccept-language=\n");
    }
}

#[cfg(test)]
mod props {
    use proptest::prelude::*;

    use super::*;

    proptest! {
        /// The coding chosen is one the client accepts (or identity, always acceptable unless the
        /// client excluded everything), and two requests share a variant only if they would be served
        /// the same coding: a variant never goes to a request that would get another.
        #[test]
        fn the_chosen_coding_is_accepted_and_variants_never_cross(
            a in proptest::collection::vec((prop::sample::select(vec!["br", "gzip", "zstd", "identity", "*", "deflate"]), 0u8..=10), 0..5),
            b in proptest::collection::vec((prop::sample::select(vec!["br", "gzip", "zstd", "identity", "*", "deflate"]), 0u8..=10), 0..5),
        ) {
            let list = |v: &[(&str, u8)]| v.iter().map(|(c, q)| format!("{c};q={}", *q as f32 / 10.0)).collect::<Vec<_>>().join(", ");
            let (la, lb) = (list(&a), list(&b));
            let ca = normalise_accept_encoding(Some(&la));
            let accepted = |v: &[(&str, u8)], c: &str| {
                let w = v.iter().find(|(n, _)| *n == c).or_else(|| v.iter().find(|(n, _)| *n == "*"));
                match w { Some((_, q)) => *q > 0, None => c == "identity" }
            };
            prop_assert!(accepted(&a, ca) || ca == "identity", "{la} → {ca}");
            let fields = vec!["accept-encoding".to_string()];
            let ka = variant_key(&fields, |_| Some(la.clone()));
            let kb = variant_key(&fields, |_| Some(lb.clone()));
            if ka == kb {
                prop_assert_eq!(ca, normalise_accept_encoding(Some(&lb)));
            }
        }
    }
}
