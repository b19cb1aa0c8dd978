//! Telling people: a Slack-compatible incoming webhook (Slack, Mattermost, Rocket.Chat, Discord's
//! `/slack` endpoint) receives a JSON summary of a deploy or a verification.
//!
//! A webhook URL is a secret (its path holds the token): errors show its scheme and host only.

use std::time::Duration;

use reqwest::Url;
use serde_json::{Value, json};
use staleguard_core::text::cut;
use tracing::Instrument;

use crate::client::transport_error;

/// Slack shows at most 10 fields in a section.
const MAX_FIELDS: usize = 10;
/// Slack refuses a section text over 3,000 characters and a field over 2,000.
const MAX_TEXT: usize = 3000;
const MAX_FIELD: usize = 2000;
/// Characters of an error answer's body kept in the error.
const MAX_ERROR_BODY: usize = 300;

/// POSTs `payload` as JSON to the webhook `url`. A non-2xx answer is an error naming the status and the
/// start of the body; no answer within `timeout` is an error too. Never panics; the error never holds
/// the URL's path or query (only `scheme://host[:port]`).
pub async fn post(url: &str, payload: &Value, timeout: Duration) -> Result<(), String> {
    let parsed = Url::parse(url).map_err(|_| {
        "the webhook URL is not a URL (it is not shown: it holds a token)".to_string()
    })?;
    if !matches!(parsed.scheme(), "http" | "https") || parsed.host_str().is_none() {
        return Err(
            "the webhook URL is not an http(s) URL (it is not shown: it holds a token)".into(),
        );
    }
    let shown = parsed.origin().ascii_serialization();
    // The payload leaves the process: no secret in it (an error quoting an echoed token, a URL's
    // password), whatever report it carries.
    let mut payload = payload.clone();
    staleguard_core::secret::scrub_json(&mut payload);
    let span = tracing::info_span!("notify.post", webhook = %shown);
    send(url, &parsed, &shown, &payload, timeout)
        .instrument(span)
        .await
}

async fn send(
    raw: &str,
    url: &Url,
    shown: &str,
    payload: &Value,
    timeout: Duration,
) -> Result<(), String> {
    let client = crate::client::client_builder(timeout)
        .redirect(reqwest::redirect::Policy::none())
        .build()
        .map_err(|e| {
            format!(
                "webhook {shown}: cannot make an HTTP client: {}",
                scrub(&transport_error(&e), raw, url)
            )
        })?;
    let resp = client
        .post(url.clone())
        .json(payload)
        .send()
        .await
        .map_err(|e| {
            format!(
                "webhook {shown}: no answer: {}",
                scrub(&transport_error(&e), raw, url)
            )
        })?;
    let status = resp.status();
    if status.is_success() {
        tracing::info!(status = status.as_u16(), "notified");
        return Ok(());
    }
    let body = resp.text().await.unwrap_or_default();
    let scrubbed = scrub(body.trim(), raw, url);
    let body = cut(&scrubbed, MAX_ERROR_BODY + 1);
    tracing::info!(status = status.as_u16(), "the webhook refused the message");
    Err(if body.is_empty() {
        format!("webhook {shown} answered {status}")
    } else {
        format!("webhook {shown} answered {status}: {body}")
    })
}

/// Removes the URL and its secret parts from a message, should a cause or an answer echo them, then
/// every other secret ([`staleguard_core::secret::scrub`]).
fn scrub(text: &str, raw: &str, url: &Url) -> String {
    let mut out = text.replace(raw, "<webhook>");
    out = out.replace(url.as_str(), "<webhook>");
    let path = url.path();
    if path.len() > 1 {
        out = out.replace(path, "/…");
    }
    if let Some(q) = url.query().filter(|q| !q.is_empty()) {
        out = out.replace(q, "…");
    }
    staleguard_core::secret::scrub(&out).into_owned()
}

/// A Slack message: `text` (the notification line, also shown where blocks are not), a section with
/// `text` as mrkdwn, a section with up to 10 `fields` (`*name*\nvalue`), and the whole `report` under
/// `"staleguard"` for receivers that read JSON (Slack ignores it). Over-long texts are cut to Slack's
/// limits.
pub fn slack_payload(text: &str, fields: &[(String, String)], report: &Value) -> Value {
    let mut blocks = vec![json!({
        "type": "section",
        "text": {"type": "mrkdwn", "text": cut(text, MAX_TEXT)},
    })];
    if !fields.is_empty() {
        let fields: Vec<Value> = fields
            .iter()
            .take(MAX_FIELDS)
            .map(|(name, value)| {
                json!({"type": "mrkdwn", "text": cut(&format!("*{name}*\n{value}"), MAX_FIELD)})
            })
            .collect();
        blocks.push(json!({"type": "section", "fields": fields}));
    }
    json!({
        "text": cut(text, MAX_TEXT),
        "blocks": blocks,
        "staleguard": report,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn payload_shape() {
        let fields: Vec<(String, String)> = (0..12)
            .map(|i| (format!("f{i}"), format!("v{i}")))
            .collect();
        let p = slack_payload("deployed *d42*", &fields, &json!({"ok": true}));
        assert_eq!(p["text"], "deployed *d42*");
        assert_eq!(p["blocks"][0]["text"]["type"], "mrkdwn");
        assert_eq!(p["blocks"][0]["text"]["text"], "deployed *d42*");
        let f = p["blocks"][1]["fields"].as_array().unwrap();
        assert_eq!(f.len(), 10);
        assert_eq!(f[0]["text"], "*f0*\nv0");
        assert_eq!(p["staleguard"]["ok"], true);

        let p = slack_payload(&"x".repeat(5000), &[], &Value::Null);
        assert_eq!(p["blocks"].as_array().unwrap().len(), 1);
        assert_eq!(p["text"].as_str().unwrap().chars().count(), MAX_TEXT);
    }

    #[test]
    fn scrub_hides_the_token() {
        let raw = "https://hooks.slack.com/services/T0/B0/s3cr3t?x=tok";
        let url = Url::parse(raw).unwrap();
        let s = scrub(
            &format!("error for {raw} at /services/T0/B0/s3cr3t"),
            raw,
            &url,
        );
        assert!(!s.contains("s3cr3t") && !s.contains("tok"), "{s}");
    }

    #[tokio::test]
    async fn a_bad_url_is_not_shown() {
        let e = post(
            "hooks.slack.com/services/s3cr3t",
            &json!({}),
            Duration::from_secs(1),
        )
        .await
        .unwrap_err();
        assert!(!e.contains("s3cr3t"), "{e}");
    }
}
