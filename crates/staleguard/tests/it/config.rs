//! Config discovery, validation errors with line numbers, and CLI overrides.

use crate::support::*;

#[test]
fn config_is_found_upward_and_paths_are_relative_to_it() {
    let t = tempfile::tempdir().unwrap();
    write_files(
        t.path(),
        &[
            (
                "staleguard.toml",
                "[build]\nsource = \"web\"\nout = \"public\"\ncompress = []\n",
            ),
            ("web/a.css", "a{}"),
            ("deep/er/.keep", ""),
        ],
    );
    let mut c = staleguard(&t.path().join("deep/er"));
    c.arg("build");
    let o = run(c);
    assert!(o.status.success());
    assert!(String::from_utf8_lossy(&o.stdout).contains("built 1 files"));
    assert!(t.path().join("public/staleguard.manifest.json").exists());
    // A CLI flag overrides the file; relative to the current folder.
    let mut c = staleguard(&t.path().join("deep"));
    c.args(["build", "-o", "here"]);
    assert!(run(c).status.success());
    assert!(t.path().join("deep/here/staleguard.manifest.json").exists());
}

#[test]
fn config_errors_name_the_file_key_and_line() {
    let t = tempfile::tempdir().unwrap();
    for (text, needles) in [
        (
            "[build]\nsource = \"web\"\nstrikt = true\n",
            &["staleguard.toml", "line 3", "strikt"][..],
        ),
        ("[build]\ngzip-level = 12\n", &["line 2", "between 1 and 9"]),
        ("[bild]\n", &["line 1", "bild"]),
        (
            "[serve]\nclean-urls = \"yes\"\n",
            &["line 2", "clean-urls", "boolean"],
        ),
    ] {
        write_files(t.path(), &[("staleguard.toml", text)]);
        let mut c = staleguard(t.path());
        c.arg("build");
        let o = run(c);
        assert_eq!(o.status.code(), Some(1));
        let err = stderr(&o);
        for n in needles {
            assert!(err.contains(n), "stderr lacks {n}:\n{err}");
        }
    }
}

#[test]
fn explicit_config_must_exist_and_usage_errors_exit_2() {
    let t = tempfile::tempdir().unwrap();
    let mut c = staleguard(t.path());
    c.args(["--config", "nope.toml", "build"]);
    let o = run(c);
    assert_eq!(o.status.code(), Some(1));
    assert!(stderr(&o).contains("nope.toml"));
    let mut c = staleguard(t.path());
    c.args(["build", "--compress", "lzma"]);
    let o = run(c);
    assert_eq!(o.status.code(), Some(1));
    assert!(stderr(&o).contains("unknown compression `lzma`"));
    let mut c = staleguard(t.path());
    c.args(["build", "--bogus"]);
    assert_eq!(run(c).status.code(), Some(2));
}

#[test]
fn missing_source_folder_has_a_hint() {
    let t = tempfile::tempdir().unwrap();
    let mut c = staleguard(t.path());
    c.arg("build");
    let o = run(c);
    assert_eq!(o.status.code(), Some(1));
    let err = stderr(&o);
    assert!(
        err.contains("source folder") && err.contains("static") && err.contains("hint:"),
        "{err}"
    );
}

#[test]
fn a_store_url_without_a_bucket_names_what_is_missing() {
    let t = tempfile::tempdir().unwrap();
    write_files(
        t.path(),
        &[("staleguard.toml", "[deploy]\nstore = \"s3://\"\n")],
    );
    let mut c = staleguard(t.path());
    c.arg("deploys");
    let o = run(c);
    assert_eq!(o.status.code(), Some(1));
    let err = stderr(&o);
    assert!(
        err.contains("names no bucket") && err.contains("line 2"),
        "{err}"
    );
    assert!(!err.to_lowercase().contains("credential"), "{err}");
    // The same from the command line.
    write_files(t.path(), &[("staleguard.toml", "")]);
    let mut c = staleguard(t.path());
    c.args(["deploys", "--store", "s3://"]);
    let o = run(c);
    assert_eq!(o.status.code(), Some(1));
    assert!(stderr(&o).contains("names no bucket"), "{}", stderr(&o));
}
