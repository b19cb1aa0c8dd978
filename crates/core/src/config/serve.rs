//! The `[serve]` section: the origin server.

use serde::{Deserialize, Deserializer, Serialize};

use super::{de_abs_path, de_range};

/// The `[serve]` section: the origin server.
#[derive(Debug, Clone, Deserialize, Serialize, PartialEq)]
#[serde(deny_unknown_fields, rename_all = "kebab-case", default)]
pub struct ServeConfig {
    /// Folder to serve; empty = the build's output folder.
    pub dir: String,
    /// Address to listen on; loopback unless told otherwise.
    pub bind: String,
    /// Port; 0 picks a free one.
    pub port: u16,
    /// Path of the JSON version endpoint.
    #[serde(deserialize_with = "de_abs_path")]
    pub version_path: String,
    /// File (relative to the served folder) sent with status 404; empty for a plain-text 404.
    pub not_found_page: String,
    /// File (relative to the served folder) sent with status 500; empty for a plain-text 500.
    pub error_page: String,
    /// Headers sent with every file, in addition to [`DEFAULT_HEADERS`]; an empty value removes one
    /// (route rules can override or remove them too).
    pub headers: std::collections::BTreeMap<String, String>,
    /// Send `Access-Control-Allow-Origin: *` with fonts (browsers need it for cross-origin `@font-face`).
    pub cors_fonts: bool,
    /// Files up to this many bytes are held in memory; larger ones are streamed from disk.
    pub memory_limit: u64,
    /// How often the manifest is checked for a new version, in milliseconds.
    pub reload_ms: u64,
    /// A connection that sends nothing the server answers and receives no response bytes for this many
    /// seconds is closed: idle keep-alive connections, heads trickled in (slowloris), readers that stopped
    /// reading. Keep it above the keep-alive timeout of whatever sits in front (CloudFront 5-60 s, an
    /// AWS load balancer 60 s), or the CDN may reuse a connection the origin is closing.
    #[serde(deserialize_with = "de_idle_timeout")]
    pub idle_timeout_secs: u64,
    /// Send surrogate keys (cache tags) with every mutable file in this header: `xkey` (Varnish with
    /// vmod xkey), `Surrogate-Key` (Fastly), `Cache-Tag` (Cloudflare). Each file gets its own key, so a
    /// tag purge drops every URL of the file, query-string variants included. Empty: no tags.
    #[serde(deserialize_with = "de_header_name_or_empty")]
    pub tag_header: String,
    /// Answer an extensionless path from the page of that name (`/about` → `about.html`) when no file or
    /// folder index (`about/index.html`) takes it; purges and verification then cover `/about` too.
    pub clean_urls: bool,
}

fn de_header_name_or_empty<'de, D: Deserializer<'de>>(d: D) -> Result<String, D::Error> {
    let s = String::deserialize(d)?;
    if !s
        .bytes()
        .all(|b| b.is_ascii_alphanumeric() || b == b'-' || b == b'_')
    {
        return Err(serde::de::Error::custom(format!(
            "`{s}` is not a header name (letters, digits, `-`)"
        )));
    }
    Ok(s)
}

impl Default for ServeConfig {
    fn default() -> Self {
        ServeConfig {
            dir: String::new(),
            bind: "127.0.0.1".into(),
            port: 8080,
            version_path: "/health/static-version".into(),
            not_found_page: "404.html".into(),
            error_page: "500.html".into(),
            headers: Default::default(),
            cors_fonts: true,
            memory_limit: 1024 * 1024,
            reload_ms: 500,
            idle_timeout_secs: 75,
            tag_header: String::new(),
            clean_urls: false,
        }
    }
}

/// Headers the server always sends unless `[serve.headers]` or a route removes them with `""`.
pub const DEFAULT_HEADERS: &[(&str, &str)] = &[("X-Content-Type-Options", "nosniff")];

impl ServeConfig {
    /// [`DEFAULT_HEADERS`] with `[serve.headers]` applied over them.
    /// Where `staleguard serve` answers on this machine: `http://BIND:PORT`, loopback for a wildcard
    /// bind (`0.0.0.0`, `::`). The default origin of a local edge or a generated CDN config.
    pub fn local_url(&self) -> String {
        let host = match self.bind.as_str() {
            "0.0.0.0" | "::" | "[::]" => "127.0.0.1",
            b => b,
        };
        format!("http://{host}:{}", self.port)
    }

    pub fn effective_headers(&self) -> std::collections::BTreeMap<String, String> {
        let mut h: std::collections::BTreeMap<String, String> = DEFAULT_HEADERS
            .iter()
            .map(|(k, v)| (k.to_string(), v.to_string()))
            .collect();
        for (k, v) in &self.headers {
            h.retain(|existing, _| !existing.eq_ignore_ascii_case(k));
            h.insert(k.clone(), v.clone());
        }
        h
    }
}

fn de_idle_timeout<'de, D: Deserializer<'de>>(d: D) -> Result<u64, D::Error> {
    de_range(d, "idle-timeout-secs", 1, 86_400).map(|v| v as u64)
}
