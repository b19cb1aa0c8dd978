//! `staleguard edge` (issue 17): a caching reverse proxy that keeps stale content exactly as a CDN
//! edge would, so a laptop or a CI job can run deploy → purge → verify through a real cache.
//!
//! - [`policy`]: the shared-cache rules of RFC 9111, pure and clock-free (what may be stored, for
//!   how long it is fresh, when it must be revalidated, the stale-while-revalidate and stale-if-error
//!   windows);
//! - [`vary`]: the cache key's variant part (`Vary`, with `Accept-Encoding` normalised to one coding
//!   so brotli is cached apart from gzip, and a cap on variants);
//! - [`store`]: the memory-bounded, size-weighted store (moka);
//! - [`proxy`]: the request handler (hits, revalidation, collapsing, the purge API of the project's
//!   Varnish VCL);
//! - [`EdgeServer`]: one node on one address, on the server foundation of `staleguard serve` (one
//!   accept loop, a watchdog per connection, graceful shutdown).

pub mod body;
pub mod policy;
pub mod proxy;
pub mod store;
pub mod vary;

use std::future::Future;
use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;

use tokio::net::TcpListener;

pub use proxy::{Clock, Edge, EdgeOptions, Net};

/// An edge that cannot start.
#[derive(Debug, thiserror::Error)]
pub enum EdgeError {
    #[error("{0}")]
    Config(String),
    #[error(
        "cannot listen on {addr}: {source}\nhint: pick another address with --listen (port 0 picks a free one)"
    )]
    Bind {
        addr: String,
        source: std::io::Error,
    },
}

/// One edge node, bound and ready to run.
pub struct EdgeServer {
    listener: TcpListener,
    edge: Arc<Edge>,
}

impl EdgeServer {
    /// Binds `addr` (`HOST:PORT`; port 0 picks a free one) for a node with its own cache.
    pub async fn bind(addr: &str, opts: EdgeOptions) -> Result<EdgeServer, EdgeError> {
        let edge = Edge::new(opts).map_err(EdgeError::Config)?;
        let listener = TcpListener::bind(addr)
            .await
            .map_err(|source| EdgeError::Bind {
                addr: addr.to_string(),
                source,
            })?;
        Ok(EdgeServer {
            listener,
            edge: Arc::new(edge),
        })
    }

    pub fn local_addr(&self) -> std::io::Result<SocketAddr> {
        self.listener.local_addr()
    }

    /// The node (its counters and usage).
    pub fn edge(&self) -> Arc<Edge> {
        self.edge.clone()
    }

    /// Serves until `shutdown` resolves, then drains open requests.
    pub async fn run(self, idle_timeout: Duration, shutdown: impl Future<Output = ()>) {
        let edge = self.edge;
        staleguard_serve::accept::serve(
            self.listener,
            move |req, peer| {
                let edge = edge.clone();
                async move { edge.handle(req, peer).await }
            },
            idle_timeout,
            shutdown,
        )
        .await;
    }
}

/// A size as written on the command line: `256MiB`, `1GiB`, `64MB`, `512k`, `1048576` (bytes).
/// Binary (`KiB`, `MiB`, `GiB`) and decimal (`kB`, `MB`, `GB`) units; `K`/`M`/`G` alone are binary.
pub fn parse_size(s: &str) -> Result<u64, String> {
    let t = s.trim();
    let split = t
        .find(|c: char| !(c.is_ascii_digit() || c == '.'))
        .unwrap_or(t.len());
    let (num, unit) = t.split_at(split);
    let bad = || format!("`{s}` is not a size; write e.g. 256MiB, 1GiB, 64MB or a number of bytes");
    let n: f64 = num.parse().map_err(|_| bad())?;
    let mult: u64 = match unit.trim().to_ascii_lowercase().as_str() {
        "" | "b" => 1,
        "k" | "kib" => 1 << 10,
        "kb" => 1_000,
        "m" | "mib" => 1 << 20,
        "mb" => 1_000_000,
        "g" | "gib" => 1 << 30,
        "gb" => 1_000_000_000,
        _ => return Err(bad()),
    };
    let v = n * mult as f64;
    if !v.is_finite() || v < 1.0 || v > u64::MAX as f64 {
        return Err(format!("`{s}` is out of range"));
    }
    Ok(v as u64)
}

#[cfg(test)]
mod tests {
    #[test]
    fn sizes() {
        for (s, want) in [
            ("256MiB", 256 << 20),
            ("1GiB", 1 << 30),
            ("64MB", 64_000_000),
            ("512k", 512 << 10),
            ("1048576", 1 << 20),
            ("1.5 GiB", 3 << 29),
        ] {
            assert_eq!(super::parse_size(s), Ok(want), "{s}");
        }
        for s in ["", "MiB", "-1MiB", "12 parsecs", "0"] {
            assert!(super::parse_size(s).is_err(), "{s}");
        }
    }
}
