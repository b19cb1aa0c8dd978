//! The URLs and the surrogate key under which an object of the store is served: what a purge of that
//! object must drop.

/// The URLs under which the object at `key` (relative, no leading `/`) is served, below `url_prefix`
/// (`/` or `/site/`): the key itself, and for `d/index.html` also `/d/`, and `/d` when `bare_dir` is
/// true (the page appeared or disappeared: `/d` changes between a redirect and a 404); with
/// `clean_urls` (`[serve] clean-urls`) also a page's extensionless URL, `/about` for `about.html` (see
/// [`clean_key`]).
pub fn key_urls(key: &str, url_prefix: &str, bare_dir: bool, clean_urls: bool) -> Vec<String> {
    let mut out = vec![format!("{url_prefix}{key}")];
    if clean_urls && let Some(clean) = clean_key(key) {
        out.push(format!("{url_prefix}{clean}"));
    }
    let dir = if key == "index.html" {
        Some("")
    } else {
        key.strip_suffix("/index.html")
    };
    if let Some(dir) = dir {
        if dir.is_empty() {
            out.push(url_prefix.to_string());
        } else {
            out.push(format!("{url_prefix}{dir}/"));
            if bare_dir {
                out.push(format!("{url_prefix}{dir}"));
            }
        }
    }
    out
}

/// The extensionless key a page is also served under with `[serve] clean-urls`: `about.html` →
/// `about`, `docs/a.html` → `docs/a`. `None` for index pages (they are served as `/d/`), for names that
/// keep a dot without `.html` (`a.min.html`: the server resolves only extensionless paths) and for
/// anything else.
pub fn clean_key(key: &str) -> Option<&str> {
    let stem = key.strip_suffix(".html")?;
    let name = stem.rsplit('/').next().unwrap_or(stem);
    (!name.is_empty() && name != "index" && !name.contains('.')).then_some(stem)
}

/// The surrogate key of the object at `key`: sent by `staleguard serve` (and stored as object metadata)
/// when tag headers are on, and purged by tag-mode providers. One key covers every URL of the object
/// (`/d/`, `/d/index.html`, query-string variants). Short, lower-case, no spaces or commas, so it fits
/// every CDN's tag syntax.
pub fn key_tag(key: &str) -> String {
    let h = blake3::hash(key.as_bytes());
    format!("sg-{}", &h.to_hex()[..16])
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn key_urls_of_index_pages() {
        assert_eq!(
            key_urls("d/index.html", "/", false, false),
            ["/d/index.html", "/d/"]
        );
        assert_eq!(
            key_urls("d/index.html", "/site/", true, false),
            ["/site/d/index.html", "/site/d/", "/site/d"]
        );
        assert_eq!(
            key_urls("index.html", "/", true, false),
            ["/index.html", "/"]
        );
        assert_eq!(key_urls("a.css", "/", true, false), ["/a.css"]);
    }

    #[test]
    fn key_urls_with_clean_urls() {
        assert_eq!(
            key_urls("about.html", "/", false, true),
            ["/about.html", "/about"]
        );
        assert_eq!(
            key_urls("docs/a.html", "/site/", true, true),
            ["/site/docs/a.html", "/site/docs/a"]
        );
        assert_eq!(key_urls("about.html", "/", false, false), ["/about.html"]);
        // Index pages are `/d/` already; other files and dotted names have no clean URL.
        assert_eq!(
            key_urls("d/index.html", "/", false, true),
            ["/d/index.html", "/d/"]
        );
        for key in [
            "index.html",
            "a.css",
            "a.min.html",
            ".html",
            "d/.html",
            "about.htm",
        ] {
            assert_eq!(clean_key(key), None, "{key}");
        }
        assert_eq!(clean_key("v1.2/notes.html"), Some("v1.2/notes"));
    }
}
