//! `staleguard serve`: runs the origin server until SIGTERM or ctrl-c, then drains open requests.

use std::io::Write;
use std::process::ExitCode;

use anyhow::{Context, Result};

use crate::cli::{Global, ServeArgs};
use crate::settings;

pub fn run(global: &Global, args: &ServeArgs) -> Result<ExitCode> {
    let loaded = settings::load(global)?;
    let opts = settings::serve_options(&loaded, args)?;
    // One core (e.g. pinned with taskset): one thread does everything, no cross-thread wake-ups.
    // Several: a worker per core, and the accept loop runs on a worker too (see `spawn` below).
    let cores = std::thread::available_parallelism().map_or(1, |n| n.get());
    let runtime = if cores == 1 {
        tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()
    } else {
        tokio::runtime::Builder::new_multi_thread()
            .worker_threads(cores)
            .enable_all()
            .build()
    }
    .context("cannot start the async runtime")?;
    let json = global.json;
    let quiet = global.quiet;
    let task = runtime.spawn(async move {
        let dir = opts.dir.clone();
        let server = staleguard_serve::Server::bind(opts)
            .await
            .with_context(|| format!("cannot serve `{}`", dir.display()))?;
        let addr = server
            .local_addr()
            .context("cannot read the listening address")?;
        // Signal handlers first: a SIGTERM right after the address is announced must stop us gracefully.
        let shutdown = shutdown_signal().context("cannot install signal handlers")?;
        if json {
            println!(
                "{}",
                serde_json::json!({ "listening": format!("http://{addr}"), "dir": dir })
            );
        } else {
            println!("listening on http://{addr} (serving {})", dir.display());
        }
        let _ = std::io::stdout().flush();
        server.run(shutdown).await.context("server failed")?;
        if !quiet && !json {
            eprintln!("stopped");
        }
        Ok::<_, anyhow::Error>(ExitCode::SUCCESS)
    });
    runtime.block_on(task).context("the server task failed")?
}

/// Resolves on ctrl-c or SIGTERM. The handlers are installed when this returns, not when first polled.
pub fn shutdown_signal() -> std::io::Result<impl std::future::Future<Output = ()>> {
    #[cfg(unix)]
    let mut term = tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate())?;
    let ctrl_c = tokio::signal::ctrl_c();
    Ok(async move {
        #[cfg(unix)]
        tokio::select! {
            _ = ctrl_c => {}
            _ = term.recv() => {}
        }
        #[cfg(not(unix))]
        let _ = ctrl_c.await;
    })
}
