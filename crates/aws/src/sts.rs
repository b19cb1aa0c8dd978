//! STS for profiles: `AssumeRole` (signed with the source's credentials) and
//! `AssumeRoleWithWebIdentity` (authorised by the token file). The endpoint is
//! `AWS_ENDPOINT_URL_STS`, else `AWS_ENDPOINT_URL`, else `https://sts.<region>.amazonaws.com`.

use std::path::PathBuf;
use std::time::Duration;

use async_trait::async_trait;
use chrono::{DateTime, Utc};
use http::Method;
use object_store::aws::AwsCredential;
use percent_encoding::{AsciiSet, NON_ALPHANUMERIC, utf8_percent_encode};
use serde::Deserialize;

use crate::chain::{Credentials, Fetch};
use crate::{Error, SendError, Signed, xml_error};

/// Everything but the unreserved characters of RFC 3986.
const FORM: &AsciiSet = &NON_ALPHANUMERIC
    .remove(b'-')
    .remove(b'_')
    .remove(b'.')
    .remove(b'~');
const CALL_TIMEOUT: Duration = Duration::from_secs(30);

/// The role a profile assumes.
#[derive(Debug, Clone)]
pub(crate) struct Role {
    pub(crate) role_arn: String,
    pub(crate) session_name: String,
    pub(crate) external_id: Option<String>,
    pub(crate) duration_seconds: Option<u32>,
    pub(crate) region: Option<String>,
    /// The profile's `endpoint_url`, used when the environment names no STS endpoint.
    pub(crate) endpoint: Option<String>,
}

impl Role {
    fn region(&self) -> String {
        self.region
            .clone()
            .or_else(|| std::env::var("AWS_REGION").ok())
            .or_else(|| std::env::var("AWS_DEFAULT_REGION").ok())
            .filter(|r| !r.trim().is_empty())
            .unwrap_or_else(|| "us-east-1".into())
    }

    fn client(&self, credentials: Credentials) -> Result<Signed, Error> {
        let region = self.region();
        let endpoint = crate::endpoint_from_env("sts")
            .or_else(|| self.endpoint.clone())
            .unwrap_or_else(|| format!("https://sts.{region}.amazonaws.com"));
        Signed::new(credentials, "sts", &region, &endpoint, CALL_TIMEOUT)
    }

    fn form(&self, action: &str, extra: &[(&str, &str)]) -> String {
        let duration = self.duration_seconds.map(|d| d.to_string());
        let mut pairs: Vec<(&str, &str)> = vec![
            ("Action", action),
            ("Version", "2011-06-15"),
            ("RoleArn", &self.role_arn),
            ("RoleSessionName", &self.session_name),
        ];
        if let Some(x) = &self.external_id {
            pairs.push(("ExternalId", x));
        }
        if let Some(d) = &duration {
            pairs.push(("DurationSeconds", d));
        }
        pairs.extend_from_slice(extra);
        pairs
            .iter()
            .map(|(k, v)| format!("{k}={}", utf8_percent_encode(v, FORM)))
            .collect::<Vec<_>>()
            .join("&")
    }
}

/// `AssumeRole` with the source profile's (or credential source's) credentials.
#[derive(Debug)]
pub(crate) struct AssumeRole {
    pub(crate) role: Role,
    pub(crate) source: Credentials,
}

#[async_trait]
impl Fetch for AssumeRole {
    async fn fetch(&self) -> Result<(AwsCredential, Option<DateTime<Utc>>), Error> {
        let client = self.role.client(self.source.clone())?;
        let form = self.role.form("AssumeRole", &[]);
        let reply = client
            .send(Method::POST, "/", Some((FORM_TYPE, form)))
            .await;
        read_credentials(&self.role, "AssumeRole", &client, reply)
    }
}

/// `AssumeRoleWithWebIdentity` with the token in `token_file` (read at every refresh: CI and EKS
/// rotate it).
#[derive(Debug)]
pub(crate) struct WebIdentity {
    pub(crate) role: Role,
    pub(crate) token_file: PathBuf,
}

#[async_trait]
impl Fetch for WebIdentity {
    async fn fetch(&self) -> Result<(AwsCredential, Option<DateTime<Utc>>), Error> {
        let token = tokio::fs::read_to_string(&self.token_file)
            .await
            .map_err(|e| {
                Error::new(format!(
                    "cannot read the web identity token {}: {e}",
                    self.token_file.display()
                ))
                .with_hint("check web_identity_token_file in the profile")
            })?;
        staleguard_core::secret::register(token.trim());
        // Unsigned: the credentials here are never used.
        let client = self
            .role
            .client(Credentials::fixed("unused", "unused", None))?;
        let form = self.role.form(
            "AssumeRoleWithWebIdentity",
            &[("WebIdentityToken", token.trim())],
        );
        let reply = client
            .send_unsigned(Method::POST, "/", Some((FORM_TYPE, form)))
            .await;
        read_credentials(&self.role, "AssumeRoleWithWebIdentity", &client, reply)
    }
}

const FORM_TYPE: &str = "application/x-www-form-urlencoded; charset=utf-8";

#[derive(Deserialize)]
#[serde(rename_all = "PascalCase")]
struct StsCredentials {
    access_key_id: String,
    secret_access_key: String,
    session_token: String,
    expiration: String,
}

#[derive(Deserialize)]
#[serde(rename_all = "PascalCase")]
struct StsResult {
    credentials: StsCredentials,
}

#[derive(Deserialize)]
struct StsResponse {
    #[serde(rename = "AssumeRoleResult", alias = "AssumeRoleWithWebIdentityResult")]
    result: StsResult,
}

fn read_credentials(
    role: &Role,
    action: &str,
    client: &Signed,
    reply: Result<crate::Reply, SendError>,
) -> Result<(AwsCredential, Option<DateTime<Utc>>), Error> {
    let what = format!(
        "STS {action} of `{}` at {}",
        role.role_arn,
        client.endpoint()
    );
    let reply = reply.map_err(|e| match e {
        SendError::Credentials(e) => Error {
            message: format!("{what}: the source credentials: {}", e.message),
            hint: e.hint,
        },
        other => Error::new(format!("{what}: {other}"))
            .with_hint("check the network, or AWS_ENDPOINT_URL_STS"),
    })?;
    if !reply.is_success() {
        let (code, message) = xml_error(&reply.body);
        return Err(Error::new(format!(
            "{what} failed: HTTP {}{}{}",
            reply.status,
            if code.is_empty() { String::new() } else { format!(": {code}") },
            if message.is_empty() { String::new() } else { format!(": {message}") },
        ))
        .with_hint("check that the source credentials may sts:AssumeRole on the role, and the role's trust policy"));
    }
    let parsed: StsResponse = quick_xml::de::from_str(&reply.body)
        .map_err(|e| Error::new(format!("{what}: unreadable answer ({e})")))?;
    let c = parsed.result.credentials;
    staleguard_core::secret::register(&c.secret_access_key);
    staleguard_core::secret::register(&c.session_token);
    let expiry = DateTime::parse_from_rfc3339(c.expiration.trim())
        .map(|t| t.with_timezone(&Utc))
        .map_err(|e| {
            Error::new(format!(
                "{what}: Expiration `{}` unreadable ({e})",
                c.expiration
            ))
        })?;
    Ok((
        AwsCredential {
            key_id: c.access_key_id,
            secret_key: c.secret_access_key,
            token: Some(c.session_token),
        },
        Some(expiry),
    ))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn forms_are_encoded() {
        let r = Role {
            role_arn: "arn:aws:iam::123:role/deploy".into(),
            session_name: "s 1".into(),
            external_id: Some("x&y".into()),
            duration_seconds: Some(900),
            region: None,
            endpoint: None,
        };
        assert_eq!(
            r.form("AssumeRole", &[]),
            "Action=AssumeRole&Version=2011-06-15&RoleArn=arn%3Aaws%3Aiam%3A%3A123%3Arole%2Fdeploy&RoleSessionName=s%201&ExternalId=x%26y&DurationSeconds=900"
        );
    }

    #[test]
    fn reads_both_answers() {
        for (root, result) in [
            ("AssumeRoleResponse", "AssumeRoleResult"),
            (
                "AssumeRoleWithWebIdentityResponse",
                "AssumeRoleWithWebIdentityResult",
            ),
        ] {
            let xml = format!(
                "<{root} xmlns=\"https://sts.amazonaws.com/doc/2011-06-15/\"><{result}><Credentials><AccessKeyId>ASIAX</AccessKeyId><SecretAccessKey>sec</SecretAccessKey><SessionToken>tok</SessionToken><Expiration>2026-12-02T16:00:00Z</Expiration></Credentials><AssumedRoleUser><Arn>a</Arn></AssumedRoleUser></{result}><ResponseMetadata><RequestId>r</RequestId></ResponseMetadata></{root}>"
            );
            let p: StsResponse = quick_xml::de::from_str(&xml).unwrap();
            assert_eq!(p.result.credentials.access_key_id, "ASIAX");
        }
    }
}
