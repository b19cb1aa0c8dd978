//! RFC 9111 for a shared cache, as pure functions of headers and times (seconds).
//!
//! - [`Directives::parse`]: `Cache-Control` (every field line, comma lists, quoted values, unknown
//!   directives ignored, a malformed delta makes the directive absent rather than zero).
//! - [`storable`]: GET/HEAD only; a status cacheable by default or an explicit lifetime; never with
//!   `no-store` or `private` (a shared cache), never for a request with `Authorization` unless the
//!   response says `public`, `s-maxage` or `must-revalidate`. Heuristic freshness is off: a response
//!   without an explicit lifetime is stored only when it says `no-cache` (kept for revalidation).
//! - [`Directives::lifetime`]: `s-maxage`, else `max-age`, else `Expires − Date`; `no-cache` makes it 0.
//! - [`Entry::age`]: the corrected initial age (§4.2.3) plus the time resident (`Date` read to the end
//!   of its second; the response delay added only to a non-zero `Age`).
//! - [`Entry::decide`]: fresh → serve; stale within `stale-while-revalidate` → serve and refresh in
//!   the background; otherwise revalidate (and, within `stale-if-error`, serve stale if the origin
//!   errs). `must-revalidate`/`proxy-revalidate`/`s-maxage` forbid serving stale at all (§4.2.4).

/// Parsed `Cache-Control` of a response (the directives a shared cache acts on).
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Directives {
    pub max_age: Option<u64>,
    pub s_maxage: Option<u64>,
    pub no_store: bool,
    /// `no-cache` (unqualified: a qualified `no-cache="Set-Cookie"` is treated the same, conservatively).
    pub no_cache: bool,
    pub private: bool,
    pub public: bool,
    pub must_revalidate: bool,
    pub proxy_revalidate: bool,
    pub stale_while_revalidate: Option<u64>,
    pub stale_if_error: Option<u64>,
    pub immutable: bool,
}

/// A delta-seconds value: digits only; too large saturates (RFC 9111 §1.2.2), anything else is
/// invalid (the directive is then absent).
fn delta(v: &str) -> Option<u64> {
    let v = v.trim().trim_matches('"');
    if v.is_empty() || !v.bytes().all(|b| b.is_ascii_digit()) {
        return None;
    }
    Some(v.parse::<u64>().unwrap_or(u64::MAX))
}

/// Splits a comma list, keeping commas inside quoted strings.
fn split_list(v: &str) -> Vec<&str> {
    let mut out = Vec::new();
    let (mut start, mut quoted, mut escaped) = (0, false, false);
    for (i, c) in v.char_indices() {
        match c {
            _ if escaped => escaped = false,
            '\\' if quoted => escaped = true,
            '"' => quoted = !quoted,
            ',' if !quoted => {
                out.push(&v[start..i]);
                start = i + 1;
            }
            _ => {}
        }
    }
    out.push(&v[start..]);
    out
}

impl Directives {
    /// Every `Cache-Control` field value of a response, in order.
    pub fn parse<'a>(values: impl IntoIterator<Item = &'a str>) -> Directives {
        let mut d = Directives::default();
        for v in values {
            for item in split_list(v) {
                let item = item.trim();
                if item.is_empty() {
                    continue;
                }
                let (name, arg) = match item.split_once('=') {
                    Some((n, a)) => (n.trim(), Some(a)),
                    None => (item, None),
                };
                match name.to_ascii_lowercase().as_str() {
                    // A repeated directive: the first one counts (the most conservative reading
                    // would need a choice per directive; caches in the field take the first).
                    "max-age" => d.max_age = d.max_age.or(arg.and_then(delta)),
                    "s-maxage" => d.s_maxage = d.s_maxage.or(arg.and_then(delta)),
                    "stale-while-revalidate" => {
                        d.stale_while_revalidate = d.stale_while_revalidate.or(arg.and_then(delta))
                    }
                    "stale-if-error" => d.stale_if_error = d.stale_if_error.or(arg.and_then(delta)),
                    "no-store" => d.no_store = true,
                    "no-cache" => d.no_cache = true,
                    "private" => d.private = true,
                    "public" => d.public = true,
                    "must-revalidate" => d.must_revalidate = true,
                    "proxy-revalidate" => d.proxy_revalidate = true,
                    "immutable" => d.immutable = true,
                    _ => {}
                }
            }
        }
        d
    }

    /// Freshness lifetime in seconds (§4.2.1): `s-maxage`, `max-age`, then `Expires − Date` (an
    /// invalid `Expires` is already expired: 0). `no-cache`: 0. `None`: no explicit lifetime.
    pub fn lifetime(&self, date: Option<u64>, expires: Option<Result<u64, ()>>) -> Option<u64> {
        if self.no_cache {
            return Some(0);
        }
        if let Some(s) = self.s_maxage {
            return Some(s);
        }
        if let Some(m) = self.max_age {
            return Some(m);
        }
        match expires {
            Some(Ok(e)) => Some(e.saturating_sub(date.unwrap_or(e))),
            Some(Err(())) => Some(0),
            None => None,
        }
    }

    /// Whether a stale response may never be served without a successful revalidation (§4.2.4,
    /// §5.2.2.2, §5.2.2.8, §5.2.2.10: `s-maxage` implies `proxy-revalidate`).
    pub fn forbids_stale(&self) -> bool {
        self.must_revalidate || self.proxy_revalidate || self.s_maxage.is_some()
    }
}

/// Status codes heuristically cacheable (RFC 9110 §15.1); others need an explicit lifetime.
pub fn cacheable_by_default(status: u16) -> bool {
    matches!(
        status,
        200 | 203 | 204 | 300 | 301 | 308 | 404 | 405 | 410 | 414 | 501
    )
}

/// Heuristic freshness (RFC 9111 §4.2.2), for a response without an explicit lifetime, when the
/// edge is told to use it (off by default): 10 % of the time since `Last-Modified` (at `Date`, else
/// at arrival), at most a day, for statuses cacheable by default. Seconds.
pub fn heuristic_lifetime(
    status: u16,
    date: Option<u64>,
    last_modified: Option<u64>,
    response_time: u64,
) -> Option<u64> {
    if !cacheable_by_default(status) {
        return None;
    }
    let lm = last_modified?;
    let at = date.unwrap_or(response_time);
    Some((at.saturating_sub(lm) / 10).min(86_400))
}

/// The request's side of storability.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct RequestFacts {
    pub method_get_or_head: bool,
    pub has_authorization: bool,
}

/// May a shared cache store this response (RFC 9111 §3, §3.5), with heuristic freshness off?
pub fn storable(
    req: RequestFacts,
    status: u16,
    d: &Directives,
    has_explicit_lifetime: bool,
) -> bool {
    if !req.method_get_or_head || d.no_store || d.private {
        return false;
    }
    if req.has_authorization && !(d.public || d.s_maxage.is_some() || d.must_revalidate) {
        return false;
    }
    // 206 and 304 are never stored as such (ranges are served from a full entry).
    if status == 206 || status == 304 || !(100..600).contains(&status) || status < 200 {
        return false;
    }
    if !(cacheable_by_default(status) || has_explicit_lifetime) {
        return false;
    }
    has_explicit_lifetime || d.no_cache
}

/// Milliseconds per second.
pub const MS: u64 = 1000;

/// A stored response's timing facts, in **milliseconds** (since the epoch; `Age` and the lifetime as
/// durations), so a one-second `max-age` is not cut short by rounding; the directives stay in seconds.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Entry {
    pub directives: Directives,
    /// Freshness lifetime, ms (0 for `no-cache` responses).
    pub lifetime: u64,
    /// When the request that fetched it was sent.
    pub request_time: u64,
    /// When its response arrived.
    pub response_time: u64,
    /// Its `Date` header, if valid.
    pub date: Option<u64>,
    /// Its `Age` header (ms), if valid.
    pub age_header: u64,
    /// Marked stale by a soft purge: never fresh again (served only within its stale windows).
    pub invalidated: bool,
}

/// What to do with a stored entry for a request now.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Decision {
    /// Serve it (`X-Cache: HIT`).
    Fresh,
    /// Serve it now and refresh it in the background (`X-Cache: STALE`).
    StaleWhileRevalidate,
    /// Ask the origin first (conditional when it has validators); if the origin fails and
    /// `stale_if_error` is true, serve the stale entry (`X-Cache: STALE`).
    Revalidate { stale_if_error: bool },
}

impl Entry {
    /// Current age (§4.2.3): corrected initial age plus the time resident, with two readings of the
    /// formula for an origin (as `http-cache-semantics` and Varnish read `Age` alone):
    /// - `Date` has one-second resolution: the apparent age counts from the end of its second, so a
    ///   response with `max-age=1` is not born nearly expired because its `Date` was truncated;
    /// - the response delay is added only to a non-zero `Age` (a response that sat in another cache):
    ///   an origin that took 2 s to render a page did not make it 2 s old.
    pub fn age(&self, now: u64) -> u64 {
        let apparent = self.date.map_or(0, |d| {
            self.response_time.saturating_sub(d.saturating_add(MS - 1))
        });
        let delay = if self.age_header > 0 {
            self.response_time.saturating_sub(self.request_time)
        } else {
            0
        };
        let corrected_age_value = self.age_header.saturating_add(delay);
        let initial = apparent.max(corrected_age_value);
        initial.saturating_add(now.saturating_sub(self.response_time))
    }

    /// Fresh at `now`?
    pub fn is_fresh(&self, now: u64) -> bool {
        !self.invalidated && self.age(now) < self.lifetime
    }

    /// Seconds past freshness at `now` (0 while fresh).
    /// (A soft-purged entry still within its lifetime is 0 seconds stale: its windows start now.)
    pub fn staleness(&self, now: u64) -> u64 {
        self.age(now).saturating_sub(self.lifetime)
    }

    /// The decision for a request at `now`.
    pub fn decide(&self, now: u64) -> Decision {
        if self.is_fresh(now) {
            return Decision::Fresh;
        }
        let d = &self.directives;
        if d.forbids_stale() || d.no_cache {
            return Decision::Revalidate {
                stale_if_error: false,
            };
        }
        let late = self.staleness(now);
        if d.stale_while_revalidate
            .is_some_and(|w| late <= w.saturating_mul(MS))
        {
            return Decision::StaleWhileRevalidate;
        }
        Decision::Revalidate {
            stale_if_error: d
                .stale_if_error
                .is_some_and(|w| late <= w.saturating_mul(MS)),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn cc(s: &str) -> Directives {
        Directives::parse([s])
    }

    #[test]
    fn directives_parse_as_caches_read_them() {
        let table = [
            (
                "max-age=60",
                Directives {
                    max_age: Some(60),
                    ..Default::default()
                },
            ),
            (
                "public, max-age=0, s-maxage=3600",
                Directives {
                    public: true,
                    max_age: Some(0),
                    s_maxage: Some(3600),
                    ..Default::default()
                },
            ),
            (
                "MAX-AGE=5, No-Store",
                Directives {
                    max_age: Some(5),
                    no_store: true,
                    ..Default::default()
                },
            ),
            (
                "max-age=\"30\"",
                Directives {
                    max_age: Some(30),
                    ..Default::default()
                },
            ),
            ("max-age=-1", Directives::default()),
            ("max-age=ten", Directives::default()),
            (
                "max-age=99999999999999999999999",
                Directives {
                    max_age: Some(u64::MAX),
                    ..Default::default()
                },
            ),
            (
                "no-cache=\"Set-Cookie, X-A\", max-age=9",
                Directives {
                    no_cache: true,
                    max_age: Some(9),
                    ..Default::default()
                },
            ),
            (
                "max-age=60, stale-while-revalidate=30, stale-if-error=600",
                Directives {
                    max_age: Some(60),
                    stale_while_revalidate: Some(30),
                    stale_if_error: Some(600),
                    ..Default::default()
                },
            ),
            (
                "public, max-age=31536000, immutable",
                Directives {
                    public: true,
                    max_age: Some(31_536_000),
                    immutable: true,
                    ..Default::default()
                },
            ),
            (
                "max-age=10, max-age=99",
                Directives {
                    max_age: Some(10),
                    ..Default::default()
                },
            ),
            (
                ",,, private ,",
                Directives {
                    private: true,
                    ..Default::default()
                },
            ),
            (
                "must-revalidate, proxy-revalidate, x-unknown=\"a,b\"",
                Directives {
                    must_revalidate: true,
                    proxy_revalidate: true,
                    ..Default::default()
                },
            ),
        ];
        for (text, want) in table {
            assert_eq!(cc(text), want, "{text}");
        }
        // Several field lines are one list.
        assert_eq!(
            Directives::parse(["max-age=5", "no-store"]),
            Directives {
                max_age: Some(5),
                no_store: true,
                ..Default::default()
            }
        );
    }

    #[test]
    fn lifetime_prefers_s_maxage_then_max_age_then_expires() {
        assert_eq!(
            cc("max-age=60, s-maxage=600").lifetime(None, None),
            Some(600)
        );
        assert_eq!(
            cc("max-age=60").lifetime(Some(100), Some(Ok(1000))),
            Some(60)
        );
        assert_eq!(cc("").lifetime(Some(100), Some(Ok(400))), Some(300));
        assert_eq!(cc("").lifetime(Some(500), Some(Ok(400))), Some(0));
        assert_eq!(
            cc("").lifetime(Some(100), Some(Err(()))),
            Some(0),
            "invalid Expires: expired"
        );
        assert_eq!(cc("no-cache, max-age=60").lifetime(None, None), Some(0));
        assert_eq!(cc("public").lifetime(None, None), None, "no heuristics");
    }

    #[test]
    fn storability_of_a_shared_cache() {
        let get = RequestFacts {
            method_get_or_head: true,
            has_authorization: false,
        };
        let auth = RequestFacts {
            has_authorization: true,
            ..get
        };
        let post = RequestFacts {
            method_get_or_head: false,
            ..get
        };
        let table: [(RequestFacts, u16, &str, bool); 14] = [
            (get, 200, "max-age=60", true),
            (get, 200, "s-maxage=60", true),
            (get, 200, "no-store, max-age=60", false),
            (get, 200, "private, max-age=60", false),
            (get, 200, "no-cache", true),
            (get, 200, "public", false),
            (get, 200, "", false),
            (post, 200, "max-age=60", false),
            (auth, 200, "max-age=60", false),
            (auth, 200, "public, max-age=60", true),
            (auth, 200, "s-maxage=60", true),
            (get, 404, "max-age=10", true),
            (get, 500, "max-age=10", true),
            (get, 206, "max-age=10", false),
        ];
        for (req, status, text, want) in table {
            let d = cc(text);
            let explicit = d.lifetime(None, None).is_some()
                && !(d.no_cache && d.max_age.is_none() && d.s_maxage.is_none());
            assert_eq!(
                storable(req, status, &d, explicit),
                want,
                "{status} {text} {req:?}"
            );
        }
    }

    fn entry(text: &str, lifetime: u64) -> Entry {
        Entry {
            directives: cc(text),
            lifetime: lifetime * MS,
            request_time: 1000 * MS,
            response_time: 1000 * MS,
            date: Some(1000 * MS),
            age_header: 0,
            invalidated: false,
        }
    }

    #[test]
    fn age_is_corrected_for_the_age_header_clock_skew_and_delay() {
        let mut e = entry("max-age=60", 60);
        e.age_header = 20 * MS;
        e.request_time = 995 * MS;
        assert_eq!(e.age(1000 * MS), 25 * MS, "Age + response delay");
        e.age_header = 0;
        e.date = Some(900 * MS);
        assert_eq!(
            e.age(1010 * MS),
            110 * MS - (MS - 1),
            "apparent age from the end of Date's second, plus residence"
        );
        e.date = Some(2000 * MS);
        assert_eq!(e.age(1000 * MS), 0, "a Date in the future counts as 0");
        assert_eq!(
            e.age(1003 * MS),
            3 * MS,
            "no Age: a slow origin's delay is not age"
        );
        e.date = Some(1000 * MS);
        assert_eq!(e.age(1000 * MS), 0, "Date within its second: age 0");
    }

    #[test]
    fn heuristic_freshness_is_a_tenth_of_the_age_capped_at_a_day() {
        assert_eq!(
            heuristic_lifetime(200, Some(1000), Some(0), 5000),
            Some(100)
        );
        assert_eq!(heuristic_lifetime(200, None, Some(0), 5000), Some(500));
        assert_eq!(
            heuristic_lifetime(200, Some(10_000_000), Some(0), 0),
            Some(86_400)
        );
        assert_eq!(
            heuristic_lifetime(200, Some(1000), None, 5000),
            None,
            "needs Last-Modified"
        );
        assert_eq!(
            heuristic_lifetime(302, Some(1000), Some(0), 5000),
            None,
            "not by default"
        );
        assert_eq!(
            heuristic_lifetime(200, Some(0), Some(1000), 0),
            Some(0),
            "future Last-Modified"
        );
    }

    #[test]
    fn decisions_over_time() {
        let e = entry(
            "max-age=60, stale-while-revalidate=30, stale-if-error=300",
            60,
        );
        assert_eq!(e.decide(1059 * MS), Decision::Fresh);
        assert_eq!(e.decide(1060 * MS), Decision::StaleWhileRevalidate);
        assert_eq!(e.decide(1090 * MS), Decision::StaleWhileRevalidate);
        assert_eq!(
            e.decide(1091 * MS),
            Decision::Revalidate {
                stale_if_error: true
            }
        );
        assert_eq!(
            e.decide(1361 * MS),
            Decision::Revalidate {
                stale_if_error: false
            }
        );
        // s-maxage and must-revalidate forbid stale, whatever the windows say.
        let strict = entry(
            "s-maxage=60, stale-while-revalidate=30, stale-if-error=300",
            60,
        );
        assert_eq!(
            strict.decide(1061 * MS),
            Decision::Revalidate {
                stale_if_error: false
            }
        );
        let strict = entry("max-age=60, must-revalidate, stale-if-error=300", 60);
        assert_eq!(
            strict.decide(1061 * MS),
            Decision::Revalidate {
                stale_if_error: false
            }
        );
        // no-cache: revalidated every time.
        assert_eq!(
            entry("no-cache", 0).decide(1000 * MS),
            Decision::Revalidate {
                stale_if_error: false
            }
        );
        // A soft purge: never fresh again, within its windows still served stale.
        let mut soft = entry("max-age=600, stale-while-revalidate=30", 600);
        soft.invalidated = true;
        assert_ne!(soft.decide(1001 * MS), Decision::Fresh);
    }
}

#[cfg(test)]
mod props {
    use proptest::prelude::*;

    use super::*;

    proptest! {
        /// Never served past its freshness without revalidating, except inside the SWR window (or,
        /// only when the origin failed, the stale-if-error window), and never stale when the
        /// response forbade it.
        #[test]
        fn never_stale_without_revalidation_outside_the_windows(
            max_age in proptest::option::of(0u64..10_000),
            s_maxage in proptest::option::of(0u64..10_000),
            swr in proptest::option::of(0u64..1000),
            sie in proptest::option::of(0u64..5000),
            must in any::<bool>(),
            no_cache in any::<bool>(),
            age_header in 0u64..5_000_000,
            delay in 0u64..100,
            skew in -500_000i64..500_000,
            later in 0u64..20_000_000,
            invalidated in any::<bool>(),
        ) {
            let d = Directives {
                max_age, s_maxage, stale_while_revalidate: swr, stale_if_error: sie,
                must_revalidate: must, no_cache, ..Default::default()
            };
            let Some(lifetime) = d.lifetime(None, None) else { return Ok(()); };
            let lifetime = lifetime.saturating_mul(MS);
            let response_time = 1_000_000u64;
            let e = Entry {
                directives: d.clone(),
                lifetime,
                request_time: response_time - delay,
                response_time,
                date: Some((response_time as i64 + skew) as u64),
                age_header,
                invalidated,
            };
            let now = response_time + later;
            let age = e.age(now);
            match e.decide(now) {
                Decision::Fresh => prop_assert!(age < lifetime && !invalidated),
                Decision::StaleWhileRevalidate => {
                    prop_assert!(!d.forbids_stale() && !d.no_cache);
                    prop_assert!(e.staleness(now) <= swr.unwrap() * MS);
                }
                Decision::Revalidate { stale_if_error } => {
                    if stale_if_error {
                        prop_assert!(!d.forbids_stale() && !d.no_cache);
                        prop_assert!(e.staleness(now) <= sie.unwrap() * MS);
                    }
                }
            }
            // Age never goes backwards.
            prop_assert!(e.age(now + 1) >= age);
        }
    }
}
