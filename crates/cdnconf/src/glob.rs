//! Route globs (the `[[routes]] match` syntax: globset with `literal_separator`) as regular
//! expressions over a URL path, for CDN configs that match paths with regexes (Varnish's PCRE2,
//! nginx's `location ~`). The output uses only the common subset: `^`, `$`, `(?:…)`, `[^/]`,
//! character classes, `|`, and escaped literals.

/// A regex (anchored, without delimiters) matching the URL path `/` + every output path the glob
/// matches: `*` and `?` stay within a segment, `**/` is any number of leading folders, `/**` at the
/// end anything below, `[…]` a class (`[!…]` negated), `{a,b}` alternatives.
pub fn to_regex(glob: &str) -> String {
    let mut out = String::from("^/");
    let chars: Vec<char> = glob.trim_start_matches('/').chars().collect();
    let mut i = 0;
    let mut depth = 0usize;
    while i < chars.len() {
        let c = chars[i];
        match c {
            '*' if chars.get(i + 1) == Some(&'*') => {
                let at_start = i == 0 || chars[i - 1] == '/';
                let slash_after = chars.get(i + 2) == Some(&'/');
                if at_start && slash_after {
                    // `**/`: zero or more folders.
                    out.push_str("(?:[^/]*/)*");
                    i += 3;
                } else {
                    // `/**` at the end (or `**` elsewhere): anything.
                    out.push_str(".*");
                    i += 2;
                }
                continue;
            }
            '*' => out.push_str("[^/]*"),
            '?' => out.push_str("[^/]"),
            '[' => {
                // A class up to the closing bracket; `!` negates; `/` never matches.
                let mut j = i + 1;
                let mut class = String::from("[");
                if chars.get(j) == Some(&'!') || chars.get(j) == Some(&'^') {
                    class.push('^');
                    j += 1;
                }
                let start = j;
                while j < chars.len() && (chars[j] != ']' || j == start) {
                    let ch = chars[j];
                    if ch == '\\' || ch == '[' || ch == '^' && j != start {
                        class.push('\\');
                    }
                    class.push(ch);
                    j += 1;
                }
                if j >= chars.len() {
                    // Unclosed: a literal `[`.
                    out.push_str("\\[");
                } else {
                    if class.starts_with("[^") {
                        class.push('/');
                    }
                    class.push(']');
                    out.push_str(&class);
                    i = j;
                }
            }
            '{' => {
                depth += 1;
                out.push_str("(?:");
            }
            '}' if depth > 0 => {
                depth -= 1;
                out.push(')');
            }
            ',' if depth > 0 => out.push('|'),
            c => push_literal(&mut out, c),
        }
        i += 1;
    }
    out.push('$');
    out
}

/// `c` escaped for a regex.
pub fn push_literal(out: &mut String, c: char) {
    if "\\.+*?()|[]{}^$#&-~".contains(c) {
        out.push('\\');
    }
    out.push(c);
}

/// `s` as a regex matching itself.
pub fn literal(s: &str) -> String {
    let mut out = String::new();
    for c in s.chars() {
        push_literal(&mut out, c);
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    fn matches(glob: &str, path: &str) -> bool {
        regex::Regex::new(&to_regex(glob)).unwrap().is_match(path)
    }

    #[test]
    fn globs_match_the_paths_globset_matches() {
        let table = [
            ("**/*.html", "/index.html", true),
            ("**/*.html", "/docs/a/b.html", true),
            ("**/*.html", "/docs/a.css", false),
            ("*.html", "/index.html", true),
            ("*.html", "/docs/a.html", false),
            ("downloads/**", "/downloads/tool-1.0.tar.gz", true),
            ("downloads/**", "/downloads/x/y", true),
            ("downloads/**", "/other/downloads/x", false),
            ("fonts/*.woff2", "/fonts/a.woff2", true),
            ("fonts/*.woff2", "/fonts/x/a.woff2", false),
            ("img/?.png", "/img/a.png", true),
            ("img/?.png", "/img/ab.png", false),
            ("{css,js}/**", "/js/app.js", true),
            ("{css,js}/**", "/img/app.js", false),
            ("[ab].txt", "/a.txt", true),
            ("[!ab].txt", "/c.txt", true),
            ("[!ab].txt", "/a.txt", false),
            ("a+b (1).txt", "/a+b (1).txt", true),
            ("a+b (1).txt", "/aab (1).txt", false),
        ];
        for (g, p, want) in table {
            assert_eq!(matches(g, p), want, "{g} on {p} ({})", to_regex(g));
            // The same answer as globset on the output path.
            let gs = globset::GlobBuilder::new(g)
                .literal_separator(true)
                .build()
                .unwrap()
                .compile_matcher();
            assert_eq!(gs.is_match(&p[1..]), want, "globset: {g} on {p}");
        }
    }
}
