//! Varnish nodes: every node of the entry must drop the items, or the purge fails naming the node.
//!
//! What is sent for each item, by `mode` (the VCL side is `scripts/peers/staleguard.vcl`):
//!
//! | item | `purge` (default) | `ban` | `xkey` |
//! |---|---|---|---|
//! | path `/a.html` | `PURGE /a.html` | `BAN /`, `x-ban-url: ^/a\.html$` | `PURGE /a.html` |
//! | prefix `/docs/` | `BAN /`, `x-ban-url: ^/docs/` | same | same |
//! | tag `k` | — | — | `PURGE /`, `xkey-purge: k1 k2 …` (`xkey-softpurge` when soft) |
//! | everything | `BAN /`, `x-ban-url: ^/` | same | same |
//!
//! Every request carries `Host: <domain>` when the entry sets `domain` (Varnish keys its cache, and
//! the VCL scopes its bans, by Host); without it, the node's own host and port. Item values are
//! decoded paths: they are percent-encoded as a browser would request them
//! ([`crate::provider::url_path`]), so the ban regex (the encoded path with regex metacharacters
//! escaped, spliced unquoted into the ban expression by the VCL) never holds a space. A path with `.`
//! or `..` segments is refused as [`ErrorKind::Invalid`] before a request is made.
//!
//! One call's requests go to all nodes at once, at most [`CONCURRENCY`] at a time per node. The purge
//! is synchronous: a `200` from every node means the objects are gone (a ban is evaluated at lookup).
//! A node's answer is mapped like an API's (429 throttled, 5xx transient, with its `Retry-After`).
//!
//! The unit of retry is one request to one node ([`RetryUnit::Request`]): under
//! [`crate::wrap::Retry`], a (node, request) pair that failed is sent again to that node only
//! ([`Retrier::each`]), and no pair a node acknowledged is sent again; the call fails only with the
//! pairs that failed for good. [`Provider::purge`] alone sends each pair once.

use std::collections::BTreeMap;

use async_trait::async_trait;
use reqwest::Method;
use staleguard_core::config::{CdnConfig, VarnishMode};
use staleguard_core::purge::{Capabilities, Item, ItemKind, Pricing};

use crate::api::{http_client, snippet};
use crate::error::retry_after;
use crate::provider::url_path;
use crate::wrap::Retrier;
use crate::{Batch, CdnError, ErrorKind, Invalidation, Provider, Receipt, RetryUnit, Status};

/// Requests in flight at once per node.
pub const CONCURRENCY: usize = 16;

/// Items per call unless the entry's `max-items` says otherwise.
pub const DEFAULT_MAX_ITEMS: usize = 1000;

/// The longest `xkey-purge` header value sent (Varnish's default `http_req_hdr_len` is 8 KiB).
const MAX_XKEY_HEADER: usize = 4000;

/// A set of Varnish nodes purged together.
pub struct Varnish {
    name: String,
    nodes: Vec<String>,
    mode: VarnishMode,
    host: Option<String>,
    caps: Capabilities,
    client: reqwest::Client,
}

impl std::fmt::Debug for Varnish {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let nodes: Vec<String> = self
            .nodes
            .iter()
            .map(|n| staleguard_check::client::redact_url(n))
            .collect();
        f.debug_struct("Varnish")
            .field("name", &self.name)
            .field("nodes", &nodes)
            .field("mode", &self.mode)
            .field("host", &self.host)
            .finish_non_exhaustive()
    }
}

/// One HTTP request to send to every node.
#[derive(Debug, Clone)]
struct Request {
    method: &'static str,
    path: String,
    header: Option<(&'static str, String)>,
    /// What it purges, for messages.
    what: String,
}

impl Request {
    /// The items it carries: the keys of an xkey purge, else one.
    fn items(&self) -> usize {
        match &self.header {
            Some((k, v)) if k.starts_with("xkey") => v.split(' ').count(),
            _ => 1,
        }
    }
}

/// One node's failure to accept one request.
#[derive(Debug)]
struct Failure {
    node: String,
    what: String,
    kind: ErrorKind,
    text: String,
    /// The node's (or a load balancer's) `Retry-After`.
    retry_after: Option<std::time::Duration>,
}

impl Varnish {
    /// The nodes of `cfg` (`nodes = ["http://10.0.0.5:6081", …]`) in `cfg.mode`.
    pub fn new(cfg: &CdnConfig) -> Result<Varnish, CdnError> {
        let name = cfg.label().to_string();
        if cfg.nodes.is_empty() {
            return Err(CdnError::new(
                ErrorKind::Config,
                name,
                "no `nodes` to purge",
            ));
        }
        let mode = cfg.mode.unwrap_or_default();
        let caps = Capabilities {
            paths: true,
            prefixes: true,
            tags: mode == VarnishMode::Xkey,
            hosts: false,
            all: true,
            soft: mode == VarnishMode::Xkey,
            max_items_per_call: cfg.max_items.unwrap_or(DEFAULT_MAX_ITEMS),
            max_paths_in_flight: None,
            max_prefixes_in_flight: None,
            asynchronous: false,
            pricing: Pricing::FREE,
        };
        Ok(Varnish {
            client: http_client(&name)?,
            name,
            nodes: cfg
                .nodes
                .iter()
                .map(|n| n.trim_end_matches('/').to_string())
                .collect(),
            mode,
            host: (!cfg.domain.is_empty()).then(|| cfg.domain.clone()),
            caps,
        })
    }

    /// The nodes' base URLs.
    pub fn nodes(&self) -> &[String] {
        &self.nodes
    }

    fn invalid(&self, item: &Item, why: &str) -> CdnError {
        CdnError::new(
            ErrorKind::Invalid,
            &self.name,
            format!("cannot purge `{item}`: {why}"),
        )
    }

    /// The requests for one call (the same for every node).
    fn requests(&self, batch: &Batch) -> Result<Vec<Request>, CdnError> {
        let ban = |regex: String, what: String| Request {
            method: "BAN",
            path: "/".into(),
            header: Some(("x-ban-url", regex)),
            what,
        };
        let mut out = Vec::new();
        let mut tags: Vec<&str> = Vec::new();
        for item in &batch.items {
            match item.kind {
                ItemKind::Path | ItemKind::Prefix => {
                    let wire = wire_path(&item.value).map_err(|why| self.invalid(item, &why))?;
                    let re = format!("^{}", escape_regex(&wire));
                    match (item.kind, self.mode) {
                        (ItemKind::Path, VarnishMode::Ban) => {
                            out.push(ban(format!("{re}$"), item.value.clone()))
                        }
                        (ItemKind::Path, _) => out.push(Request {
                            method: "PURGE",
                            path: wire,
                            header: None,
                            what: item.value.clone(),
                        }),
                        _ => out.push(ban(re, item.to_string())),
                    }
                }
                ItemKind::Tag if self.caps.tags => {
                    if item
                        .value
                        .contains(|c: char| c == ',' || c.is_whitespace() || c.is_control())
                    {
                        return Err(self.invalid(item, "an xkey may not contain spaces or commas"));
                    }
                    tags.push(&item.value);
                }
                ItemKind::All => out.push(ban("^/".into(), "everything".into())),
                _ => {
                    return Err(self.invalid(
                        item,
                        &format!("not supported in Varnish `{:?}` mode", self.mode).to_lowercase(),
                    ));
                }
            }
        }
        let header = if batch.soft {
            "xkey-softpurge"
        } else {
            "xkey-purge"
        };
        let mut group = String::new();
        let flush = |group: &mut String, out: &mut Vec<Request>| {
            if !group.is_empty() {
                let value = std::mem::take(group);
                let what = value
                    .split(' ')
                    .map(|t| format!("#{t}"))
                    .collect::<Vec<_>>()
                    .join(" ");
                out.push(Request {
                    method: "PURGE",
                    path: "/".into(),
                    header: Some((header, value)),
                    what,
                });
            }
        };
        for t in tags {
            if !group.is_empty() && group.len() + 1 + t.len() > MAX_XKEY_HEADER {
                flush(&mut group, &mut out);
            }
            if !group.is_empty() {
                group.push(' ');
            }
            group.push_str(t);
        }
        flush(&mut group, &mut out);
        Ok(out)
    }

    async fn send(&self, node: &str, req: &Request) -> Result<String, Failure> {
        let fail = |kind: ErrorKind, text: String| Failure {
            // As messages show it: `http://user:…@host` (the request still carries the password).
            node: staleguard_check::client::redact_url(node),
            what: req.what.clone(),
            kind,
            text,
            retry_after: None,
        };
        let method =
            Method::from_bytes(req.method.as_bytes()).expect("PURGE and BAN are valid methods");
        let mut rb = self.client.request(method, format!("{node}{}", req.path));
        if let Some(host) = &self.host {
            rb = rb.header(reqwest::header::HOST, host);
        }
        if let Some((k, v)) = &req.header {
            rb = rb.header(*k, v);
        }
        let resp = rb.send().await.map_err(|e| {
            let e = CdnError::transport(&self.name, "the node", &e);
            fail(e.kind, e.message)
        })?;
        let status = resp.status();
        let after = retry_after(resp.headers());
        let body = resp.text().await.unwrap_or_default();
        let text = synth_text(&body);
        if status.is_success() {
            return Ok(text);
        }
        let kind = match status.as_u16() {
            405 | 501 => ErrorKind::Invalid,
            s => ErrorKind::from_status(s),
        };
        let reason = status.canonical_reason().unwrap_or("");
        let mut msg = format!("{} {reason}", status.as_u16());
        let text = if text.is_empty() {
            snippet(&body, 200)
        } else {
            text
        };
        if !text.is_empty() && !text.eq_ignore_ascii_case(reason) {
            msg = format!("{msg}: {text}");
        }
        Err(Failure {
            retry_after: after,
            ..fail(kind, msg)
        })
    }

    /// One node's failure to take one request, as an error.
    fn request_error(&self, f: Failure) -> CdnError {
        CdnError::new(
            f.kind,
            &self.name,
            format!("node `{}` did not purge `{}`: {}", f.node, f.what, f.text),
        )
        .with_retry_after(f.retry_after)
    }

    /// The error of a call whose (node, request) pairs `failed` for good (`requests` per node): the
    /// first of the kind a retry cannot fix ([`ErrorKind::worst`]), how many failed and on which nodes,
    /// and a hint.
    fn error(&self, mut failed: Vec<(&str, CdnError)>, requests: usize) -> CdnError {
        let kind = failed
            .iter()
            .map(|(_, e)| e.kind)
            .reduce(ErrorKind::worst)
            .unwrap_or(ErrorKind::Other);
        let after = failed.iter().filter_map(|(_, e)| e.retry_after).max();
        let mut nodes: Vec<&str> = failed.iter().map(|(n, _)| *n).collect();
        nodes.sort_unstable();
        nodes.dedup();
        let n = failed.len();
        let at = failed.iter().position(|(_, e)| e.kind == kind).unwrap_or(0);
        let (node, mut e) = failed.swap_remove(at);
        if n > 1 {
            e.message.push_str(&format!(
                " ({n} of {} requests failed, on {})",
                requests * self.nodes.len(),
                nodes
                    .iter()
                    .map(|n| format!("`{n}`"))
                    .collect::<Vec<_>>()
                    .join(", ")
            ));
        }
        let refused = [": 405 ", ": 501 "].iter().any(|s| e.message.contains(s));
        let hint = match kind {
            ErrorKind::Unauthorized => Some(format!(
                "the node's VCL accepts PURGE and BAN only from the addresses in its ACL (`acl purgers` in \
                 scripts/peers/staleguard.vcl); run staleguard from one of them or add this host to `{node}`'s ACL"
            )),
            ErrorKind::Invalid if refused => Some(
                "the node's VCL must handle PURGE and BAN requests (and `xkey-purge` in xkey mode): \
                 see scripts/peers/staleguard.vcl"
                    .to_string(),
            ),
            ErrorKind::Transient => Some(format!(
                "every node must accept the purge: check that `{node}` is up, or remove it from `nodes`"
            )),
            _ => None,
        };
        e.retry_after = after;
        // A retried request's hint (raise `timeout`, run again later) is kept before the node's.
        match (e.hint.take(), hint) {
            (Some(had), Some(h)) => e.with_hint(format!("{had}; {h}")),
            (had, h) => e.with_hint_opt(h.or(had)),
        }
    }
}

/// The path as sent to Varnish: percent-encoded like a browser's request ([`url_path`]), so it
/// matches the cached `req.url` and holds no spaces (the VCL splices a ban regex unquoted). `.` and
/// `..` segments are refused: an HTTP client would resolve them and purge another URL.
fn wire_path(value: &str) -> Result<String, String> {
    let p = value.split('?').next().unwrap_or("");
    if p.split('/').any(|seg| seg == "." || seg == "..") {
        return Err("a URL path may not contain `.` or `..` segments".into());
    }
    let wire = url_path(value).into_owned();
    if wire.contains(|c: char| c.is_whitespace() || c.is_control()) {
        return Err("a URL path sent to Varnish may not contain spaces".into());
    }
    Ok(wire)
}

/// `path` as a literal in a (PCRE) regex.
fn escape_regex(path: &str) -> String {
    let mut out = String::with_capacity(path.len() + 8);
    for c in path.chars() {
        if "\\.+*?()|[]{}^$#".contains(c) {
            out.push('\\');
        }
        out.push(c);
    }
    out
}

/// The text of a Varnish synthetic answer: its `<title>` without the status code (`Purged /a.html`).
fn synth_text(body: &str) -> String {
    let title = body
        .split_once("<title>")
        .and_then(|(_, rest)| rest.split_once("</title>"))
        .map(|(t, _)| t.trim());
    match title {
        Some(t) => t
            .split_once(' ')
            .filter(|(code, _)| code.len() == 3 && code.bytes().all(|b| b.is_ascii_digit()))
            .map_or(t, |(_, rest)| rest)
            .to_string(),
        None => snippet(body, 120),
    }
}

/// `Purged /a (×2), Ban added (×2)`: the distinct answers, most frequent first, at most three.
fn summary(answers: &[String], nodes: usize) -> String {
    let mut counts: BTreeMap<&str, usize> = BTreeMap::new();
    for a in answers {
        *counts.entry(a.as_str()).or_default() += 1;
    }
    let mut v: Vec<(&str, usize)> = counts.into_iter().collect();
    v.sort_by_key(|e| std::cmp::Reverse(e.1));
    let mut parts: Vec<String> = v
        .iter()
        .take(3)
        .map(|(t, n)| {
            if *n > 1 {
                format!("{t} (×{n})")
            } else {
                t.to_string()
            }
        })
        .collect();
    if v.len() > 3 {
        parts.push(format!("{} more", v.len() - 3));
    }
    format!(
        "{nodes} node{}: {}",
        if nodes == 1 { "" } else { "s" },
        parts.join(", ")
    )
}

#[async_trait]
impl Provider for Varnish {
    fn name(&self) -> &str {
        &self.name
    }

    fn capabilities(&self) -> &Capabilities {
        &self.caps
    }

    /// A request to one node: each node must take each request, and they are independent.
    fn retry_unit(&self) -> RetryUnit {
        RetryUnit::Request
    }

    async fn purge(&self, batch: &Batch) -> Result<Receipt, CdnError> {
        self.purge_each(batch, &Retrier::once(&self.name)).await
    }

    async fn purge_each(&self, batch: &Batch, retry: &Retrier) -> Result<Receipt, CdnError> {
        let requests = self.requests(batch)?;
        let sizes: Vec<usize> = requests.iter().map(Request::items).collect();
        let (requests, sizes) = (&requests, &sizes);
        // Every node at once, each with its own requests in flight and its own retries: a (node,
        // request) pair that failed is sent again to that node only.
        let per_node = self.nodes.iter().map(|node| async move {
            let outcomes = retry
                .each(sizes, CONCURRENCY, |i, _| async move {
                    self.send(node, &requests[i])
                        .await
                        .map_err(|f| self.request_error(f))
                })
                .await;
            (node.as_str(), outcomes)
        });
        let mut answers = Vec::new();
        let mut failed = Vec::new();
        for (node, outcomes) in futures::future::join_all(per_node).await {
            for o in outcomes {
                match o {
                    Ok(text) => answers.push(text),
                    Err(e) => failed.push((node, e)),
                }
            }
        }
        if !failed.is_empty() {
            return Err(self.error(failed, requests.len()));
        }
        Ok(Receipt {
            provider: self.name.clone(),
            id: None,
            status: Status::Completed,
            items: batch.items.len(),
            detail: summary(&answers, self.nodes.len()),
        })
    }

    async fn status(&self, _id: &str) -> Result<Status, CdnError> {
        Ok(Status::Completed)
    }

    async fn list(&self, _max: usize) -> Result<Vec<Invalidation>, CdnError> {
        Ok(Vec::new())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn varnish(mode: VarnishMode, domain: &str) -> Varnish {
        let cfg: CdnConfig = serde_json::from_value(serde_json::json!({
            "provider": "varnish",
            "nodes": ["http://127.0.0.1:1/", "http://127.0.0.1:2"],
            "mode": format!("{mode:?}").to_lowercase(),
            "purge-by": if mode == VarnishMode::Xkey { "tags" } else { "paths" },
            "domain": domain,
        }))
        .unwrap();
        Varnish::new(&cfg).unwrap()
    }

    fn shape(v: &Varnish, items: Vec<Item>, soft: bool) -> Vec<String> {
        v.requests(&Batch {
            items,
            reference: "r".into(),
            soft,
        })
        .unwrap()
        .iter()
        .map(|r| match &r.header {
            Some((k, val)) => format!("{} {} {k}: {val}", r.method, r.path),
            None => format!("{} {}", r.method, r.path),
        })
        .collect()
    }

    #[test]
    fn requests_per_mode() {
        let items = || vec![Item::path("/a.b+c(1).html"), Item::prefix("/docs/")];
        let p = varnish(VarnishMode::Ban, "");
        assert_eq!(
            shape(
                &p,
                vec![Item::path("/my file é.html"), Item::prefix("/a b/")],
                false
            ),
            [
                r"BAN / x-ban-url: ^/my%20file%20%C3%A9\.html$",
                r"BAN / x-ban-url: ^/a%20b/"
            ]
        );
        let p = varnish(VarnishMode::Purge, "");
        assert_eq!(
            shape(&p, items(), false),
            ["PURGE /a.b+c(1).html", r"BAN / x-ban-url: ^/docs/"]
        );
        assert_eq!(p.nodes(), ["http://127.0.0.1:1", "http://127.0.0.1:2"]);
        let b = varnish(VarnishMode::Ban, "");
        assert_eq!(
            shape(&b, items(), false),
            [
                r"BAN / x-ban-url: ^/a\.b\+c\(1\)\.html$",
                r"BAN / x-ban-url: ^/docs/"
            ]
        );
        assert_eq!(shape(&b, vec![Item::all()], false), ["BAN / x-ban-url: ^/"]);
        let x = varnish(VarnishMode::Xkey, "");
        assert_eq!(
            shape(
                &x,
                vec![Item::tag("a"), Item::path("/p"), Item::tag("b")],
                false
            ),
            ["PURGE /p", "PURGE / xkey-purge: a b"]
        );
        assert_eq!(
            shape(&x, vec![Item::tag("a")], true),
            ["PURGE / xkey-softpurge: a"]
        );
        assert!(x.capabilities().tags && x.capabilities().soft);
        assert!(!p.capabilities().tags && !p.capabilities().soft);
    }

    #[test]
    fn long_tag_lists_are_split_across_headers() {
        let x = varnish(VarnishMode::Xkey, "");
        let tags: Vec<Item> = (0..1000)
            .map(|i| Item::tag(format!("sg-{i:016}")))
            .collect();
        let reqs = x
            .requests(&Batch {
                items: tags,
                reference: "r".into(),
                soft: false,
            })
            .unwrap();
        assert!(reqs.len() > 1);
        let mut n = 0;
        for r in &reqs {
            let v = &r.header.as_ref().unwrap().1;
            assert!(v.len() <= MAX_XKEY_HEADER);
            n += v.split(' ').count();
        }
        assert_eq!(n, 1000);
    }

    #[test]
    fn refuses_paths_a_ban_cannot_hold() {
        let p = varnish(VarnishMode::Ban, "");
        for bad in ["/a/../b", "/./a", "/a/..?x"] {
            let e = p
                .requests(&Batch {
                    items: vec![Item::path(bad)],
                    reference: "r".into(),
                    soft: false,
                })
                .unwrap_err();
            assert_eq!(e.kind, ErrorKind::Invalid, "{bad}");
        }
        let x = varnish(VarnishMode::Purge, "");
        let e = x
            .requests(&Batch {
                items: vec![Item::tag("t")],
                reference: "r".into(),
                soft: false,
            })
            .unwrap_err();
        assert!(
            e.to_string()
                .contains("not supported in varnish `purge` mode"),
            "{e}"
        );
    }

    #[test]
    fn synth_text_reads_the_title() {
        let page =
            "<!DOCTYPE html>\n<html><head><title>200 Purged /index.html</title></head></html>";
        assert_eq!(synth_text(page), "Purged /index.html");
        assert_eq!(synth_text("plain"), "plain");
        let answers: Vec<String> = ["Ban added", "Purged /a", "Ban added"]
            .map(String::from)
            .into();
        assert_eq!(summary(&answers, 2), "2 nodes: Ban added (×2), Purged /a");
    }
}
