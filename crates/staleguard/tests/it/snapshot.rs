//! Snapshots (insta) of what a person reads: `--help` of the binary and of every subcommand, found by
//! walking the `Commands:` lists so a new subcommand gets a snapshot too, and the human output of
//! `build`, `deploy` and `invalidate --dry-run` on the bundled example. Times, durations, the temp
//! folder and deploy ids are redacted; everything else is the real output. Under `CI=true` a missing
//! snapshot fails; locally `INSTA_UPDATE=always` (or `cargo insta review`) writes them.

use std::path::Path;
use std::process::Command;

use regex::Regex;

use crate::deploy::{T0, sg};
use crate::support::*;

/// `staleguard ARGS... --help`, with a fixed terminal width (clap wraps help to it). No
/// `STALEGUARD_*` variable the binary reads reaches it (see `Cli::new`): clap would show its value.
fn help(path: &[&str]) -> String {
    let mut c = staleguard(&repo());
    c.args(path).arg("--help").env("COLUMNS", "100");
    let o = run(c);
    assert!(o.status.success(), "{path:?} --help failed");
    String::from_utf8(o.stdout).expect("help is UTF-8")
}

/// The names listed under `Commands:` in a help text (without clap's own `help`).
fn subcommands(help: &str) -> Vec<String> {
    help.lines()
        .skip_while(|l| l.trim_end() != "Commands:")
        .skip(1)
        .take_while(|l| l.starts_with("  "))
        .filter(|l| !l.starts_with("   "))
        .filter_map(|l| l.split_whitespace().next())
        .filter(|name| *name != "help")
        .map(str::to_string)
        .collect()
}

#[test]
fn help_of_the_binary_and_of_every_subcommand() {
    let mut todo: Vec<Vec<String>> = vec![Vec::new()];
    let mut seen = Vec::new();
    while let Some(path) = todo.pop() {
        let args: Vec<&str> = path.iter().map(String::as_str).collect();
        let text = help(&args);
        for sub in subcommands(&text) {
            let mut next = path.clone();
            next.push(sub);
            todo.push(next);
        }
        let name = if path.is_empty() {
            "help".to_string()
        } else {
            format!("help_{}", path.join("_"))
        };
        insta::assert_snapshot!(
            name.clone(),
            text,
            &format!("staleguard {} --help", args.join(" "))
        );
        seen.push(path.join(" "));
    }
    seen.sort();
    // The walk found the subcommands (a help layout clap changed would find none).
    for want in [
        "",
        "build",
        "deploy",
        "invalidate",
        "invalidations status",
        "verify",
        "service",
        "service status",
    ] {
        assert!(seen.iter().any(|s| s == want), "no `{want}` in {seen:?}");
    }
}

/// What a person sees of a run: stdout, then stderr when there is any, with what changes from run to
/// run redacted: the temp folder, durations, deploy ids (they embed the deploy time) and timestamps.
fn human(dir: &Path, c: Command) -> String {
    let o = run(c);
    let mut text = String::from_utf8_lossy(&o.stdout).to_string();
    if !o.stderr.is_empty() {
        text.push_str("--- stderr\n");
        text.push_str(&String::from_utf8_lossy(&o.stderr));
    }
    text.push_str(&format!("--- exit: {}\n", o.status.code().unwrap_or(-1)));
    for d in [dir.to_path_buf(), dir.canonicalize().unwrap()] {
        text = text.replace(d.to_str().unwrap(), "[TMP]");
    }
    for (pattern, with) in [
        (r"\d{8}T\d{6}Z-[0-9a-f]{12}", "[DEPLOY-ID]"),
        (r"\d{4}-\d\d-\d\dT\d\d:\d\d:\d\dZ", "[TIME]"),
        (r"\b\d+(\.\d+)? ?(ms|s)\b", "[DURATION]"),
    ] {
        text = Regex::new(pattern)
            .unwrap()
            .replace_all(&text, with)
            .to_string();
    }
    text
}

#[test]
fn human_output_of_build_deploy_and_invalidate_dry_run_on_the_example() {
    let t = example_project();
    let dir = t.path();
    insta::assert_snapshot!("example_build", human(dir, sg(dir, T0, &["build"])));
    insta::assert_snapshot!("example_deploy", human(dir, sg(dir, T0, &["deploy"])));
    // The example has no CDN: the dry run says so, with what to add.
    insta::assert_snapshot!(
        "example_invalidate_dry_run_no_cdn",
        human(dir, sg(dir, T0, &["invalidate", "--dry-run"]))
    );
    // With the entry the hint suggests (never contacted by a dry run): the planned purge.
    let cfg = std::fs::read_to_string(dir.join("staleguard.toml")).unwrap();
    std::fs::write(
        dir.join("staleguard.toml"),
        format!("{cfg}\n[[cdn]]\nprovider = \"varnish\"\nnodes = [\"http://127.0.0.1:6081\"]\n"),
    )
    .unwrap();
    insta::assert_snapshot!(
        "example_invalidate_dry_run",
        human(dir, sg(dir, T0, &["invalidate", "--dry-run"]))
    );
}
