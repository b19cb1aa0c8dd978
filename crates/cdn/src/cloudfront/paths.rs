//! Items as CloudFront invalidation paths: checked, wildcards for prefixes, percent-encoded where
//! CloudFront wants it.

use staleguard_core::purge::{Item, ItemKind};

use super::MAX_PATH_LEN;

/// Percent-encodes what CloudFront wants encoded in an invalidation path: bytes outside printable
/// ASCII and RFC 1738's unsafe characters. Nothing else, or CloudFront would not match cached objects.
pub fn encode_path(raw: &str) -> String {
    const UNSAFE: &[u8] = b" \"<>#%{}|\\^~[]`";
    let mut out = String::with_capacity(raw.len());
    for &b in raw.as_bytes() {
        if b <= 0x20 || b >= 0x7f || UNSAFE.contains(&b) {
            out.push_str(&format!("%{b:02X}"));
        } else {
            out.push(b as char);
        }
    }
    out
}

/// The CloudFront invalidation path of one item, checked: starts with `/`, a `*` only as the wildcard
/// a prefix ends with, encoded, at most 4,000 characters. Errors say what is wrong with the item
/// (the caller names the item).
pub fn render_item(item: &Item, tags: bool) -> Result<String, String> {
    let path = match item.kind {
        ItemKind::All => return Ok("/*".into()),
        ItemKind::Path | ItemKind::Prefix => {
            let v = &item.value;
            if !v.starts_with('/') {
                return Err("it does not start with `/`".into());
            }
            if v.contains('*') {
                return Err(
                    "`*` is CloudFront's wildcard: it cannot be part of a path or a prefix".into(),
                );
            }
            let mut p = encode_path(v);
            if item.kind == ItemKind::Prefix {
                p.push('*');
            }
            p
        }
        ItemKind::Tag => {
            if !tags {
                return Err(
                    "tag invalidation is not enabled for this distribution (set `tags = true`)"
                        .into(),
                );
            }
            let v = &item.value;
            let bad = v.is_empty()
                || v.bytes()
                    .any(|b| b <= 0x20 || b >= 0x7f || b == b'*' || b == b'#');
            if bad {
                return Err(
                    "a tag must be non-empty, without spaces, control characters, `*`, `#` or non-ASCII"
                        .into(),
                );
            }
            format!("#{v}")
        }
        ItemKind::Host => {
            return Err("CloudFront cannot purge by host".into());
        }
    };
    if path.len() > MAX_PATH_LEN {
        return Err(format!(
            "it is {} characters once encoded; CloudFront takes at most {MAX_PATH_LEN}",
            path.len()
        ));
    }
    Ok(path)
}
