//! The worker: hands the model's due batches to a [`Sender`] (one task per batch), records a success
//! durably (the log's cursor first, then the model) and a failure in the model (which schedules the
//! retry), and sleeps until the next due time or a short poll, whichever is first.
//!
//! The sender is a trait so that the purge path (`staleguard-invalidate`'s run, with the batch's
//! reference as the idempotency key) and a scripted one in tests plug in the same way.

use std::sync::Arc;
use std::time::Duration;

use async_trait::async_trait;

use crate::api::{Api, now_ms};
use crate::model::{Batch, Outcome};

/// Sends one batch to its provider; one attempt, the model decides about retries.
#[async_trait]
pub trait Sender: Send + Sync + 'static {
    async fn send(&self, batch: &Batch) -> Outcome;
}

/// How often the worker looks for due work when nothing is due sooner (new events make work due no
/// earlier than their debounce, so this bounds the extra delay of a flush).
pub const POLL: Duration = Duration::from_millis(100);

/// Runs until `stop` resolves; batches already sent are finished before it returns.
pub async fn run(api: Api, sender: Arc<dyn Sender>, stop: impl std::future::Future<Output = ()>) {
    let mut tasks = tokio::task::JoinSet::new();
    tokio::pin!(stop);
    loop {
        let now = now_ms();
        let (batches, next) = {
            let mut m = api.model.lock().unwrap_or_else(|p| p.into_inner());
            let b = m.start_due(now);
            (b, m.next_due())
        };
        for b in batches {
            let api = api.clone();
            let sender = sender.clone();
            tasks.spawn(async move {
                let outcome = sender.send(&b).await;
                let outcome = match outcome {
                    Outcome::Done => {
                        let log = api.log.clone();
                        let (s, p, t) = (b.scope.clone(), b.provider.clone(), b.through);
                        let saved = tokio::task::spawn_blocking(move || log.set_cursor(&s, &p, t))
                            .await
                            .map_err(|e| e.to_string())
                            .and_then(|r| r.map_err(|e| e.to_string()));
                        match saved {
                            Ok(()) => Outcome::Done,
                            // Purged but not recorded: retried (the provider sees the same reference).
                            Err(e) => Outcome::Failed {
                                reason: format!("cursor not saved: {e}"),
                                retry_after: None,
                            },
                        }
                    }
                    failed => failed,
                };
                let draw = (now_ms() % 1000) as f64 / 1000.0;
                api.model.lock().unwrap_or_else(|p| p.into_inner()).finish(
                    &b.scope,
                    &b.provider,
                    b.through,
                    outcome,
                    now_ms(),
                    draw,
                );
            });
        }
        let wait = next
            .map(|d| Duration::from_millis(d.saturating_sub(now_ms())))
            .unwrap_or(POLL)
            .min(POLL);
        tokio::select! {
            _ = &mut stop => break,
            _ = tokio::time::sleep(wait) => {}
            Some(_) = tasks.join_next(), if !tasks.is_empty() => {}
        }
    }
    while tasks.join_next().await.is_some() {}
}
