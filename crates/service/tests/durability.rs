//! kill -9 of a process committing events from eight threads through the SQLite log, ten times: every
//! `seq` it acknowledged is in the log when it is opened again (0 lost), and the `seq`s stay increasing
//! across restarts.

use std::io::{BufRead, BufReader};
use std::process::{Command, Stdio};

use staleguard_core::purge::Item;
use staleguard_service::log::{Log, NewEvent};

const CHILD: &str = "STALEGUARD_LOG_CHILD";

/// In the child: commit events until killed, printing `ack SEQ` after each commit returns.
fn child(path: &str) -> ! {
    let (log, _) = Log::open(std::path::Path::new(path), 1024, 1).expect("open");
    let log = std::sync::Arc::new(log);
    let threads: Vec<_> = (0..8)
        .map(|t| {
            let log = log.clone();
            std::thread::spawn(move || {
                for i in 0u64.. {
                    let events = vec![NewEvent {
                        scope: format!("ws:{}", (t * 13 + i) % 100),
                        items: vec![Item::path(format!("/p/{t}/{i}"))],
                        ..Default::default()
                    }];
                    let seqs = log.append(events, i, true).expect("append");
                    println!("ack {}", seqs[0]);
                }
            })
        })
        .collect();
    for t in threads {
        let _ = t.join();
    }
    std::process::exit(0)
}

#[test]
fn acknowledged_events_survive_kill_9() {
    if let Ok(path) = std::env::var(CHILD) {
        child(&path);
    }
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("events.db");
    let mut all_acked: Vec<u64> = Vec::new();
    let mut last_max = 0;
    for round in 0..10u64 {
        let mut c = Command::new(std::env::current_exe().unwrap())
            .args([
                "--exact",
                "acknowledged_events_survive_kill_9",
                "--nocapture",
                "--test-threads",
                "1",
            ])
            .env(CHILD, &path)
            .stdout(Stdio::piped())
            .stderr(Stdio::null())
            .spawn()
            .unwrap();
        let out = BufReader::new(c.stdout.take().unwrap());
        // Killed after a different number of acknowledgements each round (while others are in flight).
        let stop_after = 50 + round * 37;
        let mut acked = Vec::new();
        for line in out.lines() {
            let Ok(line) = line else { break };
            if let Some(s) = line.strip_prefix("ack ") {
                acked.push(s.trim().parse::<u64>().unwrap());
                if acked.len() as u64 >= stop_after {
                    c.kill().unwrap(); // SIGKILL
                    break;
                }
            }
        }
        let _ = c.wait();
        assert!(
            acked.len() as u64 >= stop_after,
            "round {round}: the child acknowledged only {}",
            acked.len()
        );
        let (_log, rec) = Log::open(&path, 16, 1).unwrap();
        let held: std::collections::BTreeSet<u64> = rec.events.iter().map(|e| e.seq).collect();
        all_acked.extend(&acked);
        let lost: Vec<&u64> = all_acked.iter().filter(|s| !held.contains(s)).collect();
        assert!(
            lost.is_empty(),
            "round {round}: acknowledged but not in the log: {lost:?}"
        );
        let min = *acked.iter().min().unwrap();
        assert!(
            min > last_max,
            "round {round}: seq {min} after {last_max}: seqs must keep increasing"
        );
        last_max = rec.last_seq;
    }
}

#[test]
fn cursors_only_move_forward_and_passed_rows_are_deleted() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("events.db");
    {
        let (log, rec) = Log::open(&path, 16, 2).unwrap();
        assert_eq!(rec.last_seq, 0);
        let ev = |s: &str| NewEvent {
            scope: s.into(),
            items: vec![Item::tag("t")],
            ..Default::default()
        };
        let seqs = log
            .append(vec![ev("a"), ev("a"), ev("b")], 10, false)
            .unwrap();
        assert_eq!(seqs, vec![1, 2, 3]);
        log.set_cursor("a", "cf", 2).unwrap();
        log.set_cursor("a", "cf", 1).unwrap(); // a late worker: ignored
        log.set_cursor("a", "varnish", 1).unwrap();
    }
    let (log, rec) = Log::open(&path, 16, 2).unwrap();
    let mut cursors = rec.cursors.clone();
    cursors.sort();
    assert_eq!(
        cursors,
        vec![
            ("a".into(), "cf".into(), 2),
            ("a".into(), "varnish".into(), 1)
        ]
    );
    // Row 1 is passed by both of a's cursors and is gone; 2 (varnish has not passed it) and 3 stay.
    assert_eq!(
        rec.events.iter().map(|e| e.seq).collect::<Vec<_>>(),
        vec![2, 3]
    );
    assert_eq!(rec.last_seq, 3);
    // The model rebuilt from it: a's varnish cursor has event 2 pending, cf none; b's both.
    let svc = staleguard_service::Service::restore(
        staleguard_service::Routing::single(
            vec!["cf".into(), "varnish".into()],
            Default::default(),
        ),
        rec.events
            .iter()
            .map(|e| (e.seq, e.scope.clone(), e.at_ms, e.items.clone(), e.soft)),
        &rec.cursors,
        rec.last_seq,
        rec.dead,
    );
    assert_eq!(svc.pending_count("a", "cf"), 0);
    assert_eq!(svc.pending_count("a", "varnish"), 1);
    assert_eq!(svc.pending_count("b", "cf"), 1);
    // New events continue the sequence.
    let seqs = log
        .append(
            vec![NewEvent {
                scope: "a".into(),
                items: vec![],
                ..Default::default()
            }],
            20,
            true,
        )
        .unwrap();
    assert_eq!(seqs, vec![4]);
}
