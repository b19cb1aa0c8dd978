//! `bench/service-pg.sh`'s load: N producers (default 64) each appending single events through one
//! instance's group-commit writer ([`PgWriter`]) for D seconds; prints `events=… seconds=… per_second=…`.
//!
//! Usage: pg_append POSTGRES_URL [PRODUCERS] [SECONDS]

use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{Duration, Instant};

use staleguard_core::purge::Item;
use staleguard_service::log::NewEvent;
use staleguard_service::model::{Policy, Routing};
use staleguard_service::pg::{AppendError, PgQueue, PgWriter};

#[tokio::main]
async fn main() {
    let mut args = std::env::args().skip(1);
    let url = args
        .next()
        .expect("usage: pg_append POSTGRES_URL [PRODUCERS] [SECONDS]");
    let producers: u64 = args.next().map_or(64, |s| s.parse().expect("PRODUCERS"));
    let seconds: u64 = args.next().map_or(10, |s| s.parse().expect("SECONDS"));
    let routing = Routing::single(vec!["edge".into()], Policy::default());
    let q = PgQueue::connect(&url, routing, "bench")
        .await
        .expect("connect");
    let w = PgWriter::spawn(q, 65_536);
    let done = Arc::new(AtomicU64::new(0));
    let busy = Arc::new(AtomicU64::new(0));
    let start = Instant::now();
    let end = start + Duration::from_secs(seconds);
    let mut tasks = Vec::new();
    for p in 0..producers {
        let (w, done, busy) = (w.clone(), done.clone(), busy.clone());
        tasks.push(tokio::spawn(async move {
            let mut i = 0u64;
            while Instant::now() < end {
                i += 1;
                let ev = NewEvent {
                    scope: format!("ws:{}", (p * 31 + i) % 100),
                    items: vec![Item::path(format!("/ws/{p}/{i}"))],
                    ..NewEvent::default()
                };
                match w.append(vec![ev]).await {
                    Ok(_) => {
                        done.fetch_add(1, Ordering::Relaxed);
                    }
                    Err(AppendError::Busy) => {
                        busy.fetch_add(1, Ordering::Relaxed);
                        tokio::task::yield_now().await;
                    }
                    Err(AppendError::Failed(e)) => panic!("{e}"),
                }
            }
        }));
    }
    for t in tasks {
        t.await.unwrap();
    }
    let dt = start.elapsed().as_secs_f64();
    let n = done.load(Ordering::Relaxed);
    println!(
        "events={n} seconds={dt:.3} per_second={:.0} busy={}",
        n as f64 / dt,
        busy.load(Ordering::Relaxed)
    );
}
