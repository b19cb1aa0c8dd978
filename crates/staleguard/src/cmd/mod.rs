//! One module per subcommand; `run` dispatches.

mod build;
mod deploy;
mod serve;

use std::process::ExitCode;

use anyhow::Result;

use crate::cli::{Cli, Command};

pub fn run(cli: Cli) -> Result<ExitCode> {
    match &cli.command {
        Command::Build(args) => build::run(&cli.global, args),
        Command::Serve(args) => serve::run(&cli.global, args),
        Command::Deploy(args) => deploy::run(&cli.global, args),
        Command::Deploys(args) => deploy::list(&cli.global, args),
        Command::Rollback(args) => deploy::rollback(&cli.global, args),
    }
}
