//! `staleguard edge` as a user runs it: two `--listen` addresses are two nodes with caches of their
//! own (a purge of one leaves the other's copy), SIGTERM drains and prints each node's counters, and
//! bad arguments are refused with a hint.

use std::io::{BufRead, BufReader, Read};
use std::process::Stdio;

use reqwest::blocking::Client;

use crate::serve::serve;
use crate::support::*;

fn x_cache(c: &Client, url: &str) -> String {
    let r = c
        .get(url)
        .send()
        .unwrap_or_else(|e| panic!("GET {url}: {e}"));
    assert_eq!(r.status().as_u16(), 200, "{url}");
    r.headers()
        .get("x-cache")
        .map(|v| v.to_str().unwrap().to_string())
        .unwrap_or_default()
}

#[test]
fn two_listen_addresses_are_two_nodes_and_sigterm_prints_their_counters() {
    let t = tempfile::tempdir().unwrap();
    copy_dir(&repo().join("examples/site"), &t.path().join("site"));
    build(t.path(), "site", "out", &[]);
    let m = manifest(&t.path().join("out"));
    let origin = serve(t.path(), &["out"]);
    let mut c = staleguard(t.path());
    c.args(["edge", "--origin", &origin.base])
        .args(["--listen", "127.0.0.1:0", "--listen", "127.0.0.1:0"])
        .stdout(Stdio::piped())
        .stderr(Stdio::piped());
    let mut child = c.spawn().unwrap();
    let mut out = BufReader::new(child.stdout.take().unwrap());
    let mut nodes = Vec::new();
    for _ in 0..2 {
        let mut line = String::new();
        out.read_line(&mut line).unwrap();
        let url = line
            .split_whitespace()
            .find(|w| w.starts_with("http://"))
            .unwrap_or_else(|| panic!("no address in {line:?}"))
            .to_string();
        nodes.push(url);
    }
    assert_ne!(nodes[0], nodes[1]);
    let css = hashed(&m, "css/site.css");
    let http = Client::new();
    let (a, b) = (format!("{}/{css}", nodes[0]), format!("{}/{css}", nodes[1]));
    assert_eq!(x_cache(&http, &a), "MISS");
    assert_eq!(x_cache(&http, &a), "HIT");
    assert_eq!(x_cache(&http, &b), "MISS", "node b has a cache of its own");
    assert_eq!(x_cache(&http, &b), "HIT");
    let purge = http
        .request(reqwest::Method::from_bytes(b"PURGE").unwrap(), &a)
        .send()
        .unwrap();
    assert_eq!(purge.status().as_u16(), 200);
    assert_eq!(x_cache(&http, &a), "MISS", "purged on a");
    assert_eq!(x_cache(&http, &b), "HIT", "still cached on b");

    let status = sigterm_and_wait(&mut child, "edge");
    assert!(status.success(), "{status}");
    let mut err = String::new();
    child
        .stderr
        .take()
        .unwrap()
        .read_to_string(&mut err)
        .unwrap();
    for n in &nodes {
        let addr = n.trim_start_matches("http://");
        let line = err
            .lines()
            .find(|l| l.contains(addr))
            .unwrap_or_else(|| panic!("no counters for {addr}: {err}"));
        assert!(
            line.contains("hits") && line.contains("origin requests"),
            "{line}"
        );
    }
    let line = |n: &str| {
        err.lines()
            .find(|l| l.contains(n.trim_start_matches("http://")))
            .unwrap()
            .to_string()
    };
    assert!(line(&nodes[0]).contains("1 hits, 2 misses"), "{err}");
    assert!(line(&nodes[0]).contains("1 purges"), "{err}");
    assert!(line(&nodes[1]).contains("2 hits, 1 misses"), "{err}");
    assert!(line(&nodes[1]).contains("0 purges"), "{err}");
}

#[test]
fn bad_edge_arguments_are_refused_with_a_hint() {
    let t = tempfile::tempdir().unwrap();
    for (args, want) in [
        (
            vec!["--origin", "https://example.com"],
            "must be an http:// URL",
        ),
        (vec!["--origin", "http://127.0.0.1:1/app"], "without a path"),
        (vec!["--memory", "lots"], "is not a size"),
        (vec!["--allow-purge", "10.0.0.0/40"], "prefix length"),
        (
            vec!["--memory", "1MiB", "--max-object", "2MiB"],
            "larger than --memory",
        ),
    ] {
        let mut c = staleguard(t.path());
        c.arg("edge").args(["--listen", "127.0.0.1:0"]).args(&args);
        if !args.contains(&"--origin") {
            c.args(["--origin", "http://127.0.0.1:1"]);
        }
        let o = run(c);
        assert_ne!(o.status.code(), Some(0), "{args:?}");
        let e = stderr(&o);
        assert!(e.contains(want), "{args:?}: {e}");
    }
    // An address in use: says which, and what to do.
    let l = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let taken = l.local_addr().unwrap().to_string();
    let mut c = staleguard(t.path());
    c.args(["edge", "--origin", "http://127.0.0.1:1", "--listen", &taken]);
    let o = run(c);
    assert_eq!(o.status.code(), Some(1));
    let e = stderr(&o);
    assert!(e.contains(&taken) && e.contains("hint:"), "{e}");
}
