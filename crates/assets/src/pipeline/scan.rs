//! Phase 1, hash and scan: each source file read, hashed and scanned for references (parallel, cached
//! by content), and the special files (`_redirects`, `_headers`) checked.

use crate::cache::{CachedRef, CachedScan, State};
use crate::error::BuildError;
use crate::prehashed::Prehashed;
use crate::refs::{FoundRef, RefKind};
use crate::source::{Lang, SourceFile};
use crate::{css, html, js};

use super::{Builder, Node, Warning, hex};

impl<'a> Builder<'a> {
    /// FIFOs, sockets and devices in the source are skipped with a warning (an error with `strict`).
    pub(super) fn special_files(&self, special: &[String]) -> Result<Vec<Warning>, BuildError> {
        if special.is_empty() {
            return Ok(Vec::new());
        }
        let shown = |l: &String| self.opts.source.join(l).display().to_string();
        if self.cfg.strict {
            return Err(BuildError::Config(format!(
                "the source has files that are not regular files (FIFOs, sockets, devices, or symlinks to them): {}\nhint: remove them, or leave them out with `build.exclude`",
                special.iter().map(shown).collect::<Vec<_>>().join(", ")
            )));
        }
        Ok(special
            .iter()
            .map(|l| Warning {
                location: shown(l),
                message:
                    "not a regular file (a FIFO, socket, device, or a symlink to one): skipped"
                        .into(),
            })
            .collect())
    }

    /// Phase 1 for one file: its raw hash (from the cache when size and mtime match) and its references.
    pub(super) fn scan(
        &self,
        file: SourceFile,
        old: &State,
        rules: &NameRules,
    ) -> Result<Node, BuildError> {
        let lang = Lang::of(&file.logical);
        let known = old
            .sources
            .get(&file.logical)
            .filter(|s| s.size == file.size && s.mtime_ns == file.mtime_ns && file.mtime_ns != 0);
        let mut raw = None;
        let raw_hash = match known {
            Some(s) => s.hash.clone(),
            None => {
                let bytes = std::fs::read(&file.abs).map_err(|e| BuildError::io(&file.abs, e))?;
                let h = hex(&bytes);
                raw = Some(bytes);
                h
            }
        };
        let scan = match (lang, old.scans.get(&raw_hash)) {
            (Lang::Other, _) => CachedScan::default(),
            (_, Some(s)) => s.clone(),
            _ => {
                if raw.is_none() {
                    raw = Some(std::fs::read(&file.abs).map_err(|e| BuildError::io(&file.abs, e))?);
                }
                let bytes = raw.as_deref().unwrap_or_default();
                self.scan_bytes(lang, bytes, &file.logical)?
            }
        };
        let hashed_name = rules.prehashed.is_prehashed(&file.logical);
        let is_mutable = lang == Lang::Html
            || rules.mutable.is_match(&file.logical)
            || (!hashed_name && rules.fixed.is_match(&file.logical));
        Ok(Node {
            file,
            lang,
            raw_hash,
            raw,
            refs: scan.refs,
            base_href: scan.base_href,
            integrity: scan.integrity,
            images: scan.images,
            css_images: scan.css_images,
            variants: None,
            optimized: None,
            links: Vec::new(),
            mutable: is_mutable,
            prehashed: hashed_name && !is_mutable,
        })
    }

    fn scan_bytes(
        &self,
        lang: Lang,
        bytes: &[u8],
        logical: &str,
    ) -> Result<CachedScan, BuildError> {
        let text = || std::str::from_utf8(bytes).ok();
        let mut integrity = Vec::new();
        let mut images = Vec::new();
        let mut css_images = Vec::new();
        let (found, base_href): (Vec<FoundRef>, Option<String>) = match lang {
            Lang::Css => {
                let t = text();
                if self.images.as_ref().is_some_and(|s| s.cfg.css_image_set) {
                    css_images = t.map(crate::images::css::declarations).unwrap_or_default();
                }
                (t.map(|t| css::scan_css(t, 0)).unwrap_or_default(), None)
            }
            Lang::Js => (
                text()
                    .map(|t| js_file_refs(t, self.cfg.js_imports))
                    .unwrap_or_default(),
                None,
            ),
            Lang::Html => {
                let s =
                    html::scan_html(bytes, self.cfg.js_imports).map_err(|e| BuildError::Html {
                        path: logical.to_string(),
                        message: e.to_string(),
                    })?;
                integrity = s.integrity;
                images = s.images;
                (s.refs, s.base_href)
            }
            Lang::Other => (Vec::new(), None),
        };
        Ok(CachedScan {
            refs: found.iter().map(|r| CachedRef::new(r, bytes)).collect(),
            base_href,
            integrity,
            images,
            css_images,
        })
    }
}

/// What decides a file's name: the user's `mutable` globs, the fixed-name globs (which never apply to a
/// bundler-hashed name), and the prehashed detector.
pub(super) struct NameRules {
    pub(super) mutable: globset::GlobSet,
    pub(super) fixed: globset::GlobSet,
    pub(super) prehashed: Prehashed,
}

/// References of a JS file: source maps always, relative module specifiers when `imports`.
fn js_file_refs(text: &str, imports: bool) -> Vec<FoundRef> {
    use crate::refs::Syntax;
    js::scan_js(text, imports)
        .into_iter()
        .map(|r| {
            let (kind, syntax) = match r.kind {
                js::JsRefKind::SourceMap => (RefKind::SourceMap, Syntax::Plain),
                js::JsRefKind::StaticImport | js::JsRefKind::ExportFrom => {
                    (RefKind::JsImport, Syntax::JsString(r.quote.unwrap_or('"')))
                }
                js::JsRefKind::DynamicImport => (
                    RefKind::JsDynamicImport,
                    Syntax::JsString(r.quote.unwrap_or('"')),
                ),
                js::JsRefKind::NewUrl => {
                    (RefKind::JsNewUrl, Syntax::JsString(r.quote.unwrap_or('"')))
                }
            };
            FoundRef {
                span: r.span,
                url: r.value,
                kind,
                syntax,
            }
        })
        .collect()
}
