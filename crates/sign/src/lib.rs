//! CloudFront signed URLs and signed cookies: private content (user uploads, paid media) served
//! through the CDN only to whom the app hands a signature.
//!
//! A [`Policy`] (canned: one URL and an expiry; custom: a wildcard resource, an expiry, an optional
//! start and client address range) is written as the JSON statement botocore's `CloudFrontSigner`
//! writes, byte for byte; a [`Signer`] (key pair id + [`PrivateKey`]) signs it with
//! RSASSA-PKCS1-v1_5 over SHA-1 and appends it to a URL ([`Signer::sign_url`]) or makes the
//! `CloudFront-*` cookies ([`Signer::sign_cookies`]); [`verify_url`] and [`verify_cookies`] check them
//! with the public key as CloudFront would (signature, times, client address, resource). The
//! integration test holds every output to botocore's and to the `cryptography` package's verifier.
//!
//! Pure: no I/O but reading a key file or variable, no clock (callers pass `now`), no logging.
//!
//! # Why RustCrypto's `rsa` (0.10) and `sha1`, not `ring`
//!
//! - **CloudFront's default signature is RSA with SHA-1**, and it is the only one botocore (and so
//!   every Python app and `aws cloudfront sign` of the AWS CLI v1) produces. `ring` 0.17 cannot make
//!   it: its PKCS#1 v1.5 SHA-1 padding (`RSA_PKCS1_SHA1_FOR_LEGACY_USE_ONLY`) is `pub(super)`,
//!   "intentionally not exposed except internally for signature verification"
//!   (`src/rsa/padding/pkcs1.rs`), the public signing encodings are SHA-256/384/512 only, and the
//!   `RsaEncoding` trait is sealed, so no caller can add one. `ring` also reads no PEM (DER PKCS#8 or
//!   PKCS#1 only) and would need a second crate for it. It is in the lock already (through rustls),
//!   so it would have cost no build time; it cannot do the job.
//! - **`rsa` 0.10 does its private-key arithmetic in constant time** (`crypto-bigint` instead of
//!   `num-bigint-dig`, whose timing leak is the Marvin advisory RUSTSEC-2023-0071 against 0.9: hardly
//!   exploitable through a CLI, but an app that signs per request is another matter).
//!   It redacts its own `Debug`, zeroizes its secrets, and parses PKCS#1 and PKCS#8 PEM itself
//!   (`pkcs1`, `pkcs8`, `pem-rfc7468`, all RustCrypto). Its `digest` 0.11 and `sha2` 0.11 are
//!   already in the lock; the new crates are `crypto-bigint`, `crypto-primes`, `pkcs1`, `pkcs8`,
//!   `spki`, `der`, `sha1` and their small helpers, all pure Rust.
//! - `openssl` would sign SHA-1 too, but links the system's OpenSSL, which this workspace keeps out
//!   (no `-dev` packages needed to build staleguard).
//!
//! CloudFront also accepts SHA-256 signatures now (`Hash-Algorithm=SHA256`, `CloudFront-Hash-Algorithm`);
//! [`Signer::with_hash`] makes them (botocore cannot, so only the `cryptography` verifier checks those).

mod cidr;
mod error;
mod key;
mod policy;
mod signer;
pub mod time;
mod url_base64;
mod verify;
mod wildcard;

pub use cidr::Cidr;
pub use error::{KeyKind, Rejection, SignError};
pub use key::{HashAlgorithm, KeyOrigin, PrivateKey, PublicKey};
pub use policy::Policy;
pub use signer::{
    Cookie, CookieAttributes, EXPIRES, HASH_ALGORITHM, KEY_PAIR_ID, POLICY, SIGNATURE,
    SignedCookies, SignedUrl, Signer, check_url,
};
pub use verify::{Check, Verified, verify_cookies, verify_url};
pub use wildcard::{has_wildcard, matches as wildcard_matches};

/// CloudFront's URL-safe base64 (`+` → `-`, `=` → `_`, `/` → `~`), as botocore writes it.
pub mod base64 {
    pub use crate::url_base64::{decode, encode};
}
