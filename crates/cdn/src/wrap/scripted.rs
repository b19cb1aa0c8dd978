//! A provider whose answers are scripted, and the helpers the wrappers' unit tests share.

use std::collections::{HashMap, VecDeque};
use std::sync::{Arc, Mutex};

use async_trait::async_trait;
use staleguard_core::purge::{Capabilities, Item, Pricing};
use tokio::time::Instant;

use super::*;
use crate::{Batch, CdnError, ErrorKind, Event, Invalidation, Provider, Receipt, Status};

/// A provider whose answers are scripted: each purge takes the next scripted answer (default:
/// a receipt, `Completed` unless the provider is asynchronous); each id completes after a number of
/// polls.
#[derive(Debug)]
pub(super) struct Scripted {
    pub(super) caps: Capabilities,
    pub(super) answers: Mutex<VecDeque<Result<(), CdnError>>>,
    /// Purge calls, with their (paused) time.
    pub(super) calls: Mutex<Vec<(Batch, Instant)>>,
    /// id -> polls left before Completed.
    pub(super) polls_left: Mutex<HashMap<String, u32>>,
    pub(super) polls_needed: u32,
    /// Status polls, with their time.
    pub(super) polls: Mutex<Vec<(String, Instant)>>,
    /// Largest sum of in-progress paths seen at a purge.
    pub(super) in_flight_paths: Mutex<usize>,
    pub(super) max_seen: Mutex<usize>,
    pub(super) too_large_above: Option<usize>,
}

pub(super) fn caps(max: usize) -> Capabilities {
    Capabilities {
        paths: true,
        prefixes: true,
        tags: false,
        hosts: false,
        all: true,
        soft: false,
        max_items_per_call: max,
        max_paths_in_flight: None,
        max_prefixes_in_flight: None,
        asynchronous: false,
        pricing: Pricing::FREE,
    }
}

impl Scripted {
    pub(super) fn new(caps: Capabilities) -> Scripted {
        Scripted {
            caps,
            answers: Mutex::default(),
            calls: Mutex::default(),
            polls_left: Mutex::default(),
            polls_needed: 0,
            polls: Mutex::default(),
            in_flight_paths: Mutex::new(0),
            max_seen: Mutex::new(0),
            too_large_above: None,
        }
    }
    pub(super) fn then(self, r: Result<(), CdnError>) -> Scripted {
        self.answers.lock().unwrap().push_back(r);
        self
    }
    pub(super) fn fail(self, kind: ErrorKind) -> Scripted {
        self.then(Err(CdnError::new(kind, "fake", format!("{kind:?}"))))
    }
    pub(super) fn calls(&self) -> Vec<(Batch, Instant)> {
        self.calls.lock().unwrap().clone()
    }
    pub(super) fn refs(&self) -> Vec<String> {
        self.calls().into_iter().map(|(b, _)| b.reference).collect()
    }
}

#[async_trait]
impl Provider for Scripted {
    fn name(&self) -> &str {
        "fake"
    }
    fn capabilities(&self) -> &Capabilities {
        &self.caps
    }
    async fn purge(&self, batch: &Batch) -> Result<Receipt, CdnError> {
        let n = {
            let mut calls = self.calls.lock().unwrap();
            calls.push((batch.clone(), Instant::now()));
            calls.len()
        };
        if let Some(Err(e)) = self.answers.lock().unwrap().pop_front() {
            return Err(e);
        }
        if self.too_large_above.is_some_and(|m| batch.items.len() > m) {
            return Err(CdnError::new(ErrorKind::BatchTooLarge, "fake", "too large"));
        }
        let id = format!("I{n}");
        let status = if self.caps.asynchronous {
            self.polls_left
                .lock()
                .unwrap()
                .insert(id.clone(), self.polls_needed);
            let mut f = self.in_flight_paths.lock().unwrap();
            *f += batch.items.len();
            let mut m = self.max_seen.lock().unwrap();
            *m = (*m).max(*f);
            Status::InProgress
        } else {
            Status::Completed
        };
        Ok(Receipt {
            provider: "fake".into(),
            id: Some(id),
            status,
            items: batch.items.len(),
            detail: String::new(),
        })
    }
    async fn status(&self, id: &str) -> Result<Status, CdnError> {
        self.polls
            .lock()
            .unwrap()
            .push((id.to_string(), Instant::now()));
        let mut left = self.polls_left.lock().unwrap();
        let n = left.get_mut(id).expect("unknown id");
        if *n == 0 {
            return Ok(Status::Completed);
        }
        *n -= 1;
        if *n == 0 {
            let items = self
                .calls()
                .iter()
                .enumerate()
                .find(|(i, _)| format!("I{}", i + 1) == id)
                .map(|(_, (b, _))| b.items.len())
                .unwrap_or(0);
            *self.in_flight_paths.lock().unwrap() -= items;
            return Ok(Status::Completed);
        }
        Ok(Status::InProgress)
    }
    async fn list(&self, _max: usize) -> Result<Vec<Invalidation>, CdnError> {
        Ok(vec![])
    }
}

pub(super) fn batch(paths: &[&str]) -> Batch {
    Batch {
        items: paths.iter().map(|p| Item::path(*p)).collect(),
        reference: "r".into(),
        soft: false,
    }
}

pub(super) fn exact() -> RetryPolicy {
    RetryPolicy {
        jitter: false,
        ..RetryPolicy::default()
    }
}

pub(super) fn events() -> (Observer, Arc<Mutex<Vec<Event>>>) {
    let seen: Arc<Mutex<Vec<Event>>> = Arc::default();
    let s = seen.clone();
    (
        Arc::new(move |e: &Event| s.lock().unwrap().push(e.clone())),
        seen,
    )
}

pub(super) fn asynchronous(polls: u32) -> Scripted {
    let mut c = caps(10);
    c.asynchronous = true;
    c.max_paths_in_flight = Some(5);
    let mut p = Scripted::new(c);
    p.polls_needed = polls;
    p
}
