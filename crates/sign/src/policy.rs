//! Policy statements: what a signature covers. A canned policy is a resource (the URL itself) and an
//! expiry; a custom one may also have a wildcard resource, a start time and a client address range.
//!
//! [`Policy::to_json`] writes the statement byte for byte as botocore's
//! `CloudFrontSigner.build_policy` does (`json.dumps(…, separators=(',', ':'))` of ordered dicts): no
//! whitespace; keys in the order `Resource`, `Condition`; inside it `DateLessThan`, then `IpAddress`,
//! then `DateGreaterThan` (CloudFront's documentation lists `DateGreaterThan` second; the order only
//! matters for the signature's bytes, and CloudFront reads either); `AWS:EpochTime` as a JSON integer;
//! strings escaped as Python's `ensure_ascii` does (`\"`, `\\`, `\n`…, other control and non-ASCII
//! characters as lowercase `\uXXXX`, astral ones as surrogate pairs; `/` is not escaped). The canned
//! statement is the same shape with `DateLessThan` alone, the one CloudFront documents and rebuilds
//! from the request to check a canned signature.

use crate::cidr::Cidr;
use crate::error::SignError;

/// A policy statement. Build one with [`Policy::canned`] or [`Policy::custom`] and the `with_`
/// methods.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Policy {
    resource: String,
    expires: i64,
    starts: Option<i64>,
    ip: Option<Cidr>,
    custom: bool,
}

impl Policy {
    /// A canned policy: `resource` is the URL being signed (with its own query string, if any),
    /// valid before `expires` (Unix seconds). Sent as `Expires=`; CloudFront rebuilds the statement.
    pub fn canned(resource: impl Into<String>, expires: i64) -> Policy {
        Policy {
            resource: resource.into(),
            expires,
            starts: None,
            ip: None,
            custom: false,
        }
    }

    /// A custom policy: `resource` may hold `*` and `?` wildcards (`https://media.example.com/u/42/*`).
    /// Sent whole, base64-encoded, as `Policy=`.
    pub fn custom(resource: impl Into<String>, expires: i64) -> Policy {
        Policy {
            custom: true,
            ..Policy::canned(resource, expires)
        }
    }

    /// Not valid before `starts` (`DateGreaterThan`); makes the policy custom.
    pub fn with_starts(mut self, starts: i64) -> Policy {
        self.starts = Some(starts);
        self.custom = true;
        self
    }

    /// Only for clients in `ip` (`IpAddress` / `AWS:SourceIp`); makes the policy custom.
    pub fn with_ip(mut self, ip: Cidr) -> Policy {
        self.ip = Some(ip);
        self.custom = true;
        self
    }

    /// Canned (`Expires=`) rather than custom (`Policy=`).
    pub fn is_canned(&self) -> bool {
        !self.custom
    }

    /// `canned` or `custom`, for reports.
    pub fn kind(&self) -> &'static str {
        if self.custom { "custom" } else { "canned" }
    }

    /// The `Resource`: a URL, or a pattern for a custom policy.
    pub fn resource(&self) -> &str {
        &self.resource
    }

    /// `DateLessThan`, Unix seconds.
    pub fn expires(&self) -> i64 {
        self.expires
    }

    /// `DateGreaterThan`, Unix seconds.
    pub fn starts(&self) -> Option<i64> {
        self.starts
    }

    /// `AWS:SourceIp`.
    pub fn ip(&self) -> Option<&Cidr> {
        self.ip.as_ref()
    }

    /// Refuses a policy that could never be used at `now`: an empty resource, an expiry not after
    /// `now`, a start not before the expiry.
    pub fn check(&self, now: i64) -> Result<(), SignError> {
        if self.resource.is_empty() {
            return Err(SignError::Policy {
                field: "Resource",
                reason: "it is empty".into(),
                hint: Some("sign a URL, or pass a `--resource` pattern"),
            });
        }
        if self.expires <= now {
            return Err(SignError::Policy {
                field: "DateLessThan",
                reason: format!(
                    "the expiry {} is not after now ({})",
                    crate::time::rfc3339(self.expires),
                    crate::time::rfc3339(now)
                ),
                hint: Some(
                    "give a later `--expires`: a duration from now with its unit (`3600s`, `1h`), an RFC 3339 time, or Unix seconds (a plain number is a time, not a duration)",
                ),
            });
        }
        if let Some(starts) = self.starts
            && starts >= self.expires
        {
            return Err(SignError::Policy {
                field: "DateGreaterThan",
                reason: format!(
                    "the start {} is not before the expiry {}",
                    crate::time::rfc3339(starts),
                    crate::time::rfc3339(self.expires)
                ),
                hint: Some("give a `--starts` before `--expires`"),
            });
        }
        Ok(())
    }

    /// The statement as botocore writes it (see the module docs): the bytes that are signed.
    pub fn to_json(&self) -> String {
        let mut out = String::with_capacity(self.resource.len() + 160);
        out.push_str("{\"Statement\":[{\"Resource\":");
        push_python_json_string(&mut out, &self.resource);
        out.push_str(",\"Condition\":{\"DateLessThan\":{\"AWS:EpochTime\":");
        out.push_str(&self.expires.to_string());
        out.push('}');
        if let Some(ip) = &self.ip {
            out.push_str(",\"IpAddress\":{\"AWS:SourceIp\":");
            push_python_json_string(&mut out, ip.as_str());
            out.push('}');
        }
        if let Some(starts) = self.starts {
            out.push_str(",\"DateGreaterThan\":{\"AWS:EpochTime\":");
            out.push_str(&starts.to_string());
            out.push('}');
        }
        out.push_str("}}]}");
        out
    }
}

/// `s` as a JSON string the way Python's `json.dumps` (with `ensure_ascii=True`) writes it.
fn push_python_json_string(out: &mut String, s: &str) {
    out.push('"');
    for c in s.chars() {
        match c {
            '"' => out.push_str("\\\""),
            '\\' => out.push_str("\\\\"),
            '\n' => out.push_str("\\n"),
            '\r' => out.push_str("\\r"),
            '\t' => out.push_str("\\t"),
            '\u{8}' => out.push_str("\\b"),
            '\u{c}' => out.push_str("\\f"),
            ' '..='~' => out.push(c),
            _ => {
                let mut units = [0u16; 2];
                for u in c.encode_utf16(&mut units) {
                    out.push_str(&format!("\\u{u:04x}"));
                }
            }
        }
    }
    out.push('"');
}

#[cfg(test)]
mod tests {
    use super::*;

    const URL: &str = "https://media.example.com/u/42/avatar.jpg";

    #[test]
    fn json_is_botocores() {
        let ip = |s| Cidr::parse(s).unwrap();
        let cases: &[(Policy, &str)] = &[
            (
                Policy::canned(URL, 1_798_761_599),
                r#"{"Statement":[{"Resource":"https://media.example.com/u/42/avatar.jpg","Condition":{"DateLessThan":{"AWS:EpochTime":1798761599}}}]}"#,
            ),
            (
                Policy::custom("https://media.example.com/u/42/*", 1_798_761_599),
                r#"{"Statement":[{"Resource":"https://media.example.com/u/42/*","Condition":{"DateLessThan":{"AWS:EpochTime":1798761599}}}]}"#,
            ),
            (
                Policy::custom("https://media.example.com/u/42/*", 1_798_761_599)
                    .with_starts(1_798_700_000)
                    .with_ip(ip("192.0.2.0/24")),
                r#"{"Statement":[{"Resource":"https://media.example.com/u/42/*","Condition":{"DateLessThan":{"AWS:EpochTime":1798761599},"IpAddress":{"AWS:SourceIp":"192.0.2.0/24"},"DateGreaterThan":{"AWS:EpochTime":1798700000}}}]}"#,
            ),
            (
                Policy::custom(URL, 10).with_ip(ip("192.0.2.7")),
                r#"{"Statement":[{"Resource":"https://media.example.com/u/42/avatar.jpg","Condition":{"DateLessThan":{"AWS:EpochTime":10},"IpAddress":{"AWS:SourceIp":"192.0.2.7/32"}}}]}"#,
            ),
            (
                Policy::custom(URL, 10).with_starts(5),
                r#"{"Statement":[{"Resource":"https://media.example.com/u/42/avatar.jpg","Condition":{"DateLessThan":{"AWS:EpochTime":10},"DateGreaterThan":{"AWS:EpochTime":5}}}]}"#,
            ),
            (
                Policy::canned("https://x/é \"q\"\\\n\t\u{7f}\u{1}😀?a=1&b=/", 10),
                r#"{"Statement":[{"Resource":"https://x/\u00e9 \"q\"\\\n\t\u007f\u0001\ud83d\ude00?a=1&b=/","Condition":{"DateLessThan":{"AWS:EpochTime":10}}}]}"#,
            ),
        ];
        for (policy, want) in cases {
            assert_eq!(policy.to_json(), *want);
            // Valid JSON that reads back as the same resource.
            let v: serde_json::Value = serde_json::from_str(&policy.to_json()).unwrap();
            assert_eq!(v["Statement"][0]["Resource"], policy.resource());
        }
    }

    #[test]
    fn kinds() {
        assert!(Policy::canned(URL, 10).is_canned());
        assert!(!Policy::custom(URL, 10).is_canned());
        assert!(!Policy::canned(URL, 10).with_starts(1).is_canned());
        assert!(
            !Policy::canned(URL, 10)
                .with_ip(Cidr::parse("192.0.2.7").unwrap())
                .is_canned()
        );
        assert_eq!(Policy::custom(URL, 10).kind(), "custom");
    }

    #[test]
    fn check_refuses_policies_that_can_never_work() {
        let now = 1000;
        let cases: &[(Policy, Option<&str>)] = &[
            (Policy::canned(URL, 1001), None),
            (Policy::custom(URL, 2000).with_starts(10), None),
            (
                Policy::canned("", 2000),
                Some("invalid policy: Resource: it is empty"),
            ),
            (
                Policy::canned(URL, 1000),
                Some(
                    "invalid policy: DateLessThan: the expiry 1970-01-01T00:16:40Z is not after now",
                ),
            ),
            (Policy::canned(URL, 5), Some("invalid policy: DateLessThan")),
            (
                Policy::custom(URL, 2000).with_starts(2000),
                Some(
                    "invalid policy: DateGreaterThan: the start 1970-01-01T00:33:20Z is not before the expiry",
                ),
            ),
        ];
        for (policy, want) in cases {
            match (policy.check(now), want) {
                (Ok(()), None) => {}
                (Err(e), Some(w)) => {
                    assert!(e.to_string().starts_with(w), "{e}");
                    assert!(e.hint().is_some());
                }
                (got, want) => panic!("{policy:?}: got {got:?}, want {want:?}"),
            }
        }
    }
}
