//! Amazon CloudFront: one [`CloudFront`] per distribution, purging with `CreateInvalidation`.
//!
//! - [`open`] resolves the `[[cdn]]` entry's distributions: explicit ids are checked with
//!   `GetDistribution`; `auto` lists the account's distributions and keeps those whose alternate domain
//!   names (CNAMEs) or `*.cloudfront.net` name match `domain`.
//! - The URL prefix under which the store's keys are served is derived from the distribution's origin
//!   for the store's bucket and its `OriginPath` (store `s3://b/site/` behind origin path `/site` is served
//!   at `/`), unless the config sets `url-prefix`.
//! - [`Provider::purge`] sends one invalidation per call. Items become CloudFront paths: a path as is, a
//!   prefix `/docs/` as `/docs/*`, everything as `/*`, a tag as `#tag` (only when `tags = true`). Paths are
//!   checked before sending, and characters CloudFront wants percent-encoded (non-ASCII, controls and the
//!   characters RFC 1738 calls unsafe: space `"` `<` `>` `#` `%` `{` `}` `|` `\` `^` `~` `[` `]` and
//!   backtick) are encoded; nothing else is. Item values are therefore decoded paths, as store keys are.
//! - The batch's `reference` is the invalidation's `CallerReference`. Real CloudFront answers a repeated
//!   request with the same reference and the same paths with the invalidation it already created, so a
//!   retry after a lost response creates no second invalidation; the same reference with other paths is
//!   refused (`InvalidationBatchAlreadyExists`, mapped to [`ErrorKind::Invalid`]). moto does neither.
//! - Status strings are compared case-insensitively: moto answers `COMPLETED`, CloudFront `Completed`.
//!
//! Like every provider, this one makes exactly one API call per purge, and retrying, splitting and
//! waiting are left to [`crate::wrap`]. The calls are CloudFront's REST API signed with SigV4
//! ([`api`], on `staleguard-aws`): no AWS SDK, so the default build stays small and quick to compile.

mod api;
pub mod config;
mod discovery;
mod errors;
mod paths;

use std::fmt;
use std::time::Duration;

use async_trait::async_trait;
use staleguard_aws::Credentials;
use staleguard_core::config::{CdnConfig, normalize_prefix};
use staleguard_core::purge::{Capabilities, Pricing};
use tracing::Instrument;

use crate::{Batch, CdnError, ErrorKind, Invalidation, OpenContext, Provider, Receipt, Status};

use api::Api;
use discovery::resolve;
pub use discovery::{OriginInfo, served_prefix};
pub use paths::{encode_path, render_item};

/// Paths per invalidation (CloudFront quota).
pub const MAX_PATHS_PER_CALL: usize = 3000;
/// Single-file paths in progress at once per distribution (CloudFront quota).
pub const MAX_PATHS_IN_FLIGHT: usize = 3000;
/// Wildcard paths in progress at once per distribution (CloudFront quota).
pub const MAX_WILDCARDS_IN_FLIGHT: usize = 15;
/// Longest invalidation path CloudFront accepts.
const MAX_PATH_LEN: usize = 4000;
/// [`Provider::list`] fetches the paths and caller reference of at most this many invalidations (one
/// `GetInvalidation` each); older ones are listed with id, status and creation time only.
pub const LIST_DETAILS: usize = 10;
/// Timeout of one API call.
pub const CALL_TIMEOUT: Duration = Duration::from_secs(60);
/// Pages of `ListDistributions` read at most when resolving `auto` (100 distributions a page).
const MAX_LIST_PAGES: usize = 200;

/// One CloudFront distribution.
#[derive(Clone)]
pub struct CloudFront {
    name: String,
    distribution: String,
    domain_name: String,
    api: Api,
    caps: Capabilities,
    url_prefix: Option<String>,
    /// `cloudfront-account:<id>`: CloudFront's free paths are counted per account.
    free_tier_scope: Option<String>,
}

impl fmt::Debug for CloudFront {
    // The API client holds the credentials provider: it is left out.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("CloudFront")
            .field("distribution", &self.distribution)
            .field("domain_name", &self.domain_name)
            .field("url_prefix", &self.url_prefix)
            .field("tags", &self.caps.tags)
            .finish_non_exhaustive()
    }
}

/// What CloudFront can purge: paths, wildcard prefixes and everything (`/*`); tags only when the
/// `[[cdn]]` entry allows them. `max_items` (from the config) can only lower the 3,000 paths per call.
pub fn capabilities(tags: bool, max_items: Option<usize>) -> Capabilities {
    Capabilities {
        paths: true,
        prefixes: true,
        tags,
        hosts: false,
        all: true,
        soft: false,
        max_items_per_call: max_items
            .map_or(MAX_PATHS_PER_CALL, |m| m.clamp(1, MAX_PATHS_PER_CALL)),
        max_paths_in_flight: Some(MAX_PATHS_IN_FLIGHT),
        max_prefixes_in_flight: Some(MAX_WILDCARDS_IN_FLIGHT),
        asynchronous: true,
        pricing: Pricing {
            per_item_usd: 0.005,
            free_items_per_month: 1000,
        },
    }
}

/// Opens one [`CloudFront`] per distribution of `cfg`, with credentials from the environment
/// ([`Credentials::from_env`]: environment, profile with `credential_process` or an assumed role, web
/// identity, ECS/EKS, instance metadata). The endpoint is `cfg.api` when set, else
/// `AWS_ENDPOINT_URL_CLOUDFRONT` or `AWS_ENDPOINT_URL` when set, else AWS.
pub async fn open(cfg: &CdnConfig, ctx: &OpenContext) -> Result<Vec<CloudFront>, CdnError> {
    let credentials = Credentials::from_env().map_err(|e| {
        let mut err = CdnError::new(ErrorKind::Unauthorized, "cloudfront", e.message);
        if let Some(h) = e.hint {
            err = err.with_hint(h);
        }
        err
    })?;
    open_with(cfg, ctx, credentials, CALL_TIMEOUT).await
}

/// [`open`] with the caller's credentials and per-call timeout.
pub async fn open_with(
    cfg: &CdnConfig,
    ctx: &OpenContext,
    credentials: Credentials,
    timeout: Duration,
) -> Result<Vec<CloudFront>, CdnError> {
    let span = tracing::info_span!("cloudfront.open", provider = "cloudfront", distributions = ?cfg.distribution);
    async move {
        let api = api(cfg, credentials, timeout)?;
        let targets = resolve(&api, cfg).await?;
        let caps = capabilities(cfg.tags, cfg.max_items);
        let mut out = Vec::with_capacity(targets.len());
        for t in targets {
            let name = format!("cloudfront:{}", t.id);
            let url_prefix = if !cfg.url_prefix.is_empty() {
                Some(normalize_prefix(&cfg.url_prefix).map_err(|m| CdnError::new(ErrorKind::Config, &name, m))?)
            } else if let Some(bucket) = &ctx.bucket {
                Some(
                    served_prefix(&t.origins, t.default_origin.as_deref(), bucket, &ctx.store_prefix)
                        .map_err(|(msg, hint)| {
                            CdnError::new(ErrorKind::Config, &name, msg).with_hint(hint)
                        })?,
                )
            } else {
                None
            };
            tracing::debug!(distribution = %t.id, url_prefix = ?url_prefix, "cloudfront distribution opened");
            out.push(CloudFront {
                name,
                distribution: t.id,
                domain_name: t.domain_name,
                api: api.clone(),
                caps: caps.clone(),
                url_prefix,
                free_tier_scope: t.account.map(|a| format!("cloudfront-account:{a}")),
            });
        }
        Ok(out)
    }
    .instrument(span)
    .await
}

fn api(cfg: &CdnConfig, credentials: Credentials, timeout: Duration) -> Result<Api, CdnError> {
    let endpoint = if cfg.api.is_empty() {
        staleguard_aws::endpoint_from_env("cloudfront").unwrap_or_else(|| api::ENDPOINT.to_string())
    } else {
        cfg.api.trim_end_matches('/').to_string()
    };
    Api::new(credentials, &endpoint, timeout).map_err(|e| {
        if cfg.api.is_empty() {
            e
        } else {
            CdnError::new(
                ErrorKind::Config,
                "cloudfront",
                format!("`api` must be an http(s) URL, got `{}`", cfg.api),
            )
            .with_hint("leave `api` out to use AWS, or set it to the endpoint of a CloudFront-compatible API")
        }
    })
}

/// CloudFront's status string as a [`Status`]: `Completed` in any case (moto says `COMPLETED`) is
/// completed; anything else (`InProgress`) is in progress.
pub fn parse_status(s: &str) -> Status {
    if s.trim().eq_ignore_ascii_case("completed") {
        Status::Completed
    } else {
        Status::InProgress
    }
}

/// A CloudFront time (`2026-12-02T15:00:00.123Z`) as (seconds, nanoseconds) since the epoch and as
/// RFC 3339 text; `None` when unreadable (listed last).
fn parse_time(t: &str) -> Option<(i64, u32, String)> {
    let d = chrono::DateTime::parse_from_rfc3339(t.trim())
        .ok()?
        .with_timezone(&chrono::Utc);
    Some((
        d.timestamp(),
        d.timestamp_subsec_nanos(),
        d.to_rfc3339_opts(chrono::SecondsFormat::AutoSi, true),
    ))
}

impl CloudFront {
    /// The distribution id (`E2QWRUHAPOMQZL`).
    pub fn distribution(&self) -> &str {
        &self.distribution
    }

    /// The distribution's own domain name (`d111111abcdef8.cloudfront.net`).
    pub fn domain_name(&self) -> &str {
        &self.domain_name
    }

    fn error(&self, kind: ErrorKind, message: impl Into<String>) -> CdnError {
        CdnError::new(kind, &self.name, message)
    }

    async fn details(&self, id: &str) -> Result<api::Invalidation, CdnError> {
        self.api
            .get_invalidation(&self.name, &self.distribution, id)
            .await
    }
}

#[async_trait]
impl Provider for CloudFront {
    fn name(&self) -> &str {
        &self.name
    }

    fn capabilities(&self) -> &Capabilities {
        &self.caps
    }

    fn url_prefix(&self) -> Option<&str> {
        self.url_prefix.as_deref()
    }

    fn free_tier_scope(&self) -> Option<&str> {
        self.free_tier_scope.as_deref()
    }

    async fn purge(&self, batch: &Batch) -> Result<Receipt, CdnError> {
        let span = tracing::info_span!("cloudfront.purge", provider = %self.name, items = batch.items.len(), reference = %batch.reference);
        async move {
            if batch.items.is_empty() {
                return Ok(Receipt {
                    provider: self.name.clone(),
                    id: None,
                    status: Status::Completed,
                    items: 0,
                    detail: "nothing to invalidate".into(),
                });
            }
            if batch.items.len() > self.caps.max_items_per_call {
                return Err(self
                    .error(
                        ErrorKind::BatchTooLarge,
                        format!(
                            "{} paths in one call; CloudFront takes at most {}",
                            batch.items.len(),
                            self.caps.max_items_per_call
                        ),
                    )
                    .with_hint("split the batch (the chunking wrapper does)"));
            }
            if batch.reference.is_empty() {
                return Err(self.error(
                    ErrorKind::Invalid,
                    "empty batch reference (CloudFront needs a CallerReference)",
                ));
            }
            let mut paths = Vec::with_capacity(batch.items.len());
            for item in &batch.items {
                let p = render_item(item, self.caps.tags).map_err(|m| {
                    let shown = staleguard_core::text::cut(&item.to_string(), 80).into_owned();
                    self.error(
                        ErrorKind::Invalid,
                        format!("cannot invalidate `{shown}`: {m}"),
                    )
                })?;
                paths.push(p);
            }
            let n = paths.len();
            let inv = self
                .api
                .create_invalidation(&self.name, &self.distribution, &paths, &batch.reference)
                .await
                .map_err(|mut e| {
                    // Every create error names the batch's caller reference (the idempotency key).
                    e.message = format!("{} (caller reference `{}`)", e.message, batch.reference);
                    e
                })?;
            let status = parse_status(&inv.status);
            tracing::info!(id = %inv.id, status = %inv.status, "invalidation created");
            Ok(Receipt {
                provider: self.name.clone(),
                id: Some(inv.id.clone()),
                status,
                items: n,
                detail: format!("invalidation {} ({n} paths)", inv.id),
            })
        }
        .instrument(span)
        .await
    }

    async fn status(&self, id: &str) -> Result<Status, CdnError> {
        let span = tracing::debug_span!("cloudfront.status", provider = %self.name, id = %id);
        async move {
            let inv = self.details(id).await?;
            Ok(parse_status(&inv.status))
        }
        .instrument(span)
        .await
    }

    async fn list(&self, max: usize) -> Result<Vec<Invalidation>, CdnError> {
        let span = tracing::info_span!("cloudfront.list", provider = %self.name, max);
        async move {
            let mut found: Vec<(i64, u32, Invalidation)> = Vec::new();
            let mut marker: Option<String> = None;
            // CloudFront lists newest first, so the first `max` are the newest; a listing that goes
            // oldest first (moto, some proxies) is read to its end, or it would give the oldest `max`.
            let mut oldest_first = false;
            while found.len() < max || oldest_first {
                let page = if oldest_first {
                    100
                } else {
                    // At least two, so that the order shows even for `--max 1`.
                    (max - found.len()).clamp(2, 100)
                };
                let from = marker.take();
                let list = self
                    .api
                    .list_invalidations(&self.name, &self.distribution, from.as_deref(), page)
                    .await?;
                for s in list.items() {
                    let (secs, nanos, created) = match parse_time(&s.create_time) {
                        Some((a, b, c)) => (a, b, Some(c)),
                        None => (i64::MIN, 0, None),
                    };
                    // One item newer than the one listed before it: not newest first.
                    if found.last().is_some_and(|f| (secs, nanos) > (f.0, f.1)) {
                        oldest_first = true;
                    }
                    found.push((
                        secs,
                        nanos,
                        Invalidation {
                            provider: self.name.clone(),
                            id: s.id.clone(),
                            status: parse_status(&s.status),
                            created,
                            items: Vec::new(),
                            reference: None,
                        },
                    ));
                }
                match list.next_marker.as_deref() {
                    Some(m) if list.is_truncated && !m.is_empty() && !list.items().is_empty() => {
                        marker = Some(m.to_string())
                    }
                    _ => break,
                }
            }
            // Newest first, whatever order the listing had.
            found.sort_by_key(|f| std::cmp::Reverse((f.0, f.1)));
            found.truncate(max);
            let mut out: Vec<Invalidation> = found.into_iter().map(|(_, _, i)| i).collect();
            for inv in out.iter_mut().take(LIST_DETAILS) {
                let d = self.details(&inv.id).await?;
                inv.status = parse_status(&d.status);
                if let Some(b) = &d.invalidation_batch {
                    inv.reference = Some(b.caller_reference.clone());
                    inv.items = b.paths.as_ref().map(|p| p.items()).unwrap_or_default();
                }
            }
            Ok(out)
        }
        .instrument(span)
        .await
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use discovery::{Match, alias_match, bare_domain};
    use staleguard_core::purge::Item;

    #[test]
    fn renders_items() {
        let cases: &[(Item, bool, Result<&str, &str>)] = &[
            (Item::path("/index.html"), false, Ok("/index.html")),
            (Item::prefix("/docs/"), false, Ok("/docs/*")),
            (Item::prefix("/"), false, Ok("/*")),
            (Item::all(), false, Ok("/*")),
            (Item::path("/a b.html"), false, Ok("/a%20b.html")),
            (Item::path("/caf\u{e9}.html"), false, Ok("/caf%C3%A9.html")),
            (Item::path("/100%.html"), false, Ok("/100%25.html")),
            (Item::path("/x\ty\n"), false, Ok("/x%09y%0A")),
            (
                Item::path("/a[1]{2}|^~`\"<>#.html"),
                false,
                Ok("/a%5B1%5D%7B2%7D%7C%5E%7E%60%22%3C%3E%23.html"),
            ),
            (
                Item::path("/q?a=1&b=(2)+!$,;:@='"),
                false,
                Ok("/q?a=1&b=(2)+!$,;:@='"),
            ),
            (Item::prefix("/my docs/"), false, Ok("/my%20docs/*")),
            (Item::tag("product-1"), true, Ok("#product-1")),
            (
                Item::path("index.html"),
                false,
                Err("does not start with `/`"),
            ),
            (Item::path("/a/*/b"), false, Err("CloudFront's wildcard")),
            (Item::path("/a*"), false, Err("CloudFront's wildcard")),
            (Item::prefix("docs/"), false, Err("does not start with `/`")),
            (Item::tag("product"), false, Err("not enabled")),
            (Item::tag("a b"), true, Err("spaces")),
            (Item::tag(""), true, Err("empty")),
            (Item::host("example.com"), false, Err("by host")),
            (
                Item::path(format!("/{}", "a".repeat(4000))),
                false,
                Err("at most 4000"),
            ),
        ];
        for (item, tags, want) in cases {
            let got = render_item(item, *tags);
            match (want, &got) {
                (Ok(w), Ok(g)) => assert_eq!(g, w, "{item:?}"),
                (Err(w), Err(g)) => assert!(g.contains(w), "{item:?}: {g}"),
                _ => panic!("{item:?}: want {want:?}, got {got:?}"),
            }
        }
    }

    #[test]
    fn the_account_comes_from_the_arn() {
        use discovery::account_of;
        assert_eq!(
            account_of("arn:aws:cloudfront::123456789012:distribution/E1").as_deref(),
            Some("123456789012")
        );
        assert_eq!(
            account_of("arn:aws:cloudfront:123456789012:distribution/E1").as_deref(),
            Some("123456789012")
        );
        assert_eq!(account_of("arn:aws:s3:::bucket"), None);
        assert_eq!(account_of(""), None);
        assert_eq!(account_of("arn:aws:cloudfront::x:distribution/E1"), None);
    }

    #[test]
    fn status_is_case_insensitive() {
        for (s, want) in [
            ("Completed", Status::Completed),
            ("COMPLETED", Status::Completed),
            ("completed", Status::Completed),
            ("InProgress", Status::InProgress),
            ("IN_PROGRESS", Status::InProgress),
            ("", Status::InProgress),
        ] {
            assert_eq!(parse_status(s), want, "{s}");
        }
    }

    fn origin(id: &str, domain: &str, path: &str) -> OriginInfo {
        OriginInfo {
            id: id.into(),
            domain_name: domain.into(),
            origin_path: path.into(),
        }
    }

    #[test]
    fn served_prefix_follows_the_origin_path() {
        let s3 = |p: &str| vec![origin("o", "b.s3.amazonaws.com", p)];
        let cases: &[(Vec<OriginInfo>, &str, Result<&str, &str>)] = &[
            (s3(""), "", Ok("/")),
            (s3(""), "site/", Ok("/site/")),
            (s3("/site"), "site/", Ok("/")),
            (s3("/site/"), "site", Ok("/")),
            (s3("/site"), "site/en/", Ok("/en/")),
            (s3("/site"), "other/", Err("serves only `s3://b/site/`")),
            (s3("/site"), "", Err("serves only")),
            (s3("/site"), "sitex/", Err("serves only")),
            (s3("/site/en"), "site/", Err("serves only")),
            (
                vec![origin("o", "b.s3-website-us-east-1.amazonaws.com", "/w")],
                "w/",
                Ok("/"),
            ),
            (
                vec![origin("o", "b.s3.eu-west-1.amazonaws.com", "")],
                "x/",
                Ok("/x/"),
            ),
            (
                vec![origin("o", "bb.s3.amazonaws.com", "")],
                "",
                Err("no origin"),
            ),
            (
                vec![origin("o", "b.s3x.example.com", "")],
                "",
                Err("no origin"),
            ),
            (
                vec![
                    origin("api", "api.example.com", ""),
                    origin("o", "b.s3.amazonaws.com", "/p"),
                ],
                "p/q/",
                Ok("/q/"),
            ),
            (
                vec![
                    origin("a", "b.s3.amazonaws.com", "/x"),
                    origin("d", "b.s3.amazonaws.com", "/y"),
                ],
                "y/",
                Ok("/"),
            ),
            (
                vec![
                    origin("a", "b.s3.amazonaws.com", "/x"),
                    origin("c", "b.s3.amazonaws.com", "/y"),
                ],
                "y/",
                Err("several origins"),
            ),
            (
                vec![
                    origin("a", "b.s3.amazonaws.com", "/x"),
                    origin("c", "b.s3.amazonaws.com", "/x"),
                ],
                "x/",
                Ok("/"),
            ),
        ];
        for (origins, store, want) in cases {
            let got = served_prefix(origins, Some("d"), "b", store);
            match (want, &got) {
                (Ok(w), Ok(g)) => assert_eq!(g, w, "{origins:?} {store}"),
                (Err(w), Err((g, _))) => assert!(g.contains(w), "{origins:?} {store}: {g}"),
                _ => panic!("{origins:?} {store}: want {want:?}, got {got:?}"),
            }
        }
    }

    #[test]
    fn matches_domains() {
        let aliases = vec![
            "www.example.com".to_string(),
            "*.cdn.example.com".to_string(),
        ];
        let cases = [
            ("www.example.com", Some(Match::Exact)),
            ("WWW.Example.com", Some(Match::Exact)),
            ("d1.cloudfront.net", Some(Match::Exact)),
            ("img.cdn.example.com", Some(Match::Wildcard)),
            ("a.b.cdn.example.com", None),
            ("cdn.example.com", None),
            ("example.com", None),
        ];
        for (host, want) in cases {
            assert_eq!(
                alias_match(&bare_domain(host), "d1.cloudfront.net", &aliases),
                want,
                "{host}"
            );
        }
        for (raw, want) in [
            ("https://www.example.com/", "www.example.com"),
            ("www.example.com.", "www.example.com"),
            ("http://WWW.example.com:8080/x?y", "www.example.com"),
            (" www.example.com ", "www.example.com"),
        ] {
            assert_eq!(bare_domain(raw), want, "{raw}");
        }
    }

    #[test]
    fn capabilities_follow_the_config() {
        let c = capabilities(false, None);
        assert!(c.paths && c.prefixes && c.all && c.asynchronous && !c.tags && !c.hosts && !c.soft);
        assert_eq!(c.max_items_per_call, 3000);
        assert_eq!(c.max_paths_in_flight, Some(3000));
        assert_eq!(c.max_prefixes_in_flight, Some(15));
        assert_eq!(
            c.pricing,
            Pricing {
                per_item_usd: 0.005,
                free_items_per_month: 1000
            }
        );
        assert!(capabilities(true, None).tags);
        assert_eq!(capabilities(false, Some(500)).max_items_per_call, 500);
        assert_eq!(capabilities(false, Some(10_000)).max_items_per_call, 3000);
    }
}
