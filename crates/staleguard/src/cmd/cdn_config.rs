//! `staleguard cdn-config`: the CDN's configuration from the route table (`staleguard-cdnconf`).

use std::io::Write;
use std::process::ExitCode;

use anyhow::{Context, Result, bail};
use staleguard_cdnconf::{Origin, Plan};
use staleguard_core::config::VarnishMode;

use crate::cli::{CdnConfigArgs, Global};
use crate::settings;

pub fn run(global: &Global, args: &CdnConfigArgs) -> Result<ExitCode> {
    let loaded = settings::load(global)?;
    let cfg = &loaded.config;
    let cwd = std::env::current_dir().context("cannot read the current folder")?;
    let dir = match &args.dir {
        Some(d) => cwd.join(d),
        None => loaded.base.join(&cfg.build.out),
    };
    let manifest = settings::read_manifest(&dir, &cfg.build.manifest, "cdn-config")?;
    let origin_url = match &args.origin {
        Some(o) => o.clone(),
        None if !cfg.verify.origin_url.is_empty() => cfg.verify.origin_url.clone(),
        None => cfg.serve.local_url(),
    };
    let origin = Origin::parse(&origin_url)
        .map_err(anyhow::Error::msg)
        .context("hint: pass --origin http://HOST:PORT, or set [verify] origin-url")?;
    let purgers = if args.purge_from.is_empty() {
        vec!["127.0.0.1".to_string(), "::1".to_string()]
    } else {
        for p in &args.purge_from {
            staleguard_core::net::Cidr::parse(p).map_err(|e| {
                anyhow::anyhow!(
                    "--purge-from {e}\nhint: an IP (10.0.0.5) or a CIDR range (10.0.0.0/8)"
                )
            })?;
        }
        args.purge_from.clone()
    };
    let plan = Plan::new(&cfg.routes, &cfg.serve, &manifest, origin, purgers);
    let text = match args.target.as_str() {
        "varnish" | "vcl" => {
            let xkey = cfg.serve.tag_header.eq_ignore_ascii_case("xkey")
                || cfg.cdn.iter().any(|c| c.mode == Some(VarnishMode::Xkey));
            staleguard_cdnconf::varnish::render(&plan, xkey)
        }
        "nginx" => {
            let listen = args
                .listen
                .clone()
                .unwrap_or_else(|| format!("{}:{}", cfg.serve.bind, cfg.serve.port));
            let root = match &args.root {
                Some(r) => r.clone(),
                None => dir
                    .canonicalize()
                    .unwrap_or_else(|_| dir.clone())
                    .display()
                    .to_string(),
            };
            let opts = staleguard_cdnconf::nginx::NginxOptions {
                listen,
                root,
                brotli: !args.no_brotli,
                paths: manifest.output_paths().map(|(p, _, _)| p).collect(),
                version_path: cfg.serve.version_path.clone(),
                build_info: cfg.build.build_info.clone(),
                cors_fonts: cfg.serve.cors_fonts,
            };
            staleguard_cdnconf::nginx::render(&plan, &opts)
        }
        other => bail!(
            "unknown --target `{other}`\nhint: `varnish` (a VCL file) or `nginx` (maps and a server block)"
        ),
    };
    if let Some(live_path) = &args.check {
        let kind = match args.target.as_str() {
            "nginx" => staleguard_cdnconf::check::Kind::Nginx,
            _ => staleguard_cdnconf::check::Kind::Varnish,
        };
        let live = std::fs::read_to_string(cwd.join(live_path)).with_context(|| {
            format!(
                "cannot read `{}`\nhint: pass the {} file the CDN runs",
                live_path.display(),
                args.target
            )
        })?;
        let findings = staleguard_cdnconf::check::compare(kind, &text, &live);
        let risky = findings.iter().filter(|f| f.stale_risk).count();
        if global.json {
            println!(
                "{}",
                serde_json::json!({
                    "file": live_path,
                    "target": args.target,
                    "same": findings.is_empty(),
                    "stale_risk": risky,
                    "differences": findings,
                })
            );
        } else if findings.is_empty() {
            println!(
                "{}: as the route table implies ({} target)",
                live_path.display(),
                args.target
            );
        } else {
            for f in &findings {
                let mark = if f.stale_risk { "STALE RISK" } else { "drift" };
                match (&f.found, &f.expected) {
                    (Some(found), _) => println!(
                        "{mark}: {}:{}: has `{found}`",
                        live_path.display(),
                        f.line.unwrap_or(0)
                    ),
                    (None, Some(exp)) => {
                        println!("{mark}: {}: lacks `{exp}`", live_path.display())
                    }
                    (None, None) => {}
                }
            }
            println!(
                "{} difference(s), {risky} of which can serve stale content\nhint: regenerate it with `staleguard cdn-config --target {} -o {}` and reload the CDN",
                findings.len(),
                args.target,
                live_path.display()
            );
        }
        return Ok(if risky > 0 {
            ExitCode::from(3)
        } else if findings.is_empty() {
            ExitCode::SUCCESS
        } else {
            ExitCode::from(1)
        });
    }
    match &args.output {
        Some(path) => {
            std::fs::write(cwd.join(path), &text)
                .with_context(|| format!("cannot write `{}`", path.display()))?;
            if !global.quiet && !global.json {
                eprintln!("wrote {} ({} target)", path.display(), args.target);
            }
        }
        None => {
            std::io::stdout()
                .write_all(text.as_bytes())
                .context("cannot write to stdout")?;
        }
    }
    Ok(ExitCode::SUCCESS)
}
