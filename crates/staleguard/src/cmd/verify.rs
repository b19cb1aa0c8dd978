//! `staleguard warm` and `staleguard verify`: resolve the settings, run
//! `staleguard_invalidate::prove`, print the report, pick the exit code. The proof run itself (warm,
//! then fetch the changed URLs through every edge and compare with the deploy record) is the library's.

use anyhow::{Result, bail};
use staleguard_check::warm::WarmResult;
use staleguard_invalidate::{ProveReport, Scope};
use staleguard_store::PurgeState;

use crate::cli::{Global, VerifyArgs, WarmArgs};
use crate::cmd::runtime;
use crate::settings;

pub fn run_verify(global: &Global, args: &VerifyArgs) -> Result<std::process::ExitCode> {
    let loaded = settings::load(global)?;
    let store = settings::store_config(&loaded, &args.store)?;
    let prove = settings::prove_settings(&loaded, &store, &args.cdn_urls, args.timeout.as_ref())?;
    let scope = Scope {
        deploy: args.deploy.clone(),
        all: args.all,
        warm: args.warm,
        verify: true,
        extra_warm: Vec::new(),
        url_prefix: None,
    };
    let report = runtime()?.block_on(async {
        let state = PurgeState::load(&store.store, &store, &loaded.base).await?;
        anyhow::Ok(staleguard_invalidate::prove::prove(&prove, &scope, &state).await?)
    })?;
    if global.json {
        println!("{}", serde_json::to_string(&report).unwrap_or_default());
    } else if !global.quiet || !report.ok {
        print(&report);
    }
    Ok(if report.ok {
        std::process::ExitCode::SUCCESS
    } else {
        std::process::ExitCode::from(crate::exit::ExitStatus::Stale)
    })
}

pub fn run_warm(global: &Global, args: &WarmArgs) -> Result<std::process::ExitCode> {
    let loaded = settings::load(global)?;
    let store = settings::store_config(&loaded, &args.store)?;
    for p in &args.paths {
        if !p.starts_with('/') {
            bail!("`{p}`: a URL path must start with `/`");
        }
    }
    let mut prove = settings::prove_settings(&loaded, &store, &args.cdn_urls, None)?;
    if args.changed {
        prove.verify.warm_changed = true;
    }
    let scope = Scope {
        warm: true,
        verify: false,
        extra_warm: args.paths.clone(),
        ..Scope::default()
    };
    let report = runtime()?.block_on(async {
        let state = PurgeState::load(&store.store, &store, &loaded.base).await?;
        anyhow::Ok(staleguard_invalidate::prove::prove(&prove, &scope, &state).await?)
    })?;
    if global.json {
        println!("{}", serde_json::to_string(&report).unwrap_or_default());
    } else if !global.quiet {
        print(&report);
        if report.warm.is_empty() {
            println!("warm: nothing to warm (set [verify] warm, pass paths, or --changed)");
        }
    }
    Ok(if report.ok {
        std::process::ExitCode::SUCCESS
    } else {
        std::process::ExitCode::from(crate::exit::ExitStatus::Failed)
    })
}

/// Prints a report for humans.
pub fn print(r: &ProveReport) {
    if !r.warm.is_empty() {
        let failed: Vec<&WarmResult> = r.warm.iter().filter(|w| !w.ok()).collect();
        println!(
            "warm: {} request(s) through {} edge(s), {} failed",
            r.warm.len(),
            r.bases.len(),
            failed.len()
        );
        for w in failed {
            println!(
                "  {}{} ({}): {}",
                w.base,
                w.path,
                w.encoding,
                w.error
                    .clone()
                    .unwrap_or_else(|| format!("status {}", w.status.unwrap_or_default()))
            );
        }
    }
    let Some(v) = &r.verify else { return };
    let checked = v.checks.len();
    let skipped = if r.skipped > 0 {
        format!(" ({} more changed URL(s) not sampled)", r.skipped)
    } else {
        String::new()
    };
    if r.ok {
        println!(
            "verify: deploy {} is what users get: {checked} check(s) through {} passed{skipped} in {:.1} s",
            r.deploy,
            r.bases.join(", "),
            v.seconds
        );
        return;
    }
    let origin = if r.origin_stale() {
        " and the origin does not serve it"
    } else {
        ""
    };
    println!(
        "verify: STALE: {} of {checked} check(s) still differ from deploy {} at the deadline{origin}{skipped}:",
        r.stale_checks(),
        r.deploy
    );
    for l in r.stale_lines() {
        println!("  {l}");
    }
}
