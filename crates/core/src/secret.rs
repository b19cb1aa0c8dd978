//! Secrets never leave the process: the one place that knows them and takes them out of text.
//!
//! The binary registers every secret value it is configured with once, when its settings are resolved
//! ([`register`], [`register_urls_in`]): API tokens from the environment variables the config names,
//! cloud credentials, the webhook URL, the passwords of URLs written as `http://user:password@host`.
//! Every string that leaves the process (stdout, stderr, log lines, panic messages, the webhook payload,
//! purge marks written to the store) goes through [`scrub`], which:
//!
//! 1. redacts the user info of every URL in the text ([`redact_url`]: `http://user:…@host/x`),
//! 2. replaces every registered value (and its percent-decoded, JSON-escaped and `Basic` forms) with
//!    [`REDACTED`], longest first,
//! 3. redacts the value of secret-bearing headers echoed back by an API or proxy even when the value is
//!    not registered (`authorization: Bearer X`, `Fastly-Key: X`, `X-Auth-Key`, `x-amz-security-token`,
//!    also as `name=value` and JSON `"name": "value"`).
//!
//! Values shorter than [`MIN_LEN`] characters are not registered (they would wipe ordinary words out of
//! messages); inside URLs they are still redacted by step 1. Nothing here changes what is sent: requests
//! keep their credentials, only the text shown is scrubbed.

use std::borrow::Cow;
use std::sync::{LazyLock, RwLock};

use regex::Regex;

/// What a registered secret is replaced with.
pub const REDACTED: &str = "<redacted>";

/// What a URL's password (or user-only user info) is replaced with.
pub const REDACTED_USERINFO: &str = "…";

/// Registered values are at least this many characters long (shorter ones are ignored).
pub const MIN_LEN: usize = 6;

/// The registered values, longest first, without duplicates.
static SECRETS: RwLock<Vec<String>> = RwLock::new(Vec::new());

/// Registers a secret value, and the forms it may take in text: percent-decoded, JSON-escaped. Values
/// are trimmed; shorter than [`MIN_LEN`]: ignored.
pub fn register(value: &str) {
    let value = value.trim();
    if value.chars().count() < MIN_LEN {
        return;
    }
    let mut forms = vec![value.to_string()];
    let decoded = percent_encoding::percent_decode_str(value).decode_utf8_lossy();
    if decoded != value {
        forms.push(decoded.into_owned());
    }
    for f in forms.clone() {
        if let Ok(json) = serde_json::to_string(&f) {
            let escaped = &json[1..json.len() - 1];
            if escaped != f {
                forms.push(escaped.to_string());
            }
        }
    }
    let mut secrets = SECRETS.write().unwrap_or_else(|e| e.into_inner());
    for f in forms {
        if f.chars().count() >= MIN_LEN && !secrets.contains(&f) {
            secrets.push(f);
        }
    }
    // Longest first: a secret that contains another is replaced whole.
    secrets.sort_by(|a, b| b.len().cmp(&a.len()).then_with(|| a.cmp(b)));
}

/// Registers the credentials of every URL in `text` that carries user info: the password as written
/// and decoded, `user:password` as an HTTP `Basic` credential (base64) would carry it, and a user-only
/// user info (`https://TOKEN@host`) whole.
pub fn register_urls_in(text: &str) {
    for userinfo in userinfos(text) {
        match userinfo.split_once(':') {
            Some((user, password)) => {
                register(password);
                let user = percent_encoding::percent_decode_str(user).decode_utf8_lossy();
                let password = percent_encoding::percent_decode_str(password).decode_utf8_lossy();
                if !password.is_empty() {
                    register(&base64_of(format!("{user}:{password}").as_bytes()));
                }
            }
            None => {
                register(userinfo);
                let user = percent_encoding::percent_decode_str(userinfo).decode_utf8_lossy();
                register(&base64_of(format!("{user}:").as_bytes()));
            }
        }
    }
}

/// Registers a secret URL (a webhook's: its path and query hold the token) whole, and its path, query
/// and user info on their own.
pub fn register_secret_url(url: &str) {
    let url = url.trim();
    register(url);
    register_urls_in(url);
    let after_scheme = url.find("://").map_or(0, |i| i + 3);
    let rest = &url[after_scheme..];
    if let Some(slash) = rest.find(['/', '?', '#']) {
        let tail = &rest[slash..];
        let (path, query) = tail.split_once('?').unwrap_or((tail, ""));
        let path = path.split('#').next().unwrap_or_default();
        if path.len() > 1 {
            register(path);
        }
        register(query.split('#').next().unwrap_or_default());
    }
}

/// How many values are registered (for tests and logs; never the values).
pub fn registered() -> usize {
    SECRETS.read().unwrap_or_else(|e| e.into_inner()).len()
}

/// `text` with URL user info, registered secrets and secret header values redacted (see the module
/// docs). Borrowed when there was nothing to redact.
pub fn scrub(text: &str) -> Cow<'_, str> {
    let mut out = redact_url(text);
    {
        let secrets = SECRETS.read().unwrap_or_else(|e| e.into_inner());
        for s in secrets.iter() {
            if out.contains(s.as_str()) {
                out = Cow::Owned(out.replace(s.as_str(), REDACTED));
            }
        }
    }
    if out.contains([':', '=']) {
        let replaced = SECRET_HEADER.replace_all(&out, |c: &regex::Captures<'_>| {
            let value = &c[4];
            // `authorization: Bearer <redacted>`: the scheme alone matched, the value is already gone.
            if c.get(3).is_none() && SCHEMES.contains(&value.to_ascii_lowercase().as_str()) {
                return c[0].to_string();
            }
            format!(
                "{}{}{}{REDACTED}",
                &c[1],
                &c[2],
                c.get(3).map_or("", |m| m.as_str())
            )
        });
        if let Cow::Owned(s) = replaced {
            out = Cow::Owned(s);
        }
    }
    out
}

/// Scrubs every string (and object key) of a JSON value in place, so the value stays valid JSON.
pub fn scrub_json(value: &mut serde_json::Value) {
    use serde_json::Value;
    match value {
        Value::String(s) => {
            if let Cow::Owned(clean) = scrub(s) {
                *s = clean;
            }
        }
        Value::Array(items) => items.iter_mut().for_each(scrub_json),
        Value::Object(map) => {
            let dirty: Vec<String> = map
                .keys()
                .filter(|k| matches!(scrub(k), Cow::Owned(_)))
                .cloned()
                .collect();
            for k in dirty {
                if let Some(v) = map.remove(&k) {
                    map.insert(scrub(&k).into_owned(), v);
                }
            }
            map.values_mut().for_each(scrub_json);
        }
        _ => {}
    }
}

/// Authorization schemes: the word after `authorization:` that is kept.
const SCHEMES: [&str; 5] = ["bearer", "basic", "token", "digest", "aws4-hmac-sha256"];

/// A header that carries a credential, echoed as `name: value`, `name=value` or `"name": "value"`;
/// group 3 is an authorization scheme (`Bearer `), kept; the value itself is replaced.
static SECRET_HEADER: LazyLock<Regex> = LazyLock::new(|| {
    Regex::new(
        r#"(?i)\b(authorization|proxy-authorization|fastly-key|x-auth-key|x-auth-token|x-api-key|x-amz-security-token|x-goog-api-key)("?\s*[:=]\s*"?)((?:bearer|basic|token|digest|aws4-hmac-sha256)\s+)?([^\s"',;<>&\\]+)"#,
    )
    .expect("a valid regex")
});

/// `text` with the user info of every URL in it redacted: `http://user:password@host/x` becomes
/// `http://user:…@host/x`, `https://TOKEN@host` becomes `https://…@host`. Works on a single URL and on
/// any text holding URLs (an error message quoting one); text without `scheme://` is returned as is.
pub fn redact_url(text: &str) -> Cow<'_, str> {
    if !text.contains("://") {
        return Cow::Borrowed(text);
    }
    let mut out = String::with_capacity(text.len());
    let mut rest = text;
    let mut changed = false;
    while let Some(i) = rest.find("://") {
        let start = i + 3;
        let authority = &rest[start..start + authority_len(&rest[start..])];
        out.push_str(&rest[..start]);
        match authority.rfind('@') {
            Some(at) => {
                let userinfo = &authority[..at];
                let redacted = match userinfo.split_once(':') {
                    Some((user, _)) => format!("{user}:{REDACTED_USERINFO}"),
                    None => REDACTED_USERINFO.to_string(),
                };
                changed |= redacted != userinfo;
                out.push_str(&redacted);
                rest = &rest[start + at..];
            }
            None => rest = &rest[start..],
        }
    }
    if !changed {
        return Cow::Borrowed(text);
    }
    out.push_str(rest);
    Cow::Owned(out)
}

/// The length of the authority at the start of `s` (up to the path, query, fragment, or anything that
/// cannot be in a URL written in text).
fn authority_len(s: &str) -> usize {
    s.find(|c: char| "/?#\\\"'<>`".contains(c) || c.is_whitespace())
        .unwrap_or(s.len())
}

/// The user info of every URL in `text` that has one.
fn userinfos(text: &str) -> Vec<&str> {
    let mut out = Vec::new();
    let mut rest = text;
    while let Some(i) = rest.find("://") {
        let start = i + 3;
        let authority = &rest[start..start + authority_len(&rest[start..])];
        if let Some(at) = authority.rfind('@') {
            out.push(&authority[..at]);
        }
        rest = &rest[start..];
    }
    out
}

/// Standard base64 with padding (what HTTP `Basic` credentials use).
fn base64_of(bytes: &[u8]) -> String {
    use base64::Engine;
    base64::engine::general_purpose::STANDARD.encode(bytes)
}

#[cfg(test)]
mod tests {
    use super::*;

    // The registry is process-wide: every test registers values of its own, which no other test's
    // text contains.

    #[test]
    fn redact_url_hides_passwords_in_urls_and_in_text() {
        let cases = [
            (
                "https://u:pw@staging.example.com/x@y",
                "https://u:…@staging.example.com/x@y",
            ),
            ("http://user:p@ss@host:81", "http://user:…@host:81"),
            ("https://TOKEN123@github.com/a", "https://…@github.com/a"),
            ("nope://u:secret@", "nope://u:…@"),
            ("https://www.example.com/a@b", "https://www.example.com/a@b"),
            ("http://127.0.0.1:6081", "http://127.0.0.1:6081"),
            ("mailto:a@b.c and user@host", "mailto:a@b.c and user@host"),
            (
                "error sending request for url (http://edge:hunter2@10.0.0.5:6081/a): refused; also \"http://x:y@h\"",
                "error sending request for url (http://edge:…@10.0.0.5:6081/a): refused; also \"http://x:…@h\"",
            ),
            ("node `http://a:b@h?q=c@d`", "node `http://a:…@h?q=c@d`"),
        ];
        for (text, want) in cases {
            assert_eq!(redact_url(text), want, "{text}");
            // Idempotent.
            assert_eq!(redact_url(want), want, "{want}");
        }
        assert!(matches!(
            redact_url("http://127.0.0.1:6081/x"),
            Cow::Borrowed(_)
        ));
    }

    #[test]
    fn registered_values_and_their_forms_are_replaced() {
        register("tok-AAAA-registered-1");
        register("  p%40ss-word-2 "); // percent-encoded: the decoded form too
        register("q\"uote-3-xyz"); // JSON-escaped form too
        register("short"); // under MIN_LEN: ignored
        let s = scrub(
            "a tok-AAAA-registered-1 b p%40ss-word-2 c p@ss-word-2 d {\"k\":\"q\\\"uote-3-xyz\"} short",
        );
        assert_eq!(
            s,
            "a <redacted> b <redacted> c <redacted> d {\"k\":\"<redacted>\"} short"
        );
        assert!(matches!(scrub("nothing to hide here"), Cow::Borrowed(_)));
    }

    #[test]
    fn url_credentials_register_their_basic_form() {
        register_urls_in(
            "nodes = [\"http://varnish:S3cretPass-4@10.0.0.5:6081\", \"https://GhToken55555@h\"]",
        );
        // base64_of("varnish:S3cretPass-4")
        let basic = base64_of(b"varnish:S3cretPass-4");
        assert_eq!(base64_of(b"ab"), "YWI=");
        assert_eq!(base64_of(b"abc"), "YWJj");
        assert_eq!(base64_of(b"a"), "YQ==");
        let text = format!(
            "S3cretPass-4 and {basic} and GhToken55555 and http://varnish:S3cretPass-4@host"
        );
        let s = scrub(&text);
        assert_eq!(
            s,
            "<redacted> and <redacted> and <redacted> and http://varnish:…@host"
        );
    }

    #[test]
    fn secret_urls_register_path_and_query() {
        register_secret_url("https://hooks.example.com/services/T0/B0/HookTok6?x=QueryTok7");
        let s = scrub("posted to /services/T0/B0/HookTok6 with x=QueryTok7");
        assert!(!s.contains("HookTok6") && !s.contains("QueryTok7"), "{s}");
    }

    #[test]
    fn secret_headers_are_redacted_even_unregistered() {
        let cases = [
            (
                "POST /v4 HTTP/1.1\r\nauthorization: Bearer abc.DEF-123\r\nhost: x\r\n",
                "POST /v4 HTTP/1.1\r\nauthorization: Bearer <redacted>\r\nhost: x\r\n",
            ),
            (
                "HTTP 403: POST /purge/x Fastly-Key: k3y-value accept: application/json",
                "HTTP 403: POST /purge/x Fastly-Key: <redacted> accept: application/json",
            ),
            (
                "{\"x-amz-security-token\": \"FQoG+/ab==\", \"a\": 1}",
                "{\"x-amz-security-token\": \"<redacted>\", \"a\": 1}",
            ),
            (
                "?X-Amz-Security-Token=FQoG%2Fab&X-Amz-Date=1",
                "?X-Amz-Security-Token=<redacted>&X-Amz-Date=1",
            ),
            (
                "X-Auth-Key:abc Proxy-Authorization: Basic dXNlcjpw",
                "X-Auth-Key:<redacted> Proxy-Authorization: Basic <redacted>",
            ),
            (
                "echo: authorization: Bearer tok\\r\\nuser-agent: x",
                "echo: authorization: Bearer <redacted>\\r\\nuser-agent: x",
            ),
            ("no authorization here", "no authorization here"),
            ("x-authorization-mode: y", "x-authorization-mode: y"),
        ];
        for (text, want) in cases {
            assert_eq!(scrub(text), want, "{text}");
            assert_eq!(scrub(want), want, "idempotent: {want}");
        }
    }

    #[test]
    fn json_values_stay_json() {
        register("json-secret-value-8");
        let mut v = serde_json::json!({
            "error": "node `http://u:pw@h` said json-secret-value-8",
            "list": ["ok", "json-secret-value-8"],
            "json-secret-value-8": 1,
            "n": 3,
        });
        scrub_json(&mut v);
        let text = v.to_string();
        assert!(
            !text.contains("json-secret-value-8") && !text.contains("pw@"),
            "{text}"
        );
        assert_eq!(v["error"], "node `http://u:…@h` said <redacted>");
        assert_eq!(v["n"], 3);
        assert_eq!(v["<redacted>"], 1);
        assert!(registered() > 0);
    }
}
