//! `staleguard init`: recognise the project in a folder from its files (Django, Vite, Next.js static
//! export, Astro, SvelteKit, Docusaurus, Eleventy, Jekyll, Hugo, MkDocs, Sphinx, a plain folder) and
//! write a commented `staleguard.toml` for it.
//!
//! Pure: the files are read through [`ProjectFiles`] (paths relative to the project folder, `/`
//! separated); the binary implements it with `std::fs`. Config values are only ever read from simple
//! literals (`outDir: 'x'`, `STATIC_ROOT = BASE_DIR / "x"`, `publishDir = "x"`); anything computed
//! falls back to the generator's default.

use std::fmt::Write as _;

use regex::Regex;
use serde::Serialize;

/// Read access to a project's files, relative to its folder.
pub trait ProjectFiles {
    /// A file or folder exists.
    fn exists(&self, path: &str) -> bool;
    /// A file's text (`None`: missing, unreadable or not UTF-8).
    fn read(&self, path: &str) -> Option<String>;
}

/// The kinds of project `init` knows, in detection order.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "kebab-case")]
pub enum Stack {
    Django,
    Vite,
    NextExport,
    Astro,
    Sveltekit,
    Docusaurus,
    Eleventy,
    Jekyll,
    Hugo,
    Mkdocs,
    Sphinx,
    Plain,
}

impl Stack {
    /// The id used in JSON (`next-export`).
    pub fn id(self) -> &'static str {
        match self {
            Stack::Django => "django",
            Stack::Vite => "vite",
            Stack::NextExport => "next-export",
            Stack::Astro => "astro",
            Stack::Sveltekit => "sveltekit",
            Stack::Docusaurus => "docusaurus",
            Stack::Eleventy => "eleventy",
            Stack::Jekyll => "jekyll",
            Stack::Hugo => "hugo",
            Stack::Mkdocs => "mkdocs",
            Stack::Sphinx => "sphinx",
            Stack::Plain => "plain",
        }
    }

    /// The human name (`Next.js static export`).
    pub fn name(self) -> &'static str {
        match self {
            Stack::Django => "Django",
            Stack::Vite => "Vite",
            Stack::NextExport => "Next.js static export",
            Stack::Astro => "Astro",
            Stack::Sveltekit => "SvelteKit",
            Stack::Docusaurus => "Docusaurus",
            Stack::Eleventy => "Eleventy",
            Stack::Jekyll => "Jekyll",
            Stack::Hugo => "Hugo",
            Stack::Mkdocs => "MkDocs",
            Stack::Sphinx => "Sphinx",
            Stack::Plain => "plain static folder",
        }
    }
}

/// What was detected and the settings that follow from it.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Detected {
    pub stack: Stack,
    /// The file (or folder) that identified the project.
    pub evidence: String,
    /// `[build] source`: the generator's output, or Django's staging folder.
    pub source: String,
    /// `[build] out`: `.staleguard/dist`, or Django's `STATIC_ROOT`.
    pub out: String,
    /// `[build] url-prefix` (normalised, `/` when served at the root).
    pub url_prefix: String,
    /// The command that produces `source`; empty when there is none.
    pub run: String,
    /// Pages are written as `x.html` and linked as `/x` (Hugo `uglyURLs`, Next.js export without
    /// `trailingSlash`, Jekyll): `[serve] clean-urls = true`.
    pub clean_urls: bool,
    /// Stack-specific comment lines (without `# `).
    pub notes: Vec<String>,
}

/// The default output folder of every generated config (collides with no generator's).
pub const DEFAULT_OUT: &str = ".staleguard/dist";

/// Django's staging folder that `collectstatic` fills with the plain storage.
pub const DJANGO_STAGING: &str = "static-collected";

impl Detected {
    fn new(stack: Stack, evidence: &str, source: &str, run: String) -> Detected {
        Detected {
            stack,
            evidence: evidence.to_string(),
            source: source.to_string(),
            out: DEFAULT_OUT.to_string(),
            url_prefix: "/".to_string(),
            run,
            clean_urls: false,
            notes: Vec::new(),
        }
    }

    fn prefix(mut self, prefix: Option<String>) -> Detected {
        if let Some(p) = prefix.and_then(|p| url_path_prefix(&p)) {
            self.url_prefix = p;
        }
        self
    }
}

/// The first existing path of `candidates`.
fn first<'a>(files: &dyn ProjectFiles, candidates: &[&'a str]) -> Option<&'a str> {
    candidates.iter().copied().find(|p| files.exists(p))
}

/// Recognises the project, trying the stacks in order; `None` when nothing matches.
pub fn detect(files: &dyn ProjectFiles) -> Option<Detected> {
    let detectors: &[fn(&dyn ProjectFiles) -> Option<Detected>] = &[
        django,
        vite,
        next_export,
        astro,
        sveltekit,
        docusaurus,
        eleventy,
        jekyll,
        hugo,
        mkdocs,
        sphinx,
        plain,
    ];
    detectors.iter().find_map(|d| d(files))
}

/// What `detect` looks for, for the error message when nothing matched.
pub const LOOKED_FOR: &str = "manage.py, vite.config.*, package.json with vite, next.config.* with output: 'export', astro.config.*, svelte.config.js, docusaurus.config.*, .eleventy.js / eleventy.config.*, _config.yml (Jekyll), hugo.* / config.toml with baseURL, mkdocs.yml, conf.py (Sphinx), index.html, public/, static/, site/";

// ---------------------------------------------------------------------------------------------------
// Reading simple literals

/// `key: 'v'`, `key: "v"`, `key = "v"`, `"key": "v"` (JS, TOML, JSON, Python); the first one wins.
fn js_string(text: &str, key: &str) -> Option<String> {
    let re = Regex::new(&format!(
        r#"(?m)(?:^|[\s{{,])["']?{}["']?\s*[:=]\s*(?:"([^"\n]*)"|'([^'\n]*)'|`([^`$\n]*)`)"#,
        regex::escape(key)
    ))
    .ok()?;
    let c = re.captures(text)?;
    c.get(1)
        .or(c.get(2))
        .or(c.get(3))
        .map(|m| m.as_str().to_string())
}

/// A YAML top-level `key: value` (quoted or plain, comment stripped).
fn yaml_string(text: &str, key: &str) -> Option<String> {
    for line in text.lines() {
        let Some(rest) = line.strip_prefix(key) else {
            continue;
        };
        let Some(v) = rest.trim_start().strip_prefix(':') else {
            continue;
        };
        let v = v.trim();
        let v = if let Some(q) = v.strip_prefix('"') {
            q.split('"').next().unwrap_or("")
        } else if let Some(q) = v.strip_prefix('\'') {
            q.split('\'').next().unwrap_or("")
        } else {
            v.split(" #").next().unwrap_or("").trim()
        };
        return (!v.is_empty()).then(|| v.to_string());
    }
    None
}

/// A top-level TOML string or bool by key, compared case-insensitively (Hugo's keys are).
fn toml_value(text: &str, key: &str) -> Option<toml::Value> {
    let table: toml::Table = toml::from_str(text).ok()?;
    table
        .iter()
        .find(|(k, _)| k.eq_ignore_ascii_case(key))
        .map(|(_, v)| v.clone())
}

/// The path of a URL or path (`https://x.org/blog/` → `/blog/`), as a url-prefix; `None` for
/// relative bases (`./`) and anything unusable.
fn url_path_prefix(s: &str) -> Option<String> {
    let s = s.trim();
    let path = if let Some((_, rest)) = s.split_once("://") {
        match rest.find('/') {
            Some(i) => &rest[i..],
            None => "/",
        }
    } else if s.starts_with('/') && !s.starts_with("//") {
        s
    } else {
        return None;
    };
    let path = path.split(['?', '#']).next().unwrap_or("/");
    crate::config::normalize_prefix(path).ok()
}

/// A relative folder from a config value (`./build/` → `build`); `None` if empty or absolute.
fn rel_dir(s: &str) -> Option<String> {
    let s = s.trim().trim_start_matches("./").trim_end_matches('/');
    (!s.is_empty() && !s.starts_with('/') && !s.contains("${")).then(|| s.to_string())
}

/// The command that runs a package.json `build` script with the project's package manager, else
/// `fallback`.
fn npm_build(files: &dyn ProjectFiles, fallback: &str) -> String {
    let has_build = files
        .read("package.json")
        .and_then(|t| serde_json::from_str::<serde_json::Value>(&t).ok())
        .is_some_and(|v| v["scripts"]["build"].is_string());
    if !has_build {
        return fallback.to_string();
    }
    if files.exists("pnpm-lock.yaml") {
        "pnpm run build".into()
    } else if files.exists("yarn.lock") {
        "yarn build".into()
    } else if files.exists("bun.lockb") || files.exists("bun.lock") {
        "bun run build".into()
    } else {
        "npm run build".into()
    }
}

// ---------------------------------------------------------------------------------------------------
// Detectors

fn django(files: &dyn ProjectFiles) -> Option<Detected> {
    let manage = files
        .read("manage.py")
        .or_else(|| files.exists("manage.py").then(String::new))?;
    let settings = Regex::new(r#"DJANGO_SETTINGS_MODULE["']\s*,\s*["']([\w.]+)["']"#)
        .ok()
        .and_then(|re| re.captures(&manage).map(|c| c[1].to_string()))
        .and_then(|module| {
            let base = module.replace('.', "/");
            [format!("{base}.py"), format!("{base}/__init__.py")]
                .into_iter()
                .find_map(|p| files.read(&p))
        })
        .unwrap_or_default();
    let root = Regex::new(
        r#"(?m)^STATIC_ROOT\s*=\s*(?:BASE_DIR\s*/\s*|os\.path\.join\(\s*BASE_DIR\s*,\s*)?["']([^"'\n]+)["']"#,
    )
    .ok()
    .and_then(|re| re.captures(&settings).map(|c| c[1].to_string()))
    .and_then(|s| {
        let s = s.trim_end_matches('/');
        (!s.is_empty()).then(|| s.to_string())
    })
    .unwrap_or_else(|| "staticfiles".to_string());
    let url = Regex::new(r#"(?m)^STATIC_URL\s*=\s*["']([^"'\n]+)["']"#)
        .ok()
        .and_then(|re| re.captures(&settings).map(|c| c[1].to_string()));
    let mut d = Detected::new(
        Stack::Django,
        "manage.py",
        DJANGO_STAGING,
        "python manage.py collectstatic --noinput".into(),
    );
    d.out = root.clone();
    d.url_prefix = url
        .and_then(|u| {
            if u.contains("://") {
                url_path_prefix(&u)
            } else {
                crate::config::normalize_prefix(&u).ok()
            }
        })
        .unwrap_or_else(|| "/static/".into());
    d.notes = vec![
        "The recipe: collectstatic gathers every app's static files, unhashed, into a staging folder;".into(),
        format!("staleguard fingerprints them into the real STATIC_ROOT (`{root}`) with the staticfiles.json"),
        "Django's manifest storage reads.".into(),
        "  1. While collecting (settings.py, e.g. behind an environment variable):".into(),
        format!("       STATIC_ROOT = BASE_DIR / \"{DJANGO_STAGING}\""),
        "       STORAGES[\"staticfiles\"] = {\"BACKEND\": \"django.contrib.staticfiles.storage.StaticFilesStorage\"}".into(),
        "       (before Django 4.2: STATICFILES_STORAGE = \"django.contrib.staticfiles.storage.StaticFilesStorage\")".into(),
        "     then: python manage.py collectstatic --noinput && staleguard build".into(),
        "  2. When serving:".into(),
        format!("       STATIC_ROOT = BASE_DIR / \"{root}\""),
        "       STORAGES[\"staticfiles\"] = {\"BACKEND\": \"django.contrib.staticfiles.storage.ManifestStaticFilesStorage\"}".into(),
        "       (or WhiteNoise's \"whitenoise.storage.CompressedManifestStaticFilesStorage\", which also serves".into(),
        "       our .br/.gz); {% static \"css/site.css\" %} then renders the hashed URL from staticfiles.json.".into(),
    ];
    Some(d)
}

const VITE_CONFIGS: &[&str] = &[
    "vite.config.js",
    "vite.config.ts",
    "vite.config.mjs",
    "vite.config.mts",
    "vite.config.cjs",
];

fn vite(files: &dyn ProjectFiles) -> Option<Detected> {
    let evidence = first(files, VITE_CONFIGS).or_else(|| {
        let pkg: serde_json::Value = serde_json::from_str(&files.read("package.json")?).ok()?;
        ["dependencies", "devDependencies"]
            .iter()
            .any(|k| pkg[k]["vite"].is_string())
            .then_some("package.json")
    })?;
    let config = if evidence == "package.json" {
        String::new()
    } else {
        files.read(evidence).unwrap_or_default()
    };
    let source = js_string(&config, "outDir")
        .and_then(|s| rel_dir(&s))
        .unwrap_or_else(|| "dist".into());
    let mut d = Detected::new(
        Stack::Vite,
        evidence,
        &source,
        npm_build(files, "npx vite build"),
    )
    .prefix(js_string(&config, "base"));
    d.notes = vec![
        "Vite's hashed chunks keep their names; its .vite/manifest.json stays out of the site."
            .into(),
    ];
    Some(d)
}

/// `key: value` (or `key = value`) somewhere in a config's text, spaces and quotes aside.
fn config_has(text: &str, key: &str, value: &str) -> bool {
    text.match_indices(key).any(|(i, _)| {
        let rest = text[i + key.len()..]
            .trim_start_matches(|c: char| c == '"' || c == '\'' || c.is_whitespace());
        let rest = rest.strip_prefix([':', '=']).unwrap_or("x");
        rest.trim_start().starts_with(value)
    })
}

fn next_export(files: &dyn ProjectFiles) -> Option<Detected> {
    let (evidence, text) = ["next.config.js", "next.config.mjs", "next.config.ts"]
        .iter()
        .find_map(|p| files.read(p).map(|t| (*p, t)))?;
    if js_string(&text, "output").as_deref() != Some("export") {
        return None;
    }
    let source = js_string(&text, "distDir")
        .and_then(|s| rel_dir(&s))
        .unwrap_or_else(|| "out".into());
    let mut d = Detected::new(
        Stack::NextExport,
        evidence,
        &source,
        npm_build(files, "npx next build"),
    )
    .prefix(js_string(&text, "basePath"));
    // `out/about.html` linked as `/about`, unless `trailingSlash: true` (then `about/index.html`).
    d.clean_urls = !config_has(&text, "trailingSlash", "true");
    d.notes = vec!["Files under _next/static/ are immutable as they are (a built-in rule).".into()];
    Some(d)
}

fn astro(files: &dyn ProjectFiles) -> Option<Detected> {
    let evidence = first(
        files,
        &[
            "astro.config.mjs",
            "astro.config.js",
            "astro.config.ts",
            "astro.config.mts",
            "astro.config.cjs",
        ],
    )?;
    let text = files.read(evidence).unwrap_or_default();
    let source = js_string(&text, "outDir")
        .and_then(|s| rel_dir(&s))
        .unwrap_or_else(|| "dist".into());
    Some(
        Detected::new(
            Stack::Astro,
            evidence,
            &source,
            npm_build(files, "npx astro build"),
        )
        .prefix(js_string(&text, "base")),
    )
}

fn sveltekit(files: &dyn ProjectFiles) -> Option<Detected> {
    let evidence = first(files, &["svelte.config.js", "svelte.config.mjs"])?;
    let text = files.read(evidence).unwrap_or_default();
    let source = js_string(&text, "pages")
        .and_then(|s| rel_dir(&s))
        .unwrap_or_else(|| "build".into());
    let mut d = Detected::new(
        Stack::Sveltekit,
        evidence,
        &source,
        npm_build(files, "npx vite build"),
    );
    d.notes = vec!["Needs @sveltejs/adapter-static (the `build` folder it writes).".into()];
    Some(d)
}

fn docusaurus(files: &dyn ProjectFiles) -> Option<Detected> {
    let evidence = first(files, &["docusaurus.config.js", "docusaurus.config.ts"])?;
    let text = files.read(evidence).unwrap_or_default();
    Some(
        Detected::new(
            Stack::Docusaurus,
            evidence,
            "build",
            npm_build(files, "npx docusaurus build"),
        )
        .prefix(js_string(&text, "baseUrl")),
    )
}

fn eleventy(files: &dyn ProjectFiles) -> Option<Detected> {
    let evidence = first(
        files,
        &[
            ".eleventy.js",
            "eleventy.config.js",
            "eleventy.config.mjs",
            "eleventy.config.cjs",
        ],
    )?;
    let text = files.read(evidence).unwrap_or_default();
    let source = js_string(&text, "output")
        .and_then(|s| rel_dir(&s))
        .unwrap_or_else(|| "_site".into());
    Some(
        Detected::new(
            Stack::Eleventy,
            evidence,
            &source,
            npm_build(files, "npx @11ty/eleventy"),
        )
        .prefix(js_string(&text, "pathPrefix")),
    )
}

fn jekyll(files: &dyn ProjectFiles) -> Option<Detected> {
    let config = files.read("_config.yml")?;
    let gemfile = files.read("Gemfile");
    let gem = gemfile.as_deref().is_some_and(|g| g.contains("jekyll"));
    if !gem && !files.exists("_posts") {
        return None;
    }
    let source = yaml_string(&config, "destination")
        .and_then(|s| rel_dir(&s))
        .unwrap_or_else(|| "_site".into());
    let run = if gemfile.is_some() {
        "bundle exec jekyll build"
    } else {
        "jekyll build"
    };
    let mut d = Detected::new(Stack::Jekyll, "_config.yml", &source, run.into())
        .prefix(yaml_string(&config, "baseurl"));
    // `about.md` becomes `about.html`, linked as `/about` (as GitHub Pages serves it).
    d.clean_urls = true;
    Some(d)
}

fn hugo(files: &dyn ProjectFiles) -> Option<Detected> {
    let (evidence, text) = [
        "hugo.toml",
        "hugo.yaml",
        "hugo.yml",
        "hugo.json",
        "config.toml",
    ]
    .iter()
    .find_map(|p| files.read(p).map(|t| (*p, t)))?;
    let get = |key: &str| -> Option<String> {
        if evidence.ends_with(".toml") {
            match toml_value(&text, key)? {
                toml::Value::String(s) => Some(s),
                toml::Value::Boolean(b) => Some(b.to_string()),
                _ => None,
            }
        } else if evidence.ends_with(".json") {
            let v: serde_json::Value = serde_json::from_str(&text).ok()?;
            let (_, v) = v
                .as_object()?
                .iter()
                .find(|(k, _)| k.eq_ignore_ascii_case(key))?;
            match v {
                serde_json::Value::String(s) => Some(s.clone()),
                serde_json::Value::Bool(b) => Some(b.to_string()),
                _ => None,
            }
        } else {
            text.lines().find_map(|l| {
                let (k, _) = l.split_once(':')?;
                k.trim()
                    .eq_ignore_ascii_case(key)
                    .then(|| yaml_string(l, k))?
            })
        }
    };
    let base_url = get("baseURL");
    if evidence == "config.toml" && base_url.is_none() {
        return None;
    }
    let source = get("publishDir")
        .and_then(|s| rel_dir(&s))
        .unwrap_or_else(|| "public".into());
    let mut d = Detected::new(Stack::Hugo, evidence, &source, "hugo".into()).prefix(base_url);
    d.clean_urls = get("uglyURLs").as_deref() == Some("true");
    Some(d)
}

fn mkdocs(files: &dyn ProjectFiles) -> Option<Detected> {
    let (evidence, text) = ["mkdocs.yml", "mkdocs.yaml"]
        .iter()
        .find_map(|p| files.read(p).map(|t| (*p, t)))?;
    let source = yaml_string(&text, "site_dir")
        .and_then(|s| rel_dir(&s))
        .unwrap_or_else(|| "site".into());
    Some(
        Detected::new(Stack::Mkdocs, evidence, &source, "mkdocs build".into())
            .prefix(yaml_string(&text, "site_url")),
    )
}

fn sphinx(files: &dyn ProjectFiles) -> Option<Detected> {
    let is_conf = |p: &str| files.read(p).is_some_and(|t| t.contains("sphinx"));
    let makefile = files
        .read("Makefile")
        .is_some_and(|t| t.contains("sphinx-build"));
    let (evidence, source, conf_dir) = if is_conf("source/conf.py") {
        ("source/conf.py", "build/html", "source")
    } else if is_conf("conf.py") {
        ("conf.py", "_build/html", ".")
    } else if makefile {
        if files.exists("source/conf.py") {
            ("Makefile", "build/html", "source")
        } else {
            ("Makefile", "_build/html", ".")
        }
    } else {
        return None;
    };
    let run = if makefile {
        "make html".to_string()
    } else {
        format!("sphinx-build -b html {conf_dir} {source}")
    };
    Some(Detected::new(Stack::Sphinx, evidence, source, run))
}

fn plain(files: &dyn ProjectFiles) -> Option<Detected> {
    if files.exists("index.html") {
        return Some(Detected::new(
            Stack::Plain,
            "index.html",
            ".",
            String::new(),
        ));
    }
    let dir = first(files, &["public", "static", "site"])?;
    Some(Detected::new(
        Stack::Plain,
        &format!("{dir}/"),
        dir,
        String::new(),
    ))
}

// ---------------------------------------------------------------------------------------------------
// The config file

fn quote(s: &str) -> String {
    toml::Value::String(s.to_string()).to_string()
}

/// The commented `staleguard.toml` for a detected project.
pub fn render(d: &Detected) -> String {
    let mut t = String::new();
    let name = d.stack.name();
    if d.run.is_empty() {
        let _ = writeln!(
            t,
            "# {name} ({}): no build step, `staleguard build` reads the files as they are.",
            d.evidence
        );
    } else {
        let _ = writeln!(
            t,
            "# {name} project ({}): run `{}`, then `staleguard build`.",
            d.evidence, d.run
        );
    }
    t.push_str("# Written by `staleguard init`; every key is described in README.md (Configuration reference).\n");
    for n in &d.notes {
        let _ = writeln!(t, "# {n}");
    }
    t.push_str("\n[build]\n");
    if d.stack == Stack::Django {
        t.push_str("# What collectstatic wrote (with the plain StaticFilesStorage) …\n");
    } else {
        let _ = writeln!(t, "# What {name} wrote …");
    }
    let _ = writeln!(t, "source = {}", quote(&d.source));
    if d.stack == Stack::Django {
        t.push_str(
            "# … fingerprinted into the real STATIC_ROOT, with staticfiles.json for Django.\n",
        );
    } else {
        t.push_str(
            "# … fingerprinted, with references rewritten (deploy and serve read it from here).\n",
        );
    }
    let _ = writeln!(t, "out = {}", quote(&d.out));
    if d.url_prefix != "/" {
        t.push_str(
            "# The URL path the site is served under (absolute references resolve against it).\n",
        );
        let _ = writeln!(t, "url-prefix = {}", quote(&d.url_prefix));
    }
    t.push_str(
        "# Built-in rules already handle bundler-hashed names (chunk-BdtEMBbM.js keeps its name and is\n\
         # immutable), fixed-name files (feeds, sitemaps, robots.txt, web manifests, service workers,\n\
         # .well-known/, favicons: they keep their names and stay mutable) and bundler metadata (.vite/,\n\
         # asset-manifest.json: left out). These add to them:\n\
         # mutable = [\"downloads/**\"]      # keep these names, mutable\n\
         # exclude = [\"**/*.map\"]          # leave these out of the site\n",
    );
    if d.clean_urls {
        t.push_str(
            "\n[serve]\n\
             # Pages are written as `about.html` and linked as `/about`: serve, purge and verify both URLs.\n\
             clean-urls = true\n",
        );
    }
    t.push_str(
        "\n[deploy]\n\
         # Where `staleguard deploy` uploads the site: a local folder standing in for a bucket …\n\
         store = \"file://./.staleguard/public\"\n\
         # … or a bucket (AWS credentials from the environment):\n\
         # store = \"s3://my-bucket/site\"\n\
         \n\
         # A CDN to purge after each deploy (also varnish, cloudflare, fastly; see README.md):\n\
         # [[cdn]]\n\
         # provider = \"cloudfront\"\n\
         # distribution = \"E1234567890ABC\"\n",
    );
    t
}

#[cfg(test)]
mod tests {
    use std::collections::BTreeMap;

    use super::*;
    use crate::Config;

    struct Mem(BTreeMap<String, String>);

    impl ProjectFiles for Mem {
        fn exists(&self, path: &str) -> bool {
            let dir = format!("{path}/");
            self.0.keys().any(|k| k == path || k.starts_with(&dir))
        }
        fn read(&self, path: &str) -> Option<String> {
            self.0.get(path).cloned()
        }
    }

    fn mem(files: &[(&str, &str)]) -> Mem {
        Mem(files
            .iter()
            .map(|(k, v)| (k.to_string(), v.to_string()))
            .collect())
    }

    const VITE_PKG: &str = r#"{"scripts":{"build":"vite build"},"devDependencies":{"vite":"^5"}}"#;

    /// (files, stack, source, url-prefix, run)
    #[allow(clippy::type_complexity)]
    fn cases() -> Vec<(
        Vec<(&'static str, &'static str)>,
        Stack,
        &'static str,
        &'static str,
        &'static str,
    )> {
        vec![
            (
                vec![
                    (
                        "manage.py",
                        "os.environ.setdefault(\"DJANGO_SETTINGS_MODULE\", \"mysite.settings\")",
                    ),
                    (
                        "mysite/settings.py",
                        "STATIC_URL = 'assets/'\nSTATIC_ROOT = BASE_DIR / \"collected\"\n",
                    ),
                    ("package.json", VITE_PKG),
                ],
                Stack::Django,
                "static-collected",
                "/assets/",
                "python manage.py collectstatic --noinput",
            ),
            (
                vec![("manage.py", "")],
                Stack::Django,
                "static-collected",
                "/static/",
                "python manage.py collectstatic --noinput",
            ),
            (
                vec![
                    (
                        "vite.config.ts",
                        "export default defineConfig({\n  base: '/app/',\n  build: { outDir: 'web' },\n})",
                    ),
                    ("package.json", VITE_PKG),
                    ("pnpm-lock.yaml", ""),
                    ("index.html", ""),
                ],
                Stack::Vite,
                "web",
                "/app/",
                "pnpm run build",
            ),
            (
                vec![("package.json", VITE_PKG)],
                Stack::Vite,
                "dist",
                "/",
                "npm run build",
            ),
            (
                vec![("vite.config.js", "export default { base: './' }")],
                Stack::Vite,
                "dist",
                "/",
                "npx vite build",
            ),
            (
                vec![(
                    "next.config.mjs",
                    "const c = { output: \"export\", basePath: '/docs' }\nexport default c",
                )],
                Stack::NextExport,
                "out",
                "/docs/",
                "npx next build",
            ),
            (
                vec![("astro.config.mjs", "export default defineConfig({})")],
                Stack::Astro,
                "dist",
                "/",
                "npx astro build",
            ),
            (
                vec![("svelte.config.js", "adapter({ pages: 'build' })")],
                Stack::Sveltekit,
                "build",
                "/",
                "npx vite build",
            ),
            (
                vec![(
                    "docusaurus.config.js",
                    "module.exports = { baseUrl: '/', url: 'https://x.org' }",
                )],
                Stack::Docusaurus,
                "build",
                "/",
                "npx docusaurus build",
            ),
            (
                vec![(".eleventy.js", "module.exports = () => ({})")],
                Stack::Eleventy,
                "_site",
                "/",
                "npx @11ty/eleventy",
            ),
            (
                vec![(
                    "eleventy.config.mjs",
                    "export const config = { dir: { output: \"dist\" } };",
                )],
                Stack::Eleventy,
                "dist",
                "/",
                "npx @11ty/eleventy",
            ),
            (
                vec![
                    ("_config.yml", "title: x\nbaseurl: \"/blog\"\n"),
                    ("Gemfile", "gem \"jekyll\", \"~> 4.3\""),
                ],
                Stack::Jekyll,
                "_site",
                "/blog/",
                "bundle exec jekyll build",
            ),
            (
                vec![
                    ("_config.yml", "title: x\n"),
                    ("_posts/2024-01-01-a.md", ""),
                ],
                Stack::Jekyll,
                "_site",
                "/",
                "jekyll build",
            ),
            (
                vec![(
                    "hugo.toml",
                    "baseURL = 'https://example.org/'\npublishDir = 'out/site'\n",
                )],
                Stack::Hugo,
                "out/site",
                "/",
                "hugo",
            ),
            (
                vec![("config.toml", "baseURL = \"https://x.org/blog/\"\n")],
                Stack::Hugo,
                "public",
                "/blog/",
                "hugo",
            ),
            (
                vec![("hugo.yaml", "baseURL: https://x.org/\npublishDir: dist\n")],
                Stack::Hugo,
                "dist",
                "/",
                "hugo",
            ),
            (
                vec![("hugo.json", "{\"baseURL\": \"https://x.org/\"}")],
                Stack::Hugo,
                "public",
                "/",
                "hugo",
            ),
            (
                vec![(
                    "mkdocs.yml",
                    "site_name: x\nsite_url: https://x.org/docs/\nsite_dir: build\n",
                )],
                Stack::Mkdocs,
                "build",
                "/docs/",
                "mkdocs build",
            ),
            (
                vec![("mkdocs.yml", "site_name: x\n")],
                Stack::Mkdocs,
                "site",
                "/",
                "mkdocs build",
            ),
            (
                vec![("conf.py", "extensions = ['sphinx.ext.autodoc']")],
                Stack::Sphinx,
                "_build/html",
                "/",
                "sphinx-build -b html . _build/html",
            ),
            (
                vec![
                    ("source/conf.py", "import sphinx"),
                    ("Makefile", "SPHINXBUILD ?= sphinx-build"),
                ],
                Stack::Sphinx,
                "build/html",
                "/",
                "make html",
            ),
            (
                vec![("index.html", "<h1>hi</h1>")],
                Stack::Plain,
                ".",
                "/",
                "",
            ),
            (
                vec![("static/app.css", "")],
                Stack::Plain,
                "static",
                "/",
                "",
            ),
            (vec![("site/index.html", "")], Stack::Plain, "site", "/", ""),
        ]
    }

    #[test]
    fn detects_every_stack_and_the_config_parses() {
        for (files, stack, source, prefix, run) in cases() {
            let what = format!("{files:?}");
            let d = detect(&mem(&files)).unwrap_or_else(|| panic!("nothing detected in {what}"));
            assert_eq!(d.stack, stack, "{what}");
            assert_eq!(d.source, source, "{what}");
            assert_eq!(d.url_prefix, prefix, "{what}");
            assert_eq!(d.run, run, "{what}");
            let text = render(&d);
            let config = Config::from_toml(&text, "staleguard.toml")
                .unwrap_or_else(|e| panic!("{what}: {e}\n{text}"));
            assert_eq!(config.build.source, source, "{what}");
            assert_eq!(config.build.out, d.out, "{what}");
            assert_eq!(config.build.url_prefix, prefix, "{what}");
            assert_eq!(config.deploy.store, "file://./.staleguard/public");
            assert!(text.starts_with(&format!("# {}", stack.name())), "{text}");
            if !run.is_empty() {
                assert!(text.lines().next().unwrap().contains(run), "{text}");
            }
        }
    }

    #[test]
    fn django_reads_static_root_and_writes_the_recipe() {
        let d = detect(&mem(&cases()[0].0)).unwrap();
        assert_eq!(d.out, "collected");
        let text = render(&d);
        for needle in [
            "StaticFilesStorage",
            "ManifestStaticFilesStorage",
            "CompressedManifestStaticFilesStorage",
            "STATIC_ROOT = BASE_DIR / \"static-collected\"",
            "staticfiles.json",
        ] {
            assert!(text.contains(needle), "{needle}:\n{text}");
        }
        let d = detect(&mem(&[("manage.py", "")])).unwrap();
        assert_eq!(d.out, "staticfiles");
        let d = detect(&mem(&[
            ("manage.py", "'DJANGO_SETTINGS_MODULE', 'a.b.settings'"),
            ("a/b/settings.py", "STATIC_ROOT = os.path.join(BASE_DIR, 'www/static')\nSTATIC_URL = \"https://cdn.x.org/s/\""),
        ]))
        .unwrap();
        assert_eq!(
            (d.out.as_str(), d.url_prefix.as_str()),
            ("www/static", "/s/")
        );
    }

    #[test]
    fn html_named_pages_get_clean_urls() {
        let d = detect(&mem(&[("hugo.toml", "baseURL = '/'\nuglyurls = true\n")])).unwrap();
        assert!(d.clean_urls);
        let text = render(&d);
        assert!(text.contains("\nclean-urls = true"), "{text}");
        assert!(Config::from_toml(&text, "x").unwrap().serve.clean_urls);
        let next = |cfg: &str| detect(&mem(&[("next.config.js", cfg)])).unwrap().clean_urls;
        assert!(next("module.exports = { output: 'export' }"));
        assert!(!next(
            "module.exports = { output: 'export', trailingSlash: true }"
        ));
        let plain = detect(&mem(&[("mkdocs.yml", "site_name: x\n")])).unwrap();
        assert!(!plain.clean_urls);
    }

    #[test]
    fn near_misses_are_not_detected() {
        for files in [
            vec![(
                "next.config.js",
                "module.exports = { reactStrictMode: true }",
            )],
            vec![("config.toml", "title = 'no base url'")],
            vec![("_config.yml", "title: x")],
            vec![("conf.py", "project = 'x'")],
            vec![("package.json", "{\"dependencies\":{\"react\":\"18\"}}")],
            vec![],
        ] {
            assert_eq!(detect(&mem(&files)), None, "{files:?}");
        }
    }

    #[test]
    fn literals() {
        assert_eq!(
            js_string("build: {\n  outDir: \"x/y\",\n}", "outDir").as_deref(),
            Some("x/y")
        );
        assert_eq!(
            js_string("  \"outDir\": 'z'", "outDir").as_deref(),
            Some("z")
        );
        assert_eq!(js_string("myoutDir: 'z'", "outDir"), None);
        assert_eq!(js_string("outDir: path.resolve('z')", "outDir"), None);
        assert_eq!(url_path_prefix("https://x.org"), Some("/".into()));
        assert_eq!(url_path_prefix("./"), None);
        assert_eq!(rel_dir("./build/"), Some("build".into()));
        assert_eq!(rel_dir("/abs"), None);
    }
}
