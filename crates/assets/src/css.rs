//! Finds URL references in CSS with cssparser's tokenizer: `url()`, `@import`, `image-set()`, `src()`
//! and `/*# sourceMappingURL= */`.
//!
//! Because the tokenizer is real, text inside comments and strings is never taken for a reference
//! (`content: "url(x.png)"`, `/* url(old.png) */`), escapes are decoded, and nesting is followed. Blocks
//! nested deeper than [`MAX_DEPTH`] are skipped (hostile input), not recursed into.

use cssparser::{Parser, Token};

use crate::refs::{FoundRef, RefKind, Syntax};

/// Deepest block nesting that is scanned for references.
pub const MAX_DEPTH: usize = 64;

/// Scans a CSS text. `base` is added to every span (for CSS inside an HTML file).
pub fn scan_css(src: &str, base: usize) -> Vec<FoundRef> {
    let mut parser = Parser::new(src);
    let mut out = Vec::new();
    let mut scanner = Scanner {
        src,
        base,
        out: &mut out,
    };
    scanner.block(&mut parser, Context::TopLevel, 0);
    out
}

#[derive(Clone, Copy, PartialEq, Eq)]
enum Context {
    TopLevel,
    /// Inside `url(` or `src(`: the first string is the URL.
    UrlFunction,
    /// Inside `image-set(`: every string at this level is a URL.
    ImageSet,
}

struct Scanner<'a, 'o> {
    src: &'a str,
    base: usize,
    out: &'o mut Vec<FoundRef>,
}

/// What the previous significant token (at this level) makes of a following string.
#[derive(Clone, Copy, PartialEq, Eq)]
enum After {
    Nothing,
    Import,
    Namespace,
}

impl Scanner<'_, '_> {
    fn block<'i>(&mut self, parser: &mut Parser<'i>, ctx: Context, depth: usize) {
        let mut after = After::Nothing;
        let mut seen_string = false;
        loop {
            let start = parser.position().byte_index();
            let token = match parser.next_including_whitespace_and_comments() {
                Ok(t) => t.clone(),
                Err(_) => break,
            };
            let end = parser.position().byte_index();
            match token {
                Token::WhiteSpace(_) => continue,
                Token::Comment(text) => {
                    self.comment(text, start + 2);
                    continue;
                }
                Token::AtKeyword(ref name) => {
                    after = if name.eq_ignore_ascii_case("import") {
                        After::Import
                    } else if name.eq_ignore_ascii_case("namespace") {
                        After::Namespace
                    } else {
                        After::Nothing
                    };
                    continue;
                }
                Token::QuotedString(ref value) => {
                    let take = match ctx {
                        Context::UrlFunction => !seen_string,
                        Context::ImageSet => true,
                        Context::TopLevel => after == After::Import,
                    };
                    seen_string = true;
                    if take {
                        let kind = if ctx == Context::TopLevel {
                            RefKind::CssImport
                        } else {
                            RefKind::CssUrl
                        };
                        self.quoted(start, end, value, kind);
                    }
                }
                Token::UnquotedUrl(ref value) if after != After::Namespace => {
                    self.unquoted(start, end, value);
                }
                Token::Function(ref name) => {
                    let inner = if after == After::Namespace {
                        None
                    } else if name.eq_ignore_ascii_case("url") || name.eq_ignore_ascii_case("src") {
                        Some(Context::UrlFunction)
                    } else if name.eq_ignore_ascii_case("image-set")
                        || name.eq_ignore_ascii_case("-webkit-image-set")
                    {
                        Some(Context::ImageSet)
                    } else {
                        Some(Context::TopLevel)
                    };
                    if let Some(inner) = inner {
                        self.nested(parser, inner, depth);
                    }
                }
                Token::ParenthesisBlock | Token::SquareBracketBlock | Token::CurlyBracketBlock => {
                    self.nested(parser, Context::TopLevel, depth);
                }
                _ => {}
            }
            let statement_ends = matches!(token, Token::Semicolon | Token::CurlyBracketBlock);
            if after != After::Namespace || statement_ends {
                after = After::Nothing;
            }
        }
    }

    fn nested<'i>(&mut self, parser: &mut Parser<'i>, ctx: Context, depth: usize) {
        let _ = parser.parse_nested_block(|p| -> Result<(), cssparser::ParseError<()>> {
            if depth >= MAX_DEPTH {
                // Too deep: read past the block here (cssparser skips nested blocks iteratively), so
                // the next token's start position is right; nothing in it is scanned.
                while p.next_including_whitespace_and_comments().is_ok() {}
            } else {
                self.block(p, ctx, depth + 1);
            }
            Ok(())
        });
    }

    fn push(&mut self, span: std::ops::Range<usize>, url: &str, kind: RefKind, syntax: Syntax) {
        self.out.push(FoundRef {
            span: self.base + span.start..self.base + span.end,
            url: url.to_string(),
            kind,
            syntax,
        });
    }

    /// A quoted string token spanning `start..end` (quotes included, the closing one may be missing at EOF).
    fn quoted(&mut self, start: usize, end: usize, value: &str, kind: RefKind) {
        let raw = &self.src[start..end];
        let quote = raw.chars().next().unwrap_or('"');
        let inner_end = if raw.len() >= 2 && raw.ends_with(quote) {
            end - 1
        } else {
            end
        };
        self.push(
            start + 1..inner_end.max(start + 1),
            value,
            kind,
            Syntax::CssString(quote),
        );
    }

    /// An unquoted `url( value )` token spanning `start..end`.
    fn unquoted(&mut self, start: usize, end: usize, value: &str) {
        let raw = &self.src[start..end];
        let Some(open) = raw.find('(') else { return };
        let inner = &raw[open + 1..];
        let lead = inner.len() - inner.trim_start_matches(is_css_ws).len();
        let body = &inner[lead..];
        let body = body.strip_suffix(')').unwrap_or(body);
        let body_trimmed = body.trim_end_matches(is_css_ws);
        let s = start + open + 1 + lead;
        self.push(
            s..s + body_trimmed.len(),
            value,
            RefKind::CssUrl,
            Syntax::CssUnquotedUrl,
        );
    }

    /// `/*# sourceMappingURL=x.map */` (also `/*@`); `inner_start` is the byte after `/*`.
    fn comment(&mut self, text: &str, inner_start: usize) {
        if let Some((offset, url)) = source_map_comment(text) {
            let s = inner_start + offset;
            self.push(s..s + url.len(), url, RefKind::SourceMap, Syntax::Plain);
        }
    }
}

fn is_css_ws(c: char) -> bool {
    matches!(c, ' ' | '\t' | '\n' | '\r' | '\u{c}')
}

/// Parses the inside of a comment `# sourceMappingURL=URL` and returns the URL's offset and text.
pub fn source_map_comment(text: &str) -> Option<(usize, &str)> {
    let rest = text.strip_prefix(['#', '@'])?;
    let trimmed = rest.trim_start_matches([' ', '\t']);
    let value = trimmed.strip_prefix("sourceMappingURL=")?;
    let offset = text.len() - value.len();
    let url_len = value
        .find(|c: char| c.is_whitespace())
        .unwrap_or(value.len());
    if url_len == 0 {
        return None;
    }
    Some((offset, &value[..url_len]))
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Scans `src` and checks the (kind, url, raw text at span) of every reference.
    fn check(src: &str, want: &[(RefKind, &str, &str)]) {
        crate::refs::assert_refs(src, scan_css(src, 0), want);
    }

    use RefKind::{CssImport as Imp, CssUrl as Url, SourceMap as Map};

    #[test]
    fn urls() {
        check("a{background:url(x.png)}", &[(Url, "x.png", "x.png")]);
        check("a{background:url( 'x.png' )}", &[(Url, "x.png", "x.png")]);
        check("a{background:url(\"x.png\")}", &[(Url, "x.png", "x.png")]);
        check("a{background:url(  x.png  )}", &[(Url, "x.png", "x.png")]);
        check("a{background:URL(x.png)}", &[(Url, "x.png", "x.png")]);
        check(
            "a{b:url(../i/a.png?v=2#frag)}",
            &[(Url, "../i/a.png?v=2#frag", "../i/a.png?v=2#frag")],
        );
        check(
            "a{b:url(x.png) url(y.png)}",
            &[(Url, "x.png", "x.png"), (Url, "y.png", "y.png")],
        );
        check("a{b:url()}", &[(Url, "", "")]);
        check(
            "@media (min-width:1px){a{b:url(deep.png)}}",
            &[(Url, "deep.png", "deep.png")],
        );
        check("a{b:url(ünï.png)}", &[(Url, "ünï.png", "ünï.png")]);
    }

    #[test]
    fn imports() {
        check("@import 'a.css';", &[(Imp, "a.css", "a.css")]);
        check("@import \"a.css\" screen;", &[(Imp, "a.css", "a.css")]);
        check("@import url(a.css);", &[(Url, "a.css", "a.css")]);
        check(
            "@import url(\"a.css\") layer(x);",
            &[(Url, "a.css", "a.css")],
        );
        check("@IMPORT 'a.css';", &[(Imp, "a.css", "a.css")]);
        check("@import/**/'a.css';", &[(Imp, "a.css", "a.css")]);
        check("@charset 'utf-8';", &[]);
        check("@namespace svg url(http://www.w3.org/2000/svg);", &[]);
        check(
            "@namespace url(x.css); a{b:url(y.png)}",
            &[(Url, "y.png", "y.png")],
        );
    }

    #[test]
    fn font_face_and_image_set() {
        check(
            "@font-face{src:url('f.eot?#iefix') format('embedded-opentype'),url(f.woff2) format('woff2')}",
            &[
                (Url, "f.eot?#iefix", "f.eot?#iefix"),
                (Url, "f.woff2", "f.woff2"),
            ],
        );
        check(
            "@font-face{src:src('f.woff2')}",
            &[(Url, "f.woff2", "f.woff2")],
        );
        check(
            "a{b:image-set('a.png' 1x, \"b.png\" 2x)}",
            &[(Url, "a.png", "a.png"), (Url, "b.png", "b.png")],
        );
        check(
            "a{b:-webkit-image-set(url(a.png) 1x, 'b.png' 2x)}",
            &[(Url, "a.png", "a.png"), (Url, "b.png", "b.png")],
        );
        check(
            "a{b:image-set(url('a.png' ) 1x type('image/png'))}",
            &[(Url, "a.png", "a.png")],
        );
    }

    #[test]
    fn decoys_are_not_references() {
        check("/* url(no.png) @import 'no.css'; */", &[]);
        check("a{content:\"url(no.png)\"}", &[]);
        check("a{content:'@import \"no.css\"'}", &[]);
        check("a{font-family:'x.woff'}", &[]);
        check("a{b:attr(data-x url)}", &[]);
        check("a{b:format('woff2')}", &[]);
    }

    #[test]
    fn data_uris_and_escapes() {
        let svg = "data:image/svg+xml;utf8,<svg xmlns='http://www.w3.org/2000/svg'><path d='M0 0L1 1(2)'/></svg>";
        let src = format!("a{{b:url(\"{svg}\")}}");
        check(&src, &[(Url, svg, svg)]);
        check(
            "a{b:url(data:image/png;base64,iVBO=)}",
            &[(
                Url,
                "data:image/png;base64,iVBO=",
                "data:image/png;base64,iVBO=",
            )],
        );
        // An unquoted data URI with parentheses is a bad-url token: nothing to rewrite.
        check(
            "a{b:url(data:x(y))} c{d:url(z.png)}",
            &[(Url, "z.png", "z.png")],
        );
        check(
            r#"a{b:url("a\"b.png")}"#,
            &[(Url, "a\"b.png", r#"a\"b.png"#)],
        );
        check(r"a{b:url(a\ b.png)}", &[(Url, "a b.png", r"a\ b.png")]);
        check(
            r"a{b:url('caf\e9 .png')}",
            &[(Url, "café.png", r"caf\e9 .png")],
        );
    }

    #[test]
    fn source_maps() {
        check(
            "a{}\n/*# sourceMappingURL=a.css.map */",
            &[(Map, "a.css.map", "a.css.map")],
        );
        check(
            "a{}\n/*@ sourceMappingURL=a.css.map*/",
            &[(Map, "a.css.map*/", "a.css.map*/")].map(|_| (Map, "a.css.map", "a.css.map")),
        );
        check("/* sourceMappingURL=no.map */", &[]);
        check("a{content:'/*# sourceMappingURL=no.map */'}", &[]);
    }

    #[test]
    fn hostile_input_does_not_panic() {
        let deep = format!("{}url(x.png){}", "a{".repeat(10_000), "}".repeat(10_000));
        let _ = scan_css(&deep, 0);
        let deep_fn = format!("{}url(y.png)", "f(".repeat(50_000));
        let _ = scan_css(&deep_fn, 0);
        for s in [
            "url(",
            "url('",
            "@import",
            "@import '",
            "/*",
            "a{b:url(\"x",
            "\\",
            "url(\\",
        ] {
            let _ = scan_css(s, 0);
        }
        check("a{b:url('x.png", &[(Url, "x.png", "x.png")]);
        // A block past MAX_DEPTH is skipped, and what follows it keeps exact spans (found by fuzzing).
        let src = format!(
            "{}(x)/*# sourceMappingURL=\u{fffd}.map */{}",
            "(".repeat(MAX_DEPTH),
            ")".repeat(MAX_DEPTH)
        );
        check(&src, &[(Map, "\u{fffd}.map", "\u{fffd}.map")]);
    }

    #[test]
    fn base_offset_shifts_spans() {
        let r = scan_css("a{b:url(x.png)}", 100);
        assert_eq!(r[0].span, 108..113);
    }
}
