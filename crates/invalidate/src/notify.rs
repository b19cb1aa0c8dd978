//! Telling a webhook what a deploy did: one summary line and a few fields, in the Slack-compatible shape
//! `staleguard_check::notify` builds. A notification never fails a deploy: the caller gets the error to
//! show as a warning.

use std::time::Duration;

/// Where to post: the URL read from the variable `[verify] webhook-env` names.
#[derive(Clone)]
pub struct Webhook {
    /// The variable's name, for messages (the URL is a secret).
    pub var: String,
    pub url: String,
}

impl std::fmt::Debug for Webhook {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Webhook")
            .field("var", &self.var)
            .field("url", &"<redacted>")
            .finish()
    }
}

impl Webhook {
    /// The webhook named by `var`, when that variable holds a URL.
    pub fn from_env(var: &str) -> Option<Webhook> {
        if var.is_empty() {
            return None;
        }
        let url = std::env::var(var).ok()?;
        let url = url.trim();
        (!url.is_empty()).then(|| Webhook {
            var: var.to_string(),
            url: url.to_string(),
        })
    }
}

/// Posts `text`, `fields` and the whole `report` (JSON) to the webhook, within 10 s.
pub async fn notify(
    hook: &Webhook,
    text: &str,
    fields: &[(String, String)],
    report: &serde_json::Value,
) -> Result<(), String> {
    let payload = staleguard_check::notify::slack_payload(text, fields, report);
    staleguard_check::notify::post(&hook.url, &payload, Duration::from_secs(10)).await
}
