//! The crate's one error type. A message says what failed and where (a key file, an environment
//! variable, a policy field); [`SignError::hint`] says what to do; nothing here ever holds key material.

use std::fmt;

use crate::key::KeyOrigin;

/// What went wrong while loading a key, building a policy, signing, or verifying.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum SignError {
    /// The key could not be read at all: a missing or unreadable file, an unset or empty variable.
    #[error("cannot read the private key from {origin}: {reason}")]
    KeyUnreadable { origin: KeyOrigin, reason: String },
    /// The text is not a PEM RSA key of a kind this crate reads. `line` is 1-based: the `-----BEGIN`
    /// line of the block at fault, or 1 when there is none.
    #[error("not a PEM RSA {kind} key: {origin} line {line}: {reason}")]
    KeyFormat {
        kind: KeyKind,
        origin: KeyOrigin,
        line: usize,
        reason: String,
        hint: Option<&'static str>,
    },
    /// A key pair id that cannot be CloudFront's (empty, or characters a URL would have to escape).
    #[error("`{0}` is not a CloudFront key pair id (letters and digits, like `K2JCJMDEHXQW5F`)")]
    KeyPairId(String),
    /// A policy that CloudFront would refuse or that could never be valid: `field` names it.
    #[error("invalid policy: {field}: {reason}")]
    Policy {
        field: &'static str,
        reason: String,
        hint: Option<&'static str>,
    },
    /// A URL that should not be signed as it is (`reason` says why).
    #[error("cannot sign `{url}`: {reason}")]
    Url {
        url: String,
        reason: String,
        hint: Option<&'static str>,
    },
    /// The RSA operation itself failed (a damaged key that passed parsing).
    #[error("RSA signing failed: {0}")]
    Sign(String),
    /// A signed URL or cookie set that a verifier refuses, and why.
    #[error("rejected: {0}")]
    Rejected(Rejection),
}

impl SignError {
    /// What to do about it, when there is something to say.
    pub fn hint(&self) -> Option<&str> {
        match self {
            SignError::KeyUnreadable { origin, .. } => Some(match origin {
                KeyOrigin::File(_) => {
                    "pass the PEM file CloudFront's public key was made from (`--private-key FILE`)"
                }
                KeyOrigin::Env(_) => {
                    "export the PEM text in that variable, or pass a file with `--private-key FILE`"
                }
                KeyOrigin::Text(_) => "pass the PEM text of an RSA private key",
            }),
            SignError::KeyFormat { hint, .. }
            | SignError::Policy { hint, .. }
            | SignError::Url { hint, .. } => *hint,
            SignError::KeyPairId(_) => Some(
                "use the ID of the public key in the distribution's trusted key group (CloudFront console: Key management > Public keys)",
            ),
            SignError::Sign(_) => {
                Some("check the key with `openssl rsa -check -noout -in KEY.pem`")
            }
            SignError::Rejected(r) => r.hint(),
        }
    }
}

/// Which kind of key was expected, for messages.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum KeyKind {
    Private,
    Public,
}

impl fmt::Display for KeyKind {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            KeyKind::Private => "private",
            KeyKind::Public => "public",
        })
    }
}

/// Why a verifier refused a signed URL or a set of signed cookies (as CloudFront would answer 403).
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Rejection {
    /// A required query parameter or cookie is absent (`Signature`, `CloudFront-Key-Pair-Id`, …).
    Missing(&'static str),
    /// A parameter or cookie is present but unreadable: bad base64, not a number, not JSON, …
    Malformed { name: &'static str, reason: String },
    /// The same signing parameter twice.
    Duplicate(&'static str),
    /// Both `Expires` and `Policy` (canned and custom at once).
    Ambiguous,
    /// A signing parameter followed by one of the URL's own: CloudFront's come last.
    NotLast(String),
    /// The key pair id is not the one expected.
    KeyPairId { got: String, want: String },
    /// `Hash-Algorithm` names an algorithm CloudFront does not use.
    HashAlgorithm(String),
    /// The signature does not match the policy (tampered policy, URL or expiry; another key).
    Signature,
    /// At or after the policy's `DateLessThan`.
    Expired { expires: i64, now: i64 },
    /// Before the policy's `DateGreaterThan`.
    NotYetValid { starts: i64, now: i64 },
    /// The policy limits the client's address and none was given to check.
    ClientIpUnknown { allowed: String },
    /// The client's address is outside the policy's range.
    ClientIpNotAllowed { ip: String, allowed: String },
    /// The URL does not match the policy's `Resource`.
    Resource { resource: String, url: String },
}

impl Rejection {
    /// What to do about it, when there is something to say.
    pub fn hint(&self) -> Option<&str> {
        match self {
            Rejection::NotLast(_) => Some(
                "append `Expires`/`Policy`, `Signature` and `Key-Pair-Id` after the URL's own query parameters",
            ),
            Rejection::Expired { .. } => Some("sign the URL again with a later `--expires`"),
            Rejection::Signature => Some(
                "the URL, policy or expiry was changed after signing, or another key signed it",
            ),
            Rejection::Resource { .. } => Some(
                "sign with a `--resource` pattern that covers the URL (`*` matches any characters)",
            ),
            _ => None,
        }
    }
}

impl fmt::Display for Rejection {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Rejection::Missing(name) => write!(f, "no `{name}`"),
            Rejection::Malformed { name, reason } => write!(f, "`{name}` {reason}"),
            Rejection::Duplicate(name) => write!(f, "`{name}` appears twice"),
            Rejection::Ambiguous => f.write_str("both `Expires` (canned) and `Policy` (custom)"),
            Rejection::NotLast(name) => {
                write!(f, "`{name}` follows CloudFront's signing parameters")
            }
            Rejection::KeyPairId { got, want } => {
                write!(f, "key pair id `{got}`, expected `{want}`")
            }
            Rejection::HashAlgorithm(h) => write!(f, "unknown hash algorithm `{h}`"),
            Rejection::Signature => f.write_str("the signature does not match the policy"),
            Rejection::Expired { expires, now } => write!(
                f,
                "expired at {} ({}s before now, {})",
                crate::time::rfc3339(*expires),
                now - expires,
                crate::time::rfc3339(*now)
            ),
            Rejection::NotYetValid { starts, now } => write!(
                f,
                "not valid before {} ({}s after now, {})",
                crate::time::rfc3339(*starts),
                starts - now,
                crate::time::rfc3339(*now)
            ),
            Rejection::ClientIpUnknown { allowed } => write!(
                f,
                "the policy only allows clients in `{allowed}`, and no client address was given"
            ),
            Rejection::ClientIpNotAllowed { ip, allowed } => {
                write!(f, "client `{ip}` is outside the allowed `{allowed}`")
            }
            Rejection::Resource { resource, url } => {
                write!(
                    f,
                    "`{url}` does not match the policy's resource `{resource}`"
                )
            }
        }
    }
}
