//! The moto peer itself (`staleguard_testkit::moto`, the server every S3 and CloudFront test here
//! talks to): it starts on a loopback port, speaks S3 as the deploy tests expect, runs beside a second
//! instance, and leaves no process or state dir behind when dropped.

use staleguard_testkit::moto::Moto;

use crate::support::*;

/// Running, not exited: a zombie waiting for PID 1 to reap it counts as gone.
fn running(pid: u32) -> bool {
    match std::fs::read_to_string(format!("/proc/{pid}/stat")) {
        Ok(stat) => {
            let state = stat.rsplit_once(") ").map(|(_, rest)| rest.chars().next());
            !matches!(state, Some(Some('Z' | 'X')))
        }
        Err(_) => false,
    }
}

#[test]
fn moto_peer_round_trip() {
    let moto = Moto::start();
    assert!(moto.url.starts_with("http://127.0.0.1:"), "{}", moto.url);
    assert!(
        running(moto.pid),
        "moto_server pid {} not running",
        moto.pid
    );
    let state = moto.state().to_path_buf();
    assert!(state.is_dir());

    moto.create_bucket("site");
    let buckets = moto.aws_json(&["s3api", "list-buckets"]);
    assert_eq!(buckets["Buckets"][0]["Name"], "site", "{buckets}");

    let t = tempfile::tempdir().unwrap();
    let body = t.path().join("site.css");
    std::fs::write(&body, "body { color: red }\n").unwrap();
    let cache_control = "public, max-age=31536000, immutable";
    let content_type = "text/css; charset=utf-8";
    let put = moto.aws_json(&[
        "s3api",
        "put-object",
        "--bucket",
        "site",
        "--key",
        "css/site.3f2a1b4c.css",
        "--body",
        body.to_str().unwrap(),
        "--cache-control",
        cache_control,
        "--content-type",
        content_type,
    ]);
    // moto, like S3, answers a single-part upload with ETag = MD5 of the body.
    assert_eq!(put["ETag"], "\"5217c451387ecae56cb932c4c7942b22\"", "{put}");

    let head = moto.aws_json(&[
        "s3api",
        "head-object",
        "--bucket",
        "site",
        "--key",
        "css/site.3f2a1b4c.css",
    ]);
    assert_eq!(head["CacheControl"], cache_control, "{head}");
    assert_eq!(head["ContentType"], content_type, "{head}");
    assert_eq!(head["ContentLength"], 20, "{head}");
    assert_eq!(head["ETag"], put["ETag"], "{head}");

    // A missing key is an error, not an empty answer.
    let o = moto.aws(&[
        "s3api",
        "head-object",
        "--bucket",
        "site",
        "--key",
        "nope.css",
    ]);
    assert!(!o.status.success());
    assert!(stderr(&o).contains("404"), "{}", stderr(&o));

    // Two servers at once are independent.
    let other = Moto::start();
    assert_ne!(other.url, moto.url);
    let buckets = other.aws_json(&["s3api", "list-buckets"]);
    assert_eq!(buckets["Buckets"], serde_json::json!([]), "{buckets}");
    drop(other);

    let pid = moto.pid;
    drop(moto);
    assert!(!running(pid), "moto_server pid {pid} still runs after drop");
    assert!(!state.exists(), "state dir {} left behind", state.display());
}
