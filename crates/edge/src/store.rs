//! The edge's memory: stored responses, grouped per URL, in a size-weighted concurrent cache (`moka`,
//! TinyLFU admission and LRU eviction, bounded by bytes).
//!
//! One cache entry per primary key (Host + path and query) holds that URL's `Vary` field names and its
//! variants (at most [`vary::MAX_VARIANTS`], most recently stored first). A variant is replaced as a
//! whole (a new `Arc<Objects>`), so a reader never sees half an update and the entry's weight is
//! recomputed on every change. Bodies are `Bytes`: a hit clones a pointer, never the body.
//!
//! Invalidation: a URL purge drops the entry; a ban, an xkey purge and a soft purge walk the entries
//! (the edge is one machine's cache: a walk over 100,000 objects takes milliseconds) and count what they
//! matched, as Varnish reports it.

use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};

use bytes::Bytes;
use hyper::header::{HeaderMap, HeaderValue};
use hyper::{HeaderMap as Map, StatusCode};

use crate::policy::Entry;
use crate::vary;

/// One stored response.
#[derive(Debug)]
pub struct Stored {
    /// Host, as the client sent it.
    pub host: String,
    /// Path and query.
    pub url: String,
    /// Its variant key ([`vary::variant_key`] of the request that fetched it, with its coding).
    pub variant: String,
    /// Its content coding (`Content-Encoding`, lower case; `identity` without one).
    pub coding: String,
    pub status: StatusCode,
    /// End-to-end response headers as the origin sent them, without `Age` and hop-by-hop fields.
    pub headers: HeaderMap,
    pub body: Bytes,
    /// Timing and directives.
    pub timing: Entry,
    /// Surrogate keys (from `xkey`, `Surrogate-Key`, `Cache-Tag`).
    pub tags: Vec<String>,
    /// Set by a soft purge: never fresh again.
    soft: AtomicBool,
}

impl Stored {
    #[allow(clippy::too_many_arguments)]
    pub fn new(
        host: String,
        url: String,
        variant: String,
        status: StatusCode,
        headers: HeaderMap,
        body: Bytes,
        timing: Entry,
        tags: Vec<String>,
    ) -> Stored {
        let coding = coding_of(&headers);
        Stored {
            host,
            url,
            variant,
            coding,
            status,
            headers,
            body,
            timing,
            tags,
            soft: AtomicBool::new(false),
        }
    }

    /// Its timing as of now, with a soft purge applied.
    pub fn timing(&self) -> Entry {
        let mut t = self.timing.clone();
        t.invalidated |= self.soft.load(Ordering::Relaxed);
        t
    }

    /// Marks it stale (a soft purge).
    pub fn soft_purge(&self) {
        self.soft.store(true, Ordering::Relaxed);
    }

    pub fn etag(&self) -> Option<&HeaderValue> {
        self.headers.get(hyper::header::ETAG)
    }

    pub fn last_modified(&self) -> Option<&HeaderValue> {
        self.headers.get(hyper::header::LAST_MODIFIED)
    }

    /// Bytes it holds, roughly (body, header names and values, bookkeeping).
    fn weight(&self) -> usize {
        let headers: usize = self
            .headers
            .iter()
            .map(|(k, v)| k.as_str().len() + v.len() + 32)
            .sum();
        self.body.len()
            + headers
            + self.host.len()
            + self.url.len()
            + self.variant.len()
            + self.coding.len()
            + 256
    }

    /// A copy refreshed by a 304 (RFC 9111 §4.3.4): the 304's headers replace the stored ones of the
    /// same name (except the framing fields); `timing` reads the merged headers (so a 304 without
    /// `Cache-Control` keeps the stored lifetime), then `Age` is dropped from what is stored; the body
    /// is shared.
    pub fn refreshed(
        &self,
        not_modified: &Map,
        tags: Option<Vec<String>>,
        timing: impl FnOnce(&HeaderMap) -> Entry,
    ) -> Stored {
        let mut headers = self.headers.clone();
        for name in not_modified.keys() {
            if matches!(
                name.as_str(),
                "content-length" | "content-encoding" | "transfer-encoding" | "content-range"
            ) {
                continue;
            }
            headers.remove(name);
            for v in not_modified.get_all(name) {
                headers.append(name.clone(), v.clone());
            }
        }
        let timing = timing(&headers);
        headers.remove(hyper::header::AGE);
        Stored::new(
            self.host.clone(),
            self.url.clone(),
            self.variant.clone(),
            self.status,
            headers,
            self.body.clone(),
            timing,
            tags.unwrap_or_else(|| self.tags.clone()),
        )
    }
}

/// The content coding of a response: its `Content-Encoding` (the last one when several), lower case;
/// `identity` without one.
pub fn coding_of(h: &HeaderMap) -> String {
    h.get_all(hyper::header::CONTENT_ENCODING)
        .iter()
        .filter_map(|v| v.to_str().ok())
        .flat_map(|v| v.split(','))
        .map(|c| c.trim().to_ascii_lowercase())
        .rfind(|c| !c.is_empty())
        .unwrap_or_else(|| "identity".into())
}

/// A URL's variants.
#[derive(Debug)]
pub struct Objects {
    /// The `Vary` field names of its latest response (lower case).
    pub vary: Vec<String>,
    /// Most recently stored first.
    pub variants: Vec<Arc<Stored>>,
    /// Codings the origin was seen to serve for this URL, and codings it was asked for and answered
    /// with another ([`vary::select_coding`]).
    pub offered: Vec<String>,
    pub refused: Vec<String>,
}

/// What a request finds for a URL.
#[derive(Debug)]
pub struct Lookup {
    /// The stored variant it selects, if any.
    pub found: Option<Arc<Stored>>,
    /// Its variant key, when the coding it gets is known.
    pub variant: Option<String>,
    /// The codings to ask the origin for on a fetch (in order).
    pub ask: Vec<&'static str>,
}

impl Objects {
    fn weight(&self) -> u32 {
        let w: usize = self.variants.iter().map(|s| s.weight()).sum();
        u32::try_from(w).unwrap_or(u32::MAX)
    }
}

/// The store.
pub struct Store {
    cache: moka::sync::Cache<String, Arc<Objects>>,
}

impl Store {
    /// A store holding at most `memory` bytes (its own estimate of what each object takes).
    pub fn new(memory: u64) -> Store {
        Store {
            cache: moka::sync::Cache::builder()
                .max_capacity(memory)
                .weigher(|_k: &String, v: &Arc<Objects>| v.weight())
                .build(),
        }
    }

    /// The URL's entry, if any.
    pub fn get(&self, key: &str) -> Option<Arc<Objects>> {
        self.cache.get(key)
    }

    /// What a request with `header` values, taking the codings `ranked`, finds for `key`.
    pub fn lookup(
        &self,
        key: &str,
        header: impl Fn(&str) -> Option<String>,
        ranked: &[&'static str],
    ) -> Lookup {
        let Some(objects) = self.cache.get(key) else {
            return Lookup {
                found: None,
                variant: None,
                ask: ranked.to_vec(),
            };
        };
        let fields = &objects.vary;
        let (coding, ask) = if fields.iter().any(|f| f == "accept-encoding") {
            match vary::select_coding(ranked, &objects.offered, &objects.refused) {
                Ok(c) => (c, vec![c]),
                Err(ask) => {
                    return Lookup {
                        found: None,
                        variant: None,
                        ask,
                    };
                }
            }
        } else {
            ("", ranked.to_vec())
        };
        let want = vary::variant_key(fields, header, coding);
        let found = objects.variants.iter().find(|s| s.variant == want).cloned();
        Lookup {
            found,
            variant: Some(want),
            ask,
        }
    }

    /// Stores `object` under `key` as a variant of a response varying on `fields`, fetched asking for
    /// the codings `asked`: it replaces the variant of the same key, goes first, and the oldest
    /// variants past the cap are dropped. A change of `Vary` drops the other variants (they were
    /// selected by other fields). What the origin offers is learned: the object's coding is offered;
    /// the codings asked for before it (or all, when it is none of them) are refused.
    pub fn insert(&self, key: &str, fields: Vec<String>, object: Arc<Stored>, asked: &[&str]) {
        let coding = object.coding.clone();
        let refused_now: Vec<&str> = match asked.iter().position(|c| *c == coding) {
            Some(i) => asked[..i].to_vec(),
            None => asked.to_vec(),
        };
        self.cache.entry_by_ref(key).and_compute_with(|existing| {
            let mut variants = vec![object.clone()];
            let (mut offered, mut refused) = (Vec::new(), Vec::new());
            if let Some(e) = existing {
                let old = e.value();
                if old.vary == fields {
                    variants.extend(
                        old.variants
                            .iter()
                            .filter(|s| s.variant != object.variant)
                            .take(vary::MAX_VARIANTS - 1)
                            .cloned(),
                    );
                    offered.clone_from(&old.offered);
                    refused.clone_from(&old.refused);
                }
            }
            refused.retain(|r: &String| *r != coding);
            if !offered.contains(&coding) {
                offered.push(coding.clone());
            }
            for r in &refused_now {
                if *r != "identity"
                    && !offered.iter().any(|o| o == r)
                    && !refused.iter().any(|x| x == r)
                {
                    refused.push(r.to_string());
                }
            }
            offered.truncate(8);
            moka::ops::compute::Op::Put(Arc::new(Objects {
                vary: fields.clone(),
                variants,
                offered,
                refused,
            }))
        });
    }

    /// Drops one stored variant if it is still the one stored (a failed revalidation of a response that
    /// may not be served stale, or an entry replaced meanwhile: then nothing happens).
    pub fn remove_variant(&self, key: &str, object: &Arc<Stored>) {
        self.drop_variants(key, |s| Arc::ptr_eq(s, object));
    }

    /// Drops every variant of a URL; how many there were.
    pub fn purge_url(&self, key: &str) -> usize {
        self.cache.remove(key).map_or(0, |o| o.variants.len())
    }

    /// Drops every stored variant for which `hit` holds; how many.
    pub fn purge_where(&self, hit: impl Fn(&Stored) -> bool) -> usize {
        let mut n = 0;
        for (key, objects) in self.cache.iter() {
            let matched = objects.variants.iter().filter(|s| hit(s)).count();
            if matched > 0 {
                n += matched;
                self.drop_variants(&key, |s| hit(s));
            }
        }
        n
    }

    /// Drops the variants of `key` for which `hit` holds, atomically (the entry goes when none is
    /// left; nothing changes when none matches).
    fn drop_variants(&self, key: &str, hit: impl Fn(&Arc<Stored>) -> bool) {
        self.cache.entry_by_ref(key).and_compute_with(|existing| {
            let Some(e) = existing else {
                return moka::ops::compute::Op::Nop;
            };
            let old = e.value();
            if !old.variants.iter().any(&hit) {
                return moka::ops::compute::Op::Nop;
            }
            let variants: Vec<_> = old.variants.iter().filter(|s| !hit(s)).cloned().collect();
            if variants.is_empty() {
                moka::ops::compute::Op::Remove
            } else {
                moka::ops::compute::Op::Put(Arc::new(Objects {
                    vary: old.vary.clone(),
                    variants,
                    offered: old.offered.clone(),
                    refused: old.refused.clone(),
                }))
            }
        });
    }

    /// Marks every stored variant for which `hit` holds as stale (kept, served only within its
    /// stale windows); how many.
    pub fn soft_purge_where(&self, hit: impl Fn(&Stored) -> bool) -> usize {
        let mut n = 0;
        for (_, objects) in self.cache.iter() {
            for s in objects.variants.iter().filter(|s| hit(s)) {
                s.soft.store(true, Ordering::Relaxed);
                n += 1;
            }
        }
        n
    }

    /// Objects and bytes held (after pending maintenance).
    pub fn usage(&self) -> (u64, u64) {
        self.cache.run_pending_tasks();
        (self.cache.entry_count(), self.cache.weighted_size())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::policy::Directives;

    fn object(url: &str, variant: &str, body: &'static [u8], tags: &[&str]) -> Arc<Stored> {
        Arc::new(Stored::new(
            "h".into(),
            url.into(),
            variant.into(),
            StatusCode::OK,
            HeaderMap::new(),
            Bytes::from_static(body),
            Entry {
                directives: Directives::default(),
                lifetime: 60,
                request_time: 0,
                response_time: 0,
                date: None,
                age_header: 0,
                invalidated: false,
            },
            tags.iter().map(|t| t.to_string()).collect(),
        ))
    }

    fn coded(url: &str, coding: &str, body: &'static [u8]) -> Arc<Stored> {
        let mut h = HeaderMap::new();
        if coding != "identity" {
            h.insert(
                hyper::header::CONTENT_ENCODING,
                HeaderValue::from_str(coding).unwrap(),
            );
        }
        let o = object(url, &format!("accept-encoding={coding}\n"), body, &[]);
        let mut o = Arc::try_unwrap(o).unwrap();
        o.coding = coding_of(&h);
        o.headers = h;
        Arc::new(o)
    }

    #[test]
    fn variants_replace_each_other_and_are_capped() {
        let s = Store::new(1 << 20);
        let fields = vec!["accept-encoding".to_string()];
        let none = |_: &str| None;
        let chrome = vary::ranked_codings(Some("gzip, deflate, br, zstd"));
        let gzip_only = vary::ranked_codings(Some("gzip"));
        let curl = vary::ranked_codings(None);
        // Unknown URL: ask for everything the client takes.
        assert_eq!(s.lookup("h/a", none, &chrome).ask, chrome);
        s.insert("h/a", fields.clone(), coded("/a", "br", b"br"), &chrome);
        s.insert(
            "h/a",
            fields.clone(),
            coded("/a", "gzip", b"gz"),
            &gzip_only,
        );
        assert_eq!(
            &s.lookup("h/a", none, &chrome).found.unwrap().body[..],
            b"br"
        );
        assert_eq!(
            &s.lookup("h/a", none, &gzip_only).found.unwrap().body[..],
            b"gz"
        );
        // curl takes identity only, never asked yet: a fetch for identity.
        let l = s.lookup("h/a", none, &curl);
        assert!(l.found.is_none());
        assert_eq!(l.ask, ["identity"]);
        // The same variant again replaces it.
        s.insert("h/a", fields.clone(), coded("/a", "br", b"br2"), &chrome);
        assert_eq!(
            &s.lookup("h/a", none, &chrome).found.unwrap().body[..],
            b"br2"
        );
        assert_eq!(s.get("h/a").unwrap().variants.len(), 2);
        // A gzip-only origin, learned from one answer: every browser gets the gzip variant.
        s.insert("h/g", fields.clone(), coded("/g", "gzip", b"gz"), &chrome);
        let o = s.get("h/g").unwrap();
        assert_eq!(
            (o.offered.clone(), o.refused.clone()),
            (
                vec!["gzip".to_string()],
                vec!["br".to_string(), "zstd".to_string()]
            )
        );
        let safari = vary::ranked_codings(Some("gzip, deflate, br"));
        assert_eq!(
            &s.lookup("h/g", none, &safari).found.unwrap().body[..],
            b"gz"
        );
        // Past the cap, the oldest goes.
        let ua = vec!["user-agent".to_string()];
        for i in 0..40 {
            s.insert(
                "h/u",
                ua.clone(),
                object("/u", &format!("user-agent={i}\n"), b"x", &[]),
                &curl,
            );
        }
        let o = s.get("h/u").unwrap();
        assert_eq!(o.variants.len(), vary::MAX_VARIANTS);
        assert_eq!(o.variants[0].variant, "user-agent=39\n");
        // A new Vary drops the variants of the old one.
        s.insert("h/a", vec![], object("/a", "", b"plain", &[]), &curl);
        assert_eq!(s.get("h/a").unwrap().variants.len(), 1);
    }

    #[test]
    fn purges_count_what_they_match() {
        let s = Store::new(1 << 20);
        s.insert("h/a", vec![], object("/a", "", b"a", &["k1", "k2"]), &[]);
        s.insert("h/b", vec![], object("/b", "", b"b", &["k2"]), &[]);
        s.insert("h/c", vec![], object("/c", "", b"c", &[]), &[]);
        assert_eq!(s.soft_purge_where(|o| o.tags.iter().any(|t| t == "k1")), 1);
        assert!(s.get("h/a").unwrap().variants[0].timing().invalidated);
        assert!(!s.get("h/b").unwrap().variants[0].timing().invalidated);
        assert_eq!(s.purge_where(|o| o.tags.iter().any(|t| t == "k2")), 2);
        assert!(s.get("h/a").is_none() && s.get("h/b").is_none());
        assert_eq!(s.purge_url("h/c"), 1);
        assert_eq!(s.purge_url("h/c"), 0);
    }

    #[test]
    fn memory_stays_under_the_cap() {
        let s = Store::new(200_000);
        static BODY: [u8; 10_000] = [7; 10_000];
        for i in 0..200 {
            s.insert(
                &format!("h/{i}"),
                vec![],
                object(&format!("/{i}"), "", &BODY, &[]),
                &[],
            );
        }
        let (_, bytes) = s.usage();
        assert!(bytes <= 200_000, "{bytes}");
    }
}
