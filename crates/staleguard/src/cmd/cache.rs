//! `staleguard cache bump|status`: the `[[app-cache]]` targets on their own (a deploy, a rollback, a
//! pending purge and the service bump them before the CDNs; this is for by hand, cron, and checks).

use std::process::ExitCode;

use anyhow::{Result, bail};
use staleguard_invalidate::purge::AppCacheOutcome;

use crate::cli::{CacheCommand, Global};
use crate::cmd::runtime;
use crate::settings;

pub fn run(global: &Global, cmd: &CacheCommand) -> Result<ExitCode> {
    let loaded = settings::load(global)?;
    let (args, bump) = match cmd {
        CacheCommand::Bump(a) => (a, true),
        CacheCommand::Status(a) => (a, false),
    };
    let all = &loaded.config.app_cache;
    if all.is_empty() {
        bail!(
            "no app cache in the config\nhint: add one, e.g.\n  [[app-cache]]\n  name = \"pages\"\n  kind = \"redis\"\n  url = \"redis://127.0.0.1:6379\""
        );
    }
    for t in &args.targets {
        if !all.iter().any(|c| c.label() == t) {
            bail!(
                "--target {t}: no [[app-cache]] named `{t}` (configured: {})",
                all.iter().map(|c| c.label()).collect::<Vec<_>>().join(", ")
            );
        }
    }
    for ns in &args.namespaces {
        staleguard_core::config::check_namespace(ns)
            .map_err(|e| anyhow::anyhow!("--namespace: {e}"))?;
    }
    let chosen: Vec<_> = all
        .iter()
        .filter(|c| args.targets.is_empty() || args.targets.iter().any(|t| t == c.label()))
        .cloned()
        .collect();
    let targets = staleguard_appcache::open_all(&chosen)?;
    let rt = runtime()?;
    let namespaces = (!args.namespaces.is_empty()).then_some(args.namespaces.as_slice());
    if bump {
        let (bumped, error) = rt.block_on(staleguard_appcache::bump_all(
            &targets,
            namespaces,
            args.dry_run,
        ));
        let outcome = AppCacheOutcome {
            ran: true,
            bumped,
            error: error.as_ref().map(|e| e.to_string()),
        };
        if global.json {
            println!("{}", serde_json::json!({ "app_caches": outcome }));
        } else if !global.quiet {
            print_outcome(&outcome);
        }
        if let Some(e) = error {
            return Err(e.into());
        }
        return Ok(ExitCode::SUCCESS);
    }
    let mut rows = Vec::new();
    for t in &targets {
        let ns = namespaces.unwrap_or(&t.config.namespaces);
        if t.config.strategy != staleguard_appcache::AppCacheStrategy::Namespace {
            if !global.quiet && !global.json {
                println!(
                    "{}: strategy {:?} keeps no versions",
                    t.name(),
                    t.config.strategy
                );
            }
            continue;
        }
        rows.extend(rt.block_on(t.status(ns))?);
    }
    if global.json {
        println!("{}", serde_json::json!({ "versions": rows }));
    } else if !global.quiet {
        for r in &rows {
            for (server, v) in &r.versions {
                println!(
                    "{} {} ({}): {}{}",
                    r.target,
                    r.namespace,
                    r.key,
                    v.map_or(
                        "not set (the app seeds it on first use)".into(),
                        |v| format!("version {v}")
                    ),
                    if r.versions.len() > 1 {
                        format!(" on {server}")
                    } else {
                        String::new()
                    }
                );
            }
        }
    }
    Ok(ExitCode::SUCCESS)
}

/// One line per target and namespace: what was bumped (or would be), then the failure.
pub fn print_outcome(o: &AppCacheOutcome) {
    if !o.ran {
        println!("app caches: nothing pending, not bumped");
        return;
    }
    for b in &o.bumped {
        println!("app cache {}: {}", b.target, b.describe());
    }
    if let Some(e) = &o.error {
        println!("app cache: FAILED: {}", e.lines().next().unwrap_or(""));
    }
}
