//! Top URLs in bounded memory: a Misra-Gries summary (the "frequent items" sketch).
//!
//! At most `2 × capacity` counters are held. When the map is full, the (`capacity` + 1)-th largest
//! count is subtracted from every counter and those at zero are dropped (each such step removes at
//! least half of the counters, so updates stay amortised O(1)). Every URL requested more than
//! `N / (capacity + 1)` times (`N` the total) is kept, and each count is low by at most
//! [`TopK::error`] (the sum of what was subtracted), which the report shows. A capped map that
//! stops admitting new URLs when full would instead lose a URL that becomes hot late in the file;
//! exact counting would hold every distinct URL of a crawler's random probes. Summaries of chunks
//! parsed in parallel merge by adding counters, then shrinking the same way (the bound holds for the
//! merged total).

use std::collections::HashMap;

use serde::Serialize;

#[derive(Debug, Clone, Copy, Default)]
struct Entry {
    count: u64,
    bytes: u64,
}

/// A bounded top-URL counter.
#[derive(Debug, Clone)]
pub struct TopK {
    capacity: usize,
    map: HashMap<String, Entry>,
    total: u64,
    error: u64,
}

/// One URL of a top list.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct TopUrl {
    pub url: String,
    /// Requests counted (low by at most the list's `max_error`).
    pub count: u64,
    /// Bytes of the counted requests.
    pub bytes: u64,
    /// The largest `Age` seen (the mutable-over-age list only).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub max_age: Option<u64>,
}

impl TopK {
    pub fn new(capacity: usize) -> TopK {
        TopK {
            capacity: capacity.max(1),
            map: HashMap::new(),
            total: 0,
            error: 0,
        }
    }

    /// Counts one request of `url`. `bytes` doubles as the largest age for lists that track one
    /// (see [`TopK::add_max`]).
    pub fn add(&mut self, url: &str, bytes: u64) {
        self.total += 1;
        if let Some(e) = self.map.get_mut(url) {
            e.count += 1;
            e.bytes += bytes;
            return;
        }
        if self.map.len() >= 2 * self.capacity {
            self.shrink();
        }
        self.map.insert(url.to_string(), Entry { count: 1, bytes });
    }

    /// Counts one request of `url`, keeping the largest `value` instead of a sum.
    pub fn add_max(&mut self, url: &str, value: u64) {
        self.total += 1;
        if let Some(e) = self.map.get_mut(url) {
            e.count += 1;
            e.bytes = e.bytes.max(value);
            return;
        }
        if self.map.len() >= 2 * self.capacity {
            self.shrink();
        }
        self.map.insert(
            url.to_string(),
            Entry {
                count: 1,
                bytes: value,
            },
        );
    }

    fn shrink(&mut self) {
        if self.map.len() <= self.capacity {
            return;
        }
        let mut counts: Vec<u64> = self.map.values().map(|e| e.count).collect();
        let (_, cut, _) = counts.select_nth_unstable_by(self.capacity, |a, b| b.cmp(a));
        let cut = *cut;
        self.error += cut;
        self.map.retain(|_, e| {
            e.count = e.count.saturating_sub(cut);
            e.count > 0
        });
    }

    /// Adds another summary's counts (sums: `max` is false; largest values: `max` is true).
    pub fn merge(&mut self, other: TopK, max: bool) {
        self.total += other.total;
        self.error += other.error;
        for (k, v) in other.map {
            let e = self.map.entry(k).or_default();
            e.count += v.count;
            e.bytes = if max {
                e.bytes.max(v.bytes)
            } else {
                e.bytes + v.bytes
            };
        }
        while self.map.len() > 2 * self.capacity {
            self.shrink();
        }
    }

    /// Requests counted in all.
    pub fn total(&self) -> u64 {
        self.total
    }

    /// How much any count may be low by.
    pub fn error(&self) -> u64 {
        self.error
    }

    /// The `n` largest, by count then URL.
    pub fn top(&self, n: usize, max: bool) -> Vec<TopUrl> {
        let mut v: Vec<TopUrl> = self
            .map
            .iter()
            .map(|(k, e)| TopUrl {
                url: k.clone(),
                count: e.count,
                bytes: if max { 0 } else { e.bytes },
                max_age: max.then_some(e.bytes),
            })
            .collect();
        v.sort_by(|a, b| b.count.cmp(&a.count).then_with(|| a.url.cmp(&b.url)));
        v.truncate(n);
        v
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn exact_while_it_fits() {
        let mut t = TopK::new(4);
        for (u, n) in [("/a", 5), ("/b", 3), ("/c", 1)] {
            for _ in 0..n {
                t.add(u, 10);
            }
        }
        let top = t.top(2, false);
        assert_eq!(
            top.iter()
                .map(|u| (u.url.as_str(), u.count, u.bytes))
                .collect::<Vec<_>>(),
            [("/a", 5, 50), ("/b", 3, 30)]
        );
        assert_eq!((t.total(), t.error()), (9, 0));
    }

    proptest::proptest! {
        /// Heavy hitters survive any interleaving of noise, counts are never high, and never low by
        /// more than the reported error, which stays within N / (capacity + 1); merging halves keeps it.
        #[test]
        fn heavy_hitters_are_kept(noise in proptest::collection::vec(0u32..5000, 0..3000), split in 0usize..3000) {
            let cap = 16;
            let mut stream: Vec<String> = noise.iter().map(|n| format!("/n{n}")).collect();
            let hot = stream.len() / 8 + 1;
            for i in 0..hot {
                stream.insert((i * 7919) % (stream.len() + 1), "/hot".to_string());
            }
            let mut exact: HashMap<&str, u64> = HashMap::new();
            for s in &stream {
                *exact.entry(s).or_default() += 1;
            }
            let split = split.min(stream.len());
            let (mut a, mut b) = (TopK::new(cap), TopK::new(cap));
            for s in &stream[..split] { a.add(s, 1); }
            for s in &stream[split..] { b.add(s, 1); }
            a.merge(b, false);
            let n = stream.len() as u64;
            proptest::prop_assert!(a.error() <= n / (cap as u64 + 1) * 2);
            for u in a.top(usize::MAX, false) {
                let truth = exact[u.url.as_str()];
                proptest::prop_assert!(u.count <= truth && truth <= u.count + a.error());
            }
            let max_other = exact.iter().filter(|(k, _)| **k != "/hot").map(|(_, v)| *v).max().unwrap_or(0);
            if hot as u64 > max_other + a.error() {
                proptest::prop_assert_eq!(&a.top(1, false)[0].url, "/hot");
            }
        }
    }
}
