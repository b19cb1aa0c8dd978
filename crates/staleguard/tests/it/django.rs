//! Django itself loads our `staticfiles.json` with `ManifestStaticFilesStorage` and resolves `{% static %}`.
//!
//! Needs the Python venv that `scripts/test.sh` creates (`scripts/pyenv.sh`); without it the test fails
//! and says how to make it.

use std::process::Command;

use crate::support::*;

#[test]
fn django_reads_our_manifest_and_resolves_static_names() {
    let py = venv_bin("python");
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
