//! Printing: errors with their cause chain, logs, progress bars on a terminal, sizes and durations.
//!
//! Everything this binary writes to stdout or stderr is scrubbed of secrets first
//! ([`staleguard_core::secret::scrub`]): its `print!`/`println!`/`eprint!`/`eprintln!` are the macros
//! of `main.rs`, which call [`emit`]; log lines go through [`ScrubbedStderr`]; panics through the hook
//! [`init_panic_hook`] installs.

use std::io::{IsTerminal, Write};
use std::sync::Mutex;

use indicatif::{ProgressBar, ProgressDrawTarget, ProgressStyle};
use staleguard_assets::{Phase, Progress};
use staleguard_core::secret::scrub;

/// Writes `args` (and a newline when `newline`) to stderr or stdout, scrubbed of secrets. A closed
/// stream (`staleguard … | head`) is not an error.
pub fn emit(to_stderr: bool, newline: bool, args: std::fmt::Arguments<'_>) {
    let mut text = std::fmt::format(args);
    if newline {
        text.push('\n');
    }
    let clean = scrub(&text);
    let _ = if to_stderr {
        std::io::stderr().lock().write_all(clean.as_bytes())
    } else {
        std::io::stdout().lock().write_all(clean.as_bytes())
    };
}

/// The log writer: each event is buffered whole, then written to stderr scrubbed of secrets.
pub struct ScrubbedStderr;

/// One log event's bytes, written when the event is done.
pub struct ScrubbedEvent(Vec<u8>);

impl<'a> tracing_subscriber::fmt::MakeWriter<'a> for ScrubbedStderr {
    type Writer = ScrubbedEvent;

    fn make_writer(&'a self) -> ScrubbedEvent {
        ScrubbedEvent(Vec::new())
    }
}

impl Write for ScrubbedEvent {
    fn write(&mut self, buf: &[u8]) -> std::io::Result<usize> {
        self.0.extend_from_slice(buf);
        Ok(buf.len())
    }

    fn flush(&mut self) -> std::io::Result<()> {
        Ok(())
    }
}

impl Drop for ScrubbedEvent {
    fn drop(&mut self) {
        if self.0.is_empty() {
            return;
        }
        let text = String::from_utf8_lossy(&self.0);
        let _ = std::io::stderr().lock().write_all(scrub(&text).as_bytes());
    }
}

/// Panic messages are scrubbed like everything else (a panic may quote a URL or an answer).
pub fn init_panic_hook() {
    std::panic::set_hook(Box::new(|info| {
        let thread = std::thread::current();
        let name = thread.name().unwrap_or("<unnamed>");
        let backtrace = std::backtrace::Backtrace::capture();
        let trace = match backtrace.status() {
            std::backtrace::BacktraceStatus::Captured => format!("\n{backtrace}"),
            _ => "\nnote: run with `RUST_BACKTRACE=1` environment variable to display a backtrace"
                .to_string(),
        };
        eprintln!("thread '{name}' {info}{trace}");
    }));
}

/// Sets up `tracing` on stderr (coloured only when stderr is a terminal); `RUST_LOG` overrides the
/// verbosity flags. Every line is scrubbed of secrets ([`ScrubbedStderr`]).
pub fn init_tracing(verbose: u8, quiet: bool) {
    let level = match (quiet, verbose) {
        (true, _) => "error",
        (_, 0) => "warn",
        (_, 1) => "info",
        (_, 2) => "debug",
        _ => "trace",
    };
    let filter = tracing_subscriber::EnvFilter::try_from_default_env()
        .unwrap_or_else(|_| tracing_subscriber::EnvFilter::new(level));
    let _ = tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_writer(ScrubbedStderr)
        // Colours only on a terminal: `serve -vv 2> log` must write plain text.
        .with_ansi(std::io::stderr().is_terminal())
        .with_target(false)
        .try_init();
}

/// Prints an error and its causes, one per line, then what to do: the hints the libraries' errors
/// carry as data (the build's, a store's, a CDN's, a check's), last.
pub fn print_error(e: &anyhow::Error) {
    eprintln!("error: {e}");
    for cause in e.chain().skip(1) {
        eprintln!("  caused by: {cause}");
    }
    for h in hints(e) {
        eprintln!("hint: {h}");
    }
}

/// The hints of an error's chain, each once, outermost first.
pub fn hints(e: &anyhow::Error) -> Vec<String> {
    let mut out: Vec<String> = Vec::new();
    for cause in e.chain() {
        let hint: Option<std::borrow::Cow<'_, str>> =
            if let Some(x) = cause.downcast_ref::<staleguard_invalidate::Error>() {
                x.hint()
            } else if let Some(x) = cause.downcast_ref::<staleguard_store::StoreError>() {
                x.hint()
            } else if let Some(x) = cause.downcast_ref::<staleguard_assets::BuildError>() {
                x.hint().map(Into::into)
            } else if let Some(x) = cause.downcast_ref::<staleguard_cdn::CdnError>() {
                x.hint().map(Into::into)
            } else if let Some(x) = cause.downcast_ref::<staleguard_check::CheckError>() {
                x.hint().map(Into::into)
            } else {
                None
            };
        if let Some(h) = hint
            && !out.iter().any(|o| *o == *h)
        {
            out.push(h.into_owned());
        }
    }
    out
}

/// `1.2 MB`-style sizes (powers of 1000).
pub fn size(bytes: u64) -> String {
    const UNITS: [&str; 5] = ["B", "kB", "MB", "GB", "TB"];
    let mut v = bytes as f64;
    let mut u = 0;
    while v >= 1000.0 && u + 1 < UNITS.len() {
        v /= 1000.0;
        u += 1;
    }
    if u == 0 {
        format!("{bytes} B")
    } else {
        format!("{v:.1} {}", UNITS[u])
    }
}

/// Progress bars on stderr, shown only on a terminal and when not quiet or in JSON mode.
pub struct Bars {
    bar: Mutex<Option<ProgressBar>>,
    enabled: bool,
}

impl Bars {
    pub fn new(enabled: bool) -> Bars {
        Bars {
            bar: Mutex::new(None),
            enabled: enabled && std::io::stderr().is_terminal(),
        }
    }
}

impl Progress for Bars {
    fn start(&self, phase: Phase, total: u64) {
        if !self.enabled || total == 0 {
            return;
        }
        let (msg, template) = match phase {
            Phase::Scan => ("scan", "{msg:>9} [{bar:30}] {pos}/{len} files"),
            Phase::Compress => (
                "compress",
                "{msg:>9} [{bar:30}] {bytes}/{total_bytes} {bytes_per_sec} eta {eta}",
            ),
            Phase::Write => ("write", "{msg:>9} [{bar:30}] {pos}/{len} files"),
        };
        let bar = ProgressBar::with_draw_target(Some(total), ProgressDrawTarget::stderr());
        bar.set_style(
            ProgressStyle::with_template(template)
                .unwrap_or_else(|_| ProgressStyle::default_bar())
                .progress_chars("=> "),
        );
        bar.set_message(msg);
        *self.bar.lock().unwrap_or_else(|e| e.into_inner()) = Some(bar);
    }

    fn advance(&self, n: u64) {
        if let Some(b) = self.bar.lock().unwrap_or_else(|e| e.into_inner()).as_ref() {
            b.inc(n);
        }
    }

    fn finish(&self, _phase: Phase) {
        if let Some(b) = self.bar.lock().unwrap_or_else(|e| e.into_inner()).take() {
            b.finish_and_clear();
        }
    }
}

/// Upload progress for deploys and rollbacks: one bar per rank, in bytes.
pub struct UploadBars {
    bar: Mutex<Option<ProgressBar>>,
    enabled: bool,
}

impl UploadBars {
    pub fn new(enabled: bool) -> UploadBars {
        UploadBars {
            bar: Mutex::new(None),
            enabled: enabled && std::io::stderr().is_terminal(),
        }
    }
}

impl staleguard_store::Progress for UploadBars {
    fn phase(&self, name: &str, objects: usize, bytes: u64) {
        let mut slot = self.bar.lock().unwrap_or_else(|e| e.into_inner());
        if let Some(b) = slot.take() {
            b.finish_and_clear();
        }
        if !self.enabled || objects == 0 {
            return;
        }
        let bar = ProgressBar::with_draw_target(Some(bytes.max(1)), ProgressDrawTarget::stderr());
        bar.set_style(
            // `wide_bar` takes what the terminal's width leaves: a fixed bar wrapped on 80 columns, and
            // every redraw then printed a new line.
            ProgressStyle::with_template(
                "{msg:>10} [{wide_bar}] {bytes}/{total_bytes} {bytes_per_sec} eta {eta}",
            )
            .unwrap_or_else(|_| ProgressStyle::default_bar())
            .progress_chars("=> "),
        );
        bar.set_message(name.to_string());
        *slot = Some(bar);
    }

    fn uploaded(&self, _key: &str, bytes: u64) {
        if let Some(b) = self.bar.lock().unwrap_or_else(|e| e.into_inner()).as_ref() {
            b.inc(bytes);
        }
    }

    fn deleted(&self, _key: &str) {}
}

impl Drop for UploadBars {
    fn drop(&mut self) {
        if let Some(b) = self.bar.lock().unwrap_or_else(|e| e.into_inner()).take() {
            b.finish_and_clear();
        }
    }
}
