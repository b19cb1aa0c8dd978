//! RSA keys from PEM text, and the one signature scheme CloudFront checks: RSASSA-PKCS1-v1_5 over
//! SHA-1 (the default, what botocore signs) or SHA-256 (`Hash-Algorithm=SHA256`).
//!
//! A [`PrivateKey`] never shows its material: its `Debug` names where it came from and its size, and
//! every error names the file or variable and the line, never the text. The text read from a file or
//! a variable is held in [`Zeroizing`] buffers, wiped when dropped.

use std::fmt;
use std::path::PathBuf;

use rsa::pkcs1::{DecodeRsaPrivateKey, DecodeRsaPublicKey};
use rsa::pkcs8::{DecodePrivateKey, DecodePublicKey};
use rsa::traits::PublicKeyParts;
use zeroize::Zeroizing;

use crate::error::{KeyKind, SignError};

/// Where a key's text came from, for messages: a file, an environment variable, or text given by a
/// caller under a label.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum KeyOrigin {
    File(PathBuf),
    Env(String),
    Text(String),
}

impl fmt::Display for KeyOrigin {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            KeyOrigin::File(p) => write!(f, "`{}`", p.display()),
            KeyOrigin::Env(name) => write!(f, "environment variable `{name}`"),
            KeyOrigin::Text(label) => write!(f, "`{label}`"),
        }
    }
}

impl KeyOrigin {
    /// The PEM text of a file or a variable, wiped from memory when dropped. Text origins have no
    /// text to read here (the caller holds it).
    pub fn read(&self) -> Result<Zeroizing<String>, SignError> {
        let unreadable = |reason: String| SignError::KeyUnreadable {
            origin: self.clone(),
            reason,
        };
        let text = match self {
            KeyOrigin::File(path) => {
                let bytes = Zeroizing::new(std::fs::read(path).map_err(|e| {
                    unreadable(match e.kind() {
                        std::io::ErrorKind::NotFound => "no such file".to_string(),
                        std::io::ErrorKind::PermissionDenied => "permission denied".to_string(),
                        _ => e.to_string(),
                    })
                })?);
                match std::str::from_utf8(&bytes) {
                    Ok(s) => Zeroizing::new(s.to_string()),
                    Err(_) => {
                        return Err(format_error(
                            KeyKind::Private,
                            self,
                            1,
                            "binary data, not PEM text (a DER file?)",
                            Some("convert it: `openssl pkey -inform DER -in KEY.der -out KEY.pem`"),
                        ));
                    }
                }
            }
            KeyOrigin::Env(name) => match std::env::var_os(name) {
                None => return Err(unreadable("it is not set".to_string())),
                Some(v) => match v.into_string() {
                    Ok(s) => Zeroizing::new(s),
                    Err(_) => {
                        return Err(format_error(
                            KeyKind::Private,
                            self,
                            1,
                            "not UTF-8 text",
                            Some("put the PEM text (`-----BEGIN …`) in the variable"),
                        ));
                    }
                },
            },
            KeyOrigin::Text(_) => {
                return Err(unreadable(
                    "text is given by the caller, not read".to_string(),
                ));
            }
        };
        if text.trim().is_empty() {
            return Err(unreadable("it is empty".to_string()));
        }
        Ok(text)
    }
}

/// The hash CloudFront's RSASSA-PKCS1-v1_5 signature is taken over.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum HashAlgorithm {
    /// SHA-1: CloudFront's default and the only one botocore's `CloudFrontSigner` knows (no
    /// `Hash-Algorithm` parameter is sent).
    #[default]
    Sha1,
    /// SHA-256: sent as `Hash-Algorithm=SHA256` (`CloudFront-Hash-Algorithm` for cookies).
    Sha256,
}

impl HashAlgorithm {
    /// The `Hash-Algorithm` value: `SHA1`, `SHA256`.
    pub fn as_str(self) -> &'static str {
        match self {
            HashAlgorithm::Sha1 => "SHA1",
            HashAlgorithm::Sha256 => "SHA256",
        }
    }

    /// Reads a `Hash-Algorithm` value (as CloudFront spells it).
    pub fn parse(s: &str) -> Option<HashAlgorithm> {
        match s {
            "SHA1" => Some(HashAlgorithm::Sha1),
            "SHA256" => Some(HashAlgorithm::Sha256),
            _ => None,
        }
    }
}

/// An RSA private key. It never prints: `Debug` shows its origin and size only.
pub struct PrivateKey {
    inner: rsa::PrivateKey,
    origin: KeyOrigin,
}

impl fmt::Debug for PrivateKey {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("PrivateKey")
            .field("origin", &self.origin)
            .field("bits", &self.bits())
            .field("material", &"<redacted>")
            .finish()
    }
}

impl PrivateKey {
    /// Reads a PEM file (PKCS#1 `RSA PRIVATE KEY` or PKCS#8 `PRIVATE KEY`).
    pub fn from_file(path: impl Into<PathBuf>) -> Result<PrivateKey, SignError> {
        let origin = KeyOrigin::File(path.into());
        let text = origin.read()?;
        PrivateKey::from_pem(&text, origin)
    }

    /// Reads the PEM text held in an environment variable.
    pub fn from_env(name: &str) -> Result<PrivateKey, SignError> {
        let origin = KeyOrigin::Env(name.to_string());
        let text = origin.read()?;
        PrivateKey::from_pem(&text, origin)
    }

    /// Parses PEM text (PKCS#1 or PKCS#8, unencrypted); `origin` is what messages name. Text with
    /// `\n` escapes and no real line breaks (a CI secret pasted on one line) is read as if broken
    /// there; CRLF and indented lines are accepted.
    pub fn from_pem(text: &str, origin: KeyOrigin) -> Result<PrivateKey, SignError> {
        let text = normalise(text);
        let block = find_block(&text, &origin, KeyKind::Private, PRIVATE_LABELS)?;
        let fail = |reason: String, hint: Option<&'static str>| {
            format_error(KeyKind::Private, &origin, block.line, &reason, hint)
        };
        let inner = match block.label.as_str() {
            "RSA PRIVATE KEY" => {
                if block.pem.contains("Proc-Type:") {
                    return Err(fail(
                        "the key is encrypted with a passphrase".into(),
                        Some(DECRYPT_HINT),
                    ));
                }
                rsa::PrivateKey::from_pkcs1_pem(&block.pem).map_err(|e| {
                    fail(
                        format!("the PKCS#1 key inside does not decode ({e})"),
                        Some(NEW_KEY_HINT),
                    )
                })?
            }
            "PRIVATE KEY" => rsa::PrivateKey::from_pkcs8_pem(&block.pem).map_err(|e| {
                fail(
                    format!("a PKCS#8 key that is not RSA, or is damaged ({e})"),
                    Some(NEW_KEY_HINT),
                )
            })?,
            _ => unreachable!("find_block returns accepted labels only"),
        };
        Ok(PrivateKey { inner, origin })
    }

    /// Where the key was read from.
    pub fn origin(&self) -> &KeyOrigin {
        &self.origin
    }

    /// The modulus size in bits (CloudFront's key groups take 2048-bit keys).
    pub fn bits(&self) -> usize {
        self.inner.size() * 8
    }

    /// The matching public key (what CloudFront holds), for verifying.
    pub fn public_key(&self) -> PublicKey {
        PublicKey {
            inner: self.inner.to_public_key(),
        }
    }

    /// RSASSA-PKCS1-v1_5 over `hash(message)`. Deterministic: the same key and message give the same
    /// bytes (the blinding the crate applies does not change the result).
    pub fn sign(&self, hash: HashAlgorithm, message: &[u8]) -> Result<Vec<u8>, SignError> {
        match hash {
            HashAlgorithm::Sha1 => self.inner.pkcs1v15_sign::<sha1::Sha1>(message),
            HashAlgorithm::Sha256 => self.inner.pkcs1v15_sign::<rsa::sha2::Sha256>(message),
        }
        .map_err(|e| SignError::Sign(e.to_string()))
    }
}

/// An RSA public key: what CloudFront keeps in a key group, and what [`crate::verify_url`] checks with.
#[derive(Clone)]
pub struct PublicKey {
    inner: rsa::PublicKey,
}

impl fmt::Debug for PublicKey {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("PublicKey")
            .field("bits", &(self.inner.size() * 8))
            .finish()
    }
}

impl PublicKey {
    /// Parses a PEM public key: SPKI `PUBLIC KEY` (what `openssl rsa -pubout` writes and CloudFront
    /// takes) or PKCS#1 `RSA PUBLIC KEY`.
    pub fn from_pem(text: &str, origin: KeyOrigin) -> Result<PublicKey, SignError> {
        let text = normalise(text);
        let block = find_block(&text, &origin, KeyKind::Public, PUBLIC_LABELS)?;
        let inner = match block.label.as_str() {
            "PUBLIC KEY" => {
                rsa::PublicKey::from_public_key_pem(&block.pem).map_err(|e| e.to_string())
            }
            "RSA PUBLIC KEY" => {
                rsa::PublicKey::from_pkcs1_pem(&block.pem).map_err(|e| e.to_string())
            }
            _ => unreachable!("find_block returns accepted labels only"),
        }
        .map_err(|e| {
            format_error(
                KeyKind::Public,
                &origin,
                block.line,
                &format!("the key inside does not decode ({e})"),
                None,
            )
        })?;
        Ok(PublicKey { inner })
    }

    /// Reads a PEM public key file.
    pub fn from_file(path: impl Into<PathBuf>) -> Result<PublicKey, SignError> {
        let path = path.into();
        let origin = KeyOrigin::File(path.clone());
        let text = std::fs::read_to_string(&path).map_err(|e| SignError::KeyUnreadable {
            origin: origin.clone(),
            reason: e.to_string(),
        })?;
        PublicKey::from_pem(&text, origin)
    }

    /// Whether `signature` is this key's RSASSA-PKCS1-v1_5 signature of `hash(message)`.
    pub fn verify(&self, hash: HashAlgorithm, message: &[u8], signature: &[u8]) -> bool {
        match hash {
            HashAlgorithm::Sha1 => self.inner.pkcs1v15_verify::<sha1::Sha1>(message, signature),
            HashAlgorithm::Sha256 => self
                .inner
                .pkcs1v15_verify::<rsa::sha2::Sha256>(message, signature),
        }
        .is_ok()
    }
}

const PRIVATE_LABELS: &[&str] = &["RSA PRIVATE KEY", "PRIVATE KEY"];
const PUBLIC_LABELS: &[&str] = &["PUBLIC KEY", "RSA PUBLIC KEY"];

const DECRYPT_HINT: &str =
    "decrypt it first: `openssl pkey -in KEY.pem -out KEY-plain.pem` (it asks for the passphrase)";
const NEW_KEY_HINT: &str = "CloudFront key groups take RSA keys: `openssl genrsa -out private_key.pem 2048`, then upload `openssl rsa -pubout -in private_key.pem`";

/// One PEM block: its label, the 1-based line of its `-----BEGIN`, and the block's text with each
/// line trimmed.
struct Block {
    label: String,
    line: usize,
    pem: Zeroizing<String>,
}

/// CRLF to LF; `\n` escapes to line breaks when the text has none of its own.
fn normalise(text: &str) -> Zeroizing<String> {
    let mut out = Zeroizing::new(text.replace("\r\n", "\n"));
    if !out.contains('\n') && out.contains("\\n") {
        *out = out.replace("\\n", "\n");
    }
    out
}

/// The first block with an accepted label; otherwise an error that says what the text holds instead.
fn find_block(
    text: &str,
    origin: &KeyOrigin,
    kind: KeyKind,
    accepted: &[&str],
) -> Result<Block, SignError> {
    let lines: Vec<&str> = text.lines().map(str::trim).collect();
    let mut first_other: Option<(String, usize)> = None;
    for (i, line) in lines.iter().enumerate() {
        let Some(label) = line
            .strip_prefix("-----BEGIN ")
            .and_then(|l| l.strip_suffix("-----"))
        else {
            continue;
        };
        if !accepted.contains(&label) {
            first_other.get_or_insert((label.to_string(), i + 1));
            continue;
        }
        let end = format!("-----END {label}-----");
        let Some(j) = lines[i..].iter().position(|l| *l == end) else {
            return Err(format_error(
                kind,
                origin,
                i + 1,
                &format!("no `{end}` line after it (is the text cut short?)"),
                None,
            ));
        };
        let mut pem = Zeroizing::new(String::new());
        for l in &lines[i..=i + j] {
            pem.push_str(l);
            pem.push('\n');
        }
        return Ok(Block {
            label: label.to_string(),
            line: i + 1,
            pem,
        });
    }
    let (reason, line, hint) = match (&first_other, kind) {
        (None, _) => (
            "no `-----BEGIN …-----` line".to_string(),
            1,
            Some(match kind {
                KeyKind::Private => {
                    "pass the PEM file of the RSA private key (`-----BEGIN RSA PRIVATE KEY-----` or `-----BEGIN PRIVATE KEY-----`)"
                }
                KeyKind::Public => "pass the PEM public key (`-----BEGIN PUBLIC KEY-----`)",
            }),
        ),
        (Some((label, line)), KeyKind::Private) => {
            let (what, hint) = match label.as_str() {
                "ENCRYPTED PRIVATE KEY" => ("the key is encrypted with a passphrase", DECRYPT_HINT),
                "EC PRIVATE KEY" => ("an EC key, not RSA", NEW_KEY_HINT),
                "OPENSSH PRIVATE KEY" => (
                    "an OpenSSH key, not PEM",
                    "convert a copy in place: `ssh-keygen -p -m PEM -f KEY` (it rewrites KEY as `RSA PRIVATE KEY`)",
                ),
                "PUBLIC KEY" | "RSA PUBLIC KEY" | "CERTIFICATE" => (
                    "a public key or certificate; signing needs the private key",
                    "pass the private key whose public key is in the distribution's key group",
                ),
                _ => ("not a private key", NEW_KEY_HINT),
            };
            (
                format!("`-----BEGIN {label}-----`: {what}"),
                *line,
                Some(hint),
            )
        }
        (Some((label, line)), KeyKind::Public) => (
            format!("`-----BEGIN {label}-----` is not a public key"),
            *line,
            Some("write the public key with `openssl rsa -pubout -in private_key.pem`"),
        ),
    };
    Err(format_error(kind, origin, line, &reason, hint))
}

fn format_error(
    kind: KeyKind,
    origin: &KeyOrigin,
    line: usize,
    reason: &str,
    hint: Option<&'static str>,
) -> SignError {
    SignError::KeyFormat {
        kind,
        origin: origin.clone(),
        line,
        reason: reason.to_string(),
        hint,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const PKCS1: &str = include_str!("../tests/fixtures/test-only-rsa2048.pkcs1.pem");
    const PKCS8: &str = include_str!("../tests/fixtures/test-only-rsa2048.pkcs8.pem");
    const PUBLIC: &str = include_str!("../tests/fixtures/test-only-rsa2048.pub.pem");

    fn text(label: &str) -> KeyOrigin {
        KeyOrigin::Text(label.into())
    }

    #[test]
    fn pkcs1_and_pkcs8_are_the_same_key_and_sign_alike() {
        let a = PrivateKey::from_pem(PKCS1, text("pkcs1")).unwrap();
        let b = PrivateKey::from_pem(PKCS8, text("pkcs8")).unwrap();
        assert_eq!(a.bits(), 2048);
        let sa = a.sign(HashAlgorithm::Sha1, b"policy").unwrap();
        let sb = b.sign(HashAlgorithm::Sha1, b"policy").unwrap();
        assert_eq!(sa, sb, "PKCS#1 v1.5 is deterministic");
        let public = PublicKey::from_pem(PUBLIC, text("pub")).unwrap();
        assert!(public.verify(HashAlgorithm::Sha1, b"policy", &sa));
        assert!(!public.verify(HashAlgorithm::Sha1, b"policy!", &sa));
        assert!(!public.verify(HashAlgorithm::Sha256, b"policy", &sa));
        let s256 = a.sign(HashAlgorithm::Sha256, b"policy").unwrap();
        assert!(public.verify(HashAlgorithm::Sha256, b"policy", &s256));
    }

    #[test]
    fn escaped_crlf_and_indented_pem_are_read() {
        let escaped = PKCS1.trim_end().replace('\n', "\\n");
        let crlf = PKCS1.replace('\n', "\r\n");
        let indented: String = PKCS8.lines().map(|l| format!("    {l}\n")).collect();
        for (name, t) in [("escaped", escaped), ("crlf", crlf), ("indented", indented)] {
            let k = PrivateKey::from_pem(&t, text(name)).unwrap_or_else(|e| panic!("{name}: {e}"));
            assert_eq!(k.bits(), 2048, "{name}");
        }
    }

    #[test]
    fn debug_never_shows_key_material() {
        let k = PrivateKey::from_pem(PKCS1, text("test key")).unwrap();
        let shown = format!("{k:?} {:#?}", k);
        assert!(
            shown.contains("<redacted>") && shown.contains("2048"),
            "{shown}"
        );
        for line in PKCS1.lines().filter(|l| !l.starts_with("-----")) {
            assert!(!shown.contains(&line[..16]), "{shown}");
        }
        assert!(!shown.to_lowercase().contains("prime") && !shown.contains("BoxedUint"));
    }

    #[test]
    fn bad_keys_say_what_where_and_what_to_do() {
        let body: String = PKCS1.lines().filter(|l| !l.starts_with("-----")).collect();
        let truncated: String = PKCS1.lines().take(5).map(|l| format!("{l}\n")).collect();
        let damaged = PKCS1.replacen("MII", "MIX", 1);
        let cases: &[(&str, String, usize, &str, Option<&str>)] = &[
            ("empty.pem", "hello\n".into(), 1, "no `-----BEGIN …-----` line", Some("PEM file")),
            ("pub.pem", PUBLIC.into(), 1, "signing needs the private key", Some("key group")),
            (
                "enc.pem",
                "x\n-----BEGIN ENCRYPTED PRIVATE KEY-----\nAAAA\n-----END ENCRYPTED PRIVATE KEY-----\n".into(),
                2,
                "encrypted",
                Some("openssl pkey"),
            ),
            (
                "legacy-enc.pem",
                "-----BEGIN RSA PRIVATE KEY-----\nProc-Type: 4,ENCRYPTED\nDEK-Info: AES-128-CBC,00\n\nAAAA\n-----END RSA PRIVATE KEY-----\n".into(),
                1,
                "encrypted",
                Some("openssl pkey"),
            ),
            (
                "ssh",
                "-----BEGIN OPENSSH PRIVATE KEY-----\nb3Bl\n-----END OPENSSH PRIVATE KEY-----\n".into(),
                1,
                "OpenSSH",
                Some("ssh-keygen -p -m PEM"),
            ),
            (
                "ec.pem",
                "-----BEGIN EC PRIVATE KEY-----\nAAAA\n-----END EC PRIVATE KEY-----\n".into(),
                1,
                "EC key",
                Some("openssl genrsa"),
            ),
            ("cut.pem", truncated, 1, "no `-----END RSA PRIVATE KEY-----` line", None),
            ("damaged.pem", damaged, 1, "does not decode", Some("openssl genrsa")),
        ];
        for (name, t, line, reason, hint) in cases {
            let e = PrivateKey::from_pem(t, text(name)).unwrap_err();
            let shown = e.to_string();
            assert!(
                shown.starts_with(&format!(
                    "not a PEM RSA private key: `{name}` line {line}: "
                )),
                "{name}: {shown}"
            );
            assert!(shown.contains(reason), "{name}: {shown}");
            match hint {
                Some(h) => assert!(e.hint().unwrap().contains(h), "{name}: {:?}", e.hint()),
                None => assert!(e.hint().is_none(), "{name}: {:?}", e.hint()),
            }
            assert!(
                !shown.contains(&body[..40]),
                "{name}: key material in {shown}"
            );
        }
    }

    #[test]
    fn files_and_variables_name_themselves() {
        let dir = tempfile::tempdir().unwrap();
        let missing = dir.path().join("nope.pem");
        let e = PrivateKey::from_file(&missing).unwrap_err();
        assert_eq!(
            e.to_string(),
            format!(
                "cannot read the private key from `{}`: no such file",
                missing.display()
            )
        );
        let binary = dir.path().join("key.der");
        std::fs::write(&binary, [0x30, 0x82, 0xff, 0xfe]).unwrap();
        let e = PrivateKey::from_file(&binary).unwrap_err();
        assert!(e.to_string().contains("binary data"), "{e}");
        assert!(e.hint().unwrap().contains("-inform DER"));
        let good = dir.path().join("key.pem");
        std::fs::write(&good, PKCS8).unwrap();
        let k = PrivateKey::from_file(&good).unwrap();
        assert_eq!(k.origin(), &KeyOrigin::File(good));
        let e = PrivateKey::from_env("STALEGUARD_SIGN_TEST_UNSET_VARIABLE").unwrap_err();
        assert_eq!(
            e.to_string(),
            "cannot read the private key from environment variable `STALEGUARD_SIGN_TEST_UNSET_VARIABLE`: it is not set"
        );
        assert!(e.hint().unwrap().contains("--private-key FILE"));
    }

    #[test]
    fn public_keys_refuse_private_ones() {
        let e = PublicKey::from_pem(PKCS1, text("k")).unwrap_err();
        assert!(
            e.to_string()
                .starts_with("not a PEM RSA public key: `k` line 1"),
            "{e}"
        );
    }
}
