//! Counting: what each parsed line adds, per route class and per time bucket, with the top lists and
//! the stale-content signals. One [`Aggregate`] per worker; they merge at the end.

use std::collections::{BTreeMap, HashMap};

use crate::record::{Cache, Record};
use crate::routes::{Class, RouteClass, Routes};
use crate::topk::TopK;

/// The counts of a set of requests.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Counters {
    pub requests: u64,
    pub bytes: u64,
    /// Requests and bytes per [`Cache`] value (indexed by its discriminant).
    pub cache: [u64; 8],
    pub cache_bytes: [u64; 8],
    /// Status classes: index 1-5 for 1xx-5xx, 0 for anything else.
    pub status: [u64; 6],
}

impl Counters {
    fn add(&mut self, r: &Record<'_>) {
        self.requests += 1;
        self.bytes += r.bytes;
        self.cache[r.cache as usize] += 1;
        self.cache_bytes[r.cache as usize] += r.bytes;
        let class = usize::from(r.status / 100);
        self.status[if (1..=5).contains(&class) { class } else { 0 }] += 1;
    }

    pub fn merge(&mut self, o: &Counters) {
        self.requests += o.requests;
        self.bytes += o.bytes;
        for i in 0..8 {
            self.cache[i] += o.cache[i];
            self.cache_bytes[i] += o.cache_bytes[i];
        }
        for i in 0..6 {
            self.status[i] += o.status[i];
        }
    }

    fn sum(&self, f: impl Fn(Cache) -> bool, bytes: bool) -> u64 {
        Cache::ALL
            .into_iter()
            .filter(|c| f(*c))
            .map(|c| {
                if bytes {
                    self.cache_bytes[c as usize]
                } else {
                    self.cache[c as usize]
                }
            })
            .sum()
    }

    pub fn hits(&self) -> u64 {
        self.sum(Cache::is_hit, false)
    }
    pub fn hit_bytes(&self) -> u64 {
        self.sum(Cache::is_hit, true)
    }
    pub fn lookups(&self) -> u64 {
        self.sum(Cache::is_lookup, false)
    }
    pub fn lookup_bytes(&self) -> u64 {
        self.sum(Cache::is_lookup, true)
    }
    pub fn origin_requests(&self) -> u64 {
        self.sum(Cache::is_origin, false)
    }
    pub fn origin_bytes(&self) -> u64 {
        self.sum(Cache::origin_body, true)
    }
    /// Requests whose cache status the log told.
    pub fn known(&self) -> u64 {
        self.requests - self.cache[Cache::Unknown as usize]
    }
}

/// A malformed line, for the report.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize)]
pub struct Malformed {
    pub file: String,
    pub line: u64,
    pub reason: &'static str,
    /// The line, cut to 200 bytes.
    pub text: String,
}

/// What one file contributed.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct FileCounts {
    pub lines: u64,
    pub records: u64,
    pub malformed: u64,
}

/// The time buckets: a width from a ladder (1 minute up to a week), coarsened when there would be
/// more than [`MAX_BUCKETS`], so memory is bounded by the bucket count, not the time span.
pub const LADDER: [i64; 8] = [
    60,
    300,
    900,
    3600,
    6 * 3600,
    86_400,
    7 * 86_400,
    28 * 86_400,
];
pub const MAX_BUCKETS: usize = 4096;

/// Everything counted so far.
#[derive(Debug, Clone)]
pub struct Aggregate {
    pub total: Counters,
    pub classes: [Counters; 3],
    pub buckets: BTreeMap<i64, Counters>,
    pub width: i64,
    pub first: Option<i64>,
    pub last: Option<i64>,
    pub untimed: u64,
    pub misses: TopK,
    pub unknown_fingerprinted: TopK,
    pub fingerprinted_404: TopK,
    pub over_age: TopK,
    pub malformed: u64,
    pub samples: Vec<Malformed>,
    pub files: Vec<FileCounts>,
    /// The classes of recently seen paths (cleared when full: logs repeat their URLs).
    cache: HashMap<Vec<u8>, Class>,
    decoded: String,
}

/// Malformed lines kept as samples.
pub const SAMPLES: usize = 10;
const CLASS_CACHE: usize = 65_536;

impl Aggregate {
    /// An empty aggregate; `width`: a fixed bucket width in seconds, else the ladder's first.
    pub fn new(width: Option<i64>, sketch: usize) -> Aggregate {
        Aggregate {
            total: Counters::default(),
            classes: [Counters::default(); 3],
            buckets: BTreeMap::new(),
            width: width.unwrap_or(LADDER[0]).max(1),
            first: None,
            last: None,
            untimed: 0,
            misses: TopK::new(sketch),
            unknown_fingerprinted: TopK::new(sketch),
            fingerprinted_404: TopK::new(sketch),
            over_age: TopK::new(sketch),
            malformed: 0,
            samples: Vec::new(),
            files: Vec::new(),
            cache: HashMap::new(),
            decoded: String::new(),
        }
    }

    pub fn file(&mut self, i: usize) -> &mut FileCounts {
        if self.files.len() <= i {
            self.files.resize(i + 1, FileCounts::default());
        }
        &mut self.files[i]
    }

    /// Counts one request.
    pub fn add(&mut self, r: &Record<'_>, routes: &Routes) {
        // The path as the build names it: percent-decoded (CloudFront logs and browsers encode).
        let class = match self.cache.get(r.path.as_ref()) {
            Some(c) => *c,
            None => {
                let c = routes.classify(decode(&r.path, &mut self.decoded));
                if self.cache.len() >= CLASS_CACHE {
                    self.cache.clear();
                }
                self.cache.insert(r.path.to_vec(), c);
                c
            }
        };
        self.total.add(r);
        self.classes[class.class as usize].add(r);
        match r.time {
            Some(t) => {
                self.first = Some(self.first.map_or(t, |f| f.min(t)));
                self.last = Some(self.last.map_or(t, |l| l.max(t)));
                let key = t - t.rem_euclid(self.width);
                self.buckets.entry(key).or_default().add(r);
                if self.buckets.len() > MAX_BUCKETS {
                    self.coarsen(next_width(self.width));
                }
            }
            None => self.untimed += 1,
        }
        let signal = r.cache.origin_body()
            || (class.class == RouteClass::Fingerprinted
                && (r.status == 404 || class.known == Some(false)))
            || (class.class == RouteClass::Mutable
                && r.cache.is_hit()
                && matches!((r.age, class.max_age), (Some(a), Some(m)) if a > m));
        if !signal {
            return;
        }
        let path = decode(&r.path, &mut self.decoded);
        if r.cache.origin_body() {
            self.misses.add(path, r.bytes);
        }
        if class.class == RouteClass::Fingerprinted {
            if r.status == 404 {
                self.fingerprinted_404.add(path, r.bytes);
            }
            if class.known == Some(false) {
                self.unknown_fingerprinted.add(path, r.bytes);
            }
        }
        if class.class == RouteClass::Mutable
            && r.cache.is_hit()
            && let (Some(a), Some(m)) = (r.age, class.max_age)
            && a > m
        {
            self.over_age.add_max(path, a);
        }
    }

    /// Records a malformed line (the first [`SAMPLES`] are kept with their text).
    pub fn malformed(&mut self, file: &str, line: u64, reason: &'static str, text: &[u8]) {
        self.malformed += 1;
        if self.samples.len() < SAMPLES {
            let cut = &text[..text.len().min(200)];
            self.samples.push(Malformed {
                file: file.to_string(),
                line,
                reason,
                text: String::from_utf8_lossy(cut).into_owned(),
            });
        }
    }

    /// Re-keys the buckets to a coarser width (a multiple of the current one).
    pub fn coarsen(&mut self, width: i64) {
        if width <= self.width {
            return;
        }
        let old = std::mem::take(&mut self.buckets);
        for (k, c) in old {
            self.buckets
                .entry(k - k.rem_euclid(width))
                .or_default()
                .merge(&c);
        }
        self.width = width;
        if self.buckets.len() > MAX_BUCKETS {
            self.coarsen(next_width(width));
        }
    }

    /// Adds another worker's counts.
    pub fn merge(&mut self, mut o: Aggregate) {
        let width = self.width.max(o.width);
        self.coarsen(width);
        o.coarsen(width);
        self.total.merge(&o.total);
        for i in 0..3 {
            self.classes[i].merge(&o.classes[i]);
        }
        for (k, c) in o.buckets {
            self.buckets.entry(k).or_default().merge(&c);
        }
        if self.buckets.len() > MAX_BUCKETS {
            self.coarsen(next_width(self.width));
        }
        self.first = [self.first, o.first].into_iter().flatten().min();
        self.last = [self.last, o.last].into_iter().flatten().max();
        self.untimed += o.untimed;
        self.misses.merge(o.misses, false);
        self.unknown_fingerprinted
            .merge(o.unknown_fingerprinted, false);
        self.fingerprinted_404.merge(o.fingerprinted_404, false);
        self.over_age.merge(o.over_age, true);
        self.malformed += o.malformed;
        self.samples.extend(o.samples);
        self.samples
            .sort_by(|a, b| (&a.file, a.line).cmp(&(&b.file, b.line)));
        self.samples.truncate(SAMPLES);
        for (i, f) in o.files.into_iter().enumerate() {
            let mine = self.file(i);
            mine.lines += f.lines;
            mine.records += f.records;
            mine.malformed += f.malformed;
        }
    }
}

/// The next width of the ladder above `w` that `w` divides, else twice `w`.
pub fn next_width(w: i64) -> i64 {
    LADDER
        .into_iter()
        .find(|&l| l > w && l % w == 0)
        .unwrap_or(w * 2)
}

/// The percent-decoded path (lossy UTF-8), in `buf` when it had to be decoded.
fn decode<'b>(path: &'b [u8], buf: &'b mut String) -> &'b str {
    if !path.contains(&b'%')
        && let Ok(s) = std::str::from_utf8(path)
    {
        return s;
    }
    buf.clear();
    buf.push_str(&percent_encoding::percent_decode(path).decode_utf8_lossy());
    buf
}

#[cfg(test)]
mod tests {
    use std::borrow::Cow;

    use super::*;

    fn rec(
        path: &'static str,
        time: i64,
        cache: Cache,
        status: u16,
        bytes: u64,
    ) -> Record<'static> {
        Record {
            time: Some(time),
            path: Cow::Borrowed(path.as_bytes()),
            status,
            bytes,
            cache,
            age: None,
        }
    }

    fn routes() -> Routes {
        Routes::new(r"\.[0-9a-f]{12}(\.[A-Za-z0-9]+)?$", [], None, &[]).unwrap()
    }

    #[test]
    fn buckets_coarsen_and_merge_to_the_same_counts() {
        let r = routes();
        let mut whole = Aggregate::new(None, 8);
        let mut a = Aggregate::new(None, 8);
        let mut b = Aggregate::new(None, 8);
        // 10,000 minutes: more than MAX_BUCKETS, so the width grows.
        for m in 0..10_000i64 {
            let x = rec("/a", m * 60, Cache::Hit, 200, 1);
            whole.add(&x, &r);
            if m % 2 == 0 {
                a.add(&x, &r)
            } else {
                b.add(&x, &r)
            }
        }
        assert!(whole.width > 60 && whole.buckets.len() <= MAX_BUCKETS);
        a.merge(b);
        assert_eq!(a.width, whole.width);
        assert_eq!(a.buckets, whole.buckets);
        assert_eq!(a.total.requests, 10_000);
    }

    #[test]
    fn decoding_is_lossless_for_utf8_and_lossy_otherwise() {
        let mut buf = String::new();
        assert_eq!(decode(b"/caf%C3%A9", &mut buf), "/café");
        assert_eq!(decode(b"/plain", &mut buf), "/plain");
        assert_eq!(decode(b"/%FF", &mut buf), "/\u{FFFD}");
    }
}
