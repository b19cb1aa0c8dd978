//! A real moto server (in-memory S3 + CloudFront APIs) for the deploy tests, one per test, started by
//! `scripts/peers/moto.sh` (which `scripts/test.sh` installs into the project's Python venv) on a free
//! loopback port and stopped by PID when dropped. A missing peer fails the test; it never skips.
//!
//! ```ignore
//! let moto = Moto::start();
//! moto.create_bucket("site");
//! let mut c = staleguard(dir);
//! moto.apply(&mut c).args(["deploy", "out", "--to", "s3://site"]);
//! let head = moto.aws_json(&["s3api", "head-object", "--bucket", "site", "--key", "index.html"]);
//! ```

use std::path::{Path, PathBuf};
use std::process::{Command, Output};

use serde_json::Value;

use crate::support::*;

fn script() -> PathBuf {
    repo().join("scripts/peers/moto.sh")
}

/// AWS settings a developer may have that must not reach a test (a profile the test machine lacks, a
/// real session token).
const CLEARED: [&str; 3] = ["AWS_PROFILE", "AWS_DEFAULT_PROFILE", "AWS_SESSION_TOKEN"];

/// One moto_server, stopped (and its state dir removed) when dropped.
pub struct Moto {
    /// `http://127.0.0.1:PORT`: the S3 and CloudFront endpoint.
    pub url: String,
    /// The moto_server process.
    pub pid: u32,
    state: String,
    /// The venv's `aws` (awscli v1).
    aws: PathBuf,
}

impl Moto {
    /// Starts a fresh server (no buckets). Panics with the script's stderr when moto is missing or does
    /// not come up.
    pub fn start() -> Moto {
        let o = Command::new(script())
            .arg("start")
            // If this test process dies without dropping us (SIGKILL, a timeout), the script's watchdog
            // stops the server within a second.
            .env("MOTO_WATCH_PID", std::process::id().to_string())
            .output()
            .unwrap_or_else(|e| panic!("cannot run {}: {e}", script().display()));
        let out = String::from_utf8_lossy(&o.stdout);
        assert!(
            o.status.success(),
            "cannot start moto: {}\nhint: install it with `scripts/peers/moto.sh install` (scripts/test.sh does)",
            String::from_utf8_lossy(&o.stderr)
        );
        let get = |k: &str| {
            out.lines()
                .find_map(|l| l.strip_prefix(&format!("{k}=")))
                .unwrap_or_else(|| panic!("moto.sh start printed no {k}=: {out}"))
                .to_string()
        };
        let mut moto = Moto {
            url: get("MOTO_URL"),
            pid: get("MOTO_PID").parse().expect("MOTO_PID is a number"),
            state: get("MOTO_STATE"),
            aws: PathBuf::new(),
        };
        // From here on, a panic drops `moto` and so stops the server.
        let o = Command::new(script()).arg("aws-bin").output().unwrap();
        assert!(
            o.status.success(),
            "moto.sh aws-bin: {}",
            String::from_utf8_lossy(&o.stderr)
        );
        moto.aws = PathBuf::from(String::from_utf8_lossy(&o.stdout).trim());
        moto
    }

    /// The environment a child process needs to talk to this server (the same as `moto.sh env URL`):
    /// dummy credentials, region, endpoint, plain HTTP allowed (object_store refuses http:// without
    /// `AWS_ALLOW_HTTP`), no instance-metadata lookups, and the venv's bin/ first on PATH.
    pub fn env(&self) -> Vec<(String, String)> {
        let bin = self.aws.parent().unwrap_or(Path::new(""));
        let path = match std::env::var_os("PATH") {
            Some(p) => {
                let mut dirs = vec![bin.to_path_buf()];
                dirs.extend(std::env::split_paths(&p));
                std::env::join_paths(dirs)
                    .unwrap()
                    .to_string_lossy()
                    .to_string()
            }
            None => bin.to_string_lossy().to_string(),
        };
        [
            ("AWS_ACCESS_KEY_ID", "testing"),
            ("AWS_SECRET_ACCESS_KEY", "testing"),
            ("AWS_DEFAULT_REGION", "us-east-1"),
            ("AWS_REGION", "us-east-1"),
            ("AWS_ENDPOINT_URL", self.url.as_str()),
            ("AWS_ALLOW_HTTP", "true"),
            ("AWS_EC2_METADATA_DISABLED", "true"),
            ("PATH", path.as_str()),
        ]
        .into_iter()
        .map(|(k, v)| (k.to_string(), v.to_string()))
        .collect()
    }

    /// Points a command at this server: sets [`Moto::env`] and removes `AWS_PROFILE`,
    /// `AWS_DEFAULT_PROFILE` and `AWS_SESSION_TOKEN`.
    pub fn apply<'c>(&self, c: &'c mut Command) -> &'c mut Command {
        for k in CLEARED {
            c.env_remove(k);
        }
        c.envs(self.env())
    }

    /// Runs `aws --endpoint-url URL ARGS...` (the venv's awscli v1) with [`Moto::env`].
    pub fn aws(&self, args: &[&str]) -> Output {
        let mut c = Command::new(&self.aws);
        self.apply(&mut c)
            .args(["--endpoint-url", &self.url])
            .args(args)
            .output()
            .unwrap_or_else(|e| panic!("cannot run {}: {e}", self.aws.display()))
    }

    /// Runs [`Moto::aws`], expecting success, and parses its stdout as JSON (`null` when empty).
    pub fn aws_json(&self, args: &[&str]) -> Value {
        let o = self.aws(args);
        assert!(
            o.status.success(),
            "aws {}: {}\n{}",
            args.join(" "),
            String::from_utf8_lossy(&o.stdout),
            String::from_utf8_lossy(&o.stderr)
        );
        if o.stdout.iter().all(u8::is_ascii_whitespace) {
            return Value::Null;
        }
        serde_json::from_slice(&o.stdout).unwrap_or_else(|e| {
            panic!(
                "aws {}: not JSON ({e}): {}",
                args.join(" "),
                String::from_utf8_lossy(&o.stdout)
            )
        })
    }

    /// Creates an S3 bucket (us-east-1).
    pub fn create_bucket(&self, name: &str) {
        self.aws_json(&["s3api", "create-bucket", "--bucket", name]);
    }
}

impl Drop for Moto {
    fn drop(&mut self) {
        // No panic here: this also runs while a failed test unwinds.
        match Command::new(script()).args(["stop", &self.state]).output() {
            Ok(o) if o.status.success() => {}
            Ok(o) => eprintln!(
                "moto.sh stop {}: {}",
                self.state,
                String::from_utf8_lossy(&o.stderr)
            ),
            Err(e) => eprintln!("cannot run moto.sh stop {}: {e}", self.state),
        }
    }
}

/// Running, not exited: a zombie waiting for PID 1 to reap it counts as gone.
fn running(pid: u32) -> bool {
    match std::fs::read_to_string(format!("/proc/{pid}/stat")) {
        Ok(stat) => {
            let state = stat.rsplit_once(") ").map(|(_, rest)| rest.chars().next());
            !matches!(state, Some(Some('Z' | 'X')))
        }
        Err(_) => false,
    }
}

#[test]
fn moto_peer_round_trip() {
    let moto = Moto::start();
    assert!(moto.url.starts_with("http://127.0.0.1:"), "{}", moto.url);
    assert!(
        running(moto.pid),
        "moto_server pid {} not running",
        moto.pid
    );
    let state = PathBuf::from(&moto.state);
    assert!(state.is_dir());

    moto.create_bucket("site");
    let buckets = moto.aws_json(&["s3api", "list-buckets"]);
    assert_eq!(buckets["Buckets"][0]["Name"], "site", "{buckets}");

    let t = tempfile::tempdir().unwrap();
    let body = t.path().join("site.css");
    std::fs::write(&body, "body { color: red }\n").unwrap();
    let cache_control = "public, max-age=31536000, immutable";
    let content_type = "text/css; charset=utf-8";
    let put = moto.aws_json(&[
        "s3api",
        "put-object",
        "--bucket",
        "site",
        "--key",
        "css/site.3f2a1b4c.css",
        "--body",
        body.to_str().unwrap(),
        "--cache-control",
        cache_control,
        "--content-type",
        content_type,
    ]);
    // moto, like S3, answers a single-part upload with ETag = MD5 of the body.
    assert_eq!(put["ETag"], "\"5217c451387ecae56cb932c4c7942b22\"", "{put}");

    let head = moto.aws_json(&[
        "s3api",
        "head-object",
        "--bucket",
        "site",
        "--key",
        "css/site.3f2a1b4c.css",
    ]);
    assert_eq!(head["CacheControl"], cache_control, "{head}");
    assert_eq!(head["ContentType"], content_type, "{head}");
    assert_eq!(head["ContentLength"], 20, "{head}");
    assert_eq!(head["ETag"], put["ETag"], "{head}");

    // A missing key is an error, not an empty answer.
    let o = moto.aws(&[
        "s3api",
        "head-object",
        "--bucket",
        "site",
        "--key",
        "nope.css",
    ]);
    assert!(!o.status.success());
    assert!(stderr(&o).contains("404"), "{}", stderr(&o));

    // Two servers at once are independent.
    let other = Moto::start();
    assert_ne!(other.url, moto.url);
    let buckets = other.aws_json(&["s3api", "list-buckets"]);
    assert_eq!(buckets["Buckets"], serde_json::json!([]), "{buckets}");
    drop(other);

    let pid = moto.pid;
    drop(moto);
    assert!(!running(pid), "moto_server pid {pid} still runs after drop");
    assert!(!state.exists(), "state dir {} left behind", state.display());
}
