//! What a CDN must drop after the store went from one deploy to another: the mutable objects whose
//! bytes or headers changed, that appeared, or that left the site. Pure: records in, keys out; the
//! planner ([`crate::purge`]) turns them into purge items.
//!
//! Rules:
//! - fingerprinted (immutable) objects are never listed when new: a new content has a new URL. One whose
//!   headers changed under the same name *is* listed (its URL is cached with the old headers);
//! - a precompressed sidecar (`a.html.br`, stored with `content-encoding`) stands for its base URL
//!   (`/a.html`): CDNs cache every encoding of a URL under that URL, and a purge drops them all;
//! - state keys (`.staleguard/…`) are never listed.

use std::collections::{BTreeMap, BTreeSet};

use serde::{Deserialize, Serialize};

use crate::deploy::{ObjectRecord, is_state_key};
use crate::purge::{key_tag, key_urls};

/// Why a key is in the purge set.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum ChangeKind {
    /// Did not exist before (a cached 404 may hide it).
    New,
    /// Other bytes under the same key.
    Content,
    /// Same bytes, other headers.
    Headers,
    /// Left the site (a cached copy would keep it alive).
    Dropped,
}

/// One key to purge.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord, Serialize, Deserialize)]
pub struct Change {
    /// The URL key (a sidecar's base key), relative, no leading `/`.
    pub key: String,
    pub kind: ChangeKind,
}

/// The purge set between two deploys, and the live mutable keys after it.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct Changes {
    /// Sorted by key; one entry per URL key.
    pub changed: Vec<Change>,
    /// Every live mutable URL key after the deploy (sorted): what a prefix purge would also drop.
    pub live: Vec<String>,
}

/// The URL key an object is served under: a sidecar's base key, else the key itself.
pub fn url_key<'a>(key: &'a str, o: &ObjectRecord) -> &'a str {
    o.headers
        .get("content-encoding")
        .and_then(|enc| crate::config::Codec::parse(enc))
        .and_then(|codec| key.strip_suffix(codec.extension()))
        .unwrap_or(key)
}

/// Compares `prev` (the deploy the CDN last saw; `None`: unknown, so every live mutable key is listed)
/// with `next`.
pub fn changes(
    prev: Option<&BTreeMap<String, ObjectRecord>>,
    next: &BTreeMap<String, ObjectRecord>,
) -> Changes {
    let mut changed: BTreeMap<&str, ChangeKind> = BTreeMap::new();
    let mut live: BTreeSet<&str> = BTreeSet::new();
    for (key, o) in next {
        if is_state_key(key) {
            continue;
        }
        let url = url_key(key, o);
        if o.mutable {
            live.insert(url);
        }
        let kind = match prev.map(|p| p.get(key)) {
            None => o.mutable.then_some(ChangeKind::Content),
            Some(None) => o.mutable.then_some(ChangeKind::New),
            Some(Some(old)) if old.hash != o.hash || old.size != o.size => {
                o.mutable.then_some(ChangeKind::Content)
            }
            Some(Some(old)) if old.headers != o.headers => Some(ChangeKind::Headers),
            Some(Some(_)) => None,
        };
        if let Some(kind) = kind {
            // A sidecar's change is its base URL's change. `New` wins (it adds the bare-directory
            // variant), then `Content` over `Headers`.
            let e = changed.entry(url).or_insert(kind);
            if kind == ChangeKind::New || *e == ChangeKind::Headers {
                *e = kind;
            }
        }
    }
    if let Some(prev) = prev {
        for (key, o) in prev {
            if is_state_key(key) || next.contains_key(key) {
                continue;
            }
            let url = url_key(key, o);
            if o.mutable && !live.contains(url) {
                changed.entry(url).or_insert(ChangeKind::Dropped);
            }
        }
    }
    Changes {
        changed: changed
            .into_iter()
            .map(|(k, kind)| Change {
                key: k.to_string(),
                kind,
            })
            .collect(),
        live: live.into_iter().map(str::to_string).collect(),
    }
}

impl Changes {
    /// Changed URLs and live URLs below `url_prefix` (`/` or `/site/`), with index variants: `d/index.html`
    /// is also `/d/`, and `/d` when the page appeared or left; with `clean_urls` (`[serve] clean-urls`)
    /// `about.html` is also `/about`.
    pub fn urls(&self, url_prefix: &str, clean_urls: bool) -> (Vec<String>, Vec<String>) {
        let mut changed = Vec::with_capacity(self.changed.len() * 2);
        for c in &self.changed {
            let bare = matches!(c.kind, ChangeKind::New | ChangeKind::Dropped);
            changed.extend(key_urls(&c.key, url_prefix, bare, clean_urls));
        }
        let mut live = Vec::with_capacity(self.live.len() * 2);
        for k in &self.live {
            live.extend(key_urls(k, url_prefix, false, clean_urls));
        }
        (changed, live)
    }

    /// The surrogate key of every changed object.
    pub fn tags(&self) -> Vec<String> {
        self.changed.iter().map(|c| key_tag(&c.key)).collect()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::deploy::Rank;

    fn obj(hash: &str, mutable: bool, headers: &[(&str, &str)]) -> ObjectRecord {
        ObjectRecord {
            hash: hash.into(),
            size: hash.len() as u64,
            mutable,
            headers: headers
                .iter()
                .map(|(k, v)| (k.to_string(), v.to_string()))
                .collect(),
            rank: if mutable {
                Rank::Mutable
            } else {
                Rank::Immutable
            },
            etag: None,
        }
    }

    fn site(objs: &[(&str, ObjectRecord)]) -> BTreeMap<String, ObjectRecord> {
        objs.iter()
            .map(|(k, o)| (k.to_string(), o.clone()))
            .collect()
    }

    #[test]
    fn only_mutable_changes_and_header_changes_are_listed() {
        let br = [("content-encoding", "br")];
        let prev = site(&[
            ("index.html", obj("a", true, &[])),
            ("index.html.br", obj("ab", true, &br)),
            ("docs/index.html", obj("b", true, &[])),
            ("old.html", obj("c", true, &[])),
            ("app.0123456789ab.css", obj("d", false, &[])),
            ("font.0123456789ab.woff2", obj("e", false, &[])),
            (".staleguard/bundles/x.bin", obj("f", false, &[])),
        ]);
        let next = site(&[
            ("index.html", obj("a", true, &[])),
            // only the sidecar changed: its base URL is purged
            ("index.html.br", obj("ac", true, &br)),
            ("docs/index.html", obj("b", true, &[])),
            ("new/index.html", obj("g", true, &[])),
            ("app.0123456789ab.css", obj("d", false, &[])),
            ("app.ba9876543210.css", obj("h", false, &[])),
            (
                "font.0123456789ab.woff2",
                obj("e", false, &[("access-control-allow-origin", "*")]),
            ),
            (".staleguard/bundles/y.bin", obj("i", false, &[])),
        ]);
        let c = changes(Some(&prev), &next);
        let got: Vec<(&str, ChangeKind)> =
            c.changed.iter().map(|c| (c.key.as_str(), c.kind)).collect();
        assert_eq!(
            got,
            [
                ("font.0123456789ab.woff2", ChangeKind::Headers),
                ("index.html", ChangeKind::Content),
                ("new/index.html", ChangeKind::New),
                ("old.html", ChangeKind::Dropped),
            ]
        );
        assert_eq!(c.live, ["docs/index.html", "index.html", "new/index.html"]);
        let (urls, live) = c.urls("/", false);
        assert_eq!(
            urls,
            [
                "/font.0123456789ab.woff2",
                "/index.html",
                "/",
                "/new/index.html",
                "/new/",
                "/new",
                "/old.html"
            ]
        );
        assert_eq!(live.len(), 6);
        assert_eq!(c.tags()[1], key_tag("index.html"));
    }

    #[test]
    fn unknown_previous_lists_every_live_mutable_key() {
        let next = site(&[
            ("a.html", obj("a", true, &[])),
            ("app.0123456789ab.css", obj("d", false, &[])),
        ]);
        let c = changes(None, &next);
        assert_eq!(c.changed.len(), 1);
        assert_eq!(c.changed[0].key, "a.html");
        let (urls, _) = c.urls("/site/", false);
        assert_eq!(urls, ["/site/a.html"]);
        // With clean URLs the page is purged under `/site/a` too, and counted so among the live URLs.
        let (urls, live) = c.urls("/site/", true);
        assert_eq!(urls, ["/site/a.html", "/site/a"]);
        assert_eq!(live, ["/site/a.html", "/site/a"]);
    }
}
