//! Reading what an origin (or, later, the CDN) serves: the version endpoint, polled until it reports
//! the deployed version. A purge must not reach the CDN before the origin switched, or the CDN's next
//! fetch re-caches the old content.

use std::time::{Duration, Instant};

use crate::{CdnError, ErrorKind};

/// Polls `url` (a version endpoint answering `{"version": "…"}`) until it reports `want`, at most
/// until `deadline`: every 100 ms at first, then less often (at most every 2 s).
pub async fn wait_version(url: &str, want: &str, deadline: Instant) -> Result<(), CdnError> {
    let client = reqwest::Client::builder()
        .timeout(Duration::from_secs(10))
        .connect_timeout(Duration::from_secs(5))
        .build()
        .map_err(|e| CdnError::new(ErrorKind::Config, "origin", e.to_string()))?;
    let mut interval = Duration::from_millis(100);
    loop {
        let last = match client
            .get(url)
            .header("cache-control", "no-cache")
            .send()
            .await
        {
            Ok(r) if r.status().is_success() => match r.json::<serde_json::Value>().await {
                Ok(v) => {
                    let got = v.get("version").and_then(|v| v.as_str()).unwrap_or("");
                    if got == want {
                        return Ok(());
                    }
                    format!("version `{got}`")
                }
                Err(e) => format!("an answer that is not version JSON ({e})"),
            },
            Ok(r) => format!("status {}", r.status()),
            Err(e) => format!("no answer ({e})"),
        };
        let now = Instant::now();
        if now >= deadline {
            return Err(CdnError::new(
                ErrorKind::Timeout,
                "origin",
                format!("`{url}` still reports {last}, not the deployed version `{want}`; the CDNs were not purged (they would re-cache the old content)"),
            )
            .with_hint("check that the origin serves the store this deploy wrote to (for `staleguard serve`: its folder), then run `staleguard invalidate`"));
        }
        tokio::time::sleep(interval.min(deadline - now)).await;
        interval = (interval * 2).min(Duration::from_secs(2));
    }
}
