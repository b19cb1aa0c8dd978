//! Prometheus metrics (`prometheus-client`, prefix `staleguard_`, base units, no scope, path or tag
//! labels): what the API counts as it goes, and what the model shows at scrape time.
//!
//! - `staleguard_events_accepted_total`, `staleguard_events_rejected_total{status}` (400, 413, 429, 503)
//! - `staleguard_scopes_pending`, `staleguard_events_pending`
//! - `staleguard_oldest_pending_event_age_seconds`: the alert (above the scope's max-wait: stuck)
//! - `staleguard_dead_letters`
//! - `staleguard_accept_latency_seconds` (request → acknowledged, the commit included),
//!   `staleguard_commit_events` (events per group commit)
//! - `staleguard_events_coalesced_total` (events that shared a batch with another),
//!   `staleguard_follow_up_batches_total` (batches for events that arrived while one ran)
//! - `staleguard_purges_total{provider, outcome}`, `staleguard_purge_items_total{provider}`,
//!   `staleguard_purge_duration_seconds{provider}`: providers are the `[[cdn]]` names (bounded)
//! - `staleguard_invalidation_lag_seconds`: from an event's commit to its provider's confirmation,
//!   per event and provider (the SLI)
//! - `staleguard_provider_budget_remaining{provider}`: batches the provider may still start (its
//!   `concurrency` minus those in flight); at 0, due batches wait

use std::sync::atomic::AtomicU64;

use prometheus_client::encoding::text::encode;
use prometheus_client::metrics::counter::Counter;
use prometheus_client::metrics::family::Family;
use prometheus_client::metrics::gauge::Gauge;
use prometheus_client::metrics::histogram::{Histogram, exponential_buckets};
use prometheus_client::registry::Registry;

use crate::model::Stats;

/// A metric's labels (`provider`, `outcome`, `status`): bounded sets only.
pub type Labels = Vec<(String, String)>;

/// The service's metrics and their registry.
#[derive(Debug)]
pub struct Metrics {
    registry: Registry,
    pub accepted: Counter,
    pub rejected: Family<Labels, Counter>,
    scopes_pending: Gauge,
    events_pending: Gauge,
    oldest_pending: Gauge<f64, AtomicU64>,
    dead_letters: Gauge,
    pub accept_latency: Histogram,
    pub commit_events: Histogram,
    pub coalesced: Counter,
    pub follow_ups: Counter,
    pub purges: Family<Labels, Counter>,
    pub purge_items: Family<Labels, Counter>,
    pub purge_duration: Family<Labels, Histogram, fn() -> Histogram>,
    pub lag: Histogram,
    /// Batches a provider may still start now (its `concurrency` minus those in flight).
    pub budget: Family<Labels, Gauge>,
    /// More metrics served on the same endpoint (`staleguard watch` running inside the service).
    extra: std::sync::Mutex<Vec<Registry>>,
}

fn seconds_buckets() -> Histogram {
    // 1 ms … ~33 min.
    Histogram::new(exponential_buckets(0.001, 2.0, 22))
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
            // 50 µs … ~3 s.
            accept_latency: Histogram::new(exponential_buckets(0.000_05, 2.0, 16)),
            commit_events: Histogram::new(exponential_buckets(1.0, 2.0, 13)),
            coalesced: Counter::default(),
            follow_ups: Counter::default(),
            purges: Family::default(),
            purge_items: Family::default(),
            purge_duration: Family::new_with_constructor(seconds_buckets),
            lag: seconds_buckets(),
            budget: Family::default(),
            extra: std::sync::Mutex::new(Vec::new()),
        };
        // Registered clones share their value with the fields.
        registry.register(
            "provider_budget_remaining",
            "Batches a provider may still start now: its concurrency minus the batches in flight",
            m.budget.clone(),
        );
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
        registry.register(
            "accept_latency_seconds",
            "From a request to its acknowledgement, the commit included",
            m.accept_latency.clone(),
        );
        registry.register(
            "commit_events",
            "Events committed per group commit",
            m.commit_events.clone(),
        );
        registry.register(
            "events_coalesced",
            "Events that shared a batch with another event",
            m.coalesced.clone(),
        );
        registry.register(
            "follow_up_batches",
            "Batches for events that arrived while a batch of their scope ran",
            m.follow_ups.clone(),
        );
        registry.register(
            "purges",
            "Purge sends, by provider and outcome (done, failed, dead)",
            m.purges.clone(),
        );
        registry.register(
            "purge_items",
            "Items sent in purges, by provider",
            m.purge_items.clone(),
        );
        registry.register(
            "purge_duration_seconds",
            "How long one purge send took, by provider",
            m.purge_duration.clone(),
        );
        registry.register(
            "invalidation_lag_seconds",
            "From an event's commit to its provider's confirmation (per event and provider)",
            m.lag.clone(),
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

    /// Counts one send of a batch: its outcome, items, duration, and on success each event's lag.
    pub fn purged(&self, batch: &crate::Batch, outcome: &str, seconds: f64, now_ms: u64) {
        let provider = vec![("provider".to_string(), batch.provider.clone())];
        let mut labelled = provider.clone();
        labelled.push(("outcome".to_string(), outcome.to_string()));
        self.purges.get_or_create(&labelled).inc();
        self.purge_items
            .get_or_create(&provider)
            .inc_by(batch.items.len() as u64);
        self.purge_duration
            .get_or_create(&provider)
            .observe(seconds);
        if outcome == "done" {
            for at in &batch.events_at {
                self.lag.observe(now_ms.saturating_sub(*at) as f64 / 1000.0);
            }
        }
    }

    /// Sets a provider's remaining budget (permits of its semaphore).
    pub fn set_budget(&self, provider: &str, left: usize) {
        self.budget
            .get_or_create(&vec![("provider".to_string(), provider.to_string())])
            .set(left as i64);
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
        if let Ok(extra) = self.extra.lock() {
            for r in extra.iter() {
                // One exposition: a single `# EOF`, at the end.
                if out.ends_with("# EOF\n") {
                    out.truncate(out.len() - "# EOF\n".len());
                }
                let _ = encode(&mut out, r);
            }
        }
        out
    }

    /// Serves the metrics of `registry` (with their own names; none may repeat the service's) on
    /// the service's `/metrics` too.
    pub fn attach(&self, registry: Registry) {
        if let Ok(mut extra) = self.extra.lock() {
            extra.push(registry);
        }
    }
}
