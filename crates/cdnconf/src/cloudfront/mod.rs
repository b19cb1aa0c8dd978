//! The CloudFront target: a distribution config with the cache policies, response-headers policies
//! and (for an S3 store) the origin access control it needs, from the [`Plan`].
//!
//! How the route table becomes CloudFront settings:
//! - CloudFront honours the origin's `Cache-Control` (`s-maxage`, else `max-age`) between a cache
//!   policy's `MinTTL` and `MaxTTL`, and uses `DefaultTTL` only for a response without one. The
//!   origin (`staleguard serve`, or the objects' metadata written by `staleguard deploy`) always sends
//!   the route's `Cache-Control`, so every policy has `MinTTL` 0 (a page is never held longer than
//!   the origin says), `MaxTTL` the longest lifetime the route allows and `DefaultTTL` the mutable
//!   lifetime (a response without headers is treated as a page). A fingerprinted URL that is not a
//!   fingerprinted file (a look-alike, a 404) gets the origin's own short lifetime.
//! - Fingerprinted files (CloudFront matches paths with `*` and `?` only): one behaviour per bundler
//!   folder (`/assets/*`) and per extension of a staleguard name (`*.????????????.css`), a year,
//!   query strings and cookies out of the cache key. Mutable look-alikes from the manifest come
//!   first with the page policy. A route glob becomes its CloudFront patterns (`{a,b}` expanded,
//!   `**` and `*` as `*`, a class as `?`; wider than the glob, reported as a warning).
//! - Every cached policy puts the normalised `Accept-Encoding` in the key (gzip and brotli), so a
//!   precompressed variant is never served to a client that did not ask for it; `Compress` is on.
//! - `no-store` and `private` routes get a policy with every TTL 0 (nothing stored; CloudFront then
//!   allows no cache-key settings).
//! - Custom error responses for 404 (the `[serve] not-found-page`) and 5xx with a short
//!   `ErrorCachingMinTTL`, so a page missing or failing for a moment is not served for minutes.
//! - `[serve.headers]` as a response-headers policy (security headers in their own settings,
//!   others as custom headers, none overriding the origin's), one more per distinct set of a rule's
//!   own headers.
//! - The tag header as `CacheTagConfig` when tags are purged.

#[cfg(feature = "api")]
pub mod apply;
pub mod check;
pub mod node;

use std::collections::BTreeMap;

pub use node::Node;

use crate::{Edge, Plan, Select};

/// Where CloudFront fetches from.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Origin {
    /// An HTTP origin (`staleguard serve`, nginx): its public host name and port.
    Custom { host: String, port: u16 },
    /// An S3 bucket read through an origin access control.
    S3 {
        bucket: String,
        region: String,
        /// The store's prefix (`OriginPath`), without slashes at its ends; empty for the root.
        prefix: String,
    },
}

/// What the plan does not say.
#[derive(Debug, Clone)]
pub struct Options {
    /// Prefix of every policy name (`staleguard` → `staleguard-fingerprinted-31536000`).
    pub name: String,
    pub origin: Origin,
    /// Alternate domain names; CloudFront needs `certificate` with them.
    pub aliases: Vec<String>,
    /// An ACM certificate ARN (us-east-1) for the aliases.
    pub certificate: Option<String>,
    /// `CacheTagConfig` header name when the CDN purges by tag.
    pub tag_header: Option<String>,
    /// `CallerReference` of a new distribution (an update keeps the live one).
    pub caller_reference: String,
}

/// A cache policy as the distribution uses it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CachePolicy {
    pub name: String,
    pub min: u64,
    pub default: u64,
    pub max: u64,
    /// `Accept-Encoding` (gzip and brotli) in the key.
    pub encodings: bool,
    /// `none` or `all`.
    pub query_strings: &'static str,
}

/// One behaviour: the default one has no pattern.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Behaviour {
    pub pattern: Option<String>,
    pub policy: String,
    pub headers_policy: String,
    /// Serves mutable content (a long lifetime here is a staleness risk).
    pub mutable: bool,
    /// Where it came from (`[[routes]] /blog/*`, `fingerprinted`, `default`).
    pub source: String,
}

/// Everything `--target cloudfront` writes.
#[derive(Debug, Clone)]
pub struct Bundle {
    pub policies: Vec<CachePolicy>,
    /// `(name, ResponseHeadersPolicyConfig)`.
    pub headers_policies: Vec<(String, Node)>,
    /// `OriginAccessControlConfig` for an S3 origin.
    pub origin_access_control: Option<Node>,
    pub behaviours: Vec<Behaviour>,
    /// `DistributionConfig`, with policy and access-control *names* where the API wants ids
    /// ([`Bundle::distribution_with`] puts the ids in).
    pub distribution: Node,
    /// `(status, ErrorCachingMinTTL)` of the custom error responses.
    pub error_ttls: Vec<(u16, u64)>,
    pub tag_header: Option<String>,
    /// What CloudFront cannot express exactly, for the user.
    pub warnings: Vec<String>,
}

/// The origin id in the distribution.
pub const ORIGIN_ID: &str = "staleguard-origin";
/// `ErrorCachingMinTTL` for a 404 and for 5xx answers.
pub const ERROR_TTL_404: u64 = 10;
pub const ERROR_TTL_5XX: u64 = 5;
/// CloudFront's default quota of cache behaviours per distribution.
pub const BEHAVIOUR_QUOTA: usize = 25;

impl CachePolicy {
    /// The `CachePolicyConfig` document.
    pub fn config(&self) -> Node {
        Node::Obj(vec![
            (
                "Comment",
                Node::str("staleguard cdn-config: lifetimes bound the origin's Cache-Control"),
            ),
            ("Name", Node::str(&self.name)),
            ("DefaultTTL", Node::Int(self.default as i64)),
            ("MaxTTL", Node::Int(self.max as i64)),
            ("MinTTL", Node::Int(self.min as i64)),
            (
                "ParametersInCacheKeyAndForwardedToOrigin",
                Node::Obj(vec![
                    ("EnableAcceptEncodingGzip", Node::Bool(self.encodings)),
                    ("EnableAcceptEncodingBrotli", Node::Bool(self.encodings)),
                    (
                        "HeadersConfig",
                        Node::Obj(vec![("HeaderBehavior", Node::str("none"))]),
                    ),
                    (
                        "CookiesConfig",
                        Node::Obj(vec![("CookieBehavior", Node::str("none"))]),
                    ),
                    (
                        "QueryStringsConfig",
                        Node::Obj(vec![("QueryStringBehavior", Node::str(self.query_strings))]),
                    ),
                ]),
            ),
        ])
    }
}

impl Bundle {
    /// The distribution config with ids for names (`ids`: policy or access-control name → id);
    /// a name without an id stays as it is.
    pub fn distribution_with(&self, ids: &BTreeMap<String, String>) -> Node {
        let mut d = self.distribution.clone();
        replace_ids(&mut d, ids);
        d
    }

    /// The whole bundle as JSON: each document in the shape the AWS CLI takes.
    pub fn to_json(&self) -> String {
        let policies: Vec<Node> = self
            .policies
            .iter()
            .map(|p| Node::Obj(vec![("CachePolicyConfig", p.config())]))
            .collect();
        let headers: Vec<Node> = self
            .headers_policies
            .iter()
            .map(|(_, c)| Node::Obj(vec![("ResponseHeadersPolicyConfig", c.clone())]))
            .collect();
        let mut top = vec![
            (
                "Comment",
                Node::str(
                    "staleguard cdn-config --target cloudfront: create the policies, then the distribution with their ids in place of the names in CachePolicyId, ResponseHeadersPolicyId and OriginAccessControlId (staleguard cdn-config --target cloudfront --apply does all of it)",
                ),
            ),
            ("CachePolicies", Node::List("CachePolicy", policies)),
            (
                "ResponseHeadersPolicies",
                Node::List("ResponseHeadersPolicy", headers),
            ),
        ];
        if let Some(oac) = &self.origin_access_control {
            top.push((
                "OriginAccessControl",
                Node::Obj(vec![("OriginAccessControlConfig", oac.clone())]),
            ));
        }
        top.push(("DistributionConfig", self.distribution.clone()));
        if !self.warnings.is_empty() {
            top.push((
                "Warnings",
                Node::List("Warning", self.warnings.iter().map(Node::str).collect()),
            ));
        }
        let mut s = serde_json::to_string_pretty(&Node::Obj(top)).expect("a JSON document");
        s.push('\n');
        s
    }
}

fn replace_ids(n: &mut Node, ids: &BTreeMap<String, String>) {
    match n {
        Node::Obj(m) => {
            for (k, v) in m.iter_mut() {
                if matches!(
                    *k,
                    "CachePolicyId" | "ResponseHeadersPolicyId" | "OriginAccessControlId"
                ) && let Node::Str(s) = v
                    && let Some(id) = ids.get(s.as_str())
                {
                    *s = id.clone();
                } else {
                    replace_ids(v, ids);
                }
            }
        }
        Node::List(_, items) => items.iter_mut().for_each(|v| replace_ids(v, ids)),
        _ => {}
    }
}

/// CloudFront path patterns for a route glob (`*` matches across `/` there, `?` one character),
/// and whether they are wider than the glob: `{a,b}` expands to one pattern each, a run of stars
/// (with the `/` of a leading `**/`) becomes one `*` (exact only for a final `/**`), a class `?`.
pub fn patterns(glob: &str) -> (Vec<String>, bool) {
    let mut wider = false;
    let mut out = vec![String::new()];
    let chars: Vec<char> = glob.trim_start_matches('/').chars().collect();
    let push = |out: &mut Vec<String>, s: &str| out.iter_mut().for_each(|p| p.push_str(s));
    let mut i = 0;
    while i < chars.len() {
        match chars[i] {
            '*' => {
                let start = i;
                while chars.get(i + 1) == Some(&'*') {
                    i += 1;
                }
                let double = i > start;
                let segment_start = start == 0 || chars[start - 1] == '/';
                if double && segment_start && chars.get(i + 1) == Some(&'/') {
                    // `**/`: any number of folders, the `/` included.
                    i += 1;
                }
                if !(double && i + 1 == chars.len()) {
                    wider = true;
                }
                push(&mut out, "*");
            }
            '[' => match chars[i..].iter().position(|&c| c == ']') {
                Some(j) => {
                    push(&mut out, "?");
                    wider = true;
                    i += j;
                }
                None => push(&mut out, "["),
            },
            '{' => match chars[i..].iter().position(|&c| c == '}') {
                Some(j) => {
                    let alts: String = chars[i + 1..i + j].iter().collect();
                    out = out
                        .iter()
                        .flat_map(|p| alts.split(',').map(move |a| format!("{p}{a}")))
                        .collect();
                    i += j;
                }
                None => push(&mut out, "{"),
            },
            c => push(&mut out, c.encode_utf8(&mut [0; 4])),
        }
        i += 1;
    }
    let mut out: Vec<String> = out
        .into_iter()
        .map(|p| {
            // `**` runs collapse: `/**` then `*.html` is one `*`.
            let mut q = String::from("/");
            for c in p.chars() {
                if !(c == '*' && q.ends_with('*')) {
                    q.push(c);
                }
            }
            q
        })
        .collect();
    out.dedup();
    (out, wider)
}

/// Whether a CloudFront path pattern matches a path (case-sensitive, `*` any run, `?` one).
pub fn pattern_matches(pattern: &str, path: &str) -> bool {
    let p: Vec<char> = pattern.chars().collect();
    let s: Vec<char> = path.chars().collect();
    let (mut pi, mut si, mut star, mut mark) = (0, 0, None, 0);
    while si < s.len() {
        if pi < p.len() && (p[pi] == '?' || p[pi] == s[si]) {
            pi += 1;
            si += 1;
        } else if pi < p.len() && p[pi] == '*' {
            star = Some(pi);
            mark = si;
            pi += 1;
        } else if let Some(st) = star {
            pi = st + 1;
            mark += 1;
            si = mark;
        } else {
            return false;
        }
    }
    while pi < p.len() && p[pi] == '*' {
        pi += 1;
    }
    pi == p.len()
}

struct Builder<'a> {
    opts: &'a Options,
    policies: Vec<CachePolicy>,
    headers_policies: Vec<(String, Node)>,
    base_headers: BTreeMap<String, String>,
}

impl Builder<'_> {
    /// The policy for a pair of edge behaviours (fingerprinted files, mutable ones) under one
    /// behaviour, added once.
    fn policy(&mut self, fingerprinted: Option<&Edge>, mutable: Option<&Edge>) -> String {
        let ttl = |e: &Edge| match e {
            Edge::Pass => None,
            Edge::Revalidate => Some(0),
            Edge::Cache { ttl, .. } => Some(*ttl),
        };
        let f = fingerprinted.map(ttl);
        let m = mutable.map(ttl);
        let pass = f.is_none_or(|x| x.is_none()) && m.is_none_or(|x| x.is_none());
        let p = if pass {
            CachePolicy {
                name: format!("{}-pass", self.opts.name),
                min: 0,
                default: 0,
                max: 0,
                encodings: false,
                query_strings: "none",
            }
        } else {
            let fmax = f.flatten().unwrap_or(0);
            let mmax = m.flatten().unwrap_or(0);
            // A stored lifetime of 0 would disable caching (and the cache key with it): a page
            // revalidated on every request keeps a ceiling of one second.
            let max = fmax.max(mmax).max(1);
            let default = match m {
                Some(Some(t)) => t,
                Some(None) => 0,
                None => fmax,
            };
            let only_fingerprinted = m.is_none();
            let name = if only_fingerprinted {
                format!("{}-fingerprinted-{max}", self.opts.name)
            } else if default == max || fingerprinted.is_none() {
                format!("{}-pages-{default}-{max}", self.opts.name)
            } else {
                format!("{}-mixed-{default}-{max}", self.opts.name)
            };
            CachePolicy {
                name,
                min: 0,
                default,
                max,
                encodings: true,
                query_strings: if only_fingerprinted { "none" } else { "all" },
            }
        };
        let name = p.name.clone();
        if !self.policies.iter().any(|x| x.name == name) {
            self.policies.push(p);
        }
        name
    }

    /// The response-headers policy for `[serve.headers]` with a rule's own headers over them.
    fn headers_policy(&mut self, own: &BTreeMap<String, String>) -> String {
        let mut all = self.base_headers.clone();
        for (k, v) in own {
            if v.is_empty() {
                all.remove(k);
            } else {
                all.insert(k.clone(), v.clone());
            }
        }
        let candidate = strip_name(&headers_policy_config("", &all));
        if let Some((n, _)) = self
            .headers_policies
            .iter()
            .find(|(_, c)| strip_name(c) == candidate)
        {
            return n.clone();
        }
        let name = if self.headers_policies.is_empty() {
            format!("{}-headers", self.opts.name)
        } else {
            format!(
                "{}-headers-{}",
                self.opts.name,
                self.headers_policies.len() + 1
            )
        };
        let config = headers_policy_config(&name, &all);
        self.headers_policies.push((name.clone(), config));
        name
    }
}

fn strip_name(c: &Node) -> Node {
    match c {
        Node::Obj(m) => Node::Obj(m.iter().filter(|(k, _)| *k != "Name").cloned().collect()),
        n => n.clone(),
    }
}

/// A `ResponseHeadersPolicyConfig` adding `headers` where the origin did not send them: the
/// security headers CloudFront models in their own settings, the rest as custom headers.
pub fn headers_policy_config(name: &str, headers: &BTreeMap<String, String>) -> Node {
    let mut security: Vec<(&'static str, Node)> = Vec::new();
    let mut custom: Vec<Node> = Vec::new();
    let no_override = || ("Override", Node::Bool(false));
    for (k, v) in headers {
        let lower = k.to_ascii_lowercase();
        let v = v.trim();
        match lower.as_str() {
            "x-content-type-options" if v.eq_ignore_ascii_case("nosniff") => {
                security.push(("ContentTypeOptions", Node::Obj(vec![no_override()])));
            }
            "x-frame-options"
                if v.eq_ignore_ascii_case("deny") || v.eq_ignore_ascii_case("sameorigin") =>
            {
                security.push((
                    "FrameOptions",
                    Node::Obj(vec![
                        no_override(),
                        ("FrameOption", Node::str(v.to_ascii_uppercase())),
                    ]),
                ));
            }
            "referrer-policy" if REFERRER_POLICIES.contains(&v.to_ascii_lowercase().as_str()) => {
                security.push((
                    "ReferrerPolicy",
                    Node::Obj(vec![
                        no_override(),
                        ("ReferrerPolicy", Node::str(v.to_ascii_lowercase())),
                    ]),
                ));
            }
            "content-security-policy" => security.push((
                "ContentSecurityPolicy",
                Node::Obj(vec![no_override(), ("ContentSecurityPolicy", Node::str(v))]),
            )),
            "strict-transport-security" if hsts(v).is_some() => {
                let (age, sub, preload) = hsts(v).unwrap_or_default();
                security.push((
                    "StrictTransportSecurity",
                    Node::Obj(vec![
                        no_override(),
                        ("IncludeSubdomains", Node::Bool(sub)),
                        ("Preload", Node::Bool(preload)),
                        ("AccessControlMaxAgeSec", Node::Int(age as i64)),
                    ]),
                ));
            }
            _ => custom.push(Node::Obj(vec![
                ("Header", Node::str(k)),
                ("Value", Node::str(v)),
                no_override(),
            ])),
        }
    }
    // The model's order of the security settings.
    let order = [
        "XSSProtection",
        "FrameOptions",
        "ReferrerPolicy",
        "ContentSecurityPolicy",
        "ContentTypeOptions",
        "StrictTransportSecurity",
    ];
    security.sort_by_key(|(k, _)| order.iter().position(|o| o == k));
    let mut m = vec![
        (
            "Comment",
            Node::str("staleguard cdn-config: [serve.headers], where the origin sent none"),
        ),
        ("Name", Node::str(name)),
    ];
    if !security.is_empty() {
        m.push(("SecurityHeadersConfig", Node::Obj(security)));
    }
    m.push((
        "CustomHeadersConfig",
        Node::items("ResponseHeadersPolicyCustomHeader", custom),
    ));
    Node::Obj(m)
}

const REFERRER_POLICIES: &[&str] = &[
    "no-referrer",
    "no-referrer-when-downgrade",
    "origin",
    "origin-when-cross-origin",
    "same-origin",
    "strict-origin",
    "strict-origin-when-cross-origin",
    "unsafe-url",
];

/// `max-age=N; includeSubDomains; preload` as its three settings.
fn hsts(v: &str) -> Option<(u64, bool, bool)> {
    let mut age = None;
    let (mut sub, mut preload) = (false, false);
    for part in v.split(';').map(str::trim).filter(|p| !p.is_empty()) {
        let lower = part.to_ascii_lowercase();
        if let Some(n) = lower.strip_prefix("max-age=") {
            age = n.trim_matches('"').parse().ok();
        } else if lower == "includesubdomains" {
            sub = true;
        } else if lower == "preload" {
            preload = true;
        } else {
            return None;
        }
    }
    age.map(|a| (a, sub, preload))
}

/// The bundle for a plan.
pub fn render(plan: &Plan, opts: &Options) -> Bundle {
    let mut b = Builder {
        opts,
        policies: Vec::new(),
        headers_policies: Vec::new(),
        base_headers: plan.headers.clone(),
    };
    let mut warnings = Vec::new();
    let mut behaviours: Vec<Behaviour> = Vec::new();

    // Mutable look-alikes of fingerprinted names, before the fingerprinted patterns: the page policy
    // of the first rule that selects them (the defaults when none does).
    let mutable_rule = plan
        .rules
        .iter()
        .find(|r| matches!(r.select, Select::Mutable | Select::All))
        .expect("the plan ends with the defaults");
    let fingerprinted_rule = plan
        .rules
        .iter()
        .find(|r| matches!(r.select, Select::Fingerprinted | Select::All))
        .expect("the plan ends with the defaults");
    for u in &plan.not_fingerprinted {
        let policy = b.policy(None, Some(&mutable_rule.mutable.1));
        let headers_policy = b.headers_policy(&mutable_rule.headers);
        behaviours.push(Behaviour {
            pattern: Some(u.clone()),
            policy,
            headers_policy,
            mutable: true,
            source: format!("{u} (a page named like a fingerprinted file)"),
        });
    }
    // The route globs, in order.
    for r in &plan.rules {
        let Select::Path { glob, .. } = &r.select else {
            continue;
        };
        let (pats, wider) = patterns(glob);
        if wider {
            warnings.push(format!(
                "[[routes]] `{glob}` becomes CloudFront pattern(s) {} which match more paths (CloudFront's `*` crosses `/`, a class becomes `?`); the origin's Cache-Control still decides each response's lifetime",
                pats.join(", ")
            ));
        }
        let own = r.fingerprinted.0 == r.mutable.0;
        let policy = if own {
            b.policy(None, Some(&r.mutable.1))
        } else {
            b.policy(Some(&r.fingerprinted.1), Some(&r.mutable.1))
        };
        let headers_policy = b.headers_policy(&r.headers);
        for p in pats {
            behaviours.push(Behaviour {
                pattern: Some(p),
                policy: policy.clone(),
                headers_policy: headers_policy.clone(),
                mutable: true,
                source: format!("[[routes]] {glob}"),
            });
        }
    }
    // Fingerprinted files.
    let fp_policy = b.policy(Some(&fingerprinted_rule.fingerprinted.1), None);
    let fp_headers = b.headers_policy(&fingerprinted_rule.headers);
    for g in &plan.fingerprint_globs {
        behaviours.push(Behaviour {
            pattern: Some(g.clone()),
            policy: fp_policy.clone(),
            headers_policy: fp_headers.clone(),
            mutable: false,
            source: "fingerprinted files".into(),
        });
    }
    // Everything else: pages.
    let default_policy = b.policy(None, Some(&mutable_rule.mutable.1));
    let default_headers_policy = b.headers_policy(&mutable_rule.headers);
    behaviours.push(Behaviour {
        pattern: None,
        policy: default_policy,
        headers_policy: default_headers_policy,
        mutable: true,
        source: "default (pages and other mutable files)".into(),
    });
    // A pattern listed twice would be refused; the first one wins, as in the route table.
    let mut seen = std::collections::BTreeSet::new();
    behaviours.retain(|x| x.pattern.as_ref().is_none_or(|p| seen.insert(p.clone())));
    if behaviours.len() - 1 > BEHAVIOUR_QUOTA {
        warnings.push(format!(
            "{} cache behaviours: above CloudFront's default quota of {BEHAVIOUR_QUOTA} per distribution; ask AWS for more, or merge route globs",
            behaviours.len() - 1
        ));
    }
    // Headers policies no behaviour uses (the base one when every rule has its own) are left out.
    b.headers_policies
        .retain(|(n, _)| behaviours.iter().any(|x| &x.headers_policy == n));

    let oac_name = format!("{}-s3", opts.name);
    let (origin, oac, root_object) = match &opts.origin {
        Origin::Custom { host, port } => {
            if host == "127.0.0.1" || host == "::1" || host == "localhost" || host == "0.0.0.0" {
                warnings.push(format!(
                    "the origin `{host}` is a loopback address CloudFront cannot reach: pass --origin http://PUBLIC-HOST:PORT (or set [verify] origin-url)"
                ));
            }
            (
                Node::Obj(vec![
                    ("Id", Node::str(ORIGIN_ID)),
                    ("DomainName", Node::str(host)),
                    ("OriginPath", Node::str("")),
                    ("CustomHeaders", Node::items("OriginCustomHeader", vec![])),
                    (
                        "CustomOriginConfig",
                        Node::Obj(vec![
                            ("HTTPPort", Node::Int(*port as i64)),
                            ("HTTPSPort", Node::Int(443)),
                            ("OriginProtocolPolicy", Node::str("http-only")),
                            (
                                "OriginSslProtocols",
                                Node::items("SslProtocol", vec![Node::str("TLSv1.2")]),
                            ),
                            ("OriginReadTimeout", Node::Int(30)),
                            ("OriginKeepaliveTimeout", Node::Int(5)),
                        ]),
                    ),
                    ("ConnectionAttempts", Node::Int(3)),
                    ("ConnectionTimeout", Node::Int(10)),
                    (
                        "OriginShield",
                        Node::Obj(vec![("Enabled", Node::Bool(false))]),
                    ),
                ]),
                None,
                "",
            )
        }
        Origin::S3 {
            bucket,
            region,
            prefix,
        } => (
            Node::Obj(vec![
                ("Id", Node::str(ORIGIN_ID)),
                (
                    "DomainName",
                    Node::str(format!("{bucket}.s3.{region}.amazonaws.com")),
                ),
                (
                    "OriginPath",
                    Node::str(if prefix.is_empty() {
                        String::new()
                    } else {
                        format!("/{prefix}")
                    }),
                ),
                ("CustomHeaders", Node::items("OriginCustomHeader", vec![])),
                (
                    "S3OriginConfig",
                    Node::Obj(vec![("OriginAccessIdentity", Node::str(""))]),
                ),
                ("ConnectionAttempts", Node::Int(3)),
                ("ConnectionTimeout", Node::Int(10)),
                (
                    "OriginShield",
                    Node::Obj(vec![("Enabled", Node::Bool(false))]),
                ),
                ("OriginAccessControlId", Node::str(&oac_name)),
            ]),
            Some(Node::Obj(vec![
                ("Name", Node::str(&oac_name)),
                (
                    "Description",
                    Node::str(format!("staleguard: CloudFront reads s3://{bucket}")),
                ),
                ("SigningProtocol", Node::str("sigv4")),
                ("SigningBehavior", Node::str("always")),
                ("OriginAccessControlOriginType", Node::str("s3")),
            ])),
            "index.html",
        ),
    };

    let behaviour_node = |x: &Behaviour| {
        let mut m: Vec<(&'static str, Node)> = Vec::new();
        if let Some(p) = &x.pattern {
            m.push(("PathPattern", Node::str(p)));
        }
        m.extend([
            ("TargetOriginId", Node::str(ORIGIN_ID)),
            ("TrustedSigners", trusted()),
            ("TrustedKeyGroups", trusted()),
            ("ViewerProtocolPolicy", Node::str("redirect-to-https")),
            (
                "AllowedMethods",
                Node::Obj(vec![
                    ("Quantity", Node::Int(3)),
                    (
                        "Items",
                        Node::List("Method", ["GET", "HEAD", "OPTIONS"].map(Node::str).to_vec()),
                    ),
                    (
                        "CachedMethods",
                        Node::items("Method", ["GET", "HEAD"].map(Node::str).to_vec()),
                    ),
                ]),
            ),
            ("SmoothStreaming", Node::Bool(false)),
            ("Compress", Node::Bool(true)),
            (
                "LambdaFunctionAssociations",
                Node::items("LambdaFunctionAssociation", vec![]),
            ),
            (
                "FunctionAssociations",
                Node::items("FunctionAssociation", vec![]),
            ),
            ("FieldLevelEncryptionId", Node::str("")),
            ("CachePolicyId", Node::str(&x.policy)),
            ("ResponseHeadersPolicyId", Node::str(&x.headers_policy)),
        ]);
        Node::Obj(m)
    };
    let (default, ordered): (Vec<&Behaviour>, Vec<&Behaviour>) =
        behaviours.iter().partition(|x| x.pattern.is_none());
    let error_ttls = vec![
        (404, ERROR_TTL_404),
        (500, ERROR_TTL_5XX),
        (502, ERROR_TTL_5XX),
        (503, ERROR_TTL_5XX),
        (504, ERROR_TTL_5XX),
    ];
    let errors: Vec<Node> = error_ttls
        .iter()
        .map(|(code, ttl)| {
            let mut m = vec![("ErrorCode", Node::Int(*code as i64))];
            if *code == 404 && !plan.not_found_page.is_empty() {
                m.push((
                    "ResponsePagePath",
                    Node::str(format!("/{}", plan.not_found_page.trim_start_matches('/'))),
                ));
                m.push(("ResponseCode", Node::str("404")));
            }
            m.push(("ErrorCachingMinTTL", Node::Int(*ttl as i64)));
            Node::Obj(m)
        })
        .collect();
    let aliases = if opts.certificate.is_some() {
        opts.aliases.clone()
    } else {
        if !opts.aliases.is_empty() {
            warnings.push(format!(
                "aliases {} left out: CloudFront serves an alternate domain name only with a certificate (pass --certificate arn:aws:acm:us-east-1:…)",
                opts.aliases.join(", ")
            ));
        }
        Vec::new()
    };
    let certificate = match &opts.certificate {
        Some(arn) => Node::Obj(vec![
            ("CloudFrontDefaultCertificate", Node::Bool(false)),
            ("ACMCertificateArn", Node::str(arn)),
            ("SSLSupportMethod", Node::str("sni-only")),
            ("MinimumProtocolVersion", Node::str("TLSv1.2_2021")),
        ]),
        None => Node::Obj(vec![
            ("CloudFrontDefaultCertificate", Node::Bool(true)),
            ("MinimumProtocolVersion", Node::str("TLSv1")),
        ]),
    };
    let mut dist = vec![
        ("CallerReference", Node::str(&opts.caller_reference)),
        (
            "Aliases",
            Node::items("CNAME", aliases.iter().map(Node::str).collect()),
        ),
        ("DefaultRootObject", Node::str(root_object)),
        ("Origins", Node::items("Origin", vec![origin])),
        ("OriginGroups", Node::items("OriginGroup", vec![])),
        ("DefaultCacheBehavior", behaviour_node(default[0])),
        (
            "CacheBehaviors",
            Node::items(
                "CacheBehavior",
                ordered.iter().map(|x| behaviour_node(x)).collect(),
            ),
        ),
        (
            "CustomErrorResponses",
            Node::items("CustomErrorResponse", errors),
        ),
        (
            "Comment",
            Node::str("staleguard cdn-config: from [[routes]], [serve] and the manifest"),
        ),
        ("PriceClass", Node::str("PriceClass_All")),
        ("Enabled", Node::Bool(true)),
        ("ViewerCertificate", certificate),
        (
            "Restrictions",
            Node::Obj(vec![(
                "GeoRestriction",
                Node::Obj(vec![
                    ("RestrictionType", Node::str("none")),
                    ("Quantity", Node::Int(0)),
                ]),
            )]),
        ),
        ("HttpVersion", Node::str("http2and3")),
        ("IsIPV6Enabled", Node::Bool(true)),
    ];
    if let Some(h) = &opts.tag_header {
        dist.push((
            "CacheTagConfig",
            Node::Obj(vec![("HeaderName", Node::str(h))]),
        ));
    }
    Bundle {
        policies: b.policies,
        headers_policies: b.headers_policies,
        origin_access_control: oac,
        behaviours,
        distribution: Node::Obj(dist),
        error_ttls,
        tag_header: opts.tag_header.clone(),
        warnings,
    }
}

fn trusted() -> Node {
    Node::Obj(vec![
        ("Enabled", Node::Bool(false)),
        ("Quantity", Node::Int(0)),
    ])
}

#[cfg(test)]
mod tests {
    use std::collections::BTreeMap;

    use staleguard_core::config::ServeConfig;
    use staleguard_core::manifest::{Manifest, ManifestEntry};
    use staleguard_core::routes::RouteRule;

    use super::check::{Live, compare};
    use super::*;

    fn entry(path: &str, mutable: bool) -> ManifestEntry {
        crate::test_entry(path, mutable, false, false)
    }

    fn rule(pattern: &str, cc: Option<&str>) -> RouteRule {
        RouteRule {
            pattern: pattern.into(),
            cache_control: cc.map(str::to_string),
            headers: BTreeMap::new(),
            tags: Vec::new(),
        }
    }

    fn bundle(routes: &[RouteRule]) -> Bundle {
        let files: BTreeMap<String, ManifestEntry> = [
            ("css/site.css", entry("css/site.0123456789ab.css", false)),
            ("index.html", entry("index.html", true)),
            (
                "archive.202612031200.html",
                entry("archive.202612031200.html", true),
            ),
        ]
        .into_iter()
        .map(|(k, v)| (k.to_string(), v))
        .collect();
        let plan = Plan::new(
            routes,
            &ServeConfig::default(),
            &Manifest::new("/".into(), files),
            crate::Origin::parse("http://origin.example.com:8080").unwrap(),
            vec![],
        );
        render(
            &plan,
            &Options {
                name: "sg".into(),
                origin: Origin::Custom {
                    host: "origin.example.com".into(),
                    port: 8080,
                },
                aliases: vec![],
                certificate: None,
                tag_header: Some("Surrogate-Key".into()),
                caller_reference: "ref".into(),
            },
        )
    }

    #[test]
    fn globs_become_cloudfront_patterns() {
        for (glob, want, wider) in [
            ("docs/**", vec!["/docs/*"], false),
            ("blog/*.html", vec!["/blog/*.html"], true),
            ("**/*.json", vec!["/*.json"], true),
            ("{a,b}/**", vec!["/a/*", "/b/*"], false),
            ("img/[ab].png", vec!["/img/?.png"], true),
            ("robots.txt", vec!["/robots.txt"], false),
        ] {
            let (p, w) = patterns(glob);
            assert_eq!(
                (p, w),
                (want.iter().map(|s| s.to_string()).collect(), wider),
                "{glob}"
            );
        }
        assert!(pattern_matches("/docs/*", "/docs/a/b.html"));
        assert!(pattern_matches(
            "*.????????????.css",
            "/css/site.0123456789ab.css"
        ));
        assert!(!pattern_matches("*.????????????.css", "/css/site.css"));
        assert!(pattern_matches("/a?c", "/abc") && !pattern_matches("/a?c", "/abbc"));
    }

    #[test]
    fn every_rule_kind_gets_a_policy_that_never_holds_a_page_longer_than_its_route() {
        let b = bundle(&[
            rule("docs/**", Some("public, max-age=0, s-maxage=60")),
            rule("api/*", Some("no-store")),
            rule("private/**", Some("private, max-age=600")),
        ]);
        let policy = |pattern: Option<&str>| {
            let x = b
                .behaviours
                .iter()
                .find(|x| x.pattern.as_deref() == pattern)
                .unwrap_or_else(|| panic!("{pattern:?}"));
            b.policies
                .iter()
                .find(|p| p.name == x.policy)
                .unwrap()
                .clone()
        };
        let docs = policy(Some("/docs/*"));
        assert_eq!((docs.min, docs.default, docs.max), (0, 60, 60));
        assert_eq!(docs.query_strings, "all");
        for pass in [policy(Some("/api/*")), policy(Some("/private/*"))] {
            assert_eq!((pass.max, pass.encodings), (0, false), "{pass:?}");
        }
        let css = policy(Some("*.????????????.css"));
        assert_eq!((css.min, css.max, css.encodings), (0, 31_536_000, true));
        assert_eq!(css.query_strings, "none");
        // The mutable look-alike is a page, before the fingerprinted patterns.
        let look = policy(Some("/archive.202612031200.html"));
        assert_eq!((look.default, look.max), (0, 1));
        let pos = |p: &str| {
            b.behaviours
                .iter()
                .position(|x| x.pattern.as_deref() == Some(p))
        };
        assert!(
            pos("/archive.202612031200.html") < pos("*.????????????.html").or(Some(usize::MAX))
        );
        let pages = policy(None);
        assert_eq!((pages.min, pages.default, pages.max), (0, 0, 1));
        // Every policy: MinTTL 0 (the origin's Cache-Control decides).
        assert!(b.policies.iter().all(|p| p.min == 0));
        assert_eq!(b.tag_header.as_deref(), Some("Surrogate-Key"));
        let xml = b.distribution.to_xml("DistributionConfig");
        assert!(
            xml.contains("<CacheTagConfig><HeaderName>Surrogate-Key</HeaderName></CacheTagConfig>")
        );
    }

    #[test]
    fn security_headers_use_their_own_settings_and_never_override_the_origin() {
        let h: BTreeMap<String, String> = [
            (
                "Strict-Transport-Security",
                "max-age=63072000; includeSubDomains; preload",
            ),
            ("X-Content-Type-Options", "nosniff"),
            ("X-Frame-Options", "sameorigin"),
            ("Referrer-Policy", "strict-origin-when-cross-origin"),
            ("Permissions-Policy", "camera=()"),
        ]
        .into_iter()
        .map(|(k, v)| (k.to_string(), v.to_string()))
        .collect();
        let c = headers_policy_config("h", &h).plain();
        let s = &c["SecurityHeadersConfig"];
        assert_eq!(
            s["StrictTransportSecurity"]["AccessControlMaxAgeSec"],
            "63072000"
        );
        assert_eq!(s["StrictTransportSecurity"]["Preload"], "true");
        assert_eq!(s["FrameOptions"]["FrameOption"], "SAMEORIGIN");
        assert_eq!(
            s["ReferrerPolicy"]["ReferrerPolicy"],
            "strict-origin-when-cross-origin"
        );
        let custom = c["CustomHeadersConfig"]["Items"].as_array().unwrap();
        assert_eq!(custom.len(), 1);
        assert_eq!(custom[0]["Header"], "Permissions-Policy");
        assert!(!c.to_string().contains("\"Override\":\"true\""));
    }

    /// The bundle as the API would answer it, policies under made-up ids.
    fn live_of(b: &Bundle) -> Live {
        let mut ids = BTreeMap::new();
        let mut live = Live::default();
        for (i, p) in b.policies.iter().enumerate() {
            ids.insert(p.name.clone(), format!("cp{i}"));
            live.policies.insert(format!("cp{i}"), p.config().plain());
        }
        for (i, (n, c)) in b.headers_policies.iter().enumerate() {
            ids.insert(n.clone(), format!("rh{i}"));
            live.headers_policies.insert(format!("rh{i}"), c.plain());
        }
        live.distribution =
            node::from_xml(&b.distribution_with(&ids).to_xml("DistributionConfig")).unwrap();
        live
    }

    #[test]
    fn check_tells_a_stale_risk_from_drift() {
        let b = bundle(&[rule("docs/**", Some("public, max-age=0, s-maxage=60"))]);
        let live = live_of(&b);
        assert_eq!(
            compare(&b, &live),
            vec![],
            "the bundle itself is what it implies"
        );

        let risky = |f: &[crate::check::Finding]| f.iter().filter(|f| f.stale_risk).count();
        // A page policy with a day's MinTTL.
        let mut l = live.clone();
        let id = l.distribution["DefaultCacheBehavior"]["CachePolicyId"]
            .as_str()
            .unwrap()
            .to_string();
        l.policies.get_mut(&id).unwrap()["MinTTL"] = "86400".into();
        let f = compare(&b, &l);
        assert!(risky(&f) >= 1, "{f:?}");
        // The docs behaviour removed: its paths fall to the default (shorter): drift only.
        let mut l = live.clone();
        let items = l.distribution["CacheBehaviors"]["Items"]
            .as_array_mut()
            .unwrap();
        items.retain(|x| x["PathPattern"] != "/docs/*");
        let f = compare(&b, &l);
        assert_eq!((f.len(), risky(&f)), (1, 0), "{f:?}");
        // An extra behaviour holding pages a day (legacy TTLs).
        let mut l = live.clone();
        let mut extra = l.distribution["DefaultCacheBehavior"].clone();
        let m = extra.as_object_mut().unwrap();
        m.remove("CachePolicyId");
        m.insert("PathPattern".into(), "/news/*".into());
        m.insert("MinTTL".into(), "0".into());
        m.insert("DefaultTTL".into(), "86400".into());
        l.distribution["CacheBehaviors"]["Items"]
            .as_array_mut()
            .unwrap()
            .insert(0, extra);
        let f = compare(&b, &l);
        assert!(risky(&f) >= 1, "{f:?}");
        // Errors cached 5 minutes; the tag header gone.
        let mut l = live.clone();
        l.distribution["CustomErrorResponses"]["Items"][0]["ErrorCachingMinTTL"] = "300".into();
        l.distribution
            .as_object_mut()
            .unwrap()
            .remove("CacheTagConfig");
        let f = compare(&b, &l);
        assert_eq!(risky(&f), 2, "{f:?}");
        // Another origin: drift.
        let mut l = live;
        l.distribution["Origins"]["Items"][0]["DomainName"] = "other.example.com".into();
        let f = compare(&b, &l);
        assert_eq!((f.len(), risky(&f)), (1, 0), "{f:?}");
    }
}
