//! One module per subcommand; `run` dispatches.

mod build;
pub mod cache;
mod cdn_config;
mod deploy;
mod edge;
mod init;
mod invalidate;
mod purge;
mod serve;
mod service;
pub mod sign;
mod stats;
mod verify;
mod watch;

use std::process::ExitCode;

use anyhow::Result;

use crate::cli::{Cli, Command};

pub fn run(cli: Cli) -> Result<ExitCode> {
    match &cli.command {
        Command::Init(args) => init::run(&cli.global, args),
        Command::Build(args) => build::run(&cli.global, args),
        Command::Serve(args) => serve::run(&cli.global, args),
        Command::Edge(args) => edge::run(&cli.global, args),
        Command::CdnConfig(args) => cdn_config::run(&cli.global, args),
        Command::SignUrl(args) => sign::run(&cli.global, args),
        Command::Deploy(args) => deploy::run(&cli.global, args),
        Command::Deploys(args) => deploy::list(&cli.global, args),
        Command::Rollback(args) => deploy::rollback(&cli.global, args),
        Command::Invalidate(args) => invalidate::run(&cli.global, args),
        Command::Invalidations(cmd) => invalidate::invalidations(&cli.global, cmd),
        Command::Verify(args) => verify::run_verify(&cli.global, args),
        Command::Watch(args) => watch::run(&cli.global, args),
        Command::Warm(args) => verify::run_warm(&cli.global, args),
        Command::Stats(args) => stats::run(&cli.global, args),
        Command::Service(args) => service::run(&cli.global, args),
        Command::Cache(cmd) => cache::run(&cli.global, cmd),
    }
}

/// The async runtime the store and CDN commands run on.
pub fn runtime() -> anyhow::Result<tokio::runtime::Runtime> {
    use anyhow::Context;
    tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
        .context("cannot start the async runtime")
}
