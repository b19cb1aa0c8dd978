//! Freshness (RFC 9111 §4.2, §5.2.2): a lifetime from `max-age`, `s-maxage` over `max-age` for a
//! shared cache, `no-store` and `private` never stored.

use std::time::{Duration, Instant};

use crate::origin::Reply;
use crate::{Kind, Rig, after_expiry, sleep_until};

/// `max-age=2`: a miss, then hits with an `Age`, then after expiry a refetch.
pub fn ttl(kind: &Kind) {
    let rig = Rig::start(kind);
    rig.origin.set("/ttl", Reply::ok("ttl-1").cc("max-age=2"));

    let first = rig.get("/ttl");
    let fetched = Instant::now();
    assert_eq!((first.status, first.body.as_str()), (200, "ttl-1"));
    assert_eq!(first.x_cache(), "MISS");
    let hit = rig.get("/ttl");
    assert_eq!((hit.status, hit.body.as_str()), (200, "ttl-1"));
    assert_eq!(hit.x_cache(), "HIT");
    let age: u64 = hit
        .header("age")
        .expect("a hit has an Age")
        .parse()
        .expect("Age is a number");
    assert!(age <= 2, "Age {age} on a 2 s object just fetched");
    assert_eq!(rig.origin.count("/ttl"), 1, "the hit reached the origin");

    rig.origin.set("/ttl", Reply::ok("ttl-2").cc("max-age=2"));
    sleep_until(fetched, Duration::from_millis(2500));
    let after = after_expiry(kind, &rig, "/ttl", "ttl-1");
    assert_eq!((after.status, after.body.as_str()), (200, "ttl-2"));
    assert_eq!(rig.origin.count("/ttl"), 2, "one refetch after expiry");
}

/// `s-maxage` is the shared cache's lifetime, whatever `max-age` says: `max-age=0, s-maxage=60` is
/// stored, `max-age=60, s-maxage=0` goes to the origin every time.
pub fn s_maxage(kind: &Kind) {
    let rig = Rig::start(kind);
    rig.origin
        .set("/shared", Reply::ok("shared").cc("max-age=0, s-maxage=60"));
    rig.origin
        .set("/zero", Reply::ok("zero").cc("max-age=60, s-maxage=0"));

    for _ in 0..3 {
        let got = rig.get("/shared");
        assert_eq!((got.status, got.body.as_str()), (200, "shared"));
    }
    assert_eq!(rig.origin.count("/shared"), 1, "s-maxage=60 not cached");
    assert_eq!(rig.get("/shared").x_cache(), "HIT");

    for _ in 0..3 {
        let got = rig.get("/zero");
        assert_eq!((got.status, got.body.as_str()), (200, "zero"));
    }
    assert_eq!(
        rig.origin.count("/zero"),
        3,
        "s-maxage=0 served from the cache"
    );
}

/// `no-store` and `private` responses (even with a lifetime) reach the origin on every request.
pub fn no_store_and_private(kind: &Kind) {
    let rig = Rig::start(kind);
    rig.origin.set(
        "/no-store",
        Reply::ok("no-store").cc("max-age=60, no-store"),
    );
    rig.origin
        .set("/private", Reply::ok("private").cc("private, max-age=60"));

    for path in ["/no-store", "/private"] {
        for _ in 0..3 {
            let got = rig.get(path);
            assert_eq!((got.status, got.body.as_str()), (200, &path[1..]));
            assert_ne!(got.x_cache(), "HIT", "{path} served from the cache");
        }
        assert_eq!(rig.origin.count(path), 3, "{path} was stored");
    }
}
