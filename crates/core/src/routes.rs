//! The route-policy table: which `Cache-Control` and extra headers a file is served with.
//!
//! One table drives the origin server's headers, and later the object metadata set on upload and the
//! generated CDN config, so it lives here, pure. Rules are tried in order and the first match wins; the
//! built-in defaults come after the configured rules, so every file matches something:
//! fingerprinted (immutable) files are cached for a year, everything else is revalidated.

use std::collections::BTreeMap;

use serde::{Deserialize, Serialize};

/// `Cache-Control` for fingerprinted files unless a rule says otherwise.
pub const IMMUTABLE: &str = "public, max-age=31536000, immutable";
/// `Cache-Control` for every other file unless a rule says otherwise.
pub const REVALIDATE: &str = "no-cache";
/// `Cache-Control` for error responses (404, 500): never stored, so an error is never cached for a year.
pub const ERROR: &str = "no-store";

/// One `[[routes]]` entry of the config.
#[derive(Debug, Clone, PartialEq, Eq, Deserialize, Serialize)]
#[serde(deny_unknown_fields, rename_all = "kebab-case")]
pub struct RouteRule {
    /// A glob over the output path (`**/*.html`, `fonts/**`), or `@fingerprinted` (files named by
    /// their content hash, or already hashed by a bundler), `@mutable` (all others), `@all`.
    #[serde(rename = "match", deserialize_with = "de_matcher")]
    pub pattern: String,
    /// The `Cache-Control` value; absent = the default for the file's kind.
    #[serde(default)]
    pub cache_control: Option<String>,
    /// Extra response headers (name → value); an empty value removes a header set by `[serve.headers]`.
    #[serde(default)]
    pub headers: BTreeMap<String, String>,
    /// Surrogate keys (cache tags) for the matching mutable files, sent in `[serve] tag-header` next to
    /// each file's own key, so `staleguard invalidate --tags NAME` drops them all.
    #[serde(default, deserialize_with = "de_tags")]
    pub tags: Vec<String>,
}

fn de_tags<'de, D: serde::Deserializer<'de>>(d: D) -> Result<Vec<String>, D::Error> {
    let v = Vec::<String>::deserialize(d)?;
    for t in &v {
        check_tag(t).map_err(serde::de::Error::custom)?;
    }
    Ok(v)
}

/// A tag every CDN accepts: 1 to 128 printable ASCII characters, no spaces, commas or quotes.
pub fn check_tag(t: &str) -> Result<(), String> {
    if t.is_empty()
        || t.len() > 128
        || !t
            .bytes()
            .all(|b| b.is_ascii_graphic() && !matches!(b, b',' | b'"' | b'\\'))
    {
        return Err(format!(
            "tag `{t}` must be 1-128 printable ASCII characters without spaces, commas or quotes"
        ));
    }
    Ok(())
}

fn de_matcher<'de, D: serde::Deserializer<'de>>(d: D) -> Result<String, D::Error> {
    let s = String::deserialize(d)?;
    if s.starts_with('@') {
        if !matches!(s.as_str(), "@fingerprinted" | "@mutable" | "@all") {
            return Err(serde::de::Error::custom(format!(
                "unknown route class `{s}`; use @fingerprinted, @mutable, @all or a glob"
            )));
        }
    } else {
        globset::GlobBuilder::new(&s)
            .literal_separator(true)
            .build()
            .map_err(|e| serde::de::Error::custom(format!("invalid glob `{s}`: {}", e.kind())))?;
    }
    for (what, bad) in [("a line break", '\n'), ("a carriage return", '\r')] {
        if s.contains(bad) {
            return Err(serde::de::Error::custom(format!(
                "route pattern must not contain {what}"
            )));
        }
    }
    Ok(s)
}

/// What the table decides for one file.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Policy {
    pub cache_control: String,
    /// Extra headers, sorted by name, empty values removed.
    pub headers: Vec<(String, String)>,
}

enum Matcher {
    Fingerprinted,
    Mutable,
    All,
    Glob(globset::GlobMatcher),
}

/// The compiled table.
pub struct RoutePolicy {
    rules: Vec<(Matcher, RouteRule)>,
    defaults: BTreeMap<String, String>,
    /// `[serve] tag-header`: the response header carrying surrogate keys; empty = none.
    tag_header: String,
}

impl RoutePolicy {
    /// Compiles configured rules and the default headers (`[serve.headers]`). Patterns were validated when
    /// the config was parsed; an invalid one here is reported as an error all the same.
    pub fn new(
        rules: &[RouteRule],
        default_headers: &BTreeMap<String, String>,
    ) -> Result<RoutePolicy, String> {
        let mut compiled = Vec::with_capacity(rules.len());
        for r in rules {
            let m = match r.pattern.as_str() {
                "@fingerprinted" => Matcher::Fingerprinted,
                "@mutable" => Matcher::Mutable,
                "@all" => Matcher::All,
                g => Matcher::Glob(
                    globset::GlobBuilder::new(g)
                        .literal_separator(true)
                        .build()
                        .map_err(|e| format!("invalid route glob `{g}`: {}", e.kind()))?
                        .compile_matcher(),
                ),
            };
            compiled.push((m, r.clone()));
        }
        Ok(RoutePolicy {
            rules: compiled,
            defaults: default_headers.clone(),
            tag_header: String::new(),
        })
    }

    /// Sends surrogate keys in this header (`xkey` for Varnish, `Surrogate-Key` for Fastly, `Cache-Tag`
    /// for Cloudflare) with every mutable file: the file's own key ([`crate::purge::key_tag`]) and the
    /// matching route's `tags`. Empty: no tags.
    pub fn with_tag_header(mut self, name: &str) -> RoutePolicy {
        self.tag_header = name.to_string();
        self
    }

    /// The policy for an output path (no leading `/`), given whether the file is fingerprinted.
    pub fn policy(&self, path: &str, fingerprinted: bool) -> Policy {
        let rule = self.rules.iter().find(|(m, _)| match m {
            Matcher::Fingerprinted => fingerprinted,
            Matcher::Mutable => !fingerprinted,
            Matcher::All => true,
            Matcher::Glob(g) => g.is_match(path),
        });
        let default_cc = if fingerprinted { IMMUTABLE } else { REVALIDATE };
        let cache_control = rule
            .and_then(|(_, r)| r.cache_control.clone())
            .unwrap_or_else(|| default_cc.to_string());
        let mut headers = self.defaults.clone();
        if let Some((_, r)) = rule {
            for (k, v) in &r.headers {
                headers.insert(k.clone(), v.clone());
            }
        }
        if !self.tag_header.is_empty() && !fingerprinted {
            // Cloudflare separates cache tags with commas; Varnish xkey and Fastly with spaces.
            let sep = if self.tag_header.eq_ignore_ascii_case("cache-tag") {
                ","
            } else {
                " "
            };
            let mut tags = vec![crate::purge::key_tag(path)];
            if let Some((_, r)) = rule {
                tags.extend(r.tags.iter().cloned());
            }
            headers.insert(self.tag_header.clone(), tags.join(sep));
        }
        Policy {
            cache_control,
            headers: headers.into_iter().filter(|(_, v)| !v.is_empty()).collect(),
        }
    }
}

/// The policy for one file as served or stored: the table's answer, plus
/// `Access-Control-Allow-Origin: *` on web fonts when `cors_fonts` is on and no rule set that header.
/// The server and the deploy's object metadata both use this, so a bucket and `staleguard serve` send
/// the same headers.
pub fn object_policy(
    table: &RoutePolicy,
    path: &str,
    fingerprinted: bool,
    cors_fonts: bool,
) -> Policy {
    let mut p = table.policy(path, fingerprinted);
    if cors_fonts
        && crate::mime::is_font(path)
        && !p
            .headers
            .iter()
            .any(|(k, _)| k.eq_ignore_ascii_case("access-control-allow-origin"))
    {
        p.headers
            .push(("Access-Control-Allow-Origin".to_string(), "*".to_string()));
        p.headers.sort();
    }
    p
}

#[cfg(test)]
mod tests {
    use super::*;

    fn rule(pattern: &str, cc: Option<&str>, headers: &[(&str, &str)]) -> RouteRule {
        RouteRule {
            tags: Vec::new(),
            pattern: pattern.into(),
            cache_control: cc.map(String::from),
            headers: headers
                .iter()
                .map(|(k, v)| (k.to_string(), v.to_string()))
                .collect(),
        }
    }

    #[test]
    fn defaults_without_rules() {
        let p = RoutePolicy::new(&[], &BTreeMap::new()).unwrap();
        assert_eq!(
            p.policy("css/a.0123456789ab.css", true).cache_control,
            IMMUTABLE
        );
        assert_eq!(p.policy("index.html", false).cache_control, REVALIDATE);
    }

    #[test]
    fn first_match_wins_and_headers_merge() {
        let defaults: BTreeMap<String, String> =
            [("X-Content-Type-Options".to_string(), "nosniff".to_string())]
                .into_iter()
                .collect();
        let p = RoutePolicy::new(
            &[
                rule(
                    "**/*.html",
                    Some("public, max-age=0, s-maxage=300"),
                    &[("X-Frame-Options", "DENY")],
                ),
                rule(
                    "api/**",
                    Some("no-store"),
                    &[("X-Content-Type-Options", "")],
                ),
                rule(
                    "@fingerprinted",
                    None,
                    &[("Access-Control-Allow-Origin", "*")],
                ),
                rule("**/*.css", Some("never-reached-for-hashed"), &[]),
            ],
            &defaults,
        )
        .unwrap();
        for (path, fp, cc, headers) in [
            (
                "docs/a.html",
                false,
                "public, max-age=0, s-maxage=300",
                vec![
                    ("X-Content-Type-Options", "nosniff"),
                    ("X-Frame-Options", "DENY"),
                ],
            ),
            ("api/v.json", false, "no-store", vec![]),
            (
                "a.0123456789ab.css",
                true,
                IMMUTABLE,
                vec![
                    ("Access-Control-Allow-Origin", "*"),
                    ("X-Content-Type-Options", "nosniff"),
                ],
            ),
            (
                "a.css",
                false,
                "never-reached-for-hashed",
                vec![("X-Content-Type-Options", "nosniff")],
            ),
            (
                "robots.txt",
                false,
                REVALIDATE,
                vec![("X-Content-Type-Options", "nosniff")],
            ),
        ] {
            let got = p.policy(path, fp);
            assert_eq!(got.cache_control, cc, "{path}");
            let want: Vec<(String, String)> = headers
                .iter()
                .map(|(k, v)| (k.to_string(), v.to_string()))
                .collect();
            assert_eq!(got.headers, want, "{path}");
        }
    }

    #[test]
    fn bad_patterns_are_rejected_when_parsing() {
        #[derive(Deserialize, Debug)]
        #[allow(dead_code)]
        struct T {
            routes: Vec<RouteRule>,
        }
        for (text, needle) in [
            ("[[routes]]\nmatch = '@hashed'\n", "unknown route class"),
            ("[[routes]]\nmatch = 'a/['\n", "invalid glob"),
            ("[[routes]]\nmatch = '*'\ncache = 'x'\n", "unknown field"),
        ] {
            let e = toml::from_str::<T>(text).unwrap_err().to_string();
            assert!(e.contains(needle) && e.contains("line"), "{e}");
        }
    }

    #[test]
    fn tag_header_carries_the_file_key_and_route_tags() {
        let mut blog = rule("blog/**", Some("public, s-maxage=60"), &[]);
        blog.tags = vec!["blog".into(), "author:ann".into()];
        let check = |header: &str, path: &str, fingerprinted: bool, want: Option<String>| {
            let p = RoutePolicy::new(std::slice::from_ref(&blog), &BTreeMap::new())
                .unwrap()
                .with_tag_header(header);
            let got = p
                .policy(path, fingerprinted)
                .headers
                .into_iter()
                .find(|(k, _)| k == header)
                .map(|(_, v)| v);
            assert_eq!(got, want, "{header} {path}");
        };
        let k = crate::purge::key_tag("blog/a.html");
        check(
            "xkey",
            "blog/a.html",
            false,
            Some(format!("{k} blog author:ann")),
        );
        check(
            "Cache-Tag",
            "blog/a.html",
            false,
            Some(format!("{k},blog,author:ann")),
        );
        check(
            "xkey",
            "about.html",
            false,
            Some(crate::purge::key_tag("about.html")),
        );
        // Fingerprinted files never need a purge: no tags.
        check("xkey", "blog/app.0123456789ab.css", true, None);
        check("", "blog/a.html", false, None);
        // Tags are validated when parsed.
        let e = toml::from_str::<RouteRule>("match = \"a/**\"\ntags = [\"a b\"]")
            .unwrap_err()
            .to_string();
        assert!(e.contains("tag `a b`"), "{e}");
    }
}
