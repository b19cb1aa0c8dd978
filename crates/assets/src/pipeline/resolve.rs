//! Phase 2, resolve references: each found reference resolved to a file of the build (or reported
//! missing), giving the dependency graph and the edits each file needs.

use std::collections::{BTreeMap, HashMap};
use std::ops::Range;

use percent_encoding::utf8_percent_encode;
use staleguard_core::naming::{HASH_LEN, hash_raw_segment};
use staleguard_core::url::{Resolution, parent_dir, resolve};

use crate::cache::CachedRef;
use crate::error::{BuildError, MissingRef};
use crate::html::is_relative_specifier;
use crate::refs::{LineIndex, RefKind};
use crate::source::SourceFile;

use super::{Builder, Final, Link, Node, URL_UNSAFE};

impl<'a> Builder<'a> {
    /// Phase 2 for one file: which references point to files of the build.
    pub(super) fn resolve_links(
        &self,
        i: usize,
        nodes: &mut [Node],
        index: &HashMap<String, usize>,
        missing: &mut Vec<MissingRef>,
    ) -> Result<(), BuildError> {
        let logical = nodes[i].file.logical.clone();
        let mut from_dir = parent_dir(&logical).to_string();
        if let Some(base) = &nodes[i].base_href {
            match resolve(base.trim(), &from_dir, &self.cfg.url_prefix) {
                Resolution::Local(l) => from_dir = parent_dir(&l.path).to_string(),
                // A base outside the build: relative references are not ours.
                _ => return Ok(()),
            }
        }
        let mut links = Vec::new();
        let mut lines: Option<(Vec<u8>, LineIndex)> = None;
        for (r_idx, r) in nodes[i].refs.iter().enumerate() {
            let is_js_specifier = matches!(
                r.kind,
                RefKind::JsImport | RefKind::JsDynamicImport | RefKind::JsNewUrl
            );
            if is_js_specifier && !is_relative_specifier(&r.url) && r.kind != RefKind::JsNewUrl {
                continue;
            }
            let url = r.url.trim();
            let lead = r.url.len() - r.url.trim_start().len();
            let Resolution::Local(local) = resolve(url, &from_dir, &self.cfg.url_prefix) else {
                continue;
            };
            if local.path.ends_with('/') || local.path.is_empty() {
                continue;
            }
            if let Some(&target) = index.get(&local.path) {
                // A mutable file keeps its name: nothing to rewrite, and no ordering constraint.
                if nodes[target].mutable {
                    continue;
                }
                links.push(Link {
                    r: r_idx,
                    target,
                    segment: local.segment.start + lead..local.segment.end + lead,
                });
            } else if r.kind != RefKind::HtmlLink {
                let (bytes, idx) = match &mut lines {
                    Some((b, x)) => (&*b, &*x),
                    slot => {
                        let bytes = match &nodes[i].raw {
                            Some(b) => b.clone(),
                            None => std::fs::read(&nodes[i].file.abs)
                                .map_err(|e| BuildError::io(&nodes[i].file.abs, e))?,
                        };
                        let idx = LineIndex::new(&bytes);
                        let (b, x) = slot.insert((bytes, idx));
                        (&*b, &*x)
                    }
                };
                let (line, col) = idx.line_col(bytes, r.start);
                missing.push(MissingRef {
                    location: format!("{}:{line}:{col}", self.display_path(&nodes[i].file)),
                    url: r.url.clone(),
                    resolved: local.path,
                    kind: r.kind.describe().to_string(),
                });
            }
        }
        nodes[i].links = links;
        Ok(())
    }

    fn display_path(&self, f: &SourceFile) -> String {
        let rel = self.opts.source.join(&f.logical);
        rel.display().to_string()
    }

    /// The rewrite of one link, given the target's output path.
    fn edit_for(
        &self,
        r: &CachedRef,
        link: &Link,
        target_logical: &str,
        target_path: &str,
    ) -> Option<(Range<usize>, String)> {
        if target_path == target_logical {
            return None;
        }
        let hash = target_path.rsplit('/').next().and_then(|name| {
            let (stem, _) = staleguard_core::naming::split_ext(name);
            stem.rsplit('.').next().filter(|h| h.len() == HASH_LEN)
        })?;
        let decoded_name = target_logical.rsplit('/').next().unwrap_or(target_logical);
        let url_segment = r.url.get(link.segment.clone())?;
        let new_segment = hash_raw_segment(url_segment, decoded_name, hash).unwrap_or_else(|| {
            let new_name = target_path.rsplit('/').next().unwrap_or(target_path);
            utf8_percent_encode(new_name, URL_UNSAFE).to_string()
        });
        if r.verbatim {
            Some((
                r.start + link.segment.start..r.start + link.segment.end,
                new_segment,
            ))
        } else {
            let new_url = format!(
                "{}{}{}",
                &r.url[..link.segment.start],
                new_segment,
                &r.url[link.segment.end..]
            );
            Some((r.start..r.end, r.syntax.encode(&new_url)))
        }
    }

    pub(super) fn edits_of(
        &self,
        i: usize,
        nodes: &[Node],
        finals: &[Final],
        skip: &dyn Fn(usize) -> bool,
    ) -> Vec<(Range<usize>, String)> {
        let n = &nodes[i];
        let mut edits: Vec<(Range<usize>, String)> = n
            .links
            .iter()
            .filter(|l| !skip(l.target))
            .filter_map(|l| {
                self.edit_for(
                    &n.refs[l.r],
                    l,
                    &nodes[l.target].file.logical,
                    &finals[l.target].path,
                )
            })
            .collect();
        // Subresource integrity: a pinned file whose bytes the build changed gets its digests anew.
        for sri in &n.integrity {
            let Some(l) = n.links.iter().find(|l| n.refs[l.r].start == sri.ref_start) else {
                continue;
            };
            if skip(l.target) || finals[l.target].hash == nodes[l.target].raw_hash {
                continue;
            }
            let Ok(bytes) = self.final_bytes(l.target, nodes, finals) else {
                continue;
            };
            let value = integrity_value(&sri.value, &bytes);
            if value != sri.value {
                edits.push((sri.start..sri.end, value));
            }
        }
        // Responsive images: insertions at `<img>` tags whose `src` has variants, and after stylesheet
        // declarations whose single `url()` has.
        if let Some(s) = &self.images {
            use crate::images::markup::{Urls, img_edits, merge_insertions};
            let encode = |name: &str| utf8_percent_encode(name, URL_UNSAFE).to_string();
            // The image with variants a reference (by its start) points to: its variants, the URL up to
            // its last segment, and the original's final file name, URL-encoded.
            let image_at = |start: usize| {
                let l = n.links.iter().find(|l| n.refs[l.r].start == start)?;
                let set = nodes[l.target]
                    .variants
                    .as_ref()
                    .filter(|_| !skip(l.target))?;
                let base = n.refs[l.r].url.get(..l.segment.start)?.trim_start();
                let path = &finals[l.target].path;
                Some((set, base, encode(path.rsplit('/').next().unwrap_or(path))))
            };
            let mut inserted = Vec::new();
            for img in &n.images {
                let Some((set, base, original)) = img.src.and_then(image_at) else {
                    continue;
                };
                let urls = Urls {
                    base,
                    original: &original,
                    encode: &encode,
                };
                inserted.extend(img_edits(img, set, s, &urls));
            }
            merge_insertions(&mut inserted);
            edits.extend(inserted);
            for d in &n.css_images {
                let Some((set, base, original)) = image_at(d.url) else {
                    continue;
                };
                let urls = Urls {
                    base,
                    original: &original,
                    encode: &encode,
                };
                if let Some(text) = crate::images::css::image_set_declaration(d, set, s, &urls) {
                    edits.push((d.insert_at..d.insert_at, text));
                }
            }
        }
        edits.sort_by_key(|(r, _)| r.start);
        edits.dedup_by_key(|(r, _)| r.start);
        edits
    }
}

/// An `integrity` value with each `sha256-`/`sha384-`/`sha512-` digest computed over `bytes` (options after
/// `?` and unknown algorithms kept as written).
fn integrity_value(value: &str, bytes: &[u8]) -> String {
    use base64::Engine;
    use sha2::Digest;
    let b64 = |d: &[u8]| base64::engine::general_purpose::STANDARD.encode(d);
    value
        .split_ascii_whitespace()
        .map(|token| {
            let (alg, rest) = token.split_once('-').unwrap_or((token, ""));
            let opts = rest.find('?').map_or("", |i| &rest[i..]);
            let digest = match alg.to_ascii_lowercase().as_str() {
                "sha256" => b64(&sha2::Sha256::digest(bytes)),
                "sha384" => b64(&sha2::Sha384::digest(bytes)),
                "sha512" => b64(&sha2::Sha512::digest(bytes)),
                _ => return token.to_string(),
            };
            format!("{alg}-{digest}{opts}")
        })
        .collect::<Vec<_>>()
        .join(" ")
}

/// When many missing references share a first path segment that, removed, makes them resolve, the site
/// is served under that prefix (Vite's `base: '/app/'`): say so.
pub(super) fn url_prefix_hint(
    missing: &[MissingRef],
    index: &HashMap<String, usize>,
    prefix: &str,
) -> Option<String> {
    let mut by_segment: BTreeMap<&str, usize> = BTreeMap::new();
    for m in missing
        .iter()
        .filter(|m| m.url.trim_start().starts_with('/'))
    {
        if let Some((first, rest)) = m.resolved.split_once('/')
            && index.contains_key(rest)
        {
            *by_segment.entry(first).or_default() += 1;
        }
    }
    let (seg, n) = by_segment.into_iter().max_by_key(|(_, n)| *n)?;
    if n < 2 && missing.len() > 1 {
        return None;
    }
    let suggested = format!("{}{seg}/", prefix);
    Some(format!(
        "hint: {n} of {} missing references start with `{suggested}` and exist without it: the site is probably served under `{suggested}`; set `build.url-prefix = \"{suggested}\"` (or pass `--url-prefix {suggested}`)",
        missing.len()
    ))
}
