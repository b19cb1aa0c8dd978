//! A client of a running service, for `staleguard invalidate --scope` and `staleguard service
//! status|dead|retry`: every error says what failed, at which URL, and what to do.

use std::time::Duration;

use serde_json::Value;

use crate::event::EventBody;

/// A running service's address and one of its tokens (never shown in `Debug`).
#[derive(Clone)]
pub struct Client {
    base: String,
    token: String,
    http: reqwest::Client,
}

impl std::fmt::Debug for Client {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Client")
            .field("base", &self.base)
            .finish_non_exhaustive()
    }
}

/// A call that failed: the message says what and where, the hint what to do.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ClientError {
    pub message: String,
    pub hint: Option<String>,
    /// The HTTP status, when the service answered.
    pub status: Option<u16>,
}

impl std::fmt::Display for ClientError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(&self.message)?;
        if let Some(h) = &self.hint {
            write!(f, "\nhint: {h}")?;
        }
        Ok(())
    }
}

impl std::error::Error for ClientError {}

impl Client {
    /// `base`: `http://127.0.0.1:7070`.
    pub fn new(base: &str, token: &str) -> Result<Client, ClientError> {
        let http = reqwest::Client::builder()
            .timeout(Duration::from_secs(330))
            .build()
            .map_err(|e| ClientError {
                message: format!("cannot make an HTTP client: {e}"),
                hint: None,
                status: None,
            })?;
        Ok(Client {
            base: base.trim_end_matches('/').to_string(),
            token: token.to_string(),
            http,
        })
    }

    /// One call, tried again when the service is briefly unavailable: a refused connection (it is
    /// restarting) up to 3 times over about 1.5 s, a 429 or 503 up to 5 times after its `Retry-After`
    /// (at most 5 s each). Events carry an idempotency key, so a request retried after a lost answer
    /// is still one event.
    async fn call(
        &self,
        method: reqwest::Method,
        path: &str,
        body: Option<Value>,
    ) -> Result<Value, ClientError> {
        let (mut refused, mut busy) = (0u32, 0u32);
        loop {
            match self.call_once(method.clone(), path, body.clone()).await {
                Err((e, _)) if e.status.is_none() && refused < 3 => {
                    refused += 1;
                    tokio::time::sleep(Duration::from_millis(200 << refused)).await;
                }
                Err((e, after)) if matches!(e.status, Some(429 | 503)) && busy < 5 => {
                    busy += 1;
                    tokio::time::sleep(
                        after
                            .unwrap_or(Duration::from_secs(1))
                            .min(Duration::from_secs(5)),
                    )
                    .await;
                }
                other => return other.map_err(|(e, _)| e),
            }
        }
    }

    async fn call_once(
        &self,
        method: reqwest::Method,
        path: &str,
        body: Option<Value>,
    ) -> Result<Value, (ClientError, Option<Duration>)> {
        let url = format!("{}{path}", self.base);
        let mut req = self
            .http
            .request(method.clone(), &url)
            .bearer_auth(&self.token);
        if let Some(b) = body {
            req = req.json(&b);
        }
        let resp = req.send().await.map_err(|e| {
            (
                ClientError {
                    message: format!("cannot reach the service at {url}: {}", root(&e)),
                    hint: Some(
                        "start it with `staleguard service`, or point at it with --service-url"
                            .into(),
                    ),
                    status: None,
                },
                None,
            )
        })?;
        let status = resp.status();
        let after = resp
            .headers()
            .get(reqwest::header::RETRY_AFTER)
            .and_then(|v| v.to_str().ok())
            .and_then(|v| v.trim().parse::<u64>().ok())
            .map(Duration::from_secs);
        let text = resp.text().await.unwrap_or_default();
        let json: Value = serde_json::from_str(&text).unwrap_or(Value::Null);
        if status.is_success() {
            return Ok(json);
        }
        let said = json
            .get("error")
            .and_then(Value::as_str)
            .map_or_else(|| text.trim().chars().take(300).collect(), str::to_string);
        let field = json.get("field").and_then(Value::as_str);
        let hint = match status.as_u16() {
            401 => Some(
                "the service did not accept the token: set STALEGUARD_SERVICE_TOKEN (or the [service] \
                 token-env variable) to one of the service's tokens"
                    .to_string(),
            ),
            429 => Some("the service's queue is full: retry shortly".to_string()),
            _ => None,
        };
        Err((
            ClientError {
                message: match field {
                    Some(f) => format!("{method} {url}: {status}: {f}: {said}"),
                    None => format!("{method} {url}: {status}: {said}"),
                },
                hint,
                status: Some(status.as_u16()),
            },
            after,
        ))
    }

    /// Sends one event; the service's answer (`{seq, scope, due_at_ms}`).
    pub async fn send(&self, scope: &str, event: &EventBody) -> Result<Value, ClientError> {
        let body = serde_json::to_value(event).unwrap_or(Value::Null);
        self.call(
            reqwest::Method::POST,
            &format!("/v1/scopes/{}/invalidations", encode(scope)),
            Some(body),
        )
        .await
    }

    /// An event's status, waiting up to `wait` for it to be purged (or dead).
    pub async fn event(&self, seq: u64, wait: Duration) -> Result<Value, ClientError> {
        let q = if wait.is_zero() {
            String::new()
        } else {
            format!("?wait={}ms", wait.as_millis())
        };
        self.call(reqwest::Method::GET, &format!("/v1/events/{seq}{q}"), None)
            .await
    }

    /// A scope's pending events per provider and due time.
    pub async fn scope(&self, scope: &str) -> Result<Value, ClientError> {
        self.call(
            reqwest::Method::GET,
            &format!("/v1/scopes/{}", encode(scope)),
            None,
        )
        .await
    }

    pub async fn dead_letters(&self) -> Result<Value, ClientError> {
        self.call(reqwest::Method::GET, "/v1/dead-letters", None)
            .await
    }

    pub async fn retry(&self, id: u64) -> Result<Value, ClientError> {
        self.call(
            reqwest::Method::POST,
            &format!("/v1/dead-letters/{id}:retry"),
            None,
        )
        .await
    }

    pub async fn flush(&self, scope: &str) -> Result<Value, ClientError> {
        self.call(
            reqwest::Method::POST,
            &format!("/v1/scopes/{}:flush", encode(scope)),
            None,
        )
        .await
    }
}

/// A scope in a URL path segment (`ws:42` stays readable; `/`, `%`, `?`, `#` and spaces are escaped).
fn encode(scope: &str) -> String {
    let mut out = String::with_capacity(scope.len());
    for b in scope.bytes() {
        match b {
            b'A'..=b'Z' | b'a'..=b'z' | b'0'..=b'9' | b'-' | b'_' | b'.' | b'~' | b':' | b'@' => {
                out.push(b as char)
            }
            _ => out.push_str(&format!("%{b:02X}")),
        }
    }
    out
}

fn root(e: &reqwest::Error) -> String {
    let mut msg = e.to_string();
    let mut cur = std::error::Error::source(e);
    while let Some(s) = cur {
        msg = s.to_string();
        cur = s.source();
    }
    msg
}
