//! Route classes of URL paths: fingerprinted (named by content: cached a year), mutable (the build's
//! pages and other files kept under their names), other (not in the build: an API, an app route, a
//! probe), with what a mutable URL may be as old as at the edge.
//!
//! Built by the caller from the same plan the CDN configurations come from (`staleguard-cdnconf`'s
//! `Plan`: its fingerprint regex and mutable look-alikes, the route table's edge lifetimes), so the
//! classes here are the ones the CDN was configured with.

use std::collections::HashSet;

use regex::Regex;
use serde::Serialize;

/// A URL's class.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize)]
#[serde(rename_all = "kebab-case")]
pub enum RouteClass {
    Fingerprinted = 0,
    Mutable = 1,
    Other = 2,
}

impl RouteClass {
    pub const ALL: [RouteClass; 3] = [
        RouteClass::Fingerprinted,
        RouteClass::Mutable,
        RouteClass::Other,
    ];

    pub fn name(self) -> &'static str {
        match self {
            RouteClass::Fingerprinted => "fingerprinted",
            RouteClass::Mutable => "mutable",
            RouteClass::Other => "other",
        }
    }
}

/// One rule of the route table for mutable URLs, first match wins: the URLs it selects (a regex over
/// the URL path; `None`: every URL) and the oldest `Age` the edge may serve them with (`ttl` +
/// `stale-while-revalidate` grace; 0 for `no-cache` and uncached responses).
#[derive(Debug, Clone)]
pub struct AgeRule {
    pub regex: Option<String>,
    pub max_age: u64,
}

/// The classifier.
#[derive(Debug, Clone)]
pub struct Routes {
    fingerprinted: Regex,
    not_fingerprinted: HashSet<String>,
    /// The build's mutable URLs; `None` without a manifest (then every URL not fingerprinted is
    /// `mutable`).
    mutable: Option<HashSet<String>>,
    ages: Vec<(Option<Regex>, u64)>,
    /// Fingerprinted URLs a kept deploy (or the current build) holds; `None`: not checked.
    known: Option<HashSet<String>>,
}

/// What [`Routes::classify`] says of one path.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Class {
    pub class: RouteClass,
    /// For mutable URLs: the oldest `Age` allowed.
    pub max_age: Option<u64>,
    /// For fingerprinted URLs: `Some(false)` when no kept deploy has it.
    pub known: Option<bool>,
}

impl Routes {
    /// `fingerprinted`: a regex over URL paths (the plan's); `not_fingerprinted`: mutable URLs that
    /// look fingerprinted; `mutable`: the build's mutable URLs (`None` without a manifest).
    pub fn new(
        fingerprinted: &str,
        not_fingerprinted: impl IntoIterator<Item = String>,
        mutable: Option<HashSet<String>>,
        ages: &[AgeRule],
    ) -> Result<Routes, String> {
        let fingerprinted = Regex::new(fingerprinted)
            .map_err(|e| format!("the fingerprint regex `{fingerprinted}`: {e}"))?;
        let ages = ages
            .iter()
            .map(|r| {
                let re = r
                    .regex
                    .as_deref()
                    .map(Regex::new)
                    .transpose()
                    .map_err(|e| format!("a route's regex: {e}"))?;
                Ok((re, r.max_age))
            })
            .collect::<Result<_, String>>()?;
        Ok(Routes {
            fingerprinted,
            not_fingerprinted: not_fingerprinted.into_iter().collect(),
            mutable,
            ages,
            known: None,
        })
    }

    /// Also check fingerprinted URLs against these (the current build's and every kept deploy's).
    pub fn with_known(mut self, known: HashSet<String>) -> Routes {
        self.known = Some(known);
        self
    }

    /// Whether fingerprinted URLs are checked against kept deploys.
    pub fn checks_deploys(&self) -> bool {
        self.known.is_some()
    }

    /// The class of a decoded URL path.
    pub fn classify(&self, path: &str) -> Class {
        if self.fingerprinted.is_match(path) && !self.not_fingerprinted.contains(path) {
            return Class {
                class: RouteClass::Fingerprinted,
                max_age: None,
                known: self.known.as_ref().map(|k| k.contains(path)),
            };
        }
        let mutable = match &self.mutable {
            Some(m) => m.contains(path),
            None => true,
        };
        if !mutable {
            return Class {
                class: RouteClass::Other,
                max_age: None,
                known: None,
            };
        }
        let max_age = self
            .ages
            .iter()
            .find(|(re, _)| re.as_ref().is_none_or(|r| r.is_match(path)))
            .map(|(_, a)| *a);
        Class {
            class: RouteClass::Mutable,
            max_age,
            known: None,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn classes_and_ages() {
        let mutable: HashSet<String> = [
            "/",
            "/index.html",
            "/docs/a.html",
            "/archive.202612031200.html",
        ]
        .map(String::from)
        .into();
        let r = Routes::new(
            r"\.[0-9a-f]{12}(\.[A-Za-z0-9]+)?$",
            ["/archive.202612031200.html".to_string()],
            Some(mutable),
            &[
                AgeRule {
                    regex: Some("^/docs/".into()),
                    max_age: 60,
                },
                AgeRule {
                    regex: None,
                    max_age: 0,
                },
            ],
        )
        .unwrap()
        .with_known(["/a.0123456789ab.css".to_string()].into());
        let c = |p: &str| r.classify(p);
        assert_eq!(c("/a.0123456789ab.css").class, RouteClass::Fingerprinted);
        assert_eq!(c("/a.0123456789ab.css").known, Some(true));
        assert_eq!(c("/old.ba9876543210.css").known, Some(false));
        assert_eq!(c("/archive.202612031200.html").class, RouteClass::Mutable);
        assert_eq!(c("/docs/a.html").max_age, Some(60));
        assert_eq!(c("/").max_age, Some(0));
        assert_eq!(c("/api/users").class, RouteClass::Other);
    }
}
