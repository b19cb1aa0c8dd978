//! Finds URL references in HTML with lol_html's tokenizer: `src`, `href`, `srcset`, `imagesrcset`,
//! `poster`, `<object data>`, SVG `xlink:href`, inline `<style>` and `style=""`, and imports in inline
//! `<script type=module>`.
//!
//! lol_html parses the document (so markup inside comments, `<script>` text or attribute values is never
//! taken for a tag) and gives each start tag's byte range; the attribute value spans inside that range
//! are then read with the HTML attribute grammar, so edits splice into the original bytes and everything
//! else, quoting included, stays as written.

use std::cell::RefCell;
use std::ops::Range;

use lol_html::{HtmlRewriter, Settings, element, text};

use crate::refs::{FoundRef, RefKind, Syntax};
use crate::{css, js};

/// Attributes that hold one URL.
const URL_ATTRS: &[&str] = &["src", "href", "poster", "xlink:href"];
/// Attributes that hold a `srcset` list.
const SRCSET_ATTRS: &[&str] = &["srcset", "imagesrcset"];

/// The result of scanning one HTML document.
#[derive(Debug, Default)]
pub struct HtmlScan {
    pub refs: Vec<FoundRef>,
    /// The first `<base href>`, when present: relative references resolve against it.
    pub base_href: Option<String>,
    /// `integrity=` attributes (subresource integrity) of tags whose `src`/`href` is a reference: when
    /// the build changes the referenced file's bytes, the digest must change with them.
    pub integrity: Vec<Integrity>,
    /// Every `<img>` start tag, in document order, for the responsive-image rewrite (`[build.images]`).
    pub images: Vec<ImgTag>,
}

/// An `<img>` start tag: where it is and which of the attributes the image rewrite may add it has.
#[derive(Debug, Clone, PartialEq, Eq, Default, serde::Serialize, serde::Deserialize)]
pub struct ImgTag {
    /// The start tag's byte range (`<img …>`).
    pub start: usize,
    pub end: usize,
    /// Where new attributes go: before the closing `>` (or `/>`).
    pub insert_at: usize,
    /// Start of the `src` value's span (the reference it belongs to), when it has one.
    pub src: Option<usize>,
    /// Its 0-based position among the page's `<img>` tags.
    pub index: u32,
    /// Inside a `<picture>` already.
    pub in_picture: bool,
    /// Marked eager (`loading="eager"` or `fetchpriority="high"`).
    pub eager: bool,
    /// Lower-case names of its attributes.
    pub attrs: Vec<String>,
    /// Its own `sizes`, as written (entities and all), when it has one.
    pub sizes: Option<String>,
}

impl ImgTag {
    /// Has the attribute `name` (lower case).
    pub fn has(&self, name: &str) -> bool {
        self.attrs.iter().any(|a| a == name)
    }
}

/// An `integrity` attribute and the reference it pins.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub struct Integrity {
    /// Start of the pinned reference's span (the `src`/`href` value) in the document.
    pub ref_start: usize,
    /// The attribute value's span (the digests, e.g. `sha384-…`).
    pub start: usize,
    pub end: usize,
    /// The value as written.
    pub value: String,
}

/// A failure of the HTML tokenizer (e.g. its memory limit on a pathological document).
#[derive(Debug, thiserror::Error)]
#[error("html tokenizer failed: {0}")]
pub struct HtmlError(String);

/// Scans an HTML document for references. `js_imports` also scans inline module scripts.
pub fn scan_html(src: &[u8], js_imports: bool) -> Result<HtmlScan, HtmlError> {
    let scan = RefCell::new(HtmlScan::default());
    // Open `<picture>` elements around the current position.
    let pictures = std::rc::Rc::new(std::cell::Cell::new(0u32));
    // Inline <style> / <script type=module> text: (kind, start, end) accumulated over the text chunks.
    let raw_text: RefCell<Vec<(bool, Range<usize>)>> = RefCell::new(Vec::new());
    let open_text: RefCell<Option<(bool, Range<usize>)>> = RefCell::new(None);
    let text_chunk = |is_css: bool, chunk: &lol_html::html_content::TextChunk| {
        let loc = chunk.source_location().bytes();
        let mut open = open_text.borrow_mut();
        match open.as_mut() {
            Some((_, r)) => r.end = loc.end,
            None => *open = Some((is_css, loc.clone())),
        }
        if chunk.last_in_text_node()
            && let Some(done) = open.take()
        {
            raw_text.borrow_mut().push(done);
        }
    };
    let mut rewriter = HtmlRewriter::new(
        Settings::new()
            .append_element_content_handler(element!("*", |el| {
                let tag = el.source_location().bytes();
                let name = el.tag_name();
                let mut s = scan.borrow_mut();
                if name == "base" && s.base_href.is_none() {
                    s.base_href = el.get_attribute("href");
                }
                let before = s.refs.len();
                scan_tag(src, tag.clone(), &name, &mut s.refs);
                if let Some(i) = integrity_of(src, tag.clone(), &s.refs[before..]) {
                    s.integrity.push(i);
                }
                if name == "picture"
                    && let Some(handlers) = el.end_tag_handlers()
                {
                    pictures.set(pictures.get() + 1);
                    let open = pictures.clone();
                    let close: lol_html::EndTagHandler<'static> = Box::new(move |_| {
                        open.set(open.get().saturating_sub(1));
                        Ok(())
                    });
                    handlers.push(close);
                } else if name == "img" {
                    let index = s.images.len() as u32;
                    if let Some(img) = img_tag(src, tag, index, pictures.get() > 0) {
                        s.images.push(img);
                    }
                }
                Ok(())
            }))
            .append_element_content_handler(text!("style", |t| {
                text_chunk(true, t);
                Ok(())
            }))
            .append_element_content_handler(text!("script[type=module]", |t| {
                if js_imports {
                    text_chunk(false, t);
                }
                Ok(())
            })),
        |_: &[u8]| {},
    );
    rewriter.write(src).map_err(|e| HtmlError(e.to_string()))?;
    rewriter.end().map_err(|e| HtmlError(e.to_string()))?;
    let mut scan = scan.into_inner();
    for (is_css, range) in raw_text.into_inner() {
        let Ok(text) = std::str::from_utf8(&src[range.clone()]) else {
            continue;
        };
        if is_css {
            scan.refs.extend(css::scan_css(text, range.start));
        } else {
            scan.refs.extend(js_refs(text, range.start));
        }
    }
    scan.refs.sort_by_key(|r| r.span.start);
    Ok(scan)
}

/// Relative module imports of an inline script, as references.
fn js_refs(text: &str, base: usize) -> impl Iterator<Item = FoundRef> + '_ {
    js::scan_js(text, true).into_iter().filter_map(move |r| {
        let kind = match r.kind {
            js::JsRefKind::StaticImport | js::JsRefKind::ExportFrom => RefKind::JsImport,
            js::JsRefKind::DynamicImport => RefKind::JsDynamicImport,
            js::JsRefKind::NewUrl => RefKind::JsNewUrl,
            js::JsRefKind::SourceMap => return None,
        };
        if !is_relative_specifier(&r.value) {
            return None;
        }
        Some(FoundRef {
            span: base + r.span.start..base + r.span.end,
            url: r.value,
            kind,
            syntax: Syntax::JsString(r.quote.unwrap_or('"')),
        })
    })
}

/// `./x`, `../x` or `/x`: the specifiers a browser resolves as URLs (bare `react` needs an import map).
pub fn is_relative_specifier(s: &str) -> bool {
    s.starts_with("./") || s.starts_with("../") || (s.starts_with('/') && !s.starts_with("//"))
}

/// One attribute of a raw start tag.
struct RawAttr {
    name: Range<usize>,
    value: Option<(Range<usize>, Option<char>)>,
}

/// Reads the attributes of a raw start tag `<name a="1" b='2' c=3 d>` (HTML tokenizer grammar).
fn raw_attrs(tag: &[u8]) -> Vec<RawAttr> {
    let ws = |b: u8| matches!(b, b' ' | b'\t' | b'\n' | b'\r' | b'\x0c');
    let mut i = 1; // skip '<'
    while i < tag.len() && !ws(tag[i]) && tag[i] != b'/' && tag[i] != b'>' {
        i += 1;
    }
    let mut out = Vec::new();
    loop {
        while i < tag.len() && (ws(tag[i]) || tag[i] == b'/') {
            i += 1;
        }
        if i >= tag.len() || tag[i] == b'>' {
            break;
        }
        let name_start = i;
        i += 1; // a name may start with '='
        while i < tag.len() && !ws(tag[i]) && !matches!(tag[i], b'/' | b'>' | b'=') {
            i += 1;
        }
        let name = name_start..i;
        let mut j = i;
        while j < tag.len() && ws(tag[j]) {
            j += 1;
        }
        if j < tag.len() && tag[j] == b'=' {
            j += 1;
            while j < tag.len() && ws(tag[j]) {
                j += 1;
            }
            let value = match tag.get(j) {
                Some(&q @ (b'"' | b'\'')) => {
                    let start = j + 1;
                    let end = tag[start..]
                        .iter()
                        .position(|&b| b == q)
                        .map_or(tag.len(), |p| start + p);
                    j = (end + 1).min(tag.len());
                    (start..end, Some(q as char))
                }
                _ => {
                    let start = j;
                    while j < tag.len() && !ws(tag[j]) && tag[j] != b'>' {
                        j += 1;
                    }
                    (start..j, None)
                }
            };
            out.push(RawAttr {
                name,
                value: Some(value),
            });
            i = j;
        } else {
            out.push(RawAttr { name, value: None });
        }
    }
    out
}

fn scan_tag(src: &[u8], tag: Range<usize>, tag_name: &str, out: &mut Vec<FoundRef>) {
    let Some(raw) = src.get(tag.clone()) else {
        return;
    };
    let attrs = raw_attrs(raw);
    if tag_name == "link" && !links_a_resource(raw, &attrs) {
        // `<link rel=alternate|canonical|manifest|…>`: a URL that others fetch by that name (feed readers,
        // crawlers, installed web apps); never renamed.
        return;
    }
    let mut seen: Vec<&[u8]> = Vec::new();
    for attr in attrs {
        let name = &raw[attr.name.clone()];
        // The first of duplicate attributes wins, as in browsers.
        if seen.iter().any(|n| n.eq_ignore_ascii_case(name)) {
            continue;
        }
        seen.push(name);
        let Some((vr, quote)) = attr.value else {
            continue;
        };
        let value = &raw[vr.clone()];
        let abs = tag.start + vr.start..tag.start + vr.end;
        let is = |list: &[&str]| list.iter().any(|n| n.as_bytes().eq_ignore_ascii_case(name));
        if is(URL_ATTRS) || (tag_name == "object" && name.eq_ignore_ascii_case(b"data")) {
            let kind = if matches!(tag_name, "a" | "area" | "iframe" | "frame") {
                RefKind::HtmlLink
            } else {
                RefKind::HtmlAttr
            };
            url_attr(value, abs, quote, kind, out);
        } else if is(SRCSET_ATTRS) {
            srcset(value, abs.start, quote, out);
        } else if name.eq_ignore_ascii_case(b"style")
            && !value.contains(&b'&')
            && let Ok(text) = std::str::from_utf8(value)
        {
            // A replacement must be valid CSS *and* valid inside this attribute value.
            out.extend(css::scan_css(text, abs.start).into_iter().map(|mut r| {
                let css_quote = match r.syntax {
                    Syntax::CssString(q) => Some(q),
                    _ => None,
                };
                r.syntax = Syntax::CssInHtmlAttr {
                    css_quote,
                    attr_quote: quote,
                };
                r
            }));
        }
    }
}

/// Reads an `<img>` start tag for the image rewrite.
fn img_tag(src: &[u8], tag: Range<usize>, index: u32, in_picture: bool) -> Option<ImgTag> {
    let raw = src.get(tag.clone())?;
    if !raw.ends_with(b">") {
        return None;
    }
    let mut insert_at = raw.len() - 1;
    // `<img …/>`: the slash is not part of an unquoted value only after whitespace or a quote.
    if raw.len() >= 3
        && raw[raw.len() - 2] == b'/'
        && (is_html_ws(raw[raw.len() - 3]) || matches!(raw[raw.len() - 3], b'"' | b'\''))
    {
        insert_at -= 1;
    }
    let mut img = ImgTag {
        start: tag.start,
        end: tag.end,
        insert_at: tag.start + insert_at,
        index,
        in_picture,
        ..Default::default()
    };
    for a in raw_attrs(raw) {
        let name = String::from_utf8_lossy(&raw[a.name.clone()]).to_ascii_lowercase();
        // The first of duplicate attributes wins, as in browsers.
        if img.has(&name) {
            continue;
        }
        let value = a.value.as_ref().map(|(r, _)| &raw[r.clone()]);
        let lower = value.map(|v| String::from_utf8_lossy(v).trim().to_ascii_lowercase());
        match name.as_str() {
            "src" => {
                if let Some((r, _)) = &a.value {
                    let lead = raw[r.clone()]
                        .iter()
                        .take_while(|&&b| is_html_ws(b))
                        .count();
                    img.src = Some(tag.start + r.start + lead);
                }
            }
            "loading" if lower.as_deref() == Some("eager") => img.eager = true,
            "fetchpriority" if lower.as_deref() == Some("high") => img.eager = true,
            "sizes" => img.sizes = value.map(|v| String::from_utf8_lossy(v).into_owned()),
            _ => {}
        }
        img.attrs.push(name);
    }
    Some(img)
}

/// The `integrity` attribute of a start tag whose `src`/`href` gave the first of `refs`.
fn integrity_of(src: &[u8], tag: Range<usize>, refs: &[FoundRef]) -> Option<Integrity> {
    let first = refs.iter().find(|r| matches!(r.kind, RefKind::HtmlAttr))?;
    let raw = src.get(tag.clone())?;
    let attr = raw_attrs(raw)
        .into_iter()
        .find(|a| raw[a.name.clone()].eq_ignore_ascii_case(b"integrity"))?;
    let (vr, _) = attr.value?;
    let value = std::str::from_utf8(&raw[vr.clone()]).ok()?.to_string();
    Some(Integrity {
        ref_start: first.span.start,
        start: tag.start + vr.start,
        end: tag.start + vr.end,
        value,
    })
}

/// `rel` values whose `<link href>` the page itself loads as a resource (and may be fingerprinted). Any
/// other (`alternate`, `canonical`, `manifest`, `search`, `prev`, …) names a URL fetched by others by that
/// name. A `<link>` without `rel` is left alone too.
const RESOURCE_RELS: &[&str] = &[
    "stylesheet",
    "icon",
    "apple-touch-icon",
    "apple-touch-icon-precomposed",
    "mask-icon",
    "preload",
    "modulepreload",
    "prefetch",
    "prerender",
    "fluid-icon",
];

fn links_a_resource(raw: &[u8], attrs: &[RawAttr]) -> bool {
    let Some(rel) = attrs
        .iter()
        .find(|a| raw[a.name.clone()].eq_ignore_ascii_case(b"rel"))
        .and_then(|a| a.value.clone())
    else {
        return false;
    };
    let value = String::from_utf8_lossy(&raw[rel.0]).to_ascii_lowercase();
    let rels: Vec<&str> = value.split_ascii_whitespace().collect();
    // `rel="alternate stylesheet"` is a stylesheet the page offers; `rel="alternate"` alone is a feed.
    rels.iter().any(|r| RESOURCE_RELS.contains(r))
}

fn is_html_ws(b: u8) -> bool {
    matches!(b, b' ' | b'\t' | b'\n' | b'\r' | b'\x0c')
}

/// One URL attribute value (leading and trailing whitespace is not part of the URL).
fn url_attr(
    value: &[u8],
    abs: Range<usize>,
    quote: Option<char>,
    kind: RefKind,
    out: &mut Vec<FoundRef>,
) {
    let lead = value.iter().take_while(|&&b| is_html_ws(b)).count();
    let trail = value[lead..]
        .iter()
        .rev()
        .take_while(|&&b| is_html_ws(b))
        .count();
    let raw = &value[lead..value.len() - trail];
    let Ok(text) = std::str::from_utf8(raw) else {
        return;
    };
    out.push(FoundRef {
        span: abs.start + lead..abs.end - trail,
        url: decode_entities(text),
        kind,
        syntax: Syntax::HtmlAttr(quote),
    });
}

/// The candidates of a `srcset` value, per the HTML "parse a srcset attribute" algorithm.
fn srcset(raw: &[u8], abs_start: usize, quote: Option<char>, out: &mut Vec<FoundRef>) {
    // Browsers decode character references first, then split the candidates (`a.png,&#32;b.png` is two
    // URLs): parse the decoded value and map each candidate back to its bytes in the file.
    let Ok(raw_text) = std::str::from_utf8(raw) else {
        return;
    };
    let (decoded, map) = decode_entities_mapped(raw_text);
    let value = decoded.as_bytes();
    let mut i = 0;
    while i < value.len() {
        while i < value.len() && (is_html_ws(value[i]) || value[i] == b',') {
            i += 1;
        }
        if i >= value.len() {
            break;
        }
        let start = i;
        while i < value.len() && !is_html_ws(value[i]) {
            i += 1;
        }
        let mut end = i;
        let had_comma = value[start..end].ends_with(b",");
        while end > start && value[end - 1] == b',' {
            end -= 1;
        }
        if !had_comma {
            // Skip descriptors up to the next comma outside parentheses.
            let mut depth = 0u32;
            while i < value.len() {
                match value[i] {
                    b'(' => depth += 1,
                    b')' => depth = depth.saturating_sub(1),
                    b',' if depth == 0 => break,
                    _ => {}
                }
                i += 1;
            }
        }
        if end > start {
            out.push(FoundRef {
                span: abs_start + map[start]..abs_start + map[end],
                url: decoded[start..end].to_string(),
                kind: RefKind::Srcset,
                syntax: Syntax::HtmlAttr(quote),
            });
        }
    }
}

/// Decodes the character references that appear in URLs (`&amp;`, `&quot;`, `&#39;`, `&#NN;`, `&#xNN;`,
/// `&lt;`, `&gt;`, `&apos;`). Others are left as written, which only makes the reference not verbatim.
pub fn decode_entities(s: &str) -> String {
    decode_entities_mapped(s).0
}

/// [`decode_entities`], plus for each byte of the result (and one past its end) the offset in `s` of the
/// text it came from.
fn decode_entities_mapped(s: &str) -> (String, Vec<usize>) {
    let mut out = String::with_capacity(s.len());
    let mut map = Vec::with_capacity(s.len() + 1);
    let mut at = 0;
    while at < s.len() {
        let rest = &s[at..];
        let decoded = rest.strip_prefix('&').and_then(|_| {
            let end = rest.find(';').filter(|&e| e <= 10)?;
            let body = &rest[1..end];
            let c = match body {
                "amp" => Some('&'),
                "quot" => Some('"'),
                "apos" => Some('\''),
                "lt" => Some('<'),
                "gt" => Some('>'),
                b if b.starts_with("#x") || b.starts_with("#X") => u32::from_str_radix(&b[2..], 16)
                    .ok()
                    .and_then(char::from_u32),
                b if b.starts_with('#') => b[1..].parse::<u32>().ok().and_then(char::from_u32),
                _ => None,
            };
            c.map(|c| (c, end + 1))
        });
        let (c, len) = decoded.unwrap_or_else(|| {
            let c = rest.chars().next().unwrap_or('\u{fffd}');
            (c, c.len_utf8())
        });
        for _ in 0..c.len_utf8() {
            map.push(at);
        }
        out.push(c);
        at += len;
    }
    map.push(s.len());
    (out, map)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn check(src: &str, want: &[(RefKind, &str, &str)]) {
        crate::refs::assert_refs(src, scan_html(src.as_bytes(), true).unwrap().refs, want);
    }

    use RefKind::{CssUrl, HtmlAttr as A, JsDynamicImport, JsImport, Srcset as S};

    #[test]
    fn attributes() {
        check(r#"<img src="a.png">"#, &[(A, "a.png", "a.png")]);
        check(r#"<img src='a.png' alt=x>"#, &[(A, "a.png", "a.png")]);
        check(r#"<img src=a.png>"#, &[(A, "a.png", "a.png")]);
        check(r#"<IMG SRC = " a.png ">"#, &[(A, "a.png", "a.png")]);
        check(
            r#"<link rel=stylesheet href="css/a.css">"#,
            &[(A, "css/a.css", "css/a.css")],
        );
        check(
            r#"<link rel="modulepreload" href="/js/x.js">"#,
            &[(A, "/js/x.js", "/js/x.js")],
        );
        check(
            r#"<video poster="p.png" src="v.mp4"></video>"#,
            &[(A, "p.png", "p.png"), (A, "v.mp4", "v.mp4")],
        );
        check(
            r#"<object data="x.svg"></object><div data="no.svg"></div>"#,
            &[(A, "x.svg", "x.svg")],
        );
        check(
            r#"<svg><use xlink:href="s.svg#i"/></svg>"#,
            &[(A, "s.svg#i", "s.svg#i")],
        );
        check(r#"<img src="a.png" src="b.png">"#, &[(A, "a.png", "a.png")]);
        check(
            r#"<a href="x.pdf?a=1&amp;b=2">x</a>"#,
            &[(RefKind::HtmlLink, "x.pdf?a=1&b=2", "x.pdf?a=1&amp;b=2")],
        );
        check(r#"<img data-src="no.png" alt="src=no.png">"#, &[]);
        check(r#"<img src="café.png">"#, &[(A, "café.png", "café.png")]);
    }

    #[test]
    fn srcsets() {
        check(
            r#"<img srcset="a.png 1x, b.png 2x">"#,
            &[(S, "a.png", "a.png"), (S, "b.png", "b.png")],
        );
        check(
            r#"<source srcset="a.png, b.png 100w , c.png,, d.png,">"#,
            &[
                (S, "a.png", "a.png"),
                (S, "b.png", "b.png"),
                (S, "c.png", "c.png"),
                (S, "d.png", "d.png"),
            ],
        );
        // Per the HTML spec a comma without whitespace is part of the URL.
        check(
            r#"<source srcset="a.png,b.png 100w">"#,
            &[(S, "a.png,b.png", "a.png,b.png")],
        );
        check(
            r#"<img srcset="a.png 1x (x, y), b.png 2x">"#,
            &[(S, "a.png", "a.png"), (S, "b.png", "b.png")],
        );
        check(
            r#"<link rel=preload as=image imagesrcset="a.png 1x">"#,
            &[(S, "a.png", "a.png")],
        );
        check(r#"<img srcset="  ,, ">"#, &[]);
        // Character references are decoded before the candidates are split (found by fuzzing).
        check(
            r#"<img srcset="a.png,&#32;b.png 2x">"#,
            &[(S, "a.png", "a.png"), (S, "b.png", "b.png")],
        );
        check(
            r#"<img srcset="x.png?a=1&amp;b=2 1x">"#,
            &[(S, "x.png?a=1&b=2", "x.png?a=1&amp;b=2")],
        );
    }

    #[test]
    fn not_tags() {
        check(r#"<!-- <img src="no.png"> -->"#, &[]);
        check(r#"<script>var s = '<img src="no.png">';</script>"#, &[]);
        check(r#"<textarea><img src="no.png"></textarea>"#, &[]);
        check(r#"<p>&lt;img src="no.png"&gt;</p>"#, &[]);
        check(
            r#"<img alt='<img src="no.png">' src="yes.png">"#,
            &[(A, "yes.png", "yes.png")],
        );
    }

    #[test]
    fn inline_css_and_modules() {
        check(
            "<style>a{b:url(x.png)}</style>",
            &[(CssUrl, "x.png", "x.png")],
        );
        check(
            r#"<div style="background:url('y.png')"></div>"#,
            &[(CssUrl, "y.png", "y.png")],
        );
        check(
            r#"<script type="module">import a from './a.js'; import('./b.js'); import 'react';</script>"#,
            &[
                (JsImport, "./a.js", "./a.js"),
                (JsDynamicImport, "./b.js", "./b.js"),
            ],
        );
        check(
            r#"<script>import('./classic-not-scanned.js')</script>"#,
            &[],
        );
    }

    #[test]
    fn base_href() {
        let s = scan_html(br#"<base href="/sub/"><img src=a.png>"#, true).unwrap();
        assert_eq!(s.base_href.as_deref(), Some("/sub/"));
    }

    #[test]
    fn entities() {
        for (input, want) in [
            ("a&amp;b", "a&b"),
            ("&#39;&#x41;&quot;", "'A\""),
            ("&nbsp;", "&nbsp;"),
            ("&", "&"),
            ("&#xFFFFFFFF;", "&#xFFFFFFFF;"),
        ] {
            assert_eq!(decode_entities(input), want);
        }
    }

    #[test]
    fn hostile_input_does_not_panic() {
        for s in [
            "<img src=",
            "<img src=\"",
            "<",
            "<img src='a",
            "<a href",
            "<style>a{",
            "<img srcset=\",",
            "\u{0}<img src=x>",
        ] {
            let _ = scan_html(s.as_bytes(), true);
        }
        let _ = scan_html(&[0xff, 0xfe, b'<', b'i'], true);
    }
}
