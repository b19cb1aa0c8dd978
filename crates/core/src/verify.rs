//! What to check after a deploy: the URLs whose content must now be served fresh, each with the hash
//! the deployed object has. Pure: records in, checks out; `staleguard-cdn`'s `verify` fetches them.
//!
//! - every changed mutable key (not the dropped ones) under each of its URLs (`d/index.html` also as
//!   `/d/`), expecting the blake3 of its identity bytes from the deploy record;
//! - download aliases (`tool-latest.tar.gz`) expecting the sha256 that `metadata.json` lists for their
//!   target, so a CDN that serves an old `-latest` fails on the checksum users compare against;
//! - at most `max` checks: aliases and index pages first, then a sample that is deterministic for a
//!   deploy (ordered by a hash of the deploy id and the URL), so a rerun checks the same URLs.

use std::collections::BTreeMap;

use serde::{Deserialize, Serialize};

use crate::changes::{ChangeKind, Changes};
use crate::deploy::ObjectRecord;
use crate::purge::key_urls;

/// The digest a served body must have.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Digest {
    Blake3(String),
    Sha256(String),
}

/// One URL to fetch through the CDN.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Check {
    /// URL path (with the CDN's prefix), as stored (not percent-encoded).
    pub url: String,
    /// The store key it serves.
    pub key: String,
    pub digest: Digest,
}

/// The checks for a deploy, and how many changed URLs were left out by the cap.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct Plan {
    pub checks: Vec<Check>,
    /// Changed URLs not checked because of `max`.
    pub skipped: usize,
}

/// Builds the checks. `alias_sha256`: alias key → the sha256 `metadata.json` lists for its target.
/// `clean_urls` (`[serve] clean-urls`): a page is also checked under its extensionless URL (`/about`
/// for `about.html`), unless a key of that name or a folder index (`about/index.html`) takes it.
pub fn plan(
    changes: &Changes,
    objects: &BTreeMap<String, ObjectRecord>,
    alias_sha256: &BTreeMap<String, String>,
    url_prefix: &str,
    clean_urls: bool,
    max: usize,
    seed: &str,
) -> Plan {
    let mut first = Vec::new();
    let mut rest = Vec::new();
    for c in &changes.changed {
        if c.kind == ChangeKind::Dropped {
            continue;
        }
        let Some(o) = objects.get(&c.key) else {
            continue;
        };
        let (digest, priority) = match alias_sha256.get(&c.key) {
            Some(sha) => (Digest::Sha256(sha.clone()), true),
            None => (
                Digest::Blake3(o.hash.clone()),
                c.key == "index.html" || c.key.ends_with("/index.html"),
            ),
        };
        // The server answers the extensionless URL from the page only when nothing else claims it.
        let clean = clean_urls
            && crate::purge::clean_key(&c.key).is_some_and(|k| {
                !objects.contains_key(k) && !objects.contains_key(&format!("{k}/index.html"))
            });
        for url in key_urls(&c.key, url_prefix, false, clean) {
            let check = Check {
                url,
                key: c.key.clone(),
                digest: digest.clone(),
            };
            if priority {
                first.push(check);
            } else {
                rest.push(check);
            }
        }
    }
    let total = first.len() + rest.len();
    if total > max {
        // Deterministic sample of the rest: by a hash of the seed and the URL.
        rest.sort_by_cached_key(|c| {
            let mut h = blake3::Hasher::new();
            h.update(seed.as_bytes());
            h.update(c.url.as_bytes());
            *h.finalize().as_bytes()
        });
        first.truncate(max);
        rest.truncate(max - first.len());
    }
    let mut checks = first;
    checks.extend(rest);
    checks.sort_by(|a, b| a.url.cmp(&b.url));
    let skipped = total - checks.len();
    Plan { checks, skipped }
}

/// The `metadata.json` a deploy writes (`[deploy] metadata`): size and digests of every alias target
/// and `artifacts` match, and the aliases. Fields in alphabetical order: that is the file's byte order.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct DownloadMetadata {
    /// Alias key → the key it copies.
    #[serde(default)]
    pub aliases: BTreeMap<String, String>,
    #[serde(default)]
    pub artifacts: BTreeMap<String, Artifact>,
    pub format: u32,
}

/// One artifact of [`DownloadMetadata`].
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Artifact {
    pub blake3: String,
    pub sha256: String,
    pub size: u64,
}

/// Alias key → sha256 of its target (aliases whose target is not listed are left out: they are then
/// checked by blake3 like any mutable object).
pub fn alias_sha256(metadata: &DownloadMetadata) -> BTreeMap<String, String> {
    metadata
        .aliases
        .iter()
        .filter_map(|(alias, target)| {
            let a = metadata.artifacts.get(target)?;
            Some((alias.clone(), a.sha256.clone()))
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::changes::Change;
    use crate::deploy::Rank;

    fn obj(hash: &str) -> ObjectRecord {
        ObjectRecord {
            hash: hash.into(),
            size: 1,
            mutable: true,
            headers: BTreeMap::new(),
            rank: Rank::Mutable,
            etag: None,
        }
    }

    fn change(key: &str, kind: ChangeKind) -> Change {
        Change {
            key: key.into(),
            kind,
        }
    }

    #[test]
    fn changed_keys_with_index_variants_aliases_by_sha256_dropped_skipped() {
        let objects: BTreeMap<String, ObjectRecord> = [
            ("index.html", "h1"),
            ("docs/index.html", "h2"),
            ("a.html", "h3"),
            ("dl/tool-latest.tgz", "h4"),
        ]
        .into_iter()
        .map(|(k, h)| (k.to_string(), obj(h)))
        .collect();
        let changes = Changes {
            changed: vec![
                change("a.html", ChangeKind::Content),
                change("dl/tool-latest.tgz", ChangeKind::Content),
                change("docs/index.html", ChangeKind::New),
                change("gone.html", ChangeKind::Dropped),
                change("index.html", ChangeKind::Headers),
            ],
            live: vec![],
        };
        let meta: DownloadMetadata = serde_json::from_value(serde_json::json!({
            "format": 1,
            "artifacts": {"dl/tool-1.2.tgz": {"size": 1, "sha256": "s256", "blake3": "h4"}},
            "aliases": {"dl/tool-latest.tgz": "dl/tool-1.2.tgz"}
        }))
        .unwrap();
        let p = plan(
            &changes,
            &objects,
            &alias_sha256(&meta),
            "/",
            false,
            100,
            "d1",
        );
        let got: Vec<(&str, &Digest)> = p
            .checks
            .iter()
            .map(|c| (c.url.as_str(), &c.digest))
            .collect();
        let b = |h: &str| Digest::Blake3(h.into());
        assert_eq!(
            got,
            [
                ("/", &b("h1")),
                ("/a.html", &b("h3")),
                ("/dl/tool-latest.tgz", &Digest::Sha256("s256".into())),
                ("/docs/", &b("h2")),
                ("/docs/index.html", &b("h2")),
                ("/index.html", &b("h1")),
            ]
        );
        assert_eq!(p.skipped, 0);

        // Capped: the alias and the index pages first, the rest sampled, the same for the same seed.
        let p2 = plan(
            &changes,
            &objects,
            &alias_sha256(&meta),
            "/",
            false,
            5,
            "d1",
        );
        assert_eq!(p2.checks.len(), 5);
        assert_eq!(p2.skipped, 1);
        assert!(p2.checks.iter().all(|c| c.url != "/a.html"));
        assert_eq!(
            p2,
            plan(
                &changes,
                &objects,
                &alias_sha256(&meta),
                "/",
                false,
                5,
                "d1"
            )
        );
    }

    #[test]
    fn clean_urls_check_the_extensionless_url_unless_something_else_takes_it() {
        let objects: BTreeMap<String, ObjectRecord> = [
            ("about.html", "h1"),
            ("team.html", "h2"),
            ("team/index.html", "h3"),
        ]
        .into_iter()
        .map(|(k, h)| (k.to_string(), obj(h)))
        .collect();
        let changes = Changes {
            changed: vec![
                change("about.html", ChangeKind::Content),
                change("team.html", ChangeKind::New),
            ],
            live: vec![],
        };
        let urls = |clean| {
            plan(&changes, &objects, &BTreeMap::new(), "/", clean, 100, "d1")
                .checks
                .into_iter()
                .map(|c| (c.url, c.key))
                .collect::<Vec<_>>()
        };
        let pair = |u: &str, k: &str| (u.to_string(), k.to_string());
        assert_eq!(
            urls(true),
            [
                pair("/about", "about.html"),
                pair("/about.html", "about.html"),
                // `/team` is the folder's redirect, not team.html.
                pair("/team.html", "team.html"),
            ]
        );
        assert_eq!(
            urls(false),
            [
                pair("/about.html", "about.html"),
                pair("/team.html", "team.html")
            ]
        );
    }
}
