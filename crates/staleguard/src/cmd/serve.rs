//! `staleguard serve`: runs the origin server until SIGTERM or ctrl-c, then drains open requests.

use std::io::Write;
use std::process::ExitCode;

use anyhow::{Context, Result};

use crate::cli::{Global, ServeArgs};
use crate::settings;

pub fn run(global: &Global, args: &ServeArgs) -> Result<ExitCode> {
    let loaded = settings::load(global)?;
    let opts = settings::serve_options(&loaded, args)?;
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
        .context("cannot start the async runtime")?;
    runtime.block_on(async {
        let dir = opts.dir.clone();
        let server = staleguard_serve::Server::bind(opts)
            .await
            .with_context(|| format!("cannot serve `{}`", dir.display()))?;
        let addr = server
            .local_addr()
            .context("cannot read the listening address")?;
        // Signal handlers first: a SIGTERM right after the address is announced must stop us gracefully.
        let shutdown = shutdown_signal().context("cannot install signal handlers")?;
        if global.json {
            println!(
                "{}",
                serde_json::json!({ "listening": format!("http://{addr}"), "dir": dir })
            );
        } else {
            println!("listening on http://{addr} (serving {})", dir.display());
        }
        let _ = std::io::stdout().flush();
        server.run(shutdown).await.context("server failed")?;
        if !global.quiet && !global.json {
            eprintln!("stopped");
        }
        Ok(ExitCode::SUCCESS)
    })
}

/// Resolves on ctrl-c or SIGTERM. The handlers are installed when this returns, not when first polled.
fn shutdown_signal() -> std::io::Result<impl std::future::Future<Output = ()>> {
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
