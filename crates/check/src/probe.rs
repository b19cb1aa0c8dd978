//! Reading what an origin serves: its version endpoint, polled until it reports the deployed version.
//! A purge must not reach the CDN before the origin switched, or the CDN's next fetch re-caches the old
//! content.

use std::time::{Duration, Instant};

use staleguard_core::backoff::Backoff;
use staleguard_core::event::{Event, Observer, emit};

use crate::CheckError;
use crate::client::{client_builder, redact_url, transport_error};

fn client() -> Result<reqwest::Client, CheckError> {
    client_builder(Duration::from_secs(10))
        .redirect(reqwest::redirect::Policy::none())
        .build()
        .map_err(|e| CheckError::Client {
            target: "origin".into(),
            message: e.to_string(),
        })
}

async fn fetch_version(client: &reqwest::Client, url: &str) -> Result<String, String> {
    match client.get(url).send().await {
        Ok(r) if r.status().is_success() => match r.json::<serde_json::Value>().await {
            Ok(v) => v
                .get("version")
                .and_then(|v| v.as_str())
                .map(str::to_string)
                .ok_or_else(|| "an answer without a \"version\" field".to_string()),
            Err(e) => Err(format!(
                "an answer that is not version JSON ({})",
                transport_error(&e)
            )),
        },
        Ok(r) => Err(format!("status {}", r.status())),
        Err(e) => Err(format!("no answer ({})", transport_error(&e))),
    }
}

/// The origin did not report the wanted version by the deadline.
#[derive(Debug)]
pub struct NotSwitched {
    /// What it reported last: its version, or why there was none.
    pub last: Result<String, String>,
    pub error: CheckError,
}

/// Polls `url` until it reports `want`, at most until `deadline`: every 100 ms at first, then less often
/// (at most every 2 s).
pub async fn wait_version(url: &str, want: &str, deadline: Instant) -> Result<(), NotSwitched> {
    wait_version_observed(url, want, deadline, None).await
}

/// [`wait_version`], telling `observer` of every wait ([`Event::OriginWaiting`]).
pub async fn wait_version_observed(
    url: &str,
    want: &str,
    deadline: Instant,
    observer: Option<&Observer>,
) -> Result<(), NotSwitched> {
    let client = client().map_err(|error| NotSwitched {
        last: Err(error.message()),
        error,
    })?;
    let schedule = Backoff::new(Duration::from_millis(100), 2.0, Duration::from_secs(2));
    let mut round = 1;
    loop {
        let last = fetch_version(&client, url).await;
        let seen = match &last {
            Ok(got) if got == want => return Ok(()),
            Ok(got) => format!("version `{got}`"),
            Err(e) => e.clone(),
        };
        let Some(pause) = schedule.until(
            round,
            0.0,
            deadline.saturating_duration_since(Instant::now()),
        ) else {
            let error = CheckError::NotSwitched {
                url: redact_url(url),
                seen,
                want: want.to_string(),
            };
            return Err(NotSwitched { last, error });
        };
        emit(
            observer,
            Event::OriginWaiting {
                url: redact_url(url),
                seen,
                after: pause,
            },
        );
        tokio::time::sleep(pause).await;
        round += 1;
    }
}
