//! The Terraform target: the CloudFront [`Bundle`] as HCL for the `hashicorp/aws` provider, for
//! teams that keep their infrastructure in Terraform.
//!
//! Nothing is decided here: every value comes from the bundle's own documents (the
//! `CachePolicyConfig`, `ResponseHeadersPolicyConfig`, `OriginAccessControlConfig` and
//! `DistributionConfig` that `--target cloudfront` writes as JSON), walked member by member and
//! renamed to the provider's arguments by one table per document (`DISTRIBUTION_FIELDS` and the
//! tables beside it), so the two targets cannot disagree.
//! - A policy or access-control *name* where the API wants an id (`CachePolicyId`,
//!   `ResponseHeadersPolicyId`, `OriginAccessControlId`) becomes a reference to that resource's
//!   `id`; resource names are the policy names made identifiers (`staleguard-pages-0-1` →
//!   `staleguard_pages_0_1`).
//! - `{Quantity, Items}` lists become lists (`aliases`, `allowed_methods`) or one block per item
//!   (`origin`, `ordered_cache_behavior` in order, `custom_error_response`); `Quantity` and
//!   `CallerReference` (the provider makes its own) are left out, and so are empty strings and
//!   blocks left empty (an S3 origin's `s3_origin_config` with no legacy access identity: the
//!   provider puts the empty one back itself).
//! - A member no table knows is not dropped silently: it is listed in a comment at the top of the
//!   file, to be set by hand (the unit tests keep that list empty for every bundle staleguard makes).
//! - Arguments of the provider's 5.x schema, except the tag header:
//!   `CacheTagConfig` is `cache_tag_config { header_name }` on `aws_cloudfront_distribution` from
//!   provider 6.46.0 on, so a bundle with a tag header asks for `>= 6.46.0`, and a comment beside the
//!   block says how to set it with the AWS CLI on an older provider.
//! - Strings are quoted for HCL: `\` and `"` escaped, control characters as escapes, and the template
//!   sequences `${` and `%{` doubled (`$${`, `%%{`) so a value is never read as an interpolation.

use std::collections::BTreeMap;
use std::fmt::Write;

use crate::cloudfront::{Bundle, Node};

/// The provider versions the output needs: 5.0 has every argument but `cache_tag_config`.
pub const PROVIDER_VERSION: &str = ">= 5.0";
pub const PROVIDER_VERSION_WITH_TAGS: &str = ">= 6.46.0";

/// The distribution's resource name.
pub const DISTRIBUTION_NAME: &str = "this";

const CACHE_POLICY: &str = "aws_cloudfront_cache_policy";
const HEADERS_POLICY: &str = "aws_cloudfront_response_headers_policy";
const ORIGIN_ACCESS_CONTROL: &str = "aws_cloudfront_origin_access_control";
const DISTRIBUTION: &str = "aws_cloudfront_distribution";

/// How one member of a CloudFront document becomes provider arguments.
enum Rule {
    /// A leaf as an argument (an empty string is left out: unset is empty for these).
    Attr(&'static str),
    /// A number the API writes as text (`ResponseCode`), as a number.
    Number(&'static str),
    /// `{Quantity, Items}` of leaves (or a bare list) as a list argument, left out when empty.
    List(&'static str),
    /// An object as a nested block, left out when nothing is in it.
    Block(&'static str, Fields),
    /// `{Quantity, Items}` of objects (or a bare list) as one block each, in order.
    Blocks(&'static str, Fields),
    /// An object whose members are arguments of the enclosing block (`AllowedMethods` holds
    /// `CachedMethods`; the provider has `allowed_methods` and `cached_methods` side by side).
    Flatten(Fields),
    /// The name of a resource of this file (a policy, the access control) as a reference to its
    /// id; any other value (an AWS managed policy's id) as it is.
    Ref(&'static str, &'static str),
    /// Not an argument: `Quantity`, `CallerReference`, `Enabled` beside a list.
    Skip,
}

type Fields = &'static [(&'static str, Rule)];

/// `{Quantity, Items}` of leaves as `items` (cache-key headers, cookies, query strings).
const ITEMS: Fields = &[("Quantity", Rule::Skip), ("Items", Rule::List("items"))];

/// `TrustedSigners`, `TrustedKeyGroups`: the provider has only the list (empty is disabled).
const TRUSTED_SIGNERS: Fields = &[
    ("Enabled", Rule::Skip),
    ("Quantity", Rule::Skip),
    ("Items", Rule::List("trusted_signers")),
];
const TRUSTED_KEY_GROUPS: Fields = &[
    ("Enabled", Rule::Skip),
    ("Quantity", Rule::Skip),
    ("Items", Rule::List("trusted_key_groups")),
];

const BEHAVIOUR: Fields = &[
    ("PathPattern", Rule::Attr("path_pattern")),
    ("TargetOriginId", Rule::Attr("target_origin_id")),
    ("TrustedSigners", Rule::Flatten(TRUSTED_SIGNERS)),
    ("TrustedKeyGroups", Rule::Flatten(TRUSTED_KEY_GROUPS)),
    ("ViewerProtocolPolicy", Rule::Attr("viewer_protocol_policy")),
    (
        "AllowedMethods",
        Rule::Flatten(&[
            ("Quantity", Rule::Skip),
            ("Items", Rule::List("allowed_methods")),
            ("CachedMethods", Rule::List("cached_methods")),
        ]),
    ),
    ("SmoothStreaming", Rule::Attr("smooth_streaming")),
    ("Compress", Rule::Attr("compress")),
    (
        "LambdaFunctionAssociations",
        Rule::Blocks(
            "lambda_function_association",
            &[
                ("EventType", Rule::Attr("event_type")),
                ("LambdaFunctionARN", Rule::Attr("lambda_arn")),
                ("IncludeBody", Rule::Attr("include_body")),
            ],
        ),
    ),
    (
        "FunctionAssociations",
        Rule::Blocks(
            "function_association",
            &[
                ("EventType", Rule::Attr("event_type")),
                ("FunctionARN", Rule::Attr("function_arn")),
            ],
        ),
    ),
    (
        "FieldLevelEncryptionId",
        Rule::Attr("field_level_encryption_id"),
    ),
    (
        "RealtimeLogConfigArn",
        Rule::Attr("realtime_log_config_arn"),
    ),
    ("CachePolicyId", Rule::Ref("cache_policy_id", CACHE_POLICY)),
    (
        "OriginRequestPolicyId",
        Rule::Attr("origin_request_policy_id"),
    ),
    (
        "ResponseHeadersPolicyId",
        Rule::Ref("response_headers_policy_id", HEADERS_POLICY),
    ),
];

const ORIGIN: Fields = &[
    ("Id", Rule::Attr("origin_id")),
    ("DomainName", Rule::Attr("domain_name")),
    ("OriginPath", Rule::Attr("origin_path")),
    (
        "CustomHeaders",
        Rule::Blocks(
            "custom_header",
            &[
                ("HeaderName", Rule::Attr("name")),
                ("HeaderValue", Rule::Attr("value")),
            ],
        ),
    ),
    (
        "CustomOriginConfig",
        Rule::Block(
            "custom_origin_config",
            &[
                ("HTTPPort", Rule::Attr("http_port")),
                ("HTTPSPort", Rule::Attr("https_port")),
                ("OriginProtocolPolicy", Rule::Attr("origin_protocol_policy")),
                ("OriginSslProtocols", Rule::List("origin_ssl_protocols")),
                ("OriginReadTimeout", Rule::Attr("origin_read_timeout")),
                (
                    "OriginKeepaliveTimeout",
                    Rule::Attr("origin_keepalive_timeout"),
                ),
            ],
        ),
    ),
    (
        "S3OriginConfig",
        Rule::Block(
            "s3_origin_config",
            &[("OriginAccessIdentity", Rule::Attr("origin_access_identity"))],
        ),
    ),
    ("ConnectionAttempts", Rule::Attr("connection_attempts")),
    ("ConnectionTimeout", Rule::Attr("connection_timeout")),
    (
        "OriginShield",
        Rule::Block(
            "origin_shield",
            &[
                ("Enabled", Rule::Attr("enabled")),
                ("OriginShieldRegion", Rule::Attr("origin_shield_region")),
            ],
        ),
    ),
    (
        "OriginAccessControlId",
        Rule::Ref("origin_access_control_id", ORIGIN_ACCESS_CONTROL),
    ),
];

/// `aws_cloudfront_distribution` from a `DistributionConfig`.
const DISTRIBUTION_FIELDS: Fields = &[
    ("CallerReference", Rule::Skip),
    ("Aliases", Rule::List("aliases")),
    ("DefaultRootObject", Rule::Attr("default_root_object")),
    ("Origins", Rule::Blocks("origin", ORIGIN)),
    // Origin groups: none from staleguard (an item would be reported, not dropped).
    ("OriginGroups", Rule::Blocks("origin_group", &[])),
    (
        "DefaultCacheBehavior",
        Rule::Block("default_cache_behavior", BEHAVIOUR),
    ),
    (
        "CacheBehaviors",
        Rule::Blocks("ordered_cache_behavior", BEHAVIOUR),
    ),
    (
        "CustomErrorResponses",
        Rule::Blocks(
            "custom_error_response",
            &[
                ("ErrorCode", Rule::Attr("error_code")),
                ("ResponsePagePath", Rule::Attr("response_page_path")),
                ("ResponseCode", Rule::Number("response_code")),
                ("ErrorCachingMinTTL", Rule::Attr("error_caching_min_ttl")),
            ],
        ),
    ),
    ("Comment", Rule::Attr("comment")),
    ("PriceClass", Rule::Attr("price_class")),
    ("Enabled", Rule::Attr("enabled")),
    (
        "ViewerCertificate",
        Rule::Block(
            "viewer_certificate",
            &[
                (
                    "CloudFrontDefaultCertificate",
                    Rule::Attr("cloudfront_default_certificate"),
                ),
                ("IAMCertificateId", Rule::Attr("iam_certificate_id")),
                ("ACMCertificateArn", Rule::Attr("acm_certificate_arn")),
                ("SSLSupportMethod", Rule::Attr("ssl_support_method")),
                (
                    "MinimumProtocolVersion",
                    Rule::Attr("minimum_protocol_version"),
                ),
            ],
        ),
    ),
    (
        "Restrictions",
        Rule::Block(
            "restrictions",
            &[(
                "GeoRestriction",
                Rule::Block(
                    "geo_restriction",
                    &[
                        ("RestrictionType", Rule::Attr("restriction_type")),
                        ("Quantity", Rule::Skip),
                        ("Items", Rule::List("locations")),
                    ],
                ),
            )],
        ),
    ),
    ("WebACLId", Rule::Attr("web_acl_id")),
    ("HttpVersion", Rule::Attr("http_version")),
    ("IsIPV6Enabled", Rule::Attr("is_ipv6_enabled")),
    (
        "CacheTagConfig",
        Rule::Block(
            "cache_tag_config",
            &[("HeaderName", Rule::Attr("header_name"))],
        ),
    ),
];

/// `aws_cloudfront_cache_policy` from a `CachePolicyConfig`.
const CACHE_POLICY_FIELDS: Fields = &[
    ("Comment", Rule::Attr("comment")),
    ("Name", Rule::Attr("name")),
    ("DefaultTTL", Rule::Attr("default_ttl")),
    ("MaxTTL", Rule::Attr("max_ttl")),
    ("MinTTL", Rule::Attr("min_ttl")),
    (
        "ParametersInCacheKeyAndForwardedToOrigin",
        Rule::Block(
            "parameters_in_cache_key_and_forwarded_to_origin",
            &[
                (
                    "EnableAcceptEncodingGzip",
                    Rule::Attr("enable_accept_encoding_gzip"),
                ),
                (
                    "EnableAcceptEncodingBrotli",
                    Rule::Attr("enable_accept_encoding_brotli"),
                ),
                (
                    "HeadersConfig",
                    Rule::Block(
                        "headers_config",
                        &[
                            ("HeaderBehavior", Rule::Attr("header_behavior")),
                            ("Headers", Rule::Block("headers", ITEMS)),
                        ],
                    ),
                ),
                (
                    "CookiesConfig",
                    Rule::Block(
                        "cookies_config",
                        &[
                            ("CookieBehavior", Rule::Attr("cookie_behavior")),
                            ("Cookies", Rule::Block("cookies", ITEMS)),
                        ],
                    ),
                ),
                (
                    "QueryStringsConfig",
                    Rule::Block(
                        "query_strings_config",
                        &[
                            ("QueryStringBehavior", Rule::Attr("query_string_behavior")),
                            ("QueryStrings", Rule::Block("query_strings", ITEMS)),
                        ],
                    ),
                ),
            ],
        ),
    ),
];

const OVERRIDE: (&str, Rule) = ("Override", Rule::Attr("override"));

/// `aws_cloudfront_response_headers_policy` from a `ResponseHeadersPolicyConfig`.
const HEADERS_POLICY_FIELDS: Fields = &[
    ("Comment", Rule::Attr("comment")),
    ("Name", Rule::Attr("name")),
    (
        "SecurityHeadersConfig",
        Rule::Block(
            "security_headers_config",
            &[
                (
                    "XSSProtection",
                    Rule::Block(
                        "xss_protection",
                        &[
                            OVERRIDE,
                            ("Protection", Rule::Attr("protection")),
                            ("ModeBlock", Rule::Attr("mode_block")),
                            ("ReportUri", Rule::Attr("report_uri")),
                        ],
                    ),
                ),
                (
                    "FrameOptions",
                    Rule::Block(
                        "frame_options",
                        &[OVERRIDE, ("FrameOption", Rule::Attr("frame_option"))],
                    ),
                ),
                (
                    "ReferrerPolicy",
                    Rule::Block(
                        "referrer_policy",
                        &[OVERRIDE, ("ReferrerPolicy", Rule::Attr("referrer_policy"))],
                    ),
                ),
                (
                    "ContentSecurityPolicy",
                    Rule::Block(
                        "content_security_policy",
                        &[
                            OVERRIDE,
                            (
                                "ContentSecurityPolicy",
                                Rule::Attr("content_security_policy"),
                            ),
                        ],
                    ),
                ),
                (
                    "ContentTypeOptions",
                    Rule::Block("content_type_options", &[OVERRIDE]),
                ),
                (
                    "StrictTransportSecurity",
                    Rule::Block(
                        "strict_transport_security",
                        &[
                            OVERRIDE,
                            ("IncludeSubdomains", Rule::Attr("include_subdomains")),
                            ("Preload", Rule::Attr("preload")),
                            (
                                "AccessControlMaxAgeSec",
                                Rule::Attr("access_control_max_age_sec"),
                            ),
                        ],
                    ),
                ),
            ],
        ),
    ),
    (
        "CustomHeadersConfig",
        Rule::Block(
            "custom_headers_config",
            &[
                ("Quantity", Rule::Skip),
                (
                    "Items",
                    Rule::Blocks(
                        "items",
                        &[
                            ("Header", Rule::Attr("header")),
                            ("Value", Rule::Attr("value")),
                            OVERRIDE,
                        ],
                    ),
                ),
            ],
        ),
    ),
];

/// `aws_cloudfront_origin_access_control` from an `OriginAccessControlConfig`.
const ORIGIN_ACCESS_CONTROL_FIELDS: Fields = &[
    ("Name", Rule::Attr("name")),
    ("Description", Rule::Attr("description")),
    ("SigningProtocol", Rule::Attr("signing_protocol")),
    ("SigningBehavior", Rule::Attr("signing_behavior")),
    (
        "OriginAccessControlOriginType",
        Rule::Attr("origin_access_control_origin_type"),
    ),
];

/// An HCL value.
#[derive(Debug, Clone, PartialEq)]
enum Expr {
    Str(String),
    Num(i64),
    Bool(bool),
    List(Vec<Expr>),
    /// A reference, written as it is (`aws_cloudfront_cache_policy.x.id`).
    Ref(String),
}

/// One line or block of an HCL body.
#[derive(Debug, Clone, PartialEq)]
enum Item {
    Attr(&'static str, Expr),
    Block(&'static str, Vec<Item>),
    Comment(String),
}

/// Resource names by resource type and CloudFront name.
#[derive(Debug, Default)]
struct Names {
    by: BTreeMap<(&'static str, String), String>,
}

impl Names {
    /// The resource name for `name`, unique within `kind`.
    fn add(&mut self, kind: &'static str, name: &str) -> String {
        let base = resource_name(name);
        let mut candidate = base.clone();
        let mut n = 2;
        while self
            .by
            .iter()
            .any(|((k, _), v)| *k == kind && *v == candidate)
        {
            candidate = format!("{base}_{n}");
            n += 1;
        }
        self.by.insert((kind, name.to_string()), candidate.clone());
        candidate
    }

    fn get(&self, kind: &'static str, name: &str) -> Option<&String> {
        self.by.get(&(kind, name.to_string()))
    }
}

/// Walks a document with its table into HCL items, noting the members no table knows.
struct Walk<'a> {
    names: &'a Names,
    unmapped: Vec<String>,
}

impl Walk<'_> {
    /// The body for an object: its arguments first, then its blocks, each in the document's order.
    fn body(&mut self, node: &Node, fields: Fields, path: &str) -> Vec<Item> {
        let Node::Obj(members) = node else {
            self.unmapped.push(path.to_string());
            return Vec::new();
        };
        let mut out = Vec::new();
        for (k, v) in members {
            let p = format!("{path}.{k}");
            match fields.iter().find(|(api, _)| api == k) {
                Some((_, rule)) => self.member(v, rule, &p, &mut out),
                None => self.unmapped.push(p),
            }
        }
        let (mut attrs, blocks): (Vec<Item>, Vec<Item>) =
            out.into_iter().partition(|i| matches!(i, Item::Attr(..)));
        attrs.extend(blocks);
        attrs
    }

    fn member(&mut self, v: &Node, rule: &Rule, path: &str, out: &mut Vec<Item>) {
        match rule {
            Rule::Skip => {}
            Rule::Attr(name) => match leaf(v) {
                Some(Expr::Str(s)) if s.is_empty() => {}
                Some(e) => out.push(Item::Attr(name, e)),
                None => self.unmapped.push(path.to_string()),
            },
            Rule::Number(name) => match v {
                Node::Int(i) => out.push(Item::Attr(name, Expr::Num(*i))),
                Node::Str(s) if s.is_empty() => {}
                Node::Str(s) => match s.parse::<i64>() {
                    Ok(i) => out.push(Item::Attr(name, Expr::Num(i))),
                    Err(_) => self.unmapped.push(path.to_string()),
                },
                _ => self.unmapped.push(path.to_string()),
            },
            Rule::List(name) => {
                let mut list = Vec::new();
                for (i, item) in self.items(v, path).iter().enumerate() {
                    match leaf(item) {
                        Some(e) => list.push(e),
                        None => self.unmapped.push(format!("{path}[{i}]")),
                    }
                }
                if !list.is_empty() {
                    out.push(Item::Attr(name, Expr::List(list)));
                }
            }
            Rule::Block(name, fields) => {
                let body = self.body(v, fields, path);
                if !body.is_empty() {
                    out.push(Item::Block(name, body));
                }
            }
            Rule::Blocks(name, fields) => {
                for (i, item) in self.items(v, path).iter().enumerate() {
                    let body = self.body(item, fields, &format!("{path}[{i}]"));
                    if !body.is_empty() {
                        out.push(Item::Block(name, body));
                    }
                }
            }
            Rule::Flatten(fields) => out.extend(self.body(v, fields, path)),
            Rule::Ref(name, kind) => match v {
                Node::Str(s) if s.is_empty() => {}
                Node::Str(s) => out.push(Item::Attr(
                    name,
                    match self.names.get(kind, s) {
                        Some(r) => Expr::Ref(format!("{kind}.{r}.id")),
                        None => Expr::Str(s.clone()),
                    },
                )),
                _ => self.unmapped.push(path.to_string()),
            },
        }
    }

    /// The items of `{Quantity, Items}`, or of a bare list.
    fn items<'n>(&mut self, v: &'n Node, path: &str) -> &'n [Node] {
        match v {
            Node::List(_, items) => items,
            Node::Obj(members) => {
                for (k, _) in members {
                    if *k != "Quantity" && *k != "Items" {
                        self.unmapped.push(format!("{path}.{k}"));
                    }
                }
                match v.get("Items") {
                    Some(Node::List(_, items)) => items,
                    _ => &[],
                }
            }
            _ => {
                self.unmapped.push(path.to_string());
                &[]
            }
        }
    }
}

fn leaf(n: &Node) -> Option<Expr> {
    match n {
        Node::Str(s) => Some(Expr::Str(s.clone())),
        Node::Int(i) => Some(Expr::Num(*i)),
        Node::Bool(b) => Some(Expr::Bool(*b)),
        _ => None,
    }
}

/// A Terraform resource name for a CloudFront name: letters, digits and `_` kept, anything else
/// (`-`, `.`, a space, a non-ASCII letter) as `_`, and a `_` in front of a leading digit.
pub fn resource_name(name: &str) -> String {
    let mut out: String = name
        .chars()
        .map(|c| {
            if c.is_ascii_alphanumeric() || c == '_' {
                c
            } else {
                '_'
            }
        })
        .collect();
    if !out.starts_with(|c: char| c.is_ascii_alphabetic() || c == '_') {
        out.insert(0, '_');
    }
    out
}

/// A string as an HCL quoted template that evaluates to exactly `s`.
pub fn quote(s: &str) -> String {
    let mut out = String::with_capacity(s.len() + 2);
    out.push('"');
    let mut chars = s.chars().peekable();
    while let Some(c) = chars.next() {
        match c {
            '\\' => out.push_str("\\\\"),
            '"' => out.push_str("\\\""),
            '\n' => out.push_str("\\n"),
            '\r' => out.push_str("\\r"),
            '\t' => out.push_str("\\t"),
            '$' | '%' if chars.peek() == Some(&'{') => {
                out.push(c);
                out.push(c);
            }
            c if c.is_control() => {
                let _ = write!(out, "\\u{:04x}", c as u32);
            }
            c => out.push(c),
        }
    }
    out.push('"');
    out
}

fn expr(e: &Expr) -> String {
    match e {
        Expr::Str(s) => quote(s),
        Expr::Num(i) => i.to_string(),
        Expr::Bool(b) => b.to_string(),
        Expr::List(items) => format!(
            "[{}]",
            items.iter().map(expr).collect::<Vec<_>>().join(", ")
        ),
        Expr::Ref(r) => r.clone(),
    }
}

/// Writes a body as `terraform fmt` would: two spaces a level, the `=` of consecutive arguments
/// aligned, a blank line before a nested block that follows something.
fn write_body(out: &mut String, items: &[Item], depth: usize) {
    let pad = "  ".repeat(depth);
    let mut i = 0;
    while i < items.len() {
        match &items[i] {
            Item::Attr(..) => {
                if i > 0 && matches!(items[i - 1], Item::Block(..)) {
                    out.push('\n');
                }
                let run: Vec<(&str, &Expr)> = items[i..]
                    .iter()
                    .map_while(|x| match x {
                        Item::Attr(n, e) => Some((*n, e)),
                        _ => None,
                    })
                    .collect();
                let width = run.iter().map(|(n, _)| n.len()).max().unwrap_or(0);
                for (n, e) in &run {
                    let _ = writeln!(out, "{pad}{n:width$} = {}", expr(e));
                }
                i += run.len();
                continue;
            }
            Item::Block(name, body) => {
                if i > 0 && !matches!(items[i - 1], Item::Comment(_)) {
                    out.push('\n');
                }
                let _ = writeln!(out, "{pad}{name} {{");
                write_body(out, body, depth + 1);
                let _ = writeln!(out, "{pad}}}");
            }
            Item::Comment(c) => {
                if i > 0 && matches!(items[i - 1], Item::Block(..)) {
                    out.push('\n');
                }
                for line in c.lines() {
                    let _ = writeln!(out, "{pad}# {line}");
                }
            }
        }
        i += 1;
    }
}

fn resource(out: &mut String, kind: &str, name: &str, body: &[Item]) {
    let _ = writeln!(out, "\nresource {} {} {{", quote(kind), quote(name));
    write_body(out, body, 1);
    out.push_str("}\n");
}

/// The bundle as one Terraform file: the provider requirement, the cache and response-headers
/// policies, the origin access control (an S3 store), the distribution, and its id and domain
/// name as outputs.
pub fn render(bundle: &Bundle) -> String {
    let mut names = Names::default();
    let policies: Vec<(String, Node)> = bundle
        .policies
        .iter()
        .map(|p| (names.add(CACHE_POLICY, &p.name), p.config()))
        .collect();
    let headers: Vec<(String, &Node)> = bundle
        .headers_policies
        .iter()
        .map(|(n, c)| (names.add(HEADERS_POLICY, n), c))
        .collect();
    let oac = bundle.origin_access_control.as_ref().map(|c| {
        let name = c.get("Name").and_then(Node::text).unwrap_or_default();
        (names.add(ORIGIN_ACCESS_CONTROL, &name), c)
    });

    let mut walk = Walk {
        names: &names,
        unmapped: Vec::new(),
    };
    let mut resources = String::new();
    for (name, config) in &policies {
        let body = walk.body(config, CACHE_POLICY_FIELDS, "CachePolicyConfig");
        resource(&mut resources, CACHE_POLICY, name, &body);
    }
    for (name, config) in &headers {
        let body = walk.body(config, HEADERS_POLICY_FIELDS, "ResponseHeadersPolicyConfig");
        resource(&mut resources, HEADERS_POLICY, name, &body);
    }
    if let Some((name, config)) = &oac {
        let body = walk.body(
            config,
            ORIGIN_ACCESS_CONTROL_FIELDS,
            "OriginAccessControlConfig",
        );
        resource(&mut resources, ORIGIN_ACCESS_CONTROL, name, &body);
    }
    let mut body = walk.body(
        &bundle.distribution,
        DISTRIBUTION_FIELDS,
        "DistributionConfig",
    );
    let tags = bundle.distribution.get("CacheTagConfig").is_some();
    if let Some(header) = bundle
        .distribution
        .get("CacheTagConfig")
        .and_then(|c| c.get("HeaderName"))
        .and_then(Node::text)
        && let Some(at) = body
            .iter()
            .position(|i| matches!(i, Item::Block("cache_tag_config", _)))
    {
        body.insert(
            at,
            Item::Comment(format!(
                "Purge by tag: CloudFront reads the tags from the `{header}` header (CacheTagConfig);\n\
                 `cache_tag_config` needs hashicorp/aws {PROVIDER_VERSION_WITH_TAGS}. With an older provider, remove this\n\
                 block and set it with the AWS CLI after each apply (an older provider's apply drops it):\n\
                 \x20 aws cloudfront get-distribution-config --id ID > d.json  (note the ETag), add\n\
                 \x20 \"CacheTagConfig\": {{\"HeaderName\": \"{header}\"}} to its DistributionConfig (saved as dc.json), then\n\
                 \x20 aws cloudfront update-distribution --id ID --if-match ETAG --distribution-config file://dc.json"
            )),
        );
    }
    resource(&mut resources, DISTRIBUTION, DISTRIBUTION_NAME, &body);

    let mut out = String::new();
    out.push_str(
        "# Generated by `staleguard cdn-config --target terraform` from the route table ([[routes]], [serve]\n\
         # and the build's manifest): the CloudFront distribution with its cache policies, response-headers\n\
         # policies and, for an S3 store, its origin access control. The same values as\n\
         # `--target cloudfront`; change staleguard.toml and generate it again rather than editing it here.\n\
         #\n\
         # terraform init && terraform plan   (AWS credentials and a region from the environment)\n",
    );
    for w in &bundle.warnings {
        let _ = writeln!(out, "#\n# warning: {w}");
    }
    if !walk.unmapped.is_empty() {
        let _ = writeln!(
            out,
            "#\n# NOT in this file (no provider argument known to staleguard; set by hand): {}",
            walk.unmapped.join(", ")
        );
    }
    let _ = write!(
        out,
        "\nterraform {{\n  required_providers {{\n    aws = {{\n      source  = \"hashicorp/aws\"\n      version = {}\n    }}\n  }}\n}}\n",
        quote(if tags {
            PROVIDER_VERSION_WITH_TAGS
        } else {
            PROVIDER_VERSION
        })
    );
    out.push_str(&resources);
    let _ = write!(
        out,
        "\noutput \"distribution_id\" {{\n  description = \"Set [[cdn]] distribution to it, so deploys purge this distribution\"\n  value       = {DISTRIBUTION}.{DISTRIBUTION_NAME}.id\n}}\n\
         \noutput \"domain_name\" {{\n  value = {DISTRIBUTION}.{DISTRIBUTION_NAME}.domain_name\n}}\n"
    );
    out
}

#[cfg(test)]
mod tests {
    use std::collections::BTreeMap;

    use staleguard_core::config::ServeConfig;
    use staleguard_core::manifest::{Manifest, ManifestEntry};
    use staleguard_core::routes::RouteRule;

    use super::*;
    use crate::cloudfront::{self, Options, Origin};
    use crate::{Origin as PlanOrigin, Plan};

    #[test]
    fn strings_are_quoted_to_evaluate_to_themselves() {
        for (s, want) in [
            ("plain", r#""plain""#),
            (r#"say "hi""#, r#""say \"hi\"""#),
            (r"C:\dir", r#""C:\\dir""#),
            ("${var.x}", r#""$${var.x}""#),
            ("%{ if x }", r#""%%{ if x }""#),
            ("$5 and 50% {x}", r#""$5 and 50% {x}""#),
            ("a\nb\tc\r", r#""a\nb\tc\r""#),
            ("\u{1}", r#""\u0001""#),
            ("camera=()", r#""camera=()""#),
            ("é/✓", "\"é/✓\""),
            ("", r#""""#),
        ] {
            assert_eq!(quote(s), want, "{s:?}");
        }
    }

    #[test]
    fn resource_names_are_identifiers_and_unique_per_type() {
        for (name, want) in [
            ("staleguard-pages-0-1", "staleguard_pages_0_1"),
            (
                "staleguard-fingerprinted-31536000",
                "staleguard_fingerprinted_31536000",
            ),
            ("My.Policy v2", "My_Policy_v2"),
            ("1st", "_1st"),
            ("_x", "_x"),
            ("", "_"),
            ("café", "caf_"),
        ] {
            assert_eq!(resource_name(name), want, "{name:?}");
        }
        let mut n = Names::default();
        assert_eq!(n.add(CACHE_POLICY, "a-b"), "a_b");
        assert_eq!(n.add(CACHE_POLICY, "a.b"), "a_b_2");
        assert_eq!(n.add(CACHE_POLICY, "a_b"), "a_b_3");
        assert_eq!(n.add(HEADERS_POLICY, "a-b"), "a_b", "another type");
        assert_eq!(n.get(CACHE_POLICY, "a.b").unwrap(), "a_b_2");
    }

    fn entry(path: &str, mutable: bool) -> ManifestEntry {
        crate::test_entry(path, mutable, false, false)
    }

    fn bundle(origin: Origin, certificate: Option<&str>, tags: bool) -> Bundle {
        let files: BTreeMap<String, ManifestEntry> = [
            ("css/site.css", entry("css/site.0123456789ab.css", false)),
            ("index.html", entry("index.html", true)),
        ]
        .into_iter()
        .map(|(k, v)| (k.to_string(), v))
        .collect();
        let rule = |pattern: &str, cc: Option<&str>, headers: &[(&str, &str)]| RouteRule {
            pattern: pattern.into(),
            cache_control: cc.map(str::to_string),
            headers: headers
                .iter()
                .map(|(k, v)| (k.to_string(), v.to_string()))
                .collect(),
            tags: Vec::new(),
        };
        let mut serve = ServeConfig::default();
        serve.headers.extend(
            [
                ("Strict-Transport-Security", "max-age=63072000; preload"),
                ("X-Frame-Options", "DENY"),
                ("Content-Security-Policy", "default-src 'self'"),
                ("Referrer-Policy", "no-referrer"),
                ("X-Content-Type-Options", "nosniff"),
                ("X-Template", "${not.a.reference} %{x}"),
            ]
            .map(|(k, v)| (k.to_string(), v.to_string())),
        );
        let plan = Plan::new(
            &[
                rule("docs/**", Some("public, max-age=0, s-maxage=60"), &[]),
                rule("api/*", Some("no-store"), &[]),
                rule("about/**", None, &[("X-Robots-Tag", "noindex")]),
            ],
            &serve,
            &Manifest::new("/".into(), files),
            PlanOrigin::parse("http://origin.example.com:8080").unwrap(),
            vec![],
        );
        cloudfront::render(
            &plan,
            &Options {
                name: "sg".into(),
                origin,
                aliases: vec!["www.example.com".into()],
                certificate: certificate.map(str::to_string),
                tag_header: tags.then(|| "Surrogate-Key".to_string()),
                caller_reference: "ref".into(),
            },
        )
    }

    fn custom() -> Origin {
        Origin::Custom {
            host: "origin.example.com".into(),
            port: 8080,
        }
    }

    #[test]
    fn every_member_of_every_bundle_has_a_provider_argument() {
        let s3 = Origin::S3 {
            bucket: "site".into(),
            region: "eu-west-1".into(),
            prefix: "live".into(),
        };
        for (label, b) in [
            ("http", bundle(custom(), None, false)),
            (
                "http, certificate, tags",
                bundle(
                    custom(),
                    Some("arn:aws:acm:us-east-1:1:certificate/x"),
                    true,
                ),
            ),
            ("s3", bundle(s3, None, true)),
        ] {
            let hcl = render(&b);
            assert!(!hcl.contains("NOT in this file"), "{label}:\n{hcl}");
            // Every policy is a resource, and every reference names one.
            for p in &b.policies {
                assert!(
                    hcl.contains(&format!("name        = {}", quote(&p.name))),
                    "{label}: {}",
                    p.name
                );
            }
            for (n, _) in &b.headers_policies {
                let r = format!("{HEADERS_POLICY}.{}.id", resource_name(n));
                assert!(hcl.contains(&r), "{label}: {r}");
            }
            assert!(hcl.contains(r#""$${not.a.reference} %%{x}""#), "{label}");
        }
    }

    #[test]
    fn the_tag_header_asks_for_the_provider_that_has_it() {
        let hcl = render(&bundle(custom(), None, true));
        assert!(hcl.contains("version = \">= 6.46.0\""), "{hcl}");
        assert!(
            hcl.contains("cache_tag_config {\n    header_name = \"Surrogate-Key\"\n  }"),
            "{hcl}"
        );
        assert!(hcl.contains("aws cloudfront update-distribution"), "{hcl}");
        let hcl = render(&bundle(custom(), None, false));
        assert!(
            hcl.contains("version = \">= 5.0\"") && !hcl.contains("cache_tag_config"),
            "{hcl}"
        );
    }

    #[test]
    fn a_member_without_a_mapping_is_reported_not_dropped() {
        let mut b = bundle(custom(), None, false);
        if let Node::Obj(m) = &mut b.distribution {
            m.push((
                "Logging",
                Node::Obj(vec![("Bucket", Node::str("logs.s3.amazonaws.com"))]),
            ));
        }
        if let Some(Node::Obj(m)) = b.distribution.get_mut("DefaultCacheBehavior") {
            m.push((
                "FunctionAssociations",
                Node::items(
                    "FunctionAssociation",
                    vec![Node::Obj(vec![("Stage", Node::str("x"))])],
                ),
            ));
        }
        let hcl = render(&b);
        assert!(
            hcl.contains("set by hand): DistributionConfig.DefaultCacheBehavior.FunctionAssociations[0].Stage"),
            "{hcl}"
        );
        let top: String = hcl.lines().take_while(|l| l.starts_with('#')).collect();
        assert!(top.contains("DistributionConfig.Logging"), "{top}");
    }

    #[test]
    fn bodies_are_formatted_like_terraform_fmt() {
        let mut out = String::new();
        write_body(
            &mut out,
            &[
                Item::Attr("a", Expr::Num(1)),
                Item::Attr(
                    "long_name",
                    Expr::List(vec![Expr::Str("x".into()), Expr::Bool(true)]),
                ),
                Item::Block("inner", vec![Item::Attr("r", Expr::Ref("x.y.id".into()))]),
                Item::Attr("after", Expr::Str("z".into())),
            ],
            0,
        );
        assert_eq!(
            out,
            "a         = 1\nlong_name = [\"x\", true]\n\ninner {\n  r = x.y.id\n}\n\nafter = \"z\"\n"
        );
    }
}
