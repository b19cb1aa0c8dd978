//! `staleguard watch` (issue 19): `verify` proves a deploy once; this keeps proving it. Each round
//! reads the version endpoint at the origin and through every edge base (`[verify] cdn-url`), and
//! checks mutable URLs of the current deploy through every edge, hashed against the deploy record
//! with the same targets and the same fetch-decode-hash code as `verify`
//! (`staleguard_invalidate::prove::check_targets`, `staleguard_check::verify`):
//! - the URLs the current deploy changed (up to `sample`): after a deploy these are the ones that
//!   can be stale;
//! - a window of `sample` URLs over every live mutable URL (sorted), moved by `sample` each round, so
//!   every URL is checked once every ⌈live / sample⌉ rounds;
//! - every URL that was stale in the previous round, so a clear is seen the next round.
//!
//! A round makes one attempt per check (no retries: the next round is the retry) and never
//! cache-busts. The outcome feeds the gauges ([`metrics::Metrics`]) and the incidents: a URL stale for
//! `stale_rounds` consecutive rounds opens an incident on its edge (one notification naming the URLs,
//! `Age` and `X-Cache`); the incident clears, with one more notification, on the first round where
//! no URL of that edge is stale.

pub mod metrics;

use std::collections::{BTreeMap, BTreeSet};
use std::time::Duration;

use serde::Serialize;
use staleguard_check::verify::{Expect, Target, VerifyOptions};
use staleguard_core::changes::changes;
use staleguard_invalidate::ProveSettings;
use staleguard_store::PurgeState;

pub use metrics::Metrics;

/// How to watch.
#[derive(Debug, Clone)]
pub struct WatchOptions {
    /// Bases, version path, URL prefix, `[verify]` (encodings, host, concurrency, origin URL).
    pub prove: ProveSettings,
    /// URLs per round from the rotating window, and at most as many of the deploy's changed URLs.
    pub sample: usize,
    /// Rounds a URL must be stale before its edge's incident opens.
    pub stale_rounds: u32,
    /// One request at most.
    pub request_timeout: Duration,
}

/// One stale (edge, URL) in a round.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct StaleUrl {
    pub path: String,
    /// The `Accept-Encoding` values it was stale with.
    pub encodings: Vec<String>,
    pub expected: String,
    pub got: Option<String>,
    pub status: Option<u16>,
    pub age: Option<String>,
    pub x_cache: Option<String>,
    pub error: Option<String>,
    /// Consecutive rounds it has been stale, this one included.
    pub rounds: u32,
}

/// One edge in a round.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct EdgeRound {
    /// The base as shown (credentials redacted).
    pub edge: String,
    /// The version endpoint through this edge serves the deployed version (`None`: no version
    /// endpoint known).
    pub version_match: Option<bool>,
    pub checked: usize,
    pub stale: Vec<StaleUrl>,
    /// From the first request to the last answer of this edge's checks.
    pub seconds: f64,
}

/// A notification a round asks for.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Notice {
    pub edge: String,
    /// `stale` (an incident opened) or `cleared`.
    pub kind: &'static str,
    pub text: String,
    pub urls: Vec<StaleUrl>,
}

/// What a round saw.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Round {
    pub round: u64,
    pub deploy: String,
    pub version: String,
    /// The origin's version endpoint (`None`: no `[verify] origin-url`), or why it could not be read.
    pub origin_version: Option<String>,
    pub origin_ok: Option<bool>,
    pub edges: Vec<EdgeRound>,
    /// URLs checked per edge this round.
    pub urls: usize,
    /// Live mutable URLs of the deploy (the window covers them all every `ceil(live / sample)` rounds).
    pub live: usize,
    /// Nothing stale anywhere, the origin on the deployed version.
    pub fresh: bool,
    pub notices: Vec<Notice>,
    pub deploy_age_seconds: i64,
}

/// The watcher's memory between rounds.
#[derive(Debug)]
pub struct Watcher {
    opts: WatchOptions,
    round: u64,
    cursor: usize,
    /// (edge, path) → consecutive stale rounds.
    streaks: BTreeMap<(String, String), u32>,
    /// Edges with an open incident.
    incidents: BTreeSet<String>,
    pub metrics: std::sync::Arc<Metrics>,
}

/// The window of `n` items starting at `cursor`, wrapping around.
fn window<T: Clone>(items: &[T], cursor: usize, n: usize) -> Vec<T> {
    if items.is_empty() {
        return Vec::new();
    }
    let n = n.min(items.len());
    (0..n)
        .map(|i| items[(cursor + i) % items.len()].clone())
        .collect()
}

impl Watcher {
    pub fn new(opts: WatchOptions) -> Watcher {
        let metrics = std::sync::Arc::new(Metrics::new(
            &staleguard_invalidate::prove::shown_bases(&opts.prove.bases),
        ));
        Watcher {
            opts,
            round: 0,
            cursor: 0,
            streaks: BTreeMap::new(),
            incidents: BTreeSet::new(),
            metrics,
        }
    }

    /// One round against the store's current deploy (`state` loaded fresh by the caller, so a new
    /// deploy is seen at the next round).
    pub async fn round(
        &mut self,
        state: &PurgeState,
    ) -> Result<Round, staleguard_invalidate::Error> {
        self.round += 1;
        let settings = &self.opts.prove;
        let cfg = &settings.verify;
        let id = state.resolve(None)?;
        let Some(record) = state.record(&id).await? else {
            return Err(staleguard_invalidate::Error::RecordGone(id));
        };
        let alias_sha = staleguard_invalidate::prove::alias_sha256(settings, state).await?;
        let prefix = staleguard_invalidate::purge::served_prefix(
            &settings.url_prefix,
            None,
            &settings.build_url_prefix,
        );
        let plan_of = |c: &staleguard_core::changes::Changes, max: usize| {
            staleguard_core::verify::plan(
                c,
                &record.objects,
                &alias_sha,
                &prefix,
                settings.clean_urls,
                max,
                &id,
            )
        };
        let changed = state.changes(&id, None).await?.changes;
        let recent = plan_of(&changed, self.opts.sample.max(1)).checks;
        let mut all = plan_of(&changes(None, &record.objects), usize::MAX).checks;
        all.sort_by(|a, b| a.url.cmp(&b.url));
        let live = all.len();
        let rotating = window(&all, self.cursor, self.opts.sample.max(1));
        self.cursor = if live == 0 {
            0
        } else {
            (self.cursor + self.opts.sample.max(1)) % live
        };
        // Targets: changed, window, and what was stale last round; each URL once.
        let previously: BTreeSet<&str> = self.streaks.keys().map(|(_, p)| p.as_str()).collect();
        let all_targets = staleguard_invalidate::prove::check_targets(&all);
        let was_stale = all
            .iter()
            .zip(&all_targets)
            .filter(|(_, t)| previously.contains(t.path.as_str()))
            .map(|(c, _)| c);
        let mut seen = BTreeSet::new();
        let mut checks = Vec::new();
        for c in recent.iter().chain(rotating.iter()).chain(was_stale) {
            if seen.insert(c.url.clone()) {
                checks.push(c.clone());
            }
        }
        let mut targets: Vec<Target> = staleguard_invalidate::prove::check_targets(&checks);
        let version_known = !settings.version_path.is_empty() && !record.version.is_empty();
        if version_known {
            targets.push(Target {
                path: settings.version_path.clone(),
                expect: Expect::Version(record.version.clone()),
                label: Some("version endpoint".into()),
            });
        }
        // One attempt per check: the deadline is now.
        let now = tokio::time::Instant::now();
        let mut opts = VerifyOptions::new(settings.bases.clone(), now)
            .with_concurrency(cfg.concurrency.max(1))
            .with_request_timeout(self.opts.request_timeout);
        if !cfg.encodings.is_empty() {
            opts = opts.with_encodings(cfg.encodings.clone());
        }
        if !cfg.host.is_empty() {
            opts = opts.with_host(cfg.host.clone());
        }
        let origin_url = (!cfg.origin_url.is_empty() && version_known)
            .then(|| format!("{}{}", cfg.origin_url, settings.version_path));
        let origin = async {
            let url = origin_url.as_ref()?;
            Some(
                match staleguard_check::probe::wait_version(
                    url,
                    &record.version,
                    std::time::Instant::now(),
                )
                .await
                {
                    Ok(()) => Ok(record.version.clone()),
                    Err(e) => Err(e.last.unwrap_or_else(|e| e)),
                },
            )
        };
        let (report, origin) =
            tokio::join!(staleguard_check::verify::verify(&targets, &opts), origin);

        // Per edge: which URLs are stale, the version, the time.
        let shown = staleguard_invalidate::prove::shown_bases(&settings.bases);
        let mut edges: Vec<EdgeRound> = Vec::new();
        let mut streaks = BTreeMap::new();
        for edge in &shown {
            let mine: Vec<_> = report.checks.iter().filter(|c| &c.base == edge).collect();
            let version_match = version_known.then(|| {
                mine.iter()
                    .filter(|c| c.label.as_deref() == Some("version endpoint"))
                    .all(|c| c.ok)
            });
            let seconds = mine.iter().map(|c| c.seconds).fold(0.0, f64::max);
            let mut stale: BTreeMap<String, StaleUrl> = BTreeMap::new();
            for c in mine.iter().filter(|c| !c.ok) {
                let e = stale.entry(c.path.clone()).or_insert_with(|| StaleUrl {
                    path: c.path.clone(),
                    encodings: Vec::new(),
                    expected: c.expected.clone(),
                    got: c.seen.got.clone(),
                    status: c.seen.status,
                    age: c.seen.age.clone(),
                    x_cache: c.seen.x_cache.clone(),
                    error: c.error.clone(),
                    rounds: 0,
                });
                e.encodings.push(c.encoding.clone());
            }
            for s in stale.values_mut() {
                let key = (edge.clone(), s.path.clone());
                let n = self.streaks.get(&key).copied().unwrap_or(0) + 1;
                s.rounds = n;
                streaks.insert(key, n);
            }
            let paths: BTreeSet<&str> = mine.iter().map(|c| c.path.as_str()).collect();
            edges.push(EdgeRound {
                edge: edge.clone(),
                version_match,
                checked: paths.len(),
                stale: stale.into_values().collect(),
                seconds,
            });
        }
        self.streaks = streaks;

        // Incidents, with hysteresis.
        let mut notices = Vec::new();
        for e in &edges {
            let due: Vec<StaleUrl> = e
                .stale
                .iter()
                .filter(|s| s.rounds >= self.opts.stale_rounds.max(1))
                .cloned()
                .collect();
            let open = self.incidents.contains(&e.edge);
            if !open && !due.is_empty() {
                self.incidents.insert(e.edge.clone());
                notices.push(Notice {
                    edge: e.edge.clone(),
                    kind: "stale",
                    text: stale_text(&e.edge, &id, &due),
                    urls: due,
                });
            } else if open && e.stale.is_empty() {
                self.incidents.remove(&e.edge);
                notices.push(Notice {
                    edge: e.edge.clone(),
                    kind: "cleared",
                    text: format!(
                        "staleguard watch: {} serves deploy {id} again: no stale URL in round {}",
                        e.edge, self.round
                    ),
                    urls: Vec::new(),
                });
            }
        }
        let origin_ok = origin
            .as_ref()
            .map(|o| o.as_deref().ok() == Some(record.version.as_str()));
        let fresh = edges
            .iter()
            .all(|e| e.stale.is_empty() && e.version_match != Some(false))
            && origin_ok != Some(false);
        let now_unix = std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .map(|d| d.as_secs() as i64)
            .unwrap_or(0);
        let round = Round {
            round: self.round,
            deploy: id.clone(),
            version: record.version.clone(),
            origin_version: origin.map(|o| o.unwrap_or_else(|e| e)),
            origin_ok,
            urls: checks.len() + usize::from(version_known),
            live,
            edges,
            fresh,
            notices,
            deploy_age_seconds: (now_unix - record.unix).max(0),
        };
        self.metrics.record(&round);
        Ok(round)
    }

    /// The edges watched.
    pub fn edges(&self) -> usize {
        self.opts.prove.bases.len()
    }

    /// A round that could not run (the store unreadable): counted, nothing else changes.
    pub fn failed_round(&mut self) {
        self.round += 1;
        self.metrics
            .rounds
            .get_or_create(&metrics::outcome("error"))
            .inc();
    }
}

/// Posts a round's notices to the webhook; a refused notice is a warning, never a failed round.
pub async fn notify(hook: &staleguard_invalidate::notify::Webhook, round: &Round) -> Vec<String> {
    let mut warnings = Vec::new();
    for n in &round.notices {
        let fields: Vec<(String, String)> = n
            .urls
            .iter()
            .map(|u| {
                (
                    u.path.clone(),
                    format!(
                        "Age {} · X-Cache {}",
                        u.age.as_deref().unwrap_or("-"),
                        u.x_cache.as_deref().unwrap_or("-")
                    ),
                )
            })
            .collect();
        let report = serde_json::to_value(n).unwrap_or_default();
        if let Err(e) = staleguard_invalidate::notify::notify(hook, &n.text, &fields, &report).await
        {
            warnings.push(format!(
                "the webhook in ${} refused the {} notice: {e}",
                hook.var, n.kind
            ));
        }
    }
    warnings
}

/// What [`run`] reports after each round.
#[derive(Debug)]
pub enum Event<'a> {
    Round(&'a Round),
    /// The round could not run (the store unreadable, a record gone); the next one tries again.
    Failed(String),
    /// A notice the webhook refused.
    Warning(String),
}

/// Rounds every `interval` until `stop` resolves (or `rounds` ran): each loads the store's state
/// with `load`, runs [`Watcher::round`], posts its notices to `hook`, and tells `on`. The loop of
/// `staleguard watch` and of `staleguard service` with `[service] watch = true`.
pub async fn run<L, F, E>(
    watcher: &mut Watcher,
    load: L,
    hook: Option<&staleguard_invalidate::notify::Webhook>,
    interval: Duration,
    rounds: Option<u64>,
    mut on: impl FnMut(Event<'_>),
    stop: impl std::future::Future<Output = ()>,
) where
    L: Fn() -> F,
    F: std::future::Future<Output = Result<PurgeState, E>>,
    E: std::fmt::Display,
{
    tokio::pin!(stop);
    let mut done = 0u64;
    loop {
        match load().await {
            Ok(state) => match watcher.round(&state).await {
                Ok(round) => {
                    on(Event::Round(&round));
                    if let Some(hook) = hook {
                        for w in notify(hook, &round).await {
                            on(Event::Warning(w));
                        }
                    }
                }
                Err(e) => {
                    watcher.failed_round();
                    on(Event::Failed(e.to_string()));
                }
            },
            Err(e) => {
                watcher.failed_round();
                on(Event::Failed(format!("cannot read the store: {e}")));
            }
        }
        done += 1;
        if rounds.is_some_and(|n| done >= n) {
            return;
        }
        tokio::select! {
            _ = tokio::time::sleep(interval) => {}
            _ = &mut stop => return,
        }
    }
}

fn stale_text(edge: &str, deploy: &str, urls: &[StaleUrl]) -> String {
    let mut s = format!(
        "staleguard watch: {edge} serves stale content ({} URL(s), deploy {deploy}):",
        urls.len()
    );
    for u in urls.iter().take(10) {
        s.push_str(&format!(
            "\n• {} — got {} (Age {}, X-Cache {}){}",
            u.path,
            u.got.as_deref().or(u.error.as_deref()).unwrap_or("nothing"),
            u.age.as_deref().unwrap_or("-"),
            u.x_cache.as_deref().unwrap_or("-"),
            if u.encodings.iter().all(String::is_empty) {
                String::new()
            } else {
                format!(" with Accept-Encoding {}", u.encodings.join(" | "))
            }
        ));
    }
    if urls.len() > 10 {
        s.push_str(&format!("\n… and {} more", urls.len() - 10));
    }
    s.push_str("\nhint: staleguard invalidate purges what the last deploy left pending");
    s
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_window_wraps_and_covers_everything() {
        let items: Vec<u32> = (0..7).collect();
        let mut cursor = 0;
        let mut seen = BTreeSet::new();
        for _ in 0..3 {
            seen.extend(window(&items, cursor, 3));
            cursor = (cursor + 3) % items.len();
        }
        assert_eq!(seen.len(), 7, "⌈7/3⌉ = 3 rounds cover every item");
        assert_eq!(window(&items, 6, 3), vec![6, 0, 1]);
        assert!(window::<u32>(&[], 0, 3).is_empty());
        assert_eq!(window(&items, 0, 10).len(), 7);
    }
}
