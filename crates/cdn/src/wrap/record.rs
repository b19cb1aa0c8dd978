//! Dry run: [`Recorder`] sends nothing, records every batch and answers `Completed`.

use std::sync::{Arc, Mutex};

use async_trait::async_trait;
use staleguard_core::purge::Capabilities;

use crate::{Batch, CdnError, Invalidation, Provider, Receipt, Status};

/// A provider that sends nothing: it records every batch and answers `Completed`. Used by `--dry-run`
/// (with the real provider's name and capabilities, so chunking is the same) and by tests.
#[derive(Debug, Clone)]
pub struct Recorder {
    name: String,
    caps: Capabilities,
    batches: Arc<Mutex<Vec<Batch>>>,
}

impl Recorder {
    pub fn new(name: impl Into<String>, caps: Capabilities) -> Recorder {
        Recorder {
            name: name.into(),
            caps,
            batches: Arc::default(),
        }
    }

    /// A recorder with `p`'s name and capabilities.
    pub fn like(p: &dyn Provider) -> Recorder {
        Recorder::new(p.name(), p.capabilities().clone())
    }

    /// The batches recorded so far, in order.
    pub fn batches(&self) -> Vec<Batch> {
        self.batches
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .clone()
    }
}

#[async_trait]
impl Provider for Recorder {
    fn name(&self) -> &str {
        &self.name
    }
    fn capabilities(&self) -> &Capabilities {
        &self.caps
    }
    async fn purge(&self, batch: &Batch) -> Result<Receipt, CdnError> {
        self.batches
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .push(batch.clone());
        Ok(Receipt {
            provider: self.name.clone(),
            id: None,
            status: Status::Completed,
            items: batch.items.len(),
            detail: "dry run: not sent".into(),
        })
    }
    async fn status(&self, _id: &str) -> Result<Status, CdnError> {
        Ok(Status::Completed)
    }
    async fn list(&self, max: usize) -> Result<Vec<Invalidation>, CdnError> {
        let batches = self.batches();
        Ok(batches
            .iter()
            .rev()
            .take(max)
            .map(|b| Invalidation {
                provider: self.name.clone(),
                id: b.reference.clone(),
                status: Status::Completed,
                created: None,
                items: b.items.iter().map(|i| i.to_string()).collect(),
                reference: Some(b.reference.clone()),
            })
            .collect())
    }
}

#[cfg(test)]
mod tests {
    use std::time::Duration;

    use super::*;
    use crate::wrap::scripted::*;
    use crate::wrap::{RunOptions, chunk, purge_all};

    #[tokio::test(start_paused = true)]
    async fn recorder_records_and_completes() {
        let rec = Recorder::new("dry", caps(2));
        let opts = RunOptions::within(Duration::from_secs(60));
        let whole = Batch {
            reference: "x".into(),
            ..batch(&["/a", "/b", "/c"])
        };
        let calls = chunk(&rec, &whole).unwrap();
        let report = purge_all(&rec, calls, &opts).await.unwrap();
        assert_eq!(report.calls, 2);
        assert!(report.in_progress().is_empty());
        let refs: Vec<String> = rec.batches().into_iter().map(|b| b.reference).collect();
        assert_eq!(refs, ["x-1", "x-2"]);
        let listed = rec.list(10).await.unwrap();
        assert_eq!(listed[0].id, "x-2");
        assert_eq!(listed[1].items, ["/a", "/b"]);
    }
}
