//! Hints as data: what to do about an error is not part of its message. An error built from one text
//! (`message\nhint: what to do`) keeps both; its `Display` shows [`message`], its `hint()` returns
//! [`hint`], and whoever shows the error to a user prints the hint last, on a line of its own.

/// The message part of `message\nhint: …` (all of it when there is no hint).
pub fn message(text: &str) -> &str {
    text.split_once("\nhint: ").map_or(text, |(m, _)| m)
}

/// The hint part of `message\nhint: …`: everything after the first `\nhint: `, so a text with two
/// hints shows both, one per line, as before.
pub fn hint(text: &str) -> Option<&str> {
    text.split_once("\nhint: ").map(|(_, h)| h)
}

/// A message and its hint as one text for a user: the hint last, on a line of its own.
pub fn shown(message: &str, hint: Option<&str>) -> String {
    match hint {
        Some(h) => format!("{message}\nhint: {h}"),
        None => message.to_string(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_text_splits_into_message_and_hint_and_back() {
        let cases: &[(&str, &str, Option<&str>)] = &[
            ("no files", "no files", None),
            (
                "no files\nhint: build first",
                "no files",
                Some("build first"),
            ),
            (
                "a\n  b\nhint: one\nhint: two",
                "a\n  b",
                Some("one\nhint: two"),
            ),
        ];
        for (text, m, h) in cases {
            assert_eq!(message(text), *m);
            assert_eq!(hint(text), *h);
            assert_eq!(shown(message(text), hint(text)), *text);
        }
    }
}
