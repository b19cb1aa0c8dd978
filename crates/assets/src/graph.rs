//! Ordering files so that every dependency is finished before its dependants, with reference cycles
//! grouped instead of looped on.
//!
//! Tarjan's strongly connected components, iterative (no recursion, so a hostile chain of 100k imports
//! cannot overflow the stack). Components come out dependencies-first; a component of more than one node,
//! or a node that references itself, is a cycle.

/// Strongly connected components of a graph given as adjacency lists (`edges[n]` = nodes `n` depends on),
/// in an order where each component comes after every component it depends on. Nodes inside a component
/// are sorted ascending.
pub fn components(edges: &[Vec<usize>]) -> Vec<Vec<usize>> {
    let n = edges.len();
    const UNSET: usize = usize::MAX;
    let mut index = vec![UNSET; n];
    let mut low = vec![0usize; n];
    let mut on_stack = vec![false; n];
    let mut stack: Vec<usize> = Vec::new();
    let mut out: Vec<Vec<usize>> = Vec::new();
    let mut next_index = 0usize;
    // Call stack of (node, next edge position).
    let mut calls: Vec<(usize, usize)> = Vec::new();
    for root in 0..n {
        if index[root] != UNSET {
            continue;
        }
        calls.push((root, 0));
        index[root] = next_index;
        low[root] = next_index;
        next_index += 1;
        stack.push(root);
        on_stack[root] = true;
        while let Some(&mut (v, ref mut pos)) = calls.last_mut() {
            if *pos < edges[v].len() {
                let w = edges[v][*pos];
                *pos += 1;
                if index[w] == UNSET {
                    index[w] = next_index;
                    low[w] = next_index;
                    next_index += 1;
                    stack.push(w);
                    on_stack[w] = true;
                    calls.push((w, 0));
                } else if on_stack[w] {
                    low[v] = low[v].min(index[w]);
                }
                continue;
            }
            calls.pop();
            if let Some(&(parent, _)) = calls.last() {
                low[parent] = low[parent].min(low[v]);
            }
            if low[v] == index[v] {
                let mut comp = Vec::new();
                while let Some(w) = stack.pop() {
                    on_stack[w] = false;
                    comp.push(w);
                    if w == v {
                        break;
                    }
                }
                comp.sort_unstable();
                out.push(comp);
            }
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    fn check(edges: &[&[usize]], want: &[&[usize]]) {
        let edges: Vec<Vec<usize>> = edges.iter().map(|e| e.to_vec()).collect();
        let got = components(&edges);
        let want: Vec<Vec<usize>> = want.iter().map(|c| c.to_vec()).collect();
        assert_eq!(got, want);
    }

    #[test]
    fn table() {
        check(&[], &[]);
        check(&[&[]], &[&[0]]);
        check(&[&[1], &[]], &[&[1], &[0]]);
        check(&[&[1], &[0]], &[&[0, 1]]);
        check(&[&[0]], &[&[0]]);
        check(&[&[1, 2], &[2], &[]], &[&[2], &[1], &[0]]);
        check(&[&[1], &[2], &[1, 3], &[]], &[&[3], &[1, 2], &[0]]);
    }

    #[test]
    fn long_chain_does_not_overflow() {
        let n = 200_000;
        let edges: Vec<Vec<usize>> = (0..n)
            .map(|i| if i + 1 < n { vec![i + 1] } else { vec![] })
            .collect();
        let comps = components(&edges);
        assert_eq!(comps.len(), n);
        assert_eq!(comps[0], vec![n - 1]);
    }

    #[test]
    fn dependencies_come_first() {
        // A small pseudo-random graph: every edge u -> v must have comp(v) <= comp(u).
        let mut x: u64 = 0x9e3779b97f4a7c15;
        let n = 300;
        let mut edges = vec![Vec::new(); n];
        for e in edges.iter_mut() {
            for _ in 0..3 {
                x ^= x << 13;
                x ^= x >> 7;
                x ^= x << 17;
                e.push((x % n as u64) as usize);
            }
        }
        let comps = components(&edges);
        let mut pos = vec![0; n];
        for (i, c) in comps.iter().enumerate() {
            for &v in c {
                pos[v] = i;
            }
        }
        assert_eq!(comps.iter().map(Vec::len).sum::<usize>(), n);
        for (u, e) in edges.iter().enumerate() {
            for &v in e {
                assert!(pos[v] <= pos[u]);
            }
        }
    }
}
