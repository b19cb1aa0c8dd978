//! `cdn-config --check FILE`: a live configuration (a VCL, an nginx file) against what the route
//! table implies now, line by line, comments and blank lines ignored. Each difference names the live
//! file's line and says whether it can serve stale content: a lifetime, grace or keep, a pass, which
//! URLs a rule or the fingerprint test selects, the `Accept-Encoding` handling or the cache key
//! (Varnish); a `Cache-Control`, a location, the fingerprint map, a sidecar switch (nginx). Other
//! differences (a backend address, a log path) are drift, not a staleness risk.

use similar::{ChangeTag, TextDiff};

/// The target a file is for.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Kind {
    Varnish,
    Nginx,
}

/// One difference.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize)]
pub struct Finding {
    /// Line in the live file (1-based), for a line it has that the route table does not imply.
    pub line: Option<usize>,
    /// What the route table implies (absent from the live file).
    pub expected: Option<String>,
    /// What the live file has instead (or besides).
    pub found: Option<String>,
    /// Whether this difference can make users get stale content.
    pub stale_risk: bool,
}

const VARNISH_RISK: &[&str] = &[
    "beresp.ttl",
    "beresp.grace",
    "beresp.keep",
    "uncacheable",
    "accept-encoding",
    "x-sg-path",
    "x-sg-fp",
    "hash_data",
    "return (deliver)",
    "return (pass)",
    "xkey",
    "purge",
    "ban",
];

const NGINX_RISK: &[&str] = &[
    "cache-control",
    "sg_fingerprinted",
    "location",
    "expires",
    "gzip_static",
    "brotli_static",
    "vary",
    "try_files",
    "root",
];

/// The significant text of a line: without its comment and surrounding spaces.
fn significant(line: &str) -> &str {
    // The first `#` outside a quoted string (a regex may hold one) starts the comment.
    let (mut quoted, mut escaped) = (false, false);
    let mut end = line.len();
    for (i, c) in line.char_indices() {
        match c {
            _ if escaped => escaped = false,
            '\\' if quoted => escaped = true,
            '"' => quoted = !quoted,
            '#' if !quoted => {
                end = i;
                break;
            }
            _ => {}
        }
    }
    line[..end].trim()
}

/// The differences between `expected` (what `cdn-config` generates now) and `live`.
pub fn compare(kind: Kind, expected: &str, live: &str) -> Vec<Finding> {
    let norm = |text: &str| -> Vec<(usize, String)> {
        text.lines()
            .enumerate()
            .map(|(i, l)| (i + 1, significant(l).to_string()))
            .filter(|(_, l)| !l.is_empty())
            .collect()
    };
    let (want, have) = (norm(expected), norm(live));
    let want_text: String = want.iter().map(|(_, l)| format!("{l}\n")).collect();
    let have_text: String = have.iter().map(|(_, l)| format!("{l}\n")).collect();
    let risky = |l: &str| {
        let l = l.to_ascii_lowercase();
        let words = match kind {
            Kind::Varnish => VARNISH_RISK,
            Kind::Nginx => NGINX_RISK,
        };
        words.iter().any(|w| l.contains(w))
    };
    let diff = TextDiff::from_lines(&want_text, &have_text);
    let mut out = Vec::new();
    for change in diff.iter_all_changes() {
        let text = change.value().trim_end_matches('\n').to_string();
        match change.tag() {
            ChangeTag::Equal => {}
            ChangeTag::Delete => out.push(Finding {
                line: None,
                stale_risk: risky(&text),
                expected: Some(text),
                found: None,
            }),
            ChangeTag::Insert => {
                let line = change
                    .new_index()
                    .and_then(|i| have.get(i))
                    .map(|(n, _)| *n);
                out.push(Finding {
                    line,
                    stale_risk: risky(&text),
                    expected: None,
                    found: Some(text),
                });
            }
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    const VCL: &str = "vcl 4.1;\n# a comment\nbackend origin {\n    .host = \"10.0.0.5\";\n}\nsub vcl_backend_response {\n    if (bereq.http.X-SG-Path ~ \"^/a#b$\") { # match = \"a\"\n        set beresp.ttl = 60s;\n    }\n}\n";

    #[test]
    fn comments_and_blank_lines_do_not_count() {
        let live = VCL
            .replace("# a comment\n", "\n\n# another\n")
            .replace("# match = \"a\"", "");
        assert_eq!(compare(Kind::Varnish, VCL, &live), []);
    }

    #[test]
    fn a_longer_lifetime_is_a_staleness_risk_and_names_its_line() {
        let live = VCL.replace("beresp.ttl = 60s", "beresp.ttl = 86400s");
        let f = compare(Kind::Varnish, VCL, &live);
        assert_eq!(f.len(), 2, "{f:?}");
        assert!(f.iter().all(|x| x.stale_risk));
        let found = f.iter().find(|x| x.found.is_some()).unwrap();
        assert_eq!(found.line, Some(8));
        assert_eq!(found.found.as_deref(), Some("set beresp.ttl = 86400s;"));
    }

    #[test]
    fn another_backend_is_drift_not_a_risk() {
        let live = VCL.replace("10.0.0.5", "10.0.0.6");
        let f = compare(Kind::Varnish, VCL, &live);
        assert_eq!(f.len(), 2);
        assert!(f.iter().all(|x| !x.stale_risk), "{f:?}");
    }

    #[test]
    fn a_hash_inside_a_regex_is_not_a_comment() {
        let live = VCL.replace("^/a#b$", "^/a#c$");
        assert!(
            compare(Kind::Varnish, VCL, &live)
                .iter()
                .any(|x| x.stale_risk)
        );
    }
}
