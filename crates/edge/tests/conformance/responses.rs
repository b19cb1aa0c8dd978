//! Other stored responses: a `HEAD` answered from the stored `GET`, a 404 with a lifetime cached
//! (RFC 9111 §3: any status with explicit freshness may be stored; 404 is heuristically cacheable
//! too).

use crate::origin::Reply;
use crate::{Kind, Rig};

/// `HEAD` after a `GET` is answered from the cache: 200, the stored headers, no body.
pub fn head_after_get(kind: &Kind) {
    let rig = Rig::start(kind);
    let body = "the head body";
    rig.origin.set(
        "/h",
        Reply::ok(body).cc("max-age=60").header("etag", "\"h1\""),
    );

    let get = rig.get("/h");
    assert_eq!((get.status, get.body.as_str()), (200, body));
    let head = rig.client.send("HEAD", "/h", &[]);
    assert_eq!((head.status, head.body.as_str()), (200, ""));
    assert_eq!(head.header("etag"), Some("\"h1\""));
    assert_eq!(
        head.header("content-length"),
        Some(body.len().to_string().as_str()),
        "HEAD's Content-Length is the GET's"
    );
    assert_eq!(head.x_cache(), "HIT");
    assert_eq!(rig.origin.count("/h"), 1, "HEAD reached the origin");
}

/// A 404 with `max-age=60` is stored: the second request is a hit with the same status and body.
pub fn not_found_cached(kind: &Kind) {
    let rig = Rig::start(kind);
    rig.origin
        .set("/gone", Reply::new(404, "not here").cc("max-age=60"));

    for n in 0..3 {
        let got = rig.get("/gone");
        assert_eq!(
            (got.status, got.body.as_str()),
            (404, "not here"),
            "request {n}"
        );
        if n > 0 {
            assert_eq!(got.x_cache(), "HIT", "request {n}");
        }
    }
    assert_eq!(rig.origin.count("/gone"), 1, "the 404 was not stored");
}
