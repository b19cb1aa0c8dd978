//! The `[[cdn]]` entries: which CDNs a deploy purges, and how.

use std::fmt;

use serde::de::{self, DeserializeSeed, MapAccess, Visitor};
use serde::{Deserialize, Deserializer, Serialize};

use super::{de_one_or_many, de_prefix_or_empty};
use crate::duration::HumanDuration;

/// A CDN provider.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum CdnProvider {
    Cloudfront,
    /// Also `provider = "edge"`: `staleguard edge` speaks the wire protocol of the project's VCL.
    #[serde(alias = "edge")]
    Varnish,
    Cloudflare,
    Fastly,
}

impl CdnProvider {
    pub fn as_str(self) -> &'static str {
        match self {
            CdnProvider::Cloudfront => "cloudfront",
            CdnProvider::Varnish => "varnish",
            CdnProvider::Cloudflare => "cloudflare",
            CdnProvider::Fastly => "fastly",
        }
    }
}

/// What to do when a CDN's purge fails after its retries.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize, Serialize, Default)]
#[serde(rename_all = "lowercase")]
pub enum OnFailure {
    /// The deploy fails (the objects stay deployed; re-run `staleguard invalidate`).
    #[default]
    Fail,
    /// Print a warning and go on.
    Warn,
}

/// How changed objects are addressed in a purge.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize, Serialize, Default)]
#[serde(rename_all = "lowercase")]
pub enum PurgeBy {
    /// URL paths (and prefixes where the planner finds them cheaper).
    #[default]
    Paths,
    /// Surrogate keys: one tag per object ([`crate::purge::key_tag`]), sent by the origin.
    Tags,
}

/// How a Varnish node is told to drop URLs.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize, Serialize, Default)]
#[serde(rename_all = "lowercase")]
pub enum VarnishMode {
    /// `PURGE <url>` per URL; prefixes become bans.
    #[default]
    Purge,
    /// `BAN` with `x-ban-url: <regex>` (one per URL, or `^prefix` for prefixes).
    Ban,
    /// `PURGE` with `xkey-purge: k1 k2 …` (or `xkey-softpurge` when `soft`).
    Xkey,
}

/// One `[[cdn]]` entry, its keys flat: the common ones and those of its provider.
///
/// Read by a hand-written deserializer (below) that streams the table key by key, so a mistake is
/// reported with the line of the key or value at fault: an unknown key, a value of the wrong type, a
/// key of another provider (`zone` under `provider = "varnish"`) read after `provider`. toml hands
/// keys over in sorted order, so a misplaced `distribution`, `mode` or `nodes` is reported at the
/// entry's line, still by name; so are the cross-field checks ([`CdnConfig::check`]). Which keys apply
/// to which provider is one table (`cdn_keys!` below), shared by every provider.
///
/// Not a serde enum tagged by `provider`: serde buffers such a table before reading it, and toml then
/// points at `[[cdn]]` for every mistake inside it. The entry stays one flat struct, which the providers
/// (and their tests) read and adjust directly.
#[derive(Debug, Clone, Serialize, PartialEq)]
#[serde(rename_all = "kebab-case")]
pub struct CdnConfig {
    pub provider: CdnProvider,
    /// A label for messages and `--cdn NAME`; default: the provider's name.
    #[serde(skip_serializing_if = "String::is_empty")]
    pub name: String,
    pub on_failure: OnFailure,
    /// Wait for the purge to complete (asynchronous CDNs such as CloudFront).
    pub wait: bool,
    /// How long to wait, e.g. `15m`.
    pub timeout: HumanDuration,
    /// URL path under which the store's keys are served (`/` or `/site/`); empty = `/`, or for
    /// CloudFront derived from the distribution's origin path.
    #[serde(skip_serializing_if = "String::is_empty")]
    pub url_prefix: String,
    /// A hard cap: a prefix item may drop at most this many unchanged mutable URLs (or `sweep-ratio`
    /// times the changed URLs it covers, whichever is larger). Default: no cap; the planner weighs
    /// each swept URL at `sweep-price` against the provider's price per item.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub sweep_ceiling: Option<usize>,
    /// Widens the cap: …or this many times the changed URLs the prefix covers. Alone, it is the cap
    /// (with a ceiling of 0). Default: none.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub sweep_ratio: Option<f64>,
    /// US dollars one swept URL costs (the origin request its next visitor causes). Default:
    /// [`crate::purge::DEFAULT_SWEEP_PRICE_USD`], an S3 GET ($0.0004 per 1,000).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub sweep_price: Option<f64>,
    pub purge_by: PurgeBy,
    /// Soft purge (Fastly, Varnish xkey): mark stale and revalidate instead of dropping.
    #[serde(skip_serializing_if = "std::ops::Not::not")]
    pub soft: bool,
    /// Items per API call (Cloudflare: 100 by default, 30 for prefixes on some plans).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub max_items: Option<usize>,
    /// API calls per second at most; 0 = the provider's default.
    pub max_rate: f64,
    /// API base URL override (tests, proxies): CloudFront endpoint, Cloudflare or Fastly API root.
    #[serde(skip_serializing_if = "String::is_empty")]
    pub api: String,
    // CloudFront
    /// Distribution ids, or `auto` to find them by `domain` (ListDistributions).
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub distribution: Vec<String>,
    /// The site's domain (a CNAME alias of the distribution, or the zone's host for full URLs).
    #[serde(skip_serializing_if = "String::is_empty")]
    pub domain: String,
    /// Allow `#tag` invalidation items (CloudFront accounts with tag invalidation).
    #[serde(skip_serializing_if = "std::ops::Not::not")]
    pub tags: bool,
    // Varnish
    /// Varnish nodes (`http://10.0.0.5:6081`); every one must accept the purge.
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub nodes: Vec<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub mode: Option<VarnishMode>,
    // Cloudflare
    #[serde(skip_serializing_if = "String::is_empty")]
    pub zone: String,
    // Fastly
    #[serde(skip_serializing_if = "String::is_empty")]
    pub service: String,
    /// Environment variable holding the API token (Cloudflare: `CLOUDFLARE_API_TOKEN`, Fastly:
    /// `FASTLY_API_TOKEN`). Tokens are never read from the config file.
    #[serde(skip_serializing_if = "String::is_empty")]
    pub token_env: String,
}

/// Declares the keys of a `[[cdn]]` entry, in the order error messages list them, each with the
/// providers it applies to (none listed: every provider).
macro_rules! cdn_keys {
    ($($key:ident = $name:literal $([$($only:ident),+])?,)*) => {
        /// A key of a `[[cdn]]` entry.
        #[derive(Debug, Clone, Copy, PartialEq, Eq)]
        enum Key {
            $($key,)*
        }

        impl Key {
            const ALL: &[Key] = &[$(Key::$key,)*];
            const NAMES: &[&str] = &[$($name,)*];

            /// The key as written in the file.
            fn name(self) -> &'static str {
                match self {
                    $(Key::$key => $name,)*
                }
            }

            /// The providers the key applies to; empty: every one.
            fn only(self) -> &'static [CdnProvider] {
                match self {
                    $(Key::$key => &[$($(CdnProvider::$only),+)?],)*
                }
            }
        }
    };
}

cdn_keys! {
    Provider = "provider",
    Name = "name",
    OnFailure = "on-failure",
    Wait = "wait",
    Timeout = "timeout",
    UrlPrefix = "url-prefix",
    SweepCeiling = "sweep-ceiling",
    SweepRatio = "sweep-ratio",
    SweepPrice = "sweep-price",
    PurgeBy = "purge-by",
    Soft = "soft" [Varnish, Fastly],
    MaxItems = "max-items",
    MaxRate = "max-rate",
    Api = "api",
    Distribution = "distribution" [Cloudfront],
    Domain = "domain",
    Tags = "tags" [Cloudfront],
    Nodes = "nodes" [Varnish],
    Mode = "mode" [Varnish],
    Zone = "zone" [Cloudflare],
    Service = "service" [Fastly],
    TokenEnv = "token-env" [Cloudflare, Fastly],
}

impl Key {
    fn from_name(name: &str) -> Option<Key> {
        Key::ALL.iter().copied().find(|k| k.name() == name)
    }

    /// Refuses a key of another provider, saying which ones it belongs to.
    fn applies_to(self, provider: CdnProvider) -> Result<(), String> {
        let only = self.only();
        if only.is_empty() || only.contains(&provider) {
            return Ok(());
        }
        let names: Vec<&str> = only.iter().map(|p| p.as_str()).collect();
        Err(format!(
            "`{}` does not apply to provider `{}` (only to {}); remove it",
            self.name(),
            provider.as_str(),
            names.join(", ")
        ))
    }
}

/// Reads a key, refusing it while the key's span is known: unknown, or of another provider than the
/// one already read (a key read before `provider` is checked at the end of the entry).
struct KeySeed(Option<CdnProvider>);

impl<'de> DeserializeSeed<'de> for KeySeed {
    type Value = Key;

    fn deserialize<D: Deserializer<'de>>(self, d: D) -> Result<Key, D::Error> {
        let name = String::deserialize(d)?;
        let key =
            Key::from_name(&name).ok_or_else(|| de::Error::unknown_field(&name, Key::NAMES))?;
        if let Some(p) = self.0 {
            key.applies_to(p).map_err(de::Error::custom)?;
        }
        Ok(key)
    }
}

/// `url-prefix`, normalised while its value's span is known.
#[derive(Deserialize)]
struct UrlPrefix(#[serde(deserialize_with = "de_prefix_or_empty")] String);

/// `distribution`: one id or a list.
#[derive(Deserialize)]
struct OneOrMany(#[serde(deserialize_with = "de_one_or_many")] Vec<String>);

impl<'de> Deserialize<'de> for CdnConfig {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<CdnConfig, D::Error> {
        d.deserialize_map(EntryVisitor)
    }
}

struct EntryVisitor;

impl<'de> Visitor<'de> for EntryVisitor {
    type Value = CdnConfig;

    fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("a [[cdn]] table")
    }

    fn visit_map<A: MapAccess<'de>>(self, mut map: A) -> Result<CdnConfig, A::Error> {
        let mut provider = None;
        // Every other key's default; the provider is set once read.
        let mut c = CdnConfig::with_defaults(CdnProvider::Cloudfront);
        let mut seen = Vec::new();
        while let Some(key) = map.next_key_seed(KeySeed(provider))? {
            if seen.contains(&key) {
                return Err(de::Error::duplicate_field(key.name()));
            }
            seen.push(key);
            match key {
                Key::Provider => provider = Some(map.next_value()?),
                Key::Name => c.name = map.next_value()?,
                Key::OnFailure => c.on_failure = map.next_value()?,
                Key::Wait => c.wait = map.next_value()?,
                Key::Timeout => c.timeout = map.next_value()?,
                Key::UrlPrefix => c.url_prefix = map.next_value::<UrlPrefix>()?.0,
                Key::SweepCeiling => c.sweep_ceiling = map.next_value()?,
                Key::SweepRatio => c.sweep_ratio = map.next_value()?,
                Key::SweepPrice => c.sweep_price = map.next_value()?,
                Key::PurgeBy => c.purge_by = map.next_value()?,
                Key::Soft => c.soft = map.next_value()?,
                Key::MaxItems => c.max_items = map.next_value()?,
                Key::MaxRate => c.max_rate = map.next_value()?,
                Key::Api => c.api = map.next_value()?,
                Key::Distribution => c.distribution = map.next_value::<OneOrMany>()?.0,
                Key::Domain => c.domain = map.next_value()?,
                Key::Tags => c.tags = map.next_value()?,
                Key::Nodes => c.nodes = map.next_value()?,
                Key::Mode => c.mode = map.next_value()?,
                Key::Zone => c.zone = map.next_value()?,
                Key::Service => c.service = map.next_value()?,
                Key::TokenEnv => c.token_env = map.next_value()?,
            }
        }
        c.provider = provider.ok_or_else(|| de::Error::missing_field("provider"))?;
        for key in seen {
            key.applies_to(c.provider).map_err(de::Error::custom)?;
        }
        c.check()
            .map_err(|e| de::Error::custom(format!("[[cdn]] `{}`: {e}", c.label())))?;
        Ok(c)
    }
}

impl CdnConfig {
    /// An entry for `provider` with every other key at its default.
    fn with_defaults(provider: CdnProvider) -> CdnConfig {
        CdnConfig {
            provider,
            name: String::new(),
            on_failure: OnFailure::default(),
            wait: true,
            timeout: HumanDuration::from_secs(1200),
            url_prefix: String::new(),
            sweep_ceiling: None,
            sweep_ratio: None,
            sweep_price: None,
            purge_by: PurgeBy::default(),
            soft: false,
            max_items: None,
            max_rate: 0.0,
            api: String::new(),
            distribution: Vec::new(),
            domain: String::new(),
            tags: false,
            nodes: Vec::new(),
            mode: None,
            zone: String::new(),
            service: String::new(),
            token_env: String::new(),
        }
    }

    /// The label used in messages.
    pub fn label(&self) -> &str {
        if self.name.is_empty() {
            self.provider.as_str()
        } else {
            &self.name
        }
    }

    /// The planner's options for this entry (the month's free items left: `free_items`).
    pub fn plan_options(&self, free_items: u64) -> crate::purge::PlanOptions {
        crate::purge::PlanOptions {
            sweep_ceiling: self.sweep_ceiling,
            sweep_ratio: self.sweep_ratio,
            sweep_price: crate::purge::nusd(
                self.sweep_price
                    .unwrap_or(crate::purge::DEFAULT_SWEEP_PRICE_USD),
            ),
            free_items,
        }
    }

    /// The token variable, defaulted per provider.
    pub fn token_var(&self) -> &str {
        match (self.token_env.is_empty(), self.provider) {
            (false, _) => &self.token_env,
            (true, CdnProvider::Cloudflare) => "CLOUDFLARE_API_TOKEN",
            (true, CdnProvider::Fastly) => "FASTLY_API_TOKEN",
            (true, _) => "",
        }
    }

    /// Cross-field checks: the provider's required keys present, values in range. (Keys of other
    /// providers are refused while reading the entry.)
    pub fn check(&self) -> Result<(), String> {
        use CdnProvider::*;
        if self.max_rate < 0.0 || !self.max_rate.is_finite() {
            return Err(format!(
                "max-rate must be a positive number, got {}",
                self.max_rate
            ));
        }
        if let Some(r) = self.sweep_ratio
            && (!r.is_finite() || r < 0.0)
        {
            return Err(format!("sweep-ratio must be a number ≥ 0, got {r}"));
        }
        if let Some(p) = self.sweep_price
            && (!p.is_finite() || p < 0.0 || (p > 0.0 && crate::purge::nusd(p) == 0) || p > 1.0)
        {
            return Err(format!(
                "sweep-price must be US dollars per swept URL, 0 or from 0.000000001 to 1, got {p} \
                 (an S3 GET is 0.0000004)"
            ));
        }
        if self.max_items == Some(0) {
            return Err("max-items must be at least 1".into());
        }
        match self.provider {
            Cloudfront => {
                if self.distribution.is_empty() {
                    return Err(
                        "cloudfront needs `distribution = \"E…\"` (or `\"auto\"` with `domain`)"
                            .into(),
                    );
                }
                if self.distribution.iter().any(|d| d == "auto") && self.domain.is_empty() {
                    return Err(
                        "`distribution = \"auto\"` needs `domain = \"www.example.com\"` to find it"
                            .into(),
                    );
                }
            }
            Varnish => {
                if self.nodes.is_empty() {
                    return Err("varnish needs `nodes = [\"http://HOST:PORT\"]`".into());
                }
                for n in &self.nodes {
                    if !(n.starts_with("http://") || n.starts_with("https://")) {
                        return Err(format!(
                            "varnish node `{n}` must be an http:// or https:// URL"
                        ));
                    }
                }
                if self.mode == Some(VarnishMode::Xkey) && self.purge_by != PurgeBy::Tags {
                    return Err(
                        "varnish `mode = \"xkey\"` purges by tag: also set `purge-by = \"tags\"`"
                            .into(),
                    );
                }
                if self.soft && self.mode != Some(VarnishMode::Xkey) {
                    return Err(
                        "varnish `soft = true` needs `mode = \"xkey\"` (xkey-softpurge)".into(),
                    );
                }
            }
            Cloudflare => {
                if self.zone.is_empty() {
                    return Err("cloudflare needs `zone = \"ZONE_ID\"`".into());
                }
                if self.domain.is_empty() && self.purge_by == PurgeBy::Paths {
                    return Err(
                        "cloudflare purges full URLs: set `domain = \"www.example.com\"`".into(),
                    );
                }
            }
            Fastly => {
                if self.service.is_empty() {
                    return Err("fastly needs `service = \"SERVICE_ID\"`".into());
                }
                if self.domain.is_empty() && self.purge_by == PurgeBy::Paths {
                    return Err(
                        "fastly purges full URLs: set `domain = \"www.example.com\"`".into(),
                    );
                }
            }
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn err(text: &str) -> String {
        crate::Config::from_toml(text, "staleguard.toml")
            .unwrap_err()
            .to_string()
    }

    #[test]
    fn mistakes_name_the_line_at_fault() {
        for (text, needles) in [
            // A key of another provider read after `provider` (toml hands keys over in sorted order):
            // its own line.
            (
                "[[cdn]]\nprovider = 'varnish'\nnodes = ['http://a']\n\nzone = 'z'\n",
                &[
                    "line 5",
                    "`zone` does not apply to provider `varnish` (only to cloudflare)",
                ][..],
            ),
            (
                "[build]\n[[cdn]]\nzone = 'z'\nprovider = 'varnish'\nnodes = ['http://a']\n",
                &["line 3", "`zone` does not apply to provider `varnish`"],
            ),
            (
                "[[cdn]]\nprovider = 'fastly'\nservice = 's'\ndomain = 'a.b'\ntags = false\n",
                &[
                    "line 5",
                    "`tags` does not apply to provider `fastly` (only to cloudfront)",
                ],
            ),
            // …read before it: the entry's line.
            (
                "[build]\n[[cdn]]\nprovider = 'cloudflare'\nzone = 'z'\nmode = 'ban'\n",
                &[
                    "line 2",
                    "`mode` does not apply to provider `cloudflare` (only to varnish)",
                ],
            ),
            (
                "[[cdn]]\nprovider = 'cloudfront'\ndistribution = 'E1'\nsoft = true\n",
                &["line 4", "(only to varnish, fastly)"],
            ),
            // Unknown keys and bad values: their own line.
            (
                "[[cdn]]\nprovider = 'varnish'\nnodes = ['http://a']\nnode = 'x'\n",
                &["line 4", "unknown field `node`", "`nodes`"],
            ),
            (
                "[[cdn]]\nprovider = 'varnish'\n\nnodes = 3\n",
                &["line 4", "invalid type: integer `3`"],
            ),
            (
                "[[cdn]]\nprovider = 'varnish'\nnodes = ['http://a']\ntimeout = 'soon'\n",
                &["line 4", "`soon` is not an age"],
            ),
            (
                "[[cdn]]\nprovider = 'varnish'\nnodes = ['http://a']\nurl-prefix = 'https://x/'\n",
                &["line 4", "not a full URL"],
            ),
            (
                "[[cdn]]\nprovider = 'akamai'\n",
                &["line 2", "unknown variant `akamai`"],
            ),
            // Cross-field checks: the entry's line and its label.
            (
                "[serve]\n[[cdn]]\nprovider = 'varnish'\nname = 'edge'\n",
                &["line 2", "[[cdn]] `edge`: varnish needs `nodes"],
            ),
            (
                "[[cdn]]\nname = 'x'\n",
                &["line 1", "missing field `provider`"],
            ),
            (
                "[[cdn]]\nprovider = 'varnish'\nnodes = ['http://a']\nsweep-price = 0.0004\nsweep-ratio = -1.0\n",
                &["line 1", "sweep-ratio must be a number ≥ 0"],
            ),
            (
                "[[cdn]]\nprovider = 'varnish'\nnodes = ['http://a']\nsweep-price = 5.0\n",
                &[
                    "line 1",
                    "sweep-price must be US dollars per swept URL",
                    "got 5",
                ],
            ),
            (
                "[[cdn]]\nprovider = 'varnish'\nnodes = ['http://a']\nsweep-price = 1e-12\n",
                &["from 0.000000001 to 1"],
            ),
        ] {
            let e = err(text);
            for n in needles {
                assert!(e.contains(n), "error for {text:?} lacks {n:?}:\n{e}");
            }
        }
    }

    #[test]
    fn an_entry_reads_back_what_it_writes() {
        let text = "[[cdn]]\nprovider = 'varnish'\nname = 'edge'\nnodes = ['http://a:6081']\nmode = 'xkey'\npurge-by = 'tags'\nsoft = true\ntimeout = '90s'\n\n[[cdn]]\nprovider = 'cloudfront'\ndistribution = ['E1', 'E2']\nsweep-ratio = 1.5\nsweep-price = 0.000001\n";
        let c = crate::Config::from_toml(text, "x.toml").unwrap();
        assert_eq!(c.cdn[0].timeout.get(), std::time::Duration::from_secs(90));
        assert_eq!(c.cdn[1].distribution, ["E1", "E2"]);
        let written = toml::to_string(&c).unwrap();
        assert_eq!(crate::Config::from_toml(&written, "x.toml").unwrap(), c);
        // JSON (tests and tools build entries this way) reads the same keys.
        let j: CdnConfig = serde_json::from_value(serde_json::json!({
            "provider": "cloudflare", "zone": "z", "domain": "a.b", "max-items": null,
        }))
        .unwrap();
        assert_eq!((j.zone.as_str(), j.max_items), ("z", None));
    }

    #[test]
    fn provider_edge_is_the_varnish_protocol() {
        let text = "[[cdn]]\nprovider = 'edge'\nnodes = ['http://127.0.0.1:6081']\nmode = 'xkey'\npurge-by = 'tags'\nsoft = true\n";
        let c = crate::Config::from_toml(text, "x.toml").unwrap();
        assert_eq!(c.cdn[0].provider, CdnProvider::Varnish);
        assert_eq!(c.cdn[0].nodes, ["http://127.0.0.1:6081"]);
        let e = err("[[cdn]]\nprovider = 'edge'\nzone = 'z'\nnodes = ['http://a']\n");
        assert!(e.contains("`zone` does not apply"), "{e}");
    }
}
