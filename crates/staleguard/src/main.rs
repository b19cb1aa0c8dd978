//! `staleguard`: the command line. Parses arguments, resolves settings, runs a subcommand, prints, and
//! decides the exit code. It is the only crate that writes to stdout or stderr.

// Every `print!`, `println!`, `eprint!` and `eprintln!` of this crate is one of these (they shadow std's
// in every module below): the text goes through `output::emit`, which scrubs secrets before writing.
macro_rules! print {
    ($($arg:tt)*) => { $crate::output::emit(false, false, ::std::format_args!($($arg)*)) };
}
macro_rules! println {
    () => { $crate::output::emit(false, true, ::std::format_args!("")) };
    ($($arg:tt)*) => { $crate::output::emit(false, true, ::std::format_args!($($arg)*)) };
}
macro_rules! eprint {
    ($($arg:tt)*) => { $crate::output::emit(true, false, ::std::format_args!($($arg)*)) };
}
macro_rules! eprintln {
    () => { $crate::output::emit(true, true, ::std::format_args!("")) };
    ($($arg:tt)*) => { $crate::output::emit(true, true, ::std::format_args!($($arg)*)) };
}

mod cli;
mod cmd;
mod exit;
mod output;
mod settings;

use std::process::ExitCode;

use clap::Parser;

fn main() -> ExitCode {
    output::init_panic_hook();
    // Before anything can be printed: a URL with a password on the command line or in the environment.
    settings::register_process_secrets();
    let args = match cli::Cli::try_parse() {
        Ok(args) => args,
        Err(e) => return usage_error(e),
    };
    output::init_tracing(args.global.verbose, args.global.quiet);
    match cmd::run(args) {
        Ok(code) => code,
        Err(e) => {
            output::print_error(&e);
            ExitCode::from(crate::exit::ExitStatus::Failed)
        }
    }
}

/// A usage error, `--help` or `--version`: clap's own output (coloured on a terminal), unless it quotes a
/// secret (`--cdn-url http://user:password@…` with a bad value): then the plain text, scrubbed.
fn usage_error(e: clap::Error) -> ExitCode {
    let plain = e.render().to_string();
    if matches!(
        staleguard_core::secret::scrub(&plain),
        std::borrow::Cow::Borrowed(_)
    ) {
        e.exit();
    }
    if e.use_stderr() {
        eprint!("{plain}");
    } else {
        print!("{plain}");
    }
    ExitCode::from(u8::try_from(e.exit_code()).unwrap_or(crate::exit::ExitStatus::Usage.code()))
}
