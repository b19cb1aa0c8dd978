//! From a `[[cdn]]` entry to ready providers: one match on the provider name, each branch behind its
//! Cargo feature, the config's rate limit applied on top.

use std::sync::Arc;

use staleguard_core::config::{CdnConfig, CdnProvider};

use crate::wrap::RateLimited;
use crate::{CdnError, ErrorKind, OpenContext, Provider};

/// Builds the provider(s) of one `[[cdn]]` entry: several for CloudFront with more than one
/// distribution, else one. Each is wrapped in [`RateLimited`] at `max-rate` calls per second (or the
/// provider's default, [`default_rate`]); add [`crate::wrap::Retry`] on top (see
/// [`crate::wrap::retrying`]). Fails with [`ErrorKind::Config`] when the entry does not pass
/// [`CdnConfig::check`], a token variable is unset, or this binary was built without the provider's
/// feature. Only CloudFront makes network calls here (`distribution = "auto"`, origin path lookup).
pub async fn open(cfg: &CdnConfig, ctx: &OpenContext) -> Result<Vec<Arc<dyn Provider>>, CdnError> {
    cfg.check()
        .map_err(|e| CdnError::new(ErrorKind::Config, cfg.label(), e))?;
    let _ = ctx;
    let raw: Result<Vec<Arc<dyn Provider>>, CdnError> = match cfg.provider {
        #[cfg(feature = "cloudfront")]
        CdnProvider::Cloudfront => crate::cloudfront::open(cfg, ctx).await.map(|ps| {
            ps.into_iter()
                .map(|p| Arc::new(p) as Arc<dyn Provider>)
                .collect()
        }),
        #[cfg(feature = "varnish")]
        CdnProvider::Varnish => {
            crate::varnish::Varnish::new(cfg).map(|p| vec![Arc::new(p) as Arc<dyn Provider>])
        }
        #[cfg(feature = "cloudflare")]
        CdnProvider::Cloudflare => crate::cloudflare::Cloudflare::from_env(cfg)
            .map(|p| vec![Arc::new(p) as Arc<dyn Provider>]),
        #[cfg(feature = "fastly")]
        CdnProvider::Fastly => {
            crate::fastly::Fastly::from_env(cfg).map(|p| vec![Arc::new(p) as Arc<dyn Provider>])
        }
        #[allow(unreachable_patterns)]
        other => Err(not_built(cfg, other)),
    };
    let rate = if cfg.max_rate > 0.0 {
        cfg.max_rate
    } else {
        default_rate(cfg.provider)
    };
    Ok(raw?
        .into_iter()
        .map(|p| {
            if rate > 0.0 {
                Arc::new(RateLimited::new(p, rate)) as Arc<dyn Provider>
            } else {
                p
            }
        })
        .collect())
}

#[allow(dead_code)]
fn not_built(cfg: &CdnConfig, provider: CdnProvider) -> CdnError {
    let name = provider.as_str();
    CdnError::new(
        ErrorKind::Config,
        cfg.label(),
        format!("this staleguard was built without the `{name}` feature"),
    )
    .with_hint(format!(
        "rebuild with `cargo install staleguard --features {name}` (or the default features)"
    ))
}

/// API calls per second when the config's `max-rate` is 0: Cloudflare allows 1,200 requests per five
/// minutes per user (4/s); CloudFront throttles CreateInvalidation at a few per second; Fastly and a
/// Varnish node need no limit from us.
pub fn default_rate(provider: CdnProvider) -> f64 {
    match provider {
        CdnProvider::Cloudflare => 4.0,
        CdnProvider::Cloudfront => 2.0,
        CdnProvider::Fastly | CdnProvider::Varnish => 0.0,
    }
}

#[cfg(test)]
mod tests {
    /// A provider's `Debug` never shows a token or a URL's password.
    #[cfg(all(feature = "varnish", feature = "cloudflare", feature = "fastly"))]
    #[test]
    fn debug_never_shows_credentials() {
        use staleguard_core::config::CdnConfig;
        let cfg = |v: serde_json::Value| serde_json::from_value::<CdnConfig>(v).unwrap();
        let texts = [
            format!(
                "{:?}",
                crate::varnish::Varnish::new(&cfg(serde_json::json!({
                    "provider": "varnish", "nodes": ["http://purger:n0dePass@10.0.0.5:6081"],
                })))
                .unwrap()
            ),
            format!(
                "{:?}",
                crate::cloudflare::Cloudflare::new(
                    &cfg(serde_json::json!({
                        "provider": "cloudflare", "zone": "Z", "domain": "www.example.com",
                        "api": "http://u:ap1Pass@h/v4",
                    })),
                    "t0kenValue".into()
                )
                .unwrap()
            ),
            format!(
                "{:?}",
                crate::fastly::Fastly::new(
                    &cfg(serde_json::json!({
                        "provider": "fastly", "service": "S", "domain": "www.example.com",
                        "api": "http://u:ap1Pass@h",
                    })),
                    "t0kenValue".into()
                )
                .unwrap()
            ),
        ];
        for t in texts {
            assert!(
                !t.contains("n0dePass") && !t.contains("ap1Pass") && !t.contains("t0kenValue"),
                "{t}"
            );
            assert!(t.contains(":…@"), "{t}");
        }
    }
}
