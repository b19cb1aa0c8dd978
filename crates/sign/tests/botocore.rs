//! The signer held to botocore's `CloudFrontSigner` (with an `rsa_signer` on the `cryptography`
//! package: PKCS#1 v1.5 + SHA-1), run by the test venv's Python (`$STALEGUARD_VENV`, default
//! `~/.cache/staleguard/venv`; made by `scripts/pyenv.sh`): the same key, resource and times give the
//! same URLs and cookie values, byte for byte, canned and custom; `cryptography` verifies what we
//! sign; our verifier takes botocore's URLs and refuses them tampered with or expired.
//!
//! The key is a throwaway made for these tests (`tests/fixtures/test-only-*`); it signs nothing real.

use std::collections::BTreeMap;
use std::io::Write;
use std::path::PathBuf;
use std::process::{Command, Stdio};

use serde_json::{Value, json};
use staleguard_sign::{
    Check, Cidr, HashAlgorithm, Policy, PrivateKey, PublicKey, Rejection, SignError, Signer,
    verify_url,
};

const KEY_PAIR_ID: &str = "K2JCJMDEHXQW5F";
const EXPIRES: i64 = 1_798_761_599; // 2026-12-31T23:59:59Z
const STARTS: i64 = 1_798_675_200; // 2026-12-31T00:00:00Z
const NOW: i64 = 1_798_700_000;

fn fixture(name: &str) -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR"))
        .join("tests/fixtures")
        .join(name)
}

fn signer(key_file: &str) -> Signer {
    Signer::new(
        KEY_PAIR_ID,
        PrivateKey::from_file(fixture(key_file)).unwrap(),
    )
    .unwrap()
}

fn public_key() -> PublicKey {
    PublicKey::from_file(fixture("test-only-rsa2048.pub.pem")).unwrap()
}

/// The test venv's Python; a missing venv fails the test with how to make it (never a skip).
fn python() -> PathBuf {
    let venv = std::env::var_os("STALEGUARD_VENV")
        .map(PathBuf::from)
        .unwrap_or_else(|| {
            PathBuf::from(std::env::var_os("HOME").unwrap_or_default())
                .join(".cache/staleguard/venv")
        });
    let bin = venv.join("bin/python");
    assert!(
        bin.is_file(),
        "no Python in the test venv `{}`: make it with `source scripts/pyenv.sh && ensure_venv` (botocore comes with awscli, cryptography with moto), or point STALEGUARD_VENV at one",
        venv.display()
    );
    bin
}

/// What every script starts with: botocore's signer on the `cryptography` package, and `when(t)`.
const PRELUDE: &str = r#"
import base64, datetime, json, sys
try:
    from botocore.signers import CloudFrontSigner
    from cryptography.exceptions import InvalidSignature
    from cryptography.hazmat.primitives import hashes, serialization
    from cryptography.hazmat.primitives.asymmetric import padding
except ImportError as e:
    sys.exit(f"the test venv lacks a package: {e}; run `source scripts/pyenv.sh && ensure_venv`")

inp = json.load(sys.stdin)
with open(inp["key"], "rb") as f:
    key = serialization.load_pem_private_key(f.read(), password=None)

def rsa_signer(message):
    return key.sign(message, padding.PKCS1v15(), hashes.SHA1())

signer = CloudFrontSigner(inp["key_pair_id"], rsa_signer)

def when(t):
    return None if t is None else datetime.datetime.fromtimestamp(t, tz=datetime.timezone.utc)
"#;

/// Runs `PRELUDE + script` with `input` on stdin; the JSON it prints.
fn run_python(script: &str, input: &Value) -> Value {
    let mut child = Command::new(python())
        .arg("-c")
        .arg(format!("{PRELUDE}\n{script}"))
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("start the venv's python");
    child
        .stdin
        .take()
        .unwrap()
        .write_all(input.to_string().as_bytes())
        .unwrap();
    let out = child.wait_with_output().unwrap();
    assert!(
        out.status.success(),
        "python failed ({}):\n{}",
        out.status,
        String::from_utf8_lossy(&out.stderr)
    );
    serde_json::from_slice(&out.stdout).unwrap_or_else(|e| {
        panic!(
            "python printed no JSON ({e}):\n{}",
            String::from_utf8_lossy(&out.stdout)
        )
    })
}

/// One signing case: canned when `resource`, `starts` and `ip` are all `None`.
struct Case {
    name: &'static str,
    url: &'static str,
    resource: Option<&'static str>,
    starts: Option<i64>,
    ip: Option<&'static str>,
}

impl Case {
    fn canned(&self) -> bool {
        self.resource.is_none() && self.starts.is_none() && self.ip.is_none()
    }

    fn policy(&self) -> Policy {
        if self.canned() {
            return Policy::canned(self.url, EXPIRES);
        }
        let mut p = Policy::custom(self.resource.unwrap_or(self.url), EXPIRES);
        if let Some(s) = self.starts {
            p = p.with_starts(s);
        }
        if let Some(ip) = self.ip {
            p = p.with_ip(Cidr::parse(ip).unwrap());
        }
        p
    }

    fn json(&self) -> Value {
        json!({
            "name": self.name,
            "url": self.url,
            "canned": self.canned(),
            "resource": self.resource.unwrap_or(self.url),
            "expires": EXPIRES,
            "starts": self.starts,
            "ip": self.ip,
        })
    }
}

const IMAGE: &str = "https://media.example.com/u/42/avatar.jpg";

fn cases() -> Vec<Case> {
    let case = |name, url, resource, starts, ip| Case {
        name,
        url,
        resource,
        starts,
        ip,
    };
    vec![
        case("canned", IMAGE, None, None, None),
        case(
            "canned with a query",
            "https://media.example.com/u/42/avatar.jpg?size=large&v=2",
            None,
            None,
            None,
        ),
        // botocore appends `&` after any `?`, even a trailing one.
        case(
            "canned, trailing ?",
            "https://media.example.com/u/42/avatar.jpg?",
            None,
            None,
            None,
        ),
        case(
            "custom: wildcard, start, range",
            IMAGE,
            Some("https://media.example.com/u/42/*"),
            Some(STARTS),
            Some("192.0.2.0/24"),
        ),
        case(
            "custom: one address",
            IMAGE,
            Some("https://media.example.com/u/42/*"),
            None,
            Some("192.0.2.7"),
        ),
        case("custom: start only", IMAGE, None, Some(STARTS), None),
        case(
            "custom: wildcard only",
            "https://media.example.com/u/42/avatar.jpg?size=large",
            Some("http*://media.example.com/u/42/avatar.jp?*"),
            None,
            None,
        ),
        case(
            "custom: escapes",
            "https://media.example.com/u/42/\u{e9}t\u{e9} \"q\"\\/\u{1f600}.jpg",
            Some("https://media.example.com/u/42/\u{e9}t\u{e9} \"q\"\\/\u{1f600}*"),
            None,
            None,
        ),
        case(
            "custom: IPv6 range",
            IMAGE,
            None,
            None,
            Some("2001:db8::/32"),
        ),
    ]
}

const SIGN_URLS: &str = r#"
out = {}
for c in inp["cases"]:
    if c["canned"]:
        policy = signer.build_policy(c["url"], when(c["expires"]))
        url = signer.generate_presigned_url(c["url"], date_less_than=when(c["expires"]))
    else:
        policy = signer.build_policy(
            c["resource"], when(c["expires"]),
            date_greater_than=when(c["starts"]), ip_address=c["ip"])
        url = signer.generate_presigned_url(c["url"], policy=policy)
    out[c["name"]] = {"url": url, "policy": policy}
print(json.dumps(out))
"#;

#[test]
fn signed_urls_are_byte_identical_to_botocores() {
    let cases = cases();
    let want = run_python(
        SIGN_URLS,
        &json!({
            "key": fixture("test-only-rsa2048.pkcs1.pem"),
            "key_pair_id": KEY_PAIR_ID,
            "cases": cases.iter().map(Case::json).collect::<Vec<_>>(),
        }),
    );
    // The PKCS#1 and PKCS#8 files hold the same key: both must give botocore's bytes.
    for key_file in ["test-only-rsa2048.pkcs1.pem", "test-only-rsa2048.pkcs8.pem"] {
        let s = signer(key_file);
        for c in &cases {
            let policy = c.policy();
            let got = s.sign_url(c.url, &policy).unwrap();
            assert_eq!(
                got.policy_json, want[c.name]["policy"],
                "{}: policy JSON",
                c.name
            );
            assert_eq!(got.url, want[c.name]["url"], "{}: URL ({key_file})", c.name);
        }
    }
    // Shapes, so a botocore that changed the same way as we did would still be caught.
    let canned = &want["canned"]["url"];
    assert!(
        canned
            .as_str()
            .unwrap()
            .starts_with(&format!("{IMAGE}?Expires={EXPIRES}&Signature="))
    );
    assert!(
        want["canned, trailing ?"]["url"]
            .as_str()
            .unwrap()
            .starts_with(&format!("{IMAGE}?&Expires={EXPIRES}&"))
    );
    assert_eq!(
        want["custom: wildcard, start, range"]["policy"],
        format!(
            r#"{{"Statement":[{{"Resource":"https://media.example.com/u/42/*","Condition":{{"DateLessThan":{{"AWS:EpochTime":{EXPIRES}}},"IpAddress":{{"AWS:SourceIp":"192.0.2.0/24"}},"DateGreaterThan":{{"AWS:EpochTime":{STARTS}}}}}}}]}}"#
        )
    );
}

/// botocore appends `/32` to any address without a prefix, IPv6 too, which opens a /32 network
/// (2⁹⁶ addresses). We write `/128`; the day botocore does the same, this test says so.
#[test]
fn a_bare_ipv6_address_is_one_address_here_and_a_network_in_botocore() {
    let c = Case {
        name: "v6",
        url: IMAGE,
        resource: None,
        starts: None,
        ip: Some("2001:db8::7"),
    };
    let want = run_python(
        SIGN_URLS,
        &json!({
            "key": fixture("test-only-rsa2048.pkcs1.pem"),
            "key_pair_id": KEY_PAIR_ID,
            "cases": [c.json()],
        }),
    );
    let botocore = want["v6"]["policy"].as_str().unwrap();
    assert!(
        botocore.contains(r#""AWS:SourceIp":"2001:db8::7/32""#),
        "{botocore}"
    );
    let ours = c.policy().to_json();
    assert_eq!(ours, botocore.replace("2001:db8::7/32", "2001:db8::7/128"));
}

const SIGN_COOKIES: &str = r#"
b64 = lambda data: signer._url_b64encode(data).decode("utf8")
out = {}
for c in inp["cases"]:
    if c["canned"]:
        policy = signer.build_policy(c["url"], when(c["expires"]))
        first = {"CloudFront-Expires": str(int(c["expires"]))}
    else:
        policy = signer.build_policy(
            c["resource"], when(c["expires"]),
            date_greater_than=when(c["starts"]), ip_address=c["ip"])
        first = {"CloudFront-Policy": b64(policy.encode("utf8"))}
    first["CloudFront-Signature"] = b64(rsa_signer(policy.encode("utf8")))
    first["CloudFront-Key-Pair-Id"] = inp["key_pair_id"]
    out[c["name"]] = first
print(json.dumps(out))
"#;

#[test]
fn signed_cookie_values_are_byte_identical_to_botocores() {
    let cases = cases();
    let want = run_python(
        SIGN_COOKIES,
        &json!({
            "key": fixture("test-only-rsa2048.pkcs8.pem"),
            "key_pair_id": KEY_PAIR_ID,
            "cases": cases.iter().map(Case::json).collect::<Vec<_>>(),
        }),
    );
    let s = signer("test-only-rsa2048.pkcs1.pem");
    for c in &cases {
        let signed = s.sign_cookies(&c.policy()).unwrap();
        let got: BTreeMap<&str, &str> = signed
            .cookies
            .iter()
            .map(|k| (k.name, k.value.as_str()))
            .collect();
        let got = serde_json::to_value(&got).unwrap();
        assert_eq!(got, want[c.name], "{}", c.name);
    }
    assert_eq!(
        want["canned"]["CloudFront-Expires"].as_str(),
        Some(EXPIRES.to_string().as_str())
    );
    assert!(want["custom: start only"]["CloudFront-Policy"].is_string());
}

const VERIFY: &str = r#"
public = key.public_key()
out = []
for v in inp["signatures"]:
    sig = base64.b64decode(v["signature"].replace("-", "+").replace("_", "=").replace("~", "/"))
    h = {"SHA1": hashes.SHA1(), "SHA256": hashes.SHA256()}[v["hash"]]
    try:
        public.verify(sig, v["message"].encode("utf8"), padding.PKCS1v15(), h)
        out.append(True)
    except InvalidSignature:
        out.append(False)
print(json.dumps(out))
"#;

#[test]
fn cryptography_verifies_our_signatures_and_refuses_altered_ones() {
    let mut signatures = Vec::new();
    let mut expected = Vec::new();
    for hash in [HashAlgorithm::Sha1, HashAlgorithm::Sha256] {
        let s = signer("test-only-rsa2048.pkcs8.pem").with_hash(hash);
        for c in cases() {
            let signed = s.sign_url(c.url, &c.policy()).unwrap();
            let sig = signed
                .url
                .split("Signature=")
                .nth(1)
                .unwrap()
                .split('&')
                .next()
                .unwrap()
                .to_string();
            signatures.push(
                json!({"message": signed.policy_json, "signature": sig, "hash": hash.as_str()}),
            );
            expected.push(true);
            // The same signature over a statement with one character changed.
            let altered = signed.policy_json.replacen("/42/", "/43/", 1);
            assert_ne!(altered, signed.policy_json);
            signatures.push(json!({"message": altered, "signature": sig, "hash": hash.as_str()}));
            expected.push(false);
        }
    }
    let got = run_python(
        VERIFY,
        &json!({
            "key": fixture("test-only-rsa2048.pkcs1.pem"),
            "key_pair_id": KEY_PAIR_ID,
            "signatures": signatures,
        }),
    );
    assert_eq!(got, json!(expected));
}

fn rejection(r: Result<staleguard_sign::Verified, SignError>) -> Rejection {
    match r {
        Err(SignError::Rejected(r)) => r,
        other => panic!("not rejected: {other:?}"),
    }
}

#[test]
fn botocores_urls_pass_our_verifier_and_tampered_or_expired_ones_do_not() {
    let cases = cases();
    let want = run_python(
        SIGN_URLS,
        &json!({
            "key": fixture("test-only-rsa2048.pkcs1.pem"),
            "key_pair_id": KEY_PAIR_ID,
            "cases": cases.iter().map(Case::json).collect::<Vec<_>>(),
        }),
    );
    let key = public_key();
    let at = |now: i64| {
        Check::at(now)
            .with_key_pair_id(KEY_PAIR_ID)
            .with_client_ip("192.0.2.7".parse().unwrap())
    };
    for c in &cases {
        let url = want[c.name]["url"].as_str().unwrap();
        if c.ip == Some("2001:db8::/32") {
            let v6 = Check::at(NOW).with_client_ip("2001:db8::1".parse().unwrap());
            assert!(verify_url(&key, url, &v6).is_ok(), "{}", c.name);
            continue;
        }
        let check = at(NOW);
        let v = verify_url(&key, url, &check).unwrap_or_else(|e| panic!("{}: {e}", c.name));
        assert_eq!(v.canned, c.canned(), "{}", c.name);
        assert_eq!(v.expires, EXPIRES);
        // Expired: at the expiry and after.
        assert_eq!(
            rejection(verify_url(&key, url, &at(EXPIRES))),
            Rejection::Expired {
                expires: EXPIRES,
                now: EXPIRES
            },
            "{}",
            c.name
        );
        // A policy character changed: the signature no longer matches.
        let tampered_policy = if c.canned() {
            url.replace(
                &format!("Expires={EXPIRES}"),
                &format!("Expires={}", EXPIRES + 1),
            )
        } else {
            let p = url
                .split("Policy=")
                .nth(1)
                .unwrap()
                .split('&')
                .next()
                .unwrap();
            let mut chars: Vec<char> = p.chars().collect();
            chars[40] = if chars[40] == 'A' { 'B' } else { 'A' };
            url.replace(p, &chars.into_iter().collect::<String>())
        };
        assert!(
            matches!(
                rejection(verify_url(&key, &tampered_policy, &check)),
                Rejection::Signature | Rejection::Malformed { .. }
            ),
            "{}: {tampered_policy}",
            c.name
        );
        // One character of the path changed: a canned signature breaks, a custom resource no longer
        // matches (each of these wildcards covers only user 42's folder).
        let tampered_path = url.replacen("/u/42/", "/u/43/", 1);
        let r = rejection(verify_url(&key, &tampered_path, &check));
        if c.canned() {
            assert_eq!(r, Rejection::Signature, "{}", c.name);
        } else {
            assert!(matches!(r, Rejection::Resource { .. }), "{}: {r:?}", c.name);
        }
    }
    // The start time and the address range of the custom case hold.
    let ranged = want["custom: wildcard, start, range"]["url"]
        .as_str()
        .unwrap();
    assert_eq!(
        rejection(verify_url(&key, ranged, &at(STARTS - 1))),
        Rejection::NotYetValid {
            starts: STARTS,
            now: STARTS - 1
        }
    );
    let outside = Check::at(NOW).with_client_ip("198.51.100.1".parse().unwrap());
    assert!(matches!(
        rejection(verify_url(&key, ranged, &outside)),
        Rejection::ClientIpNotAllowed { .. }
    ));
}
