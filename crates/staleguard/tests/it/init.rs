//! `staleguard init`: the committed generator fixtures and hand-made trees are detected, the file is
//! written once (again only with `--force`), and the written config drives a real build.

use std::path::Path;

use serde_json::Value;

use crate::support::*;

/// `staleguard init DIR --dry-run --json`, expecting success.
fn dry_run(dir: &Path) -> Value {
    let mut c = staleguard(dir);
    c.args(["init", "--dry-run", "--json"]).arg(dir);
    let o = run(c);
    assert!(
        o.status.success(),
        "init --dry-run failed in {}",
        dir.display()
    );
    serde_json::from_slice(&o.stdout).expect("--json prints JSON")
}

fn copy_fixture(name: &str) -> tempfile::TempDir {
    let t = tempfile::tempdir().unwrap();
    copy_dir(
        &repo().join("examples").join(name).join("project"),
        t.path(),
    );
    t
}

#[test]
fn fixtures_are_detected() {
    for (fixture, stack, source, prefix) in [
        ("vite", "vite", "dist", None),
        ("django", "django", "static-collected", Some("/static/")),
        ("hugo", "hugo", "public", None),
        ("mkdocs", "mkdocs", "site", None),
    ] {
        let t = copy_fixture(fixture);
        let r = dry_run(t.path());
        assert_eq!(r["stack"], stack, "{fixture}: {r}");
        assert_eq!(r["source"], source, "{fixture}: {r}");
        assert_eq!(r["written"], false);
        let config = r["config"].as_str().unwrap();
        assert!(
            config.contains(&format!("source = \"{source}\"")),
            "{config}"
        );
        match prefix {
            Some(p) => assert!(
                config.contains(&format!("url-prefix = \"{p}\"")),
                "{config}"
            ),
            None => assert!(!config.contains("\nurl-prefix"), "{config}"),
        }
        assert!(
            !t.path().join("staleguard.toml").exists(),
            "--dry-run wrote"
        );
        // The human --dry-run prints the file itself, its first line naming the stack.
        let mut c = staleguard(t.path());
        c.args(["init", "--dry-run"]);
        let o = run(c);
        assert!(o.status.success());
        assert_eq!(String::from_utf8_lossy(&o.stdout), config);
    }
}

#[test]
fn django_fixture_config_has_the_recipe() {
    let t = copy_fixture("django");
    let r = dry_run(t.path());
    let config = r["config"].as_str().unwrap();
    assert!(
        config.starts_with(
            "# Django project (manage.py): run `python manage.py collectstatic --noinput`"
        ),
        "{config}"
    );
    // The fixture's STATIC_ROOT comes from the environment: the default.
    assert!(config.contains("out = \"staticfiles\""), "{config}");
    for needle in [
        "django.contrib.staticfiles.storage.StaticFilesStorage",
        "ManifestStaticFilesStorage",
        "whitenoise.storage.CompressedManifestStaticFilesStorage",
    ] {
        assert!(config.contains(needle), "{needle}: {config}");
    }
}

#[test]
fn init_writes_once_and_force_overwrites() {
    let t = copy_fixture("mkdocs");
    let path = t.path().join("staleguard.toml");
    let mut c = staleguard(t.path());
    c.arg("init");
    let o = run(c);
    assert!(o.status.success());
    assert!(
        String::from_utf8_lossy(&o.stdout).contains("MkDocs"),
        "{}",
        String::from_utf8_lossy(&o.stdout)
    );
    let written = std::fs::read_to_string(&path).unwrap();
    assert!(written.starts_with("# MkDocs project (mkdocs.yml): run `mkdocs build`"));
    std::fs::write(&path, "# mine\n").unwrap();
    let mut c = staleguard(t.path());
    c.arg("init");
    let o = c.output().unwrap();
    assert_eq!(o.status.code(), Some(1));
    assert!(stderr(&o).contains("already exists"), "{}", stderr(&o));
    assert_eq!(std::fs::read_to_string(&path).unwrap(), "# mine\n");
    // --dry-run never refuses (it writes nothing).
    let mut c = staleguard(t.path());
    c.args(["init", "--dry-run"]);
    assert!(run(c).status.success());
    assert_eq!(std::fs::read_to_string(&path).unwrap(), "# mine\n");
    let mut c = staleguard(t.path());
    c.args(["init", "--force", "--json"]);
    let o = run(c);
    assert!(o.status.success());
    let r: Value = serde_json::from_slice(&o.stdout).unwrap();
    assert_eq!(r["written"], true);
    assert_eq!(
        r["path"].as_str().map(Path::new),
        Some(path.canonicalize().unwrap().as_path())
    );
    assert_eq!(std::fs::read_to_string(&path).unwrap(), written);
}

/// (files, stack, source)
type Case = (
    &'static [(&'static str, &'static str)],
    &'static str,
    &'static str,
);

#[test]
fn hand_made_trees_are_detected() {
    let cases: &[Case] = &[
        (
            &[
                ("next.config.mjs", "export default { output: 'export' }\n"),
                ("package.json", r#"{"scripts":{"build":"next build"}}"#),
            ],
            "next-export",
            "out",
        ),
        (
            &[(".eleventy.js", "module.exports = function () {};\n")],
            "eleventy",
            "_site",
        ),
        (
            &[
                ("_config.yml", "title: Blog\n"),
                (
                    "Gemfile",
                    "source \"https://rubygems.org\"\ngem \"jekyll\"\n",
                ),
            ],
            "jekyll",
            "_site",
        ),
        (
            &[(
                "docusaurus.config.js",
                "module.exports = { baseUrl: '/', url: 'https://x.org' };\n",
            )],
            "docusaurus",
            "build",
        ),
        (
            &[
                ("source/conf.py", "extensions = ['sphinx.ext.autodoc']\n"),
                ("Makefile", "SPHINXBUILD ?= sphinx-build\n"),
            ],
            "sphinx",
            "build/html",
        ),
        (&[("conf.py", "import sphinx\n")], "sphinx", "_build/html"),
        (&[("index.html", "<h1>hi</h1>\n")], "plain", "."),
        (&[("public/index.html", "<h1>hi</h1>\n")], "plain", "public"),
    ];
    for (files, stack, source) in cases {
        let t = tempfile::tempdir().unwrap();
        write_files(t.path(), files);
        let r = dry_run(t.path());
        assert_eq!(r["stack"], *stack, "{files:?}: {r}");
        assert_eq!(r["source"], *source, "{files:?}: {r}");
    }
}

#[test]
fn nothing_recognised_is_an_error() {
    let t = tempfile::tempdir().unwrap();
    write_files(t.path(), &[("notes.md", "# hi\n")]);
    let mut c = staleguard(t.path());
    c.arg("init");
    let o = c.output().unwrap();
    assert_eq!(o.status.code(), Some(1));
    assert!(
        stderr(&o).contains("no project recognised"),
        "{}",
        stderr(&o)
    );
    assert!(!t.path().join("staleguard.toml").exists());
}

#[test]
fn the_written_config_drives_a_build() {
    let t = tempfile::tempdir().unwrap();
    write_files(
        t.path(),
        &[
            (
                "public/index.html",
                "<link rel=stylesheet href=\"/css/site.css\"><h1>hi</h1>\n",
            ),
            ("public/css/site.css", "body{color:red}\n"),
        ],
    );
    let mut c = staleguard(t.path());
    c.arg("init");
    assert!(run(c).status.success());
    let mut c = staleguard(t.path());
    c.arg("build");
    assert!(run(c).status.success());
    let out = t.path().join(".staleguard/dist");
    let m = manifest(&out);
    let css = hashed(&m, "css/site.css");
    assert_ne!(css, "css/site.css");
    assert!(read(&out, "index.html").contains(&css));
}
