//! Integration tests: run the real `staleguard` binary against temporary folders.

mod build_example;
mod build_rules;
mod config;
mod django;
mod incremental;
mod serve;
mod support;
mod varnish;
