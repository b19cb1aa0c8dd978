//! An invalidation event as apps send it, and its validation: what the API answers 400 or 413 to,
//! with the field and the reason, before anything is committed.
//!
//! `{"paths": ["/a"], "prefixes": ["/docs/*"], "tags": ["product-1"], "everything": false,
//!   "mode": "hard", "key": "cms-save-123"}`; the scope comes from the URL. Paths start with `/`, have no
//! `.`/`..` or empty segments and no wildcard; a prefix may end with one `*` (or `/`) and has none
//! elsewhere; tags are non-empty, printable and have no spaces or commas. Counts and lengths are capped
//! ([`Limits`]): past them the answer is 413, so a client can split its batch. The scope is 1–128
//! printable characters without `/`, spaces or control characters. Other fields are refused by name (a
//! typo is an error, not a silently ignored field). App-cache namespaces are a field of their own in
//! the app-cache issue: the struct is `#[non_exhaustive]` for that.

use serde::Deserialize;
use staleguard_core::purge::Item;

/// Limits of one event; past them, 413.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Limits {
    pub max_items: usize,
    pub max_len: usize,
}

impl Default for Limits {
    fn default() -> Limits {
        Limits {
            max_items: 1000,
            max_len: 2048,
        }
    }
}

/// Hard purge (drop) or soft (mark stale, where the provider can).
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Deserialize, serde::Serialize)]
#[serde(rename_all = "lowercase")]
pub enum Mode {
    #[default]
    Hard,
    Soft,
}

/// The body of `POST /v1/scopes/{scope}/invalidations`.
#[derive(Debug, Clone, Default, PartialEq, Deserialize, serde::Serialize)]
#[serde(deny_unknown_fields)]
#[non_exhaustive]
pub struct EventBody {
    #[serde(default)]
    pub paths: Vec<String>,
    #[serde(default)]
    pub prefixes: Vec<String>,
    #[serde(default)]
    pub tags: Vec<String>,
    #[serde(default)]
    pub everything: bool,
    #[serde(default)]
    pub mode: Mode,
    /// The client's idempotency key: the same key in a scope is one event.
    #[serde(default)]
    pub key: Option<String>,
    /// App-cache namespaces (`[[app-cache]]`) to bump before the event's CDN purge (`ws:42`,
    /// `global`); an event may name only these.
    #[serde(default)]
    pub namespaces: Vec<String>,
}

/// App-cache namespaces in one event at most.
pub const MAX_NAMESPACES: usize = 100;

/// A refused event: 400 (bad) or 413 (too large), the field (`paths[3]`) and why.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Refused {
    pub status: u16,
    pub field: String,
    pub reason: String,
}

impl std::fmt::Display for Refused {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{}: {}", self.field, self.reason)
    }
}

fn bad(field: String, reason: impl Into<String>) -> Refused {
    Refused {
        status: 400,
        field,
        reason: reason.into(),
    }
}

fn too_large(field: String, reason: impl Into<String>) -> Refused {
    Refused {
        status: 413,
        field,
        reason: reason.into(),
    }
}

/// Checks a scope name.
pub fn check_scope(scope: &str) -> Result<(), Refused> {
    let field = || "scope".to_string();
    if scope.is_empty() || scope.chars().count() > 128 {
        return Err(bad(field(), "must be 1 to 128 characters"));
    }
    if let Some(c) = scope
        .chars()
        .find(|c| c.is_control() || c.is_whitespace() || *c == '/')
    {
        return Err(bad(field(), format!("must not contain {c:?}")));
    }
    Ok(())
}

fn check_path(field: String, v: &str, prefix: bool, limits: &Limits) -> Result<String, Refused> {
    if v.len() > limits.max_len {
        return Err(too_large(
            field,
            format!("{} bytes, at most {}", v.len(), limits.max_len),
        ));
    }
    if !v.starts_with('/') {
        return Err(bad(field, "must start with `/`"));
    }
    if let Some(c) = v.chars().find(|c| c.is_control()) {
        return Err(bad(
            field,
            format!("must not contain the control character {c:?}"),
        ));
    }
    let body = if prefix {
        v.strip_suffix('*').unwrap_or(v)
    } else {
        v
    };
    if body.contains('*') {
        return Err(bad(
            field,
            if prefix {
                "a wildcard only at the end of a prefix"
            } else {
                "no wildcard in a path (send it as a prefix)"
            },
        ));
    }
    let path = body.split(['?', '#']).next().unwrap_or(body);
    let segments: Vec<&str> = path[1..].split('/').collect();
    for (i, s) in segments.iter().enumerate() {
        let last = i + 1 == segments.len();
        if *s == "." || *s == ".." {
            return Err(bad(field, "no `.` or `..` segments"));
        }
        if s.is_empty() && !last {
            return Err(bad(field, "no empty segments (`//`)"));
        }
    }
    Ok(if prefix && !v.ends_with('*') && !v.ends_with('/') {
        format!("{v}/")
    } else {
        body.to_string()
    })
}

/// The event's purge items, or why it is refused. A prefix `/docs/*` or `/docs/` is the prefix
/// `/docs/`; `/docs` is taken as the folder `/docs/`.
pub fn validate(body: &EventBody, limits: &Limits) -> Result<Vec<Item>, Refused> {
    let count = body.paths.len() + body.prefixes.len() + body.tags.len();
    if count > limits.max_items {
        return Err(too_large(
            "paths+prefixes+tags".into(),
            format!(
                "{count} items, at most {} per event: split it",
                limits.max_items
            ),
        ));
    }
    if body.namespaces.len() > MAX_NAMESPACES {
        return Err(too_large(
            "namespaces".into(),
            format!(
                "{} namespaces, at most {MAX_NAMESPACES} per event",
                body.namespaces.len()
            ),
        ));
    }
    for (i, ns) in body.namespaces.iter().enumerate() {
        staleguard_core::config::check_namespace(ns)
            .map_err(|e| bad(format!("namespaces[{i}]"), e))?;
    }
    if count == 0 && !body.everything && body.namespaces.is_empty() {
        return Err(bad(
            "paths".into(),
            "nothing to invalidate: give paths, prefixes, tags, everything or namespaces",
        ));
    }
    if let Some(k) = &body.key
        && (k.is_empty() || k.len() > 256 || k.chars().any(char::is_control))
    {
        return Err(bad("key".into(), "1 to 256 printable characters"));
    }
    if body.everything {
        return Ok(vec![Item::all()]);
    }
    let mut items = Vec::with_capacity(count);
    for (i, p) in body.paths.iter().enumerate() {
        items.push(Item::path(check_path(
            format!("paths[{i}]"),
            p,
            false,
            limits,
        )?));
    }
    for (i, p) in body.prefixes.iter().enumerate() {
        items.push(Item::prefix(check_path(
            format!("prefixes[{i}]"),
            p,
            true,
            limits,
        )?));
    }
    for (i, t) in body.tags.iter().enumerate() {
        let field = format!("tags[{i}]");
        if t.len() > limits.max_len {
            return Err(too_large(
                field,
                format!("at most {} bytes", limits.max_len),
            ));
        }
        if t.is_empty()
            || t.chars()
                .any(|c| c.is_control() || c.is_whitespace() || c == ',')
        {
            return Err(bad(
                field,
                "non-empty, without spaces, commas or control characters",
            ));
        }
        items.push(Item::tag(t.clone()));
    }
    Ok(items)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn body(json: &str) -> EventBody {
        serde_json::from_str(json).unwrap()
    }

    #[test]
    fn valid_events_become_items() {
        let l = Limits::default();
        let cases: &[(&str, Vec<Item>)] = &[
            (
                r#"{"paths": ["/a", "/b/c.html?x=1"]}"#,
                vec![Item::path("/a"), Item::path("/b/c.html?x=1")],
            ),
            (
                r#"{"prefixes": ["/docs/*", "/blog/", "/ws/42"]}"#,
                vec![
                    Item::prefix("/docs/"),
                    Item::prefix("/blog/"),
                    Item::prefix("/ws/42/"),
                ],
            ),
            (
                r#"{"tags": ["product-1"], "mode": "soft", "key": "k1"}"#,
                vec![Item::tag("product-1")],
            ),
            (
                r#"{"everything": true, "paths": ["/a"]}"#,
                vec![Item::all()],
            ),
            (r#"{"paths": ["/"]}"#, vec![Item::path("/")]),
            (r#"{"paths": ["/caf\u00e9/"]}"#, vec![Item::path("/café/")]),
        ];
        for (json, want) in cases {
            assert_eq!(&validate(&body(json), &l).unwrap(), want, "{json}");
        }
    }

    #[test]
    fn bad_events_name_the_field_and_the_reason() {
        let l = Limits {
            max_items: 3,
            max_len: 32,
        };
        let cases: &[(&str, u16, &str, &str)] = &[
            (r#"{}"#, 400, "paths", "nothing to invalidate"),
            (r#"{"paths": ["a"]}"#, 400, "paths[0]", "start with `/`"),
            (r#"{"paths": ["/ok", "/a/../b"]}"#, 400, "paths[1]", "`..`"),
            (r#"{"paths": ["/a//b"]}"#, 400, "paths[0]", "empty segments"),
            (
                r#"{"paths": ["/a/*"]}"#,
                400,
                "paths[0]",
                "no wildcard in a path",
            ),
            (
                r#"{"prefixes": ["/a/*/b/*"]}"#,
                400,
                "prefixes[0]",
                "only at the end",
            ),
            (
                r#"{"paths": ["/a\u0000"]}"#,
                400,
                "paths[0]",
                "control character",
            ),
            (r#"{"tags": ["a b"]}"#, 400, "tags[0]", "without spaces"),
            (r#"{"tags": [""]}"#, 400, "tags[0]", "non-empty"),
            (r#"{"paths": ["/a"], "key": ""}"#, 400, "key", "1 to 256"),
            (
                r#"{"paths": ["/a", "/b"], "tags": ["x", "y"]}"#,
                413,
                "paths+prefixes+tags",
                "split it",
            ),
            (
                r#"{"paths": ["/aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa"]}"#,
                413,
                "paths[0]",
                "at most 32",
            ),
        ];
        for (json, status, field, why) in cases {
            let e = validate(&body(json), &l).unwrap_err();
            assert_eq!(
                (e.status, e.field.as_str()),
                (*status, *field),
                "{json}: {e}"
            );
            assert!(e.reason.contains(why), "{json}: {e}");
        }
        // Unknown fields and wrong types are refused by the parser, naming the field.
        let e = serde_json::from_str::<EventBody>(r#"{"path": ["/a"]}"#).unwrap_err();
        assert!(e.to_string().contains("unknown field `path`"), "{e}");
        let e = serde_json::from_str::<EventBody>(r#"{"mode": "gentle"}"#).unwrap_err();
        assert!(e.to_string().contains("gentle"), "{e}");
    }

    #[test]
    fn scopes_are_checked() {
        for ok in ["ws:42", "site", "a.b-c_d"] {
            assert!(check_scope(ok).is_ok(), "{ok}");
        }
        for bad in ["", "a/b", "a b", "x\n", &"s".repeat(129)] {
            assert_eq!(check_scope(bad).unwrap_err().status, 400, "{bad:?}");
        }
    }
}
