//! `staleguard cdn-config --target terraform`: the file parses with an HCL parser (python-hcl2, in the
//! test venv) and has the same values as `--target cloudfront`'s JSON for the same site: every cache
//! policy, response-headers policy and the origin access control, and the distribution's origins,
//! behaviours in order (each policy reference resolving to the resource of the JSON's policy name),
//! error responses, certificate, aliases and tag header; for an HTTP origin with a certificate and
//! tags, and for an S3 store.
//!
//! The provider's argument names are spelled out here, from its documentation, independently of the
//! renderer's tables: a value under another name, or in another order, fails.

use std::collections::{BTreeMap, BTreeSet};
use std::path::Path;
use std::process::Command;

use serde_json::Value;
use staleguard_testkit::venv_python;

use crate::support::*;

const CONFIG: &str = r#"[build]
source = "site"
out = "out"
compress = ["br", "gzip"]

[serve]
tag-header = "Surrogate-Key"

[serve.headers]
Strict-Transport-Security = "max-age=63072000; includeSubDomains"
X-Frame-Options = "DENY"
Permissions-Policy = "camera=()"
X-Escapes = 'say "hi" \ ${not.a.reference} %{if x} $5 50%'

[[routes]]
match = "docs/**"
cache-control = "public, max-age=0, s-maxage=60, stale-while-revalidate=30"

[[routes]]
match = "api/*"
cache-control = "no-store"

[[routes]]
match = "account/**"
cache-control = "private, max-age=600"

[[routes]]
match = "about/**"
headers = { X-Robots-Tag = "noindex" }
"#;

const CERTIFICATE: &str = "arn:aws:acm:us-east-1:123456789012:certificate/abc";

fn site(dir: &Path, extra: &str) {
    crate::cloudfront_config::example_site(dir, &format!("{CONFIG}{extra}"));
}

/// A Terraform file as JSON, read by python-hcl2: string values unquoted (backslash escapes
/// resolved, the template escapes `$${` and `%%{` as written), a reference as `${a.b.c}`, every
/// block a list of its bodies.
fn parse_hcl(file: &Path) -> Value {
    const SCRIPT: &str = r#"
import json, sys
try:
    import hcl2
except ImportError:
    sys.exit("python-hcl2 is not in the test venv: run scripts/peers/moto.sh install (it installs scripts/requirements-test.txt)")
options = hcl2.SerializationOptions(strip_string_quotes=True, with_comments=False, explicit_blocks=False)
with open(sys.argv[1]) as f:
    json.dump(hcl2.load(f, serialization_options=options), sys.stdout)
"#;
    let o = Command::new(venv_python())
        .args(["-c", SCRIPT])
        .arg(file)
        .output()
        .expect("cannot run the venv's python");
    assert!(
        o.status.success(),
        "python-hcl2 refused {}: {}",
        file.display(),
        String::from_utf8_lossy(&o.stderr)
    );
    serde_json::from_slice(&o.stdout).expect("the parser's JSON")
}

/// The value of an HCL string as the parser gives it, its template escapes (`$${`, `%%{`) undone;
/// `None` for a template that interpolates (a `${` or `%{` left unescaped), which is no literal.
fn text(v: &Value) -> Option<String> {
    let s = v.as_str()?;
    let mut out = String::new();
    let mut rest = s;
    while let Some(c) = rest.chars().next() {
        if rest.starts_with("$${") || rest.starts_with("%%{") {
            out.push(c);
            out.push('{');
            rest = &rest[3..];
        } else if rest.starts_with("${") || rest.starts_with("%{") {
            return None;
        } else {
            out.push(c);
            rest = &rest[c.len_utf8()..];
        }
    }
    Some(out)
}

/// `${TYPE.NAME.id}`, a reference, as `(TYPE, NAME)`.
fn reference(v: &Value) -> Option<(String, String)> {
    let inner = v.as_str()?.strip_prefix("${")?.strip_suffix(".id}")?;
    let (kind, name) = inner.split_once('.')?;
    Some((kind.to_string(), name.to_string()))
}

/// The bodies of a block (none when absent).
fn blocks<'a>(v: &'a Value, name: &str) -> Vec<&'a Value> {
    match v.get(name) {
        None => Vec::new(),
        Some(Value::Array(a)) => a.iter().collect(),
        Some(other) => panic!("`{name}` is not a block: {other}"),
    }
}

/// The body of a block that appears once.
fn one<'a>(v: &'a Value, name: &str) -> &'a Value {
    let b = blocks(v, name);
    assert_eq!(b.len(), 1, "one `{name}` block expected in {v}");
    b[0]
}

/// An argument equals a JSON member: strings by value (an argument left out is the empty string),
/// numbers and booleans as themselves (a numeric string, `ResponseCode`, as its number).
fn same(what: &str, hcl: Option<&Value>, json: Option<&Value>) {
    let hcl = hcl.unwrap_or(&Value::Null);
    let json = json.unwrap_or(&Value::Null);
    let ok = match (hcl, json) {
        (Value::Null, Value::Null) => true,
        (Value::Null, Value::String(s)) => s.is_empty(),
        (h, Value::String(s)) if h.is_number() => {
            h.as_i64().map(|n| n.to_string()) == Some(s.clone())
        }
        (h @ Value::String(_), Value::String(s)) => text(h).as_ref() == Some(s),
        (Value::Array(h), Value::Array(j)) => {
            h.len() == j.len()
                && h.iter()
                    .zip(j)
                    .all(|(a, b)| text(a) == b.as_str().map(str::to_string))
        }
        (Value::Null, Value::Array(j)) => j.is_empty(),
        (h, j) => h == j,
    };
    assert!(ok, "{what}: terraform has {hcl}, the JSON {json}");
}

/// `(argument, member)` pairs: a provider argument and the JSON member it holds.
type Pairs = &'static [(&'static str, &'static str)];

/// Compares arguments with members: `(argument, member)` pairs.
fn fields(what: &str, hcl: &Value, json: &Value, pairs: &[(&str, &str)]) {
    for (arg, member) in pairs {
        same(&format!("{what}.{arg}"), hcl.get(*arg), json.get(*member));
    }
}

/// The items of a `{Quantity, Items}` member (none when absent).
fn items(v: &Value) -> Vec<Value> {
    let q = v.get("Quantity").and_then(Value::as_u64).unwrap_or(0);
    let items = v
        .get("Items")
        .and_then(Value::as_array)
        .cloned()
        .unwrap_or_default();
    assert_eq!(items.len() as u64, q, "Quantity of {v}");
    items
}

/// The keys of an HCL body.
fn keys(v: &Value) -> BTreeSet<String> {
    v.as_object().unwrap().keys().cloned().collect()
}

/// Every resource of the file by type and name.
fn resources(doc: &Value) -> BTreeMap<(String, String), Value> {
    let mut out = BTreeMap::new();
    for r in doc["resource"].as_array().expect("resource blocks") {
        for (kind, named) in r.as_object().unwrap() {
            for (name, body) in named.as_object().unwrap() {
                let before = out.insert((kind.clone(), name.clone()), body.clone());
                assert!(before.is_none(), "{kind}.{name} twice");
            }
        }
    }
    out
}

struct Doc {
    resources: BTreeMap<(String, String), Value>,
}

impl Doc {
    fn of_kind(&self, kind: &str) -> Vec<(&String, &Value)> {
        self.resources
            .iter()
            .filter(|((k, _), _)| k == kind)
            .map(|((_, n), v)| (n, v))
            .collect()
    }

    /// The one resource of `kind` whose `name` argument is `name`.
    fn named(&self, kind: &str, name: &str) -> (&String, &Value) {
        let found: Vec<_> = self
            .of_kind(kind)
            .into_iter()
            .filter(|(_, v)| text(&v["name"]).as_deref() == Some(name))
            .collect();
        assert_eq!(found.len(), 1, "one {kind} named `{name}`");
        found[0]
    }

    /// A reference resolves to the resource of that kind whose `name` is the JSON's name.
    fn refers(&self, what: &str, hcl: Option<&Value>, kind: &str, json_name: &Value) {
        let hcl = hcl.unwrap_or_else(|| panic!("{what}: no reference"));
        let (k, n) = reference(hcl).unwrap_or_else(|| panic!("{what}: `{hcl}` is no reference"));
        assert_eq!(k, kind, "{what}");
        let body = self
            .resources
            .get(&(k.clone(), n.clone()))
            .unwrap_or_else(|| panic!("{what}: no resource {k}.{n}"));
        same(
            &format!("{what} -> {k}.{n}.name"),
            body.get("name"),
            Some(json_name),
        );
    }
}

fn compare(label: &str, json: &Value, hcl: &Value, tags: bool) {
    let doc = Doc {
        resources: resources(hcl),
    };
    let aws = &one(one(hcl, "terraform"), "required_providers")["aws"];
    assert_eq!(
        text(&aws["source"]).as_deref(),
        Some("hashicorp/aws"),
        "{label}"
    );
    let want = if tags { ">= 6.46.0" } else { ">= 5.0" };
    assert_eq!(text(&aws["version"]).as_deref(), Some(want), "{label}");

    // Cache policies: one resource each, same TTLs, encodings and cache-key behaviours.
    let policies = json["CachePolicies"].as_array().unwrap();
    assert!(policies.len() >= 5, "{label}: {policies:?}");
    assert_eq!(
        doc.of_kind("aws_cloudfront_cache_policy").len(),
        policies.len(),
        "{label}"
    );
    for p in policies {
        let c = &p["CachePolicyConfig"];
        let (res, r) = doc.named("aws_cloudfront_cache_policy", c["Name"].as_str().unwrap());
        let what = format!("{label}: aws_cloudfront_cache_policy.{res}");
        fields(
            &what,
            r,
            c,
            &[
                ("name", "Name"),
                ("comment", "Comment"),
                ("default_ttl", "DefaultTTL"),
                ("max_ttl", "MaxTTL"),
                ("min_ttl", "MinTTL"),
            ],
        );
        let k = one(r, "parameters_in_cache_key_and_forwarded_to_origin");
        let jk = &c["ParametersInCacheKeyAndForwardedToOrigin"];
        fields(
            &what,
            k,
            jk,
            &[
                ("enable_accept_encoding_gzip", "EnableAcceptEncodingGzip"),
                (
                    "enable_accept_encoding_brotli",
                    "EnableAcceptEncodingBrotli",
                ),
            ],
        );
        for (block, member, arg, behaviour) in [
            (
                "headers_config",
                "HeadersConfig",
                "header_behavior",
                "HeaderBehavior",
            ),
            (
                "cookies_config",
                "CookiesConfig",
                "cookie_behavior",
                "CookieBehavior",
            ),
            (
                "query_strings_config",
                "QueryStringsConfig",
                "query_string_behavior",
                "QueryStringBehavior",
            ),
        ] {
            same(
                &format!("{what}.{block}.{arg}"),
                one(k, block).get(arg),
                jk[member].get(behaviour),
            );
        }
    }

    // Response-headers policies: the security headers in their settings, the rest custom, in order.
    let headers = json["ResponseHeadersPolicies"].as_array().unwrap();
    assert!(
        headers.len() >= 2,
        "{label}: the about/ rule's own header makes a second policy"
    );
    assert_eq!(
        doc.of_kind("aws_cloudfront_response_headers_policy").len(),
        headers.len(),
        "{label}"
    );
    let mut escapes_seen = false;
    for h in headers {
        let c = &h["ResponseHeadersPolicyConfig"];
        let (res, r) = doc.named(
            "aws_cloudfront_response_headers_policy",
            c["Name"].as_str().unwrap(),
        );
        let what = format!("{label}: aws_cloudfront_response_headers_policy.{res}");
        fields(&what, r, c, &[("name", "Name"), ("comment", "Comment")]);
        let security = &c["SecurityHeadersConfig"];
        let hs = one(r, "security_headers_config");
        let table: [(&str, &str, Pairs); 5] = [
            (
                "frame_options",
                "FrameOptions",
                &[("override", "Override"), ("frame_option", "FrameOption")],
            ),
            (
                "referrer_policy",
                "ReferrerPolicy",
                &[
                    ("override", "Override"),
                    ("referrer_policy", "ReferrerPolicy"),
                ],
            ),
            (
                "content_security_policy",
                "ContentSecurityPolicy",
                &[
                    ("override", "Override"),
                    ("content_security_policy", "ContentSecurityPolicy"),
                ],
            ),
            (
                "content_type_options",
                "ContentTypeOptions",
                &[("override", "Override")],
            ),
            (
                "strict_transport_security",
                "StrictTransportSecurity",
                &[
                    ("override", "Override"),
                    ("include_subdomains", "IncludeSubdomains"),
                    ("preload", "Preload"),
                    ("access_control_max_age_sec", "AccessControlMaxAgeSec"),
                ],
            ),
        ];
        let mut expected_blocks = BTreeSet::new();
        for (block, member, pairs) in table {
            if let Some(j) = security.get(member) {
                expected_blocks.insert(block.to_string());
                fields(&format!("{what}.{block}"), one(hs, block), j, pairs);
            }
        }
        assert_eq!(keys(hs), expected_blocks, "{what}: security headers");
        assert!(
            expected_blocks.contains("strict_transport_security")
                && expected_blocks.contains("frame_options"),
            "{what}"
        );
        let custom = items(&c["CustomHeadersConfig"]);
        let hcl_custom = blocks(one(r, "custom_headers_config"), "items");
        assert_eq!(hcl_custom.len(), custom.len(), "{what}: custom headers");
        for (i, (t, j)) in hcl_custom.iter().zip(&custom).enumerate() {
            fields(
                &format!("{what}.custom_headers_config.items[{i}]"),
                t,
                j,
                &[
                    ("header", "Header"),
                    ("value", "Value"),
                    ("override", "Override"),
                ],
            );
            if j["Header"] == "X-Escapes" {
                assert_eq!(
                    j["Value"],
                    r#"say "hi" \ ${not.a.reference} %{if x} $5 50%"#
                );
                escapes_seen = true;
            }
        }
    }
    assert!(escapes_seen, "{label}: the value that needs quoting");

    // The origin access control (an S3 store only).
    let oac = json
        .get("OriginAccessControl")
        .map(|o| &o["OriginAccessControlConfig"]);
    assert_eq!(
        doc.of_kind("aws_cloudfront_origin_access_control").len(),
        usize::from(oac.is_some()),
        "{label}"
    );
    if let Some(c) = oac {
        let (res, r) = doc.named(
            "aws_cloudfront_origin_access_control",
            c["Name"].as_str().unwrap(),
        );
        fields(
            &format!("{label}: aws_cloudfront_origin_access_control.{res}"),
            r,
            c,
            &[
                ("name", "Name"),
                ("description", "Description"),
                ("signing_protocol", "SigningProtocol"),
                ("signing_behavior", "SigningBehavior"),
                (
                    "origin_access_control_origin_type",
                    "OriginAccessControlOriginType",
                ),
            ],
        );
    }

    // The distribution.
    let dists = doc.of_kind("aws_cloudfront_distribution");
    assert_eq!(dists.len(), 1, "{label}");
    let d = dists[0].1;
    let j = &json["DistributionConfig"];
    let what = format!("{label}: aws_cloudfront_distribution");
    fields(
        &what,
        d,
        j,
        &[
            ("comment", "Comment"),
            ("price_class", "PriceClass"),
            ("enabled", "Enabled"),
            ("http_version", "HttpVersion"),
            ("is_ipv6_enabled", "IsIPV6Enabled"),
            ("default_root_object", "DefaultRootObject"),
        ],
    );
    same(
        &format!("{what}.aliases"),
        d.get("aliases"),
        Some(&Value::Array(items(&j["Aliases"]))),
    );

    let origins = items(&j["Origins"]);
    let hcl_origins = blocks(d, "origin");
    assert_eq!(hcl_origins.len(), origins.len(), "{what}: origins");
    for (o, jo) in hcl_origins.iter().zip(&origins) {
        let w = format!("{what}.origin");
        fields(
            &w,
            o,
            jo,
            &[
                ("origin_id", "Id"),
                ("domain_name", "DomainName"),
                ("origin_path", "OriginPath"),
                ("connection_attempts", "ConnectionAttempts"),
                ("connection_timeout", "ConnectionTimeout"),
            ],
        );
        same(
            &format!("{w}.origin_shield.enabled"),
            one(o, "origin_shield").get("enabled"),
            jo["OriginShield"].get("Enabled"),
        );
        match jo.get("CustomOriginConfig") {
            Some(jc) => {
                let c = one(o, "custom_origin_config");
                fields(
                    &format!("{w}.custom_origin_config"),
                    c,
                    jc,
                    &[
                        ("http_port", "HTTPPort"),
                        ("https_port", "HTTPSPort"),
                        ("origin_protocol_policy", "OriginProtocolPolicy"),
                        ("origin_read_timeout", "OriginReadTimeout"),
                        ("origin_keepalive_timeout", "OriginKeepaliveTimeout"),
                    ],
                );
                same(
                    &format!("{w}.origin_ssl_protocols"),
                    c.get("origin_ssl_protocols"),
                    Some(&Value::Array(items(&jc["OriginSslProtocols"]))),
                );
                assert!(o.get("origin_access_control_id").is_none(), "{w}");
            }
            None => assert!(o.get("custom_origin_config").is_none(), "{w}"),
        }
        match jo.get("S3OriginConfig") {
            // No legacy access identity: the provider writes the empty S3OriginConfig itself.
            Some(js) => {
                let oai = blocks(o, "s3_origin_config")
                    .first()
                    .and_then(|s| s.get("origin_access_identity"))
                    .cloned();
                same(
                    &format!("{w}.s3_origin_config"),
                    oai.as_ref(),
                    js.get("OriginAccessIdentity"),
                );
            }
            None => assert!(o.get("s3_origin_config").is_none(), "{w}"),
        }
        match jo.get("OriginAccessControlId") {
            Some(name) => doc.refers(
                &format!("{w}.origin_access_control_id"),
                o.get("origin_access_control_id"),
                "aws_cloudfront_origin_access_control",
                name,
            ),
            None => assert!(o.get("origin_access_control_id").is_none(), "{w}"),
        }
    }

    // Every behaviour, in order: the default, then the ordered ones.
    let mut json_behaviours = vec![j["DefaultCacheBehavior"].clone()];
    json_behaviours.extend(items(&j["CacheBehaviors"]));
    let mut hcl_behaviours = vec![one(d, "default_cache_behavior")];
    hcl_behaviours.extend(blocks(d, "ordered_cache_behavior"));
    assert_eq!(
        hcl_behaviours.len(),
        json_behaviours.len(),
        "{what}: behaviours"
    );
    assert!(json_behaviours.len() >= 6, "{label}: {json_behaviours:?}");
    let behaviour_args: BTreeSet<String> = [
        "path_pattern",
        "target_origin_id",
        "viewer_protocol_policy",
        "allowed_methods",
        "cached_methods",
        "smooth_streaming",
        "compress",
        "cache_policy_id",
        "response_headers_policy_id",
    ]
    .map(String::from)
    .into();
    for (i, (b, jb)) in hcl_behaviours.iter().zip(&json_behaviours).enumerate() {
        let w = format!(
            "{what}: behaviour {i} ({})",
            jb["PathPattern"].as_str().unwrap_or("default")
        );
        fields(
            &w,
            b,
            jb,
            &[
                ("path_pattern", "PathPattern"),
                ("target_origin_id", "TargetOriginId"),
                ("viewer_protocol_policy", "ViewerProtocolPolicy"),
                ("compress", "Compress"),
                ("smooth_streaming", "SmoothStreaming"),
                ("field_level_encryption_id", "FieldLevelEncryptionId"),
            ],
        );
        same(
            &format!("{w}.allowed_methods"),
            b.get("allowed_methods"),
            Some(&Value::Array(items(&jb["AllowedMethods"]))),
        );
        same(
            &format!("{w}.cached_methods"),
            b.get("cached_methods"),
            Some(&Value::Array(items(&jb["AllowedMethods"]["CachedMethods"]))),
        );
        assert_eq!(
            items(&jb["TrustedSigners"]).len() + items(&jb["TrustedKeyGroups"]).len(),
            0,
            "{w}"
        );
        doc.refers(
            &format!("{w}.cache_policy_id"),
            b.get("cache_policy_id"),
            "aws_cloudfront_cache_policy",
            &jb["CachePolicyId"],
        );
        doc.refers(
            &format!("{w}.response_headers_policy_id"),
            b.get("response_headers_policy_id"),
            "aws_cloudfront_response_headers_policy",
            &jb["ResponseHeadersPolicyId"],
        );
        let extra: Vec<String> = keys(b).difference(&behaviour_args).cloned().collect();
        assert!(
            extra.is_empty(),
            "{w}: arguments the JSON has no member for: {extra:?}"
        );
    }
    assert!(
        hcl_behaviours[0].get("path_pattern").is_none(),
        "{what}: the default has no pattern"
    );

    let errors = items(&j["CustomErrorResponses"]);
    let hcl_errors = blocks(d, "custom_error_response");
    assert_eq!(hcl_errors.len(), errors.len(), "{what}: error responses");
    assert!(
        errors.iter().any(|e| e.get("ResponsePagePath").is_some()),
        "{label}: the 404 page"
    );
    for (e, je) in hcl_errors.iter().zip(&errors) {
        fields(
            &format!("{what}.custom_error_response"),
            e,
            je,
            &[
                ("error_code", "ErrorCode"),
                ("response_page_path", "ResponsePagePath"),
                ("response_code", "ResponseCode"),
                ("error_caching_min_ttl", "ErrorCachingMinTTL"),
            ],
        );
    }

    fields(
        &format!("{what}.viewer_certificate"),
        one(d, "viewer_certificate"),
        &j["ViewerCertificate"],
        &[
            (
                "cloudfront_default_certificate",
                "CloudFrontDefaultCertificate",
            ),
            ("acm_certificate_arn", "ACMCertificateArn"),
            ("ssl_support_method", "SSLSupportMethod"),
            ("minimum_protocol_version", "MinimumProtocolVersion"),
        ],
    );
    let geo = one(one(d, "restrictions"), "geo_restriction");
    same(
        &format!("{what}.geo_restriction"),
        geo.get("restriction_type"),
        j["Restrictions"]["GeoRestriction"].get("RestrictionType"),
    );
    assert_eq!(j.get("CacheTagConfig").is_some(), tags, "{label}");
    match j.get("CacheTagConfig") {
        Some(t) => same(
            &format!("{what}.cache_tag_config"),
            one(d, "cache_tag_config").get("header_name"),
            t.get("HeaderName"),
        ),
        None => assert!(d.get("cache_tag_config").is_none(), "{what}"),
    }
    let top: BTreeSet<String> = [
        "comment",
        "price_class",
        "enabled",
        "http_version",
        "is_ipv6_enabled",
        "default_root_object",
        "aliases",
        "origin",
        "default_cache_behavior",
        "ordered_cache_behavior",
        "custom_error_response",
        "viewer_certificate",
        "restrictions",
        "cache_tag_config",
    ]
    .map(String::from)
    .into();
    let extra: Vec<String> = keys(d).difference(&top).cloned().collect();
    assert!(
        extra.is_empty(),
        "{what}: arguments the JSON has no member for: {extra:?}"
    );
    let out = &hcl["output"];
    assert!(
        out.to_string().contains("aws_cloudfront_distribution"),
        "{label}: outputs {out}"
    );
}

#[test]
fn the_terraform_file_parses_and_has_the_values_of_the_cloudfront_json() {
    for (label, extra, args, tags) in [
        (
            "http origin, certificate, tags",
            "\n[[cdn]]\nprovider = \"cloudfront\"\ndistribution = [\"E123EXAMPLE\"]\ndomain = \"www.example.com\"\npurge-by = \"tags\"\n",
            vec![
                "--origin",
                "http://origin.example.com:8080",
                "--certificate",
                CERTIFICATE,
            ],
            true,
        ),
        (
            "s3 store",
            "\n[deploy]\nstore = \"s3://site-bucket/site\"\nregion = \"eu-west-1\"\n",
            vec![],
            false,
        ),
    ] {
        let t = tempfile::tempdir().unwrap();
        let dir = t.path();
        site(dir, extra);
        for (target, file) in [("cloudfront", "cf.json"), ("terraform", "main.tf")] {
            let mut c = staleguard(dir);
            c.args(["cdn-config", "--target", target, "-o", file])
                .args(&args);
            let o = run(c);
            assert!(o.status.success(), "{label}, {target}: {}", stderr(&o));
        }
        let json: Value =
            serde_json::from_slice(&std::fs::read(dir.join("cf.json")).unwrap()).unwrap();
        let tf = std::fs::read_to_string(dir.join("main.tf")).unwrap();
        assert!(
            tf.starts_with("# Generated by `staleguard cdn-config --target terraform`"),
            "{tf}"
        );
        assert!(
            !tf.contains("NOT in this file"),
            "{label}: members left out:\n{tf}"
        );
        let hcl = parse_hcl(&dir.join("main.tf"));
        compare(label, &json, &hcl, tags);
        if tags {
            assert_eq!(
                json["DistributionConfig"]["Aliases"]["Items"][0], "www.example.com",
                "{label}"
            );
            assert_eq!(
                json["DistributionConfig"]["ViewerCertificate"]["ACMCertificateArn"], CERTIFICATE,
                "{label}"
            );
        } else {
            assert!(json.get("OriginAccessControl").is_some(), "{label}");
        }
    }
}

#[test]
fn check_is_refused_for_terraform_with_a_hint() {
    let t = tempfile::tempdir().unwrap();
    let dir = t.path();
    site(dir, "");
    let mut c = staleguard(dir);
    c.args([
        "cdn-config",
        "--target",
        "terraform",
        "--check",
        "main.tf",
        "--origin",
        "http://origin.example.com:8080",
    ]);
    let o = run(c);
    assert!(!o.status.success());
    assert!(stderr(&o).contains("terraform plan"), "{}", stderr(&o));
}
