//! `staleguard edge` (issue 17): a caching reverse proxy that keeps stale content exactly as a CDN
//! edge would, so a laptop or a CI job can run deploy → purge → verify through a real cache.
//!
//! This crate starts with its heart, pure and clock-free like the service's model: [`policy`], the
//! shared-cache rules of RFC 9111 (what may be stored, for how long it is fresh, when it must be
//! revalidated, the stale-while-revalidate and stale-if-error windows), and [`vary`], the cache key's
//! variant part (`Vary`, with `Accept-Encoding` normalised to one coding so brotli is cached apart from
//! gzip, and a cap on variants). The proxy around them (request collapsing, the purge API, eviction)
//! comes next and only asks these two what to do.

pub mod policy;
pub mod vary;
