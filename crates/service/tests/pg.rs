//! The PostgreSQL store against a real server (`scripts/peers/postgres.sh`, one per test binary):
//! acknowledged after commit, claimed by one owner at a time, follow-up batches for events during a
//! claim, a lease that expires under a slow worker and a late finish that cannot move the cursor back,
//! retries then a dead letter, compaction, and the guarantee under concurrent appends from two
//! instances with two claimers.

use std::sync::{Arc, OnceLock};
use std::time::Duration;

use staleguard_core::backoff::Backoff;
use staleguard_core::purge::Item;
use staleguard_service::log::NewEvent;
use staleguard_service::model::{EventState, Outcome, Policy, Routing, covers};
use staleguard_service::pg::PgQueue;
use staleguard_testkit::postgres::Postgres;

fn server() -> &'static Postgres {
    static PG: OnceLock<Postgres> = OnceLock::new();
    PG.get_or_init(Postgres::start)
}

/// A fresh database on the shared server, so tests do not see each other's rows.
async fn fresh_db(name: &str) -> String {
    let admin = &server().url;
    let (c, conn) = tokio_postgres::connect(admin, tokio_postgres::NoTls)
        .await
        .unwrap();
    tokio::spawn(conn);
    c.batch_execute(&format!("DROP DATABASE IF EXISTS {name}"))
        .await
        .unwrap();
    c.batch_execute(&format!("CREATE DATABASE {name}"))
        .await
        .unwrap();
    admin.rsplit_once('/').unwrap().0.to_string() + "/" + name
}

fn routing(debounce_ms: u64, max_wait_ms: u64, attempts: u32) -> Routing {
    Routing::single(
        vec!["edge".into()],
        Policy {
            debounce: Duration::from_millis(debounce_ms),
            max_wait: Duration::from_millis(max_wait_ms),
            max_attempts: attempts,
            backoff: Backoff::new(Duration::from_millis(10), 2.0, Duration::from_millis(20)),
            ..Policy::default()
        },
    )
}

fn ev(scope: &str, path: &str) -> NewEvent {
    NewEvent {
        scope: scope.into(),
        items: vec![Item::path(path)],
        ..NewEvent::default()
    }
}

async fn rows(url: &str) -> i64 {
    let (c, conn) = tokio_postgres::connect(url, tokio_postgres::NoTls)
        .await
        .unwrap();
    tokio::spawn(conn);
    c.query_one("SELECT count(*) FROM sg_events", &[])
        .await
        .unwrap()
        .get(0)
}

async fn claim_soon(q: &mut PgQueue, lease: Duration) -> Vec<staleguard_service::pg::Claim> {
    for _ in 0..200 {
        let c = q.claim(lease, 16).await.unwrap();
        if !c.is_empty() {
            return c;
        }
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
    panic!("nothing became due");
}

#[tokio::test]
async fn claims_follow_ups_fencing_retries_dead_letters_and_compaction() {
    let url = fresh_db("sg_basic").await;
    let r = routing(0, 1000, 2);
    let mut a = PgQueue::connect(&url, r.clone(), "a")
        .await
        .unwrap()
        .keep(Duration::ZERO);
    let mut b = PgQueue::connect(&url, r.clone(), "b")
        .await
        .unwrap()
        .keep(Duration::ZERO);
    let lease = Duration::from_millis(300);

    let seqs = a
        .append(&[ev("ws:1", "/a"), ev("ws:1", "/b"), ev("ws:2", "/c")])
        .await
        .unwrap();
    assert_eq!(seqs.len(), 3);
    assert!(seqs[0] < seqs[1] && seqs[1] < seqs[2]);
    let claims = claim_soon(&mut a, lease).await;
    assert_eq!(claims.len(), 2, "one batch per scope: {claims:?}");
    let c1 = claims
        .iter()
        .find(|c| c.batch.scope == "ws:1")
        .unwrap()
        .clone();
    assert_eq!(c1.batch.items, vec![Item::path("/a"), Item::path("/b")]);
    assert_eq!(c1.batch.through, seqs[1]);
    // Held by a: b gets nothing.
    assert!(b.claim(lease, 16).await.unwrap().is_empty());

    // An event during the claim is not in it; it forms the follow-up batch.
    let later = b.append(&[ev("ws:1", "/d")]).await.unwrap()[0];
    a.finish(&c1, &Outcome::Done, 0.5).await.unwrap();
    let c2 = claims
        .iter()
        .find(|c| c.batch.scope == "ws:2")
        .unwrap()
        .clone();
    a.finish(&c2, &Outcome::Done, 0.5).await.unwrap();
    let follow = claim_soon(&mut b, lease).await;
    assert_eq!(follow.len(), 1);
    assert_eq!(follow[0].batch.items, vec![Item::path("/d")]);
    assert_eq!(
        (follow[0].batch.from, follow[0].batch.through),
        (seqs[1], later)
    );

    // b's lease expires under a slow send; a takes it over (same batch); b's late failure changes
    // nothing, and b's late success only moves the cursor forward.
    tokio::time::sleep(lease + Duration::from_millis(100)).await;
    let taken = claim_soon(&mut a, lease).await;
    assert_eq!(taken[0].batch.through, later);
    b.finish(
        &follow[0],
        &Outcome::Failed {
            reason: "late".into(),
            retry_after: None,
        },
        0.5,
    )
    .await
    .unwrap();
    assert!(a.renew(&taken[0], lease).await.unwrap(), "a still holds it");
    a.finish(&taken[0], &Outcome::Done, 0.5).await.unwrap();
    b.finish(&follow[0], &Outcome::Done, 0.5).await.unwrap();
    assert_eq!(
        a.cursors("ws:1").await.unwrap(),
        vec![("edge".into(), later, later)]
    );
    // A late finish of the very first batch cannot move the cursor back.
    a.finish(&c1, &Outcome::Done, 0.5).await.unwrap();
    assert_eq!(a.cursors("ws:1").await.unwrap()[0].1, later);

    // Failures: retried as the same batch (same through, attempt 2), then a dead letter that lets the
    // cursor pass.
    let s = a.append(&[ev("ws:3", "/x")]).await.unwrap()[0];
    let failed = Outcome::Failed {
        reason: "HTTP 503".into(),
        retry_after: None,
    };
    let first = claim_soon(&mut a, lease).await.remove(0);
    a.finish(&first, &failed, 0.5).await.unwrap();
    a.append(&[ev("ws:3", "/y")]).await.unwrap();
    let retry = claim_soon(&mut b, lease).await.remove(0);
    assert_eq!((retry.batch.through, retry.batch.attempt), (s, 2));
    assert_eq!(retry.batch.reference, first.batch.reference);
    b.finish(&retry, &failed, 0.5).await.unwrap();
    let dead = a.dead().await.unwrap();
    assert_eq!(dead.len(), 1);
    assert_eq!(
        (dead[0].1.as_str(), dead[0].4, dead[0].5.as_str()),
        ("ws:3", s, "HTTP 503")
    );
    // The event after it is its own batch, from attempt 1.
    let next = claim_soon(&mut a, lease).await.remove(0);
    assert_eq!(
        (next.batch.items.clone(), next.batch.attempt),
        (vec![Item::path("/y")], 1)
    );
    a.finish(&next, &Outcome::Done, 0.5).await.unwrap();

    // Every cursor passed every event: the rows are gone; a new connection sees the same state.
    assert_eq!(a.held().await.unwrap(), 0);
    assert_eq!(rows(&url).await, 0, "compacted (keep = 0)");
    let c = PgQueue::connect(&url, r, "c").await.unwrap();
    assert_eq!(c.cursors("ws:3").await.unwrap()[0].1, s + 1);
}

#[tokio::test]
async fn max_wait_caps_a_steady_stream_on_the_database_clock() {
    let url = fresh_db("sg_maxwait").await;
    // Debounce 300 ms, max-wait 600 ms: events every 100 ms never let the debounce pass.
    let mut q = PgQueue::connect(&url, routing(300, 600, 3), "a")
        .await
        .unwrap();
    let start = std::time::Instant::now();
    let mut claimed = None;
    for i in 0..40 {
        q.append(&[ev("ws:1", &format!("/p{i}"))]).await.unwrap();
        let c = q.claim(Duration::from_secs(5), 16).await.unwrap();
        if let Some(c) = c.into_iter().next() {
            claimed = Some((c, start.elapsed()));
            break;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    let (c, _) = claimed.expect("max-wait made the scope due while events kept coming");
    assert!(
        c.batch.items.len() >= 5,
        "a batch of the stream: {:?}",
        c.batch.items
    );
}

#[tokio::test]
async fn every_event_appended_by_two_instances_is_covered_by_a_later_purge_of_two_claimers() {
    let url = fresh_db("sg_guarantee").await;
    let r = routing(20, 100, 100);
    let stop = Arc::new(std::sync::atomic::AtomicBool::new(false));
    // Two claimers; each records (batch, send time) of what it "purged"; one of them fails a third.
    let sent: Arc<std::sync::Mutex<Vec<(staleguard_service::Batch, std::time::Instant)>>> =
        Arc::default();
    let mut workers = Vec::new();
    for (name, flaky) in [("w1", false), ("w2", true)] {
        let mut q = PgQueue::connect(&url, r.clone(), name).await.unwrap();
        let (stop, sent) = (stop.clone(), sent.clone());
        workers.push(tokio::spawn(async move {
            let mut n = 0u32;
            loop {
                let done = stop.load(std::sync::atomic::Ordering::SeqCst);
                let claims = q.claim(Duration::from_secs(5), 8).await.unwrap();
                if done && claims.is_empty() && q.held().await.unwrap() == 0 {
                    return;
                }
                for c in claims {
                    n += 1;
                    let outcome = if flaky && n.is_multiple_of(3) {
                        Outcome::Failed {
                            reason: "flaky".into(),
                            retry_after: None,
                        }
                    } else {
                        sent.lock()
                            .unwrap()
                            .push((c.batch.clone(), std::time::Instant::now()));
                        Outcome::Done
                    };
                    q.finish(&c, &outcome, 0.3).await.unwrap();
                }
                tokio::time::sleep(Duration::from_millis(5)).await;
            }
        }));
    }
    // Two instances append concurrently to 10 shared scopes; an event counts once its seq is back.
    let mut producers = Vec::new();
    for k in 0..2 {
        let mut q = PgQueue::connect(&url, r.clone(), &format!("p{k}"))
            .await
            .unwrap();
        producers.push(tokio::spawn(async move {
            let mut acked = Vec::new();
            for i in 0..150 {
                let scope = format!("ws:{}", (i * 7 + k) % 10);
                let path = format!("/{scope}/k{k}-{i}");
                let seq = q.append(&[ev(&scope, &path)]).await.unwrap()[0];
                acked.push((seq, scope, path, std::time::Instant::now()));
            }
            acked
        }));
    }
    let mut acked = Vec::new();
    for p in producers {
        acked.extend(p.await.unwrap());
    }
    stop.store(true, std::sync::atomic::Ordering::SeqCst);
    for w in workers {
        tokio::time::timeout(Duration::from_secs(60), w)
            .await
            .expect("the claimers drain")
            .unwrap();
    }
    let sent = sent.lock().unwrap();
    let mut missing = Vec::new();
    for (seq, scope, path, at) in &acked {
        let ok = sent.iter().any(|(b, t)| {
            b.scope == *scope
                && b.from < *seq
                && *seq <= b.through
                && t >= at
                && covers(&b.items, &[Item::path(path.clone())])
        });
        if !ok {
            missing.push((seq, scope, path));
        }
    }
    assert!(
        missing.is_empty(),
        "{} of {} acknowledged events have no purge after them: {:?}",
        missing.len(),
        acked.len(),
        &missing[..missing.len().min(5)]
    );
}

/// Records what it was asked to purge, with the time.
struct Recorder(std::sync::Mutex<Vec<(staleguard_service::Batch, std::time::Instant)>>);

#[async_trait::async_trait]
impl staleguard_service::Sender for Recorder {
    async fn send(&self, b: &staleguard_service::Batch) -> staleguard_service::Sent {
        tokio::time::sleep(Duration::from_millis(20)).await;
        self.0
            .lock()
            .unwrap()
            .push((b.clone(), std::time::Instant::now()));
        Outcome::Done.into()
    }
}

#[tokio::test]
async fn two_workers_one_killed_mid_run_nothing_is_lost() {
    let url = fresh_db("sg_workers").await;
    let r = routing(20, 100, 5);
    let rec = Arc::new(Recorder(Default::default()));
    let lease = Duration::from_millis(400);
    let spawn = |name: &'static str| {
        let (url, r, rec) = (url.clone(), r.clone(), rec.clone());
        let (stop, stopped) = tokio::sync::oneshot::channel::<()>();
        let h = tokio::spawn(async move {
            let q = PgQueue::connect(&url, r, name).await.unwrap();
            let (_listening, wake) = staleguard_service::pg::listen(&url).await.unwrap();
            let settings = staleguard_service::pg::WorkerSettings {
                lease,
                concurrency: 2,
                poll: Duration::from_millis(50),
            };
            staleguard_service::pg::run_worker(q, wake, rec, settings, Default::default(), async {
                let _ = stopped.await;
            })
            .await
            .unwrap();
        });
        (h, stop)
    };
    let (doomed, _keep) = spawn("w1");
    let (survivor, stop) = spawn("w2");
    let mut q = PgQueue::connect(&url, r.clone(), "app").await.unwrap();
    let mut acked = Vec::new();
    for i in 0..200 {
        if i == 80 {
            // Killed mid-run: no release, no finish; its leases expire and w2 takes over.
            doomed.abort();
        }
        let scope = format!("ws:{}", i % 7);
        let path = format!("/{scope}/{i}");
        let seq = q.append(&[ev(&scope, &path)]).await.unwrap()[0];
        acked.push((seq, scope, path, std::time::Instant::now()));
        tokio::time::sleep(Duration::from_millis(3)).await;
    }
    for _ in 0..600 {
        if q.held().await.unwrap() == 0 {
            break;
        }
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    assert_eq!(q.held().await.unwrap(), 0, "drained by the survivor");
    let _ = stop.send(());
    survivor.await.unwrap();
    let sent = rec.0.lock().unwrap();
    let lost: Vec<_> = acked
        .iter()
        .filter(|(seq, scope, path, at)| {
            !sent.iter().any(|(b, t)| {
                b.scope == *scope
                    && b.from < *seq
                    && *seq <= b.through
                    && t >= at
                    && covers(&b.items, &[Item::path(path.clone())])
            })
        })
        .collect();
    assert!(lost.is_empty(), "lost: {lost:?}");
}

#[tokio::test]
async fn keys_status_flush_scope_state_and_a_dead_letter_retried_in_one_transaction() {
    let url = fresh_db("sg_api").await;
    // A long debounce: only a flush makes the scope due.
    let r = routing(60_000, 120_000, 1);
    let mut q = PgQueue::connect(&url, r.clone(), "a").await.unwrap();
    let keyed = |path: &str, key: &str| NewEvent {
        key: Some(key.into()),
        ..ev("ws:1", path)
    };
    // A retried request (same scope and key) is one event, in the same group or a later one; the
    // same key in another scope is another event.
    let first = q
        .append(&[keyed("/a", "k1"), keyed("/a", "k1"), ev("ws:1", "/b")])
        .await
        .unwrap();
    assert_eq!(first[0], first[1]);
    let again = q.append(&[keyed("/a", "k1")]).await.unwrap();
    assert_eq!(again, vec![first[0]]);
    let other = q
        .append(&[NewEvent {
            key: Some("k1".into()),
            ..ev("ws:2", "/a")
        }])
        .await
        .unwrap();
    assert_ne!(other[0], first[0]);

    let st = q.event_status(first[0]).await.unwrap().unwrap();
    assert_eq!(
        (st.scope.as_deref(), st.state),
        (Some("ws:1"), EventState::Pending)
    );
    assert!(q.event_status(other[0] + 1000).await.unwrap().is_none());
    let (pending, due) = q.scope("ws:1").await.unwrap();
    assert_eq!(pending, vec![("edge".to_string(), 2)]);
    assert!(due.is_some());
    assert!(
        q.claim(Duration::from_secs(5), 16)
            .await
            .unwrap()
            .is_empty()
    );

    // flush: due now; claimed: purging; confirmed with the provider's ids: purged, ids shown.
    assert!(q.flush("ws:1").await.unwrap());
    assert!(!q.flush("ws:9").await.unwrap(), "nothing pending there");
    let c = claim_soon(&mut q, Duration::from_secs(5)).await;
    assert_eq!(c.len(), 1);
    assert_eq!(
        q.event_status(first[0]).await.unwrap().unwrap().state,
        EventState::Purging
    );
    let sent = staleguard_service::Sent {
        outcome: Outcome::Done,
        ids: vec!["I2J0".into()],
    };
    assert!(!q.finish_sent(&c[0], &sent, 0.5).await.unwrap());
    let st = q.event_status(first[0]).await.unwrap().unwrap();
    assert_eq!(st.state, EventState::Purged);
    assert_eq!(st.providers[0].ids, vec!["I2J0".to_string()]);

    // One attempt only: a failure is a dead letter, shown in the event's status and the list;
    // retried, its items are a new event of its scope and the letter is gone.
    q.flush("ws:2").await.unwrap();
    let c = claim_soon(&mut q, Duration::from_secs(5)).await;
    let failed = Outcome::Failed {
        reason: "HTTP 403: the token lacks Cache Purge".into(),
        retry_after: None,
    };
    assert!(q.finish(&c[0], &failed, 0.5).await.unwrap(), "dead");
    let st = q.event_status(other[0]).await.unwrap().unwrap();
    assert_eq!(st.state, EventState::Dead);
    let dead = q.dead_letters().await.unwrap();
    assert_eq!(dead.len(), 1);
    assert_eq!(dead[0].seqs, vec![other[0]]);
    assert_eq!(dead[0].items, vec![Item::path("/a")]);
    assert_eq!(q.stats().await.unwrap().dead_letters, 1);
    let (seq, scope) = q.retry_dead(dead[0].id).await.unwrap().unwrap();
    assert_eq!(scope, "ws:2");
    assert!(seq > other[0]);
    assert!(q.dead_letters().await.unwrap().is_empty());
    assert!(q.retry_dead(dead[0].id).await.unwrap().is_none());
    let stats = q.stats().await.unwrap();
    assert_eq!((stats.scopes_pending, stats.events_pending), (1, 1));
    assert!(stats.oldest_pending_ms.is_some());
}
