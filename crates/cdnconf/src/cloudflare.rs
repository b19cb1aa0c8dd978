//! The Cloudflare target: the body of `PUT /zones/{zone_id}/rulesets/phases/http_request_cache_settings/entrypoint`
//! (the zone's Cache Rules, Rulesets API) from the [`Plan`].
//!
//! - **Precedence**: staleguard's table is first match wins; Cloudflare applies *every* matching
//!   cache rule in order, a later rule's value winning for each setting it sets. The rules are
//!   emitted in **reverse** (the built-in defaults first, `[[routes]]` #1 last), and every rule that
//!   makes a response eligible sets every setting this target uses, so the last matching rule, the
//!   table's first match, decides all of them. Exclusive expressions (each rule `and not` every
//!   earlier one) would say the same at a quadratic length against the 4,096-character limit of an
//!   expression. A bypass rule sets `cache: false` only: the browser TTL of the rules before it
//!   (respect the origin) still applies.
//! - **Edge TTL: the origin's**. Every eligible rule is `cache: true` (HTML too, which Cloudflare does
//!   not cache by default) with `edge_ttl` and `browser_ttl` `respect_origin`. The origin
//!   (`staleguard serve`, or the object metadata `staleguard deploy` wrote) sends each URL exactly the
//!   `Cache-Control` of the route that matched it, knowing from the manifest which files are
//!   fingerprinted, so Cloudflare's lifetime is the route's (`s-maxage`, else `max-age`; `no-cache`
//!   stored and revalidated every time) and a mutable look-alike (`/archive.202612031200.html`) gets
//!   the page's, never a year. Each rule's description names the TTL. Not `override_origin`:
//!   Cloudflare's minimum override is 2 h on Free and 1 h on Pro, so a 60 s page would be refused
//!   or held for hours there; an override also ignores the origin's `no-store` on 404s and 500s; and
//!   a URL a rule expression misses would get a later rule's override instead of its own header.
//! - **Stale content**: `stale-while-revalidate` (grace > 0) serves stale while updating; otherwise
//!   `serve_stale.disable_stale_while_updating` (Cloudflare's default is to serve stale while it
//!   refreshes), so a `no-cache` page is never answered from a stale copy.
//! - `no-store` and `private` routes: `cache: false` (bypass).
//! - **Validators**: `respect_strong_etags` (the origin's ETag is the content hash: Cloudflare keeps it
//!   strong and conditional requests keep getting 304s).
//! - **Cache key**: the default key (host, path, query string) with `ignore_query_strings_order` and
//!   `cache_deception_armor` on every eligible rule, no cookies, no headers. Compressed variants are
//!   Cloudflare's own business: it asks the origin for compressed bodies and serves each client an
//!   encoding it accepts, so `Accept-Encoding` is not in the key (header keys are Enterprise-only
//!   anyway). The query string stays in the key: leaving it out (`custom_key.query_string`) is
//!   Enterprise-only, and a fingerprinted name never needs one (a stray `?v=` costs one miss).
//!   Armor goes on every rule, not only on fingerprinted URLs, so that telling those apart needs no
//!   regular expression (it only stops caching a response whose type contradicts its extension).
//! - **Expressions** use `http.request.uri.path` with `eq`, `in`, `starts_with()`, `ends_with()`,
//!   `len()`, `substring(…) contains`, `http.request.uri.path.extension eq ""` and `not`/`and`/`or`,
//!   available on every plan and case-sensitive like the route globs (not `wildcard`: its `*` crosses
//!   `/` and it ignores case). A glob they cannot say exactly (`?`, classes, a `*` in a folder, two `*`
//!   in a name) becomes `matches` with the glob's regex (Cloudflare runs the same Rust regex engine),
//!   and so does `@fingerprinted`/`@mutable` (the name form is a regex); `matches` needs a Business
//!   or Enterprise plan, which those rules' descriptions say. A route selects a URL as the origin
//!   resolves it: the path itself, a folder URL (`/docs/`) as its `index.html`, and with
//!   `[serve] clean-urls` an extension-less path as its `.html` page (the edge cannot know which of
//!   `about` or `about.html` the origin has, so it takes both; Varnish's VCL takes the page).
//! - **Not here**: the origin (Cloudflare's DNS record), `[serve.headers]` (the origin sends them and
//!   Cloudflare passes them on), purges (`staleguard invalidate` calls the API). Cloudflare purges by
//!   tag from `Cache-Tag`: the ruleset's description says so when `[serve] tag-header` is another.
//!   The number of cache rules a zone may have depends on its plan: one per route and one for the
//!   defaults.

use serde::Serialize;

use crate::{Edge, Plan, Rule, Select, glob};

/// The field every expression matches.
const PATH: &str = "http.request.uri.path";
/// What a description says of a rule that needs the `matches` operator.
const NEEDS_MATCHES: &str = " [uses `matches`: Business or Enterprise plan]";
/// The most alternatives a `{a,b}` glob expands to before it is matched as a regex instead.
const MAX_EXPANSIONS: usize = 64;

/// The ruleset body (pretty JSON, with a final newline).
pub fn render(plan: &Plan) -> String {
    let fingerprinted = fingerprinted(plan);
    let last = plan.rules.len().saturating_sub(1);
    let mut rules = Vec::new();
    for (i, rule) in plan.rules.iter().enumerate().rev() {
        let label = if i == last {
            "built-in defaults".to_string()
        } else {
            format!("[[routes]] #{} match = \"{}\"", i + 1, pattern(rule))
        };
        let fp = Settings::of(&rule.fingerprinted.1);
        let other = Settings::of(&rule.mutable.1);
        let selector = match &rule.select {
            Select::Path { glob, .. } => route(glob, plan.clean_urls),
            Select::All => Expr::True,
            Select::Fingerprinted => fingerprinted.clone(),
            Select::Mutable => Expr::not(fingerprinted.clone()),
        };
        match &rule.select {
            Select::Fingerprinted => {
                let what = effect("fingerprinted files", &rule.fingerprinted);
                rules.push(CacheRule::new(&label, &what, selector, fp));
            }
            Select::Mutable => {
                let what = effect("other files", &rule.mutable);
                rules.push(CacheRule::new(&label, &what, selector, other));
            }
            _ if fp == other => {
                let what = if rule.fingerprinted.0 == rule.mutable.0 {
                    effect("", &rule.mutable)
                } else {
                    format!(
                        "{}; {}",
                        effect("fingerprinted files", &rule.fingerprinted),
                        effect("other files", &rule.mutable)
                    )
                };
                rules.push(CacheRule::new(&label, &what, selector, other));
            }
            _ => {
                // Fingerprinted files differ: the rule for all, then the one that overrides it.
                let what = format!(
                    "{} (the next rule overrides it for fingerprinted files)",
                    effect("every file", &rule.mutable)
                );
                rules.push(CacheRule::new(&label, &what, selector.clone(), other));
                let what = effect("fingerprinted files", &rule.fingerprinted);
                let both = Expr::and([selector, fingerprinted.clone()]);
                rules.push(CacheRule::new(&label, &what, both, fp));
            }
        }
    }
    let mut description = String::from(
        "staleguard cdn-config --target cloudflare: [[routes]] and the built-in defaults in reverse \
         (the last matching rule wins here, the first in staleguard.toml)",
    );
    if !plan.tag_header.is_empty() && !plan.tag_header.eq_ignore_ascii_case("Cache-Tag") {
        description.push_str(&format!(
            "; Cloudflare purges by tag from `Cache-Tag`, not `{}`",
            plan.tag_header
        ));
    }
    let body = Ruleset { description, rules };
    let mut out = serde_json::to_string_pretty(&body).expect("plain data serialises");
    out.push('\n');
    out
}

/// `PUT …/entrypoint` body.
#[derive(Serialize)]
struct Ruleset {
    description: String,
    rules: Vec<CacheRule>,
}

/// One rule of the `http_request_cache_settings` phase.
#[derive(Serialize)]
struct CacheRule {
    description: String,
    expression: String,
    action: &'static str,
    action_parameters: Settings,
    enabled: bool,
}

impl CacheRule {
    fn new(label: &str, what: &str, expression: Expr, settings: Settings) -> CacheRule {
        let mut description = format!("staleguard {label}: {what}");
        if expression.uses_matches() {
            description.push_str(NEEDS_MATCHES);
        }
        CacheRule {
            description,
            expression: expression.render(),
            action: "set_cache_settings",
            action_parameters: settings,
            enabled: true,
        }
    }
}

/// `action_parameters` of `set_cache_settings`: everything a rule decides, so that a later rule
/// replaces an earlier one's settings whole.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
struct Settings {
    cache: bool,
    #[serde(skip_serializing_if = "Option::is_none")]
    edge_ttl: Option<Ttl>,
    #[serde(skip_serializing_if = "Option::is_none")]
    browser_ttl: Option<Ttl>,
    #[serde(skip_serializing_if = "Option::is_none")]
    serve_stale: Option<ServeStale>,
    #[serde(skip_serializing_if = "Option::is_none")]
    respect_strong_etags: Option<bool>,
    #[serde(skip_serializing_if = "Option::is_none")]
    cache_key: Option<CacheKey>,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
struct Ttl {
    mode: &'static str,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
struct ServeStale {
    disable_stale_while_updating: bool,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
struct CacheKey {
    ignore_query_strings_order: bool,
    cache_deception_armor: bool,
}

impl Settings {
    /// The settings for an edge behaviour: bypass, or eligible with the origin's lifetimes and stale
    /// content only where the route allows it.
    fn of(edge: &Edge) -> Settings {
        let stale = match edge {
            Edge::Pass => {
                return Settings {
                    cache: false,
                    edge_ttl: None,
                    browser_ttl: None,
                    serve_stale: None,
                    respect_strong_etags: None,
                    cache_key: None,
                };
            }
            Edge::Revalidate => false,
            Edge::Cache { grace, .. } => *grace > 0,
        };
        Settings {
            cache: true,
            edge_ttl: Some(Ttl {
                mode: "respect_origin",
            }),
            browser_ttl: Some(Ttl {
                mode: "respect_origin",
            }),
            serve_stale: Some(ServeStale {
                disable_stale_while_updating: !stale,
            }),
            respect_strong_etags: Some(true),
            cache_key: Some(CacheKey {
                ignore_query_strings_order: true,
                cache_deception_armor: true,
            }),
        }
    }
}

/// The rule's `match` as written.
fn pattern(rule: &Rule) -> &str {
    match &rule.select {
        Select::Path { glob, .. } => glob,
        Select::Fingerprinted => "@fingerprinted",
        Select::Mutable => "@mutable",
        Select::All => "@all",
    }
}

/// What a rule does to the files it names, for its description.
fn effect(files: &str, (cache_control, edge): &(String, Edge)) -> String {
    let what = match edge {
        Edge::Pass => "bypass".to_string(),
        Edge::Revalidate => "stored, revalidated on every request".to_string(),
        Edge::Cache { ttl, grace } => {
            let mut s = format!("edge TTL {ttl} s (the origin's Cache-Control)");
            if *grace > 0 {
                s.push_str(", stale while updating");
            }
            s
        }
    };
    let cc = cache_control.replace(['\n', '\r'], " ");
    if files.is_empty() {
        format!("`{cc}` -> {what}")
    } else {
        format!("{files} `{cc}` -> {what}")
    }
}

/// Fingerprinted URLs: the plan's regex, minus the mutable look-alikes.
fn fingerprinted(plan: &Plan) -> Expr {
    let re = Expr::Matches(plan.fingerprinted.clone());
    if plan.not_fingerprinted.is_empty() {
        re
    } else {
        Expr::and([re, Expr::not(Expr::In(plan.not_fingerprinted.clone()))])
    }
}

/// The URLs a route glob selects, as the origin resolves a URL to a file: the path itself, a folder
/// URL (`/docs/`) as its `index.html`, and with clean URLs an extension-less path as its `.html`.
fn route(glob: &str, clean_urls: bool) -> Expr {
    let glob = glob.trim_start_matches('/');
    let Some(globs) = expand(glob) else {
        return Expr::Matches(glob::to_regex(glob));
    };
    let mut any = Vec::new();
    for g in &globs {
        any.push(exact(g));
        let (dir, name) = match g.rsplit_once('/') {
            Some((d, n)) => (Some(d), n),
            None => (None, g.as_str()),
        };
        let sibling = |n: &str| match dir {
            Some(d) => format!("{d}/{n}"),
            None => n.to_string(),
        };
        // (A name that takes the empty one, `*`, has it already.)
        if name != "**" && !segment_matches(name, "") && segment_matches(name, "index.html") {
            any.push(exact(&sibling("")));
        }
        if clean_urls
            && let Some(stem) = name.strip_suffix(".html")
            && !stem.is_empty()
            && !stem.contains('.')
        {
            let page = exact(&sibling(stem));
            if stem.chars().any(is_meta) {
                // The stem may match what the origin would not take for a page: a name with a
                // dot, or nothing.
                any.push(Expr::and([
                    page,
                    Expr::NoExtension,
                    Expr::not(Expr::EndsWith("/".into())),
                ]));
            } else {
                any.push(page);
            }
        }
    }
    Expr::or(any)
}

/// Whether a glob's last segment takes `name`.
fn segment_matches(segment: &str, name: &str) -> bool {
    regex::Regex::new(&glob::to_regex(segment)).is_ok_and(|re| re.is_match(&format!("/{name}")))
}

/// Characters with a meaning in a glob.
fn is_meta(c: char) -> bool {
    matches!(c, '*' | '?' | '[' | ']' | '{' | '}' | '\\')
}

/// A glob without `{…}`: the expression that matches exactly its paths, with `matches` only where
/// the string functions cannot say it.
fn exact(glob: &str) -> Expr {
    functions(glob).unwrap_or_else(|| Expr::Matches(glob::to_regex(glob)))
}

/// The glob as string functions, for the shapes they say exactly: literal folders, then optionally
/// `**/`, then a literal name, `**`, or a name with one `*` (`*.html`, `app-*`, `a*z`).
fn functions(glob: &str) -> Option<Expr> {
    let segments: Vec<&str> = glob.split('/').collect();
    let (name, folders) = segments.split_last()?;
    let mut base = String::from("/");
    let mut deep = false;
    for s in folders {
        if *s == "**" && !deep {
            deep = true;
        } else if deep || s.chars().any(is_meta) {
            return None;
        } else {
            base.push_str(s);
            base.push('/');
        }
    }
    let below = if base == "/" {
        Expr::True
    } else {
        Expr::StartsWith(base.clone())
    };
    if *name == "**" {
        return Some(below);
    }
    if !name.chars().any(is_meta) {
        return Some(if deep {
            Expr::and([below, Expr::EndsWith(format!("/{name}"))])
        } else {
            Expr::Eq(format!("{base}{name}"))
        });
    }
    let (pre, suf) = name.split_once('*')?;
    if pre.chars().chain(suf.chars()).any(is_meta) {
        return None;
    }
    let ends = (!suf.is_empty()).then(|| Expr::EndsWith(suf.to_string()));
    if deep {
        // `**/pre*suf`: a name that starts with `pre` has no fixed position; one that ends with
        // `suf` (no `/` in it) is the end of the path.
        if !pre.is_empty() {
            return None;
        }
        return Some(Expr::and([below].into_iter().chain(ends)));
    }
    let n = base.len();
    let mut all = vec![if base.len() + pre.len() == 1 {
        Expr::True
    } else {
        Expr::StartsWith(format!("{base}{pre}"))
    }];
    all.extend(ends);
    all.push(Expr::NoSlashFrom(n));
    if !pre.is_empty() && !suf.is_empty() {
        // `pre` and `suf` must not overlap.
        all.push(Expr::LenAtLeast(n + pre.len() + suf.len()));
    }
    Some(Expr::and(all))
}

/// `{a,b}` expanded (nested too), as globset reads it; `None` for unbalanced braces or more than
/// [`MAX_EXPANSIONS`] alternatives (the caller matches the glob's regex instead).
fn expand(glob: &str) -> Option<Vec<String>> {
    let chars: Vec<char> = glob.chars().collect();
    let mut i = 0;
    let mut open = None;
    let mut depth = 0usize;
    let mut commas = Vec::new();
    while i < chars.len() {
        match chars[i] {
            '[' => {
                if let Some(end) = class_end(&chars, i) {
                    i = end;
                }
            }
            '{' => {
                if depth == 0 {
                    open = Some(i);
                }
                depth += 1;
            }
            ',' if depth == 1 => commas.push(i),
            '}' if depth > 0 => {
                depth -= 1;
                if depth == 0 {
                    let start = open?;
                    let head: String = chars[..start].iter().collect();
                    let tail: String = chars[i + 1..].iter().collect();
                    let mut bounds = vec![start];
                    bounds.extend(&commas);
                    bounds.push(i);
                    let mut out = Vec::new();
                    for w in bounds.windows(2) {
                        let alt: String = chars[w[0] + 1..w[1]].iter().collect();
                        out.extend(expand(&format!("{head}{alt}{tail}"))?);
                        if out.len() > MAX_EXPANSIONS {
                            return None;
                        }
                    }
                    return Some(out);
                }
            }
            _ => {}
        }
        i += 1;
    }
    (depth == 0).then(|| vec![glob.to_string()])
}

/// Where a `[…]` class opened at `i` closes, as [`glob::to_regex`] reads it (a `]` right after the
/// opening, or after `!`/`^`, is a member); `None` when it does not (a literal `[`).
fn class_end(chars: &[char], i: usize) -> Option<usize> {
    let mut j = i + 1;
    if matches!(chars.get(j), Some('!' | '^')) {
        j += 1;
    }
    let start = j;
    while j < chars.len() && (chars[j] != ']' || j == start) {
        j += 1;
    }
    (j < chars.len()).then_some(j)
}

/// A rule expression over the request path, in the subset of the Rules language this target uses.
#[derive(Debug, Clone, PartialEq, Eq)]
enum Expr {
    True,
    Eq(String),
    In(Vec<String>),
    StartsWith(String),
    EndsWith(String),
    /// A Rust regex, unanchored like `Regex::is_match`.
    Matches(String),
    /// No `/` from this byte of the path on.
    NoSlashFrom(usize),
    /// At least this many bytes.
    LenAtLeast(usize),
    /// The last segment has no extension.
    NoExtension,
    Not(Box<Expr>),
    And(Vec<Expr>),
    Or(Vec<Expr>),
}

impl Expr {
    fn not(e: Expr) -> Expr {
        Expr::Not(Box::new(e))
    }

    /// All of them (`true` for none).
    fn and(parts: impl IntoIterator<Item = Expr>) -> Expr {
        let mut all: Vec<Expr> = Vec::new();
        for p in parts {
            match p {
                Expr::True => {}
                Expr::And(v) => all.extend(v),
                p => all.push(p),
            }
        }
        match all.len() {
            0 => Expr::True,
            1 => all.remove(0),
            _ => Expr::And(all),
        }
    }

    /// Any of them (at least one).
    fn or(parts: impl IntoIterator<Item = Expr>) -> Expr {
        let mut any: Vec<Expr> = Vec::new();
        for p in parts {
            match p {
                Expr::True => return Expr::True,
                Expr::Or(v) => any.extend(v),
                p if any.contains(&p) => {}
                p => any.push(p),
            }
        }
        if any.len() == 1 {
            any.remove(0)
        } else {
            Expr::Or(any)
        }
    }

    fn uses_matches(&self) -> bool {
        match self {
            Expr::Matches(_) => true,
            Expr::Not(e) => e.uses_matches(),
            Expr::And(v) | Expr::Or(v) => v.iter().any(Expr::uses_matches),
            _ => false,
        }
    }

    fn render(&self) -> String {
        match self {
            Expr::True => "true".into(),
            Expr::Eq(s) => format!("{PATH} eq {}", quoted(s)),
            Expr::In(v) => {
                let list: Vec<String> = v.iter().map(|s| quoted(s)).collect();
                format!("{PATH} in {{{}}}", list.join(" "))
            }
            Expr::StartsWith(s) => format!("starts_with({PATH}, {})", quoted(s)),
            Expr::EndsWith(s) => format!("ends_with({PATH}, {})", quoted(s)),
            Expr::Matches(re) => format!("{PATH} matches {}", raw(re)),
            Expr::NoSlashFrom(n) => format!("not (substring({PATH}, {n}) contains \"/\")"),
            Expr::LenAtLeast(n) => format!("len({PATH}) ge {n}"),
            Expr::NoExtension => format!("{PATH}.extension eq \"\""),
            Expr::Not(e) => format!("not ({})", e.render()),
            Expr::And(v) => v.iter().map(Expr::group).collect::<Vec<_>>().join(" and "),
            Expr::Or(v) => v.iter().map(Expr::group).collect::<Vec<_>>().join(" or "),
        }
    }

    /// Rendered, in parentheses when it is compound.
    fn group(&self) -> String {
        match self {
            Expr::And(_) | Expr::Or(_) => format!("({})", self.render()),
            _ => self.render(),
        }
    }
}

/// A quoted string literal (`\"` and `\\` escaped).
fn quoted(s: &str) -> String {
    format!("\"{}\"", s.replace('\\', "\\\\").replace('"', "\\\""))
}

/// A raw string literal (`r"…"`, `r#"…"#`, …): no escapes, as Cloudflare recommends for a regex.
fn raw(s: &str) -> String {
    let mut hashes = String::new();
    while s.contains(&format!("\"{hashes}")) {
        hashes.push('#');
    }
    format!("r{hashes}\"{s}\"{hashes}")
}

#[cfg(test)]
mod tests {
    use std::collections::BTreeMap;

    use serde_json::Value;
    use staleguard_core::config::ServeConfig;
    use staleguard_core::manifest::{Manifest, ManifestEntry};
    use staleguard_core::routes::RouteRule;

    use super::*;
    use crate::Origin;

    // ---- A parser and evaluator for the expressions this target writes: any other field,
    // function or operator, an unbalanced parenthesis or an unclosed string fails the test.

    #[derive(Debug, Clone, PartialEq)]
    enum Tok {
        Word(String),
        Str(String),
        Int(i64),
        Punct(char),
    }

    fn tokens(s: &str) -> Result<Vec<Tok>, String> {
        let c: Vec<char> = s.chars().collect();
        let mut out = Vec::new();
        let mut i = 0;
        while i < c.len() {
            let ch = c[i];
            if ch == ' ' {
                i += 1;
            } else if ch == 'r' && matches!(c.get(i + 1), Some('"' | '#')) {
                let mut j = i + 1;
                let mut hashes = 0;
                while c.get(j) == Some(&'#') {
                    hashes += 1;
                    j += 1;
                }
                if c.get(j) != Some(&'"') {
                    return Err(format!("bad raw string at {i}"));
                }
                let close: String = std::iter::once('"')
                    .chain(std::iter::repeat_n('#', hashes))
                    .collect();
                let rest: String = c[j + 1..].iter().collect();
                let end = rest.find(&close).ok_or("unclosed raw string")?;
                out.push(Tok::Str(rest[..end].to_string()));
                i = j + 1 + rest[..end].chars().count() + close.chars().count();
            } else if ch == '"' {
                let mut v = String::new();
                let mut j = i + 1;
                loop {
                    match c.get(j) {
                        None => return Err("unclosed string".into()),
                        Some('"') => break,
                        Some('\\') => {
                            match c.get(j + 1) {
                                Some(e @ ('"' | '\\')) => v.push(*e),
                                _ => return Err("bad escape".into()),
                            }
                            j += 2;
                            continue;
                        }
                        Some(x) => v.push(*x),
                    }
                    j += 1;
                }
                out.push(Tok::Str(v));
                i = j + 1;
            } else if ch.is_ascii_digit() {
                let mut j = i;
                while j < c.len() && c[j].is_ascii_digit() {
                    j += 1;
                }
                let n: String = c[i..j].iter().collect();
                out.push(Tok::Int(n.parse().unwrap()));
                i = j;
            } else if ch.is_ascii_lowercase() {
                let mut j = i;
                while j < c.len() && (c[j].is_ascii_lowercase() || c[j] == '_' || c[j] == '.') {
                    j += 1;
                }
                out.push(Tok::Word(c[i..j].iter().collect()));
                i = j;
            } else if "(){},".contains(ch) {
                out.push(Tok::Punct(ch));
                i += 1;
            } else {
                return Err(format!("unexpected `{ch}`"));
            }
        }
        Ok(out)
    }

    #[derive(Debug, Clone)]
    enum Ast {
        True,
        Not(Box<Ast>),
        And(Box<Ast>, Box<Ast>),
        Or(Box<Ast>, Box<Ast>),
        /// A value, alone (a boolean function) or compared.
        Test(Operand, Option<(String, Rhs)>),
    }

    #[derive(Debug, Clone)]
    enum Operand {
        Path,
        Extension,
        StartsWith(String),
        EndsWith(String),
        Substring(i64),
        Len,
    }

    #[derive(Debug, Clone)]
    enum Rhs {
        Str(String),
        Int(i64),
        Set(Vec<String>),
    }

    struct Parser {
        t: Vec<Tok>,
        i: usize,
    }

    impl Parser {
        fn peek(&self) -> Option<&Tok> {
            self.t.get(self.i)
        }
        fn next(&mut self) -> Result<Tok, String> {
            let t = self.t.get(self.i).cloned().ok_or("unexpected end")?;
            self.i += 1;
            Ok(t)
        }
        fn expect(&mut self, p: char) -> Result<(), String> {
            match self.next()? {
                Tok::Punct(c) if c == p => Ok(()),
                t => Err(format!("expected `{p}`, got {t:?}")),
            }
        }
        fn word(&self, w: &str) -> bool {
            matches!(self.peek(), Some(Tok::Word(x)) if x == w)
        }
        fn or(&mut self) -> Result<Ast, String> {
            let mut a = self.and()?;
            while self.word("or") {
                self.i += 1;
                a = Ast::Or(Box::new(a), Box::new(self.and()?));
            }
            Ok(a)
        }
        fn and(&mut self) -> Result<Ast, String> {
            let mut a = self.unary()?;
            while self.word("and") {
                self.i += 1;
                a = Ast::And(Box::new(a), Box::new(self.unary()?));
            }
            Ok(a)
        }
        fn unary(&mut self) -> Result<Ast, String> {
            if self.word("not") {
                self.i += 1;
                return Ok(Ast::Not(Box::new(self.unary()?)));
            }
            if self.peek() == Some(&Tok::Punct('(')) {
                self.i += 1;
                let a = self.or()?;
                self.expect(')')?;
                return Ok(a);
            }
            if self.word("true") {
                self.i += 1;
                return Ok(Ast::True);
            }
            let v = self.value()?;
            let op = match self.peek() {
                Some(Tok::Word(w))
                    if ["eq", "in", "matches", "contains", "ge"].contains(&w.as_str()) =>
                {
                    let w = w.clone();
                    self.i += 1;
                    let rhs = match self.next()? {
                        Tok::Str(s) => Rhs::Str(s),
                        Tok::Int(n) => Rhs::Int(n),
                        Tok::Punct('{') => {
                            let mut set = Vec::new();
                            loop {
                                match self.next()? {
                                    Tok::Str(s) => set.push(s),
                                    Tok::Punct('}') => break,
                                    t => return Err(format!("bad set member {t:?}")),
                                }
                            }
                            Rhs::Set(set)
                        }
                        t => return Err(format!("bad operand {t:?}")),
                    };
                    Some((w, rhs))
                }
                _ => None,
            };
            Ok(Ast::Test(v, op))
        }
        fn value(&mut self) -> Result<Operand, String> {
            match self.next()? {
                Tok::Word(w) if w == PATH => Ok(Operand::Path),
                Tok::Word(w) if w == "http.request.uri.path.extension" => Ok(Operand::Extension),
                Tok::Word(f)
                    if ["starts_with", "ends_with", "substring", "len"].contains(&f.as_str()) =>
                {
                    self.expect('(')?;
                    match self.next()? {
                        Tok::Word(w) if w == PATH => {}
                        t => return Err(format!("{f}() of {t:?}")),
                    }
                    let v = match f.as_str() {
                        "len" => Operand::Len,
                        _ => {
                            self.expect(',')?;
                            match (f.as_str(), self.next()?) {
                                ("starts_with", Tok::Str(s)) => Operand::StartsWith(s),
                                ("ends_with", Tok::Str(s)) => Operand::EndsWith(s),
                                ("substring", Tok::Int(n)) => Operand::Substring(n),
                                (_, t) => return Err(format!("{f}() argument {t:?}")),
                            }
                        }
                    };
                    self.expect(')')?;
                    Ok(v)
                }
                t => Err(format!("unknown field or function {t:?}")),
            }
        }
    }

    fn parse(expr: &str) -> Result<Ast, String> {
        let mut p = Parser {
            t: tokens(expr)?,
            i: 0,
        };
        let a = p.or()?;
        if p.i != p.t.len() {
            return Err(format!("trailing {:?}", &p.t[p.i..]));
        }
        Ok(a)
    }

    #[derive(Debug, PartialEq)]
    enum Got {
        S(String),
        I(i64),
        B(bool),
    }

    fn eval(a: &Ast, path: &str) -> bool {
        match a {
            Ast::True => true,
            Ast::Not(x) => !eval(x, path),
            Ast::And(x, y) => eval(x, path) && eval(y, path),
            Ast::Or(x, y) => eval(x, path) || eval(y, path),
            Ast::Test(v, op) => {
                let last = path.rsplit('/').next().unwrap_or("");
                let v = match v {
                    Operand::Path => Got::S(path.into()),
                    Operand::Extension => Got::S(
                        last.rsplit_once('.')
                            .map(|(_, e)| e.to_ascii_lowercase())
                            .unwrap_or_default(),
                    ),
                    Operand::StartsWith(s) => Got::B(path.starts_with(s.as_str())),
                    Operand::EndsWith(s) => Got::B(path.ends_with(s.as_str())),
                    Operand::Substring(n) => Got::S(path.get(*n as usize..).unwrap_or("").into()),
                    Operand::Len => Got::I(path.len() as i64),
                };
                match (v, op) {
                    (Got::B(b), None) => b,
                    (Got::S(s), Some((o, Rhs::Str(r)))) if o == "eq" => s == *r,
                    (Got::S(s), Some((o, Rhs::Str(r)))) if o == "contains" => {
                        s.contains(r.as_str())
                    }
                    (Got::S(s), Some((o, Rhs::Str(r)))) if o == "matches" => {
                        regex::Regex::new(r).unwrap().is_match(&s)
                    }
                    (Got::S(s), Some((o, Rhs::Set(set)))) if o == "in" => set.contains(&s),
                    (Got::I(n), Some((o, Rhs::Int(r)))) if o == "ge" => n >= *r,
                    (v, op) => panic!("ill-typed test {v:?} {op:?}"),
                }
            }
        }
    }

    fn matches_path(expr: &str, path: &str) -> bool {
        eval(&parse(expr).unwrap_or_else(|e| panic!("{e}: {expr}")), path)
    }

    // ---- Fixtures.

    use crate::test_entry as entry;

    fn route(pattern: &str, cache_control: Option<&str>) -> RouteRule {
        RouteRule {
            pattern: pattern.into(),
            cache_control: cache_control.map(str::to_string),
            headers: BTreeMap::new(),
            tags: Vec::new(),
        }
    }

    fn manifest() -> Manifest {
        let files: BTreeMap<String, ManifestEntry> = [
            (
                "css/site.css",
                entry("css/site.0123456789ab.css", false, false, true),
            ),
            (
                "assets/app-BdtEMBbM.js",
                entry("assets/app-BdtEMBbM.js", false, true, false),
            ),
            (
                "archive.202612031200.html",
                entry("archive.202612031200.html", true, false, false),
            ),
            ("index.html", entry("index.html", true, false, false)),
            (
                "blog/index.html",
                entry("blog/index.html", true, false, false),
            ),
            (
                "blog/post.html",
                entry("blog/post.html", true, false, false),
            ),
            (
                "fonts/a.woff2",
                entry("fonts/a.0123456789ab.woff2", false, false, false),
            ),
        ]
        .into_iter()
        .map(|(k, v)| (k.to_string(), v))
        .collect();
        Manifest::new("/".into(), files)
    }

    /// Every kind of rule, then the defaults.
    fn routes() -> Vec<RouteRule> {
        let mut fonts = route("fonts/**", None);
        fonts
            .headers
            .insert("Access-Control-Allow-Origin".into(), "*".into());
        vec![
            route("account/**", Some("no-store")),
            route("private/*.html", Some("private, max-age=600")),
            route(
                "news/*",
                Some("public, max-age=0, s-maxage=60, stale-while-revalidate=30"),
            ),
            route("feed/**", Some("max-age=60, stale-while-revalidate=30")),
            route("/blog/*", Some("public, max-age=0, s-maxage=600")),
            fonts,
            route("docs/[a-z]*.txt", Some("public, max-age=300")),
            route(
                "@fingerprinted",
                Some("public, max-age=31536000, immutable"),
            ),
            route(
                "**/*.html",
                Some("public, max-age=0, s-maxage=300, stale-while-revalidate=60"),
            ),
        ]
    }

    fn plan(routes: &[RouteRule]) -> Plan {
        Plan::new(
            routes,
            &ServeConfig::default(),
            &manifest(),
            Origin::parse("http://127.0.0.1:8080").unwrap(),
            vec![],
        )
    }

    fn body(plan: &Plan) -> Value {
        serde_json::from_str(&render(plan)).expect("valid JSON")
    }

    /// The rules Cloudflare applies to a path, in order; the last one wins.
    fn applied<'a>(body: &'a Value, path: &str) -> Vec<&'a Value> {
        body["rules"]
            .as_array()
            .unwrap()
            .iter()
            .filter(|r| matches_path(r["expression"].as_str().unwrap(), path))
            .collect()
    }

    /// The staleguard rule that decides a path (first match, as the origin resolves the URL) and
    /// whether the file is fingerprinted, by globset, the plan's regex and the look-alike list.
    fn first_match(plan: &Plan, path: &str) -> (usize, bool) {
        let fp = regex::Regex::new(&plan.fingerprinted).unwrap();
        let is_fp = fp.is_match(path) && !plan.not_fingerprinted.iter().any(|n| n == path);
        let last = path.rsplit('/').next().unwrap();
        let mut served = vec![path.to_string()];
        if path.ends_with('/') {
            served.push(format!("{path}index.html"));
        }
        if plan.clean_urls && !last.is_empty() && !last.contains('.') {
            served.push(format!("{path}.html"));
        }
        for (i, rule) in plan.rules.iter().enumerate() {
            let hit = match &rule.select {
                Select::Path { glob, .. } => {
                    let m = globset::GlobBuilder::new(glob.trim_start_matches('/'))
                        .literal_separator(true)
                        .build()
                        .unwrap()
                        .compile_matcher();
                    served.iter().any(|p| m.is_match(&p[1..]))
                }
                Select::Fingerprinted => is_fp,
                Select::Mutable => !is_fp,
                Select::All => true,
            };
            if hit {
                return (i, is_fp);
            }
        }
        unreachable!("the defaults match everything")
    }

    const PATHS: &[&str] = &[
        "/",
        "/index.html",
        "/about",
        "/blog/",
        "/blog",
        "/blog/post.html",
        "/blog/post",
        "/blog/2024/deep.html",
        "/blog/2024/",
        "/archive.202612031200.html",
        "/archive.202612031200",
        "/css/site.0123456789ab.css",
        "/css/site.css",
        "/assets/app-BdtEMBbM.js",
        "/assets/",
        "/account/me.html",
        "/account/",
        "/account",
        "/private/a.html",
        "/private/",
        "/private/x/a.html",
        "/private/a",
        "/news/x",
        "/news/",
        "/news/x/y",
        "/feed/rss.xml",
        "/fonts/a.0123456789ab.woff2",
        "/fonts/b.woff2",
        "/docs/readme.txt",
        "/docs/Readme.txt",
        "/docs/x/readme.txt",
        "/docs/",
        "/other.txt",
        "/x.0123456789ab.html",
        "/q\"uote\\.html",
    ];

    #[test]
    fn the_last_matching_rule_is_the_first_match_of_the_route_table() {
        for clean_urls in [false, true] {
            let mut plan = plan(&routes());
            plan.clean_urls = clean_urls;
            let body = body(&plan);
            for path in PATHS {
                let (i, is_fp) = first_match(&plan, path);
                let rule = &plan.rules[i];
                let applied = applied(&body, path);
                let winner = applied
                    .last()
                    .unwrap_or_else(|| panic!("no rule for {path}"));
                let label = if i + 1 == plan.rules.len() {
                    "staleguard built-in defaults:".to_string()
                } else {
                    format!("staleguard [[routes]] #{} ", i + 1)
                };
                let desc = winner["description"].as_str().unwrap();
                assert!(
                    desc.starts_with(&label),
                    "{path} (clean URLs {clean_urls}): want {label}, got {desc}"
                );
                let edge = if is_fp {
                    &rule.fingerprinted.1
                } else {
                    &rule.mutable.1
                };
                // Every rule sets every setting: the winner's are the request's.
                let want = serde_json::to_value(Settings::of(edge)).unwrap();
                assert_eq!(winner["action_parameters"], want, "{path}");
            }
        }
    }

    #[test]
    fn a_mutable_look_alike_never_gets_a_long_edge_ttl() {
        let plan = plan(&routes());
        let body = body(&plan);
        let path = "/archive.202612031200.html";
        assert_eq!(plan.not_fingerprinted, [path]);
        let applied = applied(&body, path);
        let winner = applied.last().unwrap();
        let desc = winner["description"].as_str().unwrap();
        assert!(desc.contains("match = \"**/*.html\""), "{desc}");
        assert!(!desc.contains("31536000"), "{desc}");
        // No rule it matches but the catch-all defaults names the fingerprinted files or a year.
        for r in &applied {
            let d = r["description"].as_str().unwrap();
            if r["expression"] != "true" {
                assert!(!d.contains("@fingerprinted"), "{d}");
                assert!(!d.contains("immutable"), "{d}");
            }
        }
        // The route table agrees: the page's own rule, as a mutable file.
        let (i, is_fp) = first_match(&plan, path);
        assert!(!is_fp);
        assert_eq!(plan.rules[i].mutable.1, Edge::Cache { ttl: 300, grace: 0 });
        // And no rule anywhere overrides the origin's lifetime.
        for r in body["rules"].as_array().unwrap() {
            let p = &r["action_parameters"];
            for ttl in ["edge_ttl", "browser_ttl"] {
                assert!(
                    p[ttl].is_null() || p[ttl]["mode"] == "respect_origin",
                    "{r}"
                );
                assert!(p[ttl]["default"].is_null(), "{r}");
            }
        }
        // Its real fingerprinted neighbour is a fingerprinted file.
        let neighbour = super::tests::applied(&body, "/css/site.0123456789ab.css");
        let d = neighbour.last().unwrap()["description"].as_str().unwrap();
        assert!(d.contains("@fingerprinted"), "{d}");
    }

    #[test]
    fn the_json_is_the_rulesets_api_body() {
        let plan = plan(&routes());
        let body = body(&plan);
        assert!(
            body["description"]
                .as_str()
                .unwrap()
                .starts_with("staleguard cdn-config")
        );
        let rules = body["rules"].as_array().unwrap();
        // One rule per route and one for the defaults (no fingerprinted/mutable split is needed:
        // the settings depend on the edge behaviour only), in reverse.
        assert_eq!(rules.len(), plan.rules.len());
        assert!(
            rules[0]["description"]
                .as_str()
                .unwrap()
                .starts_with("staleguard built-in defaults: fingerprinted files")
        );
        assert_eq!(rules[0]["expression"], "true");
        let by_route = |n: usize| &rules[rules.len() - n];
        for r in rules {
            assert_eq!(r["action"], "set_cache_settings");
            assert_eq!(r["enabled"], true);
            let expr = r["expression"].as_str().unwrap();
            assert!(expr.len() <= 4096, "{expr}");
            parse(expr).unwrap_or_else(|e| panic!("{e}: {expr}"));
            let p = &r["action_parameters"];
            if p["cache"] == false {
                // A bypass sets nothing else.
                assert_eq!(p.as_object().unwrap().len(), 1, "{r}");
                continue;
            }
            assert_eq!(p["cache"], true);
            assert_eq!(p["edge_ttl"]["mode"], "respect_origin");
            assert_eq!(p["browser_ttl"]["mode"], "respect_origin");
            assert_eq!(p["respect_strong_etags"], true);
            assert_eq!(p["cache_key"]["ignore_query_strings_order"], true);
            assert_eq!(p["cache_key"]["cache_deception_armor"], true);
            assert!(p["cache_key"]["custom_key"].is_null(), "no cookies: {r}");
            assert!(p["serve_stale"]["disable_stale_while_updating"].is_boolean());
        }

        let expect_rule = |n: usize, expr: &str, desc: &str, params: Value| {
            let r = by_route(n);
            assert_eq!(r["expression"], expr, "#{n}");
            let d = r["description"].as_str().unwrap();
            assert!(d.contains(desc), "#{n}: {d}");
            assert_eq!(r["action_parameters"], params, "#{n}");
        };
        let bypass = serde_json::json!({ "cache": false });
        let eligible = |stale: bool| {
            serde_json::json!({
                "cache": true,
                "edge_ttl": { "mode": "respect_origin" },
                "browser_ttl": { "mode": "respect_origin" },
                "serve_stale": { "disable_stale_while_updating": !stale },
                "respect_strong_etags": true,
                "cache_key": { "ignore_query_strings_order": true, "cache_deception_armor": true },
            })
        };
        expect_rule(
            1,
            r#"starts_with(http.request.uri.path, "/account/")"#,
            "match = \"account/**\": `no-store` -> bypass",
            bypass.clone(),
        );
        expect_rule(
            2,
            r#"(starts_with(http.request.uri.path, "/private/") and ends_with(http.request.uri.path, ".html") and not (substring(http.request.uri.path, 9) contains "/")) or http.request.uri.path eq "/private/""#,
            "`private, max-age=600` -> bypass",
            bypass,
        );
        // s-maxage forbids serving stale, stale-while-revalidate or not.
        expect_rule(
            3,
            r#"starts_with(http.request.uri.path, "/news/") and not (substring(http.request.uri.path, 6) contains "/")"#,
            "edge TTL 60 s (the origin's Cache-Control)",
            eligible(false),
        );
        expect_rule(
            4,
            r#"starts_with(http.request.uri.path, "/feed/")"#,
            "edge TTL 60 s (the origin's Cache-Control), stale while updating",
            eligible(true),
        );
        expect_rule(
            5,
            r#"starts_with(http.request.uri.path, "/blog/") and not (substring(http.request.uri.path, 6) contains "/")"#,
            "match = \"/blog/*\": `public, max-age=0, s-maxage=600` -> edge TTL 600 s",
            eligible(false),
        );
        expect_rule(
            6,
            r#"starts_with(http.request.uri.path, "/fonts/")"#,
            "fingerprinted files `public, max-age=31536000, immutable` -> edge TTL 31536000 s (the origin's Cache-Control); other files `no-cache` -> stored, revalidated on every request",
            eligible(false),
        );
        expect_rule(
            7,
            r#"http.request.uri.path matches r"^/docs/[a-z][^/]*\.txt$""#,
            NEEDS_MATCHES,
            eligible(false),
        );
        expect_rule(
            8,
            r#"http.request.uri.path matches r"(?:\.[0-9a-f]{12}(\.[A-Za-z0-9]+)?$|^/assets/)" and not (http.request.uri.path in {"/archive.202612031200.html"})"#,
            "match = \"@fingerprinted\": fingerprinted files `public, max-age=31536000, immutable`",
            eligible(false),
        );
        assert!(
            by_route(8)["description"]
                .as_str()
                .unwrap()
                .ends_with(NEEDS_MATCHES)
        );
        expect_rule(
            9,
            r#"ends_with(http.request.uri.path, ".html") or ends_with(http.request.uri.path, "/")"#,
            "edge TTL 300 s",
            eligible(false),
        );
        // Only the regex rules say they need `matches`.
        for r in rules {
            let e = r["expression"].as_str().unwrap();
            let d = r["description"].as_str().unwrap();
            assert_eq!(e.contains(" matches "), d.ends_with(NEEDS_MATCHES), "{d}");
        }
    }

    #[test]
    fn mutable_and_clean_url_rules() {
        let mut plan = plan(&[
            route("**/*.html", Some("no-store")),
            route("@mutable", Some("public, s-maxage=120")),
        ]);
        plan.clean_urls = true;
        let body = body(&plan);
        let rules = body["rules"].as_array().unwrap();
        let fp = format!(
            "http.request.uri.path matches r\"{}\" and not (http.request.uri.path in {{\"/archive.202612031200.html\"}})",
            plan.fingerprinted
        );
        assert_eq!(rules[1]["expression"], format!("not ({fp})"));
        assert!(
            rules[1]["description"]
                .as_str()
                .unwrap()
                .ends_with(NEEDS_MATCHES)
        );
        // `**/*.html`: the page, a folder's index.html, an extension-less page.
        assert_eq!(
            rules[2]["expression"],
            r#"ends_with(http.request.uri.path, ".html") or ends_with(http.request.uri.path, "/") or (http.request.uri.path.extension eq "" and not (ends_with(http.request.uri.path, "/")))"#
        );
        for path in ["/about", "/docs/", "/", "/x/y.html"] {
            let winner = applied(&body, path).pop().unwrap();
            assert_eq!(winner["action_parameters"]["cache"], false, "{path}");
        }
        for path in ["/app.js", "/about.txt", "/css/site.css"] {
            let winner = applied(&body, path).pop().unwrap();
            let d = winner["description"].as_str().unwrap();
            assert!(
                d.starts_with("staleguard [[routes]] #2 match = \"@mutable\""),
                "{path}: {d}"
            );
        }
        // A fingerprinted file takes neither.
        let winner = applied(&body, "/css/site.0123456789ab.css").pop().unwrap();
        let d = winner["description"].as_str().unwrap();
        assert!(d.starts_with("staleguard built-in defaults"), "{d}");
        // The tag header Cloudflare reads.
        plan.tag_header = "xkey".into();
        assert!(render(&plan).contains("Cloudflare purges by tag from `Cache-Tag`, not `xkey`"));
        plan.tag_header = "cache-tag".into();
        assert!(!render(&plan).contains("purges by tag"));
    }

    /// A glob's expression (without the folder and clean-URL alternatives) takes exactly the paths
    /// globset takes, with `matches` only where `regex` says.
    fn check(glob: &str, regex: bool, paths: &[&str]) {
        let e = Expr::or(expand(glob).unwrap().iter().map(|g| exact(g)));
        assert_eq!(e.uses_matches(), regex, "{glob}: {}", e.render());
        let m = globset::GlobBuilder::new(glob)
            .literal_separator(true)
            .build()
            .unwrap()
            .compile_matcher();
        for p in paths {
            assert_eq!(
                matches_path(&e.render(), p),
                m.is_match(&p[1..]),
                "{glob} on {p}: {}",
                e.render()
            );
        }
    }

    #[test]
    fn globs_become_exact_expressions() {
        let paths = [
            "/",
            "/index.html",
            "/a.html",
            "/docs/a.html",
            "/docs/a/b.html",
            "/docs/",
            "/docs",
            "/downloads/tool.tar.gz",
            "/downloads/x/y",
            "/downloads/",
            "/downloads",
            "/other/downloads/x",
            "/fonts/a.woff2",
            "/fonts/x/a.woff2",
            "/fonts/.woff2",
            "/img/a.png",
            "/img/ab.png",
            "/js/app.js",
            "/css/x/y.css",
            "/img/app.js",
            "/a.txt",
            "/c.txt",
            "/a+b (1).txt",
            "/aab (1).txt",
            "/blog/az",
            "/blog/a",
            "/blog/z",
            "/blog/abz",
            "/blog/a/z",
            "/blog/",
            "/x/readme.txt",
            "/readme.txt",
            "/xreadme.txt",
            "/docs/x/y.md",
            "/docs/y.md",
            "/docs.md",
            "/app-1.js",
            "/app-.js",
            "/x/app-1.js",
            "/q\"uote.txt",
            "/Index.html",
        ];
        for (glob, regex) in [
            ("**/*.html", false),
            ("*.html", false),
            ("downloads/**", false),
            ("fonts/*.woff2", false),
            ("img/?.png", true),
            ("{css,js}/**", false),
            ("{css,js}/*.{css,js}", false),
            ("[ab].txt", true),
            ("[!ab].txt", true),
            ("a+b (1).txt", false),
            ("blog/a*z", false),
            ("blog/a*", false),
            ("blog/*", false),
            ("blog/*/z", true),
            ("**/readme.txt", false),
            ("**/readme*", true),
            ("docs/**/*.md", false),
            ("docs/**", false),
            ("**", false),
            ("**/*", false),
            ("*", false),
            ("app-*.js", false),
            ("index.html", false),
            ("q\"uote.txt", false),
        ] {
            check(glob, regex, &paths);
        }
        assert_eq!(
            expand("{css,js}/{a,b{c,d}}.x").unwrap(),
            [
                "css/a.x", "css/bc.x", "css/bd.x", "js/a.x", "js/bc.x", "js/bd.x"
            ]
        );
        assert_eq!(expand("[{]x").unwrap(), ["[{]x"]);
        assert_eq!(expand("{a,b"), None);
    }

    #[test]
    fn strings_are_quoted_for_the_rules_language() {
        assert_eq!(quoted(r#"/a"b\c"#), r#""/a\"b\\c""#);
        assert_eq!(raw(r"\.css$"), r#"r"\.css$""#);
        assert_eq!(raw(r#"a"b"#), r##"r#"a"b"#"##);
        assert_eq!(raw(r##"a"#b"##), r###"r##"a"#b"##"###);
        for s in [r"\.css$", r#"a"b"#, r##"a"#b"##] {
            let e = Expr::Matches(s.into()).render();
            match parse(&e).unwrap() {
                Ast::Test(Operand::Path, Some((op, Rhs::Str(got)))) => {
                    assert_eq!((op.as_str(), got.as_str()), ("matches", s))
                }
                a => panic!("{a:?}"),
            }
        }
        for bad in [
            "(true",
            "true)",
            "\"x",
            "http.host eq \"x\"",
            "lower(http.request.uri.path)",
        ] {
            assert!(parse(bad).is_err(), "{bad}");
        }
    }
}
