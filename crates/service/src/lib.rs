//! The invalidation service for runtime edits (issue 15, `../shared/SERVICE.md`).
//!
//! This crate starts with its heart, [`model`], and the events apps send ([`event`]: validation with the
//! field and reason of every 400 and 413). [`model`] is a pure, clock-free state machine of scopes, committed
//! events, per-provider cursors and batches (debounce with a max-wait cap, union coalescing with a size
//! cap, follow-up batches for events that arrive while a batch runs, retries with backoff that new events
//! never reset, dead letters, restarts that rebuild from the log). [`log`] is the durable log on SQLite
//! (group commit by one writer thread; the model is rebuilt from it with [`Service::restore`]); [`pg`] is
//! the same semantics on PostgreSQL for several instances (the state in the database, leases, fencing).
//! [`api`] is the HTTP API on either store; [`worker`] sends due batches through a [`worker::Sender`]
//! ([`purge::PurgeSender`]: `staleguard-invalidate`'s purge run) and records their outcome;
//! [`server`] runs both on the `serve` crate's accept loop.

pub mod api;
pub mod client;
pub mod event;
pub mod log;
pub mod metrics;
pub mod model;
pub mod pg;
pub mod purge;
pub mod server;
pub mod worker;

pub use event::{EventBody, Limits, Mode, Refused, check_scope, validate};
pub use model::{
    Batch, Dead, EventState, EventStatus, Outcome, Policy, ProviderState, Routing, Rule, Seq,
    Service,
};
pub use worker::{Sender, Sent};
