//! CloudFront's configuration API, for `staleguard cdn-config --target cloudfront --apply|--check`:
//! distributions, cache policies, response-headers policies and origin access controls as XML
//! documents with their `ETag` (an update sends it back as `If-Match`, so a change made meanwhile by
//! someone else is refused instead of overwritten). The documents themselves are built and read by
//! `staleguard-cdnconf`; this module only signs, sends and maps errors like the purge calls do.

use std::time::Duration;

use http::Method;
use staleguard_aws::Credentials;

use super::api::{self, Api};
use crate::{CdnError, ErrorKind};

/// A document and its version.
#[derive(Debug, Clone)]
pub struct Versioned {
    pub etag: Option<String>,
    pub xml: String,
}

/// The configuration calls, on one endpoint.
#[derive(Debug, Clone)]
pub struct ConfigApi {
    api: Api,
}

/// The kinds of configuration resources, with their paths in the API.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Resource {
    Distribution,
    CachePolicy,
    ResponseHeadersPolicy,
    OriginAccessControl,
}

impl Resource {
    fn path(self) -> &'static str {
        match self {
            Resource::Distribution => "distribution",
            Resource::CachePolicy => "cache-policy",
            Resource::ResponseHeadersPolicy => "response-headers-policy",
            Resource::OriginAccessControl => "origin-access-control",
        }
    }

    /// Where its config is read and replaced: distributions and access controls have `/config`.
    fn config_path(self, id: &str) -> String {
        match self {
            Resource::Distribution | Resource::OriginAccessControl => {
                format!("{}/{}/config", self.path(), api::seg(id))
            }
            _ => format!("{}/{}", self.path(), api::seg(id)),
        }
    }

    /// The operation's name in errors (`get-cache-policy`).
    fn op(self, verb: &str) -> String {
        format!("{verb}-{}", self.path())
    }
}

impl ConfigApi {
    /// The API at `endpoint` (empty: `AWS_ENDPOINT_URL_CLOUDFRONT`, `AWS_ENDPOINT_URL`, else AWS),
    /// with credentials from the environment.
    pub fn open(endpoint: &str, timeout: Duration) -> Result<ConfigApi, CdnError> {
        let credentials = Credentials::from_env().map_err(|e| {
            let mut err = CdnError::new(ErrorKind::Unauthorized, "cloudfront", e.message);
            if let Some(h) = e.hint {
                err = err.with_hint(h);
            }
            err
        })?;
        ConfigApi::with(endpoint, credentials, timeout)
    }

    /// [`ConfigApi::open`] with the caller's credentials.
    pub fn with(
        endpoint: &str,
        credentials: Credentials,
        timeout: Duration,
    ) -> Result<ConfigApi, CdnError> {
        let endpoint = if endpoint.is_empty() {
            staleguard_aws::endpoint_from_env("cloudfront")
                .unwrap_or_else(|| api::ENDPOINT.to_string())
        } else {
            endpoint.trim_end_matches('/').to_string()
        };
        Ok(ConfigApi {
            api: Api::new(credentials, &endpoint, timeout)?,
        })
    }

    /// A resource's config (`GetDistributionConfig`, `GetCachePolicy`, …).
    pub async fn get(&self, r: Resource, id: &str) -> Result<Versioned, CdnError> {
        self.api
            .raw(&r.op("get"), Method::GET, &r.config_path(id), None, None)
            .await
    }

    /// One page of a listing (`?Type=custom` for policies), `marker` from the previous page.
    pub async fn list(&self, r: Resource, marker: Option<&str>) -> Result<String, CdnError> {
        let mut path = r.path().to_string();
        let mut q = Vec::new();
        if matches!(r, Resource::CachePolicy | Resource::ResponseHeadersPolicy) {
            q.push("Type=custom".to_string());
        }
        if let Some(m) = marker {
            q.push(format!("Marker={}", api::seg(m)));
        }
        q.push("MaxItems=100".into());
        path.push('?');
        path.push_str(&q.join("&"));
        Ok(self
            .api
            .raw(&r.op("list"), Method::GET, &path, None, None)
            .await?
            .xml)
    }

    /// Creates a resource from its config document (`POST`), answering the created resource.
    pub async fn create(&self, r: Resource, xml: String) -> Result<Versioned, CdnError> {
        self.api
            .raw(&r.op("create"), Method::POST, r.path(), Some(xml), None)
            .await
    }

    /// Replaces a resource's config (`PUT` with `If-Match`).
    pub async fn update(
        &self,
        r: Resource,
        id: &str,
        etag: &str,
        xml: String,
    ) -> Result<Versioned, CdnError> {
        self.api
            .raw(
                &r.op("update"),
                Method::PUT,
                &r.config_path(id),
                Some(xml),
                Some(etag),
            )
            .await
    }
}
