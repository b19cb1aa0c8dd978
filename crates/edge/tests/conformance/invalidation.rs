//! The purge API of `scripts/peers/staleguard.vcl`, from an allowed (loopback) address: `PURGE`
//! of a URL, `BAN` with `x-ban-url`, `PURGE` with `xkey-purge` (drops the tagged objects) and with
//! `xkey-softpurge` (expires them: served stale only as their grace / `stale-while-revalidate`
//! allows, and refetched). Tags come from the origin's `xkey` response header.

use std::time::{Duration, Instant};

use crate::origin::Reply;
use crate::{Kind, Rig, after_expiry};

/// Fetches each path once (storing it) and checks the origin saw each once.
fn warm(rig: &Rig, paths: &[&str]) {
    for path in paths {
        assert_eq!(rig.get(path).status, 200, "{path}");
        assert_eq!(rig.get(path).x_cache(), "HIT", "{path} not stored");
        assert_eq!(rig.origin.count(path), 1, "{path}");
    }
}

/// Asserts each path is answered with its current body, and how many times the origin saw it.
fn expect(rig: &Rig, paths: &[&str], count: usize, why: &str) {
    for path in paths {
        let got = rig.get(path);
        assert_eq!(got.status, 200, "{path}");
        assert_eq!(rig.origin.count(path), count, "{path}: {why}");
    }
}

/// `PURGE /p` answers 200 and the next request refetches.
pub fn purge(kind: &Kind) {
    let rig = Rig::start(kind);
    rig.origin.set("/p", Reply::ok("p-1").cc("max-age=60"));
    rig.origin.set("/q", Reply::ok("q").cc("max-age=60"));
    warm(&rig, &["/p", "/q"]);

    rig.origin.set("/p", Reply::ok("p-2").cc("max-age=60"));
    let purged = rig.client.send("PURGE", "/p", &[]);
    assert_eq!(purged.status, 200, "PURGE /p: {}", purged.body);

    let got = rig.get("/p");
    assert_eq!((got.status, got.body.as_str()), (200, "p-2"));
    assert_eq!(
        rig.origin.count("/p"),
        2,
        "the purged URL was not refetched"
    );
    assert_eq!(rig.get("/p").x_cache(), "HIT");
    expect(&rig, &["/q"], 1, "another URL was purged");
}

/// `BAN` with `x-ban-url: ^/prefix/` drops the URLs matching the regex, keeps the others.
pub fn ban(kind: &Kind) {
    let rig = Rig::start(kind);
    let (banned, kept) = (["/prefix/a", "/prefix/b?x=1"], ["/other", "/x/prefix/c"]);
    for path in banned.iter().chain(&kept) {
        rig.origin.set(path, Reply::ok(path).cc("max-age=60"));
    }
    warm(&rig, &banned);
    warm(&rig, &kept);

    let ban = rig.client.send("BAN", "/", &[("x-ban-url", "^/prefix/")]);
    assert_eq!(ban.status, 200, "BAN: {}", ban.body);

    expect(&rig, &banned, 2, "a banned URL was not refetched");
    expect(&rig, &kept, 1, "a URL the ban does not match was dropped");
}

/// `PURGE /` with `xkey-purge: KEY` drops every object tagged `KEY` (of the space-separated tags of
/// its `xkey` header), and only those.
pub fn xkey_purge(kind: &Kind) {
    let rig = Rig::start(kind);
    let tagged = |body: &str, keys: &str| Reply::ok(body).cc("max-age=60").header("xkey", keys);
    rig.origin.set("/k/a", tagged("a", "t1 shared"));
    rig.origin.set("/k/b", tagged("b", "t2 shared"));
    rig.origin.set("/k/c", Reply::ok("c").cc("max-age=60"));
    warm(&rig, &["/k/a", "/k/b", "/k/c"]);

    let purged = rig.client.send("PURGE", "/", &[("xkey-purge", "t1")]);
    assert_eq!(purged.status, 200, "xkey-purge t1: {}", purged.body);
    expect(&rig, &["/k/a"], 2, "tagged t1, not refetched");
    expect(&rig, &["/k/b", "/k/c"], 1, "not tagged t1, dropped");

    let purged = rig
        .client
        .send("PURGE", "/", &[("xkey-purge", "nothing shared")]);
    assert_eq!(purged.status, 200, "xkey-purge shared: {}", purged.body);
    expect(&rig, &["/k/a"], 3, "tagged shared, not refetched");
    expect(&rig, &["/k/b"], 2, "tagged shared, not refetched");
    expect(&rig, &["/k/c"], 1, "untagged, dropped");
}

/// `PURGE /` with `xkey-softpurge: KEY` expires the tagged objects without dropping them: one with
/// `stale-while-revalidate` is served stale once and refreshed in the background (both nodes); one
/// without is refetched before answering by the edge (the soft purge marks it stale, nothing allows
/// serving it stale) and, by Varnish, served once more from its default grace (`after_expiry`).
/// Untagged objects stay.
pub fn xkey_softpurge(kind: &Kind) {
    let rig = Rig::start(kind);
    let swr = "max-age=60, stale-while-revalidate=30";
    let tagged = |body: &str, cc: &str, keys: &str| Reply::ok(body).cc(cc).header("xkey", keys);
    rig.origin.set("/s/swr", tagged("swr-1", swr, "soft"));
    rig.origin
        .set("/s/plain", tagged("plain-1", "max-age=60", "soft"));
    rig.origin
        .set("/s/other", tagged("other", "max-age=60", "other"));
    warm(&rig, &["/s/swr", "/s/plain", "/s/other"]);

    rig.origin.set("/s/swr", tagged("swr-2", swr, "soft"));
    rig.origin
        .set("/s/plain", tagged("plain-2", "max-age=60", "soft"));
    let purged = rig.client.send("PURGE", "/", &[("xkey-softpurge", "soft")]);
    assert_eq!(purged.status, 200, "xkey-softpurge: {}", purged.body);

    let stale = rig.get("/s/swr");
    assert_eq!((stale.status, stale.body.as_str()), (200, "swr-1"));
    rig.origin
        .wait_answered("/s/swr", 1, Duration::from_secs(3));
    let deadline = Instant::now() + Duration::from_secs(3);
    loop {
        let got = rig.get("/s/swr");
        if got.body == "swr-2" {
            break;
        }
        assert_eq!(got.body, "swr-1");
        assert!(
            Instant::now() < deadline,
            "the soft-purged object was never refreshed"
        );
        std::thread::sleep(Duration::from_millis(100));
    }
    assert_eq!(rig.origin.count("/s/swr"), 2);

    let plain = after_expiry(kind, &rig, "/s/plain", "plain-1");
    assert_eq!((plain.status, plain.body.as_str()), (200, "plain-2"));
    assert_eq!(rig.origin.count("/s/plain"), 2);

    expect(
        &rig,
        &["/s/other"],
        1,
        "an object not tagged soft was refetched",
    );
}
