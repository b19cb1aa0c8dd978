//! `staleguard cdn-config` (issue 18): the CDN's configuration from the same route table that drives
//! the origin's headers and the objects' metadata, so the two cannot drift.
//!
//! [`Plan::new`] reads the route table (`[[routes]]` and the built-in defaults), `[serve]` and the
//! build's manifest into what every target needs: the ordered rules (which URLs, what edge lifetime,
//! grace, whether stored at all), the URLs of fingerprinted files (the staleguard name form, bundler
//! folders from the manifest, and the mutable paths that look fingerprinted but are not), the headers,
//! the tag header and the purge ACL. Each target renders the plan: [`varnish`] a VCL; [`terraform`]
//! renders the [`cloudfront`] bundle again, as HCL.

pub mod check;
pub mod cloudflare;
pub mod cloudfront;
pub mod glob;
pub mod nginx;
pub mod terraform;
pub mod varnish;

use std::collections::{BTreeMap, BTreeSet};

use staleguard_core::config::ServeConfig;
use staleguard_core::manifest::Manifest;
use staleguard_core::routes::{IMMUTABLE, REVALIDATE, RouteRule};
use staleguard_edge::policy::Directives;

/// Where the CDN fetches from.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Origin {
    pub host: String,
    pub port: u16,
}

impl Origin {
    /// `http://HOST:PORT` (a path is refused: the origin serves the site at its root).
    pub fn parse(url: &str) -> Result<Origin, String> {
        let rest = url
            .trim_end_matches('/')
            .strip_prefix("http://")
            .ok_or_else(|| format!("origin `{url}` must be an http:// URL (http://HOST:PORT)"))?;
        if rest.contains('/') {
            return Err(format!(
                "origin `{url}` must be http://HOST:PORT, without a path"
            ));
        }
        let (host, port) = match rest.rsplit_once(':') {
            Some((h, p)) if !h.ends_with(']') || h.starts_with('[') => (
                h,
                p.parse::<u16>()
                    .map_err(|_| format!("origin `{url}`: `{p}` is not a port"))?,
            ),
            _ => (rest, 80),
        };
        if host.is_empty() {
            return Err(format!("origin `{url}` has no host"));
        }
        Ok(Origin {
            host: host
                .trim_start_matches('[')
                .trim_end_matches(']')
                .to_string(),
            port,
        })
    }
}

/// What a CDN does with the responses a rule selects.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Edge {
    /// Never stored (`no-store`, `private`).
    Pass,
    /// Stored for revalidation only: every request asks the origin (`no-cache`, or a lifetime of 0).
    Revalidate,
    /// Fresh for `ttl` seconds, then served stale for `grace` seconds while refreshed
    /// (`stale-while-revalidate`).
    Cache { ttl: u64, grace: u64 },
}

impl Edge {
    /// The edge behaviour a `Cache-Control` value asks of a shared cache.
    pub fn of(cache_control: &str) -> Edge {
        let d = Directives::parse([cache_control]);
        if d.no_store || d.private {
            return Edge::Pass;
        }
        match d.lifetime(None, None) {
            Some(ttl) if ttl > 0 && !d.no_cache => Edge::Cache {
                ttl,
                grace: if d.forbids_stale() {
                    0
                } else {
                    d.stale_while_revalidate.unwrap_or(0)
                },
            },
            _ => Edge::Revalidate,
        }
    }
}

/// Which URLs a rule selects.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Select {
    /// A route glob, as a regex over the URL path ([`glob::to_regex`]).
    Path {
        glob: String,
        regex: String,
    },
    Fingerprinted,
    Mutable,
    All,
}

/// One rule of the table, in order (first match wins), with the built-in defaults last.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Rule {
    pub select: Select,
    /// `Cache-Control` for fingerprinted and for other files it selects (a rule without its own
    /// value gives each kind its default).
    pub fingerprinted: (String, Edge),
    pub mutable: (String, Edge),
    /// The rule's own headers (an empty value removes a `[serve.headers]` one).
    pub headers: BTreeMap<String, String>,
}

/// Everything a target renders.
#[derive(Debug, Clone)]
pub struct Plan {
    pub origin: Origin,
    pub rules: Vec<Rule>,
    /// A regex over the URL path matching fingerprinted files: staleguard's `name.<12 hex>.ext`, and
    /// the bundler folders whose every file is prehashed.
    pub fingerprinted: String,
    /// Mutable paths the pattern would take for fingerprinted (`/archive.202612031200.html`), kept
    /// out explicitly: a page must never be cached a year.
    pub not_fingerprinted: Vec<String>,
    /// The same URLs as path globs for CDNs that match with `*` and `?` only (CloudFront): the
    /// bundler folders (`/assets/*`) and, per extension of a staleguard-named file, `*.<12 ?>.ext`.
    pub fingerprint_globs: Vec<String>,
    /// Headers every response carries (`[serve.headers]` with the defaults).
    pub headers: BTreeMap<String, String>,
    /// `[serve] tag-header` (surrogate keys), empty for none.
    pub tag_header: String,
    /// Addresses allowed to purge (IP or CIDR).
    pub purgers: Vec<String>,
    /// `[serve]` options the targets mirror.
    pub not_found_page: String,
    pub clean_urls: bool,
}

impl Plan {
    /// A regex matching exactly the mutable look-alikes ([`Plan::not_fingerprinted`]), if any.
    pub fn not_fingerprinted_regex(&self) -> Option<String> {
        if self.not_fingerprinted.is_empty() {
            return None;
        }
        let list: Vec<String> = self
            .not_fingerprinted
            .iter()
            .map(|u| glob::literal(u))
            .collect();
        Some(format!("^(?:{})$", list.join("|")))
    }
}

/// staleguard's fingerprinted name form at the end of a URL path.
pub const FINGERPRINT_REGEX: &str = r"\.[0-9a-f]{12}(\.[A-Za-z0-9]+)?$";

impl Plan {
    /// The plan for a route table, `[serve]` and a build's manifest.
    pub fn new(
        routes: &[RouteRule],
        serve: &ServeConfig,
        manifest: &Manifest,
        origin: Origin,
        purgers: Vec<String>,
    ) -> Plan {
        let mut rules: Vec<Rule> = routes
            .iter()
            .map(|r| {
                let cc = |default: &str| {
                    let v = r.cache_control.clone().unwrap_or_else(|| default.into());
                    let e = Edge::of(&v);
                    (v, e)
                };
                Rule {
                    select: match r.pattern.as_str() {
                        "@fingerprinted" => Select::Fingerprinted,
                        "@mutable" => Select::Mutable,
                        "@all" => Select::All,
                        g => Select::Path {
                            glob: g.to_string(),
                            regex: glob::to_regex(g),
                        },
                    },
                    fingerprinted: cc(IMMUTABLE),
                    mutable: cc(REVALIDATE),
                    headers: r.headers.clone(),
                }
            })
            .collect();
        rules.push(Rule {
            select: Select::All,
            fingerprinted: (IMMUTABLE.into(), Edge::of(IMMUTABLE)),
            mutable: (REVALIDATE.into(), Edge::of(REVALIDATE)),
            headers: BTreeMap::new(),
        });

        // Fingerprinted URLs: the name form, plus bundler folders where every file is prehashed.
        let prefix = manifest.url_prefix.trim_matches('/');
        let url = |p: &str| {
            if prefix.is_empty() {
                format!("/{p}")
            } else {
                format!("/{prefix}/{p}")
            }
        };
        let folder = |p: &str| p.rfind('/').map(|i| p[..=i].to_string());
        let mut prehashed: BTreeSet<String> = BTreeSet::new();
        let mut has_mutable: BTreeSet<String> = BTreeSet::new();
        for (out, logical, e) in manifest.output_paths() {
            // The served names only (sidecars are not URLs): the entry's own path, and the original
            // copy of a fingerprinted file (mutable content under its logical name).
            let original_copy = out == logical && e.path != logical;
            if out != e.path && !original_copy {
                continue;
            }
            let Some(dir) = folder(&out) else { continue };
            if e.mutable || original_copy {
                has_mutable.insert(dir);
            } else if e.prehashed {
                prehashed.insert(dir);
            }
        }
        let mut alternatives = vec![FINGERPRINT_REGEX.to_string()];
        let mut fingerprint_globs: Vec<String> = Vec::new();
        for d in prehashed.difference(&has_mutable) {
            alternatives.push(format!("^{}", glob::literal(&url(d))));
            fingerprint_globs.push(format!("{}*", url(d)));
        }
        let name_form = regex::Regex::new(FINGERPRINT_REGEX).expect("a valid regex");
        let mut extensions: BTreeSet<String> = BTreeSet::new();
        for (out, _, e) in manifest.output_paths() {
            if out == e.path && !e.mutable && !e.prehashed && name_form.is_match(&out) {
                let name = out.rsplit('/').next().unwrap_or(&out);
                // `name.<hash>.ext` or `name.<hash>`.
                let parts: Vec<&str> = name.rsplitn(3, '.').collect();
                let ext = if parts.first().is_some_and(|p| p.len() == 12 && is_hex(p)) {
                    String::new()
                } else {
                    parts.first().map(|p| format!(".{p}")).unwrap_or_default()
                };
                extensions.insert(ext);
            }
        }
        for ext in &extensions {
            fingerprint_globs.push(format!("*.????????????{ext}"));
        }
        let fingerprinted = if alternatives.len() == 1 {
            alternatives.remove(0)
        } else {
            format!("(?:{})", alternatives.join("|"))
        };
        let re = regex::Regex::new(&fingerprinted).expect("the plan's own regex");
        let mut not_fingerprinted: Vec<String> = manifest
            .output_paths()
            .filter(|(out, logical, e)| {
                (e.mutable && *out == e.path) || (*out == *logical && e.path != *logical)
            })
            .map(|(out, _, _)| url(&out))
            .filter(|u| re.is_match(u))
            .collect();
        not_fingerprinted.sort();
        not_fingerprinted.dedup();
        Plan {
            origin,
            rules,
            fingerprinted,
            not_fingerprinted,
            fingerprint_globs,
            headers: serve.effective_headers(),
            tag_header: serve.tag_header.clone(),
            purgers,
            not_found_page: serve.not_found_page.clone(),
            clean_urls: serve.clean_urls,
        }
    }
}

fn is_hex(s: &str) -> bool {
    s.bytes()
        .all(|b| b.is_ascii_digit() || (b'a'..=b'f').contains(&b))
}

/// A manifest entry for the tests of every target (hash and size do not matter to a plan).
#[cfg(test)]
pub(crate) fn test_entry(
    path: &str,
    mutable: bool,
    prehashed: bool,
    original: bool,
) -> staleguard_core::manifest::ManifestEntry {
    staleguard_core::manifest::ManifestEntry {
        path: path.into(),
        hash: "0".repeat(64),
        size: 1,
        mutable,
        prehashed,
        original,
        encodings: std::collections::BTreeMap::new(),
    }
}

#[cfg(test)]
mod tests {
    use std::collections::BTreeMap;

    use staleguard_core::manifest::{Manifest, ManifestEntry};

    use super::*;

    use crate::test_entry as entry;

    #[test]
    fn edge_behaviour_follows_cache_control_for_a_shared_cache() {
        for (cc, want) in [
            (
                "public, max-age=31536000, immutable",
                Edge::Cache {
                    ttl: 31536000,
                    grace: 0,
                },
            ),
            (
                "public, max-age=0, s-maxage=300",
                Edge::Cache { ttl: 300, grace: 0 },
            ),
            (
                "max-age=60, stale-while-revalidate=30",
                Edge::Cache { ttl: 60, grace: 30 },
            ),
            // s-maxage forbids serving stale: no grace even with SWR.
            (
                "s-maxage=60, stale-while-revalidate=30",
                Edge::Cache { ttl: 60, grace: 0 },
            ),
            ("no-cache", Edge::Revalidate),
            ("max-age=0", Edge::Revalidate),
            ("public", Edge::Revalidate),
            ("no-store", Edge::Pass),
            ("private, max-age=600", Edge::Pass),
        ] {
            assert_eq!(Edge::of(cc), want, "{cc}");
        }
    }

    #[test]
    fn fingerprinted_urls_are_the_name_form_bundler_folders_and_never_a_page() {
        let files: BTreeMap<String, ManifestEntry> = [
            (
                "css/site.css",
                entry("css/site.0123456789ab.css", false, false, true),
            ),
            // A bundler folder where every file is prehashed.
            (
                "assets/app-BdtEMBbM.js",
                entry("assets/app-BdtEMBbM.js", false, true, false),
            ),
            // A prehashed file beside a mutable one: the folder is not fingerprinted.
            (
                "lib/x-AbCdEf12.js",
                entry("lib/x-AbCdEf12.js", false, true, false),
            ),
            (
                "lib/readme.txt",
                entry("lib/readme.txt", true, false, false),
            ),
            // A mutable page that looks fingerprinted.
            (
                "archive.202612031200.html",
                entry("archive.202612031200.html", true, false, false),
            ),
            ("index.html", entry("index.html", true, false, false)),
        ]
        .into_iter()
        .map(|(k, v)| (k.to_string(), v))
        .collect();
        let m = Manifest::new("/".into(), files);
        let plan = Plan::new(
            &[],
            &ServeConfig::default(),
            &m,
            Origin::parse("http://127.0.0.1:8080").unwrap(),
            vec!["127.0.0.1".into()],
        );
        let fp = regex::Regex::new(&plan.fingerprinted).unwrap();
        let is_fp = |u: &str| fp.is_match(u) && !plan.not_fingerprinted.iter().any(|n| n == u);
        assert!(is_fp("/css/site.0123456789ab.css"));
        assert!(is_fp("/assets/app-BdtEMBbM.js"));
        assert!(!is_fp("/lib/x-AbCdEf12.js"), "folder with a mutable file");
        assert!(!is_fp("/css/site.css"), "the original copy is mutable");
        assert!(
            !is_fp("/archive.202612031200.html"),
            "{:?}",
            plan.not_fingerprinted
        );
        assert!(!is_fp("/index.html"));
        assert_eq!(plan.not_fingerprinted, ["/archive.202612031200.html"]);
        assert_eq!(plan.fingerprint_globs, ["/assets/*", "*.????????????.css"]);
        // The defaults close the table.
        assert_eq!(plan.rules.len(), 1);
        assert_eq!(plan.rules[0].select, Select::All);
    }

    #[test]
    fn origins_parse_with_hints() {
        assert_eq!(
            Origin::parse("http://10.0.0.5:8080/").unwrap(),
            Origin {
                host: "10.0.0.5".into(),
                port: 8080
            }
        );
        assert_eq!(Origin::parse("http://origin.internal").unwrap().port, 80);
        assert_eq!(Origin::parse("http://[::1]:81").unwrap().host, "::1");
        for bad in ["https://x", "http://x/app", "http://x:port", "http://"] {
            assert!(Origin::parse(bad).is_err(), "{bad}");
        }
    }
}
