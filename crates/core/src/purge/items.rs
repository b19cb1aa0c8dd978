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

/// Nano-dollars (10⁻⁹ US dollars) in an exact integer: the planner's unit of cost, so that plans are
/// compared exactly and the same input always gives the same plan. $0.005 (a CloudFront path) is
/// 5,000,000; $0.0000004 (an S3 GET) is 400.
pub type Nusd = u64;

/// Nano-dollars per US dollar.
pub const NUSD_PER_USD: f64 = 1e9;

/// US dollars as nano-dollars, rounded to the nearest; negative or NaN is 0, too large saturates.
pub fn nusd(usd: f64) -> Nusd {
    if usd.is_nan() || usd <= 0.0 {
        0
    } else {
        // `as` saturates
        (usd * NUSD_PER_USD).round() as u64
    }
}

/// Nano-dollars as US dollars (for display).
pub fn usd(n: Nusd) -> f64 {
    n as f64 / NUSD_PER_USD
}

/// Nano-dollars as a dollar amount for people: `$0`, `$0.005`, `$10.00`, and small amounts with two
/// significant digits (`$0.0000004`, `$0.000012`).
pub fn format_usd(n: Nusd) -> String {
    let x = usd(n);
    if n == 0 {
        "$0".into()
    } else if x >= 1.0 {
        format!("${x:.2}")
    } else if x >= 0.001 {
        format!("${x:.3}")
    } else {
        // two significant digits, trailing zeros dropped
        let decimals = (-x.log10()).ceil() as usize + 1;
        let s = format!("{x:.decimals$}");
        let s = s.trim_end_matches('0');
        format!("${s}")
    }
}

/// The default price of one swept URL: the origin request its next visitor causes (a revalidation, a
/// 304 or a small GET). S3 charges $0.0004 per 1,000 GET requests (us-east-1, standard): $0.0000004.
pub const DEFAULT_SWEEP_PRICE_USD: f64 = 0.000_000_4;

/// Planner options: what a swept URL costs, the month's free items left, and an optional hard cap on
/// what one broad item (a prefix, or [`Item::all`] where the root prefix would be) may sweep.
///
/// The planner minimises one number, in nano-dollars ([`Nusd`]):
/// `price per item × billed items beyond the free ones + sweep_price × swept URLs`
/// (ties: fewer billed items, then fewer swept URLs, then fewer prefixes), over the plans that cover
/// every changed URL, stay within the provider's limits and, when a cap is set, within it: a prefix is
/// allowed iff `unchanged swept <= max(sweep_ceiling, floor(sweep_ratio × changed covered))` (an unset
/// one counts as 0; neither set: no cap). See [`super::plan`] for how the free tier is handled.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct PlanOptions {
    /// A hard cap: a broad item may sweep at most this many unchanged live mutable URLs (or
    /// `sweep_ratio` times the changed URLs it covers, whichever is larger). `None` with `sweep_ratio`
    /// `None`: no cap, the prices decide.
    #[serde(default)]
    pub sweep_ceiling: Option<usize>,
    /// Widens the cap: up to this many unchanged URLs per changed URL covered (rounded down). Alone,
    /// it is the cap (with a ceiling of 0). Negative or NaN counts as 0.
    #[serde(default)]
    pub sweep_ratio: Option<f64>,
    /// What one swept URL costs, in nano-dollars (default: [`DEFAULT_SWEEP_PRICE_USD`]).
    pub sweep_price: Nusd,
    /// Billed items still free this month (the provider's free tier minus what the month used); 0:
    /// none, every billed item is priced.
    #[serde(default)]
    pub free_items: u64,
}

impl Default for PlanOptions {
    fn default() -> Self {
        PlanOptions {
            sweep_ceiling: None,
            sweep_ratio: None,
            sweep_price: nusd(DEFAULT_SWEEP_PRICE_USD),
            free_items: 0,
        }
    }
}

impl PlanOptions {
    /// The most unchanged live URLs a broad item covering `covers` distinct changed URLs may sweep:
    /// `max(sweep_ceiling, floor(sweep_ratio × covers))` (saturating), or `usize::MAX` without a cap.
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
    /// Billed items the month's free tier pays for (at most [`PlanOptions::free_items`]).
    #[serde(default)]
    pub free_used: u64,
    /// The plan's cost in nano-dollars: `item price × (billed − free_used) + sweep price × swept`.
    #[serde(default)]
    pub cost: Nusd,
    /// The price of one item the plan was chosen at, in nano-dollars: the provider's price past the
    /// free tier, 0 while the free tier covers the plan, in between when the free tier covers part of
    /// it (for `--explain`).
    #[serde(default)]
    pub item_price: Nusd,
    /// The price of one swept URL it was chosen at, in nano-dollars.
    #[serde(default)]
    pub sweep_price: Nusd,
}

impl PurgePlan {
    /// Sets [`PurgePlan::free_used`] and [`PurgePlan::cost`] from `billed` and `swept` (after items
    /// were added to a plan).
    pub fn price(&mut self, pricing: &Pricing, opts: &PlanOptions) {
        let per_item = nusd(pricing.per_item_usd);
        self.free_used = if per_item == 0 {
            0
        } else {
            (self.billed as u64).min(opts.free_items)
        };
        self.sweep_price = opts.sweep_price;
        let cost = per_item as u128 * ((self.billed as u64 - self.free_used) as u128)
            + opts.sweep_price as u128 * self.swept as u128;
        self.cost = cost.try_into().unwrap_or(u64::MAX);
    }

    /// Estimated cost in US dollars when the month's free allowance is already used up, and when
    /// `used_this_month` items were already billed this month.
    pub fn cost_usd(&self, pricing: &Pricing, used_this_month: u64) -> f64 {
        let free_left = pricing.free_items_per_month.saturating_sub(used_this_month);
        (self.billed as u64).saturating_sub(free_left) as f64 * pricing.per_item_usd
    }
}
