//! The shared HTTP client: how staleguard builds every client (the edge checks here, the CDN providers'
//! API clients in `staleguard-cdn`), and how a failed request and a URL are shown in messages.

use std::time::Duration;

use reqwest::header::HeaderMap;

/// The one way staleguard builds HTTP clients: a request timeout, a connect timeout of at most 10 s,
/// staleguard's user agent. Callers add what their requests need (no redirects, no decompression).
pub fn client_builder(timeout: Duration) -> reqwest::ClientBuilder {
    reqwest::Client::builder()
        .timeout(timeout)
        .connect_timeout(timeout.min(Duration::from_secs(10)))
        .user_agent(concat!("staleguard/", env!("CARGO_PKG_VERSION")))
}

/// The values of header `name` joined by `, `, when there is any that is text.
pub(crate) fn header_text(headers: &HeaderMap, name: &str) -> Option<String> {
    let values: Vec<&str> = headers
        .get_all(name)
        .iter()
        .filter_map(|v| v.to_str().ok())
        .collect();
    (!values.is_empty()).then(|| values.join(", "))
}

/// A request error with its cause chain, without the URL (it may hold a token): the top line names the
/// kind of failure, the causes (hyper, io, rustls) say what happened.
pub fn transport_error(err: &reqwest::Error) -> String {
    let top = if err.url().is_none() {
        err.to_string()
    } else if err.is_timeout() {
        "timed out".to_string()
    } else if err.is_connect() {
        "cannot connect".to_string()
    } else if err.is_body() || err.is_decode() {
        "the body broke off".to_string()
    } else if err.is_redirect() {
        "redirect refused".to_string()
    } else {
        "the request failed".to_string()
    };
    let mut msg = top.clone();
    if let Some(source) = std::error::Error::source(err) {
        for text in staleguard_core::cause::cause_chain(source, &[&top]) {
            msg.push_str(": ");
            msg.push_str(&text);
        }
    }
    msg
}

/// A URL for messages, with any password replaced by `…` (`http://user:…@host`, see
/// [`staleguard_core::secret::redact_url`]); works on text that does not parse as a URL too.
pub fn redact_url(url: &str) -> String {
    staleguard_core::secret::redact_url(url).into_owned()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn redact_url_removes_user_info() {
        let cases = [
            (
                "https://u:pw@staging.example.com/x@y",
                "https://u:…@staging.example.com/x@y",
            ),
            ("nope://u:secret@", "nope://u:…@"),
            ("https://www.example.com/a@b", "https://www.example.com/a@b"),
            ("http://127.0.0.1:6081", "http://127.0.0.1:6081"),
        ];
        for (url, want) in cases {
            assert_eq!(redact_url(url), want);
        }
    }
}
