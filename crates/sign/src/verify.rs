//! Checking a signed URL or a set of signed cookies as CloudFront does: the key pair id, the signature
//! over the statement (rebuilt from the URL and `Expires` for a canned policy, the `Policy` itself for
//! a custom one), then the statement against the request: `DateLessThan` (valid while now is before
//! it), `DateGreaterThan` (valid from it on), `AWS:SourceIp`, and the `Resource` pattern against the
//! URL without its signing parameters.
//!
//! For the tests, for `staleguard` to check what it hands out, and for a user asking why CloudFront
//! answers 403. Strict where CloudFront's rules are: the signing parameters must be the URL's last.

use std::net::IpAddr;

use crate::cidr::Cidr;
use crate::error::{Rejection, SignError};
use crate::key::{HashAlgorithm, PublicKey};
use crate::policy::Policy;
use crate::{signer, url_base64, wildcard};

/// What a request is checked against: the time, and optionally the client's address and the key pair
/// id the verifier holds the public key of.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Check {
    now: i64,
    client_ip: Option<IpAddr>,
    key_pair_id: Option<String>,
}

impl Check {
    /// A check at `now` (Unix seconds).
    pub fn at(now: i64) -> Check {
        Check {
            now,
            client_ip: None,
            key_pair_id: None,
        }
    }

    /// The client's address, for a policy with `AWS:SourceIp` (without one such a policy is refused).
    pub fn with_client_ip(mut self, ip: IpAddr) -> Check {
        self.client_ip = Some(ip);
        self
    }

    /// Refuse another key pair id than `id`.
    pub fn with_key_pair_id(mut self, id: impl Into<String>) -> Check {
        self.key_pair_id = Some(id.into());
        self
    }
}

/// What a valid signature allows.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Verified {
    /// Canned (`Expires`) rather than custom (`Policy`).
    pub canned: bool,
    /// The `Resource`; `None` for a custom policy without one (any URL of the key group's
    /// distributions).
    pub resource: Option<String>,
    pub expires: i64,
    pub starts: Option<i64>,
    pub ip: Option<Cidr>,
    pub key_pair_id: String,
    pub hash: HashAlgorithm,
}

/// The names of the signing values: query parameters or cookies.
struct Names {
    expires: &'static str,
    policy: &'static str,
    signature: &'static str,
    key_pair_id: &'static str,
    hash: &'static str,
    expires_or_policy: &'static str,
}

const PARAMS: Names = Names {
    expires: "Expires",
    policy: "Policy",
    signature: "Signature",
    key_pair_id: "Key-Pair-Id",
    hash: "Hash-Algorithm",
    expires_or_policy: "Expires` or `Policy",
};

const COOKIES: Names = Names {
    expires: signer::EXPIRES,
    policy: signer::POLICY,
    signature: signer::SIGNATURE,
    key_pair_id: signer::KEY_PAIR_ID,
    hash: signer::HASH_ALGORITHM,
    expires_or_policy: "CloudFront-Expires` or `CloudFront-Policy",
};

/// The signing values found, by role.
#[derive(Default)]
struct Parts<'a> {
    expires: Option<&'a str>,
    policy: Option<&'a str>,
    signature: Option<&'a str>,
    key_pair_id: Option<&'a str>,
    hash: Option<&'a str>,
}

impl<'a> Parts<'a> {
    /// Takes `name=value` if `name` is one of `names`; `Ok(false)` when it is not.
    fn take(&mut self, names: &Names, name: &str, value: &'a str) -> Result<bool, Rejection> {
        let (slot, label) = if name == names.expires {
            (&mut self.expires, names.expires)
        } else if name == names.policy {
            (&mut self.policy, names.policy)
        } else if name == names.signature {
            (&mut self.signature, names.signature)
        } else if name == names.key_pair_id {
            (&mut self.key_pair_id, names.key_pair_id)
        } else if name == names.hash {
            (&mut self.hash, names.hash)
        } else {
            return Ok(false);
        };
        if slot.replace(value).is_some() {
            return Err(Rejection::Duplicate(label));
        }
        Ok(true)
    }
}

/// Checks a signed URL (what botocore's `generate_presigned_url` or [`crate::Signer::sign_url`]
/// returns) as CloudFront would for a request for it at `check`'s time and from its client.
pub fn verify_url(key: &PublicKey, signed_url: &str, check: &Check) -> Result<Verified, SignError> {
    let (base, parts) = split_url(signed_url).map_err(SignError::Rejected)?;
    verify_parts(key, base, &parts, &PARAMS, check).map_err(SignError::Rejected)
}

/// Checks signed cookies (name, value; other cookies are ignored) for a request for `url`.
pub fn verify_cookies(
    key: &PublicKey,
    url: &str,
    cookies: &[(&str, &str)],
    check: &Check,
) -> Result<Verified, SignError> {
    let mut parts = Parts::default();
    for (name, value) in cookies {
        parts
            .take(&COOKIES, name, value)
            .map_err(SignError::Rejected)?;
    }
    verify_parts(key, url, &parts, &COOKIES, check).map_err(SignError::Rejected)
}

/// The URL without its signing parameters (exactly what was signed, botocore's separator undone) and
/// those parameters, which must be the last ones.
fn split_url(url: &str) -> Result<(&str, Parts<'_>), Rejection> {
    let Some(q) = url.find('?') else {
        return Err(Rejection::Missing(PARAMS.signature));
    };
    // Each parameter with the offset of the separator before it.
    let mut params = Vec::new();
    let mut at = q;
    for p in url[q + 1..].split('&') {
        params.push((at, p));
        at += p.len() + 1;
    }
    let name = |p: &str| p.split('=').next().unwrap_or_default().to_string();
    let is_signing = |p: &str| {
        let n = name(p);
        [
            PARAMS.expires,
            PARAMS.policy,
            PARAMS.signature,
            PARAMS.key_pair_id,
            PARAMS.hash,
        ]
        .contains(&n.as_str())
    };
    let first = params
        .iter()
        .rposition(|(_, p)| !is_signing(p))
        .map_or(0, |i| i + 1);
    // A signing parameter before the URL's last own one.
    if params[..first].iter().any(|(_, p)| is_signing(p)) {
        return Err(Rejection::NotLast(name(params[first - 1].1)));
    }
    if first == params.len() {
        return Err(Rejection::Missing(PARAMS.signature));
    }
    let mut parts = Parts::default();
    for (_, p) in &params[first..] {
        let (n, v) = p.split_once('=').unwrap_or((p, ""));
        parts.take(&PARAMS, n, v)?;
    }
    Ok((&url[..params[first].0], parts))
}

fn verify_parts(
    key: &PublicKey,
    url: &str,
    parts: &Parts<'_>,
    names: &Names,
    check: &Check,
) -> Result<Verified, Rejection> {
    let key_pair_id = parts
        .key_pair_id
        .ok_or(Rejection::Missing(names.key_pair_id))?;
    if let Some(want) = &check.key_pair_id
        && key_pair_id != want
    {
        return Err(Rejection::KeyPairId {
            got: key_pair_id.to_string(),
            want: want.clone(),
        });
    }
    let hash = match parts.hash {
        None => HashAlgorithm::Sha1,
        Some(h) => {
            HashAlgorithm::parse(h).ok_or_else(|| Rejection::HashAlgorithm(h.to_string()))?
        }
    };
    let signature = parts.signature.ok_or(Rejection::Missing(names.signature))?;
    let signature = url_base64::decode(signature).ok_or(Rejection::Malformed {
        name: names.signature,
        reason: "is not CloudFront's base64".into(),
    })?;
    let mut verified = match (parts.expires, parts.policy) {
        (Some(_), Some(_)) => return Err(Rejection::Ambiguous),
        (None, None) => return Err(Rejection::Missing(names.expires_or_policy)),
        (Some(expires), None) => {
            let expires: i64 = expires
                .parse()
                .ok()
                .filter(|_| expires.bytes().all(|b| b.is_ascii_digit()))
                .ok_or(Rejection::Malformed {
                    name: names.expires,
                    reason: "is not a Unix time".into(),
                })?;
            let statement = Policy::canned(url, expires).to_json();
            if !key.verify(hash, statement.as_bytes(), &signature) {
                return Err(Rejection::Signature);
            }
            Verified {
                canned: true,
                resource: Some(url.to_string()),
                expires,
                starts: None,
                ip: None,
                key_pair_id: key_pair_id.to_string(),
                hash,
            }
        }
        (None, Some(policy)) => {
            let statement = url_base64::decode(policy).ok_or(Rejection::Malformed {
                name: names.policy,
                reason: "is not CloudFront's base64".into(),
            })?;
            if !key.verify(hash, &statement, &signature) {
                return Err(Rejection::Signature);
            }
            let (resource, expires, starts, ip) =
                parse_statement(&statement).map_err(|reason| Rejection::Malformed {
                    name: names.policy,
                    reason: format!("is not a policy statement CloudFront reads: {reason}"),
                })?;
            Verified {
                canned: false,
                resource,
                expires,
                starts,
                ip,
                key_pair_id: key_pair_id.to_string(),
                hash,
            }
        }
    };
    if let Some(resource) = &verified.resource
        && !wildcard::matches(resource, url)
    {
        return Err(Rejection::Resource {
            resource: std::mem::take(&mut verified.resource).unwrap_or_default(),
            url: url.to_string(),
        });
    }
    if check.now >= verified.expires {
        return Err(Rejection::Expired {
            expires: verified.expires,
            now: check.now,
        });
    }
    if let Some(starts) = verified.starts
        && check.now < starts
    {
        return Err(Rejection::NotYetValid {
            starts,
            now: check.now,
        });
    }
    if let Some(allowed) = &verified.ip {
        match check.client_ip {
            None => {
                return Err(Rejection::ClientIpUnknown {
                    allowed: allowed.to_string(),
                });
            }
            Some(ip) if !allowed.contains(ip) => {
                return Err(Rejection::ClientIpNotAllowed {
                    ip: ip.to_string(),
                    allowed: allowed.to_string(),
                });
            }
            Some(_) => {}
        }
    }
    Ok(verified)
}

type Statement = (Option<String>, i64, Option<i64>, Option<Cidr>);

/// A custom policy's statement: one `Statement` with an optional `Resource` and a `Condition` of
/// `DateLessThan` (required), `DateGreaterThan`, `IpAddress`; nothing else.
fn parse_statement(bytes: &[u8]) -> Result<Statement, String> {
    use serde_json::Value;
    let v: Value = serde_json::from_slice(bytes).map_err(|e| format!("not JSON ({e})"))?;
    let top = v.as_object().ok_or("not a JSON object")?;
    only_keys(top, &["Statement"])?;
    let statements = top
        .get("Statement")
        .and_then(Value::as_array)
        .ok_or("no `Statement` list")?;
    let [statement] = statements.as_slice() else {
        return Err(format!(
            "{} statements, CloudFront takes one",
            statements.len()
        ));
    };
    let statement = statement
        .as_object()
        .ok_or("the statement is not an object")?;
    only_keys(statement, &["Resource", "Condition"])?;
    let resource = match statement.get("Resource") {
        None => None,
        Some(Value::String(s)) => Some(s.clone()),
        Some(_) => return Err("`Resource` is not a string".into()),
    };
    let condition = statement
        .get("Condition")
        .and_then(Value::as_object)
        .ok_or("no `Condition` object")?;
    only_keys(condition, &["DateLessThan", "DateGreaterThan", "IpAddress"])?;
    let inner = |name: &str, key: &str| -> Result<Option<&Value>, String> {
        match condition.get(name) {
            None => Ok(None),
            Some(Value::Object(o)) => {
                only_keys(o, &[key])?;
                o.get(key)
                    .map(Some)
                    .ok_or_else(|| format!("`{name}` has no `{key}`"))
            }
            Some(_) => Err(format!("`{name}` is not an object")),
        }
    };
    let epoch = |name: &str| -> Result<Option<i64>, String> {
        inner(name, "AWS:EpochTime")?
            .map(|v| {
                v.as_i64()
                    .ok_or_else(|| format!("`{name}` is not an integer Unix time"))
            })
            .transpose()
    };
    let expires = epoch("DateLessThan")?.ok_or("no `DateLessThan`")?;
    let starts = epoch("DateGreaterThan")?;
    let ip = inner("IpAddress", "AWS:SourceIp")?
        .map(|v| {
            let s = v.as_str().ok_or("`AWS:SourceIp` is not a string")?;
            Cidr::parse(s)
        })
        .transpose()?;
    Ok((resource, expires, starts, ip))
}

fn only_keys(
    o: &serde_json::Map<String, serde_json::Value>,
    allowed: &[&str],
) -> Result<(), String> {
    match o.keys().find(|k| !allowed.contains(&k.as_str())) {
        Some(k) => Err(format!("unknown key `{k}`")),
        None => Ok(()),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::key::{KeyOrigin, PrivateKey};
    use crate::signer::Signer;

    const PKCS8: &str = include_str!("../tests/fixtures/test-only-rsa2048.pkcs8.pem");
    const OTHER: &str = include_str!("../tests/fixtures/test-only-other-rsa2048.pub.pem");
    const URL: &str = "https://media.example.com/u/42/avatar.jpg";
    const NOW: i64 = 1_798_700_000;

    fn key() -> PrivateKey {
        PrivateKey::from_pem(PKCS8, KeyOrigin::Text("test key".into())).unwrap()
    }

    fn signer() -> Signer {
        Signer::new("K2JCJMDEHXQW5F", key()).unwrap()
    }

    #[test]
    fn what_is_signed_verifies_and_says_what_it_allows() {
        let s = signer();
        let public = key().public_key();
        let check = Check::at(NOW).with_key_pair_id("K2JCJMDEHXQW5F");
        let canned = s.sign_url(URL, &Policy::canned(URL, NOW + 60)).unwrap();
        let v = verify_url(&public, &canned.url, &check).unwrap();
        assert!(v.canned);
        assert_eq!((v.resource.as_deref(), v.expires), (Some(URL), NOW + 60));
        let with_query = "https://media.example.com/u/42/avatar.jpg?size=large";
        let q = s
            .sign_url(with_query, &Policy::canned(with_query, NOW + 60))
            .unwrap();
        assert_eq!(
            verify_url(&public, &q.url, &check)
                .unwrap()
                .resource
                .as_deref(),
            Some(with_query)
        );
        let bare = "https://x/a?";
        let b = s.sign_url(bare, &Policy::canned(bare, NOW + 60)).unwrap();
        assert!(verify_url(&public, &b.url, &check).is_ok(), "{}", b.url);
        let policy = Policy::custom("https://media.example.com/u/42/*", NOW + 60)
            .with_starts(NOW - 5)
            .with_ip(Cidr::parse("192.0.2.0/24").unwrap());
        let custom = s.sign_url(URL, &policy).unwrap();
        let v = verify_url(
            &public,
            &custom.url,
            &check.clone().with_client_ip("192.0.2.9".parse().unwrap()),
        )
        .unwrap();
        assert!(!v.canned);
        assert_eq!(v.starts, Some(NOW - 5));
        assert_eq!(v.ip.unwrap().as_str(), "192.0.2.0/24");
        // The same policy signs another URL it covers (a wildcard signature is reusable).
        let other = s
            .sign_url("https://media.example.com/u/42/b.png", &policy)
            .unwrap();
        assert!(
            verify_url(
                &public,
                &other.url,
                &check.clone().with_client_ip("192.0.2.1".parse().unwrap())
            )
            .is_ok()
        );
        let sha256 = Signer::new("K2JCJMDEHXQW5F", key())
            .unwrap()
            .with_hash(HashAlgorithm::Sha256);
        let u = sha256
            .sign_url(URL, &Policy::canned(URL, NOW + 60))
            .unwrap();
        assert_eq!(
            verify_url(&public, &u.url, &check).unwrap().hash,
            HashAlgorithm::Sha256
        );
    }

    #[test]
    fn tampered_expired_and_misused_urls_are_rejected() {
        let s = signer();
        let public = key().public_key();
        let other = PublicKey::from_pem(OTHER, KeyOrigin::Text("other".into())).unwrap();
        let canned = s.sign_url(URL, &Policy::canned(URL, NOW + 60)).unwrap().url;
        let wildcard = Policy::custom("https://media.example.com/u/42/*", NOW + 60);
        let custom = s.sign_url(URL, &wildcard).unwrap().url;
        let exact = s.sign_url(URL, &Policy::custom(URL, NOW + 60)).unwrap().url;
        let starts_later = s
            .sign_url(URL, &Policy::custom(URL, NOW + 60).with_starts(NOW + 30))
            .unwrap()
            .url;
        let ip_bound = s
            .sign_url(
                URL,
                &Policy::custom(URL, NOW + 60).with_ip(Cidr::parse("192.0.2.7").unwrap()),
            )
            .unwrap()
            .url;
        let policy_param = |u: &str| {
            u.split("Policy=")
                .nth(1)
                .unwrap()
                .split('&')
                .next()
                .unwrap()
                .to_string()
        };
        // Another statement, with a later expiry, under the first one's signature.
        let forged = custom.replace(
            &policy_param(&custom),
            &url_base64::encode(
                Policy::custom("https://media.example.com/*", NOW + 9999)
                    .to_json()
                    .as_bytes(),
            ),
        );
        let check = Check::at(NOW);
        let ip = |s: &str| check.clone().with_client_ip(s.parse().unwrap());
        let cases: Vec<(&str, String, Check, Rejection)> = vec![
            (
                "path changed, canned",
                canned.replace("/42/", "/43/"),
                check.clone(),
                Rejection::Signature,
            ),
            (
                "expiry changed",
                canned.replace(
                    &format!("Expires={}", NOW + 60),
                    &format!("Expires={}", NOW + 6000),
                ),
                check.clone(),
                Rejection::Signature,
            ),
            (
                "query added, canned",
                canned.replacen("avatar.jpg?", "avatar.jpg?size=large&", 1),
                check.clone(),
                Rejection::Signature,
            ),
            (
                "path changed, exact custom",
                exact.replace("/42/", "/43/"),
                check.clone(),
                Rejection::Resource {
                    resource: URL.into(),
                    url: URL.replace("/42/", "/43/"),
                },
            ),
            (
                "path outside the wildcard",
                custom.replace("/u/42/", "/u/43/"),
                check.clone(),
                Rejection::Resource {
                    resource: "https://media.example.com/u/42/*".into(),
                    url: URL.replace("/42/", "/43/"),
                },
            ),
            (
                "policy swapped",
                forged,
                check.clone(),
                Rejection::Signature,
            ),
            (
                "signature of another key",
                canned.clone(),
                check.clone(),
                Rejection::Signature,
            ),
            (
                "expired",
                canned.clone(),
                Check::at(NOW + 60),
                Rejection::Expired {
                    expires: NOW + 60,
                    now: NOW + 60,
                },
            ),
            (
                "expired custom",
                custom.clone(),
                Check::at(NOW + 61),
                Rejection::Expired {
                    expires: NOW + 60,
                    now: NOW + 61,
                },
            ),
            (
                "not yet",
                starts_later.clone(),
                check.clone(),
                Rejection::NotYetValid {
                    starts: NOW + 30,
                    now: NOW,
                },
            ),
            (
                "no client address",
                ip_bound.clone(),
                check.clone(),
                Rejection::ClientIpUnknown {
                    allowed: "192.0.2.7/32".into(),
                },
            ),
            (
                "other client",
                ip_bound.clone(),
                ip("192.0.2.8"),
                Rejection::ClientIpNotAllowed {
                    ip: "192.0.2.8".into(),
                    allowed: "192.0.2.7/32".into(),
                },
            ),
            (
                "key pair id",
                canned.clone(),
                check.clone().with_key_pair_id("KOTHER"),
                Rejection::KeyPairId {
                    got: "K2JCJMDEHXQW5F".into(),
                    want: "KOTHER".into(),
                },
            ),
            (
                "not signed",
                URL.into(),
                check.clone(),
                Rejection::Missing("Signature"),
            ),
            (
                "params not last",
                format!("{canned}&size=large"),
                check.clone(),
                Rejection::NotLast("size".into()),
            ),
            (
                "no key pair id",
                canned.split("&Key-Pair-Id").next().unwrap().to_string(),
                check.clone(),
                Rejection::Missing("Key-Pair-Id"),
            ),
            (
                "twice",
                format!("{canned}&Signature=AAAA"),
                check.clone(),
                Rejection::Duplicate("Signature"),
            ),
            (
                "both",
                canned.replace(
                    "?Expires",
                    &format!("?Policy={}&Expires", policy_param(&custom)),
                ),
                check.clone(),
                Rejection::Ambiguous,
            ),
            (
                "bad base64",
                canned.replace("Signature=", "Signature=%2B"),
                check.clone(),
                Rejection::Malformed {
                    name: "Signature",
                    reason: "is not CloudFront's base64".into(),
                },
            ),
            (
                "bad hash",
                format!("{canned}&Hash-Algorithm=MD5"),
                check.clone(),
                Rejection::HashAlgorithm("MD5".into()),
            ),
            (
                "sha1 signature called sha256",
                format!("{canned}&Hash-Algorithm=SHA256"),
                check.clone(),
                Rejection::Signature,
            ),
        ];
        for (name, url, check, want) in cases {
            let k = if name == "signature of another key" {
                &other
            } else {
                &public
            };
            match verify_url(k, &url, &check) {
                Err(SignError::Rejected(got)) => assert_eq!(got, want, "{name}: {url}"),
                got => panic!("{name}: {got:?} for {url}"),
            }
        }
        // The boundaries: valid until the second before `DateLessThan`, from `DateGreaterThan` on.
        assert!(verify_url(&public, &canned, &Check::at(NOW + 59)).is_ok());
        assert!(verify_url(&public, &starts_later, &Check::at(NOW + 30)).is_ok());
        assert!(verify_url(&public, &ip_bound, &ip("192.0.2.7")).is_ok());
    }

    #[test]
    fn cookies_verify_for_the_urls_they_cover() {
        let s = signer();
        let public = key().public_key();
        let pairs = |c: &crate::SignedCookies| -> Vec<(&'static str, String)> {
            c.cookies
                .iter()
                .map(|c| (c.name, c.value.clone()))
                .collect()
        };
        let canned = pairs(&s.sign_cookies(&Policy::canned(URL, NOW + 60)).unwrap());
        let custom = pairs(
            &s.sign_cookies(&Policy::custom(
                "https://media.example.com/u/42/*",
                NOW + 60,
            ))
            .unwrap(),
        );
        let check = Check::at(NOW);
        let run = |cookies: &[(&'static str, String)], url: &str, check: &Check| {
            let mut all: Vec<(&str, &str)> = vec![("session", "abc")];
            all.extend(cookies.iter().map(|(n, v)| (*n, v.as_str())));
            verify_cookies(&public, url, &all, check)
        };
        assert!(run(&canned, URL, &check).unwrap().canned);
        assert!(run(&custom, URL, &check).is_ok());
        assert!(run(&custom, "https://media.example.com/u/42/other.png", &check).is_ok());
        let rejected = |r: Result<Verified, SignError>| match r {
            Err(SignError::Rejected(r)) => r,
            other => panic!("{other:?}"),
        };
        assert_eq!(
            rejected(run(
                &canned,
                "https://media.example.com/u/42/other.png",
                &check
            )),
            Rejection::Signature
        );
        assert!(matches!(
            rejected(run(&custom, "https://media.example.com/u/43/a.png", &check)),
            Rejection::Resource { .. }
        ));
        assert!(matches!(
            rejected(run(&custom, URL, &Check::at(NOW + 60))),
            Rejection::Expired { .. }
        ));
        let mut tampered = custom.clone();
        tampered[0].1 = url_base64::encode(Policy::custom("*", NOW + 60).to_json().as_bytes());
        assert_eq!(rejected(run(&tampered, URL, &check)), Rejection::Signature);
        assert_eq!(
            rejected(run(&custom[1..], URL, &check)),
            Rejection::Missing("CloudFront-Expires` or `CloudFront-Policy")
        );
        let e = SignError::Rejected(Rejection::Missing(
            "CloudFront-Expires` or `CloudFront-Policy",
        ));
        assert_eq!(
            e.to_string(),
            "rejected: no `CloudFront-Expires` or `CloudFront-Policy`"
        );
    }

    #[test]
    fn statements_are_read_strictly() {
        let cases: &[(&str, Result<Statement, &str>)] = &[
            (
                r#"{"Statement":[{"Resource":"https://x/*","Condition":{"DateLessThan":{"AWS:EpochTime":10},"IpAddress":{"AWS:SourceIp":"192.0.2.0/24"},"DateGreaterThan":{"AWS:EpochTime":5}}}]}"#,
                Ok((
                    Some("https://x/*".into()),
                    10,
                    Some(5),
                    Cidr::parse("192.0.2.0/24").ok(),
                )),
            ),
            (
                r#"{ "Statement": [ { "Condition": { "DateLessThan": { "AWS:EpochTime": 10 } } } ] }"#,
                Ok((None, 10, None, None)),
            ),
            (r#"{"Statement":[]}"#, Err("0 statements")),
            (
                r#"{"Statement":[{"Resource":"x","Condition":{}}]}"#,
                Err("no `DateLessThan`"),
            ),
            (
                r#"{"Statement":[{"Resource":"x","Condition":{"DateLessThan":{"AWS:EpochTime":"10"}}}]}"#,
                Err("not an integer"),
            ),
            (
                r#"{"Statement":[{"Resource":"x","Condition":{"DateLessThan":{"AWS:EpochTime":10.5}}}]}"#,
                Err("not an integer"),
            ),
            (
                r#"{"Statement":[{"Resource":"x","Condition":{"DateLessThan":{"AWS:EpochTime":10},"Other":{}}}]}"#,
                Err("unknown key `Other`"),
            ),
            (
                r#"{"Statement":[{"Resource":"x","Effect":"Allow","Condition":{"DateLessThan":{"AWS:EpochTime":10}}}]}"#,
                Err("unknown key `Effect`"),
            ),
            (
                r#"{"Statement":[{"Resource":"x","Condition":{"DateLessThan":{"AWS:EpochTime":10},"IpAddress":{"AWS:SourceIp":"nope"}}}]}"#,
                Err("not an IP address"),
            ),
            ("not json", Err("not JSON")),
        ];
        for (text, want) in cases {
            match (parse_statement(text.as_bytes()), want) {
                (Ok(got), Ok(w)) => assert_eq!(&got, w, "{text}"),
                (Err(e), Err(w)) => assert!(e.contains(w), "{text}: {e}"),
                (got, want) => panic!("{text}: got {got:?}, want {want:?}"),
            }
        }
    }
}
