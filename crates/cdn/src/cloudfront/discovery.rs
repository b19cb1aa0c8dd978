//! Which distributions a `[[cdn]]` entry names (explicit ids, or `auto` by domain) and under which URL
//! prefix each serves the store's keys (its origin for the bucket and that origin's `OriginPath`).

use staleguard_core::config::CdnConfig;

use super::MAX_LIST_PAGES;
use super::api::Api;
use crate::{CdnError, ErrorKind};

/// A distribution picked by [`resolve`], with what [`served_prefix`] needs.
pub(super) struct Target {
    pub(super) id: String,
    /// The AWS account that owns the distribution (from its ARN), when known.
    pub(super) account: Option<String>,
    pub(super) domain_name: String,
    pub(super) origins: Vec<OriginInfo>,
    pub(super) default_origin: Option<String>,
}

/// An origin of a distribution: its id, domain name and origin path.
#[derive(Debug, Clone, PartialEq)]
pub struct OriginInfo {
    pub id: String,
    pub domain_name: String,
    pub origin_path: String,
}

pub(super) async fn resolve(api: &Api, cfg: &CdnConfig) -> Result<Vec<Target>, CdnError> {
    if cfg.distribution.is_empty() {
        return Err(
            CdnError::new(ErrorKind::Config, "cloudfront", "no distribution given").with_hint(
                "set `distribution = \"E…\"` (its id), or `distribution = \"auto\"` with `domain`",
            ),
        );
    }
    let mut out: Vec<Target> = Vec::new();
    for d in &cfg.distribution {
        let found = if d.eq_ignore_ascii_case("auto") {
            find_by_domain(api, &cfg.domain).await?
        } else {
            vec![get_distribution(api, d).await?]
        };
        for t in found {
            if !out.iter().any(|o| o.id == t.id) {
                out.push(t);
            }
        }
    }
    Ok(out)
}

async fn get_distribution(api: &Api, id: &str) -> Result<Target, CdnError> {
    let label = format!("cloudfront:{id}");
    let id_ok = !id.is_empty() && id.bytes().all(|b| b.is_ascii_alphanumeric());
    if !id_ok {
        return Err(CdnError::new(
            ErrorKind::Config,
            &label,
            format!("`{id}` is not a distribution id"),
        )
        .with_hint("a distribution id looks like `E2QWRUHAPOMQZL`; or use `distribution = \"auto\"` with `domain`"));
    }
    let d = api.get_distribution(&label, id).await?;
    let parts = d.distribution_config.unwrap_or_default();
    Ok(Target {
        account: account_of(&d.arn),
        id: d.id,
        domain_name: d.domain_name,
        origins: parts.origins(),
        default_origin: parts.default_origin(),
    })
}

/// The account id in a distribution's ARN: `arn:aws:cloudfront::123456789012:distribution/E…` (AWS: no
/// region), or `arn:aws:cloudfront:123456789012:distribution/E…` (moto).
pub(super) fn account_of(arn: &str) -> Option<String> {
    let fields: Vec<&str> = arn.split(':').collect();
    let is_account = |f: &&str| f.len() == 12 && f.bytes().all(|b| b.is_ascii_digit());
    match fields.as_slice() {
        ["arn", _, "cloudfront", "", account, ..] | ["arn", _, "cloudfront", account, ..]
            if is_account(account) =>
        {
            Some(account.to_string())
        }
        _ => None,
    }
}

/// The host part of a configured domain: lower case, no scheme, port, path or trailing dot.
pub(super) fn bare_domain(domain: &str) -> String {
    let d = domain.trim();
    let d = d.split_once("://").map_or(d, |(_, rest)| rest);
    let d = d.split(['/', '?', '#']).next().unwrap_or_default();
    let d = d.rsplit_once(':').map_or(d, |(h, p)| {
        if p.bytes().all(|b| b.is_ascii_digit()) {
            h
        } else {
            d
        }
    });
    d.trim_end_matches('.').to_ascii_lowercase()
}

/// How an alias matches a host: exactly (or the distribution's own domain name), by a wildcard alias
/// (`*.example.com` covers `www.example.com`), or not.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
pub(super) enum Match {
    Exact,
    Wildcard,
}

pub(super) fn alias_match(host: &str, domain_name: &str, aliases: &[String]) -> Option<Match> {
    if domain_name.eq_ignore_ascii_case(host) {
        return Some(Match::Exact);
    }
    let mut best = None;
    for a in aliases {
        let a = a.trim_end_matches('.').to_ascii_lowercase();
        if a == host {
            return Some(Match::Exact);
        }
        if let Some(parent) = a.strip_prefix("*.")
            && let Some(label) = host.strip_suffix(parent).and_then(|h| h.strip_suffix('.'))
            && !label.is_empty()
            && !label.contains('.')
        {
            best = Some(Match::Wildcard);
        }
    }
    best
}

async fn find_by_domain(api: &Api, domain: &str) -> Result<Vec<Target>, CdnError> {
    let host = bare_domain(domain);
    if host.is_empty() {
        return Err(CdnError::new(
            ErrorKind::Config,
            "cloudfront",
            "`distribution = \"auto\"` needs `domain`",
        )
        .with_hint("set `domain = \"www.example.com\"` (an alternate domain name of the distribution), or give the distribution id"));
    }
    let mut seen: Vec<(String, String, Vec<String>)> = Vec::new();
    let mut hits: Vec<(Match, Target)> = Vec::new();
    let mut marker: Option<String> = None;
    for _ in 0..MAX_LIST_PAGES {
        let from = marker.take();
        let list = api.list_distributions(from.as_deref(), 100).await?;
        for s in list.items() {
            let parts = s.parts();
            let aliases = parts.aliases();
            if let Some(m) = alias_match(&host, &s.domain_name, &aliases) {
                hits.push((
                    m,
                    Target {
                        account: account_of(&s.arn),
                        id: s.id.clone(),
                        domain_name: s.domain_name.clone(),
                        origins: parts.origins(),
                        default_origin: parts.default_origin(),
                    },
                ));
            }
            seen.push((s.id.clone(), s.domain_name.clone(), aliases));
        }
        match list.next_marker.as_deref() {
            Some(m) if list.is_truncated && !m.is_empty() => marker = Some(m.to_string()),
            _ => break,
        }
    }
    // An exact alias wins over a wildcard one, as it does when CloudFront routes a request.
    if let Some(best) = hits.iter().map(|(m, _)| *m).min() {
        hits.retain(|(m, _)| *m == best);
        return Ok(hits.into_iter().map(|(_, t)| t).collect());
    }
    let listing = if seen.is_empty() {
        "the account has no distributions".to_string()
    } else {
        let shown: Vec<String> = seen
            .iter()
            .take(20)
            .map(|(id, dn, aliases)| {
                let a = if aliases.is_empty() {
                    "no aliases".to_string()
                } else {
                    aliases.join(", ")
                };
                format!("`{id}` ({dn}; {a})")
            })
            .collect();
        let more = seen.len().saturating_sub(shown.len());
        let more = if more > 0 {
            format!(" and {more} more")
        } else {
            String::new()
        };
        format!("seen: {}{more}", shown.join(", "))
    };
    Err(CdnError::new(
        ErrorKind::Config,
        "cloudfront",
        format!("no distribution has `{host}` as an alternate domain name; {listing}"),
    )
    .with_hint("add the domain to the distribution's alternate domain names (CNAMEs), fix `domain`, or set `distribution` to the id"))
}

/// True when an origin's domain name is the S3 REST or website endpoint of `bucket`
/// (`b.s3.amazonaws.com`, `b.s3.eu-west-1.amazonaws.com`, `b.s3-website-us-east-1.amazonaws.com`, …).
fn serves_bucket(origin_domain: &str, bucket: &str) -> bool {
    let d = origin_domain.to_ascii_lowercase();
    let b = bucket.to_ascii_lowercase();
    d.strip_prefix(&b)
        .and_then(|rest| rest.strip_prefix(".s3"))
        .is_some_and(|rest| rest.starts_with('.') || rest.starts_with('-'))
}

/// The URL prefix (`/` or `/docs/`) under which the store's keys (`store_prefix` + key inside
/// `bucket`) are served by the distribution with these origins. The origin serving the bucket is
/// found by its domain name; when several do, the default cache behaviour's wins. Its `OriginPath` is
/// cut off the store prefix: keys outside the origin path are not served by this distribution, an
/// error. Errors are (message, hint).
pub fn served_prefix(
    origins: &[OriginInfo],
    default_origin: Option<&str>,
    bucket: &str,
    store_prefix: &str,
) -> Result<String, (String, String)> {
    let serving: Vec<&OriginInfo> = origins
        .iter()
        .filter(|o| serves_bucket(&o.domain_name, bucket))
        .collect();
    let origin = match serving.as_slice() {
        [] => {
            let list: Vec<String> = origins
                .iter()
                .map(|o| format!("`{}`", o.domain_name))
                .collect();
            let list = if list.is_empty() {
                "none".to_string()
            } else {
                list.join(", ")
            };
            return Err((
                format!("no origin of the distribution serves bucket `{bucket}` (origins: {list})"),
                "point an origin at the bucket, or set `url-prefix` in this [[cdn]] entry when the distribution reaches the store another way".into(),
            ));
        }
        [one] => *one,
        many => {
            let path = &many[0].origin_path;
            if let Some(d) = many.iter().find(|o| Some(o.id.as_str()) == default_origin) {
                d
            } else if many.iter().all(|o| &o.origin_path == path) {
                many[0]
            } else {
                let list: Vec<String> = many
                    .iter()
                    .map(|o| format!("`{}` (path `{}`)", o.id, o.origin_path))
                    .collect();
                return Err((
                    format!("several origins serve bucket `{bucket}` with different origin paths: {}", list.join(", ")),
                    "set `url-prefix` in this [[cdn]] entry to the URL path the store's keys are served under".into(),
                ));
            }
        }
    };
    let origin_path = origin.origin_path.trim_matches('/');
    let store = store_prefix.trim_matches('/');
    let rest = if origin_path.is_empty() {
        Some(store)
    } else if store == origin_path {
        Some("")
    } else {
        store
            .strip_prefix(origin_path)
            .and_then(|r| r.strip_prefix('/'))
    };
    match rest {
        Some("") => Ok("/".into()),
        Some(r) => Ok(format!("/{r}/")),
        None => Err((
            format!(
                "origin `{}` serves only `s3://{bucket}/{origin_path}/`, but the store is `s3://{bucket}/{}`",
                origin.id,
                if store.is_empty() { String::new() } else { format!("{store}/") }
            ),
            "deploy under the origin path, change the origin path, or set `url-prefix` if the keys are served another way".into(),
        )),
    }
}
