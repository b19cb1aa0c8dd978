//! URL paths handed in to purge (the command line's `--paths` and `--prefix`, and next the service's
//! events): checked once here, so every front end refuses the same inputs with the same reasons.

use staleguard_core::purge::Item;

use crate::Error;

/// The longest URL path accepted (CloudFront's limit for an invalidation path).
pub const MAX_URL_PATH: usize = 4000;

/// A URL path to purge: starts with `/`, no `..` segment (also percent-encoded, `%2e%2e`), no encoded
/// `/` or `\`, no spaces or control characters, at most [`MAX_URL_PATH`] bytes. `what` names the input
/// in the message (`--paths`).
pub fn check_url_path(what: &str, p: &str) -> Result<(), Error> {
    let shown = staleguard_core::text::cut(p, 81);
    let refuse = |why: String| Err(Error::Path(format!("{what} `{shown}`: {why}")));
    if p.len() > MAX_URL_PATH {
        return refuse(format!(
            "a URL path of {} bytes is longer than {MAX_URL_PATH}",
            p.len()
        ));
    }
    if !p.starts_with('/') {
        return refuse("a URL path must start with `/`".into());
    }
    let dot_dot = p.split('/').any(|seg| {
        let decoded = percent_encoding::percent_decode_str(seg).decode_utf8_lossy();
        decoded == ".." || decoded.contains('/') || decoded.contains('\\')
    });
    if dot_dot {
        return refuse(
            "`..` (or an encoded `/`, `\\` or `..`: `%2e%2e`, `%2f`) is not allowed in a URL path"
                .into(),
        );
    }
    if p.chars().any(|c| c.is_control() || c == ' ') {
        return refuse("spaces and control characters must be percent-encoded (`%20`)".into());
    }
    Ok(())
}

/// Splits `--paths`: `/a.html` is a path, `/docs/*` a prefix item; a `*` anywhere else is refused.
pub fn parse_paths(raw: &[String]) -> Result<(Vec<String>, Vec<Item>), Error> {
    let mut paths = Vec::new();
    let mut items = Vec::new();
    for p in raw {
        check_url_path("--paths", p)?;
        match p.find('*') {
            None => paths.push(p.clone()),
            Some(i) if i == p.len() - 1 => items.push(Item::prefix(&p[..i])),
            Some(_) => {
                return Err(Error::Path(format!(
                    "--paths `{p}`: `*` may only come last (`/docs/*`)"
                )));
            }
        }
    }
    Ok((paths, items))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn url_paths_are_checked_before_anything_is_sent() {
        let cases: &[(&str, Option<&str>)] = &[
            ("/a.html", None),
            ("/docs/%20x", None),
            ("a.html", Some("must start with `/`")),
            ("/a/../b", Some("`..`")),
            ("/a/%2e%2e/b", Some("`..`")),
            ("/a%2fb", Some("`..`")),
            ("/a b", Some("percent-encoded")),
            ("/a\u{7}", Some("percent-encoded")),
        ];
        for (p, want) in cases {
            let got = check_url_path("--paths", p);
            match want {
                None => assert!(got.is_ok(), "{p}: {got:?}"),
                Some(w) => {
                    let e = got.expect_err(p).to_string();
                    assert!(e.contains(w) && e.starts_with("--paths `"), "{p}: {e}");
                }
            }
        }
        let long = format!("/{}", "a".repeat(MAX_URL_PATH));
        let e = check_url_path("--prefix", &long).unwrap_err().to_string();
        assert!(e.contains("longer than 4000") && e.contains('…'), "{e}");
    }

    #[test]
    fn a_trailing_star_makes_a_prefix_and_any_other_star_is_refused() {
        let (paths, items) = parse_paths(&["/a.html".into(), "/docs/*".into()]).unwrap();
        assert_eq!(paths, vec!["/a.html".to_string()]);
        assert_eq!(items, vec![Item::prefix("/docs/")]);
        let e = parse_paths(&["/d*cs/".into()]).unwrap_err().to_string();
        assert!(e.contains("may only come last"), "{e}");
    }
}
