//! Resolving a reference found in a source file (`../img/a.png?v=2#x`) to a logical path in the build.
//!
//! Logical paths are `/`-separated, relative to the source root, percent-decoded and normalised (no `.`,
//! `..` or empty segments). A reference keeps its query and fragment; only its last path segment is
//! rewritten, so relative references stay relative and `%`-encoding is preserved.

use std::borrow::Cow;
use std::ops::Range;

/// A path with a segment starting with `.` (other than `.well-known`): `.git/`, `.env`, staleguard's own
/// `.staleguard/`. Neither served (unless the build's manifest lists it) nor deployed.
pub fn is_hidden(rel: &str) -> bool {
    rel.split('/')
        .any(|seg| seg.starts_with('.') && seg != ".well-known")
}

/// What a reference points at.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Resolution {
    /// Not a file of this build: `data:`, `http:`/any scheme, `//host`, a bare `#fragment`, or empty.
    External,
    /// A path that leaves the source root (`../../x`) or an absolute path outside the URL prefix.
    Outside,
    /// A file or folder inside the build.
    Local(LocalRef),
}

/// A reference to a path inside the build.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct LocalRef {
    /// Normalised, decoded logical path. Ends with `/` when the reference names a folder.
    pub path: String,
    /// Byte range, inside the reference text, of the last path segment as written (the part to rewrite).
    pub segment: Range<usize>,
}

/// Returns true when `url` starts with a URL scheme (`data:`, `https:`, `mailto:` …).
fn has_scheme(url: &str) -> bool {
    let b = url.as_bytes();
    if b.is_empty() || !b[0].is_ascii_alphabetic() {
        return false;
    }
    for &c in &b[1..] {
        match c {
            b':' => return true,
            c if c.is_ascii_alphanumeric() || c == b'+' || c == b'-' || c == b'.' => {}
            _ => return false,
        }
    }
    false
}

/// Resolves `url` (already unescaped from its host syntax: CSS, HTML or JS) found in a file whose logical
/// folder is `from_dir` (`""` for the root, else ending with `/`). `prefix` is the normalised URL prefix
/// (starts and ends with `/`) that absolute paths must start with.
pub fn resolve(url: &str, from_dir: &str, prefix: &str) -> Resolution {
    if url.is_empty() || url.starts_with('#') || url.starts_with("//") || has_scheme(url) {
        return Resolution::External;
    }
    // Backslashes are path separators to browsers; a reference with one is not ours to rewrite safely.
    if url.contains('\\') {
        return Resolution::Outside;
    }
    let path_end = url.find(['?', '#']).unwrap_or(url.len());
    let raw_path = &url[..path_end];
    if raw_path.is_empty() {
        return Resolution::External;
    }
    let seg_start = raw_path.rfind('/').map_or(0, |i| i + 1);
    let segment = seg_start..path_end;

    let relative: Cow<'_, str> = if let Some(abs) = raw_path.strip_prefix('/') {
        let pre = &prefix[1..];
        match abs.strip_prefix(pre) {
            Some(rest) => Cow::Borrowed(rest),
            None => return Resolution::Outside,
        }
    } else {
        Cow::Owned(format!("{from_dir}{raw_path}"))
    };
    let decoded = match percent_encoding::percent_decode_str(&relative).decode_utf8() {
        Ok(d) => d,
        Err(_) => return Resolution::Outside,
    };
    if decoded.contains('\0') {
        return Resolution::Outside;
    }
    let is_dir = decoded.ends_with('/')
        || raw_path.ends_with("/.")
        || raw_path.ends_with("/..")
        || raw_path == "."
        || raw_path == "..";
    let mut parts: Vec<&str> = Vec::new();
    for seg in decoded.split('/') {
        match seg {
            "" | "." => {}
            ".." => {
                if parts.pop().is_none() {
                    return Resolution::Outside;
                }
            }
            s => parts.push(s),
        }
    }
    let mut path = parts.join("/");
    if is_dir && !path.is_empty() {
        path.push('/');
    }
    if path.is_empty() && !is_dir {
        return Resolution::Outside;
    }
    Resolution::Local(LocalRef { path, segment })
}

/// The logical folder of a logical file path: `css/a.css` → `css/`, `a.css` → ``.
pub fn parent_dir(logical: &str) -> &str {
    match logical.rfind('/') {
        Some(i) => &logical[..=i],
        None => "",
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn local(path: &str, seg: Range<usize>) -> Resolution {
        Resolution::Local(LocalRef {
            path: path.into(),
            segment: seg,
        })
    }

    #[test]
    fn table() {
        use Resolution::*;
        for (url, from, prefix, want) in [
            ("a.png", "css/", "/", local("css/a.png", 0..5)),
            ("../img/a.png", "css/", "/", local("img/a.png", 7..12)),
            ("../img/a.png?v=2#x", "css/", "/", local("img/a.png", 7..12)),
            (
                "../fonts/f.eot?#iefix",
                "css/",
                "/",
                local("fonts/f.eot", 9..14),
            ),
            ("./x.js", "js/", "/", local("js/x.js", 2..6)),
            ("/css/a.css", "deep/er/", "/", local("css/a.css", 5..10)),
            (
                "/static/css/a.css",
                "",
                "/static/",
                local("css/a.css", 12..17),
            ),
            ("/other/a.css", "", "/static/", Outside),
            ("../../a.png", "css/", "/", Outside),
            ("caf%C3%A9.svg", "img/", "/", local("img/café.svg", 0..13)),
            ("%ff.png", "", "/", Outside),
            ("data:image/png;base64,AAA", "", "/", External),
            ("https://x.com/a.png", "", "/", External),
            ("HTTP://x.com/a.png", "", "/", External),
            ("mailto:a@b.c", "", "/", External),
            ("//cdn.x.com/a.png", "", "/", External),
            ("#frag", "", "/", External),
            ("", "", "/", External),
            ("?q=1", "", "/", External),
            ("about/", "", "/", local("about/", 6..6)),
            ("a//b.png", "", "/", local("a/b.png", 3..8)),
            ("a\\b.png", "", "/", Outside),
            ("a%00.png", "", "/", Outside),
            (".", "docs/", "/", local("docs/", 0..1)),
            ("..", "", "/", Outside),
        ] {
            assert_eq!(resolve(url, from, prefix), want, "{url} from {from:?}");
        }
    }

    #[test]
    fn parents() {
        assert_eq!(parent_dir("a/b/c.css"), "a/b/");
        assert_eq!(parent_dir("c.css"), "");
    }
}
