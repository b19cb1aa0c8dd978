//! CloudFront's `Resource` patterns: `*` matches any run of characters (none included, `/` included),
//! `?` exactly one character, everything else itself, case-sensitively. A literal `?` in a pattern
//! (a query string) is a one-character wildcard that also matches itself, so a resource with a query
//! still matches its own URL.
//!
//! Matched iteratively (the last `*` is the only backtrack point), so time is O(pattern × text) at
//! worst and there is no recursion for hostile patterns to exhaust.

/// Whether `text` matches `pattern`.
pub fn matches(pattern: &str, text: &str) -> bool {
    let p: Vec<char> = pattern.chars().collect();
    let t: Vec<char> = text.chars().collect();
    let (mut pi, mut ti) = (0, 0);
    // The last `*` seen, and where in the text its run ends so far.
    let mut star: Option<(usize, usize)> = None;
    while ti < t.len() {
        if pi < p.len() && (p[pi] == '?' || p[pi] == t[ti]) {
            pi += 1;
            ti += 1;
        } else if pi < p.len() && p[pi] == '*' {
            star = Some((pi, ti));
            pi += 1;
        } else if let Some((sp, st)) = star {
            // Let the last `*` take one more character and try again from there.
            pi = sp + 1;
            ti = st + 1;
            star = Some((sp, st + 1));
        } else {
            return false;
        }
    }
    p[pi..].iter().all(|c| *c == '*')
}

/// Whether `pattern` holds a wildcard (`*` or `?`).
pub fn has_wildcard(pattern: &str) -> bool {
    pattern.contains(['*', '?'])
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn stars_questions_and_literals() {
        let u = "https://media.example.com/u/42/avatar.jpg";
        let cases: &[(&str, &str, bool)] = &[
            (u, u, true),
            ("https://media.example.com/u/42/*", u, true),
            ("https://media.example.com/u/4?/avatar.jpg", u, true),
            ("https://media.example.com/u/*/avatar.jpg", u, true),
            ("https://media.example.com/u/*.jpg", u, true),
            ("https://media.example.com/*", u, true),
            ("*", u, true),
            ("*", "", true),
            ("", "", true),
            ("", u, false),
            ("http*://media.example.com/u/42/*", u, true),
            ("https://media.example.com/u/43/*", u, false),
            (
                "https://media.example.com/u/42/*",
                "https://media.example.com/u/42/",
                true,
            ),
            (
                "https://media.example.com/u/42/*",
                "https://media.example.com/u/42",
                false,
            ),
            (
                "https://media.example.com/u/42/avatar.jpg",
                "https://media.example.com/u/42/avatar.jpgx",
                false,
            ),
            ("https://media.example.com/U/42/*", u, false),
            ("https://media.example.com/u/42/a?atar.jpg", u, true),
            ("https://media.example.com/u/42/a??atar.jpg", u, false),
            (
                "https://x/a.jpg?size=large",
                "https://x/a.jpg?size=large",
                true,
            ),
            ("https://x/a.jpg?*", "https://x/a.jpg?size=large", true),
            ("*a*b*c*", "xxaxxbxxc", true),
            ("*a*b*c*", "xxaxxcxxb", false),
            (
                "a*a*a*a*b",
                "aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa",
                false,
            ),
            ("é?", "éü", true),
        ];
        for (pattern, text, want) in cases {
            assert_eq!(matches(pattern, text), *want, "{pattern} ~ {text}");
        }
    }
}
