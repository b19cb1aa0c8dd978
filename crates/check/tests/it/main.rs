//! The check crate's one integration test binary: verify, warm and notify against in-process axum CDNs
//! and a webhook receiver.

mod verify_engine;
