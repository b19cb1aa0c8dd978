//! `staleguard init`: detects the project in a folder (`staleguard_core::stack`) and writes, or prints,
//! the commented `staleguard.toml` for it.

use std::path::{Path, PathBuf};
use std::process::ExitCode;

use anyhow::{Context, Result, bail};
use staleguard_core::stack::{self, ProjectFiles};

use crate::cli::{Global, InitArgs};
use crate::settings::CONFIG_NAME;

/// The project's files, read from disk.
struct Dir(PathBuf);

impl ProjectFiles for Dir {
    fn exists(&self, path: &str) -> bool {
        self.0.join(path).exists()
    }
    fn read(&self, path: &str) -> Option<String> {
        std::fs::read_to_string(self.0.join(path)).ok()
    }
}

pub fn run(global: &Global, args: &InitArgs) -> Result<ExitCode> {
    let dir = args.dir.clone().unwrap_or_else(|| PathBuf::from("."));
    let dir = dir
        .canonicalize()
        .with_context(|| format!("cannot open the project folder `{}`", dir.display()))?;
    if !dir.is_dir() {
        bail!("`{}` is not a folder", dir.display());
    }
    let Some(found) = stack::detect(&Dir(dir.clone())) else {
        bail!(
            "no project recognised in `{}` (looked for {}); write {CONFIG_NAME} by hand (see README.md)",
            dir.display(),
            stack::LOOKED_FOR
        );
    };
    let config = stack::render(&found);
    let path = dir.join(CONFIG_NAME);
    let write = !args.dry_run;
    if write {
        refuse_overwrite(&path, args.force)?;
        std::fs::write(&path, &config)
            .with_context(|| format!("cannot write `{}`", path.display()))?;
    }
    if global.json {
        let report = serde_json::json!({
            "stack": found.stack.id(),
            "source": found.source,
            "config": config,
            "path": path,
            "written": write,
        });
        println!("{}", serde_json::to_string_pretty(&report)?);
    } else if args.dry_run {
        print!("{config}");
    } else if !global.quiet {
        let next = if found.run.is_empty() {
            "staleguard build".to_string()
        } else {
            format!("{} && staleguard build", found.run)
        };
        println!(
            "wrote {} for a {} project ({}): source `{}` → out `{}`; next: {next}",
            path.display(),
            found.stack.name(),
            found.evidence,
            found.source,
            found.out,
        );
    }
    Ok(ExitCode::SUCCESS)
}

fn refuse_overwrite(path: &Path, force: bool) -> Result<()> {
    if path.exists() && !force {
        bail!(
            "`{}` already exists; `--force` overwrites it, `--dry-run` prints what init would write",
            path.display()
        );
    }
    Ok(())
}
