//! What one provider must drop, as a plan for its capabilities and prices.
//!
//! Invariant (ARCHITECTURE.md, 11): **a purge never misses a changed URL**, and **without a known
//! inventory, URLs handed in never become wildcards**: a prefix over paths given on the command line (or
//! by an event) is only chosen when the live URLs under it are known, since nothing else tells what the
//! prefix would sweep.

use std::collections::BTreeSet;

use staleguard_core::changes::Changes;
use staleguard_core::config::PurgeBy;
use staleguard_core::purge::{self, Capabilities, Item, PlanOptions, PlannedItem, PurgePlan};

use crate::Error;

/// What to plan for.
#[derive(Debug, Clone, Copy)]
pub enum Wanted<'a> {
    /// Changed objects (a deploy's, or everything pending since the CDN's last purge).
    Changes(&'a Changes),
    /// URL paths and items handed in. `paths` go through the planner, bounded by `inventory` (the
    /// current deploy's live objects) when known; `items` are sent as given.
    Explicit {
        paths: &'a [String],
        items: &'a [Item],
        inventory: Option<&'a Changes>,
    },
}

/// How the provider is to be planned for: its label in messages, `purge-by`, the sweep allowance.
#[derive(Debug, Clone)]
pub struct Policy {
    pub provider: String,
    pub purge_by: PurgeBy,
    pub options: PlanOptions,
    /// Where the store's keys are served (`/`, `/site/`).
    pub url_prefix: String,
    /// `[serve] clean-urls`: `about.html` is also `/about`.
    pub clean_urls: bool,
}

/// The purge items for one provider.
pub fn plan(policy: &Policy, caps: &Capabilities, wanted: Wanted<'_>) -> Result<PurgePlan, Error> {
    let opts = &policy.options;
    let prefix = policy.url_prefix.as_str();
    let (paths, items, inventory) = match wanted {
        Wanted::Changes(changes) => {
            if policy.purge_by == PurgeBy::Tags {
                if !caps.tags {
                    return Err(Error::TagsUnsupported {
                        provider: policy.provider.clone(),
                    });
                }
                let mut plan = purge::tag_plan(&changes.tags(), caps);
                plan.price(&caps.pricing, opts);
                return Ok(plan);
            }
            let (changed, live) = changes.urls(prefix, policy.clean_urls);
            return Ok(purge::plan(&changed, &live, caps, opts));
        }
        Wanted::Explicit {
            paths,
            items,
            inventory,
        } => (paths, items, inventory),
    };
    for it in items {
        if !caps.supports(it.kind) {
            return Err(Error::ItemUnsupported {
                item: it.to_string(),
                provider: policy.provider.clone(),
                kind: it.kind,
            });
        }
    }
    let mut plan = if paths.is_empty() {
        purge::plan(&[], &[], caps, opts)
    } else {
        let full: Vec<String> = paths
            .iter()
            .map(|p| {
                if prefix == "/" || p.starts_with(prefix) {
                    p.clone()
                } else {
                    format!("{}{}", prefix.trim_end_matches('/'), p)
                }
            })
            .collect();
        match inventory {
            // The live URLs bound what a prefix may sweep.
            Some(inv) => {
                let (_, live) = inv.urls(prefix, policy.clean_urls);
                purge::plan(&full, &live, caps, opts)
            }
            // No inventory: nothing tells what a prefix would sweep, so list the paths as given.
            None => {
                let caps = Capabilities {
                    prefixes: false,
                    all: false,
                    ..caps.clone()
                };
                purge::plan(&full, &[], &caps, opts)
            }
        }
    };
    // Items given as such go in as they are, once each.
    let extra: BTreeSet<&Item> = items.iter().collect();
    for it in extra {
        plan.items.push(PlannedItem {
            item: it.clone(),
            covers: 0,
            examples: Vec::new(),
            swept: 0,
        });
        plan.billed += 1;
    }
    plan.price(&caps.pricing, opts);
    Ok(plan)
}

#[cfg(test)]
mod tests {
    use staleguard_core::changes::{Change, ChangeKind};
    use staleguard_core::purge::{ItemKind, Pricing};

    use super::*;

    fn caps(prefixes: bool, tags: bool) -> Capabilities {
        Capabilities {
            paths: true,
            prefixes,
            tags,
            hosts: false,
            all: prefixes,
            soft: false,
            max_items_per_call: 3000,
            max_paths_in_flight: None,
            max_prefixes_in_flight: None,
            asynchronous: false,
            pricing: Pricing {
                per_item_usd: 0.005,
                free_items_per_month: 0,
            },
        }
    }

    fn policy(purge_by: PurgeBy) -> Policy {
        Policy {
            provider: "cloudfront:E1".into(),
            purge_by,
            // No cap: a prefix sweeping a few URLs is cheaper than many paths.
            options: PlanOptions::default(),
            url_prefix: "/".into(),
            clean_urls: false,
        }
    }

    fn docs(n: usize) -> Vec<String> {
        (0..n).map(|i| format!("/docs/p{i}.html")).collect()
    }

    fn inventory(n: usize) -> Changes {
        Changes {
            changed: Vec::new(),
            live: (0..n).map(|i| format!("docs/p{i}.html")).collect(),
        }
    }

    fn kinds(plan: &PurgePlan) -> BTreeSet<ItemKind> {
        plan.items.iter().map(|i| i.item.kind).collect()
    }

    #[test]
    fn paths_handed_in_never_become_wildcards_without_an_inventory() {
        let paths = docs(400);
        let cases: &[(Option<Changes>, bool)] = &[(None, false), (Some(inventory(400)), true)];
        for (inv, wildcard) in cases {
            let plan = plan(
                &policy(PurgeBy::Paths),
                &caps(true, false),
                Wanted::Explicit {
                    paths: &paths,
                    items: &[],
                    inventory: inv.as_ref(),
                },
            )
            .unwrap();
            let k = kinds(&plan);
            assert_eq!(
                k.contains(&ItemKind::Prefix) || k.contains(&ItemKind::All),
                *wildcard,
                "inventory {}: {k:?}",
                inv.is_some()
            );
            // Either way, every path handed in is covered.
            for p in &paths {
                assert!(plan.items.iter().any(|i| i.item.covers(p)), "{p} missed");
            }
            if !wildcard {
                assert_eq!(plan.items.len(), 400);
            }
        }
    }

    #[test]
    fn every_changed_url_is_covered_for_every_capability_mix() {
        let changes = Changes {
            changed: ["a.html", "docs/index.html", "docs/b.html", "x/y/z.css"]
                .into_iter()
                .map(|k| Change {
                    key: k.into(),
                    kind: ChangeKind::Content,
                })
                .collect(),
            live: [
                "a.html",
                "docs/index.html",
                "docs/b.html",
                "docs/c.html",
                "x/y/z.css",
            ]
            .into_iter()
            .map(String::from)
            .collect(),
        };
        let (changed, _) = changes.urls("/", false);
        for prefixes in [false, true] {
            let plan = plan(
                &policy(PurgeBy::Paths),
                &caps(prefixes, false),
                Wanted::Changes(&changes),
            )
            .unwrap();
            for url in &changed {
                assert!(
                    plan.items.iter().any(|i| i.item.covers(url)),
                    "{url} missed with prefixes={prefixes}: {:?}",
                    plan.items
                );
            }
        }
        let tags = plan(
            &policy(PurgeBy::Tags),
            &caps(false, true),
            Wanted::Changes(&changes),
        )
        .unwrap();
        assert_eq!(tags.items.len(), 4);
        assert!(tags.items.iter().all(|i| i.item.kind == ItemKind::Tag));
    }

    #[test]
    fn unsupported_items_and_tags_are_refused_before_any_call() {
        let e = plan(
            &policy(PurgeBy::Tags),
            &caps(true, false),
            Wanted::Changes(&inventory(1)),
        )
        .unwrap_err();
        assert!(matches!(e, Error::TagsUnsupported { .. }), "{e}");
        let e = plan(
            &policy(PurgeBy::Paths),
            &caps(true, false),
            Wanted::Explicit {
                paths: &[],
                items: &[Item::tag("product-42")],
                inventory: None,
            },
        )
        .unwrap_err();
        assert_eq!(
            e.to_string(),
            "cannot purge `#product-42`: cloudfront:E1 does not support Tag items"
        );
    }

    #[test]
    fn items_handed_in_are_sent_once_each_under_the_url_prefix() {
        let mut p = policy(PurgeBy::Paths);
        p.url_prefix = "/site/".into();
        let plan = plan(
            &p,
            &caps(true, false),
            Wanted::Explicit {
                paths: &["/a.html".into(), "/site/b.html".into()],
                items: &[Item::prefix("/docs/"), Item::prefix("/docs/")],
                inventory: None,
            },
        )
        .unwrap();
        let shown: Vec<String> = plan.items.iter().map(|i| i.item.to_string()).collect();
        assert_eq!(shown, ["/site/a.html", "/site/b.html", "/docs/*"]);
        assert_eq!(plan.billed, 3);
    }
}
