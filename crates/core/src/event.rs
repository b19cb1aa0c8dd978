//! Telemetry through one path: every send, retry, split, poll, stale re-check and origin wait of the
//! CDN wrappers and the edge checks is an [`Event`] handed to an [`Observer`]. The CLI's progress lines
//! are one observer, tests that count retries are another, a metrics exporter is one more.

use std::sync::Arc;
use std::time::Duration;

use serde::{Deserialize, Serialize};

/// Where an asynchronous purge stands.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum Status {
    InProgress,
    Completed,
}

/// Something worth reporting: the CLI prints them, tests count them, `tracing` logs them.
#[derive(Debug, Clone, PartialEq)]
pub enum Event {
    /// A call is about to be sent (`attempt` 1, or a later attempt of a call retried whole); for a
    /// provider whose unit is a request, also one request of a call about to be sent again on its own
    /// (`items`: what that request carries, `attempt` from 2).
    Sending {
        provider: String,
        items: usize,
        attempt: u32,
    },
    /// A call succeeded.
    Sent {
        provider: String,
        items: usize,
        elapsed: Duration,
        id: Option<String>,
    },
    /// A call, or one request of a call whose unit is a request, failed and will be sent again after
    /// `after`. `error` is the error's message (its first line names the provider).
    Retrying {
        provider: String,
        error: String,
        after: Duration,
        attempt: u32,
    },
    /// A status poll answered.
    Polled {
        provider: String,
        id: String,
        status: Status,
    },
    /// The provider refused a call as too large: it is sent again as two halves.
    Split {
        provider: String,
        reference: String,
        items: usize,
    },
    /// An edge check did not see what was deployed (`got`: the hash or version it saw; `error`: why
    /// the attempt failed otherwise) and is made again after `after`.
    Rechecking {
        /// The base, any password hidden.
        base: String,
        path: String,
        /// The `Accept-Encoding` sent (empty: none).
        encoding: String,
        /// Attempts made so far.
        attempt: u32,
        got: Option<String>,
        error: Option<String>,
        after: Duration,
    },
    /// The origin's version endpoint (`url`, any password hidden) does not report the wanted version
    /// yet (`seen`: what it reported, or why there was nothing); asked again after `after`.
    OriginWaiting {
        url: String,
        seen: String,
        after: Duration,
    },
}

/// Receives [`Event`]s.
pub type Observer = Arc<dyn Fn(&Event) + Send + Sync>;

/// Hands `event` to `observer`, when there is one.
pub fn emit(observer: Option<&Observer>, event: Event) {
    if let Some(o) = observer {
        o(&event);
    }
}
