//! Signing: a key pair id and a private key turn a [`Policy`] into a signed URL or a set of signed
//! cookies.
//!
//! A URL gets `Expires=` (canned) or `Policy=` (custom), then `Signature=` and `Key-Pair-Id=`, joined
//! with `&` and appended after `&` when the URL already holds a `?` anywhere, else after `?`: botocore's
//! `CloudFrontSigner._build_url`, byte for byte (so `https://x/a?` becomes `https://x/a?&Expires=…`).
//! With SHA-256, `&Hash-Algorithm=SHA256` follows, as CloudFront documents it.

use crate::error::SignError;
use crate::key::{HashAlgorithm, PrivateKey};
use crate::policy::Policy;
use crate::url_base64;

/// Signs with one key pair.
#[derive(Debug)]
pub struct Signer {
    key_pair_id: String,
    key: PrivateKey,
    hash: HashAlgorithm,
}

impl Signer {
    /// A signer for the public key `key_pair_id` (`K2JCJMDEHXQW5F`) of the distribution's trusted key
    /// group, signing with SHA-1 (CloudFront's default) unless [`Signer::with_hash`] says otherwise.
    pub fn new(key_pair_id: impl Into<String>, key: PrivateKey) -> Result<Signer, SignError> {
        let key_pair_id = key_pair_id.into();
        if key_pair_id.is_empty() || !key_pair_id.bytes().all(|b| b.is_ascii_alphanumeric()) {
            return Err(SignError::KeyPairId(key_pair_id));
        }
        Ok(Signer {
            key_pair_id,
            key,
            hash: HashAlgorithm::Sha1,
        })
    }

    /// Signs with `hash` instead of SHA-1.
    pub fn with_hash(mut self, hash: HashAlgorithm) -> Signer {
        self.hash = hash;
        self
    }

    /// The key pair id.
    pub fn key_pair_id(&self) -> &str {
        &self.key_pair_id
    }

    /// The hash the signatures are taken over.
    pub fn hash(&self) -> HashAlgorithm {
        self.hash
    }

    /// The signature of `policy`'s statement, in CloudFront's base64.
    fn signature(&self, policy: &Policy) -> Result<(String, String), SignError> {
        let json = policy.to_json();
        let signature = self.key.sign(self.hash, json.as_bytes())?;
        Ok((json, url_base64::encode(&signature)))
    }

    /// `url` signed with `policy`. A canned policy's resource must be `url` itself (CloudFront
    /// rebuilds the statement from the URL it is asked for); a custom one's may be any pattern.
    pub fn sign_url(&self, url: &str, policy: &Policy) -> Result<SignedUrl, SignError> {
        if policy.is_canned() && policy.resource() != url {
            return Err(SignError::Policy {
                field: "Resource",
                reason: format!(
                    "a canned policy signs the URL itself, and `{}` is not `{url}`",
                    policy.resource()
                ),
                hint: Some("use a custom policy for another resource"),
            });
        }
        let (json, signature) = self.signature(policy)?;
        let mut params = Vec::with_capacity(4);
        if policy.is_canned() {
            params.push(format!("Expires={}", policy.expires()));
        } else {
            params.push(format!("Policy={}", url_base64::encode(json.as_bytes())));
        }
        params.push(format!("Signature={signature}"));
        params.push(format!("Key-Pair-Id={}", self.key_pair_id));
        if self.hash != HashAlgorithm::Sha1 {
            params.push(format!("Hash-Algorithm={}", self.hash.as_str()));
        }
        let separator = if url.contains('?') { '&' } else { '?' };
        Ok(SignedUrl {
            url: format!("{url}{separator}{}", params.join("&")),
            policy_json: json,
        })
    }

    /// The signed cookies for `policy`: `CloudFront-Expires` (canned) or `CloudFront-Policy`
    /// (custom), `CloudFront-Signature`, `CloudFront-Key-Pair-Id` (and `CloudFront-Hash-Algorithm`
    /// with SHA-256), in that order. A canned policy's cookies only open its one resource URL.
    pub fn sign_cookies(&self, policy: &Policy) -> Result<SignedCookies, SignError> {
        let (json, signature) = self.signature(policy)?;
        let mut cookies = Vec::with_capacity(4);
        if policy.is_canned() {
            cookies.push(Cookie::new(EXPIRES, policy.expires().to_string()));
        } else {
            cookies.push(Cookie::new(POLICY, url_base64::encode(json.as_bytes())));
        }
        cookies.push(Cookie::new(SIGNATURE, signature));
        cookies.push(Cookie::new(KEY_PAIR_ID, self.key_pair_id.clone()));
        if self.hash != HashAlgorithm::Sha1 {
            cookies.push(Cookie::new(HASH_ALGORITHM, self.hash.as_str().to_string()));
        }
        Ok(SignedCookies {
            cookies,
            policy_json: json,
        })
    }
}

/// Refuses a URL that CloudFront would not match as the user means it: not absolute `http(s)://`, a
/// fragment (browsers never send it), spaces, control or non-ASCII characters (a browser sends them
/// percent-encoded, so the signed bytes would differ from the requested ones), or CloudFront's own
/// signing parameters already in its query. [`Signer::sign_url`] does not call it: like botocore, it
/// signs any text it is given.
pub fn check_url(url: &str) -> Result<(), SignError> {
    let fail = |reason: &str, hint: &'static str| {
        Err(SignError::Url {
            url: url.to_string(),
            reason: reason.to_string(),
            hint: Some(hint),
        })
    };
    let Some((scheme, rest)) = url.split_once("://") else {
        return fail(
            "not an absolute URL",
            "write the whole URL: `https://media.example.com/u/42/avatar.jpg`",
        );
    };
    if !scheme.eq_ignore_ascii_case("https") && !scheme.eq_ignore_ascii_case("http") {
        return fail(
            "CloudFront serves `https://` and `http://` URLs only",
            "write the `https://` URL users request",
        );
    }
    if rest.is_empty() || rest.starts_with('/') {
        return fail(
            "no host",
            "write the whole URL: `https://media.example.com/u/42/avatar.jpg`",
        );
    }
    if url.contains('#') {
        return fail(
            "it has a fragment (`#…`), which browsers never send",
            "drop the `#…` part",
        );
    }
    if let Some(c) = url
        .chars()
        .find(|c| c.is_whitespace() || c.is_control() || !c.is_ascii())
    {
        let reason = format!("it holds {:?}, which a browser sends percent-encoded", c);
        return Err(SignError::Url {
            url: url.to_string(),
            reason,
            hint: Some(
                "percent-encode the URL as it is requested (`%20` for a space, `%C3%A9` for `é`)",
            ),
        });
    }
    if let Some((_, query)) = url.split_once('?') {
        for p in query.split('&') {
            let name = p.split('=').next().unwrap_or_default();
            if [
                "Expires",
                "Policy",
                "Signature",
                "Key-Pair-Id",
                "Hash-Algorithm",
            ]
            .contains(&name)
            {
                return Err(SignError::Url {
                    url: url.to_string(),
                    reason: format!("its query already has CloudFront's `{name}`"),
                    hint: Some("sign the URL without its old signing parameters"),
                });
            }
        }
    }
    Ok(())
}

/// The cookie names CloudFront reads.
pub const EXPIRES: &str = "CloudFront-Expires";
pub const POLICY: &str = "CloudFront-Policy";
pub const SIGNATURE: &str = "CloudFront-Signature";
pub const KEY_PAIR_ID: &str = "CloudFront-Key-Pair-Id";
pub const HASH_ALGORITHM: &str = "CloudFront-Hash-Algorithm";

/// A signed URL and the statement its signature covers.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SignedUrl {
    /// The URL to hand out.
    pub url: String,
    /// The policy statement that was signed (for a canned policy, the one CloudFront rebuilds).
    pub policy_json: String,
}

/// One signed cookie.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Cookie {
    pub name: &'static str,
    pub value: String,
}

impl Cookie {
    fn new(name: &'static str, value: String) -> Cookie {
        Cookie { name, value }
    }
}

/// The signed cookies of one policy and the statement their signature covers.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SignedCookies {
    pub cookies: Vec<Cookie>,
    pub policy_json: String,
}

impl SignedCookies {
    /// One `Set-Cookie` value per cookie (without the `Set-Cookie: ` name), with `attributes`.
    pub fn set_cookie_values(&self, attributes: &CookieAttributes) -> Vec<String> {
        self.cookies
            .iter()
            .map(|c| {
                let mut v = format!("{}={}", c.name, c.value);
                if let Some(d) = &attributes.domain {
                    v.push_str(&format!("; Domain={d}"));
                }
                v.push_str(&format!("; Path={}", attributes.path));
                if attributes.secure {
                    v.push_str("; Secure");
                }
                if attributes.http_only {
                    v.push_str("; HttpOnly");
                }
                v
            })
            .collect()
    }

    /// The value of the cookie `name`.
    pub fn get(&self, name: &str) -> Option<&str> {
        self.cookies
            .iter()
            .find(|c| c.name == name)
            .map(|c| c.value.as_str())
    }
}

/// The `Set-Cookie` attributes to suggest. No `Expires`/`Max-Age`: CloudFront advises session
/// cookies (the policy carries the expiry).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CookieAttributes {
    /// `Domain`: the CDN's host (an alternate domain name such as `media.example.com`, so the app's
    /// own domain can set them); `None` leaves it to the host that sets the cookie.
    pub domain: Option<String>,
    /// `Path`: where the browser sends them.
    pub path: String,
    pub secure: bool,
    pub http_only: bool,
}

impl Default for CookieAttributes {
    fn default() -> CookieAttributes {
        CookieAttributes {
            domain: None,
            path: "/".into(),
            secure: true,
            http_only: true,
        }
    }
}

impl CookieAttributes {
    /// Attributes that send the cookies with every request the resource covers: the host of the
    /// resource (unless it holds a wildcard) and the path up to its last `/` before any wildcard
    /// (`https://media.example.com/u/42/*` → `media.example.com`, `/u/42/`); Secure and HttpOnly.
    pub fn for_resource(resource: &str) -> CookieAttributes {
        let mut a = CookieAttributes::default();
        let Some((_, rest)) = resource.split_once("://") else {
            return a;
        };
        let (host, path) = rest.find('/').map_or((rest, "/"), |i| rest.split_at(i));
        let host = host.rsplit('@').next().unwrap_or(host);
        let host = match host.strip_prefix('[') {
            Some(v6) => v6.split(']').next().unwrap_or(v6),
            None => host.split(':').next().unwrap_or(host),
        };
        if !host.is_empty() && !crate::wildcard::has_wildcard(host) {
            a.domain = Some(host.to_string());
        }
        let fixed = path.find(['*', '?', '#']).map_or(path, |i| &path[..i]);
        a.path = fixed
            .rfind('/')
            .map_or_else(|| "/".to_string(), |i| fixed[..=i].to_string());
        a
    }

    /// With `Domain=domain`.
    pub fn with_domain(mut self, domain: impl Into<String>) -> CookieAttributes {
        self.domain = Some(domain.into());
        self
    }

    /// With `Path=path`.
    pub fn with_path(mut self, path: impl Into<String>) -> CookieAttributes {
        self.path = path.into();
        self
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::key::KeyOrigin;

    const PKCS1: &str = include_str!("../tests/fixtures/test-only-rsa2048.pkcs1.pem");
    const URL: &str = "https://media.example.com/u/42/avatar.jpg";

    fn signer() -> Signer {
        let key = PrivateKey::from_pem(PKCS1, KeyOrigin::Text("test key".into())).unwrap();
        Signer::new("K2JCJMDEHXQW5F", key).unwrap()
    }

    #[test]
    fn urls_get_botocores_parameters_and_separator() {
        let s = signer();
        let cases: &[(&str, Policy, &str, &str)] = &[
            (
                URL,
                Policy::canned(URL, 10),
                "?Expires=10&Signature=",
                "&Key-Pair-Id=K2JCJMDEHXQW5F",
            ),
            (
                "https://x/a?size=large",
                Policy::canned("https://x/a?size=large", 10),
                "https://x/a?size=large&Expires=10&Signature=",
                "&Key-Pair-Id=K2JCJMDEHXQW5F",
            ),
            (
                "https://x/a?",
                Policy::canned("https://x/a?", 10),
                "https://x/a?&Expires=10&",
                "K2JCJMDEHXQW5F",
            ),
            (
                URL,
                Policy::custom("https://media.example.com/u/42/*", 10),
                "?Policy=eyJTdGF0ZW1lbnQiOlt7IlJlc291cmNlIjoi",
                "&Key-Pair-Id=K2JCJMDEHXQW5F",
            ),
        ];
        for (url, policy, has, ends) in cases {
            let signed = s.sign_url(url, policy).unwrap();
            assert!(signed.url.starts_with(url), "{}", signed.url);
            assert!(signed.url.contains(has), "{}", signed.url);
            assert!(signed.url.ends_with(ends), "{}", signed.url);
            assert_eq!(signed.policy_json, policy.to_json());
            let sig = signed
                .url
                .split("Signature=")
                .nth(1)
                .unwrap()
                .split('&')
                .next()
                .unwrap();
            assert_eq!(sig.len(), 344, "2048-bit signature in base64");
            assert!(!sig.contains(['+', '/', '=']), "{sig}");
        }
        let sha256 = signer().with_hash(HashAlgorithm::Sha256);
        let u = sha256.sign_url(URL, &Policy::canned(URL, 10)).unwrap().url;
        assert!(
            u.ends_with("&Key-Pair-Id=K2JCJMDEHXQW5F&Hash-Algorithm=SHA256"),
            "{u}"
        );
    }

    #[test]
    fn a_canned_policy_signs_its_own_url_only() {
        let e = signer()
            .sign_url(URL, &Policy::canned("https://media.example.com/u/42/*", 10))
            .unwrap_err();
        assert!(
            e.to_string()
                .contains("a canned policy signs the URL itself"),
            "{e}"
        );
        assert!(e.hint().unwrap().contains("custom policy"));
    }

    #[test]
    fn urls_worth_signing() {
        let cases: &[(&str, Option<&str>)] = &[
            (URL, None),
            ("http://x.example/a?b=1", None),
            ("HTTPS://x.example/", None),
            ("https://x.example/%C3%A9t%C3%A9.jpg", None),
            ("/u/42/avatar.jpg", Some("not an absolute URL")),
            (
                "ftp://x.example/a",
                Some("`https://` and `http://` URLs only"),
            ),
            ("https:///a", Some("no host")),
            ("https://x.example/a#top", Some("fragment")),
            ("https://x.example/a b.jpg", Some("holds ' '")),
            ("https://x.example/été.jpg", Some("holds 'é'")),
            (
                "https://x.example/a?Expires=10&Signature=x",
                Some("already has CloudFront's `Expires`"),
            ),
            (
                "https://x.example/a?v=1&Key-Pair-Id=K",
                Some("`Key-Pair-Id`"),
            ),
        ];
        for (url, want) in cases {
            match (check_url(url), want) {
                (Ok(()), None) => {}
                (Err(e), Some(w)) => {
                    assert!(e.to_string().contains(w), "{url}: {e}");
                    assert!(e.to_string().starts_with(&format!("cannot sign `{url}`: ")));
                    assert!(e.hint().is_some());
                }
                (got, want) => panic!("{url}: got {got:?}, want {want:?}"),
            }
        }
    }

    #[test]
    fn key_pair_ids_are_letters_and_digits() {
        for bad in ["", "K2 JC", "K2&x=1", "K2JC\n"] {
            let key = PrivateKey::from_pem(PKCS1, KeyOrigin::Text("k".into())).unwrap();
            let e = Signer::new(bad, key).unwrap_err();
            assert!(matches!(e, SignError::KeyPairId(_)), "{bad:?}");
            assert!(e.hint().is_some());
        }
    }

    #[test]
    fn cookies_and_their_attributes() {
        let s = signer();
        let canned = s.sign_cookies(&Policy::canned(URL, 10)).unwrap();
        let names: Vec<_> = canned.cookies.iter().map(|c| c.name).collect();
        assert_eq!(names, [EXPIRES, SIGNATURE, KEY_PAIR_ID]);
        assert_eq!(canned.get(EXPIRES), Some("10"));
        let custom = s
            .with_hash(HashAlgorithm::Sha256)
            .sign_cookies(&Policy::custom("https://media.example.com/u/42/*", 10))
            .unwrap();
        let names: Vec<_> = custom.cookies.iter().map(|c| c.name).collect();
        assert_eq!(names, [POLICY, SIGNATURE, KEY_PAIR_ID, HASH_ALGORITHM]);
        let attrs = CookieAttributes::for_resource("https://media.example.com/u/42/*");
        let lines = custom.set_cookie_values(&attrs);
        assert_eq!(
            lines[2],
            "CloudFront-Key-Pair-Id=K2JCJMDEHXQW5F; Domain=media.example.com; Path=/u/42/; Secure; HttpOnly"
        );
        let cases: &[(&str, Option<&str>, &str)] = &[
            (
                "https://media.example.com/u/42/*",
                Some("media.example.com"),
                "/u/42/",
            ),
            (
                "https://media.example.com/u/42/avatar.jpg",
                Some("media.example.com"),
                "/u/42/",
            ),
            (
                "https://media.example.com/u/4?/a.jpg",
                Some("media.example.com"),
                "/u/",
            ),
            (
                "https://media.example.com:8443/a",
                Some("media.example.com"),
                "/",
            ),
            ("https://media.example.com", Some("media.example.com"), "/"),
            ("https://*.example.com/u/*", None, "/u/"),
            (
                "http*://media.example.com/*",
                Some("media.example.com"),
                "/",
            ),
            ("*", None, "/"),
            ("https://[2001:db8::1]:8443/a/b", Some("2001:db8::1"), "/a/"),
        ];
        for (resource, domain, path) in cases {
            let a = CookieAttributes::for_resource(resource);
            assert_eq!(
                (a.domain.as_deref(), a.path.as_str()),
                (*domain, *path),
                "{resource}"
            );
        }
        let a = CookieAttributes::default()
            .with_domain("cdn.example.com")
            .with_path("/media/");
        assert_eq!(
            canned.set_cookie_values(&a)[0],
            "CloudFront-Expires=10; Domain=cdn.example.com; Path=/media/; Secure; HttpOnly"
        );
    }
}
