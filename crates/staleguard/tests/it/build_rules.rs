//! Build rules on small hand-made trees: missing files, strict mode, cycles, prefixes, escapes, options.

use crate::support::*;

#[test]
fn missing_references_warn_with_location_and_are_kept() {
    let t = tempfile::tempdir().unwrap();
    write_files(
        t.path(),
        &[
            ("src/a.css", "body {\n  background: url(gone.png);\n}\n"),
            (
                "src/index.html",
                "<p>\n<img src=\"nope.png\"><a href=\"/route/not/a/file\">x</a>\n",
            ),
        ],
    );
    let r = build(t.path(), "src", "out", &[]);
    let warnings: Vec<String> = r["warnings"]
        .as_array()
        .unwrap()
        .iter()
        .map(|w| {
            format!(
                "{}: {}",
                w["location"].as_str().unwrap(),
                w["message"].as_str().unwrap()
            )
        })
        .collect();
    assert_eq!(warnings.len(), 2, "{warnings:?}");
    assert!(
        warnings
            .iter()
            .any(|w| w.contains("a.css:2:19") && w.contains("gone.png")),
        "{warnings:?}"
    );
    assert!(
        warnings
            .iter()
            .any(|w| w.contains("index.html:2:11") && w.contains("nope.png")),
        "{warnings:?}"
    );
    let m = manifest(&t.path().join("out"));
    assert!(read(&t.path().join("out"), &hashed(&m, "a.css")).contains("url(gone.png)"));
}

#[test]
fn strict_mode_lists_every_missing_file_and_writes_nothing() {
    let t = tempfile::tempdir().unwrap();
    write_files(
        t.path(),
        &[
            ("src/a.css", "a{b:url(one.png)}\n@import 'two.css';\n"),
            ("src/js/m.js", "import x from './three.js';\n"),
            ("src/ok.png", "png"),
        ],
    );
    let mut c = staleguard(t.path());
    c.args(["build", "src", "-o", "out", "--strict"]);
    let o = run(c);
    assert_eq!(o.status.code(), Some(1));
    let err = stderr(&o);
    for needle in [
        "3 missing referenced file(s)",
        "a.css:1:9",
        "`one.png`",
        "a.css:2:10",
        "`two.css`",
        "m.js:1:16",
        "`./three.js`",
        "hint:",
    ] {
        assert!(err.contains(needle), "stderr lacks {needle}:\n{err}");
    }
    assert!(!t.path().join("out/staleguard.manifest.json").exists());
}

#[test]
fn reference_cycles_terminate_and_are_reported() {
    let t = tempfile::tempdir().unwrap();
    write_files(
        t.path(),
        &[
            ("src/a.css", "@import 'b.css';\na{}\n"),
            ("src/b.css", "@import 'a.css';\nb{}\n"),
            ("src/c.css", "@import 'a.css';\n"),
        ],
    );
    let r = build(t.path(), "src", "out", &[]);
    assert_eq!(r["cycles"], serde_json::json!([["a.css", "b.css"]]));
    let out = t.path().join("out");
    let m = manifest(&out);
    let (a, b) = (hashed(&m, "a.css"), hashed(&m, "b.css"));
    assert_ne!(a, "a.css");
    assert!(read(&out, &a).contains(&format!("@import '{b}'")));
    assert!(read(&out, &b).contains(&format!("@import '{a}'")));
    assert!(read(&out, &hashed(&m, "c.css")).contains(&format!("@import '{a}'")));
    // Changing one member renames both.
    write_files(
        t.path(),
        &[("src/b.css", "@import 'a.css';\nb{color:red}\n")],
    );
    build(t.path(), "src", "out", &[]);
    let m2 = manifest(&out);
    assert_ne!(hashed(&m2, "a.css"), a);
    assert_ne!(hashed(&m2, "b.css"), b);
}

#[test]
fn absolute_references_resolve_against_the_url_prefix() {
    let t = tempfile::tempdir().unwrap();
    write_files(
        t.path(),
        &[
            (
                "src/css/a.css",
                "a{b:url(/static/img/x.png)} c{d:url(/elsewhere/y.png)}",
            ),
            ("src/img/x.png", "x"),
        ],
    );
    build(t.path(), "src", "out", &["--url-prefix", "/static/"]);
    let out = t.path().join("out");
    let m = manifest(&out);
    let css = read(&out, &hashed(&m, "css/a.css"));
    assert!(
        css.contains(&format!("url(/static/{})", hashed(&m, "img/x.png"))),
        "{css}"
    );
    assert!(css.contains("url(/elsewhere/y.png)"));
}

#[test]
fn escaped_references_are_reencoded_in_their_syntax() {
    let t = tempfile::tempdir().unwrap();
    write_files(
        t.path(),
        &[
            (
                "src/a.css",
                r#"a{b:url("it\27s.png")} c{d:url(sp\ ace.png)}"#,
            ),
            (
                "src/index.html",
                r#"<a href="doc.pdf?a=1&amp;b=2">d</a><img src="it&#39;s.png">"#,
            ),
            ("src/it's.png", "1"),
            ("src/sp ace.png", "2"),
            ("src/doc.pdf", "3"),
        ],
    );
    build(t.path(), "src", "out", &[]);
    let out = t.path().join("out");
    let m = manifest(&out);
    let css = read(&out, &hashed(&m, "a.css"));
    assert!(
        css.contains(&format!(r#"url("{}")"#, hashed(&m, "it's.png"))),
        "{css}"
    );
    let spaced = hashed(&m, "sp ace.png");
    assert!(
        css.contains(&format!(r"url({})", spaced.replace(' ', r"\20 "))),
        "{css}"
    );
    let urls: Vec<String> = staleguard_assets::css::scan_css(&css, 0)
        .into_iter()
        .map(|r| r.url)
        .collect();
    assert!(urls.contains(&spaced), "{urls:?}");
    let html = read(&out, "index.html");
    assert!(
        html.contains(&format!(r#"href="{}?a=1&amp;b=2""#, hashed(&m, "doc.pdf"))),
        "{html}"
    );
    assert!(
        html.contains(&format!(r#"src="{}""#, hashed(&m, "it's.png"))),
        "{html}"
    );
}

#[test]
fn a_source_file_named_like_a_manifest_is_refused() {
    let t = tempfile::tempdir().unwrap();
    write_files(t.path(), &[("src/staticfiles.json", "{}")]);
    let mut c = staleguard(t.path());
    c.args(["build", "src", "-o", "out"]);
    let o = run(c);
    assert_eq!(o.status.code(), Some(1));
    assert!(stderr(&o).contains("django-manifest"), "{}", stderr(&o));
}

#[test]
fn output_inside_nothing_dangerous() {
    let t = tempfile::tempdir().unwrap();
    write_files(t.path(), &[("src/a.css", "a{}")]);
    let mut c = staleguard(t.path());
    c.args(["build", "src", "-o", "."]);
    let o = run(c);
    assert_eq!(o.status.code(), Some(1));
    assert!(
        stderr(&o).contains("must not be the source folder or contain it"),
        "{}",
        stderr(&o)
    );
    // An output inside the source is skipped by the walk instead of being built into itself.
    build(t.path(), "src", "src/dist", &[]);
    build(t.path(), "src", "src/dist", &[]);
    let m = manifest(&t.path().join("src/dist"));
    assert_eq!(m["files"].as_object().unwrap().len(), 1);
}

#[test]
fn options_originals_imports_and_compression() {
    let t = tempfile::tempdir().unwrap();
    let body = "export const x = 1;\n".repeat(50);
    write_files(
        t.path(),
        &[
            ("src/m.js", "import {x} from './d.js';\n"),
            ("src/d.js", &body),
        ],
    );
    build(
        t.path(),
        "src",
        "out",
        &["--no-originals", "--no-js-imports", "--compress", "none"],
    );
    let out = t.path().join("out");
    let m = manifest(&out);
    assert!(!out.join("d.js").exists(), "originals were kept");
    assert!(
        read(&out, &hashed(&m, "m.js")).contains("'./d.js'"),
        "imports were rewritten"
    );
    assert!(!out.join(format!("{}.br", hashed(&m, "d.js"))).exists());
    build(t.path(), "src", "out2", &["--compress", "zstd"]);
    let m = manifest(&t.path().join("out2"));
    assert!(
        t.path()
            .join("out2")
            .join(format!("{}.zst", hashed(&m, "d.js")))
            .exists()
    );
    assert!(
        m["files"]["d.js"]["encodings"]["zstd"]["size"]
            .as_u64()
            .unwrap()
            > 0
    );
}

#[test]
fn fifos_devices_and_huge_files_in_the_source_never_hang_the_build() {
    let t = tempfile::tempdir().unwrap();
    write_files(
        t.path(),
        &[
            ("src/index.html", "<p>hi</p>\n"),
            ("src/big.bin", "0123456789abcdef"),
        ],
    );
    assert!(
        std::process::Command::new("mkfifo")
            .arg(t.path().join("src/pipe"))
            .status()
            .unwrap()
            .success()
    );
    std::os::unix::fs::symlink("/dev/zero", t.path().join("src/zero")).unwrap();
    // Under `timeout`: a build that blocks on the FIFO or reads /dev/zero forever fails here, not hangs.
    let sg = |args: &[&str]| {
        let mut c = std::process::Command::new("timeout");
        c.arg("60")
            .arg(env!("CARGO_BIN_EXE_staleguard"))
            .current_dir(t.path())
            .env_remove("STALEGUARD_CONFIG")
            .args(args);
        c.output().unwrap()
    };
    let o = sg(&["build", "src", "-o", "out", "--json"]);
    assert!(o.status.success(), "{}", String::from_utf8_lossy(&o.stderr));
    let r: serde_json::Value = serde_json::from_slice(&o.stdout).unwrap();
    let w = r["warnings"].to_string();
    assert!(
        w.contains("pipe") && w.contains("zero") && w.contains("not a regular file"),
        "{w}"
    );
    assert!(!t.path().join("out/pipe").exists() && !t.path().join("out/zero").exists());
    // Strict: an error naming both.
    let o = sg(&["build", "src", "-o", "out2", "--strict"]);
    assert_eq!(o.status.code(), Some(1));
    let err = String::from_utf8_lossy(&o.stderr);
    assert!(
        err.contains("src/pipe") && err.contains("src/zero"),
        "{err}"
    );
    // A file over `max-file-size` is refused by name.
    write_files(
        t.path(),
        &[("staleguard.toml", "[build]\nmax-file-size = 10\n")],
    );
    let o = sg(&["build", "src", "-o", "out3"]);
    assert_eq!(o.status.code(), Some(1));
    let err = String::from_utf8_lossy(&o.stderr);
    assert!(
        err.contains("big.bin") && err.contains("max-file-size"),
        "{err}"
    );
}
