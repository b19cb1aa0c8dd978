//! The watcher's Prometheus metrics (`prometheus-client`, prefix `staleguard_`, base units, the same
//! conventions as the service's): labels are the configured edges and the round outcomes only, so
//! the series are bounded.
//!
//! - `staleguard_edge_version_match{edge}`: 1 when the version endpoint through the edge serves the
//!   deployed version, 0 when not (absent without a version endpoint)
//! - `staleguard_edge_stale_urls{edge}`: URLs the last round found stale through the edge
//! - `staleguard_edge_check_seconds{edge}`: how long the last round's checks of the edge took
//! - `staleguard_deploy_age_seconds`: since the current deploy was made
//! - `staleguard_watch_rounds_total{outcome}`: rounds, `fresh`, `stale` or `error`
//! - `staleguard_watch_incidents{edge}`: 1 while a notified incident is open on the edge

use std::sync::atomic::AtomicU64;

use prometheus_client::encoding::text::encode;
use prometheus_client::metrics::counter::Counter;
use prometheus_client::metrics::family::Family;
use prometheus_client::metrics::gauge::Gauge;
use prometheus_client::registry::Registry;

use crate::Round;

/// A metric's labels.
pub type Labels = Vec<(String, String)>;

fn edge(e: &str) -> Labels {
    vec![("edge".into(), e.to_string())]
}

/// The `outcome` label of `staleguard_watch_rounds_total`.
pub fn outcome(o: &str) -> Labels {
    vec![("outcome".into(), o.to_string())]
}

#[derive(Debug)]
pub struct Metrics {
    registry: Registry,
    pub version_match: Family<Labels, Gauge>,
    pub stale_urls: Family<Labels, Gauge>,
    pub check_seconds: Family<Labels, Gauge<f64, AtomicU64>>,
    pub deploy_age: Gauge,
    pub rounds: Family<Labels, Counter>,
    pub incidents: Family<Labels, Gauge>,
}

impl Metrics {
    /// The metrics, registered with a registry of their own (see [`Metrics::register`] to add them
    /// to another, e.g. the service's). Every edge starts with 0 stale URLs and every outcome at 0,
    /// so the series exist before the first round ends.
    pub fn new(edges: &[String]) -> Metrics {
        let m = Metrics {
            registry: Registry::default(),
            version_match: Family::default(),
            stale_urls: Family::default(),
            check_seconds: Family::default(),
            deploy_age: Gauge::default(),
            rounds: Family::default(),
            incidents: Family::default(),
        };
        for e in edges {
            m.stale_urls.get_or_create(&edge(e)).set(0);
            m.incidents.get_or_create(&edge(e)).set(0);
        }
        for o in ["fresh", "stale", "error"] {
            m.rounds.get_or_create(&outcome(o)).inc_by(0);
        }
        let mut registry = Registry::with_prefix("staleguard");
        m.register(&mut registry);
        Metrics { registry, ..m }
    }

    /// Registers the metrics with `registry` (its prefix applies).
    pub fn register(&self, registry: &mut Registry) {
        registry.register(
            "edge_version_match",
            "1 when the version endpoint through the edge serves the deployed version",
            self.version_match.clone(),
        );
        registry.register(
            "edge_stale_urls",
            "URLs the last round found stale through the edge",
            self.stale_urls.clone(),
        );
        registry.register(
            "edge_check_seconds",
            "How long the last round's checks through the edge took",
            self.check_seconds.clone(),
        );
        registry.register(
            "deploy_age_seconds",
            "Seconds since the current deploy was made",
            self.deploy_age.clone(),
        );
        registry.register(
            "watch_rounds",
            "Watch rounds, by outcome (fresh, stale, error)",
            self.rounds.clone(),
        );
        registry.register(
            "watch_incidents",
            "1 while a notified stale-content incident is open on the edge",
            self.incidents.clone(),
        );
    }

    /// A registry (prefix `staleguard_`) holding these metrics, to serve them elsewhere (the
    /// service's `/metrics`).
    pub fn registry(&self) -> Registry {
        let mut r = Registry::with_prefix("staleguard");
        self.register(&mut r);
        r
    }

    /// Sets the gauges from a round and counts it.
    pub fn record(&self, r: &Round) {
        for e in &r.edges {
            let l = edge(&e.edge);
            if let Some(m) = e.version_match {
                self.version_match.get_or_create(&l).set(i64::from(m));
            }
            self.stale_urls.get_or_create(&l).set(e.stale.len() as i64);
            self.check_seconds.get_or_create(&l).set(e.seconds);
        }
        for n in &r.notices {
            self.incidents
                .get_or_create(&edge(&n.edge))
                .set(i64::from(n.kind == "stale"));
        }
        self.deploy_age.set(r.deploy_age_seconds);
        self.rounds
            .get_or_create(&outcome(if r.fresh { "fresh" } else { "stale" }))
            .inc();
    }

    /// The text exposition format.
    pub fn encode(&self) -> String {
        let mut out = String::new();
        encode(&mut out, &self.registry).expect("writing to a String");
        out
    }
}

/// Serves `GET /metrics` on `listener` until the future is dropped.
pub async fn serve(
    listener: tokio::net::TcpListener,
    metrics: std::sync::Arc<Metrics>,
) -> std::io::Result<()> {
    use axum::routing::get;
    let app = axum::Router::new().route(
        "/metrics",
        get(move || {
            let text = metrics.encode();
            async move {
                (
                    [(
                        axum::http::header::CONTENT_TYPE,
                        "application/openmetrics-text; version=1.0.0; charset=utf-8",
                    )],
                    text,
                )
            }
        }),
    );
    axum::serve(listener, app).await
}
