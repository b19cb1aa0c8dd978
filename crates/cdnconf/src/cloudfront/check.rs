//! `cdn-config --target cloudfront --check`: a live distribution (its config and the cache and
//! response-headers policies it uses, read through the API) against the [`Bundle`] the route table
//! implies, behaviour by behaviour and field by field.
//!
//! A difference can serve stale content (exit 3) when it lets a mutable path be held longer than
//! the route table says (`MinTTL` or `DefaultTTL` raised on a page behaviour, legacy TTLs included,
//! a page pattern missing so a longer behaviour takes it, an extra behaviour holding pages longer),
//! when it can mix responses (`Accept-Encoding` or, for pages, query strings out of the cache key),
//! when errors are cached longer, or when the tag header CloudFront purges by is gone. Anything
//! else (a longer `MaxTTL`, which the origin's headers bound; another origin; other headers) is drift.

use std::collections::BTreeMap;

use serde_json::Value;

use super::{Behaviour, Bundle, pattern_matches};
use crate::check::Finding;

/// The live configuration, as [`super::node::from_xml`] reads the API's answers.
#[derive(Debug, Clone, Default)]
pub struct Live {
    /// `DistributionConfig`.
    pub distribution: Value,
    /// Cache policy id → `CachePolicyConfig`.
    pub policies: BTreeMap<String, Value>,
    /// Response-headers policy id → `ResponseHeadersPolicyConfig`.
    pub headers_policies: BTreeMap<String, Value>,
}

/// What a behaviour does, whichever way it is configured.
#[derive(Debug, Clone, PartialEq)]
struct Effect {
    min: u64,
    default: u64,
    max: u64,
    encodings: bool,
    query_strings: String,
    /// The response-headers policy, without its name and comment.
    headers: Option<Value>,
    /// Where the lifetimes come from (`cache policy staleguard-pages-0-1`, `legacy TTLs`).
    from: String,
}

fn text(v: &Value, path: &[&str]) -> String {
    let mut cur = v;
    for p in path {
        match cur.get(p) {
            Some(n) => cur = n,
            None => return String::new(),
        }
    }
    match cur {
        Value::String(s) => s.clone(),
        Value::Null => String::new(),
        other => other.to_string(),
    }
}

fn num(v: &Value, path: &[&str]) -> Option<u64> {
    text(v, path).trim().parse::<f64>().ok().map(|f| f as u64)
}

fn items<'a>(v: &'a Value, path: &[&str]) -> Vec<&'a Value> {
    let mut cur = v;
    for p in path {
        match cur.get(p) {
            Some(n) => cur = n,
            None => return Vec::new(),
        }
    }
    match cur.get("Items") {
        Some(Value::Array(a)) => a.iter().collect(),
        _ => Vec::new(),
    }
}

fn headers_content(config: &Value) -> Value {
    match config {
        Value::Object(m) => Value::Object(
            m.iter()
                .filter(|(k, _)| *k != "Name" && *k != "Comment")
                .map(|(k, v)| (k.clone(), v.clone()))
                .collect(),
        ),
        v => v.clone(),
    }
}

fn live_effect(b: &Value, live: &Live) -> Result<Effect, String> {
    // An unreadable headers policy is a difference of its own, not a reason to skip the lifetimes.
    let headers = match text(b, &["ResponseHeadersPolicyId"]) {
        id if id.is_empty() => None,
        id => Some(
            live.headers_policies
                .get(&id)
                .map(headers_content)
                .unwrap_or_else(|| {
                    Value::String(format!("response-headers policy {id} (could not be read)"))
                }),
        ),
    };
    let policy_id = text(b, &["CachePolicyId"]);
    if !policy_id.is_empty() {
        let p = live
            .policies
            .get(&policy_id)
            .ok_or_else(|| format!("cache policy {policy_id} could not be read"))?;
        let key = &p["ParametersInCacheKeyAndForwardedToOrigin"];
        let on = |k: &str| text(key, &[k]).eq_ignore_ascii_case("true");
        return Ok(Effect {
            min: num(p, &["MinTTL"]).unwrap_or(0),
            default: num(p, &["DefaultTTL"]).unwrap_or(86400),
            max: num(p, &["MaxTTL"]).unwrap_or(31_536_000),
            encodings: on("EnableAcceptEncodingGzip") && on("EnableAcceptEncodingBrotli"),
            query_strings: text(key, &["QueryStringsConfig", "QueryStringBehavior"]),
            headers,
            from: format!("cache policy {} ({policy_id})", text(p, &["Name"])),
        });
    }
    // A legacy behaviour: TTLs and forwarded values on the behaviour itself.
    let forwards_ae = items(b, &["ForwardedValues", "Headers"]).iter().any(|h| {
        h.as_str()
            .is_some_and(|s| s.eq_ignore_ascii_case("accept-encoding"))
    });
    let compress = text(b, &["Compress"]).eq_ignore_ascii_case("true");
    Ok(Effect {
        min: num(b, &["MinTTL"]).unwrap_or(0),
        default: num(b, &["DefaultTTL"]).unwrap_or(86400),
        max: num(b, &["MaxTTL"]).unwrap_or(31_536_000),
        encodings: compress || forwards_ae,
        query_strings: if text(b, &["ForwardedValues", "QueryString"]).eq_ignore_ascii_case("true")
        {
            "all".into()
        } else {
            "none".into()
        },
        headers,
        from: "legacy TTLs on the behaviour".into(),
    })
}

fn expected_effect(x: &Behaviour, bundle: &Bundle) -> Effect {
    let p = bundle
        .policies
        .iter()
        .find(|p| p.name == x.policy)
        .expect("a behaviour's policy is in its bundle");
    let headers = bundle
        .headers_policies
        .iter()
        .find(|(n, _)| *n == x.headers_policy)
        .map(|(_, c)| headers_content(&c.plain()));
    Effect {
        min: p.min,
        default: p.default,
        max: p.max,
        encodings: p.encodings,
        query_strings: p.query_strings.into(),
        headers,
        from: format!("cache policy {}", p.name),
    }
}

fn label(pattern: Option<&str>) -> String {
    match pattern {
        Some(p) => format!("behaviour `{p}`"),
        None => "default behaviour".into(),
    }
}

fn finding(expected: Option<String>, found: Option<String>, stale_risk: bool) -> Finding {
    Finding {
        line: None,
        expected,
        found,
        stale_risk,
    }
}

/// Whether `live` holds a mutable response longer than `exp`.
fn longer(live: &Effect, exp: &Effect) -> bool {
    live.min > exp.min || live.default > exp.default
}

/// Every difference between the live distribution and the bundle.
pub fn compare(bundle: &Bundle, live: &Live) -> Vec<Finding> {
    let mut out = Vec::new();
    let d = &live.distribution;
    let mut live_behaviours: Vec<(Option<String>, &Value)> = items(d, &["CacheBehaviors"])
        .into_iter()
        .map(|b| (Some(text(b, &["PathPattern"])), b))
        .collect();
    if let Some(def) = d.get("DefaultCacheBehavior") {
        live_behaviours.push((None, def));
    }
    let mut effects: Vec<(Option<String>, Result<Effect, String>)> = Vec::new();
    for (p, b) in &live_behaviours {
        effects.push((p.clone(), live_effect(b, live)));
    }
    // The live behaviour CloudFront would use for a path (the default when no pattern matches).
    let serving = |path: &str| -> Option<&(Option<String>, Result<Effect, String>)> {
        effects
            .iter()
            .find(|(p, _)| p.as_deref().is_none_or(|p| pattern_matches(p, path)))
    };
    let expected_for = |path: &str| -> &Behaviour {
        bundle
            .behaviours
            .iter()
            .find(|x| {
                x.pattern
                    .as_deref()
                    .is_none_or(|p| pattern_matches(p, path))
            })
            .expect("the bundle has a default behaviour")
    };

    for x in &bundle.behaviours {
        let exp = expected_effect(x, bundle);
        let name = label(x.pattern.as_deref());
        let Some((_, got)) = effects.iter().find(|(p, _)| *p == x.pattern) else {
            let path = x.pattern.as_deref().unwrap_or("/");
            let (instead, risky) = match serving(path) {
                Some((p, Ok(e))) => (
                    format!(
                        "none: {} takes these paths ({})",
                        label(p.as_deref()),
                        e.from
                    ),
                    x.mutable && longer(e, &exp),
                ),
                Some((p, Err(e))) => (
                    format!("none: {} takes them ({e})", label(p.as_deref())),
                    x.mutable,
                ),
                None => ("none, and no default behaviour".into(), true),
            };
            out.push(finding(
                Some(format!("{name} for {} ({})", x.source, exp.from)),
                Some(instead),
                risky,
            ));
            continue;
        };
        let got = match got {
            Ok(g) => g,
            Err(e) => {
                out.push(finding(
                    Some(format!("{name}: {}", exp.from)),
                    Some(e.clone()),
                    x.mutable,
                ));
                continue;
            }
        };
        let mut field = |what: &str, e: String, g: String, risky: bool| {
            if e != g {
                out.push(finding(
                    Some(format!("{name} ({}): {what} {e}", x.source)),
                    Some(format!("{name}: {what} {g} ({})", got.from)),
                    risky,
                ));
            }
        };
        field(
            "MinTTL",
            exp.min.to_string(),
            got.min.to_string(),
            x.mutable && got.min > exp.min,
        );
        field(
            "DefaultTTL",
            exp.default.to_string(),
            got.default.to_string(),
            x.mutable && got.default > exp.default,
        );
        field("MaxTTL", exp.max.to_string(), got.max.to_string(), false);
        field(
            "Accept-Encoding in the cache key",
            exp.encodings.to_string(),
            got.encodings.to_string(),
            exp.encodings && !got.encodings,
        );
        field(
            "query strings in the cache key",
            exp.query_strings.clone(),
            got.query_strings.clone(),
            x.mutable && exp.query_strings == "all" && got.query_strings != "all",
        );
        if exp.headers != got.headers {
            field(
                "response headers",
                exp.headers
                    .as_ref()
                    .map_or("none".into(), |h| h.to_string()),
                got.headers
                    .as_ref()
                    .map_or("none".into(), |h| h.to_string()),
                false,
            );
        }
    }
    // Behaviours the route table does not imply.
    for (p, got) in &effects {
        let Some(p) = p else { continue };
        if bundle
            .behaviours
            .iter()
            .any(|x| x.pattern.as_deref() == Some(p.as_str()))
        {
            continue;
        }
        let x = expected_for(p);
        let exp = expected_effect(x, bundle);
        let risky = match got {
            Ok(g) => x.mutable && longer(g, &exp),
            Err(_) => x.mutable,
        };
        out.push(finding(
            None,
            Some(format!(
                "{} ({}), where the route table gives {} ({})",
                label(Some(p)),
                match got {
                    Ok(g) => format!("MinTTL {} DefaultTTL {} from {}", g.min, g.default, g.from),
                    Err(e) => e.clone(),
                },
                label(x.pattern.as_deref()),
                exp.from
            )),
            risky,
        ));
    }
    // Order: CloudFront takes the first matching pattern.
    let live_order: Vec<&str> = live_behaviours
        .iter()
        .filter_map(|(p, _)| p.as_deref())
        .collect();
    let exp_order: Vec<&str> = bundle
        .behaviours
        .iter()
        .filter_map(|x| x.pattern.as_deref())
        .collect();
    let common_live: Vec<&str> = live_order
        .iter()
        .copied()
        .filter(|p| exp_order.contains(p))
        .collect();
    let common_exp: Vec<&str> = exp_order
        .iter()
        .copied()
        .filter(|p| live_order.contains(p))
        .collect();
    if common_live != common_exp {
        out.push(finding(
            Some(format!("behaviours in the order {}", common_exp.join(", "))),
            Some(format!(
                "behaviours in the order {}",
                common_live.join(", ")
            )),
            false,
        ));
    }
    // Error caching.
    let live_errors: BTreeMap<String, u64> = items(d, &["CustomErrorResponses"])
        .iter()
        .map(|e| {
            (
                text(e, &["ErrorCode"]),
                num(e, &["ErrorCachingMinTTL"]).unwrap_or(10),
            )
        })
        .collect();
    for (code, ttl) in &bundle.error_ttls {
        // Without a custom error response CloudFront caches an error 10 seconds.
        let got = live_errors.get(&code.to_string()).copied().unwrap_or(10);
        if got != *ttl {
            out.push(finding(
                Some(format!("HTTP {code} cached {ttl} s (ErrorCachingMinTTL)")),
                Some(format!("HTTP {code} cached {got} s")),
                got > *ttl,
            ));
        }
    }
    // The tag header.
    let live_tag = text(d, &["CacheTagConfig", "HeaderName"]);
    let exp_tag = bundle.tag_header.clone().unwrap_or_default();
    if !live_tag.eq_ignore_ascii_case(&exp_tag) {
        out.push(finding(
            Some(format!("CacheTagConfig header `{exp_tag}`")),
            Some(format!("CacheTagConfig header `{live_tag}`")),
            !exp_tag.is_empty(),
        ));
    }
    // The origin.
    let exp_origin = bundle
        .distribution
        .get("Origins")
        .map(|o| o.plain())
        .unwrap_or_default();
    let domains = |v: &Value| -> Vec<String> {
        items(v, &[])
            .iter()
            .map(|o| text(o, &["DomainName"]))
            .collect()
    };
    let (e, g) = (
        domains(&exp_origin),
        domains(d.get("Origins").unwrap_or(&Value::Null)),
    );
    if e != g {
        out.push(finding(
            Some(format!("origin {}", e.join(", "))),
            Some(format!("origin {}", g.join(", "))),
            false,
        ));
    }
    out
}
