//! What every HTTP API provider shares when it is built: the HTTP client, the API token from the
//! environment, the site's scheme and host, the API base URL, and response snippets for messages.

#[cfg(any(feature = "cloudflare", feature = "fastly"))]
use staleguard_core::config::CdnConfig;

use crate::CdnError;
#[cfg(any(feature = "cloudflare", feature = "fastly"))]
use crate::ErrorKind;

/// The HTTP client every HTTP provider uses: 30 s per request, 10 s to connect.
#[cfg(any(feature = "varnish", feature = "cloudflare", feature = "fastly"))]
pub(crate) fn http_client(label: &str) -> Result<reqwest::Client, CdnError> {
    staleguard_check::client::client_builder(std::time::Duration::from_secs(30))
        .build()
        .map_err(|e| CdnError::transport(label, "the HTTP client setup", &e))
}

/// The API token from the environment variable the entry names (`token-env`, or the provider's
/// default). Tokens are never read from the config file.
#[cfg(any(feature = "cloudflare", feature = "fastly"))]
pub(crate) fn token_from_env(cfg: &CdnConfig) -> Result<String, CdnError> {
    let var = cfg.token_var();
    match std::env::var(var) {
        Ok(t) if !t.trim().is_empty() => Ok(t.trim().to_string()),
        _ => Err(CdnError::new(
            ErrorKind::Config,
            cfg.label(),
            format!("no API token: the environment variable `{var}` is not set"),
        )
        .with_hint(format!(
            "export {var}=… (a token allowed to purge), or name another variable with `token-env`"
        ))),
    }
}

/// The site's scheme and host from `domain` (`www.example.com`, or `http://localhost:8080` with an
/// explicit scheme; a trailing `/` is dropped). Scheme `https` unless given.
#[cfg(any(feature = "cloudflare", feature = "fastly"))]
pub(crate) fn site(domain: &str) -> (&str, &str) {
    let (scheme, rest) = match domain.split_once("://") {
        Some((s, r)) => (s, r),
        None => ("https", domain),
    };
    (scheme, rest.trim_end_matches('/'))
}

/// The API base URL: the config's `api` override (tests, proxies) without a trailing `/`, or `default`.
#[cfg(any(feature = "cloudflare", feature = "fastly"))]
pub(crate) fn api_base(cfg: &CdnConfig, default: &str) -> String {
    let api = if cfg.api.is_empty() {
        default
    } else {
        &cfg.api
    };
    api.trim_end_matches('/').to_string()
}

/// Up to `max` bytes of a response body for a message, on one line.
#[cfg(any(feature = "varnish", feature = "cloudflare", feature = "fastly"))]
pub(crate) fn snippet(body: &str, max: usize) -> String {
    staleguard_core::text::one_line(body, max)
}

#[cfg(test)]
mod tests {
    #[cfg(any(feature = "cloudflare", feature = "fastly"))]
    #[test]
    fn site_splits_scheme_and_host() {
        use super::site;
        assert_eq!(site("www.example.com"), ("https", "www.example.com"));
        assert_eq!(site("http://localhost:8080/"), ("http", "localhost:8080"));
    }

    #[cfg(any(feature = "varnish", feature = "cloudflare", feature = "fastly"))]
    #[test]
    fn snippet_is_one_short_line() {
        use super::snippet;
        assert_eq!(snippet("a\n  b\tc", 100), "a b c");
        assert_eq!(snippet("ééééé", 3), "é…");
    }
}
