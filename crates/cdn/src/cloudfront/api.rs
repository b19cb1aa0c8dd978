//! CloudFront's REST API (version 2020-05-31): the five calls the provider makes, signed with SigV4
//! (`staleguard-aws`) and read with quick-xml. One attempt per call; no retries here.
//!
//! - `CreateInvalidation`: `POST /2020-05-31/distribution/{id}/invalidation`
//! - `GetInvalidation`: `GET /2020-05-31/distribution/{id}/invalidation/{inv}`
//! - `ListInvalidations`: `GET /2020-05-31/distribution/{id}/invalidation?Marker=&MaxItems=`
//! - `GetDistribution`: `GET /2020-05-31/distribution/{id}`
//! - `ListDistributions`: `GET /2020-05-31/distribution?Marker=&MaxItems=`

use std::time::Duration;

use http::Method;
use percent_encoding::{AsciiSet, NON_ALPHANUMERIC, utf8_percent_encode};
use serde::Deserialize;
use staleguard_aws::{Credentials, Signed};

use super::errors::{reply_error, send_error};
use crate::{CdnError, ErrorKind};

const VERSION: &str = "/2020-05-31";
const NS: &str = "http://cloudfront.amazonaws.com/doc/2020-05-31/";
/// CloudFront's API is global; requests are signed for this region.
pub(super) const REGION: &str = "us-east-1";
/// AWS's endpoint.
pub(super) const ENDPOINT: &str = "https://cloudfront.amazonaws.com";

#[derive(Debug, Clone)]
pub(super) struct Api {
    signed: Signed,
}

#[derive(Debug, Deserialize)]
#[serde(rename_all = "PascalCase")]
pub(super) struct Invalidation {
    pub(super) id: String,
    #[serde(default)]
    pub(super) status: String,
    #[serde(default)]
    pub(super) invalidation_batch: Option<BatchXml>,
}

#[derive(Debug, Deserialize)]
#[serde(rename_all = "PascalCase")]
pub(super) struct BatchXml {
    #[serde(default)]
    pub(super) paths: Option<PathsXml>,
    #[serde(default)]
    pub(super) caller_reference: String,
}

#[derive(Debug, Deserialize)]
#[serde(rename_all = "PascalCase")]
pub(super) struct PathsXml {
    #[serde(default)]
    items: Option<PathItems>,
}

#[derive(Debug, Deserialize)]
struct PathItems {
    #[serde(rename = "Path", default)]
    path: Vec<String>,
}

impl PathsXml {
    pub(super) fn items(&self) -> Vec<String> {
        self.items
            .as_ref()
            .map(|i| i.path.clone())
            .unwrap_or_default()
    }
}

#[derive(Debug, Deserialize)]
#[serde(rename_all = "PascalCase")]
pub(super) struct InvalidationList {
    #[serde(default)]
    pub(super) is_truncated: bool,
    #[serde(default)]
    pub(super) next_marker: Option<String>,
    #[serde(default)]
    items: Option<SummaryItems>,
}

#[derive(Debug, Deserialize)]
struct SummaryItems {
    #[serde(rename = "InvalidationSummary", default)]
    summaries: Vec<InvalidationSummary>,
}

#[derive(Debug, Deserialize)]
#[serde(rename_all = "PascalCase")]
pub(super) struct InvalidationSummary {
    pub(super) id: String,
    #[serde(default)]
    pub(super) create_time: String,
    #[serde(default)]
    pub(super) status: String,
}

impl InvalidationList {
    pub(super) fn items(&self) -> &[InvalidationSummary] {
        self.items.as_ref().map_or(&[], |i| &i.summaries)
    }
}

#[derive(Debug, Deserialize)]
#[serde(rename_all = "PascalCase")]
pub(super) struct Distribution {
    pub(super) id: String,
    #[serde(rename = "ARN", default)]
    pub(super) arn: String,
    #[serde(default)]
    pub(super) domain_name: String,
    #[serde(default)]
    pub(super) distribution_config: Option<DistributionParts>,
}

/// The parts of a distribution's config (or of a summary) that discovery reads.
#[derive(Debug, Default, Deserialize)]
#[serde(rename_all = "PascalCase")]
pub(super) struct DistributionParts {
    #[serde(default)]
    aliases: Option<AliasesXml>,
    #[serde(default)]
    origins: Option<OriginsXml>,
    #[serde(default)]
    default_cache_behavior: Option<BehaviorXml>,
}

#[derive(Debug, Clone, Deserialize)]
#[serde(rename_all = "PascalCase")]
struct AliasesXml {
    #[serde(default)]
    items: Option<CnameItems>,
}

#[derive(Debug, Clone, Deserialize)]
struct CnameItems {
    #[serde(rename = "CNAME", default)]
    cname: Vec<String>,
}

#[derive(Debug, Clone, Deserialize)]
#[serde(rename_all = "PascalCase")]
struct OriginsXml {
    #[serde(default)]
    items: Option<OriginItems>,
}

#[derive(Debug, Clone, Deserialize)]
struct OriginItems {
    #[serde(rename = "Origin", default)]
    origin: Vec<OriginXml>,
}

#[derive(Debug, Clone, Deserialize)]
#[serde(rename_all = "PascalCase")]
struct OriginXml {
    id: String,
    #[serde(default)]
    domain_name: String,
    #[serde(default)]
    origin_path: String,
}

#[derive(Debug, Clone, Deserialize)]
#[serde(rename_all = "PascalCase")]
struct BehaviorXml {
    #[serde(default)]
    target_origin_id: String,
}

impl DistributionParts {
    pub(super) fn aliases(&self) -> Vec<String> {
        self.aliases
            .as_ref()
            .and_then(|a| a.items.as_ref())
            .map(|i| i.cname.clone())
            .unwrap_or_default()
    }

    pub(super) fn origins(&self) -> Vec<super::OriginInfo> {
        self.origins
            .as_ref()
            .and_then(|o| o.items.as_ref())
            .map(|i| {
                i.origin
                    .iter()
                    .map(|o| super::OriginInfo {
                        id: o.id.clone(),
                        domain_name: o.domain_name.clone(),
                        origin_path: o.origin_path.clone(),
                    })
                    .collect()
            })
            .unwrap_or_default()
    }

    pub(super) fn default_origin(&self) -> Option<String> {
        self.default_cache_behavior
            .as_ref()
            .map(|b| b.target_origin_id.clone())
            .filter(|s| !s.is_empty())
    }
}

#[derive(Debug, Deserialize)]
#[serde(rename_all = "PascalCase")]
pub(super) struct DistributionSummary {
    pub(super) id: String,
    #[serde(rename = "ARN", default)]
    pub(super) arn: String,
    #[serde(default)]
    pub(super) domain_name: String,
    #[serde(default)]
    aliases: Option<AliasesXml>,
    #[serde(default)]
    origins: Option<OriginsXml>,
    #[serde(default)]
    default_cache_behavior: Option<BehaviorXml>,
}

impl DistributionSummary {
    /// What discovery reads, as for a full distribution.
    pub(super) fn parts(&self) -> DistributionParts {
        DistributionParts {
            aliases: self.aliases.clone(),
            origins: self.origins.clone(),
            default_cache_behavior: self.default_cache_behavior.clone(),
        }
    }
}

#[derive(Debug, Deserialize)]
#[serde(rename_all = "PascalCase")]
pub(super) struct DistributionList {
    #[serde(default)]
    pub(super) is_truncated: bool,
    #[serde(default)]
    pub(super) next_marker: Option<String>,
    #[serde(default)]
    items: Option<DistributionItems>,
}

#[derive(Debug, Deserialize)]
struct DistributionItems {
    #[serde(rename = "DistributionSummary", default)]
    summaries: Vec<DistributionSummary>,
}

impl DistributionList {
    pub(super) fn items(&self) -> &[DistributionSummary] {
        self.items.as_ref().map_or(&[], |i| &i.summaries)
    }
}

/// What a path segment keeps as is: RFC 3986's unreserved characters (policy ids are UUIDs).
const SEGMENT: &AsciiSet = &NON_ALPHANUMERIC
    .remove(b'-')
    .remove(b'_')
    .remove(b'.')
    .remove(b'~');

/// A path segment (a distribution, invalidation or policy id; never trusted to be plain).
pub(super) fn seg(s: &str) -> String {
    utf8_percent_encode(s, SEGMENT).to_string()
}

/// One page of a listing: `base?Marker=…&MaxItems=…` (no marker on the first page).
fn page(base: String, marker: Option<&str>, max_items: usize) -> String {
    match marker {
        Some(m) => format!("{base}?Marker={}&MaxItems={max_items}", seg(m)),
        None => format!("{base}?MaxItems={max_items}"),
    }
}

/// The `InvalidationBatch` document of `CreateInvalidation`.
pub(super) fn invalidation_batch_xml(paths: &[String], reference: &str) -> String {
    let mut items = String::new();
    for p in paths {
        items.push_str("<Path>");
        items.push_str(&staleguard_core::text::xml_escape(p));
        items.push_str("</Path>");
    }
    format!(
        "<?xml version=\"1.0\" encoding=\"UTF-8\"?>\n<InvalidationBatch xmlns=\"{NS}\"><Paths><Quantity>{}</Quantity><Items>{items}</Items></Paths><CallerReference>{}</CallerReference></InvalidationBatch>",
        paths.len(),
        staleguard_core::text::xml_escape(reference)
    )
}

impl Api {
    pub(super) fn new(
        credentials: Credentials,
        endpoint: &str,
        timeout: Duration,
    ) -> Result<Api, CdnError> {
        let signed = Signed::new(credentials, "cloudfront", REGION, endpoint, timeout).map_err(|e| {
            CdnError::new(ErrorKind::Config, "cloudfront", e.message)
                .with_hint("leave `api` out to use AWS, or set it to the endpoint of a CloudFront-compatible API")
        })?;
        Ok(Api { signed })
    }

    async fn call<T: for<'de> Deserialize<'de>>(
        &self,
        label: &str,
        op: &str,
        method: Method,
        path: &str,
        body: Option<String>,
    ) -> Result<T, CdnError> {
        let reply = self
            .signed
            .send(method, path, body.map(|b| ("text/xml", b)))
            .await
            .map_err(|e| send_error(label, op, e))?;
        if !reply.is_success() {
            return Err(reply_error(label, op, &reply));
        }
        quick_xml::de::from_str(&reply.body).map_err(|e| {
            CdnError::new(
                ErrorKind::Transient,
                label,
                format!(
                    "{op}: unreadable answer (HTTP {}): {e}: {}",
                    reply.status,
                    staleguard_core::text::one_line(&reply.body, 200)
                ),
            )
        })
    }

    /// One call with an XML body or none, answering the body and `ETag` as they are.
    pub(super) async fn raw(
        &self,
        op: &str,
        method: Method,
        path: &str,
        body: Option<String>,
        if_match: Option<&str>,
    ) -> Result<super::config::Versioned, CdnError> {
        let path = format!("{VERSION}/{path}");
        let extra: Vec<(&str, &str)> = if_match.map(|e| ("if-match", e)).into_iter().collect();
        let reply = self
            .signed
            .send_with_headers(method, &path, body.map(|b| ("text/xml", b)), &extra)
            .await
            .map_err(|e| send_error("cloudfront", op, e))?;
        if !reply.is_success() {
            return Err(reply_error("cloudfront", op, &reply));
        }
        let etag = reply
            .headers
            .get("etag")
            .and_then(|v| v.to_str().ok())
            .map(str::to_string);
        Ok(super::config::Versioned {
            etag,
            xml: reply.body,
        })
    }

    pub(super) async fn create_invalidation(
        &self,
        label: &str,
        distribution: &str,
        paths: &[String],
        reference: &str,
    ) -> Result<Invalidation, CdnError> {
        let path = format!("{VERSION}/distribution/{}/invalidation", seg(distribution));
        self.call(
            label,
            "create-invalidation",
            Method::POST,
            &path,
            Some(invalidation_batch_xml(paths, reference)),
        )
        .await
    }

    pub(super) async fn get_invalidation(
        &self,
        label: &str,
        distribution: &str,
        id: &str,
    ) -> Result<Invalidation, CdnError> {
        let path = format!(
            "{VERSION}/distribution/{}/invalidation/{}",
            seg(distribution),
            seg(id)
        );
        self.call(label, "get-invalidation", Method::GET, &path, None)
            .await
    }

    pub(super) async fn list_invalidations(
        &self,
        label: &str,
        distribution: &str,
        marker: Option<&str>,
        max_items: usize,
    ) -> Result<InvalidationList, CdnError> {
        let path = page(
            format!("{VERSION}/distribution/{}/invalidation", seg(distribution)),
            marker,
            max_items,
        );
        self.call(label, "list-invalidations", Method::GET, &path, None)
            .await
    }

    pub(super) async fn get_distribution(
        &self,
        label: &str,
        id: &str,
    ) -> Result<Distribution, CdnError> {
        let path = format!("{VERSION}/distribution/{}", seg(id));
        self.call(label, "get-distribution", Method::GET, &path, None)
            .await
    }

    pub(super) async fn list_distributions(
        &self,
        marker: Option<&str>,
        max_items: usize,
    ) -> Result<DistributionList, CdnError> {
        let path = page(format!("{VERSION}/distribution"), marker, max_items);
        self.call("cloudfront", "list-distributions", Method::GET, &path, None)
            .await
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn batch_documents_escape_their_text() {
        let x = invalidation_batch_xml(&["/a&b".into(), "/<c>".into()], "ref\"1");
        assert!(
            x.contains(
                "<Quantity>2</Quantity><Items><Path>/a&amp;b</Path><Path>/&lt;c&gt;</Path></Items>"
            ),
            "{x}"
        );
        assert!(
            x.contains("<CallerReference>ref&quot;1</CallerReference>"),
            "{x}"
        );
        assert!(x.contains(NS));
    }

    #[test]
    fn reads_cloudfront_documents() {
        let inv: Invalidation = quick_xml::de::from_str(&format!(
            "<?xml version=\"1.0\"?>\n<Invalidation xmlns=\"{NS}\"><Id>I1</Id><Status>InProgress</Status><CreateTime>2026-12-02T15:00:00.123Z</CreateTime><InvalidationBatch><Paths><Quantity>2</Quantity><Items><Path>/a</Path><Path>/b&amp;c</Path></Items></Paths><CallerReference>r</CallerReference></InvalidationBatch></Invalidation>"
        ))
        .unwrap();
        let b = inv.invalidation_batch.unwrap();
        assert_eq!((inv.id.as_str(), inv.status.as_str()), ("I1", "InProgress"));
        assert_eq!(b.paths.unwrap().items(), vec!["/a", "/b&c"]);
        assert_eq!(b.caller_reference, "r");

        let list: InvalidationList = quick_xml::de::from_str(
            "<InvalidationList><Marker></Marker><NextMarker>I2</NextMarker><MaxItems>2</MaxItems><IsTruncated>true</IsTruncated><Quantity>2</Quantity><Items><InvalidationSummary><Id>I3</Id><CreateTime>2026-12-02T15:00:02Z</CreateTime><Status>Completed</Status></InvalidationSummary><InvalidationSummary><Id>I2</Id><CreateTime>2026-12-02T15:00:01Z</CreateTime><Status>InProgress</Status></InvalidationSummary></Items></InvalidationList>",
        )
        .unwrap();
        assert!(list.is_truncated);
        assert_eq!(list.next_marker.as_deref(), Some("I2"));
        assert_eq!(
            list.items()
                .iter()
                .map(|s| s.id.as_str())
                .collect::<Vec<_>>(),
            ["I3", "I2"]
        );
        let empty: InvalidationList = quick_xml::de::from_str(
            "<InvalidationList><Marker/><MaxItems>100</MaxItems><IsTruncated>false</IsTruncated><Quantity>0</Quantity></InvalidationList>",
        )
        .unwrap();
        assert!(empty.items().is_empty() && !empty.is_truncated);

        let d: Distribution = quick_xml::de::from_str(
            "<Distribution><Id>E1</Id><ARN>arn</ARN><Status>Deployed</Status><DomainName>d1.cloudfront.net</DomainName><DistributionConfig><CallerReference>c</CallerReference><Aliases><Quantity>1</Quantity><Items><CNAME>www.example.com</CNAME></Items></Aliases><Origins><Quantity>2</Quantity><Items><Origin><Id>api</Id><DomainName>api.example.com</DomainName><OriginPath></OriginPath><CustomHeaders><Quantity>0</Quantity></CustomHeaders></Origin><Origin><Id>s3</Id><DomainName>b.s3.amazonaws.com</DomainName><OriginPath>/site</OriginPath><S3OriginConfig><OriginAccessIdentity/></S3OriginConfig></Origin></Items></Origins><DefaultCacheBehavior><TargetOriginId>s3</TargetOriginId><ViewerProtocolPolicy>redirect-to-https</ViewerProtocolPolicy></DefaultCacheBehavior></DistributionConfig></Distribution>",
        )
        .unwrap();
        let parts = d.distribution_config.unwrap();
        assert_eq!(parts.aliases(), vec!["www.example.com"]);
        assert_eq!(parts.origins()[1].origin_path, "/site");
        assert_eq!(parts.default_origin().as_deref(), Some("s3"));
        assert_eq!(d.arn, "arn");

        let l: DistributionList = quick_xml::de::from_str(
            "<DistributionList><Marker/><NextMarker>E2</NextMarker><MaxItems>1</MaxItems><IsTruncated>true</IsTruncated><Quantity>1</Quantity><Items><DistributionSummary><Id>E1</Id><DomainName>d1.cloudfront.net</DomainName><Aliases><Quantity>0</Quantity></Aliases><Origins><Quantity>1</Quantity><Items><Origin><Id>o</Id><DomainName>b.s3.amazonaws.com</DomainName></Origin></Items></Origins><DefaultCacheBehavior><TargetOriginId>o</TargetOriginId></DefaultCacheBehavior></DistributionSummary></Items></DistributionList>",
        )
        .unwrap();
        assert_eq!(l.items()[0].parts().origins()[0].origin_path, "");
        assert!(l.items()[0].parts().aliases().is_empty());
        assert_eq!(l.next_marker.as_deref(), Some("E2"));
    }
}
