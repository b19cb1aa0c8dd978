//! `staleguard edge`: one caching node per `--listen` address in front of an origin, until SIGTERM
//! or ctrl-c. The caching itself lives in `staleguard-edge`.

use std::io::Write;
use std::process::ExitCode;
use std::sync::atomic::Ordering;

use anyhow::{Context, Result, bail};
use staleguard_edge::{EdgeOptions, EdgeServer, Net};

use crate::cli::{EdgeArgs, Global};
use crate::cmd::serve::shutdown_signal;
use crate::settings;

pub fn run(global: &Global, args: &EdgeArgs) -> Result<ExitCode> {
    let origin = match &args.origin {
        Some(o) => o.clone(),
        None => settings::load(global)?.config.serve.local_url(),
    };
    if args.max_object > args.memory {
        bail!(
            "--max-object ({} bytes) is larger than --memory ({} bytes)\nhint: raise --memory or lower --max-object",
            args.max_object,
            args.memory
        );
    }
    let mut opts = EdgeOptions::new(origin.clone());
    opts.memory = args.memory;
    opts.max_object = args.max_object;
    opts.collapse_wait = args.collapse_wait.get();
    opts.origin_timeout = args.origin_timeout.get();
    opts.heuristic = args.heuristic_freshness;
    if !args.allow_purge.is_empty() {
        opts.purgers = args.allow_purge.clone();
        opts.purgers.extend(Net::loopback());
    }
    let idle = args
        .idle_timeout
        .get()
        .max(std::time::Duration::from_secs(1));
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
        .context("cannot start the async runtime")?;
    let json = global.json;
    let quiet = global.quiet;
    let listen = args.listen.clone();
    runtime.block_on(async move {
        let mut servers = Vec::new();
        for addr in &listen {
            let server = EdgeServer::bind(addr, opts.clone())
                .await
                .with_context(|| format!("cannot start an edge on {addr} for {origin}"))?;
            servers.push(server);
        }
        let shutdown = shutdown_signal().context("cannot install signal handlers")?;
        let (stop_tx, stop_rx) = tokio::sync::watch::channel(false);
        let mut tasks = Vec::new();
        let mut edges = Vec::new();
        for server in servers {
            let addr = server
                .local_addr()
                .context("cannot read the listening address")?;
            if json {
                println!(
                    "{}",
                    serde_json::json!({ "listening": format!("http://{addr}"), "origin": origin })
                );
            } else {
                println!("edge listening on http://{addr} (caching {origin})");
            }
            edges.push((addr, server.edge()));
            let mut rx = stop_rx.clone();
            tasks.push(tokio::spawn(server.run(idle, async move {
                let _ = rx.wait_for(|s| *s).await;
            })));
        }
        let _ = std::io::stdout().flush();
        shutdown.await;
        let _ = stop_tx.send(true);
        for t in tasks {
            let _ = t.await;
        }
        if !quiet && !json {
            for (addr, e) in &edges {
                let c = &e.counters;
                let (objects, bytes) = e.usage();
                eprintln!(
                    "edge {addr}: {} hits, {} misses, {} stale, {} revalidated, {} passes, {} origin requests ({} failed), {} purges; {objects} objects, {bytes} bytes",
                    c.hits.load(Ordering::Relaxed),
                    c.misses.load(Ordering::Relaxed),
                    c.stale.load(Ordering::Relaxed),
                    c.revalidated.load(Ordering::Relaxed),
                    c.passes.load(Ordering::Relaxed),
                    c.origin_requests.load(Ordering::Relaxed),
                    c.origin_errors.load(Ordering::Relaxed),
                    c.purges.load(Ordering::Relaxed),
                );
            }
        }
        Ok(ExitCode::SUCCESS)
    })
}
