//! The stand-in for the CloudFront calls moto lacks (cache policies and response-headers policies),
//! `scripts/peers/cloudfront-policies.py`, in front of a [`Moto`]: one endpoint serving the whole
//! CloudFront API, policies here and everything else forwarded to moto. Started on a free loopback
//! port with the venv's Python; stopped (by PID, and by its stdin closing) when dropped.

use std::io::{BufRead, BufReader};
use std::process::{Child, Command, Stdio};

use crate::moto::Moto;

/// A running stand-in.
#[derive(Debug)]
pub struct CloudFrontPolicies {
    /// `http://127.0.0.1:PORT`.
    pub url: String,
    child: Child,
}

impl CloudFrontPolicies {
    /// Starts one in front of `moto`. Panics with the hint when the venv or the script is missing.
    pub fn start(moto: &Moto) -> CloudFrontPolicies {
        let script = crate::repo().join("scripts/peers/cloudfront-policies.py");
        let python = moto.python();
        let mut child = Command::new(&python)
            .arg(&script)
            .args(["--upstream", &moto.url])
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .stderr(Stdio::inherit())
            .spawn()
            .unwrap_or_else(|e| {
                panic!(
                    "cannot run {} {}: {e}\nhint: scripts/peers/moto.sh install makes the venv (scripts/test.sh does)",
                    python.display(),
                    script.display()
                )
            });
        let stdout = child.stdout.take().expect("piped stdout");
        let mut line = String::new();
        BufReader::new(stdout)
            .read_line(&mut line)
            .expect("the stand-in's first line");
        let url = line
            .trim()
            .strip_prefix("URL=")
            .unwrap_or_else(|| {
                let _ = child.kill();
                panic!("{} did not start: printed `{line}`", script.display())
            })
            .to_string();
        CloudFrontPolicies { url, child }
    }
}

impl Drop for CloudFrontPolicies {
    fn drop(&mut self) {
        drop(self.child.stdin.take());
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}
