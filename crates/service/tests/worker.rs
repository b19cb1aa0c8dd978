//! The worker end to end on the log and the model, with a scripted sender: events become one
//! coalesced batch after the debounce, a failure is retried with the same reference, a success moves
//! the durable cursor, and an event during a running batch gets its own follow-up batch.

use std::sync::{Arc, Mutex};
use std::time::Duration;

use async_trait::async_trait;
use staleguard_core::backoff::Backoff;
use staleguard_core::purge::Item;
use staleguard_service::log::{Log, NewEvent};
use staleguard_service::worker::{self, Sender, Sent};
use staleguard_service::{Batch, Outcome, Policy, api};

#[derive(Default)]
struct Scripted {
    sent: Mutex<Vec<Batch>>,
    fail_first: Mutex<u32>,
    hold: Mutex<Option<Arc<tokio::sync::Notify>>>,
}

#[async_trait]
impl Sender for Scripted {
    async fn send(&self, b: &Batch) -> Sent {
        self.sent.lock().unwrap().push(b.clone());
        let hold = self.hold.lock().unwrap().clone();
        if let Some(n) = hold {
            n.notified().await;
        }
        let mut f = self.fail_first.lock().unwrap();
        if *f > 0 {
            *f -= 1;
            return Outcome::Failed {
                reason: "503".into(),
                retry_after: None,
            }
            .into();
        }
        Sent {
            outcome: Outcome::Done,
            ids: vec![format!("I{}", b.through)],
        }
    }
}

async fn wait_for(what: &str, mut cond: impl FnMut() -> bool) {
    for _ in 0..800 {
        if cond() {
            return;
        }
        tokio::time::sleep(Duration::from_millis(25)).await;
    }
    panic!("timed out waiting for {what}");
}

#[tokio::test]
async fn due_batches_are_sent_retried_recorded_and_followed_up() {
    let dir = tempfile::tempdir().unwrap();
    let db = dir.path().join("events.db");
    let policy = Policy {
        debounce: Duration::from_millis(100),
        max_wait: Duration::from_millis(400),
        backoff: Backoff::new(Duration::from_millis(50), 2.0, Duration::from_millis(200)),
        ..Policy::default()
    };
    let api = api::open(&db, vec!["cf".into()], policy, vec!["t".into()], 64).unwrap();
    let sender = Arc::new(Scripted::default());
    *sender.fail_first.lock().unwrap() = 1;
    let (stop_tx, stop_rx) = tokio::sync::oneshot::channel::<()>();
    let w = tokio::spawn(worker::run(api.clone(), sender.clone(), 4, async {
        let _ = stop_rx.await;
    }));
    let ev = |p: &str| NewEvent {
        scope: "ws:1".into(),
        items: vec![Item::path(p)],
        ..Default::default()
    };
    api.local()
        .unwrap()
        .log
        .append(vec![ev("/a"), ev("/b")], api::now_ms(), true)
        .unwrap();

    // One batch for both, failed once, then sent again with the same reference, and recorded.
    wait_for("two sends", || sender.sent.lock().unwrap().len() >= 2).await;
    {
        let sent = sender.sent.lock().unwrap();
        assert_eq!(sent[0].items, vec![Item::path("/a"), Item::path("/b")]);
        assert_eq!(
            (sent[1].reference.as_str(), sent[1].attempt),
            (sent[0].reference.as_str(), 2)
        );
    }
    wait_for("the cursor", || {
        api.local().unwrap().model().pending_count("ws:1", "cf") == 0
    })
    .await;

    // An event while a batch is held in flight: not merged; its own batch follows.
    let gate = Arc::new(tokio::sync::Notify::new());
    *sender.hold.lock().unwrap() = Some(gate.clone());
    api.local()
        .unwrap()
        .log
        .append(vec![ev("/c")], api::now_ms(), true)
        .unwrap();
    wait_for("the third send", || sender.sent.lock().unwrap().len() >= 3).await;
    api.local()
        .unwrap()
        .log
        .append(vec![ev("/d")], api::now_ms(), true)
        .unwrap();
    *sender.hold.lock().unwrap() = None;
    gate.notify_one();
    wait_for("the follow-up", || sender.sent.lock().unwrap().len() >= 4).await;
    {
        let sent = sender.sent.lock().unwrap();
        assert_eq!(sent[2].items, vec![Item::path("/c")]);
        assert_eq!(sent[3].items, vec![Item::path("/d")]);
        assert!(sent[3].from >= sent[2].through);
        assert!(sent[3].follow_up && !sent[2].follow_up);
    }
    wait_for("drained", || {
        api.local().unwrap().model().pending_count("ws:1", "cf") == 0
    })
    .await;
    let _ = stop_tx.send(());
    w.await.unwrap();
    drop(api);

    // The cursor is on disk: a restart has nothing pending.
    let (_log, rec) = Log::open(&db, 4, 1).unwrap();
    assert_eq!(rec.cursors, vec![("ws:1".to_string(), "cf".to_string(), 4)]);
    assert!(rec.events.is_empty(), "every row passed: deleted");
}

fn batch(scope: &str, provider: &str, items: usize) -> Batch {
    Batch {
        scope: scope.into(),
        provider: provider.into(),
        from: 0,
        through: 1,
        items: (0..items)
            .map(|i| Item::path(format!("/{scope}/{i}")))
            .collect(),
        reference: format!("{scope}:{provider}:1"),
        attempt: 1,
        events_at: vec![0],
        follow_up: false,
        soft: false,
        namespaces: Vec::new(),
    }
}

#[test]
fn batches_due_together_are_grouped_per_provider_under_the_item_cap() {
    let gs = worker::groups(vec![
        batch("a", "cf", 400),
        batch("b", "edge", 10),
        batch("c", "cf", 500),
        batch("d", "cf", 200),
        batch("e", "edge", 10),
    ]);
    let shape: Vec<Vec<(&str, &str)>> = gs
        .iter()
        .map(|g| {
            g.iter()
                .map(|b| (b.scope.as_str(), b.provider.as_str()))
                .collect()
        })
        .collect();
    assert_eq!(
        shape,
        vec![
            vec![("a", "cf"), ("c", "cf")],
            vec![("d", "cf")],
            vec![("b", "edge"), ("e", "edge")],
        ]
    );
    // A batch over the cap on its own is still sent (alone).
    assert_eq!(worker::groups(vec![batch("big", "cf", 1500)]).len(), 1);
}
