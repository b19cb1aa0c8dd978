//! No secret leaves the process: every command, with `RUST_LOG=trace`, `-vvv` and `--json`, against an
//! API that echoes each request it refuses (request line and headers, `Authorization` included) and
//! against dead ports, with a secret in every place the config takes one (API tokens in the
//! environment, cloud credentials, the webhook URL, `user:password@` in Varnish nodes, `api`,
//! `cdn-url`, `origin-url`, `--cdn-url` and the S3 endpoint). No secret string may appear in stdout,
//! stderr, a file written under the project, or the webhook's payload; and the credentials are still
//! sent.

use std::collections::BTreeMap;
use std::io::{BufRead, BufReader, Read, Write};
use std::net::{TcpListener, TcpStream};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use base64::Engine;

use crate::support::*;

/// One request the echo server got: its head (request line and headers) and body.
#[derive(Clone, Debug)]
struct Seen {
    head: String,
    body: String,
}

/// An HTTP server that refuses everything with the request it got in the answer, in the format each
/// API's errors take (so each provider quotes it): CloudFront and S3 XML `<Message>`, Cloudflare's
/// `errors[].message`, Fastly's `detail`, a Varnish `<title>`. Under `/ok/` it accepts, echoing the
/// request as the purge id (an API that puts the token in what is stored).
struct Echo {
    addr: String,
    seen: Arc<Mutex<Vec<Seen>>>,
}

impl Echo {
    fn start() -> Echo {
        let l = TcpListener::bind("127.0.0.1:0").unwrap();
        let addr = l.local_addr().unwrap().to_string();
        let seen: Arc<Mutex<Vec<Seen>>> = Arc::default();
        let log = Arc::clone(&seen);
        std::thread::spawn(move || {
            for s in l.incoming().flatten() {
                let log = Arc::clone(&log);
                std::thread::spawn(move || {
                    let _ = answer(s, &log);
                });
            }
        });
        Echo { addr, seen }
    }

    fn seen(&self) -> Vec<Seen> {
        self.seen.lock().unwrap().clone()
    }
}

fn xml_escape(s: &str) -> String {
    s.replace('&', "&amp;")
        .replace('<', "&lt;")
        .replace('>', "&gt;")
}

fn answer(s: TcpStream, log: &Mutex<Vec<Seen>>) -> std::io::Result<()> {
    s.set_read_timeout(Some(Duration::from_secs(10)))?;
    let mut r = BufReader::new(s.try_clone()?);
    let mut head = Vec::new();
    let mut len = 0usize;
    loop {
        let mut line = String::new();
        if r.read_line(&mut line)? == 0 {
            return Ok(());
        }
        let line = line.trim_end_matches(['\r', '\n']).to_string();
        if line.is_empty() {
            break;
        }
        if let Some(v) = line.to_ascii_lowercase().strip_prefix("content-length:") {
            len = v.trim().parse().unwrap_or(0);
        }
        head.push(line);
    }
    let mut body = vec![0; len];
    r.read_exact(&mut body)?;
    let req = head.join("\r\n");
    let path = head
        .first()
        .and_then(|l| l.split(' ').nth(1))
        .unwrap_or("/")
        .to_string();
    log.lock().unwrap().push(Seen {
        head: req.clone(),
        body: String::from_utf8_lossy(&body).into_owned(),
    });
    let (status, kind, text) = if path.starts_with("/ok/") {
        (
            "200 OK",
            "application/json",
            serde_json::json!({"success": true, "errors": [], "result": {"id": req}}).to_string(),
        )
    } else if path.starts_with("/2020-05-31/") || path.starts_with("/bucket") {
        (
            "403 Forbidden",
            "text/xml",
            format!(
                "<?xml version=\"1.0\"?><ErrorResponse><Error><Type>Sender</Type><Code>AccessDenied</Code><Message>you sent: {}</Message></Error><RequestId>r1</RequestId></ErrorResponse>",
                xml_escape(&req)
            ),
        )
    } else {
        (
            "403 Forbidden",
            "application/json",
            serde_json::json!({
                "success": false,
                "errors": [{"code": 10000, "message": format!("you sent: {req}")}],
                "msg": "refused",
                "detail": format!("you sent: {req}"),
                "html": format!("<title>403 {req}</title>"),
            })
            .to_string(),
        )
    };
    let mut s = s;
    write!(
        s,
        "HTTP/1.1 {status}\r\nContent-Type: {kind}\r\nContent-Length: {}\r\nConnection: close\r\n\r\n{text}",
        text.len()
    )?;
    s.flush()
}

/// A port nothing listens on.
fn dead_port() -> u16 {
    let l = TcpListener::bind("127.0.0.1:0").unwrap();
    l.local_addr().unwrap().port()
}

const CF_TOKEN: &str = "cfTok-7f3a9e1b2c4d";
const FASTLY_TOKEN: &str = "fastlyKey-51c2e8d9a0";
const AWS_SECRET: &str = "awsSecret-0a1b2c3d4e5f";
const AWS_SESSION: &str = "awsSession-9z8y7x6w5v";
const NODE_PW: &str = "varnishPw-3e4r5t";
const DEAD_NODE_PW: &str = "deadNodePw-6y7u8i";
const API_PW: &str = "apiPw-5g6h7j8k";
const CDN_PW: &str = "cdnUrlPw-1q2w3e";
const ORIGIN_PW: &str = "originPw-4r5t6y";
const CLI_PW: &str = "cliCdnPw-7u8i9o";
const HOOK_TOKEN: &str = "hookTok-2b3n4m5k";
const HOOK_PW: &str = "hookPw-8j9k0l";
const S3_PW: &str = "s3EndpointPw-1a2s3d";

/// Every secret string, with the `Basic` credential each `user:password` travels as.
fn secrets() -> Vec<String> {
    let mut v: Vec<String> = [
        CF_TOKEN,
        FASTLY_TOKEN,
        AWS_SECRET,
        AWS_SESSION,
        NODE_PW,
        DEAD_NODE_PW,
        API_PW,
        CDN_PW,
        ORIGIN_PW,
        CLI_PW,
        HOOK_TOKEN,
        HOOK_PW,
        S3_PW,
    ]
    .map(String::from)
    .to_vec();
    for (user, pw) in [
        ("purger", NODE_PW),
        ("purger", DEAD_NODE_PW),
        ("cfapi", API_PW),
        ("viewer", CDN_PW),
        ("origin", ORIGIN_PW),
        ("cli", CLI_PW),
        ("hook", HOOK_PW),
        ("s3user", S3_PW),
    ] {
        v.push(base64::engine::general_purpose::STANDARD.encode(format!("{user}:{pw}")));
    }
    v
}

fn assert_clean(what: &str, text: &str) {
    for s in secrets() {
        if let Some(i) = text.find(&s) {
            let from = text[..i]
                .char_indices()
                .rev()
                .nth(200)
                .map_or(0, |(j, _)| j);
            let to = (i + s.len() + 100).min(text.len());
            let to = (to..=text.len())
                .find(|&j| text.is_char_boundary(j))
                .unwrap_or(text.len());
            panic!("{what}: the secret `{s}` leaked:\n…{}…", &text[from..to]);
        }
    }
}

fn config(echo: &str, dead: u16) -> String {
    format!(
        r#"[build]
source = "site"
out = "out"
compress = []

[deploy]
store = "file://store"

[[cdn]]
provider = "cloudflare"
name = "cf"
zone = "Z1"
domain = "www.example.com"
api = "http://cfapi:{API_PW}@{echo}/client/v4"
token-env = "SG_TEST_CF_TOKEN"
timeout = "2s"

[[cdn]]
provider = "cloudflare"
name = "cf-ok"
zone = "Z9"
domain = "www.example.com"
api = "http://{echo}/ok/client/v4"
token-env = "SG_TEST_CF_TOKEN"
timeout = "2s"

[[cdn]]
provider = "cloudflare"
name = "cf-dead"
zone = "Z2"
domain = "www.example.com"
api = "http://127.0.0.1:{dead}/client/v4"
token-env = "SG_TEST_CF_TOKEN"
timeout = "2s"

[[cdn]]
provider = "fastly"
service = "SVC1"
domain = "www.example.com"
api = "http://{echo}"
timeout = "2s"

[[cdn]]
provider = "varnish"
name = "edge"
nodes = ["http://purger:{NODE_PW}@{echo}", "http://purger:{DEAD_NODE_PW}@127.0.0.1:{dead}"]
timeout = "2s"

[[cdn]]
provider = "cloudfront"
distribution = "E1ABCDEFGHIJ"
api = "http://{echo}"
timeout = "2s"

[verify]
cdn-url = ["http://viewer:{CDN_PW}@{echo}", "http://viewer:{CDN_PW}@127.0.0.1:{dead}"]
origin-url = "http://origin:{ORIGIN_PW}@{echo}"
origin-timeout = "1s"
timeout = "1s"
warm = ["/"]
"#
    )
}

struct Project {
    dir: tempfile::TempDir,
    env: BTreeMap<&'static str, String>,
    /// Every command's stdout and stderr, for the checks at the end.
    outputs: Vec<(String, String)>,
}

impl Project {
    /// Runs `args` twice: with `RUST_LOG=trace`, `--json` and `-vvv`, then for humans with `-vvv`.
    /// Returns the two runs' stdout + stderr.
    fn run(&mut self, args: &[&str]) -> [String; 2] {
        let mut both = [String::new(), String::new()];
        for (i, json) in [true, false].into_iter().enumerate() {
            let mut c = staleguard(self.dir.path());
            for var in [
                "AWS_PROFILE",
                "AWS_ENDPOINT_URL",
                "AWS_ACCESS_KEY_ID",
                "HTTP_PROXY",
                "HTTPS_PROXY",
                "ALL_PROXY",
                "http_proxy",
                "https_proxy",
                "all_proxy",
            ] {
                c.env_remove(var);
            }
            c.envs(&self.env);
            c.env("HOME", self.dir.path());
            if json {
                c.env("RUST_LOG", "trace").args(["--json", "-vvv"]);
            } else {
                c.arg("-vvv");
            }
            c.args(args);
            let o = c.output().expect("cannot run staleguard");
            let out = String::from_utf8_lossy(&o.stdout).into_owned();
            let err = String::from_utf8_lossy(&o.stderr).into_owned();
            let what = format!(
                "staleguard {}{args:?} (exit {:?})",
                if json {
                    "--json -vvv (RUST_LOG=trace) "
                } else {
                    "-vvv "
                },
                o.status.code()
            );
            assert_clean(&format!("{what}, stdout"), &out);
            assert_clean(&format!("{what}, stderr"), &err);
            both[i] = format!("{out}\n{err}");
            self.outputs.push((what, both[i].clone()));
        }
        both
    }
}

fn page(body: &str) -> String {
    format!("<!doctype html><html><body>{body}</body></html>\n")
}

#[test]
fn no_secret_leaves_the_process() {
    let echo = Echo::start();
    let dead = dead_port();
    let dir = tempfile::tempdir().unwrap();
    write_files(
        dir.path(),
        &[
            ("site/index.html", &page("v1")),
            ("site/docs/a.html", &page("a v1")),
            ("staleguard.toml", &config(&echo.addr, dead)),
        ],
    );
    let env: BTreeMap<&'static str, String> = [
        ("SG_TEST_CF_TOKEN", CF_TOKEN.to_string()),
        ("FASTLY_API_TOKEN", FASTLY_TOKEN.to_string()),
        ("AWS_ACCESS_KEY_ID", "AKIAIOSFODNN7EXAMPLE".to_string()),
        ("AWS_SECRET_ACCESS_KEY", AWS_SECRET.to_string()),
        ("AWS_SESSION_TOKEN", AWS_SESSION.to_string()),
        ("AWS_REGION", "us-east-1".to_string()),
        ("AWS_EC2_METADATA_DISABLED", "true".to_string()),
        ("AWS_CONFIG_FILE", "/nonexistent/aws-config".to_string()),
        (
            "AWS_SHARED_CREDENTIALS_FILE",
            "/nonexistent/aws-credentials".to_string(),
        ),
        (
            "STALEGUARD_WEBHOOK_URL",
            format!(
                "http://hook:{HOOK_PW}@{}/services/T0/B0/{HOOK_TOKEN}",
                echo.addr
            ),
        ),
    ]
    .into_iter()
    .collect();
    let mut p = Project {
        dir,
        env,
        outputs: Vec::new(),
    };

    p.run(&["build"]);
    // Two deploys (a rollback needs one to go back to); each waits for the origin (refused), so no
    // purge is sent; the verification fails through both edges; the webhook refuses the summary.
    let [json, human] = p.run(&["deploy"]);
    assert!(json.contains("http://viewer:…@"), "{json}");
    assert!(human.contains("origin:…@"), "{human}");
    write_files(p.dir.path(), &[("site/docs/a.html", &page("a v2"))]);
    p.run(&["deploy"]);
    p.run(&["deploy", "--dry-run", "--explain"]);
    // Every provider is called: refused with the request echoed, a dead port, one that accepts and
    // echoes the request as its purge id.
    let [json, _] = p.run(&["invalidate"]);
    assert!(json.contains("purger:…@"), "{json}");
    p.run(&["invalidate", "--all"]);
    p.run(&["invalidate", "--deploy"]);
    p.run(&["invalidate", "--paths", "/docs/a.html", "--cdn", "edge"]);
    p.run(&["invalidations", "list"]);
    p.run(&["invalidations", "status", "I2J0ABCDEF"]);
    p.run(&["verify"]);
    p.run(&[
        "verify",
        "--all",
        "--cdn-url",
        &format!("http://cli:{CLI_PW}@{}", echo.addr),
    ]);
    p.run(&["warm", "/", "/docs/a.html"]);
    p.run(&[
        "warm",
        "--cdn-url",
        &format!("http://cli:{CLI_PW}@127.0.0.1:{dead}"),
        "/",
    ]);
    p.run(&["rollback"]);
    p.run(&["deploys"]);
    // A bad value next to a secret on the command line: the usage error quotes it.
    p.run(&[
        "verify",
        "--timeout",
        "soon",
        "--cdn-url",
        &format!("http://cli:{CLI_PW}@{}", echo.addr),
    ]);
    p.run(&[
        "invalidations",
        "list",
        "--max",
        &format!("http://cli:{CLI_PW}@{}", echo.addr),
    ]);

    // The deploy state in S3, behind an endpoint with credentials that echoes its refusals.
    p.env.insert(
        "AWS_ENDPOINT_URL",
        format!("http://s3user:{S3_PW}@{}", echo.addr),
    );
    for args in [
        &["deploy", "--store", "s3://bucket/site"][..],
        &["deploys", "--store", "s3://bucket/site"],
        &["invalidate", "--store", "s3://bucket/site"],
        &["verify", "--store", "s3://bucket/site"],
    ] {
        p.run(args);
    }

    // Nothing written under the project holds a secret (the config holds the passwords by design).
    for f in walk(p.dir.path()) {
        if f.ends_with("staleguard.toml") {
            continue;
        }
        let text = String::from_utf8_lossy(&std::fs::read(&f).unwrap()).into_owned();
        assert_clean(&format!("file {}", f.display()), &text);
    }
    // The purge that was accepted recorded its (scrubbed) id.
    let purged = std::fs::read_to_string(p.dir.path().join("store/.staleguard/purged.json"))
        .expect("cf-ok's purge is recorded");
    assert!(purged.contains("cf-ok"), "{purged}");

    // What left through the network that is not a credential's own header: the webhook's payload.
    let seen = echo.seen();
    let hooks: Vec<&Seen> = seen
        .iter()
        .filter(|s| s.head.contains("/services/T0/B0/"))
        .collect();
    assert!(!hooks.is_empty(), "the webhook was called");
    for h in &hooks {
        assert_clean("the webhook's payload", &h.body);
    }

    // The credentials were sent all the same.
    let heads: String = seen
        .iter()
        .map(|s| s.head.to_ascii_lowercase() + "\n")
        .collect();
    let basic = |u: &str, pw: &str| {
        format!(
            "authorization: basic {}",
            base64::engine::general_purpose::STANDARD
                .encode(format!("{u}:{pw}"))
                .to_ascii_lowercase()
        )
    };
    for (what, want) in [
        (
            "the Cloudflare token",
            format!("authorization: bearer {}", CF_TOKEN.to_ascii_lowercase()),
        ),
        (
            "the Fastly key",
            format!("fastly-key: {}", FASTLY_TOKEN.to_ascii_lowercase()),
        ),
        (
            "the AWS session token",
            format!("x-amz-security-token: {}", AWS_SESSION.to_ascii_lowercase()),
        ),
        ("a node's password", basic("purger", NODE_PW)),
        ("a cdn-url's password", basic("viewer", CDN_PW)),
        ("the origin's password", basic("origin", ORIGIN_PW)),
        ("--cdn-url's password", basic("cli", CLI_PW)),
        ("the webhook's password", basic("hook", HOOK_PW)),
    ] {
        assert!(heads.contains(&want), "{what} was not sent:\n{heads}");
    }
    // And each kind of echo was seen by some command (the test exercises the leaks it guards).
    let all: String = p
        .outputs
        .iter()
        .map(|(w, o)| format!("{w}\n{o}\n"))
        .collect();
    for shown in ["you sent: ", "<redacted>", "cannot reach", "cli:…@"] {
        assert!(all.contains(shown), "no output shows `{shown}`");
    }
}
