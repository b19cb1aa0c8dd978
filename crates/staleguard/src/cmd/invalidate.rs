//! `staleguard invalidate` and `staleguard invalidations status|list`.

use std::process::ExitCode;

use anyhow::{Result, bail};
use staleguard_cdn::{Invalidation, Status};
use staleguard_invalidate::purge;
use staleguard_store::PurgeState;

use crate::cli::{Global, InvalidateArgs, InvalidationsCommand, StoreArgs};
use crate::cmd::runtime;
use crate::settings;

pub fn run(global: &Global, args: &InvalidateArgs) -> Result<ExitCode> {
    if args.scope.is_some() {
        return crate::cmd::service::send_event(global, args);
    }
    let loaded = settings::load(global)?;
    if loaded.config.cdn.is_empty() {
        bail!(
            "no CDN to purge: the config has no [[cdn]] entry\nhint: add one, e.g.\n  [[cdn]]\n  provider = \"varnish\"\n  nodes = [\"http://127.0.0.1:6081\"]"
        );
    }
    let store = settings::store_config(&loaded, &args.store)?;
    let source = settings::invalidate_source(&loaded, args)?;
    let progress = !global.quiet && !global.json;
    let mut run = settings::purge_settings(
        &loaded,
        &store,
        &args.purge,
        args.dry_run,
        false,
        progress.then(crate::cmd::purge::observer),
    )?;
    // Given paths, prefixes or tags: the app caches only with --namespace (what to bump is the
    // caller's to say); what is pending from deploys: each target's namespaces, as the deploy would.
    if matches!(source, purge::Source::Explicit { .. }) && args.purge.namespaces.is_empty() {
        run.app_caches = None;
    }
    let reports = runtime()?.block_on(async {
        let mut state = PurgeState::load(&store.store, &store, &loaded.base).await?;
        anyhow::Ok(purge::run(&run, &source, None, &mut state).await?)
    })?;
    if global.json {
        println!("{}", serde_json::json!({ "purges": reports }));
    } else if !global.quiet {
        crate::cmd::purge::print(&reports, args.purge.explain || args.dry_run);
    }
    for r in &reports {
        if r.outcome == staleguard_invalidate::Outcome::Failed && !r.fails() {
            eprintln!(
                "warning: the purge of {} failed; on-failure = \"warn\", going on",
                r.provider
            );
        }
    }
    let failed: Vec<&str> = reports
        .iter()
        .filter(|r| r.fails())
        .map(|r| r.provider.as_str())
        .collect();
    if !failed.is_empty() {
        bail!(
            "the purge failed on {}\nhint: fix the cause above and run `staleguard invalidate` again: it purges what is still pending",
            failed.join(", ")
        );
    }
    Ok(ExitCode::SUCCESS)
}

pub fn invalidations(global: &Global, cmd: &InvalidationsCommand) -> Result<ExitCode> {
    let loaded = settings::load(global)?;
    let store = settings::store_config(&loaded, &StoreArgs { store: None })?;
    let (cdns, id, max) = match cmd {
        InvalidationsCommand::Status { id, cdns } => (cdns, Some(id.as_str()), 0),
        InvalidationsCommand::List { max, cdns } => (cdns, None, *max),
    };
    let selected = purge::select(&loaded.config.cdn, cdns)?;
    if selected.is_empty() {
        bail!("no CDN in the config: add a [[cdn]] entry");
    }
    let ctx = purge::open_context(&store.store);
    let rt = runtime()?;
    let mut found: Vec<Invalidation> = Vec::new();
    let mut statuses: Vec<(String, Status)> = Vec::new();
    let mut errors: Vec<String> = Vec::new();
    rt.block_on(async {
        for cfg in selected {
            let providers = match staleguard_cdn::open(cfg, &ctx).await {
                Ok(p) => p,
                Err(e) => {
                    errors.push(e.shown());
                    continue;
                }
            };
            for p in providers {
                let res = match id {
                    Some(id) => p
                        .status(id)
                        .await
                        .map(|s| statuses.push((p.name().to_string(), s))),
                    None => p.list(max).await.map(|l| found.extend(l)),
                };
                if let Err(e) = res {
                    // An id unknown to one distribution is normal when there are several.
                    if !(id.is_some() && e.kind == staleguard_cdn::ErrorKind::NotFound) {
                        errors.push(e.shown());
                    }
                }
            }
        }
    });
    // Newest first across CDNs too (each gave its newest `max`); stable, so a CDN's order stays.
    found.sort_by(|a, b| b.created.cmp(&a.created));
    if global.json {
        match id {
            Some(id) => println!(
                "{}",
                serde_json::json!({ "id": id, "status": statuses.iter().map(|(p, s)| serde_json::json!({"provider": p, "status": s})).collect::<Vec<_>>(), "errors": errors })
            ),
            None => println!(
                "{}",
                serde_json::json!({ "invalidations": found, "errors": errors })
            ),
        }
    } else {
        match id {
            Some(id) => {
                for (p, s) in &statuses {
                    println!("{p} {id}: {}", status_text(*s));
                }
            }
            None => {
                if found.is_empty() && errors.is_empty() {
                    println!("no invalidations (providers that keep no history list nothing)");
                }
                for i in &found {
                    println!(
                        "{:<28} {:<16} {:<12} {:<22} {}",
                        i.provider,
                        i.id,
                        status_text(i.status),
                        i.created.as_deref().unwrap_or("-"),
                        i.items.join(" ")
                    );
                }
            }
        }
        for e in &errors {
            eprintln!("error: {e}");
        }
    }
    if let (Some(id), true) = (id, statuses.is_empty()) {
        bail!("no configured CDN knows a purge `{id}`");
    }
    if !errors.is_empty() {
        return Ok(ExitCode::from(crate::exit::ExitStatus::Failed));
    }
    Ok(ExitCode::SUCCESS)
}

fn status_text(s: Status) -> &'static str {
    match s {
        Status::Completed => "completed",
        Status::InProgress => "in progress",
    }
}
