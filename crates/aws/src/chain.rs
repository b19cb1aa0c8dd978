//! The credential chain: which provider [`Credentials::from_env`] picks, and the cache for temporary
//! credentials.

use std::fmt;
use std::sync::Arc;
use std::time::Duration;

use async_trait::async_trait;
use chrono::{DateTime, Utc};
use object_store::aws::{AmazonS3Builder, AwsCredential, AwsCredentialProvider};
use object_store::{CredentialProvider, RetryConfig, StaticCredentialProvider};

use crate::Error;
use crate::profile;

/// Temporary credentials are fetched again this long before they expire.
const REFRESH_EARLY: Duration = Duration::from_secs(5 * 60);

/// Where credentials come from, for messages (never the credentials themselves).
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Source {
    /// `AWS_ACCESS_KEY_ID` / `AWS_SECRET_ACCESS_KEY` (and `AWS_SESSION_TOKEN`).
    Environment,
    /// A shared profile (`AWS_PROFILE`, else `default`), and how it gets its credentials.
    Profile { name: String, how: String },
    /// `AWS_WEB_IDENTITY_TOKEN_FILE` + `AWS_ROLE_ARN` (GitHub Actions / GitLab OIDC, EKS IRSA).
    WebIdentity,
    /// ECS task role (`AWS_CONTAINER_CREDENTIALS_RELATIVE_URI`).
    Container,
    /// EKS Pod Identity (`AWS_CONTAINER_CREDENTIALS_FULL_URI` + token file).
    PodIdentity,
    /// The EC2 instance metadata service (IMDSv2, IMDSv1 fallback).
    InstanceMetadata,
    /// Handed in by the caller (tests, embedding programs).
    Fixed,
}

impl fmt::Display for Source {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Source::Environment => f.write_str("AWS_ACCESS_KEY_ID/AWS_SECRET_ACCESS_KEY"),
            Source::Profile { name, how } => write!(f, "profile `{name}` ({how})"),
            Source::WebIdentity => {
                f.write_str("web identity (AWS_WEB_IDENTITY_TOKEN_FILE, AWS_ROLE_ARN)")
            }
            Source::Container => f.write_str("the ECS container credentials endpoint"),
            Source::PodIdentity => f.write_str("EKS Pod Identity"),
            Source::InstanceMetadata => f.write_str("the EC2 instance metadata service"),
            Source::Fixed => f.write_str("credentials given by the caller"),
        }
    }
}

/// A credential provider and where it reads from. `Debug` shows the source only.
#[derive(Clone)]
pub struct Credentials {
    provider: AwsCredentialProvider,
    source: Source,
}

impl fmt::Debug for Credentials {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Credentials")
            .field("source", &self.source)
            .finish_non_exhaustive()
    }
}

impl Credentials {
    /// Fixed keys (tests, or a program that has its own).
    pub fn fixed(key_id: &str, secret_key: &str, token: Option<&str>) -> Credentials {
        Credentials {
            provider: static_provider(AwsCredential {
                key_id: key_id.into(),
                secret_key: secret_key.into(),
                token: token.map(str::to_string),
            }),
            source: Source::Fixed,
        }
    }

    /// Any provider, with the source it is to be named by.
    pub fn from_provider(provider: AwsCredentialProvider, source: Source) -> Credentials {
        Credentials { provider, source }
    }

    /// The default chain, in the AWS CLI's order:
    /// 1. `AWS_ACCESS_KEY_ID` + `AWS_SECRET_ACCESS_KEY` (+ `AWS_SESSION_TOKEN`);
    /// 2. the shared profile `AWS_PROFILE` (else `default`, when the files have it) from
    ///    `AWS_SHARED_CREDENTIALS_FILE` (`~/.aws/credentials`) and `AWS_CONFIG_FILE` (`~/.aws/config`);
    /// 3. web identity (`AWS_WEB_IDENTITY_TOKEN_FILE` + `AWS_ROLE_ARN`);
    /// 4. ECS container credentials, then EKS Pod Identity;
    /// 5. the instance metadata service, unless `AWS_EC2_METADATA_DISABLED=true`.
    ///
    /// Nothing is fetched here: a provider that needs the network (STS, a container endpoint, IMDS)
    /// is asked on first use, and its failure is reported then.
    pub fn from_env() -> Result<Credentials, Error> {
        if let Some(c) = env_keys()? {
            return Ok(Credentials {
                provider: static_provider(c),
                source: Source::Environment,
            });
        }
        if let Some(c) = profile::from_env()? {
            return Ok(c);
        }
        object_store_chain()
    }

    /// The shared profile's credentials when the chain would use them: no keys in the environment, and
    /// `AWS_PROFILE` set or a `default` profile present. For clients that read the rest of the chain
    /// themselves (object_store's S3 builder), so nothing else is set up here.
    pub fn profile_from_env() -> Result<Option<Credentials>, Error> {
        if env_keys()?.is_some() {
            return Ok(None);
        }
        profile::from_env()
    }

    /// Profile `name` from the given shared files (either may be missing), as the chain would
    /// resolve it from `AWS_CONFIG_FILE` / `AWS_SHARED_CREDENTIALS_FILE`.
    pub fn profile(
        name: &str,
        config: Option<&std::path::Path>,
        credentials: Option<&std::path::Path>,
    ) -> Result<Credentials, Error> {
        profile::resolve(&profile::Files::read(config, credentials)?, name)
    }

    /// Where these credentials come from.
    pub fn source(&self) -> &Source {
        &self.source
    }

    /// The provider, for object_store's builders (`with_credentials`).
    pub fn provider(&self) -> AwsCredentialProvider {
        self.provider.clone()
    }

    /// Current credentials (cached, refreshed before they expire).
    pub async fn get(&self) -> Result<Arc<AwsCredential>, Error> {
        self.provider.get_credential().await.map_err(|e| {
            // Our own providers fail with an [`Error`] that has its own hint: keep it.
            if let object_store::Error::Generic { source, .. } = &e
                && let Some(inner) = source.downcast_ref::<Error>()
            {
                return Error {
                    message: format!("no usable AWS credentials from {}: {}", self.source, inner.message),
                    hint: inner.hint.clone(),
                };
            }
            let chain = staleguard_core::cause::cause_chain(&e, &[]).join(": ");
            Error::new(format!(
                "no usable AWS credentials from {}: {}",
                self.source,
                staleguard_core::text::one_line(&chain, 300)
            ))
            .with_hint(
                "set AWS_ACCESS_KEY_ID and AWS_SECRET_ACCESS_KEY, or AWS_PROFILE (a profile in ~/.aws/credentials or ~/.aws/config), or run where a role is available (CI OIDC web identity, ECS, EC2)",
            )
        })
    }
}

pub(crate) fn static_provider(c: AwsCredential) -> AwsCredentialProvider {
    Arc::new(StaticCredentialProvider::new(c))
}

fn non_empty(var: &str) -> Option<String> {
    std::env::var(var).ok().filter(|v| !v.trim().is_empty())
}

/// Static keys from the environment, if set; one of the pair alone is an error.
pub(crate) fn env_keys() -> Result<Option<AwsCredential>, Error> {
    let key = non_empty("AWS_ACCESS_KEY_ID");
    let secret = non_empty("AWS_SECRET_ACCESS_KEY");
    match (key, secret) {
        (Some(key_id), Some(secret_key)) => Ok(Some(AwsCredential {
            key_id,
            secret_key,
            token: non_empty("AWS_SESSION_TOKEN").or_else(|| non_empty("AWS_SECURITY_TOKEN")),
        })),
        (None, None) => Ok(None),
        (Some(_), None) => Err(Error::new(
            "AWS_ACCESS_KEY_ID is set but AWS_SECRET_ACCESS_KEY is not",
        )
        .with_hint("set both, or unset AWS_ACCESS_KEY_ID to use a profile or a role")),
        (None, Some(_)) => Err(Error::new(
            "AWS_SECRET_ACCESS_KEY is set but AWS_ACCESS_KEY_ID is not",
        )
        .with_hint("set both, or unset AWS_SECRET_ACCESS_KEY to use a profile or a role")),
    }
}

/// object_store's providers for what is left after the environment's keys and the profile: web
/// identity, ECS, EKS Pod Identity, instance metadata. Few retries: a laptop without any of them
/// should hear so in seconds, not after object_store's default three minutes.
pub(crate) fn object_store_chain() -> Result<Credentials, Error> {
    let source = if non_empty("AWS_WEB_IDENTITY_TOKEN_FILE").is_some()
        && non_empty("AWS_ROLE_ARN").is_some()
    {
        Source::WebIdentity
    } else if non_empty("AWS_CONTAINER_CREDENTIALS_RELATIVE_URI").is_some() {
        Source::Container
    } else if non_empty("AWS_CONTAINER_CREDENTIALS_FULL_URI").is_some()
        && non_empty("AWS_CONTAINER_AUTHORIZATION_TOKEN_FILE").is_some()
    {
        Source::PodIdentity
    } else {
        if non_empty("AWS_EC2_METADATA_DISABLED").is_some_and(|v| v.eq_ignore_ascii_case("true")) {
            return Err(Error::new(
                "no AWS credentials: none in the environment, no profile, no web identity or container credentials, and AWS_EC2_METADATA_DISABLED=true",
            )
            .with_hint("set AWS_ACCESS_KEY_ID and AWS_SECRET_ACCESS_KEY, or AWS_PROFILE"));
        }
        Source::InstanceMetadata
    };
    let retry = RetryConfig {
        max_retries: 2,
        retry_timeout: Duration::from_secs(15),
        ..Default::default()
    };
    // The bucket is required by the builder and never used: only its credential provider is kept.
    let s3 = AmazonS3Builder::from_env()
        .with_bucket_name("staleguard-credentials")
        .with_retry(retry)
        .build()
        .map_err(|e| Error::new(format!("cannot set up AWS credentials from {source}: {e}")))?;
    Ok(Credentials {
        provider: s3.credentials().clone(),
        source,
    })
}

/// Fetches temporary credentials with their expiry.
#[async_trait]
pub(crate) trait Fetch: fmt::Debug + Send + Sync + 'static {
    async fn fetch(&self) -> Result<(AwsCredential, Option<DateTime<Utc>>), Error>;
}

/// Cached credentials and when they expire (`None`: never).
type Entry = (Arc<AwsCredential>, Option<DateTime<Utc>>);

/// A [`Fetch`] behind a cache: fetched on first use and again [`REFRESH_EARLY`] before expiry.
#[derive(Debug)]
pub(crate) struct Cached<F> {
    fetch: F,
    cache: tokio::sync::Mutex<Option<Entry>>,
}

impl<F: Fetch> Cached<F> {
    pub(crate) fn provider(fetch: F) -> AwsCredentialProvider {
        Arc::new(Cached {
            fetch,
            cache: tokio::sync::Mutex::new(None),
        })
    }
}

#[async_trait]
impl<F: Fetch> CredentialProvider for Cached<F> {
    type Credential = AwsCredential;

    async fn get_credential(&self) -> object_store::Result<Arc<AwsCredential>> {
        let mut cache = self.cache.lock().await;
        if let Some((c, expiry)) = cache.as_ref() {
            let fresh = expiry.is_none_or(|t| {
                t - chrono::Duration::from_std(REFRESH_EARLY).unwrap_or_default() > Utc::now()
            });
            if fresh {
                return Ok(c.clone());
            }
        }
        let (c, expiry) = self
            .fetch
            .fetch()
            .await
            .map_err(|e| object_store::Error::Generic {
                store: "aws",
                source: Box::new(e),
            })?;
        let c = Arc::new(c);
        *cache = Some((c.clone(), expiry));
        Ok(c)
    }
}
