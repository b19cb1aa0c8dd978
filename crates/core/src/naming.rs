//! Fingerprinted file names: `dir/name.<12 hex>.ext`, Django-compatible.
//!
//! Django's `HashedFilesMixin` splits a name with `os.path.splitext` and inserts `.<hash>` before the
//! extension; we do the same so WhiteNoise and Django recognise our names as hashed.

/// Number of hex characters of the content hash embedded in a name.
pub const HASH_LEN: usize = 12;

/// Splits a file name (no directory) like Python's `os.path.splitext`: leading dots are part of the stem,
/// the extension is from the last dot on.
pub fn split_ext(file_name: &str) -> (&str, &str) {
    let lead = file_name.len() - file_name.trim_start_matches('.').len();
    match file_name[lead..].rfind('.') {
        Some(i) => file_name.split_at(lead + i),
        None => (file_name, ""),
    }
}

/// Returns the hashed form of a logical path: `css/app.css` + `3f2a…` → `css/app.3f2a9c1b7e4d.css`.
/// `hash` may be longer than [`HASH_LEN`]; only its first characters are used.
pub fn hashed_path(logical: &str, hash: &str) -> String {
    let short = &hash[..hash.len().min(HASH_LEN)];
    let (dir, file) = match logical.rfind('/') {
        Some(i) => logical.split_at(i + 1),
        None => ("", logical),
    };
    let (stem, ext) = split_ext(file);
    format!("{dir}{stem}.{short}{ext}")
}

/// Rewrites the last segment of a raw URL path (as written in a source file, possibly percent-encoded)
/// so that it names the hashed file: inserts `.<hash>` before the extension of the raw segment.
/// Returns `None` when the raw segment's shape does not match the decoded file name (e.g. an encoded dot),
/// in which case the caller re-encodes the whole segment.
pub fn hash_raw_segment(raw_segment: &str, decoded_file_name: &str, hash: &str) -> Option<String> {
    let short = &hash[..hash.len().min(HASH_LEN)];
    let (_, dec_ext) = split_ext(decoded_file_name);
    let (raw_stem, raw_ext) = split_ext(raw_segment);
    if raw_ext != dec_ext || raw_stem.is_empty() {
        return None;
    }
    Some(format!("{raw_stem}.{short}{raw_ext}"))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn split_ext_like_python() {
        for (input, stem, ext) in [
            ("app.css", "app", ".css"),
            ("app.min.js", "app.min", ".js"),
            ("LICENSE", "LICENSE", ""),
            (".htaccess", ".htaccess", ""),
            ("..x.y", "..x", ".y"),
            ("a.", "a", "."),
            ("app.js.map", "app.js", ".map"),
            ("café.svg", "café", ".svg"),
        ] {
            assert_eq!(split_ext(input), (stem, ext), "{input}");
        }
    }

    #[test]
    fn hashed_paths() {
        let h = "3f2a9c1b7e4d5566";
        for (input, want) in [
            ("css/app.css", "css/app.3f2a9c1b7e4d.css"),
            ("app.js.map", "app.js.3f2a9c1b7e4d.map"),
            ("fonts/LICENSE", "fonts/LICENSE.3f2a9c1b7e4d"),
            ("a/b.c/d", "a/b.c/d.3f2a9c1b7e4d"),
            ("img/café.svg", "img/café.3f2a9c1b7e4d.svg"),
        ] {
            assert_eq!(hashed_path(input, h), want, "{input}");
        }
    }

    #[test]
    fn raw_segments() {
        let h = "0123456789abcdef";
        assert_eq!(
            hash_raw_segment("caf%C3%A9.svg", "café.svg", h).as_deref(),
            Some("caf%C3%A9.0123456789ab.svg")
        );
        assert_eq!(hash_raw_segment("a%2Ecss", "a.css", h), None);
        assert_eq!(
            hash_raw_segment("x.png", "x.png", h).as_deref(),
            Some("x.0123456789ab.png")
        );
    }
}
