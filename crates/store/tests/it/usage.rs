//! The month's billed purge items per provider target ([`PurgeState::reserve`]): a new month (UTC)
//! starts at zero, a retried purge is counted once, and purges running at once never both spend the
//! same free items, on a folder (a lock) and on S3 (conditional writes).

use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};

use staleguard_store::{PurgeState, Reserved, month_of};

use crate::target::Target;

const FREE: u64 = 1000;
const TARGET: &str = "cloudfront:E123";

fn load(t: &Target, rt: &tokio::runtime::Runtime) -> PurgeState {
    rt.block_on(PurgeState::load(&t.url, &t.config, &t.work))
        .unwrap_or_else(|e| panic!("load the purge state of `{}`: {e}", t.url))
}

/// Plans like the purge run does: `want` billed items, using the free items left as last read, and
/// reserves; plans again while another purge took them meanwhile. Returns the free items it used.
async fn purge(state: &mut PurgeState, month: &str, reference: &str, want: u64) -> u64 {
    let mut free_left = state.free_left(TARGET, month, FREE);
    for _ in 0..64 {
        let free_used = want.min(free_left);
        let r = state
            .reserve(TARGET, month, reference, FREE, free_left, free_used, want)
            .await
            .unwrap();
        match r {
            Reserved::Done => return free_used,
            Reserved::Short { free_left: left } => free_left = left,
            Reserved::Retry { .. } => panic!("{reference} was not reserved before"),
        }
    }
    panic!("{reference}: no reservation after 64 tries");
}

pub fn free_items_across_months_and_concurrent_purges(t: &Target) {
    let rt = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(4)
        .enable_all()
        .build()
        .unwrap();
    // The last second of November and the first of December, UTC.
    let (nov, dec) = (month_of(1_796_083_199), month_of(1_796_083_200));
    assert_eq!((nov.as_str(), dec.as_str()), ("2026-11", "2026-12"));

    let mut s = load(t, &rt);
    assert_eq!(s.free_left(TARGET, &nov, FREE), FREE, "nothing used yet");
    let r = rt.block_on(s.reserve(TARGET, &nov, "sg-a", FREE, FREE, 600, 600));
    assert_eq!(r.unwrap(), Reserved::Done);
    assert_eq!(s.free_left(TARGET, &nov, FREE), 400);
    // A purge planned with 1,000 free items while only 400 are left is refused, nothing counted.
    let mut other = load(t, &rt);
    let r = rt.block_on(other.reserve(TARGET, &nov, "sg-b", FREE, FREE, 500, 500));
    assert_eq!(r.unwrap(), Reserved::Short { free_left: 400 });
    assert_eq!(other.free_left(TARGET, &nov, FREE), 400);
    // The same purge again (a retry after a lost answer): planned with the same free items, once.
    let r = rt.block_on(other.reserve(TARGET, &nov, "sg-a", FREE, 400, 400, 600));
    assert_eq!(r.unwrap(), Reserved::Retry { free_left: FREE });
    assert_eq!(other.free_left(TARGET, &nov, FREE), 400);
    // Past the free tier: counted, the free items left stay at 0.
    let r = rt.block_on(other.reserve(TARGET, &nov, "sg-c", FREE, 400, 400, 900));
    assert_eq!(r.unwrap(), Reserved::Done);
    assert_eq!(other.free_left(TARGET, &nov, FREE), 0);
    assert_eq!(other.purged.usage[TARGET].billed, 1500);
    // Another target has its own month.
    assert_eq!(other.free_left("cloudfront:E456", &nov, FREE), FREE);
    // December starts at zero, and November's reservations are gone with it.
    assert_eq!(other.free_left(TARGET, &dec, FREE), FREE);
    let r = rt.block_on(other.reserve(TARGET, &dec, "sg-a", FREE, FREE, 10, 10));
    assert_eq!(r.unwrap(), Reserved::Done, "a reference of last month");
    assert_eq!(other.free_left(TARGET, &dec, FREE), 990);
    // What the store holds, read afresh.
    let fresh = load(t, &rt);
    assert_eq!(fresh.purged.usage[TARGET].month, "2026-12");
    assert_eq!(fresh.purged.usage[TARGET].billed, 10);

    // Eight purges at once, each from its own state (as separate processes are), each of 300 items
    // in January: every item is counted, and the 1,000 free ones are spent once.
    let jan = month_of(1_796_083_200 + 31 * 86_400);
    let free_used = Arc::new(AtomicU64::new(0));
    let tasks: Vec<_> = (0..8)
        .map(|i| {
            let mut state = load(t, &rt);
            let (jan, free_used) = (jan.clone(), free_used.clone());
            rt.spawn(async move {
                let used = purge(&mut state, &jan, &format!("sg-{i}"), 300).await;
                free_used.fetch_add(used, Ordering::SeqCst);
            })
        })
        .collect();
    for task in tasks {
        rt.block_on(task).unwrap();
    }
    let fresh = load(t, &rt);
    assert_eq!(fresh.purged.usage[TARGET].billed, 8 * 300, "no count lost");
    assert_eq!(
        free_used.load(Ordering::SeqCst),
        FREE,
        "the free items, spent once each"
    );
    assert_eq!(fresh.purged.usage[TARGET].purges.len(), 8);
}
