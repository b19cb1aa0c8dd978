//! The `[service]` section and its `[[service.scope]]` rules: how `staleguard service` listens, where it
//! keeps its log, and how each scope is debounced, capped, retried and routed to the `[[cdn]]` entries.

use std::collections::BTreeMap;

use serde::{Deserialize, Serialize};

use crate::duration::HumanDuration;

/// The `[service]` section.
#[derive(Debug, Clone, Deserialize, Serialize, PartialEq)]
#[serde(deny_unknown_fields, rename_all = "kebab-case", default)]
pub struct ServiceConfig {
    /// Address of the API (`127.0.0.1:7070`); loopback unless told otherwise.
    pub listen: String,
    /// The durable log: a SQLite file (relative to the config's folder), or a PostgreSQL URL
    /// (`postgres://staleguard@db.internal/staleguard`) for several instances on one database. The
    /// password comes from `$PGPASSWORD` (never the config file); `$STALEGUARD_SERVICE_DB`, when set,
    /// replaces this value.
    pub db: String,
    /// On PostgreSQL, how long a batch claimed by an instance stays its own without a renewal (renewed
    /// every third of it while the batch runs): a killed instance's batches are taken over this long
    /// after its last renewal.
    pub lease: HumanDuration,
    /// Environment variable holding the API's bearer tokens (comma-separated, so a token can be
    /// rotated without downtime). Tokens are secrets: never in the config file.
    pub token_env: String,
    /// A file holding the tokens, one per line (read when the variable is unset).
    pub token_file: String,
    /// A scope's batch is due this long after its last event…
    pub debounce: HumanDuration,
    /// …and never later than this after its first pending event.
    pub max_wait: HumanDuration,
    /// Items in one batch before it collapses (paths into prefixes, then everything).
    pub max_items: usize,
    /// Sends of one batch before it becomes a dead letter.
    pub max_attempts: u32,
    /// The first pause between sends of a failed batch (doubled each time, full jitter)…
    pub retry_base: HumanDuration,
    /// …up to this.
    pub retry_max: HumanDuration,
    /// The `[[cdn]]` entries purged, by name (empty: all of them).
    pub cdns: Vec<String>,
    /// Batches in flight at once per CDN entry, across all scopes (a CDN's budget is per account or
    /// distribution, not per scope).
    pub concurrency: usize,
    /// Events queued for the log's writer before the API answers 429.
    pub queue: usize,
    /// A second purge this long after the first, per `[[cdn]]` name, for two-tier caches (a shield
    /// that refills an edge): `[service.rebound] fastly = "2s"`.
    pub rebound: BTreeMap<String, HumanDuration>,
    /// After a batch is purged, request its paths through `[verify] cdn-url` (bounded by
    /// `[verify] warm-concurrency`) so the first visitor hits a warm edge.
    pub warm: bool,
    /// After a batch is purged, check this many of its paths through `[verify] cdn-url` against
    /// `[verify] origin-url` (the same bytes, within `[verify] timeout`); a page still stale fails the
    /// batch, which is purged again. 0: no check. For pages whose bytes are stable between two
    /// requests (no per-request token or timestamp).
    pub verify_sample: usize,
    /// Run `staleguard watch` inside the service (its `[watch]` settings): rounds through `[verify]
    /// cdn-url`, the watch metrics on the service's `/metrics`, drift notices to the webhook.
    pub watch: bool,
    /// Per-scope rules, first match wins: `[[service.scope]] match = "ws:*"`.
    #[serde(rename = "scope")]
    pub scopes: Vec<ScopeRule>,
}

impl Default for ServiceConfig {
    fn default() -> ServiceConfig {
        ServiceConfig {
            listen: "127.0.0.1:7070".into(),
            db: ".staleguard/service.db".into(),
            lease: HumanDuration::from_secs(15),
            token_env: "STALEGUARD_SERVICE_TOKEN".into(),
            token_file: String::new(),
            debounce: HumanDuration::from_secs(5),
            max_wait: HumanDuration::from_secs(60),
            max_items: 1000,
            max_attempts: 8,
            retry_base: HumanDuration::from_secs(1),
            retry_max: HumanDuration::from_secs(300),
            cdns: Vec::new(),
            concurrency: 4,
            queue: 65_536,
            rebound: BTreeMap::new(),
            warm: false,
            verify_sample: 0,
            watch: false,
            scopes: Vec::new(),
        }
    }
}

/// One `[[service.scope]]` rule: the keys it sets override `[service]` for the scopes it matches.
#[derive(Debug, Clone, Deserialize, Serialize, PartialEq)]
#[serde(deny_unknown_fields, rename_all = "kebab-case")]
pub struct ScopeRule {
    /// A scope name or a pattern with `*` (any run of characters): `ws:*`, `shop:*:prices`.
    #[serde(rename = "match")]
    pub pattern: String,
    pub debounce: Option<HumanDuration>,
    pub max_wait: Option<HumanDuration>,
    pub max_items: Option<usize>,
    pub max_attempts: Option<u32>,
    /// The `[[cdn]]` entries this scope purges (default: `[service] cdns`).
    pub cdns: Option<Vec<String>>,
}

/// What one scope gets: the `[service]` values with its rule's overrides applied.
#[derive(Debug, Clone, PartialEq)]
pub struct ScopeSettings {
    pub debounce: HumanDuration,
    pub max_wait: HumanDuration,
    pub max_items: usize,
    pub max_attempts: u32,
    /// `[[cdn]]` names; empty = all.
    pub cdns: Vec<String>,
}

impl ServiceConfig {
    /// The settings of `scope`: the first rule that matches it, over the section's values.
    pub fn for_scope(&self, scope: &str) -> ScopeSettings {
        let rule = self
            .scopes
            .iter()
            .find(|r| scope_matches(&r.pattern, scope));
        self.settings(rule)
    }

    /// The section's values, with `rule`'s overrides.
    pub fn settings(&self, rule: Option<&ScopeRule>) -> ScopeSettings {
        ScopeSettings {
            debounce: rule
                .and_then(|r| r.debounce.clone())
                .unwrap_or_else(|| self.debounce.clone()),
            max_wait: rule
                .and_then(|r| r.max_wait.clone())
                .unwrap_or_else(|| self.max_wait.clone()),
            max_items: rule.and_then(|r| r.max_items).unwrap_or(self.max_items),
            max_attempts: rule
                .and_then(|r| r.max_attempts)
                .unwrap_or(self.max_attempts),
            cdns: rule
                .and_then(|r| r.cdns.clone())
                .unwrap_or_else(|| self.cdns.clone()),
        }
    }

    /// The checks across keys (run when the config is read): max-wait at least the debounce, in the
    /// section and in every rule; limits at least 1; named CDNs exist.
    pub fn check(&self, cdn_names: &[&str]) -> Result<(), String> {
        let mut all = vec![("[service]".to_string(), self.settings(None))];
        for (i, r) in self.scopes.iter().enumerate() {
            if r.pattern.is_empty() {
                return Err(format!("[[service.scope]] #{}: `match` is empty", i + 1));
            }
            all.push((
                format!("[[service.scope]] match = \"{}\"", r.pattern),
                self.settings(Some(r)),
            ));
        }
        for (what, s) in &all {
            if s.max_wait.get() < s.debounce.get() {
                return Err(format!(
                    "{what}: max-wait ({}) is shorter than debounce ({}): a batch would always be due at \
                     max-wait; make max-wait at least the debounce",
                    s.max_wait, s.debounce
                ));
            }
            if s.max_items == 0 || s.max_attempts == 0 {
                return Err(format!(
                    "{what}: max-items and max-attempts must be at least 1"
                ));
            }
            for n in &s.cdns {
                if !cdn_names.contains(&n.as_str()) {
                    return Err(format!(
                        "{what}: cdns names `{n}`, which is no [[cdn]] entry (configured: {})",
                        if cdn_names.is_empty() {
                            "none".to_string()
                        } else {
                            cdn_names.join(", ")
                        }
                    ));
                }
            }
        }
        for n in self.rebound.keys() {
            if !cdn_names.contains(&n.as_str()) {
                return Err(format!(
                    "[service.rebound]: `{n}` is no [[cdn]] entry (configured: {})",
                    cdn_names.join(", ")
                ));
            }
        }
        if self.lease.get() < std::time::Duration::from_millis(300) {
            return Err(format!(
                "[service] lease = \"{}\" is too short to be renewed in time: at least 300ms (15s is the default)",
                self.lease
            ));
        }
        if self.concurrency == 0 || self.queue == 0 {
            return Err("[service]: concurrency and queue must be at least 1".into());
        }
        if self.retry_max.get() < self.retry_base.get() {
            return Err(format!(
                "[service]: retry-max ({}) is shorter than retry-base ({})",
                self.retry_max, self.retry_base
            ));
        }
        Ok(())
    }
}

/// `ws:*` matches `ws:42`; `*` is any run of characters (`:` included), everything else is literal.
pub fn scope_matches(pattern: &str, scope: &str) -> bool {
    let parts: Vec<&str> = pattern.split('*').collect();
    if parts.len() == 1 {
        return pattern == scope;
    }
    let (first, last) = (parts[0], parts[parts.len() - 1]);
    if !scope.starts_with(first) || scope.len() < first.len() + last.len() || !scope.ends_with(last)
    {
        return false;
    }
    let mut rest = &scope[first.len()..scope.len() - last.len()];
    for mid in &parts[1..parts.len() - 1] {
        match rest.find(mid) {
            Some(i) => rest = &rest[i + mid.len()..],
            None => return false,
        }
    }
    true
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn patterns_match_as_written() {
        for (p, s, want) in [
            ("ws:*", "ws:42", true),
            ("ws:*", "ws:", true),
            ("ws:*", "shop:1", false),
            ("ws:42", "ws:42", true),
            ("ws:42", "ws:420", false),
            ("*:prices", "shop:1:prices", true),
            ("shop:*:prices", "shop:1:prices", true),
            ("shop:*:prices", "shop:prices", false),
            ("a*b*c", "abc", true),
            ("a*b*c", "acb", false),
            ("*", "anything", true),
        ] {
            assert_eq!(scope_matches(p, s), want, "{p} ~ {s}");
        }
    }

    #[test]
    fn the_first_rule_wins_over_the_section() {
        let c: ServiceConfig = toml::from_str(
            r#"
debounce = "2s"
[[scope]]
match = "ws:*"
debounce = "500ms"
max-wait = "10s"
cdns = ["edge"]
[[scope]]
match = "*"
max-items = 50
"#,
        )
        .unwrap();
        let ws = c.for_scope("ws:1");
        assert_eq!(ws.debounce.get().as_millis(), 500);
        assert_eq!(ws.max_wait.get().as_secs(), 10);
        assert_eq!(ws.cdns, vec!["edge".to_string()]);
        let other = c.for_scope("shop");
        assert_eq!(other.debounce.get().as_secs(), 2);
        assert_eq!(other.max_items, 50);
        assert!(other.cdns.is_empty());
        c.check(&["edge"]).unwrap();
        let e = c.check(&["cf"]).unwrap_err();
        assert!(e.contains("`edge`") && e.contains("configured: cf"), "{e}");
    }

    #[test]
    fn max_wait_below_debounce_is_an_error_naming_the_rule() {
        let c: ServiceConfig =
            toml::from_str("[[scope]]\nmatch = \"ws:*\"\ndebounce = \"90s\"\n").unwrap();
        let e = c.check(&[]).unwrap_err();
        assert!(
            e.contains("match = \"ws:*\"") && e.contains("max-wait (1m)") && e.contains("(90s)"),
            "{e}"
        );
        let c: ServiceConfig = toml::from_str("debounce = \"2m\"\n").unwrap();
        assert!(c.check(&[]).unwrap_err().starts_with("[service]"));
        assert!(toml::from_str::<ServiceConfig>("debounse = \"2s\"").is_err());
    }
}
