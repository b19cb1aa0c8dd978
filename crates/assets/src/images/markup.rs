//! The `<img>` rewrite: what to insert into (and around) one `<img>` start tag whose `src` is a processed
//! image. Only insertions, at three places: before the tag (`<picture><source …>`), before its `>`
//! (attributes) and after it (`</picture>`); every byte of the page stays where it was.
//!
//! Rules: an author's `srcset` is never replaced (and the tag is not wrapped); `sizes` comes from the
//! tag or the config; `width`/`height` (the intrinsic size, so no layout shift) only when neither is
//! there; `loading="lazy"` and `decoding="async"` unless the tag says `loading="eager"` or
//! `fetchpriority="high"`, is among the page's first `eager` images, or has its own; a `<picture>` with a
//! `<source>` per extra format when there is one and the tag is not inside a `<picture>` already.

use std::ops::Range;

use super::{ImageSet, OutFormat, Settings};
use crate::html::ImgTag;

/// What the edits of one tag need besides the tag and the image.
pub struct Urls<'a> {
    /// The `src` URL up to its last path segment, as the page wrote it (decoded): `/static/img/`.
    pub base: &'a str,
    /// The original's final file name, URL-encoded (`hero.3f2a9c1b0d4e.jpg`).
    pub original: &'a str,
    /// URL-encodes a file name.
    pub encode: &'a dyn Fn(&str) -> String,
}

/// Escapes text for a double-quoted attribute value.
fn attr(s: &str) -> String {
    s.replace('&', "&amp;").replace('"', "&quot;")
}

/// The `srcset` of `format`'s candidates, narrowest first.
fn srcset(set: &ImageSet, format: OutFormat, urls: &Urls<'_>) -> String {
    let mut c: Vec<(u32, String)> = set
        .variants
        .iter()
        .filter(|v| v.format == format)
        .map(|v| {
            let name = v.path.rsplit('/').next().unwrap_or(&v.path);
            (v.width, format!("{}{}", urls.base, (urls.encode)(name)))
        })
        .collect();
    if format == set.fallback {
        c.push((set.width, format!("{}{}", urls.base, urls.original)));
    }
    c.sort_by_key(|(w, _)| *w);
    c.dedup_by_key(|(w, _)| *w);
    let list: Vec<String> = c.into_iter().map(|(w, u)| format!("{u} {w}w")).collect();
    attr(&list.join(", "))
}

/// The insertions for one `<img>`, by position (empty ranges), in document order.
pub fn img_edits(
    tag: &ImgTag,
    set: &ImageSet,
    s: &Settings<'_>,
    urls: &Urls<'_>,
) -> Vec<(Range<usize>, String)> {
    // A URL that would need more than percent-encoding of the file name inside a srcset is left alone.
    if urls.base.contains(|c: char| c.is_whitespace() || c == ',') || urls.base.starts_with("data:")
    {
        return Vec::new();
    }
    let cfg = s.cfg;
    let own_srcset = tag.has("srcset");
    let sizes = match &tag.sizes {
        Some(raw) => raw.replace('"', "&quot;"),
        None => attr(&cfg.sizes),
    };
    let mut attrs = String::new();
    if !own_srcset {
        let f = s.img_format(set.fallback);
        attrs.push_str(&format!(" srcset=\"{}\"", srcset(set, f, urls)));
        if !tag.has("sizes") {
            attrs.push_str(&format!(" sizes=\"{sizes}\""));
        }
    }
    if !tag.has("width") && !tag.has("height") {
        attrs.push_str(&format!(
            " width=\"{}\" height=\"{}\"",
            set.width, set.height
        ));
    }
    let eager = tag.eager || tag.index < cfg.eager;
    if !eager {
        if !tag.has("loading") {
            attrs.push_str(" loading=\"lazy\"");
        }
        if !tag.has("decoding") {
            attrs.push_str(" decoding=\"async\"");
        }
    }
    let mut out = Vec::new();
    let extras = s.extras(set.fallback);
    if cfg.picture && !extras.is_empty() && !tag.in_picture && !own_srcset {
        let mut open = String::from("<picture>");
        for f in extras {
            open.push_str(&format!(
                "<source type=\"{}\" srcset=\"{}\" sizes=\"{sizes}\">",
                f.mime(),
                srcset(set, f, urls)
            ));
        }
        out.push((tag.start..tag.start, open));
    }
    if !attrs.is_empty() {
        out.push((tag.insert_at..tag.insert_at, attrs));
    }
    if out.first().is_some_and(|(r, _)| r.start == tag.start) {
        out.push((tag.end..tag.end, "</picture>".to_string()));
    }
    out
}

/// Merges insertions at the same position (one tag's `</picture>` and the next one's `<picture>`), in
/// order, so that a splice keeps both.
pub fn merge_insertions(edits: &mut Vec<(Range<usize>, String)>) {
    edits.sort_by_key(|(r, _)| r.start);
    let mut merged: Vec<(Range<usize>, String)> = Vec::with_capacity(edits.len());
    for (r, s) in edits.drain(..) {
        match merged.last_mut() {
            Some((last, text))
                if last.start == last.end && r.start == r.end && last.start == r.start =>
            {
                text.push_str(&s);
            }
            _ => merged.push((r, s)),
        }
    }
    *edits = merged;
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::html::scan_html;
    use crate::images::Variant;
    use crate::refs::splice;
    use staleguard_core::config::ImagesConfig;

    fn set() -> ImageSet {
        let v = |w: u32, h: u32, f: OutFormat| Variant {
            width: w,
            height: h,
            format: f,
            blob: String::new(),
            hash: String::new(),
            size: 1,
            logical: String::new(),
            path: format!("img/a.{w}.h{w}.{}", f.extension()),
        };
        ImageSet {
            width: 800,
            height: 600,
            fallback: OutFormat::Jpeg,
            variants: vec![
                v(800, 600, OutFormat::Webp),
                v(640, 480, OutFormat::Jpeg),
                v(640, 480, OutFormat::Webp),
            ],
        }
    }

    /// Rewrites every `<img>` of `page` as if its `src` were the processed image above.
    fn rewrite(page: &str, cfg: &ImagesConfig) -> String {
        let s = Settings::new(cfg).unwrap().unwrap();
        let scan = scan_html(page.as_bytes(), true).unwrap();
        let encode = |n: &str| n.replace(' ', "%20");
        let urls = Urls {
            base: "img/",
            original: "a.hash.jpg",
            encode: &encode,
        };
        let mut edits: Vec<(Range<usize>, String)> = scan
            .images
            .iter()
            .filter(|t| t.src.is_some())
            .flat_map(|t| img_edits(t, &set(), &s, &urls))
            .collect();
        merge_insertions(&mut edits);
        String::from_utf8(splice(page.as_bytes(), &mut edits)).unwrap()
    }

    fn cfg() -> ImagesConfig {
        ImagesConfig {
            enabled: true,
            eager: 0,
            ..Default::default()
        }
    }

    const JPEG_SET: &str = r#"srcset="img/a.640.h640.jpg 640w, img/a.hash.jpg 800w""#;
    const WEBP_SOURCE: &str = r#"<source type="image/webp" srcset="img/a.640.h640.webp 640w, img/a.800.h800.webp 800w" sizes="100vw">"#;
    const LAZY: &str = r#"loading="lazy" decoding="async""#;

    #[test]
    fn table() {
        let no_picture = ImagesConfig {
            picture: false,
            ..cfg()
        };
        let two_eager = ImagesConfig { eager: 2, ..cfg() };
        for (name, page, cfg, want) in [
            (
                "plain img in a picture with a webp source",
                r#"<img src="a.jpg" alt="x">"#.to_string(),
                cfg(),
                format!(
                    r#"<picture>{WEBP_SOURCE}<img src="a.jpg" alt="x" {JPEG_SET} sizes="100vw" width="800" height="600" {LAZY}></picture>"#
                ),
            ),
            (
                "self-closing tag: attributes go before the slash",
                r#"<img src="a.jpg" />"#.into(),
                no_picture.clone(),
                format!(
                    r#"<img src="a.jpg"  srcset="img/a.640.h640.webp 640w, img/a.800.h800.webp 800w" sizes="100vw" width="800" height="600" {LAZY}/>"#
                ),
            ),
            (
                "an author's srcset is kept, and not wrapped",
                r#"<img src="a.jpg" srcset="mine.jpg 2x">"#.into(),
                cfg(),
                format!(r#"<img src="a.jpg" srcset="mine.jpg 2x" width="800" height="600" {LAZY}>"#),
            ),
            (
                "already inside a picture: no second one",
                r#"<picture><source srcset="x.avif" type="image/avif"><img src="a.jpg"></picture>"#
                    .into(),
                cfg(),
                format!(
                    r#"<picture><source srcset="x.avif" type="image/avif"><img src="a.jpg" {JPEG_SET} sizes="100vw" width="800" height="600" {LAZY}></picture>"#
                ),
            ),
            (
                "the element's sizes is used, also by the sources",
                r#"<img sizes="(min-width: 40em) 50vw, 100vw" src=a.jpg>"#.into(),
                cfg(),
                format!(
                    r#"<picture>{}<img sizes="(min-width: 40em) 50vw, 100vw" src=a.jpg {JPEG_SET} width="800" height="600" {LAZY}></picture>"#,
                    WEBP_SOURCE.replace("100vw", "(min-width: 40em) 50vw, 100vw")
                ),
            ),
            (
                "inline style and dimensions kept as written",
                r#"<img style="width:100%;height:auto" width="400" src="a.jpg">"#.into(),
                no_picture.clone(),
                format!(
                    r#"<img style="width:100%;height:auto" width="400" src="a.jpg" srcset="img/a.640.h640.webp 640w, img/a.800.h800.webp 800w" sizes="100vw" {LAZY}>"#
                ),
            ),
            (
                "marked eager: no lazy, no async",
                r#"<img src="a.jpg" loading="eager"><img fetchpriority=HIGH src="a.jpg"><img src="a.jpg" loading="auto" decoding="sync">"#
                    .into(),
                ImagesConfig { picture: false, widths: vec![], ..cfg() },
                r#"<img src="a.jpg" loading="eager" srcset="img/a.640.h640.webp 640w, img/a.800.h800.webp 800w" sizes="100vw" width="800" height="600"><img fetchpriority=HIGH src="a.jpg" srcset="img/a.640.h640.webp 640w, img/a.800.h800.webp 800w" sizes="100vw" width="800" height="600"><img src="a.jpg" loading="auto" decoding="sync" srcset="img/a.640.h640.webp 640w, img/a.800.h800.webp 800w" sizes="100vw" width="800" height="600">"#
                    .into(),
            ),
            (
                "the first N images of the page are eager, counting every img",
                r#"<img src="logo.svg"><img src="a.jpg"><img src="a.jpg">"#.into(),
                ImagesConfig { picture: false, ..two_eager },
                // (Every img here stands for the processed image, the svg included.)
                format!(
                    r#"<img src="logo.svg" srcset="img/a.640.h640.webp 640w, img/a.800.h800.webp 800w" sizes="100vw" width="800" height="600"><img src="a.jpg" srcset="img/a.640.h640.webp 640w, img/a.800.h800.webp 800w" sizes="100vw" width="800" height="600"><img src="a.jpg" srcset="img/a.640.h640.webp 640w, img/a.800.h800.webp 800w" sizes="100vw" width="800" height="600" {LAZY}>"#
                ),
            ),
            (
                "adjacent images: both pictures closed and opened",
                r#"<img src=a.jpg><img src=a.jpg>"#.into(),
                ImagesConfig { eager: 5, ..cfg() },
                format!(
                    r#"<picture>{WEBP_SOURCE}<img src=a.jpg {JPEG_SET} sizes="100vw" width="800" height="600"></picture><picture>{WEBP_SOURCE}<img src=a.jpg {JPEG_SET} sizes="100vw" width="800" height="600"></picture>"#
                ),
            ),
            (
                "markup that only looks like an img is left alone",
                r#"<!-- <img src="a.jpg"> --><script>"<img src='a.jpg'>"</script>"#.into(),
                cfg(),
                r#"<!-- <img src="a.jpg"> --><script>"<img src='a.jpg'>"</script>"#.into(),
            ),
        ] {
            assert_eq!(rewrite(&page, &cfg), want, "{name}");
        }
    }

    proptest::proptest! {
        /// Only insertions, only at an `<img>`'s edges or before its `>`: removing the inserted text gives
        /// the page back byte for byte, and the rewritten page has the same images.
        #[test]
        fn bytes_outside_changed_tags_are_unchanged(
            parts in proptest::collection::vec(
                proptest::prop_oneof![
                    proptest::string::string_regex("[a-z <>/=\"'!-]{0,12}").unwrap(),
                    proptest::string::string_regex(r#"<img( (src|alt|srcset|sizes|width|loading|style)=("a.jpg"|'x y'|a\.jpg|"1"))*( /)?>"#).unwrap(),
                    proptest::string::string_regex("<picture>|</picture>|<p>|<!--|-->").unwrap(),
                ],
                0..8,
            ),
            eager in 0u32..3,
            picture: bool,
        ) {
            let page = parts.concat();
            let cfg = ImagesConfig { eager, picture, ..cfg() };
            let s = Settings::new(&cfg).unwrap().unwrap();
            let scan = scan_html(page.as_bytes(), true).unwrap();
            let encode = |n: &str| n.to_string();
            let urls = Urls { base: "img/", original: "a.hash.jpg", encode: &encode };
            let mut edits: Vec<(Range<usize>, String)> = scan
                .images
                .iter()
                .filter(|t| t.src.is_some())
                .flat_map(|t| img_edits(t, &set(), &s, &urls))
                .collect();
            for (r, _) in &edits {
                proptest::prop_assert!(r.is_empty());
                proptest::prop_assert!(scan.images.iter().any(|t| [t.start, t.insert_at, t.end].contains(&r.start)));
            }
            merge_insertions(&mut edits);
            let out = splice(page.as_bytes(), &mut edits.clone());
            // Remove the insertions again, from the last.
            let mut back = out.clone();
            let mut shift: usize = edits.iter().map(|(_, t)| t.len()).sum();
            for (r, t) in edits.iter().rev() {
                shift -= t.len();
                let at = r.start + shift;
                proptest::prop_assert_eq!(&back[at..at + t.len()], t.as_bytes());
                back.drain(at..at + t.len());
            }
            proptest::prop_assert_eq!(&back, page.as_bytes());
            let again = scan_html(&out, true).unwrap();
            proptest::prop_assert_eq!(again.images.len(), scan.images.len());
        }
    }
}
