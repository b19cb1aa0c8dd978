//! What a plan is made of: purge items, the provider's capabilities and prices, the plan's options
//! and the plan itself.

use serde::{Deserialize, Serialize};

use super::solver::Allowance;

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
        Item {
            kind: ItemKind::Path,
            value: v.into(),
        }
    }
    pub fn prefix(v: impl Into<String>) -> Item {
        Item {
            kind: ItemKind::Prefix,
            value: v.into(),
        }
    }
    pub fn tag(v: impl Into<String>) -> Item {
        Item {
            kind: ItemKind::Tag,
            value: v.into(),
        }
    }
    pub fn host(v: impl Into<String>) -> Item {
        Item {
            kind: ItemKind::Host,
            value: v.into(),
        }
    }
    pub fn all() -> Item {
        Item {
            kind: ItemKind::All,
            value: String::new(),
        }
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
    pub const FREE: Pricing = Pricing {
        per_item_usd: 0.0,
        free_items_per_month: 0,
    };
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

impl Capabilities {
    /// True when the provider can purge items of this kind.
    pub fn supports(&self, kind: ItemKind) -> bool {
        match kind {
            ItemKind::Path => self.paths,
            ItemKind::Prefix => self.prefixes,
            ItemKind::Tag => self.tags,
            ItemKind::Host => self.hosts,
            ItemKind::All => self.all,
        }
    }
}

/// Planner options: how many unchanged live URLs a broad item (a prefix, or [`Item::all`] where
/// the root prefix would be) may drop.
///
/// A prefix may drop at most `sweep-ceiling` unchanged URLs, or `sweep-ratio` times as many as the
/// changed URLs it covers, whichever is larger: a prefix at a directory is allowed iff
/// `unchanged swept <= max(sweep_ceiling, floor(sweep_ratio × changed covered))`, where *changed
/// covered* counts the distinct changed URLs it drops. The ceiling keeps small changes from sweeping
/// a folder; the ratio lets a change that touches a large share of a folder (a template change) be one
/// prefix instead of thousands of billed paths. With `sweep_ratio` 0 (the default) only the ceiling
/// counts. See [`PlanOptions::allowance`].
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct PlanOptions {
    /// A prefix item may always sweep this many unchanged live mutable URLs.
    pub sweep_ceiling: usize,
    /// A prefix item may also sweep up to this many unchanged live mutable URLs per changed URL it
    /// covers (rounded down). 0 (the default): the ceiling alone. Negative or NaN counts as 0.
    #[serde(default)]
    pub sweep_ratio: f64,
}

impl Default for PlanOptions {
    fn default() -> Self {
        PlanOptions {
            sweep_ceiling: 50,
            sweep_ratio: 0.0,
        }
    }
}

impl PlanOptions {
    /// The most unchanged live URLs a broad item covering `covers` distinct changed URLs may sweep:
    /// `max(sweep_ceiling, floor(sweep_ratio × covers))` (saturating).
    pub fn allowance(&self, covers: usize) -> usize {
        Allowance::new(self)
            .of(covers as u64)
            .try_into()
            .unwrap_or(usize::MAX)
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
