//! A real moto server (in-memory S3 and CloudFront APIs) from `scripts/peers/moto.sh`, which
//! `scripts/test.sh` installs into the project's Python venv: a fresh one per [`Moto::start`], on a
//! free loopback port, stopped by PID when dropped; or one per test binary, [`Moto::shared`].
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
use std::sync::OnceLock;

use serde_json::Value;

use crate::peer::{Kind, Peer};

/// The moto peer's script and names.
pub static KIND: Kind = Kind {
    name: "moto",
    script: "scripts/peers/moto.sh",
    prefix: "MOTO",
    hint: "install it with `scripts/peers/moto.sh install` (scripts/test.sh does)",
};

/// AWS settings a developer may have that must not reach a test (a profile the test machine lacks, a
/// real session token).
const CLEARED: [&str; 3] = ["AWS_PROFILE", "AWS_DEFAULT_PROFILE", "AWS_SESSION_TOKEN"];

/// One moto_server, stopped (and its state dir removed) when dropped.
#[derive(Debug)]
pub struct Moto {
    /// `http://127.0.0.1:PORT`: the S3 and CloudFront endpoint.
    pub url: String,
    /// The moto_server process.
    pub pid: u32,
    /// The venv's `aws` (awscli v1).
    aws: PathBuf,
    peer: Peer,
}

impl Moto {
    /// Starts a fresh server (no buckets). Panics with the script's stderr and the install hint when
    /// moto is missing or does not come up.
    pub fn start() -> Moto {
        Moto::start_with_env(&[])
    }

    /// [`Moto::start`] with variables for moto_server itself, e.g. `INITIAL_NO_AUTH_ACTION_COUNT`
    /// (moto then checks signatures and IAM policies after that many requests).
    pub fn start_with_env(env: &[(&str, &str)]) -> Moto {
        let mut start = KIND.command();
        start.envs(env.iter().copied());
        start
            .arg("start")
            // If this test process dies without dropping us (SIGKILL, a timeout), the script's
            // watchdog stops the server within a second.
            .env("MOTO_WATCH_PID", std::process::id().to_string());
        let peer = Peer::start(&KIND, start);
        // From here on, a panic drops `peer` and so stops the server.
        let o = KIND
            .command()
            .arg("aws-bin")
            .output()
            .unwrap_or_else(|e| panic!("cannot run {}: {e}", KIND.script().display()));
        assert!(
            o.status.success(),
            "{} aws-bin: {}",
            KIND.script,
            String::from_utf8_lossy(&o.stderr)
        );
        Moto {
            url: peer.url.clone(),
            pid: peer.pid,
            aws: PathBuf::from(String::from_utf8_lossy(&o.stdout).trim()),
            peer,
        }
    }

    /// One server for the whole test binary, started by the first caller. It is never dropped: the
    /// script's watchdog (`MOTO_WATCH_PID`) stops it once the test process exits. Tests sharing it
    /// keep apart by using buckets of their own.
    pub fn shared() -> &'static Moto {
        static SHARED: OnceLock<Moto> = OnceLock::new();
        SHARED.get_or_init(Moto::start)
    }

    /// The state folder of this server (`moto.sh start` made it; `stop` removes it).
    pub fn state(&self) -> &Path {
        Path::new(&self.peer.state)
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
                    .expect("PATH entries hold no separator")
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

    /// The venv's Python (beside its `aws`).
    pub fn python(&self) -> PathBuf {
        self.aws.parent().unwrap_or(Path::new("")).join("python3")
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
        self.aws_json_at(&self.url, args)
    }

    /// [`Moto::aws_json`] against another endpoint (a stand-in in front of this server).
    pub fn aws_json_at(&self, endpoint: &str, args: &[&str]) -> Value {
        let mut c = Command::new(&self.aws);
        let o = self
            .apply(&mut c)
            .args(["--endpoint-url", endpoint])
            .args(args)
            .output()
            .unwrap_or_else(|e| panic!("cannot run {}: {e}", self.aws.display()));
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

    /// Creates a CloudFront distribution whose one origin is `bucket` (S3, `origin_path`, e.g. `/site` or
    /// empty) and whose alternate domain name is `alias`; returns its id.
    pub fn create_distribution(&self, bucket: &str, origin_path: &str, alias: &str) -> String {
        let conf = serde_json::json!({
            "CallerReference": format!("staleguard-test-{alias}"), "Comment": "staleguard test", "Enabled": true,
            "DefaultRootObject": "index.html",
            "Aliases": {"Quantity": 1, "Items": [alias]},
            "Origins": {"Quantity": 1, "Items": [{"Id": format!("s3-{bucket}"), "DomainName": format!("{bucket}.s3.amazonaws.com"),
                "OriginPath": origin_path, "S3OriginConfig": {"OriginAccessIdentity": ""}}]},
            "DefaultCacheBehavior": {"TargetOriginId": format!("s3-{bucket}"), "ViewerProtocolPolicy": "redirect-to-https",
                "CachePolicyId": "658327ea-f89d-4fab-a63d-7e88639e58f6"}
        });
        let out = self.aws_json(&[
            "cloudfront",
            "create-distribution",
            "--distribution-config",
            &conf.to_string(),
        ]);
        out["Distribution"]["Id"]
            .as_str()
            .unwrap_or_else(|| panic!("create-distribution answered without an id: {out}"))
            .to_string()
    }
}
