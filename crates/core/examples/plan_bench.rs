//! Benchmark of the invalidation planner ([`staleguard_core::purge::plan`]) against s3deploy's
//! CloudFront path reduction, on a generated 50,000-page docs site. Run in release mode:
//!
//! ```sh
//! cargo run --release -p staleguard-core --example plan_bench   # or bench/plan.sh
//! ```
//!
//! For each scenario (which pages changed) and each of two months (the free paths used up, and all
//! 1,000 left) it prints one row per plan: s3deploy's, every changed URL as a path, and ours with the
//! CLI's defaults (no sweep cap, a swept URL at $0.0000004): billed items, unchanged live URLs swept,
//! changed URLs missed, the cost in dollars under the same prices for all three (CloudFront's $0.005
//! per path past the free ones, plus the swept URLs), and the median planning time.
//!
//! Options: `--runs N` (timed runs per planner and scenario, default 21), `--json` (one JSON object
//! per row instead of the table), `--only TEXT` (only the deploys whose name contains TEXT, e.g. for
//! `perf record`).

use std::collections::HashSet;
use std::time::{Duration, Instant};

use staleguard_core::purge::{
    Capabilities, ItemKind, Nusd, PlanOptions, Pricing, PurgePlan, format_usd, key_urls, plan, usd,
};

// ------------------------------------------------------------------------------------------------
// The site

const SECTIONS: usize = 20;
const SUBSECTIONS: usize = 50;
const PAGES: usize = 50;

const WORDS: &[&str] = &[
    "getting-started",
    "configuration",
    "deployment",
    "reference",
    "tutorials",
    "migration",
    "security",
    "networking",
    "storage",
    "monitoring",
    "api",
    "cli",
    "integrations",
    "troubleshooting",
    "performance",
    "release-notes",
    "concepts",
    "operators",
    "sdk",
    "faq",
];

/// The site's mutable keys (no leading `/`), in the order a deploy record lists them (sorted), and
/// the leaf pages among them.
struct Site {
    keys: Vec<String>,
    pages: Vec<String>,
}

fn site() -> Site {
    let mut keys = vec![
        "index.html".to_string(),
        "404.html".into(),
        "robots.txt".into(),
        "sitemap.xml".into(),
        "feed.xml".into(),
        "search-index.json".into(),
        "docs/index.html".into(),
    ];
    let mut pages = Vec::new();
    for s in 0..SECTIONS {
        let sec = format!("docs/{:02}-{}", s, WORDS[s % WORDS.len()]);
        keys.push(format!("{sec}/index.html"));
        keys.push(format!("{sec}/feed.xml"));
        for ss in 0..SUBSECTIONS {
            let sub = format!("{sec}/{}-{:02}", WORDS[(s + ss) % WORDS.len()], ss);
            keys.push(format!("{sub}/index.html"));
            keys.push(format!("{sub}/toc.json"));
            for p in 0..PAGES {
                let page = format!(
                    "{sub}/{}-page-{:02}/index.html",
                    WORDS[(s * 7 + ss * 3 + p) % WORDS.len()],
                    p
                );
                keys.push(page.clone());
                pages.push(page);
            }
        }
    }
    keys.sort();
    Site { keys, pages }
}

/// A small deterministic PRNG (xorshift64*), so every run plans the same deploys.
struct Rng(u64);

impl Rng {
    fn next(&mut self) -> u64 {
        self.0 ^= self.0 >> 12;
        self.0 ^= self.0 << 25;
        self.0 ^= self.0 >> 27;
        self.0.wrapping_mul(0x2545_f491_4f6c_dd1d)
    }
    fn below(&mut self, n: usize) -> usize {
        (self.next() % n as u64) as usize
    }
    fn shuffle<T>(&mut self, v: &mut [T]) {
        for i in (1..v.len()).rev() {
            v.swap(i, self.below(i + 1));
        }
    }
    /// `k` distinct elements of `v`, in `v`'s order.
    fn pick<T: Clone>(&mut self, v: &[T], k: usize) -> Vec<T> {
        let mut idx: Vec<usize> = (0..v.len()).collect();
        self.shuffle(&mut idx);
        let mut idx = idx[..k].to_vec();
        idx.sort_unstable();
        idx.into_iter().map(|i| v[i].clone()).collect()
    }
}

struct Scenario {
    name: String,
    /// Changed keys, sorted (as a deploy diff lists them).
    keys: Vec<String>,
}

fn scenarios(site: &Site) -> Vec<Scenario> {
    let mut rng = Rng(0x5eed_cafe_f00d_0001);
    let mut out = Vec::new();
    for n in [1, 10, 100, 1000] {
        let name = if n == 1 {
            "1 page".to_string()
        } else {
            format!("{} pages", thousands(n as u64))
        };
        out.push(Scenario {
            name,
            keys: rng.pick(&site.pages, n),
        });
    }
    // Half the pages: 50,000 changed URLs, the size DESIGN.md's target names.
    out.push(Scenario {
        name: format!("{} pages (half)", thousands(site.pages.len() as u64 / 2)),
        keys: rng.pick(&site.pages, site.pages.len() / 2),
    });
    out.push(Scenario {
        name: format!("all {} pages", thousands(site.pages.len() as u64)),
        keys: site.pages.clone(),
    });
    // One page in each of 300 subsections.
    let per_sub = PAGES;
    let subs: Vec<usize> = rng.pick(&(0..site.pages.len() / per_sub).collect::<Vec<_>>(), 300);
    let keys = subs
        .iter()
        .map(|s| site.pages[s * per_sub + rng.below(per_sub)].clone())
        .collect();
    out.push(Scenario {
        name: "1 page in each of 300 folders".into(),
        keys,
    });
    // A template change that touches 40 % of the pages, everywhere.
    let n = site.pages.len() * 2 / 5;
    out.push(Scenario {
        name: "template change: 40 % of pages, everywhere".into(),
        keys: rng.pick(&site.pages, n),
    });
    out
}

/// `v` in random order, each string allocated anew in that order (as a caller that gathered the URLs
/// in that order would have them; shuffling the `String`s alone would also scatter the bytes read).
fn shuffled(v: &[String], rng: &mut Rng) -> Vec<String> {
    let mut order: Vec<&String> = v.iter().collect();
    rng.shuffle(&mut order);
    order.into_iter().cloned().collect()
}

fn thousands(n: u64) -> String {
    let s = n.to_string();
    let mut out = String::new();
    for (i, c) in s.chars().enumerate() {
        if i > 0 && (s.len() - i).is_multiple_of(3) {
            out.push(',');
        }
        out.push(c);
    }
    out
}

// ------------------------------------------------------------------------------------------------
// s3deploy's reduction, re-implemented from its description and behaviour (bep/s3deploy,
// lib/cloudfront.go, `normalizeInvalidationPaths`, called with a threshold of 8):
//
// 1. each uploaded key becomes a clean path with a leading `/`; a path ending in `index.html`
//    becomes its directory with a trailing `/` (`/d/index.html` -> `/d/`), so `/d/index.html` itself
//    is never invalidated unless a wildcard covers it;
// 2. duplicates go, the rest is sorted;
// 3. while there are more than 8 paths: for each level k from the deepest path's number of `/`
//    down to 1, every path with more than k slashes is replaced by a wildcard on its directory
//    minus the last segment (`/a/b/c.html` -> `/a/*`, `/a/x.html` -> `/a/*`, `/a/b/*` -> `/a/*`),
//    duplicates go, and it stops as soon as 8 or fewer remain;
// 4. still more than 8, or `/*` among them: `/*` alone.

const S3DEPLOY_THRESHOLD: usize = 8;

fn s3deploy_reduce(keys: &[String]) -> Vec<String> {
    let slashes = |p: &str| p.bytes().filter(|&b| b == b'/').count();
    let mut paths: Vec<String> = Vec::new();
    let mut max_levels = 0;
    for key in keys {
        let p = clean(&format!("/{key}"));
        max_levels = max_levels.max(slashes(&p));
        if p.ends_with("index.html") {
            let mut dir = go_dir(&p);
            if !dir.ends_with('/') {
                dir.push('/');
            }
            paths.push(dir);
        } else {
            paths.push(p);
        }
    }
    dedup_keep_first(&mut paths);
    paths.sort();
    if paths.len() > S3DEPLOY_THRESHOLD {
        for k in (1..=max_levels).rev() {
            for p in paths.iter_mut() {
                if slashes(p) > k {
                    let dir = go_dir(p);
                    let mut parts: Vec<&str> = dir.trim_start_matches('/').split('/').collect();
                    if parts.len() > 1 {
                        parts.pop();
                    }
                    *p = format!("{}/*", clean(&format!("/{}", parts.join("/"))));
                }
            }
            dedup_keep_first(&mut paths);
            if paths.len() <= S3DEPLOY_THRESHOLD {
                break;
            }
        }
        if paths.len() > S3DEPLOY_THRESHOLD {
            return vec!["/*".into()];
        }
    }
    if paths.iter().any(|p| p == "/*") {
        return vec!["/*".into()];
    }
    paths
}

/// Go's `path.Clean` for the absolute paths used here: no empty or `.` segments, no trailing `/`.
fn clean(p: &str) -> String {
    let mut out: Vec<&str> = Vec::new();
    for seg in p.split('/') {
        match seg {
            "" | "." => {}
            ".." => {
                out.pop();
            }
            s => out.push(s),
        }
    }
    format!("/{}", out.join("/"))
}

/// Go's `path.Dir` for absolute paths: everything before the last `/`, cleaned (`/` at the top).
fn go_dir(p: &str) -> String {
    let i = p.rfind('/').unwrap_or(0);
    clean(&p[..=i])
}

fn dedup_keep_first(v: &mut Vec<String>) {
    let mut seen = HashSet::new();
    v.retain(|p| seen.insert(p.clone()));
}

// ------------------------------------------------------------------------------------------------
// Checking a plan: what it misses and what it sweeps, counted the same way for both planners.

/// A set of purge items as CloudFront applies them: exact paths, prefixes (`/d/*`), everything.
struct Cover {
    exact: HashSet<String>,
    prefixes: HashSet<String>,
    everything: bool,
}

impl Cover {
    fn of_plan(p: &PurgePlan) -> Cover {
        let mut c = Cover {
            exact: HashSet::new(),
            prefixes: HashSet::new(),
            everything: false,
        };
        for i in &p.items {
            match i.item.kind {
                ItemKind::Path => {
                    c.exact.insert(i.item.value.clone());
                }
                ItemKind::Prefix if i.item.value == "/" => c.everything = true,
                ItemKind::Prefix => {
                    c.prefixes.insert(i.item.value.clone());
                }
                ItemKind::All => c.everything = true,
                ItemKind::Tag | ItemKind::Host => panic!("unexpected {}", i.item),
            }
        }
        c
    }

    fn of_cloudfront_paths(paths: &[String]) -> Cover {
        let mut c = Cover {
            exact: HashSet::new(),
            prefixes: HashSet::new(),
            everything: false,
        };
        for p in paths {
            match p.strip_suffix('*') {
                Some("/") => c.everything = true,
                Some(prefix) if prefix.ends_with('/') => {
                    c.prefixes.insert(prefix.to_string());
                }
                Some(other) => panic!("unexpected wildcard `{other}*`"),
                None => {
                    c.exact.insert(p.clone());
                }
            }
        }
        c
    }

    fn covers(&self, url: &str) -> bool {
        if self.everything || self.exact.contains(url) {
            return true;
        }
        let mut end = url.len();
        while let Some(i) = url[..end].rfind('/') {
            if self.prefixes.contains(&url[..=i]) {
                return true;
            }
            end = i;
        }
        false
    }
}

struct Outcome {
    billed: usize,
    swept: usize,
    missed: usize,
}

fn outcome(cover: &Cover, billed: usize, changed: &HashSet<&str>, live: &[String]) -> Outcome {
    let missed = changed.iter().filter(|u| !cover.covers(u)).count();
    let swept = live
        .iter()
        .filter(|u| !changed.contains(u.as_str()) && cover.covers(u))
        .count();
    Outcome {
        billed,
        swept,
        missed,
    }
}

fn check_calls(p: &PurgePlan, caps: &Capabilities) {
    let prefixes = p
        .items
        .iter()
        .filter(|i| i.item.kind == ItemKind::Prefix)
        .count();
    assert!(
        prefixes <= caps.max_prefixes_in_flight.unwrap_or(usize::MAX),
        "{prefixes} prefixes"
    );
    let flat: Vec<usize> = p.calls.iter().flatten().copied().collect();
    assert_eq!(
        flat,
        (0..p.items.len()).collect::<Vec<_>>(),
        "calls hold every item once"
    );
    for call in &p.calls {
        assert!(call.len() <= caps.max_items_per_call);
        let n = |k| call.iter().filter(|&&i| p.items[i].item.kind == k).count();
        assert!(n(ItemKind::Path) <= caps.max_paths_in_flight.unwrap_or(usize::MAX));
        assert!(n(ItemKind::Prefix) <= caps.max_prefixes_in_flight.unwrap_or(usize::MAX));
    }
}

// ------------------------------------------------------------------------------------------------
// Prices

/// CloudFront's price per path past the free tier, and its free paths a month.
const PER_PATH: Nusd = 5_000_000;
const FREE_PER_MONTH: u64 = 1000;

/// The two months a deploy is planned in: the free paths used up, and all 1,000 left.
const TIERS: &[(u64, &str)] = &[
    (0, "past the free tier"),
    (FREE_PER_MONTH, "1,000 free left"),
];

/// A plan's cost under the same prices for every planner: paths past the free ones, and each swept
/// URL at the default sweep price.
fn cost(billed: usize, swept: usize, free: u64, sweep: Nusd) -> Nusd {
    PER_PATH * (billed as u64).saturating_sub(free) + sweep * swept as u64
}

// ------------------------------------------------------------------------------------------------

fn median(mut v: Vec<Duration>) -> Duration {
    v.sort();
    v[v.len() / 2]
}

fn time<T>(runs: usize, mut f: impl FnMut() -> T) -> (T, Duration) {
    let mut times = Vec::with_capacity(runs);
    let mut last = None;
    for _ in 0..runs {
        let t = Instant::now();
        let out = std::hint::black_box(f());
        times.push(t.elapsed());
        last = Some(out);
    }
    (last.expect("at least one run"), median(times))
}

fn ms(d: Duration) -> String {
    let ms = d.as_secs_f64() * 1e3;
    if ms < 1.0 {
        format!("{ms:.3} ms")
    } else {
        format!("{ms:.2} ms")
    }
}

fn ratio(ours: Nusd, theirs: Nusd) -> String {
    match (ours, theirs) {
        (0, 0) => "=".into(),
        (_, 0) => "∞".into(),
        _ => format!("{:.3}×", ours as f64 / theirs as f64),
    }
}

/// Which planner a row is of.
#[derive(Clone, Copy, PartialEq)]
enum Who {
    S3deploy,
    AllPaths,
    Ours,
}

struct Row {
    scenario: String,
    changed_urls: usize,
    free: u64,
    tier: &'static str,
    who: Who,
    planner: String,
    out: Outcome,
    cost: Nusd,
    time: Option<Duration>,
    time_shuffled: Option<Duration>,
}

fn main() {
    let mut runs = 21;
    let mut json = false;
    let mut only = String::new();
    let mut args = std::env::args().skip(1);
    while let Some(a) = args.next() {
        match a.as_str() {
            "--runs" => runs = args.next().and_then(|n| n.parse().ok()).expect("--runs N"),
            "--json" => json = true,
            "--only" => only = args.next().expect("--only TEXT"),
            other => panic!("unknown argument `{other}` (expected --runs N, --json, --only TEXT)"),
        }
    }
    let runs = runs.max(1);

    let caps = Capabilities {
        paths: true,
        prefixes: true,
        tags: false,
        hosts: false,
        all: true,
        soft: false,
        max_items_per_call: 3000,
        max_paths_in_flight: Some(3000),
        max_prefixes_in_flight: Some(15),
        asynchronous: true,
        pricing: Pricing {
            per_item_usd: usd(PER_PATH),
            free_items_per_month: FREE_PER_MONTH,
        },
    };
    let sweep = PlanOptions::default().sweep_price;

    let site = site();
    let live: Vec<String> = site
        .keys
        .iter()
        .flat_map(|k| key_urls(k, "/", false, false))
        .collect();
    let mut rng = Rng(0xdead_beef_0000_0002);
    let live_shuffled = shuffled(&live, &mut rng);
    eprintln!(
        "site: {} mutable keys ({} pages), {} live URLs; {runs} timed runs per planner",
        thousands(site.keys.len() as u64),
        thousands(site.pages.len() as u64),
        thousands(live.len() as u64),
    );

    let mut rows = Vec::new();
    for sc in scenarios(&site)
        .into_iter()
        .filter(|s| s.name.contains(&only))
    {
        // What a deploy hands the planner: each changed key's URLs (index pages also as `/d/`).
        let changed: Vec<String> = sc
            .keys
            .iter()
            .flat_map(|k| key_urls(k, "/", false, false))
            .collect();
        let changed_set: HashSet<&str> = changed.iter().map(String::as_str).collect();
        let changed_shuffled = shuffled(&changed, &mut rng);

        let (s3, s3_time) = time(runs, || s3deploy_reduce(&sc.keys));
        let s3_cover = Cover::of_cloudfront_paths(&s3);
        let s3_out = outcome(&s3_cover, s3.len(), &changed_set, &live);
        for &(free, tier) in TIERS {
            let row = |who, planner: String, out: Outcome, time, time_shuffled| Row {
                scenario: sc.name.clone(),
                changed_urls: changed_set.len(),
                free,
                tier,
                who,
                planner,
                cost: cost(out.billed, out.swept, free, sweep),
                out,
                time,
                time_shuffled,
            };
            rows.push(row(
                Who::S3deploy,
                format!("s3deploy ({})", summary(&s3)),
                Outcome {
                    billed: s3_out.billed,
                    swept: s3_out.swept,
                    missed: s3_out.missed,
                },
                Some(s3_time),
                None,
            ));
            rows.push(row(
                Who::AllPaths,
                "all paths".into(),
                Outcome {
                    billed: changed_set.len(),
                    swept: 0,
                    missed: 0,
                },
                None,
                None,
            ));
            let opts = PlanOptions {
                free_items: free,
                ..PlanOptions::default()
            };
            let (p, t) = time(runs, || plan(&changed, &live, &caps, &opts));
            let (p2, t2) = time(runs, || {
                plan(&changed_shuffled, &live_shuffled, &caps, &opts)
            });
            assert_eq!(p, p2, "{}: the plan depends on the input order", sc.name);
            check_calls(&p, &caps);
            let out = outcome(&Cover::of_plan(&p), p.billed, &changed_set, &live);
            assert_eq!(out.swept, p.swept, "{}: swept as reported", sc.name);
            assert_eq!(p.changed, changed_set.len());
            assert_eq!(
                p.cost,
                cost(p.billed, p.swept, free, sweep),
                "{}: cost",
                sc.name
            );
            rows.push(row(
                Who::Ours,
                format!("staleguard ({})", kinds(&p)),
                out,
                Some(t),
                Some(t2),
            ));
        }
    }

    if json {
        for r in &rows {
            println!(
                "{{\"scenario\":{:?},\"changed_urls\":{},\"free_left\":{},\"planner\":{:?},\"billed\":{},\"swept\":{},\"missed\":{},\"cost_usd\":{},\"time_us\":{},\"time_shuffled_us\":{}}}",
                r.scenario,
                r.changed_urls,
                r.free,
                r.planner,
                r.out.billed,
                r.out.swept,
                r.out.missed,
                usd(r.cost),
                r.time
                    .map_or("null".into(), |t| format!("{:.1}", t.as_secs_f64() * 1e6)),
                r.time_shuffled
                    .map_or("null".into(), |t| format!("{:.1}", t.as_secs_f64() * 1e6)),
            );
        }
        return;
    }
    println!(
        "| deploy | changed URLs | month | planner | billed | swept | missed | cost | time (median) | random order | cost ÷ s3deploy | cost ÷ all paths |"
    );
    println!("| --- | ---: | --- | --- | ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: |");
    let mut last = (String::new(), 0);
    for (i, r) in rows.iter().enumerate() {
        let (vs_s3, vs_all) = if r.who == Who::Ours {
            (
                ratio(r.cost, rows[i - 2].cost),
                ratio(r.cost, rows[i - 1].cost),
            )
        } else {
            (String::new(), String::new())
        };
        let head = (r.scenario.clone(), r.free);
        let (deploy, urls) = if last.0 == head.0 {
            (String::new(), String::new())
        } else {
            (r.scenario.clone(), thousands(r.changed_urls as u64))
        };
        let month = if last == head { "" } else { r.tier };
        last = head;
        let bold = |s: String| {
            if r.who == Who::Ours {
                format!("**{s}**")
            } else {
                s
            }
        };
        println!(
            "| {deploy} | {urls} | {month} | {} | {} | {} | {} | {} | {} | {} | {vs_s3} | {vs_all} |",
            r.planner,
            thousands(r.out.billed as u64),
            thousands(r.out.swept as u64),
            r.out.missed,
            bold(format_usd(r.cost)),
            r.time.map_or("".into(), ms),
            r.time_shuffled.map_or("".into(), ms),
        );
    }

    // Targets.
    let ours: Vec<(usize, &Row)> = rows
        .iter()
        .enumerate()
        .filter(|(_, r)| r.who == Who::Ours)
        .collect();
    let missed: usize = ours.iter().map(|(_, r)| r.out.missed).sum();
    let dearer: Vec<String> = ours
        .iter()
        .filter(|(i, r)| r.cost > rows[i - 2].cost || r.cost > rows[i - 1].cost)
        .map(|(_, r)| format!("{} ({})", r.scenario, r.tier))
        .collect();
    // Within the free tier: where the changed URLs fit in the free paths left, nothing may be swept.
    let swept_free: Vec<String> = ours
        .iter()
        .filter(|(_, r)| r.changed_urls as u64 <= r.free && r.out.swept > 0)
        .map(|(_, r)| r.scenario.clone())
        .collect();
    let fit = ours
        .iter()
        .filter(|(_, r)| r.changed_urls as u64 <= r.free)
        .count();
    println!();
    println!("| target | measured | |");
    println!("| --- | --- | --- |");
    for (urls, what) in [(50_000, "target"), (100_000, "stretch")] {
        let these: Vec<&&Row> = ours
            .iter()
            .map(|(_, r)| r)
            .filter(|r| r.changed_urls == urls)
            .collect();
        let Some(slowest) = these.iter().filter_map(|r| r.time).max() else {
            continue;
        };
        let each: Vec<String> = these
            .iter()
            .map(|r| {
                format!(
                    "{} ({}, {} item{})",
                    r.time.map_or("".into(), ms),
                    r.tier,
                    thousands(r.out.billed as u64),
                    if r.out.billed == 1 { "" } else { "s" }
                )
            })
            .collect();
        let shuffled: Vec<String> = these
            .iter()
            .filter_map(|r| r.time_shuffled)
            .map(ms)
            .collect();
        println!(
            "| plan {} changed URLs in ≤ 20 ms, deploy order ({what}) | {} | {} |",
            thousands(urls as u64),
            each.join(", "),
            met(slowest <= Duration::from_millis(20))
        );
        println!(
            "| the same, URLs in random order | {} | (info) |",
            shuffled.join(", ")
        );
    }
    println!(
        "| no changed URL missed (ours) | {missed} missed | {} |",
        met(missed == 0)
    );
    println!(
        "| cost ≤ s3deploy's and ≤ all paths', every row | {} | {} |",
        if dearer.is_empty() {
            "never dearer".to_string()
        } else {
            format!("dearer in: {}", dearer.join("; "))
        },
        met(dearer.is_empty())
    );
    println!(
        "| nothing swept where the changed URLs fit in the free paths left | {} of {fit} such rows swept | {} |",
        swept_free.len(),
        met(swept_free.is_empty())
    );
}

fn met(ok: bool) -> &'static str {
    if ok { "met" } else { "**missed**" }
}

/// Our plan in a few words: `1 wildcard`, `15 wildcards, 1,970 paths`.
fn kinds(p: &PurgePlan) -> String {
    let wild = p
        .items
        .iter()
        .filter(|i| i.item.kind != ItemKind::Path)
        .count();
    let exact = p.items.len() - wild;
    let n = |k: usize, what: &str| {
        format!(
            "{} {what}{}",
            thousands(k as u64),
            if k == 1 { "" } else { "s" }
        )
    };
    match (wild, exact) {
        (0, e) => n(e, "path"),
        (w, 0) if p.items[0].item.value == "/" => format!("`/*`{}", if w > 1 { "…" } else { "" }),
        (1, 0) => format!("`{}`", p.items[0].item),
        (w, 0) => n(w, "wildcard"),
        (w, e) => format!("{}, {}", n(w, "wildcard"), n(e, "path")),
    }
}

/// s3deploy's output in a few words: `3 wildcards, 2 paths`, `/*`.
fn summary(paths: &[String]) -> String {
    if paths == ["/*"] {
        return "`/*`".into();
    }
    if paths.len() == 1 && paths[0].ends_with('*') {
        return format!("`{}`", paths[0]);
    }
    let wild = paths.iter().filter(|p| p.ends_with('*')).count();
    let exact = paths.len() - wild;
    let n = |k: usize, what: &str| format!("{k} {what}{}", if k == 1 { "" } else { "s" });
    match (wild, exact) {
        (0, e) => n(e, "path"),
        (w, 0) => n(w, "wildcard"),
        (w, e) => format!("{}, {}", n(w, "wildcard"), n(e, "path")),
    }
}
