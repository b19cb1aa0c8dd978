//! The planner's directory tree: the directories holding changed URLs and their ancestors, in an
//! arena (parents before children), with the changed files of each and the unchanged live URLs under it.

use std::cmp::Ordering;

use super::hasher::PathMap;

/// No node.
const NONE: u32 = u32::MAX;

/// The directories that hold changed URLs (and their ancestors), in an arena: a node's parent has a
/// smaller index than the node, so walking the indices backwards visits children before parents.
/// Strings are borrowed from the input; nothing is cloned.
pub(super) struct Tree<'a> {
    /// Each node's directory: `/`, `/docs/`, `/docs/a/`.
    pub(super) dir: Vec<&'a str>,
    pub(super) parent: Vec<u32>,
    /// Changed URLs directly in each node, sorted and deduplicated: `files[file_at[v]..][..nfiles[v]]`.
    files: Vec<&'a str>,
    file_at: Vec<u32>,
    pub(super) nfiles: Vec<u32>,
    /// Each node's child directories, sorted: `children[child_at[v]..child_at[v + 1]]`.
    children: Vec<u32>,
    child_at: Vec<u32>,
    /// Distinct changed URLs in the node's subtree.
    pub(super) under: Vec<u32>,
    /// Unchanged live URLs in the node's subtree (what a prefix there sweeps).
    pub(super) unchanged: Vec<u64>,
    /// Changed URLs that do not start with `/`, sorted and deduplicated.
    pub(super) odd: Vec<&'a str>,
    /// Live URLs that do not start with `/` and did not change.
    pub(super) odd_unchanged: u64,
}

// Byte loops rather than `rfind`/`find`: the `/` sought is usually a few bytes away, where the
// word-at-a-time search costs more than it saves.

/// The directory of a URL that starts with `/`: everything up to its last `/`.
pub(super) fn dir_of(url: &str) -> &str {
    let b = url.as_bytes();
    let mut i = b.len();
    while i > 0 && b[i - 1] != b'/' {
        i -= 1;
    }
    &url[..i.max(1)]
}

/// The parent of a directory other than `/`.
pub(super) fn parent_dir(dir: &str) -> &str {
    dir_of(&dir[..dir.len() - 1])
}

/// The first segment of `d` after byte `from`, with its `/`: `&d[..=end of segment]`.
fn next_dir(d: &str, from: usize) -> &str {
    let b = d.as_bytes();
    let mut i = from;
    while i < b.len() && b[i] != b'/' {
        i += 1;
    }
    &d[..(i + 1).min(b.len())]
}

/// Whether input arrives in an order the fast paths can use: they are tried while they succeed at
/// least about as often as they fail; once they mostly fail (input in no useful order), the hash index
/// is used directly. Only speed depends on it, never the result.
#[derive(Default)]
struct Order {
    fast: u32,
    slow: u32,
}

impl Order {
    fn useful(&self) -> bool {
        self.slow <= 2 * self.fast + 32
    }
}

/// Directory lengths below this are filtered through a bitset before a lookup.
const LEN_BITS: usize = 4096;

/// Which directory lengths below [`LEN_BITS`] some node has.
fn lengths(dir: &[&str]) -> Vec<u64> {
    let mut bits = vec![0u64; LEN_BITS / 64];
    for d in dir {
        if d.len() < LEN_BITS {
            bits[d.len() / 64] |= 1 << (d.len() % 64);
        }
    }
    bits
}

/// The nodes while the tree is built.
struct Nodes<'a> {
    pub(super) dir: Vec<&'a str>,
    pub(super) parent: Vec<u32>,
    /// The greatest child directory created so far under each node: a candidate greater than it
    /// cannot exist yet, so input in (nearly) sorted order, as a deploy diff lists it, creates each
    /// node without a lookup.
    max_child: Vec<u32>,
    /// Directory to node, made on the first need and kept up to date after.
    pub(super) index: Option<PathMap<'a>>,
}

impl<'a> Nodes<'a> {
    pub(super) fn new() -> Self {
        Nodes {
            dir: vec!["/"],
            parent: vec![NONE],
            max_child: vec![NONE],
            index: None,
        }
    }

    pub(super) fn add(&mut self, d: &'a str, p: u32) -> u32 {
        let id = self.dir.len() as u32;
        self.dir.push(d);
        self.parent.push(p);
        self.max_child.push(NONE);
        if let Some(index) = &mut self.index {
            index.insert(d, id);
        }
        let max = self.max_child[p as usize];
        if max == NONE || d > self.dir[max as usize] {
            self.max_child[p as usize] = id;
        }
        id
    }

    /// The node of directory `d` reached from the top of `stack` (ancestors of the previous one):
    /// up to a common ancestor, then down, creating children greater than every existing one.
    /// `None` when a child would have to be looked up (input out of order); `stack` stays a chain.
    fn descend(&mut self, stack: &mut Vec<u32>, d: &'a str) -> Option<u32> {
        let mut top = *stack.last().expect("`/` stays on the stack");
        while !d.starts_with(self.dir[top as usize]) {
            stack.pop();
            top = *stack.last().expect("`/` stays on the stack");
        }
        while self.dir[top as usize].len() < d.len() {
            let cand = next_dir(d, self.dir[top as usize].len());
            let max = self.max_child[top as usize];
            top = if max == NONE {
                self.add(cand, top)
            } else {
                match cand.cmp(self.dir[max as usize]) {
                    Ordering::Equal => max,
                    Ordering::Greater => self.add(cand, top),
                    Ordering::Less => return None,
                }
            };
            stack.push(top);
        }
        Some(top)
    }

    /// The node of directory `d`, by the index, created with its missing ancestors.
    fn locate(&mut self, d: &'a str) -> u32 {
        let dir = &self.dir;
        let index = self.index.get_or_insert_with(|| index_of(dir));
        if let Some(&k) = index.get(d) {
            return k;
        }
        let mut chain = vec![d];
        let mut top = loop {
            let p = parent_dir(chain[chain.len() - 1]);
            if let Some(&k) = index.get(p) {
                break k;
            }
            chain.push(p);
        };
        for &c in chain.iter().rev() {
            top = self.add(c, top);
        }
        top
    }
}

/// Directory to node.
fn index_of<'a>(dir: &[&'a str]) -> PathMap<'a> {
    let mut index = PathMap::with_capacity_and_hasher(dir.len() * 2, Default::default());
    index.extend(dir.iter().enumerate().map(|(i, &d)| (d, i as u32)));
    index
}

/// `stack` = the chain of nodes from the root to `v`.
fn chain_to(parent: &[u32], v: u32, stack: &mut Vec<u32>) {
    stack.clear();
    let mut k = v;
    while k != NONE {
        stack.push(k);
        k = parent[k as usize];
    }
    stack.reverse();
}

impl<'a> Tree<'a> {
    pub(super) fn build(changed: &'a [String], live: &[String]) -> Tree<'a> {
        let mut nodes = Nodes::new();
        // Each changed URL's node, creating what is missing (parents before children): from the
        // previous URL's node when the input is in order, else by the index.
        let mut urls = Vec::with_capacity(changed.len());
        let mut node_of = Vec::with_capacity(changed.len());
        let mut odd = Vec::new();
        let mut stack = vec![0u32];
        let mut top = 0u32;
        let mut order = Order::default();
        for u in changed {
            let u = u.as_str();
            if !u.starts_with('/') {
                odd.push(u);
                continue;
            }
            let d = dir_of(u);
            if d != nodes.dir[top as usize] {
                let fast = if order.useful() {
                    nodes.descend(&mut stack, d)
                } else {
                    None
                };
                top = match fast {
                    Some(k) => {
                        order.fast += 1;
                        k
                    }
                    None => {
                        order.slow += 1;
                        let k = nodes.locate(d);
                        if order.useful() {
                            chain_to(&nodes.parent, k, &mut stack);
                        }
                        k
                    }
                };
            }
            urls.push(u);
            node_of.push(top);
        }
        let Nodes {
            dir, parent, index, ..
        } = nodes;
        odd.sort_unstable();
        odd.dedup();
        let n = dir.len();

        // Files grouped by node (a counting sort), then sorted and deduplicated within each node.
        let mut file_at = vec![0u32; n + 1];
        for &k in &node_of {
            file_at[k as usize + 1] += 1;
        }
        for v in 0..n {
            file_at[v + 1] += file_at[v];
        }
        let mut files = vec![""; urls.len()];
        let mut fill = file_at[..n].to_vec();
        for (&u, &k) in urls.iter().zip(&node_of) {
            files[fill[k as usize] as usize] = u;
            fill[k as usize] += 1;
        }
        let mut nfiles = vec![0u32; n];
        for v in 0..n {
            let group = &mut files[file_at[v] as usize..file_at[v + 1] as usize];
            nfiles[v] = dedup_sorted(group) as u32;
        }

        // Children, sorted by directory (already, when they were created in order).
        let mut child_at = vec![0u32; n + 1];
        for &p in &parent[1..] {
            child_at[p as usize + 1] += 1;
        }
        for v in 0..n {
            child_at[v + 1] += child_at[v];
        }
        let mut children = vec![0u32; n.saturating_sub(1)];
        let mut fill = child_at[..n].to_vec();
        for (c, &p) in parent.iter().enumerate().skip(1) {
            children[fill[p as usize] as usize] = c as u32;
            fill[p as usize] += 1;
        }
        for v in 0..n {
            let group = &mut children[child_at[v] as usize..child_at[v + 1] as usize];
            if !group.is_sorted_by(|&a, &b| dir[a as usize] <= dir[b as usize]) {
                group.sort_unstable_by(|&a, &b| dir[a as usize].cmp(dir[b as usize]));
            }
        }

        let mut tree = Tree {
            dir,
            parent,
            files,
            file_at,
            nfiles,
            children,
            child_at,
            under: Vec::new(),
            unchanged: vec![0; n],
            odd,
            odd_unchanged: 0,
        };

        // Each live URL that did not change counts at its deepest node. In order: from the previous
        // URL's node, up to the common ancestor, then down through sorted children (the child
        // entered last or the next one). Otherwise: a lookup of the URL's directory, then of its
        // ancestors (only those of a length some node has). URLs under a directory that is no node
        // (nor is anything under it) are settled by the `outside` memo.
        let mut index = index;
        let mut lens: Vec<u64> = Vec::new();
        let mut stack = vec![0u32];
        let mut top = 0u32;
        let mut cursor = vec![0u32; n];
        let mut order = Order::default();
        let mut outside: (&str, u32) = ("", 0);
        for v in live {
            let v = v.as_str();
            if !v.starts_with('/') {
                if tree.odd.binary_search(&v).is_err() {
                    tree.odd_unchanged += 1;
                }
                continue;
            }
            if !outside.0.is_empty() && v.starts_with(outside.0) {
                tree.unchanged[outside.1 as usize] += 1;
                continue;
            }
            let d = dir_of(v);
            if d != tree.dir[top as usize] {
                let fast = if order.useful() {
                    tree.descend(&mut stack, &mut cursor, d)
                } else {
                    Err(())
                };
                let found = match fast {
                    Ok(found) => {
                        order.fast += 1;
                        found
                    }
                    Err(()) => {
                        order.slow += 1;
                        let index = index.get_or_insert_with(|| index_of(&tree.dir));
                        if lens.is_empty() {
                            lens = lengths(&tree.dir);
                        }
                        let found = tree.lookup(index, &lens, d);
                        if order.useful() {
                            chain_to(&tree.parent, found.1, &mut stack);
                        }
                        found
                    }
                };
                match found {
                    (Some(missed), k) => {
                        outside = (missed, k);
                        tree.unchanged[k as usize] += 1;
                        continue;
                    }
                    (None, k) => top = k,
                }
            }
            if !tree.has_file(top, v) {
                tree.unchanged[top as usize] += 1;
            }
        }

        // Subtree sums, children before parents.
        tree.under = tree.nfiles.clone();
        for v in (1..n).rev() {
            let p = tree.parent[v] as usize;
            tree.under[p] += tree.under[v];
            tree.unchanged[p] += tree.unchanged[v];
        }
        tree
    }

    fn files_of(&self, v: u32) -> &[&'a str] {
        let at = self.file_at[v as usize] as usize;
        &self.files[at..at + self.nfiles[v as usize] as usize]
    }

    /// The deepest node at or above directory `d`, reached from the top of `stack` (ancestors of
    /// the previous one): up to a common ancestor, then down through sorted children, looking only at
    /// the child at `cursor` and the one after it. `(None, node of d)`, or `(Some(dir), node)` when
    /// `dir`, on the way to `d`, is no node. `Err` when that takes a search (input out of order);
    /// `stack` stays a chain.
    #[allow(clippy::type_complexity)]
    fn descend<'d>(
        &self,
        stack: &mut Vec<u32>,
        cursor: &mut [u32],
        d: &'d str,
    ) -> Result<(Option<&'d str>, u32), ()> {
        let mut top = *stack.last().expect("`/` stays on the stack");
        while !d.starts_with(self.dir[top as usize]) {
            stack.pop();
            top = *stack.last().expect("`/` stays on the stack");
        }
        while self.dir[top as usize].len() < d.len() {
            let cand = next_dir(d, self.dir[top as usize].len());
            let kids = self.children_of(top);
            let i = cursor[top as usize] as usize;
            let at = |i: usize| self.dir[kids[i] as usize];
            let found = if kids.is_empty() {
                None
            } else {
                match cand.cmp(at(i)) {
                    Ordering::Equal => Some(i),
                    Ordering::Less if i == 0 => None,
                    Ordering::Less => return Err(()),
                    Ordering::Greater if i + 1 == kids.len() => None,
                    Ordering::Greater => match cand.cmp(at(i + 1)) {
                        Ordering::Equal => Some(i + 1),
                        Ordering::Less => None,
                        Ordering::Greater => kids[i + 2..]
                            .binary_search_by(|&c| self.dir[c as usize].cmp(cand))
                            .map(|j| i + 2 + j)
                            .ok(),
                    },
                }
            };
            match found {
                Some(i) => {
                    cursor[top as usize] = i as u32;
                    top = kids[i];
                    stack.push(top);
                }
                None => return Ok((Some(cand), top)),
            }
        }
        Ok((None, top))
    }

    /// As [`Tree::descend`], by the index: `(None, node of d)` or `(Some(dir), node)`.
    pub(super) fn lookup<'d>(
        &self,
        index: &PathMap,
        lens: &[u64],
        d: &'d str,
    ) -> (Option<&'d str>, u32) {
        let may_be_node =
            |d: &str| d.len() >= LEN_BITS || lens[d.len() / 64] & (1 << (d.len() % 64)) != 0;
        if let Some(&k) = may_be_node(d).then(|| index.get(d)).flatten() {
            return (None, k);
        }
        let mut missed = d;
        loop {
            let p = parent_dir(missed);
            if let Some(&k) = may_be_node(p).then(|| index.get(p)).flatten() {
                return (Some(missed), k);
            }
            missed = p;
        }
    }

    /// Whether `url` is a changed URL directly in node `v`. Short lists (the usual one or two files
    /// of a page's folder) are scanned: `==` compares lengths before bytes.
    fn has_file(&self, v: u32, url: &str) -> bool {
        let files = self.files_of(v);
        if files.len() <= 8 {
            files.contains(&url)
        } else {
            files.binary_search(&url).is_ok()
        }
    }

    pub(super) fn children_of(&self, v: u32) -> &[u32] {
        &self.children[self.child_at[v as usize] as usize..self.child_at[v as usize + 1] as usize]
    }
}

/// Sorts (unless sorted) and deduplicates `s` in place; returns the length of the distinct prefix.
fn dedup_sorted(s: &mut [&str]) -> usize {
    match s.len() {
        0 | 1 => return s.len(),
        2 => {
            return match s[0].cmp(s[1]) {
                Ordering::Equal => 1,
                Ordering::Less => 2,
                Ordering::Greater => {
                    s.swap(0, 1);
                    2
                }
            };
        }
        _ => {}
    }
    if !s.is_sorted() {
        s.sort_unstable();
    }
    let mut w = 1;
    for r in 1..s.len() {
        if s[r] != s[w - 1] {
            s[w] = s[r];
            w += 1;
        }
    }
    w
}

/// Walks the changed URLs under a node in byte order (a node's files and child subtrees merged),
/// entering a child directory only when `enter` says so.
pub(super) struct SortedWalk<'t, 'a> {
    tree: &'t Tree<'a>,
    /// (node, next file, next child)
    stack: Vec<(u32, usize, usize)>,
}

impl<'t, 'a> SortedWalk<'t, 'a> {
    pub(super) fn new(tree: &'t Tree<'a>, start: u32) -> Self {
        SortedWalk {
            tree,
            stack: vec![(start, 0, 0)],
        }
    }

    pub(super) fn next(&mut self, enter: impl Fn(u32) -> bool) -> Option<&'a str> {
        let t = self.tree;
        while let Some((v, fi, ci)) = self.stack.last_mut() {
            let file = t.files_of(*v).get(*fi).copied();
            let kid = t.children_of(*v).get(*ci).copied();
            match (file, kid) {
                (Some(f), Some(c)) if f < t.dir[c as usize] => {
                    *fi += 1;
                    return Some(f);
                }
                (Some(f), None) => {
                    *fi += 1;
                    return Some(f);
                }
                (_, Some(c)) => {
                    *ci += 1;
                    if enter(c) {
                        self.stack.push((c, 0, 0));
                    }
                }
                (None, None) => {
                    self.stack.pop();
                }
            }
        }
        None
    }
}
