//! `staleguard`: the command line. Parses arguments, resolves settings, runs a subcommand, prints, and
//! decides the exit code. It is the only crate that writes to stdout or stderr.

mod cli;
mod cmd;
mod output;
mod settings;

use std::process::ExitCode;

use clap::Parser;

fn main() -> ExitCode {
    let args = cli::Cli::parse();
    output::init_tracing(args.global.verbose, args.global.quiet);
    match cmd::run(args) {
        Ok(code) => code,
        Err(e) => {
            output::print_error(&e);
            ExitCode::from(1)
        }
    }
}
