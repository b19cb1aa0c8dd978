//! Wrappers written once for all providers: retry with backoff and jitter under a deadline, rate limit,
//! chunking by the provider's limits, dry-run recording, and waiting for completion.
