//! CSS `image-set()` for responsive images (`[build.images] css-image-set`): the declarations of a
//! stylesheet whose whole value is one `url()` of an image property, and, for one whose image has
//! variants, a second declaration of the same property inserted right after it:
//!
//! ```css
//! .hero { background-image: url(hero.3f2a9c1b0d4e.jpg); }
//! /* becomes */
//! .hero { background-image: url(hero.3f2a9c1b0d4e.jpg);background-image:image-set(url("hero.1600.77ab….webp") type("image/webp"), url("hero.3f2a9c1b0d4e.jpg") type("image/jpeg")); }
//! ```
//!
//! A browser that does not understand `image-set()` with `type()` drops the second declaration and
//! keeps the first; one that does takes the first format it supports. Insertions only: every byte of
//! the stylesheet stays where it was. Candidates are the source's own width only: `image-set()`
//! chooses by resolution and type, not by layout width, so narrower variants have no place in it.
//! Shorthands (`background: url(x) no-repeat`), values with several images or other tokens, and
//! declarations already using `image-set()` are left alone.

use cssparser::{Parser, Token};
use serde::{Deserialize, Serialize};

use super::markup::Urls;
use super::{ImageSet, Settings};
use crate::refs::Syntax;

/// The properties whose single `url()` value may become an `image-set()`.
pub const PROPERTIES: [&str; 6] = [
    "background-image",
    "mask-image",
    "-webkit-mask-image",
    "border-image-source",
    "list-style-image",
    "content",
];

/// Deepest block nesting scanned.
const MAX_DEPTH: usize = 64;

/// A declaration whose whole value is one `url()` of an image property.
#[derive(Debug, Clone, PartialEq, Eq, Default, Serialize, Deserialize)]
pub struct ImageDecl {
    /// Start of the URL's span (the reference it belongs to, as `css::scan_css` reports it).
    pub url: usize,
    /// Where the new declaration goes: right after this one's value (and its `!important`).
    pub insert_at: usize,
    /// The property, lower case.
    pub property: String,
    pub important: bool,
}

/// The image declarations of a stylesheet.
pub fn declarations(src: &str) -> Vec<ImageDecl> {
    let mut out = Vec::new();
    if !src
        .as_bytes()
        .windows(4)
        .any(|w| w.eq_ignore_ascii_case(b"url("))
    {
        return out;
    }
    let mut parser = Parser::new(src);
    block(src, &mut parser, 0, &mut out);
    out
}

/// Where a declaration's parse is.
enum Stage {
    /// At the start of a statement.
    Start,
    /// After a property name.
    Name(String),
    /// In the value.
    Value(Value),
    /// Not a declaration we handle: skipped up to the next `;` or block.
    Skip,
}

struct Value {
    property: String,
    url: Option<usize>,
    /// Tokens other than the one URL (and `!important`).
    others: bool,
    urls: usize,
    bang: bool,
    important: bool,
    end: usize,
}

fn block<'i>(src: &str, parser: &mut Parser<'i>, depth: usize, out: &mut Vec<ImageDecl>) {
    let mut stage = Stage::Start;
    loop {
        let start = parser.position().byte_index();
        let token = match parser.next_including_whitespace_and_comments() {
            Ok(t) => t.clone(),
            Err(_) => break,
        };
        let end = parser.position().byte_index();
        if matches!(token, Token::WhiteSpace(_) | Token::Comment(_)) {
            continue;
        }
        if let Token::CurlyBracketBlock = token {
            // A rule's or an at-rule's block (so what came before was a selector or a prelude).
            if depth < MAX_DEPTH {
                let _ = parser.parse_nested_block(|p| -> Result<(), cssparser::ParseError<()>> {
                    block(src, p, depth + 1, out);
                    Ok(())
                });
            }
            stage = Stage::Start;
            continue;
        }
        if let Token::Semicolon = token {
            if let Stage::Value(v) = stage {
                finish(v, out);
            }
            stage = Stage::Start;
            continue;
        }
        stage = match stage {
            Stage::Start => match token {
                Token::Ident(name) => Stage::Name(name.to_ascii_lowercase()),
                _ => Stage::Skip,
            },
            Stage::Name(property) => match token {
                Token::Colon => Stage::Value(Value {
                    property,
                    url: None,
                    others: false,
                    urls: 0,
                    bang: false,
                    important: false,
                    end,
                }),
                _ => Stage::Skip,
            },
            Stage::Value(mut v) => {
                match token {
                    Token::UnquotedUrl(_) => {
                        v.urls += 1;
                        v.url = unquoted_start(src, start, end);
                    }
                    Token::Function(ref name) if name.eq_ignore_ascii_case("url") => {
                        v.urls += 1;
                        v.url = parser
                            .parse_nested_block(|p| -> Result<_, cssparser::ParseError<()>> {
                                let mut found = None;
                                let mut n = 0;
                                while let Ok(t) = p.next() {
                                    n += 1;
                                    if let Token::QuotedString(_) = t {
                                        // The span starts after the opening quote.
                                        found = Some(p.position().byte_index());
                                    }
                                }
                                Ok((n == 1).then_some(found).flatten())
                            })
                            .ok()
                            .flatten()
                            .and_then(|after| string_start(src, start, after));
                    }
                    Token::Delim('!') if !v.bang => v.bang = true,
                    Token::Ident(ref i) if v.bang && i.eq_ignore_ascii_case("important") => {
                        v.important = true;
                    }
                    _ => v.others = true,
                }
                if v.bang && !matches!(token, Token::Delim('!')) && !v.important {
                    v.others = true;
                }
                v.end = parser.position().byte_index();
                Stage::Value(v)
            }
            Stage::Skip => Stage::Skip,
        };
    }
    if let Stage::Value(v) = stage {
        finish(v, out);
    }
}

fn finish(v: Value, out: &mut Vec<ImageDecl>) {
    if v.urls != 1 || v.others || (v.bang && !v.important) {
        return;
    }
    if let Some(url) = v.url
        && PROPERTIES.contains(&v.property.as_str())
    {
        out.push(ImageDecl {
            url,
            insert_at: v.end,
            property: v.property,
            important: v.important,
        });
    }
}

/// The start of an unquoted `url( value )` token's value (as `css::scan_css` spans it).
fn unquoted_start(src: &str, start: usize, end: usize) -> Option<usize> {
    let raw = src.get(start..end)?;
    let open = raw.find('(')?;
    let inner = &raw[open + 1..];
    let lead = inner.len()
        - inner
            .trim_start_matches([' ', '\t', '\n', '\r', '\u{c}'])
            .len();
    Some(start + open + 1 + lead)
}

/// The start of the first quoted string's content in `url(` … `)` from `start` (the function's start)
/// up to `after` (just past the string).
fn string_start(src: &str, start: usize, after: usize) -> Option<usize> {
    let raw = src.get(start..after)?;
    let q = raw.find(['"', '\''])?;
    Some(start + q + 1)
}

/// The declaration inserted after `d` for an image with variants: its formats at the source's own
/// width, in the browser's order of preference, then the original; `None` when the image has no
/// other format at that width.
pub fn image_set_declaration(
    d: &ImageDecl,
    set: &ImageSet,
    s: &Settings<'_>,
    urls: &Urls<'_>,
) -> Option<String> {
    let quoted = |url: &str| Syntax::CssString('"').encode(url);
    let mut candidates: Vec<String> = s
        .extras(set.fallback)
        .into_iter()
        .filter_map(|f| {
            let v = set
                .variants
                .iter()
                .find(|v| v.format == f && v.width == set.width)?;
            let name = v.path.rsplit('/').next().unwrap_or(&v.path);
            Some(format!(
                "url(\"{}\") type(\"{}\")",
                quoted(&format!("{}{}", urls.base, (urls.encode)(name))),
                f.mime()
            ))
        })
        .collect();
    if candidates.is_empty() {
        return None;
    }
    candidates.push(format!(
        "url(\"{}\") type(\"{}\")",
        quoted(&format!("{}{}", urls.base, urls.original)),
        set.fallback.mime()
    ));
    Some(format!(
        ";{}:image-set({}){}",
        d.property,
        candidates.join(", "),
        if d.important { " !important" } else { "" }
    ))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::css::scan_css;

    /// (property, url text at the span, important) of each declaration found.
    fn found(src: &str) -> Vec<(String, String, bool)> {
        let refs = scan_css(src, 0);
        declarations(src)
            .into_iter()
            .map(|d| {
                let r = refs
                    .iter()
                    .find(|r| r.span.start == d.url)
                    .unwrap_or_else(|| panic!("{d:?} is not at a reference's span in {src:?}"));
                assert!(d.insert_at <= src.len());
                (d.property, r.url.clone(), d.important)
            })
            .collect()
    }

    #[test]
    fn whole_value_urls_of_image_properties_only() {
        let src = r#"
.a { background-image: url(a.jpg) }
.b { Background-Image : url( "b.png" ) !important; color: red }
.c { background: url(c.jpg) no-repeat; }
.d { background-image: url(d1.jpg), url(d2.jpg); }
.e { background-image: image-set(url(e.jpg) 1x); }
.f { mask-image: url('f.png'); list-style-image: url(f2.png); content: url(f3.png) }
.g { color: red; border-image-source: url(g.png) }
.h { width: url(h.png); }
.i { background-image: url(i.jpg) ! important; }
.j { background-image: url(j.jpg) !ignored; }
@media (min-width: 40em) { .k { background-image: url(k.jpg); } }
.l { &:hover { background-image: url(l.jpg) } }
/* .m { background-image: url(m.jpg) } */
.n { content: "background-image: url(n.jpg)" }
"#;
        assert_eq!(
            found(src),
            [
                ("background-image".into(), "a.jpg".into(), false),
                ("background-image".into(), "b.png".into(), true),
                ("mask-image".into(), "f.png".into(), false),
                ("list-style-image".into(), "f2.png".into(), false),
                ("content".into(), "f3.png".into(), false),
                ("border-image-source".into(), "g.png".into(), false),
                ("background-image".into(), "i.jpg".into(), true),
                ("background-image".into(), "k.jpg".into(), false),
                ("background-image".into(), "l.jpg".into(), false),
            ]
        );
    }

    #[test]
    fn the_insertion_point_is_right_after_the_value() {
        let src =
            ".a{background-image:url(a.jpg)}\n.b { background-image: url(b.jpg) !important ; }";
        let d = declarations(src);
        assert_eq!(&src[..d[0].insert_at], ".a{background-image:url(a.jpg)");
        assert!(src[..d[1].insert_at].ends_with("url(b.jpg) !important"));
    }

    #[test]
    fn hostile_input_does_not_panic() {
        for src in [
            "",
            "url(",
            "a{background-image:url(",
            "a{background-image:url(\"x",
            "a{background-image:url(x.png)!",
            &"a{".repeat(10_000),
            &format!("a{{background-image:{}url(y.png)", "f(".repeat(50_000)),
        ] {
            let _ = declarations(src);
        }
    }
}
