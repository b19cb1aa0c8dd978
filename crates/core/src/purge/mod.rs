//! The invalidation planner: which purge items cover every changed URL of a deploy with the fewest
//! billed items, within a CDN's limits. Pure: no I/O, no clock.
//!
//! Vocabulary:
//! - a *URL* here is a path as the CDN sees it, starting with `/` (`/docs/a.html`, `/docs/`);
//! - an *item* is what a provider is asked to drop: one URL, a prefix (CloudFront `/docs/*`,
//!   Cloudflare `prefixes`, Varnish `BAN ^/docs/`), a tag (surrogate key), or everything;
//! - *swept* URLs are live mutable URLs an item drops although they did not change (cost: origin load);
//! - fingerprinted (immutable) URLs are never listed: a new content has a new URL.
//!
//! How [`plan`] works:
//! 1. **Tree.** The directories that hold changed URLs, and their ancestors, become nodes of a tree
//!    in an arena (parents before children); each node keeps its changed files (deduplicated) and
//!    counts the unchanged live URLs under it, which is what a prefix there would sweep. Input in the
//!    order a deploy diff gives (sorted keys with their index variants) is walked like a merge, from
//!    one URL's directory to the next, without hashing; other orders fall back to a hash index.
//! 2. **Choice.** A tree DP picks, for each node, a prefix (when allowed: a prefix may drop at most
//!    `sweep-ceiling` unchanged URLs, or `sweep-ratio` times as many as the changed URLs it covers,
//!    whichever is larger; see [`PlanOptions`]) or its files as paths plus its children's choices,
//!    minimising (billed items, swept URLs, prefixes).
//!    With a limit on prefixes (CloudFront: 15) and only if the unconstrained answer exceeds it, each
//!    node keeps a vector `best[k]` (the cheapest cover using at most `k` prefixes) merged by min-plus
//!    convolution; children offering one prefix are merged by taking the `k` largest gains instead.
//! 3. **Items.** Prefixes first, then paths, each in byte order, split into calls within the
//!    provider's per-call and in-flight limits.

mod emit;
mod hasher;
mod items;
mod solver;
mod tree;

pub use crate::keys::{clean_key, key_tag, key_urls};
pub use items::{Capabilities, Item, ItemKind, PlanOptions, PlannedItem, Pricing, PurgePlan};

use emit::{emit, everything_item, examples, path_item, split_calls};
use solver::{Allowance, Mark, solve};
use tree::Tree;

/// Plans purge items covering every URL of `changed` (deduplicated here), given `live`: every live
/// mutable URL of the site after the deploy (changed or not; used to count what a prefix sweeps).
///
/// Guarantees (property-tested): every changed URL is covered by some item; only kinds the provider
/// supports are used; each call holds at most `max_items_per_call` items, at most
/// `max_prefixes_in_flight` prefixes and at most `max_paths_in_flight` paths; a prefix item may drop at
/// most `sweep-ceiling` unchanged URLs, or `sweep-ratio` times as many as the changed URLs it covers,
/// whichever is larger (`swept <= max(opts.sweep_ceiling, floor(opts.sweep_ratio × covers))`, see
/// [`PlanOptions`]); among such plans the number of billed items is minimal (ties: fewer swept URLs,
/// then fewer prefixes). `/` as a prefix (everything) is chosen only when it is the cheapest.
///
/// Details:
/// - A URL belongs to the directory up to its last `/`: `/d/` is the index entry of `/d/` (a prefix
///   `/d/` covers it), `/d` is a file in `/`. Prefixes are only ever directories.
/// - The plan holds at most `max_prefixes_in_flight` prefixes in all, so that they fit in flight at once.
/// - A provider without prefixes but with purge-everything gets [`Item::all`] where the root prefix
///   would be (same rule: it covers every changed URL, and sweeps every unchanged one); one with
///   neither paths nor prefixes gets a single [`Item::all`].
/// - When no plan stays within the allowance (only possible without path items), the allowance gives
///   way rather than a changed URL being missed: prefixes may then sweep more (still the fewest items,
///   then the fewest swept), or everything is purged.
/// - A provider that supports none of paths, prefixes and everything cannot cover URLs at all: the plan
///   then lists every changed URL as a path item, which such a provider cannot send. Check
///   [`can_cover_urls`] first (and use [`tag_plan`] for tag-only providers).
/// - URLs that do not start with `/` are listed as path items (no prefix covers them), or make the
///   plan [`Item::all`] when the provider has no path items.
/// - `live` should hold each URL once; a duplicate is counted twice (the plan only gets more careful).
///
/// Cost: linear in the input, no global sort; input in deploy order (sorted keys with their index
/// variants) needs no hashing, any other order a lookup or a few per URL. The choice is linear in the
/// directories holding changed URLs, or `O(directories × max_prefixes_in_flight²)` at worst when the
/// prefix limit binds. 100,000 changed URLs of a 50,000-page site: about 15 ms (`plan_bench`).
pub fn plan(
    changed: &[String],
    live: &[String],
    caps: &Capabilities,
    opts: &PlanOptions,
) -> PurgePlan {
    let lim = Limits::new(caps);
    let tree = Tree::build(changed, live);
    let distinct = tree.under[0] as usize + tree.odd.len();
    if distinct == 0 {
        return PurgePlan {
            items: Vec::new(),
            calls: Vec::new(),
            changed: 0,
            billed: 0,
            swept: 0,
        };
    }
    let allow = Allowance::new(opts);
    let solved = if !tree.odd.is_empty() && !lim.paths {
        None
    } else {
        solve(&tree, &lim, allow).or_else(|| {
            lim.prefixes
                .then(|| solve(&tree, &lim, Allowance::ANY))
                .flatten()
        })
    };
    let (mut items, swept) = match solved {
        Some(marks) => emit(&tree, &marks, !lim.prefixes && lim.all),
        None if lim.all => {
            let swept = tree.unchanged[0] + tree.odd_unchanged;
            (vec![everything_item(&tree, swept)], swept)
        }
        // Nothing usable (see the doc comment): list the URLs.
        None => emit(&tree, &vec![Mark::Open; tree.dir.len()], false),
    };
    if !tree.odd.is_empty() && items.first().is_none_or(|i| i.item.kind != ItemKind::All) {
        items.extend(tree.odd.iter().map(|u| path_item(u)));
        let first_path = items
            .iter()
            .position(|i| i.item.kind == ItemKind::Path)
            .unwrap_or(items.len());
        items[first_path..].sort_unstable_by(|a, b| a.item.value.cmp(&b.item.value));
    }
    let calls = split_calls(&items, &lim);
    PurgePlan {
        billed: items.len(),
        swept: swept as usize,
        changed: distinct,
        items,
        calls,
    }
}

/// True when `caps` can purge URLs at all (single paths, prefixes or everything); when false, [`plan`]
/// cannot produce a plan the provider can send, and tags ([`tag_plan`]) are the only way.
pub fn can_cover_urls(caps: &Capabilities) -> bool {
    let lim = Limits::new(caps);
    lim.paths || lim.prefixes || lim.all
}

/// Plans tag items (surrogate keys) for providers that purge by tag: deduplicated, sorted, split into
/// calls of at most `max_items_per_call`. `covers` is 1 per tag.
///
/// A provider without tags (`caps.tags` false) cannot purge them: the plan is then a single
/// [`Item::all`] when the provider can purge everything, and the tag items anyway otherwise (the
/// caller must not pick tag mode for such a provider).
pub fn tag_plan(tags: &[String], caps: &Capabilities) -> PurgePlan {
    let mut tags: Vec<&str> = tags.iter().map(String::as_str).collect();
    tags.sort_unstable();
    tags.dedup();
    let distinct = tags.len();
    let items: Vec<PlannedItem> = if distinct > 0 && !caps.tags && caps.all {
        vec![PlannedItem {
            item: Item::all(),
            covers: distinct,
            examples: examples(tags.iter().copied()),
            swept: 0,
        }]
    } else {
        tags.iter()
            .map(|t| PlannedItem {
                item: Item::tag(*t),
                covers: 1,
                examples: Vec::new(),
                swept: 0,
            })
            .collect()
    };
    let per_call = caps.max_items_per_call.max(1);
    let calls = (0..items.len())
        .collect::<Vec<_>>()
        .chunks(per_call)
        .map(<[usize]>::to_vec)
        .collect();
    PurgePlan {
        billed: items.len(),
        swept: 0,
        changed: distinct,
        items,
        calls,
    }
}

/// The capabilities as the planner uses them: a kind with an in-flight limit of 0 is not usable.
#[derive(Debug, Clone, Copy)]
struct Limits {
    paths: bool,
    prefixes: bool,
    all: bool,
    /// Prefix items in the whole plan; `None`: no limit.
    prefix_budget: Option<usize>,
    per_call: usize,
    paths_per_call: usize,
    prefixes_per_call: usize,
}

impl Limits {
    fn new(caps: &Capabilities) -> Limits {
        Limits {
            paths: caps.paths && caps.max_paths_in_flight != Some(0),
            prefixes: caps.prefixes && caps.max_prefixes_in_flight != Some(0),
            all: caps.all,
            prefix_budget: caps.max_prefixes_in_flight,
            per_call: caps.max_items_per_call.max(1),
            paths_per_call: caps.max_paths_in_flight.unwrap_or(usize::MAX).max(1),
            prefixes_per_call: caps.max_prefixes_in_flight.unwrap_or(usize::MAX).max(1),
        }
    }
}

#[cfg(test)]
mod tests {
    use std::collections::BTreeSet;

    use proptest::prelude::*;

    use super::tree::{dir_of, parent_dir};
    use super::*;

    fn caps(paths: bool, prefixes: bool, all: bool) -> Capabilities {
        Capabilities {
            paths,
            prefixes,
            tags: false,
            hosts: false,
            all,
            soft: false,
            max_items_per_call: 3000,
            max_paths_in_flight: None,
            max_prefixes_in_flight: None,
            asynchronous: false,
            pricing: Pricing::FREE,
        }
    }

    fn cloudfront() -> Capabilities {
        Capabilities {
            max_paths_in_flight: Some(3000),
            max_prefixes_in_flight: Some(15),
            asynchronous: true,
            pricing: Pricing {
                per_item_usd: 0.005,
                free_items_per_month: 1000,
            },
            ..caps(true, true, true)
        }
    }

    fn strings(v: &[&str]) -> Vec<String> {
        v.iter().map(|s| s.to_string()).collect()
    }

    /// Every URL of the pages `keys` (`d/index.html` also gives `/d/`).
    fn page_urls(keys: &[&str]) -> Vec<String> {
        keys.iter()
            .flat_map(|k| key_urls(k, "/", false, false))
            .collect()
    }

    /// The plan's items as displayed (`/a.html`, `/d/*`, `everything`).
    fn shown(p: &PurgePlan) -> Vec<String> {
        p.items.iter().map(|i| i.item.to_string()).collect()
    }

    fn opts(ceiling: usize, ratio: f64) -> PlanOptions {
        PlanOptions {
            sweep_ceiling: ceiling,
            sweep_ratio: ratio,
        }
    }

    /// What a broad item covering `covers` changed URLs may sweep under `opts`, written out apart from
    /// the planner: `max(ceiling, floor(ratio × covers))`.
    fn allowed_sweep(opts: &PlanOptions, covers: usize) -> usize {
        let relative = (opts.sweep_ratio.max(0.0) * covers as f64).floor() as usize;
        opts.sweep_ceiling.max(relative)
    }

    /// Checks what every plan must satisfy, whatever the input.
    fn check_invariants(
        p: &PurgePlan,
        changed: &[String],
        live: &[String],
        caps: &Capabilities,
        opts: &PlanOptions,
    ) {
        let distinct: BTreeSet<&str> = changed.iter().map(String::as_str).collect();
        let live_set: BTreeSet<&str> = live.iter().map(String::as_str).collect();
        assert_eq!(p.changed, distinct.len());
        assert_eq!(p.billed, p.items.len());
        // (1) every changed URL is covered
        for u in &distinct {
            assert!(
                p.items.iter().any(|i| i.item.covers(u)),
                "`{u}` is missed by {:?}",
                shown(p)
            );
        }
        // kinds the provider supports
        if can_cover_urls(caps) {
            let lim = Limits::new(caps);
            for i in &p.items {
                let ok = match i.item.kind {
                    ItemKind::Path => lim.paths,
                    ItemKind::Prefix => lim.prefixes,
                    ItemKind::All => lim.all,
                    _ => false,
                };
                assert!(ok, "{} is not supported by {caps:?}", i.item);
            }
        }
        // fields: covers, examples, swept, order
        let mut swept_total = 0;
        for i in &p.items {
            let covered: Vec<&str> = distinct
                .iter()
                .copied()
                .filter(|u| i.item.covers(u))
                .collect();
            assert_eq!(i.covers, covered.len(), "covers of {}", i.item);
            assert_eq!(
                i.examples,
                covered
                    .iter()
                    .take(5)
                    .map(|s| s.to_string())
                    .collect::<Vec<_>>()
            );
            let swept = live_set
                .iter()
                .filter(|u| !distinct.contains(*u) && i.item.covers(u))
                .count();
            assert_eq!(i.swept, swept, "swept of {}", i.item);
            swept_total += swept;
        }
        assert_eq!(p.swept, swept_total);
        let rank = |k: ItemKind| match k {
            ItemKind::All => 0,
            ItemKind::Prefix => 1,
            _ => 2,
        };
        for w in p.items.windows(2) {
            let (a, b) = (&w[0].item, &w[1].item);
            assert!(
                (rank(a.kind), &a.value) < (rank(b.kind), &b.value),
                "order: {a} before {b}"
            );
        }
        // no item is covered by another one
        for a in &p.items {
            for b in &p.items {
                if a != b && a.item.kind != ItemKind::Path {
                    assert!(
                        !b.item.covers(&a.item.value) || b.item.kind == ItemKind::Path,
                        "{} inside {}",
                        a.item,
                        b.item
                    );
                }
            }
        }
        // (2) calls: every item once, in order, within the limits
        let flat: Vec<usize> = p.calls.iter().flatten().copied().collect();
        assert_eq!(flat, (0..p.items.len()).collect::<Vec<_>>());
        let prefixes = p
            .items
            .iter()
            .filter(|i| i.item.kind == ItemKind::Prefix)
            .count();
        if let Some(max) = caps.max_prefixes_in_flight {
            assert!(prefixes <= max, "{prefixes} prefixes > {max}");
        }
        for call in &p.calls {
            assert!(!call.is_empty());
            assert!(call.len() <= caps.max_items_per_call.max(1));
            let count = |k: ItemKind| call.iter().filter(|&&i| p.items[i].item.kind == k).count();
            if let (Some(max), true) = (caps.max_paths_in_flight, can_cover_urls(caps)) {
                assert!(count(ItemKind::Path) <= max);
            }
            if let Some(max) = caps.max_prefixes_in_flight {
                assert!(count(ItemKind::Prefix) <= max);
            }
        }
        // (3) the sweep allowance, and (4) never worse than listing the URLs, whenever paths are
        // possible
        if Limits::new(caps).paths {
            for i in &p.items {
                if i.item.kind != ItemKind::Path {
                    let allowed = allowed_sweep(opts, i.covers);
                    assert!(
                        i.swept <= allowed,
                        "{} covers {} and sweeps {} > {allowed} ({opts:?})",
                        i.item,
                        i.covers,
                        i.swept
                    );
                }
            }
            assert!(p.billed <= distinct.len());
        }
    }

    /// [`plan`] with a ceiling alone (ratio 0), checked.
    fn run(changed: &[String], live: &[String], caps: &Capabilities, ceiling: usize) -> PurgePlan {
        run_with(changed, live, caps, &opts(ceiling, 0.0))
    }

    /// [`plan`], checked.
    fn run_with(
        changed: &[String],
        live: &[String],
        caps: &Capabilities,
        opts: &PlanOptions,
    ) -> PurgePlan {
        let p = plan(changed, live, caps, opts);
        check_invariants(&p, changed, live, caps, opts);
        p
    }

    #[test]
    fn examples() {
        let docs = page_urls(&[
            "index.html",
            "docs/index.html",
            "docs/a/index.html",
            "docs/b/index.html",
        ]);
        let site: Vec<String> = docs
            .iter()
            .cloned()
            .chain(strings(&[
                "/docs/a/x.html",
                "/docs/a/y.html",
                "/docs/a/z.html",
                "/robots.txt",
            ]))
            .collect();
        struct Case {
            name: &'static str,
            changed: Vec<String>,
            live: Vec<String>,
            caps: Capabilities,
            ceiling: usize,
            want: &'static [&'static str],
            swept: usize,
        }
        let cases = [
            Case {
                name: "one changed page is one path",
                changed: strings(&["/robots.txt"]),
                live: site.clone(),
                caps: cloudfront(),
                ceiling: 50,
                want: &["/robots.txt"],
                swept: 0,
            },
            Case {
                name: "an index page is its file and its folder URL: one prefix sweeping nothing beats two paths",
                changed: page_urls(&["docs/b/index.html"]),
                live: site.clone(),
                caps: cloudfront(),
                ceiling: 50,
                want: &["/docs/b/*"],
                swept: 0,
            },
            Case {
                name: "an index page whose folder holds 7 unchanged URLs: one prefix under ceiling 50",
                changed: page_urls(&["docs/index.html"]),
                live: site.clone(),
                caps: cloudfront(),
                ceiling: 50,
                want: &["/docs/*"],
                swept: 7,
            },
            Case {
                name: "the same under ceiling 6: two paths",
                changed: page_urls(&["docs/index.html"]),
                live: site.clone(),
                caps: cloudfront(),
                ceiling: 6,
                want: &["/docs/", "/docs/index.html"],
                swept: 0,
            },
            Case {
                name: "a folder changed with 3 unchanged siblings: one prefix within the ceiling",
                changed: page_urls(&["docs/a/index.html"]),
                live: site.clone(),
                caps: cloudfront(),
                ceiling: 3,
                want: &["/docs/a/*"],
                swept: 3,
            },
            Case {
                name: "the same with ceiling 0: paths",
                changed: page_urls(&["docs/a/index.html"]),
                live: site.clone(),
                caps: cloudfront(),
                ceiling: 0,
                want: &["/docs/a/", "/docs/a/index.html"],
                swept: 0,
            },
            Case {
                name: "no prefixes: paths only",
                changed: page_urls(&["docs/b/index.html"]),
                live: site.clone(),
                caps: caps(true, false, false),
                ceiling: 50,
                want: &["/docs/b/", "/docs/b/index.html"],
                swept: 0,
            },
            Case {
                name: "everything changed: the root prefix",
                changed: site.clone(),
                live: site.clone(),
                caps: cloudfront(),
                ceiling: 0,
                want: &["/*"],
                swept: 0,
            },
            Case {
                name: "everything changed, no prefixes: everything",
                changed: site.clone(),
                live: site.clone(),
                caps: caps(true, false, true),
                ceiling: 0,
                want: &["everything"],
                swept: 0,
            },
            Case {
                name: "the root prefix when it is the cheapest within the ceiling",
                changed: strings(&["/", "/index.html", "/robots.txt"]),
                live: site.clone(),
                caps: cloudfront(),
                ceiling: 9,
                want: &["/*"],
                swept: 9,
            },
            Case {
                name: "and not when it sweeps more than the ceiling",
                changed: strings(&["/", "/index.html", "/robots.txt"]),
                live: site.clone(),
                caps: cloudfront(),
                ceiling: 8,
                want: &["/", "/index.html", "/robots.txt"],
                swept: 0,
            },
            Case {
                name: "only everything",
                changed: strings(&["/robots.txt"]),
                live: site.clone(),
                caps: caps(false, false, true),
                ceiling: 0,
                want: &["everything"],
                swept: site.len() - 1,
            },
            Case {
                name: "no paths: the ceiling gives way before a URL is missed",
                changed: strings(&["/docs/a/x.html"]),
                live: site.clone(),
                caps: caps(false, true, false),
                ceiling: 2,
                want: &["/docs/a/*"],
                swept: 4,
            },
            Case {
                name: "deleted URLs are covered and sweep nothing",
                changed: strings(&["/gone/a.html", "/gone/b.html"]),
                live: site.clone(),
                caps: cloudfront(),
                ceiling: 0,
                want: &["/gone/*"],
                swept: 0,
            },
            Case {
                name: "duplicates are one URL; a bare folder URL is a file of its parent",
                changed: strings(&["/docs/b", "/docs/b", "/docs/b/", "/docs/b/index.html"]),
                live: site.clone(),
                caps: cloudfront(),
                ceiling: 0,
                want: &["/docs/b/*", "/docs/b"],
                swept: 0,
            },
            Case {
                name: "nothing changed",
                changed: vec![],
                live: site.clone(),
                caps: cloudfront(),
                ceiling: 0,
                want: &[],
                swept: 0,
            },
        ];
        for c in cases {
            let p = run(&c.changed, &c.live, &c.caps, c.ceiling);
            assert_eq!(shown(&p), c.want, "{}", c.name);
            assert_eq!(p.swept, c.swept, "{}", c.name);
        }
    }

    #[test]
    fn sweep_ratio() {
        // `/f/`: 10 changed pages and 15 unchanged ones. `/g/`: two folders of 6 changed pages each,
        // and one of 10 unchanged pages.
        let f: Vec<String> = (0..25).map(|i| format!("/f/p{i:02}.html")).collect();
        let f_changed = f[..10].to_vec();
        let f_paths: Vec<&str> = f_changed.iter().map(String::as_str).collect();
        let g_changed: Vec<String> = ["a", "b"]
            .iter()
            .flat_map(|d| (0..6).map(move |i| format!("/g/{d}/p{i}.html")))
            .collect();
        let g_live: Vec<String> = g_changed
            .iter()
            .cloned()
            .chain((0..10).map(|i| format!("/g/u/p{i}.html")))
            .collect();
        let one_prefix = Capabilities {
            max_prefixes_in_flight: Some(1),
            ..caps(true, true, false)
        };
        let g_a_then_b: Vec<&str> = std::iter::once("/g/a/*")
            .chain(g_changed[6..].iter().map(String::as_str))
            .collect();
        struct Case<'a> {
            name: &'static str,
            changed: &'a [String],
            live: &'a [String],
            caps: Capabilities,
            ceiling: usize,
            ratio: f64,
            want: Vec<&'a str>,
            swept: usize,
        }
        let cases = [
            Case {
                name: "ratio 0: the ceiling alone, 15 > 5: paths",
                changed: &f_changed,
                live: &f,
                caps: cloudfront(),
                ceiling: 5,
                ratio: 0.0,
                want: f_paths.clone(),
                swept: 0,
            },
            Case {
                name: "ratio 2: 15 <= 2 × 10: one prefix",
                changed: &f_changed,
                live: &f,
                caps: cloudfront(),
                ceiling: 5,
                ratio: 2.0,
                want: vec!["/f/*"],
                swept: 15,
            },
            Case {
                name: "ratio 1: 15 > 1 × 10: paths",
                changed: &f_changed,
                live: &f,
                caps: cloudfront(),
                ceiling: 5,
                ratio: 1.0,
                want: f_paths.clone(),
                swept: 0,
            },
            Case {
                name: "ratio 1.5: 15 <= 15, the bound included: one prefix",
                changed: &f_changed,
                live: &f,
                caps: cloudfront(),
                ceiling: 5,
                ratio: 1.5,
                want: vec!["/f/*"],
                swept: 15,
            },
            Case {
                name: "ratio 1.45: floor(14.5) = 14 < 15: paths",
                changed: &f_changed,
                live: &f,
                caps: cloudfront(),
                ceiling: 5,
                ratio: 1.45,
                want: f_paths.clone(),
                swept: 0,
            },
            Case {
                name: "the larger of the two counts: ceiling 15 over ratio 0.5",
                changed: &f_changed,
                live: &f,
                caps: cloudfront(),
                ceiling: 15,
                ratio: 0.5,
                want: vec!["/f/*"],
                swept: 15,
            },
            Case {
                name: "a negative ratio is 0",
                changed: &f_changed,
                live: &f,
                caps: cloudfront(),
                ceiling: 5,
                ratio: -3.0,
                want: f_paths.clone(),
                swept: 0,
            },
            Case {
                name: "no prefixes: everything follows the same rule (ratio 2)",
                changed: &f_changed,
                live: &f,
                caps: caps(true, false, true),
                ceiling: 5,
                ratio: 2.0,
                want: vec!["everything"],
                swept: 15,
            },
            Case {
                name: "no prefixes: everything follows the same rule (ratio 1)",
                changed: &f_changed,
                live: &f,
                caps: caps(true, false, true),
                ceiling: 5,
                ratio: 1.0,
                want: f_paths.clone(),
                swept: 0,
            },
            Case {
                name: "a prefix counts every changed URL under it: /g/ covers 12, 10 <= 1 × 12",
                changed: &g_changed,
                live: &g_live,
                caps: one_prefix.clone(),
                ceiling: 0,
                ratio: 1.0,
                want: vec!["/g/*"],
                swept: 10,
            },
            Case {
                name: "and 10 > floor(0.5 × 12): one folder prefix (the limit), the rest paths",
                changed: &g_changed,
                live: &g_live,
                caps: one_prefix.clone(),
                ceiling: 0,
                ratio: 0.5,
                want: g_a_then_b.clone(),
                swept: 0,
            },
        ];
        for c in cases {
            let p = run_with(c.changed, c.live, &c.caps, &opts(c.ceiling, c.ratio));
            assert_eq!(shown(&p), c.want, "{}", c.name);
            assert_eq!(p.swept, c.swept, "{}", c.name);
        }
        // The allowance as the options state it.
        let o = opts(50, 2.0);
        assert_eq!(
            (o.allowance(0), o.allowance(25), o.allowance(40)),
            (50, 50, 80)
        );
        assert_eq!(opts(5, f64::NAN).allowance(1000), 5);
        assert_eq!(opts(0, f64::INFINITY).allowance(1), usize::MAX);
        assert_eq!(PlanOptions::default(), opts(50, 0.0));
    }

    #[test]
    fn cloudfront_wildcard_limit() {
        // 20 folders of 3 changed pages each: 20 prefixes would be cheapest, CloudFront allows 15.
        let keys: Vec<String> = (0..20)
            .flat_map(|f| (0..3).map(move |p| format!("f{f:02}/p{p}.html")))
            .collect();
        let changed: Vec<String> = keys.iter().map(|k| format!("/{k}")).collect();
        // 100 unchanged pages at the root keep `/` out of reach.
        let live: Vec<String> = changed
            .iter()
            .cloned()
            .chain((0..100).map(|i| format!("/r{i}.html")))
            .collect();
        let p = run(&changed, &live, &cloudfront(), 50);
        assert_eq!(
            p.items
                .iter()
                .filter(|i| i.item.kind == ItemKind::Prefix)
                .count(),
            15
        );
        assert_eq!(p.billed, 15 + 5 * 3);
        let unlimited = Capabilities {
            max_prefixes_in_flight: None,
            ..cloudfront()
        };
        assert_eq!(run(&changed, &live, &unlimited, 50).billed, 20);
    }

    #[test]
    fn order_does_not_matter_at_scale() {
        // Enough URLs for the fast paths to give up on scrambled input and use the index.
        let mut site: Vec<String> = Vec::new();
        for a in 0..6 {
            site.push(format!("/s{a}/index.html"));
            site.push(format!("/s{a}/"));
            for b in 0..8 {
                for c in 0..6 {
                    site.extend(key_urls(
                        &format!("s{a}/t{b}/p{c}/index.html"),
                        "/",
                        false,
                        false,
                    ));
                }
                site.push(format!("/s{a}/t{b}/feed.xml"));
            }
        }
        site.sort();
        let scramble = |v: &[String], seed: u64| -> Vec<String> {
            let mut keyed: Vec<(u64, &String)> = v
                .iter()
                .enumerate()
                .map(|(i, s)| {
                    (
                        (i as u64 + seed).wrapping_mul(0x9e37_79b9_7f4a_7c15) >> 7,
                        s,
                    )
                })
                .collect();
            keyed.sort();
            keyed.into_iter().map(|(_, s)| s.clone()).collect()
        };
        let changed: Vec<String> = site
            .iter()
            .enumerate()
            .filter(|(i, _)| i % 3 != 1)
            .map(|(_, s)| s.clone())
            .collect();
        let mut rev_changed = changed.clone();
        rev_changed.reverse();
        let mut rev_site = site.clone();
        rev_site.reverse();
        for caps in [
            cloudfront(),
            caps(true, true, false),
            caps(true, false, true),
        ] {
            for (ceiling, ratio) in [(0, 0.0), (5, 0.0), (50, 0.0), (0, 0.5), (5, 2.0)] {
                let opts = opts(ceiling, ratio);
                let want = run_with(&changed, &site, &caps, &opts);
                assert_eq!(plan(&rev_changed, &rev_site, &caps, &opts), want);
                assert_eq!(
                    plan(&scramble(&changed, 1), &scramble(&site, 2), &caps, &opts),
                    want
                );
                assert_eq!(plan(&scramble(&changed, 3), &site, &caps, &opts), want);
            }
        }
    }

    #[test]
    fn calls_respect_limits() {
        let changed: Vec<String> = (0..25).map(|i| format!("/p{i:02}.html")).collect();
        let caps = Capabilities {
            max_items_per_call: 10,
            max_paths_in_flight: Some(4),
            ..caps(true, false, false)
        };
        let p = run(&changed, &changed, &caps, 0);
        assert_eq!(
            p.calls.iter().map(Vec::len).collect::<Vec<_>>(),
            [4, 4, 4, 4, 4, 4, 1]
        );
        let caps = Capabilities {
            max_items_per_call: 10,
            ..caps
        };
        let caps = Capabilities {
            max_paths_in_flight: None,
            ..caps
        };
        let p = run(&changed, &changed, &caps, 0);
        assert_eq!(
            p.calls.iter().map(Vec::len).collect::<Vec<_>>(),
            [10, 10, 5]
        );
    }

    #[test]
    fn uncoverable_and_odd_input() {
        // A provider that can purge no URL: the URLs are listed (documented), and can_cover_urls says so.
        let none = caps(false, false, false);
        assert!(!can_cover_urls(&none));
        let changed = strings(&["/a/b.html", "/a/c.html"]);
        let p = run(&changed, &changed, &none, 50);
        assert_eq!(shown(&p), ["/a/b.html", "/a/c.html"]);
        // Prefix budget 0 is no prefixes.
        let zero = Capabilities {
            max_prefixes_in_flight: Some(0),
            ..caps(true, true, false)
        };
        assert_eq!(
            shown(&run(&changed, &changed, &zero, 50)),
            ["/a/b.html", "/a/c.html"]
        );
        // URLs without a leading slash are paths (no prefix covers them).
        let odd = strings(&["a.html", "/a/b.html", "/a/c.html"]);
        assert_eq!(
            shown(&run(&odd, &odd, &cloudfront(), 50)),
            ["/a/*", "a.html"]
        );
        assert_eq!(
            shown(&run(&odd, &odd, &caps(false, true, true), 50)),
            ["everything"]
        );
    }

    #[test]
    fn tags() {
        let tags = strings(&["sg-b", "sg-a", "sg-b", "sg-c"]);
        let caps = Capabilities {
            tags: true,
            max_items_per_call: 2,
            ..caps(false, false, true)
        };
        let p = tag_plan(&tags, &caps);
        assert_eq!(shown(&p), ["#sg-a", "#sg-b", "#sg-c"]);
        assert_eq!(p.calls, [vec![0, 1], vec![2]]);
        assert_eq!((p.changed, p.billed, p.swept), (3, 3, 0));
        assert!(p.items.iter().all(|i| i.covers == 1));
        let no_tags = Capabilities {
            tags: false,
            ..caps
        };
        assert_eq!(shown(&tag_plan(&tags, &no_tags)), ["everything"]);
        assert!(tag_plan(&[], &caps).items.is_empty());
    }

    // ---- properties ----

    /// A URL of a small random site: folders `a`..`c` up to two deep, a few names, index entries and
    /// bare folder URLs.
    fn url(segments: &'static [&'static str], depth: usize) -> impl Strategy<Value = String> {
        let names = prop::sample::select(vec!["x.html", "index.html", "", "y"]);
        (
            prop::collection::vec(prop::sample::select(segments), 0..=depth),
            names,
        )
            .prop_map(|(dirs, name)| {
                let mut u = String::from("/");
                for d in dirs {
                    u.push_str(d);
                    u.push('/');
                }
                if name.is_empty() && u.len() > 1 && u.len() % 2 == 0 {
                    u.pop(); // a bare folder URL now and then
                }
                u + name
            })
    }

    fn any_caps() -> impl Strategy<Value = Capabilities> {
        let limit = prop::option::of(0usize..4);
        (any::<(bool, bool, bool)>(), 1usize..5, limit.clone(), limit).prop_map(
            |((paths, prefixes, all), per_call, max_paths, max_prefixes)| Capabilities {
                max_items_per_call: per_call,
                max_paths_in_flight: max_paths.map(|m| m + 1),
                max_prefixes_in_flight: max_prefixes,
                ..caps(paths, prefixes, all)
            },
        )
    }

    /// A sweep ratio: none, below one, one, and the CLI's CloudFront default.
    fn any_ratio() -> impl Strategy<Value = f64> {
        prop::sample::select(vec![0.0, 0.5, 1.0, 2.0])
    }

    /// The best (billed, swept) by trying every set of directory prefixes allowed by `opts` (each
    /// sweeping at most `max(ceiling, floor(ratio × the changed URLs it covers))`), the rest as paths.
    fn brute_force(
        changed: &[String],
        live: &[String],
        caps: &Capabilities,
        opts: &PlanOptions,
    ) -> Option<(usize, usize)> {
        let lim = Limits::new(caps);
        let distinct: BTreeSet<&str> = changed.iter().map(String::as_str).collect();
        let live: BTreeSet<&str> = live.iter().map(String::as_str).collect();
        let unchanged: Vec<&str> = live
            .iter()
            .copied()
            .filter(|u| !distinct.contains(u))
            .collect();
        let mut dirs = BTreeSet::new();
        for u in &distinct {
            let mut d = dir_of(u);
            dirs.insert(d);
            while d != "/" {
                d = parent_dir(d);
                dirs.insert(d);
            }
        }
        let sweeps = |d: &str| unchanged.iter().filter(|u| u.starts_with(d)).count();
        let covers = |d: &str| distinct.iter().filter(|u| u.starts_with(d)).count();
        // Only directories a prefix may go to, and only sets within the prefix limit.
        let dirs: Vec<&str> = dirs
            .into_iter()
            .filter(|d| lim.prefixes && sweeps(d) <= allowed_sweep(opts, covers(d)))
            .collect();
        let mut best: Option<(usize, usize)> = None;
        let mut consider = |cost: (usize, usize)| {
            if best.is_none_or(|b| cost < b) {
                best = Some(cost);
            }
        };
        if !lim.prefixes && lim.all && unchanged.len() <= allowed_sweep(opts, distinct.len()) {
            consider((1, unchanged.len()));
        }
        // Every set of at most `limit` of them (subsets in increasing index order).
        let limit = lim.prefix_budget.unwrap_or(usize::MAX).min(dirs.len());
        let mut chosen: Vec<&str> = Vec::new();
        fn subsets<'s>(
            dirs: &[&'s str],
            from: usize,
            limit: usize,
            chosen: &mut Vec<&'s str>,
            f: &mut dyn FnMut(&[&'s str]),
        ) {
            f(chosen);
            if chosen.len() == limit {
                return;
            }
            for j in from..dirs.len() {
                chosen.push(dirs[j]);
                subsets(dirs, j + 1, limit, chosen, f);
                chosen.pop();
            }
        }
        subsets(&dirs, 0, limit, &mut chosen, &mut |chosen| {
            let rest = distinct
                .iter()
                .filter(|u| !chosen.iter().any(|d| u.starts_with(d)))
                .count();
            if rest == 0 || lim.paths {
                let swept = unchanged
                    .iter()
                    .filter(|u| chosen.iter().any(|d| u.starts_with(d)))
                    .count();
                consider((chosen.len() + rest, swept));
            }
        });
        best
    }

    proptest! {
        #![proptest_config(ProptestConfig::with_cases(512))]

        #[test]
        fn plans_cover_everything_within_limits(
            site in prop::collection::btree_set(url(&["a", "b", "c"], 2), 0..30),
            picks in prop::collection::vec(any::<prop::sample::Index>(), 0..40),
            deleted in prop::collection::vec(url(&["a", "d"], 2), 0..4),
            caps in any_caps(),
            ceiling in 0usize..6,
            ratio in any_ratio(),
        ) {
            let live: Vec<String> = site.iter().cloned().collect();
            let mut changed: Vec<String> = deleted.into_iter().filter(|u| !site.contains(u)).collect();
            if !live.is_empty() {
                changed.extend(picks.iter().map(|i| live[i.index(live.len())].clone()));
            }
            let opts = opts(ceiling, ratio);
            let p = run_with(&changed, &live, &caps, &opts);
            // the same plan whatever the order of the input
            let mut rev_changed = changed.clone();
            rev_changed.reverse();
            let mut rev_live = live.clone();
            rev_live.reverse();
            prop_assert_eq!(&plan(&rev_changed, &rev_live, &caps, &opts), &p);
        }

        #[test]
        fn plans_are_minimal_when_the_prefix_limit_binds(
            site in prop::collection::btree_set(url(&["a", "b", "c"], 3), 1..40),
            picks in prop::collection::vec(any::<prop::sample::Index>(), 1..30),
            limit in 1usize..3,
            ceiling in 0usize..8,
            ratio in any_ratio(),
        ) {
            let live: Vec<String> = site.iter().cloned().collect();
            let changed: Vec<String> = picks.iter().map(|i| live[i.index(live.len())].clone()).collect();
            let caps = Capabilities { max_prefixes_in_flight: Some(limit), ..caps(true, true, false) };
            let opts = opts(ceiling, ratio);
            let p = run_with(&changed, &live, &caps, &opts);
            let best = brute_force(&changed, &live, &caps, &opts).expect("paths always work");
            prop_assert_eq!((p.billed, p.swept), best, "plan {:?}", shown(&p));
        }

        #[test]
        fn plans_are_minimal(
            site in prop::collection::btree_set(url(&["a", "b"], 2), 1..12),
            picks in prop::collection::vec(any::<prop::sample::Index>(), 1..8),
            caps in any_caps(),
            ceiling in 0usize..4,
            ratio in any_ratio(),
        ) {
            let live: Vec<String> = site.iter().cloned().collect();
            let changed: Vec<String> = picks.iter().map(|i| live[i.index(live.len())].clone()).collect();
            let opts = opts(ceiling, ratio);
            let p = run_with(&changed, &live, &caps, &opts);
            if let Some(best) = brute_force(&changed, &live, &caps, &opts) {
                prop_assert_eq!((p.billed, p.swept), best, "plan {:?}", shown(&p));
            }
        }
    }
}
