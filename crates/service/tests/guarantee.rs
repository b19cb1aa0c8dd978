//! The service's guarantee as a property: a simulated clock and a scripted provider drive random
//! interleavings of events, batch starts, successes, failures, late completions and restarts; after the
//! load stops and the service drains, for every acknowledged event and every provider, a purge covering
//! the event's items was sent after the event was committed and confirmed, or the batch holding it is a
//! dead letter. The log held in memory is empty once drained.

use std::time::Duration;

use proptest::prelude::*;
use staleguard_core::backoff::{Backoff, Jitter};
use staleguard_core::purge::Item;
use staleguard_service::model::covers;
use staleguard_service::{Batch, Outcome, Policy, Service};

const PROVIDERS: [&str; 2] = ["cf", "varnish"];

#[derive(Debug, Clone)]
enum Step {
    /// An event for scope `s` with item `i`.
    Event { scope: u8, item: u8, tag: bool },
    /// The clock moves on.
    Tick(u16),
    /// Start what is due (the sends are in flight until a `Finish`).
    Start,
    /// The oldest in-flight send ends: success, or failure with an optional Retry-After.
    Finish { ok: bool, retry_after: Option<u8> },
    /// The process dies: in-flight sends are forgotten by the service (some may still finish late).
    Restart,
}

fn step() -> impl Strategy<Value = Step> {
    prop_oneof![
        4 => (0u8..4, 0u8..12, any::<bool>()).prop_map(|(scope, item, tag)| Step::Event { scope, item, tag }),
        3 => (1u16..8000).prop_map(Step::Tick),
        2 => Just(Step::Start),
        3 => (prop::bool::weighted(0.7), prop::option::of(0u8..20)).prop_map(|(ok, retry_after)| Step::Finish { ok, retry_after }),
        1 => Just(Step::Restart),
    ]
}

#[derive(Debug)]
struct Sent {
    batch: Batch,
    /// The logical time (step counter) the batch was handed out at.
    at: u64,
    confirmed: bool,
}

struct Acked {
    seq: u64,
    scope: String,
    items: Vec<Item>,
    at: u64,
}

fn run(steps: &[Step], max_items: usize) -> Result<(), TestCaseError> {
    let mut svc = Service::new(
        PROVIDERS.iter().map(|p| p.to_string()).collect(),
        Policy {
            debounce: Duration::from_millis(500),
            max_wait: Duration::from_millis(3000),
            max_items,
            max_attempts: 3,
            backoff: Backoff::new(Duration::from_millis(100), 2.0, Duration::from_millis(2000))
                .with_jitter(Jitter::Full),
        },
    );
    let mut now: u64 = 0;
    let mut logical: u64 = 0;
    let mut acked: Vec<Acked> = Vec::new();
    let mut sent: Vec<Sent> = Vec::new();
    let mut in_flight: Vec<usize> = Vec::new();
    let mut draws = 0.0f64;
    let mut finish =
        |svc: &mut Service, sent: &mut Vec<Sent>, i: usize, ok: bool, ra: Option<u8>, now: u64| {
            draws = (draws + 0.37) % 1.0;
            let b = &sent[i].batch;
            let outcome = if ok {
                Outcome::Done
            } else {
                Outcome::Failed {
                    reason: "scripted".into(),
                    retry_after: ra.map(|s| Duration::from_millis(s as u64 * 50)),
                }
            };
            svc.finish(&b.scope, &b.provider, b.through, outcome, now, draws);
            sent[i].confirmed = ok;
        };
    for s in steps {
        logical += 1;
        match *s {
            Step::Event { scope, item, tag } => {
                let scope = format!("ws:{scope}");
                let it = if tag {
                    Item::tag(format!("t{item}"))
                } else {
                    Item::path(format!("/{scope}/d{}/p{item}.html", item % 3))
                };
                let seq = svc.accept(&scope, vec![it.clone()], now);
                acked.push(Acked {
                    seq,
                    scope,
                    items: vec![it],
                    at: logical,
                });
            }
            Step::Tick(ms) => now += ms as u64,
            Step::Start => {
                for b in svc.start_due(now) {
                    sent.push(Sent {
                        batch: b,
                        at: logical,
                        confirmed: false,
                    });
                    in_flight.push(sent.len() - 1);
                }
            }
            Step::Finish { ok, retry_after } => {
                if !in_flight.is_empty() {
                    let i = in_flight.remove(0);
                    finish(&mut svc, &mut sent, i, ok, retry_after, now);
                }
            }
            // In-flight sends stay in `in_flight`: they may finish late, after the restart.
            Step::Restart => svc.restart(),
        }
    }
    // The load stops: finish what is in flight (successes), then drain with a provider that works.
    for i in std::mem::take(&mut in_flight) {
        finish(&mut svc, &mut sent, i, true, None, now);
    }
    let mut rounds = 0;
    while let Some(due) = svc.next_due() {
        rounds += 1;
        prop_assert!(rounds < 10_000, "the service does not drain");
        now = now.max(due);
        logical += 1;
        for b in svc.start_due(now) {
            sent.push(Sent {
                batch: b,
                at: logical,
                confirmed: false,
            });
            let i = sent.len() - 1;
            finish(&mut svc, &mut sent, i, true, None, now);
        }
    }
    // The guarantee.
    for e in &acked {
        for p in PROVIDERS {
            let purged = sent.iter().any(|s| {
                s.confirmed
                    && s.batch.scope == e.scope
                    && s.batch.provider == p
                    && s.at > e.at
                    && s.batch.from < e.seq
                    && e.seq <= s.batch.through
                    && covers(&s.batch.items, &e.items)
            });
            let dead = svc.dead().iter().any(|d| {
                d.scope == e.scope && d.provider == p && d.from < e.seq && e.seq <= d.through
            });
            prop_assert!(
                purged || dead,
                "event {} ({}, {:?}) has no purge through {p} sent after it, nor a dead letter",
                e.seq,
                e.scope,
                e.items
            );
        }
    }
    prop_assert_eq!(svc.held(), 0, "drained: nothing held");
    Ok(())
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(400))]

    #[test]
    fn every_acknowledged_event_is_purged_after_it_or_dead_lettered(steps in prop::collection::vec(step(), 1..160)) {
        run(&steps, 1000)?;
    }

    #[test]
    fn the_guarantee_holds_when_batches_collapse(steps in prop::collection::vec(step(), 1..160)) {
        run(&steps, 3)?;
    }
}
