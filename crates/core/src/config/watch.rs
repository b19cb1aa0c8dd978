//! The `[watch]` section: `staleguard watch`, the monitor that keeps proving users get the current
//! deploy through every `[verify] cdn-url`.

use serde::{Deserialize, Serialize};

use crate::duration::HumanDuration;

#[derive(Debug, Clone, PartialEq, Deserialize, Serialize)]
#[serde(deny_unknown_fields, rename_all = "kebab-case", default)]
pub struct WatchConfig {
    /// Time between rounds.
    pub interval: HumanDuration,
    /// Mutable URLs checked per round besides the current deploy's changed ones (up to as many again):
    /// a window that moves every round, so every live mutable URL is checked over a period.
    pub sample: usize,
    /// Rounds a URL must be stale before a notification (hysteresis); one message per incident per
    /// edge, one more when it clears.
    pub stale_rounds: u32,
    /// Where `/metrics` is served (Prometheus text format); loopback unless told otherwise.
    pub listen: String,
    /// One request at most.
    pub request_timeout: HumanDuration,
}

impl Default for WatchConfig {
    fn default() -> WatchConfig {
        WatchConfig {
            interval: HumanDuration::from_secs(60),
            sample: 20,
            stale_rounds: 2,
            listen: "127.0.0.1:9466".into(),
            request_timeout: HumanDuration::from_secs(15),
        }
    }
}
