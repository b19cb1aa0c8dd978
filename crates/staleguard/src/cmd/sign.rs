//! `staleguard sign-url URL`: a CloudFront signed URL, or signed cookies (`--cookies`), for private
//! content served through the CDN (user uploads: the app hands each user a signature for their own
//! files). The policy and the signature are `staleguard-sign`'s; this resolves the key pair id, the
//! key (a file or an environment variable, registered as a secret before anything can print) and
//! the times, then prints.
//!
//! Canned (`Expires=`) when only `--expires` is given; custom (`Policy=`) with `--starts`, `--ip` or
//! `--resource`.

use std::path::PathBuf;
use std::process::ExitCode;

use anyhow::{Result, anyhow, bail};
use serde_json::json;
use staleguard_core::HumanDuration;
use staleguard_sign::{
    Cidr, CookieAttributes, HashAlgorithm, KeyOrigin, Policy, PrivateKey, SignError, Signer,
};

use crate::cli::Global;

/// The variable `--key-pair-id` defaults to.
pub const KEY_PAIR_ID_ENV: &str = "STALEGUARD_CLOUDFRONT_KEY_PAIR_ID";
/// The variable the PEM private key is read from without `--private-key`.
pub const PRIVATE_KEY_ENV: &str = "STALEGUARD_CLOUDFRONT_PRIVATE_KEY";

#[derive(Debug, clap::Args)]
pub struct SignArgs {
    /// The URL to sign, as users request it (`https://media.example.com/u/42/avatar.jpg`); with
    /// `--cookies`, the URL the cookies' host and path are taken from
    #[arg(value_name = "URL")]
    pub url: String,
    /// The ID of the CloudFront public key (in the distribution's trusted key group) that matches
    /// the private key
    #[arg(long, env = KEY_PAIR_ID_ENV, hide_env_values = true, value_name = "ID")]
    pub key_pair_id: Option<String>,
    /// The PEM private key file (PKCS#1 `RSA PRIVATE KEY` or PKCS#8 `PRIVATE KEY`, unencrypted)
    #[arg(long, value_name = "FILE", conflicts_with = "private_key_env")]
    pub private_key: Option<PathBuf>,
    /// The environment variable that holds the PEM private key, when --private-key is not given
    #[arg(long, value_name = "VAR", default_value = PRIVATE_KEY_ENV)]
    pub private_key_env: String,
    /// Valid until: a duration from now (`1h`, `7d`), an RFC 3339 time (`2026-12-31T23:59:59Z`) or
    /// Unix seconds (a plain number is a time, not a duration)
    #[arg(long, value_name = "WHEN")]
    pub expires: String,
    /// Not valid before (the same forms as --expires); makes the policy custom
    #[arg(long, value_name = "WHEN")]
    pub starts: Option<String>,
    /// Only for clients in this range (`192.0.2.0/24`, `2001:db8::/32`; a bare address is that one
    /// address); makes the policy custom
    #[arg(long, value_name = "CIDR")]
    pub ip: Option<String>,
    /// The policy's resource, with `*` (any characters) and `?` (one character) wildcards
    /// (`https://media.example.com/u/42/*`; default: the URL); makes the policy custom
    #[arg(long, value_name = "PATTERN")]
    pub resource: Option<String>,
    /// Print signed cookies (`Set-Cookie` lines) instead of a signed URL
    #[arg(long)]
    pub cookies: bool,
    /// The cookies' `Domain` (default: the resource's host)
    #[arg(long, value_name = "DOMAIN", requires = "cookies")]
    pub cookie_domain: Option<String>,
    /// The cookies' `Path` (default: the resource's folder, up to its first wildcard)
    #[arg(long, value_name = "PATH", requires = "cookies")]
    pub cookie_path: Option<String>,
    /// The signature's hash: `sha1` (CloudFront's default, what botocore and the AWS CLI v1 sign) or
    /// `sha256` (adds `Hash-Algorithm=SHA256`)
    #[arg(long, value_enum, default_value_t = Hash::Sha1)]
    pub hash: Hash,
}

/// `--hash`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
pub enum Hash {
    Sha1,
    Sha256,
}

pub fn run(global: &Global, args: &SignArgs) -> Result<ExitCode> {
    let now = crate::settings::deploy_now()?;
    // The key first: its text is registered as a secret before anything else can fail and print.
    let key = load_key(args)?;
    let key_pair_id = match &args.key_pair_id {
        Some(id) if !id.trim().is_empty() => id.trim().to_string(),
        _ => bail!(
            "no CloudFront key pair id\nhint: pass `--key-pair-id ID` or set {KEY_PAIR_ID_ENV}: the ID of the public key in the distribution's trusted key group (CloudFront console: Key management > Public keys)"
        ),
    };
    let hash = match args.hash {
        Hash::Sha1 => HashAlgorithm::Sha1,
        Hash::Sha256 => HashAlgorithm::Sha256,
    };
    let signer = Signer::new(key_pair_id, key)
        .map_err(user_error)?
        .with_hash(hash);

    staleguard_sign::check_url(&args.url).map_err(user_error)?;
    let policy = policy(args, now)?;

    let (kind, resource) = (policy.kind(), policy.resource().to_string());
    let summary = json!({
        "kind": kind,
        "resource": resource,
        "expires": policy.expires(),
        "expires_at": staleguard_sign::time::rfc3339(policy.expires()),
        "starts": policy.starts(),
        "starts_at": policy.starts().map(staleguard_sign::time::rfc3339),
        "ip": policy.ip().map(Cidr::as_str),
    });
    let note = format!(
        "{kind} policy for `{resource}`, valid until {} (in {}){}{}; key pair `{}`, {}",
        staleguard_sign::time::rfc3339(policy.expires()),
        HumanDuration::from_secs(u64::try_from(policy.expires() - now).unwrap_or(0)),
        policy.starts().map_or(String::new(), |s| format!(
            ", from {}",
            staleguard_sign::time::rfc3339(s)
        )),
        policy
            .ip()
            .map_or(String::new(), |ip| format!(", for clients in {ip}")),
        signer.key_pair_id(),
        hash.as_str(),
    );

    if args.cookies {
        let signed = signer.sign_cookies(&policy).map_err(user_error)?;
        let mut attributes = CookieAttributes::for_resource(&resource);
        if let Some(d) = &args.cookie_domain {
            attributes = attributes.with_domain(d.clone());
        }
        if let Some(p) = &args.cookie_path {
            attributes = attributes.with_path(p.clone());
        }
        let lines = signed.set_cookie_values(&attributes);
        if global.json {
            let cookies: serde_json::Map<String, serde_json::Value> = signed
                .cookies
                .iter()
                .map(|c| (c.name.to_string(), c.value.clone().into()))
                .collect();
            println!(
                "{}",
                json!({
                    "cookies": cookies,
                    "set_cookie": lines,
                    "policy": summary,
                    "statement": signed.policy_json,
                    "key_pair_id": signer.key_pair_id(),
                    "hash_algorithm": hash.as_str(),
                })
            );
        } else {
            for l in &lines {
                println!("Set-Cookie: {l}");
            }
            if !global.quiet {
                eprintln!("{note}");
                if policy.is_canned() {
                    eprintln!(
                        "note: canned-policy cookies open this one URL only; `--resource 'https://host/folder/*'` makes them cover a folder"
                    );
                }
            }
        }
    } else {
        let signed = signer.sign_url(&args.url, &policy).map_err(user_error)?;
        if global.json {
            println!(
                "{}",
                json!({
                    "url": signed.url,
                    "policy": summary,
                    "statement": signed.policy_json,
                    "key_pair_id": signer.key_pair_id(),
                    "hash_algorithm": hash.as_str(),
                })
            );
        } else {
            println!("{}", signed.url);
            if !global.quiet {
                eprintln!("{note}");
            }
        }
    }
    Ok(ExitCode::SUCCESS)
}

/// The private key from `--private-key FILE` or the variable `--private-key-env` names. Its text is
/// registered with the secret registry (whole, and each line of the PEM body) before it is parsed,
/// so no output, log line or error can ever show it.
fn load_key(args: &SignArgs) -> Result<PrivateKey> {
    let origin = match &args.private_key {
        Some(path) => KeyOrigin::File(path.clone()),
        None => KeyOrigin::Env(args.private_key_env.clone()),
    };
    let text = origin.read().map_err(user_error)?;
    register_key_text(&text);
    PrivateKey::from_pem(&text, origin).map_err(user_error)
}

/// Registers a key's text as a secret: whole, and each line of its PEM body.
fn register_key_text(text: &str) {
    use staleguard_core::secret::register;
    register(text);
    for line in text.replace("\\n", "\n").lines() {
        let line = line.trim();
        // Body lines only (64 characters but the last); a short last line could, however
        // unlikely, occur inside a signature, which must print whole.
        if line.len() >= 16 && !line.starts_with("-----") && !line.contains(':') {
            register(line);
        }
    }
}

/// The policy the flags describe, checked against `now`.
fn policy(args: &SignArgs, now: i64) -> Result<Policy> {
    let moment = |flag: &str, text: &str| {
        staleguard_sign::time::parse_moment(text, now).map_err(|e| anyhow!("{flag}: {e}"))
    };
    let expires = moment("--expires", &args.expires)?;
    let custom = args.starts.is_some() || args.ip.is_some() || args.resource.is_some();
    let mut policy = if custom {
        let resource = args.resource.clone().unwrap_or_else(|| args.url.clone());
        if !staleguard_sign::wildcard_matches(&resource, &args.url) {
            bail!(
                "--resource `{resource}` does not cover the URL `{}`\nhint: a signature only opens what the resource matches: `*` matches any characters (`https://media.example.com/u/42/*`)",
                args.url
            );
        }
        Policy::custom(resource, expires)
    } else {
        Policy::canned(args.url.clone(), expires)
    };
    if let Some(s) = &args.starts {
        policy = policy.with_starts(moment("--starts", s)?);
    }
    if let Some(ip) = &args.ip {
        policy = policy.with_ip(Cidr::parse(ip).map_err(|e| anyhow!("--ip: {e}"))?);
    }
    policy.check(now).map_err(|e| match e {
        // Named by the flag that set the field.
        SignError::Policy {
            field,
            reason,
            hint,
        } => {
            let flag = match field {
                "DateLessThan" => "--expires",
                "DateGreaterThan" => "--starts",
                _ => "--resource",
            };
            anyhow!(staleguard_core::hint::shown(
                &format!("{flag}: {reason}"),
                hint
            ))
        }
        e => user_error(e),
    })?;
    Ok(policy)
}

/// A library error as this binary shows errors: the message, then its hint on a line of its own.
fn user_error(e: SignError) -> anyhow::Error {
    anyhow!(staleguard_core::hint::shown(&e.to_string(), e.hint()))
}
