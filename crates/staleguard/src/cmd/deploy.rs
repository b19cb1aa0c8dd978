//! `staleguard deploy`, `staleguard deploys` and `staleguard rollback`.

use std::process::ExitCode;
use std::sync::Arc;

use anyhow::{Context, Result, bail};
use staleguard_store::{DeployReport, Progress};

use staleguard_invalidate::Outcome;
use staleguard_invalidate::conclude::{ConcludeSettings, Conclusion};

use crate::cli::{DeployArgs, DeploysArgs, FinishArgs, Global, RollbackArgs};
use crate::cmd::{purge, runtime, verify};
use crate::output::{UploadBars, size};
use crate::settings;

pub fn run(global: &Global, args: &DeployArgs) -> Result<ExitCode> {
    let loaded = settings::load(global)?;
    // An unknown --cdn is refused before anything changes.
    staleguard_invalidate::purge::select(&loaded.config.cdn, &args.finish.purge.cdns)?;
    // Never ship a stale output: the incremental build first (nearly free when nothing changed).
    let built = match settings::deploy_build(&loaded, args)? {
        Some(build_opts) => Some(
            super::build::build(
                global,
                &loaded,
                &build_opts,
                settings::deploy_reuse(&loaded, args)?.as_ref(),
            )
            .context(
                "nothing was deployed\nhint: fix the build, or deploy the output as it is with --no-build",
            )?,
        ),
        None => None,
    };
    let opts = settings::deploy_options(&loaded, args)?;
    let finish = finish_settings(global, &loaded, &opts, &args.finish)?;
    if let Some(w) = opts.config.state_warning()
        && !global.quiet
    {
        eprintln!("warning: {w}");
    }
    let bars: Arc<dyn Progress> = Arc::new(UploadBars::new(!global.quiet && !global.json));
    let rt = runtime()?;
    let report = rt
        .block_on(staleguard_store::deploy(&opts, bars))
        .with_context(|| {
            format!(
                "deploy of `{}` to `{}` failed",
                opts.dir.display(),
                opts.config.store
            )
        })?;
    conclude(
        global,
        &loaded,
        &finish,
        args.finish.purge.explain,
        &rt,
        &report,
        built.as_ref(),
    )
}

/// The steps after the commit, resolved before anything is deployed (a bad setting is refused while
/// nothing has changed yet).
fn finish_settings(
    global: &Global,
    loaded: &settings::Loaded,
    opts: &staleguard_store::DeployOptions,
    steps: &FinishArgs,
) -> Result<ConcludeSettings> {
    let v = &loaded.config.verify;
    let purging =
        !steps.no_purge && (!loaded.config.cdn.is_empty() || !loaded.config.app_cache.is_empty());
    let verifying = !opts.dry_run && !steps.no_verify && v.in_deploy && !v.cdn_url.is_empty();
    let progress = !global.quiet && !global.json;
    Ok(ConcludeSettings {
        purge: purging
            .then(|| {
                settings::purge_settings(
                    loaded,
                    &opts.config,
                    &steps.purge,
                    opts.dry_run,
                    true,
                    progress.then(purge::observer),
                )
            })
            .transpose()?,
        prove: verifying
            .then(|| settings::prove_settings(loaded, &opts.config, &[], None))
            .transpose()?,
        store: opts.config.clone(),
        base: loaded.base.clone(),
    })
}

/// After a deploy or rollback: purge, prove, print, notify, pick the exit code.
fn conclude(
    global: &Global,
    loaded: &settings::Loaded,
    settings: &ConcludeSettings,
    explain: bool,
    rt: &tokio::runtime::Runtime,
    report: &DeployReport,
    built: Option<&staleguard_assets::BuildReport>,
) -> Result<ExitCode> {
    let done = match rt.block_on(staleguard_invalidate::conclude::conclude(settings, report)) {
        Ok(done) => done,
        // The objects are deployed; what failed is reading the purge state or choosing the CDNs.
        Err(e) => {
            print_report(global, report, built, &Conclusion::default(), explain);
            crate::output::print_error(&anyhow::Error::from(e));
            return Ok(ExitCode::from(crate::exit::ExitStatus::Stale));
        }
    };
    let json = print_report(global, report, built, &done, explain);
    if !report.dry_run
        && let Some(hook) = settings::webhook(loaded)
    {
        let (text, fields) = done.summary(report);
        if let Err(e) = rt.block_on(staleguard_invalidate::notify::notify(
            &hook, &text, &fields, &json,
        )) {
            eprintln!("warning: the webhook (${}) was not notified: {e}", hook.var);
        }
    }
    finish(global, &done)
}

/// Warnings for CDNs that may fail, and the exit code.
fn finish(global: &Global, done: &Conclusion) -> Result<ExitCode> {
    let purges = &done.purges;
    let stale = match &done.proof {
        Some(Ok(p)) if !p.ok => {
            eprintln!(
                "error: deployed, but users may still get stale content: {} check(s) still failed at the deadline{} (listed above)\nhint: `staleguard verify` re-checks; `staleguard invalidate` purges what is pending",
                p.stale_checks(),
                if p.origin_stale() {
                    ", and the origin does not serve the deployed version"
                } else {
                    ""
                }
            );
            true
        }
        Some(Err(e)) => {
            eprintln!(
                "error: deployed, but the verification could not run: {}",
                e.error().full()
            );
            true
        }
        _ => false,
    };
    for r in purges {
        if r.outcome == Outcome::Failed && !r.fails() && !global.quiet {
            eprintln!(
                "warning: the purge of {} failed (on-failure = \"warn\"); `staleguard invalidate` purges what is pending",
                r.provider
            );
        }
    }
    if let Some(e) = done.app_caches.as_ref().and_then(|a| a.error.as_ref()) {
        eprintln!(
            "error: deployed, but an app cache was not bumped, so no CDN was purged (a purge first would re-cache the old page): users may get stale content\n{e}\nhint: fix the cause and run `staleguard invalidate`: it bumps the app caches, then purges what is pending"
        );
        return Ok(ExitCode::from(crate::exit::ExitStatus::Stale));
    }
    let failed: Vec<&str> = purges
        .iter()
        .filter(|r| r.fails())
        .map(|r| r.provider.as_str())
        .collect();
    if failed.is_empty() {
        return Ok(if stale {
            ExitCode::from(crate::exit::ExitStatus::Stale)
        } else {
            ExitCode::SUCCESS
        });
    }
    eprintln!(
        "error: deployed, but the purge failed on {}: the CDN may serve stale content\nhint: fix the cause above and run `staleguard invalidate`: it purges what is still pending",
        failed.join(", ")
    );
    Ok(ExitCode::from(crate::exit::ExitStatus::Stale))
}

pub fn rollback(global: &Global, args: &RollbackArgs) -> Result<ExitCode> {
    let loaded = settings::load(global)?;
    let opts = settings::rollback_options(&loaded, args)?;
    let finish = finish_settings(global, &loaded, &opts, &args.finish)?;
    // An unknown --cdn is refused before anything changes.
    staleguard_invalidate::purge::select(&loaded.config.cdn, &args.finish.purge.cdns)?;
    let bars: Arc<dyn Progress> = Arc::new(UploadBars::new(!global.quiet && !global.json));
    let rt = runtime()?;
    let report = rt
        .block_on(staleguard_store::rollback(&opts, args.id.as_deref(), bars))
        .with_context(|| format!("rollback in `{}` failed", opts.config.store))?;
    conclude(
        global,
        &loaded,
        &finish,
        args.finish.purge.explain,
        &rt,
        &report,
        None,
    )
}

pub fn list(global: &Global, args: &DeploysArgs) -> Result<ExitCode> {
    let loaded = settings::load(global)?;
    let config = settings::store_config(&loaded, &args.store)?;
    let rt = runtime()?;
    if args.unlock {
        let was = rt
            .block_on(staleguard_store::lease::unlock_at(
                &config.store,
                &config,
                &loaded.base,
            ))
            .with_context(|| format!("cannot unlock `{}`", config.store))?;
        match (&was, config.store.starts_with("file://")) {
            (Some(h), true) => bail!(
                "`{}` is locked by {}, a running process; a folder's lock is freed when its process ends\nhint: wait for it, or stop that process",
                config.store,
                h.describe()
            ),
            (None, true) => println!(
                "{} is not locked (a folder's lock is freed when its process ends)",
                config.store
            ),
            (Some(h), false) => println!(
                "removed the deploy lease of {} held by {}",
                config.store,
                h.describe()
            ),
            (None, false) => println!("{} had no deploy lease", config.store),
        }
        return Ok(ExitCode::SUCCESS);
    }
    let ((history, current), holder) = rt
        .block_on(async {
            let h = staleguard_store::history(&config.store, &config, &loaded.base).await?;
            let l =
                staleguard_store::lease::holder_at(&config.store, &config, &loaded.base).await?;
            Ok::<_, staleguard_store::StoreError>((h, l))
        })
        .with_context(|| format!("cannot read the deploy history of `{}`", config.store))?;
    if global.json {
        println!(
            "{}",
            serde_json::json!({ "store": config.store, "current": current, "deploys": history.deploys, "lock": holder })
        );
        return Ok(ExitCode::SUCCESS);
    }
    if let Some(h) = &holder {
        println!("locked: {}", h.describe());
    }
    if history.deploys.is_empty() {
        println!("no deploys in {}", config.store);
        return Ok(ExitCode::SUCCESS);
    }
    let mut rows: Vec<[String; 9]> = vec![
        [
            " ", "id", "time", "commit", "kind", "objects", "bytes", "uploaded", "up bytes",
        ]
        .map(String::from),
    ];
    for e in &history.deploys {
        let mark = if current.as_deref() == Some(e.id.as_str()) {
            "*"
        } else {
            " "
        };
        let kind = match (&e.restores, e.collected) {
            (Some(r), _) => format!("rollback→{r}"),
            (None, true) => "collected".to_string(),
            (None, false) => "deploy".to_string(),
        };
        rows.push([
            mark.to_string(),
            e.id.clone(),
            e.time.clone(),
            e.git_commit
                .as_deref()
                .map_or("-", |c| &c[..c.len().min(12)])
                .to_string(),
            kind,
            e.objects.to_string(),
            size(e.bytes),
            e.uploaded.to_string(),
            size(e.uploaded_bytes),
        ]);
    }
    // Every column as wide as its widest cell; text left-aligned, numbers right-aligned.
    let mut widths = [0usize; 9];
    for row in &rows {
        for (w, cell) in widths.iter_mut().zip(row) {
            *w = (*w).max(cell.chars().count());
        }
    }
    for row in &rows {
        let cells: Vec<String> = row
            .iter()
            .zip(widths)
            .enumerate()
            .map(|(i, (cell, w))| {
                if i >= 5 {
                    format!("{cell:>w$}")
                } else {
                    format!("{cell:<w$}")
                }
            })
            .collect();
        println!("{}", cells.join(" ").trim_end());
    }
    Ok(ExitCode::SUCCESS)
}

/// Prints the report (JSON or human) and returns it as JSON (for the webhook).
fn print_report(
    global: &Global,
    r: &DeployReport,
    built: Option<&staleguard_assets::BuildReport>,
    done: &Conclusion,
    explain: bool,
) -> serde_json::Value {
    let purges = &done.purges;
    let mut v = serde_json::to_value(r).unwrap_or_default();
    if let Some(o) = v.as_object_mut() {
        if let Some(b) = built {
            o.insert("build".into(), serde_json::to_value(b).unwrap_or_default());
        }
        o.insert(
            "purges".into(),
            serde_json::to_value(purges).unwrap_or_default(),
        );
        if let Some(a) = &done.app_caches {
            o.insert(
                "app_caches".into(),
                serde_json::to_value(a).unwrap_or_default(),
            );
        }
        match &done.proof {
            Some(Ok(p)) => {
                o.insert("verify".into(), serde_json::to_value(p).unwrap_or_default());
            }
            Some(Err(e)) => {
                o.insert(
                    "verify".into(),
                    serde_json::json!({ "ok": false, "error": e.error().full() }),
                );
            }
            None => {}
        }
    }
    if global.json {
        println!("{v}");
        return v;
    }
    if global.quiet {
        return v;
    }
    print_summary(r, explain);
    if let Some(a) = &done.app_caches {
        crate::cmd::cache::print_outcome(a);
    }
    purge::print(purges, explain || r.dry_run);
    if let Some(Ok(p)) = &done.proof {
        verify::print(p);
    }
    v
}

/// The summary line, then (with `--explain`) one line per object uploaded (and why) or deleted by GC.
fn print_summary(r: &DeployReport, explain: bool) {
    if let Some(t) = tidied_line(r) {
        println!("{t}");
    }
    println!("{}", summary_line(r, explain));
    if !explain {
        return;
    }
    for u in &r.plan.uploads {
        println!(
            "upload  {:<8} {:>10}  {}",
            u.reason.as_str(),
            size(u.size),
            u.key
        );
    }
    for k in &r.gc.delete {
        println!("delete  {:<8} {:>10}  {k}", "gc", "");
    }
}

/// What an interrupted deploy left and this run repaired, and the deploys a rollback skipped.
fn tidied_line(r: &DeployReport) -> Option<String> {
    let t = &r.tidied;
    let mut parts = Vec::new();
    if !t.uncommitted.is_empty() {
        parts.push(format!(
            "dropped {} history entr{} of an interrupted deploy that never committed ({})",
            t.uncommitted.len(),
            if t.uncommitted.len() == 1 { "y" } else { "ies" },
            t.uncommitted.join(", ")
        ));
    }
    if t.stale_journal {
        parts.push("removed the leftover journal of a deploy that had committed".to_string());
    }
    if !t.staging.is_empty() {
        parts.push(format!(
            "removed {} partial file(s) of an interrupted write (first: `{}`)",
            t.staging.len(),
            t.staging[0]
        ));
    }
    if !r.skipped.is_empty() {
        parts.push(format!(
            "rollback skipped {} deploy(s) serving the current version ({})",
            r.skipped.len(),
            r.skipped.join(", ")
        ));
    }
    (!parts.is_empty()).then(|| format!("note: {}", parts.join("; ")))
}

fn summary_line(r: &DeployReport, explain: bool) -> String {
    let gc = if r.gc.delete.is_empty() {
        String::new()
    } else {
        format!(
            "GC {} {} object(s) ({})",
            if r.dry_run { "would delete" } else { "deleted" },
            r.gc.delete.len(),
            size(r.gc.delete_bytes)
        )
    };
    if r.up_to_date {
        let gc = if gc.is_empty() { gc } else { format!("; {gc}") };
        return format!(
            "{} is up to date: deploy {} already has these {} object(s){gc}",
            r.store, r.id, r.objects
        );
    }
    let mut by_reason = std::collections::BTreeMap::new();
    for u in &r.plan.uploads {
        *by_reason.entry(u.reason.as_str()).or_insert(0usize) += 1;
    }
    let reasons: Vec<String> = by_reason.iter().map(|(k, n)| format!("{n} {k}")).collect();
    let verb = match (r.dry_run, r.restores.as_ref()) {
        (true, Some(t)) => format!("dry run: rollback to {t} would upload"),
        (true, None) => "dry run: would upload".to_string(),
        (false, Some(t)) => format!(
            "rolled back to {t} (version {}) as {}: uploaded",
            if r.version.is_empty() {
                "-"
            } else {
                &r.version
            },
            r.id
        ),
        (false, None) => format!("deployed {} to {}: uploaded", r.id, r.store),
    };
    format!(
        "{verb} {} object(s) ({}, {}), kept {} ({}), {} left for GC{}{}; {} in {:.1} s{}",
        r.plan.uploads.len(),
        if reasons.is_empty() {
            "none".to_string()
        } else {
            reasons.join(", ")
        },
        size(r.plan.upload_bytes()),
        r.plan.kept,
        size(r.plan.kept_bytes),
        r.plan.dropped.len(),
        if r.resumed > 0 {
            format!(", {} already uploaded by an interrupted deploy", r.resumed)
        } else {
            String::new()
        },
        if gc.is_empty() { gc } else { format!(", {gc}") },
        if r.dry_run { "nothing changed" } else { "done" },
        r.seconds,
        if r.dry_run && !explain && !r.plan.uploads.is_empty() {
            " (--explain lists each object)"
        } else {
            ""
        }
    )
}
