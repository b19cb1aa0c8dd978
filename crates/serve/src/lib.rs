//! staleguard's origin server: serves a build output with headers that make stale content impossible.
//!
//! Fingerprinted files are immutable for a year; everything else revalidates; ETags are content hashes
//! (the same on every node, surviving rollbacks); `If-None-Match`/`If-Modified-Since` give 304;
//! `Accept-Encoding` picks a precompressed sidecar; `Range` works on the chosen representation. A new
//! manifest in the folder switches versions atomically, without a restart.

pub mod accept;
pub mod conditional;
pub mod conn;
pub mod handler;
pub mod index;
pub mod negotiate;
pub mod range;

use std::future::Future;
use std::net::SocketAddr;
use std::path::PathBuf;
use std::sync::Arc;
use std::time::{Duration, SystemTime};

use arc_swap::ArcSwap;
use staleguard_core::config::ServeConfig;
use staleguard_core::routes::{RoutePolicy, RouteRule};
use tokio::net::TcpListener;

pub use index::Index;

/// A server that cannot start or a folder that cannot be served.
#[derive(Debug, thiserror::Error)]
pub enum ServeError {
    #[error("cannot read `{path}`: {source}")]
    Io {
        path: PathBuf,
        source: std::io::Error,
    },
    #[error("{0}")]
    Config(String),
    #[error(
        "cannot listen on {addr}: {source}\nhint: pick another port with --port (0 picks a free one)"
    )]
    Bind {
        addr: String,
        source: std::io::Error,
    },
}

/// What to serve and how.
#[derive(Debug, Clone)]
pub struct ServeOptions {
    pub dir: PathBuf,
    pub config: ServeConfig,
    pub routes: Vec<RouteRule>,
    /// The build's manifest and build-info file names.
    pub manifest_name: String,
    pub build_info_name: String,
}

/// Shared by every request: the current snapshot and the options.
pub struct State {
    pub index: ArcSwap<Index>,
    pub opts: ServeOptions,
    policy: RoutePolicy,
}

impl State {
    fn load(&self) -> Result<Index, ServeError> {
        index::load(
            &self.opts.dir,
            &self.opts.config,
            &self.policy,
            &self.opts.manifest_name,
            &self.opts.build_info_name,
        )
    }
}

/// A bound server, ready to run.
pub struct Server {
    listener: TcpListener,
    state: Arc<State>,
}

impl Server {
    /// Loads the folder and binds the address (port 0 picks a free one).
    pub async fn bind(opts: ServeOptions) -> Result<Server, ServeError> {
        if !opts.dir.is_dir() {
            return Err(ServeError::Config(format!(
                "`{}` is not a folder\nhint: build first (`staleguard build`) or pass the folder to serve",
                opts.dir.display()
            )));
        }
        let policy = RoutePolicy::new(&opts.routes, &opts.config.effective_headers())
            .map_err(ServeError::Config)?
            .with_tag_header(&opts.config.tag_header);
        let addr = format!("{}:{}", opts.config.bind, opts.config.port);
        let state = State {
            index: ArcSwap::from_pointee(empty_index()),
            opts,
            policy,
        };
        // Loading blocks; at start nothing else is running yet.
        let first = state.load()?;
        state.index.store(Arc::new(first));
        let listener = TcpListener::bind(&addr)
            .await
            .map_err(|e| ServeError::Bind {
                addr: addr.clone(),
                source: e,
            })?;
        Ok(Server {
            listener,
            state: Arc::new(state),
        })
    }

    pub fn local_addr(&self) -> std::io::Result<SocketAddr> {
        self.listener.local_addr()
    }

    /// Serves until `shutdown` resolves, then stops accepting and waits (up to 10 s) for open requests.
    pub async fn run(self, shutdown: impl Future<Output = ()>) -> Result<(), ServeError> {
        let state = self.state.clone();
        let watcher = tokio::spawn(watch(state.clone()));
        let idle_timeout = Duration::from_secs(state.opts.config.idle_timeout_secs.max(1));
        accept::serve(
            self.listener,
            move |req, peer| {
                let state = state.clone();
                async move { handler::handle(&state, req, peer).await }
            },
            idle_timeout,
            shutdown,
        )
        .await;
        watcher.abort();
        Ok(())
    }
}

fn empty_index() -> Index {
    Index {
        files: Default::default(),
        retired: Default::default(),
        prefix: "/".into(),
        info: None,
        digest: String::new(),
        not_found: None,
        error: None,
    }
}

/// What a reload waits on: in a store `deploy` wrote (`.staleguard/current.json`), the commit pointer,
/// written after every object of the deploy, so a snapshot is never taken half-way through one; in a
/// build output, the manifest, written after every file of the build.
fn switch_file(dir: &std::path::Path, manifest_name: &str) -> PathBuf {
    let pointer = dir.join(staleguard_core::deploy::CURRENT_KEY);
    if pointer.exists() {
        pointer
    } else {
        index::manifest_path(dir, manifest_name)
    }
}

/// Watches the switch file ([`switch_file`]: its bytes, size and mtime) and swaps in a new snapshot when
/// it changes. A snapshot that fails to load (a half-finished deploy by hand) is logged and the current
/// one kept.
async fn watch(state: Arc<State>) {
    let stamp = || {
        let p = switch_file(&state.opts.dir, &state.opts.manifest_name);
        let m = std::fs::metadata(&p).ok()?;
        // The pointer is small: its bytes (the deploy id) decide, whatever the clock's resolution.
        let bytes = if m.len() <= 4096 {
            std::fs::read(&p).ok()
        } else {
            None
        };
        Some((
            p,
            m.len(),
            m.modified().unwrap_or(SystemTime::UNIX_EPOCH),
            bytes,
        ))
    };
    let mut last = stamp();
    let mut tick =
        tokio::time::interval(Duration::from_millis(state.opts.config.reload_ms.max(50)));
    loop {
        tick.tick().await;
        let now = stamp();
        if now == last {
            continue;
        }
        let s = state.clone();
        match tokio::task::spawn_blocking(move || s.load()).await {
            Ok(Ok(mut index)) => {
                index.retire_from(&state.index.load());
                tracing::info!(
                    version = index.info.as_ref().map_or("", |i| i.version.as_str()),
                    "switched to a new version"
                );
                state.index.store(Arc::new(index));
                last = now;
            }
            Ok(Err(e)) => {
                tracing::warn!(error = %e, "new version not loaded; still serving the previous one")
            }
            Err(e) => tracing::warn!(error = %e, "reload task failed"),
        }
    }
}
