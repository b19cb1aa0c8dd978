//! The store crate's one integration test binary: deploy, re-deploy, crash-resume, GC and rollback
//! through the public API (`staleguard_store::{deploy, rollback, history}`), each case run on a local
//! folder (`file://`, [`local`]) and on S3 (a real moto server, `s3`, with the `s3` feature). The
//! cases are written once ([`cases`]) against a [`target::Target`]; a case that must kill a deploy, or
//! that needs the AWS environment (which a test cannot set in its own process), runs in a child
//! process: this test binary again, filtered to [`child::run_in_child`] ([`child`]).

mod cases;
mod child;
mod local;
#[cfg(feature = "s3")]
mod s3;
mod site;
mod target;
mod usage;
