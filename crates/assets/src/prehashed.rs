//! Recognising files a bundler or generator already named by their content, so they are never renamed
//! or rewritten: a bundler's runtime loads its chunks by their own names (Vite's `__vite__mapDeps`,
//! webpack's chunk map), backends read the bundler's manifest, and `integrity=` attributes pin the bytes.
//!
//! A name is prehashed when a hash token sits between its name and its extension(s):
//! - `name-BdtEMBbM.js`, `name.BGtLcd9T.css`, `start.BN_rJ-G6.js` (Vite, Rollup, Astro, SvelteKit:
//!   base64url, 8 characters);
//! - `chunk-ZXKPQJ4N.js` (esbuild, Angular: base32, 8 upper-case characters);
//! - `main.57a0d79d.min.css`, `app-3f2a9c1b7e4d5f60.js`, `style.min.<64 hex>.css` (webpack
//!   `[contenthash:8]` before `.min`, Next.js, Hugo, Sprockets, Phoenix: hex, 8 to 64 characters);
//! - files under a framework's immutable folder (`_next/static/`, `_app/immutable/`, `_astro/`), whatever
//!   their names;
//! - names matching the user's `prehashed` regex.
//!
//! What looks like a hash but may be a word or a date (`jquery-settings.js`, `OpenSans-SemiBold.ttf`,
//! `data-20240101.json`) counts as a hash only in a folder where most files carry a clear hash: a
//! bundler's output folder. A real hash is thus never rejected where bundlers put them, and a word is
//! never taken for one elsewhere.

use std::collections::HashMap;

use globset::GlobSet;
use regex::Regex;

use crate::error::BuildError;
use crate::source::glob_set;

/// How sure a token is to be a content hash.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
enum Looks {
    No,
    /// A hash alphabet and length, but also a plausible word, camel-case name or date.
    Maybe,
    Yes,
}

/// Decides which files already carry a content hash.
pub struct Prehashed {
    builtin: bool,
    user: Option<Regex>,
    dirs: GlobSet,
    /// Folders where "maybe" names count as hashed.
    bundler_dirs: std::collections::HashSet<String>,
}

impl Prehashed {
    /// `user`: the `prehashed` regex (empty: none); `dirs`: folder globs; `builtin`: the built-in patterns.
    pub fn new(builtin: bool, user: &str, dirs: &[String]) -> Result<Prehashed, BuildError> {
        let user =
            if user.is_empty() {
                None
            } else {
                Some(Regex::new(user).map_err(|e| {
                    BuildError::Config(format!("invalid `build.prehashed` regex: {e}"))
                })?)
            };
        Ok(Prehashed {
            builtin,
            user,
            dirs: glob_set(dirs)?,
            bundler_dirs: Default::default(),
        })
    }

    /// Learns which folders are a bundler's output: at least two files with a clear hash, and at least
    /// half of the folder's files with a hash-like token.
    pub fn learn<'a>(&mut self, logicals: impl IntoIterator<Item = &'a str>) {
        if !self.builtin {
            return;
        }
        // folder → (files, clear, hash-like)
        let mut count: HashMap<&str, (usize, usize, usize)> = HashMap::new();
        for l in logicals {
            let (dir, name) = l.rsplit_once('/').unwrap_or(("", l));
            let c = count.entry(dir).or_default();
            c.0 += 1;
            match looks(name) {
                Looks::Yes => {
                    c.1 += 1;
                    c.2 += 1;
                }
                Looks::Maybe => c.2 += 1,
                Looks::No => {}
            }
        }
        self.bundler_dirs = count
            .into_iter()
            .filter(|(_, (files, clear, like))| *clear >= 2 && like * 2 >= *files)
            .map(|(d, _)| d.to_string())
            .collect();
    }

    /// True when `logical` (a path relative to the source) already carries a content hash.
    pub fn is_prehashed(&self, logical: &str) -> bool {
        let (dir, name) = logical.rsplit_once('/').unwrap_or(("", logical));
        if self.user.as_ref().is_some_and(|re| re.is_match(name)) || self.dirs.is_match(logical) {
            return true;
        }
        if !self.builtin {
            return false;
        }
        match looks(name) {
            Looks::Yes => true,
            Looks::Maybe => self.bundler_dirs.contains(dir),
            Looks::No => false,
        }
    }
}

/// The best hash token of a file name: a token after `.` or `-` (with a name before it), followed only by
/// extension-like tokens (`.js`, `.min.css`, `.js.map`).
fn looks(name: &str) -> Looks {
    let tokens: Vec<&str> = name.split('.').collect();
    if tokens.len() < 2 || tokens[0].is_empty() {
        return Looks::No;
    }
    let ext_like =
        |t: &str| (1..=10).contains(&t.len()) && t.bytes().all(|b| b.is_ascii_alphanumeric());
    let mut best = Looks::No;
    // `e`: index of the first extension token; the stem is tokens[..e].
    for e in (1..tokens.len()).rev() {
        if !ext_like(tokens[e]) || tokens.len() - e > 3 {
            break;
        }
        let stem_last = tokens[e - 1];
        // `name.<hash>.ext`
        if e >= 2 && !tokens[..e - 1].concat().is_empty() {
            best = best.max(classify(stem_last));
        }
        // `name-<hash>.ext`, where a base64url hash may itself contain `-`
        for (p, _) in stem_last.match_indices('-') {
            if p == 0 && e < 2 {
                continue;
            }
            best = best.max(classify(&stem_last[p + 1..]));
        }
        if best == Looks::Yes {
            break;
        }
    }
    best
}

/// How much a token looks like a content hash.
fn classify(t: &str) -> Looks {
    let n = t.len();
    if !(6..=64).contains(&n)
        || !t
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || b == b'_' || b == b'-')
    {
        return Looks::No;
    }
    let digits = t.bytes().filter(u8::is_ascii_digit).count();
    let lower = t.bytes().filter(u8::is_ascii_lowercase).count();
    let upper = t.bytes().filter(u8::is_ascii_uppercase).count();
    let punct = n - digits - lower - upper;
    let hex = punct == 0 && t.bytes().all(|b| b.is_ascii_hexdigit()) && (lower == 0 || upper == 0);
    if hex && n >= 8 {
        if digits == n {
            // An all-digit hex hash is as real as any other; only a date or a timestamp is doubtful.
            return if date_like(t) {
                Looks::Maybe
            } else {
                Looks::Yes
            };
        }
        if digits == 0 && n < 12 {
            // `deadbeef`, `facade00`-like words: a hash in a bundler folder.
            return Looks::Maybe;
        }
        return Looks::Yes;
    }
    // base64url / base32: 8 characters is what Vite, Rollup and esbuild write by default.
    let letters = lower + upper;
    if n == 8 {
        let mixed_case = lower > 0 && upper > 0;
        if punct > 0 {
            // `B-x9aZ3q`, `BN_rJ-G6`; `icon-set` is a word
            return if digits > 0 || mixed_case {
                Looks::Yes
            } else {
                Looks::Maybe
            };
        }
        if digits > 0 && letters > 0 {
            // `outline1`, `heading2`: a word and a number
            return if word_number(t) {
                Looks::Maybe
            } else {
                Looks::Yes
            };
        }
        if upper == n {
            // esbuild's base32 hashes are often letters only (`ZXKPQJAN`); upper-case words are rare.
            return Looks::Yes;
        }
        if mixed_case {
            return if camel_case(t) {
                Looks::Maybe
            } else {
                Looks::Yes
            };
        }
        if lower == n {
            // a word (`settings`) or a letters-only hash
            return Looks::Maybe;
        }
        return Looks::No;
    }
    // Longer configured lengths (`[hash:10]` … `[hash:22]`): clearly random, or doubtful.
    if (9..=22).contains(&n) && punct == 0 && digits > 0 && letters > 0 {
        return if digits >= 2 && lower > 0 && upper > 0 {
            Looks::Yes
        } else {
            Looks::Maybe
        };
    }
    Looks::No
}

/// `outline1`, `HEADING2`: letters of one case, then digits only.
fn word_number(t: &str) -> bool {
    let split = t.find(|c: char| c.is_ascii_digit()).unwrap_or(t.len());
    let (word, num) = t.split_at(split);
    num.bytes().all(|b| b.is_ascii_digit())
        && (word.bytes().all(|b| b.is_ascii_lowercase())
            || word.bytes().all(|b| b.is_ascii_uppercase()))
}

/// `SemiBold`, `regularItalic`: humps of one capital followed by lower-case letters.
fn camel_case(t: &str) -> bool {
    let b = t.as_bytes();
    let mut prev_upper = false;
    for (i, &c) in b.iter().enumerate() {
        if c.is_ascii_uppercase() {
            if prev_upper || (i + 1 == b.len()) {
                return false;
            }
            prev_upper = true;
        } else {
            prev_upper = false;
        }
    }
    true
}

/// `20240101`, `202401011230`, `1700000000`: a calendar date or a Unix time.
fn date_like(t: &str) -> bool {
    let num = |r: std::ops::Range<usize>| t.get(r).and_then(|s| s.parse::<u32>().ok());
    let date = t.len() >= 8
        && matches!(num(0..4), Some(1970..=2099))
        && matches!(num(4..6), Some(1..=12))
        && matches!(num(6..8), Some(1..=31));
    let unix = t.len() == 10 && t.starts_with('1');
    date || unix
}

#[cfg(test)]
mod tests {
    use super::*;

    fn check(cases: &[(&str, bool)], p: &Prehashed) {
        for (name, want) in cases {
            assert_eq!(p.is_prehashed(name), *want, "{name}");
        }
    }

    #[test]
    fn bundler_names() {
        let dirs: Vec<String> = staleguard_core::config::DEFAULT_PREHASHED_DIRS
            .iter()
            .map(|s| s.to_string())
            .collect();
        let p = Prehashed::new(true, "", &dirs).unwrap();
        check(
            &[
                ("js/chunk-BdtEMBbM.js", true),
                ("assets/index-B-x9aZ3q.js", true),
                ("assets/my-component-Dk_3fQ9a.js", true),
                ("assets/About-_IZeo3Ip.js", true),
                ("assets/About-DLCn-poU.css", true),
                ("assets/index-BypRQUgO.js", true),
                ("_app/immutable/entry/start.BN_rJ-G6.js", true),
                ("main.3f2a9c1b.js", true),
                ("app.3f2a9c1b7e4d.css", true),
                ("assets/stylesheets/main.57a0d79d.min.css", true),
                ("assets/javascripts/bundle.f1ef2b3c.min.js", true),
                ("assets/javascripts/bundle.f1ef2b3c.min.js.map", true),
                ("static/js/main.57301982.js", true),
                ("chunk-ZXKPQJAN.js", true),
                ("chunk-ZXKPQ4N2.js", true),
                ("framework-64ad27b21261a9ce.js", true),
                (
                    "css/style.min.a3f5b1e5c6d7e8f90123456789abcdef0123456789abcdef0123456789abcdef.css",
                    true,
                ),
                ("runtime~main.a1b2c3d4.js", true),
                ("17896441.5c5a8c8e.js", true),
                ("_next/static/abcDEF/_buildManifest.js", true),
                ("jquery-settings.js", false),
                ("deadbeef.js", false),
                ("data-20240101.json", false),
                ("fa-brands-400.woff2", false),
                ("bootstrap.bundle.min.js", false),
                ("editor.main.nls.de.js", false),
                ("react-dom.production.min.js", false),
                ("jquery-3.7.1.min.js", false),
                ("fonts/OpenSans-SemiBold.ttf", false),
                ("vue.esm-browser.prod.js", false),
                ("LICENSE", false),
                ("icons/outline1.svg", false),
                ("icons-outline1.svg", false),
                ("material-icons-outlined1.woff", false),
                ("my-icon-set.css", false),
                ("img/logo.svg", false),
            ],
            &p,
        );
    }

    #[test]
    fn doubtful_names_count_in_a_bundler_folder() {
        let mut p = Prehashed::new(true, "", &[]).unwrap();
        p.learn([
            "assets/index-B7x9aZ3q.js",
            "assets/About-Cq2lMnOp.js",
            "assets/About-kRbEfWhY.css",
            "assets/vendor-abcdefgh.js",
            "assets/icons-20240101.svg",
            "assets/logo.svg",
            "fonts/OpenSans-SemiBold.ttf",
            "fonts/OpenSans-Regular.ttf",
            "js/jquery-settings.js",
        ]);
        check(
            &[
                ("assets/About-kRbEfWhY.css", true),
                ("assets/vendor-abcdefgh.js", true),
                ("assets/icons-20240101.svg", true),
                // no hash token at all: never prehashed, even in a bundler folder
                ("assets/logo.svg", false),
                ("fonts/OpenSans-SemiBold.ttf", false),
                ("js/jquery-settings.js", false),
            ],
            &p,
        );
    }

    #[test]
    fn user_pattern_and_folders_add_to_the_builtin_rules() {
        let p = Prehashed::new(true, r"^v\d+-", &["vendor/immutable/**".into()]).unwrap();
        check(
            &[
                ("v2-app.js", true),
                ("vendor/immutable/x.js", true),
                ("main.3f2a9c1b.js", true),
                ("vendor/other/x.js", false),
            ],
            &p,
        );
        let only_user = Prehashed::new(false, r"^v\d+-", &[]).unwrap();
        check(
            &[("v2-app.js", true), ("main.3f2a9c1b.js", false)],
            &only_user,
        );
    }
}
