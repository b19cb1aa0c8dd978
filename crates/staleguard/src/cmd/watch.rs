//! `staleguard watch`: resolve the settings, run `staleguard_watch` rounds (serving `/metrics` and
//! posting notices to the webhook), print each round, exit 0 fresh / 3 stale for `--once`.

use std::process::ExitCode;
use std::sync::Arc;

use anyhow::{Context, Result};
use staleguard_store::PurgeState;
use staleguard_watch::{Round, WatchOptions, Watcher};

use crate::cli::{Global, WatchArgs};
use crate::cmd::runtime;
use crate::settings;

pub fn run(global: &Global, args: &WatchArgs) -> Result<ExitCode> {
    let loaded = settings::load(global)?;
    let store = settings::store_config(&loaded, &args.store)?;
    let prove = settings::prove_settings(&loaded, &store, &args.cdn_urls, None)?;
    if prove.bases.is_empty() {
        anyhow::bail!(
            "nothing to watch: no CDN base\nhint: set [verify] cdn-url = [\"https://www.example.com\"] or pass --cdn-url"
        );
    }
    let w = &loaded.config.watch;
    let opts = WatchOptions {
        prove,
        sample: args.sample.unwrap_or(w.sample),
        stale_rounds: args.stale_rounds.unwrap_or(w.stale_rounds),
        request_timeout: w.request_timeout.get(),
    };
    let interval = args.interval.as_ref().unwrap_or(&w.interval).get();
    let hook = settings::webhook(&loaded);
    let mut watcher = Watcher::new(opts);
    let rt = runtime()?;
    rt.block_on(async {
        let load = || PurgeState::load(&store.store, &store, &loaded.base);
        if args.once {
            let state = load().await?;
            let round = watcher.round(&state).await?;
            if global.json {
                println!("{}", serde_json::to_string(&round)?);
            } else if !global.quiet || !round.fresh {
                print(&round);
            }
            return Ok(if round.fresh {
                ExitCode::SUCCESS
            } else {
                ExitCode::from(crate::exit::ExitStatus::Stale)
            });
        }
        let listen = args.listen.clone().unwrap_or_else(|| w.listen.clone());
        let listener = tokio::net::TcpListener::bind(&listen).await.with_context(|| {
            format!("cannot listen on {listen}\nhint: pass --listen 127.0.0.1:0 (or [watch] listen) for a free port")
        })?;
        let addr = listener.local_addr()?;
        if !global.quiet && !global.json {
            eprintln!(
                "watching {} edge(s), a round every {}; metrics on http://{addr}/metrics",
                watcher.edges(),
                humantime(interval)
            );
        }
        if global.json {
            println!("{}", serde_json::json!({"metrics": format!("http://{addr}/metrics")}));
        }
        let server = tokio::spawn(staleguard_watch::metrics::serve(
            listener,
            Arc::clone(&watcher.metrics),
        ));
        let stop = crate::cmd::serve::shutdown_signal()?;
        let (json, quiet) = (global.json, global.quiet);
        staleguard_watch::run(
            &mut watcher,
            load,
            hook.as_ref(),
            interval,
            args.rounds,
            |e| match e {
                staleguard_watch::Event::Round(r) if json => {
                    println!("{}", serde_json::to_string(r).unwrap_or_default())
                }
                staleguard_watch::Event::Round(r) if !quiet => print(r),
                staleguard_watch::Event::Round(_) => {}
                staleguard_watch::Event::Failed(e) => eprintln!("error: watch round: {e}"),
                staleguard_watch::Event::Warning(w) => eprintln!("warning: {w}"),
            },
            stop,
        )
        .await;
        server.abort();
        Ok(ExitCode::SUCCESS)
    })
}

fn humantime(d: std::time::Duration) -> String {
    if d.as_millis().is_multiple_of(1000) {
        format!("{}s", d.as_secs())
    } else {
        format!("{}ms", d.as_millis())
    }
}

/// One round for people: a line per edge, the stale URLs under it, the notices.
fn print(r: &Round) {
    println!(
        "round {}: deploy {} ({}): {} URL(s) per edge of {} live{}",
        r.round,
        r.deploy,
        if r.fresh { "fresh" } else { "STALE" },
        r.urls,
        r.live,
        match (&r.origin_version, r.origin_ok) {
            (Some(v), Some(false)) => format!("; origin on `{v}`, not `{}`", r.version),
            _ => String::new(),
        }
    );
    for e in &r.edges {
        let version = match e.version_match {
            Some(true) => "version ok",
            Some(false) => "version STALE",
            None => "no version endpoint",
        };
        println!(
            "  {}: {version}, {} stale of {} ({:.2}s)",
            e.edge,
            e.stale.len(),
            e.checked,
            e.seconds
        );
        for u in &e.stale {
            println!(
                "    {} — expected {}, got {} (Age {}, X-Cache {}; stale {} round(s))",
                u.path,
                u.expected,
                u.got.as_deref().or(u.error.as_deref()).unwrap_or("nothing"),
                u.age.as_deref().unwrap_or("-"),
                u.x_cache.as_deref().unwrap_or("-"),
                u.rounds
            );
        }
    }
    for n in &r.notices {
        println!(
            "  notice ({}): {}",
            n.kind,
            n.text.lines().next().unwrap_or("")
        );
    }
}
