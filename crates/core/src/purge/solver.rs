//! The optimisation: for each node of the tree, a prefix or its files and its children's choices, the
//! cheapest within the sweep allowance and, when it binds, the prefix limit.

use super::Limits;
use super::items::PlanOptions;
use super::tree::Tree;

/// How many unchanged URLs a broad item may sweep, as the solver uses it ([`PlanOptions`]): the
/// user's hard cap, or none.
#[derive(Debug, Clone, Copy)]
pub(super) struct Allowance {
    pub(super) ceiling: u64,
    /// Non-negative (a negative or NaN ratio is 0).
    pub(super) ratio: f64,
}

impl Allowance {
    /// No limit: without a cap, and the fallback when no plan stays within the cap.
    pub(super) const ANY: Allowance = Allowance {
        ceiling: u64::MAX,
        ratio: 0.0,
    };

    pub(super) fn new(opts: &PlanOptions) -> Allowance {
        if opts.sweep_ceiling.is_none() && opts.sweep_ratio.is_none() {
            return Allowance::ANY;
        }
        Allowance {
            ceiling: opts.sweep_ceiling.map_or(0, |c| c as u64),
            ratio: match opts.sweep_ratio {
                Some(r) if r > 0.0 => r,
                _ => 0.0,
            },
        }
    }

    /// `max(ceiling, floor(ratio × covers))`; `as` rounds a non-negative float down and saturates.
    pub(super) fn of(self, covers: u64) -> u64 {
        self.ceiling.max((self.ratio * covers as f64) as u64)
    }

    /// Whether a broad item covering `covers` distinct changed URLs may sweep `swept` unchanged ones.
    pub(super) fn allows(self, swept: u64, covers: u64) -> bool {
        swept <= self.ceiling || swept <= self.of(covers)
    }
}

/// The prices the solver minimises with, in one exact unit: per item and per swept URL (nano-dollars,
/// or both scaled by the same factor when the free tier is searched, see `super::plan`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) struct Weights {
    pub(super) item: u64,
    pub(super) sweep: u64,
}

/// What a broad item at node `v` covers and sweeps: the prefix of its directory, or everything
/// (changed and unchanged URLs without a leading `/` included) at the root when `root_all`.
fn broad_at(t: &Tree, v: usize, root_all: bool) -> (u64, u64) {
    if v == 0 && root_all {
        (
            t.under[0] as u64 + t.odd.len() as u64,
            t.unchanged[0] + t.odd_unchanged,
        )
    } else {
        (t.under[v] as u64, t.unchanged[v])
    }
}

/// A partial plan's cost, ordered by (price, billed items, swept URLs, broad items): the price is
/// `item × items + sweep × swept` under the [`Weights`], exact in a `u128`; the counts break ties.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
pub(super) struct Cost {
    pub(super) price: u128,
    pub(super) items: u32,
    pub(super) swept: u64,
    pub(super) broad: u32,
}

/// The difference of two costs, signed per field (what one choice gains over another).
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
struct Gain(i128, i64, i128, i64);

impl Cost {
    const ZERO: Cost = Cost {
        price: 0,
        items: 0,
        swept: 0,
        broad: 0,
    };
    const INF: Cost = Cost {
        price: u128::MAX,
        items: u32::MAX,
        swept: u64::MAX,
        broad: u32::MAX,
    };

    pub(super) fn new(w: Weights, items: u64, swept: u64, broad: u64) -> Cost {
        let price = (w.item as u128 * items as u128).checked_add(w.sweep as u128 * swept as u128);
        match (price, u32::try_from(items), u32::try_from(broad)) {
            (Some(price), Ok(items), Ok(broad)) => Cost {
                price,
                items,
                swept,
                broad,
            },
            _ => Cost::INF,
        }
    }

    pub(super) fn add(self, other: Cost) -> Cost {
        if self == Cost::INF || other == Cost::INF {
            return Cost::INF;
        }
        let sum = (|| {
            Some(Cost {
                price: self.price.checked_add(other.price)?,
                items: self.items.checked_add(other.items)?,
                swept: self.swept.checked_add(other.swept)?,
                broad: self.broad.checked_add(other.broad)?,
            })
        })();
        sum.filter(|c| *c != Cost::INF).unwrap_or(Cost::INF)
    }

    /// `self - other`, field by field (both finite).
    fn gain_over(self, other: Cost) -> Gain {
        Gain(
            self.price as i128 - other.price as i128,
            self.items as i64 - other.items as i64,
            self.swept as i128 - other.swept as i128,
            self.broad as i64 - other.broad as i64,
        )
    }

    /// `self - g`, where `self` holds (field by field) the cost `g` was taken from.
    fn less(self, g: Gain) -> Cost {
        Cost {
            price: (self.price as i128 - g.0) as u128,
            items: (self.items as i64 - g.1) as u32,
            swept: (self.swept as i128 - g.2) as u64,
            broad: (self.broad as i64 - g.3) as u32,
        }
    }
}

/// What the solution does at a node.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) enum Mark {
    /// Its files are paths; its children decide for themselves.
    Open,
    /// One broad item here: the prefix of the directory, or everything at the root.
    Broad,
    /// An ancestor's broad item covers it.
    Covered,
}

/// The cheapest plan within the sweep allowance (and the prefix limit), as each node's mark; `None`
/// when no plan stays within the allowance. The tree is solved first without the prefix limit (one
/// cost per node); only when that plan holds more prefixes than allowed is it solved again with a
/// budget.
///
/// Returns the marks with the plan's cost (odd URLs, those without a leading `/`, included).
pub(super) fn solve(
    t: &Tree,
    lim: &Limits,
    allow: Allowance,
    w: Weights,
) -> Option<(Vec<Mark>, Cost)> {
    let (marks, cost) = unlimited(t, lim, allow, w)?;
    let solved = match lim.prefix_budget {
        Some(budget) if lim.prefixes => {
            let used = marks.iter().filter(|&&m| m == Mark::Broad).count();
            if used <= budget {
                (marks, cost)
            } else {
                knapsack(t, lim, allow, w, budget, 1)?
            }
        }
        _ => (marks, cost),
    };
    // Odd URLs are paths, unless everything is purged (`root_all`, counted at the root).
    let root_all = !lim.prefixes && lim.all;
    if root_all {
        return Some(solved);
    }
    let odd = Cost::new(w, t.odd.len() as u64, 0, 0);
    Some((solved.0, solved.1.add(odd)))
}

/// The cost of a node's own files as paths (infinite without path items), plus, at the root when
/// everything is the broad item there, the odd URLs (which everything covers too).
fn files_cost(t: &Tree, lim: &Limits, w: Weights, v: usize, root_all: bool) -> Cost {
    let mut nf = t.nfiles[v] as u64;
    if v == 0 && root_all {
        nf += t.odd.len() as u64;
    }
    if nf == 0 {
        Cost::ZERO
    } else if lim.paths {
        Cost::new(w, nf, 0, 0)
    } else {
        Cost::INF
    }
}

/// The tree solved without a prefix limit: one cost per node (the knapsack with budget 0 and
/// weightless prefixes, without its bookkeeping).
fn unlimited(t: &Tree, lim: &Limits, allow: Allowance, w: Weights) -> Option<(Vec<Mark>, Cost)> {
    let n = t.dir.len();
    let root_all = !lim.prefixes && lim.all;
    let mut best = vec![Cost::ZERO; n];
    let mut broad = vec![false; n];
    for v in (0..n).rev() {
        let mut open = files_cost(t, lim, w, v, root_all);
        for &c in t.children_of(v as u32) {
            open = open.add(best[c as usize]);
        }
        let (covers, swept) = broad_at(t, v, root_all);
        let allowed = (lim.prefixes || (v == 0 && root_all)) && allow.allows(swept, covers);
        let item = Cost::new(w, 1, swept, 1);
        broad[v] = allowed && item < open;
        best[v] = if broad[v] { item } else { open };
    }
    if best[0] == Cost::INF {
        return None;
    }
    let mut marks = vec![Mark::Open; n];
    for v in 0..n {
        if v > 0 && marks[t.parent[v] as usize] != Mark::Open {
            marks[v] = Mark::Covered;
        } else if broad[v] {
            marks[v] = Mark::Broad;
        }
    }
    Some((marks, best[0]))
}

/// How a child's vector joins its parent's.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Join {
    /// One entry: a constant.
    Fixed,
    /// Two entries (without and with one prefix): the parent gives its prefixes to the children
    /// that gain most, in one sort.
    Pick,
    /// Longer, or infeasible without a prefix: a min-plus convolution.
    Merge,
}

/// The tree knapsack. For each node `v`, `best_v[k]` = the cheapest cover of `v`'s subtree using at
/// most `k` prefixes (each weighing `weight`: 0 = no limit, with `kmax` 0), no item above `v`:
/// either one broad item at `v` (prefix, or everything at the root), or `v`'s files as paths plus the
/// min-plus convolution of its children's vectors. Vectors are non-increasing; a vector shorter than
/// the budget repeats its last value (trailing equal entries are dropped, so they stay short). The
/// convolution of many two-entry vectors is exactly "the `k` largest gains", so those are sorted
/// instead of convolved.
fn knapsack(
    t: &Tree,
    lim: &Limits,
    allow: Allowance,
    wt: Weights,
    kmax: usize,
    weight: usize,
) -> Option<(Vec<Mark>, Cost)> {
    let n = t.dir.len();
    let root_all = !lim.prefixes && lim.all;

    let mut best: Vec<Cost> = Vec::with_capacity(n + n / 2);
    let mut best_at = vec![0u32; n];
    let mut best_len = vec![0u32; n];
    let mut join = vec![Join::Fixed; n];
    // For a `Merge` child `c`: `splits[split_at[c]..][..split_len[c]][k]` = the budget `c` got when
    // its parent's partial vector had budget `k` after merging `c`.
    let mut splits: Vec<u32> = Vec::new();
    let mut split_at = vec![0u32; n];
    let mut split_len = vec![0u32; n];
    // For a node: its `Pick` children that get a prefix first, best gain first
    // (`picks[pick_at[v]..][..pick_len[v]]`).
    let mut picks: Vec<u32> = Vec::new();
    let mut pick_at = vec![0u32; n];
    let mut pick_len = vec![0u32; n];
    // A broad item at `v` is chosen for budgets `k` in `w..broad_below[v]`.
    let mut broad_below = vec![0u32; n];

    let mut acc: Vec<Cost> = Vec::new();
    let mut tmp: Vec<Cost> = Vec::new();
    // (gain, position among the node's two-entry children, child)
    let mut gains: Vec<(Gain, u32, u32)> = Vec::new();
    for v in (0..n).rev() {
        let kids = t.children_of(v as u32);
        let mut base = files_cost(t, lim, wt, v, root_all);
        let (covers, swept) = broad_at(t, v, root_all);
        let allowed = (lim.prefixes || (v == 0 && root_all)) && allow.allows(swept, covers);
        let w = if v == 0 && root_all { 0 } else { weight };
        let broad = Cost::new(wt, 1, swept, 1);
        if kids.is_empty() {
            // A leaf (most nodes): its files as paths, or one prefix from budget `w` on.
            best_at[v] = best.len() as u32;
            pick_at[v] = picks.len() as u32;
            if allowed && broad < base {
                if w > 0 {
                    best.push(base);
                }
                best.push(broad);
                broad_below[v] = u32::MAX;
            } else {
                best.push(base);
            }
            best_len[v] = best.len() as u32 - best_at[v];
            continue;
        }
        gains.clear();
        for &c in kids {
            let b = &best[best_at[c as usize] as usize..][..best_len[c as usize] as usize];
            join[c as usize] = match b.len() {
                1 => {
                    base = base.add(b[0]);
                    Join::Fixed
                }
                2 if b[0] != Cost::INF => {
                    base = base.add(b[0]);
                    gains.push((b[0].gain_over(b[1]), gains.len() as u32, c));
                    Join::Pick
                }
                _ => Join::Merge,
            };
        }
        acc.clear();
        acc.push(base);
        pick_at[v] = picks.len() as u32;
        if base != Cost::INF && !gains.is_empty() {
            // best gain first; equal gains in directory order
            gains.sort_unstable_by(|a, b| b.0.cmp(&a.0).then(a.1.cmp(&b.1)));
            let take = gains.len().min(kmax);
            for &(g, _, c) in &gains[..take] {
                acc.push(acc[acc.len() - 1].less(g));
                picks.push(c);
            }
        }
        pick_len[v] = picks.len() as u32 - pick_at[v];

        for &c in kids {
            let c = c as usize;
            if join[c] != Join::Merge {
                continue;
            }
            let b = &best[best_at[c] as usize..][..best_len[c] as usize];
            let len = (acc.len() + b.len() - 1).min(kmax + 1);
            tmp.clear();
            tmp.resize(len, Cost::INF);
            let at = splits.len();
            splits.resize(at + len, 0);
            for (i, &a) in acc.iter().enumerate() {
                if a == Cost::INF {
                    continue;
                }
                for (j, &bj) in b.iter().enumerate().take(len - i) {
                    let s = a.add(bj);
                    if s < tmp[i + j] {
                        tmp[i + j] = s;
                        splits[at + i + j] = j as u32;
                    }
                }
            }
            while tmp.len() > 1 && tmp[tmp.len() - 1] == tmp[tmp.len() - 2] {
                tmp.pop();
            }
            splits.truncate(at + tmp.len());
            split_at[c] = at as u32;
            split_len[c] = tmp.len() as u32;
            std::mem::swap(&mut acc, &mut tmp);
        }

        best_at[v] = best.len() as u32;
        if allowed {
            let at = |k: usize| acc[k.min(acc.len() - 1)];
            let len = acc.len().max(w + 1);
            broad_below[v] = (w..len)
                .find(|&k| at(k) <= broad)
                .unwrap_or(u32::MAX as usize) as u32;
            let start = best.len();
            best.extend((0..len).map(|k| if k < w { at(k) } else { at(k).min(broad) }));
            while best.len() - start > 1 && best[best.len() - 1] == best[best.len() - 2] {
                best.pop();
            }
        } else {
            best.extend_from_slice(&acc);
        }
        best_len[v] = best.len() as u32 - best_at[v];
    }

    let root = &best[best_at[0] as usize..][..best_len[0] as usize];
    let cost = root[root.len() - 1];
    if cost == Cost::INF {
        return None;
    }

    // Top-down: replay the decisions with each node's budget.
    let mut marks = vec![Mark::Open; n];
    let mut budget = vec![0u32; n];
    budget[0] = root.len() as u32 - 1;
    for v in 0..n {
        let kids = t.children_of(v as u32);
        if marks[v] == Mark::Covered {
            for &c in kids {
                marks[c as usize] = Mark::Covered;
            }
            continue;
        }
        let w = if v == 0 && root_all { 0 } else { weight };
        let k = budget[v];
        if k >= w as u32 && k < broad_below[v] {
            marks[v] = Mark::Broad;
            for &c in kids {
                marks[c as usize] = Mark::Covered;
            }
            continue;
        }
        let mut k = k;
        for &c in kids.iter().rev() {
            let c = c as usize;
            if join[c] != Join::Merge {
                continue;
            }
            let split = &splits[split_at[c] as usize..][..split_len[c] as usize];
            let kk = k.min(split.len() as u32 - 1);
            let j = split[kk as usize];
            budget[c] = j;
            k = kk - j;
        }
        let pick = &picks[pick_at[v] as usize..][..pick_len[v] as usize];
        for &c in &pick[..(k as usize).min(pick.len())] {
            budget[c as usize] = 1;
        }
    }
    Some((marks, cost))
}
