//! The variant part of a cache key (RFC 9111 §4.1): the request's values of the header fields the
//! response's `Vary` names. `Accept-Encoding` is normalised to the encodings the origin offers: the
//! variant is keyed by the one content coding the client gets (`br`, `zstd`, `gzip`, `identity`), the
//! best of its accepted codings ([`ranked_codings`]) that the origin was seen to serve for that URL and
//! not skipping one the origin was never asked for ([`select_coding`]). So Chrome and Safari share the
//! brotli variant, a gzip-only origin gives every browser its gzip variant, and brotli is kept apart from
//! gzip (stock Varnish rewrites every list to `gzip` and never asks for brotli). Other fields are
//! compared with their whitespace collapsed. `Vary: *` cannot be matched: such a response is not stored.

/// Variants kept per URL at most; past it the least recently used variant is dropped (a response that
/// varies on a field with unbounded values, such as `User-Agent`, cannot fill the cache).
pub const MAX_VARIANTS: usize = 16;

/// The codings the cache distinguishes, best first.
pub const CODINGS: [&str; 4] = ["br", "zstd", "gzip", "identity"];

/// The coding a client accepting `value` (an `Accept-Encoding` field, `None` when absent) should get,
/// of `CODINGS` (RFC 9110 §12.5.3: weights, `*`, `identity` acceptable unless excluded).
pub fn normalise_accept_encoding(value: Option<&str>) -> &'static str {
    ranked_codings(value).first().copied().unwrap_or("identity")
}

/// The codings a client accepting `value` takes, most preferred first (by weight, then br > zstd >
/// gzip > identity); `identity` is included unless excluded (`identity;q=0`, or `*;q=0` without it).
pub fn ranked_codings(value: Option<&str>) -> Vec<&'static str> {
    let Some(value) = value else {
        return vec!["identity"];
    };
    // Weights of br, zstd, gzip, identity and `*`, as listed (no allocation: this runs on every hit).
    let mut w: [Option<f32>; 5] = [None; 5];
    for item in value.split(',') {
        let mut parts = item.split(';');
        let name = parts.next().unwrap_or("").trim();
        let i = if name.eq_ignore_ascii_case("br") {
            0
        } else if name.eq_ignore_ascii_case("zstd") {
            1
        } else if name.eq_ignore_ascii_case("gzip") || name.eq_ignore_ascii_case("x-gzip") {
            2
        } else if name.eq_ignore_ascii_case("identity") {
            3
        } else if name == "*" {
            4
        } else {
            continue;
        };
        let mut q = 1.0f32;
        for p in parts {
            let p = p.trim();
            if let Some(v) = p.strip_prefix("q=").or_else(|| p.strip_prefix("Q=")) {
                q = v.trim().parse().unwrap_or(0.0);
            }
        }
        if w[i].is_none() {
            w[i] = Some(q);
        }
    }
    let mut out: Vec<(&'static str, f32)> = Vec::with_capacity(4);
    for (i, &c) in CODINGS.iter().enumerate() {
        let q = match (c, w[i].or(w[4])) {
            (_, Some(q)) => q,
            ("identity", None) => 0.001,
            _ => 0.0,
        };
        if q > 0.0 {
            out.push((c, q));
        }
    }
    // Stable: equal weights keep CODINGS' order.
    out.sort_by(|a, b| b.1.total_cmp(&a.1));
    out.into_iter().map(|(c, _)| c).collect()
}

/// The coding to serve a client with these `ranked` codings from a URL whose origin was seen to serve
/// `offered` and to answer a request for each of `refused` with something else: the first ranked coding
/// offered, skipping refused ones. `Err(ask)` when a coding the client prefers was never asked for: fetch,
/// asking for `ask` (the ranked codings from there on, refused ones left out).
pub fn select_coding(
    ranked: &[&'static str],
    offered: &[String],
    refused: &[String],
) -> Result<&'static str, Vec<&'static str>> {
    for (i, &c) in ranked.iter().enumerate() {
        if offered.iter().any(|o| o == c) {
            return Ok(c);
        }
        if c == "identity" || refused.iter().any(|r| r == c) {
            continue;
        }
        return Err(ranked[i..]
            .iter()
            .copied()
            .filter(|c| !refused.iter().any(|r| r == c))
            .collect());
    }
    Ok("identity")
}

/// `Accept-Encoding` as the edge sends it to the origin for these codings (in order, with decreasing
/// weights); `None` for identity alone.
pub fn forwarded_accept_encoding(ask: &[&str]) -> Option<String> {
    let codings: Vec<&str> = ask.iter().copied().filter(|c| *c != "identity").collect();
    if codings.is_empty() {
        return None;
    }
    let mut out = String::new();
    for (i, c) in codings.iter().enumerate() {
        if i > 0 {
            out.push_str(", ");
        }
        out.push_str(c);
        if i > 0 {
            out.push_str(&format!(";q=0.{}", 9 - i.min(8)));
        }
    }
    Some(out)
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
/// request's field value (lower-case name; several lines joined with `, `), `coding` the content coding
/// it gets (what stands for `Accept-Encoding`).
pub fn variant_key(
    fields: &[String],
    header: impl Fn(&str) -> Option<String>,
    coding: &str,
) -> String {
    let mut key = String::new();
    for f in fields {
        key.push_str(f);
        key.push('=');
        if f == "accept-encoding" {
            key.push_str(coding);
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
        let lang = |v: &'static str| move |h: &str| (h == "accept-language").then(|| v.to_string());
        let chrome = variant_key(&fields, lang("en-GB,  en"), "br");
        let safari = variant_key(&fields, lang("en-GB, en"), "br");
        let curl = variant_key(&fields, |_| None, "identity");
        assert_eq!(chrome, safari, "same coding, same language: one variant");
        assert_ne!(chrome, curl);
        assert_eq!(curl, "accept-encoding=identity\naccept-language=\n");
    }

    #[test]
    fn codings_are_ranked_and_selected_from_what_the_origin_offers() {
        assert_eq!(
            ranked_codings(Some("gzip, deflate, br, zstd")),
            ["br", "zstd", "gzip", "identity"]
        );
        assert_eq!(
            ranked_codings(Some("br;q=0.5, gzip;q=0.9")),
            ["gzip", "br", "identity"]
        );
        assert_eq!(ranked_codings(Some("gzip, identity;q=0")), ["gzip"]);
        assert_eq!(ranked_codings(None), ["identity"]);
        let s = |v: &[&str]| v.iter().map(|x| x.to_string()).collect::<Vec<_>>();
        let chrome = ranked_codings(Some("gzip, deflate, br, zstd"));
        let safari = ranked_codings(Some("gzip, deflate, br"));
        // Nothing known: ask for everything the client takes.
        assert_eq!(
            select_coding(&chrome, &[], &[]),
            Err(vec!["br", "zstd", "gzip", "identity"])
        );
        // The origin served br: both browsers get it.
        assert_eq!(select_coding(&chrome, &s(&["br"]), &[]), Ok("br"));
        assert_eq!(select_coding(&safari, &s(&["br"]), &[]), Ok("br"));
        // A gzip-only origin (asked for br and zstd, answered gzip): gzip for every browser.
        let (offered, refused) = (s(&["gzip"]), s(&["br", "zstd"]));
        assert_eq!(select_coding(&chrome, &offered, &refused), Ok("gzip"));
        assert_eq!(select_coding(&safari, &offered, &refused), Ok("gzip"));
        // A client that prefers a coding never asked for: fetch it.
        let zstd_first = ranked_codings(Some("zstd, gzip"));
        assert_eq!(
            select_coding(&zstd_first, &s(&["br"]), &[]),
            Err(vec!["zstd", "gzip", "identity"])
        );
        // identity: offered implicitly once every other coding is refused.
        assert_eq!(
            select_coding(&safari, &s(&["identity"]), &s(&["br", "gzip"])),
            Ok("identity")
        );
        assert_eq!(select_coding(&["identity"], &[], &[]), Ok("identity"));
        assert_eq!(
            forwarded_accept_encoding(&["br", "zstd", "gzip", "identity"]).as_deref(),
            Some("br, zstd;q=0.8, gzip;q=0.7")
        );
        assert_eq!(
            forwarded_accept_encoding(&["gzip"]).as_deref(),
            Some("gzip")
        );
        assert_eq!(forwarded_accept_encoding(&["identity"]), None);
    }
}

#[cfg(test)]
mod props {
    use proptest::prelude::*;

    use super::*;

    proptest! {
        /// The coding chosen is one the client accepts (or identity, always acceptable unless the
        /// client excluded everything), whatever is known of the origin: the variant a request is
        /// keyed to (its coding) is always one it takes.
        #[test]
        fn the_selected_coding_is_always_accepted(
            a in proptest::collection::vec((prop::sample::select(vec!["br", "gzip", "zstd", "identity", "*", "deflate"]), 0u8..=10), 0..5),
            b in proptest::collection::vec((prop::sample::select(vec!["br", "gzip", "zstd", "identity", "*", "deflate"]), 0u8..=10), 0..5),
            offered in proptest::sample::subsequence(vec!["br", "zstd", "gzip", "identity"], 0..4),
            refused in proptest::sample::subsequence(vec!["br", "zstd", "gzip"], 0..3),
        ) {
            let list = |v: &[(&str, u8)]| v.iter().map(|(c, q)| format!("{c};q={}", *q as f32 / 10.0)).collect::<Vec<_>>().join(", ");
            let (la, lb) = (list(&a), list(&b));
            let ca = normalise_accept_encoding(Some(&la));
            let accepted = |v: &[(&str, u8)], c: &str| {
                let w = v.iter().find(|(n, _)| *n == c).or_else(|| v.iter().find(|(n, _)| *n == "*"));
                match w { Some((_, q)) => *q > 0, None => c == "identity" }
            };
            prop_assert!(accepted(&a, ca) || ca == "identity", "{la} → {ca}");
            // Whatever the origin is known to offer or refuse, the coding selected is one the client
            // accepts (identity as the last resort), and a fetch asks only for accepted codings.
            let known: Vec<String> = offered.iter().map(|c| c.to_string()).collect();
            let no: Vec<String> = refused.iter().map(|c| c.to_string()).collect();
            for (v, l) in [(&a, &la), (&b, &lb)] {
                let ranked = ranked_codings(Some(l));
                match select_coding(&ranked, &known, &no) {
                    Ok(c) => prop_assert!(accepted(v, c) || c == "identity", "{l} → {c}"),
                    Err(ask) => {
                        prop_assert!(!ask.is_empty());
                        for c in &ask {
                            prop_assert!(ranked.contains(c) && !no.iter().any(|r| r == c));
                        }
                    }
                }
            }
        }
    }
}
