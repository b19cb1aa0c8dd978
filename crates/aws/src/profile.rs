//! Shared profiles: `~/.aws/credentials` and `~/.aws/config` (or `AWS_SHARED_CREDENTIALS_FILE` /
//! `AWS_CONFIG_FILE`), read the way the AWS CLI reads them.
//!
//! A profile gets its credentials, in this order of precedence, from:
//! - `role_arn` (an assumed role, STS `AssumeRole`), with the credentials of `source_profile` (itself
//!   resolved, up to [`MAX_DEPTH`] hops), of `credential_source` (`Environment`, `Ec2InstanceMetadata`,
//!   `EcsContainer`), or, with `web_identity_token_file`, STS `AssumeRoleWithWebIdentity`; `external_id`,
//!   `role_session_name` and `duration_seconds` are honoured; `mfa_serial` is refused (no prompt here);
//! - `credential_process` (a command printing the credentials as JSON, version 1);
//! - `aws_access_key_id` + `aws_secret_access_key` (+ `aws_session_token`).
//!
//! The STS endpoint is `AWS_ENDPOINT_URL_STS` or `AWS_ENDPOINT_URL` when set, else the profile's
//! `endpoint_url`, else AWS's regional one (the profile's `region`, else `AWS_REGION`, else us-east-1).
//!
//! SSO profiles (`sso_session`, `sso_start_url`) are refused with the command that turns them into a
//! `credential_process` (the AWS CLI's `configure export-credentials`): their token cache belongs to the CLI.

use std::collections::HashMap;
use std::path::{Path, PathBuf};
use std::time::Duration;

use async_trait::async_trait;
use chrono::{DateTime, Utc};
use object_store::aws::AwsCredential;
use serde::Deserialize;

use crate::chain::{
    Cached, Credentials, Fetch, Source, env_keys, object_store_chain, static_provider,
};
use crate::{Error, sts};

/// Longest chain of `source_profile` hops followed.
const MAX_DEPTH: usize = 5;
/// How long a `credential_process` may run.
const PROCESS_TIMEOUT: Duration = Duration::from_secs(120);

/// The keys of every profile, the credentials file's over the config file's.
#[derive(Debug, Default)]
pub(crate) struct Files {
    profiles: HashMap<String, HashMap<String, String>>,
    /// Where each key of each profile was read, for messages (`~/.aws/config`).
    shown: String,
}

fn home() -> Option<PathBuf> {
    std::env::var_os("HOME")
        .or_else(|| std::env::var_os("USERPROFILE"))
        .map(PathBuf::from)
}

fn expand(p: &str) -> PathBuf {
    match (p.strip_prefix("~/"), home()) {
        (Some(rest), Some(h)) => h.join(rest),
        _ => PathBuf::from(p),
    }
}

impl Files {
    /// Reads both files from where the environment says; a missing file is empty, an unreadable one
    /// an error.
    pub(crate) fn load() -> Result<Files, Error> {
        let credentials = std::env::var("AWS_SHARED_CREDENTIALS_FILE")
            .ok()
            .map(|p| expand(&p))
            .or_else(|| home().map(|h| h.join(".aws/credentials")));
        let config = std::env::var("AWS_CONFIG_FILE")
            .ok()
            .map(|p| expand(&p))
            .or_else(|| home().map(|h| h.join(".aws/config")));
        Files::read(config.as_deref(), credentials.as_deref())
    }

    /// Reads the given files.
    pub(crate) fn read(config: Option<&Path>, credentials: Option<&Path>) -> Result<Files, Error> {
        let mut files = Files::default();
        let mut shown = Vec::new();
        if let Some(p) = config {
            shown.push(p.display().to_string());
            files.merge(&read(p)?, true);
        }
        if let Some(p) = credentials {
            shown.push(p.display().to_string());
            files.merge(&read(p)?, false);
        }
        files.shown = shown.join(" or ");
        Ok(files)
    }

    /// Parses one file's text into profiles. In the config file a profile is `[profile name]` (or
    /// `[default]`); in the credentials file, `[name]`. Other sections (`[sso-session x]`,
    /// `[services x]`) and indented sub-keys are skipped.
    pub(crate) fn merge(&mut self, text: &str, config: bool) {
        let mut current: Option<String> = None;
        for raw in text.lines() {
            let indented = raw.starts_with([' ', '\t']);
            let line = raw.trim();
            if line.is_empty() || line.starts_with('#') || line.starts_with(';') {
                continue;
            }
            if let Some(section) = line.strip_prefix('[').and_then(|l| l.strip_suffix(']')) {
                let section = section.trim();
                current = if config {
                    if section == "default" {
                        Some("default".into())
                    } else {
                        section
                            .strip_prefix("profile")
                            .filter(|r| r.starts_with([' ', '\t']))
                            .map(|r| r.trim().to_string())
                    }
                } else {
                    Some(section.to_string())
                };
                continue;
            }
            if indented {
                // A sub-key of a nested setting (`s3 =` followed by indented lines).
                continue;
            }
            let (Some(profile), Some((k, v))) = (&current, line.split_once('=')) else {
                continue;
            };
            let v = v.trim();
            // An inline comment needs whitespace before it; values may contain `#` otherwise.
            let v = v
                .find(" #")
                .or_else(|| v.find(" ;"))
                .or_else(|| v.find("\t#"))
                .map_or(v, |i| v[..i].trim_end());
            self.profiles
                .entry(profile.clone())
                .or_default()
                .insert(k.trim().to_ascii_lowercase(), v.to_string());
        }
    }

    fn get(&self, profile: &str) -> Option<&HashMap<String, String>> {
        self.profiles.get(profile)
    }
}

fn read(p: &Path) -> Result<String, Error> {
    match std::fs::read_to_string(p) {
        Ok(t) => Ok(t),
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(String::new()),
        Err(e) => Err(Error::new(format!("cannot read {}: {e}", p.display()))
            .with_hint("check the file's permissions, or point AWS_SHARED_CREDENTIALS_FILE / AWS_CONFIG_FILE elsewhere")),
    }
}

/// The profile's credentials when `AWS_PROFILE` names one, or when the files have a `default`; `None`
/// when no profile applies (the chain goes on). `AWS_PROFILE` naming a profile the files lack is an
/// error, as with the AWS CLI.
pub(crate) fn from_env() -> Result<Option<Credentials>, Error> {
    let named = ["AWS_PROFILE", "AWS_DEFAULT_PROFILE"]
        .iter()
        .find_map(|k| std::env::var(k).ok().filter(|v| !v.trim().is_empty()));
    let files = Files::load()?;
    let name = named.clone().unwrap_or_else(|| "default".into());
    if files.get(&name).is_none() {
        return match named {
            Some(n) => Err(Error::new(format!(
                "AWS_PROFILE names profile `{n}`, which is not in {}",
                files.shown
            ))
            .with_hint(
                "check the profile's name (`aws configure list-profiles`), or unset AWS_PROFILE",
            )),
            None => Ok(None),
        };
    }
    resolve(&files, &name).map(Some)
}

/// The credentials of profile `name` in `files`.
pub(crate) fn resolve(files: &Files, name: &str) -> Result<Credentials, Error> {
    resolve_at(files, name, 0)
}

fn resolve_at(files: &Files, name: &str, depth: usize) -> Result<Credentials, Error> {
    let Some(p) = files.get(name) else {
        return Err(
            Error::new(format!("profile `{name}` is not in {}", files.shown))
                .with_hint("check `source_profile` and the profile names in those files"),
        );
    };
    let key = |k: &str| p.get(k).map(String::as_str).filter(|v| !v.is_empty());
    let region = key("region").map(str::to_string);
    if let Some(role_arn) = key("role_arn") {
        if key("mfa_serial").is_some() {
            return Err(Error::new(format!(
                "profile `{name}` assumes `{role_arn}` with MFA (`mfa_serial`), which needs a prompt"
            ))
            .with_hint("use a profile without mfa_serial, or export session credentials first (`aws sts get-session-token`, or `aws configure export-credentials --profile NAME --format env`)"));
        }
        let role = sts::Role {
            role_arn: role_arn.to_string(),
            session_name: key("role_session_name").map_or_else(
                || format!("staleguard-{}", Utc::now().timestamp()),
                str::to_string,
            ),
            external_id: key("external_id").map(str::to_string),
            duration_seconds: match key("duration_seconds") {
                Some(d) => Some(d.parse::<u32>().map_err(|_| {
                    Error::new(format!(
                        "profile `{name}`: duration_seconds must be a number of seconds, got `{d}`"
                    ))
                })?),
                None => None,
            },
            region: region.clone(),
            endpoint: key("endpoint_url").map(str::to_string),
        };
        let how = format!("assumes {role_arn}");
        if let Some(token_file) = key("web_identity_token_file") {
            return Ok(Credentials::from_provider(
                Cached::provider(sts::WebIdentity {
                    role,
                    token_file: expand(token_file),
                }),
                Source::Profile {
                    name: name.into(),
                    how: format!("{how} with web identity"),
                },
            ));
        }
        let source = match (key("source_profile"), key("credential_source")) {
            (Some(_), Some(_)) => {
                return Err(Error::new(format!(
                    "profile `{name}` sets both source_profile and credential_source"
                ))
                .with_hint("keep one of them"));
            }
            (Some(src), None) => {
                if depth >= MAX_DEPTH {
                    return Err(Error::new(format!(
                        "profile `{name}`: more than {MAX_DEPTH} source_profile hops (a loop?)"
                    )));
                }
                if src == name {
                    // A profile that is its own source uses its static keys for the role.
                    static_keys(name, p)?.ok_or_else(|| {
                        Error::new(format!("profile `{name}` is its own source_profile but has no aws_access_key_id/aws_secret_access_key"))
                    })?
                } else {
                    resolve_at(files, src, depth + 1)?
                }
            }
            (None, Some(cs)) => match cs {
                "Environment" => {
                    let c = env_keys()?.ok_or_else(|| {
                        Error::new(format!("profile `{name}`: credential_source = Environment, but AWS_ACCESS_KEY_ID/AWS_SECRET_ACCESS_KEY are not set"))
                    })?;
                    Credentials::from_provider(static_provider(c), Source::Environment)
                }
                "Ec2InstanceMetadata" | "EcsContainer" => object_store_chain()?,
                other => {
                    return Err(Error::new(format!(
                        "profile `{name}`: unknown credential_source `{other}`"
                    ))
                    .with_hint("use Environment, Ec2InstanceMetadata or EcsContainer"));
                }
            },
            (None, None) => {
                return Err(Error::new(format!(
                    "profile `{name}` sets role_arn without source_profile, credential_source or web_identity_token_file"
                ))
                .with_hint("add `source_profile = <a profile with keys>`"));
            }
        };
        return Ok(Credentials::from_provider(
            Cached::provider(sts::AssumeRole { role, source }),
            Source::Profile {
                name: name.into(),
                how,
            },
        ));
    }
    if key("sso_session").is_some() || key("sso_start_url").is_some() {
        return Err(Error::new(format!("profile `{name}` is an SSO profile, which staleguard does not read directly"))
            .with_hint(format!("add a profile with `credential_process = aws configure export-credentials --profile {name} --format process` and use it, or run `eval \"$(aws configure export-credentials --profile {name} --format env)\"` first")));
    }
    if let Some(cmd) = key("credential_process") {
        return Ok(Credentials::from_provider(
            Cached::provider(Process {
                profile: name.into(),
                command: cmd.to_string(),
            }),
            Source::Profile {
                name: name.into(),
                how: "credential_process".into(),
            },
        ));
    }
    match static_keys(name, p)? {
        Some(c) => Ok(c),
        None => Err(Error::new(format!("profile `{name}` has no credentials"))
            .with_hint("give it aws_access_key_id and aws_secret_access_key, a credential_process, or a role_arn with a source")),
    }
}

fn static_keys(name: &str, p: &HashMap<String, String>) -> Result<Option<Credentials>, Error> {
    let key = |k: &str| p.get(k).filter(|v| !v.is_empty()).cloned();
    match (key("aws_access_key_id"), key("aws_secret_access_key")) {
        (Some(key_id), Some(secret_key)) => {
            staleguard_core::secret::register(&secret_key);
            let token = key("aws_session_token").or_else(|| key("aws_security_token"));
            if let Some(t) = &token {
                staleguard_core::secret::register(t);
            }
            Ok(Some(Credentials::from_provider(
                static_provider(AwsCredential {
                    key_id,
                    secret_key,
                    token,
                }),
                Source::Profile {
                    name: name.into(),
                    how: "static keys".into(),
                },
            )))
        }
        (None, None) => Ok(None),
        _ => Err(Error::new(format!(
            "profile `{name}` has only one of aws_access_key_id and aws_secret_access_key"
        ))
        .with_hint("set both")),
    }
}

/// `credential_process`: runs the command (through the shell, as the AWS CLI does) and reads its
/// JSON (`Version: 1`, `AccessKeyId`, `SecretAccessKey`, optional `SessionToken` and `Expiration`).
#[derive(Debug)]
struct Process {
    profile: String,
    command: String,
}

#[derive(Deserialize)]
#[serde(rename_all = "PascalCase")]
struct ProcessOutput {
    version: u32,
    access_key_id: String,
    secret_access_key: String,
    session_token: Option<String>,
    expiration: Option<String>,
}

#[async_trait]
impl Fetch for Process {
    async fn fetch(&self) -> Result<(AwsCredential, Option<DateTime<Utc>>), Error> {
        let what = format!(
            "profile `{}`: credential_process `{}`",
            self.profile, self.command
        );
        let mut cmd = if cfg!(windows) {
            let mut c = tokio::process::Command::new("cmd");
            c.arg("/C").arg(&self.command);
            c
        } else {
            let mut c = tokio::process::Command::new("sh");
            c.arg("-c").arg(&self.command);
            c
        };
        cmd.stdin(std::process::Stdio::null()).kill_on_drop(true);
        let out = tokio::time::timeout(PROCESS_TIMEOUT, cmd.output())
            .await
            .map_err(|_| {
                Error::new(format!(
                    "{what} ran longer than {} s",
                    PROCESS_TIMEOUT.as_secs()
                ))
            })?
            .map_err(|e| Error::new(format!("{what} could not be started: {e}")))?;
        if !out.status.success() {
            let stderr = String::from_utf8_lossy(&out.stderr);
            return Err(Error::new(format!(
                "{what} failed ({}): {}",
                out.status,
                staleguard_core::text::one_line(stderr.trim(), 300)
            ))
            .with_hint("run the command yourself to see why"));
        }
        let parsed: ProcessOutput = serde_json::from_slice(&out.stdout).map_err(|e| {
            // Never the output itself: it holds secrets.
            Error::new(format!("{what} printed no credentials JSON ({e})"))
                .with_hint("it must print {\"Version\": 1, \"AccessKeyId\": …, \"SecretAccessKey\": …, \"SessionToken\": …, \"Expiration\": …}")
        })?;
        if parsed.version != 1 {
            return Err(Error::new(format!(
                "{what} printed Version {}, only 1 is known",
                parsed.version
            )));
        }
        staleguard_core::secret::register(&parsed.secret_access_key);
        if let Some(t) = &parsed.session_token {
            staleguard_core::secret::register(t);
        }
        let expiry = match &parsed.expiration {
            Some(t) => Some(
                DateTime::parse_from_rfc3339(t)
                    .map_err(|e| {
                        Error::new(format!(
                            "{what}: Expiration `{t}` is not an RFC 3339 time ({e})"
                        ))
                    })?
                    .with_timezone(&Utc),
            ),
            None => None,
        };
        Ok((
            AwsCredential {
                key_id: parsed.access_key_id,
                secret_key: parsed.secret_access_key,
                token: parsed.session_token,
            },
            expiry,
        ))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn files(config: &str, credentials: &str) -> Files {
        let mut f = Files::default();
        f.merge(config, true);
        f.merge(credentials, false);
        f.shown = "test files".into();
        f
    }

    #[test]
    fn parses_both_files_the_credentials_file_winning() {
        let f = files(
            "[default]\nregion = eu-west-1\n[profile ci]\nrole_arn = arn:aws:iam::1:role/r\nsource_profile = base\ns3 =\n  max_concurrent_requests = 20\n[sso-session corp]\nsso_region = us-east-1\n[ci2]\nregion = nope\n",
            "# keys\n[base]\naws_access_key_id = AKIDBASE\naws_secret_access_key = sec#ret ; trailing\n[default]\naws_access_key_id=AKIDDEF\naws_secret_access_key=x\nregion = us-west-2\n",
        );
        assert_eq!(f.get("default").unwrap()["region"], "us-west-2");
        assert_eq!(f.get("ci").unwrap()["source_profile"], "base");
        assert!(!f.get("ci").unwrap().contains_key("max_concurrent_requests"));
        assert_eq!(f.get("base").unwrap()["aws_secret_access_key"], "sec#ret");
        assert!(f.get("corp").is_none() && f.get("ci2").is_none(), "{f:?}");
    }

    #[test]
    fn resolves_each_kind_of_profile() {
        let f = files(
            "[profile role]\nrole_arn = arn:aws:iam::1:role/r\nsource_profile = base\n[profile loop]\nrole_arn = arn:aws:iam::1:role/r\nsource_profile = loop2\n[profile loop2]\nrole_arn = arn:aws:iam::1:role/r\nsource_profile = loop\n[profile sso]\nsso_session = corp\n[profile proc]\ncredential_process = echo hi\n[profile mfa]\nrole_arn = arn:aws:iam::1:role/r\nsource_profile = base\nmfa_serial = arn:aws:iam::1:mfa/me\n[profile empty]\nregion = x\n[profile half]\naws_access_key_id = A\n",
            "[base]\naws_access_key_id = AKIDBASE\naws_secret_access_key = s\n",
        );
        let source = |n: &str| resolve(&f, n).map(|c| c.source().to_string());
        assert_eq!(source("base").unwrap(), "profile `base` (static keys)");
        assert_eq!(
            source("role").unwrap(),
            "profile `role` (assumes arn:aws:iam::1:role/r)"
        );
        assert_eq!(
            source("proc").unwrap(),
            "profile `proc` (credential_process)"
        );
        for (n, want) in [
            ("loop", "source_profile hops"),
            ("sso", "SSO profile"),
            ("mfa", "MFA"),
            ("empty", "has no credentials"),
            ("half", "only one of"),
            ("missing", "is not in test files"),
        ] {
            let e = source(n).unwrap_err();
            assert!(e.message.contains(want), "{n}: {e}");
            assert!(e.hint.is_some() || n == "loop", "{n}: {e:?}");
        }
        let sso = resolve(&f, "sso").unwrap_err();
        assert!(
            sso.hint
                .unwrap()
                .contains("export-credentials --profile sso --format process")
        );
    }

    #[tokio::test]
    async fn credential_process_output_is_read_and_checked() {
        let ok = Process {
            profile: "p".into(),
            command: r#"printf '{"Version": 1, "AccessKeyId": "AKIDPROC", "SecretAccessKey": "proc-secret", "SessionToken": "tok", "Expiration": "2099-01-01T00:00:00Z"}'"#.into(),
        };
        let (c, exp) = ok.fetch().await.unwrap();
        assert_eq!(
            (c.key_id.as_str(), c.token.as_deref()),
            ("AKIDPROC", Some("tok"))
        );
        assert_eq!(exp.unwrap().to_rfc3339(), "2099-01-01T00:00:00+00:00");
        for (cmd, want) in [
            ("echo oops >&2; exit 3", "failed"),
            ("echo leak-$((40+2))", "printed no credentials JSON"),
            (
                r#"printf '{"Version": 2, "AccessKeyId": "A", "SecretAccessKey": "S"}'"#,
                "Version 2",
            ),
            (
                r#"printf '{"Version": 1, "AccessKeyId": "A", "SecretAccessKey": "S", "Expiration": "soon"}'"#,
                "not an RFC 3339",
            ),
        ] {
            let e = Process {
                profile: "p".into(),
                command: cmd.into(),
            }
            .fetch()
            .await
            .unwrap_err();
            assert!(e.message.contains(want), "{cmd}: {e}");
            assert!(!e.message.contains("leak-42"), "output is never shown: {e}");
        }
    }
}
