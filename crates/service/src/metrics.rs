//! Prometheus metrics (`prometheus-client`, prefix `staleguard_`, base units, no scope, path or tag
//! labels): what the API counts as it goes, and what the model shows at scrape time.
//!
//! - `staleguard_events_accepted_total`, `staleguard_events_rejected_total{status}` (400, 413, 429, 503)
//! - `staleguard_scopes_pending`, `staleguard_events_pending`
//! - `staleguard_oldest_pending_event_age_seconds`: the alert (above the scope's max-wait: stuck)
//! - `staleguard_dead_letters`

use std::sync::atomic::AtomicU64;

use prometheus_client::encoding::text::encode;
use prometheus_client::metrics::counter::Counter;
use prometheus_client::metrics::family::Family;
use prometheus_client::metrics::gauge::Gauge;
use prometheus_client::registry::Registry;

use crate::model::Stats;

/// The service's metrics and their registry.
#[derive(Debug)]
pub struct Metrics {
    registry: Registry,
    pub accepted: Counter,
    pub rejected: Family<Vec<(String, String)>, Counter>,
    scopes_pending: Gauge,
    events_pending: Gauge,
    oldest_pending: Gauge<f64, AtomicU64>,
    dead_letters: Gauge,
}

impl Default for Metrics {
    fn default() -> Metrics {
        let mut registry = Registry::with_prefix("staleguard");
        let m = Metrics {
            registry: Registry::default(),
            accepted: Counter::default(),
            rejected: Family::default(),
            scopes_pending: Gauge::default(),
            events_pending: Gauge::default(),
            oldest_pending: Gauge::default(),
            dead_letters: Gauge::default(),
        };
        // Registered clones share their value with the fields.
        registry.register(
            "events_accepted",
            "Events committed and acknowledged",
            m.accepted.clone(),
        );
        registry.register(
            "events_rejected",
            "Events refused, by HTTP status",
            m.rejected.clone(),
        );
        registry.register(
            "scopes_pending",
            "Scopes with events some provider has not purged",
            m.scopes_pending.clone(),
        );
        registry.register(
            "events_pending",
            "Events some provider has not purged",
            m.events_pending.clone(),
        );
        registry.register(
            "oldest_pending_event_age_seconds",
            "Age of the oldest event some provider has not purged",
            m.oldest_pending.clone(),
        );
        registry.register(
            "dead_letters",
            "Batches that used up their attempts",
            m.dead_letters.clone(),
        );
        Metrics { registry, ..m }
    }
}

impl Metrics {
    /// Counts a refusal with its HTTP status.
    pub fn reject(&self, status: u16) {
        self.rejected
            .get_or_create(&vec![("status".to_string(), status.to_string())])
            .inc();
    }

    /// The text exposition, with the gauges set from `stats`.
    pub fn render(&self, stats: &Stats) -> String {
        self.scopes_pending.set(stats.scopes_pending as i64);
        self.events_pending.set(stats.events_pending as i64);
        self.oldest_pending
            .set(stats.oldest_pending_ms.map_or(0.0, |ms| ms as f64 / 1000.0));
        self.dead_letters.set(stats.dead_letters as i64);
        let mut out = String::new();
        // Writing into a String cannot fail.
        let _ = encode(&mut out, &self.registry);
        out
    }
}
