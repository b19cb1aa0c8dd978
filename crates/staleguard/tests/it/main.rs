//! Integration tests: run the real `staleguard` binary against temporary folders.

mod appcache;
mod build_example;
mod build_rules;
mod cdnconfig;
mod config;
mod conventions;
mod crash;
mod deploy;
mod django;
mod edge;
mod example_output;
mod incremental;
mod init;
mod live;
mod moto;
mod nodes;
mod prove;
mod purge;
mod reuse;
mod secrets;
mod serve;
mod service;
mod snapshot;
mod stacks;
mod support;
mod varnish;
