//! Revalidation (RFC 9111 §4.3): a stored response past its freshness goes back to the origin as a
//! conditional request with its validators; a 304 refreshes it and the client still gets the
//! stored 200 with its body; a changed representation replaces it.

use std::time::{Duration, Instant, SystemTime};

use crate::origin::Reply;
use crate::{Kind, Rig, after_expiry, sleep_until};

/// `no-cache` + `ETag`: every use is validated with `If-None-Match`; a 304 serves the stored body, a
/// new `ETag` the new body.
pub fn etag(kind: &Kind) {
    let rig = Rig::start(kind);
    let reply = |body: &str, etag: &str| Reply::ok(body).cc("no-cache").header("etag", etag);
    rig.origin.set("/n", reply("body-1", "\"e1\""));

    let first = rig.get("/n");
    assert_eq!((first.status, first.body.as_str()), (200, "body-1"));
    assert_eq!(rig.origin.request("/n", 0).header("if-none-match"), None);

    let second = rig.get("/n");
    assert_eq!((second.status, second.body.as_str()), (200, "body-1"));
    assert_eq!(
        rig.origin.count("/n"),
        2,
        "no-cache served without the origin"
    );
    let seen = rig.origin.request("/n", 1);
    if kind.name == "varnish" {
        // Varnish's builtin vcl_backend_response (which the VCL falls through to) makes a
        // `Cache-Control: no-cache` response uncacheable (hit-for-miss for 120 s): nothing is
        // stored, so there is nothing to revalidate and every request is a full fetch.
        assert_eq!(seen.header("if-none-match"), None);
        assert_eq!(seen.status, 200);
    } else {
        assert_eq!(
            seen.header("if-none-match"),
            Some("\"e1\""),
            "not revalidated"
        );
        assert_eq!(seen.status, 304);
        assert_eq!(second.x_cache(), "REVALIDATED");
    }

    rig.origin.set("/n", reply("body-2", "\"e2\""));
    let changed = rig.get("/n");
    assert_eq!((changed.status, changed.body.as_str()), (200, "body-2"));
    assert_eq!(rig.origin.request("/n", 2).status, 200);
    let again = rig.get("/n");
    assert_eq!((again.status, again.body.as_str()), (200, "body-2"));
    assert_eq!(rig.origin.count("/n"), 4);
    if kind.name != "varnish" {
        // Varnish: not stored (above).
        assert_eq!(
            rig.origin.request("/n", 3).header("if-none-match"),
            Some("\"e2\"")
        );
    }
}

/// `max-age=1` + `Last-Modified`: after expiry the origin gets `If-Modified-Since`, answers 304 and
/// the stored body is served; a newer `Last-Modified` brings the new body.
pub fn last_modified(kind: &Kind) {
    let rig = Rig::start(kind);
    let hour_ago = httpdate::fmt_http_date(SystemTime::now() - Duration::from_secs(3600));
    let minute_ago = httpdate::fmt_http_date(SystemTime::now() - Duration::from_secs(60));
    let reply = |body: &str, lm: &str| Reply::ok(body).cc("max-age=1").header("last-modified", lm);
    rig.origin.set("/lm", reply("lm-1", &hour_ago));

    let first = rig.get("/lm");
    let fetched = Instant::now();
    assert_eq!((first.status, first.body.as_str()), (200, "lm-1"));
    assert_eq!(
        rig.origin.request("/lm", 0).header("if-modified-since"),
        None
    );

    sleep_until(fetched, Duration::from_millis(1500));
    // Varnish revalidates in its background fetch from grace (`after_expiry`): same outcome at the
    // origin, one request later for the client.
    let revalidated = after_expiry(kind, &rig, "/lm", "lm-1");
    let refreshed = Instant::now();
    assert_eq!(
        (revalidated.status, revalidated.body.as_str()),
        (200, "lm-1")
    );
    assert_eq!(rig.origin.count("/lm"), 2);
    let seen = rig.origin.request("/lm", 1);
    assert_eq!(seen.header("if-modified-since"), Some(hour_ago.as_str()));
    assert_eq!(seen.status, 304);
    if kind.name != "varnish" {
        // Varnish says HIT for the refreshed object.
        assert_eq!(revalidated.x_cache(), "REVALIDATED");
    }

    rig.origin.set("/lm", reply("lm-2", &minute_ago));
    sleep_until(refreshed, Duration::from_millis(1500));
    let changed = after_expiry(kind, &rig, "/lm", "lm-1");
    assert_eq!((changed.status, changed.body.as_str()), (200, "lm-2"));
    assert_eq!(rig.origin.count("/lm"), 3);
    let seen = rig.origin.request("/lm", 2);
    assert_eq!(seen.header("if-modified-since"), Some(hour_ago.as_str()));
    assert_eq!(seen.status, 200);
}
