//! Fault injection for crash tests: `STALEGUARD_FAULT=POINT[:KEY][@N]` kills the process (as `kill -9`
//! would: no cleanup, no flush) the N-th time (default 1st) the deploy reaches `POINT` for a key that
//! contains `KEY`. Points: `put` (before an object is written), `put-done` (after), `commit-record`,
//! `commit-history`, `commit-current` (after each commit write), `gc-delete` (before a delete). Unset, a
//! point costs one relaxed load.

use std::sync::OnceLock;
use std::sync::atomic::{AtomicU64, Ordering};

struct Fault {
    point: String,
    key: String,
    nth: u64,
    seen: AtomicU64,
    /// Sleep this long instead of dying.
    pause_ms: Option<u64>,
}

fn fault() -> Option<&'static Fault> {
    static FAULT: OnceLock<Option<Fault>> = OnceLock::new();
    FAULT
        .get_or_init(|| {
            let (spec, pause_ms) = match std::env::var("STALEGUARD_FAULT") {
                Ok(s) => (s, None),
                Err(_) => {
                    let p = std::env::var("STALEGUARD_PAUSE").ok()?;
                    let (spec, ms) = p.rsplit_once('=')?;
                    (spec.to_string(), Some(ms.parse().ok()?))
                }
            };
            let (rest, nth) = match spec.rsplit_once('@') {
                Some((r, n)) => (r.to_string(), n.parse().ok()?),
                None => (spec.clone(), 1),
            };
            let (point, key) = rest
                .split_once(':')
                .map_or((rest.clone(), String::new()), |(p, k)| {
                    (p.to_string(), k.to_string())
                });
            Some(Fault {
                point,
                key,
                nth,
                seen: AtomicU64::new(0),
                pause_ms,
            })
        })
        .as_ref()
}

/// Dies here when `STALEGUARD_FAULT` names this point (and key, and count).
pub fn point(name: &str, key: &str) {
    let Some(f) = fault() else { return };
    if f.point == name && key.contains(&f.key) && f.seen.fetch_add(1, Ordering::SeqCst) + 1 == f.nth
    {
        if let Some(ms) = f.pause_ms {
            eprintln!("STALEGUARD_PAUSE: paused at {name} {key} for {ms} ms");
            std::thread::sleep(std::time::Duration::from_millis(ms));
            return;
        }
        eprintln!("STALEGUARD_FAULT: killed at {name} {key}");
        std::process::abort();
    }
}
