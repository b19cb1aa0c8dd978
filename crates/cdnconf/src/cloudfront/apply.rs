//! `--apply` and the live side of `--check`: the bundle's policies created or updated by name, then
//! the distribution created (or its config replaced, keeping its `CallerReference`), through
//! CloudFront's API ([`ConfigApi`]); and a distribution read back with the policies it uses.

use std::collections::BTreeMap;

use serde_json::Value;
use staleguard_cdn::CdnError;
use staleguard_cdn::cloudfront::config::{ConfigApi, Resource};

use super::Bundle;
use super::check::Live;
use super::node::{Node, contained, from_xml};

/// What `--apply` did.
#[derive(Debug, Clone, Default, serde::Serialize)]
pub struct Applied {
    pub distribution: String,
    pub domain_name: String,
    /// `created`, `updated` or `unchanged`, per resource (`cache-policy staleguard-pages-0-1`).
    pub changes: Vec<(String, String)>,
    /// Name → id of every policy and access control.
    pub ids: BTreeMap<String, String>,
}

fn unreadable(op: &str, e: String) -> CdnError {
    CdnError::new(
        staleguard_cdn::ErrorKind::Transient,
        "cloudfront",
        format!("{op}: unreadable answer: {e}"),
    )
}

fn text(v: &Value, path: &[&str]) -> String {
    let mut cur = v;
    for p in path {
        match cur.get(p) {
            Some(n) => cur = n,
            None => return String::new(),
        }
    }
    cur.as_str().unwrap_or_default().to_string()
}

/// Name → id of every resource of a kind (all pages).
async fn names(api: &ConfigApi, r: Resource) -> Result<BTreeMap<String, String>, CdnError> {
    let mut out = BTreeMap::new();
    let mut marker: Option<String> = None;
    loop {
        let xml = api.list(r, marker.as_deref()).await?;
        let page = from_xml(&xml).map_err(|e| unreadable("list", e))?;
        if let Some(Value::Array(items)) = page.get("Items") {
            for it in items {
                let (id, name) = match r {
                    Resource::CachePolicy => (
                        text(it, &["CachePolicy", "Id"]),
                        text(it, &["CachePolicy", "CachePolicyConfig", "Name"]),
                    ),
                    Resource::ResponseHeadersPolicy => (
                        text(it, &["ResponseHeadersPolicy", "Id"]),
                        text(
                            it,
                            &[
                                "ResponseHeadersPolicy",
                                "ResponseHeadersPolicyConfig",
                                "Name",
                            ],
                        ),
                    ),
                    _ => (text(it, &["Id"]), text(it, &["Name"])),
                };
                if !id.is_empty() {
                    out.insert(name, id);
                }
            }
        }
        match text(&page, &["NextMarker"]) {
            m if m.is_empty() || Some(&m) == marker.as_ref() => break,
            m => marker = Some(m),
        }
    }
    Ok(out)
}

/// The config member of a resource answer (`<CachePolicy><CachePolicyConfig>`), or the answer.
fn config_of(answer: &Value, member: &str) -> Value {
    answer
        .get(member)
        .cloned()
        .unwrap_or_else(|| answer.clone())
}

/// Creates or updates one named resource; returns its id and what was done.
async fn upsert(
    api: &ConfigApi,
    r: Resource,
    existing: &BTreeMap<String, String>,
    name: &str,
    root: &str,
    config: &Node,
) -> Result<(String, &'static str), CdnError> {
    let member = root;
    match existing.get(name) {
        Some(id) => {
            let live = api.get(r, id).await?;
            let v = from_xml(&live.xml).map_err(|e| unreadable("get", e))?;
            if contained(&config.plain(), &config_of(&v, member), "").is_ok() {
                return Ok((id.clone(), "unchanged"));
            }
            let etag = live.etag.unwrap_or_default();
            api.update(r, id, &etag, config.to_xml(root)).await?;
            Ok((id.clone(), "updated"))
        }
        None => {
            let made = api.create(r, config.to_xml(root)).await?;
            let v = from_xml(&made.xml).map_err(|e| unreadable("create", e))?;
            let id = text(&v, &["Id"]);
            if id.is_empty() {
                return Err(unreadable("create", format!("no Id in {}", made.xml)));
            }
            Ok((id, "created"))
        }
    }
}

/// Creates or updates everything in the bundle; `distribution` is the id to update (none: create).
pub async fn apply(
    api: &ConfigApi,
    bundle: &Bundle,
    distribution: Option<&str>,
) -> Result<Applied, CdnError> {
    let mut out = Applied::default();
    let policies = names(api, Resource::CachePolicy).await?;
    for p in &bundle.policies {
        let (id, what) = upsert(
            api,
            Resource::CachePolicy,
            &policies,
            &p.name,
            "CachePolicyConfig",
            &p.config(),
        )
        .await?;
        out.changes
            .push((format!("cache-policy {}", p.name), what.into()));
        out.ids.insert(p.name.clone(), id);
    }
    let headers = names(api, Resource::ResponseHeadersPolicy).await?;
    for (name, config) in &bundle.headers_policies {
        let (id, what) = upsert(
            api,
            Resource::ResponseHeadersPolicy,
            &headers,
            name,
            "ResponseHeadersPolicyConfig",
            config,
        )
        .await?;
        out.changes
            .push((format!("response-headers-policy {name}"), what.into()));
        out.ids.insert(name.clone(), id);
    }
    if let Some(oac) = &bundle.origin_access_control {
        let name = oac.get("Name").and_then(Node::text).unwrap_or_default();
        let controls = names(api, Resource::OriginAccessControl).await?;
        let (id, what) = upsert(
            api,
            Resource::OriginAccessControl,
            &controls,
            &name,
            "OriginAccessControlConfig",
            oac,
        )
        .await?;
        out.changes
            .push((format!("origin-access-control {name}"), what.into()));
        out.ids.insert(name, id);
    }
    let mut config = bundle.distribution_with(&out.ids);
    match distribution {
        Some(id) => {
            let live = api.get(Resource::Distribution, id).await?;
            let v = from_xml(&live.xml).map_err(|e| unreadable("get-distribution-config", e))?;
            // An update keeps the distribution's own reference.
            if let Some(Node::Str(r)) = config.get_mut("CallerReference") {
                *r = text(&v, &["CallerReference"]);
            }
            let what = if contained(&config.plain(), &v, "").is_ok() {
                "unchanged"
            } else {
                let etag = live.etag.unwrap_or_default();
                api.update(
                    Resource::Distribution,
                    id,
                    &etag,
                    config.to_xml("DistributionConfig"),
                )
                .await?;
                "updated"
            };
            out.distribution = id.to_string();
            out.changes
                .push((format!("distribution {id}"), what.into()));
        }
        None => {
            let made = api
                .create(Resource::Distribution, config.to_xml("DistributionConfig"))
                .await?;
            let v = from_xml(&made.xml).map_err(|e| unreadable("create-distribution", e))?;
            out.distribution = text(&v, &["Id"]);
            out.domain_name = text(&v, &["DomainName"]);
            out.changes.push((
                format!("distribution {}", out.distribution),
                "created".into(),
            ));
        }
    }
    Ok(out)
}

/// A distribution's config and every policy its behaviours name.
pub async fn read_live(api: &ConfigApi, distribution: &str) -> Result<Live, CdnError> {
    let got = api.get(Resource::Distribution, distribution).await?;
    let d = from_xml(&got.xml).map_err(|e| unreadable("get-distribution-config", e))?;
    let mut live = Live {
        distribution: d.clone(),
        ..Live::default()
    };
    let mut behaviours: Vec<&Value> = Vec::new();
    if let Some(b) = d.get("DefaultCacheBehavior") {
        behaviours.push(b);
    }
    if let Some(Value::Array(items)) = d.get("CacheBehaviors").and_then(|c| c.get("Items")) {
        behaviours.extend(items.iter());
    }
    for b in behaviours {
        let id = text(b, &["CachePolicyId"]);
        if !id.is_empty() && !live.policies.contains_key(&id) {
            // A policy that cannot be read is reported by the comparison, not fatal here.
            if let Ok(p) = api.get(Resource::CachePolicy, &id).await
                && let Ok(v) = from_xml(&p.xml)
            {
                live.policies
                    .insert(id.clone(), config_of(&v, "CachePolicyConfig"));
            }
        }
        let id = text(b, &["ResponseHeadersPolicyId"]);
        if !id.is_empty()
            && !live.headers_policies.contains_key(&id)
            && let Ok(p) = api.get(Resource::ResponseHeadersPolicy, &id).await
            && let Ok(v) = from_xml(&p.xml)
        {
            live.headers_policies
                .insert(id.clone(), config_of(&v, "ResponseHeadersPolicyConfig"));
        }
    }
    Ok(live)
}
