//! `staleguard cdn-config`: the CDN's configuration from the route table (`staleguard-cdnconf`).

use std::io::Write;
use std::path::Path;
use std::process::ExitCode;

use anyhow::{Context, Result, bail};
use staleguard_cdnconf::check::Finding;
use staleguard_cdnconf::{Origin, Plan};
use staleguard_core::config::{CdnConfig, CdnProvider, Config, PurgeBy, VarnishMode};

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
    if args.apply && args.target != "cloudfront" {
        bail!(
            "--apply works with --target cloudfront only\nhint: write the {} file with -o FILE and load it into the server",
            args.target
        );
    }
    if args.target == "cloudfront" {
        return cloudfront(global, args, cfg, &plan, &cwd);
    }
    if args.target == "terraform" {
        return terraform(global, args, cfg, &plan, &cwd);
    }
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
        "cloudflare" => staleguard_cdnconf::cloudflare::render(&plan),
        other => bail!(
            "unknown --target `{other}`\nhint: `varnish` (a VCL file), `nginx` (maps and a server block), `cloudfront` (distribution and policies), `terraform` (the same as HCL) or `cloudflare` (cache rules)"
        ),
    };
    if let Some(live_path) = &args.check {
        if live_path.is_empty() {
            bail!(
                "--check needs the {} file the CDN runs\nhint: staleguard cdn-config --target {} --check FILE",
                args.target,
                args.target
            );
        }
        let kind = match args.target.as_str() {
            "nginx" => staleguard_cdnconf::check::Kind::Nginx,
            "varnish" | "vcl" => staleguard_cdnconf::check::Kind::Varnish,
            other => bail!(
                "--check does not read a live {other} configuration yet (it reads a VCL file, an nginx file, or a CloudFront distribution)\nhint: apply the generated rules instead: staleguard cdn-config --target {other} -o FILE"
            ),
        };
        let live_path = std::path::Path::new(live_path);
        let live = std::fs::read_to_string(cwd.join(live_path)).with_context(|| {
            format!(
                "cannot read `{}`\nhint: pass the {} file the CDN runs",
                live_path.display(),
                args.target
            )
        })?;
        let findings = staleguard_cdnconf::check::compare(kind, &text, &live);
        return Ok(report(
            global,
            &live_path.display().to_string(),
            &args.target,
            &findings,
            &format!(
                "hint: regenerate it with `staleguard cdn-config --target {} -o {}` and reload the CDN",
                args.target,
                live_path.display()
            ),
        ));
    }
    write_out(global, args, &cwd, &text)
}

/// Prints the differences; the exit code: 3 when one can serve stale content, 1 for other drift.
fn report(global: &Global, what: &str, target: &str, findings: &[Finding], hint: &str) -> ExitCode {
    let risky = findings.iter().filter(|f| f.stale_risk).count();
    if global.json {
        println!(
            "{}",
            serde_json::json!({
                "live": what,
                "target": target,
                "same": findings.is_empty(),
                "stale_risk": risky,
                "differences": findings,
            })
        );
    } else if findings.is_empty() {
        println!("{what}: as the route table implies ({target} target)");
    } else {
        for f in findings {
            let mark = if f.stale_risk { "STALE RISK" } else { "drift" };
            match (&f.found, &f.expected, f.line) {
                (Some(found), _, Some(line)) => {
                    println!("{mark}: {what}:{line}: has `{found}`")
                }
                (Some(found), Some(exp), None) => {
                    println!("{mark}: {what}: {found}\n    the route table implies: {exp}")
                }
                (Some(found), None, None) => println!("{mark}: {what}: {found}"),
                (None, Some(exp), _) => println!("{mark}: {what}: lacks `{exp}`"),
                (None, None, _) => {}
            }
        }
        println!(
            "{} difference(s), {risky} of which can serve stale content\n{hint}",
            findings.len()
        );
    }
    if risky > 0 {
        ExitCode::from(3)
    } else if findings.is_empty() {
        ExitCode::SUCCESS
    } else {
        ExitCode::from(1)
    }
}

fn write_out(global: &Global, args: &CdnConfigArgs, cwd: &Path, text: &str) -> Result<ExitCode> {
    match &args.output {
        Some(path) => {
            std::fs::write(cwd.join(path), text)
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

/// `--target cloudfront`: the bundle, `--apply`, or `--check` against the live distribution.
fn cloudfront(
    global: &Global,
    args: &CdnConfigArgs,
    cfg: &Config,
    plan: &Plan,
    cwd: &Path,
) -> Result<ExitCode> {
    let bundle = cloudfront_bundle(global, args, cfg, plan);
    let entry = cloudfront_entry(cfg);
    let distribution = args.distribution.clone().or_else(|| {
        entry
            .and_then(|c| c.distribution.first().cloned())
            .filter(|d| d != "auto")
    });
    let endpoint = entry.map(|c| c.api.clone()).unwrap_or_default();
    if args.apply || args.check.is_some() {
        return cloudfront_api(global, args, &bundle, distribution, &endpoint);
    }
    write_out(global, args, cwd, &bundle.to_json())
}

/// `--target terraform`: the CloudFront bundle as HCL for the hashicorp/aws provider.
fn terraform(
    global: &Global,
    args: &CdnConfigArgs,
    cfg: &Config,
    plan: &Plan,
    cwd: &Path,
) -> Result<ExitCode> {
    if args.check.is_some() {
        bail!(
            "--check works with --target cloudfront, varnish and nginx\nhint: `terraform plan` shows how the live distribution differs from the file; `staleguard cdn-config --target cloudfront --check ID` reports which differences can serve stale content"
        );
    }
    let bundle = cloudfront_bundle(global, args, cfg, plan);
    write_out(
        global,
        args,
        cwd,
        &staleguard_cdnconf::terraform::render(&bundle),
    )
}

/// The first `[[cdn]] provider = "cloudfront"` entry.
fn cloudfront_entry(cfg: &Config) -> Option<&CdnConfig> {
    cfg.cdn
        .iter()
        .find(|c| c.provider == CdnProvider::Cloudfront)
}

/// The CloudFront bundle both `cloudfront` and `terraform` write: an S3 origin for an `s3://` store
/// (unless `--origin` names another), the `[[cdn]]` domain as alias, the tag header when it purges
/// by tag; its warnings printed.
fn cloudfront_bundle(
    global: &Global,
    args: &CdnConfigArgs,
    cfg: &Config,
    plan: &Plan,
) -> staleguard_cdnconf::cloudfront::Bundle {
    use staleguard_cdnconf::cloudfront as cf;
    let entry = cloudfront_entry(cfg);
    let origin = match (&args.origin, cfg.deploy.store.strip_prefix("s3://")) {
        (None, Some(rest)) => {
            let (bucket, prefix) = rest.split_once('/').unwrap_or((rest, ""));
            let region = if !cfg.deploy.region.is_empty() {
                cfg.deploy.region.clone()
            } else {
                std::env::var("AWS_REGION")
                    .or_else(|_| std::env::var("AWS_DEFAULT_REGION"))
                    .unwrap_or_else(|_| "us-east-1".into())
            };
            cf::Origin::S3 {
                bucket: bucket.to_string(),
                region,
                prefix: prefix.trim_matches('/').to_string(),
            }
        }
        _ => cf::Origin::Custom {
            host: plan.origin.host.clone(),
            port: plan.origin.port,
        },
    };
    let tag_header = entry
        .filter(|c| c.purge_by == PurgeBy::Tags && !cfg.serve.tag_header.is_empty())
        .map(|_| cfg.serve.tag_header.clone());
    let opts = cf::Options {
        name: args.name.clone(),
        origin,
        aliases: entry
            .map(|c| c.domain.clone())
            .filter(|d| !d.is_empty())
            .into_iter()
            .collect(),
        certificate: args.certificate.clone(),
        tag_header,
        caller_reference: caller_reference(&args.name, plan),
    };
    let bundle = cf::render(plan, &opts);
    if !global.quiet && !global.json {
        for w in &bundle.warnings {
            eprintln!("warning: {w}");
        }
    }
    bundle
}

/// `--apply` and `--check` through CloudFront's API.
#[cfg(feature = "cloudfront")]
fn cloudfront_api(
    global: &Global,
    args: &CdnConfigArgs,
    bundle: &staleguard_cdnconf::cloudfront::Bundle,
    distribution: Option<String>,
    endpoint: &str,
) -> Result<ExitCode> {
    use staleguard_cdnconf::cloudfront as cf;
    let api = staleguard_cdn::cloudfront::config::ConfigApi::open(
        endpoint,
        staleguard_cdn::cloudfront::CALL_TIMEOUT,
    )?;
    let rt = super::runtime()?;
    if args.apply {
        let done = rt.block_on(cf::apply::apply(&api, bundle, distribution.as_deref()))?;
        if global.json {
            println!("{}", serde_json::to_string(&done)?);
        } else if !global.quiet {
            for (what, how) in &done.changes {
                println!("{how}: {what}");
            }
            if !done.domain_name.is_empty() {
                println!(
                    "distribution {} at https://{}\nhint: set [[cdn]] distribution = \"{}\" so deploys purge it",
                    done.distribution, done.domain_name, done.distribution
                );
            }
        }
        return Ok(ExitCode::SUCCESS);
    }
    let id = match args.check.as_deref() {
        Some(id) if !id.is_empty() => id.to_string(),
        _ => distribution.ok_or_else(|| {
            anyhow::anyhow!(
                "--check needs a distribution id\nhint: --check E123ABC, or set [[cdn]] provider = \"cloudfront\" with distribution = \"E123ABC\""
            )
        })?,
    };
    let live = rt.block_on(cf::apply::read_live(&api, &id))?;
    let findings = cf::check::compare(bundle, &live);
    Ok(report(
        global,
        &format!("distribution {id}"),
        "cloudfront",
        &findings,
        &format!(
            "hint: staleguard cdn-config --target cloudfront --apply --distribution {id} puts the route table's settings back"
        ),
    ))
}

#[cfg(not(feature = "cloudfront"))]
fn cloudfront_api(
    _: &Global,
    _: &CdnConfigArgs,
    _: &staleguard_cdnconf::cloudfront::Bundle,
    _: Option<String>,
    _: &str,
) -> Result<ExitCode> {
    bail!(
        "this staleguard was built without CloudFront's API (feature `cloudfront`)\nhint: write the JSON with -o FILE and apply it with the AWS CLI, or rebuild with --features cloudfront"
    )
}

/// The `CallerReference` of a new distribution: the same for the same name and origin, so a second
/// `--apply` without `--distribution` is refused (`DistributionAlreadyExists`) instead of creating a
/// second distribution.
fn caller_reference(name: &str, plan: &Plan) -> String {
    format!("{name}-{}-{}", plan.origin.host, plan.origin.port)
}
