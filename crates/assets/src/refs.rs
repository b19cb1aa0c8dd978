//! A reference found in a source file, and how to write its replacement back in place.
//!
//! Scanners (CSS, HTML, JS) report the exact byte span of each URL as written. When the written text
//! equals the decoded URL (the common case) the rewrite splices only the last path segment, so every other
//! byte, including `%`-escapes, query and fragment, is preserved. When the text carries host-language
//! escapes (`\"` in CSS, `&amp;` in HTML), the whole URL is re-encoded in the same syntax.

use std::ops::Range;

/// What kind of reference it is; used in warnings and to decide which references make a dependency.
#[derive(
    Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, serde::Serialize, serde::Deserialize,
)]
pub enum RefKind {
    /// CSS `url()`, `src()`, `image-set()` string.
    CssUrl,
    /// CSS `@import "x.css"`.
    CssImport,
    /// `sourceMappingURL` comment in CSS or JS.
    SourceMap,
    /// An HTML attribute holding one URL (`src`, `href`, `poster`, …).
    HtmlAttr,
    /// One candidate of an HTML `srcset`.
    Srcset,
    /// A navigation link (`<a href>`, `<area href>`, `<iframe src>`): a missing target is not reported,
    /// since it is usually a route of the application rather than a file.
    HtmlLink,
    /// A static `import`/`export … from` with a relative specifier.
    JsImport,
    /// A dynamic `import("…")`.
    JsDynamicImport,
    /// `new URL("…", import.meta.url)`.
    JsNewUrl,
}

impl RefKind {
    /// A short human name used in messages.
    pub fn describe(self) -> &'static str {
        match self {
            RefKind::CssUrl => "css url()",
            RefKind::CssImport => "css @import",
            RefKind::SourceMap => "sourceMappingURL",
            RefKind::HtmlAttr => "html attribute",
            RefKind::Srcset => "html srcset",
            RefKind::HtmlLink => "html link",
            RefKind::JsImport => "js import",
            RefKind::JsDynamicImport => "js import()",
            RefKind::JsNewUrl => "js new URL()",
        }
    }
}

/// How the URL is written, to re-encode a replacement when the raw text has escapes.
#[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub enum Syntax {
    /// A CSS string with this quote character.
    CssString(char),
    /// The inside of an unquoted CSS `url( … )`.
    CssUnquotedUrl,
    /// An HTML attribute value with this quote character (or none).
    HtmlAttr(Option<char>),
    /// CSS inside an HTML attribute (`style="…"`): a CSS string with `css_quote` (or an unquoted `url()`
    /// when `None`), inside an attribute value quoted with `attr_quote` (or unquoted).
    CssInHtmlAttr {
        css_quote: Option<char>,
        attr_quote: Option<char>,
    },
    /// A JS string literal with this quote character.
    JsString(char),
    /// Free text that cannot hold escapes (comments).
    Plain,
}

/// One reference found in a file.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct FoundRef {
    /// Byte range of the URL text in the file.
    pub span: Range<usize>,
    /// The decoded URL (host-language escapes resolved; `%`-escapes kept).
    pub url: String,
    pub kind: RefKind,
    pub syntax: Syntax,
}

impl FoundRef {
    /// True when the bytes at `span` are exactly `url`, so a splice can work on the raw text.
    pub fn is_verbatim(&self, src: &[u8]) -> bool {
        src.get(self.span.clone()) == Some(self.url.as_bytes())
    }
}

impl Syntax {
    /// Encodes a URL so that it reads back as `url` in this syntax.
    pub fn encode(self, url: &str) -> String {
        match self {
            Syntax::CssString(q) => css_escape(url, Some(q), false),
            Syntax::CssUnquotedUrl => css_escape(url, None, false),
            Syntax::HtmlAttr(q) => html_attr_escape(url, q),
            // Plain CSS escapes only, so the value needs no character reference (an attribute with one
            // is not scanned for CSS, see `html.rs`).
            Syntax::CssInHtmlAttr { css_quote, .. } => css_escape(url, css_quote, true),
            Syntax::JsString(q) => {
                let mut out = String::with_capacity(url.len() + 2);
                for c in url.chars() {
                    match c {
                        '\\' => out.push_str("\\\\"),
                        '\n' => out.push_str("\\n"),
                        '\r' => out.push_str("\\r"),
                        '\u{2028}' => out.push_str("\\u2028"),
                        '\u{2029}' => out.push_str("\\u2029"),
                        '$' if q == '`' => out.push_str("\\$"),
                        c if c == q => {
                            out.push('\\');
                            out.push(c);
                        }
                        c => out.push(c),
                    }
                }
                out
            }
            Syntax::Plain => url.to_string(),
        }
    }
}

/// The inside of a CSS string quoted with `quote`, or of an unquoted `url()` when `quote` is `None`.
/// `in_attr`: the CSS sits in an HTML attribute value, so the characters that would end or confuse the
/// value (quotes, `&`, `<`, `>`, `=`, backtick, whitespace) are written as six-digit CSS escapes, which need
/// no terminating space.
fn css_escape(s: &str, quote: Option<char>, in_attr: bool) -> String {
    let mut out = String::with_capacity(s.len() + 2);
    for c in s.chars() {
        let control = (c as u32) < 0x20 || c == '\u{7f}';
        let css_special = control
            || match quote {
                Some(q) => c == q || c == '\\',
                None => matches!(c, '"' | '\'' | '(' | ')' | '\\') || c.is_ascii_whitespace(),
            };
        let attr_special = in_attr
            && (matches!(c, '"' | '\'' | '&' | '<' | '>' | '=' | '`') || c.is_ascii_whitespace());
        if attr_special || (in_attr && css_special) {
            out.push_str(&format!("\\{:06x}", c as u32));
        } else if control || c.is_ascii_whitespace() && css_special {
            out.push_str(&format!("\\{:x} ", c as u32));
        } else if css_special {
            out.push('\\');
            out.push(c);
        } else {
            out.push(c);
        }
    }
    out
}

/// An HTML attribute value quoted with `quote` (or unquoted: then whitespace and the characters that
/// would end or confuse the value are written as character references).
fn html_attr_escape(s: &str, quote: Option<char>) -> String {
    let mut out = String::with_capacity(s.len() + 2);
    for c in s.chars() {
        match c {
            '&' => out.push_str("&amp;"),
            '"' if quote != Some('\'') => out.push_str("&quot;"),
            '\'' if quote != Some('"') => out.push_str("&#39;"),
            '<' if quote.is_none() => out.push_str("&lt;"),
            '>' if quote.is_none() => out.push_str("&gt;"),
            '=' | '`' if quote.is_none() => out.push_str(&format!("&#{};", c as u32)),
            c if quote.is_none() && (c.is_ascii_whitespace() || c == '\0') => {
                out.push_str(&format!("&#{};", c as u32))
            }
            c => out.push(c),
        }
    }
    out
}

/// Test helper: checks the (kind, url, raw text at span) of every reference a scanner found in `src`.
#[cfg(test)]
pub(crate) fn assert_refs(src: &str, found: Vec<FoundRef>, want: &[(RefKind, &str, &str)]) {
    let got: Vec<(RefKind, String, String)> = found
        .into_iter()
        .map(|r| (r.kind, r.url.clone(), src[r.span].to_string()))
        .collect();
    let want: Vec<(RefKind, String, String)> = want
        .iter()
        .map(|(k, u, raw)| (*k, u.to_string(), raw.to_string()))
        .collect();
    assert_eq!(got, want, "\nsource: {src}");
}

/// Applies non-overlapping edits (sorted or not) to `src`. Overlapping edits keep the first in order.
pub fn splice(src: &[u8], edits: &mut [(Range<usize>, String)]) -> Vec<u8> {
    edits.sort_by_key(|(r, _)| r.start);
    let extra: usize = edits.iter().map(|(_, s)| s.len()).sum();
    let mut out = Vec::with_capacity(src.len() + extra);
    let mut at = 0;
    for (r, s) in edits.iter() {
        if r.start < at || r.end > src.len() || r.start > r.end {
            continue;
        }
        out.extend_from_slice(&src[at..r.start]);
        out.extend_from_slice(s.as_bytes());
        at = r.end;
    }
    out.extend_from_slice(&src[at..]);
    out
}

/// Converts byte offsets to 1-based line and column (in characters), for messages.
pub struct LineIndex {
    starts: Vec<usize>,
}

impl LineIndex {
    pub fn new(src: &[u8]) -> LineIndex {
        let mut starts = vec![0];
        starts.extend(
            src.iter()
                .enumerate()
                .filter(|(_, b)| **b == b'\n')
                .map(|(i, _)| i + 1),
        );
        LineIndex { starts }
    }

    /// 1-based (line, column) of a byte offset; the column counts characters.
    pub fn line_col(&self, src: &[u8], offset: usize) -> (usize, usize) {
        let line = self.starts.partition_point(|&s| s <= offset).max(1);
        let start = self.starts[line - 1];
        let end = offset.min(src.len()).max(start);
        let col = String::from_utf8_lossy(&src[start..end]).chars().count() + 1;
        (line, col)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn encodes_in_each_syntax() {
        for (syntax, url, want) in [
            (Syntax::CssString('"'), r#"a"b\c.png"#, r#"a\"b\\c.png"#),
            (Syntax::CssString('\''), r#"a'b".png"#, r#"a\'b".png"#),
            (Syntax::CssUnquotedUrl, "a b(1).png", r"a\20 b\(1\).png"),
            (Syntax::CssString('"'), "a\nb", r"a\a b"),
            (Syntax::HtmlAttr(None), "a b=c.png", "a&#32;b&#61;c.png"),
            (
                Syntax::CssInHtmlAttr {
                    css_quote: Some('\''),
                    attr_quote: Some('"'),
                },
                "a\"b&c.png",
                r"a\000022b\000026c.png",
            ),
            (
                Syntax::CssInHtmlAttr {
                    css_quote: None,
                    attr_quote: None,
                },
                "a b(1).png",
                r"a\000020b\0000281\000029.png",
            ),
            (
                Syntax::HtmlAttr(Some('"')),
                "a.png?x=1&y=\"2\"",
                "a.png?x=1&amp;y=&quot;2&quot;",
            ),
            (Syntax::HtmlAttr(Some('\'')), "it's.png", "it&#39;s.png"),
            (Syntax::JsString('\''), "./it's.js", r"./it\'s.js"),
            (Syntax::JsString('`'), "./a${b}.js", r"./a\${b}.js"),
            (Syntax::Plain, "a.map", "a.map"),
        ] {
            assert_eq!(syntax.encode(url), want, "{syntax:?} {url}");
        }
    }

    #[test]
    fn splices() {
        let src = b"0123456789";
        let mut edits = vec![
            (6..8, "X".to_string()),
            (1..2, "ab".to_string()),
            (7..9, "no".to_string()),
        ];
        assert_eq!(splice(src, &mut edits), b"0ab2345X89");
    }

    #[test]
    fn line_cols() {
        let src = "ab\ncé d\n\nx".as_bytes();
        let idx = LineIndex::new(src);
        assert_eq!(idx.line_col(src, 0), (1, 1));
        assert_eq!(idx.line_col(src, 3), (2, 1));
        assert_eq!(idx.line_col(src, 7), (2, 4));
        assert_eq!(idx.line_col(src, 10), (4, 1));
    }
}
