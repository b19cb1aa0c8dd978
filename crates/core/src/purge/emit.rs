//! The items of a solved plan, in their order (prefixes, then paths, each in byte order), and their
//! split into calls within the provider's limits.

use super::Limits;
use super::items::{Item, ItemKind, PlannedItem};
use super::solver::Mark;
use super::tree::{SortedWalk, Tree};

pub(super) fn path_item(url: &str) -> PlannedItem {
    PlannedItem {
        item: Item::path(url),
        covers: 1,
        examples: vec![url.to_string()],
        swept: 0,
    }
}

/// The first (at most) 5 URLs, as `--explain` examples.
pub(super) fn examples<'a>(urls: impl Iterator<Item = &'a str>) -> Vec<String> {
    urls.take(5).map(str::to_string).collect()
}

/// The first few changed URLs under node `v`, in order.
fn examples_under(t: &Tree, v: u32) -> Vec<String> {
    let mut walk = SortedWalk::new(t, v);
    let mut out = Vec::new();
    while out.len() < 5 {
        match walk.next(|_| true) {
            Some(f) => out.push(f.to_string()),
            None => break,
        }
    }
    out
}

pub(super) fn everything_item(t: &Tree, swept: u64) -> PlannedItem {
    let mut ex = examples_under(t, 0);
    if ex.len() < 5 {
        ex.extend(examples(t.odd.iter().copied().take(5 - ex.len())));
    }
    PlannedItem {
        item: Item::all(),
        covers: t.under[0] as usize + t.odd.len(),
        examples: ex,
        swept: swept as usize,
    }
}

/// The items of a solution: broad items first, then paths, each in byte order (one sorted walk).
/// Returns them with the total swept.
pub(super) fn emit(t: &Tree, marks: &[Mark], root_all: bool) -> (Vec<PlannedItem>, u64) {
    let broad_item = |v: u32| {
        if v == 0 && root_all {
            return everything_item(t, t.unchanged[0] + t.odd_unchanged);
        }
        PlannedItem {
            item: Item::prefix(t.dir[v as usize]),
            covers: t.under[v as usize] as usize,
            examples: examples_under(t, v),
            swept: t.unchanged[v as usize] as usize,
        }
    };
    if marks[0] == Mark::Broad {
        let item = broad_item(0);
        let swept = item.swept as u64;
        return (vec![item], swept);
    }
    let (mut broad, mut paths) = (0, 0);
    for (v, m) in marks.iter().enumerate() {
        match m {
            Mark::Broad => broad += 1,
            Mark::Open => paths += t.nfiles[v] as usize,
            Mark::Covered => {}
        }
    }
    let mut items = Vec::with_capacity(broad + paths);
    // Broad items: depth first over sorted children visits directories in byte order.
    let mut swept = 0;
    let mut stack = vec![0u32];
    while let Some(v) = stack.pop() {
        match marks[v as usize] {
            Mark::Broad => {
                let item = broad_item(v);
                swept += item.swept as u64;
                items.push(item);
            }
            Mark::Open => stack.extend(t.children_of(v).iter().rev()),
            Mark::Covered => {}
        }
    }
    // Paths: the files of open nodes, merged in byte order.
    let mut walk = SortedWalk::new(t, 0);
    while let Some(f) = walk.next(|c| marks[c as usize] == Mark::Open) {
        items.push(path_item(f));
    }
    (items, swept)
}

/// Splits `items` in order into calls within the per-call and in-flight limits.
pub(super) fn split_calls(items: &[PlannedItem], lim: &Limits) -> Vec<Vec<usize>> {
    let mut calls = Vec::new();
    let mut call: Vec<usize> = Vec::with_capacity(lim.per_call.min(items.len()));
    let (mut paths, mut prefixes) = (0, 0);
    for (i, it) in items.iter().enumerate() {
        let (p, x) = match it.item.kind {
            ItemKind::Path => (1, 0),
            ItemKind::Prefix => (0, 1),
            _ => (0, 0),
        };
        let full = call.len() >= lim.per_call
            || paths + p > lim.paths_per_call
            || prefixes + x > lim.prefixes_per_call;
        if full && !call.is_empty() {
            let next = Vec::with_capacity(lim.per_call.min(items.len() - i));
            calls.push(std::mem::replace(&mut call, next));
            (paths, prefixes) = (0, 0);
        }
        call.push(i);
        paths += p;
        prefixes += x;
    }
    if !call.is_empty() {
        calls.push(call);
    }
    calls
}
