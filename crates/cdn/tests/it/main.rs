//! The cdn crate's one integration test binary; one module per provider or wrapper. `conformance` is
//! the suite every provider passes; each provider's module runs it against its peer.

#[cfg(any(
    feature = "varnish",
    all(feature = "cloudflare", feature = "fastly"),
    feature = "cloudfront"
))]
mod conformance;
#[cfg(any(
    feature = "varnish",
    all(feature = "cloudflare", feature = "fastly"),
    feature = "cloudfront"
))]
mod faulty;
#[cfg(all(feature = "cloudflare", feature = "fastly"))]
mod mock;
#[cfg(feature = "varnish")]
mod varnish;

// CloudFront: the SDK provider against moto and against a fake of our own (InProgress, limits,
// throttling, CallerReference idempotency).
#[cfg(feature = "cloudfront")]
mod cloudfront;
#[cfg(feature = "cloudfront")]
mod fake_cloudfront;
