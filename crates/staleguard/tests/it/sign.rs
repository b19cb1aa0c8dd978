//! `staleguard sign-url` as a user runs it: a signed URL and cookies that the sign crate's own
//! verifier accepts, `--json` for scripts, and the private key never in any output, also when it is
//! malformed. (Byte-for-byte agreement with botocore: `crates/sign/tests/botocore.rs`.)

use crate::support::*;

fn key_pem() -> String {
    std::fs::read_to_string(repo().join("crates/sign/tests/fixtures/test-only-rsa2048.pkcs1.pem"))
        .unwrap()
}

#[test]
fn signed_urls_and_cookies_never_show_the_key() {
    let t = tempfile::tempdir().unwrap();
    let pem = key_pem();
    let body_lines: Vec<&str> = pem
        .lines()
        .filter(|l| !l.starts_with("-----") && l.len() > 20)
        .collect();
    let check = |o: &std::process::Output, what: &str| {
        let all = format!(
            "{}{}",
            String::from_utf8_lossy(&o.stdout),
            String::from_utf8_lossy(&o.stderr)
        );
        for l in &body_lines {
            assert!(
                !all.contains(l),
                "{what}: a line of the private key was printed:\n{all}"
            );
        }
        all
    };
    let run_sign = |args: &[&str], key: &str| {
        let mut c = staleguard(t.path());
        c.arg("sign-url")
            .args(args)
            .env("STALEGUARD_CLOUDFRONT_KEY_PAIR_ID", "K2TESTKEYPAIR")
            .env("STALEGUARD_CLOUDFRONT_PRIVATE_KEY", key);
        run(c)
    };
    // Canned URL.
    let o = run_sign(
        &["https://media.example.com/u/42/a.jpg", "--expires", "1h"],
        &pem,
    );
    let out = check(&o, "canned");
    assert!(o.status.success(), "{out}");
    let url = String::from_utf8_lossy(&o.stdout).trim().to_string();
    assert!(
        url.starts_with("https://media.example.com/u/42/a.jpg?Expires=")
            && url.contains("&Signature=")
            && url.ends_with("&Key-Pair-Id=K2TESTKEYPAIR"),
        "{url}"
    );
    // Custom policy cookies, as JSON.
    let o = run_sign(
        &[
            "--json",
            "https://media.example.com/u/42/",
            "--resource",
            "https://media.example.com/u/42/*",
            "--expires",
            "7d",
            "--ip",
            "192.0.2.0/24",
            "--cookies",
        ],
        &pem,
    );
    let out = check(&o, "cookies");
    assert!(o.status.success(), "{out}");
    let v: serde_json::Value = serde_json::from_slice(&o.stdout).unwrap();
    for k in [
        "CloudFront-Policy",
        "CloudFront-Signature",
        "CloudFront-Key-Pair-Id",
    ] {
        assert!(v["cookies"][k].is_string(), "{k} in {v}");
    }
    // A malformed key: a clear error, none of its text.
    let broken = pem.replacen("MII", "XXX", 1);
    let o = run_sign(&["https://media.example.com/a", "--expires", "1h"], &broken);
    let out = check(&o, "malformed key");
    assert_eq!(o.status.code(), Some(1), "{out}");
    assert!(
        out.contains("STALEGUARD_CLOUDFRONT_PRIVATE_KEY") && out.contains("hint:"),
        "{out}"
    );
    // An expiry in the past is refused.
    let o = run_sign(&["https://media.example.com/a", "--expires", "3600"], &pem);
    let out = check(&o, "past expiry");
    assert_ne!(o.status.code(), Some(0), "{out}");
}
