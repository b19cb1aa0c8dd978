//! AWS plumbing for staleguard without the AWS SDK.
//!
//! - [`Credentials`]: where AWS credentials come from, resolved the way the AWS CLI and SDKs do
//!   ([`Credentials::from_env`]): static keys in the environment, then the shared profile
//!   (`AWS_PROFILE`, `~/.aws/credentials`, `~/.aws/config`: static keys, `credential_process`, an assumed
//!   role from a `source_profile`, a `credential_source` or a `web_identity_token_file`), then
//!   object_store's providers for web identity (`AWS_WEB_IDENTITY_TOKEN_FILE` + `AWS_ROLE_ARN`: CI OIDC),
//!   ECS and EKS container credentials and instance metadata (IMDSv2). Temporary credentials are cached
//!   and refreshed before they expire.
//! - [`Signed`]: one SigV4-signed REST call (CloudFront, STS), signed with object_store's
//!   [`AwsAuthorizer`](object_store::aws::AwsAuthorizer) and sent with reqwest. No retries: callers
//!   retry with their own policy.
//!
//! The object store (`s3://`) and the CloudFront provider use the same [`Credentials`], so one
//! `AWS_PROFILE` serves both.

mod chain;
mod profile;
mod signed;
mod sts;

pub use chain::{Credentials, Source};
pub use object_store::aws::AwsCredential;
pub use signed::{Reply, SendError, Signed, xml_error};

use std::fmt;

/// A credential or request failure: what went wrong, where, and what to do.
#[derive(Debug, Clone)]
pub struct Error {
    pub message: String,
    pub hint: Option<String>,
}

impl Error {
    pub fn new(message: impl Into<String>) -> Error {
        Error {
            message: message.into(),
            hint: None,
        }
    }

    pub fn with_hint(mut self, hint: impl Into<String>) -> Error {
        self.hint = Some(hint.into());
        self
    }

    pub fn hint(&self) -> Option<&str> {
        self.hint.as_deref()
    }
}

impl fmt::Display for Error {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.message)
    }
}

impl std::error::Error for Error {}

/// The endpoint for `service` (`cloudfront`, `sts`): `AWS_ENDPOINT_URL_<SERVICE>`, else `AWS_ENDPOINT_URL`,
/// else `None` (AWS's own).
pub fn endpoint_from_env(service: &str) -> Option<String> {
    let specific = format!("AWS_ENDPOINT_URL_{}", service.to_ascii_uppercase());
    [specific.as_str(), "AWS_ENDPOINT_URL"]
        .iter()
        .filter_map(|k| std::env::var(k).ok())
        .map(|v| v.trim().trim_end_matches('/').to_string())
        .find(|v| !v.is_empty())
}
