//! Helpers shared by the integration tests.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::process::{Command, Output};

use serde_json::Value;
use staleguard_testkit::cli::Cli;

pub use staleguard_testkit::cli::run;
pub use staleguard_testkit::repo;

/// A `staleguard` command with a fixed build time and no inherited config.
pub fn staleguard(cwd: &Path) -> Command {
    Cli::new(env!("CARGO_BIN_EXE_staleguard"))
        .current_dir(cwd)
        .command()
}

/// Runs `staleguard build SRC -o OUT --cache-dir CACHE --json` plus `extra`, expecting success.
pub fn build(dir: &Path, src: &str, out: &str, extra: &[&str]) -> Value {
    let mut c = staleguard(dir);
    c.args([
        "build",
        src,
        "-o",
        out,
        "--cache-dir",
        &format!("{out}.cache"),
        "--json",
    ])
    .args(extra);
    let o = run(c);
    assert!(o.status.success(), "build failed");
    serde_json::from_slice(&o.stdout).expect("--json prints JSON")
}

/// Starts `c` with stdout piped and returns the child and the first `http://…` word of its first
/// line (what `serve` and `service` print once they listen). Stderr is the caller's choice (inherited
/// unless set, e.g. to a log file).
pub fn spawn_listening(mut c: Command) -> (std::process::Child, String) {
    use std::io::BufRead;
    c.stdout(std::process::Stdio::piped());
    let mut child = c.spawn().expect("cannot start staleguard");
    let mut line = String::new();
    std::io::BufReader::new(child.stdout.take().unwrap())
        .read_line(&mut line)
        .unwrap();
    let base = line
        .split_whitespace()
        .find(|w| w.starts_with("http://"))
        .unwrap_or_else(|| panic!("no address in {line:?}"))
        .to_string();
    (child, base)
}

/// Copies a folder recursively.
pub fn copy_dir(from: &Path, to: &Path) {
    for entry in walk(from) {
        let rel = entry.strip_prefix(from).unwrap();
        let dest = to.join(rel);
        std::fs::create_dir_all(dest.parent().unwrap()).unwrap();
        std::fs::copy(&entry, &dest).unwrap();
    }
}

/// Every file below a folder, sorted.
pub fn walk(dir: &Path) -> Vec<PathBuf> {
    let mut out = Vec::new();
    let mut stack = vec![dir.to_path_buf()];
    while let Some(d) = stack.pop() {
        for e in std::fs::read_dir(&d).unwrap() {
            let p = e.unwrap().path();
            if p.is_dir() {
                stack.push(p)
            } else {
                out.push(p)
            }
        }
    }
    out.sort();
    out
}

/// A folder's files as relative path → bytes.
pub fn tree(dir: &Path) -> BTreeMap<String, Vec<u8>> {
    walk(dir)
        .into_iter()
        .map(|p| {
            (
                p.strip_prefix(dir)
                    .unwrap()
                    .to_string_lossy()
                    .replace('\\', "/"),
                std::fs::read(&p).unwrap(),
            )
        })
        .collect()
}

/// Writes files given as (relative path, content).
pub fn write_files(root: &Path, files: &[(&str, &str)]) {
    for (p, c) in files {
        let f = root.join(p);
        std::fs::create_dir_all(f.parent().unwrap()).unwrap();
        std::fs::write(f, c).unwrap();
    }
}

/// The staleguard manifest of an output folder.
pub fn manifest(out: &Path) -> Value {
    serde_json::from_slice(&std::fs::read(out.join("staleguard.manifest.json")).unwrap()).unwrap()
}

/// The output path of a logical path.
pub fn hashed(m: &Value, logical: &str) -> String {
    m["files"][logical]["path"]
        .as_str()
        .unwrap_or_else(|| panic!("`{logical}` not in manifest"))
        .to_string()
}

pub fn read(out: &Path, rel: &str) -> String {
    std::fs::read_to_string(out.join(rel)).unwrap_or_else(|e| panic!("cannot read `{rel}`: {e}"))
}

pub fn stderr(o: &Output) -> String {
    String::from_utf8_lossy(&o.stderr).to_string()
}

/// The files of a build output that a deploy keeps with the deploy state, out of the site.
pub const OWN_FILES: [&str; 3] = [
    "staleguard.manifest.json",
    "staticfiles.json",
    "build-info.json",
];

/// The store key a build output file is deployed to (the manifests and build info go to
/// `.staleguard/build/`).
pub fn store_key(output_path: &str) -> String {
    if OWN_FILES.contains(&output_path) {
        format!(".staleguard/build/{output_path}")
    } else {
        output_path.to_string()
    }
}

/// A program of the test venv (`scripts/pyenv.sh`: Django, WhiteNoise, gunicorn, moto); fails saying how
/// to make the venv when it is missing.
pub fn venv_bin(name: &str) -> PathBuf {
    let venv = std::env::var_os("STALEGUARD_VENV")
        .map(PathBuf::from)
        .unwrap_or_else(|| {
            PathBuf::from(std::env::var_os("HOME").unwrap_or_default())
                .join(".cache/staleguard/venv")
        });
    let bin = venv.join("bin").join(name);
    assert!(
        bin.is_file(),
        "no `{name}` in the test venv `{}`: run `scripts/test.sh` (or `source scripts/pyenv.sh && ensure_venv`) first",
        venv.display()
    );
    bin
}

/// The bundled example as a user runs it (`cd examples; staleguard build`): `examples/site` and
/// `examples/staleguard.toml` (build `site` → `dist`, deploy to `file://public`) in a fresh folder.
pub fn example_project() -> tempfile::TempDir {
    let t = tempfile::tempdir().unwrap();
    copy_dir(&repo().join("examples/site"), &t.path().join("site"));
    std::fs::copy(
        repo().join("examples/staleguard.toml"),
        t.path().join("staleguard.toml"),
    )
    .unwrap();
    t
}

/// One HTTP/1.1 request read off a connection by a test's stand-in server.
#[derive(Debug, Clone)]
pub struct Request {
    pub method: String,
    pub path: String,
    /// Names lower-cased.
    pub headers: Vec<(String, String)>,
}

impl Request {
    pub fn header(&self, name: &str) -> Option<&str> {
        self.headers
            .iter()
            .find(|(k, _)| k == name)
            .map(|(_, v)| v.as_str())
    }
}

/// The next request on `r` (its head; a `content-length` body is read and dropped); `None` once the
/// peer closed.
pub fn read_request(r: &mut impl std::io::BufRead) -> Option<Request> {
    let mut line = String::new();
    if r.read_line(&mut line).unwrap_or(0) == 0 {
        return None;
    }
    let mut parts = line.split_whitespace();
    let (method, path) = (
        parts.next().unwrap_or("").to_string(),
        parts.next().unwrap_or("").to_string(),
    );
    let mut headers = Vec::new();
    loop {
        let mut h = String::new();
        if r.read_line(&mut h).unwrap_or(0) == 0 {
            return None;
        }
        let h = h.trim_end();
        if h.is_empty() {
            break;
        }
        if let Some((k, v)) = h.split_once(':') {
            headers.push((k.trim().to_ascii_lowercase(), v.trim().to_string()));
        }
    }
    let len = headers
        .iter()
        .find(|(k, _)| k == "content-length")
        .and_then(|(_, v)| v.parse().ok())
        .unwrap_or(0usize);
    let mut body = vec![0; len];
    let _ = std::io::Read::read_exact(r, &mut body);
    Some(Request {
        method,
        path,
        headers,
    })
}

/// Sends SIGTERM to `child` and waits (at most 15 s) for it to exit; its exit status.
pub fn sigterm_and_wait(child: &mut std::process::Child, what: &str) -> std::process::ExitStatus {
    let pid = child.id().to_string();
    assert!(
        Command::new("kill")
            .args(["-TERM", &pid])
            .status()
            .unwrap()
            .success()
    );
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(15);
    loop {
        if let Some(status) = child.try_wait().unwrap() {
            return status;
        }
        assert!(
            std::time::Instant::now() < deadline,
            "{what} did not stop on SIGTERM"
        );
        std::thread::sleep(std::time::Duration::from_millis(50));
    }
}
