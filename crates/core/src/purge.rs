//! The invalidation planner: which purge items cover every changed URL of a deploy with the fewest
//! billed items, within a CDN's limits. Pure: no I/O, no clock.
//!
//! Vocabulary:
//! - a *URL* here is a path as the CDN sees it, starting with `/` (`/docs/a.html`, `/docs/`);
//! - an *item* is what a provider is asked to drop: one URL, a prefix (CloudFront `/docs/*`,
//!   Cloudflare `prefixes`, Varnish `BAN ^/docs/`), a tag (surrogate key), or everything;
//! - *swept* URLs are live mutable URLs an item drops although they did not change (cost: origin load);
//! - fingerprinted (immutable) URLs are never listed: a new content has a new URL.

use std::collections::BTreeSet;

use serde::{Deserialize, Serialize};

/// What one purge item addresses.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum ItemKind {
    /// One URL path, exactly.
    Path,
    /// Every URL that starts with the value (which ends with `/`, or is `/` for everything under the root).
    Prefix,
    /// A surrogate key / cache tag.
    Tag,
    /// A whole host (Cloudflare `hosts`).
    Host,
    /// Everything the CDN holds for this site.
    All,
}

/// One purge item.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
pub struct Item {
    pub kind: ItemKind,
    /// The URL path, prefix, tag or host; empty for [`ItemKind::All`].
    pub value: String,
}

impl Item {
    pub fn path(v: impl Into<String>) -> Item {
        Item { kind: ItemKind::Path, value: v.into() }
    }
    pub fn prefix(v: impl Into<String>) -> Item {
        Item { kind: ItemKind::Prefix, value: v.into() }
    }
    pub fn tag(v: impl Into<String>) -> Item {
        Item { kind: ItemKind::Tag, value: v.into() }
    }
    pub fn host(v: impl Into<String>) -> Item {
        Item { kind: ItemKind::Host, value: v.into() }
    }
    pub fn all() -> Item {
        Item { kind: ItemKind::All, value: String::new() }
    }
    /// True when this item drops `url` (a path starting with `/`). Tags and hosts say nothing about
    /// paths: false.
    pub fn covers(&self, url: &str) -> bool {
        match self.kind {
            ItemKind::Path => self.value == url,
            ItemKind::Prefix => url.starts_with(&self.value),
            ItemKind::All => true,
            ItemKind::Tag | ItemKind::Host => false,
        }
    }
}

impl std::fmt::Display for Item {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self.kind {
            ItemKind::Path => f.write_str(&self.value),
            ItemKind::Prefix => write!(f, "{}*", self.value),
            ItemKind::Tag => write!(f, "#{}", self.value),
            ItemKind::Host => write!(f, "host {}", self.value),
            ItemKind::All => f.write_str("everything"),
        }
    }
}

/// How a provider bills purge items (for the estimate shown to the user, and to pick the cheapest plan).
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
pub struct Pricing {
    /// US dollars per billed item beyond the free allowance (CloudFront: 0.005 per path).
    pub per_item_usd: f64,
    /// Items free each month (CloudFront: 1,000 paths).
    pub free_items_per_month: u64,
}

impl Pricing {
    pub const FREE: Pricing = Pricing { per_item_usd: 0.0, free_items_per_month: 0 };
}

/// What a provider can purge and its limits. The planner only emits item kinds the provider supports
/// and keeps every call and every plan within these limits.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Capabilities {
    /// Single URL paths.
    pub paths: bool,
    /// Prefix items (CloudFront wildcards, Cloudflare prefixes, Varnish bans).
    pub prefixes: bool,
    /// Tags / surrogate keys.
    pub tags: bool,
    /// Whole hosts.
    pub hosts: bool,
    /// Purge everything.
    pub all: bool,
    /// Soft purge (mark stale, serve while revalidating).
    pub soft: bool,
    /// Items per API call (CloudFront 3,000; Cloudflare 100 by default; Fastly 256 keys).
    pub max_items_per_call: usize,
    /// Path items in flight at once per distribution (CloudFront 3,000); `None`: no limit.
    pub max_paths_in_flight: Option<usize>,
    /// Prefix items in flight at once (CloudFront 15 wildcards); `None`: no limit.
    pub max_prefixes_in_flight: Option<usize>,
    /// Purges complete asynchronously and have an id and a status (CloudFront).
    pub asynchronous: bool,
    pub pricing: Pricing,
}

/// Planner options.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct PlanOptions {
    /// A prefix item may sweep at most this many unchanged live mutable URLs.
    pub sweep_ceiling: usize,
}

impl Default for PlanOptions {
    fn default() -> Self {
        PlanOptions { sweep_ceiling: 50 }
    }
}

/// One item of a plan, with what it covers (for `--explain`).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct PlannedItem {
    pub item: Item,
    /// How many changed URLs it covers.
    pub covers: usize,
    /// A few of them (at most 5), for `--explain`.
    pub examples: Vec<String>,
    /// Unchanged live mutable URLs it drops too.
    pub swept: usize,
}

/// The planner's answer.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct PurgePlan {
    /// Items in a stable order (prefixes first, then paths, each sorted).
    pub items: Vec<PlannedItem>,
    /// Items split into calls: each call within `max_items_per_call` and the in-flight limits.
    /// Indexes into `items`.
    pub calls: Vec<Vec<usize>>,
    /// Changed URLs the plan was asked to cover (deduplicated, sorted).
    pub changed: usize,
    /// Billed items (CloudFront: a wildcard counts as one).
    pub billed: usize,
    /// Unchanged live mutable URLs dropped.
    pub swept: usize,
}

impl PurgePlan {
    /// Estimated cost in US dollars when the month's free allowance is already used up, and when
    /// `used_this_month` items were already billed this month.
    pub fn cost_usd(&self, pricing: &Pricing, used_this_month: u64) -> f64 {
        let free_left = pricing.free_items_per_month.saturating_sub(used_this_month);
        (self.billed as u64).saturating_sub(free_left) as f64 * pricing.per_item_usd
    }
}

/// The URLs under which the object at `key` (relative, no leading `/`) is served, below `url_prefix`
/// (`/` or `/site/`): the key itself, and for `d/index.html` also `/d/`, and `/d` when `bare_dir` is
/// true (the page appeared or disappeared: `/d` changes between a redirect and a 404).
pub fn key_urls(key: &str, url_prefix: &str, bare_dir: bool) -> Vec<String> {
    let mut out = vec![format!("{url_prefix}{key}")];
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

/// Plans purge items covering every URL of `changed` (deduplicated here), given `live`: every live
/// mutable URL of the site after the deploy (changed or not; used to count what a prefix sweeps).
///
/// Guarantees (property-tested): every changed URL is covered by some item; only kinds the provider
/// supports are used; each call holds at most `max_items_per_call` items, at most
/// `max_prefixes_in_flight` prefixes and at most `max_paths_in_flight` paths; a prefix item sweeps at
/// most `opts.sweep_ceiling` unchanged live URLs; among such plans the number of billed items is minimal
/// (ties: fewer swept URLs). `/` as a prefix (everything) is chosen only when it is the cheapest.
pub fn plan(changed: &[String], live: &[String], caps: &Capabilities, opts: &PlanOptions) -> PurgePlan {
    let _ = (changed, live, caps, opts, BTreeSet::<String>::new());
    unimplemented!("the planner is being written")
}

/// Plans tag items (surrogate keys) for providers that purge by tag: deduplicated, sorted, split into
/// calls of at most `max_items_per_call`. `covers` is 1 per tag.
pub fn tag_plan(tags: &[String], caps: &Capabilities) -> PurgePlan {
    let _ = (tags, caps);
    unimplemented!("the planner is being written")
}

/// The surrogate key of the object at `key`: sent by `staleguard serve` (and stored as object metadata)
/// when tag headers are on, and purged by tag-mode providers. One key covers every URL of the object
/// (`/d/`, `/d/index.html`, query-string variants). Short, lower-case, no spaces or commas, so it fits
/// every CDN's tag syntax.
pub fn key_tag(key: &str) -> String {
    let h = blake3::hash(key.as_bytes());
    format!("sg-{}", &h.to_hex()[..16])
}
