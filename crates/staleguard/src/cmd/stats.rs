//! `staleguard stats LOG…`: what the CDN did, from its logs (`staleguard-stats`), judged against the
//! `[stats]` thresholds. Route classes come from the same plan as `cdn-config` (route table + the
//! build's manifest); fingerprinted names are checked against the store's kept deploys when a store
//! is reachable.

use std::collections::HashSet;
use std::process::ExitCode;

use anyhow::{Context, Result, anyhow};
use staleguard_cdnconf::{Edge, Origin, Plan, Select};
use staleguard_core::Manifest;
use staleguard_stats::report::{Report, Summary, TopList};
use staleguard_stats::{AgeRule, Format, Options, Routes};

use crate::cli::{Global, StatsArgs};
use crate::exit::ExitStatus;
use crate::settings::{self, Loaded};

pub fn run(global: &Global, args: &StatsArgs) -> Result<ExitCode> {
    let loaded = settings::load(global)?;
    let cfg = &loaded.config;
    let cwd = std::env::current_dir().context("cannot read the current folder")?;
    let say = |m: &str| {
        if !global.quiet && !global.json {
            eprintln!("{m}");
        }
    };

    let format = args
        .format
        .as_deref()
        .map(Format::parse)
        .transpose()
        .map_err(|e| anyhow!("--format: {e}"))?;
    let dir = match &args.dir {
        Some(d) => cwd.join(d),
        None => loaded.base.join(&cfg.build.out),
    };
    let manifest = if dir.join(&cfg.build.manifest).is_file() || args.dir.is_some() {
        Some(settings::read_manifest(&dir, &cfg.build.manifest, "stats")?)
    } else {
        say(&format!(
            "note: no build manifest in `{}`: fingerprinted URLs are told by their names alone, every other URL counts as mutable\nhint: run `staleguard build` first, or pass --dir",
            dir.display()
        ));
        None
    };
    let mut routes = routes(&loaded, manifest.as_ref())?;
    if !args.no_store
        && let Some(known) = known_names(&loaded, args, manifest.as_ref(), &say)
    {
        routes = routes.with_known(known);
    }

    let mut config = cfg.stats.clone();
    if let Some(n) = args.top {
        config.top = n;
    }
    if let Some(b) = &args.bucket {
        if b.get().as_secs() == 0 {
            anyhow::bail!("--bucket must be at least 1s");
        }
        config.bucket = Some(b.clone());
    }
    let mut opts = Options::new(routes, config);
    opts.format = format;
    opts.fields = args.fields.clone();
    opts.workers = args.jobs.filter(|j| *j > 0);
    let paths: Vec<_> = args
        .logs
        .iter()
        .map(|p| {
            if p.as_os_str() == "-" {
                p.clone()
            } else {
                cwd.join(p)
            }
        })
        .collect();
    let report = staleguard_stats::analyze(&paths, &opts).map_err(|e| match e.hint() {
        Some(h) => anyhow!("{e}\nhint: {h}"),
        None => anyhow!("{e}"),
    })?;

    if let Some(html) = &args.html {
        let page = staleguard_stats::html::render(
            &report,
            opts.config.min_hit_ratio,
            opts.config.max_origin_ratio,
        );
        std::fs::write(cwd.join(html), page).with_context(|| {
            format!(
                "cannot write `{}`\nhint: pass --html with a path in a folder that exists",
                html.display()
            )
        })?;
        say(&format!("wrote {}", html.display()));
    }
    if global.json {
        println!("{}", serde_json::to_string(&report)?);
    } else if !global.quiet {
        print_table(&report);
    }
    Ok(ExitCode::from(if report.crossed {
        ExitStatus::Stale
    } else {
        ExitStatus::Ok
    }))
}

/// The classifier: the plan's fingerprint regex and mutable look-alikes, the manifest's mutable URLs
/// and the route table's edge lifetimes for them.
fn routes(loaded: &Loaded, manifest: Option<&Manifest>) -> Result<Routes> {
    let cfg = &loaded.config;
    let empty = Manifest::new(cfg.build.url_prefix.clone(), Default::default());
    let m = manifest.unwrap_or(&empty);
    let origin = Origin {
        host: "127.0.0.1".into(),
        port: 80,
    };
    let plan = Plan::new(&cfg.routes, &cfg.serve, m, origin, Vec::new());
    let mutable = manifest.map(|m| {
        let prefix = if m.url_prefix.is_empty() {
            "/"
        } else {
            m.url_prefix.as_str()
        };
        let mut urls: HashSet<String> = HashSet::new();
        for (out, logical, e) in m.output_paths() {
            let original_copy = out == logical && e.path != logical;
            if (e.mutable && out == e.path) || original_copy {
                urls.extend(staleguard_core::keys::key_urls(
                    &out,
                    prefix,
                    true,
                    cfg.serve.clean_urls,
                ));
            }
        }
        urls
    });
    let ages: Vec<AgeRule> = plan
        .rules
        .iter()
        .filter_map(|r| {
            let regex = match &r.select {
                Select::Path { regex, .. } => Some(regex.clone()),
                Select::Mutable | Select::All => None,
                Select::Fingerprinted => return None,
            };
            let max_age = match r.mutable.1 {
                Edge::Cache { ttl, grace } => ttl + grace,
                Edge::Revalidate | Edge::Pass => 0,
            };
            Some(AgeRule { regex, max_age })
        })
        .collect();
    Routes::new(
        &plan.fingerprinted,
        plan.not_fingerprinted.clone(),
        mutable,
        &ages,
    )
    .map_err(|e| anyhow!("{e}\nhint: check the `[[routes]]` globs of the config"))
}

/// The fingerprinted URLs of the current build and of every deploy the store keeps (not yet
/// collected), or `None` when no store is reachable (said on stderr; the check is skipped).
fn known_names(
    loaded: &Loaded,
    args: &StatsArgs,
    manifest: Option<&Manifest>,
    say: &dyn Fn(&str),
) -> Option<HashSet<String>> {
    let config = match settings::store_config(loaded, &args.store) {
        Ok(c) => c,
        Err(e) => {
            say(&format!("note: deploys not checked: {e}"));
            return None;
        }
    };
    let url = config.store.clone();
    let state = if config.state.is_empty() {
        url.clone()
    } else {
        config.state.clone()
    };
    if let Some(rest) = state.strip_prefix("file://")
        && !loaded.base.join(rest).join(".staleguard").is_dir()
    {
        // The default folder store that was never deployed to: nothing to check against.
        return None;
    }
    let base = loaded.base.clone();
    let rt = match super::runtime() {
        Ok(rt) => rt,
        Err(e) => {
            say(&format!("note: deploys not checked: {e}"));
            return None;
        }
    };
    let read = rt.block_on(async {
        let (history, _) = staleguard_store::history(&url, &config, &base).await?;
        let store = staleguard_store::Store::open(&url, &config, &base)?;
        let mut keys: HashSet<String> = HashSet::new();
        let mut deploys = 0usize;
        for e in history.deploys.iter().rev().filter(|e| !e.collected) {
            let key = staleguard_core::deploy::record_key(&e.id);
            if let Some(r) = store
                .get_json::<staleguard_core::deploy::DeployRecord>(&key)
                .await?
            {
                deploys += 1;
                keys.extend(
                    r.objects
                        .iter()
                        .filter(|(_, o)| !o.mutable)
                        .map(|(k, _)| format!("/{k}")),
                );
            }
        }
        Ok::<_, staleguard_store::StoreError>((keys, deploys))
    });
    match read {
        Ok((mut keys, deploys)) => {
            if let Some(m) = manifest {
                let prefix = m.url_prefix.trim_matches('/');
                for (p, _, _) in m.immutable_paths() {
                    keys.insert(if prefix.is_empty() {
                        format!("/{p}")
                    } else {
                        format!("/{prefix}/{p}")
                    });
                }
            }
            say(&format!(
                "checking fingerprinted names against {deploys} kept deploy(s) of {url}"
            ));
            Some(keys)
        }
        Err(e) => {
            say(&format!(
                "note: deploys not checked: cannot read the deploy history of `{url}`: {e}\nhint: pass --store URL, or --no-store"
            ));
            None
        }
    }
}

fn pct(v: Option<f64>) -> String {
    v.map_or("-".to_string(), |v| format!("{:.1}%", v * 100.0))
}

fn row(name: &str, s: &Summary) -> [String; 9] {
    [
        name.to_string(),
        s.requests.to_string(),
        crate::output::size(s.bytes),
        pct(s.hit_ratio),
        pct(s.byte_hit_ratio),
        s.origin_requests.to_string(),
        pct(s.origin_ratio),
        crate::output::size(s.origin_bytes),
        pct(s.error_ratio),
    ]
}

fn print_rows(rows: &[Vec<String>]) {
    let cols = rows.iter().map(Vec::len).max().unwrap_or(0);
    let widths: Vec<usize> = (0..cols)
        .map(|i| {
            rows.iter()
                .map(|r| r.get(i).map_or(0, |c| c.chars().count()))
                .max()
                .unwrap_or(0)
        })
        .collect();
    for r in rows {
        let line: Vec<String> = r
            .iter()
            .enumerate()
            .map(|(i, c)| {
                if i == 0 {
                    format!("{c:<w$}", w = widths[i])
                } else {
                    format!("{c:>w$}", w = widths[i])
                }
            })
            .collect();
        println!("{}", line.join("  ").trim_end());
    }
}

fn print_top(title: &str, list: &TopList, ages: bool) {
    if list.total == 0 {
        return;
    }
    let approx = if list.max_error > 0 {
        format!(", counts may be low by up to {}", list.max_error)
    } else {
        String::new()
    };
    println!("\n{title} ({} requests{approx}):", list.total);
    for u in &list.urls {
        if ages {
            println!(
                "  {:>8}  Age up to {} s  {}",
                u.count,
                u.max_age.unwrap_or(0),
                u.url
            );
        } else {
            println!(
                "  {:>8}  {:>9}  {}",
                u.count,
                crate::output::size(u.bytes),
                u.url
            );
        }
    }
}

fn print_table(r: &Report) {
    for f in &r.files {
        println!(
            "{}: {}{}, {} lines, {} requests, {} malformed",
            f.path,
            f.format,
            if f.gzip { " (gzip)" } else { "" },
            f.lines,
            f.records,
            f.malformed
        );
    }
    if let (Some(a), Some(b)) = (&r.first, &r.last) {
        println!("from {a} to {b}, buckets of {} s", r.bucket_seconds);
    }
    println!();
    let mut rows: Vec<Vec<String>> = vec![
        [
            "",
            "requests",
            "bytes",
            "hit",
            "byte hit",
            "origin",
            "origin %",
            "origin bytes",
            "5xx",
        ]
        .map(String::from)
        .to_vec(),
    ];
    rows.push(row("all", &r.total).to_vec());
    for (k, v) in &r.classes {
        if v.requests > 0 {
            rows.push(row(k, v).to_vec());
        }
    }
    print_rows(&rows);
    let join = |m: &std::collections::BTreeMap<&str, u64>| {
        m.iter()
            .map(|(k, v)| format!("{k} {v}"))
            .collect::<Vec<_>>()
            .join(", ")
    };
    println!("\nstatus: {}", join(&r.total.status));
    println!("cache: {}", join(&r.total.cache));
    print_top("top misses", &r.top_misses, false);
    print_top(
        "STALE: fingerprinted names in no kept deploy",
        &r.stale.unknown_fingerprinted,
        false,
    );
    print_top(
        "STALE: 404s on fingerprinted names",
        &r.stale.fingerprinted_404,
        false,
    );
    print_top(
        "STALE: mutable URLs served older than their s-maxage",
        &r.stale.mutable_over_age,
        true,
    );
    if r.malformed > 0 {
        println!("\n{} malformed line(s):", r.malformed);
        for m in &r.malformed_samples {
            println!("  {}:{}: {}\n    {}", m.file, m.line, m.reason, m.text);
        }
    }
    println!();
    for c in &r.checks {
        let value = match c.value {
            None => "-".to_string(),
            Some(v) if c.name.ends_with("ratio") => pct(Some(v)),
            Some(v) => format!("{v}"),
        };
        let verdict = match c.ok {
            Some(true) => "ok",
            Some(false) => "CROSSED",
            None => "not judged",
        };
        println!(
            "{:<22} {:>8}  target {:<8} {verdict}",
            c.name, value, c.target
        );
    }
    if r.crossed {
        println!("a threshold is crossed (exit 3)");
    }
}
