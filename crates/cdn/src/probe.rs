//! Reading what an origin serves: its version endpoint, once or polled until it reports the deployed
//! version. A purge must not reach the CDN before the origin switched, or the CDN's next fetch re-caches
//! the old content.

use std::time::{Duration, Instant};

use crate::{CdnError, ErrorKind};

fn client() -> Result<reqwest::Client, CdnError> {
    reqwest::Client::builder()
        .timeout(Duration::from_secs(10))
        .connect_timeout(Duration::from_secs(5))
        .build()
        .map_err(|e| CdnError::new(ErrorKind::Config, "origin", e.to_string()))
}

async fn fetch_version(client: &reqwest::Client, url: &str) -> Result<String, String> {
    match client.get(url).send().await {
        Ok(r) if r.status().is_success() => match r.json::<serde_json::Value>().await {
            Ok(v) => v
                .get("version")
                .and_then(|v| v.as_str())
                .map(str::to_string)
                .ok_or_else(|| "an answer without a \"version\" field".to_string()),
            Err(e) => Err(format!("an answer that is not version JSON ({e})")),
        },
        Ok(r) => Err(format!("status {}", r.status())),
        Err(e) => Err(format!("no answer ({e})")),
    }
}

/// The `version` field of the JSON at `url` (a version endpoint such as `staleguard serve`'s).
pub async fn read_version(url: &str) -> Result<String, CdnError> {
    fetch_version(&client()?, url)
        .await
        .map_err(|e| CdnError::new(ErrorKind::Transient, "origin", format!("`{url}`: {e}")))
}

/// Polls `url` until it reports `want`, at most until `deadline`: every 100 ms at first, then less often
/// (at most every 2 s).
pub async fn wait_version(url: &str, want: &str, deadline: Instant) -> Result<(), CdnError> {
    let client = client()?;
    let mut interval = Duration::from_millis(100);
    loop {
        let last = match fetch_version(&client, url).await {
            Ok(got) if got == want => return Ok(()),
            Ok(got) => format!("version `{got}`"),
            Err(e) => e,
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
