//! Django itself loads our `staticfiles.json` with `ManifestStaticFilesStorage` and resolves `{% static %}`.
//!
//! Needs the Python venv that `scripts/test.sh` creates (`scripts/pyenv.sh`); without it the test fails
//! and says how to make it.

use std::path::PathBuf;
use std::process::Command;

use crate::support::*;

fn venv_python() -> PathBuf {
    let venv = std::env::var_os("STALEGUARD_VENV")
        .map(PathBuf::from)
        .unwrap_or_else(|| {
            PathBuf::from(std::env::var_os("HOME").unwrap_or_default())
                .join(".cache/staleguard/venv")
        });
    let py = venv.join("bin/python");
    assert!(
        py.is_file(),
        "no Python venv with Django at `{}`: run `scripts/test.sh` (or `source scripts/pyenv.sh && ensure_venv`) first",
        venv.display()
    );
    py
}

#[test]
fn django_reads_our_manifest_and_resolves_static_names() {
    let py = venv_python();
    let t = tempfile::tempdir().unwrap();
    copy_dir(&repo().join("examples/site"), &t.path().join("site"));
    build(t.path(), "site", "out", &[]);
    let o = Command::new(py)
        .arg(repo().join("scripts/django_check.py"))
        .arg(t.path().join("out"))
        .output()
        .unwrap();
    let text = String::from_utf8_lossy(&o.stdout);
    assert!(
        o.status.success(),
        "django check failed:\n{text}\n{}",
        String::from_utf8_lossy(&o.stderr)
    );
    assert!(
        text.contains("django: ") && text.contains(" 0 failed"),
        "{text}"
    );
}
