//! Text for messages, cut to a length: the one truncator of staleguard's messages (response bodies,
//! error chains, paths quoted back, webhook fields).

use std::borrow::Cow;

/// `text` when it has at most `max` characters, else its first `max - 1` characters and `…` (so the
/// result never has more than `max` characters).
pub fn cut(text: &str, max: usize) -> Cow<'_, str> {
    match text.char_indices().nth(max) {
        None => Cow::Borrowed(text),
        Some(_) => {
            let end = text
                .char_indices()
                .nth(max.saturating_sub(1))
                .map_or(text.len(), |(i, _)| i);
            Cow::Owned(format!("{}…", &text[..end]))
        }
    }
}

/// `text` on one line: runs of whitespace become one space, and it is cut to at most `max` bytes (at a
/// character boundary) with `…` when longer.
pub fn one_line(text: &str, max: usize) -> String {
    let one: String = text.split_whitespace().collect::<Vec<_>>().join(" ");
    if one.len() <= max {
        return one;
    }
    let mut end = max;
    while !one.is_char_boundary(end) {
        end -= 1;
    }
    format!("{}…", &one[..end])
}

/// `<` `>` `&` `"` `'` as XML entities, for element text and attribute values.
pub fn xml_escape(s: &str) -> String {
    let mut out = String::with_capacity(s.len());
    for c in s.chars() {
        match c {
            '<' => out.push_str("&lt;"),
            '>' => out.push_str("&gt;"),
            '&' => out.push_str("&amp;"),
            '"' => out.push_str("&quot;"),
            '\'' => out.push_str("&apos;"),
            c => out.push(c),
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn texts_are_cut_to_their_limit() {
        let cases: &[(&str, usize, &str)] = &[
            ("abc", 3, "abc"),
            ("abcd", 3, "ab…"),
            ("ééééé", 4, "ééé…"),
            ("", 1, ""),
        ];
        for (text, max, want) in cases {
            let got = cut(text, *max);
            assert_eq!(got, *want);
            assert!(got.chars().count() <= *max);
        }
        assert_eq!(one_line("a\n  b\tc", 100), "a b c");
        assert_eq!(one_line("ab cd", 3), "ab …");
        assert_eq!(one_line("éé", 3), "é…");
    }
}
